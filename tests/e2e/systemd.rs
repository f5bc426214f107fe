//! The service manager's side: the shipped units pass `systemd-analyze verify` and both
//! sandboxes rate "OK" or better (`systemd-analyze security` exposure ≤ 2.0); `service install`;
//! the notify protocol against a real socket; where config and state are found.

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
fn units_verify_and_both_are_hardened() {
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

    for (manager, unit) in [("--system", &system), ("--user", &user)] {
        let (_, text) = analyze(
            &[
                manager,
                "security",
                "--offline=true",
                unit.to_str().unwrap(),
            ],
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
        assert!(
            exposure <= 2.0,
            "{manager} unit exposure {exposure} > 2.0:\n{text}"
        );
    }
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

/// Messages the daemon sent to a real `$NOTIFY_SOCKET`, as systemd would receive them.
struct NotifySocket {
    socket: std::os::unix::net::UnixDatagram,
    seen: Vec<String>,
}

impl NotifySocket {
    fn bind(path: &Path) -> NotifySocket {
        let socket = std::os::unix::net::UnixDatagram::bind(path).unwrap();
        socket
            .set_read_timeout(Some(std::time::Duration::from_millis(200)))
            .unwrap();
        NotifySocket {
            socket,
            seen: Vec::new(),
        }
    }

    /// Reads datagrams until one satisfies `wanted` or `limit` passes; returns it.
    fn wait_for(
        &mut self,
        limit: std::time::Duration,
        wanted: impl Fn(&str) -> bool,
    ) -> Option<String> {
        let deadline = std::time::Instant::now() + limit;
        let mut buf = [0u8; 4096];
        while std::time::Instant::now() < deadline {
            if let Ok(n) = self.socket.recv(&mut buf) {
                let message = String::from_utf8_lossy(&buf[..n]).into_owned();
                self.seen.push(message.clone());
                if wanted(&message) {
                    return Some(message);
                }
            }
        }
        None
    }

    /// Fails unless a fresh `WATCHDOG=1` arrives within 5 s.
    fn expect_watchdog(&mut self) {
        self.seen.clear();
        assert!(
            self.wait_for(std::time::Duration::from_secs(5), |m| m == "WATCHDOG=1")
                .is_some(),
            "no WATCHDOG=1 in {:?}",
            self.seen
        );
    }
}

/// `storywatch run` with systemd's notify environment: a real datagram socket and a 2 s watchdog.
fn notified_daemon(dir: &Path, socket: &Path) -> crate::support::Daemon {
    let log = dir.join("daemon.log");
    let child = crate::support::binary(dir)
        .args(["--config", "storywatch.toml", "--log-format", "text", "run"])
        .env("RUST_LOG", "storywatch=info")
        .env("NOTIFY_SOCKET", socket)
        .env("WATCHDOG_USEC", "2000000")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    crate::support::Daemon { child, log }
}

fn wire_server() -> crate::support::TestServer {
    let server = crate::support::TestServer::start();
    server.route("/wire.rss", crate::support::wire_feed());
    server
}

#[test]
fn the_daemon_tells_a_real_notify_socket_ready_status_watchdog_and_stopping() {
    use std::time::Duration;
    let server = wire_server();
    let dir = tempfile::tempdir().unwrap();
    crate::support::write_config(dir.path(), &[server.url("/wire.rss")], "");
    let mut notify = NotifySocket::bind(&dir.path().join("notify.sock"));
    let mut daemon = notified_daemon(dir.path(), &dir.path().join("notify.sock"));

    let ready = notify
        .wait_for(Duration::from_secs(20), |m| m.contains("READY=1"))
        .unwrap_or_else(|| panic!("no READY=1 in {:?}\n{}", notify.seen, daemon.log()));
    assert!(
        ready.contains("STATUS=watching 1 feeds; next digest"),
        "{ready}"
    );
    let polled = notify
        .wait_for(Duration::from_secs(20), |m| m.starts_with("STATUS=polled"))
        .unwrap_or_else(|| panic!("no poll status in {:?}\n{}", notify.seen, daemon.log()));
    assert!(
        polled.starts_with("STATUS=polled 1 feeds (0 failed)"),
        "{polled}"
    );
    // With WatchdogSec=2s the idle loop feeds the watchdog at least every second.
    notify.expect_watchdog();

    daemon.signal("TERM");
    assert!(
        notify
            .wait_for(Duration::from_secs(5), |m| m == "STOPPING=1")
            .is_some(),
        "no STOPPING=1 in {:?}\n{}",
        notify.seen,
        daemon.log()
    );
    let status = daemon.wait_exit(Duration::from_secs(5)).expect("exits");
    assert!(status.success(), "{status}\n{}", daemon.log());
}

#[test]
fn a_rejected_reload_is_logged_and_shown_in_the_status_line_and_the_old_config_keeps_running() {
    use std::time::Duration;
    let server = wire_server();
    let dir = tempfile::tempdir().unwrap();
    let port = crate::web::free_port();
    let config = crate::support::write_config(
        dir.path(),
        &[server.url("/wire.rss")],
        &format!("[web]\nlisten = \"127.0.0.1:{port}\"\n"),
    );
    let mut notify = NotifySocket::bind(&dir.path().join("notify.sock"));
    let mut daemon = notified_daemon(dir.path(), &dir.path().join("notify.sock"));
    notify
        .wait_for(Duration::from_secs(20), |m| m.starts_with("STATUS=polled"))
        .unwrap_or_else(|| panic!("no poll in {:?}\n{}", notify.seen, daemon.log()));

    let good = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        good.replace("interval = \"30m\"", "interval = \"often\""),
    )
    .unwrap();
    daemon.signal("HUP");
    assert!(
        notify
            .wait_for(Duration::from_secs(10), |m| m == "RELOADING=1")
            .is_some(),
        "{:?}",
        notify.seen
    );
    let after = notify
        .wait_for(Duration::from_secs(10), |m| m.contains("READY=1"))
        .unwrap_or_else(|| panic!("no READY=1 after reload in {:?}", notify.seen));
    assert!(
        after.contains("STATUS=reload rejected, still running the previous configuration")
            && after.contains("often"),
        "{after}"
    );
    assert!(
        daemon.log().contains("reload rejected") && daemon.log().contains("often"),
        "{}",
        daemon.log()
    );

    // The old configuration keeps running: the loop stays alive and feeds the watchdog, and
    // the review page it configured still says ready.
    notify.expect_watchdog();
    let ready = crate::web::http_get(port, "/readyz").unwrap_or_default();
    assert!(ready.starts_with("HTTP/1.1 200"), "{ready}");
    assert!(
        daemon.child.try_wait().unwrap().is_none(),
        "died on a bad reload"
    );
    daemon.signal("TERM");
    assert!(
        daemon
            .wait_exit(Duration::from_secs(5))
            .is_some_and(|s| s.success())
    );
}

/// `storywatch check` in `work` with exactly `env` set (on top of `binary`'s clean slate) and
/// optionally `--config`; returns the config and database lines it prints.
fn resolved(work: &Path, env: &[(&str, &Path)], flag: Option<&Path>) -> (String, String) {
    let mut command = crate::support::binary(work);
    if let Some(flag) = flag {
        command.arg("--config").arg(flag);
    }
    command.arg("check");
    for (name, value) in env {
        command.env(name, value);
    }
    let out = command.output().unwrap();
    let text = crate::support::success(&out);
    let line = |prefix: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(prefix))
            .map(|rest| rest.trim().trim_end_matches(" — ok").to_string())
            .unwrap_or_else(|| panic!("no {prefix} in:\n{text}"))
    };
    (line("config:"), line("database:"))
}

