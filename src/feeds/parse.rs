//! Parsing feed bytes (RSS, Atom, JSON Feed) into normalised items.

use crate::item::Item;

/// A parsed feed.
#[derive(Debug, Clone)]
pub struct ParsedFeed {
    /// The feed's own title, plain text.
    pub title: Option<String>,
    /// Normalised items, in feed order.
    pub items: Vec<Item>,
}

/// Why a body is not a feed.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("placeholder")]
    Placeholder,
}

/// Parses `body` fetched from `feed_url` (used to resolve relative links).
pub fn parse_feed(
    body: &[u8],
    content_type: Option<&str>,
    feed_url: &str,
) -> Result<ParsedFeed, ParseError> {
    let _ = (body, content_type, feed_url);
    todo!("feeds helper")
}
