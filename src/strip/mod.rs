//! Owns boilerplate stripping: from a decoded page (plain text or HTML) to the article body.
//!
//! The core is synchronous and free of tokio; the pipeline runs it on blocking workers.
//!
//! # Layout
//! - [`lines`]: splits text into lines and measures each one (words, stop words, punctuation, shape hash).
//! - [`rules`]: line shapes that are boilerplate on their own (teasers, counters, credits, dates).
//! - [`classify`]: the logistic line model, its context features and the body-run decoding.
//! - [`memory`]: per-source memory of recurring lines, persisted in the state dir.
//! - [`textpass`]: the plain-text pass that ties the above together.
//! - [`html`]: main-content extraction, page titles and visible text for HTML.
//! - [`metric`], [`eval`]: the benchmark metric and `dropline eval strip`.
//! - `train`: fits the line model on a training folder (an ignored test rebuilds the shipped weights).

pub mod classify;
pub mod eval;
pub mod html;
pub mod lines;
pub mod memory;
pub mod metric;
pub mod rules;
pub mod textpass;
#[cfg(test)]
mod train;

use crate::model::{Format, RawDoc, RemovedLine};
use classify::{Decoding, LineModel};
use html::Extractor;
use memory::LineMemory;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use textpass::{PassOptions, SourceMemory};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StripConfig {
    pub enabled: bool,
    /// Puts the removed lines into the record's `boilerplate` field, by kind.
    pub keep_removed: bool,
    /// Main-content extractor for HTML pages.
    pub extractor: Extractor,
    /// Remembers lines that recur across a source's documents and removes them.
    pub source_memory: bool,
    /// Decoding bars of the plain-text pass (content probabilities, 0..1).
    pub body_bar: f32,
    pub keep_inside: f32,
    pub keep_outside: f32,
    /// Runs the line classifier on an extractor's output too, with `html_keep` as the bar.
    pub html_classify: bool,
    pub html_keep: f32,
}

impl Default for StripConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            keep_removed: false,
            extractor: Extractor::default(),
            source_memory: true,
            body_bar: 0.5,
            keep_inside: 0.3,
            keep_outside: 0.8,
            html_classify: false,
            html_keep: 0.1,
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

/// Strips boilerplate. Shared by all strip workers (`&self`): the recurring-line memory sits behind a mutex.
#[derive(Debug)]
pub struct Stripper {
    config: StripConfig,
    model: LineModel,
    memory: Mutex<LineMemory>,
    state_dir: Option<PathBuf>,
}

impl Stripper {
    /// Builds a stripper; `state_dir` is where learned per-source statistics persist
    /// (file [`memory::FILE_NAME`]); without it the memory lives for the process only.
    pub fn new(config: &StripConfig, state_dir: Option<&Path>) -> anyhow::Result<Self> {
        let memory = match state_dir {
            Some(dir) if config.source_memory => LineMemory::load(dir)?,
            _ => LineMemory::default(),
        };
        Ok(Self {
            config: config.clone(),
            model: LineModel::shipped()?,
            memory: Mutex::new(memory),
            state_dir: state_dir.map(Path::to_path_buf),
        })
    }

    /// Returns the article body of `doc`, with boilerplate removed when stripping is enabled.
    pub fn strip(&self, doc: &RawDoc) -> Stripped {
        if !self.config.enabled {
            let (title, text) = match doc.format {
                Format::Text => plain_text(&doc.body),
                Format::Html => html_visible_text(&doc.body),
            };
            return Stripped {
                title,
                text,
                removed: Vec::new(),
            };
        }
        match doc.format {
            Format::Text => {
                let title = first_line(&doc.body);
                let (text, removed) =
                    self.text_pass(&doc.body, &doc.source_key, self.text_options());
                Stripped {
                    title,
                    text,
                    removed,
                }
            }
            Format::Html => match html::extract(&doc.body, self.config.extractor) {
                Some(main) if !main.text.trim().is_empty() => {
                    let (text, removed) =
                        self.text_pass(&main.text, &doc.source_key, self.html_options());
                    let title = if main.title.trim().is_empty() {
                        first_line(&main.text)
                    } else {
                        main.title
                    };
                    Stripped {
                        title,
                        text,
                        removed,
                    }
                }
                // No main content found: fall back to the plain-text pass over all visible text.
                _ => {
                    let (title, visible) = html_visible_text(&doc.body);
                    let (text, removed) =
                        self.text_pass(&visible, &doc.source_key, self.text_options());
                    Stripped {
                        title,
                        text,
                        removed,
                    }
                }
            },
        }
    }

    /// Runs the extractor alone (no post-pass), for measuring what the post-pass costs and adds.
    pub fn extract_only(&self, html: &str) -> Stripped {
        let main = html::extract(html, self.config.extractor).unwrap_or_default();
        Stripped {
            title: main.title,
            text: main.text,
            removed: Vec::new(),
        }
    }

    fn text_options(&self) -> PassOptions {
        let c = &self.config;
        PassOptions {
            decoding: Decoding {
                body_bar: c.body_bar,
                keep_inside: c.keep_inside,
                keep_outside: c.keep_outside,
            },
            classify: true,
            keep_removed: c.keep_removed,
        }
    }

    fn html_options(&self) -> PassOptions {
        let c = &self.config;
        PassOptions {
            // The extractor already chose the body: every line is inside it.
            decoding: Decoding {
                body_bar: -1.0,
                keep_inside: c.html_keep,
                keep_outside: c.html_keep,
            },
            classify: c.html_classify,
            keep_removed: c.keep_removed,
        }
    }

    fn text_pass(&self, text: &str, source: &str, opts: PassOptions) -> (String, Vec<RemovedLine>) {
        let memory = self.config.source_memory.then(|| SourceMemory {
            memory: &self.memory,
            source,
        });
        textpass::run(text, &self.model, memory, &opts)
    }

    /// Persists learned state into the state dir; called on shutdown and periodically.
    pub fn persist(&self) -> anyhow::Result<()> {
        let Some(dir) = &self.state_dir else {
            return Ok(());
        };
        if !self.config.source_memory {
            return Ok(());
        }
        let guard = self.memory.lock().unwrap_or_else(|e| e.into_inner());
        guard.save(dir)
    }
}

fn first_line(body: &str) -> String {
    body.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or_default()
        .to_string()
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
    html::visible_text(html)
}
