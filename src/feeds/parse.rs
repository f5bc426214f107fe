//! Parsing feed bytes (RSS 0.9x/1.0/2.0, Atom, JSON Feed) into normalised items.
//!
//! feed-rs does the format work; this module wraps it with what real feeds need: character
//! encodings the prolog does not declare, byte-order marks, `<rss>` roots with odd versions, dates
//! in every format people invent, identities that survive title edits, and errors that tell a
//! person what is wrong with the URL they configured.

use std::borrow::Cow;
use std::time::Duration;

use encoding_rs::{Encoding, UTF_8, UTF_16BE, UTF_16LE, WINDOWS_1252};
use feed_rs::parser::{ParseErrorKind, ParseFeedError};
use jiff::Timestamp;
use siphasher::sip128::{Hasher128, SipHasher13};
use std::hash::Hasher;

use super::normalize::{html_to_line, html_to_text, safe_link};
use crate::item::Item;

/// A parsed feed.
#[derive(Debug, Clone)]
pub struct ParsedFeed {
    /// The feed's own title, plain text.
    pub title: Option<String>,
    /// Normalised items, in feed order.
    pub items: Vec<Item>,
    /// How long the publisher asks readers to wait between polls (RSS `<ttl>`), if it says.
    /// A hint for the scheduler, not an order.
    pub ttl: Option<Duration>,
}

/// Why a body is not a usable feed. Each message says what is wrong and what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// Nothing (or only whitespace) came back.
    #[error("the feed body is empty; check the URL in a browser, the server may be failing")]
    Empty,
    /// A web page came back instead of a feed, usually because the configured URL is the site's
    /// home page or an error/consent page.
    #[error("the URL returned an HTML page, not a feed; look for its RSS/Atom link")]
    HtmlPage,
    /// XML that is not well-formed; feeds are all-or-nothing, so nothing can be read from it.
    #[error(
        "the feed is not well-formed XML ({detail}); the publisher has to fix it, \
         or use another feed for this site"
    )]
    Malformed {
        /// What the XML reader complained about, with its position when it knows one.
        detail: String,
    },
    /// A JSON body that is not a JSON Feed (or not JSON at all).
    #[error("the JSON feed could not be read ({detail}); check that the URL is a JSON Feed")]
    Json {
        /// What the JSON reader complained about.
        detail: String,
    },
    /// Well-formed, but not RSS, Atom or JSON Feed.
    #[error(
        "no RSS, Atom or JSON Feed found in the document ({detail}); check that the URL is a feed"
    )]
    NotAFeed {
        /// Which root was found, or the parser's reason.
        detail: String,
    },
}

impl ParseError {
    /// A short stable name for the kind of failure, recorded in the feed's state.
    pub fn kind(&self) -> &'static str {
        match self {
            ParseError::Empty => "empty",
            ParseError::HtmlPage => "html_page",
            ParseError::Malformed { .. } => "malformed_xml",
            ParseError::Json { .. } => "invalid_json",
            ParseError::NotAFeed { .. } => "not_a_feed",
        }
    }
}

/// Parses `body` fetched from `feed_url` (used to resolve relative links).
///
/// `content_type` is the HTTP `Content-Type`; its `charset` is used only when the document does
/// not say its own encoding and is not valid UTF-8 (documents lie less often than servers).
pub fn parse_feed(
    body: &[u8],
    content_type: Option<&str>,
    feed_url: &str,
) -> Result<ParsedFeed, ParseError> {
    let text = decode_body(body, content_type);
    let text = text.trim_start_matches(|c: char| c.is_whitespace() || c == '\u{FEFF}');
    if text.trim().is_empty() {
        return Err(ParseError::Empty);
    }
    // feed-rs refuses a base it cannot parse, so a bad feed URL only costs relative links.
    let base = url::Url::parse(feed_url).ok().map(|_| feed_url);
    let feed = match parse_with_feed_rs(text, base) {
        Ok(feed) => feed,
        Err(ParseFeedError::ParseError(ParseErrorKind::NoFeedRoot)) => {
            if looks_like_html(text) {
                return Err(ParseError::HtmlPage);
            }
            match patch_rss_version(text) {
                Some(patched) => parse_with_feed_rs(&patched, base)
                    .map_err(|e| classify(e, text, content_type))?,
                None => return Err(classify_no_root(text)),
            }
        }
        Err(e) => return Err(classify(e, text, content_type)),
    };
    let sources = if text.contains("<source") {
        item_sources(text)
    } else {
        Vec::new()
    };
    Ok(convert(feed, base, &sources))
}

/// Best-effort date parsing for the formats feeds really use: RFC 3339 / ISO 8601, RFC 2822 and
/// its common corruptions (full month or day names, `UTC`/`CET`-style zones, `+05:30` offsets,
/// missing seconds), and a few civil formats without a zone (taken as UTC).
///
/// Returns `None` when nothing fits; callers then fall back on the time they first saw the item.
pub fn parse_date(raw: &str) -> Option<Timestamp> {
    let s = raw.trim();
    if s.is_empty() || s.len() > 100 {
        return None;
    }
    if let Ok(ts) = s.parse::<Timestamp>() {
        return Some(ts);
    }
    if let Ok(zoned) = jiff::fmt::rfc2822::parse(s) {
        return Some(zoned.timestamp());
    }
    let cleaned = clean_date(s);
    if let Ok(zoned) = jiff::fmt::rfc2822::parse(&cleaned) {
        return Some(zoned.timestamp());
    }
    const WITH_OFFSET: &[&str] = &[
        "%Y-%m-%dT%H:%M:%S%z",
        "%Y-%m-%dT%H:%M:%S%.f%z",
        "%Y-%m-%d %H:%M:%S %z",
        "%Y-%m-%d %H:%M:%S%z",
        "%Y-%m-%d %H:%M %z",
        "%d %b %Y %H:%M:%S %z",
        "%d %b %Y %H:%M %z",
        "%b %d, %Y %H:%M:%S %z",
        "%b %d %Y %H:%M:%S %z",
    ];
    for format in WITH_OFFSET {
        if let Ok(ts) = Timestamp::strptime(format, &cleaned) {
            return Some(ts);
        }
    }
    const CIVIL: &[&str] = &[
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y/%m/%d %H:%M:%S",
        "%Y/%m/%d %H:%M",
        "%d %b %Y %H:%M:%S",
        "%d %b %Y %H:%M",
        "%b %d, %Y %H:%M:%S",
        "%b %d, %Y %H:%M",
    ];
    for format in CIVIL {
        if let Ok(dt) = jiff::civil::DateTime::strptime(format, &cleaned)
            && let Ok(zoned) = dt.to_zoned(jiff::tz::TimeZone::UTC)
        {
            return Some(zoned.timestamp());
        }
    }
    const DATES: &[&str] = &["%Y-%m-%d", "%Y/%m/%d", "%d %b %Y", "%b %d, %Y", "%b %d %Y"];
    for format in DATES {
        if let Ok(date) = jiff::civil::Date::strptime(format, &cleaned)
            && let Ok(zoned) = date.to_zoned(jiff::tz::TimeZone::UTC)
        {
            return Some(zoned.timestamp());
        }
    }
    None
}

