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
    /// The user's manager (`systemctl --user`): unit and config under `$XDG_CONFIG_HOME`
    /// (`~/.config`).
    User,
}

/// Why installing failed.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// `--user` needs a home folder.
    #[error("cannot find your config folder: set $HOME (or $XDG_CONFIG_HOME to an absolute path)")]
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
/// with `executable` as the unit's `ExecStart` binary. For [`Scope::User`], `config_home` is the
/// user's config base folder (`$XDG_CONFIG_HOME`, see [`crate::config::user_config_home`]) and
/// `data_home` their data base folder (`$XDG_DATA_HOME`): the unit is pinned to it, so the
/// service opens the database the user's own `storywatch` commands open.
pub fn install(
    scope: Scope,
    root: &Path,
    executable: &Path,
    config_home: Option<&Path>,
    data_home: Option<&Path>,
) -> Result<Vec<Installed>, InstallError> {
    let under_root = |path: &Path| root.join(path.strip_prefix("/").unwrap_or(path));
    let (unit_path, config_dir, unit_text) = match scope {
        Scope::System => (
            PathBuf::from("/etc/systemd/system/storywatch.service"),
            PathBuf::from("/etc/storywatch"),
            bundled::SYSTEM_UNIT,
        ),
        Scope::User => {
            let config_home = config_home.ok_or(InstallError::NoHome)?;
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
    let mut unit = unit_text.replacen(
        &format!("ExecStart={exec_binary}"),
        &format!(
            "ExecStart={}",
            unit_quote(&executable.display().to_string())
        ),
        1,
    );
    if let (Scope::User, Some(data_home)) = (scope, data_home) {
        let data = data_home.join("storywatch").display().to_string();
        unit = unit
            .replace(
                "+/bin/mkdir -p %h/.local/share/storywatch",
                &format!("+/bin/mkdir -p {}", unit_quote(&data)),
            )
            .replace(
                "ReadWritePaths=%h/.local/share/storywatch",
                &format!("ReadWritePaths={}", unit_word(&data, false)),
            )
            .replacen(
                "Environment=RUST_LOG=storywatch=info",
                &format!(
                    "Environment=RUST_LOG=storywatch=info\nEnvironment={}",
                    unit_word(&format!("XDG_DATA_HOME={}", data_home.display()), false)
                ),
                1,
            );
    }

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

/// `path` as one word of a unit's command line (systemd.service(5), "Command lines").
fn unit_quote(path: &str) -> String {
    unit_word(path, true)
}

/// `text` as one word of a unit file setting: `%` starts a specifier, so it is doubled, and on
/// a `command` line so is `$` (a variable); text with spaces, quotes or backslashes is
/// double-quoted with C-style escapes. Plain text stays as it is.
fn unit_word(text: &str, command: bool) -> String {
    let mut escaped = text.replace('%', "%%");
    if command {
        escaped = escaped.replace('$', "$$");
    }
    let plain = escaped
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+@,:=%$~".contains(c));
    if plain {
        escaped
    } else {
        format!("\"{}\"", escaped.replace('\\', "\\\\").replace('"', "\\\""))
    }
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
        let done = install(Scope::System, root.path(), exe, None, None).unwrap();
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
        let again = install(Scope::System, root.path(), exe, None, None).unwrap();
        let config = again.iter().find(|d| d.path == config_path).unwrap();
        assert!(!config.written);
        assert_eq!(std::fs::read_to_string(&config_path).unwrap(), "# edited");
    }

    #[test]
    fn user_install_goes_under_the_config_home() {
        let root = tempfile::tempdir().unwrap();
        let config_home = root.path().join("home/ann/.config");
        install(
            Scope::User,
            Path::new("/"),
            Path::new("/usr/bin/storywatch"),
            Some(&config_home),
            Some(Path::new("/data/ann files")),
        )
        .unwrap();
        let unit =
            std::fs::read_to_string(config_home.join("systemd/user/storywatch.service")).unwrap();
        assert!(config_home.join("storywatch/storywatch.toml").is_file());
        // Pinned to the user's data folder, so the service and the user share one database.
        for line in [
            "ExecStartPre=+/bin/mkdir -p \"/data/ann files/storywatch\"",
            "ReadWritePaths=\"/data/ann files/storywatch\"",
            "Environment=\"XDG_DATA_HOME=/data/ann files\"",
        ] {
            assert!(unit.lines().any(|l| l == line), "no {line} in\n{unit}");
        }
        assert!(!unit.contains("%h/.local/share"), "{unit}");
        assert!(install(Scope::User, root.path(), Path::new("x"), None, None).is_err());
    }

    #[test]
    fn exec_start_paths_are_quoted_as_systemd_reads_them() {
        assert_eq!(unit_quote("/usr/bin/storywatch"), "/usr/bin/storywatch");
        assert_eq!(
            unit_quote("/home/ann/My Tools/storywatch"),
            "\"/home/ann/My Tools/storywatch\""
        );
        assert_eq!(unit_quote("/opt/100%/$bin"), "/opt/100%%/$$bin");
        assert_eq!(unit_quote("/a \"b\"\\c"), "\"/a \\\"b\\\"\\\\c\"");
        let root = tempfile::tempdir().unwrap();
        install(
            Scope::System,
            root.path(),
            Path::new("/opt/my apps/storywatch"),
            None,
            None,
        )
        .unwrap();
        let unit =
            std::fs::read_to_string(root.path().join("etc/systemd/system/storywatch.service"))
                .unwrap();
        assert!(
            unit.contains("ExecStart=\"/opt/my apps/storywatch\" run\n"),
            "{unit}"
        );
    }
}
