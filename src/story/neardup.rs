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
//! Rewrites by different outlets (`FBI chief Kash Patel makes secret Beijing trip` and `FBI
//! chief Kash Patel visits China amid fentanyl crackdown`) share few words beyond the story's
//! own, so a third test looks past those: a cosine over the headline-plus-summary terms
//! weighted by background idf, with the terms of the story's vocabulary (any seed's words)
//! weighed down to [`STORY_TERM_WEIGHT`]. Every matched item shares *fentanyl, China,
//! precursor*; two reports of one development also share what is particular to it (*Kash
//! Patel*, *Amarvel*, *white paper*).
//!
//! The signature is stored with each matched item (as text: readable and stable across
//! versions, no hash keys to keep), and the store groups an incoming item with the most
//! similar item seen within [`GROUP_WINDOW_DAYS`].

use std::collections::{BTreeSet, HashMap};
use std::sync::{LazyLock, Mutex};

use super::background::Background;
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
/// Story-weighted cosine from which two items are one report. Measured on the shared
/// development set's matched items published within two days of each other: pairs that are
/// one development told by two outlets score 0.55–0.85, different developments of the same
/// days at most 0.47.
const DISTINCT_COSINE: f64 = 0.5;
/// Weight of a story-vocabulary term relative to its idf in the story-weighted cosine: kept
/// above zero, so two reports that differ only in the story's words still count them a little.
pub const STORY_TERM_WEIGHT: f64 = 0.3;
/// Fewest terms outside the story's vocabulary (in each item) for the story-weighted test: a
/// headline that is nothing but the story's words, or adds a single one, says nothing
/// particular enough to tell its development from another.
const MIN_DISTINCT_TERMS: usize = 2;

/// What near-duplicate detection compares: the distinct terms of the headline and of the
/// headline with the summary, and which of them are the story's own vocabulary.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Signature {
    /// Distinct terms of the headline.
    pub title: BTreeSet<String>,
    /// Distinct terms of headline and summary.
    pub body: BTreeSet<String>,
    /// The terms of `body` that belong to the story's vocabulary, when the signature was made
    /// for a story ([`Signature::for_story`]); `None` disables the story-weighted test.
    pub story: Option<BTreeSet<String>>,
}

impl Signature {
    /// The signature of an item's headline and summary, without a story: only the headline
    /// and containment tests apply.
    pub fn of(title: &str, summary: &str) -> Signature {
        let title_terms: BTreeSet<String> = text::terms(title).into_iter().collect();
        let mut body = title_terms.clone();
        body.extend(text::terms(summary));
        Signature {
            title: title_terms,
            body,
            story: None,
        }
    }

    /// The signature of a matched item, marking the terms `is_story_term` says belong to the
    /// story (the seeds' vocabulary), so the story-weighted test can look past them.
    pub fn for_story(
        title: &str,
        summary: &str,
        is_story_term: impl Fn(&str) -> bool,
    ) -> Signature {
        let mut signature = Signature::of(title, summary);
        signature.story = Some(
            signature
                .body
                .iter()
                .filter(|t| is_story_term(t))
                .cloned()
                .collect(),
        );
        signature
    }

    /// The stored form: headline terms, a tab, the summary's extra terms, and with a story a
    /// tab and the story-vocabulary terms, each space-separated.
    pub fn to_stored(&self) -> String {
        let title: Vec<&str> = self.title.iter().map(String::as_str).collect();
        let extra: Vec<&str> = self
            .body
            .difference(&self.title)
            .map(String::as_str)
            .collect();
        let mut out = format!("{}\t{}", title.join(" "), extra.join(" "));
        if let Some(story) = &self.story {
            let story: Vec<&str> = story.iter().map(String::as_str).collect();
            out.push('\t');
            out.push_str(&story.join(" "));
        }
        out
    }

    /// Reads the stored form back (anything unreadable gives an empty signature, which
    /// matches nothing; the two-part form of earlier versions has no story part).
    pub fn from_stored(stored: &str) -> Signature {
        let mut parts = stored.splitn(3, '\t');
        let words = |part: Option<&str>| -> BTreeSet<String> {
            part.unwrap_or("")
                .split_whitespace()
                .map(str::to_string)
                .collect()
        };
        let title = words(parts.next());
        let mut body = title.clone();
        body.extend(words(parts.next()));
        let story = parts.next().map(|p| words(Some(p)));
        Signature { title, body, story }
    }

    /// How alike two items are, as a multiple of the near-duplicate threshold: the largest of
    /// headline Jaccard over its threshold (0.75), headline-plus-summary containment over its
    /// threshold (0.7) and, when both signatures know the story, the story-weighted cosine over
    /// its threshold (0.5); each counted only with enough terms. 1.0 and above is one report;
    /// the store groups an item with its most alike earlier item.
    pub fn likeness(&self, other: &Signature) -> f64 {
        Prepared::new(self.clone()).likeness(&Prepared::new(other.clone()))
    }

