//! Scheduling politeness with the real binary against a local server that rate-limits, goes
//! away, sends cache hints and counts concurrent requests: 410 disables, Retry-After /
//! Cache-Control / Expires / `<ttl>` delay the next poll, the interval adapts to the publishing
//! rate, per-host and global limits hold, and the first poll's backlog stays out of the digest.

use std::path::Path;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use storywatch::store::{FeedStatus, MatchFilter, Store};

use crate::support::{Behaviour, Response, TestServer, fixture, storywatch, success, write_config};

const RSS: &str = "application/rss+xml";

/// A config with `urls`, its `[fetch]` section extended by `fetch` (replacing the test default
/// `backlog_max_age = "off"` when `fetch` sets its own).
fn config(dir: &Path, urls: &[String], fetch: &str) {
    let path = write_config(dir, urls, "");
    let text = std::fs::read_to_string(&path).unwrap();
    let fetch = if fetch.contains("backlog_max_age") {
        fetch.to_string()
    } else {
        format!("backlog_max_age = \"off\"\n{fetch}")
    };
    let mut text = text.replacen("backlog_max_age = \"off\"\n", &fetch, 1);
    if fetch.starts_with("timeout") || fetch.contains("\ntimeout") {
        text = text.replacen("timeout = \"5s\"\n", "", 1);
    }
    std::fs::write(&path, text).unwrap();
}

fn run(dir: &Path, args: &[&str]) -> String {
    let mut full = vec!["--config", "storywatch.toml"];
    full.extend_from_slice(args);
    success(&storywatch(dir, &full, None))
}

/// `poll --once` where every feed fails: exit code 3, and its report.
fn all_failed_poll(dir: &Path) -> String {
    let out = storywatch(
        dir,
        &["--config", "storywatch.toml", "poll", "--once"],
        None,
    );
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn statuses(dir: &Path) -> Vec<FeedStatus> {
    Store::open(&dir.join("storywatch.db"))
        .unwrap()
        .feed_statuses()
        .unwrap()
}

fn status(dir: &Path, url: &str) -> FeedStatus {
    statuses(dir)
        .into_iter()
        .find(|s| s.config_url == url)
        .unwrap_or_else(|| panic!("{url} not listed"))
}

/// Seconds from `since` until the feed is next due.
fn wait_secs(dir: &Path, url: &str, since: Timestamp) -> i64 {
    status(dir, url).next_poll_at.unwrap().as_second() - since.as_second()
}

/// An RSS body with one item per date (newest first), optionally with `<ttl>` minutes.
fn rss(dates: &[Timestamp], ttl: Option<u32>) -> String {
    let mut body = String::from("<rss version=\"2.0\"><channel><title>Gen</title>");
    if let Some(ttl) = ttl {
        body.push_str(&format!("<ttl>{ttl}</ttl>"));
    }
    for (n, date) in dates.iter().enumerate() {
        body.push_str(&format!(
            "<item><title>Weather note {n}</title><guid>g{n}</guid><pubDate>{}</pubDate></item>",
            date.strftime("%a, %d %b %Y %H:%M:%S +0000")
        ));
    }
    body.push_str("</channel></rss>");
    body
}

fn every(count: i64, gap: SignedDuration) -> Vec<Timestamp> {
    let now = Timestamp::now();
    (0..count).map(|n| now - gap * n as i32).collect()
}

#[test]
fn gone_disables_the_feed_until_enabled_or_its_entry_changes() {
    let server = TestServer::start();
    server.route("/gone", Response::status(410));
    server.route("/ok", crate::support::wire_feed());
    let (gone, ok) = (server.url("/gone"), server.url("/ok"));
    let dir = tempfile::tempdir().unwrap();
    config(dir.path(), &[gone.clone(), ok.clone()], "");

    let first = run(dir.path(), &["poll", "--once"]);
    assert!(first.contains("FAILED") && first.contains("410"), "{first}");
    let list = run(dir.path(), &["feeds", "list"]);
    assert!(list.contains("DISABLED: 410 Gone"), "{list}");
    assert!(list.contains(&format!("feeds enable {gone}")), "{list}");
    // `status` and the digest's feed-health line call it disabled, not failing.
    let state = run(dir.path(), &["status"]);
    assert!(
        state.contains("1 healthy, 0 failing, 1 disabled"),
        "{state}"
    );
    assert!(
        state.contains(&format!("disabled:  {gone} (410 Gone")),
        "{state}"
    );
    let digest = run(dir.path(), &["digest", "--dry-run"]);
    assert!(
        digest.contains(&format!("Feed health: 1 disabled — {gone} (410 Gone")),
        "{digest}"
    );

    // Not polled again, the others are; the report says why.
    let second = run(dir.path(), &["poll", "--once"]);
    assert!(second.contains("polled 1 feeds"), "{second}");
    assert!(second.contains("; 1 skipped"), "{second}");
    assert!(
        second.contains(&format!("skipped  {gone}  disabled: 410 Gone at ")),
        "{second}"
    );
    assert_eq!(server.requests_for("/gone").len(), 1);
    assert_eq!(server.requests_for("/ok").len(), 2);

    // `feeds enable` brings it back.
    server.route(
        "/gone",
        Response::ok(RSS, rss(&every(2, SignedDuration::from_hours(1)), None)),
    );
    let enabled = run(dir.path(), &["feeds", "enable", &gone]);
    assert!(enabled.contains("enabled"), "{enabled}");
    run(dir.path(), &["poll", "--once"]);
    assert_eq!(server.requests_for("/gone").len(), 2);
    assert!(status(dir.path(), &gone).disabled_reason.is_none());

    // Gone again; a changed config entry (another interval) re-enables it too.
    server.route("/gone", Response::status(410));
    run(dir.path(), &["poll", "--once"]);
    assert!(status(dir.path(), &gone).disabled_reason.is_some());
    let path = dir.path().join("storywatch.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let entry = format!("url = {gone:?}\ninterval = \"30m\"");
    assert!(text.contains(&entry));
    std::fs::write(
        &path,
        text.replace(&entry, &format!("url = {gone:?}\ninterval = \"2h\"")),
    )
    .unwrap();
    run(dir.path(), &["poll", "--once"]);
    assert_eq!(server.requests_for("/gone").len(), 4);

    let missing = storywatch(
        dir.path(),
        &[
            "--config",
            "storywatch.toml",
            "feeds",
            "enable",
            "https://nowhere.example/",
        ],
        None,
    );
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("feeds list"));
}

