//! The story profile: what the matcher compares items against, built from the seeds.

use serde::{Deserialize, Serialize};

use super::seeds::BaselineArticle;

/// User tuning of a story profile, from the `[story]` section of the config.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tuning {
    /// Terms to add to the profile as if the seeds used them prominently.
    #[serde(default)]
    pub add_terms: Vec<String>,
    /// Terms whose weight is multiplied (e.g. 2.0 doubles it).
    #[serde(default)]
    pub boost_terms: std::collections::BTreeMap<String, f64>,
    /// Terms that never count towards a match.
    #[serde(default)]
    pub exclude_terms: Vec<String>,
}

/// Why a profile could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// There were no baseline articles to build from.
    #[error("the story has no baseline articles; put at least one .txt file in the seed folder")]
    NoSeeds,
}

/// The built profile of one story.
#[derive(Debug, Clone)]
pub struct Profile {
    /// The baseline articles the profile was built from, in id order.
    pub baselines: Vec<BaselineArticle>,
}

impl Profile {
    /// Builds the profile from the baseline articles and the user's tuning.
    pub fn build(
        baselines: Vec<BaselineArticle>,
        tuning: &Tuning,
    ) -> Result<Profile, ProfileError> {
        let _ = tuning;
        if baselines.is_empty() {
            return Err(ProfileError::NoSeeds);
        }
        todo!("story helper")
    }

    /// A short human-readable summary of the profile, printed by `storywatch check`.
    pub fn summary(&self) -> String {
        todo!("story helper")
    }
}
