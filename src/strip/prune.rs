//! Owns the block pruner of the readability path: the DOM-block model ([`super::block_model`])
//! scores every visible block of the page, and a line of the extractor's output whose block the
//! model rejects with confidence (content probability under a bar) is dropped, subject to a
//! [`Rule`] that narrows which lines may go (short ones, link-heavy ones, the candidate's edges).
//!
//! A line is matched to the blocks with the same text (whitespace collapsed); when several
//! blocks share it, the most probable one speaks for it, and a line no block matches is kept.

use super::block_model::{keep, probabilities, BlockModel, Measured};
use super::edge_score::EdgeBlocks;
use super::rules::Kind;
use super::text_index::collapse;
use crate::model::RemovedLine;
use std::collections::HashMap;

/// The pruner of the readability path: the runs of short lines at the start and end of the
/// output whose blocks the model gives a content probability under [`EDGE_BAR`]. Chosen by
/// 5-fold site-grouped cross-validation on wcxb-train (`dropline eval strip --prune-grid` with
/// a block model refitted per fold): short lines anywhere, link-heavy lines and edge runs of any
/// length all lowered it; this rule raised every fold.
pub const EDGE_RULE: Rule = Rule {
    bar: EDGE_BAR,
    max_words: EDGE_WORDS,
    min_link: 0.0,
    edges: true,
    decoded_out: false,
};
/// The probability bar of [`EDGE_RULE`].
pub const EDGE_BAR: f32 = 0.2;
/// Longest line, in whitespace-separated words, that [`EDGE_RULE`] may drop.
pub const EDGE_WORDS: usize = 12;

/// What the model says of one distinct block text of a page.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Score {
    /// The highest content probability of the blocks holding the text.
    pub prob: f32,
    /// Whether the model's own decoding keeps any of them.
    pub kept: bool,
    /// Share of the text's characters inside links (of the most probable block).
    pub link: f32,
}

/// Per distinct block text of a page, its [`Score`].
#[derive(Debug, Default)]
pub struct BlockScores {
    map: HashMap<String, Score>,
}

impl BlockScores {
    /// Scores the blocks of a measured page with `model`.
    pub fn new(model: &BlockModel, m: &Measured) -> Self {
        let p = probabilities(model, m);
        let kept = keep(&m.lines, &p, model.decode);
        let mut map: HashMap<String, Score> = HashMap::with_capacity(p.len());
        for (i, l) in m.lines.iter().enumerate() {
            let b = &m.page.blocks[i];
            let s = Score {
                prob: p[i],
                kept: kept[i],
                link: b.link_chars as f32 / b.chars.max(1) as f32,
            };
            let e = map
                .entry(collapse(l.text(&m.page.text)).into_owned())
                .or_insert(s);
            if s.prob > e.prob {
                *e = Score {
                    kept: e.kept || s.kept,
                    ..s
                };
            } else {
                e.kept |= s.kept;
            }
        }
        Self { map }
    }

    /// Returns the score of the block(s) holding exactly `line`, if any does.
    pub fn get(&self, line: &str) -> Option<Score> {
        self.map.get(collapse(line).as_ref()).copied()
    }

    #[cfg(test)]
    pub(crate) fn from_pairs(pairs: &[(&str, Score)]) -> Self {
        Self {
            map: pairs
                .iter()
                .map(|(t, s)| (collapse(t).into_owned(), *s))
                .collect(),
        }
    }
}

/// Which lines the pruner may drop.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rule {
    /// A line goes only when its block's probability is under this bar (0 turns pruning off).
    pub bar: f32,
    /// Only lines of at most this many whitespace-separated words (0: any length).
    pub max_words: usize,
    /// Only lines whose block has at least this link share (0: any).
    pub min_link: f32,
    /// Only the runs of droppable lines at the start and end of the text.
    pub edges: bool,
    /// Only blocks the model's own decoding leaves out.
    pub decoded_out: bool,
}

impl Rule {
    fn droppable(&self, line: &str, s: Option<Score>) -> bool {
        let Some(s) = s else { return false };
        s.prob < self.bar
            && (self.max_words == 0 || line.split_whitespace().count() <= self.max_words)
            && s.link >= self.min_link
            && !(self.decoded_out && s.kept)
    }
}