    /// Whether two items are copies or rewrites of one report.
    pub fn is_near_duplicate(&self, other: &Signature) -> bool {
        self.likeness(other) >= 1.0
    }
}

/// A signature made ready for comparing one item with many: the store compares each new match
/// with every signed item of the last days. Terms become small integers in sorted arrays, with
/// each term's idf and story membership beside it, so the three tests of
/// [`Signature::likeness`] are merge passes over arrays instead of string-set lookups and idf
/// computations (a first poll of a thousand feeds spent most of its time there). The same
/// figure for signatures made with one story vocabulary, as the store's are.
#[derive(Debug, Clone)]
pub struct Prepared {
    signature: Signature,
    title: Terms,
    body: Terms,
}

/// One term set of a [`Prepared`] signature, sorted by term id.
#[derive(Debug, Clone, Default)]
struct Terms {
    ids: Vec<u32>,
    /// Background idf of each term (only with a story: the other tests do not weigh terms).
    idf: Vec<f64>,
    /// Whether each term is the story's vocabulary.
    story: Vec<bool>,
}

/// Term → small integer, shared by every prepared signature of the process.
static TERM_IDS: LazyLock<Mutex<HashMap<String, u32>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

impl Terms {
    fn of(set: &BTreeSet<String>, story: Option<&BTreeSet<String>>) -> Terms {
        let background = Background::shipped();
        // A poisoned lock only means another thread panicked mid-insert; the map is usable.
        let mut term_ids = TERM_IDS
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut entries: Vec<(u32, f64, bool)> = set
            .iter()
            .map(|t| {
                let next = u32::try_from(term_ids.len()).unwrap_or(u32::MAX);
                let id = *term_ids.entry(t.clone()).or_insert(next);
                match story {
                    Some(story) => (id, background.idf(t), story.contains(t)),
                    None => (id, 0.0, false),
                }
            })
            .collect();
        drop(term_ids);
        entries.sort_unstable_by_key(|e| e.0);
        Terms {
            ids: entries.iter().map(|e| e.0).collect(),
            idf: entries.iter().map(|e| e.1).collect(),
            story: entries.iter().map(|e| e.2).collect(),
        }
    }

    fn len(&self) -> usize {
        self.ids.len()
    }

    fn shared(&self, other: &Terms) -> usize {
        let (mut i, mut j, mut n) = (0, 0, 0);
        while i < self.ids.len() && j < other.ids.len() {
            match self.ids[i].cmp(&other.ids[j]) {
                std::cmp::Ordering::Less => i += 1,
                std::cmp::Ordering::Greater => j += 1,
                std::cmp::Ordering::Equal => {
                    n += 1;
                    i += 1;
                    j += 1;
                }
            }
        }
        n
    }

    /// The story-weighted cosine of two sets (see `Prepared::story_weighted_cosine`): a term
    /// is weighed down when either side counts it as the story's, and each side needs
    /// [`MIN_DISTINCT_TERMS`] terms outside the story's vocabulary.
    fn story_cosine(&self, other: &Terms) -> Option<f64> {
        let weight = |idf: f64, story: bool| if story { idf * STORY_TERM_WEIGHT } else { idf };
        let (mut norm_a, mut norm_b, mut dot) = (0.0, 0.0, 0.0);
        let (mut particular_a, mut particular_b) = (0, 0);
        let (mut i, mut j) = (0, 0);
        loop {
            let order = match (self.ids.get(i), other.ids.get(j)) {
                (None, None) => break,
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (Some(a), Some(b)) => a.cmp(b),
            };
            match order {
                std::cmp::Ordering::Less => {
                    let w = weight(self.idf[i], self.story[i]);
                    norm_a += w * w;
                    particular_a += usize::from(!self.story[i]);
                    i += 1;
                }
                std::cmp::Ordering::Greater => {
                    let w = weight(other.idf[j], other.story[j]);
                    norm_b += w * w;
                    particular_b += usize::from(!other.story[j]);
                    j += 1;
                }
                std::cmp::Ordering::Equal => {
                    let story = self.story[i] || other.story[j];
                    let w = weight(self.idf[i], story);
                    norm_a += w * w;
                    norm_b += w * w;
                    dot += w * w;
                    particular_a += usize::from(!story);
                    particular_b += usize::from(!story);
                    i += 1;
                    j += 1;
                }
            }
        }
        if particular_a.min(particular_b) < MIN_DISTINCT_TERMS {
            return None;
        }
        let denominator = norm_a.sqrt() * norm_b.sqrt();
        (denominator > 0.0).then(|| dot / denominator)
    }
}

