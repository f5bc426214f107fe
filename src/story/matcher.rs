//! The matcher: (profile, item) → verdict. Pure: no I/O, no clock.
//!
//! An item is on topic when it touches both required facets of the story (drug control and
//! China) and is close enough to the story as a whole. The score combines
//!
//! - the weaker of the two required facets (an item about fentanyl with no China side, or
//!   about China with no drug side, is not the story however strong the other side is),
//! - the supporting US facet (the story is bilateral), and
//! - the cosine to the seed centroid (how much of the story's vocabulary it shares),
//!
//! into [0, 1], with the shipped threshold at [`Profile::threshold`]. On-topic items are then
//! split into re-reports and follow-ups by time and novelty: an item dated before the
//! baseline, or within a few days of a baseline article and adding no new actions, reports a
//! known event; anything later, or with new actions (tariffs, charges, sentences, controls…),
//! is a follow-up.

use std::collections::HashSet;

use jiff::civil::Date;
use jiff::{Timestamp, Unit};
use serde::{Deserialize, Serialize};

use super::profile::Profile;
use super::text;

/// What the matcher reads of an item.
#[derive(Debug, Clone, Copy)]
pub struct MatchInput<'a> {
    /// Headline, plain text.
    pub title: &'a str,
    /// Short description, plain text; may be empty.
    pub summary: &'a str,
    /// Full text when the feed carries it; may be empty.
    pub content: &'a str,
    /// When the item was published, if known; used to tell re-reports from follow-ups.
    pub published: Option<Timestamp>,
}

/// The class of a verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VerdictKind {
    /// A new development of the story.
    FollowUp,
    /// Coverage of a baseline event itself, nothing new.
    ReReport,
    /// Touches the story in passing.
    Related,
    /// Not about the story.
    OffTopic,
}

impl VerdictKind {
    /// The snake_case name used in JSON, the database and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            VerdictKind::FollowUp => "follow_up",
            VerdictKind::ReReport => "re_report",
            VerdictKind::Related => "related",
            VerdictKind::OffTopic => "off_topic",
        }
    }

    /// Whether this verdict counts as a detection of the story (follow-up or re-report).
    pub fn is_detection(self) -> bool {
        matches!(self, VerdictKind::FollowUp | VerdictKind::ReReport)
    }
}

/// The matcher's answer for one item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// The class.
    pub verdict: VerdictKind,
    /// Calibrated to [0, 1]; at or above the profile's threshold exactly when the verdict is
    /// `follow_up` or `re_report`.
    pub score: f64,
    /// Id of the nearest baseline article, `None` when off topic.
    pub baseline: Option<String>,
    /// Human-readable reasons.
    pub why: Vec<String>,
}

/// Cosine to the centroid at which the similarity part of the score saturates: about what a
/// short on-topic headline with summary reaches.
const COSINE_SATURATION: f64 = 0.35;
/// Days around a baseline article's date within which an item reports the same event.
const EVENT_WINDOW_DAYS: i64 = 3;
/// Cosine to a baseline above which a later item is still the same report.
const SAME_REPORT_COSINE: f64 = 0.6;
/// Cosine to a baseline above which an undated item without new actions is a re-report.
const UNDATED_REREPORT_COSINE: f64 = 0.3;

/// The measurements the verdict is made from (public within the crate for evaluation tools).
#[derive(Debug, Clone)]
pub(crate) struct Signals {
    pub facet: Vec<f64>,
    pub facet_hits: Vec<Vec<String>>,
    pub cosine: f64,
    pub score: f64,
}

fn days_between(from: Date, to: Date) -> i64 {
    from.until((Unit::Day, to))
        .map(|s| i64::from(s.get_days()))
        .unwrap_or(0)
}

impl Profile {
    /// Measures an item against the profile (for evaluation tools and tuning).
    #[allow(dead_code)]
    pub(crate) fn measure(&self, item: &MatchInput<'_>) -> Signals {
        let full = format!("{}\n{}\n{}", item.title, item.summary, item.content);
        self.signals(&text::terms(&full))
    }

