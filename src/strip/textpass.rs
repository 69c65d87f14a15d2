//! Owns the plain-text pass: rules, the line classifier and decoding, over one text.
//!
//! The per-source memory is applied afterwards, in arrival order ([`super::Stripper::apply_memory`]):
//! the pass reports every line's shape and which kept lines the memory may remove.

use super::classify::{decode, features, keep_best_line, Decoding, LineModel, N_FEATURES};
use super::lines::{analyse, Line};
use super::repeats::drop_copies;
use super::rules::{mark_related_block, mark_related_headlines, shape_kind, Kind};
use super::toc::drop_contents;
use crate::model::RemovedLine;
use std::cell::RefCell;

/// How much of the pass runs: all of it for plain text, a gentler bar after an HTML extractor.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PassOptions {
    pub decoding: Decoding,
    /// Runs the classifier; when off only rules and the recurring-line memory remove lines.
    pub classify: bool,
    pub keep_removed: bool,
    /// Weight of the neighbours' mean probability in a line's smoothed probability (0 = none).
    pub smoothing: f32,
    /// Removes a related-links block at the end of the text ([`mark_related_block`]): for an
    /// extractor's output, whose text starts with the article.
    pub related_block: bool,
    /// Removes tables of contents ([`drop_contents`]): on HTML pages, where train CV gains
    /// (plain-text input: no gain, so it stays off there).
    pub contents: bool,
    /// The input is an article by premise (a plain-text document, not a page's visible text
    /// that an extractor's output competes with): when decoding keeps no line, the
    /// best-supported one stays ([`keep_best_line`]) instead of the text coming out empty.
    pub article: bool,
}

/// Per-thread buffers, so the hot path does not allocate per line.
#[derive(Default)]
struct Scratch {
    lines: Vec<Line>,
    shapes: Vec<u64>,
    sorted: Vec<u64>,
    dup: Vec<bool>,
    kinds: Vec<Option<Kind>>,
    forced: Vec<bool>,
    feats: Vec<[f32; N_FEATURES]>,
    probs: Vec<f32>,
    raw: Vec<f32>,
    keep: Vec<bool>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// What one pass kept and removed, and what the per-source memory needs of it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PassOut {
    pub text: String,
    pub removed: Vec<RemovedLine>,
    /// The shape of every line of the input, for the memory to count.
    pub shapes: Vec<u64>,
    /// Per kept line, in output order: its shape and whether it may be removed for recurring
    /// (chrome-shaped: not a sentence).
    pub kept: Vec<(u64, bool)>,
}

/// Returns the kept text of `text` and, when asked, the removed lines by kind.
pub fn run(text: &str, model: &LineModel, opts: &PassOptions) -> PassOut {
    SCRATCH.with(|s| {
        let mut s = s.borrow_mut();
        run_with(text, model, opts, &mut s)
    })
}

/// Returns whether a line reads as a sentence of a body: the per-source memory never removes
/// those, since a sentence seen before is quoted or syndicated content, and re-posts of one story
/// must keep their body for the dedup stage to call them duplicates.
pub fn reads_as_sentence(l: &Line) -> bool {
    l.terminal && l.words >= 5
}

