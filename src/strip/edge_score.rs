//! Owns the scoring of the edge pruner ([`super::prune::EDGE_RULE`]): the content probability of
//! only the blocks whose text is one of the output's leading or trailing short lines, the lines
//! the rule can drop.
//!
//! Every feature is computed as [`measure_page`](super::block_model::measure_page) computes it,
//! through the same [`PageView`], the ones about the page as a whole included (word totals, the
//! windows of neighbours, duplicate lines, the block's position, its overlap with the page's
//! structured sources), so a block gets the probability the full-page scoring gives it, bit for
//! bit. What is skipped is the work for the blocks the rule cannot drop: their structured-source
//! overlaps (the 3-gram sets of the readability candidate and the JSON-LD body), their
//! duplicate test, dense features, context buckets and dot products.

use super::block_model::{block_lines, link_density, BlockModel, PageView};
use super::blocks::BlockPage;
use super::classify::{features, FEATURES, N_FEATURES as N_LINE};
use super::line_dom::LineDom;
use super::lines::Line;
use super::metric::{shingle_hash, shingles, tokens};
use super::prune::{EDGE_BAR, EDGE_WORDS};
use super::text_index::{collapse, TextIndex};
use std::collections::HashMap;

/// Index of `dup_in_doc` in the line features: the one line feature that reads every other line
/// of the page by value, set here only for the blocks scored.
const DUP: usize = 9;

/// Returns which non-empty lines of `text` the edge rule drops (one flag per non-empty line): the
/// leading and trailing runs of lines of at most [`EDGE_WORDS`] words whose blocks of `page` (the
/// blocks with the same words) all have a content probability under [`EDGE_BAR`]. The same flags
/// as [`super::prune::dropped`] with [`super::prune::EDGE_RULE`] over the full page's scores.
pub fn drops(model: &BlockModel, blocks: &mut dyn EdgeBlocks, text: &str) -> Vec<bool> {
    let lines: Vec<&str> = text.split('\n').filter(|l| !l.is_empty()).collect();
    let n = lines.len();
    let mut drop = vec![false; n];
    let short = |l: &str| l.split_whitespace().nth(EDGE_WORDS).is_none();
    if !(lines.first().is_some_and(|l| short(l)) || lines.last().is_some_and(|l| short(l))) {
        return drop;
    }
    // The lines that may be dropped: the leading and trailing runs of short lines that some
    // block holds, each with its blocks (one group per distinct text: a page of thousands of
    // copies of one short line has one group, not a list of every copy per line).
    let page = blocks.page();
    let mut groups = BlockGroups::new(page);
    let mut held: Vec<Option<usize>> = vec![None; n];
    let mut lead = 0;
    while lead < n && short(lines[lead]) {
        held[lead] = groups.of(lines[lead]);
        if held[lead].is_none() {
            break;
        }
        lead += 1;
    }
    let mut trail = n;
    while trail > lead && short(lines[trail - 1]) {
        held[trail - 1] = groups.of(lines[trail - 1]);
        if held[trail - 1].is_none() {
            break;
        }
        trail -= 1;
    }
    let used = groups.used;
    let mut wanted: Vec<usize> = used.iter().flatten().copied().collect();
    if wanted.is_empty() {
        return drop;
    }
    wanted.sort_unstable();
    wanted.dedup();
    blocks.tokens(&wanted);
    let mut scorer = Scorer::new(blocks.page(), &wanted);
    // Per group: whether all its blocks score under the bar (computed once).
    let mut below: Vec<Option<bool>> = vec![None; used.len()];
    let mut droppable = |k: usize| match held[k] {
        None => false,
        Some(g) => *below[g].get_or_insert_with(|| {
            used[g]
                .iter()
                .all(|&i| scorer.probability(model, i) < EDGE_BAR)
        }),
    };
    let lead = (0..n).take_while(|&k| droppable(k)).count();
    let trail = (lead..n).rev().take_while(|&k| droppable(k)).count();
    for (k, d) in drop.iter_mut().enumerate() {
        *d = k < lead || k >= n - trail;
    }
    drop
}

/// A page's blocks as the edge rule reads them, made when first asked for.
pub trait EdgeBlocks {
    /// Returns the page's blocks; a block's context tokens may be missing until asked for with
    /// [`EdgeBlocks::tokens`].
    fn page(&mut self) -> &BlockPage;
    /// Gives blocks `which` their context tokens.
    fn tokens(&mut self, which: &[usize]);
}

impl EdgeBlocks for BlockPage {
    fn page(&mut self) -> &BlockPage {
        self
    }

    fn tokens(&mut self, _: &[usize]) {}
}