    /// Measures an item's terms against the profile.
    fn signals(&self, terms: &[String]) -> Signals {
        let distinct: HashSet<&str> = terms.iter().map(String::as_str).collect();
        let mut facet = Vec::with_capacity(self.facets.len());
        let mut facet_hits = Vec::with_capacity(self.facets.len());
        for f in &self.facets {
            let (s, hits) = f.strength(distinct.iter().copied());
            facet.push(s);
            facet_hits.push(hits.into_iter().map(str::to_string).collect());
        }
        let vector = super::profile::log_tf(terms);
        let cosine: f64 = vector
            .iter()
            .filter_map(|(t, w)| self.centroid.get(t).map(|c| c * w))
            .sum();
        let required = self
            .facets
            .iter()
            .zip(&facet)
            .filter(|(f, _)| f.required)
            .map(|(_, &s)| s)
            .fold(1.0, f64::min);
        let supporting = self
            .facets
            .iter()
            .zip(&facet)
            .filter(|(f, _)| !f.required)
            .map(|(_, &s)| s)
            .fold(0.0, f64::max);
        let similarity = (cosine / COSINE_SATURATION).min(1.0);
        let score = (required * (0.6 + 0.15 * supporting + 0.25 * similarity)).clamp(0.0, 1.0);
        Signals {
            facet,
            facet_hits,
            cosine,
            score,
        }
    }

    /// Classifies one item.
    pub fn classify(&self, item: &MatchInput<'_>) -> Verdict {
        let mut full =
            String::with_capacity(item.title.len() + item.summary.len() + item.content.len() + 2);
        for part in [item.title, item.summary, item.content] {
            if !part.trim().is_empty() {
                full.push_str(part);
                full.push('\n');
            }
        }
        let mut terms = Vec::with_capacity(64);
        text::for_each_term(&full, |t| {
            if !self.excluded.contains(&t) {
                terms.push(t);
            }
        });
        if terms.is_empty() {
            return Verdict {
                verdict: VerdictKind::OffTopic,
                score: 0.0,
                baseline: None,
                why: vec!["no words to match".to_string()],
            };
        }
        let sig = self.signals(&terms);
        let both = self
            .facets
            .iter()
            .zip(&sig.facet)
            .filter(|(f, _)| f.required)
            .all(|(_, &s)| s > 0.0);

        let mut why = Vec::new();
        why.push(self.explain_terms(&full, &terms, &sig));
        why.push(self.explain_facets(&sig));
        why.push(format!(
            "score {:.2} (threshold {:.2}; similarity to the story {:.2})",
            sig.score, self.threshold, sig.cosine
        ));

        if sig.score < self.threshold {
            let verdict = if both {
                VerdictKind::Related
            } else {
                VerdictKind::OffTopic
            };
            let baseline = (verdict == VerdictKind::Related)
                .then(|| self.nearest_by_cosine(&terms).0)
                .map(|i| self.baselines[i].id.clone());
            if let Some(id) = &baseline {
                why.push(format!("nearest: {}", self.describe(id)));
            }
            return Verdict {
                verdict,
                score: sig.score.min(self.threshold - 1e-6).max(0.0),
                baseline,
                why,
            };
        }

        // On topic: which baseline, and is it new?
        let item_date = item
            .published
            .map(|ts| ts.to_zoned(jiff::tz::TimeZone::UTC).date());
        let in_window: Option<usize> = item_date.and_then(|d| self.event_window(d, &terms));
        let (nearest, nearest_cos) = match in_window {
            Some(i) => (i, self.cosine_to(i, &terms)),
            None => self.nearest_by_cosine(&terms),
        };
        let new_actions = self.new_actions(nearest, &terms, &full);
        let new_names = self.new_names(&full);
        let mut new: Vec<String> = new_actions.clone();
        new.extend(new_names.iter().cloned());

        let earliest = self.baselines.iter().filter_map(|b| b.published).min();
        let (kind, time_reason) = match item_date {
            Some(d) if earliest.is_some_and(|e| days_between(d, e) > 1) => (
                VerdictKind::ReReport,
                Some(format!(
                    "time: published {d}, before the baseline: an event the baseline recounts"
                )),
            ),
            Some(d) if in_window.is_some() => {
                let b = self.baselines[nearest].published;
                let reason = format!(
                    "time: published {d}, within {EVENT_WINDOW_DAYS} days of the baseline {}",
                    b.map_or_else(String::new, |b| b.to_string())
                );
                if new_actions.len() >= 2 {
                    (VerdictKind::FollowUp, Some(reason))
                } else {
                    (VerdictKind::ReReport, Some(reason))
                }
            }
            Some(d) => {
                let latest = self.baselines.iter().filter_map(|b| b.published).max();
                let reason = latest.map(|l| match days_between(l, d) {
                    n if n > 0 => {
                        format!("time: published {d}, {n} days after the latest baseline")
                    }
                    _ => format!("time: published {d}, between the baseline events"),
                });
                if nearest_cos >= SAME_REPORT_COSINE && new.is_empty() {
                    (VerdictKind::ReReport, reason)
                } else {
                    (VerdictKind::FollowUp, reason)
                }
            }
            None => {
                if new_actions.is_empty() && nearest_cos >= UNDATED_REREPORT_COSINE {
                    (VerdictKind::ReReport, Some("time: undated".to_string()))
                } else {
                    (VerdictKind::FollowUp, Some("time: undated".to_string()))
                }
            }
        };
        if !new.is_empty() {
            new.truncate(5);
            why.push(format!("new: {}", new.join(", ")));
        }
        let id = self.baselines[nearest].id.clone();
        why.push(format!("nearest: {}", self.describe(&id)));
        why.extend(time_reason);
        Verdict {
            verdict: kind,
            score: sig.score,
            baseline: Some(id),
            why,
        }
    }

