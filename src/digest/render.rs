//! Rendering a digest as Markdown.
//!
//! Feed text is untrusted: every piece of it is escaped so it renders as literal text in any
//! Markdown viewer (no raw HTML, no injected links), and links are emitted only when they are
//! http(s).

use std::fmt::Write as _;

use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::config::EmptyDigest;
use crate::store::{DigestInput, MatchRow};
use crate::story::{BaselineArticle, VerdictKind};

/// What the renderer needs besides the matches.
#[derive(Debug, Clone, Copy)]
pub struct RenderContext<'a> {
    /// The story's display name.
    pub story_name: &'a str,
    /// The story's baseline articles, to name what each development follows up on.
    pub baselines: &'a [BaselineArticle],
    /// The zone dates are shown in.
    pub timezone: &'a TimeZone,
    /// The zone's name, for the footer.
    pub timezone_name: &'a str,
    /// What to do with an empty period.
    pub empty: EmptyDigest,
}

/// The longest one-line summary, in characters.
const SUMMARY_CHARS: usize = 240;

/// Renders the digest, or `None` when the period is empty and the policy is to skip.
pub fn render_markdown(ctx: &RenderContext<'_>, input: &DigestInput) -> Option<String> {
    let developments: Vec<&MatchRow> = input
        .matches
        .iter()
        .filter(|m| m.verdict == VerdictKind::FollowUp)
        .collect();
    let compact: Vec<&MatchRow> = input
        .matches
        .iter()
        .filter(|m| m.verdict != VerdictKind::FollowUp)
        .collect();
    if input.matches.is_empty() && ctx.empty == EmptyDigest::Skip {
        return None;
    }

    let mut out = String::new();
    let _ = writeln!(out, "# {} — storywatch digest", escape(ctx.story_name));
    let _ = writeln!(out);
    let headline = match developments.len() {
        0 => "No new developments".to_string(),
        1 => "1 new development".to_string(),
        n => format!("{n} new developments"),
    };
    let _ = writeln!(
        out,
        "*{} · {}*",
        local_date_time(input.period_end, ctx.timezone),
        headline
    );
    let _ = writeln!(out);

    if developments.is_empty() {
        let _ = writeln!(out, "Nothing new on this story since the last digest.");
        let _ = writeln!(out);
    }

    // Group by the baseline article followed up on; groups ordered by their newest development,
    // developments newest first (the store hands them over newest first).
    let mut groups: Vec<(Option<&str>, Vec<&MatchRow>)> = Vec::new();
    for m in &developments {
        let key = m.baseline.as_deref();
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, list)) => list.push(m),
            None => groups.push((key, vec![m])),
        }
    }
    for (baseline_id, items) in &groups {
        let _ = writeln!(out, "## {}", following_up_heading(ctx, *baseline_id));
        let _ = writeln!(out);
        for m in items {
            write_entry(&mut out, ctx, m);
        }
    }

    if !compact.is_empty() {
        let _ = writeln!(out, "## Re-reports and related coverage");
        let _ = writeln!(out);
        for m in &compact {
            let kind = match m.verdict {
                VerdictKind::ReReport => "re-report",
                _ => "related",
            };
            let about = m
                .baseline
                .as_deref()
                .and_then(|id| baseline(ctx, id))
                .map(|b| format!(" of *{}*", escape(&b.title)))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "- {} — {}, {} — {kind}{about}",
                linked_title(m),
                escape(m.source.as_deref().unwrap_or("unknown outlet")),
                local_date_time(shown_time(m), ctx.timezone),
            );
        }
        let _ = writeln!(out);
    }

    let _ = writeln!(out, "---");
    let _ = writeln!(out);
    let since = input.period_start.map_or_else(
        || "the first poll".to_string(),
        |start| local_date_time(start, ctx.timezone),
    );
    let _ = writeln!(
        out,
        "Period: {since} – {} ({}) · {} items scanned · {} feeds polled",
        local_date_time(input.period_end, ctx.timezone),
        escape(ctx.timezone_name),
        input.items_scanned,
        input.feeds_polled,
    );
    if input.failing_feeds.is_empty() {
        let _ = writeln!(out, "Feed health: all feeds answered at their last poll.");
    } else {
        let names: Vec<String> = input
            .failing_feeds
            .iter()
            .map(|(name, error)| format!("{} ({})", escape(name), escape(error)))
            .collect();
        let _ = writeln!(
            out,
            "Feed health: {} failing — {}",
            names.len(),
            names.join("; ")
        );
    }
    Some(out)
}

