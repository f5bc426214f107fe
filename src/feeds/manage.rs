//! Feed management without hand-editing TOML: add, remove, import OPML, export OPML.
//!
//! The config file's `[[feeds]]` list is the source of truth, so every change is an edit of that
//! file, made with `toml_edit` so the user's comments, ordering and formatting survive. An edit is
//! checked by parsing the whole new config exactly as start-up would before anything is written,
//! then written atomically (temporary file + rename), so a failed edit leaves the file as it was.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use quick_xml::events::{BytesStart, Event};
use toml_edit::{ArrayOfTables, DocumentMut, Item, Table, value};

use crate::config::{Config, ConfigOrigin};
use crate::duration::format_duration;

/// Why a feed-management command could not do its work. Each message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum ManageError {
    /// The config file could not be read or written.
    #[error("cannot {action} config file {path}: {source}; check the path and its permissions")]
    Io {
        /// `read` or `write`.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The config file is not TOML that can be edited.
    #[error(
        "{path} is not valid TOML ({detail}); fix it by hand first (`storywatch check` shows where)"
    )]
    Toml {
        /// The file.
        path: PathBuf,
        /// What the TOML parser said.
        detail: String,
    },
    /// `feeds` in the file is not a list of `[[feeds]]` tables.
    #[error(
        "{path}: `feeds` is not a list of [[feeds]] tables; write each feed as a [[feeds]] table"
    )]
    NotAnArray {
        /// The file.
        path: PathBuf,
    },
    /// The edited config would not load.
    #[error("the change would make the config invalid: {0}")]
    Invalid(#[from] crate::config::ConfigError),
    /// A URL that cannot be a feed.
    #[error("{url:?} is not an absolute http(s) URL; write it as \"https://example.com/feed.xml\"")]
    BadUrl {
        /// The URL as given.
        url: String,
    },
    /// An interval under the allowed minimum.
    #[error(
        "interval {given} is under 1m; publishers ban clients that poll that often, use \"15m\" or more"
    )]
    IntervalTooShort {
        /// The interval as formatted.
        given: String,
    },
    /// `feeds add` of a URL already listed.
    #[error("{url} is already listed in {path}; nothing changed")]
    Duplicate {
        /// The URL.
        url: String,
        /// The file.
        path: PathBuf,
    },
    /// `feeds remove` of a URL not listed.
    #[error("{url} is not listed in {path}; `storywatch feeds list` shows the configured URLs")]
    NotListed {
        /// The URL.
        url: String,
        /// The file.
        path: PathBuf,
    },
    /// The OPML file is not well-formed XML.
    #[error(
        "the OPML file is not well-formed XML ({detail}); fix it or export it again from your reader"
    )]
    Opml {
        /// What the XML reader said, with the byte position.
        detail: String,
    },
}

/// Checks that `raw` is an absolute http(s) URL and returns it trimmed.
pub fn validate_feed_url(raw: &str) -> Result<String, ManageError> {
    let url = raw.trim();
    match url::Url::parse(url) {
        Ok(parsed) if matches!(parsed.scheme(), "http" | "https") && parsed.has_host() => {
            Ok(url.to_string())
        }
        _ => Err(ManageError::BadUrl {
            url: raw.to_string(),
        }),
    }
}

/// The form two URLs are compared in for duplicates: parsed and re-serialised, so case in the
/// scheme and host, default ports and an empty path do not make two entries for one feed.
fn comparable(url: &str) -> String {
    url::Url::parse(url.trim()).map_or_else(|_| url.trim().to_string(), |u| u.to_string())
}

/// The config file, open for editing.
#[derive(Debug)]
pub struct ConfigEditor {
    path: PathBuf,
    doc: DocumentMut,
}

/// One feed to add.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewFeed {
    /// Absolute http(s) URL.
    pub url: String,
    /// Polling interval; the config default (30m) when `None`.
    pub interval: Option<Duration>,
    /// Display name.
    pub title: Option<String>,
}

impl ConfigEditor {
    /// Reads the config file at `path` for editing.
    pub fn open(path: &Path) -> Result<ConfigEditor, ManageError> {
        let text = std::fs::read_to_string(path).map_err(|source| ManageError::Io {
            action: "read",
            path: path.to_path_buf(),
            source,
        })?;
        let doc = text.parse::<DocumentMut>().map_err(|e| ManageError::Toml {
            path: path.to_path_buf(),
            detail: e.message().to_string(),
        })?;
        Ok(ConfigEditor {
            path: path.to_path_buf(),
            doc,
        })
    }