    /// `Outlet YYYY-MM-DD` (or the id) of a baseline, for explanations.
    fn describe(&self, id: &str) -> String {
        match self.baselines.iter().find(|b| b.id == id) {
            Some(b) => match (&b.outlet, b.published) {
                (Some(o), Some(d)) => format!("{o} {d}"),
                (Some(o), None) => format!("{o} ({id})"),
                (None, Some(d)) => format!("{id} {d}"),
                (None, None) => id.to_string(),
            },
            None => id.to_string(),
        }
    }

    fn cosine_to(&self, i: usize, terms: &[String]) -> f64 {
        let v = super::profile::log_tf(terms);
        v.iter()
            .filter_map(|(t, w)| self.models[i].vector.get(t).map(|b| b * w))
            .sum()
    }

    /// The baseline with the highest cosine to the item (first on ties).
    fn nearest_by_cosine(&self, terms: &[String]) -> (usize, f64) {
        let v = super::profile::log_tf(terms);
        let mut best = (0, f64::MIN);
        for (i, m) in self.models.iter().enumerate() {
            let c: f64 = v
                .iter()
                .filter_map(|(t, w)| m.vector.get(t).map(|b| b * w))
                .sum();
            if c > best.1 {
                best = (i, c);
            }
        }
        (best.0, best.1.max(0.0))
    }

    /// A baseline whose date lies within the event window of `date` (the most similar one
    /// when several do).
    fn event_window(&self, date: Date, terms: &[String]) -> Option<usize> {
        let mut best: Option<(usize, f64)> = None;
        for (i, b) in self.baselines.iter().enumerate() {
            let Some(bd) = b.published else { continue };
            let gap = days_between(bd, date);
            if (-EVENT_WINDOW_DAYS..=EVENT_WINDOW_DAYS).contains(&gap) {
                let c = self.cosine_to(i, terms);
                if best.is_none_or(|(_, bc)| c > bc) {
                    best = Some((i, c));
                }
            }
        }
        best.map(|(i, _)| i)
    }

