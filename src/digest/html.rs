//! Rendering a digest as HTML for the e-mail's `text/html` part.
//!
//! Built from the same [`Digest`] as the Markdown, not by converting Markdown, so there is no
//! Markdown parser to get wrong. Every piece of text is HTML-escaped (feed titles can carry
//! `<script>`), attribute values are escaped too, and only http(s) links become `href`s. Styles
//! are inline because mail clients drop `<style>` blocks.

use std::fmt::Write as _;

use crate::config::RelatedMode;

use super::model::{Digest, is_http};
use super::render::{
    about_word, also_reported_suffix, compact_count_line, footer_health_line, footer_period_line,
    verdict_label,
};

/// Escapes text for HTML element content and double-quoted attribute values.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

fn linked(title: &str, link: Option<&str>) -> String {
    match link.filter(|l| is_http(l)) {
        Some(link) => format!(
            "<a href=\"{}\" style=\"color:#1a4f8b\">{}</a>",
            escape_html(link.trim()),
            escape_html(title)
        ),
        None => escape_html(title),
    }
}

/// The digest as a complete HTML document.
pub fn to_html(digest: &Digest) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{}</title></head>\n\
         <body style=\"font-family:Georgia,serif;max-width:40em;margin:auto;color:#222\">\n",
        escape_html(&digest.subject())
    );
    let _ = writeln!(
        out,
        "<h1 style=\"font-size:1.4em\">{} — storywatch digest</h1>",
        escape_html(&digest.story)
    );
    let _ = writeln!(
        out,
        "<p><em>{} · {}</em></p>",
        escape_html(&digest.local(digest.period_end)),
        escape_html(&digest.headline())
    );
    if digest.sections.is_empty() {
        let _ = writeln!(
            out,
            "<p>Nothing new on this story since the last digest.</p>"
        );
    }
    for section in &digest.sections {
        let prefix = section.story_prefix(escape_html);
        match &section.baseline {
            Some(b) => {
                let credit = b
                    .credit()
                    .map(|c| format!(" — {}", escape_html(&c)))
                    .unwrap_or_default();
                let _ = writeln!(
                    out,
                    "<h2 style=\"font-size:1.15em\">{prefix}Following up: <em>{}</em>{credit}</h2>",
                    escape_html(&b.title)
                );
            }
            None => {
                let _ = writeln!(
                    out,
                    "<h2 style=\"font-size:1.15em\">{prefix}Other developments</h2>"
                );
            }
        }
        for e in &section.entries {
            let _ = writeln!(
                out,
                "<h3 style=\"font-size:1em;margin-bottom:0.2em\">{}</h3>",
                linked(&e.title, e.link.as_deref())
            );
            let _ = write!(
                out,
                "<p style=\"margin-top:0;color:#555\">{} · {} · follow-up (score {:.2})",
                escape_html(e.outlet.as_deref().unwrap_or("unknown outlet")),
                escape_html(&digest.local(e.time)),
                e.score
            );
            if !e.also_reported_by.is_empty() {
                let _ = write!(
                    out,
                    "<br>Also reported by {}",
                    escape_html(&e.also_reported_by.join(", "))
                );
            }
            let _ = writeln!(out, "</p>");
            if !e.summary.is_empty() {
                let _ = writeln!(
                    out,
                    "<blockquote style=\"margin-left:1em;color:#333\">{}</blockquote>",
                    escape_html(&e.summary)
                );
            }
            if !e.why.is_empty() {
                let _ = writeln!(
                    out,
                    "<p style=\"font-size:0.9em;color:#555\">Why: {}</p>",
                    escape_html(&e.why.join("; "))
                );
            }
        }
    }
    let compact = &digest.compact;
    if compact.mode != RelatedMode::Hide && compact.re_reports + compact.related > 0 {
        let _ = writeln!(
            out,
            "<h2 style=\"font-size:1.15em\">Re-reports and related coverage</h2>"
        );
        if compact.mode == RelatedMode::Show {
            let _ = writeln!(out, "<ul>");
            for c in &compact.entries {
                let about = c
                    .baseline_title
                    .as_deref()
                    .map(|t| format!(" {} <em>{}</em>", about_word(c.verdict), escape_html(t)))
                    .unwrap_or_default();
                let also = also_reported_suffix(&c.also_reported_by, escape_html);
                let _ = writeln!(
                    out,
                    "<li>{} — {}, {} — {}{about}{also}</li>",
                    linked(&c.title, c.link.as_deref()),
                    escape_html(c.outlet.as_deref().unwrap_or("unknown outlet")),
                    escape_html(&digest.local(c.time)),
                    verdict_label(c.verdict)
                );
            }
            let _ = writeln!(out, "</ul>");
        } else {
            let _ = writeln!(out, "<p>{}</p>", escape_html(&compact_count_line(digest)));
        }
    }
    let _ = writeln!(
        out,
        "<hr>\n<p style=\"font-size:0.85em;color:#666\">{}<br>{}</p>\n</body></html>",
        footer_period_line(digest, escape_html),
        footer_health_line(digest, escape_html)
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::EmptyDigest;
    use crate::digest::model::tests::{baselines, ctx, input, row};
    use crate::story::VerdictKind;
    use jiff::tz::TimeZone;

    #[test]
    fn hostile_text_is_escaped_and_only_http_links_survive() {
        let b = baselines();
        let mut evil = row(
            1,
            "<script>alert(1)</script> \"quoted\"",
            VerdictKind::FollowUp,
            "javascript:alert(1)",
        );
        evil.summary = "<img src=x onerror=alert(1)> & more".into();
        let mut fine = row(
            2,
            "Good title here",
            VerdictKind::FollowUp,
            "https://n.example/a?b=1&c=\"2\"",
        );
        fine.source = Some("<b>Outlet</b>".into());
        let digest = Digest::build(
            &ctx(&b, &TimeZone::UTC, EmptyDigest::Send),
            &input(vec![evil, fine]),
        )
        .unwrap();
        let html = to_html(&digest);
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("<img"), "{html}");
        assert!(!html.contains("javascript:"), "{html}");
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{html}"
        );
        assert!(
            html.contains("href=\"https://n.example/a?b=1&amp;c=&quot;2&quot;\""),
            "{html}"
        );
        assert!(html.contains("&lt;b&gt;Outlet&lt;/b&gt;"), "{html}");
        assert!(html.contains("Following up: <em>US and China"), "{html}");
        assert!(html.contains("Broken Feed (timed out)"), "{html}");
    }

    #[test]
    fn copies_are_named_in_html_as_in_markdown() {
        let b = baselines();
        let copy = |id, verdict, outlet: &str| {
            let mut m = row(
                id,
                "Beijing talks recap <b>",
                verdict,
                "https://n.example/x",
            );
            m.source = Some(outlet.into());
            m
        };
        let mut dev = copy(3, VerdictKind::FollowUp, "AP");
        dev.title = "China schedules new precursors".into();
        dev.link = Some("https://n.example/d".into());
        let mut dev_copy = dev.clone();
        dev_copy.id = 4;
        dev_copy.source = Some("AFP & Co".into());
        let digest = Digest::build(
            &ctx(&b, &TimeZone::UTC, EmptyDigest::Send),
            &input(vec![
                dev,
                dev_copy,
                copy(1, VerdictKind::ReReport, "Reuters"),
                copy(2, VerdictKind::ReReport, "Xinhua <wire>"),
            ]),
        )
        .unwrap();
        let html = to_html(&digest);
        let markdown = crate::digest::to_markdown(&digest);
        // The development and the re-report are each listed once, naming the copy's outlet.
        assert!(
            html.contains("<br>Also reported by AFP &amp; Co</p>"),
            "{html}"
        );
        assert!(
            markdown.contains("(score 0.91)  \nAlso reported by AFP \\& Co\n"),
            "{markdown}"
        );
        assert!(
            html.contains("re-report of <em>US and China to resume stalled fentanyl talks in Beijing</em> (also reported by Xinhua &lt;wire&gt;)</li>"),
            "{html}"
        );
        assert!(
            markdown.contains("(also reported by Xinhua \\<wire\\>)"),
            "{markdown}"
        );
        assert_eq!(html.matches("<li>").count(), 1, "{html}");
    }
}