/// Returns which non-empty lines of `text` the rule drops, one flag per non-empty line.
pub fn dropped(text: &str, scores: &BlockScores, rule: &Rule) -> Vec<bool> {
    let lines: Vec<&str> = text.split('\n').filter(|l| !l.is_empty()).collect();
    let mut drop: Vec<bool> = lines
        .iter()
        .map(|l| rule.bar > 0.0 && rule.droppable(l, scores.get(l)))
        .collect();
    if rule.edges {
        let lead = drop.iter().take_while(|d| **d).count();
        let trail = drop[lead..].iter().rev().take_while(|d| **d).count();
        let n = drop.len();
        for (i, d) in drop.iter_mut().enumerate() {
            *d = i < lead || i >= n - trail;
        }
    }
    drop
}

/// Applies [`EDGE_RULE`] to `text`, the output of the readability path for the page whose blocks
/// are `blocks`: drops the lines it rejects, with their entries of `kept` (one per non-empty line, as
/// [`super::Stripper::apply_memory`] reads it; left as they are when they do not match the
/// text). Only the blocks holding the text's leading and trailing short lines are scored
/// ([`super::edge_score`]). Returns how many lines were dropped; `removed` receives them when
/// given.
pub fn edges(
    model: &BlockModel,
    blocks: &mut dyn EdgeBlocks,
    text: &mut String,
    kept: &mut Vec<(u64, bool)>,
    removed: Option<&mut Vec<RemovedLine>>,
) -> usize {
    let drop = super::edge_score::drops(model, blocks, text);
    apply(&drop, text, kept, removed)
}

/// Drops the non-empty lines of `text` flagged in `drop`, with their entries of `kept` (one per
/// non-empty line, as [`super::Stripper::apply_memory`] reads it; left as they are when they do
/// not match the text). Returns how many lines were dropped; `removed` receives them when given.
pub fn apply(
    drop: &[bool],
    text: &mut String,
    kept: &mut Vec<(u64, bool)>,
    removed: Option<&mut Vec<RemovedLine>>,
) -> usize {
    let n = drop.iter().filter(|d| **d).count();
    if n == 0 {
        return 0;
    }
    if let Some(r) = removed {
        let lines = text.split('\n').filter(|l| !l.is_empty());
        r.extend(lines.zip(drop).filter(|(_, d)| **d).map(|(l, _)| {
            RemovedLine {
                kind: if l.split_whitespace().count() <= 4 {
                    Kind::Navigation
                } else {
                    Kind::Boilerplate
                }
                .as_str()
                .to_string(),
                text: l.to_string(),
            }
        }));
    }
    if kept.len() == drop.len() {
        let mut i = 0;
        kept.retain(|_| {
            i += 1;
            !drop[i - 1]
        });
    }
    *text = without(text, drop);
    n
}

