//! Loading baseline articles from a seed folder (with or without `seeds.toml`).
//!
//! Seed files are plain text as people paste them from news sites, so their leads differ:
//! ` date 2024-01-28 (Bloomberg) -- …`, ` date 2024-01-29 By RFA` followed by a byline,
//! `(Tribune News Service) — …`, or a first line that is the headline. The loader reads what
//! it can from the text itself and lets an optional manifest (`seeds.toml`) say the rest, so a
//! user can drop a few `.txt` files in the folder and start, and correct the metadata later.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use jiff::civil::Date;
use serde::{Deserialize, Serialize};

/// One baseline article: a seed document the story is defined by.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BaselineArticle {
    /// File name without extension, e.g. `002_8c022bc2c889c5a5`.
    pub id: String,
    /// Headline (from the manifest, else derived from the text).
    pub title: String,
    /// Publishing outlet, e.g. `Bloomberg`, when known.
    pub outlet: Option<String>,
    /// Publication date, when known.
    pub published: Option<Date>,
    /// Link to the original, when known.
    pub url: Option<String>,
    /// Body text with leads, bylines and credit lines removed: what the matcher reads.
    pub text: String,
}

/// Name of the optional manifest inside the seed folder.
pub const MANIFEST: &str = "seeds.toml";

/// Why a seed folder could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    /// The folder does not exist or cannot be read.
    #[error("cannot read seed folder {path}: {cause}; check [story] seeds in the config")]
    Folder {
        /// The folder that was asked for.
        path: PathBuf,
        /// What the operating system said (in the message, so not also a printed `source`).
        cause: std::io::Error,
    },
    /// One seed file (or the manifest) could not be read.
    #[error("cannot read seed file {path}: {cause}; check that it exists and is readable")]
    File {
        /// The file that failed.
        path: PathBuf,
        /// What the operating system said (in the message, so not also a printed `source`).
        cause: std::io::Error,
    },
    /// A seed file is not UTF-8 text.
    #[error("seed file {path} is not UTF-8 text; save it as UTF-8 plain text")]
    NotText {
        /// The file that failed.
        path: PathBuf,
    },
    /// A seed file has no words in it.
    #[error("seed file {path} is empty; paste the article text into it or remove it")]
    EmptyFile {
        /// The empty file.
        path: PathBuf,
    },
    /// The folder holds no `.txt` files.
    #[error("seed folder {path} holds no .txt files; add one plain-text file per baseline article")]
    NoSeeds {
        /// The folder that was read.
        path: PathBuf,
    },
    /// The manifest is not valid or names things that do not exist.
    #[error("{path}:{line}:{column}: {message}")]
    Manifest {
        /// Path of `seeds.toml`.
        path: PathBuf,
        /// 1-based line of the problem (1 when unknown).
        line: usize,
        /// 1-based column of the problem (1 when unknown).
        column: usize,
        /// What is wrong and how to fix it.
        message: String,
    },
}

/// A date in the manifest: either a quoted `"YYYY-MM-DD"` or a bare TOML date.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum ManifestDate {
    Text(String),
    Toml(toml::value::Datetime),
}

/// One entry of `seeds.toml`, keyed by the seed's id (file name without `.txt`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestEntry {
    title: Option<String>,
    outlet: Option<String>,
    published: Option<toml::Spanned<ManifestDate>>,
    url: Option<String>,
}

type Manifest = BTreeMap<toml::Spanned<String>, ManifestEntry>;