impl Prepared {
    /// Prepares `signature` for many comparisons.
    pub fn new(signature: Signature) -> Prepared {
        let story = signature.story.as_ref();
        let title = Terms::of(&signature.title, story);
        let body = Terms::of(&signature.body, story);
        Prepared {
            signature,
            title,
            body,
        }
    }

    /// The larger of the headline cosine and the headline-plus-summary cosine, with idf
    /// weights and story terms weighed down; `None` without a story on both sides. Each cosine
    /// needs [`MIN_DISTINCT_TERMS`] terms particular to each item (outside the story's
    /// vocabulary); a headline is compared alone too because a summary often adds background
    /// that differs between outlets while the headlines name the same event.
    fn story_weighted_cosine(&self, other: &Prepared) -> Option<f64> {
        if self.signature.story.is_none() || other.signature.story.is_none() {
            return None;
        }
        match (
            self.title.story_cosine(&other.title),
            self.body.story_cosine(&other.body),
        ) {
            (None, None) => None,
            (t, b) => Some(t.unwrap_or(0.0).max(b.unwrap_or(0.0))),
        }
    }

    /// The signature prepared.
    pub fn signature(&self) -> &Signature {
        &self.signature
    }

    /// [`Signature::likeness`], the same figure, from the prepared arrays.
    pub fn likeness(&self, other: &Prepared) -> f64 {
        let title = if self.title.len().min(other.title.len()) >= MIN_TITLE_TERMS {
            let shared = self.title.shared(&other.title);
            shared as f64 / (self.title.len() + other.title.len() - shared) as f64
        } else {
            0.0
        };
        let body = if self.body.len().min(other.body.len()) >= MIN_BODY_TERMS {
            self.body.shared(&other.body) as f64 / self.body.len().min(other.body.len()) as f64
        } else {
            0.0
        };
        let distinct = self.story_weighted_cosine(other).unwrap_or(0.0);
        (title / TITLE_JACCARD)
            .max(body / BODY_CONTAINMENT)
            .max(distinct / DISTINCT_COSINE)
    }
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

    /// The method as set operations, written plainly: the merge passes must agree with it.
    fn reference_likeness(a: &Signature, b: &Signature) -> f64 {
        let shared = |x: &BTreeSet<String>, y: &BTreeSet<String>| x.intersection(y).count();
        let title = if a.title.len().min(b.title.len()) >= MIN_TITLE_TERMS {
            let n = shared(&a.title, &b.title);
            n as f64 / a.title.union(&b.title).count() as f64
        } else {
            0.0
        };
        let body = if a.body.len().min(b.body.len()) >= MIN_BODY_TERMS {
            shared(&a.body, &b.body) as f64 / a.body.len().min(b.body.len()) as f64
        } else {
            0.0
        };
        let distinct = match (&a.story, &b.story) {
            (Some(mine), Some(theirs)) => {
                let story = |t: &String| mine.contains(t) || theirs.contains(t);
                let weight = |t: &String| {
                    let idf = Background::shipped().idf(t);
                    if story(t) {
                        idf * STORY_TERM_WEIGHT
                    } else {
                        idf
                    }
                };
                let cosine = |x: &BTreeSet<String>, y: &BTreeSet<String>| -> Option<f64> {
                    let particular = |s: &BTreeSet<String>| s.iter().filter(|t| !story(t)).count();
                    if particular(x).min(particular(y)) < MIN_DISTINCT_TERMS {
                        return None;
                    }
                    let norm = |s: &BTreeSet<String>| {
                        s.iter().map(|t| weight(t).powi(2)).sum::<f64>().sqrt()
                    };
                    let dot: f64 = x.intersection(y).map(|t| weight(t).powi(2)).sum();
                    Some(dot / (norm(x) * norm(y)))
                };
                match (cosine(&a.title, &b.title), cosine(&a.body, &b.body)) {
                    (None, None) => 0.0,
                    (t, b) => t.unwrap_or(0.0).max(b.unwrap_or(0.0)),
                }
            }
            _ => 0.0,
        };
        (title / TITLE_JACCARD)
            .max(body / BODY_CONTAINMENT)
            .max(distinct / DISTINCT_COSINE)
    }

