//! Matched items as an Atom 1.0 feed (RFC 4287), so a person can follow matches in their own
//! feed reader. `storywatch export atom` writes it; the review page can serve the same string.
//!
//! All text is XML-escaped and stripped of characters XML 1.0 forbids; summaries go out as
//! `type="text"` so a reader never interprets feed-supplied markup; links are http(s) only.

use std::fmt::Write as _;

use jiff::Timestamp;

use super::model::http_link;
use super::render::verdict_label;
use crate::store::MatchRow;

/// Escapes text for XML content and attributes, dropping characters XML 1.0 does not allow.
pub fn escape_xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
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

/// The Atom feed of `matches` (newest first, as [`crate::store::Store::list_matches`] returns
/// them) for the followed `stories` (named in config order in the feed's title and id, so
/// `export atom` and the review page's `/feed.atom` are one feed); `now` is the feed's
/// `updated` when there are no entries. An item matched by several stories is one entry naming
/// each story's verdict.
pub fn atom_feed(stories: &[&str], matches: &[MatchRow], now: Timestamp) -> String {
    let story = stories.join(" · ");
    let story = story.as_str();
    let updated = matches.iter().map(|m| m.first_seen_at).max().unwrap_or(now);
    let mut out = String::new();
    let _ = writeln!(out, "<?xml version=\"1.0\" encoding=\"utf-8\"?>");
    let _ = writeln!(out, "<feed xmlns=\"http://www.w3.org/2005/Atom\">");
    let _ = writeln!(
        out,
        "  <title>{} — storywatch matches</title>",
        escape_xml(story)
    );
    let _ = writeln!(out, "  <id>urn:storywatch:story:{}</id>", urn_part(story));
    let _ = writeln!(out, "  <updated>{}</updated>", rfc3339(updated));
    let _ = writeln!(
        out,
        "  <generator version=\"{}\">storywatch</generator>",
        env!("CARGO_PKG_VERSION")
    );
    // One entry per item: an item several stories matched is one row per story in `matches`,
    // but a feed reader keys entries by id, so its stories share one entry that names them all.
    let mut items: Vec<Vec<&MatchRow>> = Vec::new();
    for m in matches {
        match items.iter_mut().find(|rows| rows[0].id == m.id) {
            Some(rows) => rows.push(m),
            None => items.push(vec![m]),
        }
    }
    for rows in &items {
        let m = rows[0];
        let _ = writeln!(out, "  <entry>");
        let _ = writeln!(
            out,
            "    <title type=\"text\">{}</title>",
            escape_xml(&m.title)
        );
        let _ = writeln!(
            out,
            "    <id>urn:storywatch:item:{}:{}</id>",
            m.id,
            m.first_seen_at.as_second()
        );
        // `updated` is when storywatch matched it, so readers order by arrival.
        let _ = writeln!(out, "    <updated>{}</updated>", rfc3339(m.first_seen_at));
        if let Some(published) = m.published_at {
            let _ = writeln!(out, "    <published>{}</published>", rfc3339(published));
        }
        let author = m.source.as_deref().unwrap_or("unknown outlet");
        let _ = writeln!(
            out,
            "    <author><name>{}</name></author>",
            escape_xml(author)
        );
        if let Some(link) = http_link(m.link.as_deref()) {
            let _ = writeln!(
                out,
                "    <link rel=\"alternate\" href=\"{}\"/>",
                escape_xml(&link)
            );
        }
        let mut verdicts: Vec<&str> = Vec::new();
        for r in rows {
            if !verdicts.contains(&verdict_label(r.verdict)) {
                verdicts.push(verdict_label(r.verdict));
            }
        }
        for verdict in verdicts {
            let _ = writeln!(out, "    <category term=\"{verdict}\"/>");
        }
        let several = rows.len() > 1;
        if several {
            for r in rows {
                let _ = writeln!(
                    out,
                    "    <category scheme=\"urn:storywatch:story\" term=\"{}\" label=\"{}\"/>",
                    urn_part(&r.story),
                    escape_xml(&r.story)
                );
            }
        }
        let mut summary = m.summary.trim().to_string();
        for r in rows {
            if r.why.is_empty() && !several {
                continue;
            }
            if !summary.is_empty() {
                summary.push_str("\n\n");
            }
            // With several stories each says which one its verdict is for.
            if several {
                summary.push_str(&format!("{}: ", r.story));
            }
            summary.push_str(verdict_label(r.verdict));
            if !r.why.is_empty() {
                summary.push_str(&format!(" — why: {}", r.why.join("; ")));
            }
        }
        if !summary.is_empty() {
            let _ = writeln!(
                out,
                "    <summary type=\"text\">{}</summary>",
                escape_xml(&summary)
            );
        }
        let _ = writeln!(out, "  </entry>");
    }
    let _ = writeln!(out, "</feed>");
    out
}