/// The blocks the visible-text walk recorded ([`LineDom`]), made into a [`BlockPage`] when first
/// asked for, with the context tokens of only the blocks asked for.
pub struct Recorded<'a> {
    dom: &'a LineDom,
    title: &'a str,
    text: &'a str,
    readability: Option<&'a str>,
    page: Option<BlockPage>,
}

impl<'a> Recorded<'a> {
    /// The blocks of a page whose visible text is `text`, as `dom` recorded them, with its
    /// `title` and readability candidate.
    pub fn new(
        dom: &'a LineDom,
        title: &'a str,
        text: &'a str,
        readability: Option<&'a str>,
    ) -> Self {
        Self {
            dom,
            title,
            text,
            readability,
            page: None,
        }
    }

    fn made(&mut self) -> &mut BlockPage {
        let (dom, title, text, rd) = (self.dom, self.title, self.text, self.readability);
        self.page.get_or_insert_with(|| dom.page(title, text, rd))
    }
}

impl EdgeBlocks for Recorded<'_> {
    fn page(&mut self) -> &BlockPage {
        self.made()
    }

    fn tokens(&mut self, which: &[usize]) {
        let dom = self.dom;
        dom.fill_tokens(self.made(), which);
    }
}

/// Distinct lines looked up by a pass over the page's blocks before they are indexed.
const SCANS: usize = 16;

/// The blocks of a page grouped by text, for the lines the edge rule looks at: `of(line)` names
/// the group of blocks whose text has the words of `line` (whitespace collapsed), in order; a
/// block's text is its words joined by single spaces ([`super::blocks`]). The page's blocks are
/// indexed by text after [`SCANS`] distinct lines, so a page with many costs a lookup a line.
struct BlockGroups<'a> {
    page: &'a BlockPage,
    index: Option<TextIndex>,
    /// Group number by text, and each group's blocks.
    named: HashMap<String, usize>,
    used: Vec<Vec<usize>>,
}

impl<'a> BlockGroups<'a> {
    fn new(page: &'a BlockPage) -> Self {
        Self {
            page,
            index: None,
            named: HashMap::new(),
            used: Vec::new(),
        }
    }

    /// Returns the group of the blocks holding `line`'s words, `None` when no block does.
    fn of(&mut self, line: &str) -> Option<usize> {
        let want = collapse(line);
        if let Some(&g) = self.named.get(want.as_ref()) {
            return Some(g);
        }
        let page = self.page;
        let text = |i: usize| {
            let b = &page.blocks[i];
            &page.text.as_bytes()[b.start..b.end]
        };
        let blocks: Vec<usize> = if self.named.len() < SCANS {
            // A few lines (the common case): a pass over the blocks, lengths first.
            (0..page.blocks.len())
                .filter(|&i| text(i) == want.as_bytes())
                .collect()
        } else {
            let index = self
                .index
                .get_or_insert_with(|| TextIndex::new((0..page.blocks.len()).map(text)));
            index
                .candidates(want.as_bytes())
                .iter()
                .map(|&(_, i)| i as usize)
                .filter(|&i| text(i) == want.as_bytes())
                .collect()
        };
        if blocks.is_empty() {
            return None;
        }
        self.used.push(blocks);
        self.named.insert(want.into_owned(), self.used.len() - 1);
        Some(self.used.len() - 1)
    }
}

/// Scores blocks of a page one at a time, with the page-wide inputs computed once.
pub(super) struct Scorer<'a> {
    page: &'a BlockPage,
    lines: Vec<Line>,
    /// Line features of every block, `dup_in_doc` unset.
    lf: Vec<[f32; N_LINE]>,
    link_density: Vec<f32>,
    /// Overlaps with the readability candidate and the JSON-LD body, of the blocks read.
    rd_ov: Vec<f32>,
    ld_ov: Vec<f32>,
    rd: bool,
    ld: bool,
    /// Probabilities computed so far (NaN: not yet).
    probs: Vec<f32>,
    buckets: Vec<u32>,
}

impl<'a> Scorer<'a> {
    /// Prepares the scoring of the blocks `wanted` of `page` (others panic or score wrong).
    pub fn new(page: &'a BlockPage, wanted: &[usize]) -> Self {
        let n = page.blocks.len();
        let lines = block_lines(page);
        let mut lf = Vec::with_capacity(n);
        features(&lines, &vec![false; n], &mut lf);
        debug_assert_eq!(FEATURES[DUP], "dup_in_doc");
        // A block's readability overlap is read in a window of two blocks either side.
        let mut window: Vec<usize> = wanted
            .iter()
            .flat_map(|&i| i.saturating_sub(2)..(i + 3).min(n))
            .collect();
        window.sort_unstable();
        window.dedup();
        let mut rd_ov = vec![0.0; n];
        let rd = page.readability.as_deref();
        if let Some(src) = rd {
            overlaps(src, page, &window, &mut rd_ov);
        }
        let mut ld_ov = vec![0.0; n];
        let ld = !page.json_ld.trim().is_empty();
        if ld {
            let mut own = wanted.to_vec();
            own.sort_unstable();
            own.dedup();
            overlaps(&page.json_ld, page, &own, &mut ld_ov);
        }
        Self {
            page,
            lines,
            lf,
            link_density: link_density(page),
            rd_ov,
            ld_ov,
            rd: rd.is_some(),
            ld,
            probs: vec![f32::NAN; n],
            buckets: Vec::new(),
        }
    }

