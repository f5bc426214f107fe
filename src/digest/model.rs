//! The digest as structured data: the one place where matches are grouped, de-duplicated and
//! ordered. Markdown, HTML, JSON and the chat formats are all rendered from a [`Digest`], so
//! they never disagree about what a digest contains.
//!
//! A digest's model is stored with it (as JSON) when it is built, so a delivery retried days
//! later — or a `digest resend` — renders exactly what was decided at build time.

use jiff::Timestamp;
use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use crate::config::{EmptyDigest, RelatedMode};
use crate::store::{DigestInput, FeedTrouble, MatchRow};
use crate::story::neardup::Signature;
use crate::story::{BaselineArticle, VerdictKind};

use super::render::RenderContext;

/// The longest one-line summary, in characters.
pub const SUMMARY_CHARS: usize = 240;

/// One digest, ready to render.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Digest {
    /// The story's display name.
    pub story: String,
    /// The IANA zone local times are shown in.
    pub timezone: String,
    /// Start of the period (end of the previous digest); `None` for the first digest.
    pub period_start: Option<Timestamp>,
    /// End of the period.
    pub period_end: Timestamp,
    /// Follow-ups, grouped by the baseline article they follow up on; the group with the newest
    /// development first, developments newest first.
    pub sections: Vec<Section>,
    /// Re-reports and related coverage.
    pub compact: CompactSection,
    /// Period statistics and feed health.
    pub footer: Footer,
}

/// The baseline article a section follows up on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BaselineRef {
    /// Seed id, e.g. `002_8c022bc2c889c5a5`.
    pub id: String,
    /// Headline.
    pub title: String,
    /// Outlet, when known.
    pub outlet: Option<String>,
    /// Publication date, when known.
    pub published: Option<Date>,
}

/// Developments that follow up on one baseline article (or on none that is known).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Section {
    /// The story, when the digest covers several (`None` with one story).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub story: Option<String>,
    /// The baseline article; `None` for "other developments".
    pub baseline: Option<BaselineRef>,
    /// Newest first.
    pub entries: Vec<Entry>,
}

/// One development.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// The item id (`items show ID`).
    pub item_id: i64,
    /// Headline as the feed gave it (plain text, not escaped).
    pub title: String,
    /// Outlet.
    pub outlet: Option<String>,
    /// Published time, else first seen.
    pub time: Timestamp,
    /// Link; always http(s) when present.
    pub link: Option<String>,
    /// One line of summary.
    pub summary: String,
    /// The matcher's verdict.
    pub verdict: VerdictKind,
    /// The matcher's score.
    pub score: f64,
    /// Why it was picked.
    pub why: Vec<String>,
    /// Outlets of near-duplicate reports folded into this entry.
    pub also_reported_by: Vec<String>,
}

/// How re-reports and related items appear.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompactSection {
    /// The configured mode.
    pub mode: RelatedMode,
    /// How many re-reports the period had.
    pub re_reports: usize,
    /// How many related items the period had.
    pub related: usize,
    /// The items themselves; empty unless `mode` is `show`.
    pub entries: Vec<CompactEntry>,
}

/// One re-report or related item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompactEntry {
    /// The item id.
    pub item_id: i64,
    /// Headline.
    pub title: String,
    /// Outlet.
    pub outlet: Option<String>,
    /// Published time, else first seen.
    pub time: Timestamp,
    /// Link; always http(s) when present.
    pub link: Option<String>,
    /// `re_report` or `related`.
    pub verdict: VerdictKind,
    /// Title of the baseline article it re-reports or relates to.
    pub baseline_title: Option<String>,
    /// Outlets of near-duplicates folded in.
    pub also_reported_by: Vec<String>,
}

/// The footer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Footer {
    /// Items first seen in the period, matched or not.
    pub items_scanned: u64,
    /// Active feeds.
    pub feeds_polled: u64,
    /// Feeds that are failing or disabled, or failed at some point since the last digest.
    pub failing_feeds: Vec<FeedHealth>,
}

