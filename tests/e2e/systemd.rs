//! The shipped unit files pass `systemd-analyze verify`, and the system unit's sandbox rates
//! "OK" or better (`systemd-analyze security` exposure ≤ 2.0).

use std::path::Path;
use std::process::Command;

/// Copies a shipped unit into `dir`, pointing `ExecStart` at the freshly built binary so
/// `verify` can check the executable exists.
fn unit_copy(dir: &Path, name: &str) -> std::path::PathBuf {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("systemd")
        .join(name);
    let text = std::fs::read_to_string(&shipped).unwrap();
    let exec = text
        .lines()
        .find(|l| l.starts_with("ExecStart="))
        .and_then(|l| l.trim_start_matches("ExecStart=").split_whitespace().next())
        .unwrap()
        .to_string();
    let path = dir.join(name);
    std::fs::write(&path, text.replace(&exec, env!("CARGO_BIN_EXE_storywatch"))).unwrap();
    path
}

fn analyze(args: &[&str], runtime_dir: &Path) -> (bool, String) {
    let output = Command::new("systemd-analyze")
        .args(args)
        .env("XDG_RUNTIME_DIR", runtime_dir)
        .output()
        .expect("systemd-analyze is missing: install Debian's `systemd` package (.ci/run does)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[test]
fn units_verify_and_the_system_unit_is_hardened() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = dir.path().join("runtime");
    std::fs::create_dir(&runtime).unwrap();
    let system = unit_copy(dir.path(), "storywatch.service");
    let user = unit_copy(dir.path(), "storywatch-user.service");

    let (ok, text) = analyze(&["verify", system.to_str().unwrap()], &runtime);
    assert!(
        ok && text.trim().is_empty(),
        "system unit does not verify:\n{text}"
    );
    let (ok, text) = analyze(&["--user", "verify", user.to_str().unwrap()], &runtime);
    assert!(
        ok && text.trim().is_empty(),
        "user unit does not verify:\n{text}"
    );

    let (_, text) = analyze(
        &["security", "--offline=true", system.to_str().unwrap()],
        &runtime,
    );
    let line = text
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or_else(|| panic!("no rating:\n{text}"));
    let exposure: f64 = line
        .split(": ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(exposure <= 2.0, "exposure {exposure} > 2.0:\n{text}");
}

#[test]
fn service_install_writes_a_unit_that_verifies_and_a_config_that_checks() {
    let root = tempfile::tempdir().unwrap();
    let out = crate::support::storywatch(
        root.path(),
        &[
            "service",
            "install",
            "--root",
            root.path().to_str().unwrap(),
        ],
        None,
    );
    let text = crate::support::success(&out);
    assert!(
        text.contains("wrote") && text.contains("systemctl enable --now storywatch"),
        "{text}"
    );

    let unit = root.path().join("etc/systemd/system/storywatch.service");
    let runtime = root.path().join("runtime");
    std::fs::create_dir(&runtime).unwrap();
    let (ok, report) = analyze(&["verify", unit.to_str().unwrap()], &runtime);
    assert!(
        ok && report.trim().is_empty(),
        "installed unit does not verify:\n{report}"
    );

    // The installed config finds its installed seeds.
    let config = root.path().join("etc/storywatch/storywatch.toml");
    let check = crate::support::storywatch(
        root.path(),
        &["--config", config.to_str().unwrap(), "check"],
        None,
    );
    let text = crate::support::success(&check);
    assert!(text.contains("5 baseline articles"), "{text}");
}

#[test]
fn secret_files_are_found_in_the_systemd_credentials_directory() {
    let dir = tempfile::tempdir().unwrap();
    let credentials = dir.path().join("credentials");
    std::fs::create_dir(&credentials).unwrap();
    std::fs::write(credentials.join("hook.key"), "s3cret\n").unwrap();
    crate::support::write_config(
        dir.path(),
        &[],
        "[[notify]]\nkind = \"webhook\"\nurl = \"http://127.0.0.1:9/hook\"\nsecret_file = \"hook.key\"\n",
    );
    let check = |credentials_dir: Option<&Path>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_storywatch"));
        command
            .args(["--config", "storywatch.toml", "check"])
            .current_dir(dir.path());
        match credentials_dir {
            Some(path) => command.env("CREDENTIALS_DIRECTORY", path),
            None => command.env_remove("CREDENTIALS_DIRECTORY"),
        };
        command.output().unwrap()
    };
    // Without LoadCredential= the relative name resolves beside the config, where there is none.
    let without = check(None);
    assert!(!without.status.success());
    assert!(String::from_utf8_lossy(&without.stdout).contains("cannot read secret file hook.key"));
    let with = check(Some(&credentials));
    assert!(
        with.status.success(),
        "{}",
        String::from_utf8_lossy(&with.stderr)
    );
}
