//! Facet derivation: the sides of the story an item must touch, found from the seeds.
//!
//! Nothing here names this story's words. Two kinds of facet come out:
//!
//! - **country facets**, from the seeds' named entities and a generic gazetteer (every
//!   GeoNames country with its capital and largest cities, `gazetteer.tsv`). A seed word
//!   that is a gazetteer entry, or a capitalised word that extends a country's name
//!   (`Chinese` → China, `American` → America), belongs to that country, and so do the names a
//!   seed introduces with it (`Chinese Foreign Minister Wang Yi` → `wang`, `yi`). A country
//!   every independent report mentions becomes a facet. The one whose names are rarest in the
//!   background is **required**; the others are **supporting**: in English news one country
//!   (the US) is the default setting and naming it says little.
//! - the **topic facet**, from the seeds' common nouns: each word's salience is its spread
//!   (share of independent reports using it) times its background rarity. The most salient
//!   word is the anchor (`fentanyl`); every other word's facet weight is its salience times
//!   how often it shares a sentence with the anchor (`0.25 + 0.75·assoc`), which keeps the
//!   drug vocabulary (`opioid`, `precursor`, `overdose`) and drops the diplomatic
//!   (`pledge`, `delegation`). Words below [`STRONG_WEIGHT`] are weak: together they reach at
//!   most [`WEAK_CAP`], so a pile of loose words cannot stand in for one specific word.

use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use super::background::Background;
use super::profile::Facet;
use super::text;

/// Generic gazetteer (see the module documentation and `tools/make_background.py`).
const GAZETTEER: &str = include_str!("gazetteer.tsv");

/// Share of independent reports a country must appear in to become a facet: the story's
/// actors are in every report.
pub const COUNTRY_COVERAGE: f64 = 1.0;
/// Share of independent reports a common word must appear in to be a topic-facet candidate.
pub const TOPIC_SPREAD: f64 = 0.5;
/// Topic-facet weight below which a word is left out.
pub const MIN_TOPIC_WEIGHT: f64 = 0.15;
/// Topic-facet weight from which a word is strong evidence on its own.
pub const STRONG_WEIGHT: f64 = 0.45;
/// Highest facet strength reachable from weak words only.
pub const WEAK_CAP: f64 = 0.65;
/// Facet weight of a country's largest cities (a city is a weaker sign of the country than
/// its name or capital: firms and courts are located there, but so is much else).
pub const CITY_WEIGHT: f64 = 0.55;
/// Facet weight of a name a seed introduces with a country, before its spread is applied.
pub const INTRODUCED_NAME_WEIGHT: f64 = 0.8;

/// Kind of a gazetteer entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlaceKind {
    /// The country's name or a common short form (`china`, `us`, `america`).
    Name,
    /// Its capital.
    Capital,
    /// One of its largest cities.
    City,
}

/// One gazetteer entry.
#[derive(Debug, Clone)]
pub struct Place {
    /// ISO 3166 alpha-2 code of the country.
    pub iso: &'static str,
    /// What the word names.
    pub kind: PlaceKind,
    /// The word, lowercased.
    pub word: &'static str,
}

/// Analysed term → gazetteer entries (a word can name places in several countries).
static PLACES: LazyLock<HashMap<String, Vec<Place>>> = LazyLock::new(|| {
    let mut map: HashMap<String, Vec<Place>> = HashMap::new();
    for line in GAZETTEER.lines().filter(|l| !l.starts_with('#')) {
        let mut parts = line.split('\t');
        let (Some(iso), Some(kind), Some(word)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let kind = match kind {
            "name" => PlaceKind::Name,
            "capital" => PlaceKind::Capital,
            _ => PlaceKind::City,
        };
        // "us" in lower case is the pronoun; the analyser maps the capitalised country to it.
        let term = if word == "us" {
            Some("us".to_string())
        } else {
            single_term(word)
        };
        if let Some(t) = term {
            map.entry(t).or_default().push(Place { iso, kind, word });
        }
    }
    map
});

/// The gazetteer entries of an analysed term.
pub fn places(term: &str) -> &'static [Place] {
    PLACES.get(term).map_or(&[], Vec::as_slice)
}

fn single_term(word: &str) -> Option<String> {
    let mut ts = text::terms(word);
    (ts.len() == 1).then(|| ts.remove(0))
}

