//! The story profile: what the matcher compares items against, built from the seeds.
//!
//! A profile has three parts, all computed once in [`Profile::build`]:
//!
//! - a **centroid**: log-tf term vectors of the baseline articles, syndicated copies counted
//!   once, averaged, and weighted by the background idf (see [`super::background`]) and by how
//!   many *independent* reports use each term (a term every report uses is the story's core;
//!   one report's colour is not).
//! - **facets**: the sides of the story an item must touch, derived from the seeds by
//!   [`super::facets::derive`]: a topic facet from the seeds' rare common words (the drug side
//!   here) and country facets from their named entities and a generic gazetteer (China
//!   required, the US supporting). No word list of this story is written in the code.
//! - the baseline articles' own vectors and dates, for the nearest baseline and for novelty
//!   (follow-up versus re-report).
//!
//! Everything the matcher needs per term (centroid weight, facet weights, per-baseline
//! weights) is folded into one index at the end of the build, so classifying an item costs one
//! hash lookup per distinct term.
//!
//! Tuning: `add_terms` join the centroid at the weight of the story's strongest term; a place
//! joins its country's facet, any other word the topic facet at its background rarity.
//! `boost_terms` multiply a term's centroid and facet weights (facet weights capped at 1);
//! `exclude_terms` are removed everywhere and ignored in items.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use std::sync::Arc;

use super::background::Background;
use super::facets::{self, SeedStats};
use super::seeds::BaselineArticle;
use super::text::{self, FnvBuild};

/// User tuning of a story profile, from the `[story]` section of the config.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tuning {
    /// Terms to add to the profile as if the seeds used them prominently.
    #[serde(default)]
    pub add_terms: Vec<String>,
    /// Terms whose weight is multiplied (e.g. 2.0 doubles it).
    #[serde(default)]
    pub boost_terms: std::collections::BTreeMap<String, f64>,
    /// Terms that never count towards a match.
    #[serde(default)]
    pub exclude_terms: Vec<String>,
}

/// Why a profile could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// There were no baseline articles to build from.
    #[error("the story has no baseline articles; put at least one .txt file in the seed folder")]
    NoSeeds,
    /// A tuning term has no words left after analysis (e.g. only stopwords).
    #[error(
        "tuning term {term:?} in [story] {key} has no searchable word (stopwords and punctuation \
         are ignored); use a content word such as \"fentanyl\""
    )]
    EmptyTerm {
        /// The config key (`add_terms`, `boost_terms`, `exclude_terms`).
        key: &'static str,
        /// The offending term as written.
        term: String,
    },
    /// A boost factor is not a positive finite number.
    #[error(
        "boost for {term:?} in [story] boost_terms is {factor}; use a positive number such as \
         2.0 (to drop a term use exclude_terms)"
    )]
    BadBoost {
        /// The term.
        term: String,
        /// The factor given.
        factor: f64,
    },
}

/// One side of the story that an item must (or may) touch.
#[derive(Debug, Clone)]
pub struct Facet {
    /// Short name shown in explanations: the topic facet's anchor word (`fentanyl`) or the
    /// country (`China`, `US`).
    pub name: String,
    /// Whether an item must hit this facet to be on topic.
    pub required: bool,
    /// Term (analysed stem) → weight in (0, 1].
    pub terms: HashMap<String, f64>,
    /// Terms that alone say little about this story (loose topic words): evidence from
    /// these only is capped at [`Facet::weak_cap`], so a pile of generic words cannot add up to
    /// one specific word such as `fentanyl`.
    pub weak: HashSet<String>,
    /// Highest strength reachable from weak terms only.
    pub weak_cap: f64,
}