/// A feed with trouble in the period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeedHealth {
    /// Its title, else URL.
    pub feed: String,
    /// The last error, or why it is disabled; empty for a feed that answers again.
    pub error: String,
    /// Failing, disabled, or failed in the period and answering again. Digests stored before
    /// this was kept read as `failing` (their `error` says "disabled: …" where it applies).
    #[serde(default)]
    pub state: FeedState,
    /// When a poll of it last failed, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_at: Option<Timestamp>,
}

/// How a feed in the footer's health line is doing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeedState {
    /// Its last poll failed.
    #[default]
    Failing,
    /// Polling it stopped (410 Gone, too many failures …) until `feeds enable`.
    Disabled,
    /// It failed since the last digest but its last poll succeeded: the period may miss items.
    Recovered,
}

impl Digest {
    /// Builds the digest of `input`, or `None` when the period is empty and the policy is to
    /// skip.
    pub fn build(ctx: &RenderContext<'_>, input: &DigestInput) -> Option<Digest> {
        if input.matches.is_empty() && ctx.empty == EmptyDigest::Skip {
            return None;
        }
        // A copy of a development an earlier digest already sent is not sent again.
        let follow_ups: Vec<&MatchRow> = input
            .matches
            .iter()
            .filter(|m| m.verdict == VerdictKind::FollowUp && !m.group_sent)
            .collect();
        let others: Vec<&MatchRow> = input
            .matches
            .iter()
            .filter(|m| m.verdict != VerdictKind::FollowUp)
            .collect();

        // Group by story (with several) and baseline; the store hands matches over newest
        // first, so the first group seen has the newest development and each group's entries
        // stay newest first.
        let several = ctx.stories.len() > 1;
        let mut sections: Vec<Section> = Vec::new();
        for (m, also) in fold_near_duplicates(&follow_ups) {
            let baseline = m.baseline.as_deref().and_then(|id| baseline(ctx, id));
            let entry = Entry {
                item_id: m.id,
                title: m.title.clone(),
                outlet: m.source.clone(),
                time: shown_time(m),
                link: http_link(m.link.as_deref()),
                summary: one_line(&m.summary),
                verdict: m.verdict,
                score: m.score,
                why: reader_why(&m.why),
                also_reported_by: also,
            };
            let key = baseline.map(|b| b.id.as_str());
            let story = several.then(|| m.story.clone());
            match sections
                .iter_mut()
                .find(|s| s.story == story && s.baseline.as_ref().map(|b| b.id.as_str()) == key)
            {
                Some(section) => section.entries.push(entry),
                None => sections.push(Section {
                    story,
                    baseline: baseline.map(|b| BaselineRef {
                        id: b.id.clone(),
                        title: b.title.clone(),
                        outlet: b.outlet.clone(),
                        published: b.published,
                    }),
                    entries: vec![entry],
                }),
            }
        }
        // Stories in config order; in each, "other developments" (no known baseline) go last.
        let story_rank = |s: &Section| {
            s.story
                .as_ref()
                .and_then(|name| ctx.stories.iter().position(|n| n == name))
                .unwrap_or(0)
        };
        sections.sort_by_key(|s| (story_rank(s), s.baseline.is_none()));

        let entries = if ctx.related == RelatedMode::Show {
            fold_near_duplicates(&others)
                .into_iter()
                .map(|(m, also)| CompactEntry {
                    item_id: m.id,
                    title: m.title.clone(),
                    outlet: m.source.clone(),
                    time: shown_time(m),
                    link: http_link(m.link.as_deref()),
                    verdict: m.verdict,
                    baseline_title: m
                        .baseline
                        .as_deref()
                        .and_then(|id| baseline(ctx, id))
                        .map(|b| b.title.clone()),
                    also_reported_by: also,
                })
                .collect()
        } else {
            Vec::new()
        };
        Some(Digest {
            story: ctx.story_name.to_string(),
            timezone: ctx.timezone_name.to_string(),
            period_start: input.period_start,
            period_end: input.period_end,
            sections,
            compact: CompactSection {
                mode: ctx.related,
                re_reports: others
                    .iter()
                    .filter(|m| m.verdict == VerdictKind::ReReport)
                    .count(),
                related: others
                    .iter()
                    .filter(|m| m.verdict != VerdictKind::ReReport)
                    .count(),
                entries,
            },
            footer: Footer {
                items_scanned: input.items_scanned,
                feeds_polled: input.feeds_polled,
                failing_feeds: input.failing_feeds.iter().map(feed_health).collect(),
            },
        })
    }

