//! The story: baseline articles (seeds), the profile built from them, and the matcher that gives
//! every item a verdict. Everything here is pure — no I/O except reading the seed folder in
//! [`seeds`], no clock — so it can be tested, evaluated and benchmarked alone.

pub mod eval;
pub mod matcher;
pub mod profile;
pub mod seeds;
pub mod text;

pub use eval::{EvalReport, LabelledItem, evaluate, read_labels};
pub use matcher::{MatchInput, Verdict, VerdictKind};
pub use profile::{Profile, ProfileError, Tuning};
pub use seeds::{BaselineArticle, SeedError, load_seeds};