/// The baseline article files of a seed folder (its `*.txt` files), sorted; empty when it
/// has none. The config check uses it to point at the `seeds` line of an empty folder.
pub fn seed_files(dir: &Path) -> Result<Vec<PathBuf>, SeedError> {
    let folder_err = |cause| SeedError::Folder {
        path: dir.to_path_buf(),
        cause,
    };
    let mut files: Vec<PathBuf> = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(folder_err)? {
        let path = entry.map_err(folder_err)?.path();
        if path.is_file() && path.extension().is_some_and(|e| e == "txt") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Loads every baseline article in `dir`, sorted by id.
///
/// Reads `*.txt` files and, when present, the manifest `seeds.toml`, whose values win over what
/// is read from the text. Fails with a message naming the file and the fix when the folder is
/// empty, a file is unreadable, or the manifest is malformed or names an unknown file.
pub fn load_seeds(dir: &Path) -> Result<Vec<BaselineArticle>, SeedError> {
    let files = seed_files(dir)?;
    if files.is_empty() {
        return Err(SeedError::NoSeeds {
            path: dir.to_path_buf(),
        });
    }

    let mut articles = Vec::with_capacity(files.len());
    for path in &files {
        let bytes = std::fs::read(path).map_err(|cause| SeedError::File {
            path: path.clone(),
            cause,
        })?;
        let raw =
            String::from_utf8(bytes).map_err(|_| SeedError::NotText { path: path.clone() })?;
        let id = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let article = parse_article(&id, &raw);
        if article.text.trim().is_empty() {
            return Err(SeedError::EmptyFile { path: path.clone() });
        }
        articles.push(article);
    }

    let manifest_path = dir.join(MANIFEST);
    if manifest_path.is_file() {
        let text = std::fs::read_to_string(&manifest_path).map_err(|cause| SeedError::File {
            path: manifest_path.clone(),
            cause,
        })?;
        apply_manifest(&manifest_path, &text, &mut articles)?;
    }
    Ok(articles)
}

/// Loads baseline articles carried in memory as (file name, contents) pairs, the way the binary
/// bundles the default story: `*.txt` entries are articles, `seeds.toml` is the manifest.
pub fn load_seed_files(files: &[(&str, &str)]) -> Result<Vec<BaselineArticle>, SeedError> {
    let origin = Path::new("<bundled seeds>");
    let mut articles: Vec<BaselineArticle> = files
        .iter()
        .filter_map(|(name, text)| Some((name.strip_suffix(".txt")?, text)))
        .map(|(id, text)| parse_article(id, text))
        .collect();
    articles.sort_by(|a, b| a.id.cmp(&b.id));
    if articles.is_empty() {
        return Err(SeedError::NoSeeds {
            path: origin.to_path_buf(),
        });
    }
    if let Some((_, manifest)) = files.iter().find(|(name, _)| *name == MANIFEST) {
        apply_manifest(&origin.join(MANIFEST), manifest, &mut articles)?;
    }
    Ok(articles)
}

/// Applies the manifest `text` (read from `path`) to the parsed articles.
fn apply_manifest(
    path: &Path,
    text: &str,
    articles: &mut [BaselineArticle],
) -> Result<(), SeedError> {
    let err_at = |offset: Option<usize>, message: String| {
        let (line, column) = offset.map_or((1, 1), |o| line_col(text, o));
        SeedError::Manifest {
            path: path.to_path_buf(),
            line,
            column,
            message,
        }
    };
    let manifest: Manifest = toml::from_str(text).map_err(|e| {
        err_at(
            e.span().map(|s| s.start),
            format!(
                "{}; each entry is a table named after a seed file without .txt, with the keys \
                 title, outlet, published (\"YYYY-MM-DD\") and url",
                e.message().trim_end()
            ),
        )
    })?;
    for (key, entry) in manifest {
        let id = key.get_ref().trim_end_matches(".txt");
        let Some(article) = articles.iter_mut().find(|a| a.id == id) else {
            let known: Vec<&str> = articles.iter().map(|a| a.id.as_str()).collect();
            return Err(err_at(
                Some(key.span().start),
                format!(
                    "no seed file {id}.txt in this folder; rename the entry to one of: {}",
                    known.join(", ")
                ),
            ));
        };
        if let Some(title) = entry.title.filter(|t| !t.trim().is_empty()) {
            article.title = title.trim().to_string();
        }
        if let Some(outlet) = entry.outlet.filter(|t| !t.trim().is_empty()) {
            article.outlet = Some(outlet.trim().to_string());
        }
        if let Some(url) = entry.url.filter(|t| !t.trim().is_empty()) {
            article.url = Some(url.trim().to_string());
        }
        if let Some(date) = entry.published {
            let span = date.span();
            let text_form = match date.into_inner() {
                ManifestDate::Text(s) => s,
                ManifestDate::Toml(d) => d.to_string(),
            };
            let parsed: Date = text_form.trim().parse().map_err(|_| {
                err_at(
                    Some(span.start),
                    format!(
                        "published = {text_form:?} in entry {id} is not a date; write it as \
                         \"YYYY-MM-DD\""
                    ),
                )
            })?;
            article.published = Some(parsed);
        }
    }
    Ok(())
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..floor_char_boundary(text, offset)];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

fn floor_char_boundary(text: &str, mut i: usize) -> usize {
    i = i.min(text.len());
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Parses one seed file's text into a baseline article (metadata from the text only).
///
/// Public so other front ends (e.g. a future "add seed from URL" command) can reuse it.
pub fn parse_article(id: &str, raw: &str) -> BaselineArticle {
    let mut outlet: Option<String> = None;
    let mut published: Option<Date> = None;
    let mut title: Option<String> = None;
    let mut body: Vec<String> = Vec::new();

    let lines: Vec<&str> = raw
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    for (i, line) in lines.iter().enumerate() {
        let mut line: &str = line;
        if i == 0 {
            line = strip_date_lead(line, &mut published, &mut outlet);
            line = strip_outlet_lead(line, &mut outlet);
            if line.is_empty() {
                continue;
            }
            if lines.len() > 1 && is_headline(line) {
                title = Some(line.to_string());
                continue;
            }
        }
        if body.is_empty() && i <= 2 && is_byline(line) {
            continue;
        }
        if is_credit(line) {
            continue;
        }
        if body.is_empty() {
            line = strip_dateline(line);
        }
        body.push(line.to_string());
    }
    let text = body.join("\n");
    let title = title.unwrap_or_else(|| derive_title(&text));
    BaselineArticle {
        id: id.to_string(),
        title,
        outlet,
        published,
        url: None,
        text,
    }
}

/// Strips a leading ` date YYYY-MM-DD` and an outlet after it (`(Bloomberg) --`, `By RFA`).
fn strip_date_lead<'a>(
    line: &'a str,
    published: &mut Option<Date>,
    outlet: &mut Option<String>,
) -> &'a str {
    let Some(rest) = line.strip_prefix("date ") else {
        return line;
    };
    let rest = rest.trim_start();
    let (date, after) = rest.split_at(rest.find(char::is_whitespace).unwrap_or(rest.len()));
    let Ok(date) = date.parse::<Date>() else {
        return line;
    };
    *published = Some(date);
    let after = after.trim_start();
    if let Some(by) = after.strip_prefix("By ") {
        // ` date 2024-01-29 By RFA`: the whole line is the lead.
        if by.split_whitespace().count() <= 4 {
            *outlet = Some(by.trim().to_string());
            return "";
        }
    }
    after
}

/// Strips a leading `(Outlet) --` / `(Outlet) —` wire lead, recording the outlet.
fn strip_outlet_lead<'a>(line: &'a str, outlet: &mut Option<String>) -> &'a str {
    let Some(inner) = line.strip_prefix('(') else {
        return line;
    };
    let Some(close) = inner.find(')') else {
        return line;
    };
    let name = inner[..close].trim();
    let after = inner[close + 1..].trim_start();
    let Some(after) = ["--", "—", "–", "-"]
        .iter()
        .find_map(|dash| after.strip_prefix(dash))
    else {
        return line;
    };
    if name.is_empty() || name.split_whitespace().count() > 5 {
        return line;
    }
    if outlet.is_none() {
        *outlet = Some(name.to_string());
    }
    after.trim_start()
}

