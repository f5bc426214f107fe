//! The walking skeleton end to end: poll → match → store → digest with the real binary, a real
//! HTTP server on 127.0.0.1 and a real SQLite file.

use std::path::Path;

use crate::support::{
    Response, TestServer, digest_files, fixture, storywatch, success, write_config,
};
use storywatch::store::{MatchFilter, Store};

/// A server with the three fixture feeds (RSS 2.0, Atom, JSON Feed).
fn feed_server() -> (TestServer, Vec<String>) {
    let server = TestServer::start();
    let read = |name| std::fs::read(fixture(name)).unwrap();
    server.route(
        "/wire.rss",
        Response::ok("application/rss+xml", read("wire.rss")).with_etag("\"w1\""),
    );
    server.route(
        "/desk.atom",
        Response::ok("application/atom+xml", read("desk.atom")),
    );
    server.route(
        "/gov.json",
        Response::ok("application/feed+json", read("gov.json")),
    );
    let urls = vec![
        server.url("/wire.rss"),
        server.url("/desk.atom"),
        server.url("/gov.json"),
    ];
    (server, urls)
}

fn run(dir: &Path, args: &[&str]) -> String {
    let mut full = vec!["--config", "storywatch.toml"];
    full.extend_from_slice(args);
    success(&storywatch(dir, &full, None))
}

#[test]
fn poll_stores_every_item_once_across_formats() {
    let (server, urls) = feed_server();
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), &urls, "");

    let first = run(dir.path(), &["poll", "--once"]);
    assert!(first.contains("4 items, 4 new"), "{first}");
    assert!(first.contains("3 items, 3 new"), "{first}");
    assert!(first.contains("2 items, 2 new"), "{first}");
    assert!(
        first.contains("polled 3 feeds: 3 ok, 0 failed; 9 new items"),
        "{first}"
    );

    let second = run(dir.path(), &["poll", "--once"]);
    assert!(
        second.contains("not modified"),
        "ETag feed answers 304 the second time: {second}"
    );
    assert!(second.contains("0 new items, 0 new matches"), "{second}");
    let conditional = server.requests_for("/wire.rss");
    assert_eq!(conditional.len(), 2);
    assert_eq!(conditional[1].header("if-none-match"), Some("\"w1\""));
    assert!(
        conditional[0]
            .header("user-agent")
            .unwrap_or("")
            .starts_with("storywatch/")
    );

    let store = Store::open(&dir.path().join("storywatch.db")).unwrap();
    let matches = store.list_matches(&MatchFilter::default()).unwrap();
    let titles: Vec<&str> = matches.iter().map(|m| m.title.as_str()).collect();
    for expected in [
        "China adds fentanyl precursor",
        "US charges Chinese chemical",
        "Trump raises tariff",
        "Readout: US-China",
    ] {
        assert!(
            titles.iter().any(|t| t.starts_with(expected)),
            "{expected} not matched: {titles:?}"
        );
    }
    for unexpected in [
        "City council",
        "jobs report",
        "Panda",
        "Spring rains",
        "national park",
    ] {
        assert!(
            !titles.iter().any(|t| t.contains(unexpected)),
            "{unexpected} matched: {titles:?}"
        );
    }
    // HTML in an RSS description is stored as plain text; relative Atom links are resolved.
    let precursor = matches
        .iter()
        .find(|m| m.title.starts_with("China adds"))
        .unwrap();
    assert!(
        !precursor.summary.contains("<p>") && precursor.summary.starts_with("Beijing said"),
        "{}",
        precursor.summary
    );
    // A JSON Feed item with only `content_text` still has a summary to show.
    let readout = matches
        .iter()
        .find(|m| m.title.starts_with("Readout:"))
        .unwrap();
    assert!(
        readout
            .summary
            .starts_with("Officials from both governments"),
        "{:?}",
        readout.summary
    );
    let tariff = matches
        .iter()
        .find(|m| m.title.starts_with("Trump raises"))
        .unwrap();
    assert_eq!(
        tariff.link.as_deref(),
        Some(server.url("/china/2025/03/tariff-fentanyl").as_str())
    );
}

