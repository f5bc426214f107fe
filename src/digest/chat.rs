//! Short renderings for chat and push services: Slack mrkdwn, Discord Markdown (≤ 2000
//! characters) and plain text for ntfy. All come from the same [`Digest`] as the Markdown and
//! HTML; each format escapes feed text by its own rules and keeps links to http(s).

use super::model::{Digest, is_http};
use super::render::{
    also_reported_suffix, compact_count_line, escape as escape_markdown, footer_health_line,
    footer_period_line, verdict_label,
};
use crate::config::RelatedMode;

/// Discord rejects messages over 2000 characters.
pub const DISCORD_LIMIT: usize = 2000;
/// Slack truncates `text` past 40,000 characters; stay well under.
pub const SLACK_LIMIT: usize = 38_000;
/// ntfy turns bodies over 4096 bytes into attachments.
pub const NTFY_LIMIT: usize = 4000;

/// How one chat format writes text and links.
struct Style {
    escape: fn(&str) -> String,
    link: fn(&str, &str) -> String,
    bold: fn(&str) -> String,
}

fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

const SLACK: Style = Style {
    escape: slack_escape,
    link: |text, url| format!("<{}|{}>", url.replace(['<', '>', '|', ' '], ""), text),
    bold: |text| format!("*{text}*"),
};

const DISCORD: Style = Style {
    escape: discord_escape,
    link: |text, url| format!("[{text}](<{}>)", url.replace(['<', '>', ' '], "")),
    bold: |text| format!("**{text}**"),
};

/// Markdown escaping plus `@` so feed text cannot ping `@everyone` even where
/// `allowed_mentions` is ignored.
fn discord_escape(text: &str) -> String {
    escape_markdown(text).replace('@', "@\u{200b}")
}

const PLAIN: Style = Style {
    escape: |text| text.replace(['\r', '\n'], " "),
    link: |text, url| format!("{text} {url}"),
    bold: |text| text.to_string(),
};

/// The digest's lines in one style: title, one line per development, compact section, footer.
fn lines(digest: &Digest, style: &Style) -> (Vec<String>, Vec<String>) {
    let esc = style.escape;
    let mut body = Vec::new();
    for section in &digest.sections {
        let heading = match &section.baseline {
            Some(b) => format!("Following up: {}", esc(&b.title)),
            None => "Other developments".to_string(),
        };
        let heading = format!("{}{heading}", section.story_prefix(esc));
        body.push((style.bold)(&heading));
        for e in &section.entries {
            let title = match e.link.as_deref().filter(|l| is_http(l)) {
                Some(url) => (style.link)(&esc(&e.title), url.trim()),
                None => esc(&e.title),
            };
            let mut line = format!(
                "• {title} — {}, {}{}",
                esc(e.outlet.as_deref().unwrap_or("unknown outlet")),
                digest.local(e.time),
                also_reported_suffix(&e.also_reported_by, esc)
            );
            if !e.why.is_empty() {
                line.push_str(&format!(" — why: {}", esc(&e.why.join("; "))));
            }
            body.push(line);
        }
    }
    let compact = &digest.compact;
    if compact.mode != RelatedMode::Hide && compact.re_reports + compact.related > 0 {
        body.push((style.bold)("Re-reports and related coverage"));
        if compact.mode == RelatedMode::Show {
            for c in &compact.entries {
                let title = match c.link.as_deref().filter(|l| is_http(l)) {
                    Some(url) => (style.link)(&esc(&c.title), url.trim()),
                    None => esc(&c.title),
                };
                body.push(format!(
                    "• {title} — {} ({}){}",
                    esc(c.outlet.as_deref().unwrap_or("unknown outlet")),
                    verdict_label(c.verdict),
                    also_reported_suffix(&c.also_reported_by, esc)
                ));
            }
        } else {
            body.push(esc(&compact_count_line(digest)));
        }
    }
    let footer = vec![
        footer_period_line(digest, esc),
        footer_health_line(digest, esc),
    ];
    (body, footer)
}

