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
    server.route(
        "/wire.rss",
        Response::ok(
            "application/rss+xml",
            std::fs::read(fixture("wire.rss")).unwrap(),
        ),
    );
    server.route("/hang.rss", Response::status(200).behave(Behaviour::Hang));
    server
}

#[test]
fn sigterm_mid_poll_exits_cleanly_with_the_database_intact() {
    let server = rss_server();
    let dir = tempfile::tempdir().unwrap();
    // The hanging feed keeps a poll in flight (its timeout is 5 s) when SIGTERM arrives.
    write_config(
        dir.path(),
        &[server.url("/wire.rss"), server.url("/hang.rss")],
        "",
    );
    let mut daemon = Daemon::start(dir.path());
    assert!(
        eventually(Duration::from_secs(15), || item_count(dir.path()) == 4),
        "no items stored:\n{}",
        daemon.log()
    );
    assert!(eventually(Duration::from_secs(5), || !server
        .requests_for("/hang.rss")
        .is_empty()));

    daemon.signal("TERM");
    let status = daemon
        .wait_exit(Duration::from_secs(3))
        .expect("daemon did not stop within 3 s of SIGTERM");
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