#[test]
fn digest_names_baselines_and_never_repeats_a_match() {
    let (server, urls) = feed_server();
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), &urls, "");
    run(dir.path(), &["poll", "--once"]);

    let dry = run(dir.path(), &["digest", "--dry-run"]);
    assert!(dry.contains("Trump raises tariff"), "{dry}");
    assert!(
        digest_files(dir.path()).is_empty(),
        "a dry run delivers nothing"
    );

    run(dir.path(), &["digest", "--now"]);
    let files = digest_files(dir.path());
    assert_eq!(files.len(), 1);
    let digest = &files[0];
    assert!(digest.contains("## Following up: *"), "{digest}");
    assert!(
        digest.contains("Trump raises tariff on Chinese goods, citing fentanyl flows"),
        "{digest}"
    );
    // Relative Atom links resolve against the feed's own URL (RFC 4287 §2, no xml:base).
    assert!(
        digest.contains("/china/2025/03/tariff-fentanyl>)"),
        "{digest}"
    );
    assert!(!digest.contains("Panda"), "{digest}");
    assert!(
        digest.contains("9 items scanned · 3 feeds polled"),
        "{digest}"
    );
    // Every named baseline is one of the seeds, shown with outlet and date.
    let seeds = success(&storywatch(
        dir.path(),
        &["--config", "storywatch.toml", "check"],
        None,
    ));
    for heading in digest
        .lines()
        .filter(|l| l.starts_with("## Following up: *"))
    {
        let title = heading
            .trim_start_matches("## Following up: *")
            .split('*')
            .next()
            .unwrap();
        assert!(
            seeds.contains(&title.replace('\\', "")),
            "{heading} names no seed:\n{seeds}"
        );
        assert!(
            heading.ends_with(" 2024"),
            "{heading} lacks the baseline's date"
        );
    }

    // Each development sits under the baseline it follows up on, with its one-line summary.
    let section_of = |title: &str| -> String {
        let at = digest
            .find(title)
            .unwrap_or_else(|| panic!("{title} missing:\n{digest}"));
        digest[..at]
            .rfind("## Following up: *")
            .map(|h| digest[h..].lines().next().unwrap_or("").to_string())
            .unwrap_or_default()
    };
    assert!(
        section_of("Readout: US-China Counternarcotics")
            .contains("first meeting of counternarcotics working group"),
        "{digest}"
    );
    assert!(
        digest.contains("> Officials from both governments reviewed"),
        "the content-only JSON Feed item has a summary line:\n{digest}"
    );

    // A second digest carries what arrived since, and repeats nothing.
    let mut wire = std::fs::read_to_string(fixture("wire.rss")).unwrap();
    wire = wire.replace(
        "</channel>",
        "<item><title>China and US agree new fentanyl precursor controls at Geneva meeting</title>\
         <link>https://wire.example/2025/06/geneva</link><guid>wire-1005</guid>\
         <pubDate>Tue, 10 Jun 2025 09:00:00 GMT</pubDate>\
         <description>Beijing will tighten export licences for fentanyl precursors, officials said.</description></item></channel>",
    );
    server.route("/wire.rss", Response::ok("application/rss+xml", wire));
    run(dir.path(), &["poll", "--once"]);
    run(dir.path(), &["digest", "--now"]);
    let files = digest_files(dir.path());
    assert_eq!(files.len(), 2);
    let second = files.iter().find(|f| *f != digest).unwrap();
    assert!(second.contains("Geneva meeting"), "{second}");
    for old in [
        "Trump raises tariff",
        "Readout: US-China",
        "US charges Chinese",
    ] {
        assert!(!second.contains(old), "{old} repeated:\n{second}");
    }

    // And a third, with nothing new, says so.
    run(dir.path(), &["poll", "--once"]);
    run(dir.path(), &["digest", "--now"]);
    let files = digest_files(dir.path());
    assert_eq!(files.len(), 3);
    let third = files.iter().find(|f| *f != digest && *f != second).unwrap();
    assert!(third.contains("No new developments"), "{third}");
}

