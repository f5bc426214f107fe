//! Near-duplicate groups, learning from review and several stories, end to end: the real
//! binary polls a real local HTTP server into a real SQLite file and writes a real digest.

use std::path::Path;

use crate::support::{Response, TestServer, storywatch, success, write_config};

/// An RSS feed titled `outlet` with `(guid, title, description, pubDate)` items.
fn rss(outlet: &str, items: &[(&str, &str, &str, &str)]) -> String {
    let mut body = format!(
        "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>{outlet}</title>\
         <link>https://{outlet}.example/</link><description>news</description>"
    );
    for (guid, title, description, date) in items {
        body.push_str(&format!(
            "<item><title>{title}</title><link>https://{outlet}.example/{guid}</link>\
             <guid isPermaLink=\"false\">{guid}</guid><pubDate>{date}</pubDate>\
             <description>{description}</description></item>"
        ));
    }
    body.push_str("</channel></rss>");
    body
}

fn run(dir: &Path, args: &[&str]) -> String {
    let mut full = vec!["--config", "storywatch.toml"];
    full.extend_from_slice(args);
    success(&storywatch(dir, &full, None))
}

fn only_digest(dir: &Path) -> String {
    let files: Vec<_> = std::fs::read_dir(dir.join("digests"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    std::fs::read_to_string(&files[0]).unwrap()
}

/// Two outlets carry one development with different headlines, a third item is another
/// development.
fn two_outlets() -> (TestServer, Vec<String>) {
    let server = TestServer::start();
    server.route(
        "/agency.rss",
        Response::ok(
            "application/rss+xml",
            rss(
                "Agency",
                &[
                    (
                        "a1",
                        "US and China agree to curb fentanyl precursor exports",
                        "Officials in Beijing said new controls on precursor chemicals would \
                         take effect in May after talks with Washington.",
                        "Fri, 02 May 2025 08:00:00 GMT",
                    ),
                    (
                        "a2",
                        "FBI director Kash Patel makes unannounced trip to Beijing over fentanyl",
                        "The visit follows the leaders' consensus on fentanyl, with a bilateral \
                         working group to fill in the details.",
                        "Tue, 11 Nov 2025 07:00:00 GMT",
                    ),
                ],
            ),
        ),
    );
    server.route(
        "/daily.rss",
        Response::ok(
            "application/rss+xml",
            rss(
                "Daily",
                &[
                    (
                        "d1",
                        "China, US agree to curb exports of fentanyl precursors",
                        "New controls on the precursor chemicals take effect in May after \
                         talks with Washington, officials in Beijing said.",
                        "Fri, 02 May 2025 10:30:00 GMT",
                    ),
                    (
                        "d3",
                        "Kash Patel visits China as fentanyl cooperation with the US resumes",
                        "The FBI director's low-key visit came after the leaders agreed on \
                         fentanyl; a bilateral working group will work out the deal.",
                        "Tue, 11 Nov 2025 12:00:00 GMT",
                    ),
                    (
                        "d2",
                        "US charges Chinese firms over fentanyl precursor sales",
                        "Federal prosecutors unsealed indictments against two Chinese chemical \
                         companies accused of shipping precursors to cartels.",
                        "Sat, 03 May 2025 09:00:00 GMT",
                    ),
                ],
            ),
        ),
    );
    let urls = vec![server.url("/agency.rss"), server.url("/daily.rss")];
    (server, urls)
}

#[test]
fn a_rewrite_in_another_feed_is_one_digest_entry_also_reported_by() {
    let (_server, urls) = two_outlets();
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), &urls, "");
    let polled = run(dir.path(), &["poll", "--once"]);
    assert!(polled.contains("5 new matches"), "{polled}");
    run(dir.path(), &["digest", "--now"]);
    let digest = only_digest(dir.path());
    assert!(digest.contains("3 new developments"), "{digest}");
    // Two outlets' own words for one visit: alike beyond the story's vocabulary.
    assert!(
        digest.contains("Kash Patel makes unannounced trip"),
        "{digest}"
    );
    assert!(!digest.contains("Kash Patel visits China"), "{digest}");
    assert_eq!(
        digest.matches("Also reported by Daily").count(),
        2,
        "{digest}"
    );
    // The earliest report (Agency, 08:00) is the entry; Daily's rewrite is folded into it.
    assert!(
        digest.contains("US and China agree to curb fentanyl precursor exports"),
        "{digest}"
    );
    assert!(
        !digest.contains("China, US agree to curb exports"),
        "{digest}"
    );
    assert!(digest.contains("Also reported by Daily"), "{digest}");
    assert!(digest.contains("US charges Chinese firms"), "{digest}");
    // `items show` lists the group, earliest report first.
    let listed = run(dir.path(), &["items", "list", "--json"]);
    let rewrite = listed
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|r| r["title"] == "China, US agree to curb exports of fentanyl precursors")
        .unwrap();
    assert_eq!(rewrite["also_reported_by"], serde_json::json!(["Agency"]));
    let shown = run(dir.path(), &["items", "show", &rewrite["id"].to_string()]);
    let agency = shown.find("group:     #").expect(&shown);
    let daily = shown.find("group:    *#").expect(&shown);
    assert!(agency < daily, "{shown}");
}