#[test]
fn rate_limits_back_off_and_honour_retry_after() {
    let server = TestServer::start();
    let in_3h = (Timestamp::now() + SignedDuration::from_hours(3))
        .strftime("%a, %d %b %Y %H:%M:%S GMT")
        .to_string();
    server.route("/429", Response::status(429).header("Retry-After", "7200"));
    server.route("/503", Response::status(503).header("Retry-After", &in_3h));
    server.route("/503bare", Response::status(503));
    let urls: Vec<String> = ["/429", "/503", "/503bare"]
        .iter()
        .map(|p| server.url(p))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    config(dir.path(), &urls, "");
    let before = Timestamp::now();
    let out = all_failed_poll(dir.path());
    assert!(out.contains("asked to retry after 7200s"), "{out}");
    let limited = wait_secs(dir.path(), &urls[0], before);
    assert!((7200..7200 + 900 + 5).contains(&limited), "{limited}");
    let busy = wait_secs(dir.path(), &urls[1], before);
    assert!((3 * 3600 - 5..3 * 3600 + 900 + 5).contains(&busy), "{busy}");
    // Without Retry-After: exponential backoff from the 30-minute interval (2×, then 4×).
    let bare = wait_secs(dir.path(), &urls[2], before);
    assert!((3600..3600 + 360 + 5).contains(&bare), "{bare}");
    let list = run(dir.path(), &["feeds", "list"]);
    assert!(
        list.contains("FAILING (rate_limited, 1 in a row)"),
        "{list}"
    );
    // `poll --once` polls every feed now, except those that asked to be left alone: the 429
    // and the 503 with Retry-After are skipped, with the reason; the bare 503 is polled.
    let before = Timestamp::now();
    let out = all_failed_poll(dir.path());
    for url in &urls[..2] {
        let skipped =
            format!("skipped  {url}  rate_limited: the server asked not to be polled before ");
        assert!(out.contains(&skipped), "{out}");
    }
    assert!(out.contains("polled 1 feeds: 0 ok, 1 failed"), "{out}");
    assert!(out.contains("; 2 skipped"), "{out}");
    assert_eq!(server.requests_for("/429").len(), 1);
    assert_eq!(server.requests_for("/503").len(), 1);
    assert_eq!(server.requests_for("/503bare").len(), 2);
    let bare = wait_secs(dir.path(), &urls[2], before);
    assert!((7200..7200 + 720 + 5).contains(&bare), "{bare}");
    assert_eq!(status(dir.path(), &urls[2]).consecutive_failures, 2);
    let list = run(dir.path(), &["feeds", "list"]);
    assert!(list.contains("FAILING (http_status, 2 in a row)"), "{list}");
    assert!(list.contains("last error http_status at"), "{list}");
}

