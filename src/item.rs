//! The normalised feed item: the one shape every stage after the parser works with.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// One entry of one feed after normalisation.
///
/// All text is plain (HTML stripped, entities decoded, whitespace collapsed) and the link, when
/// present, is an absolute `http`/`https` URL; the parser guarantees both, so later stages never
/// see markup or hostile links.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    /// Identity of the item within its feed: the feed's GUID, else the link, else a hash of
    /// title and text. Two polls of the same feed yield the same key for the same entry.
    pub dedup_key: String,
    /// Headline, plain text.
    pub title: String,
    /// Short description, plain text; may be empty.
    pub summary: String,
    /// Full text when the feed carries it, plain text; may be empty.
    pub content: String,
    /// Absolute http(s) link to the article.
    pub link: Option<String>,
    /// When the publisher says the item was published (or updated, when that is all it gives).
    pub published: Option<Timestamp>,
    /// The outlet: the item's own source/author element, else the feed's title.
    pub source: Option<String>,
}