    /// The file being edited.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn feeds(&self) -> Result<Option<&ArrayOfTables>, ManageError> {
        match self.doc.get("feeds") {
            None => Ok(None),
            Some(item) => {
                item.as_array_of_tables()
                    .map(Some)
                    .ok_or_else(|| ManageError::NotAnArray {
                        path: self.path.clone(),
                    })
            }
        }
    }

    /// The URLs listed, in file order.
    pub fn urls(&self) -> Result<Vec<String>, ManageError> {
        Ok(self
            .feeds()?
            .map(|feeds| {
                feeds
                    .iter()
                    .filter_map(|t| t.get("url").and_then(Item::as_str))
                    .map(|u| u.trim().to_string())
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Whether a URL equal to `url` (after normalisation) is listed.
    pub fn contains(&self, url: &str) -> Result<bool, ManageError> {
        let wanted = comparable(url);
        Ok(self.urls()?.iter().any(|u| comparable(u) == wanted))
    }

    /// Appends a `[[feeds]]` entry; refuses an invalid URL, a too-short interval or a duplicate.
    pub fn add(&mut self, feed: &NewFeed) -> Result<(), ManageError> {
        let url = validate_feed_url(&feed.url)?;
        if let Some(interval) = feed.interval
            && interval < Duration::from_secs(60)
        {
            return Err(ManageError::IntervalTooShort {
                given: format_duration(interval),
            });
        }
        if self.contains(&url)? {
            return Err(ManageError::Duplicate {
                url,
                path: self.path.clone(),
            });
        }
        let mut table = Table::new();
        table.insert("url", value(url));
        if let Some(interval) = feed.interval {
            table.insert("interval", value(format_duration(interval)));
        }
        if let Some(title) = feed
            .title
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
        {
            table.insert("title", value(title));
        }
        if self.feeds()?.is_none() {
            self.doc
                .insert("feeds", Item::ArrayOfTables(ArrayOfTables::new()));
        }
        match self
            .doc
            .get_mut("feeds")
            .and_then(Item::as_array_of_tables_mut)
        {
            Some(feeds) => feeds.push(table),
            None => {
                return Err(ManageError::NotAnArray {
                    path: self.path.clone(),
                });
            }
        }
        Ok(())
    }

    /// Removes the `[[feeds]]` entry for `url` (normalised comparison).
    pub fn remove(&mut self, url: &str) -> Result<(), ManageError> {
        let wanted = comparable(url);
        let index = self.feeds()?.and_then(|feeds| {
            feeds.iter().position(|t| {
                t.get("url")
                    .and_then(Item::as_str)
                    .is_some_and(|u| comparable(u) == wanted)
            })
        });
        match (
            index,
            self.doc
                .get_mut("feeds")
                .and_then(Item::as_array_of_tables_mut),
        ) {
            (Some(index), Some(feeds)) => {
                let removed = feeds.remove(index);
                // Comments above a removed entry are often a group heading ("# Wire services")
                // for the entries below it: hand them to the next entry rather than lose them.
                let comments = removed
                    .decor()
                    .prefix()
                    .and_then(|p| p.as_str())
                    .filter(|p| p.contains('#'))
                    .map(str::to_string);
                if let (Some(comments), Some(next)) = (comments, feeds.get_mut(index)) {
                    let own = next
                        .decor()
                        .prefix()
                        .and_then(|p| p.as_str())
                        .unwrap_or("\n")
                        .to_string();
                    next.decor_mut()
                        .set_prefix(format!("{comments}{}", own.trim_start_matches('\n')));
                }
                Ok(())
            }
            _ => Err(ManageError::NotListed {
                url: url.trim().to_string(),
                path: self.path.clone(),
            }),
        }
    }

    /// Checks the edited config loads as start-up would load it, then replaces the file
    /// atomically, keeping its permissions.
    pub fn save(&self) -> Result<(), ManageError> {
        let text = self.doc.to_string();
        let base = self
            .path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        Config::parse(&text, ConfigOrigin::File(self.path.clone()), &base)?;
        let io = |source| ManageError::Io {
            action: "write",
            path: self.path.clone(),
            source,
        };
        let folder = if base.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            base
        };
        let name = self.path.file_name().map_or_else(
            || "storywatch.toml".into(),
            |n| n.to_string_lossy().into_owned(),
        );
        let temp = folder.join(format!(".{name}.{}.tmp", std::process::id()));
        let write = || -> std::io::Result<()> {
            let mut file = std::fs::File::create(&temp)?;
            file.write_all(text.as_bytes())?;
            file.sync_all()?;
            if let Ok(meta) = std::fs::metadata(&self.path) {
                std::fs::set_permissions(&temp, meta.permissions())?;
            }
            std::fs::rename(&temp, &self.path)
        };
        write().map_err(|e| {
            let _ = std::fs::remove_file(&temp);
            io(e)
        })
    }
}

/// One feed found in an OPML file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpmlFeed {
    /// `xmlUrl`, unescaped.
    pub url: String,
    /// `title`, else `text`.
    pub title: Option<String>,
}

/// Reads every `<outline>` with an `xmlUrl` at any depth (folders are nested outlines).
/// Outlines whose `type` says they are not feeds (`link`, `include`) are skipped; attribute
/// names are matched case-insensitively because exporters disagree (`xmlUrl`, `xmlurl`).
pub fn parse_opml(text: &str) -> Result<Vec<OpmlFeed>, ManageError> {
    let mut reader = quick_xml::Reader::from_str(text.trim_start_matches('\u{FEFF}'));
    let mut feeds = Vec::new();
    loop {
        match reader.read_event() {
            Ok(Event::Eof) => break,
            Ok(Event::Start(e) | Event::Empty(e)) => {
                if e.local_name().into_inner().eq_ignore_ascii_case("outline")
                    && let Some(feed) = outline_feed(&e)
                {
                    feeds.push(feed);
                }
            }
            Ok(_) => {}
            Err(e) => {
                return Err(ManageError::Opml {
                    detail: format!("{e} at byte {}", reader.error_position()),
                });
            }
        }
    }
    Ok(feeds)
}

fn outline_feed(e: &BytesStart<'_>) -> Option<OpmlFeed> {
    let (mut url, mut title, mut text, mut kind) = (None, None, None, None);
    for attr in e.attributes().with_checks(false).flatten() {
        // Exporters put HTML entities (`&nbsp;`, `&eacute;`) in titles; resolve those too.
        let Ok(raw) = attr.normalized_value_with(
            quick_xml::XmlVersion::Implicit1_0,
            4,
            quick_xml::escape::resolve_html5_entity,
        ) else {
            continue;
        };
        let value = raw.trim().to_string();
        let key = attr.key.local_name().into_inner();
        if key.eq_ignore_ascii_case("xmlUrl") {
            url = Some(value);
        } else if key.eq_ignore_ascii_case("title") {
            title = Some(value);
        } else if key.eq_ignore_ascii_case("text") {
            text = Some(value);
        } else if key.eq_ignore_ascii_case("type") {
            kind = Some(value.to_ascii_lowercase());
        }
    }
    if matches!(kind.as_deref(), Some("link" | "include")) {
        return None;
    }
    let url = url.filter(|u| !u.is_empty())?;
    let title = title
        .filter(|t| !t.is_empty())
        .or(text.filter(|t| !t.is_empty()));
    Some(OpmlFeed { url, title })
}

/// Writes an OPML 2.0 document listing `feeds` (URL and display title), every attribute
/// escaped.
pub fn export_opml(feeds: &[(String, Option<String>)], created: jiff::Timestamp) -> String {
    use quick_xml::escape::escape;
    let mut out =
        String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<opml version=\"2.0\">\n");
    out.push_str("  <head>\n    <title>storywatch feeds</title>\n");
    out.push_str(&format!(
        "    <dateCreated>{}</dateCreated>\n  </head>\n  <body>\n",
        created.strftime("%a, %d %b %Y %H:%M:%S GMT")
    ));
    for (url, title) in feeds {
        let title = title.as_deref().unwrap_or(url);
        out.push_str(&format!(
            "    <outline type=\"rss\" text=\"{t}\" title=\"{t}\" xmlUrl=\"{u}\"/>\n",
            t = escape(title),
            u = escape(url.as_str())
        ));
    }
    out.push_str("  </body>\n</opml>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opml_nested_outlines_types_and_entities() {
        let text = r#"<?xml version="1.0"?>
<opml version="1.0"><head><title>x</title></head><body>
  <outline text="News">
    <outline text="A &amp; B" type="rss" xmlUrl="https://a.example/feed?x=1&amp;y=2"/>
    <outline text="Deep"><outline title="Atom one" type="atom" xmlurl="https://b.example/atom"/></outline>
  </outline>
  <outline text="just a link" type="link" url="https://c.example/" xmlUrl="https://c.example/"/>
  <outline text="no url"/>
</body></opml>"#;
        let feeds = parse_opml(text).unwrap();
        assert_eq!(
            feeds,
            vec![
                OpmlFeed {
                    url: "https://a.example/feed?x=1&y=2".into(),
                    title: Some("A & B".into())
                },
                OpmlFeed {
                    url: "https://b.example/atom".into(),
                    title: Some("Atom one".into())
                },
            ]
        );
        assert!(parse_opml("<opml><body><outline xmlUrl=\"x\"></body>").is_err());
    }

    #[test]
    fn export_escapes_and_round_trips() {
        let feeds = vec![
            (
                "https://a.example/f?a=1&b=2".to_string(),
                Some("Q&A <\"quoted\">".to_string()),
            ),
            ("https://b.example/f".to_string(), None),
        ];
        let text = export_opml(&feeds, jiff::Timestamp::UNIX_EPOCH);
        assert!(text.contains("a=1&amp;b=2"), "{text}");
        assert!(!text.contains("<\"quoted\">"), "{text}");
        let back = parse_opml(&text).unwrap();
        assert_eq!(back[0].url, feeds[0].0);
        assert_eq!(back[0].title, feeds[0].1);
        assert_eq!(back[1].title.as_deref(), Some("https://b.example/f"));
    }

    #[test]
    fn urls_are_compared_normalised() {
        assert_eq!(
            comparable("HTTPS://Example.com"),
            comparable("https://example.com/")
        );
        assert!(validate_feed_url("ftp://x.example/").is_err());
        assert!(validate_feed_url("not a url").is_err());
        assert_eq!(
            validate_feed_url(" https://x.example/f ").unwrap(),
            "https://x.example/f"
        );
    }
}
