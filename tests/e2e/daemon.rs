//! The daemon as a process: signals, the instance lock, reload.

use std::time::Duration;

use crate::support::{
    Behaviour, Daemon, Response, TestServer, eventually, fixture, storywatch, write_config,
};

fn item_count(dir: &std::path::Path) -> i64 {
    let Ok(conn) = rusqlite::Connection::open(dir.join("storywatch.db")) else {
        return 0;
    };
    conn.query_row("SELECT COUNT(*) FROM items", [], |row| row.get(0))
        .unwrap_or(0)
}

fn rss_server() -> TestServer {
    let server = TestServer::start();
    server.route("/wire.rss", crate::support::wire_feed());
    server.route("/hang.rss", Response::status(200).behave(Behaviour::Hang));
    server
}

/// Sends `signal` while one feed's poll hangs and another's is stored, then checks the daemon
/// abandoned the hanging poll instead of waiting for its timeout, exited 0, and left a sound
/// database holding everything the finished poll stored.
fn stop_mid_poll(signal: &str) {
    let server = rss_server();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &[server.url("/wire.rss"), server.url("/hang.rss")],
        "",
    );
    // A minute-long timeout: a daemon that waited for the hanging poll would miss the bound.
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace("timeout = \"5s\"", "timeout = \"60s\""),
    )
    .unwrap();
    let mut daemon = Daemon::start(dir.path());
    assert!(
        eventually(Duration::from_secs(15), || item_count(dir.path()) == 4),
        "no items stored:\n{}",
        daemon.log()
    );
    assert!(eventually(Duration::from_secs(5), || !server
        .requests_for("/hang.rss")
        .is_empty()));

    daemon.signal(signal);
    let status = daemon
        .wait_exit(Duration::from_secs(5))
        .unwrap_or_else(|| panic!("daemon did not stop within 5 s of SIG{signal}"));
    assert!(status.success(), "exit status {status}\n{}", daemon.log());
    assert!(
        daemon.log().contains("storywatch stopped"),
        "{}",
        daemon.log()
    );

    let conn = rusqlite::Connection::open(dir.path().join("storywatch.db")).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    assert_eq!(item_count(dir.path()), 4);
    let attempt = |path: &str| -> (Option<i64>, Option<i64>) {
        conn.query_row(
            "SELECT last_attempt_at, last_success_at FROM feeds WHERE url = ?1",
            [server.url(path)],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .unwrap()
    };
    assert!(attempt("/wire.rss").1.is_some(), "finished poll recorded");
    // Abandoned, not failed: the hanging feed's poll wrote nothing, so it is simply due again.
    assert_eq!(attempt("/hang.rss"), (None, None));
}

#[test]
fn sigterm_mid_poll_abandons_the_poll_and_exits_cleanly_with_the_database_intact() {
    stop_mid_poll("TERM");
}

#[test]
fn sigint_mid_poll_abandons_the_poll_and_exits_cleanly_with_the_database_intact() {
    stop_mid_poll("INT");
}

#[test]
fn a_second_daemon_on_the_same_database_refuses_to_start() {
    let server = rss_server();
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), &[server.url("/wire.rss")], "");
    let daemon = Daemon::start(dir.path());
    assert!(
        eventually(Duration::from_secs(15), || item_count(dir.path()) == 4),
        "{}",
        daemon.log()
    );

    let second = storywatch(dir.path(), &["--config", "storywatch.toml", "run"], None);
    assert!(!second.status.success());
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains("another storywatch is already running"),
        "{stderr}"
    );

    // `status` sees the running daemon.
    let status = storywatch(dir.path(), &["--config", "storywatch.toml", "status"], None);
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(
        text.contains("running (database lock held)") && text.contains("1 configured, 1 healthy"),
        "{text}"
    );
}

#[test]
fn sighup_rejects_a_bad_config_and_applies_a_good_one() {
    let server = rss_server();
    server.route(
        "/desk.atom",
        Response::ok(
            "application/atom+xml",
            std::fs::read(fixture("desk.atom")).unwrap(),
        ),
    );
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &[server.url("/wire.rss")], "");
    let mut daemon = Daemon::start(dir.path());
    assert!(
        eventually(Duration::from_secs(15), || item_count(dir.path()) == 4),
        "{}",
        daemon.log()
    );

    let good = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("{good}\n[fetch2]\n")).unwrap();
    daemon.signal("HUP");
    assert!(
        eventually(Duration::from_secs(5), || daemon
            .log()
            .contains("reload rejected")),
        "{}",
        daemon.log()
    );
    assert!(
        daemon.log().contains("fetch2"),
        "the rejection names the problem:\n{}",
        daemon.log()
    );
    assert!(
        daemon.child.try_wait().unwrap().is_none(),
        "daemon died on a bad reload"
    );

    write_config(
        dir.path(),
        &[server.url("/wire.rss"), server.url("/desk.atom")],
        "",
    );
    daemon.signal("HUP");
    assert!(
        eventually(Duration::from_secs(10), || item_count(dir.path()) == 7),
        "new feed not polled after reload:\n{}",
        daemon.log()
    );
    daemon.signal("TERM");
    assert!(
        daemon
            .wait_exit(Duration::from_secs(3))
            .is_some_and(|s| s.success())
    );
}