/// Rewrites the usual deviations from RFC 2822 into what the strict parsers accept.
fn clean_date(s: &str) -> String {
    // A trailing comment such as "(UTC)" or "(Eastern Standard Time)".
    let s = match s.find('(') {
        Some(p) if s.ends_with(')') => s[..p].trim(),
        _ => s,
    };
    let mut tokens: Vec<String> = s.split_whitespace().map(str::to_string).collect();
    // A leading day name, abbreviated or not, often with a typo; the date itself says the day.
    if let Some(first) = tokens.first() {
        let word = first.trim_end_matches([',', '.']).to_ascii_lowercase();
        let days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
        if word.len() >= 3
            && word.chars().all(|c| c.is_ascii_alphabetic())
            && days.iter().any(|d| word.starts_with(d))
        {
            tokens.remove(0);
        }
    }
    for token in &mut tokens {
        let trailing_comma = token.ends_with(',');
        let word = token.trim_end_matches([',', '.']).to_ascii_lowercase();
        if word.len() > 3 && word.chars().all(|c| c.is_ascii_alphabetic()) {
            let months = [
                "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
            ];
            if let Some(m) = months.iter().find(|m| word.starts_with(*m)) {
                let mut short = capitalise(m);
                if trailing_comma {
                    short.push(',');
                }
                *token = short;
                continue;
            }
        }
        if let Some(offset) = zone_offset(&word) {
            *token = offset.to_string();
            continue;
        }
        // "GMT+0100", "UTC-05:00", "+05:30" → "+0100", "-0500", "+0530".
        let bare = word
            .strip_prefix("gmt")
            .or_else(|| word.strip_prefix("utc"))
            .unwrap_or(&word);
        if let Some(sign) = bare.chars().next().filter(|c| *c == '+' || *c == '-') {
            let digits: String = bare[1..].chars().filter(|c| *c != ':').collect();
            if digits.len() == 4 && digits.chars().all(|c| c.is_ascii_digit()) {
                *token = format!("{sign}{digits}");
                continue;
            }
        }
        // Single-digit hours ("9:05:00") are rejected by RFC 2822 parsers.
        if token.contains(':') && token.split(':').next().is_some_and(|h| h.len() == 1) {
            token.insert(0, '0');
        }
    }
    tokens.join(" ")
}

/// Offsets of zone abbreviations seen in feeds; those RFC 2822 does not define included.
fn zone_offset(word: &str) -> Option<&'static str> {
    Some(match word {
        "z" | "ut" | "utc" | "gmt" | "wet" => "+0000",
        "bst" | "cet" | "west" | "met" => "+0100",
        "cest" | "eet" | "sast" | "mest" => "+0200",
        "eest" | "msk" => "+0300",
        "ist" => "+0530",
        "hkt" | "sgt" | "awst" => "+0800",
        "jst" | "kst" => "+0900",
        "aest" => "+1000",
        "aedt" => "+1100",
        "nzst" => "+1200",
        "nzdt" => "+1300",
        "edt" => "-0400",
        "est" | "cdt" => "-0500",
        "cst" | "mdt" => "-0600",
        "mst" | "pdt" => "-0700",
        "pst" => "-0800",
        _ => return None,
    })
}

fn capitalise(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_ascii_uppercase().to_string() + chars.as_str(),
        None => String::new(),
    }
}

/// Runs feed-rs with our settings: base URI for relative links, our date parser, no invented ids
/// (an empty id means the feed gave none, which [`dedup_key`] needs to know).
fn parse_with_feed_rs(
    text: &str,
    base: Option<&str>,
) -> Result<feed_rs::model::Feed, ParseFeedError> {
    feed_rs::parser::Builder::new()
        .base_uri(base)
        .id_generator(|_, _, _| String::new())
        .sanitize_content(false)
        .timestamp_parser(|s| {
            let ts = parse_date(s)?;
            chrono::DateTime::from_timestamp(ts.as_second(), ts.subsec_nanosecond().max(0) as u32)
        })
        .build()
        .parse(text.as_bytes())
}

/// Maps a feed-rs failure to an error a person can act on.
fn classify(error: ParseFeedError, text: &str, content_type: Option<&str>) -> ParseError {
    let html_type = content_type.is_some_and(|ct| {
        let ct = ct.to_ascii_lowercase();
        ct.starts_with("text/html") || ct.starts_with("application/xhtml")
    });
    // A feed served as text/html is still a feed; only trust the header when the root agrees.
    let feed_root = root_element(text).is_some_and(|r| matches!(r, "rss" | "feed" | "RDF"));
    if looks_like_html(text) || (html_type && !feed_root) {
        return ParseError::HtmlPage;
    }
    match error {
        ParseFeedError::ParseError(ParseErrorKind::NoFeedRoot) => classify_no_root(text),
        ParseFeedError::ParseError(kind) => ParseError::NotAFeed {
            detail: kind.to_string(),
        },
        ParseFeedError::XmlReader(e) => ParseError::Malformed {
            detail: match xml_error_position(text) {
                Some((line, column)) => format!("{e}, at line {line}, column {column}"),
                None => e.to_string(),
            },
        },
        ParseFeedError::IoError(e) => ParseError::Malformed {
            detail: e.to_string(),
        },
        ParseFeedError::JsonSerde(e) => ParseError::Json {
            detail: e.to_string(),
        },
        ParseFeedError::JsonUnsupportedVersion(v) => ParseError::Json {
            detail: format!("unsupported JSON Feed version {v}"),
        },
    }
}

/// Where the XML first goes wrong, as 1-based line and column, found by re-reading the document
/// (feed-rs's errors carry no position, and a person fixing a feed needs one).
fn xml_error_position(text: &str) -> Option<(usize, usize)> {
    let mut reader = quick_xml::Reader::from_str(text);
    reader.config_mut().trim_markup_names_in_closing_tags = true;
    loop {
        match reader.read_event() {
            Ok(quick_xml::events::Event::Eof) => return None,
            Ok(_) => {}
            Err(_) => {
                let pos = usize::try_from(reader.error_position())
                    .ok()?
                    .min(text.len());
                let before = text.get(..pos)?;
                let line = before.matches('\n').count() + 1;
                let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
                return Some((line, column));
            }
        }
    }
}

