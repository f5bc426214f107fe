//! Text analysis shared by profile building and matching: tokens, stems, phrases.
//!
//! Every text the matcher compares goes through [`terms`], so seeds and items meet in one
//! vocabulary: NFKC-normalised, lowercased Unicode words, HTML leftovers removed, English
//! stopwords dropped, English words reduced to Snowball stems, and a small cross-lingual
//! lexicon ([`CROSS_LINGUAL`], [`CJK`]) that maps Spanish and Chinese forms of the story's facet
//! words onto the English stems, so a Spanish or Chinese item can hit the same facets.

use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use std::sync::LazyLock;

use rust_stemmers::{Algorithm, Stemmer};
use unicode_normalization::UnicodeNormalization;
use unicode_segmentation::UnicodeSegmentation;

static STEMMER: LazyLock<Stemmer> = LazyLock::new(|| Stemmer::create(Algorithm::English));
static STOPWORD_SET: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| STOPWORDS.iter().copied().collect());
static CROSS_LINGUAL_MAP: LazyLock<HashMap<&'static str, &'static str>> =
    LazyLock::new(|| CROSS_LINGUAL.iter().copied().collect());

/// English function words that carry no topic. A short list on purpose: news vocabulary words
/// like "said" are kept out too because every item has them.
const STOPWORDS: &[&str] = &[
    "a",
    "about",
    "above",
    "after",
    "again",
    "against",
    "all",
    "also",
    "am",
    "an",
    "and",
    "any",
    "are",
    "as",
    "at",
    "be",
    "because",
    "been",
    "before",
    "being",
    "below",
    "between",
    "both",
    "but",
    "by",
    "can",
    "could",
    "did",
    "do",
    "does",
    "doing",
    "down",
    "during",
    "each",
    "few",
    "for",
    "from",
    "further",
    "had",
    "has",
    "have",
    "having",
    "he",
    "her",
    "here",
    "hers",
    "him",
    "his",
    "how",
    "i",
    "if",
    "in",
    "into",
    "is",
    "it",
    "its",
    "itself",
    "just",
    "last",
    "many",
    "may",
    "me",
    "might",
    "more",
    "most",
    "much",
    "must",
    "my",
    "new",
    "no",
    "nor",
    "not",
    "now",
    "of",
    "off",
    "on",
    "once",
    "one",
    "only",
    "or",
    "other",
    "our",
    "ours",
    "out",
    "over",
    "own",
    "per",
    "rather",
    "s",
    "said",
    "same",
    "say",
    "says",
    "she",
    "should",
    "since",
    "so",
    "some",
    "such",
    "than",
    "that",
    "the",
    "their",
    "theirs",
    "them",
    "then",
    "there",
    "these",
    "they",
    "this",
    "those",
    "through",
    "to",
    "told",
    "too",
    "two",
    "under",
    "until",
    "up",
    "upon",
    "us",
    "very",
    "was",
    "we",
    "were",
    "what",
    "when",
    "where",
    "which",
    "while",
    "who",
    "whom",
    "why",
    "will",
    "with",
    "would",
    "year",
    "years",
    "yet",
    "you",
    "your",
    "week",
    "day",
    "days",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
    "according",
    "including",
    "among",
    "within",
    "without",
    "amid",
    "still",
    "even",
    "like",
    "make",
    "made",
    "take",
    "taken",
    "get",
    "go",
    "well",
    "time",
    "first",
    "three",
    "de",
    "la",
    "el",
    "los",
    "las",
    "en",
    "y",
    "a",
    "del",
    "por",
    "para",
    "con",
    "se",
    "que",
    "su",
    "sus",
    "un",
    "una",
    "unidos",
    // French and Portuguese function words.
    "et",
    "le",
    "les",
    "des",
    "du",
    "au",
    "aux",
    "une",
    "pour",
    "dans",
    "avec",
    "unis",
    "do",
    "da",
    "dos",
    "das",
    "em",
    "os",
    "al",
    "lo",
    "es",
    "tras",
    "entre",
    "desde",
    "sobre",
    "como",
];

