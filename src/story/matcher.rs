//! The matcher: (profile, item) → verdict. Pure: no I/O, no clock.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::profile::Profile;

/// What the matcher reads of an item.
#[derive(Debug, Clone, Copy)]
pub struct MatchInput<'a> {
    pub title: &'a str,
    pub summary: &'a str,
    pub content: &'a str,
    pub published: Option<Timestamp>,
}

/// The class of a verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VerdictKind {
    /// A new development of the story.
    FollowUp,
    /// Coverage of a baseline event itself, nothing new.
    ReReport,
    /// Touches the story in passing.
    Related,
    /// Not about the story.
    OffTopic,
}

/// The matcher's answer for one item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub verdict: VerdictKind,
    /// Calibrated to [0, 1].
    pub score: f64,
    /// Id of the nearest baseline article, `None` when off topic.
    pub baseline: Option<String>,
    /// Human-readable reasons.
    pub why: Vec<String>,
}

impl Profile {
    /// Classifies one item.
    pub fn classify(&self, item: &MatchInput<'_>) -> Verdict {
        let _ = item;
        todo!("story helper")
    }
}
