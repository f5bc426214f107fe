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
    setup_with(dir, &[])
}

/// [`setup`] with further stories' verdicts for the same items (see `FetchedPoll`).
fn setup_with(dir: &Path, more: &[(String, Vec<Verdict>)]) -> Vec<i64> {
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
            more_verdicts: more,
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

/// The second story of [`two_stories`].
const SECOND: &str = "Second story";

/// [`setup`] with the config's one story turned into two `[[stories]]`: the second matches
/// the first two items as follow-ups and passes over the rest.
fn two_stories(dir: &Path) {
    let follow = || verdict(VerdictKind::FollowUp, 0.8);
    let off = || verdict(VerdictKind::OffTopic, 0.0);
    setup_with(
        dir,
        &[(SECOND.to_string(), vec![follow(), follow(), off(), off()])],
    );
    into_stories(&dir.join("storywatch.toml"), [STORY, SECOND]);
}

/// Turns the test config's `[story]` into two `[[stories]]` on the same seeds.
fn into_stories(config: &Path, names: [&str; 2]) {
    let text = std::fs::read_to_string(config).unwrap();
    let seeds = format!(
        "seeds = {:?}\n",
        crate::support::seeds_dir().display().to_string()
    );
    let one = format!("[story]\nname = \"{STORY}\"\n{seeds}");
    assert!(text.contains(&one), "{text}");
    let [first, second] = names;
    let two = format!(
        "[[stories]]\nname = \"{first}\"\n{seeds}\n[[stories]]\nname = \"{second}\"\n{seeds}"
    );
    std::fs::write(config, text.replace(&one, &two)).unwrap();
}

fn review_in(dir: &Path, story: &str) -> Vec<(String, Review)> {
    let store = Store::open(&dir.join("storywatch.db")).unwrap();
    store
        .list_matches(&MatchFilter {
            story: Some(story.into()),
            ..MatchFilter::default()
        })
        .unwrap()
        .into_iter()
        .map(|m| (m.title, m.review))
        .collect()
}

#[test]
fn review_per_story_marks_the_shown_item_story_pair_only() {
    let dir = tempfile::tempdir().unwrap();
    two_stories(dir.path());
    let cfg = ["--config", "storywatch.toml"];
    // The second story's queue: its two follow-ups, newest first (the CSV-hostile one).
    let out = success(&storywatch(
        dir.path(),
        &[&cfg[..], &["review", "--story", SECOND]].concat(),
        Some("x\n"),
    ));
    assert!(out.contains("[1/2]") && out.contains("HYPERLINK"), "{out}");
    assert!(out.contains(&format!("story: {SECOND}")), "{out}");
    let state = |story: &str, needle: &str| {
        review_in(dir.path(), story)
            .into_iter()
            .find(|(t, _)| t.contains(needle))
            .map(|(_, r)| r)
    };
    assert_eq!(state(SECOND, "HYPERLINK"), Some(Review::Irrelevant));
    assert_eq!(
        state(STORY, "HYPERLINK"),
        Some(Review::Unreviewed),
        "the other story's match of the same item is not marked"
    );
    // Without --story every (item, story) pair is queued, each shown with its story.
    let out = success(&storywatch(
        dir.path(),
        &[&cfg[..], &["review"]].concat(),
        Some("q\n"),
    ));
    assert!(out.contains("[1/4]"), "3 + 2 matches, one marked: {out}");
    let unknown = storywatch(
        dir.path(),
        &[&cfg[..], &["review", "--story", "nope"]].concat(),
        None,
    );
    assert!(!unknown.status.success());
    let err = String::from_utf8_lossy(&unknown.stderr);
    assert!(
        err.contains("no story named \"nope\"") && err.contains(SECOND),
        "{err}"
    );
}

#[test]
fn items_search_shows_each_story_match_and_filters_by_story() {
    let dir = tempfile::tempdir().unwrap();
    two_stories(dir.path());
    let cfg = ["--config", "storywatch.toml"];
    let all = success(&storywatch(
        dir.path(),
        &[&cfg[..], &["items", "search", "precursor", "chemicals"]].concat(),
        None,
    ));
    let lines: Vec<&str> = all.lines().filter(|l| l.contains("US and China")).collect();
    assert_eq!(lines.len(), 2, "one line per story: {all}");
    assert!(
        lines.iter().any(|l| l.contains(&format!("[{SECOND}]")))
            && lines.iter().any(|l| l.contains(&format!("[{STORY}]"))),
        "{all}"
    );
    let second = success(&storywatch(
        dir.path(),
        &[
            &cfg[..],
            &[
                "items",
                "search",
                "--story",
                SECOND,
                "precursor",
                "chemicals",
            ],
        ]
        .concat(),
        None,
    ));
    assert_eq!(second.lines().count(), 2, "{second}");
    assert!(
        second.contains(&format!("follow-up unreviewed [{SECOND}]")),
        "{second}"
    );
    assert!(second.contains("Mexican cartel") && second.contains("not matched"));
}

#[test]
fn items_list_names_the_stories_and_keeps_feed_text_on_one_line() {
    let dir = tempfile::tempdir().unwrap();
    two_stories(dir.path());
    let cfg = ["--config", "storywatch.toml"];
    let all = success(&storywatch(
        dir.path(),
        &[&cfg[..], &["items", "list"]].concat(),
        None,
    ));
    // Three matches of the first story, two of the second; the title's newline is a space.
    assert_eq!(all.lines().count(), 5, "{all}");
    assert!(all.contains("and newline"), "{all}");
    assert_eq!(all.matches(&format!("[{SECOND}]")).count(), 2, "{all}");
    let second = success(&storywatch(
        dir.path(),
        &[&cfg[..], &["items", "list", "--story", SECOND]].concat(),
        None,
    ));
    assert_eq!(second.lines().count(), 2, "{second}");
    let exported = success(&storywatch(
        dir.path(),
        &[
            &cfg[..],
            &["items", "export", "--format", "json", "--story", SECOND],
        ]
        .concat(),
        None,
    ));
    let rows: Vec<serde_json::Value> = serde_json::from_str(&exported).unwrap();
    assert_eq!(rows.len(), 2, "{exported}");
    assert!(rows.iter().all(|r| r["story"] == SECOND), "{exported}");
    let shown = success(&storywatch(
        dir.path(),
        &[&cfg[..], &["items", "show", "2"]].concat(),
        None,
    ));
    assert!(
        shown.starts_with("=HYPERLINK") && shown.contains("and newline"),
        "{shown}"
    );
    // Both stories' verdicts: one in full, the other on an `also:` line.
    let line = |start: &str| {
        shown
            .lines()
            .find(|l| l.starts_with(start))
            .unwrap_or_default()
            .to_string()
    };
    assert!(line("  story:").contains(SECOND), "{shown}");
    assert!(
        line("  also:").contains(&format!("{STORY}: related (score 0.400), unreviewed")),
        "{shown}"
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

/// Starts `storywatch serve` in `dir`; the process and the page's URL.
fn serve(dir: &Path) -> (Reaped, String) {
    let mut server = Command::new(env!("CARGO_BIN_EXE_storywatch"))
        .args(["--config", "storywatch.toml", "serve"])
        .current_dir(dir)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = server.stdout.take().unwrap();
    let server = Reaped(server);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let url = line
        .trim()
        .strip_prefix("review page: ")
        .unwrap_or_else(|| panic!("serve printed {line:?}"))
        .to_string();
    (server, url)
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

    let (_server, url) = serve(dir.path());

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
    // Screenshots go to the build's output, never into the repository.
    let output = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("test-output");
    std::fs::create_dir_all(&output).unwrap();
    std::fs::write(
        output.join("review-page.png"),
        client.screenshot().await.unwrap(),
    )
    .unwrap();

    // Newest first: the weather item, the CSV-hostile one, the US–China one.
    // j moves to the second item, x marks it irrelevant.
    press(&client, "j").await;
    assert!(selected(&client).await.contains("HYPERLINK"));
    press(&client, "x").await;
    wait_for(dir.path(), "HYPERLINK", Review::Irrelevant);
    // The page came back after the POST-redirect with the next item selected and the mark shown.
    let shown = wait_selected(&client, "US and China").await;
    assert!(shown, "after x the next item is selected");
    client
        .find(fantoccini::Locator::Css("article.item.irrelevant"))
        .await
        .expect("the mark is shown");
    // k moves back up; u undoes its mark and stays on it.
    press(&client, "k").await;
    assert!(selected(&client).await.contains("HYPERLINK"));
    press(&client, "u").await;
    wait_for(dir.path(), "HYPERLINK", Review::Unreviewed);
    assert!(
        eventually_async(|| async {
            client
                .find_all(fantoccini::Locator::Css("article.item.irrelevant"))
                .await
                .is_ok_and(|found| found.is_empty())
        })
        .await,
        "the page shows the undo"
    );
    assert!(
        wait_selected(&client, "HYPERLINK").await,
        "an undo stays put"
    );
    // k to the first item, r marks it relevant.
    press(&client, "k").await;
    assert!(selected(&client).await.contains("weather"));
    press(&client, "r").await;
    wait_for(dir.path(), "weather", Review::Relevant);
    assert!(wait_selected(&client, "HYPERLINK").await);
    let states = reviews(dir.path());
    let state = |needle: &str| states.iter().find(|(t, _)| t.contains(needle)).unwrap().1;
    assert_eq!(state("HYPERLINK"), Review::Unreviewed, "{states:?}");
    assert_eq!(state("US and China"), Review::Unreviewed, "{states:?}");
    std::fs::write(
        output.join("review-page-after.png"),
        client.screenshot().await.unwrap(),
    )
    .unwrap();
    client.close().await.unwrap();
}

/// Presses a key on the page.
async fn press(client: &fantoccini::Client, key: &str) {
    client
        .find(fantoccini::Locator::Css("body"))
        .await
        .unwrap()
        .send_keys(key)
        .await
        .unwrap();
}

/// The selected item's headline.
async fn selected(client: &fantoccini::Client) -> String {
    client
        .find(fantoccini::Locator::Css("article.item.selected h2"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Whether the page (reloaded after a mark) comes to select the item whose headline holds
/// `needle`.
async fn wait_selected(client: &fantoccini::Client, needle: &str) -> bool {
    eventually_async(|| async {
        match client
            .find(fantoccini::Locator::Css("article.item.selected h2"))
            .await
        {
            Ok(h2) => h2.text().await.is_ok_and(|t| t.contains(needle)),
            Err(_) => false,
        }
    })
    .await
}

/// Polls an async check for up to ten seconds.
async fn eventually_async<F: std::future::Future<Output = bool>>(
    mut check: impl FnMut() -> F,
) -> bool {
    for _ in 0..100 {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// Waits until the database shows the item whose headline holds `needle` in `state`.
fn wait_for(dir: &Path, needle: &str, state: Review) {
    let done = eventually(Duration::from_secs(10), || {
        reviews(dir)
            .iter()
            .any(|(t, r)| t.contains(needle) && *r == state)
    });
    assert!(done, "{needle} is not {state:?}: {:?}", reviews(dir));
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
    feeds.route("/wire.rss", crate::support::wire_feed());
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

#[test]
fn run_shows_the_reloaded_stories_on_the_page_after_sighup() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let feeds = crate::support::TestServer::start();
    feeds.route("/wire.rss", crate::support::wire_feed());
    let config = write_config(
        dir.path(),
        &[feeds.url("/wire.rss")],
        &format!("[web]\nlisten = \"127.0.0.1:{port}\"\n"),
    );
    let mut daemon = crate::support::Daemon::start(dir.path());
    let mut page = String::new();
    assert!(
        eventually(Duration::from_secs(20), || {
            page = http_get(port, "/story").unwrap_or_default();
            page.starts_with("HTTP/1.1 200") && page.contains(STORY)
        }),
        "{page}\nlog:\n{}",
        daemon.log()
    );
    // The one story becomes two: the page must show both without a restart.
    into_stories(&config, ["Renamed story", "Second story"]);
    daemon.signal("HUP");
    assert!(
        eventually(Duration::from_secs(20), || {
            page = http_get(port, "/story").unwrap_or_default();
            page.contains("Renamed story") && page.contains("Second story")
        }),
        "the page still shows the old story:\n{page}\nlog:\n{}",
        daemon.log()
    );
    assert!(!page.contains(STORY), "{page}");
    let second = http_get(port, "/story?name=Second+story").unwrap();
    assert!(second.starts_with("HTTP/1.1 200"), "{second}");
    let list = http_get(port, "/").unwrap();
    assert!(
        list.contains("<option value=\"Second story\">"),
        "the list filters by the new stories: {list}"
    );
    daemon.signal("TERM");
    assert!(daemon.wait_exit(Duration::from_secs(10)).is_some());
}

#[test]
fn serve_shows_the_reloaded_stories_after_sighup() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path());
    let (server, url) = serve(dir.path());
    let port: u16 = url
        .trim_end_matches('/')
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {url}"));
    let page = http_get(port, "/story").unwrap();
    assert!(page.contains(STORY), "{page}");
    into_stories(
        &dir.path().join("storywatch.toml"),
        ["Renamed story", SECOND],
    );
    let status = Command::new("kill")
        .arg("-HUP")
        .arg(server.0.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    let mut page = String::new();
    assert!(
        eventually(Duration::from_secs(20), || {
            page = http_get(port, "/story").unwrap_or_default();
            page.contains("Renamed story") && page.contains(SECOND)
        }),
        "{page}"
    );
}
