//! Owns boilerplate stripping: from a decoded page (plain text or HTML) to the article body.
//!
//! The core is synchronous and free of tokio; the pipeline runs it on blocking workers.

pub mod eval;

use crate::model::{Format, RawDoc, RemovedLine};
use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StripConfig {
    pub enabled: bool,
    /// Puts the removed lines into the record's `boilerplate` field, by kind.
    pub keep_removed: bool,
}

impl Default for StripConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            keep_removed: false,
        }
    }
}

/// The result of stripping one document.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stripped {
    pub title: String,
    pub text: String,
    pub removed: Vec<RemovedLine>,
}

/// Strips boilerplate. Shared by all strip workers (`&self`), so any learned state is internally synchronised.
#[derive(Debug)]
pub struct Stripper {
    config: StripConfig,
}

impl Stripper {
    /// Builds a stripper; `state_dir` is where learned per-source statistics persist.
    pub fn new(config: &StripConfig, _state_dir: Option<&Path>) -> anyhow::Result<Self> {
        Ok(Self {
            config: config.clone(),
        })
    }

    /// Returns the article body of `doc`, with boilerplate removed when stripping is enabled.
    pub fn strip(&self, doc: &RawDoc) -> Stripped {
        let (title, text) = match doc.format {
            Format::Text => plain_text(&doc.body),
            Format::Html => html_visible_text(&doc.body),
        };
        let _ = self.config.enabled;
        Stripped {
            title,
            text,
            removed: Vec::new(),
        }
    }

    /// Persists learned state into the state dir; called on shutdown and periodically.
    pub fn persist(&self) -> anyhow::Result<()> {
        Ok(())
    }
}

/// Returns (title, text) of plain text without removing anything: the title is the first non-empty line.
pub fn plain_text(body: &str) -> (String, String) {
    let lines: Vec<&str> = body
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let title = lines.first().map(|s| s.to_string()).unwrap_or_default();
    (title, lines.join("\n"))
}

/// Returns (title, visible text) of an HTML page without removing anything.
pub fn html_visible_text(html: &str) -> (String, String) {
    // Placeholder tag stripper until the strip stage lands its HTML path.
    let mut out = String::with_capacity(html.len() / 2);
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                out.push('\n');
            }
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    plain_text(&out)
}
