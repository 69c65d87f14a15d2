//! Owns boilerplate stripping: from a decoded page (plain text or HTML) to the article body.
//!
//! The core is synchronous and free of tokio; the pipeline runs it on blocking workers.
//!
//! # Layout
//! - [`lines`]: splits text into lines and measures each one (words, stop words, punctuation, shape hash).
//! - [`rules`]: line shapes that are boilerplate on their own (teasers, counters, credits, dates).
//! - [`classify`]: the logistic line model, its context features and the body-run decoding.
//! - [`markup`]: the linear pre-pass that caps attributes before any HTML parser runs.
//! - [`nesting`]: the guard's estimate of the parser's open elements, which caps nesting depth.
//! - [`repeats`]: drops layout copies, runs of lines that repeat an earlier run.
//! - [`toc`]: drops tables of contents, runs of short lines that come back later as headings.
//! - [`memory`]: per-source memory of recurring lines, persisted in the state dir.
//! - [`stage`]: the pipeline adapter from a read envelope to a document or an error record.
//! - [`textpass`]: the plain-text pass that ties the above together.
//! - [`html`]: main-content extraction, page titles and visible text for HTML.
//! - `comments`: what marks a page's comment section in its markup (the fallback leaves it out).
//! - `marks`: what marks a page's footers, captions, author boxes and disclaimers in its markup.
//! - [`structured`]: the structured sources of an article body (JSON-LD, itemprop, `<article>`)
//!   and the rule that weighs them against the readability candidate.
//! - [`blocks`], [`block_model`]: the DOM-block model of the HTML path: blocks with their markup
//!   context and structured-source agreement, the logistic model and its decoding.
//! - [`line_dom`]: the blocks the visible-text walk records for the edge pruner and the tail trim
//!   (one DOM walk).
//! - [`prune`], `edge_score`: the edge pruner of the readability path, which scores only the
//!   blocks of the output's leading and trailing short lines.
//! - [`tail`]: the tail trim of the readability path, which drops the output's last lines when
//!   they lie outside the element holding most of its words.
//! - [`text_index`]: the per-page index of blocks and walk lines by text that both look up.
//! - `html_path`: the HTML path of the stripper (readability with its cascade, or the block model).
//! - [`block_train`]: `dropline train strip`, which fits the block model on wcxb-train.
//! - [`metric`], [`eval`]: the benchmark metric and `dropline eval strip`.
//! - `train`: fits the line model on a training folder (an ignored test rebuilds the shipped weights).

pub mod block_model;
pub mod block_train;
pub mod blocks;
pub mod classify;
mod comments;
mod edge_score;
pub mod eval;
pub mod html;
mod html_path;
pub mod line_dom;
pub mod lines;
mod marks;
pub mod markup;
pub mod memory;
pub mod metric;
pub mod nesting;
pub mod prune;
mod prune_grid;
pub mod repeats;
pub mod rules;
pub mod stage;
pub mod structured;
pub mod tail;
pub mod text_index;
pub mod textpass;
pub mod toc;
#[cfg(test)]
mod train;

use crate::model::{Format, RawDoc, RemovedLine};
use block_model::BlockModel;
use classify::{Decoding, LineModel};
use memory::LineMemory;
use rules::Kind;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use textpass::PassOptions;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StripConfig {
    pub enabled: bool,
    /// Puts the removed lines into the record's `boilerplate` field, by kind.
    pub keep_removed: bool,
    /// Remembers lines that recur across a source's documents and removes them.
    pub source_memory: bool,
    /// Decoding bars of the plain-text pass (content probabilities, 0..1).
    pub body_bar: f32,
    pub keep_inside: f32,
    pub keep_outside: f32,
    /// Weight of the neighbouring lines in a line's content probability (context smoothing).
    pub smoothing: f32,
    /// Runs the line classifier on an extractor's output too, with `html_keep` as the bar.
    pub html_classify: bool,
    pub html_keep: f32,
    /// The HTML path falls back to the plain-text pass over all visible text when the extractor's
    /// body has fewer than this share of the words that pass keeps (the extractor missed part of the article).
    /// Chosen by 5-fold cross-validation on wcxb-train grouped by site (`scripts/strip_cv.py`).
    pub html_fallback_ratio: f32,
    /// How the HTML path finds the article: `blocks` (the DOM-block model over every visible
    /// block, with the structured sources and the readability candidate as its inputs) or
    /// `readability` (the readability candidate with the plain-text fallback above).
    pub html_extractor: HtmlExtractor,
    /// The structured-source cascade of the readability path: the page's JSON-LD
    /// `articleBody`, `itemprop=articleBody` element or single `<article>` replaces the
    /// readability candidate when it agrees with it ([`structured::agreeing`]). On by 5-fold
    /// cross-validation on wcxb-train grouped by site (`scripts/strip_cv.py`).
    pub html_structured: bool,
    /// Share of the structured source's words the readability candidate must hold.
    pub structured_agree: f32,
    /// Smallest size of the structured source as a share of the readability candidate's words.
    pub structured_min_share: f32,
}