#[test]
fn json_logs_are_one_object_per_line() {
    let server = rss_server();
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), &[server.url("/wire.rss")], "");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_storywatch"))
        .args([
            "--config",
            "storywatch.toml",
            "--log-format",
            "json",
            "poll",
            "--once",
        ])
        .current_dir(dir.path())
        .env("RUST_LOG", "storywatch=info")
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<serde_json::Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let polled = lines
        .iter()
        .find(|l| l["fields"]["message"] == "polled")
        .unwrap_or_else(|| panic!("{stderr}"));
    assert_eq!(polled["level"], "INFO");
    assert_eq!(polled["fields"]["new"], 4);
    assert!(
        polled["span"]["feed"]
            .as_str()
            .is_some_and(|f| f.ends_with("/wire.rss")),
        "{polled}"
    );
}

#[test]
fn run_on_the_bundled_defaults_starts_and_stops_cleanly() {
    // The README's first command, without `--config`: the compiled-in config, feeds and seeds,
    // with the database and digests folder created in the working directory. The bundled feeds
    // are on the internet, which tests never reach: their polls fail and are recorded, and the
    // daemon keeps running.
    let dir = tempfile::tempdir().unwrap();
    let log = std::fs::File::create(dir.path().join("daemon.log")).unwrap();
    let mut child = crate::support::binary(dir.path())
        .args(["--log-format", "text", "run"])
        .env("RUST_LOG", "storywatch=info")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let read_log = || std::fs::read_to_string(dir.path().join("daemon.log")).unwrap_or_default();
    assert!(
        eventually(Duration::from_secs(20), || dir
            .path()
            .join("storywatch.db")
            .exists()
            && read_log().contains("storywatch running")),
        "{}",
        read_log()
    );
    let feeds = storywatch(dir.path(), &["feeds", "list", "--json"], None);
    assert!(feeds.status.success(), "{feeds:?}");
    assert!(
        String::from_utf8_lossy(&feeds.stdout).lines().count() >= 10,
        "the bundled feed list is in the database"
    );
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no exit within 10 s of SIGTERM:\n{}",
            read_log()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "{exit}\n{}", read_log());
}

fn files_in(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn status_only_looks_it_never_creates_or_changes_the_database() {
    let server = rss_server();
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), &[server.url("/wire.rss")], "");
    let before = files_in(dir.path());
    let status = storywatch(dir.path(), &["--config", "storywatch.toml", "status"], None);
    assert!(!status.status.success());
    let stderr = String::from_utf8_lossy(&status.stderr);
    assert!(
        stderr.contains("no database at") && stderr.contains("storywatch.db"),
        "{stderr}"
    );
    assert_eq!(files_in(dir.path()), before, "status created a file");

    let poll = storywatch(
        dir.path(),
        &["--config", "storywatch.toml", "poll", "--once"],
        None,
    );
    crate::support::success(&poll);
    // A feed added to the config since is not written into the database by `status`.
    write_config(
        dir.path(),
        &[server.url("/wire.rss"), server.url("/hang.rss")],
        "",
    );
    let db = dir.path().join("storywatch.db");
    let files = files_in(dir.path());
    let bytes = std::fs::read(&db).unwrap();
    let status = storywatch(dir.path(), &["--config", "storywatch.toml", "status"], None);
    let text = crate::support::success(&status);
    assert!(
        text.contains("not running")
            && text.contains("2 configured, 1 healthy, 0 failing, 0 disabled, 1 never polled"),
        "{text}"
    );
    assert_eq!(files_in(dir.path()), files, "status created a file");
    assert_eq!(
        std::fs::read(&db).unwrap(),
        bytes,
        "status wrote the database"
    );
    // `check` and `feeds export` only look too.
    for command in [&["check"][..], &["feeds", "export"]] {
        let args: Vec<&str> = ["--config", "storywatch.toml"]
            .into_iter()
            .chain(command.iter().copied())
            .collect();
        crate::support::success(&storywatch(dir.path(), &args, None));
        assert_eq!(files_in(dir.path()), files, "{command:?} created a file");
        assert_eq!(
            std::fs::read(&db).unwrap(),
            bytes,
            "{command:?} wrote the database"
        );
    }
    // A database of an older schema is the daemon's to upgrade: `check` says so and goes on.
    let version = |conn: &rusqlite::Connection| -> i64 {
        conn.query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap()
    };
    let older = {
        let conn = rusqlite::Connection::open(&db).unwrap();
        let older = version(&conn) - 1;
        conn.pragma_update(None, "user_version", older).unwrap();
        older
    };
    let check = storywatch(dir.path(), &["--config", "storywatch.toml", "check"], None);
    crate::support::success(&check);
    let stderr = String::from_utf8_lossy(&check.stderr);
    assert!(stderr.contains("older than this storywatch"), "{stderr}");
    let conn = rusqlite::Connection::open(&db).unwrap();
    assert_eq!(version(&conn), older, "check migrated the database");
}

