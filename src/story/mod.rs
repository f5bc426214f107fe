//! The story: baseline articles (seeds), the profile built from them, and the matcher that gives
//! every item a verdict. Everything here is pure — no I/O except reading the seed folder in
//! [`seeds`], no clock — so it can be tested, evaluated and benchmarked alone.
//!
//! The way through: [`load_seeds`] reads the baseline articles (and `seeds.toml`);
//! [`Profile::build`] weighs them against the [`Background`] word statistics and turns them
//! into a tf-idf centroid, facets derived from the seeds ([`facets`]: the topic and China
//! required, the US supporting), the events they recount and a one-lookup term index;
//! [`Profile::classify`] scores an item by its weaker required facet, the supporting facet and
//! its similarity to the story, and tells a follow-up from a re-report by publication time
//! against the baseline events and by development words absent from the seeds; [`eval::evaluate`] measures all of it against labelled items in TDT
//! terms (miss and false-alarm rates, normalised detection cost) beside two reference matchers.

pub mod background;
pub mod eval;
pub mod facets;
pub mod feedback;
pub mod matcher;
pub mod neardup;
pub mod profile;
pub mod seeds;
pub mod text;

pub use background::{Background, BackgroundError};
pub use eval::{EvalReport, LabelledItem, evaluate, read_labels};
pub use feedback::{Adjustment, MarkedText, learn};
pub use matcher::{MatchInput, Verdict, VerdictKind};
pub use profile::{Profile, ProfileError, Tuning};
pub use seeds::{BaselineArticle, SeedError, load_seeds};
