//! Owns entity extraction: names, dates and amounts with code-point offsets and in-document links.

pub mod eval;
pub mod train;

use crate::model::Entity;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EntitiesConfig {
    pub enabled: bool,
    /// A trained model file; `None` uses the model shipped in the binary.
    pub model: Option<PathBuf>,
}

impl Default for EntitiesConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            model: None,
        }
    }
}

/// Tags entities. Immutable once loaded and shared by all entity workers.
#[derive(Debug)]
pub struct EntityTagger {}

impl EntityTagger {
    /// Loads the configured model.
    pub fn load(_config: &EntitiesConfig) -> anyhow::Result<Self> {
        anyhow::bail!("no entity model is available yet")
    }

    /// Returns the entities of `text`, offsets in code points.
    pub fn tag(&self, _text: &str) -> Vec<Entity> {
        Vec::new()
    }
}