#[test]
fn cache_control_expires_and_ttl_are_minimum_waits() {
    let server = TestServer::start();
    let body = rss(&every(3, SignedDuration::from_mins(1)), None);
    server.route(
        "/maxage",
        Response::ok(RSS, body.clone()).header("Cache-Control", "public, max-age=14400"),
    );
    server.route(
        "/expires",
        Response::ok(RSS, body.clone())
            .header("Date", "Tue, 12 Mar 2024 10:00:00 GMT")
            .header("Expires", "Tue, 12 Mar 2024 16:00:00 GMT"),
    );
    server.route(
        "/ttl",
        Response::ok(RSS, rss(&every(3, SignedDuration::from_mins(1)), Some(480))),
    );
    // A 304 carries hints too, and costs no parsing: the server sends no body at all.
    server.route(
        "/notmodified",
        Response::status(304).header("Cache-Control", "max-age=18000"),
    );
    server.route(
        "/huge-maxage",
        Response::ok(RSS, body).header("Cache-Control", "max-age=31536000"),
    );
    let urls: Vec<String> = [
        "/maxage",
        "/expires",
        "/ttl",
        "/notmodified",
        "/huge-maxage",
    ]
    .iter()
    .map(|p| server.url(p))
    .collect();
    let dir = tempfile::tempdir().unwrap();
    config(dir.path(), &urls, "");
    let before = Timestamp::now();
    let out = run(dir.path(), &["poll", "--once"]);
    assert!(out.contains("polled 5 feeds: 5 ok"), "{out}");
    assert!(out.contains("not modified"), "{out}");
    let expect = |url: &String, secs: i64| {
        let wait = wait_secs(dir.path(), url, before);
        let jitter = (secs / 10).min(900);
        assert!(
            (secs - 5..=secs + jitter + 5).contains(&wait),
            "{url}: waits {wait}s, expected {secs}s"
        );
    };
    expect(&urls[0], 4 * 3600);
    expect(&urls[1], 6 * 3600);
    expect(&urls[2], 8 * 3600);
    expect(&urls[3], 5 * 3600);
    // A year of max-age is capped at [fetch] max_interval (24h by default).
    expect(&urls[4], 24 * 3600);
    let nm = status(dir.path(), &urls[3]);
    assert_eq!((nm.items, nm.consecutive_failures), (0, 0));
    assert!(nm.last_success_at.is_some());
}