impl Facet {
    /// Noisy-OR strength of the facet over a set of distinct terms, 1 − Π(1 − w), with
    /// evidence from weak terms alone capped at [`Facet::weak_cap`].
    pub fn strength<'a>(&self, terms: impl IntoIterator<Item = &'a str>) -> (f64, Vec<&'a str>) {
        let mut weak_miss = 1.0;
        let mut strong_miss = 1.0;
        let mut hits = Vec::new();
        for t in terms {
            if let Some(&w) = self.terms.get(t) {
                let keep = 1.0 - w.min(0.97);
                if self.weak.contains(t) {
                    weak_miss *= keep;
                } else {
                    strong_miss *= keep;
                }
                hits.push(t);
            }
        }
        (combine(strong_miss, weak_miss, self.weak_cap), hits)
    }
}

/// Facet strength from the noisy-OR misses of its strong and weak terms: weak terms add to the
/// strong ones, but their own part never exceeds `weak_cap`.
pub(crate) fn combine(strong_miss: f64, weak_miss: f64, weak_cap: f64) -> f64 {
    1.0 - strong_miss * weak_miss.max(1.0 - weak_cap)
}

/// Per-baseline data gathered while building (folded into the term index at the end).
struct BaselineModel {
    /// Unit-length log-tf vector.
    vector: HashMap<String, f64>,
}

/// The built profile of one story.
#[derive(Debug, Clone)]
pub struct Profile {
    /// The baseline articles the profile was built from, in id order.
    pub baselines: Vec<BaselineArticle>,
    /// The facets derived from the seeds: the topic facet first, then the countries (the
    /// required ones before the supporting ones); see [`super::facets`].
    pub facets: Vec<Facet>,
    /// Score at and above which an item is on topic (`follow_up` or `re_report`).
    pub threshold: f64,
    /// Groups of baseline indices that are syndicated copies of one report.
    pub syndicated: Vec<Vec<usize>>,
    /// Earlier events the baseline articles recount (see [`RecountedEvent`]).
    pub recounted: Vec<RecountedEvent>,
    /// Unit-length centroid of the story.
    pub(crate) centroid: HashMap<String, f64>,
    /// Lowercased words of every name the seeds mention: names known to the story.
    pub(crate) known_names: HashSet<String>,
    /// Term → readable form for summaries (`beij` → `beijing`).
    pub(crate) display: HashMap<String, String>,
    /// Date of the earliest baseline article or recounted event.
    pub(crate) earliest: Option<jiff::civil::Date>,
    /// Date of the latest dated baseline article.
    pub(crate) latest: Option<jiff::civil::Date>,
    /// Every term used by any seed.
    pub(crate) seed_vocabulary: HashSet<String>,
    /// The story's core vocabulary: every facet term (see [`Profile::is_story_term`]).
    pub(crate) core_vocabulary: HashSet<String>,
    /// Terms the user excluded.
    pub(crate) excluded: HashSet<String>,
    /// Everything the matcher needs to know about a term, in one lookup (see [`TermInfo`]).
    pub(crate) index: HashMap<String, TermInfo, FnvBuild>,
    /// Background statistics (idf) the profile was weighed against; the matcher reads them
    /// for novelty.
    pub(crate) background: Arc<Background>,
}

/// What the profile knows about one term, gathered at build time so that matching costs one
/// hash lookup per distinct item term.
#[derive(Debug, Clone, Default)]
pub(crate) struct TermInfo {
    /// Weight in the unit-length centroid.
    pub centroid: f64,
    /// Weight in each facet (0 when not a member), in facet order.
    pub facet: Box<[f64]>,
    /// Whether the term is a weak member of each facet.
    pub weak: Box<[bool]>,
    /// Weight in each baseline article's unit vector (0 when absent), in baseline order.
    pub baseline: Box<[f64]>,
}

/// An earlier event the baseline articles recount (e.g. the summit that set up the talks they
/// report), found from dates mentioned in the seed texts. Coverage of it is a re-report, not a
/// follow-up, even though no baseline article is dated then.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecountedEvent {
    /// The date mentioned (the first of the month when only the month is named).
    pub date: jiff::civil::Date,
    /// Whether the seeds name the day (`November 15`) or only the month (`last November`).
    pub day_known: bool,
    /// How many independent reports mention it.
    pub reports: usize,
}

const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

