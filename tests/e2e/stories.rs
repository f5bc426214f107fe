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
                &[(
                    "a1",
                    "US and China agree to curb fentanyl precursor exports",
                    "Officials in Beijing said new controls on precursor chemicals would take \
                     effect in May after talks with Washington.",
                    "Fri, 02 May 2025 08:00:00 GMT",
                )],
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
    assert!(polled.contains("3 new matches"), "{polled}");
    run(dir.path(), &["digest", "--now"]);
    let digest = only_digest(dir.path());
    assert!(digest.contains("2 new developments"), "{digest}");
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
}
