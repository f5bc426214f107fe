//! Making untrusted feed text and links plain and safe.
//!
//! Feed text is HTML of unknown quality written by strangers. Everything the crate stores as text
//! goes through [`html_to_text`] (or [`html_to_line`] for one-line fields such as titles) and every
//! link goes through [`safe_link`], so later stages never see markup, scripts or hostile URLs.
//! The code is a small hand-written scanner rather than a full HTML5 parser: it must stay cheap to
//! build for fuzzing and benches, and it only needs the text, never the tree.

use unicode_normalization::UnicodeNormalization;
use url::Url;

/// Elements whose content is never text a reader should see (code, styling, embedded objects).
const SKIPPED_ELEMENTS: &[&str] = &[
    "script", "style", "noscript", "template", "iframe", "svg", "object", "math", "textarea",
];

/// Elements that start a new line of text when opened or closed.
const BLOCK_ELEMENTS: &[&str] = &[
    "address",
    "article",
    "aside",
    "blockquote",
    "br",
    "caption",
    "dd",
    "details",
    "dialog",
    "div",
    "dl",
    "dt",
    "fieldset",
    "figcaption",
    "figure",
    "footer",
    "form",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "header",
    "hgroup",
    "hr",
    "li",
    "main",
    "nav",
    "ol",
    "p",
    "pre",
    "section",
    "summary",
    "table",
    "tbody",
    "tfoot",
    "thead",
    "tr",
    "ul",
];

/// Elements that separate words without starting a line (table cells, images with no text).
const SPACING_ELEMENTS: &[&str] = &["td", "th", "img", "wbr"];

/// Longest link kept; anything longer is almost certainly junk or an attack on a later stage.
const MAX_LINK_LEN: usize = 8 * 1024;

/// Turns untrusted HTML (or plain text that may contain entities) into plain text.
///
/// Tags are removed; the content of elements that are never reading text (`script`, `style`,
/// `noscript`, `template`, `iframe`, `svg`, `object`, …) is dropped entirely; entities (named and
/// numeric) are decoded; block elements and `<br>` become line breaks; runs of whitespace collapse
/// to one space; empty lines are removed; control and invisible formatting characters (including
/// bidi overrides) are removed; the result is NFC-normalised. Broken HTML — unclosed tags, stray
/// `<`, comments, CDATA — never makes it fail: it always returns text, in time linear in the input.
pub fn html_to_text(html: &str) -> String {
    let raw = extract_text(html);
    tidy(&raw)
}

/// Like [`html_to_text`] but on one line: for titles and names, where line breaks mean nothing.
pub fn html_to_line(html: &str) -> String {
    html_to_text(html).replace('\n', " ")
}