/// Month number of a month name or its abbreviation (`Nov.`, `Sept`), if `word` is one.
/// `May` only in full, and only capitalised, since "may" is mostly the verb.
fn month_of(word: &str) -> Option<i8> {
    let w = word.trim_end_matches('.');
    if w.len() < 3 || !w.starts_with(|c: char| c.is_ascii_uppercase()) {
        return None;
    }
    let lower = w.to_ascii_lowercase();
    let n = MONTHS.iter().position(|m| {
        *m == lower
            || (lower.len() >= 3
                && lower != "may"
                && m.starts_with(lower.as_str())
                && lower.len() <= 4)
    })?;
    i8::try_from(n + 1).ok()
}

/// Dates the seed texts mention (`November 15`, `Nov. 15`, `November 2023`, `last November`),
/// with the year resolved against the article's own date (a month named without a year is the
/// latest one not more than a month after publication).
fn mentioned_dates(article: &BaselineArticle) -> Vec<(jiff::civil::Date, bool)> {
    let Some(published) = article.published else {
        return Vec::new();
    };
    let words: Vec<&str> = article
        .text
        .split(|c: char| c.is_whitespace() || matches!(c, ',' | ';' | '(' | ')' | '’' | '\''))
        .filter(|w| !w.is_empty())
        .collect();
    let mut out = Vec::new();
    for (i, w) in words.iter().enumerate() {
        let Some(month) = month_of(w) else { continue };
        let next = words.get(i + 1).map(|n| n.trim_end_matches(['.', ':']));
        let number: Option<i16> = next.and_then(|n| n.parse().ok());
        let (day, year) = match number {
            Some(n @ 1..=31) => (Some(n as i8), None),
            Some(n @ 1900..=2100) => (None, Some(n)),
            _ => (None, None),
        };
        let year = year.unwrap_or_else(|| {
            // The latest year in which this month starts no later than a month after
            // publication.
            let y = published.year();
            if i16::from(month) > i16::from(published.month()) + 1 {
                y - 1
            } else {
                y
            }
        });
        if let Ok(date) = jiff::civil::Date::new(year, month, day.unwrap_or(1)) {
            out.push((date, day.is_some()));
        }
    }
    out
}

/// Events recounted by at least two independent reports, excluding the baseline articles'
/// own dates (those are covered by the articles themselves).
fn recounted_events(baselines: &[BaselineArticle], group_of: &[usize]) -> Vec<RecountedEvent> {
    // (year, month) → (groups mentioning it, a named day if any).
    let mut months: std::collections::BTreeMap<(i16, i8), (HashSet<usize>, Option<i8>)> =
        std::collections::BTreeMap::new();
    for (i, b) in baselines.iter().enumerate() {
        for (date, day_known) in mentioned_dates(b) {
            let entry = months.entry((date.year(), date.month())).or_default();
            entry.0.insert(group_of[i]);
            if day_known && entry.1.is_none() {
                entry.1 = Some(date.day());
            }
        }
    }
    let own: HashSet<(i16, i8)> = baselines
        .iter()
        .filter_map(|b| b.published)
        .map(|d| (d.year(), d.month()))
        .collect();
    months
        .into_iter()
        .filter(|(key, (groups, _))| groups.len() >= 2 && !own.contains(key))
        .filter_map(|((y, m), (groups, day))| {
            let date = jiff::civil::Date::new(y, m, day.unwrap_or(1)).ok()?;
            Some(RecountedEvent {
                date,
                day_known: day.is_some(),
                reports: groups.len(),
            })
        })
        .collect()
}

/// Shingle containment above which two seeds count as copies of one report.
const SYNDICATION_CONTAINMENT: f64 = 0.25;

/// Analyses a lexicon or tuning word into its single term, if it has one.
fn term_of(word: &str) -> Option<String> {
    let mut ts = text::terms(word);
    (ts.len() == 1).then(|| ts.remove(0))
}

fn all_terms(word: &str) -> Vec<String> {
    text::terms(word)
}

/// Scales a vector to unit length.
pub(crate) fn normalize_vector(v: &mut HashMap<String, f64>) {
    let norm = v.values().map(|x| x * x).sum::<f64>().sqrt();
    if norm > 0.0 {
        v.values_mut().for_each(|x| *x /= norm);
    }
}

