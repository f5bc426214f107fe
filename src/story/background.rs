//! Background statistics: how common a term is in news text at large, so that the profile can
//! weigh what the seeds say against what every text says (idf).
//!
//! Two sources, blended:
//!
//! - a **shipped prior**: `background.tsv`, English word frequencies from wordfreq (data
//!   CC-BY-SA 4.0, Robyn Speer et al.) reduced to the analyser's Snowball stems, as Zipf values
//!   (log10 of occurrences per billion words). Written once by `tools/make_background.py`;
//!   the build only reads the file.
//! - **stream statistics**: document frequencies of terms in the items the daemon has seen,
//!   added with [`Background::observe`] or [`Background::merge`] (e.g. from counts kept in the
//!   store). They take over from the prior as the stream grows, because the prior counts as
//!   [`PRIOR_DOCUMENTS`] pseudo-documents.
//!
//! A term's document probability is `(df + m·p₀) / (N + m)`, where `p₀` is the prior's
//! probability that a short item (title and summary, [`ITEM_WORDS`] words) contains the term,
//! `N` the observed documents and `m` the prior's weight. Its [`Background::idf`] is `−ln` of
//! that: the centroid's term weights, which follow the user's stream.
//!
//! [`Background::rarity`] is different on purpose: the prior's idf alone, rescaled to [0, 1].
//! It says how specific a word is in news English, and it decides the story's facets and its
//! development words. A stream chosen for a story is full of the story's words (a DEA feed
//! says *fentanyl* every day); if the stream could lower their rarity, the facets that define
//! the story would erode as the daemon runs. The stream moves the similarity part of the score
//! only, so it can sharpen ranking but not drift what the story is.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use super::text::FnvBuild;

/// The shipped background table (see the module documentation for source and licence).
const SHIPPED: &str = include_str!("background.tsv");

/// Typical length in words of an item (headline and short summary): turns a word frequency
/// into the probability that an item contains the word.
pub const ITEM_WORDS: f64 = 40.0;
/// Weight of the shipped prior, in documents: with fewer observed items than this, the prior
/// dominates.
pub const PRIOR_DOCUMENTS: f64 = 5_000.0;
/// Zipf value assumed for a term the table does not have (the table holds the 40,000 most
/// frequent English words, whose rarest have Zipf ≈ 2.7): rarer than any listed word.
pub const UNSEEN_ZIPF: f64 = 2.0;
/// Zipf value at which [`Background::rarity`] is 0: a word used 100 times per million words
/// (`officials`, `meeting`) says nothing about a topic.
pub const COMMON_ZIPF: f64 = 5.0;
/// Zipf value at which [`Background::rarity`] is 1: a word used once per million words or less
/// (`fentanyl`, `counternarcotics`) is as specific as the vocabulary gets.
pub const RARE_ZIPF: f64 = 3.0;

static SHIPPED_BACKGROUND: LazyLock<Arc<Background>> =
    LazyLock::new(|| Arc::new(Background::parse(SHIPPED)));

/// Why a background table could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BackgroundError {
    /// A line is not `term<TAB>zipf` with a finite number.
    #[error("background table line {line}: expected `term<TAB>zipf`, found {text:?}")]
    BadLine {
        /// 1-based line number.
        line: usize,
        /// The line as found.
        text: String,
    },
}

/// Term statistics of news text at large: a prior table plus document frequencies observed in
/// the stream. Cheap to clone for the shipped table (it is shared behind [`Background::shipped`]).
#[derive(Debug, Clone, Default)]
pub struct Background {
    /// Term → prior document probability of a short item containing it.
    prior: HashMap<String, f64, FnvBuild>,
    /// Term → number of observed documents containing it.
    observed: HashMap<String, u64, FnvBuild>,
    /// Number of observed documents.
    documents: u64,
}

