//! Text analysis shared by profile building and matching: tokens, stems, phrases.
//!
//! Every text the matcher compares goes through [`terms`], so seeds and items meet in one
//! vocabulary: NFKC-normalised, lowercased Unicode words, HTML leftovers removed, English
//! stopwords dropped, English words reduced to Snowball stems, and a small cross-lingual
//! lexicon ([`CROSS_LINGUAL`], [`CJK`]) that maps Spanish and Chinese forms of the story's facet
//! words onto the English stems, so a Spanish or Chinese item can hit the same facets.

use std::sync::LazyLock;

use rust_stemmers::{Algorithm, Stemmer};
use unicode_normalization::UnicodeNormalization;
use unicode_segmentation::UnicodeSegmentation;

static STEMMER: LazyLock<Stemmer> = LazyLock::new(|| Stemmer::create(Algorithm::English));

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
    "al",
    "lo",
    "es",
    "tras",
    "entre",
    "desde",
    "sobre",
    "como",
];

/// Spanish (and a few English variant) word forms mapped to the English stem of the same facet
/// word. Derived by translating the profile's top facet terms (fentanyl, precursor, opioid,
/// counternarcotics, drug, trafficking, tariff, China, Chinese, Beijing, US, Washington, cartel);
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
    ("aranceles", "tariff"),
    ("arancel", "tariff"),
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
    ("关税", "tariff"),
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

/// Two-term phrases (as analysed terms) that mean counternarcotics; each also yields the
/// term `counternarcot`, so "anti-drug cooperation" and "drug-control talks" weigh like
/// "counternarcotics cooperation".
const PHRASES: &[(&str, &str)] = &[("anti", "drug"), ("drug", "control"), ("narcot", "control")];

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
fn word_term(word: &str, caps: bool) -> Option<String> {
    // "US"/"U.S" in capitals is the country; lowercase "us" is the pronoun (a stopword).
    if word == "US" || word == "U.S" || word == "U.S." || (caps && word.eq_ignore_ascii_case("us"))
    {
        return Some("us".to_string());
    }
    let lower = word.to_lowercase();
    if lower.contains("fentan") {
        // fentanyl, fentanyl-related, norfentanyl, fentanilo, carfentanil…: one drug family.
        return Some("fentanyl".to_string());
    }
    if let Some((_, stem)) = CROSS_LINGUAL.iter().find(|(form, _)| *form == lower) {
        return Some((*stem).to_string());
    }
    if STOPWORDS.contains(&lower.as_str()) {
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

/// Calls `f` with every term of `text`, in order.
///
/// Words are split on Unicode word boundaries; hyphenated compounds are split too (so
/// `China-based` yields `china` and `base`), except that whole-word lexicon entries such as
/// `counter-narcotics` are checked first.
pub fn for_each_term(text: &str, mut f: impl FnMut(String)) {
    let text = normalize(text);
    let caps = is_all_caps(&text);
    // Word segmentation splits Chinese into single ideographs, so the lexicon is matched on
    // whole runs of Han characters instead.
    if has_han(&text) {
        for run in text.split(|c: char| !is_han(c)).filter(|r| !r.is_empty()) {
            for (form, stem) in CJK {
                if run.contains(form) {
                    f((*stem).to_string());
                }
            }
        }
    }
    let mut previous: Option<String> = None;
    for word in text.unicode_words() {
        if has_han(word) {
            continue;
        }
        if let Some(t) = word_term(word, caps) {
            // Two-word synonyms of counternarcotics ("anti-drug", "drug control").
            if let Some(p) = &previous
                && PHRASES.iter().any(|(a, b)| p == a && t == *b)
            {
                f("counternarcot".to_string());
            }
            previous = Some(t.clone());
            f(t);
        }
    }
    // unicode_words splits "counter-narcotics" into two words; catch the compound.
    if text.contains("ounter-narcotic") || text.contains("OUNTER-NARCOTIC") {
        f("counternarcot".to_string());
    }
}

/// All terms of `text`, in order (see [`for_each_term`]).
pub fn terms(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for_each_term(text, |t| out.push(t));
    out
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
    fn nfkc_folds_full_width_letters() {
        assert_eq!(terms("ＦＥＮＴＡＮＹＬ"), vec!["fentanyl"]);
    }

    #[test]
    fn spanish_and_chinese_map_to_english_stems() {
        assert_eq!(
            terms("precursores de fentanilo a Estados Unidos y China"),
            vec!["precursor", "fentanyl", "us", "china"]
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
        assert!(terms("the counter-narcotics group").contains(&"counternarcot".to_string()));
        assert!(terms("counternarcotics").contains(&"counternarcot".to_string()));
    }

    #[test]
    fn entities_are_capitalised_runs() {
        let e = entities("Chinese President Xi Jinping met Joe Biden in Busan. Talks ended.");
        assert_eq!(e, vec!["President Xi Jinping", "Joe Biden", "Busan"]);
        assert!(entities("CHINA AND US TALK FENTANYL").is_empty());
    }
}
