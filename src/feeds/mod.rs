//! Getting items out of feeds: [`fetch`] talks HTTP, [`parse`] turns bytes into items,
//! [`normalize`] makes feed text and links safe and plain, [`schedule`] decides when to ask again.

pub mod fetch;
pub mod manage;
pub mod normalize;
pub mod parse;
pub mod schedule;

pub use fetch::{CacheHints, FetchError, FetchOutcome, FetchSettings, Fetcher, Validators};
pub use parse::{ParseError, ParsedFeed, parse_feed};
pub use schedule::Schedule;

#[cfg(test)]
mod proptests;