fn classify_no_root(text: &str) -> ParseError {
    let detail = match root_element(text) {
        Some(name) => format!("the document's root element is <{name}>"),
        None if text.starts_with('{') || text.starts_with('[') => {
            return ParseError::Json {
                detail: "not a JSON Feed object".into(),
            };
        }
        None => "the body is neither XML nor JSON".into(),
    };
    ParseError::NotAFeed { detail }
}

/// Whether the document is an HTML page: its first element is `<html>` or it has an HTML doctype.
fn looks_like_html(text: &str) -> bool {
    let head: String = text
        .chars()
        .take(2048)
        .collect::<String>()
        .to_ascii_lowercase();
    if head.contains("<!doctype html") {
        return true;
    }
    root_element(text).is_some_and(|name| name.eq_ignore_ascii_case("html"))
}

/// The name of the first element, skipping the prolog, comments, doctype and processing
/// instructions.
fn root_element(text: &str) -> Option<&str> {
    let mut rest = text;
    loop {
        let start = rest.find('<')?;
        rest = &rest[start..];
        if let Some(after) = rest.strip_prefix("<!--") {
            rest = &after[after.find("-->")? + 3..];
        } else if rest.starts_with("<!") || rest.starts_with("<?") {
            rest = &rest[rest.find('>')? + 1..];
        } else {
            let name = &rest[1..];
            let end = name
                .find(|c: char| c.is_whitespace() || c == '>' || c == '/')
                .unwrap_or(name.len());
            let name = &name[..end];
            // Drop a namespace prefix: `<rdf:RDF>` is an RDF root.
            return Some(name.rsplit(':').next().unwrap_or(name));
        }
    }
}

/// When the root is `<rss>` with a missing or unknown `version` (which feed-rs refuses), returns
/// the document with the root declaring version 2.0, the dialect every later RSS reads as.
fn patch_rss_version(text: &str) -> Option<String> {
    if root_element(text)? != "rss" {
        return None;
    }
    let start = text.find("<rss")?;
    let tag_end = start + text[start..].find('>')?;
    let tag = &text[start..tag_end];
    let mut patched_tag = String::from("<rss version=\"2.0\"");
    let attrs = &tag[4..];
    // Keep every attribute (namespaces matter) except the version.
    let mut rest = attrs;
    while let Some(pos) = find_attr(rest, "version") {
        patched_tag.push_str(&rest[..pos]);
        let after = &rest[pos..];
        let value_end = attr_end(after)?;
        rest = &after[value_end..];
    }
    patched_tag.push_str(rest);
    let mut out = String::with_capacity(text.len() + 16);
    out.push_str(&text[..start]);
    out.push_str(&patched_tag);
    out.push_str(&text[tag_end..]);
    Some(out)
}

/// Position of attribute `name` (preceded by whitespace, followed by `=`), in a tag's text.
fn find_attr(tag: &str, name: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(pos) = tag[from..].find(name).map(|p| p + from) {
        let before_ok = tag[..pos].ends_with(|c: char| c.is_whitespace());
        let after_ok = tag[pos + name.len()..].trim_start().starts_with('=');
        if before_ok && after_ok {
            return Some(pos);
        }
        from = pos + name.len();
    }
    None
}

/// Length of `name = "value"` at the start of `s`.
fn attr_end(s: &str) -> Option<usize> {
    let eq = s.find('=')?;
    let after_eq = &s[eq + 1..];
    let skipped = after_eq.len() - after_eq.trim_start().len();
    let value = after_eq.trim_start();
    let quote = value.chars().next()?;
    if quote == '"' || quote == '\'' {
        let close = value[1..].find(quote)?;
        Some(eq + 1 + skipped + close + 2)
    } else {
        let end = value.find(char::is_whitespace).unwrap_or(value.len());
        Some(eq + 1 + skipped + end)
    }
}

/// Turns the body into UTF-8 text whose prolog no longer declares another encoding.
///
/// Order of trust: a byte-order mark, then the XML prolog's `encoding`, then "it is valid UTF-8",
/// then the HTTP charset, then windows-1252 (what unlabelled Western feeds almost always are, and
/// a superset of ISO-8859-1).
fn decode_body<'a>(body: &'a [u8], content_type: Option<&str>) -> Cow<'a, str> {
    let (encoding, bytes) = if let Some(rest) = body.strip_prefix(b"\xEF\xBB\xBF") {
        (UTF_8, rest)
    } else if let Some(rest) = body.strip_prefix(b"\xFF\xFE") {
        (UTF_16LE, rest)
    } else if let Some(rest) = body.strip_prefix(b"\xFE\xFF") {
        (UTF_16BE, rest)
    } else if let Some(utf16) = unmarked_utf16(body, content_type) {
        (utf16, body)
    } else {
        (sniff_encoding(body, content_type), body)
    };
    let decoded = if encoding == UTF_8 {
        match std::str::from_utf8(bytes) {
            Ok(text) => Cow::Borrowed(text),
            // Declared UTF-8 but is not: the author's editor saved windows-1252.
            Err(_) => WINDOWS_1252.decode_without_bom_handling(bytes).0,
        }
    } else {
        encoding.decode_without_bom_handling(bytes).0
    };
    match neutralise_declarations(&decoded) {
        Some(fixed) => Cow::Owned(fixed),
        None => decoded,
    }
}

/// UTF-16 without a byte-order mark, told by its shape: XML begins with ASCII markup (`<`,
/// whitespace), which UTF-16 spells as the byte and a zero (little-endian) or a zero and the
/// byte (big-endian); XML spec appendix F. A `charset=utf-16…` header alone is not enough (it
/// is often wrong about a UTF-8 body), but it is believed for a body with zero bytes in it,
/// which no 8-bit or UTF-8 feed has.
fn unmarked_utf16(body: &[u8], content_type: Option<&str>) -> Option<&'static Encoding> {
    let head = body.get(..4)?;
    let ascii = |b: u8| b != 0 && b.is_ascii();
    if ascii(head[0]) && head[1] == 0 && ascii(head[2]) && head[3] == 0 {
        return Some(UTF_16LE);
    }
    if head[0] == 0 && ascii(head[1]) && head[2] == 0 && ascii(head[3]) {
        return Some(UTF_16BE);
    }
    header_charset(content_type).filter(|e| (*e == UTF_16LE || *e == UTF_16BE) && body.contains(&0))
}