/// The country a capitalised word extends the name of (`chinese` → CN, `american` → US): the
/// longest common prefix with a country name, at least 4 letters and all but 2 of the name.
pub fn demonym_country(word: &str) -> Option<&'static str> {
    let word = word.to_lowercase();
    let mut best: Option<(usize, &'static str)> = None;
    for places in PLACES.values() {
        for p in places.iter().filter(|p| p.kind == PlaceKind::Name) {
            if p.word.len() < 4 || word == p.word {
                continue;
            }
            let lcp = word
                .chars()
                .zip(p.word.chars())
                .take_while(|(a, b)| a == b)
                .count();
            if lcp >= 4.max(p.word.len().saturating_sub(2)) && best.is_none_or(|(b, _)| lcp > b) {
                best = Some((lcp, p.iso));
            }
        }
    }
    best.map(|(_, iso)| iso)
}

/// What the derivation reads of the seeds, gathered by [`super::Profile::build`].
pub struct SeedStats<'a> {
    /// Terms of each independent report (syndicated copies merged).
    pub group_terms: &'a [HashSet<String>],
    /// Terms of each sentence of every seed.
    pub sentences: &'a [HashSet<String>],
    /// Term → (occurrences inside a mid-sentence capitalised run, all occurrences).
    pub case: &'a HashMap<String, (usize, usize)>,
    /// Term → the word as a seed first wrote it (lowercased).
    pub display: &'a HashMap<String, String>,
    /// Capitalised runs (names) of every seed, as written.
    pub names: &'a [String],
}

impl SeedStats<'_> {
    fn spread(&self, t: &str) -> f64 {
        let n = self.group_terms.len().max(1) as f64;
        self.group_terms.iter().filter(|g| g.contains(t)).count() as f64 / n
    }

    fn name_like(&self, t: &str) -> bool {
        self.case.get(t).is_some_and(|&(cap, all)| cap * 2 > all)
    }
}

/// The country an analysed seed term belongs to, if any, and whether it names the country
/// itself (name, capital, demonym) rather than a city.
fn country_of(stats: &SeedStats<'_>, t: &str) -> Option<(&'static str, bool)> {
    if let Some(p) = places(t).iter().find(|p| p.kind != PlaceKind::City) {
        return Some((p.iso, true));
    }
    if let Some(p) = places(t).first() {
        return Some((p.iso, false));
    }
    if stats.name_like(t) {
        let word = stats.display.get(t).map_or(t, String::as_str);
        return demonym_country(word).map(|iso| (iso, true));
    }
    None
}

