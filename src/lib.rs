#![warn(missing_docs)]
//! storywatch: watches news feeds for follow-up developments of a story.
//!
//! The crate is laid out as the data flows (see `DESIGN.md` in the shared folder):
//! [`feeds`] fetch and parse feeds into [`item::Item`]s, [`story`] decides whether each item
//! continues the story, [`store`] keeps everything in SQLite, [`digest`] builds and delivers the
//! daily digest, and [`daemon`] wires the stages together on a schedule.

pub mod bundled;
pub mod config;
pub mod daemon;
pub mod digest;
pub mod duration;
pub mod feeds;
pub mod install;
pub mod item;
pub mod metrics;
pub mod pipeline;
pub mod review;
pub mod service;
pub mod store;
pub mod story;
pub mod web;