impl Background {
    /// The shipped English background (parsed once per process).
    pub fn shipped() -> &'static Background {
        &SHIPPED_BACKGROUND
    }

    /// The shipped English background as a shared handle (no copy).
    pub fn shared() -> Arc<Background> {
        Arc::clone(&SHIPPED_BACKGROUND)
    }

    /// Reads a `term<TAB>zipf` table (`#` lines are comments), rejecting malformed lines.
    pub fn from_table(table: &str) -> Result<Background, BackgroundError> {
        let mut prior = HashMap::default();
        for (i, line) in table.lines().enumerate() {
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let parsed = line
                .split_once('\t')
                .and_then(|(t, z)| Some((t, z.trim().parse::<f64>().ok()?)))
                .filter(|(t, z)| !t.is_empty() && z.is_finite());
            let Some((term, zipf)) = parsed else {
                return Err(BackgroundError::BadLine {
                    line: i + 1,
                    text: line.to_string(),
                });
            };
            prior.insert(term.to_string(), item_probability(zipf));
        }
        Ok(Background {
            prior,
            ..Background::default()
        })
    }

    /// The shipped table is generated, so a bad line is a packaging bug: skip such lines rather
    /// than fail at run time (a unit test checks there are none).
    fn parse(table: &str) -> Background {
        let mut prior = HashMap::default();
        for line in table.lines().filter(|l| !l.starts_with('#')) {
            if let Some((t, z)) = line.split_once('\t')
                && let Ok(z) = z.trim().parse::<f64>()
            {
                prior.insert(t.to_string(), item_probability(z));
            }
        }
        Background {
            prior,
            ..Background::default()
        }
    }

    /// Counts one observed document given its terms (duplicates within it count once).
    pub fn observe<'a>(&mut self, terms: impl IntoIterator<Item = &'a str>) {
        let mut seen: Vec<&str> = terms.into_iter().collect();
        seen.sort_unstable();
        seen.dedup();
        for t in seen {
            *self.observed.entry(t.to_string()).or_default() += 1;
        }
        self.documents += 1;
    }

    /// Adds document frequencies counted elsewhere (e.g. kept in the store): `documents`
    /// documents, of which `df[t]` contained term `t`. Counts saturate rather than overflow.
    pub fn merge<'a>(&mut self, documents: u64, df: impl IntoIterator<Item = (&'a str, u64)>) {
        for (t, n) in df {
            let e = self.observed.entry(t.to_string()).or_default();
            *e = e.saturating_add(n.min(documents));
        }
        self.documents = self.documents.saturating_add(documents);
    }

    /// Number of observed stream documents.
    pub fn documents(&self) -> u64 {
        self.documents
    }

    /// Probability that a short item contains `term`: prior and stream blended.
    pub fn probability(&self, term: &str) -> f64 {
        let p0 = self.prior_probability(term);
        if self.documents == 0 {
            return p0;
        }
        let df = self.observed.get(term).copied().unwrap_or(0) as f64;
        (df + PRIOR_DOCUMENTS * p0) / (self.documents as f64 + PRIOR_DOCUMENTS)
    }

    /// Whether the shipped table lists `term` (an unlisted term is rarer than its 40,000
    /// words): a word of the language the table describes, English, whatever its frequency.
    /// The stream does not count: a feed list in another language must not teach the
    /// matcher that its words are English.
    pub fn knows(&self, term: &str) -> bool {
        self.prior.contains_key(term)
    }

    /// Inverse document frequency, `−ln` [`Background::probability`] (prior and stream).
    pub fn idf(&self, term: &str) -> f64 {
        -self.probability(term).ln()
    }

    /// The prior's probability alone (see the module documentation for why rarity uses it).
    fn prior_probability(&self, term: &str) -> f64 {
        self.prior
            .get(term)
            .copied()
            .unwrap_or_else(|| item_probability(UNSEEN_ZIPF))
    }

    /// The prior's idf rescaled to [0, 1]: 0 for a word as common as [`COMMON_ZIPF`], 1 for one
    /// as rare as [`RARE_ZIPF`] or rarer. The facet weights and development words use this; the
    /// stream never changes it.
    pub fn rarity(&self, term: &str) -> f64 {
        let lo = -item_probability(COMMON_ZIPF).ln();
        let hi = -item_probability(RARE_ZIPF).ln();
        let idf = -self.prior_probability(term).ln();
        ((idf - lo) / (hi - lo)).clamp(0.0, 1.0)
    }

    /// The shipped table with the given stream statistics merged in (see
    /// [`Background::merge`]).
    pub fn shipped_with_stream<'a>(
        documents: u64,
        df: impl IntoIterator<Item = (&'a str, u64)>,
    ) -> Background {
        let mut background = Background::shipped().clone();
        background.merge(documents, df);
        background
    }
}