    #[test]
    fn prepared_comparison_agrees_with_the_set_formulation() {
        let story = |t: &str| ["fentanyl", "china", "precursor", "us", "beij"].contains(&t);
        let items = [
            (
                "FBI chief Kash Patel makes secret Beijing trip",
                "Talks on fentanyl.",
            ),
            (
                "FBI chief Kash Patel visits China amid fentanyl crackdown",
                "",
            ),
            (
                "US and China agree to curb fentanyl precursor exports",
                "Officials in Beijing said controls on precursor chemicals take effect in May.",
            ),
            (
                "China, US agree to curb exports of fentanyl precursors",
                "Controls on the chemicals take effect in May, officials said in Beijing.",
            ),
            ("China US fentanyl talks", ""),
        ];
        let signatures: Vec<Signature> = items
            .iter()
            .map(|(t, s)| Signature::for_story(t, s, story))
            .chain(items.iter().map(|(t, s)| Signature::of(t, s)))
            .collect();
        let mut grouped = 0;
        for a in &signatures {
            for b in &signatures {
                let (fast, plain) = (a.likeness(b), reference_likeness(a, b));
                assert!(
                    (fast - plain).abs() < 1e-9,
                    "{fast} vs {plain}: {a:?} {b:?}"
                );
                grouped += usize::from(fast >= 1.0 && a != b);
            }
        }
        assert!(grouped > 0, "some pairs are near-duplicates");
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

    /// Signatures made for the bundled story, as the pipeline makes them.
    fn story_sig(title: &str, summary: &str) -> Signature {
        use std::sync::LazyLock;
        static PROFILE: LazyLock<crate::story::Profile> = LazyLock::new(|| {
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
            let seeds = crate::story::load_seeds(&dir).unwrap();
            crate::story::Profile::build(seeds, &crate::story::Tuning::default()).unwrap()
        });
        Signature::for_story(title, summary, |t| PROFILE.is_story_term(t))
    }

    #[test]
    fn two_outlets_telling_one_development_are_one_report() {
        // Few shared words beyond the story's own, but the particular ones agree.
        let a = story_sig(
            "FBI director Kash Patel makes unannounced trip to Beijing over fentanyl",
            "The visit follows the leaders' consensus on fentanyl, with a bilateral working \
             group to fill in the details.",
        );
        let b = story_sig(
            "Kash Patel visits China as fentanyl cooperation with the US resumes",
            "The FBI director's low-key visit came after the leaders agreed on fentanyl; \
             a bilateral working group will work out the deal.",
        );
        assert!(a.likeness(&b) >= 1.0, "{}", a.likeness(&b));
        let c = story_sig(
            "Jury convicts Hubei Amarvel executives on precursor import and laundering counts",
            "The two Wuhan chemical executives were acquitted of distributing fentanyl.",
        );
        let d = story_sig(
            "Amarvel Biotech executives cleared of fentanyl charge, found guilty on others",
            "A Manhattan jury convicted the Hubei company's executives of importing a precursor \
             and money laundering.",
        );
        assert!(c.likeness(&d) >= 1.0, "{}", c.likeness(&d));
    }

    #[test]
    fn different_developments_of_the_same_days_stay_apart_with_the_story_weighting() {
        let pairs = [
            (
                (
                    "Trump raises tariffs on China to 20 percent, citing fentanyl",
                    "",
                ),
                ("China vows to retaliate as US fentanyl tariffs loom", ""),
            ),
            (
                (
                    "China demands US stop shifting blame over fentanyl crisis",
                    "The foreign ministry said Washington should look at its own demand.",
                ),
                (
                    "China and US to cut tariffs after Geneva negotiation",
                    "Both sides will lower duties for 90 days while talks continue.",
                ),
            ),
            (
                (
                    "FBI director Kash Patel makes unannounced trip to Beijing over fentanyl",
                    "",
                ),
                (
                    "China imposes export licences on fentanyl precursors bound for US and Mexico",
                    "",
                ),
            ),
        ];
        for ((t1, s1), (t2, s2)) in pairs {
            let (a, b) = (story_sig(t1, s1), story_sig(t2, s2));
            assert!(a.likeness(&b) < 1.0, "{t1} ~ {t2}: {}", a.likeness(&b));
        }
        // A headline made only of the story's words has nothing particular to compare.
        let bare = story_sig("China US fentanyl talks", "");
        let bare = Prepared::new(bare);
        assert!(bare.story_weighted_cosine(&bare).is_none());
    }

    #[test]
    fn story_part_is_stored_and_older_two_part_signatures_still_read() {
        let s = story_sig("Kash Patel visits Beijing for fentanyl talks", "");
        let stored = s.to_stored();
        assert_eq!(stored.matches('\t').count(), 2, "{stored}");
        assert_eq!(Signature::from_stored(&stored), s);
        let old = Signature::from_stored("fentanyl patel visit\tbeij");
        assert_eq!(old.story, None);
        assert!(old.body.contains("beij"));
        // A plain signature never takes the story-weighted test.
        assert_eq!(
            Prepared::new(old).story_weighted_cosine(&Prepared::new(s)),
            None
        );
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