fn write_entry(out: &mut String, ctx: &RenderContext<'_>, m: &MatchRow) {
    let _ = writeln!(out, "### {}", linked_title(m));
    let _ = writeln!(
        out,
        "{} · {} · follow-up (score {:.2})",
        escape(m.source.as_deref().unwrap_or("unknown outlet")),
        local_date_time(shown_time(m), ctx.timezone),
        m.score,
    );
    let _ = writeln!(out);
    let summary = one_line(&m.summary);
    if !summary.is_empty() {
        let _ = writeln!(out, "> {}", escape(&summary));
        let _ = writeln!(out);
    }
    if !m.why.is_empty() {
        let _ = writeln!(out, "Why: {}", escape(&m.why.join("; ")));
        let _ = writeln!(out);
    }
}

fn following_up_heading(ctx: &RenderContext<'_>, baseline_id: Option<&str>) -> String {
    match baseline_id.and_then(|id| baseline(ctx, id)) {
        Some(b) => {
            let mut heading = format!("Following up: *{}*", escape(&b.title));
            let mut credit = Vec::new();
            if let Some(outlet) = &b.outlet {
                credit.push(escape(outlet));
            }
            if let Some(date) = b.published {
                credit.push(date.strftime("%-d %b %Y").to_string());
            }
            if !credit.is_empty() {
                heading.push_str(" — ");
                heading.push_str(&credit.join(", "));
            }
            heading
        }
        None => "Other developments".to_string(),
    }
}

fn baseline<'a>(ctx: &RenderContext<'a>, id: &str) -> Option<&'a BaselineArticle> {
    ctx.baselines.iter().find(|b| b.id == id)
}

fn shown_time(m: &MatchRow) -> Timestamp {
    m.published_at.unwrap_or(m.first_seen_at)
}

fn linked_title(m: &MatchRow) -> String {
    let title = escape(&m.title);
    match m.link.as_deref().filter(|l| is_http(l)) {
        Some(link) => format!("[{title}](<{}>)", link.replace(['<', '>', ' '], "")),
        None => title,
    }
}

fn is_http(link: &str) -> bool {
    let lower = link.trim_start().to_ascii_lowercase();
    lower.starts_with("https://") || lower.starts_with("http://")
}

/// `30 Oct 2025, 07:30` in the digest's zone.
fn local_date_time(time: Timestamp, zone: &TimeZone) -> String {
    time.to_zoned(zone.clone())
        .strftime("%-d %b %Y, %H:%M")
        .to_string()
}

/// The first sentence of a summary, cut at a word boundary if long.
fn one_line(summary: &str) -> String {
    let flat: String = summary.split_whitespace().collect::<Vec<_>>().join(" ");
    let sentence_end = flat
        .char_indices()
        .find(|&(i, c)| {
            matches!(c, '.' | '!' | '?') && flat[i + c.len_utf8()..].starts_with(' ') && i > 40
        })
        .map(|(i, c)| i + c.len_utf8());
    let sentence = sentence_end.map_or(flat.as_str(), |end| &flat[..end]);
    if sentence.chars().count() <= SUMMARY_CHARS {
        return sentence.to_string();
    }
    let cut: String = sentence.chars().take(SUMMARY_CHARS).collect();
    let cut = cut.rsplit_once(' ').map_or(cut.as_str(), |(head, _)| head);
    format!("{cut}…")
}

