//! Property tests over the parse-and-normalise path of a fetched body: whatever bytes a server
//! sends, parsing returns (no panic), its output is bounded by its input, links are only ever
//! http(s), and any well-formed feed built from arbitrary text parses with every item, also
//! with a declaration after junk or a second one inside.
//!
//! They call [`parse_feed`] itself, the whole path a poll takes, with no guard in front and none
//! inside: a panic found here is a bug to fix, not a shape to skip.
//!
//! Runs with `cargo test` (a few seconds); `PROPTEST_CASES=20000 cargo test --lib proptests`
//! searches harder.

use proptest::prelude::*;

use super::parse::parse_feed;

const FEED_URL: &str = "https://feeds.example/world/rss.xml";

/// Pieces real and hostile feeds are made of; strategies glue them together in any order.
const FRAGMENTS: &[&str] = &[
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>",
    "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>",
    "<?xml version=\"1.0\" encoding=\"UTF-16\"?>",
    "\u{FEFF}",
    "<rss version=\"2.0\">",
    "<rss>",
    "<rss version=\"2.01\">",
    "</rss>",
    "<channel>",
    "</channel>",
    "<item>",
    "</item>",
    "<title>",
    "</title>",
    "<link>",
    "</link>",
    "<description>",
    "</description>",
    "<guid>",
    "</guid>",
    "<pubDate>Mon, 02 Sep 2024 08:15:00 GMT</pubDate>",
    "<pubDate>yesterday-ish</pubDate>",
    "<ttl>60</ttl>",
    "<ttl>99999999999999999999</ttl>",
    "<feed xmlns=\"http://www.w3.org/2005/Atom\">",
    "</feed>",
    "<entry>",
    "</entry>",
    "<link href=\"/relative/path\"/>",
    "<link href=\"javascript:alert(1)\"/>",
    "<content type=\"html\">",
    "</content>",
    "<![CDATA[",
    "]]>",
    "&amp;",
    "&lt;script&gt;alert(1)&lt;/script&gt;",
    "&nbsp;",
    "&#x1F600;",
    "&#0;",
    "&undefined;",
    "<script>alert(1)</script>",
    "<style>body{}</style>",
    "<img src=x onerror=alert(1)>",
    "<a href=\"javascript:alert(1)\">x</a>",
    "javascript:alert(1)",
    "http://example.com/a",
    "data:text/html,hi",
    "Fentanyl talks resume",
    "\u{0}",
    "\r\n",
    "<!DOCTYPE html><html><body>",
    "<!DOCTYPE rss [<!ENTITY x \"xxxxxxxxxx\">]>",
    "&x;",
    "{\"version\":\"https://jsonfeed.org/version/1.1\",\"items\":[",
    "{\"id\":\"1\",\"title\":\"t\",\"url\":\"javascript:x\"}",
    "]}",
    "é",
    "\u{202E}",
    "<?xml?>",
    "<?xml version=\"1.0\" encoding=\"windows-1252\"?>",
    "<?xml-stylesheet href=\"s.xsl\"?>",
    "<!-- <?xml version=\"1.0\" encoding=\"UTF-16\"?> -->",
    "\"",
    " a=\"",
    "Notice: undefined index\n",
];

fn fragments() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![
            4 => prop::sample::select(FRAGMENTS).prop_map(|f| f.as_bytes().to_vec()),
            1 => "[ -~]{0,12}".prop_map(String::into_bytes),
            1 => prop::collection::vec(any::<u8>(), 0..8),
        ],
        0..60,
    )
    .prop_map(|parts| parts.concat())
}