#[test]
fn interval_adapts_to_how_often_a_feed_publishes() {
    let server = TestServer::start();
    server.route(
        "/two-hourly",
        Response::ok(RSS, rss(&every(10, SignedDuration::from_hours(2)), None)),
    );
    server.route(
        "/weekly",
        Response::ok(
            RSS,
            rss(&every(5, SignedDuration::from_hours(24 * 7)), None),
        ),
    );
    server.route(
        "/busy",
        Response::ok(RSS, rss(&every(30, SignedDuration::from_mins(1)), None)),
    );
    server.route(
        "/undated",
        Response::ok(
            RSS,
            "<rss version=\"2.0\"><channel><item><title>x</title></item></channel></rss>",
        ),
    );
    let urls: Vec<String> = ["/two-hourly", "/weekly", "/busy", "/undated"]
        .iter()
        .map(|p| server.url(p))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    config(dir.path(), &urls, "max_interval = \"12h\"\n");
    let before = Timestamp::now();
    run(dir.path(), &["poll", "--once"]);
    let interval = |url: &String| status(dir.path(), url).interval_secs;
    assert_eq!(interval(&urls[0]), Some(2 * 3600));
    // Clamped to max_interval.
    assert_eq!(interval(&urls[1]), Some(12 * 3600));
    // Never below the configured 30 minutes, however busy the feed.
    assert_eq!(interval(&urls[2]), Some(1800));
    assert_eq!(interval(&urls[3]), Some(1800));
    let wait = wait_secs(dir.path(), &urls[0], before);
    assert!((7200 - 5..7200 + 720 + 5).contains(&wait), "{wait}");
    let list = run(dir.path(), &["feeds", "list"]);
    assert!(list.contains("every 2h"), "{list}");
    assert!(list.contains("every 12h"), "{list}");
}