/// Spanish (and a few French, Portuguese and English variant) word forms mapped to the English
/// stem of the same word. Translations of the words the seeds yield for the derived facets (fentanyl, precursor, opioid,
/// counternarcotics, drug, trafficking, chemicals, China, Chinese, Beijing, US, Washington, cartel);
/// it is a translation table, not a list of item words.
pub const CROSS_LINGUAL: &[(&str, &str)] = &[
    ("fentanilo", "fentanyl"),
    ("fentanil", "fentanyl"),
    ("precursores", "precursor"),
    ("precursora", "precursor"),
    ("precursoras", "precursor"),
    ("opioides", "opioid"),
    ("opioide", "opioid"),
    ("opiáceos", "opioid"),
    ("antinarcóticos", "counternarcot"),
    ("antidrogas", "counternarcot"),
    ("narcóticos", "narcot"),
    ("estupefacientes", "narcot"),
    ("narcotráfico", "traffick"),
    ("tráfico", "traffick"),
    ("drogas", "drug"),
    ("droga", "drug"),
    ("sobredosis", "overdos"),
    ("cárteles", "cartel"),
    ("carteles", "cartel"),
    ("químicos", "chemic"),
    ("químicas", "chemic"),
    ("sustancias", "substanc"),
    ("chino", "chines"),
    ("chinos", "chines"),
    ("china", "china"),
    ("chinas", "chines"),
    ("pekín", "beijing"),
    ("pekin", "beijing"),
    ("eeuu", "us"),
    ("estados", "us"),
    ("ee.uu", "us"),
    ("estadounidense", "american"),
    ("estadounidenses", "american"),
    // French and Portuguese forms of the same words, where they differ from the above.
    ("chine", "china"),
    ("chinois", "chines"),
    ("chinoise", "chines"),
    ("chinoises", "chines"),
    ("pékin", "beijing"),
    ("précurseurs", "precursor"),
    ("précurseur", "precursor"),
    ("opioïdes", "opioid"),
    ("stupéfiants", "narcot"),
    ("drogue", "drug"),
    ("drogues", "drug"),
    ("américain", "american"),
    ("américaine", "american"),
    ("américains", "american"),
    ("états", "us"),
    ("chinês", "chines"),
    ("chinesa", "chines"),
    ("chineses", "chines"),
    ("pequim", "beijing"),
    ("u.s", "us"),
    ("u.s.a", "us"),
    ("usa", "us"),
];

/// Chinese facet words found by substring (Chinese has no spaces between words), mapped to the
/// English stems. Translations of the same facet terms as [`CROSS_LINGUAL`].
pub const CJK: &[(&str, &str)] = &[
    ("芬太尼", "fentanyl"),
    ("前体", "precursor"),
    ("易制毒", "precursor"),
    ("禁毒", "counternarcot"),
    ("毒品", "drug"),
    ("阿片", "opioid"),
    ("芬太尼类", "fentanyl"),
    ("中国", "china"),
    ("中方", "china"),
    ("中美", "china"),
    ("中美", "us"),
    ("北京", "beijing"),
    ("习近平", "xi"),
    ("美国", "us"),
    ("美方", "us"),
    ("华盛顿", "washington"),
    ("拜登", "biden"),
    ("特朗普", "trump"),
    ("川普", "trump"),
    ("走私", "smuggl"),
    ("贩运", "traffick"),
];

/// Two-term phrases (as analysed terms) that mean one thing: each also yields the third term,
/// so "anti-drug cooperation" and "drug-control talks" weigh like "counternarcotics
/// cooperation", and "White House" is recognised as the US government.
const PHRASES: &[(&str, &str, &str)] = &[
    ("anti", "drug", "counternarcot"),
    ("drug", "control", "counternarcot"),
    ("narcot", "control", "counternarcot"),
    ("counter", "narcot", "counternarcot"),
    ("white", "hous", WHITE_HOUSE),
];

/// The term for "White House" (the US government's voice; neither word means it alone).
pub const WHITE_HOUSE: &str = "white_house";

/// FNV-1a: a fast hash for short word and term keys. Used for the profile's term index (built
/// from seeds) and the per-thread word memo, whose size is capped, so hash flooding by
/// crafted feed text can at worst slow one thread's memo until it is cleared.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct FnvBuild;

/// The FNV-1a hasher state.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fnv(u64);

impl std::hash::Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