/// Decodes HTML entities (`&amp;`, `&eacute;`, `&#233;`, `&#xE9;`) in `text`, leaving everything
/// else, including unknown or unterminated entities, as it is.
pub fn decode_entities(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find('&') {
        out.push_str(&rest[..pos]);
        rest = &rest[pos..];
        match decode_entity_at(rest) {
            Some((decoded, used)) => {
                out.push_str(&decoded);
                rest = &rest[used..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Resolves `raw` (possibly relative, possibly entity-encoded) against `base` and returns it only
/// when it is a safe absolute `http`/`https` URL, with any `user:password@` removed.
///
/// Every other scheme (`javascript:`, `data:`, `vbscript:`, `file:`, …) is refused, including
/// obfuscated spellings with mixed case, embedded whitespace or control characters, or entities:
/// the link is decoded and parsed the way a browser would before its scheme is checked, and the
/// check is an allow-list, so there is no spelling of a dangerous scheme that gets through.
pub fn safe_link(raw: &str, base: Option<&str>) -> Option<String> {
    let decoded = decode_entities(raw);
    // Browsers ignore control characters and whitespace inside a URL's scheme; removing them all
    // here makes `java\tscript:` and friends parse as what a browser would see.
    let cleaned: String = decoded
        .trim()
        .chars()
        .filter(|c| !c.is_control() && !is_invisible(*c))
        .collect();
    if cleaned.is_empty() || cleaned.len() > MAX_LINK_LEN {
        return None;
    }
    let parsed = match Url::parse(&cleaned) {
        Ok(url) => url,
        Err(url::ParseError::RelativeUrlWithoutBase) => {
            let base = Url::parse(base?).ok()?;
            base.join(&cleaned).ok()?
        }
        Err(_) => return None,
    };
    let mut url = parsed;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return None;
    }
    // Credentials in a stored link would leak to everyone who reads the digest.
    url.set_username("").ok()?;
    url.set_password(None).ok()?;
    Some(url.to_string())
}

/// Characters that render as nothing but can reorder or hide text (bidi overrides, zero-width
/// spaces, soft hyphens, BOMs); dropped so stored text looks like what it says.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{200B}'
            | '\u{200E}'
            | '\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}'
            | '\u{FEFF}'
    )
}

/// Decodes the entity at the start of `s` (which begins with `&`); returns the text and the
/// number of bytes consumed.
fn decode_entity_at(s: &str) -> Option<(String, usize)> {
    let body = &s[1..];
    // Entity names and numbers are short; bounding the search keeps a text full of `&` linear.
    let end = body.char_indices().take(40).find(|&(_, c)| c == ';')?.0;
    let name = &body[..end];
    let used = end + 2;
    if let Some(num) = name.strip_prefix('#') {
        let code = if let Some(hex) = num.strip_prefix(['x', 'X']) {
            u32::from_str_radix(hex, 16).ok()?
        } else {
            num.parse::<u32>().ok()?
        };
        return Some((numeric_char(code).to_string(), used));
    }
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    let resolved = quick_xml::escape::resolve_predefined_entity(name)?;
    Some((resolved.to_string(), used))
}

/// The character a numeric reference stands for, with the HTML5 rules for bad numbers: the C1
/// range means windows-1252 (what the author actually typed), and impossible values are U+FFFD.
fn numeric_char(code: u32) -> char {
    if (0x80..=0x9F).contains(&code) {
        let byte = [code as u8];
        let (decoded, _, _) = encoding_rs::WINDOWS_1252.decode(&byte);
        return decoded.chars().next().unwrap_or('\u{FFFD}');
    }
    if code == 0 {
        return '\u{FFFD}';
    }
    char::from_u32(code).unwrap_or('\u{FFFD}')
}

/// First pass: removes markup and decodes entities, marking block boundaries with `\n`.
fn extract_text(html: &str) -> String {
    // ASCII lowercasing keeps byte offsets identical, so searches in `lower` index into `html`.
    let lower = html.to_ascii_lowercase();
    let bytes = html.as_bytes();
    let mut out = String::with_capacity(html.len() / 2);
    let mut i = 0;
    let mut text_start = 0;
    let last_gt = bytes.iter().rposition(|b| *b == b'>').unwrap_or(0);
    while i < bytes.len() {
        if bytes[i] != b'<' {
            i += 1;
            continue;
        }
        out.push_str(&decode_entities(&html[text_start..i]));
        let rest = &lower[i..];
        let next = match bytes.get(i + 1) {
            Some(b) => *b,
            None => {
                out.push('<');
                i += 1;
                text_start = i;
                continue;
            }
        };
        if rest.starts_with("<!--") {
            i = find_from(&lower, i + 4, "-->").map_or(bytes.len(), |p| p + 3);
        } else if rest.starts_with("<![cdata[") {
            let start = i + 9;
            let end = find_from(&lower, start, "]]>");
            // CDATA content is literal text, not markup.
            out.push_str(&html[start..end.unwrap_or(bytes.len())]);
            i = end.map_or(bytes.len(), |p| p + 3);
        } else if next == b'!' || next == b'?' {
            i = find_from(&lower, i, ">").map_or(bytes.len(), |p| p + 1);
        } else if i > last_gt {
            // No `>` anywhere after this point, so no tag can end: the rest is text
            // (`x<y matters`). Browsers would drop it, but losing words helps nobody.
            out.push('<');
            i += 1;
        } else if next == b'/' && bytes.get(i + 2).is_some_and(u8::is_ascii_alphabetic) {
            let name = tag_name(&lower[i + 2..]);
            mark_boundary(&mut out, name);
            i = find_from(&lower, i, ">").map_or(bytes.len(), |p| p + 1);
        } else if next.is_ascii_alphabetic() {
            let name = tag_name(&lower[i + 1..]);
            let (tag_end, self_closing) = end_of_start_tag(bytes, i + 1 + name.len());
            i = tag_end;
            if SKIPPED_ELEMENTS.contains(&name) && !self_closing {
                i = skip_element_content(&lower, i, name);
                out.push(' ');
            } else {
                mark_boundary(&mut out, name);
            }
        } else {
            // A `<` that starts no tag (`a < b`) is text.
            out.push('<');
            i += 1;
        }
        text_start = i;
    }
    if text_start < bytes.len() {
        out.push_str(&decode_entities(&html[text_start..]));
    }
    out
}

/// Appends the separator an element implies.
fn mark_boundary(out: &mut String, name: &str) {
    if BLOCK_ELEMENTS.contains(&name) {
        out.push('\n');
    } else if SPACING_ELEMENTS.contains(&name) {
        out.push(' ');
    }
}

/// The tag name at the start of `s` (already lowercased).
fn tag_name(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == ':' || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// Finds the `>` closing a start tag, honouring quoted attribute values (which may contain `>`).
/// Returns the index after it and whether the tag was self-closing.
///
/// Quote tracking gives up after a few KiB (an unbalanced quote would otherwise make every later
/// `<` rescan the rest of the input); the first `>` then ends the tag.
fn end_of_start_tag(bytes: &[u8], start: usize) -> (usize, bool) {
    const QUOTE_SCAN_LIMIT: usize = 4096;
    let mut quote: Option<u8> = None;
    let mut prev = 0u8;
    let mut i = start;
    while i < bytes.len() && i - start < QUOTE_SCAN_LIMIT {
        let b = bytes[i];
        match quote {
            Some(q) if b == q => quote = None,
            Some(_) => {}
            // Only a quote right after `=` opens a value; elsewhere it is junk to step over.
            None if (b == b'"' || b == b'\'') && prev == b'=' => quote = Some(b),
            None if b == b'>' => return (i + 1, prev == b'/'),
            None => {}
        }
        if !b.is_ascii_whitespace() {
            prev = b;
        }
        i += 1;
    }
    match bytes[start.min(bytes.len())..]
        .iter()
        .position(|b| *b == b'>')
    {
        Some(p) => (start + p + 1, false),
        None => (bytes.len(), false),
    }
}

/// Skips to after `</name ...>`, or to the end when the element never closes (as browsers do for
/// raw-text elements).
fn skip_element_content(lower: &str, from: usize, name: &str) -> usize {
    let closing = format!("</{name}");
    let mut search = from;
    while let Some(pos) = find_from(lower, search, &closing) {
        let after = pos + closing.len();
        let boundary = lower.as_bytes().get(after).copied();
        if boundary.is_none_or(|b| b == b'>' || b == b'/' || b.is_ascii_whitespace()) {
            return find_from(lower, after, ">").map_or(lower.len(), |p| p + 1);
        }
        search = after;
    }
    lower.len()
}

/// `haystack[from..].find(needle)` as an absolute index.
fn find_from(haystack: &str, from: usize, needle: &str) -> Option<usize> {
    haystack.get(from..)?.find(needle).map(|p| p + from)
}

/// Second pass: normalises Unicode, removes control characters, collapses whitespace.
fn tidy(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut pending_space = false;
    let mut pending_newline = false;
    for c in raw.nfc() {
        if c == '\n' || c == '\u{2028}' || c == '\u{2029}' {
            pending_newline = true;
        } else if c.is_whitespace() {
            pending_space = true;
        } else if c.is_control() || is_invisible(c) {
            continue;
        } else {
            if !out.is_empty() {
                if pending_newline {
                    out.push('\n');
                } else if pending_space {
                    out.push(' ');
                }
            }
            pending_space = false;
            pending_newline = false;
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn strips_tags_and_collapses_whitespace() {
        assert_eq!(
            html_to_text("<p>Hello   <b>world</b></p>\n\n<p> again </p>"),
            "Hello world\nagain"
        );
        assert_eq!(html_to_text("one<br>two<br/>three"), "one\ntwo\nthree");
        assert_eq!(html_to_line("<h1>Head</h1><p>line</p>"), "Head line");
        assert_eq!(html_to_text("<td>a</td><td>b</td>"), "a b");
    }

    #[test]
    fn drops_script_style_and_friends() {
        let html = r#"<p>Safe</p><script>alert("x")</script><style>p{color:red}</style>
            <noscript>no</noscript><iframe src="x">frame</iframe><svg><text>s</text></svg>
            <template>t</template><object>o</object>end"#;
        assert_eq!(html_to_text(html), "Safe\nend");
        assert_eq!(html_to_text("<SCRIPT type=x>bad()</ScRiPt >ok"), "ok");
        assert_eq!(html_to_text("<script>never closed"), "");
        assert_eq!(html_to_text("<script>a('</scriptx>')</script>b"), "b");
    }

    #[test]
    fn drops_event_handler_attributes_with_the_tag() {
        let html =
            r#"<img src=x onerror="alert('>')">Caption <a href="javascript:x" onclick=y>link</a>"#;
        assert_eq!(html_to_text(html), "Caption link");
    }

    #[test]
    fn decodes_entities() {
        assert_eq!(
            html_to_text("Caf&eacute;&nbsp;&amp; bar &#233; &#xE9; &#x1F600; &#150;"),
            "Café & bar é é 😀 –"
        );
        assert_eq!(
            html_to_text("AT&T &unknown; &#xZZ; & done"),
            "AT&T &unknown; &#xZZ; & done"
        );
        assert_eq!(html_to_text("&#0;x&#xD800;"), "\u{FFFD}x\u{FFFD}");
        // Escaped markup is text once decoded, not markup.
        assert_eq!(html_to_text("&lt;b&gt;bold&lt;/b&gt;"), "<b>bold</b>");
    }

    #[test]
    fn survives_broken_html() {
        assert_eq!(html_to_text("a < b and c > d"), "a < b and c > d");
        assert_eq!(html_to_text("x <!-- hidden --> y"), "x y");
        assert_eq!(html_to_text("x <!-- never closed"), "x");
        assert_eq!(html_to_text("<![CDATA[raw <b>]]> text"), "raw <b> text");
        assert_eq!(
            html_to_text("<p>unclosed <b>bold <i>it"),
            "unclosed bold it"
        );
        assert_eq!(html_to_text("text <a href='x"), "text <a href='x");
        assert_eq!(html_to_text("Why x<y matters"), "Why x<y matters");
        assert_eq!(html_to_text("<b>x</b> and a<b"), "x and a<b");
        assert_eq!(
            html_to_text(&format!("<img src=\"data:{}\">after", "A".repeat(10_000))),
            "after"
        );
        assert_eq!(html_to_text("<"), "<");
        assert_eq!(html_to_text("&"), "&");
        assert_eq!(html_to_text("<!DOCTYPE html><?php x ?>ok"), "ok");
        assert_eq!(html_to_text(""), "");
    }

    #[test]
    fn removes_control_and_invisible_characters_and_normalises() {
        assert_eq!(html_to_text("a\u{0}b\u{7}c\u{202E}d\u{200B}e"), "abcde");
        // "e" + combining acute composes to a single "é" (NFC).
        assert_eq!(html_to_text("Cafe\u{301}"), "Caf\u{e9}");
        assert_eq!(html_to_text("a\u{a0}\u{a0}b\t\tc"), "a b c");
    }

    #[test]
    fn safe_link_allows_http_and_resolves_relative() {
        let base = Some("https://example.com/feeds/rss.xml");
        assert_eq!(
            safe_link("/news/1", base).as_deref(),
            Some("https://example.com/news/1")
        );
        assert_eq!(
            safe_link("http://user:pw@example.org/a?b=1&amp;c=2", None).as_deref(),
            Some("http://example.org/a?b=1&c=2")
        );
        assert_eq!(safe_link("relative", None), None);
        assert_eq!(safe_link("", base), None);
    }

    #[test]
    fn safe_link_refuses_dangerous_schemes_however_spelled() {
        let base = Some("https://example.com/");
        for raw in [
            "javascript:alert(1)",
            "JaVaScRiPt:alert(1)",
            " javascript:alert(1)",
            "java\tscript:alert(1)",
            "java&#x09;script:alert(1)",
            "&#106;avascript:alert(1)",
            "javascript&colon;alert(1)",
            "data:text/html;base64,PHNjcmlwdD4=",
            "vbscript:msgbox(1)",
            "file:///etc/passwd",
            "ftp://example.com/x",
            "\u{0}javascript:alert(1)",
            "http://",
        ] {
            assert_eq!(safe_link(raw, base), None, "{raw:?} must be refused");
        }
    }

    /// Deterministic junk built from the pieces that trip HTML scanners.
    pub(crate) fn junk(seed: u64, pieces: &[&str], len: usize) -> String {
        let mut state = seed | 1;
        let mut out = String::new();
        for _ in 0..len {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            out.push_str(pieces[(state % pieces.len() as u64) as usize]);
        }
        out
    }

    #[test]
    fn hostile_input_never_panics() {
        let pieces = [
            "<",
            ">",
            "</",
            "/>",
            "<!--",
            "-->",
            "<![CDATA[",
            "]]>",
            "<script",
            "</script>",
            "<style>",
            "\"",
            "'",
            "=",
            "&",
            ";",
            "&#x",
            "&#",
            "&amp",
            "é",
            "日",
            "\u{0}",
            "\u{202E}",
            " ",
            "\n",
            "a",
            "<p",
            "<br>",
            "javascript:",
            "<!",
            "<?",
            "x=\"",
        ];
        for seed in 0..300 {
            let input = junk(seed, &pieces, 200);
            let text = html_to_text(&input);
            assert!(!text.contains('\u{0}') && !text.contains('\u{202E}'));
            let _ = safe_link(&input, Some("https://example.com/"));
        }
    }

    #[test]
    fn pathological_input_stays_linear() {
        let started = std::time::Instant::now();
        for input in [
            "<a x=\"".repeat(100_000) + ">",
            "<a".repeat(100_000),
            "&".repeat(300_000),
            "<script>".repeat(50_000),
            "</p".repeat(100_000) + ">",
        ] {
            let _ = html_to_text(&input);
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }
}