/// `poll --once` at info level with stderr to a file, optionally with `$JOURNAL_STREAM` and
/// extra arguments; returns the log.
fn poll_log(dir: &std::path::Path, journal_stream: Option<&str>, args: &[&str]) -> String {
    let log = dir.join(format!("poll-{}.log", files_in(dir).len()));
    let mut command = crate::support::binary(dir);
    command
        .args(["--config", "storywatch.toml"])
        .args(args)
        .args(["poll", "--once"])
        .env("RUST_LOG", "storywatch=info")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap());
    if let Some(stream) = journal_stream {
        command.env("JOURNAL_STREAM", stream);
    }
    assert!(command.status().unwrap().success());
    std::fs::read_to_string(&log).unwrap()
}

#[test]
fn text_logs_off_a_terminal_have_no_colour_codes() {
    let server = rss_server();
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), &[server.url("/wire.rss")], "");
    for args in [&[][..], &["--log-format", "text"][..]] {
        let log = poll_log(dir.path(), None, args);
        assert!(log.contains("polled"), "{log}");
        assert!(!log.contains('\u{1b}'), "escape codes in a file: {log:?}");
        assert!(log.contains(" INFO "), "{log}");
    }
}

#[test]
fn under_the_journal_logs_carry_level_prefixes_and_no_timestamps() {
    use std::os::unix::fs::MetadataExt;
    let server = rss_server();
    let dir = tempfile::tempdir().unwrap();
    write_config(
        dir.path(),
        &[server.url("/wire.rss"), server.url("/missing.rss")],
        "",
    );
    // systemd names the stream it connected as device:inode; here that stream is a file.
    let log = dir.path().join("journal.log");
    let file = std::fs::File::create(&log).unwrap();
    let meta = file.metadata().unwrap();
    let stream = format!("{}:{}", meta.dev(), meta.ino());
    let status = crate::support::binary(dir.path())
        .args(["--config", "storywatch.toml", "poll", "--once"])
        .env("RUST_LOG", "storywatch=info")
        .env("JOURNAL_STREAM", &stream)
        .stdout(std::process::Stdio::null())
        .stderr(file)
        .status()
        .unwrap();
    assert!(status.success());
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("<6>") && l.contains("polled")),
        "{text}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("<4>") && l.contains("missing.rss")),
        "the failing feed's warning maps to priority 4:\n{text}"
    );
    for line in &lines {
        let rest = line.split_once('>').map_or("", |(_, r)| r);
        assert!(
            line.starts_with('<') && !rest.starts_with(|c: char| c.is_ascii_digit()),
            "a prefix and no timestamp: {line}"
        );
        assert!(
            !line.contains(" INFO ") && !line.contains('\u{1b}'),
            "{line}"
        );
    }

    // A JOURNAL_STREAM inherited by a process whose stderr goes elsewhere is ignored.
    let log = poll_log(dir.path(), Some("1:1"), &[]);
    assert!(log.contains(" INFO ") && !log.contains("<6>"), "{log}");
}

#[test]
fn metrics_count_digest_deliveries_by_channel_and_outcome() {
    let server = rss_server();
    server.route("/hook", Response::status(500));
    let dir = tempfile::tempdir().unwrap();
    let port = crate::web::free_port();
    write_config(
        dir.path(),
        &[server.url("/wire.rss")],
        &format!(
            "{}[web]\nlisten = \"127.0.0.1:{port}\"\n",
            crate::digest::webhook_notify("hook", &server.url("/hook"), "json", "")
        ),
    );
    crate::digest::set_digest(
        dir.path(),
        "every = \"2s\"\ntimezone = \"UTC\"\nretry = \"1s\"",
    );
    let mut daemon = Daemon::start(dir.path());
    // A real digest: the file channel delivers it, the webhook's server answers 500.
    let wanted = [
        "storywatch_delivery_attempts_total{channel=\"file\",outcome=\"delivered\"} ",
        "storywatch_delivery_attempts_total{channel=\"hook\",outcome=\"failed\"} ",
        "storywatch_deliveries{channel=\"file\",state=\"delivered\"} ",
    ];
    let mut metrics = String::new();
    assert!(
        eventually(Duration::from_secs(30), || {
            metrics = crate::web::http_get(port, "/metrics").unwrap_or_default();
            wanted.iter().all(|prefix| {
                metrics.lines().any(|l| {
                    l.strip_prefix(prefix)
                        .and_then(|n| n.parse::<u64>().ok())
                        .is_some_and(|n| n >= 1)
                })
            })
        }),
        "deliveries not counted in /metrics:\n{metrics}\nlog:\n{}",
        daemon.log()
    );
    assert!(
        !crate::support::digest_files(dir.path()).is_empty(),
        "the file channel really wrote the digest"
    );
    assert!(
        !server.requests_for("/hook").is_empty(),
        "the webhook was really called"
    );
    daemon.signal("TERM");
    assert!(
        daemon
            .wait_exit(Duration::from_secs(10))
            .is_some_and(|s| s.success())
    );
}