impl std::hash::BuildHasher for FnvBuild {
    type Hasher = Fnv;
    fn build_hasher(&self) -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

/// Removes HTML tags and decodes the common entities that leak into feed text.
///
/// The parser normally delivers plain text; this is the matcher's own guard so that a stray
/// `<p>` or `&amp;` never becomes a term.
pub fn strip_html(input: &str) -> std::borrow::Cow<'_, str> {
    if !input.contains(['<', '&']) {
        return std::borrow::Cow::Borrowed(input);
    }
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(pos) = rest.find(['<', '&']) {
        out.push_str(&rest[..pos]);
        let tail = &rest[pos..];
        if let Some(after) = tail.strip_prefix('<') {
            // A tag runs to the next '>'; a lone '<' (as in "a < b") is kept as text.
            match after.find('>') {
                Some(end)
                    if after[..end]
                        .chars()
                        .next()
                        .is_some_and(|c| c.is_ascii_alphabetic() || c == '/' || c == '!') =>
                {
                    out.push(' ');
                    rest = &after[end + 1..];
                }
                _ => {
                    out.push('<');
                    rest = after;
                }
            }
        } else {
            let end = tail.find(';').filter(|&e| e <= 10);
            let decoded = end.and_then(|e| decode_entity(&tail[1..e]));
            match (end, decoded) {
                (Some(e), Some(c)) => {
                    out.push(c);
                    rest = &tail[e + 1..];
                }
                _ => {
                    out.push('&');
                    rest = &tail[1..];
                }
            }
        }
    }
    out.push_str(rest);
    std::borrow::Cow::Owned(out)
}

fn decode_entity(name: &str) -> Option<char> {
    match name {
        "amp" => Some('&'),
        "lt" => Some('<'),
        "gt" => Some('>'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        "nbsp" => Some(' '),
        "mdash" => Some('—'),
        "ndash" => Some('–'),
        "rsquo" | "lsquo" => Some('\''),
        "rdquo" | "ldquo" => Some('"'),
        _ => {
            let num = name.strip_prefix('#')?;
            let code = match num.strip_prefix(['x', 'X']) {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => num.parse().ok()?,
            };
            char::from_u32(code)
        }
    }
}

/// NFKC-normalises text (skipped for ASCII, which NFKC leaves unchanged) after stripping HTML.
pub fn normalize(input: &str) -> String {
    let stripped = strip_html(input);
    if stripped.is_ascii() {
        stripped.into_owned()
    } else {
        stripped.nfkc().collect()
    }
}

fn is_han(c: char) -> bool {
    matches!(c as u32, 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF)
}

fn has_han(word: &str) -> bool {
    word.chars().any(is_han)
}

/// Whether the text is written in capitals (an ALL-CAPS headline): then case says nothing
/// about names, so `US` cannot be told from `us` by case and entity detection is skipped.
pub fn is_all_caps(text: &str) -> bool {
    let mut upper = 0usize;
    let mut lower = 0usize;
    if text.is_ascii() {
        for b in text.bytes() {
            upper += usize::from(b.is_ascii_uppercase());
            lower += usize::from(b.is_ascii_lowercase());
        }
        return upper >= 4 && lower * 5 < upper;
    }
    for c in text.chars() {
        if c.is_uppercase() {
            upper += 1;
        } else if c.is_lowercase() {
            lower += 1;
        }
    }
    upper >= 4 && lower * 5 < upper
}

/// Maps one word (original case) to its term, or `None` for stopwords and noise.
///
/// `caps` says the whole text is upper case; then `US` is read as the country, as it is
/// far more often in headlines than the pronoun.
fn word_term(word: &str, caps: bool) -> Option<Rc<str>> {
    // "US"/"U.S" in capitals is the country; lowercase "us" is the pronoun (a stopword).
    if word == "US" || word == "U.S" || word == "U.S." || (caps && word.eq_ignore_ascii_case("us"))
    {
        return Some(Rc::from("us"));
    }
    // News vocabulary is Zipfian, so a small per-thread memo of word → term saves most of the
    // lowercasing and stemming. The result depends only on the word, so this stays pure.
    TERM_CACHE.with(|cache| {
        if let Some(hit) = cache.borrow().get(word) {
            return hit.clone();
        }
        let term: Option<Rc<str>> = uncached_term(word).map(Rc::from);
        let mut cache = cache.borrow_mut();
        if cache.len() >= TERM_CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(word.into(), term.clone());
        term
    })
}

/// Words remembered per thread by [`word_term`] before the memo is cleared.
const TERM_CACHE_LIMIT: usize = 50_000;

thread_local! {
    static TERM_CACHE: std::cell::RefCell<HashMap<Box<str>, Option<Rc<str>>, FnvBuild>> =
        std::cell::RefCell::new(HashMap::default());
}

/// [`word_term`] without the memo, for words other than `US`.
fn uncached_term(word: &str) -> Option<String> {
    let mut lower = word.to_lowercase();
    if lower.contains(['’', '‘']) {
        // Typeset apostrophes (`China’s`, `Biden’s`) are the ASCII one to the stemmer, which
        // strips the possessive only for `'`; else `china’` would be a term of its own.
        lower = lower.replace(['’', '‘'], "'");
    }
    if lower.contains("fentan") {
        // fentanyl, fentanyl-related, norfentanyl, fentanilo, carfentanil…: one drug family.
        return Some("fentanyl".to_string());
    }
    if let Some(stem) = CROSS_LINGUAL_MAP.get(lower.as_str()) {
        return Some((*stem).to_string());
    }
    if STOPWORD_SET.contains(lower.as_str()) {
        return None;
    }
    if lower
        .chars()
        .all(|c| c.is_ascii_digit() || c == '.' || c == ',')
    {
        // Numbers are kept (they signal new developments) but single digits are noise.
        return (lower.len() >= 2).then_some(lower);
    }
    if lower.chars().count() < 2 {
        return None;
    }
    Some(STEMMER.stem(&lower).into_owned())
}

/// One term of an analysed text, with where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    /// Byte range of the source word(s) in [`Analysed::text`].
    pub span: std::ops::Range<usize>,
    /// The analysed term (stem, or the English stem a translation maps to). Shared with the
    /// per-thread memo of word → term, so a token costs no allocation of its own.
    pub term: Rc<str>,
}

