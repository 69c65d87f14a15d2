//! Owns the block filter of the readability path: the DOM-block model ([`super::block_model`])
//! scores every visible block of the page, and a line of the readability path's output whose
//! block the model rejects with high confidence (content probability under
//! `strip.html_block_filter`) is dropped. Navigation, related links and footers that survive
//! inside the readability candidate are what it is for.
//!
//! Only blocks the model's own decoding leaves out of the page's body are candidates: inside
//! its body the model keeps blocks on a very low bar (its probabilities there are not meant to
//! stand alone), and dropping on the probability alone cost recall in cross-validation.
//!
//! A line is matched to the blocks with the same text (whitespace collapsed); when several
//! blocks share it, the most probable one speaks for it (and one kept by the decoding keeps
//! it), and a line no block matches is kept.

use super::block_model::{keep, measure_page, probabilities, BlockModel};
use super::blocks::BlockPage;
use super::rules::Kind;
use crate::model::RemovedLine;
use std::collections::HashMap;

/// Returns `text` with runs of whitespace collapsed to one space and the ends trimmed.
fn collapse(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for word in text.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// Per distinct block text of a page: the highest content probability of the blocks holding
/// it, and whether the model's decoding keeps any of them.
pub struct BlockScores {
    probs: HashMap<String, (f32, bool)>,
}

impl BlockScores {
    /// Measures and scores the blocks of `page` with `model`.
    pub fn new(model: &BlockModel, page: BlockPage) -> Self {
        let m = measure_page(page);
        let p = probabilities(model, &m);
        let kept = keep(&m.lines, &p, model.decode);
        let mut probs: HashMap<String, (f32, bool)> = HashMap::with_capacity(p.len());
        for ((line, &q), &k) in m.lines.iter().zip(&p).zip(&kept) {
            let e = probs
                .entry(collapse(line.text(&m.page.text)))
                .or_insert((q, k));
            *e = (e.0.max(q), e.1 || k);
        }
        Self { probs }
    }

    /// Returns the probability of the block(s) holding exactly `line`, if any does.
    pub fn probability(&self, line: &str) -> Option<f32> {
        self.probs.get(&collapse(line)).map(|e| e.0)
    }

    /// Returns whether `line` is a block the decoding leaves out with a probability under `bar`.
    pub fn rejects(&self, line: &str, bar: f32) -> bool {
        self.probs
            .get(&collapse(line))
            .is_some_and(|&(p, kept)| !kept && p < bar)
    }
}

/// Drops the lines of `text` whose block scores under `bar`, with their entries of `kept` (one
/// per non-empty line, as [`super::Stripper::apply_memory`] reads it). Blank lines between
/// paragraphs stay where they separate kept lines. Returns how many lines were dropped;
/// `removed` receives them when given. Does nothing when `kept` does not match the text.
pub fn apply(
    scores: &BlockScores,
    bar: f32,
    text: &mut String,
    kept: &mut Vec<(u64, bool)>,
    removed: Option<&mut Vec<RemovedLine>>,
) -> usize {
    let lines = text.split('\n').filter(|l| !l.is_empty()).count();
    if lines != kept.len() {
        return 0;
    }
    let drop: Vec<bool> = text
        .split('\n')
        .filter(|l| !l.is_empty())
        .map(|l| scores.rejects(l, bar))
        .collect();
    let n = drop.iter().filter(|d| **d).count();
    if n == 0 {
        return 0;
    }
    let mut out = String::with_capacity(text.len());
    let mut gone = Vec::new();
    let (mut gap, mut i) = (false, 0);
    for part in text.split('\n') {
        if part.is_empty() {
            gap = true;
            continue;
        }
        if drop[i] {
            gone.push(RemovedLine {
                kind: if part.split_whitespace().count() <= 4 {
                    Kind::Navigation
                } else {
                    Kind::Boilerplate
                }
                .as_str()
                .to_string(),
                text: part.to_string(),
            });
        } else {
            if !out.is_empty() {
                out.push_str(if gap { "\n\n" } else { "\n" });
            }
            out.push_str(part);
            gap = false;
        }
        i += 1;
    }
    let mut i = 0;
    kept.retain(|_| {
        i += 1;
        !drop[i - 1]
    });
    *text = out;
    if let Some(r) = removed {
        r.extend(gone);
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scores(pairs: &[(&str, f32, bool)]) -> BlockScores {
        BlockScores {
            probs: pairs
                .iter()
                .map(|(t, p, k)| (t.to_string(), (*p, *k)))
                .collect(),
        }
    }

    #[test]
    fn drops_confidently_rejected_lines_and_their_memory_entries() {
        let s = scores(&[
            ("Related: Ten best", 0.01, false),
            ("The council met.", 0.9, true),
            ("Kept by the decoding.", 0.01, true),
        ]);
        let mut text =
            "The council met.\n\nRelated:  Ten best\nUnknown line.\nKept by the decoding."
                .to_string();
        let mut kept = vec![(1, true), (2, true), (3, false), (4, true)];
        let mut removed = Vec::new();
        let n = apply(&s, 0.05, &mut text, &mut kept, Some(&mut removed));
        assert_eq!(n, 1);
        assert_eq!(
            text,
            "The council met.\n\nUnknown line.\nKept by the decoding."
        );
        assert_eq!(kept, [(1, true), (3, false), (4, true)]);
        assert_eq!(removed[0].text, "Related:  Ten best");
        // A bar under every probability changes nothing.
        let before = text.clone();
        assert_eq!(apply(&s, 0.005, &mut text, &mut kept, None), 0);
        assert_eq!(text, before);
    }

    #[test]
    fn leaves_text_alone_when_the_memory_entries_do_not_match() {
        let s = scores(&[("Menu", 0.0, false)]);
        let mut text = "Menu\nBody".to_string();
        let mut kept = vec![(1, true)];
        assert_eq!(apply(&s, 0.5, &mut text, &mut kept, None), 0);
        assert_eq!(text, "Menu\nBody");
    }

    #[test]
    fn scores_blocks_of_a_page() {
        let html = r#"<html><body><nav class="menu"><ul><li><a href="/">Home</a></li><li><a href="/w">World</a></li></ul></nav>
            <article><p>The council met on Tuesday and agreed on a budget for the schools of the town.</p></article></body></html>"#;
        let doc = dom_query::Document::from(html);
        let page = super::super::blocks::cut_blocks(&doc);
        let s = BlockScores::new(&BlockModel::shipped().unwrap(), page);
        let body = s
            .probability(
                "The council met on Tuesday and agreed on a budget for the schools of the town.",
            )
            .unwrap();
        let home = s.probability("Home").unwrap();
        assert!(body > home, "body {body} home {home}");
        assert_eq!(s.probability("not on the page"), None);
    }
}