/// Picks the encoding of a body without a byte-order mark.
fn sniff_encoding(body: &[u8], content_type: Option<&str>) -> &'static Encoding {
    let usable = |e: &'static Encoding| {
        // A prolog readable as ASCII cannot be UTF-16, and the "replacement" encoding would
        // throw the whole document away.
        e != UTF_16LE && e != UTF_16BE && e != encoding_rs::REPLACEMENT
    };
    if let Some(declared) = prolog_encoding(body).and_then(|l| Encoding::for_label(l.as_bytes()))
        && usable(declared)
    {
        if declared == UTF_8 && std::str::from_utf8(body).is_err() {
            return header_charset(content_type)
                .filter(|e| *e != UTF_8 && usable(e))
                .unwrap_or(WINDOWS_1252);
        }
        return declared;
    }
    if std::str::from_utf8(body).is_ok() {
        return UTF_8;
    }
    header_charset(content_type)
        .filter(|e| *e != UTF_8 && usable(e))
        .unwrap_or(WINDOWS_1252)
}

/// The `charset` parameter of a `Content-Type` header.
fn header_charset(content_type: Option<&str>) -> Option<&'static Encoding> {
    content_type?.split(';').skip(1).find_map(|param| {
        let (name, value) = param.split_once('=')?;
        if !name.trim().eq_ignore_ascii_case("charset") {
            return None;
        }
        Encoding::for_label(value.trim().trim_matches(['"', '\'']).as_bytes())
    })
}

/// The `encoding` of the XML declaration near the start of `body`.
fn prolog_encoding(body: &[u8]) -> Option<String> {
    // Not only at the very start: servers prepend blank lines, PHP notices and other junk.
    let head = &body[..body.len().min(1024)];
    let start = head
        .windows(6)
        .position(|w| w.starts_with(b"<?xml") && matches!(w[5], b' ' | b'\t' | b'\r' | b'\n'))?;
    let head = &head[start..];
    let end = head.windows(2).position(|w| w == b"?>")?;
    let decl = std::str::from_utf8(&head[..end]).ok()?;
    let pos = find_attr(decl, "encoding")?;
    let after = &decl[pos..];
    let eq = after.find('=')?;
    let value = after[eq + 1..].trim_start();
    let quote = value.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let close = value[1..].find(quote)?;
    Some(value[1..1 + close].to_string())
}

/// After transcoding to UTF-8, no XML declaration may name another encoding, or the XML reader
/// would decode the text a second time (and quick-xml, asked to switch encodings after its
/// first bytes, panics: a declaration after some garbage, or a second one, was enough). The
/// declaration at the very start becomes a plain `<?xml version="1.0"?>`; any other one, which
/// XML allows nowhere but the start, is dropped so the rest can still be read.
///
/// The declarations are found by quick-xml's own tokeniser (a string reader, which never
/// switches encodings), so what counts as one here is exactly what feed-rs's reader would see:
/// a `<?xml` inside a comment, a CDATA section or a quoted attribute is left alone. Returns
/// `None` when there is nothing to change.
fn neutralise_declarations(text: &str) -> Option<String> {
    use quick_xml::events::Event;
    if !text.contains("<?xml") {
        return None;
    }
    let mut reader = quick_xml::Reader::from_str(text);
    // Lenient where feed-rs's reader may be, so this one never stops before it does.
    reader.config_mut().check_end_names = false;
    reader.config_mut().allow_unmatched_ends = true;
    let mut spans = Vec::new();
    // Where this reader gave up, if it did; feed-rs's may read on (it is laxer about `&`).
    let mut stopped_at = None;
    loop {
        let start = usize::try_from(reader.buffer_position()).ok()?;
        match reader.read_event() {
            Ok(Event::Eof) => break,
            Err(_) => {
                stopped_at = Some(start.min(text.len()));
                break;
            }
            Ok(Event::Decl(_)) => {
                let end = usize::try_from(reader.buffer_position()).ok()?;
                spans.push((start, end.min(text.len())));
            }
            Ok(_) => {}
        }
    }
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for (start, end) in spans {
        let at_start = text[..start]
            .chars()
            .all(|c| c.is_whitespace() || c == '\u{FEFF}');
        out.push_str(text.get(copied..start)?);
        if at_start {
            out.push_str("<?xml version=\"1.0\"?>");
        }
        copied = end;
    }
    let mut changed = copied > 0;
    if let Some(stopped) = stopped_at {
        // Past that point nothing can be told apart, so every `<?xml` that could open a
        // declaration is turned into an ordinary processing instruction (`<?xml-…`), which
        // feed-rs skips. Inserting, not removing, so no new `<?xml` can form from the pieces.
        let tail = text.get(copied.max(stopped)..)?;
        out.push_str(text.get(copied..copied.max(stopped))?);
        let mut rest = tail;
        while let Some(found) = rest.find("<?xml") {
            let after = &rest[found + 5..];
            out.push_str(&rest[..found + 5]);
            if after.is_empty()
                || after.starts_with("?>")
                || after.starts_with([' ', '\t', '\r', '\n'])
            {
                out.push('-');
                changed = true;
            }
            rest = after;
        }
        out.push_str(rest);
        copied = text.len();
    }
    if !changed {
        return None;
    }
    out.push_str(&text[copied..]);
    Some(out)
}

/// Converts feed-rs's model into our items.
fn convert(
    feed: feed_rs::model::Feed,
    base: Option<&str>,
    sources: &[Option<String>],
) -> ParsedFeed {
    let title = feed
        .title
        .as_ref()
        .map(|t| html_to_line(&t.content))
        .filter(|t| !t.is_empty());
    let ttl = feed
        .ttl
        .filter(|m| *m > 0)
        .map(|minutes| Duration::from_secs(u64::from(minutes) * 60));
    let count = feed.entries.len();
    let items = feed
        .entries
        .into_iter()
        .enumerate()
        .filter_map(|(index, entry)| {
            // Only trust the side scan when it saw exactly the entries feed-rs saw.
            let source = if sources.len() == count {
                sources[index].as_deref()
            } else {
                None
            };
            convert_entry(entry, title.as_deref(), source, base)
        })
        .collect();
    ParsedFeed { title, items, ttl }
}

