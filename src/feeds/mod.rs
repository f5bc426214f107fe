//! Getting items out of feeds: [`fetch`] talks HTTP, [`parse`] turns bytes into items,
//! [`normalize`] makes feed text and links safe and plain.

pub mod fetch;
pub mod normalize;
pub mod parse;

pub use fetch::{FetchError, FetchOutcome, FetchSettings, Fetcher, Validators};
pub use parse::{ParseError, ParsedFeed, parse_feed};