/// A text after analysis: the normalised text and its terms in order.
#[derive(Debug, Clone, Default)]
pub struct Analysed {
    /// The text after HTML stripping and NFKC (original case kept).
    pub text: String,
    /// Terms in reading order.
    pub tokens: Vec<Token>,
    /// Whether the text is written in capitals (see [`is_all_caps`]).
    pub caps: bool,
}

impl Analysed {
    /// The source words of the first token whose term is `term`, as written.
    pub fn surface(&self, term: &str) -> Option<&str> {
        self.tokens
            .iter()
            .find(|t| &*t.term == term)
            .map(|t| &self.text[t.span.clone()])
    }
}

impl Analysed {
    /// Runs of capitalised words that do not start a sentence (names such as `Xi Jinping`),
    /// as token index ranges; empty for ALL-CAPS text. The same rule as [`entities`], read
    /// off the tokens so matching needs no second segmentation pass. Capitalised stopwords
    /// are not tokens, so they end a run (`Bank of China` gives `Bank` and `China`).
    pub fn name_runs(&self) -> Vec<std::ops::Range<usize>> {
        let mut runs = Vec::new();
        if self.caps {
            return runs;
        }
        let ascii = self.text.is_ascii();
        let mut current: Option<std::ops::Range<usize>> = None;
        let mut last_end = 0usize;
        for (i, tok) in self.tokens.iter().enumerate() {
            // Skip phrase and Chinese tokens: they overlap words or carry no case.
            if tok.span.start < last_end || (!ascii && has_han(&self.text[tok.span.clone()])) {
                continue;
            }
            let gap = &self.text[last_end..tok.span.start];
            let prev_end = last_end;
            last_end = tok.span.end;
            let capital = self.text[tok.span.clone()]
                .chars()
                .next()
                .is_some_and(char::is_uppercase);
            let joined = current.is_some() && gap.chars().all(|c| c == ' ');
            if capital && joined {
                if let Some(r) = current.as_mut() {
                    r.end = i + 1;
                }
                continue;
            }
            if let Some(r) = current.take() {
                runs.push(r);
            }
            let before = self.text[..tok.span.start].trim_end();
            let sentence_start = prev_end == 0 && before.is_empty()
                || before.ends_with(['.', '!', '?', ':', '"', '“', '|', ';', '\n'])
                || gap.contains('\n');
            if capital && !sentence_start {
                current = Some(i..i + 1);
            }
        }
        if let Some(r) = current {
            runs.push(r);
        }
        runs
    }

    /// The source text of a run of tokens.
    pub fn run_text(&self, run: &std::ops::Range<usize>) -> &str {
        match (
            self.tokens.get(run.start),
            self.tokens.get(run.end.saturating_sub(1)),
        ) {
            (Some(a), Some(b)) => &self.text[a.span.start..b.span.end],
            _ => "",
        }
    }
}

