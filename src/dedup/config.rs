//! Owns the `[dedup]` settings and what `on_duplicate` drops.

use crate::model::DedupStatus;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnDuplicate {
    /// Duplicates are written with their verdict.
    Emit,
    /// Exact and near duplicates are counted and committed but not written; rewrites and
    /// documents that reuse others are written.
    Drop,
    /// As `drop`, and rewrites are dropped too.
    DropRewrites,
}

impl OnDuplicate {
    /// Returns the setting as written in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            OnDuplicate::Emit => "emit",
            OnDuplicate::Drop => "drop",
            OnDuplicate::DropRewrites => "drop_rewrites",
        }
    }

    /// Returns whether a document with this status is committed without being written.
    pub fn drops(self, status: DedupStatus) -> bool {
        match status {
            DedupStatus::Unique => false,
            DedupStatus::ExactDuplicate | DedupStatus::NearDuplicate => self != OnDuplicate::Emit,
            DedupStatus::Rewrite => self == OnDuplicate::DropRewrites,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DedupConfig {
    pub enabled: bool,
    pub on_duplicate: OnDuplicate,
    /// Documents kept in the exact and near-copy index (FIFO); a copy of an evicted document
    /// is no longer recognised.
    pub capacity: usize,
    /// Estimated word 5-gram Jaccard at or above which a document is a near-copy.
    pub near_threshold: f32,
    /// Score of the rewrite model ([`super::rewrite_model`]: coverage of a one-to-one sentence
    /// matching and how its sentences differ) at or above which an aligned earlier document
    /// makes this one a rewrite (above 1 turns the tier off).
    pub rewrite_threshold: f32,
    /// The rewrite model's weights: the shipped ones; `eval dedup --cv` refits them per fold.
    #[serde(skip)]
    pub rewrite_model: super::rewrite_model::RewriteModel,
    /// Content words an alignment must hold for a rewrite (shorter texts are left to `reuse`).
    pub rewrite_min_words: usize,
    /// Content words from which a matching shorter than `rewrite_min_words` (of two matched
    /// sentences or more) is still scored, against `rewrite_short_threshold`.
    pub rewrite_short_words: usize,
    /// The model score at or above which a matching of that short band makes a rewrite (above 1
    /// closes the band).
    pub rewrite_short_threshold: f32,
    /// Share of a rewrite's aligned words in sentences that were reworded (not verbatim): an
    /// edited version of one text keeps most sentences as they were, a spun copy does not.
    pub rewrite_min_reworded: f32,
    /// Share of the larger sentence's content words two sentences must share to align.
    pub align_overlap: f32,
    /// Share of a document an earlier one must make up to be listed in `reuse`.
    pub reuse_min_share: f32,
    /// Share of a document the earlier one it reuses most must make up for the document to
    /// join that one's story when no story centroid is close enough (above 1: never).
    pub story_reuse_share: f32,
    /// Most recent indexed documents whose sentence sketches are kept for rewrites and reuse.
    pub align_window: usize,
    /// Centroid cosine at or above which a document joins a story.
    pub story_threshold: f32,
    /// Documents after which a story nobody joined is closed (arrival position is the clock).
    pub story_window: u64,
    /// Weight of name-like (capitalised mid-sentence) words in story vectors.
    pub story_name_boost: f32,
    /// Exponent of the IDF factor in story vectors (above 1 favours rare words).
    pub story_idf_power: f32,
    /// Share of the name-only cosine in the story similarity.
    pub story_name_weight: f32,
    /// A background document-frequency file (`dropline train story-prior`) blended into the
    /// story IDF, so that the first documents of a stream are clustered with the contrast
    /// between everyday and rare words; none by default.
    pub story_prior: Option<std::path::PathBuf>,
    /// The loaded [`Self::story_prior`] ([`Self::load_files`]); `eval dedup --cv` counts one on
    /// the training topics of each fold.
    #[serde(skip)]
    pub story_df_prior: Option<std::sync::Arc<super::story::DfPrior>>,
}

impl Default for DedupConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            on_duplicate: OnDuplicate::Emit,
            capacity: 1_000_000,
            near_threshold: 0.7,
            rewrite_threshold: 0.9,
            rewrite_model: super::rewrite_model::RewriteModel::default(),
            rewrite_min_words: 30,
            rewrite_short_words: 10,
            rewrite_short_threshold: 0.9,
            rewrite_min_reworded: 0.0,
            align_overlap: 0.4,
            reuse_min_share: 0.2,
            story_reuse_share: 0.5,
            align_window: 20_000,
            story_threshold: 0.20,
            story_window: 20_000,
            story_name_boost: 2.0,
            story_idf_power: 1.0,
            story_name_weight: 0.0,
            story_prior: None,
            story_df_prior: None,
        }
    }
}

impl DedupConfig {
    /// Returns the content words a matching must hold to be scored at all: the short band's
    /// floor when it is open, else `rewrite_min_words`.
    pub fn rewrite_floor(&self) -> usize {
        if self.rewrite_short_threshold <= 1.0 {
            self.rewrite_short_words.min(self.rewrite_min_words)
        } else {
            self.rewrite_min_words
        }
    }

    /// Returns the score an alignment must reach to be a rewrite: `rewrite_threshold` past
    /// `rewrite_min_words`; in the short band `rewrite_short_threshold`, and never with a
    /// single match (one sentence on each side: nothing but that sentence's edits to go by).
    pub fn rewrite_bar(&self, a: &super::align::Alignment) -> f32 {
        if a.aligned_words >= self.rewrite_min_words {
            self.rewrite_threshold
        } else if a.matches < super::rewrite_model::SHORT_MIN_MATCHES {
            f32::INFINITY
        } else {
            self.rewrite_short_threshold
        }
    }

    /// Reads the files the settings name (the story prior), once the config is parsed.
    pub fn load_files(&mut self) -> anyhow::Result<()> {
        use anyhow::Context;
        if let Some(p) = &self.story_prior {
            let prior = super::story_prior::load(p).context("dedup.story_prior")?;
            self.story_df_prior = Some(std::sync::Arc::new(prior));
        }
        Ok(())
    }
}
