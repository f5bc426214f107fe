//! `storywatch service install`: writes the systemd unit, a config and the seed folder into the
//! places systemd and storywatch look for them, so a person does not copy files by hand.
//!
//! An existing config or seed file is never overwritten: the user's edits win, and the report
//! says what was kept.

use std::path::{Path, PathBuf};

use crate::bundled;

/// Which service manager the unit is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The system manager: unit in `/etc/systemd/system`, config in `/etc/storywatch`.
    System,
    /// The user's manager (`systemctl --user`): unit and config under `~/.config`.
    User,
}

/// Why installing failed.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// `--user` needs a home folder.
    #[error("cannot find your home folder: set $HOME")]
    NoHome,
    /// A file could not be written.
    #[error("cannot write {path}: {cause}; run as root for a system install, or use --user")]
    Write {
        /// The file or folder.
        path: PathBuf,
        /// What the operating system said.
        cause: std::io::Error,
    },
}

/// One file the installer handled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    /// Where it is.
    pub path: PathBuf,
    /// False when an existing file was kept.
    pub written: bool,
}

/// Installs for `scope` under `root` (normally `/`; a staging folder for packaging and tests),
/// with `executable` as the unit's `ExecStart` binary and `home` as the user's home folder.
pub fn install(
    scope: Scope,
    root: &Path,
    executable: &Path,
    home: Option<&Path>,
) -> Result<Vec<Installed>, InstallError> {
    let under_root = |path: &Path| root.join(path.strip_prefix("/").unwrap_or(path));
    let (unit_path, config_dir, unit_text) = match scope {
        Scope::System => (
            PathBuf::from("/etc/systemd/system/storywatch.service"),
            PathBuf::from("/etc/storywatch"),
            bundled::SYSTEM_UNIT,
        ),
        Scope::User => {
            let home = home.ok_or(InstallError::NoHome)?;
            let config_home = home.join(".config");
            (
                config_home.join("systemd/user/storywatch.service"),
                config_home.join("storywatch"),
                bundled::USER_UNIT,
            )
        }
    };
    let exec_line = unit_text
        .lines()
        .find(|l| l.starts_with("ExecStart="))
        .unwrap_or("ExecStart=");
    let exec_binary = exec_line
        .trim_start_matches("ExecStart=")
        .split_whitespace()
        .next()
        .unwrap_or("");
    let unit = unit_text.replacen(exec_binary, &executable.display().to_string(), 1);

    // The installed config keeps its seeds beside it; state paths stay relative so they land in
    // systemd's StateDirectory.
    let config = bundled::CONFIG.replacen("seeds = \"../seeds\"", "seeds = \"seeds\"", 1);

    let mut done = Vec::new();
    done.push(write(&under_root(&unit_path), &unit, true)?);
    done.push(write(
        &under_root(&config_dir.join("storywatch.toml")),
        &config,
        false,
    )?);
    for (name, text) in bundled::SEED_FILES {
        done.push(write(
            &under_root(&config_dir.join("seeds").join(name)),
            text,
            false,
        )?);
    }
    Ok(done)
}

fn write(path: &Path, text: &str, overwrite: bool) -> Result<Installed, InstallError> {
    let error = |cause| InstallError::Write {
        path: path.to_path_buf(),
        cause,
    };
    if !overwrite && path.exists() {
        return Ok(Installed {
            path: path.to_path_buf(),
            written: false,
        });
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(error)?;
    }
    std::fs::write(path, text).map_err(error)?;
    Ok(Installed {
        path: path.to_path_buf(),
        written: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_install_writes_unit_config_and_seeds_and_keeps_edits() {
        let root = tempfile::tempdir().unwrap();
        let exe = Path::new("/opt/bin/storywatch");
        let done = install(Scope::System, root.path(), exe, None).unwrap();
        assert!(done.iter().all(|d| d.written));
        let unit =
            std::fs::read_to_string(root.path().join("etc/systemd/system/storywatch.service"))
                .unwrap();
        assert!(unit.contains("ExecStart=/opt/bin/storywatch run"), "{unit}");
        let config_path = root.path().join("etc/storywatch/storywatch.toml");
        assert!(
            std::fs::read_to_string(&config_path)
                .unwrap()
                .contains("seeds = \"seeds\"")
        );
        assert!(
            root.path()
                .join("etc/storywatch/seeds/002_8c022bc2c889c5a5.txt")
                .is_file()
        );

        std::fs::write(&config_path, "# edited").unwrap();
        let again = install(Scope::System, root.path(), exe, None).unwrap();
        let config = again.iter().find(|d| d.path == config_path).unwrap();
        assert!(!config.written);
        assert_eq!(std::fs::read_to_string(&config_path).unwrap(), "# edited");
    }

    #[test]
    fn user_install_goes_under_home() {
        let root = tempfile::tempdir().unwrap();
        let home = root.path().join("home/ann");
        install(
            Scope::User,
            Path::new("/"),
            Path::new("/usr/bin/storywatch"),
            Some(&home),
        )
        .unwrap();
        assert!(
            home.join(".config/systemd/user/storywatch.service")
                .is_file()
        );
        assert!(home.join(".config/storywatch/storywatch.toml").is_file());
        assert!(install(Scope::User, root.path(), Path::new("x"), None).is_err());
    }
}