    /// How many developments (follow-up entries) the digest shows.
    pub fn development_count(&self) -> usize {
        self.sections.iter().map(|s| s.entries.len()).sum()
    }

    /// "No new developments", "1 new development", "3 new developments".
    pub fn headline(&self) -> String {
        match self.development_count() {
            0 => "No new developments".to_string(),
            1 => "1 new development".to_string(),
            n => format!("{n} new developments"),
        }
    }

    /// The e-mail subject / notification title, e.g.
    /// `storywatch: 3 new developments — US–China fentanyl cooperation`.
    pub fn subject(&self) -> String {
        let headline = self.headline();
        let headline = match headline.strip_prefix("No") {
            Some(rest) => format!("no{rest}"),
            None => headline,
        };
        // Feed and config text never reaches a header with a line break in it.
        let story: String = self
            .story
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        format!("storywatch: {headline} — {story}")
    }

    /// The zone times are shown in (UTC if the stored name is no longer known).
    pub fn zone(&self) -> jiff::tz::TimeZone {
        jiff::tz::TimeZone::get(&self.timezone).unwrap_or(jiff::tz::TimeZone::UTC)
    }

    /// `30 Oct 2025, 07:30` in the digest's zone.
    pub fn local(&self, time: Timestamp) -> String {
        time.to_zoned(self.zone())
            .strftime("%-d %b %Y, %H:%M")
            .to_string()
    }

    /// How the period reads in the footer: `the first poll – 31 Oct 2025, 07:00`.
    pub fn period_text(&self) -> (String, String) {
        let since = self
            .period_start
            .map_or_else(|| "the first poll".to_string(), |start| self.local(start));
        (since, self.local(self.period_end))
    }
}

impl Section {
    /// `Story name: ` to put before the section's heading when the digest covers several
    /// stories (empty with one); `esc` escapes the name for the format.
    pub fn story_prefix(&self, esc: impl Fn(&str) -> String) -> String {
        self.story
            .as_deref()
            .map_or_else(String::new, |name| format!("{}: ", esc(name)))
    }
}

impl BaselineRef {
    /// `AFP, 29 Jan 2024` — outlet and date, whichever are known.
    pub fn credit(&self) -> Option<String> {
        let mut credit = Vec::new();
        if let Some(outlet) = &self.outlet {
            credit.push(outlet.clone());
        }
        if let Some(date) = self.published {
            credit.push(date.strftime("%-d %b %Y").to_string());
        }
        (!credit.is_empty()).then(|| credit.join(", "))
    }
}

fn feed_health(trouble: &FeedTrouble) -> FeedHealth {
    let (state, error) = match (&trouble.disabled, trouble.failing_now) {
        (Some(reason), _) => (FeedState::Disabled, reason.clone()),
        (None, true) => (
            FeedState::Failing,
            trouble.error.clone().unwrap_or_default(),
        ),
        (None, false) => (FeedState::Recovered, String::new()),
    };
    FeedHealth {
        feed: trouble.feed.clone(),
        error,
        state,
        failed_at: trouble.last_failed_at,
    }
}

fn baseline<'a>(ctx: &RenderContext<'a>, id: &str) -> Option<&'a BaselineArticle> {
    ctx.baselines.iter().find(|b| b.id == id)
}

fn shown_time(m: &MatchRow) -> Timestamp {
    m.published_at.unwrap_or(m.first_seen_at)
}

/// The matcher's reasons a digest reader needs: the `terms:`, `facets:` and `new:` lines. The
/// rest (score arithmetic, nearest baseline — already the section heading —, timing) stays
/// in `items show` and on the review page. Reasons in another shape are kept whole.
fn reader_why(why: &[String]) -> Vec<String> {
    const FOR_READERS: [&str; 3] = ["terms:", "facets:", "new:"];
    let picked: Vec<String> = why
        .iter()
        .filter(|line| FOR_READERS.iter().any(|label| line.starts_with(label)))
        .cloned()
        .collect();
    if picked.is_empty() {
        why.to_vec()
    } else {
        picked
    }
}

