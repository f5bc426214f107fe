//! The review commands and the review page through the real binary: `items search`,
//! `items export`, `review`, `rescore`, and a real headless Chromium that marks an item with
//! the keyboard on the page `storywatch serve` serves.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use jiff::Timestamp;
use storywatch::config::FeedConfig;
use storywatch::feeds::Validators;
use storywatch::item::Item;
use storywatch::store::{FetchedPoll, MatchFilter, Review, Store};
use storywatch::story::{Verdict, VerdictKind};

use crate::support::{eventually, storywatch, success, write_config};

const STORY: &str = "US–China fentanyl cooperation";

fn item(key: &str, title: &str, summary: &str) -> Item {
    Item {
        dedup_key: key.into(),
        title: title.into(),
        summary: summary.into(),
        content: String::new(),
        link: Some(format!("https://news.example/{key}")),
        published: Some(Timestamp::from_second(1_760_000_000 + key.len() as i64).unwrap()),
        source: Some("Wire".into()),
    }
}

fn verdict(kind: VerdictKind, score: f64) -> Verdict {
    Verdict {
        verdict: kind,
        score,
        baseline: None,
        why: vec!["set up by the test".into()],
    }
}

/// A config with `[web]` on a free loopback port, and a database holding three matches and
/// one unmatched item, stored through the store API (the matcher's verdicts are given).
fn setup(dir: &Path) -> Vec<i64> {
    write_config(dir, &[], "[web]\nlisten = \"127.0.0.1:0\"\n");
    let mut store = Store::open(&dir.join("storywatch.db")).unwrap();
    store
        .sync_feeds(&[FeedConfig {
            url: "https://wire.example/feed".into(),
            interval: Duration::from_secs(1800),
            title: None,
        }])
        .unwrap();
    let feed_id = store.active_feeds().unwrap()[0].id;
    let items = vec![
        (
            item(
                "a",
                "US and China agree new curbs on fentanyl precursor chemicals",
                "Officials met in Beijing on counternarcotics cooperation.",
            ),
            verdict(VerdictKind::FollowUp, 0.9),
        ),
        (
            item(
                "bb",
                "=HYPERLINK(\"http://evil\"), \"quoted\", and\nnewline",
                "Tariff talk, fentanyl mentioned",
            ),
            verdict(VerdictKind::Related, 0.4),
        ),
        (
            item("ccc", "Sunny weekend weather forecast", "Light winds."),
            verdict(VerdictKind::FollowUp, 0.3),
        ),
        (
            item(
                "dddd",
                "Mexican cartel lab raid seizes fentanyl precursors from China",
                "Customs seized precursor chemicals.",
            ),
            verdict(VerdictKind::OffTopic, 0.1),
        ),
    ];
    let now = Timestamp::now();
    store
        .record_fetched(&FetchedPoll {
            feed_id,
            story: STORY,
            feed_title: Some("Wire"),
            validators: &Validators {
                etag: None,
                last_modified: None,
            },
            items: &items,
            more_verdicts: &[],
            now,
            next_poll_at: now,
            background_before: None,
            interval: None,
            sign: &|item| storywatch::story::neardup::Signature::of(&item.title, &item.summary),
        })
        .unwrap();
    store
        .list_matches(&MatchFilter::default())
        .unwrap()
        .iter()
        .map(|m| m.id)
        .collect()
}

fn reviews(dir: &Path) -> Vec<(String, Review)> {
    let store = Store::open(&dir.join("storywatch.db")).unwrap();
    store
        .list_matches(&MatchFilter::default())
        .unwrap()
        .into_iter()
        .map(|m| (m.title, m.review))
        .collect()
}

#[test]
fn items_search_finds_matched_and_unmatched_items() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path());
    let out = success(&storywatch(
        dir.path(),
        &[
            "--config",
            "storywatch.toml",
            "items",
            "search",
            "precursor",
            "chemicals",
        ],
        None,
    ));
    assert!(
        out.contains("Mexican cartel lab raid") && out.contains("not matched"),
        "{out}"
    );
    assert!(
        out.contains("US and China agree") && out.contains("follow-up unreviewed"),
        "{out}"
    );
    assert!(!out.contains("weather"), "{out}");
    let json = success(&storywatch(
        dir.path(),
        &[
            "--config",
            "storywatch.toml",
            "items",
            "search",
            "--json",
            "china",
            "precurs*",
        ],
        None,
    ));
    assert_eq!(json.lines().count(), 2, "{json}");
    for line in json.lines() {
        serde_json::from_str::<serde_json::Value>(line).unwrap();
    }
    let empty = storywatch(
        dir.path(),
        &["--config", "storywatch.toml", "items", "search", "\"*"],
        None,
    );
    assert!(!empty.status.success());
    assert!(String::from_utf8_lossy(&empty.stderr).contains("give some words"));
}