#[test]
fn per_host_and_global_limits_hold() {
    let server = TestServer::start();
    let body = rss(&every(2, SignedDuration::from_hours(1)), None);
    let urls: Vec<String> = (0..6)
        .map(|n| {
            let path = format!("/slow{n}");
            server.route(
                &path,
                Response::ok(RSS, body.clone()).behave(Behaviour::Delay {
                    by: Duration::from_millis(300),
                }),
            );
            server.url(&path)
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    config(dir.path(), &urls, "concurrency = 8\nper_host = 2\n");
    let out = run(dir.path(), &["poll", "--once"]);
    assert!(out.contains("polled 6 feeds: 6 ok"), "{out}");
    assert_eq!(server.max_concurrent(), 2, "per_host = 2");

    let server = TestServer::start();
    let urls: Vec<String> = (0..6)
        .map(|n| {
            let path = format!("/slow{n}");
            server.route(
                &path,
                Response::ok(RSS, body.clone()).behave(Behaviour::Delay {
                    by: Duration::from_millis(300),
                }),
            );
            server.url(&path)
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    config(dir.path(), &urls, "concurrency = 3\nper_host = 8\n");
    run(dir.path(), &["poll", "--once"]);
    assert_eq!(server.max_concurrent(), 3, "concurrency = 3");
}

#[test]
fn good_feeds_survive_a_crowd_of_broken_ones() {
    let server = TestServer::start();
    let read = |name| std::fs::read(fixture(name)).unwrap();
    server.route("/wire.rss", Response::ok(RSS, read("wire.rss")));
    server.route(
        "/desk.atom",
        Response::ok("application/atom+xml", read("desk.atom")),
    );
    server.route(
        "/gov.json",
        Response::ok("application/feed+json", read("gov.json")),
    );
    server.route("/reset", Response::ok(RSS, "x").behave(Behaviour::Reset));
    server.route("/429", Response::status(429).header("Retry-After", "60"));
    server.route("/410", Response::status(410));
    server.route("/500", Response::status(500));
    server.route(
        "/html",
        Response::ok("text/html", "<!doctype html><html><body>hi</body></html>"),
    );
    server.route("/empty", Response::ok(RSS, ""));
    server.route(
        "/broken.xml",
        Response::ok(
            RSS,
            "<rss version=\"2.0\"><channel><item><title>a</item></channel>",
        ),
    );
    server.route(
        "/not-a-feed.xml",
        Response::ok("application/xml", "<?xml version=\"1.0\"?><sitemap/>"),
    );
    server.route("/loop", Response::status(301).header("Location", "/loop2"));
    server.route("/loop2", Response::status(301).header("Location", "/loop"));
    server.route("/hang", Response::ok(RSS, "x").behave(Behaviour::Hang));
    // Once made the XML stack panic (found by the property tests).
    server.route(
        "/panic",
        Response::ok(
            "application/atom+xml",
            r#"<feed xmlns="http://www.w3.org/2005/Atom"><?xml version="1.0" encoding="UTF-8"?><?xml version="1.0" encoding="ISO-8859-1"?>"#,
        ),
    );
    // Each broken feed and the kind of error `feeds list` must show for it.
    let broken = [
        ("/reset", "network"),
        ("/429", "rate_limited"),
        ("/410", "http_status"),
        ("/500", "http_status"),
        ("/html", "html_page"),
        ("/empty", "empty"),
        ("/broken.xml", "malformed_xml"),
        ("/not-a-feed.xml", "not_a_feed"),
        ("/loop", "redirect_loop"),
        ("/hang", "timeout"),
        ("/panic", "malformed_xml"),
    ];
    let good = ["/wire.rss", "/desk.atom", "/gov.json"];
    // Good and broken interleaved, so a broken feed is never only at the end of the queue.
    let mut urls = Vec::new();
    for (n, (path, _)) in broken.iter().enumerate() {
        urls.push(server.url(path));
        if n % 4 == 0 {
            urls.push(server.url(good[n / 4]));
        }
    }
    let dir = tempfile::tempdir().unwrap();
    config(
        dir.path(),
        &urls,
        "timeout = \"2s\"\nconcurrency = 4\nper_host = 4\n",
    );
    let out = run(dir.path(), &["poll", "--once"]);
    assert!(
        out.contains("polled 14 feeds: 3 ok, 11 failed; 9 new items"),
        "{out}"
    );
    for path in good {
        let s = status(dir.path(), &server.url(path));
        assert!(s.last_error.is_none() && s.items > 0, "{path}: {s:?}");
    }
    let list = run(dir.path(), &["feeds", "list"]);
    for (path, kind) in broken {
        let s = status(dir.path(), &server.url(path));
        assert_eq!(s.last_error_kind.as_deref(), Some(kind), "{path}: {s:?}");
        assert_eq!(s.consecutive_failures, 1, "{path}: {s:?}");
        assert!(
            s.next_poll_at.is_some_and(|t| t > Timestamp::now()),
            "{path} must back off: {s:?}"
        );
        let shown = format!("{}\n  FAILING ({kind}, 1 in a row)", server.url(path));
        let disabled = format!("{}\n  DISABLED: 410 Gone", server.url(path));
        assert!(
            list.contains(&shown) || (path == "/410" && list.contains(&disabled)),
            "{path} should show {kind}:\n{list}"
        );
    }
}

#[test]
fn first_poll_keeps_old_backlog_out_of_the_digest() {
    let server = TestServer::start();
    let wire = String::from_utf8(std::fs::read(fixture("wire.rss")).unwrap()).unwrap();
    let fresh = format!(
        "<item><title>US charges Chinese chemical companies with shipping fentanyl precursors to cartels</title>\
         <guid>wire-fresh</guid><pubDate>{}</pubDate>\
         <description>The Justice Department unsealed indictments against China-based companies accused of selling precursor chemicals for fentanyl.</description></item>",
        Timestamp::now().strftime("%a, %d %b %Y %H:%M:%S +0000")
    );
    server.route(
        "/wire.rss",
        Response::ok(RSS, wire.replacen("<item>", &format!("{fresh}<item>"), 1)),
    );
    let url = server.url("/wire.rss");
    let dir = tempfile::tempdir().unwrap();
    config(
        dir.path(),
        std::slice::from_ref(&url),
        "backlog_max_age = \"7d\"\n",
    );

    let out = run(dir.path(), &["poll", "--once"]);
    // wire.rss holds four items from 2024 (two on the story) plus the fresh one.
    assert!(
        out.contains("5 items, 5 new, 1 new matches (4 older than"),
        "{out}"
    );
    let store = Store::open(&dir.path().join("storywatch.db")).unwrap();
    let matches = store.list_matches(&MatchFilter::default()).unwrap();
    assert_eq!(matches.len(), 1, "{matches:?}");
    assert!(matches[0].title.ends_with("to cartels"));
    assert_eq!(status(dir.path(), &url).items, 5, "backlog is stored");
    let dry = run(dir.path(), &["digest", "--dry-run"]);
    assert!(!dry.contains("China adds fentanyl precursor"), "{dry}");

    // After the first poll, an item is new whatever its date.
    let late = "<item><title>Trump raises tariff on Chinese goods, citing fentanyl flows</title>\
                <guid>wire-late</guid><pubDate>Mon, 02 Sep 2024 08:15:00 GMT</pubDate>\
                <description>The White House tied the tariff to China's record on fentanyl precursors.</description></item>";
    server.route(
        "/wire.rss",
        Response::ok(RSS, wire.replacen("<item>", &format!("{late}<item>"), 1)),
    );
    let out = run(dir.path(), &["poll", "--once"]);
    assert!(out.contains("1 new, 1 new matches"), "{out}");
    assert!(!out.contains("older than"), "{out}");
}

#[test]
fn a_permanent_move_is_followed_while_the_config_entry_keeps_the_feed() {
    let server = TestServer::start();
    server.route("/old", Response::status(301).header("Location", "/new"));
    server.route("/new", crate::support::wire_feed().with_etag("\"n1\""));
    let old = server.url("/old");
    let dir = tempfile::tempdir().unwrap();
    config(dir.path(), std::slice::from_ref(&old), "");
    run(dir.path(), &["poll", "--once"]);
    let moved = status(dir.path(), &old);
    assert_eq!(moved.url, server.url("/new"));
    let list = run(dir.path(), &["feeds", "list"]);
    assert!(
        list.contains(&format!("moved permanently to {}", server.url("/new"))),
        "{list}"
    );
    // The next poll goes straight to the new URL, conditionally, under the same feed.
    let out = run(dir.path(), &["poll", "--once"]);
    assert!(out.contains("not modified"), "{out}");
    assert_eq!(server.requests_for("/old").len(), 1);
    assert_eq!(server.requests_for("/new").len(), 2);
    assert_eq!(statuses(dir.path()).len(), 1);
    assert_eq!(status(dir.path(), &old).items, 4);
}

#[test]
fn a_permanent_move_answered_by_304_still_moves_the_feed() {
    // The feed was polled (validators stored), then moved: the old URL now redirects
    // permanently to a new one that has the same body and so answers the conditional GET with
    // 304. Nothing changed but the address, and the address must still be recorded.
    let server = TestServer::start();
    let body = std::fs::read(fixture("wire.rss")).unwrap();
    server.route("/old", Response::ok(RSS, body.clone()).with_etag("\"w1\""));
    let old = server.url("/old");
    let dir = tempfile::tempdir().unwrap();
    config(dir.path(), std::slice::from_ref(&old), "");
    run(dir.path(), &["poll", "--once"]);
    assert_eq!(status(dir.path(), &old).url, old);

    server.route("/old", Response::status(308).header("Location", "/new"));
    server.route("/new", Response::ok(RSS, body).with_etag("\"w1\""));
    let out = run(dir.path(), &["poll", "--once"]);
    assert!(out.contains("not modified"), "{out}");
    assert_eq!(server.requests_for("/new")[0].status, 304);
    assert_eq!(status(dir.path(), &old).url, server.url("/new"));

    // From now on the old URL is not asked at all.
    run(dir.path(), &["poll", "--once"]);
    assert_eq!(server.requests_for("/old").len(), 2);
    assert_eq!(server.requests_for("/new").len(), 2);
}

/// Row counts of every table but `feeds`, and the feeds rows minus their poll bookkeeping.
fn database_snapshot(dir: &Path) -> (Vec<(String, i64)>, Vec<Vec<String>>) {
    let conn = rusqlite::Connection::open(dir.join("storywatch.db")).unwrap();
    let tables: Vec<String> = conn
        .prepare(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name != 'feeds' ORDER BY name",
        )
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    let counts = tables
        .into_iter()
        .map(|t| {
            let n = conn
                .query_row(&format!("SELECT COUNT(*) FROM \"{t}\""), [], |r| r.get(0))
                .unwrap();
            (t, n)
        })
        .collect();
    let feeds = conn
        .prepare("SELECT url, COALESCE(title, ''), COALESCE(etag, ''), COALESCE(last_modified, '') FROM feeds ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok(vec![r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?]))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    (counts, feeds)
}

#[test]
fn a_304_writes_only_the_feed_state_and_the_user_agent_names_storywatch() {
    let server = TestServer::start();
    server.route(
        "/wire.rss",
        crate::support::wire_feed()
            .with_etag("\"w1\"")
            .header("Last-Modified", "Tue, 12 Mar 2024 10:00:00 GMT"),
    );
    let url = server.url("/wire.rss");
    let dir = tempfile::tempdir().unwrap();
    config(dir.path(), std::slice::from_ref(&url), "");
    run(dir.path(), &["poll", "--once"]);
    let before = database_snapshot(dir.path());
    assert!(
        before.0.iter().any(|(t, n)| t == "items" && *n == 4),
        "{before:?}"
    );
    let attempt = status(dir.path(), &url).last_attempt_at;

    std::thread::sleep(Duration::from_millis(1100));
    let out = run(dir.path(), &["poll", "--once"]);
    assert!(out.contains("not modified"), "{out}");
    assert_eq!(
        database_snapshot(dir.path()),
        before,
        "a 304 changed more than the feed's state"
    );
    let after = status(dir.path(), &url);
    assert!(after.last_attempt_at > attempt, "{after:?}");
    assert_eq!(after.consecutive_failures, 0);

    let seen = server.requests_for("/wire.rss");
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].status, 304);
    assert_eq!(seen[1].header("if-none-match"), Some("\"w1\""));
    assert_eq!(
        seen[1].header("if-modified-since"),
        Some("Tue, 12 Mar 2024 10:00:00 GMT")
    );
    let expected = format!(
        "storywatch/{} (+https://crates.io/crates/storywatch)",
        env!("CARGO_PKG_VERSION")
    );
    for request in &seen {
        assert_eq!(request.header("user-agent"), Some(expected.as_str()));
    }
}

#[test]
fn forty_good_feeds_all_succeed_among_forty_broken_ones() {
    let server = TestServer::start();
    let broken: [(Response, &str); 8] = [
        (Response::ok(RSS, "x").behave(Behaviour::Reset), "network"),
        (Response::status(500), "http_status"),
        (Response::status(404), "http_status"),
        (
            Response::ok(
                "text/html",
                "<!DOCTYPE html><html><body>Not here</body></html>",
            ),
            "html_page",
        ),
        (Response::ok(RSS, "  \n"), "empty"),
        (
            Response::ok(
                RSS,
                "<rss version=\"2.0\"><channel><item><title>x</channel>",
            ),
            "malformed_xml",
        ),
        (Response::ok(RSS, vec![b'<'; 300 * 1024]), "too_large"),
        (Response::status(429), "rate_limited"),
    ];
    let mut urls = Vec::new();
    let mut expected_kind = Vec::new();
    for n in 0..40 {
        let body = format!(
            "<rss version=\"2.0\"><channel><title>Good {n}</title>\
             <item><title>Harbour report {n}a</title><guid>g{n}a</guid></item>\
             <item><title>Harbour report {n}b</title><guid>g{n}b</guid></item></channel></rss>"
        );
        server.route(&format!("/good/{n}"), Response::ok(RSS, body));
        urls.push(server.url(&format!("/good/{n}")));
        let (response, kind) = &broken[n % broken.len()];
        server.route(&format!("/bad/{n}"), response.clone());
        urls.push(server.url(&format!("/bad/{n}")));
        expected_kind.push((server.url(&format!("/bad/{n}")), *kind));
    }
    let dir = tempfile::tempdir().unwrap();
    config(
        dir.path(),
        &urls,
        "timeout = \"3s\"\nmax_body_size = \"256KiB\"\nconcurrency = 6\nper_host = 6\n",
    );
    let out = run(dir.path(), &["poll", "--once"]);
    assert!(
        out.contains("polled 80 feeds: 40 ok, 40 failed; 80 new items"),
        "{out}"
    );
    for n in 0..40 {
        let s = status(dir.path(), &server.url(&format!("/good/{n}")));
        assert!(s.last_error.is_none(), "{s:?}");
        assert_eq!(s.items, 2, "{s:?}");
    }
    for (url, kind) in expected_kind {
        let s = status(dir.path(), &url);
        assert_eq!(s.last_error_kind.as_deref(), Some(kind), "{s:?}");
        assert_eq!(s.items, 0);
    }
}
