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
mod tests {
    use super::super::block_model::{measure_page, probabilities};
    use super::super::prune::{dropped, BlockScores, EDGE_RULE};
    use super::*;

    /// Pages with what the features read: menus and link lists, repeated lines and shapes,
    /// short and long blocks, no-break spaces and tabs, a JSON-LD body, nested markup.
    fn pages() -> Vec<String> {
        let body = "The council met on Tuesday and agreed on a budget for the schools of the town.";
        let more = "Teachers said the money would pay for new books, and parents welcomed it.";
        let ld = r#"<script type="application/ld+json">{"@type":"NewsArticle","articleBody":"The council met on Tuesday and agreed on a budget for the schools of the town.\nShort one"}</script>"#;
        vec![
            format!(
                r#"<html><head><title>T</title>{ld}</head><body><nav class="menu"><ul><li><a href="/">Home</a></li><li><a href="/w">World&nbsp;news</a></li></ul></nav>
                <article><h1>Budget   passes</h1><p>{body}</p><p><a href="/w">World news</a></p><p>{more}</p>
                <p>Short one</p><p>{body} {more}</p><p>Read 12 comments</p><p>Read 7 comments</p></article>
                <aside class="related"><h3>Related</h3><ul><li><a href="/a">Ten best	schools</a></li><li><a href="/b">A budget, explained</a></li></ul></aside>
                <div class="share"><a href="/s">Share on social media</a></div><footer>(c) Town News</footer></body></html>"#
            ),
            format!("<body><p>{body}</p><div><span>Home</span> <a href=/>News</a><br>Sport</div><p>{more}</p><p>Home</p></body>"),
            "<p>One</p>".to_string(),
            format!("<div class=story-body><div><div><p>{body}</p></div></div></div><ul><li>a</li><li>b</li><li>c</li><li>d</li><li>e</li></ul>"),
        ]
    }

    fn cut(html: &str) -> BlockPage {
        super::super::blocks::cut(dom_query::Document::from(html), true)
    }

    #[test]
    fn each_block_scores_as_in_the_full_page_scoring() {
        let model = BlockModel::shipped().unwrap();
        for html in pages() {
            let page = cut(&html);
            let full = probabilities(&model, &measure_page(page.clone()));
            let all: Vec<usize> = (0..page.blocks.len()).collect();
            let mut scorer = Scorer::new(&page, &all);
            let cheap: Vec<u32> = all
                .iter()
                .map(|&i| scorer.probability(&model, i).to_bits())
                .collect();
            let full: Vec<u32> = full.iter().map(|p| p.to_bits()).collect();
            assert_eq!(cheap, full, "{html}");
            // Prepared for one block only, the block scores the same.
            for i in all {
                let p = Scorer::new(&page, &[i]).probability(&model, i);
                assert_eq!(p.to_bits(), full[i], "block {i} of {html}");
            }
        }
    }

    #[test]
    fn drops_what_the_rule_drops_over_the_full_page_scores() {
        let model = BlockModel::shipped().unwrap();
        let mut dropping = 0;
        for html in pages() {
            let page = cut(&html);
            let scores = BlockScores::new(&model, &measure_page(page.clone()));
            let lines: Vec<&str> = page.text.lines().collect();
            // Every run of the page's lines as an output, with blank lines and respaced lines.
            for a in 0..lines.len() {
                for b in a + 1..=lines.len() {
                    let text = lines[a..b].join("\n\n").replace(' ', "  ");
                    let want = dropped(&text, &scores, &EDGE_RULE);
                    assert_eq!(drops(&model, &mut page.clone(), &text), want, "{text}");
                    dropping += usize::from(want.contains(&true));
                }
            }
        }
        assert!(dropping > 0, "no output of the fixtures loses a line");
    }

    /// A page of thousands of copies of one short line: every copy's line names one group of
    /// blocks, so the edge rule's work stays linear in the page (before, each line listed the
    /// blocks of every copy: a page of 20,000 copies took 15 s and 3 GB in `process`, until the
    /// strip budget gave up on it), and its flags are still the full scoring's.
    #[test]
    fn copies_of_one_short_line_make_one_group() {
        let n = 3000;
        let html = format!(
            "<html><body><article>{}</article><p>Other</p></body></html>",
            "<p>Same line here.</p>".repeat(n)
        );
        let page = cut(&html);
        let lines: Vec<&str> = page.text.lines().collect();
        let mut groups = BlockGroups::new(&page);
        let ids: Vec<Option<usize>> = lines.iter().map(|l| groups.of(l)).collect();
        assert_eq!(ids.iter().filter(|g| **g == Some(0)).count(), n);
        assert_eq!(
            groups.used[0].len(),
            n,
            "one group holds every copy's block"
        );
        assert_eq!(groups.used.len(), 2, "{:?}", &lines[n - 1..]);
        let model = BlockModel::shipped().unwrap();
        let scores = BlockScores::new(&model, &measure_page(page.clone()));
        let text = lines.join("\n");
        let want = dropped(&text, &scores, &EDGE_RULE);
        assert_eq!(drops(&model, &mut page.clone(), &text), want);
    }

    /// Many distinct short lines: past [`SCANS`] of them the blocks are indexed, and each line
    /// still names exactly the blocks with its words, as a pass over the page finds them.
    #[test]
    fn many_distinct_short_lines_find_their_blocks_through_the_index() {
        let items: String = (0..200)
            .map(|i| format!("<p>Item {}</p>", i % 150))
            .collect();
        let page = cut(&format!("<html><body><ul>{items}</ul></body></html>"));
        let lines: Vec<&str> = page.text.lines().collect();
        let mut groups = BlockGroups::new(&page);
        for line in &lines {
            let g = groups.of(line).unwrap();
            let scan: Vec<usize> = (0..page.blocks.len())
                .filter(|&i| &page.text[page.blocks[i].start..page.blocks[i].end] == *line)
                .collect();
            assert_eq!(groups.used[g], scan, "{line}");
        }
        assert!(groups.index.is_some() && groups.used.len() == 150);
    }
}
