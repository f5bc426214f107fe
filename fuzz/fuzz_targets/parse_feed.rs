//! Fuzzes the parse-and-normalise path of a fetched body: any bytes, with and without a
//! Content-Type charset. Run from `fuzz/`: `RUSTC_BOOTSTRAP=1 cargo fuzz run parse_feed`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte picks the Content-Type, as servers vary it.
    let (kind, body) = data.split_first().map_or((0, data), |(k, b)| (*k, b));
    let content_type = match kind % 4 {
        0 => None,
        1 => Some("application/rss+xml; charset=utf-8"),
        2 => Some("text/xml; charset=iso-8859-1"),
        _ => Some("application/feed+json"),
    };
    if let Ok(feed) =
        storywatch::feeds::parse_feed(body, content_type, "https://feeds.example/rss.xml")
    {
        for item in &feed.items {
            if let Some(link) = &item.link {
                assert!(link.starts_with("http://") || link.starts_with("https://"));
            }
        }
    }
});
