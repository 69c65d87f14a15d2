//! Owns the HTML path of [`Stripper`]: the readability extractor with its structured-source
//! cascade and plain-text fallback, or the DOM-block model.

use super::block_model::{self, Measured};
use super::edge_score::Recorded;
use super::{first_line, html, prune, rules, structured, tail, textpass};
use super::{HtmlExtractor, Stripped, Stripper};
use crate::model::RemovedLine;
use rules::Kind;
use textpass::PassOut;

/// Whether the readability path runs the block pruner ([`prune::EDGE_RULE`]). On: it raises
/// wcxb-train site-grouped CV F1 by 0.0008 (every fold up) and wcxb-dev from 0.9612 to 0.9619.
/// It adds 56M instructions to the stage over the first 40 wcxb-dev pages, its blocks recorded
/// by the visible-text walk ([`super::line_dom`]) and only the edge lines' blocks scored
/// ([`super::edge_score`]); cheaper class/id tests in the walk ([`super::marks`]), a cheaper
/// tokenizer and shingle hash ([`super::metric`]) and a borrowing structured-source walk
/// ([`super::structured`]) pay for it: the stage with it costs x1.004 of the stage without it
/// at 6d4aa9f (the allowance is x1.03).
const PRUNE_EDGES: bool = true;

impl Stripper {
    pub(super) fn strip_html(&self, html: &str) -> (Stripped, Vec<u64>, Vec<(u64, bool)>) {
        if self.config.html_extractor == HtmlExtractor::Blocks {
            // Pages too deep to parse take the readability path, which reads them as flat text.
            if let Some(m) = html::measure(html) {
                let probs = block_model::probabilities(&self.blocks, &m);
                let keep = block_model::keep(&m.lines, &probs, self.blocks.decode);
                return self.html_from_blocks(&m, &keep);
            }
        }
        self.strip_html_readability(html, PRUNE_EDGES)
    }

    /// Returns the kept blocks of a measured page as the document, with what the per-source
    /// memory needs; when the model kept nothing, the plain-text pass over all blocks decides.
    pub(crate) fn html_from_blocks(
        &self,
        m: &Measured,
        keep: &[bool],
    ) -> (Stripped, Vec<u64>, Vec<(u64, bool)>) {
        let page = &m.page;
        let title = if page.title.is_empty() {
            first_line(&page.text)
        } else {
            page.title.clone()
        };
        let shapes: Vec<u64> = m.lines.iter().map(|l| l.shape).collect();
        if !keep.contains(&true) {
            let pass = textpass::run(&page.text, &self.model, &self.page_options());
            let out = Stripped {
                title,
                text: pass.text,
                removed: pass.removed,
            };
            return (out, pass.shapes, pass.kept);
        }
        let mut text = String::with_capacity(page.text.len());
        let mut removed = Vec::new();
        let mut kept = Vec::new();
        for (l, &k) in m.lines.iter().zip(keep) {
            let line = l.text(&page.text);
            if k {
                if !text.is_empty() {
                    text.push('\n');
                }
                text.push_str(line);
                kept.push((l.shape, !textpass::reads_as_sentence(l)));
            } else if self.config.keep_removed {
                let kind = rules::shape_kind(line, l).unwrap_or(if l.words <= 4 {
                    Kind::Navigation
                } else {
                    Kind::Boilerplate
                });
                removed.push(RemovedLine {
                    kind: kind.as_str().to_string(),
                    text: line.to_string(),
                });
            }
        }
        let out = Stripped {
            title,
            text,
            removed,
        };
        (out, shapes, kept)
    }