#[test]
fn config_and_state_are_found_in_the_documented_order() {
    let dir = tempfile::tempdir().unwrap();
    let at = |name: &str| {
        let path = dir.path().join(name);
        std::fs::create_dir_all(&path).unwrap();
        path
    };
    let (work, home, xdg_config, xdg_data, conf_dir, state, flag_dir, env_dir) = (
        at("work"),
        at("home"),
        at("xdg-config"),
        at("xdg-data"),
        at("configuration-directory"),
        at("state-directory"),
        at("flag"),
        at("env"),
    );
    let config = |folder: &Path| crate::support::write_config(folder, &[], "");
    let home_config = config(&at("home/.config/storywatch"));
    let xdg_file = config(&at("xdg-config/storywatch"));
    let conf_file = config(&conf_dir);
    let env_file = config(&env_dir);
    let flag_file = config(&flag_dir);
    let show = |p: &Path| p.display().to_string();

    let mut env: Vec<(&str, &Path)> = vec![
        ("HOME", &home),
        ("XDG_CONFIG_HOME", &xdg_config),
        ("CONFIGURATION_DIRECTORY", &conf_dir),
        ("STORYWATCH_CONFIG", &env_file),
    ];
    // Config: --config, else $STORYWATCH_CONFIG, else $CONFIGURATION_DIRECTORY, else
    // $XDG_CONFIG_HOME, else ~/.config, else bundled. An explicit file keeps its state beside it.
    assert_eq!(
        resolved(&work, &env, Some(&flag_file)),
        (show(&flag_file), show(&flag_dir.join("storywatch.db")))
    );
    assert_eq!(
        resolved(&work, &env, None),
        (show(&env_file), show(&env_dir.join("storywatch.db")))
    );
    env.pop();
    // A discovered config keeps its state in the user's data folder, never beside the config.
    let user_data = home.join(".local/share/storywatch/storywatch.db");
    assert_eq!(
        resolved(&work, &env, None),
        (show(&conf_file), show(&user_data))
    );
    env.pop();
    assert_eq!(
        resolved(&work, &env, None),
        (show(&xdg_file), show(&user_data))
    );
    env.pop();
    assert_eq!(
        resolved(&work, &env, None),
        (show(&home_config), show(&user_data))
    );
    std::fs::remove_file(&home_config).unwrap();
    assert_eq!(
        resolved(&work, &env, None),
        (
            "<bundled config/storywatch.toml>".to_string(),
            show(&work.join("storywatch.db"))
        )
    );

    // State: $STATE_DIRECTORY, else $XDG_DATA_HOME/storywatch, else ~/.local/share/storywatch.
    let env: Vec<(&str, &Path)> = vec![
        ("HOME", &home),
        ("XDG_CONFIG_HOME", &xdg_config),
        ("XDG_DATA_HOME", &xdg_data),
        ("STATE_DIRECTORY", &state),
    ];
    assert_eq!(
        resolved(&work, &env, None).1,
        show(&state.join("storywatch.db"))
    );
    assert_eq!(
        resolved(&work, &env, Some(&flag_file)).1,
        show(&state.join("storywatch.db"))
    );
    assert_eq!(
        resolved(&work, &env[..3], None).1,
        show(&xdg_data.join("storywatch/storywatch.db"))
    );
    assert_eq!(resolved(&work, &env[..2], None).1, show(&user_data));
}