#[test]
fn a_broken_feed_does_not_stop_the_others() {
    let (server, mut urls) = feed_server();
    server.route(
        "/broken.xml",
        Response::ok(
            "application/rss+xml",
            "<rss version=\"2.0\"><channel><item><title>unclosed",
        ),
    );
    server.route("/gone.xml", Response::status(500));
    urls.push(server.url("/broken.xml"));
    urls.push(server.url("/gone.xml"));
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), &urls, "");

    let out = run(dir.path(), &["poll", "--once"]);
    assert!(
        out.contains("polled 5 feeds: 3 ok, 2 failed; 9 new items"),
        "{out}"
    );
    assert!(
        out.contains("FAILED") && out.contains("/gone.xml") && out.contains("500"),
        "{out}"
    );

    let feeds = run(dir.path(), &["feeds", "list"]);
    assert!(
        feeds.contains("FAILING (http_status, 1 in a row)"),
        "{feeds}"
    );
    assert!(
        feeds.contains("FAILING (malformed_xml, 1 in a row)"),
        "{feeds}"
    );
    let json = run(dir.path(), &["feeds", "list", "--json"]);
    assert_eq!(json.lines().count(), 5);
}

#[test]
fn poll_fails_only_when_nothing_can_run() {
    let dir = tempfile::tempdir().unwrap();
    // The database path is a folder that cannot be created (a file stands in the way).
    std::fs::write(dir.path().join("blocker"), "x").unwrap();
    write_config(dir.path(), &["http://127.0.0.1:9/feed".to_string()], "");
    let config = std::fs::read_to_string(dir.path().join("storywatch.toml")).unwrap();
    std::fs::write(
        dir.path().join("storywatch.toml"),
        config.replace("\"storywatch.db\"", "\"blocker/x.db\""),
    )
    .unwrap();
    let out = storywatch(
        dir.path(),
        &["--config", "storywatch.toml", "poll", "--once"],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot open database") && stderr.contains("blocker"),
        "{stderr}"
    );
}

#[test]
fn poll_exits_3_when_every_feed_failed() {
    let server = TestServer::start();
    server.route("/a.xml", Response::status(500));
    server.route(
        "/b.xml",
        Response::ok("text/html", "<html>not a feed</html>"),
    );
    let dir = tempfile::tempdir().unwrap();
    write_config(
        dir.path(),
        &[server.url("/a.xml"), server.url("/b.xml")],
        "",
    );
    let out = storywatch(
        dir.path(),
        &["--config", "storywatch.toml", "poll", "--once"],
        None,
    );
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("polled 2 feeds: 0 ok, 2 failed"),
        "{stdout}"
    );
    // The failures are still recorded: the poll itself ran.
    let feeds = run(dir.path(), &["feeds", "list"]);
    assert_eq!(feeds.matches("FAILING").count(), 2, "{feeds}");
}

#[test]
fn items_can_be_listed_shown_and_marked() {
    let (_server, urls) = feed_server();
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), &urls, "");
    run(dir.path(), &["poll", "--once"]);

    let list = run(dir.path(), &["items", "list", "--json"]);
    let first: serde_json::Value = serde_json::from_str(list.lines().next().unwrap()).unwrap();
    let id = first["id"].as_i64().unwrap().to_string();
    let shown = run(dir.path(), &["items", "show", &id]);
    assert!(
        shown.contains("verdict:") && shown.contains("why:"),
        "{shown}"
    );

    run(dir.path(), &["items", "mark", &id, "irrelevant"]);
    let irrelevant = run(dir.path(), &["items", "list", "--state", "irrelevant"]);
    assert_eq!(irrelevant.lines().count(), 1, "{irrelevant}");
    // A match marked irrelevant stays out of the digest.
    let dry = run(dir.path(), &["digest", "--dry-run"]);
    assert!(!dry.contains(first["title"].as_str().unwrap()), "{dry}");

    let missing = storywatch(
        dir.path(),
        &[
            "--config",
            "storywatch.toml",
            "items",
            "mark",
            "99999",
            "relevant",
        ],
        None,
    );
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("items list"));
}