/// Escapes text so Markdown shows it literally: no emphasis, links, headings or raw HTML.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if matches!(
            c,
            '\\' | '`'
                | '*'
                | '_'
                | '{'
                | '}'
                | '['
                | ']'
                | '('
                | ')'
                | '#'
                | '+'
                | '!'
                | '|'
                | '<'
                | '>'
                | '~'
                | '&'
        ) {
            out.push('\\');
        }
        if c == '\n' || c == '\r' {
            out.push(' ');
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Review;

    fn baselines() -> Vec<BaselineArticle> {
        vec![BaselineArticle {
            id: "002_x".into(),
            title: "US and China to resume stalled fentanyl talks in Beijing".into(),
            outlet: Some("AFP".into()),
            published: Some(jiff::civil::date(2024, 1, 29)),
            url: None,
            text: String::new(),
        }]
    }

    fn row(id: i64, title: &str, verdict: VerdictKind, link: &str) -> MatchRow {
        MatchRow {
            id,
            story: "s".into(),
            title: title.into(),
            summary: "First sentence is long enough to count as one sentence here. Second one."
                .into(),
            link: Some(link.into()),
            source: Some("Reuters".into()),
            feed_url: "https://feed.example/".into(),
            published_at: Some("2025-10-30T07:30:00Z".parse().unwrap()),
            first_seen_at: "2025-10-30T08:00:00Z".parse().unwrap(),
            verdict,
            score: 0.91,
            baseline: Some("002_x".into()),
            why: vec!["terms: fentanyl, tariff".into()],
            review: Review::Unreviewed,
            digest_id: None,
        }
    }

    fn input(matches: Vec<MatchRow>) -> DigestInput {
        DigestInput {
            matches,
            period_start: None,
            period_end: "2025-10-31T07:00:00Z".parse().unwrap(),
            items_scanned: 42,
            feeds_polled: 3,
            failing_feeds: vec![("Broken Feed".into(), "timed out".into())],
        }
    }

    fn ctx<'a>(
        baselines: &'a [BaselineArticle],
        zone: &'a TimeZone,
        empty: EmptyDigest,
    ) -> RenderContext<'a> {
        RenderContext {
            story_name: "Fentanyl",
            baselines,
            timezone: zone,
            timezone_name: "UTC",
            empty,
        }
    }

    #[test]
    fn names_the_baseline_followed_up_and_the_footer() {
        let b = baselines();
        let md = render_markdown(
            &ctx(&b, &TimeZone::UTC, EmptyDigest::Send),
            &input(vec![
                row(
                    1,
                    "Trump cuts fentanyl tariffs",
                    VerdictKind::FollowUp,
                    "https://n.example/1",
                ),
                row(
                    2,
                    "Old meeting recap",
                    VerdictKind::ReReport,
                    "https://n.example/2",
                ),
            ]),
        )
        .unwrap();
        assert!(md.contains("## Following up: *US and China to resume stalled fentanyl talks in Beijing* — AFP, 29 Jan 2024"), "{md}");
        assert!(
            md.contains("### [Trump cuts fentanyl tariffs](<https://n.example/1>)"),
            "{md}"
        );
        assert!(
            md.contains("Reuters · 30 Oct 2025, 07:30 · follow-up"),
            "{md}"
        );
        assert!(
            md.contains("> First sentence is long enough to count as one sentence here."),
            "{md}"
        );
        assert!(!md.contains("Second one"), "{md}");
        assert!(md.contains("re-report of *US and China"), "{md}");
        assert!(md.contains("42 items scanned · 3 feeds polled"), "{md}");
        assert!(
            md.contains("Feed health: 1 failing — Broken Feed (timed out)"),
            "{md}"
        );
    }

    #[test]
    fn hostile_feed_text_is_inert() {
        let b = baselines();
        let mut evil = row(
            1,
            "<script>alert(1)</script> [click](javascript:x)",
            VerdictKind::FollowUp,
            "javascript:alert(1)",
        );
        evil.summary = "<img src=x onerror=alert(1)> **bold**".into();
        let md = render_markdown(
            &ctx(&b, &TimeZone::UTC, EmptyDigest::Send),
            &input(vec![evil]),
        )
        .unwrap();
        // Every '<' from the feed is backslash-escaped, so no viewer sees a tag.
        let unescaped_angle = md
            .match_indices('<')
            .any(|(i, _)| i == 0 || &md[i - 1..i] != "\\" && !md[i..].starts_with("<https://"));
        assert!(!unescaped_angle, "{md}");
        assert!(!md.contains("](javascript"), "{md}");
        assert!(md.contains("\\<script\\>"), "{md}");
    }

    #[test]
    fn empty_period_policy() {
        let b = baselines();
        let zone = TimeZone::UTC;
        assert!(render_markdown(&ctx(&b, &zone, EmptyDigest::Skip), &input(vec![])).is_none());
        let md = render_markdown(&ctx(&b, &zone, EmptyDigest::Send), &input(vec![])).unwrap();
        assert!(md.contains("No new developments"), "{md}");
    }

    #[test]
    fn dates_are_local() {
        let b = baselines();
        let zone = TimeZone::get("Asia/Shanghai").unwrap();
        let md = render_markdown(
            &ctx(&b, &zone, EmptyDigest::Send),
            &input(vec![row(
                1,
                "t",
                VerdictKind::FollowUp,
                "https://n.example/1",
            )]),
        )
        .unwrap();
        assert!(md.contains("30 Oct 2025, 15:30"), "{md}");
    }

    #[test]
    fn long_summaries_are_cut_at_a_word() {
        let long = "word ".repeat(100);
        let line = one_line(&long);
        assert!(line.ends_with('…') && line.chars().count() <= SUMMARY_CHARS + 1);
    }
}