#[test]
fn the_user_service_and_its_user_share_one_database() {
    let server = wire_server();
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let config_home = home.join(".config");
    let folder = config_home.join("storywatch");
    std::fs::create_dir_all(&folder).unwrap();
    crate::support::write_config(&folder, &[server.url("/wire.rss")], "");
    // What `systemctl --user` gives the unit: ConfigurationDirectory=, and the home folder as
    // working directory.
    let polled = crate::support::binary(&home)
        .args(["poll", "--once"])
        .env("CONFIGURATION_DIRECTORY", &folder)
        .output()
        .unwrap();
    crate::support::success(&polled);
    assert!(
        home.join(".local/share/storywatch/storywatch.db").is_file(),
        "the database is in the user's data folder"
    );
    // The user, in some other folder, with no systemd variables.
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    let listed = crate::support::binary(&elsewhere)
        .args(["feeds", "list", "--json"])
        .env("HOME", &home)
        .output()
        .unwrap();
    let text = crate::support::success(&listed);
    assert!(
        text.contains("/wire.rss") && text.contains("\"items\":4"),
        "{text}"
    );
}

#[test]
fn user_install_follows_xdg_quotes_exec_start_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let config_home = dir.path().join("xdg config");
    std::fs::create_dir_all(&home).unwrap();
    // ExecStart must survive a path with a space and a `%` (a unit specifier otherwise).
    let bin_dir = dir.path().join("my tools 100%");
    std::fs::create_dir(&bin_dir).unwrap();
    let binary = bin_dir.join("storywatch");
    if std::fs::hard_link(env!("CARGO_BIN_EXE_storywatch"), &binary).is_err() {
        std::fs::copy(env!("CARGO_BIN_EXE_storywatch"), &binary).unwrap();
    }
    let out = std::process::Command::new(&binary)
        .args(["service", "install", "--user"])
        .env_clear()
        .env("HOME", &home)
        .env("XDG_CONFIG_HOME", &config_home)
        .current_dir(&home)
        .output()
        .unwrap();
    let text = crate::support::success(&out);
    assert!(
        text.contains("systemctl --user enable --now storywatch"),
        "{text}"
    );

    let unit_path = config_home.join("systemd/user/storywatch.service");
    let unit = std::fs::read_to_string(&unit_path).unwrap();
    let exec = format!(
        "ExecStart=\"{}\" run",
        binary.display().to_string().replace('%', "%%")
    );
    assert!(unit.lines().any(|l| l == exec), "no {exec} in:\n{unit}");
    let data = home.join(".local/share/storywatch");
    assert!(
        unit.contains(&format!("ReadWritePaths={}", data.display())),
        "{unit}"
    );
    let runtime = dir.path().join("runtime");
    std::fs::create_dir(&runtime).unwrap();
    let (ok, report) = analyze(&["--user", "verify", unit_path.to_str().unwrap()], &runtime);
    assert!(
        ok && report.trim().is_empty(),
        "installed user unit:\n{report}"
    );

    // The user's own commands find the installed config and the service's database folder.
    let config = config_home.join("storywatch/storywatch.toml");
    assert_eq!(
        resolved(
            &home,
            &[("HOME", &home), ("XDG_CONFIG_HOME", &config_home)],
            None
        ),
        (
            config.display().to_string(),
            data.join("storywatch.db").display().to_string()
        )
    );
}