/// A config following two stories: the bundled fentanyl story and the test fixture's Mexican
/// ports story, each with its own seeds.
fn write_two_story_config(dir: &Path, feeds: &[String]) {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/stories");
    let mut text = format!(
        "[storage]\ndatabase = \"storywatch.db\"\n\n\
         [[stories]]\nname = \"fentanyl\"\nseeds = {:?}\n\n\
         [[stories]]\nname = \"ports\"\nseeds = {:?}\nadd_terms = [\"Manzanillo\"]\n\n\
         [fetch]\ntimeout = \"5s\"\nconnect_timeout = \"2s\"\nallow_private_networks = true\n\
         backlog_max_age = \"off\"\n\n\
         [digest]\nat = \"07:00\"\ntimezone = \"UTC\"\nrelated = \"show\"\n\n\
         [[notify]]\nkind = \"file\"\npath = \"digests\"\n\n",
        crate::support::seeds_dir().display().to_string(),
        fixtures.join("mexico-ports").display().to_string(),
    );
    for url in feeds {
        text.push_str(&format!("[[feeds]]\nurl = {url:?}\ninterval = \"30m\"\n\n"));
    }
    std::fs::write(dir.join("storywatch.toml"), text).unwrap();
}

#[test]
fn two_stories_get_a_verdict_each_and_one_digest_grouped_by_story() {
    let server = TestServer::start();
    server.route(
        "/mix.rss",
        Response::ok(
            "application/rss+xml",
            rss(
                "Mix",
                &[
                    (
                        "p1",
                        "Mexico charges port officials over Chinese precursor shipments",
                        "Prosecutors charged customs officials at Manzanillo accused of letting \
                         containers of fentanyl precursors from China through the port.",
                        "Tue, 10 Jun 2025 08:00:00 GMT",
                    ),
                    (
                        "t1",
                        "US and China agree to curb fentanyl precursor exports",
                        "Officials in Beijing said new controls on precursor chemicals would \
                         take effect in May after talks with Washington.",
                        "Fri, 02 May 2025 08:00:00 GMT",
                    ),
                    (
                        "x1",
                        "Low Rhine water levels hit barge shipping",
                        "Barges carry less cargo as the river falls.",
                        "Tue, 10 Jun 2025 09:00:00 GMT",
                    ),
                ],
            ),
        ),
    );
    let dir = tempfile::tempdir().unwrap();
    write_two_story_config(dir.path(), &[server.url("/mix.rss")]);

    let check = run(dir.path(), &["check"]);
    assert!(
        check.contains("story:    fentanyl (5 baseline articles)"),
        "{check}"
    );
    assert!(
        check.contains("story:    ports (2 baseline articles)"),
        "{check}"
    );

    let polled = run(dir.path(), &["poll", "--once"]);
    let listed = run(dir.path(), &["items", "list", "--json"]);
    assert!(polled.contains("3 items, 3 new"), "{polled}");
    let rows: Vec<serde_json::Value> = listed
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let stories_of = |title: &str| -> Vec<String> {
        let mut s: Vec<String> = rows
            .iter()
            .filter(|r| r["title"] == title)
            .map(|r| r["story"].as_str().unwrap().to_string())
            .collect();
        s.sort();
        s
    };
    // A verdict per story: the ports item is a match for the ports story.
    assert!(
        stories_of("Mexico charges port officials over Chinese precursor shipments")
            .contains(&"ports".to_string()),
        "{polled}\n{listed}"
    );
    assert!(
        stories_of("US and China agree to curb fentanyl precursor exports")
            .contains(&"fentanyl".to_string()),
        "{listed}"
    );
    assert!(stories_of("Low Rhine water levels hit barge shipping").is_empty());

    run(dir.path(), &["digest", "--now"]);
    let digest = only_digest(dir.path());
    assert!(
        digest.starts_with("# fentanyl · ports — storywatch digest"),
        "{digest}"
    );
    let fentanyl = digest.find("## fentanyl: Following up:").expect(&digest);
    let ports = digest
        .find("## ports: Following up: *Mex")
        .unwrap_or_else(|| panic!("{digest}"));
    assert!(fentanyl < ports, "stories in config order: {digest}");
    assert!(
        digest[ports..].contains("Mexico charges port officials"),
        "{digest}"
    );
    // The Atom export is the feed of every story followed, named in config order.
    let atom = run(dir.path(), &["export", "atom"]);
    assert!(
        atom.contains("<title>fentanyl · ports — storywatch matches</title>"),
        "{atom}"
    );

    // classify keeps its one-object-per-line format; --story picks the story.
    let line = "{\"id\":\"p\",\"title\":\"Mexican navy seizes Chinese precursor chemicals at \
                Manzanillo port\",\"published\":\"2025-02-11T09:00:00Z\"}\n";
    let out = success(&storywatch(
        dir.path(),
        &[
            "--config",
            "storywatch.toml",
            "classify",
            "--json",
            "--story",
            "ports",
        ],
        Some(line),
    ));
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["baseline", "id", "score", "verdict", "why"]);
    assert_eq!(v["baseline"], "001_navy_manzanillo");
    let unknown = storywatch(
        dir.path(),
        &["--config", "storywatch.toml", "classify", "--story", "nope"],
        Some(line),
    );
    assert!(!unknown.status.success());
    assert!(
        String::from_utf8_lossy(&unknown.stderr)
            .contains("the config's stories are fentanyl, ports")
    );
}