    /// Action words in the item that the nearest baseline does not use, as written.
    fn new_actions(&self, nearest: usize, terms: &[String], full: &str) -> Vec<String> {
        let vocab = &self.models[nearest].vocabulary;
        let mut seen = HashSet::new();
        let wanted: Vec<&String> = terms
            .iter()
            .filter(|t| self.action_terms.contains(*t) && !vocab.contains(*t))
            .filter(|t| seen.insert(t.as_str()))
            .collect();
        surface_forms(full, &wanted)
    }

    /// Names in the item that no seed mentions (new actors and places), as written.
    fn new_names(&self, full: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for name in text::entities(full) {
            let words: Vec<&str> = name.split_whitespace().collect();
            let unknown = words.iter().all(|w| {
                text::terms(w)
                    .iter()
                    .all(|t| !self.known_names.contains(t) && !self.seed_vocabulary.contains(t))
            });
            if unknown && !out.contains(&name) {
                out.push(name);
            }
        }
        out.truncate(3);
        out
    }

    /// `terms: …` line: the item's words that weigh most in the story.
    fn explain_terms(&self, full: &str, terms: &[String], sig: &Signals) -> String {
        let mut scored: Vec<(&String, f64)> = Vec::new();
        for t in terms {
            let mut w = self.centroid.get(t).copied().unwrap_or(0.0);
            if sig.facet_hits.iter().flatten().any(|h| h == t) {
                w += 1.0;
            }
            if w > 0.0 && !scored.iter().any(|(s, _)| *s == t) {
                scored.push((t, w));
            }
        }
        scored.sort_by(|a, b| b.1.total_cmp(&a.1));
        let top: Vec<&String> = scored.iter().take(5).map(|(t, _)| *t).collect();
        if top.is_empty() {
            return "terms: none of the story's".to_string();
        }
        format!("terms: {}", surface_forms(full, &top).join(", "))
    }

    /// `facets: drug ✓ China ✗ US ✓` line.
    fn explain_facets(&self, sig: &Signals) -> String {
        let parts: Vec<String> = self
            .facets
            .iter()
            .zip(&sig.facet)
            .map(|(f, &s)| format!("{} {}", f.name, if s > 0.0 { "✓" } else { "✗" }))
            .collect();
        format!("facets: {}", parts.join(" "))
    }
}