fn rfc3339(time: Timestamp) -> String {
    time.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A story name as a URN segment: letters and digits kept, everything else percent-encoded.
fn urn_part(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || byte == b'-' {
            out.push(byte as char);
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::model::tests::row;
    use crate::story::VerdictKind;

    #[test]
    fn feed_is_escaped_and_links_are_http_only() {
        let mut evil = row(
            1,
            "<script>alert('x')</script> & \u{1}",
            VerdictKind::FollowUp,
            "javascript:alert(1)",
        );
        evil.summary = "]]> <b>bold</b>".into();
        let good = row(
            2,
            "Fine",
            VerdictKind::ReReport,
            "https://n.example/?a=1&b=2",
        );
        let xml = atom_feed(&["US–China"], &[evil, good], Timestamp::UNIX_EPOCH);
        assert!(xml.starts_with("<?xml"), "{xml}");
        assert!(!xml.contains("<script"), "{xml}");
        assert!(!xml.contains("<b>"), "{xml}");
        assert!(!xml.contains("javascript:"), "{xml}");
        assert!(!xml.contains('\u{1}'), "{xml}");
        assert!(
            xml.contains("href=\"https://n.example/?a=1&amp;b=2\""),
            "{xml}"
        );
        assert!(
            xml.contains("<id>urn:storywatch:story:US%E2%80%93China</id>"),
            "{xml}"
        );
        assert_eq!(xml.matches("<entry>").count(), 2);
        assert!(
            xml.contains("<updated>2025-10-30T08:00:00Z</updated>"),
            "{xml}"
        );
    }

    #[test]
    fn an_item_of_several_stories_is_one_entry_naming_them_all() {
        let mut first = row(
            1,
            "China schedules precursors",
            VerdictKind::FollowUp,
            "https://n.example/1",
        );
        first.story = "Fentanyl".into();
        let mut second = first.clone();
        second.story = "Trade & tariffs".into();
        second.verdict = VerdictKind::Related;
        second.why = vec!["terms: tariff".into()];
        let other = row(2, "Other", VerdictKind::FollowUp, "https://n.example/2");
        let xml = atom_feed(
            &["Fentanyl"],
            &[first, second, other],
            Timestamp::UNIX_EPOCH,
        );
        assert_eq!(xml.matches("<entry>").count(), 2, "{xml}");
        let ids: Vec<&str> = xml
            .match_indices("<id>urn:storywatch:item:")
            .map(|(i, _)| &xml[i..i + xml[i..].find("</id>").unwrap()])
            .collect();
        assert_eq!(ids.len(), 2);
        assert_ne!(ids[0], ids[1], "{xml}");
        assert!(
            xml.contains("Fentanyl: follow-up — why: terms: fentanyl, tariff")
                && xml.contains("Trade &amp; tariffs: related — why: terms: tariff"),
            "{xml}"
        );
        assert!(
            xml.contains("term=\"Trade%20%26%20tariffs\" label=\"Trade &amp; tariffs\""),
            "{xml}"
        );
        assert!(
            xml.contains("<category term=\"follow-up\"/>\n    <category term=\"related\"/>"),
            "{xml}"
        );
    }
}