    /// The readability path, with the edge pruner and the tail trim ([`tail`]) when `prune` is
    /// set (both read the blocks the visible-text walk records).
    pub(super) fn strip_html_readability(
        &self,
        html: &str,
        prune: bool,
    ) -> (Stripped, Vec<u64>, Vec<(u64, bool)>) {
        let mut page = html::parse_page(html, self.config.html_structured, prune);
        let (mut out, shapes, mut kept) = self.readability_page(&page);
        let removed = self.config.keep_removed.then_some(&mut out.removed);
        match page.blocks.take() {
            Some(html::PageBlocks::Lines(lines)) => {
                let mut b = Recorded::new(&lines, &page.title, &page.visible, page.main.as_deref());
                let mut removed = removed;
                prune::edges(
                    &self.blocks,
                    &mut b,
                    &mut out.text,
                    &mut kept,
                    removed.as_deref_mut(),
                );
                let drop = tail::drops(&lines, &page.visible, &out.text, self.tail_share);
                prune::apply(&drop, &mut out.text, &mut kept, removed);
            }
            Some(html::PageBlocks::Cut(mut b)) => {
                b.readability = page.main.take();
                prune::edges(&self.blocks, &mut b, &mut out.text, &mut kept, removed);
            }
            None => {}
        }
        (out, shapes, kept)
    }

    /// The readability path after the parse: the extractor's (or a structured source's) body
    /// through the plain-text pass, or the pass over all visible text when that keeps more.
    fn readability_page(&self, page: &html::Page) -> (Stripped, Vec<u64>, Vec<(u64, bool)>) {
        let title = if page.title.is_empty() {
            first_line(&page.visible)
        } else {
            page.title.clone()
        };
        let rule = structured::Agreement {
            agree: self.config.structured_agree,
            min_share: self.config.structured_min_share,
        };
        let main = page.main.as_deref().map(|main| {
            structured::agreeing(&page.structured, main, &rule).map_or(main, |c| c.text.as_str())
        });
        let Some(main) = main else {
            // No main content found: the plain-text pass over all visible text.
            let pass = textpass::run(&page.visible, &self.model, &self.page_options());
            return (
                Stripped {
                    title,
                    text: pass.text,
                    removed: pass.removed,
                },
                pass.shapes,
                pass.kept,
            );
        };
        let PassOut {
            text,
            mut removed,
            shapes,
            kept,
        } = textpass::run(main, &self.model, &self.html_options());
        // Whitespace-separated words: a cheap size measure, monotone in the lines kept.
        let words = |t: &str| t.split_ascii_whitespace().count() as f32;
        let n_kept = words(&text);
        let ratio = self.config.html_fallback_ratio;
        // The fallback reads the page without its comment section: a long comment thread
        // would otherwise make a right candidate look like a fragment of the page.
        let content = page.without_comments(false);
        // The plain-text pass keeps at most the visible words, so it can only win when the extractor
        // kept fewer than `ratio` of those; skipping it otherwise keeps the path close to the extractor's cost.
        if self.config.keep_removed || n_kept < ratio * words(&content) {
            let full = textpass::run(&content, &self.model, &self.page_options());
            if n_kept < ratio * words(&full.text) {
                // The page's own statement of its body beats the pass when it is not a fragment
                // of it either (same bar as the extractor's): a poor readability candidate is
                // the case structured sources rescue most often.
                let bar = ratio * words(&full.text);
                if let Some(c) = page.structured.iter().find(|c| words(&c.text) >= bar) {
                    let pass = textpass::run(&c.text, &self.model, &self.html_options());
                    let out = Stripped {
                        title,
                        text: pass.text,
                        removed: pass.removed,
                    };
                    return (out, shapes, pass.kept);
                }
                // The fallback's text leaves the page's footers out too; whether it is taken
                // is measured as before, on the page without its comment section (the bar
                // `html_fallback_ratio` was chosen on that measure).
                let full = if page.cut.iter().any(|c| c.2) {
                    let content = page.without_comments(true);
                    textpass::run(&content, &self.model, &self.page_options())
                } else {
                    full
                };
                let out = Stripped {
                    title,
                    text: full.text,
                    removed: full.removed,
                };
                // The memory learns the extractor's lines, as before the fallback was taken.
                return (out, shapes, full.kept);
            }
            // What the extractor dropped, with the kinds the plain-text pass gave those lines.
            removed.extend(full.removed.into_iter().filter(|r| !text.contains(&r.text)));
        }
        let out = Stripped {
            title,
            text,
            removed,
        };
        (out, shapes, kept)
    }
}