#[test]
fn marks_teach_the_profile_shown_by_check_and_used_by_rescore() {
    let (_server, urls) = two_outlets();
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), &urls, "");
    run(dir.path(), &["poll", "--once"]);
    let before = run(dir.path(), &["check"]);
    assert!(before.contains("review:   no items marked yet"), "{before}");

    let listed = run(dir.path(), &["items", "list", "--json"]);
    let id_of = |title: &str| -> String {
        listed
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .find(|r| r["title"] == title)
            .map(|r| r["id"].to_string())
            .unwrap_or_else(|| panic!("{title} not in {listed}"))
    };
    let charges = id_of("US charges Chinese firms over fentanyl precursor sales");
    let agency = id_of("US and China agree to curb fentanyl precursor exports");
    run(dir.path(), &["items", "mark", &charges, "irrelevant"]);
    run(dir.path(), &["items", "mark", &agency, "relevant"]);
    let after = run(dir.path(), &["check"]);
    assert!(
        after.contains("review:   learned from 2 reviews (1 relevant, 1 irrelevant): +"),
        "{after}"
    );
    // Rescore runs with what review taught and keeps the marks.
    let dry = run(dir.path(), &["rescore", "--dry-run"]);
    assert!(!dry.is_empty());
    let marked = run(dir.path(), &["items", "list", "--state", "irrelevant"]);
    assert!(marked.contains("US charges Chinese firms"), "{marked}");
}

#[test]
fn a_copy_arriving_after_the_digest_is_not_sent_again() {
    let (server, urls) = two_outlets();
    // First only the agency has the story.
    server.route(
        "/daily.rss",
        Response::ok("application/rss+xml", rss("Daily", &[])),
    );
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), &urls, "");
    run(dir.path(), &["poll", "--once"]);
    run(dir.path(), &["digest", "--now"]);
    // Then the daily's rewrite (and another development) arrive.
    server.route(
        "/daily.rss",
        Response::ok(
            "application/rss+xml",
            rss(
                "Daily",
                &[
                    (
                        "d1",
                        "China, US agree to curb exports of fentanyl precursors",
                        "New controls on the precursor chemicals take effect in May after \
                         talks with Washington, officials in Beijing said.",
                        "Fri, 02 May 2025 10:30:00 GMT",
                    ),
                    (
                        "d3",
                        "Kash Patel visits China as fentanyl cooperation with the US resumes",
                        "The FBI director's low-key visit came after the leaders agreed on \
                         fentanyl; a bilateral working group will work out the deal.",
                        "Tue, 11 Nov 2025 12:00:00 GMT",
                    ),
                    (
                        "d2",
                        "US charges Chinese firms over fentanyl precursor sales",
                        "Federal prosecutors unsealed indictments against two Chinese chemical \
                         companies accused of shipping precursors to cartels.",
                        "Sat, 03 May 2025 09:00:00 GMT",
                    ),
                ],
            ),
        ),
    );
    run(dir.path(), &["poll", "--once"]);
    run(dir.path(), &["digest", "--now"]);
    let digests = crate::support::digest_files(dir.path());
    assert_eq!(digests.len(), 2);
    // File names sort `…-2.md` before `….md`: find the second digest by its number.
    let second = digests
        .iter()
        .find(|d| d.contains("<!-- storywatch digest 2 -->"))
        .unwrap();
    assert!(second.contains("1 new development"), "{second}");
    assert!(second.contains("US charges Chinese firms"), "{second}");
    assert!(!second.contains("agree to curb"), "{second}");
}
