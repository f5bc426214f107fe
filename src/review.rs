//! The terminal side of reviewing: `items search`, `items export`, the interactive `review`
//! loop and the `rescore` report. Each writes to any `Write` (and `review` reads any `BufRead`),
//! so the binary and the tests run the same code.

use std::io::{BufRead, Write};

use jiff::Timestamp;
use serde::Serialize;

use crate::digest::model::http_link;
use crate::store::{
    MatchFilter, MatchRow, RescoreChange, RescoreReport, Review, SearchHit, Store, StoreError,
};
use crate::story::VerdictKind;

/// A problem while reviewing from the terminal.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    /// Reading input or writing output failed.
    #[error("terminal input/output failed: {0}")]
    Io(#[from] std::io::Error),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// JSON encoding failed.
    #[error("cannot encode JSON: {0}")]
    Json(#[from] serde_json::Error),
}

type Result<T> = std::result::Result<T, ReviewError>;

/// The verdict as people read it.
pub fn verdict_label(kind: VerdictKind) -> &'static str {
    match kind {
        VerdictKind::FollowUp => "follow-up",
        VerdictKind::ReReport => "re-report",
        VerdictKind::Related => "related",
        VerdictKind::OffTopic => "off-topic",
    }
}

fn day(time: Timestamp) -> String {
    time.strftime("%Y-%m-%d").to_string()
}

/// Prints search results: one line per hit (an item two stories matched is a line for each,
/// named with its story when `several` stories are followed), or JSON lines.
pub fn write_search(
    out: &mut impl Write,
    hits: &[SearchHit],
    json: bool,
    several: bool,
) -> Result<()> {
    for hit in hits {
        if json {
            writeln!(out, "{}", serde_json::to_string(hit)?)?;
            continue;
        }
        let mut state = match (hit.verdict, hit.review) {
            (Some(v), Some(r)) => format!("{} {}", verdict_label(v), r.as_str()),
            _ => "not matched".to_string(),
        };
        if let (true, Some(story)) = (several, &hit.story) {
            state = format!("{state} [{}]", one_line(story));
        }
        writeln!(
            out,
            "{:>6}  {}  {:<22}  {}  ({})",
            hit.id,
            day(hit.published_at.unwrap_or(hit.first_seen_at)),
            state,
            one_line(&hit.title),
            hit.source.as_deref().unwrap_or("-")
        )?;
    }
    if hits.is_empty() && !json {
        writeln!(out, "no stored item contains those words")?;
    }
    Ok(())
}

/// Control characters from feeds must not move the terminal's cursor or change its colours.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// One JSON array of match objects.
    Json,
    /// RFC 4180 CSV with a header row.
    Csv,
}

/// The CSV header row of [`export`].
pub const CSV_HEADER: &[&str] = &[
    "id",
    "story",
    "published",
    "first_seen",
    "verdict",
    "score",
    "review",
    "baseline",
    "outlet",
    "title",
    "link",
    "summary",
    "why",
    "digest",
];

/// Quotes one CSV field (RFC 4180). Text that a spreadsheet would run as a formula (starting
/// with `=`, `+`, `-`, `@`, tab or CR) gets a leading `'`, since feed text is hostile.
pub fn csv_field(text: &str, is_text: bool) -> String {
    let guarded;
    let text = if is_text && text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        guarded = format!("'{text}");
        guarded.as_str()
    } else {
        text
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// Writes `rows` as JSON or CSV.
pub fn export(out: &mut impl Write, rows: &[MatchRow], format: ExportFormat) -> Result<()> {
    match format {
        ExportFormat::Json => {
            serde_json::to_writer_pretty(&mut *out, rows)?;
            writeln!(out)?;
        }
        ExportFormat::Csv => {
            write!(out, "{}\r\n", CSV_HEADER.join(","))?;
            for m in rows {
                let fields = [
                    (m.id.to_string(), false),
                    (m.story.clone(), true),
                    (
                        m.published_at.map(|t| t.to_string()).unwrap_or_default(),
                        false,
                    ),
                    (m.first_seen_at.to_string(), false),
                    (verdict_label(m.verdict).to_string(), false),
                    (format!("{:.4}", m.score), false),
                    (m.review.as_str().to_string(), false),
                    (m.baseline.clone().unwrap_or_default(), true),
                    (m.source.clone().unwrap_or_default(), true),
                    (m.title.clone(), true),
                    (m.link.clone().unwrap_or_default(), true),
                    (m.summary.clone(), true),
                    (m.why.join("; "), true),
                    (
                        m.digest_id.map(|d| d.to_string()).unwrap_or_default(),
                        false,
                    ),
                ];
                let line: Vec<String> = fields.iter().map(|(f, t)| csv_field(f, *t)).collect();
                write!(out, "{}\r\n", line.join(","))?;
            }
        }
    }
    Ok(())
}

/// What one interactive review session did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ReviewTally {
    /// Marked relevant.
    pub relevant: usize,
    /// Marked irrelevant.
    pub irrelevant: usize,
    /// Skipped.
    pub skipped: usize,
}