fn convert_entry(
    entry: feed_rs::model::Entry,
    feed_title: Option<&str>,
    item_source: Option<&str>,
    base: Option<&str>,
) -> Option<Item> {
    let title = entry
        .title
        .as_ref()
        .map(|t| html_to_line(&t.content))
        .unwrap_or_default();
    let summary = entry
        .summary
        .as_ref()
        .map(|t| html_to_text(&t.content))
        .unwrap_or_default();
    let content = entry
        .content
        .as_ref()
        .and_then(|c| c.body.as_deref())
        .map(html_to_text)
        .unwrap_or_default();
    let link = pick_link(&entry.links, base);
    if title.is_empty() && summary.is_empty() && content.is_empty() && link.is_none() {
        // Nothing a person could read or open: not an item.
        return None;
    }
    let published = entry
        .published
        .or(entry.updated)
        .and_then(|t| Timestamp::new(t.timestamp(), t.timestamp_subsec_nanos() as i32).ok());
    let source = item_source
        .or(entry.source.as_deref())
        .map(html_to_line)
        .filter(|s| !s.is_empty())
        .or_else(|| feed_title.map(str::to_string));
    let dedup_key = dedup_key(&entry.id, link.as_deref(), &title, &summary, &content);
    Some(Item {
        dedup_key,
        title,
        summary,
        content,
        link,
        published,
        source,
    })
}

/// The outlet named by each item's `<source>` (RSS 2: `<source url="…">Reuters</source>`; Atom:
/// `<source><title>…</title></source>`), one slot per item/entry in document order. feed-rs drops
/// this element, and aggregators (Google News and the like) name the real outlet only there.
/// Returns an empty list when the document cannot be scanned.
fn item_sources(text: &str) -> Vec<Option<String>> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(text);
    let mut sources: Vec<Option<String>> = Vec::new();
    // Depth of the current item/entry, of its <source>, and whether we are in the source's title.
    let mut depth = 0usize;
    let mut item_depth: Option<usize> = None;
    let mut source_depth: Option<usize> = None;
    let mut capture: Option<String> = None;
    loop {
        let event = match reader.read_event() {
            Ok(event) => event,
            Err(_) => return Vec::new(),
        };
        match event {
            Event::Start(start) => {
                depth += 1;
                let local = start.local_name();
                let name = local.as_ref();
                match (item_depth, source_depth) {
                    (None, _) if name == "item" || name == "entry" => {
                        item_depth = Some(depth);
                        sources.push(None);
                    }
                    (Some(item), None) if name == "source" && depth == item + 1 => {
                        source_depth = Some(depth);
                        capture = Some(String::new());
                    }
                    (Some(_), Some(source)) if name == "title" && depth == source + 1 => {
                        // Atom: the source's title is the outlet; drop any other text.
                        capture = Some(String::new());
                    }
                    _ => {}
                }
            }
            Event::End(_) => {
                if source_depth == Some(depth) {
                    if let (Some(text), Some(slot)) = (capture.take(), sources.last_mut()) {
                        let text = text.trim();
                        if !text.is_empty() && slot.is_none() {
                            *slot = Some(text.to_string());
                        }
                    }
                    source_depth = None;
                }
                if item_depth == Some(depth) {
                    item_depth = None;
                }
                depth = depth.saturating_sub(1);
            }
            Event::Text(t) if source_depth.is_some() => {
                if let Some(buf) = capture.as_mut() {
                    buf.push_str(&t);
                }
            }
            Event::CData(t) if source_depth.is_some() => {
                if let Some(buf) = capture.as_mut() {
                    buf.push_str(&t);
                }
            }
            Event::GeneralRef(r) if source_depth.is_some() => {
                if let Some(buf) = capture.as_mut() {
                    buf.push('&');
                    buf.push_str(&r);
                    buf.push(';');
                }
            }
            Event::Eof => return sources,
            _ => {}
        }
    }
}

/// The article link: the `alternate` (or unlabelled) link, else the first safe one.
fn pick_link(links: &[feed_rs::model::Link], base: Option<&str>) -> Option<String> {
    let preferred = links
        .iter()
        .filter(|l| l.rel.as_deref().is_none_or(|r| r == "alternate"))
        .find_map(|l| safe_link(&l.href, base));
    preferred.or_else(|| {
        links
            .iter()
            .filter(|l| !matches!(l.rel.as_deref(), Some("self" | "enclosure" | "hub")))
            .find_map(|l| safe_link(&l.href, base))
    })
}