/// Joins header, as many body lines as fit in `limit` (characters, or bytes when `bytes`), a "… N more" line when some
/// were left out, and the footer (dropped last, when even it does not fit).
fn fit(
    header: String,
    body: Vec<String>,
    footer: Vec<String>,
    limit: usize,
    bytes: bool,
) -> String {
    let footer_text = footer.join("\n");
    let chars = |s: &str| if bytes { s.len() } else { s.chars().count() };
    let reserve = chars(&footer_text) + 60;
    let mut out = header;
    let mut shown = 0;
    for line in &body {
        if chars(&out) + chars(line) + 1 + reserve > limit {
            break;
        }
        out.push('\n');
        out.push_str(line);
        shown += 1;
    }
    if shown < body.len() {
        out.push_str(&format!(
            "\n… and {} more lines: the full digest is in storywatch (`storywatch digest show`)",
            body.len() - shown
        ));
    }
    if chars(&out) + chars(&footer_text) < limit {
        out.push('\n');
        out.push_str(&footer_text);
    }
    if chars(&out) > limit {
        // Only a huge header gets here; cut it hard ('…' is 1 char, 3 bytes).
        while chars(&out) > limit.saturating_sub(3) && out.pop().is_some() {}
        out.push('…');
    }
    out
}

/// Slack mrkdwn for `{"text": …}`.
pub fn to_slack(digest: &Digest) -> String {
    let (body, footer) = lines(digest, &SLACK);
    let header = (SLACK.bold)(&slack_escape(&digest.subject()));
    fit(header, body, footer, SLACK_LIMIT, false)
}

/// Discord Markdown for `{"content": …}`, at most [`DISCORD_LIMIT`] characters.
pub fn to_discord(digest: &Digest) -> String {
    let (body, footer) = lines(digest, &DISCORD);
    let header = (DISCORD.bold)(&discord_escape(&digest.subject()));
    fit(header, body, footer, DISCORD_LIMIT, false)
}

/// Plain text for ntfy's body; the subject goes in its `Title` header.
pub fn to_plain(digest: &Digest) -> String {
    let (body, footer) = lines(digest, &PLAIN);
    let header = digest.headline();
    fit(header, body, footer, NTFY_LIMIT, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::EmptyDigest;
    use crate::digest::model::tests::{baselines, ctx, input, row};
    use crate::story::VerdictKind;
    use jiff::tz::TimeZone;

    fn digest(n: usize) -> Digest {
        let b = baselines();
        let rows = (0..n)
            .map(|i| {
                row(
                    i as i64,
                    &format!("Development number {i} <b>@everyone</b> with distinct words {i}x"),
                    VerdictKind::FollowUp,
                    &format!("https://n.example/{i}"),
                )
            })
            .collect();
        Digest::build(&ctx(&b, &TimeZone::UTC, EmptyDigest::Send), &input(rows)).unwrap()
    }

    #[test]
    fn discord_fits_2000_and_says_what_was_cut() {
        let text = to_discord(&digest(60));
        assert!(text.chars().count() <= DISCORD_LIMIT, "{}", text.len());
        assert!(text.contains("more lines"), "{text}");
        assert!(text.contains("Feed health"), "{text}");
        assert!(!text.contains("@everyone"), "{text}");
        assert!(text.contains("](<https://n.example/0>)"), "{text}");
    }

    #[test]
    fn slack_escapes_angle_brackets_and_links() {
        let text = to_slack(&digest(2));
        assert!(text.contains("&lt;b&gt;"), "{text}");
        assert!(
            text.contains("<https://n.example/0|Development number 0"),
            "{text}"
        );
        assert!(
            text.starts_with("*storywatch: 2 new developments"),
            "{text}"
        );
    }

    #[test]
    fn copies_are_named_in_chat_too() {
        let b = baselines();
        let mut first = row(
            1,
            "Tariff cut",
            VerdictKind::FollowUp,
            "https://n.example/1",
        );
        let mut copy = first.clone();
        copy.id = 2;
        copy.source = Some("AP <wire>".into());
        first.why.clear();
        let digest = Digest::build(
            &ctx(&b, &TimeZone::UTC, EmptyDigest::Send),
            &input(vec![first, copy]),
        )
        .unwrap();
        let slack = to_slack(&digest);
        assert!(
            slack.contains("Reuters, 30 Oct 2025, 07:30 (also reported by AP &lt;wire&gt;)"),
            "{slack}"
        );
        assert!(to_plain(&digest).contains("(also reported by AP <wire>)"));
    }

    #[test]
    fn plain_is_short_and_unescaped() {
        let text = to_plain(&digest(1));
        assert!(text.starts_with("1 new development"), "{text}");
        assert!(text.contains("https://n.example/0"), "{text}");
        assert!(to_plain(&digest(200)).len() <= NTFY_LIMIT);
    }
}