/// The link if it is http(s); anything else (javascript:, data:, relative) is dropped.
pub fn http_link(link: Option<&str>) -> Option<String> {
    link.map(str::trim)
        .filter(|l| is_http(l))
        .map(ToString::to_string)
}

/// Whether a link is http(s).
pub fn is_http(link: &str) -> bool {
    let lower = link.trim_start().to_ascii_lowercase();
    lower.starts_with("https://") || lower.starts_with("http://")
}

/// Folds near-duplicates into one entry per group: matches in the same stored group (see
/// [`crate::store::Store::group_of`]), or — for matches stored before groups were kept — with
/// the same link or alike headlines ([`Signature`] of the headline alone: without the store's
/// time window, summaries are not compared). The earliest report of each group is kept, at the place of the group's first
/// match in `matches`; it lists the other members' outlets, in this digest or not.
fn fold_near_duplicates<'a>(matches: &[&'a MatchRow]) -> Vec<(&'a MatchRow, Vec<String>)> {
    let mut groups: Vec<(Vec<&'a MatchRow>, Signature)> = Vec::new();
    for &m in matches {
        let signature = Signature::of(&m.title, "");
        let found = groups.iter_mut().find(|(members, s)| {
            let k = members[0];
            if k.story != m.story {
                return false;
            }
            match (k.group_id, m.group_id) {
                (Some(a), Some(b)) => a == b,
                _ => (k.link.is_some() && k.link == m.link) || s.is_near_duplicate(&signature),
            }
        });
        match found {
            Some((members, _)) => members.push(m),
            None => groups.push((vec![m], signature)),
        }
    }
    groups
        .into_iter()
        .map(|(members, _)| {
            // The first of equally early members (min_by_key keeps the first).
            let first = members
                .iter()
                .copied()
                .min_by_key(|m| (shown_time(m), m.first_seen_at))
                .unwrap_or(members[0]);
            let outlet = |m: &MatchRow| {
                m.source
                    .clone()
                    .unwrap_or_else(|| "another outlet".to_string())
            };
            let mut also: Vec<String> = Vec::new();
            let others = members
                .iter()
                .filter(|m| m.id != first.id)
                .map(|m| outlet(m))
                .chain(first.also_reported_by.iter().cloned());
            for o in others {
                if first.source.as_deref() != Some(o.as_str()) && !also.contains(&o) {
                    also.push(o);
                }
            }
            (first, also)
        })
        .collect()
}

/// The first sentence of a summary, cut at a word boundary if long.
pub fn one_line(summary: &str) -> String {
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::store::Review;
    use jiff::tz::TimeZone;

    pub(crate) fn baselines() -> Vec<BaselineArticle> {
        vec![BaselineArticle {
            id: "002_x".into(),
            title: "US and China to resume stalled fentanyl talks in Beijing".into(),
            outlet: Some("AFP".into()),
            published: Some(jiff::civil::date(2024, 1, 29)),
            url: None,
            text: String::new(),
        }]
    }

    pub(crate) fn row(id: i64, title: &str, verdict: VerdictKind, link: &str) -> MatchRow {
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
            group_id: None,
            also_reported_by: Vec::new(),
            group_sent: false,
        }
    }

    pub(crate) fn input(matches: Vec<MatchRow>) -> DigestInput {
        DigestInput {
            matches,
            period_start: None,
            period_end: "2025-10-31T07:00:00Z".parse().unwrap(),
            items_scanned: 42,
            feeds_polled: 3,
            failing_feeds: vec![FeedTrouble {
                feed: "Broken Feed".into(),
                error: Some("timed out".into()),
                disabled: None,
                failing_now: true,
                last_failed_at: Some("2025-10-31T06:00:00Z".parse().unwrap()),
            }],
        }
    }

    pub(crate) fn ctx<'a>(
        baselines: &'a [BaselineArticle],
        zone: &'a TimeZone,
        empty: EmptyDigest,
    ) -> RenderContext<'a> {
        RenderContext {
            story_name: "Fentanyl",
            stories: &[],
            baselines,
            timezone: zone,
            timezone_name: zone.iana_name().unwrap_or("UTC"),
            empty,
            related: RelatedMode::Show,
        }
    }

    #[test]
    fn groups_by_baseline_and_folds_copies() {
        let b = baselines();
        let mut copy = row(
            2,
            "Trump cuts fentanyl tariffs on China",
            VerdictKind::FollowUp,
            "https://other.example/2",
        );
        copy.source = Some("AP".into());
        let mut other = row(
            3,
            "Mexico seizes precursor shipment",
            VerdictKind::FollowUp,
            "https://n.example/3",
        );
        other.baseline = None;
        let digest = Digest::build(
            &ctx(&b, &TimeZone::UTC, EmptyDigest::Send),
            &input(vec![
                other,
                row(
                    1,
                    "Trump cuts fentanyl tariffs on China",
                    VerdictKind::FollowUp,
                    "https://n.example/1",
                ),
                copy,
                row(4, "Recap", VerdictKind::ReReport, "https://n.example/4"),
            ]),
        )
        .unwrap();
        assert_eq!(digest.sections.len(), 2);
        assert_eq!(digest.sections[0].baseline.as_ref().unwrap().id, "002_x");
        assert!(digest.sections[1].baseline.is_none(), "other goes last");
        assert_eq!(digest.sections[0].entries.len(), 1);
        assert_eq!(digest.sections[0].entries[0].also_reported_by, vec!["AP"]);
        assert_eq!(digest.development_count(), 2);
        assert_eq!(digest.compact.re_reports, 1);
        assert_eq!(
            digest.subject(),
            "storywatch: 2 new developments — Fentanyl"
        );
    }

    #[test]
    fn compact_modes_keep_counts() {
        let b = baselines();
        let zone = TimeZone::UTC;
        let matches = vec![
            row(1, "A recap", VerdictKind::ReReport, "https://n.example/1"),
            row(
                2,
                "Something else",
                VerdictKind::Related,
                "https://n.example/2",
            ),
        ];
        let mut c = ctx(&b, &zone, EmptyDigest::Send);
        c.related = RelatedMode::Count;
        let digest = Digest::build(&c, &input(matches)).unwrap();
        assert!(digest.compact.entries.is_empty());
        assert_eq!((digest.compact.re_reports, digest.compact.related), (1, 1));
        assert_eq!(
            digest.subject(),
            "storywatch: no new developments — Fentanyl"
        );
    }

    #[test]
    fn readers_get_terms_facets_and_novelty_only() {
        let why: Vec<String> = [
            "terms: fentanyl",
            "facets: drug ✓",
            "score 0.9 (threshold 0.5)",
            "new: tariff",
            "nearest: AFP",
            "time: 400 days after",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            reader_why(&why),
            ["terms: fentanyl", "facets: drug ✓", "new: tariff"]
        );
        let other = vec!["added by a reviewer".to_string()];
        assert_eq!(reader_why(&other), other);
    }

    #[test]
    fn non_http_links_are_dropped() {
        assert_eq!(http_link(Some("javascript:alert(1)")), None);
        assert_eq!(
            http_link(Some(" https://a.example/x")),
            Some("https://a.example/x".into())
        );
    }

    #[test]
    fn long_summaries_are_cut_at_a_word() {
        let long = "word ".repeat(100);
        let line = one_line(&long);
        assert!(line.ends_with('…') && line.chars().count() <= SUMMARY_CHARS + 1);
    }

    #[test]
    fn model_round_trips_as_json() {
        let b = baselines();
        let digest = Digest::build(
            &ctx(&b, &TimeZone::UTC, EmptyDigest::Send),
            &input(vec![row(
                1,
                "t",
                VerdictKind::FollowUp,
                "https://n.example/1",
            )]),
        )
        .unwrap();
        let json = serde_json::to_string(&digest).unwrap();
        assert_eq!(serde_json::from_str::<Digest>(&json).unwrap(), digest);
        assert!(json.contains("\"verdict\":\"follow_up\""), "{json}");
    }
}