fn show(out: &mut impl Write, m: &MatchRow, position: usize, total: usize) -> Result<()> {
    writeln!(out)?;
    writeln!(
        out,
        "[{position}/{total}] #{}  {}",
        m.id,
        one_line(&m.title)
    )?;
    writeln!(out, "  story: {}", one_line(&m.story))?;
    writeln!(
        out,
        "  {} · {} · {} (score {:.2})",
        one_line(m.source.as_deref().unwrap_or("unknown outlet")),
        day(m.published_at.unwrap_or(m.first_seen_at)),
        verdict_label(m.verdict),
        m.score
    )?;
    if let Some(baseline) = &m.baseline {
        writeln!(out, "  follows up on: {}", one_line(baseline))?;
    }
    for why in &m.why {
        writeln!(out, "  why: {}", one_line(why))?;
    }
    if !m.summary.is_empty() {
        writeln!(out, "  {}", one_line(&m.summary))?;
    }
    Ok(())
}

/// The interactive review: shows unreviewed matches (of `story`, or of every story) one at a
/// time, newest first, and reads one line per decision: `r` relevant, `x` irrelevant, `s`
/// skip, `o` open (prints the link and hands it to `open`), `q` quit. End of input quits too.
/// Each mark is stored at once, for the shown (item, story) pair only: an item two stories
/// matched is shown once per story, since each story learns from its own marks.
pub fn interactive(
    store: &mut Store,
    story: Option<&str>,
    input: &mut impl BufRead,
    out: &mut impl Write,
    mut open: impl FnMut(&str),
) -> Result<ReviewTally> {
    let queue = store.list_matches(&MatchFilter {
        review: Some(Review::Unreviewed),
        story: story.map(str::to_string),
        ..MatchFilter::default()
    })?;
    let mut tally = ReviewTally::default();
    if queue.is_empty() {
        writeln!(out, "nothing to review: every match has been marked")?;
        return Ok(tally);
    }
    'items: for (index, m) in queue.iter().enumerate() {
        show(out, m, index + 1, queue.len())?;
        loop {
            write!(out, "[r]elevant  [x] irrelevant  [s]kip  [o]pen  [q]uit > ")?;
            out.flush()?;
            let mut line = String::new();
            if input.read_line(&mut line)? == 0 {
                writeln!(out)?;
                break 'items;
            }
            match line.trim().to_ascii_lowercase().as_str() {
                "r" => {
                    store.mark_for_story(m.id, &m.story, Review::Relevant, Timestamp::now())?;
                    tally.relevant += 1;
                    break;
                }
                "x" => {
                    store.mark_for_story(m.id, &m.story, Review::Irrelevant, Timestamp::now())?;
                    tally.irrelevant += 1;
                    break;
                }
                "s" | "" => {
                    tally.skipped += 1;
                    break;
                }
                "o" => match http_link(m.link.as_deref()) {
                    Some(link) => {
                        writeln!(out, "  link: {link}")?;
                        open(&link);
                    }
                    None => writeln!(out, "  (no http(s) link for this item)")?,
                },
                "q" => break 'items,
                other => writeln!(
                    out,
                    "  unknown key {other:?}: type r, x, s, o or q and Enter"
                )?,
            }
        }
    }
    writeln!(
        out,
        "reviewed: {} relevant, {} irrelevant, {} skipped",
        tally.relevant, tally.irrelevant, tally.skipped
    )?;
    Ok(tally)
}

fn change_line(out: &mut impl Write, c: &RescoreChange) -> Result<()> {
    let before = c.before.map_or("not matched", verdict_label);
    let review = c
        .review
        .map_or(String::new(), |r| format!(" [{}]", r.as_str()));
    writeln!(
        out,
        "  #{:<6} {} -> {} ({:.2}){}  {}",
        c.id,
        before,
        verdict_label(c.after),
        c.score,
        review,
        one_line(&c.title)
    )?;
    Ok(())
}

/// Prints what a rescore changed (or would change, for a dry run).
pub fn write_rescore(out: &mut impl Write, report: &RescoreReport, applied: bool) -> Result<()> {
    let sections: [(&str, &[RescoreChange]); 4] = [
        ("new matches", &report.new_matches),
        ("dropped matches", &report.dropped),
        (
            "no longer matched but kept (reviewed or already in a digest)",
            &report.kept,
        ),
        ("verdict changed (review kept)", &report.changed),
    ];
    for (title, list) in sections {
        if list.is_empty() {
            continue;
        }
        writeln!(out, "{title}: {}", list.len())?;
        for c in list {
            change_line(out, c)?;
        }
    }
    writeln!(
        out,
        "{} {} items: {} new, {} dropped, {} kept, {} changed{}",
        if applied { "rescored" } else { "dry run over" },
        report.scanned,
        report.new_matches.len(),
        report.dropped.len(),
        report.kept.len(),
        report.changed.len(),
        if applied {
            ""
        } else {
            "; nothing was changed (run without --dry-run to apply)"
        }
    )?;
    Ok(())
}