/// Log-tf vector (unit length) of a term list.
pub(crate) fn log_tf(terms: &[String]) -> HashMap<String, f64> {
    let mut tf: HashMap<String, f64> = HashMap::new();
    for t in terms {
        *tf.entry(t.clone()).or_default() += 1.0;
    }
    tf.values_mut().for_each(|x| *x = 1.0 + x.ln());
    normalize_vector(&mut tf);
    tf
}

/// Word 3-shingles of a text, for near-duplicate detection.
fn shingles(text: &str) -> HashSet<[String; 3]> {
    let words: Vec<String> = text
        .split_whitespace()
        .map(|w| {
            w.trim_matches(|c: char| !c.is_alphanumeric())
                .to_lowercase()
                .replace("u.s.", "us")
        })
        .filter(|w| !w.is_empty())
        .collect();
    words
        .windows(3)
        .map(|w| [w[0].clone(), w[1].clone(), w[2].clone()])
        .collect()
}

/// Containment of the smaller shingle set in the larger: |A ∩ B| / min(|A|, |B|).
fn containment(a: &HashSet<[String; 3]>, b: &HashSet<[String; 3]>) -> f64 {
    let small = a.len().min(b.len());
    if small == 0 {
        return 0.0;
    }
    a.intersection(b).count() as f64 / small as f64
}

impl Profile {
    /// Builds the profile from the baseline articles and the user's tuning.
    ///
    /// Pure and cheap (a few milliseconds for a handful of articles). Fails when there are no
    /// baselines or a tuning entry is unusable, with a message saying how to fix the config.
    pub fn build(
        baselines: Vec<BaselineArticle>,
        tuning: &Tuning,
    ) -> Result<Profile, ProfileError> {
        Profile::build_with_background(baselines, tuning, Background::shared())
    }