fn run_with(text: &str, model: &LineModel, opts: &PassOptions, s: &mut Scratch) -> PassOut {
    let Scratch {
        raw,
        lines,
        shapes,
        sorted,
        dup,
        kinds,
        forced,
        feats,
        probs,
        keep,
    } = s;
    analyse(text, lines);
    let n = lines.len();
    shapes.clear();
    shapes.extend(lines.iter().map(|l| l.shape));
    sorted.clear();
    sorted.extend_from_slice(shapes);
    sorted.sort_unstable();
    dup.clear();
    dup.extend(shapes.iter().map(|sh| {
        let lo = sorted.partition_point(|x| x < sh);
        sorted.get(lo + 1) == Some(sh)
    }));

    kinds.clear();
    kinds.extend(lines.iter().map(|l| shape_kind(l.text(text), l)));
    mark_related_headlines(lines, kinds);
    if opts.related_block {
        mark_related_block(text, lines, kinds);
    }
    forced.clear();
    forced.extend(kinds.iter().map(Option::is_some));

    probs.clear();
    if opts.classify {
        features(lines, dup, feats);
        raw.clear();
        raw.extend(feats.iter().map(|x| model.probability(x)));
        smooth(raw, forced, opts.smoothing, probs);
    } else {
        probs.resize(n, 1.0);
    }
    decode(lines, probs, forced, &opts.decoding, keep);
    if opts.article {
        keep_best_line(lines, probs, forced, keep);
    }
    for i in drop_copies(text, lines, dup, keep) {
        kinds[i] = Some(Kind::Repeated);
    }
    if opts.contents {
        for i in drop_contents(text, lines, keep) {
            kinds[i] = Some(Kind::Navigation);
        }
    }

    let mut out = String::with_capacity(text.len());
    let mut removed = Vec::new();
    let mut kept = Vec::new();
    let mut gap = false;
    for i in 0..n {
        let l = &lines[i];
        gap |= l.blank_before;
        if keep[i] {
            if !out.is_empty() {
                out.push_str(if gap { "\n\n" } else { "\n" });
            }
            out.push_str(l.text(text));
            kept.push((l.shape, !reads_as_sentence(l)));
            gap = false;
        } else if opts.keep_removed {
            let kind = kinds[i].unwrap_or(if l.words <= 4 {
                Kind::Navigation
            } else {
                Kind::Boilerplate
            });
            removed.push(RemovedLine {
                kind: kind.as_str().to_string(),
                text: l.text(text).to_string(),
            });
        }
    }
    PassOut {
        text: out,
        removed,
        shapes: shapes.clone(),
        kept,
    }
}

/// Blends each line's probability with the mean of its neighbours that rules did not remove.
fn smooth(raw: &[f32], forced: &[bool], weight: f32, out: &mut Vec<f32>) {
    out.clear();
    out.extend(raw.iter().enumerate().map(|(i, &p)| {
        let prev = i.checked_sub(1).filter(|&j| !forced[j]).map(|j| raw[j]);
        let next = Some(i + 1)
            .filter(|&j| j < raw.len() && !forced[j])
            .map(|j| raw[j]);
        match (prev, next) {
            (Some(a), Some(b)) => (1.0 - weight) * p + weight * (a + b) / 2.0,
            (Some(a), None) | (None, Some(a)) => (1.0 - weight) * p + weight * a,
            (None, None) => p,
        }
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smoothing_pulls_towards_neighbours_but_skips_removed_lines() {
        let mut out = Vec::new();
        smooth(
            &[0.0, 0.0, 1.0, 1.0],
            &[false, false, false, true],
            0.5,
            &mut out,
        );
        assert_eq!(&out[..3], [0.0, 0.25, 0.5]);
    }

    #[test]
    fn tables_of_contents_go_only_when_asked() {
        let text = "Why budgets matter\nHow the vote went\nWhat happens next\nReactions\n\
                    Why budgets matter\nThe council met.\nHow the vote went\nIt passed.\n\
                    What happens next\nMoney in March.\nReactions\nParents cheered.";
        // No classifier, so only rules remove lines: the table of contents rule alone differs.
        let mut opts = PassOptions {
            decoding: Decoding {
                body_bar: -1.0,
                keep_inside: 0.0,
                keep_outside: 0.0,
            },
            classify: false,
            keep_removed: true,
            smoothing: 0.0,
            related_block: false,
            contents: false,
            article: false,
        };
        let model = LineModel::shipped().expect("shipped line model");
        let kept = run(text, &model, &opts);
        assert_eq!(kept.text, text);
        opts.contents = true;
        let out = run(text, &model, &opts);
        assert!(
            out.text.starts_with("Why budgets matter\nThe council met."),
            "{}",
            out.text
        );
        assert_eq!(out.removed.len(), 4);
        assert!(out.removed.iter().all(|r| r.kind == "navigation"));
    }
}