    /// Returns the content probability of block `i`, one of the blocks the scorer was made for.
    pub fn probability(&mut self, model: &BlockModel, i: usize) -> f32 {
        if !self.probs[i].is_nan() {
            return self.probs[i];
        }
        let shape = self.lines[i].shape;
        let dup = self
            .lines
            .iter()
            .filter(|l| l.shape == shape)
            .nth(1)
            .is_some();
        let mut lf = self.lf[i];
        lf[DUP] = if dup { 1.0 } else { 0.0 };
        let view = PageView {
            page: self.page,
            lines: &self.lines,
            link_density: &self.link_density,
            rd_ov: &self.rd_ov,
            rd: self.rd,
            ld: self.ld,
        };
        let x = view.dense(i, &lf, self.ld_ov[i]);
        self.buckets.clear();
        view.push_buckets(i, &mut self.buckets);
        let p = model.probability(&x, &self.buckets);
        self.probs[i] = p;
        p
    }
}

/// Sets `out[i]`, for each block `i` of `blocks` (sorted, distinct), to the share of the block's
/// token 3-grams found among those of `source` (per line, a line of fewer than three tokens
/// being one shingle), as the block model's source sets measure it. Only the source's shingles
/// whose first token could start one of the blocks' are hashed.
fn overlaps(source: &str, page: &BlockPage, blocks: &[usize], out: &mut [f32]) {
    let mut sh: Vec<Vec<u64>> = Vec::with_capacity(blocks.len());
    let mut starts = Starts::default();
    for &i in blocks {
        let b = &page.blocks[i];
        let toks: Vec<&str> = tokens(&page.text[b.start..b.end]).collect();
        // A block of fewer than three tokens is one shingle, starting at its first token.
        for t in toks.iter().take(toks.len().saturating_sub(2).max(1)) {
            starts.add(t);
        }
        sh.push(shingles(&toks, 3));
    }
    let mut wanted: Vec<u64> = sh.iter().flatten().copied().collect();
    wanted.sort_unstable();
    wanted.dedup();
    let mut found = vec![false; wanted.len()];
    let mut mark = |h: u64| {
        if let Ok(k) = wanted.binary_search(&h) {
            found[k] = true;
        }
    };
    let mut toks: Vec<&str> = Vec::new();
    for line in source.lines() {
        toks.clear();
        toks.extend(tokens(line));
        if toks.len() < 3 {
            if toks.first().is_some_and(|t| starts.may_hold(t)) {
                mark(shingle_hash(&toks));
            }
            continue;
        }
        for w in toks.windows(3) {
            if starts.may_hold(w[0]) {
                mark(shingle_hash(w));
            }
        }
    }
    for (&i, s) in blocks.iter().zip(&sh) {
        out[i] = if s.is_empty() {
            0.0
        } else {
            let hit = s
                .iter()
                .filter(|h| wanted.binary_search(h).is_ok_and(|k| found[k]))
                .count();
            hit as f32 / s.len() as f32
        };
    }
}

/// A 4,096-bit filter of the tokens that start a wanted shingle, keyed by length, first and last
/// byte: a token it does not hold starts none of them.
struct Starts([u64; 64]);

impl Default for Starts {
    fn default() -> Self {
        Self([0; 64])
    }
}

impl Starts {
    fn key(t: &str) -> usize {
        let b = t.as_bytes();
        let (first, last) = (b.first().copied(), b.last().copied());
        let k = (b.len() as u32).wrapping_mul(0x9e37_79b1)
            ^ u32::from(first.unwrap_or(0)).wrapping_mul(0x85eb_ca77)
            ^ u32::from(last.unwrap_or(0)).wrapping_mul(0xc2b2_ae3d);
        (k >> 20) as usize
    }

    fn add(&mut self, t: &str) {
        let k = Self::key(t);
        self.0[k / 64] |= 1 << (k % 64);
    }

    fn may_hold(&self, t: &str) -> bool {
        let k = Self::key(t);
        self.0[k / 64] & (1 << (k % 64)) != 0
    }
}

#[cfg(test)]
#[path = "edge_score_tests.rs"]
mod tests;