#[test]
fn items_export_writes_json_and_properly_quoted_csv() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path());
    let json = success(&storywatch(
        dir.path(),
        &[
            "--config",
            "storywatch.toml",
            "items",
            "export",
            "--format",
            "json",
        ],
        None,
    ));
    let rows: Vec<serde_json::Value> = serde_json::from_str(&json).unwrap();
    assert_eq!(rows.len(), 3);
    let csv = success(&storywatch(
        dir.path(),
        &[
            "--config",
            "storywatch.toml",
            "items",
            "export",
            "--format",
            "csv",
        ],
        None,
    ));
    assert!(
        csv.starts_with("id,story,published,first_seen,verdict,score,review,"),
        "{csv}"
    );
    // Quotes doubled, the field quoted because of comma and newline, and the formula defused.
    assert!(
        csv.contains("\"'=HYPERLINK(\"\"http://evil\"\"), \"\"quoted\"\", and\nnewline\""),
        "{csv}"
    );
    assert_eq!(
        csv.matches("\r\n").count(),
        4,
        "header and three records: {csv}"
    );
}

#[test]
fn review_reads_decisions_from_stdin() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path());
    // Newest first: "dddd"-less list is ccc (weather), bb, a — by published time.
    let out = success(&storywatch(
        dir.path(),
        &["--config", "storywatch.toml", "review"],
        Some("o\nx\nwhat\ns\nr\n"),
    ));
    assert!(
        out.contains("[1/3]") && out.contains("link: https://news.example/ccc"),
        "{out}"
    );
    assert!(out.contains("unknown key"), "{out}");
    assert!(
        out.contains("reviewed: 1 relevant, 1 irrelevant, 1 skipped"),
        "{out}"
    );
    let states = reviews(dir.path());
    let state = |needle: &str| states.iter().find(|(t, _)| t.contains(needle)).unwrap().1;
    assert_eq!(state("weather"), Review::Irrelevant);
    assert_eq!(state("HYPERLINK"), Review::Unreviewed);
    assert_eq!(state("US and China agree"), Review::Relevant);
    let again = success(&storywatch(
        dir.path(),
        &["--config", "storywatch.toml", "review"],
        Some("q\n"),
    ));
    assert!(
        again.contains("[1/1]") && again.contains("reviewed: 0 relevant"),
        "{again}"
    );
}