#[test]
fn classify_prints_one_json_verdict_per_line() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), &[], "");
    let input = concat!(
        r#"{"id": "a", "title": "China to require export licences for fentanyl precursors shipped to the US", "summary": "Beijing's commerce ministry announced controls on chemicals used to make fentanyl.", "published": "2025-11-10T08:00:00Z", "extra": 1}"#,
        "\n",
        r#"{"id": 7, "title": "Local bakery wins national bread award"}"#,
        "\n"
    );
    let out = storywatch(
        dir.path(),
        &["--config", "storywatch.toml", "classify", "--json"],
        Some(input),
    );
    let text = success(&out);
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["id"], "a");
    assert_eq!(lines[0]["verdict"], "follow_up");
    assert!(lines[0]["baseline"].is_string());
    assert!(lines[0]["why"].as_array().is_some_and(|w| !w.is_empty()));
    let score = lines[0]["score"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&score));
    assert_eq!(lines[1]["id"], 7);
    assert_eq!(lines[1]["verdict"], "off_topic");
    assert!(lines[1]["baseline"].is_null());
    // No database is created by classify.
    assert!(!dir.path().join("storywatch.db").exists());

    let bad = storywatch(
        dir.path(),
        &["--config", "storywatch.toml", "classify"],
        Some("not json\n"),
    );
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("stdin line 1"));
}

#[test]
fn bad_config_stops_with_file_line_and_fix() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), &[], "[digest2]\nat = \"07:00\"\n");
    let out = storywatch(dir.path(), &["--config", "storywatch.toml", "check"], None);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("storywatch.toml:")
            && stderr.contains("digest2")
            && stderr.contains("remove the key"),
        "{stderr}"
    );
}

#[test]
fn check_validates_and_summarises_the_bundled_defaults() {
    let dir = tempfile::tempdir().unwrap();
    // The bundled config resolves `../seeds` against the working directory: run from config/.
    let config_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let out = success(&storywatch(&config_dir, &["check"], None));
    assert!(
        out.contains("<bundled config/storywatch.toml> — ok"),
        "{out}"
    );
    assert!(out.contains("002_8c022bc2c889c5a5"), "{out}");
    drop(dir);
}

#[test]
fn without_a_channel_the_digest_is_refused_and_the_matches_wait() {
    let (_server, urls) = feed_server();
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), &urls, "");
    let with_channel = std::fs::read_to_string(&path).unwrap();
    let channel = "[[notify]]\nkind = \"file\"\npath = \"digests\"\n";
    assert!(with_channel.contains(channel));
    std::fs::write(&path, with_channel.replace(channel, "")).unwrap();
    run(dir.path(), &["poll", "--once"]);

    let check = run(dir.path(), &["check"]);
    assert!(check.contains("WARNING: no [[notify]] channel"), "{check}");
    assert!(
        check.contains("background: shipped English word frequencies only"),
        "too few stream items yet to weigh the profile:\n{check}"
    );
    let out = storywatch(
        dir.path(),
        &["--config", "storywatch.toml", "digest", "--now"],
        None,
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no [[notify]] channel") && stderr.contains("kept"),
        "{stderr}"
    );

    // Once a channel exists, the waiting matches are in the first digest.
    std::fs::write(&path, &with_channel).unwrap();
    run(dir.path(), &["digest", "--now"]);
    let files = digest_files(dir.path());
    assert_eq!(files.len(), 1);
    assert!(files[0].contains("Trump raises tariff"), "{}", files[0]);
}