/// Probability that an item of [`ITEM_WORDS`] words contains a word of the given Zipf value
/// (Poisson: 1 − e^(−f·L)), kept above zero.
fn item_probability(zipf: f64) -> f64 {
    let per_word = 10f64.powf(zipf - 9.0);
    (1.0 - (-per_word * ITEM_WORDS).exp()).clamp(1e-12, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::story::text::terms;

    fn term(w: &str) -> String {
        terms(w).remove(0)
    }

    #[test]
    fn shipped_table_parses_cleanly() {
        let strict = Background::from_table(SHIPPED).unwrap();
        assert_eq!(strict.prior.len(), Background::shipped().prior.len());
        assert!(strict.prior.len() > 20_000);
        assert!(SHIPPED.len() < 1_000_000);
    }

    #[test]
    fn common_words_weigh_less_than_story_words() {
        let b = Background::shipped();
        for common in ["officials", "meeting", "talks"] {
            for rare in ["fentanyl", "precursor", "counternarcotics", "opioid"] {
                assert!(
                    b.idf(&term(common)) < b.idf(&term(rare)),
                    "{common} vs {rare}"
                );
            }
        }
        assert!(b.rarity(&term("officials")) < 0.4);
        assert_eq!(b.rarity(&term("fentanyl")), 1.0);
        // Not in the table at all: rarer than anything listed.
        assert!(!b.knows("counternarcot"));
        assert_eq!(b.rarity("counternarcot"), 1.0);
    }

    #[test]
    fn stream_statistics_take_over() {
        let mut b = Background::from_table("# c\nfoo\t6.0\nbar\t3.0\n").unwrap();
        let before = b.idf("bar");
        // A stream in which "bar" is in every item: it becomes common.
        b.merge(50_000, [("bar", 50_000)]);
        assert!(b.idf("bar") < before / 4.0, "{} vs {before}", b.idf("bar"));
        let mut c = Background::default();
        c.observe(["a", "a", "b"]);
        c.observe(["a"]);
        assert_eq!(c.documents(), 2);
        assert_eq!(c.observed["a"], 2);
        assert!(c.probability("a") > c.probability("b"));
    }

    #[test]
    fn the_stream_moves_idf_but_never_rarity() {
        let fentanyl = term("fentanyl");
        let before = (
            Background::shipped().idf(&fentanyl),
            Background::shipped().rarity(&fentanyl),
        );
        // A stream in which every other item says fentanyl (a DEA press-release feed).
        let b = Background::shipped_with_stream(20_000, [(fentanyl.as_str(), 10_000)]);
        assert!(
            b.idf(&fentanyl) < before.0 - 5.0,
            "{} vs {}",
            b.idf(&fentanyl),
            before.0
        );
        assert_eq!(b.rarity(&fentanyl), before.1);
        assert_eq!(b.documents(), 20_000);
    }

    #[test]
    fn malformed_tables_are_rejected() {
        let err = Background::from_table("foo 6.0\n").unwrap_err();
        assert!(err.to_string().contains("line 1"));
        assert!(Background::from_table("foo\tNaN\n").is_err());
    }
}