/// Analyses `input` into terms (see the module documentation).
///
/// Words are split on Unicode word boundaries; hyphenated compounds are split too (so
/// `China-based` yields `china` and `base`); two-word synonyms of counternarcotics
/// (`anti-drug`, `drug control`, `counter-narcotics`) also yield `counternarcot`; Chinese is
/// matched against [`CJK`] on whole runs of Han characters.
pub fn analyse(input: &str) -> Analysed {
    analyse_owned(normalize(input))
}

/// [`analyse`] for text the caller already owns: plain ASCII without markup (the common case
/// for feed items) is used as it is, without a copy.
pub fn analyse_string(input: String) -> Analysed {
    let text = if input.is_ascii() && !input.contains(['<', '&']) {
        input
    } else {
        normalize(&input)
    };
    analyse_owned(text)
}

fn analyse_owned(text: String) -> Analysed {
    let caps = is_all_caps(&text);
    let ascii = text.is_ascii();
    let mut tokens = Vec::with_capacity(text.len() / 6);
    // Word segmentation splits Chinese into single ideographs, so the lexicon is matched on
    // whole runs of Han characters instead.
    if !ascii && has_han(&text) {
        let mut offset = 0;
        for run in text.split(|c: char| !is_han(c)) {
            if !run.is_empty() {
                let start = offset;
                for (form, stem) in CJK {
                    if let Some(pos) = run.find(form) {
                        tokens.push(Token {
                            span: start + pos..start + pos + form.len(),
                            term: Rc::from(*stem),
                        });
                    }
                }
            }
            // Advance past the run and the one separator character that ended it.
            offset += run.len();
            offset += text[offset..].chars().next().map_or(0, char::len_utf8);
        }
    }
    let mut previous: Option<(usize, usize)> = None; // (token index, span start)
    for (start, word) in text.unicode_word_indices() {
        if !ascii && has_han(word) {
            continue;
        }
        let Some(term) = word_term(word, caps) else {
            continue;
        };
        let end = start + word.len();
        if let Some((i, first)) = previous {
            let before: &str = &tokens[i].term;
            if let Some((_, _, joined)) = PHRASES
                .iter()
                .find(|(a, b, _)| before == *a && &*term == *b)
            {
                tokens.push(Token {
                    span: first..end,
                    term: Rc::from(*joined),
                });
            }
        }
        previous = Some((tokens.len(), start));
        tokens.push(Token {
            span: start..end,
            term,
        });
    }
    Analysed { text, tokens, caps }
}

/// Terms of one word or short phrase as written (no HTML, already normalised): the fast
/// path for names found by [`entities`].
pub fn word_terms(words: &str) -> Vec<String> {
    if words.is_ascii()
        && words
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b' ')
    {
        words
            .split(' ')
            .filter(|w| !w.is_empty())
            .filter_map(|w| word_term(w, false).map(|t| t.to_string()))
            .collect()
    } else {
        terms(words)
    }
}

/// All terms of `text`, in order (see [`analyse`]).
pub fn terms(text: &str) -> Vec<String> {
    analyse(text)
        .tokens
        .into_iter()
        .map(|t| t.term.to_string())
        .collect()
}