/// Returns `text` without the lines flagged in `drop` (one flag per non-empty line); a blank
/// line stays where it separated kept lines.
pub fn without(text: &str, drop: &[bool]) -> String {
    let mut out = String::with_capacity(text.len());
    let (mut gap, mut i) = (false, 0);
    for part in text.split('\n') {
        if part.is_empty() {
            gap = true;
            continue;
        }
        let gone = drop.get(i).copied().unwrap_or(false);
        i += 1;
        if gone {
            continue;
        }
        if !out.is_empty() {
            out.push_str(if gap { "\n\n" } else { "\n" });
        }
        out.push_str(part);
        gap = false;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(prob: f32, kept: bool, link: f32) -> Score {
        Score { prob, kept, link }
    }

    #[test]
    fn drops_confident_rejections_under_the_rule() {
        let scores = BlockScores::from_pairs(&[
            ("Home World Sports", s(0.01, false, 1.0)),
            ("The council met on Tuesday.", s(0.9, true, 0.0)),
            (
                "A long paragraph the model dislikes but of many words here",
                s(0.01, false, 0.0),
            ),
            ("Related: Ten best", s(0.02, false, 0.8)),
        ]);
        let text = "Home World  Sports\n\nThe council met on Tuesday.\nA long paragraph the model dislikes but of many words here\nUnknown line.\n\nRelated: Ten best";
        let all = Rule {
            bar: 0.05,
            max_words: 0,
            min_link: 0.0,
            edges: false,
            decoded_out: false,
        };
        assert_eq!(
            dropped(text, &scores, &all),
            [true, false, true, false, true]
        );
        let short = Rule {
            max_words: 4,
            ..all
        };
        assert_eq!(
            dropped(text, &scores, &short),
            [true, false, false, false, true]
        );
        let linky = Rule {
            min_link: 0.9,
            ..all
        };
        assert_eq!(
            dropped(text, &scores, &linky),
            [true, false, false, false, false]
        );
        // At the edges only: the unknown line stops the trailing run short of the long paragraph.
        let edges = Rule { edges: true, ..all };
        let d = dropped(text, &scores, &edges);
        assert_eq!(d, [true, false, false, false, true]);
        assert_eq!(
            without(text, &d),
            "The council met on Tuesday.\nA long paragraph the model dislikes but of many words here\nUnknown line."
        );
        let off = Rule { bar: 0.0, ..all };
        assert!(!dropped(text, &scores, &off).contains(&true));
    }

    #[test]
    fn edges_drops_short_rejected_lines_at_the_ends_only() {
        let html = r#"<html><body><nav class="menu"><ul><li><a href="/">Home</a></li><li><a href="/w">World news</a></li></ul></nav>
            <article><p>The council met on Tuesday and agreed on a budget for the schools of the town.</p>
            <p><a href="/w">World news</a></p>
            <p>Teachers said the money would pay for new books, and parents welcomed the decision.</p></article>
            <div class="share"><a href="/s">Share on social media</a></div></body></html>"#;
        let body = "The council met on Tuesday and agreed on a budget for the schools of the town.";
        let tail =
            "Teachers said the money would pay for new books, and parents welcomed the decision.";
        let model = BlockModel::shipped().unwrap();
        let blocks = || {
            let doc = dom_query::Document::from(html);
            let mut b = super::super::blocks::cut_blocks(&doc);
            b.readability = Some(format!("{body}\n{tail}"));
            b
        };
        let mut text = format!("Home\n\n{body}\nWorld news\n{tail}\nShare on social media");
        let mut kept = vec![(1, true), (2, false), (3, true), (4, false), (5, true)];
        let mut removed = Vec::new();
        let n = edges(
            &model,
            &mut blocks(),
            &mut text,
            &mut kept,
            Some(&mut removed),
        );
        // The menu link before the body and the share link after it go; the same words
        // between two paragraphs stay: only the ends of the text are pruned.
        assert_eq!(n, 2, "{text}");
        assert_eq!(text, format!("{body}\nWorld news\n{tail}"));
        assert_eq!(kept, [(2, false), (3, true), (4, false)]);
        assert_eq!(removed.len(), 2);
        assert_eq!(removed[0].text, "Home");
        // Long lines at both ends: the page is not scored and nothing changes.
        let mut text = format!("{body}\n{tail}");
        let mut kept = vec![(1, false), (2, false)];
        assert_eq!(edges(&model, &mut blocks(), &mut text, &mut kept, None), 0);
        assert_eq!(text, format!("{body}\n{tail}"));
        assert_eq!(kept.len(), 2);
    }

    #[test]
    fn scores_blocks_of_a_page() {
        let html = r#"<html><body><nav class="menu"><ul><li><a href="/">Home</a></li><li><a href="/w">World</a></li></ul></nav>
            <article><p>The council met on Tuesday and agreed on a budget for the schools of the town.</p></article></body></html>"#;
        let m = super::super::html::measure(html).unwrap();
        let sc = BlockScores::new(&BlockModel::shipped().unwrap(), &m);
        let body = sc
            .get("The council met on Tuesday and agreed on a budget for the schools of the town.")
            .unwrap();
        let home = sc.get("Home").unwrap();
        assert!(body.prob > home.prob, "body {body:?} home {home:?}");
        assert_eq!(home.link, 1.0);
        assert!(sc.get("not on the page").is_none());
    }
}