/// The first surface form (as written in `full`) of each wanted term, in `wanted`'s order.
fn surface_forms(full: &str, wanted: &[&String]) -> Vec<String> {
    let mut found: Vec<Option<String>> = vec![None; wanted.len()];
    let normalized = text::normalize(full);
    for word in unicode_segmentation::UnicodeSegmentation::unicode_words(normalized.as_str()) {
        let ts = text::terms(word);
        for (i, w) in wanted.iter().enumerate() {
            if found[i].is_none() && ts.iter().any(|t| t == *w) {
                found[i] = Some(word.to_string());
            }
        }
        if found.iter().all(Option::is_some) {
            break;
        }
    }
    let mut out: Vec<String> = Vec::with_capacity(wanted.len());
    for (f, w) in found.into_iter().zip(wanted) {
        let s = f.unwrap_or_else(|| (*w).clone());
        if !out.contains(&s) {
            out.push(s);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::story::{Tuning, load_seeds};

    fn profile_with(tuning: &Tuning) -> Profile {
        let seeds = load_seeds(std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/seeds"
        )))
        .unwrap();
        Profile::build(seeds, tuning).unwrap()
    }

    fn profile() -> Profile {
        profile_with(&Tuning::default())
    }

    fn at(date: &str) -> Option<Timestamp> {
        Some(format!("{date}T12:00:00Z").parse().unwrap())
    }

    fn classify(p: &Profile, title: &str, summary: &str, date: &str) -> Verdict {
        p.classify(&MatchInput {
            title,
            summary,
            content: "",
            published: if date.is_empty() { None } else { at(date) },
        })
    }

    #[test]
    fn empty_item_is_off_topic() {
        let v = classify(&profile(), "", "", "2025-01-01");
        assert_eq!(v.verdict, VerdictKind::OffTopic);
        assert_eq!(v.score, 0.0);
        assert_eq!(v.baseline, None);
    }

    #[test]
    fn headline_only_follow_up() {
        let p = profile();
        let v = classify(
            &p,
            "US charges Chinese chemical makers over fentanyl precursor sales",
            "",
            "2025-06-01",
        );
        assert_eq!(v.verdict, VerdictKind::FollowUp, "{:?}", v.why);
        assert!(v.score >= p.threshold);
        assert!(
            v.why.iter().any(|w| w == "facets: drug ✓ China ✓ US ✓"),
            "{:?}",
            v.why
        );
        assert!(
            v.why.iter().any(|w| w.starts_with("new: charges")),
            "{:?}",
            v.why
        );
        assert!(
            v.why
                .iter()
                .any(|w| w.starts_with("terms: ") && w.contains("fentanyl"))
        );
    }

    #[test]
    fn one_facet_is_not_enough() {
        let p = profile();
        let drug_only = classify(
            &p,
            "Police seize fentanyl pills in Ohio",
            "Officers found 20,000 pills.",
            "2025-06-01",
        );
        assert_eq!(drug_only.verdict, VerdictKind::OffTopic);
        assert!(drug_only.why.iter().any(|w| w.contains("China ✗")));
        let china_only = classify(
            &p,
            "Xi and Biden discuss Taiwan in Beijing",
            "The leaders met for two hours.",
            "2025-06-01",
        );
        assert_eq!(china_only.verdict, VerdictKind::OffTopic);
    }

    #[test]
    fn passing_mention_is_related() {
        let v = classify(
            &profile(),
            "Customs officers in Shanghai seize smuggled drugs",
            "Drugs were hidden in luggage.",
            "2025-06-01",
        );
        assert_eq!(v.verdict, VerdictKind::Related, "{:?}", v.why);
        assert!(v.baseline.is_some());
    }

    #[test]
    fn baseline_window_is_re_report_and_later_is_follow_up() {
        let p = profile();
        let title = "US and China open counternarcotics talks on fentanyl in Beijing";
        let v = classify(&p, title, "", "2024-01-30");
        assert_eq!(v.verdict, VerdictKind::ReReport, "{:?}", v.why);
        let b = v.baseline.unwrap();
        let date = p.baselines.iter().find(|x| x.id == b).unwrap().published;
        assert!(date.unwrap().month() == 1);
        let v = classify(&p, title, "", "2025-09-30");
        assert_eq!(v.verdict, VerdictKind::FollowUp, "{:?}", v.why);
        let v = classify(&p, "Biden and Xi agree to curb fentanyl", "", "2023-11-15");
        assert_eq!(v.verdict, VerdictKind::ReReport, "{:?}", v.why);
        assert!(v.why.iter().any(|w| w.contains("before the baseline")));
    }

    #[test]
    fn washington_talks_re_report_points_at_july_baseline() {
        let p = profile();
        let v = classify(
            &p,
            "US hosts Chinese delegation in Washington for fentanyl talks",
            "Officials discussed precursor chemicals and illicit finance.",
            "2024-08-01",
        );
        assert_eq!(v.verdict, VerdictKind::ReReport, "{:?}", v.why);
        assert_eq!(v.baseline.as_deref(), Some("001_2a5f8e6a494c3f39"));
        assert!(
            v.why.iter().any(|w| w == "nearest: Bloomberg 2024-07-31"),
            "{:?}",
            v.why
        );
    }

    #[test]
    fn html_leftovers_do_not_change_the_verdict() {
        let p = profile();
        let plain = classify(
            &p,
            "China adds fentanyl precursors to control list",
            "Beijing said the US welcomed the step.",
            "2025-06-01",
        );
        let html = classify(
            &p,
            "China adds fentanyl precursors to control list",
            "<p>Beijing said the <b>US</b> welcomed the step.</p>&nbsp;<br/>",
            "2025-06-01",
        );
        assert_eq!(plain.verdict, html.verdict);
        assert!((plain.score - html.score).abs() < 1e-9);
    }

    #[test]
    fn all_caps_headline() {
        let v = classify(
            &profile(),
            "CHINA TO CURB FENTANYL PRECURSOR EXPORTS TO US",
            "",
            "2025-06-01",
        );
        assert_eq!(v.verdict, VerdictKind::FollowUp, "{:?}", v.why);
    }

    #[test]
    fn spanish_and_chinese_items() {
        let p = profile();
        let es = classify(
            &p,
            "China controlará la exportación de precursores de fentanilo a Estados Unidos",
            "El Ministerio de Comercio chino anunció la medida.",
            "2025-11-10",
        );
        assert_eq!(es.verdict, VerdictKind::FollowUp, "{:?}", es.why);
        let zh = classify(
            &p,
            "中国宣布对美国出口芬太尼前体实施许可管理",
            "",
            "2025-11-10",
        );
        assert!(zh.verdict.is_detection(), "{:?}", zh.why);
        let zh_off = classify(&p, "中国队赢得乒乓球冠军", "", "2025-11-10");
        assert_eq!(zh_off.verdict, VerdictKind::OffTopic);
    }

    #[test]
    fn undated_items_use_novelty() {
        let p = profile();
        let v = classify(
            &p,
            "Trump raises tariffs on Chinese goods, citing fentanyl",
            "",
            "",
        );
        assert_eq!(v.verdict, VerdictKind::FollowUp, "{:?}", v.why);
    }

    #[test]
    fn tuning_changes_the_profile() {
        let base = profile();
        let item = (
            "China and US discuss carfentanil and xylazine",
            "",
            "2025-06-01",
        );
        let before = classify(&base, item.0, item.1, item.2);

        let excluded = profile_with(&Tuning {
            exclude_terms: vec!["fentanyl".into()],
            ..Tuning::default()
        });
        let v = classify(&excluded, item.0, item.1, item.2);
        assert!(v.score < before.score);
        assert!(!v.verdict.is_detection());
        assert!(excluded.summary().contains("excluded: fentanyl"));

        let added = profile_with(&Tuning {
            add_terms: vec!["xylazine".into()],
            ..Tuning::default()
        });
        assert!(added.term_weight("xylazine") > 0.0);
        assert_eq!(base.term_weight("xylazine"), 0.0);
        let v = classify(&added, item.0, item.1, item.2);
        assert!(v.score > before.score, "{} vs {}", v.score, before.score);

        let boosted = profile_with(&Tuning {
            boost_terms: [("talks".to_string(), 3.0)].into_iter().collect(),
            ..Tuning::default()
        });
        assert!(boosted.term_weight("talks") > base.term_weight("talks"));

        let bad = Profile::build(
            base.baselines.clone(),
            &Tuning {
                boost_terms: [("talks".to_string(), -1.0)].into_iter().collect(),
                ..Tuning::default()
            },
        );
        assert!(bad.unwrap_err().to_string().contains("positive number"));
        let bad = Profile::build(
            base.baselines.clone(),
            &Tuning {
                add_terms: vec!["the".into()],
                ..Tuning::default()
            },
        );
        assert!(bad.unwrap_err().to_string().contains("no searchable word"));
    }

    #[test]
    fn verdict_serialises_snake_case() {
        let v = classify(
            &profile(),
            "Fentanyl talks with China resume",
            "",
            "2025-06-01",
        );
        let json = serde_json::to_string(&v).unwrap();
        assert!(json.contains("\"verdict\":\"follow_up\""), "{json}");
    }
}