/// The HTML path's main-content extractor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum HtmlExtractor {
    Blocks,
    Readability,
}

impl Default for StripConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            keep_removed: false,
            source_memory: true,
            body_bar: 0.5,
            keep_inside: 0.3,
            keep_outside: 0.8,
            smoothing: 0.4,
            html_classify: false,
            html_keep: 0.1,
            html_fallback_ratio: 0.6,
            html_extractor: HtmlExtractor::Readability,
            html_structured: true,
            structured_agree: 0.9,
            structured_min_share: 0.5,
        }
    }
}

/// What the per-source memory needs of one stripped document, applied in arrival order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MemoryWork {
    source: String,
    /// Shapes the memory counts for this document.
    observe: Vec<u64>,
    /// Per kept line of the text: its shape and whether the memory may remove it.
    kept: Vec<(u64, bool)>,
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
    blocks: BlockModel,
    memory: Mutex<LineMemory>,
    state_dir: Option<PathBuf>,
    /// The readability path's tail trim ([`tail::TAIL_SHARE`]; 0: off).
    tail_share: f32,
}

impl Stripper {
    /// Builds a stripper; `state_dir` is where learned per-source statistics persist
    /// (file [`memory::FILE_NAME`]); without it the memory lives for the process only.
    pub fn new(config: &StripConfig, state_dir: Option<&Path>) -> anyhow::Result<Self> {
        let memory = match state_dir {
            // The memory is a cache of what was seen: a damaged file costs accuracy, never the start-up.
            Some(dir) if config.source_memory => LineMemory::load(dir).unwrap_or_else(|error| {
                tracing::warn!(%error, "failed to load strip line memory, starting empty");
                LineMemory::default()
            }),
            _ => LineMemory::default(),
        };
        Ok(Self {
            config: config.clone(),
            model: LineModel::shipped()?,
            blocks: BlockModel::shipped()?,
            memory: Mutex::new(memory),
            state_dir: state_dir.map(Path::to_path_buf),
            tail_share: tail::TAIL_SHARE,
        })
    }

    /// Replaces the block model (e.g. with one fitted without the pages to be scored, for
    /// cross-validation).
    pub fn set_block_model(&mut self, model: BlockModel) {
        self.blocks = model;
    }

    /// Replaces the tail trim's container share ([`tail::TAIL_SHARE`]; 0 turns the trim off), for
    /// cross-validation.
    pub fn set_tail_share(&mut self, share: f32) {
        self.tail_share = share;
    }

    /// Returns the article body of `doc`, with boilerplate removed when stripping is enabled.
    /// Applies and updates the per-source memory at once: for callers that meet documents one
    /// at a time, in order (the pipeline splits this into [`Self::strip_deferred`] on parallel
    /// workers and [`Self::apply_memory`] in an ordered step).
    pub fn strip(&self, doc: &RawDoc) -> Stripped {
        let (mut out, work) = self.strip_deferred(doc);
        if let Some(work) = work {
            let removed = self.config.keep_removed.then_some(&mut out.removed);
            self.apply_memory(&work, &mut out.text, removed);
        }
        out
    }