/// Identity of an item within its feed: the id the feed gave (feed-rs's invented ids are
/// switched off, so an empty id means "none"), else the link, else a stable hash of the text.
/// The hash uses SipHash with fixed keys so keys survive Rust upgrades and restarts.
fn dedup_key(id: &str, link: Option<&str>, title: &str, summary: &str, content: &str) -> String {
    let id: String = id.trim().chars().filter(|c| !c.is_control()).collect();
    if !id.is_empty() {
        return id;
    }
    if let Some(link) = link {
        return link.to_string();
    }
    let mut hasher = SipHasher13::new_with_keys(0x7374_6f72_7977_6174, 0x6368_2d69_7465_6d73);
    hasher.write(title.as_bytes());
    hasher.write(&[0]);
    hasher.write(if summary.is_empty() { content } else { summary }.as_bytes());
    let hash = hasher.finish128();
    format!("hash:{:016x}{:016x}", hash.h1, hash.h2)
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "https://news.example.com/feed.xml";

    fn parse(body: &[u8]) -> ParsedFeed {
        parse_feed(body, None, URL).unwrap()
    }

    #[test]
    fn rss2_items_are_normalised() {
        let feed = parse(
            br#"<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>Example &amp; News</title><ttl>30</ttl>
<item><title>US and China &lt;b&gt;meet&lt;/b&gt;</title><link>/world/1</link>
<guid isPermaLink="false">id-1</guid><pubDate>Tue, 12 Mar 2024 10:00:00 GMT</pubDate>
<description>&lt;p&gt;Talks&lt;/p&gt;&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt; resume</description>
<source url="https://wire.example.org/rss">Wire Service</source></item>
<item><title>Second</title><link>javascript:alert(1)</link></item>
</channel></rss>"#,
        );
        assert_eq!(feed.title.as_deref(), Some("Example & News"));
        assert_eq!(feed.ttl, Some(Duration::from_secs(1800)));
        assert_eq!(feed.items.len(), 2);
        let first = &feed.items[0];
        assert_eq!(first.dedup_key, "id-1");
        assert_eq!(first.title, "US and China meet");
        assert_eq!(first.summary, "Talks\nresume");
        assert_eq!(
            first.link.as_deref(),
            Some("https://news.example.com/world/1")
        );
        assert_eq!(
            first.published,
            Some("2024-03-12T10:00:00Z".parse().unwrap())
        );
        assert_eq!(first.source.as_deref(), Some("Wire Service"));
        let second = &feed.items[1];
        assert_eq!(second.link, None, "javascript: links are dropped");
        assert_eq!(second.source.as_deref(), Some("Example & News"));
        assert!(second.dedup_key.starts_with("hash:"));
    }

    #[test]
    fn rss1_rdf_parses() {
        let feed = parse(
            br#"<?xml version="1.0"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/"
 xmlns:dc="http://purl.org/dc/elements/1.1/">
<channel rdf:about="https://news.example.com/"><title>RDF News</title><link>https://news.example.com/</link></channel>
<item rdf:about="https://news.example.com/a"><title>Item A</title><link>https://news.example.com/a</link>
<dc:date>2024-03-12T10:00:00+01:00</dc:date></item>
</rdf:RDF>"#,
        );
        assert_eq!(feed.title.as_deref(), Some("RDF News"));
        assert_eq!(feed.items.len(), 1);
        assert_eq!(feed.items[0].title, "Item A");
        assert_eq!(
            feed.items[0].link.as_deref(),
            Some("https://news.example.com/a")
        );
        assert_eq!(
            feed.items[0].published,
            Some("2024-03-12T09:00:00Z".parse().unwrap())
        );
    }

    #[test]
    fn atom_parses_with_relative_links_and_html_content() {
        let feed = parse(
            br#"<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title type="html">Atom &amp;amp; Co</title>
<id>urn:feed</id><updated>2024-03-12T10:00:00Z</updated>
<entry><id>urn:uuid:1</id><title>Tariff news</title><updated>2024-03-12T10:00:00Z</updated>
<link rel="alternate" href="/posts/1"/><link rel="self" href="/self/1"/>
<summary type="html">&lt;em&gt;short&lt;/em&gt;</summary>
<content type="html">&lt;p&gt;Full&lt;/p&gt;&lt;style&gt;x{}&lt;/style&gt;&lt;p&gt;text&lt;/p&gt;</content></entry>
</feed>"#,
        );
        assert_eq!(feed.items.len(), 1);
        let item = &feed.items[0];
        assert_eq!(item.dedup_key, "urn:uuid:1");
        assert_eq!(
            item.link.as_deref(),
            Some("https://news.example.com/posts/1")
        );
        assert_eq!(item.summary, "short");
        assert_eq!(item.content, "Full\ntext");
        assert_eq!(
            item.published,
            Some("2024-03-12T10:00:00Z".parse().unwrap())
        );
    }

    #[test]
    fn json_feed_parses() {
        let feed = parse(
            br#"{"version":"https://jsonfeed.org/version/1.1","title":"JSON News",
            "items":[{"id":"j1","url":"https://news.example.com/j1","title":"Hello &amp; bye",
            "content_html":"<p>Body</p><script>x()</script>","date_published":"2024-03-12T10:00:00Z"}]}"#,
        );
        assert_eq!(feed.title.as_deref(), Some("JSON News"));
        let item = &feed.items[0];
        assert_eq!(item.dedup_key, "j1");
        assert_eq!(item.title, "Hello & bye");
        assert_eq!(item.content, "Body");
        assert_eq!(item.link.as_deref(), Some("https://news.example.com/j1"));
    }

    fn latin_feed(prolog: &str) -> Vec<u8> {
        let mut body = prolog.as_bytes().to_vec();
        body.extend_from_slice(b"<rss version=\"2.0\"><channel><title>Caf\xe9</title><item><title>Pr\xe9cis \x93quoted\x94</title><link>https://e.com/1</link></item></channel></rss>");
        body
    }

    #[test]
    fn single_byte_encodings_with_and_without_declaration() {
        // Declared in the prolog.
        let declared = latin_feed("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>");
        let feed = parse(&declared);
        assert_eq!(feed.title.as_deref(), Some("Café"));
        assert_eq!(feed.items[0].title, "Précis “quoted”");
        let declared = latin_feed("<?xml version='1.0' encoding='windows-1252'?>");
        assert_eq!(parse(&declared).items[0].title, "Précis “quoted”");
        // Declared only in the HTTP header.
        let undeclared = latin_feed("<?xml version=\"1.0\"?>");
        let feed = parse_feed(
            &undeclared,
            Some("application/rss+xml; charset=ISO-8859-1"),
            URL,
        )
        .unwrap();
        assert_eq!(feed.items[0].title, "Précis “quoted”");
        // Declared nowhere: windows-1252 fallback.
        let feed = parse_feed(&latin_feed(""), Some("text/xml"), URL).unwrap();
        assert_eq!(feed.title.as_deref(), Some("Café"));
        assert_eq!(feed.items[0].title, "Précis “quoted”");
        // Wrongly declared UTF-8.
        let lying = latin_feed("<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
        assert_eq!(parse(&lying).title.as_deref(), Some("Café"));
    }

    fn utf16(text: &str, big_endian: bool) -> Vec<u8> {
        let mut out = if big_endian {
            vec![0xFE, 0xFF]
        } else {
            vec![0xFF, 0xFE]
        };
        for unit in text.encode_utf16() {
            let bytes = if big_endian {
                unit.to_be_bytes()
            } else {
                unit.to_le_bytes()
            };
            out.extend_from_slice(&bytes);
        }
        out
    }

    #[test]
    fn utf16_with_bom_and_utf8_bom() {
        let xml = "<?xml version=\"1.0\" encoding=\"UTF-16\"?><rss version=\"2.0\"><channel><title>Ünïcode</title><item><title>日本 news</title><guid>g</guid></item></channel></rss>";
        for big_endian in [false, true] {
            let feed = parse(&utf16(xml, big_endian));
            assert_eq!(feed.title.as_deref(), Some("Ünïcode"));
            assert_eq!(feed.items[0].title, "日本 news");
        }
        let mut bom = b"\xEF\xBB\xBF".to_vec();
        bom.extend_from_slice(xml.replace("UTF-16", "UTF-8").as_bytes());
        assert_eq!(parse(&bom).items[0].title, "日本 news");
    }

    #[test]
    fn misplaced_xml_declarations_are_dropped_not_fatal() {
        // Minimised by the property tests: feed-rs/quick-xml once panicked on this.
        let body = br#"<feed xmlns="http://www.w3.org/2005/Atom"><?xml version="1.0" encoding="UTF-8"?><?xml version="1.0" encoding="ISO-8859-1"?>"#;
        let err = parse_feed(body, None, "https://a.example/f").unwrap_err();
        assert_eq!(err.kind(), "malformed_xml", "{err}");
        // A declaration after whitespace, a BOM or a stray line of garbage (a PHP notice), and a
        // second one later in the document: the feed is read.
        let feed_text = "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><rss version=\"2.0\">\
            <channel><?xml version=\"1.0\" encoding=\"UTF-16\"?><item><title>Café</title>\
            <description><![CDATA[<?xml version=\"1.0\"?> kept]]></description></item>\
            </channel></rss>";
        let latin1 = |prefix: &str| {
            WINDOWS_1252
                .encode(&format!("{prefix}{feed_text}"))
                .0
                .to_vec()
        };
        let bodies = [
            ("none", latin1("")),
            ("whitespace", latin1("\n\n  ")),
            ("garbage", latin1("Notice: undefined index in feed.php\n")),
            ("bom", [b"\xEF\xBB\xBF", feed_text.as_bytes()].concat()),
        ];
        for (prefix, body) in bodies {
            let feed = parse_feed(&body, None, "https://a.example/f")
                .unwrap_or_else(|e| panic!("{prefix:?}: {e}"));
            assert_eq!(feed.items.len(), 1, "{prefix:?}");
            assert_eq!(feed.items[0].title, "Café", "{prefix:?}");
            assert_eq!(feed.items[0].summary, "kept", "{prefix:?}");
        }
    }

    #[test]
    fn declarations_are_neutralised_outside_comments_and_cdata() {
        let fixed = |s: &str| neutralise_declarations(s).unwrap_or_else(|| s.to_string());
        assert_eq!(
            fixed("<?xml version=\"1.0\" encoding=\"windows-1252\"?><rss/>"),
            "<?xml version=\"1.0\"?><rss/>"
        );
        assert_eq!(fixed("x<?xml version='1.0'?><rss/>"), "x<rss/>");
        assert_eq!(fixed("<a><?xml?></a>"), "<a></a>");
        // Found by the property tests: the CDATA opener is inside a quoted attribute.
        assert_eq!(
            fixed(
                "<\"<![CDATA[\"<content type=\"html\"><?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>"
            ),
            "<\"<![CDATA[\"<content type=\"html\">"
        );
        // Past a point this reader cannot read, every declaration is disarmed.
        assert_eq!(
            fixed(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>&<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><?xml?>"
            ),
            "<?xml version=\"1.0\"?>&<?xml- version=\"1.0\" encoding=\"ISO-8859-1\"?><?xml-?>"
        );
        assert_eq!(
            fixed("<rss><?xml version='1.0'"),
            "<rss><?xml- version='1.0'"
        );
        let untouched = [
            "<?xml-stylesheet href=\"a.xsl\"?><rss/>",
            "<rss><!-- <?xml version='1.0'?> --><![CDATA[<?xml encoding='x'?>]]></rss>",
            "<rss a=\"<?xml version='1.0'?>\"/>",
        ];
        for text in untouched {
            assert_eq!(neutralise_declarations(text), None, "{text}");
        }
    }

    #[test]
    fn utf16_without_a_byte_order_mark_is_recognised() {
        let xml = "<rss version=\"2.0\"><channel><item><title>Zoll auf Fentanyl-Vorstufen – ÄÖÜ</title><guid>1</guid></item></channel></rss>";
        let le: Vec<u8> = xml.encode_utf16().flat_map(u16::to_le_bytes).collect();
        let be: Vec<u8> = xml.encode_utf16().flat_map(u16::to_be_bytes).collect();
        for (body, header) in [
            (&le, None),
            (&be, None),
            (&le, Some("application/rss+xml; charset=utf-16le")),
            (&be, Some("application/rss+xml; charset=UTF-16BE")),
        ] {
            let feed = parse_feed(body, header, URL).unwrap_or_else(|e| panic!("{header:?}: {e}"));
            assert_eq!(feed.items[0].title, "Zoll auf Fentanyl-Vorstufen – ÄÖÜ");
        }
        // The header decides for a body whose first character is not ASCII.
        let odd = "\u{2003}<rss version=\"2.0\"><channel><item><title>x</title><guid>1</guid></item></channel></rss>";
        let body: Vec<u8> = odd.encode_utf16().flat_map(u16::to_be_bytes).collect();
        let feed = parse_feed(&body, Some("text/xml; charset=utf-16be"), URL).unwrap();
        assert_eq!(feed.items[0].title, "x");
        // A UTF-16 header on a plain UTF-8 body is a server's mistake, not the truth.
        let feed = parse_feed(xml.as_bytes(), Some("text/xml; charset=utf-16"), URL).unwrap();
        assert_eq!(feed.items[0].title, "Zoll auf Fentanyl-Vorstufen – ÄÖÜ");
    }

    #[test]
    fn html_entities_in_titles_are_decoded() {
        let feed = parse(
            b"<rss version=\"2.0\"><channel><title>A&nbsp;B</title><item><title>Caf&eacute;&nbsp;talks &#8211; &amp;more&hellip;</title><guid>1</guid></item></channel></rss>",
        );
        assert_eq!(feed.title.as_deref(), Some("A B"));
        assert_eq!(feed.items[0].title, "Café talks – &more…");
    }

    #[test]
    fn items_without_guid_get_stable_keys() {
        let body = b"<rss version=\"2.0\"><channel><title>T</title>
            <item><title>Linked</title><link>https://e.com/a</link></item>
            <item><title>Bare</title><description>Only text</description></item>
            </channel></rss>";
        let first = parse(body);
        let second = parse(body);
        assert_eq!(first.items[0].dedup_key, "https://e.com/a");
        assert!(first.items[1].dedup_key.starts_with("hash:"));
        let keys = |f: &ParsedFeed| {
            f.items
                .iter()
                .map(|i| i.dedup_key.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(keys(&first), keys(&second));
        // Pinned: the key must not change between builds or Rust versions.
        assert_eq!(
            first.items[1].dedup_key,
            dedup_key("", None, "Bare", "Only text", "")
        );
        assert_eq!(first.items[1].dedup_key.len(), "hash:".len() + 32);
    }

    #[test]
    fn unparseable_dates_fall_back_or_give_none() {
        let body = b"<rss version=\"2.0\"><channel><title>T</title>
            <item><title>a</title><guid>1</guid><pubDate>Thursday, 14 March 2024 10:00 CET</pubDate></item>
            <item><title>b</title><guid>2</guid><pubDate>2024-03-14 10:00:00</pubDate></item>
            <item><title>c</title><guid>3</guid><pubDate>yesterday-ish</pubDate></item>
            </channel></rss>";
        let feed = parse(body);
        assert_eq!(
            feed.items[0].published,
            Some("2024-03-14T09:00:00Z".parse().unwrap())
        );
        assert_eq!(
            feed.items[1].published,
            Some("2024-03-14T10:00:00Z".parse().unwrap())
        );
        assert_eq!(feed.items[2].published, None);
    }

    #[test]
    fn date_fallback_formats() {
        let cases = [
            ("Tue, 12 Mar 2024 10:00:00 +0000", "2024-03-12T10:00:00Z"),
            ("Tue, 12 Mar 2024 10:00:00 UTC", "2024-03-12T10:00:00Z"),
            ("Tues, 12 March 2024 9:00:00 EST", "2024-03-12T14:00:00Z"),
            ("12 Mar 2024 10:00 +05:30", "2024-03-12T04:30:00Z"),
            ("Tue, 12 Mar 2024 10:00:00 GMT+0100", "2024-03-12T09:00:00Z"),
            ("2024-03-12T10:00:00+0000", "2024-03-12T10:00:00Z"),
            ("2024-03-12T10:00:00.123Z", "2024-03-12T10:00:00.123Z"),
            ("2024-03-12", "2024-03-12T00:00:00Z"),
            ("March 12, 2024", "2024-03-12T00:00:00Z"),
            (
                "Tue, 12 Mar 2024 10:00:00 GMT (Coordinated Universal Time)",
                "2024-03-12T10:00:00Z",
            ),
        ];
        for (raw, want) in cases {
            assert_eq!(parse_date(raw), Some(want.parse().unwrap()), "{raw}");
        }
        assert_eq!(parse_date("not a date"), None);
        assert_eq!(parse_date(""), None);
    }

    #[test]
    fn rss_without_or_with_odd_version_is_patched() {
        for root in [
            "<rss>",
            "<rss version=\"2.01\">",
            "<rss xmlns:dc=\"x\" version='0.94'>",
        ] {
            let body = format!(
                "<?xml version=\"1.0\"?>{root}<channel><title>V</title><item><title>x</title><guid>1</guid></item></channel></rss>"
            );
            let feed = parse(body.as_bytes());
            assert_eq!(feed.items.len(), 1, "{root}");
        }
    }

    #[test]
    fn clear_errors_for_bodies_that_are_not_feeds() {
        assert!(matches!(parse_feed(b"", None, URL), Err(ParseError::Empty)));
        assert!(matches!(
            parse_feed(b" \n\t", None, URL),
            Err(ParseError::Empty)
        ));
        let html =
            b"<!DOCTYPE html><html><head><title>Home</title></head><body><p>Hi<br></body></html>";
        let err = parse_feed(html, Some("text/html"), URL).unwrap_err();
        assert!(matches!(err, ParseError::HtmlPage), "{err:?}");
        assert!(err.to_string().contains("look for its RSS/Atom link"));
        let xhtml =
            b"<?xml version=\"1.0\"?><html xmlns=\"http://www.w3.org/1999/xhtml\"><body/></html>";
        assert!(matches!(
            parse_feed(xhtml, None, URL),
            Err(ParseError::HtmlPage)
        ));
        let broken = b"<rss version=\"2.0\">\n<channel><title>x</channel></rss>";
        let err = parse_feed(broken, None, URL).unwrap_err();
        assert!(matches!(err, ParseError::Malformed { .. }), "{err:?}");
        assert!(err.to_string().contains("at line 2, column"), "{err}");
        assert_eq!(err.kind(), "malformed_xml");
        let other = b"<?xml version=\"1.0\"?><catalog><book/></catalog>";
        let err = parse_feed(other, None, URL).unwrap_err();
        assert!(err.to_string().contains("<catalog>"), "{err}");
        assert!(matches!(
            parse_feed(b"{\"a\":1}", None, URL),
            Err(ParseError::Json { .. })
        ));
        assert!(matches!(
            parse_feed(b"plain words", None, URL),
            Err(ParseError::NotAFeed { .. })
        ));
    }

    #[test]
    fn atom_source_and_fallback_keys() {
        let feed = parse(
            br#"<feed xmlns="http://www.w3.org/2005/Atom"><title>Aggregator</title>
<entry><id>e1</id><title>Copied</title><source><id>s</id><title>Origin Times</title></source></entry>
<entry><title>No id</title><link href="https://e.com/x"/></entry>
</feed>"#,
        );
        assert_eq!(feed.items[0].source.as_deref(), Some("Origin Times"));
        assert_eq!(feed.items[1].source.as_deref(), Some("Aggregator"));
        assert_eq!(feed.items[1].dedup_key, "https://e.com/x");
        // An empty guid is no guid.
        let feed = parse(
            b"<rss version=\"2.0\"><channel><item><title>t</title><guid> </guid><link>https://e.com/y</link></item></channel></rss>",
        );
        assert_eq!(feed.items[0].dedup_key, "https://e.com/y");
        // Nothing readable: not an item.
        let feed =
            parse(b"<rss version=\"2.0\"><channel><item><guid>z</guid></item></channel></rss>");
        assert!(feed.items.is_empty());
    }

    #[test]
    fn feed_served_as_html_is_still_parsed_or_reported_as_malformed() {
        let ok = b"<rss version=\"2.0\"><channel><item><title>t</title><guid>1</guid></item></channel></rss>";
        assert_eq!(
            parse_feed(ok, Some("text/html"), URL).unwrap().items.len(),
            1
        );
        let broken = b"<rss version=\"2.0\"><channel><item><title>t</item></channel></rss>";
        let err = parse_feed(broken, Some("text/html; charset=utf-8"), URL).unwrap_err();
        assert_eq!(err.kind(), "malformed_xml", "{err}");
    }

    #[test]
    fn hostile_feeds_never_panic() {
        let pieces = [
            "<rss",
            "<rss version=\"2.0\">",
            "<channel>",
            "</channel>",
            "<item>",
            "</item>",
            "<title>",
            "</title>",
            "<guid>",
            "</guid>",
            "<source",
            "</source>",
            "<link>",
            "</link>",
            "<pubDate>",
            "</pubDate>",
            "Tue, 1 Mar 2024",
            "<?xml",
            "encoding=\"",
            "?>",
            "\"",
            "&nbsp;",
            "&",
            "<![CDATA[",
            "]]>",
            ">",
            "<",
            "{",
            "}",
            "\"items\"",
            "é",
            "\u{FEFF}",
            "<feed>",
            "<entry>",
            "</entry>",
            " ",
            "=",
            "'",
            "<!--",
            "-->",
        ];
        for seed in 0..300 {
            let input = crate::feeds::normalize::tests::junk(seed, &pieces, 120);
            let _ = parse_feed(input.as_bytes(), Some("text/xml; charset=x"), URL);
            let mut bytes = input.into_bytes();
            bytes.insert(0, 0xFF);
            let _ = parse_feed(&bytes, None, "not a url");
        }
        for raw in [
            "",
            "-0",
            "Mon, 99 Foo 2024 99:99:99 +9999",
            "\u{0}",
            "日本 (",
            "+:",
        ] {
            let _ = parse_date(raw);
        }
    }
}
