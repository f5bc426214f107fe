//! Loading baseline articles from a seed folder (with or without `seeds.toml`).

use std::path::{Path, PathBuf};

use jiff::civil::Date;
use serde::Serialize;

/// One baseline article: a seed document the story is defined by.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BaselineArticle {
    /// File name without extension, e.g. `002_8c022bc2c889c5a5`.
    pub id: String,
    /// Headline (from the manifest, else derived from the text).
    pub title: String,
    /// Publishing outlet, e.g. `Bloomberg`, when known.
    pub outlet: Option<String>,
    /// Publication date, when known.
    pub published: Option<Date>,
    /// Link to the original, when known.
    pub url: Option<String>,
    /// Body text with leads, bylines and credit lines removed: what the matcher reads.
    pub text: String,
}

/// Why a seed folder could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    /// The folder does not exist or cannot be read.
    #[error("cannot read seed folder {path}: {source}; check [story] seeds in the config")]
    Folder {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Loads every baseline article in `dir`.
pub fn load_seeds(dir: &Path) -> Result<Vec<BaselineArticle>, SeedError> {
    let _ = dir;
    todo!("story helper")
}