/// Strips a dateline such as `Washington DC - ` at the start of the first paragraph.
fn strip_dateline(line: &str) -> &str {
    if let Some(pos) = line.find(" - ") {
        let head = &line[..pos];
        let words = head.split_whitespace().count();
        if words <= 4 && head.chars().next().is_some_and(char::is_uppercase) {
            return line[pos + 3..].trim_start();
        }
    }
    line
}

/// A headline: short, no sentence-final punctuation.
fn is_headline(line: &str) -> bool {
    let words = line.split_whitespace().count();
    (3..=20).contains(&words) && !line.ends_with(['.', '!', ':', ',', ';', '"', '”'])
}

/// A byline: `By Name Surname` and nothing else.
fn is_byline(line: &str) -> bool {
    line.strip_prefix("By ")
        .is_some_and(|rest| rest.split_whitespace().count() <= 5 && !rest.ends_with('.'))
}

/// Credit lines and trailers that are not part of the story.
fn is_credit(line: &str) -> bool {
    let lower = line.to_lowercase();
    const PREFIXES: &[&str] = &[
        "cover photo:",
        "photo:",
        "photo credit",
        "©",
        "(c)",
        "copyright",
        "visit ",
        "distributed by",
        "read more:",
        "related:",
    ];
    PREFIXES.iter().any(|p| lower.starts_with(p)) && line.split_whitespace().count() <= 12
}

