//! What the binary carries so it runs with no files beside it: the default config, the default
//! story's baseline articles and the systemd units.

/// The default configuration (`config/storywatch.toml`).
pub const CONFIG: &str = include_str!("../config/storywatch.toml");

/// The default story's seed files (`seeds/`), as (file name, contents).
pub const SEED_FILES: &[(&str, &str)] = &[
    (
        "000_626ea2df4fb03446.txt",
        include_str!("../seeds/000_626ea2df4fb03446.txt"),
    ),
    (
        "001_2a5f8e6a494c3f39.txt",
        include_str!("../seeds/001_2a5f8e6a494c3f39.txt"),
    ),
    (
        "002_8c022bc2c889c5a5.txt",
        include_str!("../seeds/002_8c022bc2c889c5a5.txt"),
    ),
    (
        "003_3dae84ab3fd43ab9.txt",
        include_str!("../seeds/003_3dae84ab3fd43ab9.txt"),
    ),
    (
        "004_eb0f658c01f191c2.txt",
        include_str!("../seeds/004_eb0f658c01f191c2.txt"),
    ),
    ("seeds.toml", include_str!("../seeds/seeds.toml")),
];

/// The system unit (`systemd/storywatch.service`).
pub const SYSTEM_UNIT: &str = include_str!("../systemd/storywatch.service");

/// The per-user unit (`systemd/storywatch-user.service`).
pub const USER_UNIT: &str = include_str!("../systemd/storywatch-user.service");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_seed_file_in_the_folder_is_bundled() {
        let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
        let mut on_disk: Vec<String> = std::fs::read_dir(folder)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        on_disk.sort();
        let bundled: Vec<&str> = SEED_FILES.iter().map(|(name, _)| *name).collect();
        assert_eq!(on_disk, bundled, "add new seed files to SEED_FILES");
    }
}