/// Derives the story's facets from the seeds: topic facet first (required), then the country
/// facets (the most informative required, the rest supporting).
pub fn derive(stats: &SeedStats<'_>, background: &Background) -> Vec<Facet> {
    let vocabulary: HashSet<&String> = stats.group_terms.iter().flatten().collect();
    let mut facets = Vec::new();

    // Topic facet: common nouns, salience = spread × rarity, associated with the anchor.
    let mut candidates: Vec<(&str, f64)> = vocabulary
        .iter()
        .map(|t| t.as_str())
        .filter(|t| !stats.name_like(t) && places(t).is_empty())
        .filter(|t| !t.chars().any(|c| c.is_ascii_digit()))
        .map(|t| (t, stats.spread(t)))
        .filter(|&(_, s)| s >= TOPIC_SPREAD)
        .map(|(t, s)| (t, s * background.rarity(t)))
        .collect();
    let count = |t: &str| stats.sentences.iter().filter(|s| s.contains(t)).count();
    candidates.sort_by(|a, b| {
        b.1.total_cmp(&a.1)
            .then(count(b.0).cmp(&count(a.0)))
            .then(a.0.cmp(b.0))
    });
    if let Some(&(anchor, anchor_salience)) = candidates.first()
        && anchor_salience > 0.0
    {
        let mut terms = HashMap::new();
        let mut weak = HashSet::new();
        for &(t, salience) in &candidates {
            let with = stats
                .sentences
                .iter()
                .filter(|s| s.contains(t) && s.contains(anchor))
                .count();
            let assoc = with as f64 / count(t).max(1) as f64;
            let w = salience * (0.5 + 0.5 * assoc);
            if w >= MIN_TOPIC_WEIGHT {
                if w < STRONG_WEIGHT {
                    weak.insert(t.to_string());
                }
                terms.insert(t.to_string(), w.min(1.0));
            }
        }
        facets.push(Facet {
            name: stats
                .display
                .get(anchor)
                .cloned()
                .unwrap_or_else(|| anchor.to_string()),
            required: true,
            terms,
            weak,
            weak_cap: WEAK_CAP,
        });
    }

    // Country facets.
    let mut members: HashMap<&'static str, HashMap<String, f64>> = HashMap::new();
    let mut info: HashMap<&'static str, f64> = HashMap::new();
    let mut covered: HashMap<&'static str, HashSet<usize>> = HashMap::new();
    for t in &vocabulary {
        let Some((iso, itself)) = country_of(stats, t) else {
            continue;
        };
        let w = if itself { 1.0 } else { CITY_WEIGHT };
        members.entry(iso).or_default().insert(t.to_string(), w);
        if itself {
            let e = info.entry(iso).or_default();
            *e = e.max(background.rarity(t));
            for (g, terms) in stats.group_terms.iter().enumerate() {
                if terms.contains(*t) {
                    covered.entry(iso).or_default().insert(g);
                }
            }
        }
    }
    let n_groups = stats.group_terms.len().max(1) as f64;
    let mut countries: Vec<&'static str> = covered
        .iter()
        .filter(|(_, g)| g.len() as f64 / n_groups >= COUNTRY_COVERAGE)
        .map(|(iso, _)| *iso)
        .collect();
    countries.sort_by(|a, b| info[b].total_cmp(&info[a]).then(a.cmp(b)));
    for (rank, iso) in countries.iter().enumerate() {
        let mut terms = members.remove(iso).unwrap_or_default();
        // The whole gazetteer entry of the country, not only the words the seeds used.
        for (t, ps) in PLACES.iter() {
            for p in ps.iter().filter(|p| p.iso == *iso) {
                let w = if p.kind == PlaceKind::City {
                    CITY_WEIGHT
                } else {
                    1.0
                };
                let e = terms.entry(t.clone()).or_insert(0.0);
                *e = e.max(w);
            }
        }
        // Names a seed introduces with this country: `Chinese President Xi Jinping`.
        for run in stats.names {
            let words: Vec<&str> = run.split_whitespace().collect();
            if words.len() < 3 {
                continue;
            }
            let first = words[0].trim_end_matches(['’', '\'', 's']);
            let Some(first_term) = single_term(first).or_else(|| {
                (first.eq_ignore_ascii_case("us") || first.eq_ignore_ascii_case("u.s"))
                    .then(|| "us".to_string())
            }) else {
                continue;
            };
            if country_of(stats, &first_term).is_none_or(|(c, _)| c != *iso) {
                continue;
            }
            for w in &words[words.len() - 2..] {
                if let Some(t) = single_term(w) {
                    let weight = INTRODUCED_NAME_WEIGHT * (0.6 + 0.4 * stats.spread(&t));
                    terms.entry(t).or_insert(weight);
                }
            }
        }
        let name = name_of(stats, iso, &terms);
        facets.push(Facet {
            name,
            required: rank == 0,
            terms,
            weak: HashSet::new(),
            weak_cap: 1.0,
        });
    }
    facets
}

/// A country facet's readable name: its gazetteer name the seeds use most, as usually written
/// (`US`, `China`).
fn name_of(stats: &SeedStats<'_>, iso: &str, terms: &HashMap<String, f64>) -> String {
    let mut best: Option<(usize, &str)> = None;
    for t in terms.keys() {
        if let Some(p) = places(t)
            .iter()
            .find(|p| p.iso == iso && p.kind == PlaceKind::Name)
        {
            let n = stats.case.get(t).map_or(0, |c| c.1);
            if best.is_none_or(|(b, w)| n > b || (n == b && p.word < w)) {
                best = Some((n, p.word));
            }
        }
    }
    match best {
        Some((_, w)) if w.len() <= 3 => w.to_uppercase(),
        Some((_, w)) => {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_uppercase().chain(c).collect())
                .unwrap_or_default()
        }
        None => iso.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gazetteer_is_generic() {
        assert_eq!(places("beij")[0].iso, "CN");
        assert_eq!(places("us")[0].iso, "US");
        assert!(places("pari").iter().any(|p| p.iso == "FR"));
        assert!(places("nairobi").iter().any(|p| p.iso == "KE"));
        assert!(PLACES.len() > 500);
        assert!(GAZETTEER.len() < 100_000);
    }

    #[test]
    fn demonyms_extend_country_names() {
        assert_eq!(demonym_country("Chinese"), Some("CN"));
        assert_eq!(demonym_country("American"), Some("US"));
        assert_eq!(demonym_country("Mexican"), Some("MX"));
        assert_eq!(demonym_country("Fentanyl"), None);
        assert_eq!(demonym_country("China"), None);
    }
}