    /// [`Profile::build`] against given background statistics (e.g. the shipped table merged
    /// with document frequencies the daemon has observed).
    pub fn build_with_background(
        mut baselines: Vec<BaselineArticle>,
        tuning: &Tuning,
        background: Arc<Background>,
    ) -> Result<Profile, ProfileError> {
        if baselines.is_empty() {
            return Err(ProfileError::NoSeeds);
        }
        baselines.sort_by(|a, b| a.id.cmp(&b.id));

        // Syndication groups by shingle containment (union-find over the few seeds).
        let sh: Vec<_> = baselines.iter().map(|b| shingles(&b.text)).collect();
        let mut parent: Vec<usize> = (0..baselines.len()).collect();
        fn root(p: &mut [usize], mut i: usize) -> usize {
            while p[i] != i {
                i = p[i];
            }
            i
        }
        for i in 0..baselines.len() {
            for j in i + 1..baselines.len() {
                if containment(&sh[i], &sh[j]) >= SYNDICATION_CONTAINMENT {
                    let (a, b) = (root(&mut parent, i), root(&mut parent, j));
                    parent[b.max(a)] = a.min(b);
                }
            }
        }
        let mut group_of = vec![0; baselines.len()];
        let mut roots: Vec<usize> = Vec::new();
        for (i, g) in group_of.iter_mut().enumerate() {
            let r = root(&mut parent, i);
            *g = match roots.iter().position(|&x| x == r) {
                Some(p) => p,
                None => {
                    roots.push(r);
                    roots.len() - 1
                }
            };
        }
        let n_groups = roots.len();
        let mut syndicated: Vec<Vec<usize>> = vec![Vec::new(); n_groups];
        for (i, &g) in group_of.iter().enumerate() {
            syndicated[g].push(i);
        }
        syndicated.retain(|g| g.len() > 1);

        // Per-baseline vectors; spread = share of independent reports using a term.
        let mut models = Vec::with_capacity(baselines.len());
        let mut group_terms: Vec<HashSet<String>> = vec![HashSet::new(); n_groups];
        let mut known_names = HashSet::new();
        let mut names: Vec<String> = Vec::new();
        let mut sentences: Vec<HashSet<String>> = Vec::new();
        // Term → (occurrences inside a mid-sentence capitalised run, all occurrences).
        let mut case: HashMap<String, (usize, usize)> = HashMap::new();
        // Term → a readable form (the first way a seed wrote it), for summaries.
        let mut display: HashMap<String, String> = HashMap::new();
        for (i, b) in baselines.iter().enumerate() {
            let full = format!("{}\n{}", b.title, b.text);
            let analysed = text::analyse(&full);
            for tok in &analysed.tokens {
                if !display.contains_key(&*tok.term) {
                    let surface = &analysed.text[tok.span.clone()];
                    display.insert(tok.term.to_string(), surface.to_lowercase());
                }
                case.entry(tok.term.to_string()).or_default().1 += 1;
            }
            for run in analysed.name_runs() {
                for tok in &analysed.tokens[run] {
                    case.entry(tok.term.to_string()).or_default().0 += 1;
                }
            }
            // Sentences, for co-occurrence: split where a sentence ends.
            let mut sentence = HashSet::new();
            let mut last = 0;
            for tok in &analysed.tokens {
                let gap = &analysed.text[last.min(tok.span.start)..tok.span.start];
                if gap.contains(['.', '!', '?', '\n']) && !sentence.is_empty() {
                    sentences.push(std::mem::take(&mut sentence));
                }
                sentence.insert(tok.term.to_string());
                last = tok.span.end;
            }
            if !sentence.is_empty() {
                sentences.push(sentence);
            }
            let terms: Vec<String> = analysed
                .tokens
                .into_iter()
                .map(|t| t.term.to_string())
                .collect();
            group_terms[group_of[i]].extend(terms.iter().cloned());
            for name in text::entities(&full) {
                for w in name.split_whitespace() {
                    known_names.extend(term_of(w));
                }
                names.push(name);
            }
            models.push(BaselineModel {
                vector: log_tf(&terms),
            });
        }
        let spread = |t: &str| -> f64 {
            group_terms.iter().filter(|g| g.contains(t)).count() as f64 / n_groups as f64
        };

        // Centroid: tf-idf, with the idf from the background and the spread over independent
        // reports (a term every report uses is the story's core; one report's colour is not).
        let mut centroid: HashMap<String, f64> = HashMap::new();
        let mut group_size = vec![0usize; n_groups];
        for &g in &group_of {
            group_size[g] += 1;
        }
        for (i, m) in models.iter().enumerate() {
            // Syndicated copies share one vote.
            let share = 1.0 / group_size[group_of[i]] as f64;
            for (t, w) in &m.vector {
                *centroid.entry(t.clone()).or_default() += share * w;
            }
        }
        for (t, w) in centroid.iter_mut() {
            *w *= spread(t) * background.idf(t);
        }
        let seed_vocabulary: HashSet<String> = group_terms.iter().flatten().cloned().collect();

        let mut facets = facets::derive(
            &SeedStats {
                group_terms: &group_terms,
                sentences: &sentences,
                case: &case,
                display: &display,
                names: &names,
            },
            &background,
        );

        // Tuning.
        let max_weight = centroid.values().cloned().fold(0.0, f64::max);
        for term in &tuning.add_terms {
            let ts = all_terms(term);
            if ts.is_empty() {
                return Err(ProfileError::EmptyTerm {
                    key: "add_terms",
                    term: term.clone(),
                });
            }
            for t in ts {
                // A place joins its country's facet; any other word joins the topic facet at
                // its background rarity, as if every seed used it.
                let country = facets::places(&t).first().map(|p| p.iso);
                let target = facets.iter().position(|f| {
                    country.is_some_and(|iso| {
                        f.terms
                            .keys()
                            .any(|k| facets::places(k).iter().any(|p| p.iso == iso))
                    })
                });
                let fi = target.or_else(|| (!facets.is_empty() && country.is_none()).then_some(0));
                if let Some(f) = fi.and_then(|i| facets.get_mut(i)) {
                    let w = if country.is_some() {
                        1.0
                    } else {
                        background.rarity(&t)
                    };
                    if w >= facets::STRONG_WEIGHT {
                        f.weak.remove(&t);
                    }
                    let e = f.terms.entry(t.clone()).or_insert(0.0);
                    *e = e.max(w);
                }
                centroid.insert(t, max_weight);
            }
        }
        for (term, &factor) in &tuning.boost_terms {
            if !(factor.is_finite() && factor > 0.0) {
                return Err(ProfileError::BadBoost {
                    term: term.clone(),
                    factor,
                });
            }
            let ts = all_terms(term);
            if ts.is_empty() {
                return Err(ProfileError::EmptyTerm {
                    key: "boost_terms",
                    term: term.clone(),
                });
            }
            for t in ts {
                if let Some(w) = centroid.get_mut(&t) {
                    *w *= factor;
                }
                for f in &mut facets {
                    if let Some(w) = f.terms.get_mut(&t) {
                        *w = (*w * factor).min(1.0);
                    }
                }
            }
        }
        let mut excluded = HashSet::new();
        for term in &tuning.exclude_terms {
            let ts = all_terms(term);
            if ts.is_empty() {
                return Err(ProfileError::EmptyTerm {
                    key: "exclude_terms",
                    term: term.clone(),
                });
            }
            for t in ts {
                centroid.remove(&t);
                for f in &mut facets {
                    f.terms.remove(&t);
                }
                excluded.insert(t);
            }
        }
        normalize_vector(&mut centroid);

        for word in &tuning.add_terms {
            if let Some(t) = term_of(word) {
                display.entry(t).or_insert_with(|| word.to_lowercase());
            }
        }

        let core_vocabulary: HashSet<String> = facets
            .iter()
            .flat_map(|f| f.terms.keys().cloned())
            .collect();

        let mut index: HashMap<String, TermInfo, FnvBuild> = HashMap::default();
        let blank = || TermInfo {
            centroid: 0.0,
            facet: vec![0.0; facets.len()].into(),
            weak: vec![false; facets.len()].into(),
            baseline: vec![0.0; models.len()].into(),
        };
        for (t, &w) in &centroid {
            index.entry(t.clone()).or_insert_with(blank).centroid = w;
        }
        for (fi, f) in facets.iter().enumerate() {
            for (t, &w) in &f.terms {
                let info = index.entry(t.clone()).or_insert_with(blank);
                info.facet[fi] = w;
                info.weak[fi] = f.weak.contains(t);
            }
        }
        for (bi, m) in models.iter().enumerate() {
            for (t, &w) in &m.vector {
                if !excluded.contains(t) {
                    index.entry(t.clone()).or_insert_with(blank).baseline[bi] = w;
                }
            }
        }

        let recounted = recounted_events(&baselines, &group_of);
        let earliest = baselines
            .iter()
            .filter_map(|b| b.published)
            .chain(recounted.iter().map(|e| e.date))
            .min();
        let latest = baselines.iter().filter_map(|b| b.published).max();
        Ok(Profile {
            baselines,
            facets,
            threshold: 0.5,
            syndicated,
            recounted,
            centroid,
            known_names,
            seed_vocabulary,
            core_vocabulary,
            excluded,
            index,
            display,
            earliest,
            latest,
            background,
        })
    }

