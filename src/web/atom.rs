//! `/feed.atom`: the matched items as an Atom 1.0 feed, every value escaped.
//!
//! Self-contained (depends only on [`MatchRow`]) so it can move to `digest` when the digest
//! channel's own Atom export lands; the signature matches that function's.

use jiff::Timestamp;

use crate::store::MatchRow;

/// Escapes text for XML element content and attribute values, and drops characters XML 1.0
/// cannot carry (most control characters), which feeds do contain.
pub fn escape_xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

/// The http(s) link of a match, or `None` for anything else (`javascript:`, `data:`, relative).
pub fn safe_link(link: Option<&str>) -> Option<&str> {
    let link = link?;
    let parsed = url::Url::parse(link).ok()?;
    matches!(parsed.scheme(), "http" | "https").then_some(link)
}

/// Renders `matches` (newest first) as an Atom feed for `story`, updated at `now`.
pub fn atom_feed(story: &str, matches: &[MatchRow], now: Timestamp) -> String {
    let updated = matches
        .iter()
        .map(|m| m.published_at.unwrap_or(m.first_seen_at))
        .max()
        .unwrap_or(now);
    let mut out = String::new();
    out.push_str("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n");
    out.push_str("<feed xmlns=\"http://www.w3.org/2005/Atom\">\n");
    out.push_str(&format!(
        "  <title>storywatch: {}</title>\n  <id>urn:storywatch:story:{}</id>\n  <updated>{}</updated>\n  <generator>storywatch</generator>\n",
        escape_xml(story),
        escape_xml(&story.replace(char::is_whitespace, "-")),
        rfc3339(updated)
    ));
    for m in matches {
        out.push_str("  <entry>\n");
        out.push_str(&format!(
            "    <title>{}</title>\n    <id>urn:storywatch:item:{}</id>\n    <updated>{}</updated>\n",
            escape_xml(&m.title),
            m.id,
            rfc3339(m.published_at.unwrap_or(m.first_seen_at))
        ));
        if let Some(link) = safe_link(m.link.as_deref()) {
            out.push_str(&format!(
                "    <link rel=\"alternate\" href=\"{}\"/>\n",
                escape_xml(link)
            ));
        }
        if let Some(source) = &m.source {
            out.push_str(&format!(
                "    <author><name>{}</name></author>\n",
                escape_xml(source)
            ));
        }
        let verdict = serde_json::to_value(m.verdict)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        out.push_str(&format!(
            "    <category term=\"{}\"/>\n    <summary type=\"text\">{}</summary>\n",
            escape_xml(&verdict),
            escape_xml(&m.summary)
        ));
        out.push_str("  </entry>\n");
    }
    out.push_str("</feed>\n");
    out
}

fn rfc3339(time: Timestamp) -> String {
    time.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}
