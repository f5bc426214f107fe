//! Near-duplicate detection between incoming items: syndicated copies and wire rewrites of one
//! report across feeds, so the digest and the review page show each development once.
//!
//! Headlines are short and rewrites reorder and swap words, so word shingles (which the seed
//! syndication check uses on full articles) find little here. Instead an item's
//! [`Signature`] is two sets of analysed terms (the same analysis as the matcher: stems,
//! stopwords dropped, Spanish and Chinese mapped to English terms): the headline's and the
//! headline-plus-summary's. Two items are near-duplicates when their headlines share most of
//! their terms (Jaccard), or when the smaller headline-plus-summary set is mostly contained in
//! the larger (a wire story and its shortened copy). Both need a minimum number of terms, so
//! two three-word headlines do not merge on one shared word.
//!
//! The signature is stored with each matched item (as text: readable and stable across
//! versions, no hash keys to keep), and the store groups an incoming item with the most
//! similar item seen within [`GROUP_WINDOW_DAYS`].

use std::collections::BTreeSet;

use super::text;

/// Items further apart than this (by published time, else first seen) are never grouped: the
/// same words a week later are a new development.
pub const GROUP_WINDOW_DAYS: i64 = 3;
/// Headline term Jaccard from which two items are one report. High, because merging two
/// developments hides one, which is worse than showing a copy twice: one different term in
/// six headline terms (5/7) is not enough on its own.
const TITLE_JACCARD: f64 = 0.75;
/// Headline-plus-summary containment from which two items are one report.
const BODY_CONTAINMENT: f64 = 0.7;
/// Fewest headline terms for the headline test.
const MIN_TITLE_TERMS: usize = 4;
/// Fewest headline-plus-summary terms (of the smaller item) for the containment test.
const MIN_BODY_TERMS: usize = 8;

/// What near-duplicate detection compares: the distinct terms of the headline and of the
/// headline with the summary.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Signature {
    /// Distinct terms of the headline.
    pub title: BTreeSet<String>,
    /// Distinct terms of headline and summary.
    pub body: BTreeSet<String>,
}

impl Signature {
    /// The signature of an item's headline and summary.
    pub fn of(title: &str, summary: &str) -> Signature {
        let title_terms: BTreeSet<String> = text::terms(title).into_iter().collect();
        let mut body = title_terms.clone();
        body.extend(text::terms(summary));
        Signature {
            title: title_terms,
            body,
        }
    }

    /// The stored form: headline terms, a tab, the summary's extra terms, space-separated.
    pub fn to_stored(&self) -> String {
        let title: Vec<&str> = self.title.iter().map(String::as_str).collect();
        let extra: Vec<&str> = self
            .body
            .difference(&self.title)
            .map(String::as_str)
            .collect();
        format!("{}\t{}", title.join(" "), extra.join(" "))
    }

    /// Reads the stored form back (anything unreadable gives an empty signature, which
    /// matches nothing).
    pub fn from_stored(stored: &str) -> Signature {
        let (title, extra) = stored.split_once('\t').unwrap_or((stored, ""));
        let title: BTreeSet<String> = title.split_whitespace().map(str::to_string).collect();
        let mut body = title.clone();
        body.extend(extra.split_whitespace().map(str::to_string));
        Signature { title, body }
    }

    /// How alike two items are, as a multiple of the near-duplicate threshold: the larger of
    /// headline Jaccard over its threshold (0.75) and headline-plus-summary containment over
    /// its threshold (0.7), each counted only with enough terms. 1.0 and above is one report;
    /// the store groups an item with its most alike earlier item.
    pub fn likeness(&self, other: &Signature) -> f64 {
        let title = if self.title.len().min(other.title.len()) >= MIN_TITLE_TERMS {
            jaccard(&self.title, &other.title)
        } else {
            0.0
        };
        let body = if self.body.len().min(other.body.len()) >= MIN_BODY_TERMS {
            containment(&self.body, &other.body)
        } else {
            0.0
        };
        (title / TITLE_JACCARD).max(body / BODY_CONTAINMENT)
    }

    /// Whether two items are copies or rewrites of one report.
    pub fn is_near_duplicate(&self, other: &Signature) -> bool {
        self.likeness(other) >= 1.0
    }
}

fn jaccard(a: &BTreeSet<String>, b: &BTreeSet<String>) -> f64 {
    let union = a.union(b).count();
    if union == 0 {
        return 0.0;
    }
    a.intersection(b).count() as f64 / union as f64
}

fn containment(a: &BTreeSet<String>, b: &BTreeSet<String>) -> f64 {
    let small = a.len().min(b.len());
    if small == 0 {
        return 0.0;
    }
    a.intersection(b).count() as f64 / small as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sig(title: &str, summary: &str) -> Signature {
        Signature::of(title, summary)
    }

    #[test]
    fn wire_rewrites_across_feeds_are_one_report() {
        let ap = sig(
            "US and China agree to curb fentanyl precursor exports",
            "Officials in Beijing said controls on precursor chemicals would take effect in May.",
        );
        let reuters = sig(
            "China, US agree to curb exports of fentanyl precursors",
            "Controls on the chemicals take effect in May, officials said in Beijing.",
        );
        assert!(ap.is_near_duplicate(&reuters));
        assert!(reuters.is_near_duplicate(&ap), "symmetric");
    }

    #[test]
    fn shortened_copy_is_contained_in_the_full_one() {
        let full = sig(
            "Treasury sanctions Chinese chemical firms",
            "The Treasury Department sanctioned six Chinese chemical companies and two \
             executives for supplying fentanyl precursors to Mexican cartels, officials said.",
        );
        let short = sig(
            "Six Chinese firms hit with US sanctions",
            "Treasury sanctioned six Chinese chemical companies supplying fentanyl precursors \
             to Mexican cartels.",
        );
        assert!(full.is_near_duplicate(&short));
    }

    #[test]
    fn different_developments_stay_apart() {
        let talks = sig(
            "US and China hold counternarcotics talks in Beijing",
            "Officials discussed fentanyl precursor controls.",
        );
        let charges = sig(
            "US charges Chinese firms over fentanyl precursor sales",
            "Prosecutors in New York unsealed indictments against two companies.",
        );
        assert!(!talks.is_near_duplicate(&charges));
        // Short headlines sharing a word or two are not enough.
        assert!(!sig("Fentanyl talks", "").is_near_duplicate(&sig("Fentanyl talks resume", "")));
    }

    #[test]
    fn html_uses_the_matcher_analysis_and_the_stored_form_round_trips() {
        let s = sig(
            "<b>China</b> and US agree on fentanyl precursors",
            "Beijing &amp; Washington",
        );
        assert!(
            s.title.contains("fentanyl") && s.body.contains("beij"),
            "{s:?}"
        );
        assert_eq!(Signature::from_stored(&s.to_stored()), s);
        assert_eq!(Signature::from_stored(""), Signature::default());
    }
}