    /// Strips `doc` without the per-source memory, and returns what the memory needs to learn
    /// from it and remove from it (`None` when the memory is off).
    pub fn strip_deferred(&self, doc: &RawDoc) -> (Stripped, Option<MemoryWork>) {
        if !self.config.enabled {
            let (title, text) = match doc.format {
                Format::Text => plain_text(&doc.body),
                Format::Html => html_visible_text(&doc.body),
            };
            let out = Stripped {
                title,
                text,
                removed: Vec::new(),
            };
            return (out, None);
        }
        let (out, observe, kept) = match doc.format {
            Format::Text => {
                let title = first_line(&doc.body);
                let pass = textpass::run(&doc.body, &self.model, &self.text_options());
                let out = Stripped {
                    title,
                    text: pass.text,
                    removed: pass.removed,
                };
                (out, pass.shapes, pass.kept)
            }
            Format::Html => self.strip_html(&doc.body),
        };
        let work = self.config.source_memory.then(|| MemoryWork {
            source: doc.source_key.clone(),
            observe,
            kept,
        });
        (out, work)
    }

    /// Applies the per-source memory to one document's kept `text`, then records the document's
    /// lines. Call it in arrival order: what it removes depends only on earlier documents.
    /// It never removes every line of a text. Returns whether lines were removed (their kinds
    /// go to `removed` when given).
    pub fn apply_memory(
        &self,
        work: &MemoryWork,
        text: &mut String,
        removed: Option<&mut Vec<RemovedLine>>,
    ) -> bool {
        let shapes: Vec<u64> = work.kept.iter().map(|k| k.0).collect();
        let mut seen = Vec::new();
        // A poisoned lock only means another worker panicked mid-update; the counts stay usable.
        let mut guard = self.memory.lock().unwrap_or_else(|e| e.into_inner());
        let docs = guard.lookup(&work.source, &shapes, &mut seen);
        let mut scratch = Vec::new();
        guard.observe(&work.source, &work.observe, &mut scratch);
        drop(guard);
        let drop_line: Vec<bool> = work
            .kept
            .iter()
            .zip(&seen)
            .map(|(&(_, removable), &n)| docs >= 2 && removable && n >= 2)
            .collect();
        // Every kept line recurring means a re-post of a page seen before, not chrome around an
        // article: the text is the article (by premise), and the dedup stage decides on copies.
        if !drop_line.contains(&true) || !drop_line.contains(&false) {
            return false;
        }
        let lines: Vec<&str> = text.split('\n').filter(|l| !l.is_empty()).collect();
        if lines.len() != drop_line.len() {
            // Not the text the pass produced: leave it as it is rather than guess.
            return false;
        }
        let mut out = String::with_capacity(text.len());
        let mut removed_lines = Vec::new();
        let (mut gap, mut line) = (false, 0);
        for part in text.split('\n') {
            if part.is_empty() {
                gap = true;
                continue;
            }
            if drop_line[line] {
                removed_lines.push(RemovedLine {
                    kind: Kind::Recurring.as_str().to_string(),
                    text: part.to_string(),
                });
            } else {
                if !out.is_empty() {
                    out.push_str(if gap { "\n\n" } else { "\n" });
                }
                out.push_str(part);
                gap = false;
            }
            line += 1;
        }
        *text = out;
        if let Some(r) = removed {
            r.extend(removed_lines);
        }
        true
    }

    /// Runs the extractor alone (no post-pass), for measuring what the post-pass costs and adds.
    pub fn extract_only(&self, html: &str) -> Stripped {
        Stripped {
            title: String::new(),
            text: html::extract_only(html),
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
            smoothing: c.smoothing,
            related_block: false,
            contents: false,
            article: true,
        }
    }

    /// The plain-text pass over an HTML page's visible text (the fallback): as for plain text,
    /// with tables of contents removed.
    fn page_options(&self) -> PassOptions {
        PassOptions {
            contents: true,
            // The extractor's candidate competes with this pass: an empty pass lets it win.
            article: false,
            ..self.text_options()
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
            smoothing: c.smoothing,
            related_block: true,
            contents: true,
            article: false,
        }
    }

    /// Returns whether documents carry memory work to apply in order ([`Self::apply_memory`]).
    pub fn learns(&self) -> bool {
        self.config.enabled && self.config.source_memory
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

#[cfg(test)]
mod tests;

#[cfg(test)]
mod robustness_tests;
