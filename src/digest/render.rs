//! Rendering a digest as Markdown — the text every channel carries (the file, stdout, the
//! plain-text part of e-mail).
//!
//! Feed text is untrusted: every piece of it is escaped so it renders as literal text in any
//! Markdown viewer (no raw HTML, no injected links), and links are emitted only when they are
//! http(s). What goes into the digest and in which order is decided once, in
//! [`Digest::build`](super::model::Digest::build); this module only writes it down.

use std::fmt::Write as _;

use jiff::tz::TimeZone;

use crate::config::{EmptyDigest, RelatedMode};
use crate::store::DigestInput;
use crate::story::{BaselineArticle, VerdictKind};

use super::model::{Digest, FeedHealth, FeedState, Section};

/// What the renderer needs besides the matches.
#[derive(Debug, Clone, Copy)]
pub struct RenderContext<'a> {
    /// The story's display name (several stories' names joined).
    pub story_name: &'a str,
    /// With several stories, their names in config order: the digest shows each story's
    /// developments under its name, in this order. Empty or one name for a single story.
    pub stories: &'a [String],
    /// The story's baseline articles, to name what each development follows up on.
    pub baselines: &'a [BaselineArticle],
    /// The zone dates are shown in.
    pub timezone: &'a TimeZone,
    /// The zone's name, for the footer.
    pub timezone_name: &'a str,
    /// What to do with an empty period.
    pub empty: EmptyDigest,
    /// How re-reports and related items are shown.
    pub related: RelatedMode,
}

/// Renders the digest, or `None` when the period is empty and the policy is to skip.
pub fn render_markdown(ctx: &RenderContext<'_>, input: &DigestInput) -> Option<String> {
    Digest::build(ctx, input).map(|digest| to_markdown(&digest))
}

/// The digest as Markdown.
pub fn to_markdown(digest: &Digest) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# {} — storywatch digest", escape(&digest.story));
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "*{} · {}*",
        digest.local(digest.period_end),
        digest.headline()
    );
    let _ = writeln!(out);
    if digest.sections.is_empty() {
        let _ = writeln!(out, "Nothing new on this story since the last digest.");
        let _ = writeln!(out);
    }
    for section in &digest.sections {
        let _ = writeln!(out, "## {}", section_heading(section));
        let _ = writeln!(out);
        for e in &section.entries {
            let _ = writeln!(out, "### {}", linked(&e.title, e.link.as_deref()));
            let _ = write!(
                out,
                "{} · {} · follow-up (score {:.2})",
                escape(e.outlet.as_deref().unwrap_or("unknown outlet")),
                digest.local(e.time),
                e.score,
            );
            if e.also_reported_by.is_empty() {
                let _ = writeln!(out);
            } else {
                // Two trailing spaces: a Markdown line break, so a viewer shows the copies on a
                // line of their own instead of running them into the score.
                let _ = writeln!(
                    out,
                    "  \nAlso reported by {}",
                    escape(&e.also_reported_by.join(", "))
                );
            }
            let _ = writeln!(out);
            if !e.summary.is_empty() {
                let _ = writeln!(out, "> {}", escape(&e.summary));
                let _ = writeln!(out);
            }
            if !e.why.is_empty() {
                let _ = writeln!(out, "Why: {}", escape(&e.why.join("; ")));
                let _ = writeln!(out);
            }
        }
    }

    let compact = &digest.compact;
    let compact_total = compact.re_reports + compact.related;
    if compact.mode != RelatedMode::Hide && compact_total > 0 {
        let _ = writeln!(out, "## Re-reports and related coverage");
        let _ = writeln!(out);
        if compact.mode == RelatedMode::Show {
            for c in &compact.entries {
                let about = c
                    .baseline_title
                    .as_deref()
                    .map(|t| format!(" {} *{}*", about_word(c.verdict), escape(t)))
                    .unwrap_or_default();
                let also = also_reported_suffix(&c.also_reported_by, escape);
                let _ = writeln!(
                    out,
                    "- {} — {}, {} — {}{about}{also}",
                    linked(&c.title, c.link.as_deref()),
                    escape(c.outlet.as_deref().unwrap_or("unknown outlet")),
                    digest.local(c.time),
                    verdict_label(c.verdict),
                );
            }
        } else {
            let _ = writeln!(out, "{}", compact_count_line(digest));
        }
        let _ = writeln!(out);
    }

    let _ = writeln!(out, "---");
    let _ = writeln!(out);
    let _ = writeln!(out, "{}", footer_period_line(digest, escape));
    let _ = writeln!(out, "{}", footer_health_line(digest, escape));
    out
}

/// `Following up: *Title* — AFP, 29 Jan 2024` (Markdown, escaped).
fn section_heading(section: &Section) -> String {
    let prefix = section.story_prefix(escape);
    let heading = match &section.baseline {
        Some(b) => {
            let mut heading = format!("Following up: *{}*", escape(&b.title));
            if let Some(credit) = b.credit() {
                heading.push_str(" — ");
                heading.push_str(&escape(&credit));
            }
            heading
        }
        None => "Other developments".to_string(),
    };
    format!("{prefix}{heading}")
}

/// `re-report` / `related`.
pub fn verdict_label(kind: VerdictKind) -> &'static str {
    match kind {
        VerdictKind::FollowUp => "follow-up",
        VerdictKind::ReReport => "re-report",
        VerdictKind::Related => "related",
        VerdictKind::OffTopic => "off-topic",
    }
}