#[test]
fn rescore_dry_run_changes_nothing_and_apply_keeps_reviews() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path());
    let cfg = ["--config", "storywatch.toml"];
    // A person confirmed the weather item (wrongly): rescoring must not drop their mark.
    success(&storywatch(
        dir.path(),
        &[&cfg[..], &["items", "mark", "3", "relevant"]].concat(),
        None,
    ));
    let before = reviews(dir.path());
    let dry = success(&storywatch(
        dir.path(),
        &[&cfg[..], &["rescore", "--dry-run"]].concat(),
        None,
    ));
    assert!(
        dry.contains("dry run over 4 items") && dry.contains("nothing was changed"),
        "{dry}"
    );
    assert_eq!(reviews(dir.path()).len(), before.len());
    let applied = success(&storywatch(
        dir.path(),
        &[&cfg[..], &["rescore"]].concat(),
        None,
    ));
    assert!(applied.contains("rescored 4 items"), "{applied}");
    // The dry run and the real run report the same changes.
    let summary = |text: &str| {
        text.lines()
            .last()
            .unwrap()
            .split(": ")
            .nth(1)
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_string()
    };
    assert_eq!(summary(&dry), summary(&applied));
    let after = reviews(dir.path());
    let weather = after.iter().find(|(t, _)| t.contains("weather"));
    assert_eq!(
        weather.map(|w| w.1),
        Some(Review::Relevant),
        "reviewed match kept: {after:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// The real browser.

/// Kills a child process when the test ends, however it ends.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn require(binary: &str) -> String {
    for dir in ["/usr/bin", "/usr/local/bin", "/bin"] {
        let path = format!("{dir}/{binary}");
        if Path::new(&path).exists() {
            return path;
        }
    }
    panic!(
        "{binary} is not installed; the browser test needs Debian's chromium and chromium-driver: \
         run `apt-get update && apt-get install -y chromium chromium-driver` (tests/run does this)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_marks_an_item_with_the_keyboard() {
    let chromium = require("chromium");
    let chromedriver = require("chromedriver");
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path());

    let mut server = Command::new(env!("CARGO_BIN_EXE_storywatch"))
        .args(["--config", "storywatch.toml", "serve"])
        .current_dir(dir.path())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = server.stdout.take().unwrap();
    let _server = Reaped(server);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let url = line
        .trim()
        .strip_prefix("review page: ")
        .unwrap_or_else(|| panic!("serve printed {line:?}"))
        .to_string();

    let port = free_port();
    let _driver = Reaped(
        Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let profile = dir.path().join("chromium-profile");
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": chromium,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-quic", "--window-size=1200,900",
                format!("--user-data-dir={}", profile.display()),
            ]
        }),
    );
    let webdriver = format!("http://127.0.0.1:{port}");
    assert!(
        eventually(Duration::from_secs(20), || std::net::TcpStream::connect((
            "127.0.0.1",
            port
        ))
        .is_ok()),
        "chromedriver did not start"
    );
    let client = fantoccini::ClientBuilder::rustls()
        .unwrap()
        .capabilities(caps)
        .connect(&webdriver)
        .await
        .expect("start a chromium session through chromedriver");

    client.goto(&url).await.unwrap();
    let first = client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(fantoccini::Locator::Css("article.item.selected"))
        .await
        .expect("the script selects the first item");
    assert!(first.attr("id").await.unwrap().is_some());
    let shot = client.screenshot().await.unwrap();
    std::fs::write(dir.path().join("review-page.png"), &shot).unwrap();
    if let Some(path) = std::env::var_os("STORYWATCH_SCREENSHOT") {
        std::fs::write(path, &shot).unwrap();
    }

    // j moves to the second item (newest first: the CSV-hostile one), x marks it irrelevant.
    let body = client.find(fantoccini::Locator::Css("body")).await.unwrap();
    body.send_keys("j").await.unwrap();
    let selected = client
        .find(fantoccini::Locator::Css("article.item.selected h2"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(selected.contains("HYPERLINK"), "selected {selected:?}");
    body.send_keys("x").await.unwrap();
    let marked = eventually(Duration::from_secs(10), || {
        reviews(dir.path())
            .iter()
            .any(|(t, r)| t.contains("HYPERLINK") && *r == Review::Irrelevant)
    });
    assert!(
        marked,
        "the database shows the mark: {:?}",
        reviews(dir.path())
    );
    // The page came back after the POST-redirect with the next item selected and the mark shown.
    client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(fantoccini::Locator::Css("article.item.irrelevant"))
        .await
        .unwrap();
    let others: Vec<_> = reviews(dir.path())
        .into_iter()
        .filter(|(t, _)| !t.contains("HYPERLINK"))
        .collect();
    assert!(
        others.iter().all(|(_, r)| *r == Review::Unreviewed),
        "{others:?}"
    );
    std::fs::write(
        dir.path().join("review-page-after.png"),
        client.screenshot().await.unwrap(),
    )
    .unwrap();
    client.close().await.unwrap();
}

pub(crate) fn http_get(port: u16, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    Some(answer)
}

#[test]
fn run_serves_the_page_and_metrics_beside_the_loop_and_stops_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let feeds = crate::support::TestServer::start();
    feeds.route(
        "/wire.rss",
        crate::support::Response::ok(
            "application/rss+xml",
            std::fs::read(crate::support::fixture("wire.rss")).unwrap(),
        ),
    );
    feeds.route("/broken.rss", crate::support::Response::status(500));
    write_config(
        dir.path(),
        &[feeds.url("/wire.rss"), feeds.url("/broken.rss")],
        &format!("[web]\nlisten = \"127.0.0.1:{port}\"\n"),
    );
    let mut daemon = crate::support::Daemon::start(dir.path());
    assert!(
        eventually(Duration::from_secs(20), || {
            http_get(port, "/healthz")
                .is_some_and(|a| a.starts_with("HTTP/1.1 200") && a.ends_with("ok"))
        }),
        "no /healthz answer; log:\n{}",
        daemon.log()
    );
    // Ready once the first poll cycle has taken the feeds that were due at start.
    let mut ready = String::new();
    assert!(
        eventually(Duration::from_secs(20), || {
            ready = http_get(port, "/readyz").unwrap_or_default();
            ready.starts_with("HTTP/1.1 200")
        }),
        "{ready}"
    );
    let page = http_get(port, "/").unwrap();
    assert!(
        page.starts_with("HTTP/1.1 200") && page.contains("storywatch"),
        "{page}"
    );

    // Prometheus scrape: the first poll cycle's counters and the database's totals.
    let mut metrics = String::new();
    assert!(
        eventually(Duration::from_secs(20), || {
            metrics = http_get(port, "/metrics").unwrap_or_default();
            metrics.contains("storywatch_poll_cycle_seconds_count 1")
        }),
        "no poll cycle in /metrics:\n{metrics}"
    );
    for line in [
        "storywatch_polls_total{outcome=\"fetched\"} 1",
        "storywatch_polls_total{outcome=\"failed\"} 1",
        "storywatch_fetch_errors_total{kind=\"http_status\"} 1",
        "storywatch_new_items_total 4",
        "storywatch_items 4",
        "storywatch_feeds 2",
        "storywatch_feeds_failing 1",
        "# TYPE storywatch_poll_cycle_seconds histogram",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "missing {line}:\n{metrics}"
        );
    }
    assert!(metrics.contains("text/plain; version=0.0.4"), "{metrics}");
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("storywatch_matches{verdict=\"follow_up\"} ")),
        "{metrics}"
    );

    daemon.signal("TERM");
    let status = daemon
        .wait_exit(Duration::from_secs(10))
        .expect("daemon exits");
    assert!(status.success(), "{status:?}\n{}", daemon.log());
    assert!(
        http_get(port, "/healthz").is_none(),
        "the page stopped with the daemon"
    );
}