    /// Whether `term` (an analysed term) is part of the story's core vocabulary: a term of one
    /// of its facets (`fentanyl`, `precursor`, `beijing`, `washington`), what every report of
    /// the story says. Near-duplicate detection weighs such terms down, since every match
    /// shares them; other seed words (`white` from White House, `release`) are not core.
    pub fn is_story_term(&self, term: &str) -> bool {
        self.core_vocabulary.contains(term)
    }

    /// A short human-readable summary of the profile, printed by `storywatch check`.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        let independent =
            self.baselines.len() - self.syndicated.iter().map(|g| g.len() - 1).sum::<usize>();
        out.push_str(&format!(
            "story profile: {} baseline articles ({} independent reports)\n",
            self.baselines.len(),
            independent
        ));
        for b in &self.baselines {
            out.push_str(&format!(
                "  {}  {} · {} · {}\n",
                b.id,
                b.outlet.as_deref().unwrap_or("unknown outlet"),
                b.published
                    .map_or_else(|| "undated".to_string(), |d| d.to_string()),
                b.title
            ));
        }
        for g in &self.syndicated {
            let ids: Vec<&str> = g.iter().map(|&i| self.baselines[i].id.as_str()).collect();
            out.push_str(&format!(
                "  syndicated copies counted once: {}\n",
                ids.join(" + ")
            ));
        }
        for e in &self.recounted {
            let when = if e.day_known {
                e.date.to_string()
            } else {
                format!("{:04}-{:02}", e.date.year(), e.date.month())
            };
            out.push_str(&format!(
                "  earlier event the seeds recount: {when} (named in {} reports)\n",
                e.reports
            ));
        }
        for f in &self.facets {
            let mut terms: Vec<(&String, &f64)> = f.terms.iter().collect();
            terms.sort_by(|a, b| b.1.total_cmp(a.1).then(a.0.cmp(b.0)));
            let list: Vec<String> = terms
                .iter()
                .take(8)
                .map(|(t, w)| format!("{} {w:.2}", self.readable(t)))
                .collect();
            out.push_str(&format!(
                "facet {} ({}): {}\n",
                f.name,
                if f.required { "required" } else { "supporting" },
                list.join(", ")
            ));
        }
        let mut top: Vec<(&String, &f64)> = self.centroid.iter().collect();
        top.sort_by(|a, b| b.1.total_cmp(a.1).then(a.0.cmp(b.0)));
        let list: Vec<&str> = top.iter().take(15).map(|(t, _)| self.readable(t)).collect();
        out.push_str(&format!("top terms: {}\n", list.join(", ")));
        if !self.excluded.is_empty() {
            let mut ex: Vec<&str> = self.excluded.iter().map(|t| self.readable(t)).collect();
            ex.sort_unstable();
            out.push_str(&format!("excluded: {}\n", ex.join(", ")));
        }
        out.push_str(&format!("threshold: {:.2}\n", self.threshold));
        out
    }

    /// A readable form of an analysed term: how the seeds wrote it, else the term itself.
    pub fn readable<'a>(&'a self, term: &'a str) -> &'a str {
        self.display.get(term).map_or(term, String::as_str)
    }

    /// Weight of a term in the centroid (0 when absent); for tests and explanations.
    pub fn term_weight(&self, term: &str) -> f64 {
        term_of(term)
            .and_then(|t| self.centroid.get(&t).copied())
            .unwrap_or(0.0)
    }

    /// This profile with another centroid, made unit length and folded into the term index;
    /// facets, baselines and the threshold stay as built. The hook learning from review
    /// (`feedback`) uses, kept here so the index stays this module's business.
    pub(crate) fn with_centroid(&self, mut centroid: HashMap<String, f64>) -> Profile {
        let mut p = self.clone();
        centroid.retain(|_, w| *w > 0.0);
        normalize_vector(&mut centroid);
        let (nf, nb) = (p.facets.len(), p.baselines.len());
        for (t, info) in p.index.iter_mut() {
            info.centroid = centroid.get(t).copied().unwrap_or(0.0);
        }
        for (t, &w) in &centroid {
            p.index.entry(t.clone()).or_insert_with(|| TermInfo {
                centroid: w,
                facet: vec![0.0; nf].into(),
                weak: vec![false; nf].into(),
                baseline: vec![0.0; nb].into(),
            });
        }
        p.centroid = centroid;
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::story::load_seeds;

    fn seeds() -> Vec<BaselineArticle> {
        load_seeds(std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/seeds"
        )))
        .unwrap()
    }

    #[test]
    fn no_seeds_is_an_error() {
        let err = Profile::build(Vec::new(), &Tuning::default()).unwrap_err();
        assert!(err.to_string().contains(".txt file"));
    }

    #[test]
    fn bloomberg_copies_are_one_report() {
        let p = Profile::build(seeds(), &Tuning::default()).unwrap();
        assert_eq!(p.syndicated, vec![vec![0, 4]]);
        assert!(p.summary().contains("4 independent reports"));
    }

    #[test]
    fn recounted_summit_is_found() {
        let p = Profile::build(seeds(), &Tuning::default()).unwrap();
        assert_eq!(p.recounted.len(), 1, "{:?}", p.recounted);
        let e = p.recounted[0];
        assert_eq!(e.date, jiff::civil::date(2023, 11, 15));
        assert!(e.day_known && e.reports >= 3);
        assert!(
            p.summary()
                .contains("earlier event the seeds recount: 2023-11-15")
        );
        assert_eq!(month_of("Nov."), Some(11));
        assert_eq!(month_of("may"), None);
        assert_eq!(month_of("Marching"), None);
    }

    #[test]
    fn facets_are_derived_from_the_seeds() {
        let p = Profile::build(seeds(), &Tuning::default()).unwrap();
        let names: Vec<&str> = p.facets.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["fentanyl", "China", "US"], "{}", p.summary());
        let (topic, china, us) = (&p.facets[0], &p.facets[1], &p.facets[2]);
        assert!(topic.required && china.required && !us.required);
        // The drug side emerges from the seeds' vocabulary weighed by background rarity.
        assert!(topic.terms["fentanyl"] > 0.9);
        assert!(topic.terms["precursor"] > 0.5, "{:?}", topic.terms);
        assert!(topic.terms.contains_key("opioid"));
        // Common or diplomatic words do not make the topic facet.
        for common in ["offici", "talk", "meet", "us", "china"] {
            assert!(!topic.terms.contains_key(common), "{common}");
        }
        // The China side: the country, its capital, its demonym, the names seeds introduce.
        for t in ["china", "beij", "chines", "wang", "xi"] {
            assert!(china.terms.contains_key(t), "{t}: {:?}", china.terms);
        }
        assert!(us.terms.contains_key("us") && us.terms.contains_key("washington"));
        let (s, hits) = topic.strength(["fentanyl", "talk"]);
        assert!(s > 0.9 && hits == ["fentanyl"]);
        // Weak words alone stay below one specific word.
        let weak: Vec<&str> = topic.weak.iter().map(String::as_str).collect();
        let (w, _) = topic.strength(weak.iter().copied());
        assert!(w <= topic.weak_cap + 1e-9, "{w}");
    }

    #[test]
    fn centroid_favours_shared_terms() {
        let p = Profile::build(seeds(), &Tuning::default()).unwrap();
        assert!(p.term_weight("fentanyl") > p.term_weight("Pelosi"));
        assert!(p.term_weight("fentanyl") > p.term_weight("Harris"));
        let s = p.summary();
        assert!(s.contains("facet fentanyl (required): fentanyl"), "{s}");
        assert!(s.contains("syndicated copies counted once"), "{s}");
    }

    #[test]
    fn added_term_joins_the_topic_facet_at_its_rarity() {
        let base = Profile::build(seeds(), &Tuning::default()).unwrap();
        assert!(!base.facets[0].terms.contains_key("heroin"));
        let added = Profile::build(
            seeds(),
            &Tuning {
                add_terms: vec!["heroin".into(), "Shanghai".into()],
                ..Tuning::default()
            },
        )
        .unwrap();
        let w = added.facets[0].terms["heroin"];
        assert!((w - Background::shipped().rarity("heroin")).abs() < 1e-9);
        // A place joins its country's facet.
        assert_eq!(added.facets[1].terms["shanghai"], 1.0);
    }

    #[test]
    fn tuning_deserialises_and_rejects_unknown_keys() {
        let t: Tuning =
            toml::from_str("add_terms = [\"xylazine\"]\n[boost_terms]\ntariff = 2.0\n").unwrap();
        assert_eq!(t.add_terms, vec!["xylazine"]);
        assert!(toml::from_str::<Tuning>("extra = 1\n").is_err());
    }
}