/// Capitalised word sequences (names such as `Xi Jinping`, `Wang Yi`, `Busan`) in `text`,
/// skipping the first word of each sentence, which is capitalised anyway. Returns nothing
/// for ALL-CAPS text, where case carries no information.
pub fn entities(text: &str) -> Vec<String> {
    let text = normalize(text);
    if is_all_caps(&text) {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    let mut sentence_start = true;
    for (_, piece) in text.split_word_bound_indices() {
        let is_word = piece.chars().any(char::is_alphanumeric);
        if !is_word {
            if piece
                .chars()
                .any(|c| matches!(c, '.' | '!' | '?' | ':' | '"' | '“' | '|' | '\n' | ';'))
            {
                flush(&mut current, &mut out);
                sentence_start = true;
            } else if !piece.chars().all(char::is_whitespace) {
                flush(&mut current, &mut out);
            }
            continue;
        }
        let capital = piece.chars().next().is_some_and(char::is_uppercase);
        if capital && !sentence_start {
            current.push(piece);
        } else {
            flush(&mut current, &mut out);
        }
        sentence_start = false;
    }
    flush(&mut current, &mut out);
    out
}

fn flush(current: &mut Vec<&str>, out: &mut Vec<String>) {
    if !current.is_empty() {
        out.push(current.join(" "));
        current.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokeniser_stems_and_drops_stopwords() {
        assert_eq!(
            terms("The Chinese precursors of Fentanyl"),
            vec!["chines", "precursor", "fentanyl"]
        );
        assert_eq!(terms("China-based firms"), vec!["china", "base", "firm"]);
    }

    #[test]
    fn us_country_versus_pronoun() {
        assert_eq!(
            terms("US and U.S. officials told us"),
            vec!["us", "us", "offici"]
        );
        assert_eq!(
            terms("CHINA TELLS US TO STOP"),
            vec!["china", "tell", "us", "stop"]
        );
    }

    #[test]
    fn typeset_apostrophes_are_possessives_too() {
        assert_eq!(terms("China’s"), terms("China's"));
        assert_eq!(terms("China’s"), vec!["china".to_string()]);
        assert_eq!(terms("Biden‘s talks"), terms("Biden's talks"));
    }

    #[test]
    fn fentanyl_family_is_one_term() {
        assert_eq!(
            terms("norfentanyl fentanyl-related fentanilo"),
            vec!["fentanyl", "fentanyl", "relat", "fentanyl"]
        );
    }

    #[test]
    fn html_leftovers_are_removed() {
        assert_eq!(
            strip_html("<p>US &amp; China</p> a < b &#8217;"),
            " US & China  a < b \u{2019}"
        );
        assert_eq!(
            terms("<b>Fentanyl</b>&nbsp;talks"),
            vec!["fentanyl", "talk"]
        );
    }

    #[test]
    fn owned_analysis_matches_borrowed() {
        for t in [
            "US fentanyl talks",
            "<b>China</b> &amp; US",
            "ＦＥＮＴＡＮＹＬ 中国",
        ] {
            let a = analyse(t);
            let b = analyse_string(t.to_string());
            assert_eq!((a.text, a.tokens, a.caps), (b.text, b.tokens, b.caps));
        }
    }

    #[test]
    fn nfkc_folds_full_width_letters() {
        assert_eq!(terms("ＦＥＮＴＡＮＹＬ"), vec!["fentanyl"]);
    }

    #[test]
    fn spanish_and_chinese_map_to_english_stems() {
        assert_eq!(
            terms("precursores de fentanilo a Estados Unidos y China"),
            vec!["precursor", "fentanyl", "us", "china"]
        );
        assert_eq!(
            terms("La Chine et les États-Unis : précurseurs du fentanyl"),
            vec!["china", "us", "precursor", "fentanyl"]
        );
        let zh = terms("中国对美国出口芬太尼前体实施许可");
        for t in ["china", "us", "fentanyl", "precursor"] {
            assert!(zh.contains(&t.to_string()), "{t} missing in {zh:?}");
        }
    }

    #[test]
    fn counter_narcotics_synonyms() {
        assert!(terms("anti-drug talks").contains(&"counternarcot".to_string()));
        assert!(terms("drug control cooperation").contains(&"counternarcot".to_string()));
        assert!(!terms("drug prices").contains(&"counternarcot".to_string()));
        assert!(terms("the White House said").contains(&WHITE_HOUSE.to_string()));
        let a = analyse("the anti-drug group");
        assert_eq!(a.surface("counternarcot"), Some("anti-drug"));
        let zh = analyse("美国和中国");
        assert_eq!(zh.surface("china"), Some("中国"));
        assert!(terms("the counter-narcotics group").contains(&"counternarcot".to_string()));
        assert!(terms("counternarcotics").contains(&"counternarcot".to_string()));
    }

    #[test]
    fn entities_are_capitalised_runs() {
        let e = entities("Chinese President Xi Jinping met Joe Biden in Busan. Talks ended.");
        assert_eq!(e, vec!["President Xi Jinping", "Joe Biden", "Busan"]);
        assert!(entities("CHINA AND US TALK FENTANYL").is_empty());
        let a = analyse("Chinese President Xi Jinping met Joe Biden in Busan. Talks ended.");
        let runs: Vec<&str> = a.name_runs().iter().map(|r| a.run_text(r)).collect();
        assert_eq!(runs, vec!["President Xi Jinping", "Joe Biden", "Busan"]);
        let a = analyse("Headline here\nTrump met Xi in Busan");
        let runs: Vec<&str> = a.name_runs().iter().map(|r| a.run_text(r)).collect();
        assert_eq!(runs, vec!["Xi", "Busan"]);
    }
}