/// Every produced item is plain, bounded, and links only to http(s).
fn check_output(body: &[u8]) -> Result<(), TestCaseError> {
    let Ok(feed) = parse_feed(body, Some("application/rss+xml; charset=utf-8"), FEED_URL) else {
        return Ok(());
    };
    // Entity decoding can at most roughly double the text; a generous linear bound catches any
    // blow-up (entity expansion, runaway allocation).
    let limit = 4 * body.len() + 4096;
    let mut total = feed.title.as_ref().map_or(0, String::len);
    prop_assert!(feed.items.len() <= body.len() + 1);
    for item in &feed.items {
        total += item.title.len() + item.summary.len() + item.content.len();
        total += item.link.as_ref().map_or(0, String::len) + item.dedup_key.len();
        if let Some(link) = &item.link {
            prop_assert!(
                link.starts_with("http://") || link.starts_with("https://"),
                "unsafe link {link:?}"
            );
        }
        for text in [&item.title, &item.summary, &item.content] {
            let lower = text.to_ascii_lowercase();
            prop_assert!(!lower.contains("<script"), "markup left in {text:?}");
            prop_assert!(!lower.contains("onerror="), "markup left in {text:?}");
        }
    }
    prop_assert!(
        total <= limit,
        "{total} bytes of output from {} bytes",
        body.len()
    );
    Ok(())
}

/// Text a person could put in a title: any characters XML allows. (Items are given a plain
/// prefix too: an item with no text at all is dropped on purpose.)
fn xml_text() -> impl Strategy<Value = String> {
    prop::collection::vec(any::<char>(), 0..40).prop_map(|chars| {
        chars
            .into_iter()
            .filter(|c| {
                matches!(*c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
            })
            .collect()
    })
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

proptest! {
    #![proptest_config(ProptestConfig {
        // About a second in a debug build; PROPTEST_CASES raises it for a longer search.
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or(1024),
        ..ProptestConfig::default()
    })]

    #[test]
    fn arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..2048)) {
        check_output(&body)?;
    }

    #[test]
    fn feed_shaped_noise_never_panics_and_stays_safe(body in fragments()) {
        check_output(&body)?;
    }

    #[test]
    fn well_formed_feeds_parse_with_every_item(
        items in prop::collection::vec((xml_text(), xml_text()), 1..8)
    ) {
        let mut body = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?><rss version=\"2.0\"><channel><title>T</title>");
        for (n, (title, description)) in items.iter().enumerate() {
            body.push_str(&format!(
                "<item><title>Item {n} {}</title><guid>id-{n}</guid><description>{}</description></item>",
                escape(title),
                escape(description)
            ));
        }
        body.push_str("</channel></rss>");
        let feed = parse_feed(body.as_bytes(), None, FEED_URL)
            .map_err(|e| TestCaseError::fail(format!("{e}: {body}")))?;
        prop_assert_eq!(feed.items.len(), items.len());
        check_output(body.as_bytes())?;
    }

    #[test]
    fn declarations_after_junk_or_inside_do_not_lose_items(
        items in prop::collection::vec(xml_text(), 1..6),
        prefix in prop::sample::select(&["", "\n \t", "\u{FEFF}", "\u{FEFF}\n", "Warning: x\n", "<!-- c -->"][..]),
        label in prop::sample::select(&["UTF-8", "ISO-8859-1", "windows-1252", "UTF-16", "utf-16le", "bogus"][..]),
        stray_at in 0usize..6,
    ) {
        let decl = format!("<?xml version=\"1.0\" encoding=\"{label}\"?>");
        let mut body = format!("{prefix}{decl}<rss version=\"2.0\"><channel><title>T</title>");
        for (n, title) in items.iter().enumerate() {
            if n == stray_at {
                body.push_str(&decl);
            }
            body.push_str(&format!("<item><title>Item {n} {}</title><guid>id-{n}</guid></item>", escape(title)));
        }
        body.push_str("</channel></rss>");
        let feed = parse_feed(body.as_bytes(), None, FEED_URL)
            .map_err(|e| TestCaseError::fail(format!("{e}: {body:?}")))?;
        prop_assert_eq!(feed.items.len(), items.len(), "{:?}", body);
        for (n, item) in feed.items.iter().enumerate() {
            let expected = format!("Item {n}");
            prop_assert!(item.title.starts_with(&expected), "{:?} in {:?}", item.title, body);
        }
    }
}