/// "re-report *of* X", "related *to* X".
pub fn about_word(kind: VerdictKind) -> &'static str {
    match kind {
        VerdictKind::ReReport => "of",
        _ => "to",
    }
}

/// ` (also reported by AP, AFP)` after a compact entry, or nothing when it has no copies; `esc`
/// escapes the outlets for the format.
pub fn also_reported_suffix(outlets: &[String], esc: impl Fn(&str) -> String) -> String {
    if outlets.is_empty() {
        String::new()
    } else {
        format!(" (also reported by {})", esc(&outlets.join(", ")))
    }
}

/// `2 re-reports and 1 related item not listed.` (plain text).
pub fn compact_count_line(digest: &Digest) -> String {
    let plural =
        |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    format!(
        "{} and {} not listed.",
        plural(digest.compact.re_reports, "re-report", "re-reports"),
        plural(digest.compact.related, "related item", "related items")
    )
}

/// The footer's period line; `esc` escapes the configured and feed-given parts for the format.
pub fn footer_period_line(digest: &Digest, esc: impl Fn(&str) -> String) -> String {
    let (since, until) = digest.period_text();
    format!(
        "Period: {since} – {until} ({}) · {} items scanned · {} feeds polled",
        esc(&digest.timezone),
        digest.footer.items_scanned,
        digest.footer.feeds_polled,
    )
}

/// The footer's feed-health line: the feeds failing now, the disabled ones, and those that
/// failed since the last digest but answer again (the period may lack their items); `esc`
/// escapes the feed names and errors for the format.
pub fn footer_health_line(digest: &Digest, esc: impl Fn(&str) -> String) -> String {
    let feeds = &digest.footer.failing_feeds;
    if feeds.is_empty() {
        return "Feed health: every feed answered at every poll in the period.".to_string();
    }
    let group = |state: FeedState, what: &str, detail: &dyn Fn(&FeedHealth) -> String| {
        let names: Vec<String> = feeds
            .iter()
            .filter(|f| f.state == state)
            .map(|f| format!("{} ({})", esc(&f.feed), detail(f)))
            .collect();
        (!names.is_empty()).then(|| format!("{} {what} — {}", names.len(), names.join("; ")))
    };
    let error = |f: &FeedHealth| esc(&f.error);
    let recovered = |f: &FeedHealth| match f.failed_at {
        Some(at) => format!("last failed {}", digest.local(at)),
        None => "failed, answers again".to_string(),
    };
    let parts: Vec<String> = [
        group(FeedState::Failing, "failing", &error),
        group(FeedState::Disabled, "disabled", &error),
        group(
            FeedState::Recovered,
            "failed since the last digest, answering again",
            &recovered,
        ),
    ]
    .into_iter()
    .flatten()
    .collect();
    format!("Feed health: {}", parts.join(" · "))
}

fn linked(title: &str, link: Option<&str>) -> String {
    let title = escape(title);
    match link.filter(|l| super::model::is_http(l)) {
        Some(link) => format!("[{title}](<{}>)", link.replace(['<', '>', ' '], "")),
        None => title,
    }
}

/// Escapes text so Markdown shows it literally: no emphasis, links, headings or raw HTML.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if matches!(
            c,
            // Parentheses and `!` need no escape: without an unescaped `[` or `]` they can
            // form no link or image, and escaping them only clutters the plain-text reading.
            '\\' | '`' | '*' | '_' | '[' | ']' | '#' | '+' | '|' | '<' | '>' | '~' | '&'
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
    use crate::digest::model::tests::{baselines, ctx, input, row};

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
        // The brackets are escaped, so `(javascript:x)` after them is plain text, not a link.
        assert!(md.contains("\\[click\\](javascript:x)"), "{md}");
        assert!(!md.contains("[click]("), "{md}");
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
    fn feed_health_names_failing_disabled_and_recovered_feeds() {
        let b = baselines();
        let mut period = input(vec![]);
        let trouble = |feed: &str, error: Option<&str>, disabled: Option<&str>, now: bool| {
            crate::store::FeedTrouble {
                feed: feed.into(),
                error: error.map(Into::into),
                disabled: disabled.map(Into::into),
                failing_now: now,
                last_failed_at: Some("2025-10-30T14:05:00Z".parse().unwrap()),
            }
        };
        period.failing_feeds = vec![
            trouble("Wire *", Some("HTTP 500"), None, true),
            trouble("Gone", Some("HTTP 410"), Some("410 Gone"), true),
            trouble("Flaky", None, None, false),
        ];
        let md = render_markdown(&ctx(&b, &TimeZone::UTC, EmptyDigest::Send), &period).unwrap();
        assert!(
            md.contains(
                "Feed health: 1 failing — Wire \\* (HTTP 500) · 1 disabled — Gone (410 Gone) · \
                 1 failed since the last digest, answering again — Flaky (last failed 30 Oct 2025, 14:05)"
            ),
            "{md}"
        );
        period.failing_feeds.clear();
        let md = render_markdown(&ctx(&b, &TimeZone::UTC, EmptyDigest::Send), &period).unwrap();
        assert!(md.contains("Feed health: every feed answered"), "{md}");
    }
}