/// A title from the text: the first sentence, trimmed to about 90 characters at a word.
pub(crate) fn derive_title(text: &str) -> String {
    let first = text.lines().next().unwrap_or("");
    let sentence = first_sentence(first).trim_end_matches('.');
    if sentence.chars().count() <= 100 {
        return sentence.to_string();
    }
    let mut out = String::new();
    for word in sentence.split_whitespace() {
        if out.chars().count() + word.chars().count() + 1 > 90 {
            break;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out.push('…');
    out
}

/// The first sentence of `line`: up to the first full stop followed by a space that does not
/// end an abbreviation (`U.S.`, `Jan.`, `Mr.`), so a title is never cut to "A delegation of U.S".
fn first_sentence(line: &str) -> &str {
    /// Short words written with a full stop that rarely end a sentence in news copy.
    const ABBREVIATIONS: &[&str] = &[
        "mr", "mrs", "ms", "dr", "prof", "gen", "lt", "col", "sgt", "sen", "rep", "gov", "pres",
        "st", "no", "vs", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct",
        "nov", "dec", "inc", "corp", "co", "ltd", "jr", "sr",
    ];
    for (i, _) in line.match_indices(". ") {
        let word = line[..i]
            .rsplit(|c: char| c.is_whitespace() || c == '(' || c == '"' || c == '“')
            .next()
            .unwrap_or("");
        // Initials and dotted acronyms: `U.S`, `D.C`, `J`.
        let initials = word
            .split('.')
            .all(|part| part.chars().count() == 1 && part.chars().all(char::is_uppercase));
        let abbreviation = ABBREVIATIONS.contains(&word.to_lowercase().as_str());
        if !(initials || abbreviation) {
            return &line[..i];
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed_dir() -> PathBuf {
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/seeds"))
    }

    fn raw(name: &str) -> String {
        std::fs::read_to_string(seed_dir().join(name)).unwrap()
    }

    #[test]
    fn bloomberg_date_lead_is_parsed_and_stripped() {
        let a = parse_article("000", &raw("000_626ea2df4fb03446.txt"));
        assert_eq!(a.published, Some(jiff::civil::date(2024, 1, 28)));
        assert_eq!(a.outlet.as_deref(), Some("Bloomberg"));
        assert!(
            a.text
                .starts_with("US and Chinese officials are set to meet")
        );
        assert!(
            a.title
                .starts_with("US and Chinese officials are set to meet in Beijing")
        );
        let b = parse_article("001", &raw("001_2a5f8e6a494c3f39.txt"));
        assert_eq!(b.published, Some(jiff::civil::date(2024, 7, 31)));
        assert!(b.text.starts_with("The US will host"));
    }

    #[test]
    fn headline_first_line_and_photo_credit() {
        let a = parse_article("002", &raw("002_8c022bc2c889c5a5.txt"));
        assert_eq!(
            a.title,
            "US and China to resume stalled fentanyl talks in Beijing"
        );
        assert!(a.text.starts_with("US and Chinese officials will meet"));
        assert!(!a.text.contains("Cover photo"));
        assert!(!a.text.contains("Emmert"));
        assert_eq!(a.published, None);
    }

    #[test]
    fn rfa_lead_and_byline_are_stripped() {
        let a = parse_article("003", &raw("003_3dae84ab3fd43ab9.txt"));
        assert_eq!(a.published, Some(jiff::civil::date(2024, 1, 29)));
        assert_eq!(a.outlet.as_deref(), Some("RFA"));
        assert!(!a.text.contains("Willemyns"));
        assert!(a.text.starts_with("A delegation of U.S. officials"));
    }

    #[test]
    fn tribune_lead_and_trailers_are_stripped() {
        let a = parse_article("004", &raw("004_eb0f658c01f191c2.txt"));
        assert_eq!(a.outlet.as_deref(), Some("Tribune News Service"));
        assert!(a.text.starts_with("Chinese and American officials held"));
        for credit in ["©2024", "Visit bloomberg.com", "Distributed by", "Tribune"] {
            assert!(!a.text.contains(credit), "{credit} left in text");
        }
    }

    #[test]
    fn manifest_fills_metadata_for_all_five() {
        let seeds = load_seeds(&seed_dir()).unwrap();
        assert_eq!(seeds.len(), 5);
        for s in &seeds {
            assert!(s.outlet.is_some(), "{} has no outlet", s.id);
            assert!(s.published.is_some(), "{} has no date", s.id);
            assert!(!s.title.is_empty());
        }
        assert_eq!(seeds[4].outlet.as_deref(), Some("Bloomberg"));
        assert_eq!(seeds[4].published, Some(jiff::civil::date(2024, 1, 30)));
        assert_eq!(seeds[2].outlet.as_deref(), Some("AFP"));
    }

    #[test]
    fn derived_titles_of_the_five_seeds_are_whole_sentences() {
        let expect = [
            (
                "000_626ea2df4fb03446.txt",
                "US and Chinese officials are set to meet in Beijing",
            ),
            (
                "001_2a5f8e6a494c3f39.txt",
                "The US will host a senior delegation of Chinese",
            ),
            (
                "002_8c022bc2c889c5a5.txt",
                "US and China to resume stalled fentanyl talks in Beijing",
            ),
            (
                "003_3dae84ab3fd43ab9.txt",
                "A delegation of U.S. officials is in Beijing this week",
            ),
            (
                "004_eb0f658c01f191c2.txt",
                "Chinese and American officials held the first meeting",
            ),
        ];
        for (file, start) in expect {
            let a = parse_article("x", &raw(file));
            assert!(a.title.starts_with(start), "{file}: {:?}", a.title);
            assert!(a.title.chars().count() <= 101, "{file}: {:?}", a.title);
        }
        assert_eq!(
            first_sentence("Talks with Mr. Wang in Washington, D.C. ended. Then more."),
            "Talks with Mr. Wang in Washington, D.C. ended"
        );
        assert_eq!(first_sentence("No full stop at all"), "No full stop at all");
    }

    #[test]
    fn loads_without_manifest() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("a.txt"),
            " date 2024-02-01 (Reuters) -- China said on Thursday it would act. More text.\n",
        )
        .unwrap();
        let seeds = load_seeds(dir.path()).unwrap();
        assert_eq!(seeds[0].id, "a");
        assert_eq!(seeds[0].outlet.as_deref(), Some("Reuters"));
        assert_eq!(seeds[0].title, "China said on Thursday it would act");
    }

    #[test]
    fn odd_leads_do_not_panic() {
        for raw in [
            "",
            "(",
            "()",
            "(X) --",
            " date ",
            "date 2024-13-45 (X) -- text",
            "date 2024-01-01",
            "By ",
            "By Someone\nBy Other\n©",
            "Washington - ",
            "Title line\nä - ü - ö",
            "Ünïcödé (Ağency) — Text. More.",
        ] {
            let a = parse_article("x", raw);
            assert_eq!(a.id, "x");
        }
        let a = parse_article("x", "date 2024-13-45 (X) -- text");
        assert_eq!(a.published, None);
    }

    #[test]
    fn empty_folder_says_add_txt_files() {
        let dir = tempfile::tempdir().unwrap();
        let err = load_seeds(dir.path()).unwrap_err().to_string();
        assert!(err.contains("add one plain-text file"), "{err}");
    }

    #[test]
    fn manifest_errors_name_file_line_and_fix() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.txt"), "Some text about fentanyl.\n").unwrap();
        let manifest = dir.path().join(MANIFEST);

        std::fs::write(&manifest, "[a]\ntitle = \"T\"\nauthor = \"x\"\n").unwrap();
        let err = load_seeds(dir.path()).unwrap_err().to_string();
        assert!(err.contains("seeds.toml:"), "{err}");
        assert!(err.contains("author"), "{err}");

        std::fs::write(&manifest, "[a]\ntitle = \"T\"\n\n[b]\ntitle = \"U\"\n").unwrap();
        let err = load_seeds(dir.path()).unwrap_err().to_string();
        assert!(err.contains("seeds.toml:4:"), "{err}");
        assert!(err.contains("no seed file b.txt"), "{err}");

        std::fs::write(&manifest, "[a]\npublished = \"28 Jan\"\n").unwrap();
        let err = load_seeds(dir.path()).unwrap_err().to_string();
        assert!(err.contains("seeds.toml:2:"), "{err}");
        assert!(err.contains("YYYY-MM-DD"), "{err}");

        std::fs::write(&manifest, "[a\n").unwrap();
        let err = load_seeds(dir.path()).unwrap_err().to_string();
        assert!(err.contains("seeds.toml:1:"), "{err}");

        std::fs::write(&manifest, "[a]\npublished = 2024-01-02\n").unwrap();
        let seeds = load_seeds(dir.path()).unwrap();
        assert_eq!(seeds[0].published, Some(jiff::civil::date(2024, 1, 2)));
    }
}
