//! Owns the DOM-block model: per-block features (line shape, link share, markup flags, hashed
//! tag-path and class/id tokens, agreement with the page's structured sources), the logistic
//! model fitted on wcxb-train by `dropline train strip`, and the decoding of kept blocks.
//!
//! The structured sources of the cascade (JSON-LD `articleBody`, `<article>`/`<main>`/
//! `itemprop=articleBody` markup, the readability candidate) enter as features: the model learns
//! how far to trust each, and a block they vouch for is still judged on its own shape and markup.

use super::blocks::{BlockPage, N_FLAGS};
use super::classify::{decode, features as line_features, Decoding, N_FEATURES as N_LINE};
use super::lines::{measure, Line};
use super::metric::{shingles, tokens};
use anyhow::{bail, Context};
use std::collections::HashSet;

/// Names of the dense features after the line features of [`super::classify::FEATURES`].
pub const DOM_FEATURES: &[&str] = &[
    "link_density",
    "win_link_density",
    "log_depth",
    "rule_kind",
    "rd_present",
    "rd_overlap",
    "win_rd_overlap",
    "ld_present",
    "ld_overlap",
    "block_pos",
];
const N_DOM: usize = 10;
/// Dense features: the line model's, the DOM ones, then one per structural flag.
pub const N_DENSE: usize = N_LINE + N_DOM + N_FLAGS;
/// Hashed context tokens fall into `2^HASH_BITS` buckets.
pub const HASH_BITS: u32 = 12;
const N_HASH: usize = 1 << HASH_BITS;

/// The shipped model, rebuilt byte for byte by `dropline train strip` (see the file's header).
const SHIPPED: &str = include_str!("block_model.txt");

/// Returns the name of dense feature `j`.
pub fn dense_name(j: usize) -> String {
    if j < N_LINE {
        super::classify::FEATURES[j].to_string()
    } else if j < N_LINE + N_DOM {
        DOM_FEATURES[j - N_LINE].to_string()
    } else {
        format!("flag_{}", super::blocks::FLAG_NAMES[j - N_LINE - N_DOM])
    }
}

/// How block probabilities become kept blocks; chosen by site-grouped cross-validation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decode {
    /// A block adds (p - body_bar) x weight to the evidence of the article's contiguous run.
    pub body_bar: f32,
    /// Blocks inside the article's run are kept when their smoothed probability reaches this bar.
    pub keep_inside: f32,
    /// Blocks outside it are kept when their smoothed probability reaches this bar.
    pub keep_outside: f32,
    /// Weight of the neighbours' mean probability in a block's smoothed probability.
    pub smoothing: f32,
}

/// Logistic regression over dense features and hashed context tokens.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockModel {
    pub dense: Vec<f32>,
    pub hashed: Vec<f32>,
    pub decode: Decode,
}

impl BlockModel {
    /// Returns the model shipped with the crate.
    pub fn shipped() -> anyhow::Result<Self> {
        Self::parse(SHIPPED).context("shipped block model is malformed")
    }

    /// Parses the format [`BlockModel::render`] writes; every dense feature must be present.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let mut dense = vec![f32::NAN; N_DENSE];
        let mut hashed = vec![0.0; N_HASH];
        let mut bars = [None; 4];
        let names: Vec<String> = (0..N_DENSE).map(dense_name).collect();
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let parts: Vec<&str> = line.split_whitespace().collect();
            let num = |s: &str| {
                s.parse::<f32>()
                    .with_context(|| format!("bad number in {line:?}"))
            };
            match parts.as_slice() {
                ["body_bar", v] => bars[0] = Some(num(v)?),
                ["keep_inside", v] => bars[1] = Some(num(v)?),
                ["keep_outside", v] => bars[2] = Some(num(v)?),
                ["smoothing", v] => bars[3] = Some(num(v)?),
                ["bits", v] if *v == HASH_BITS.to_string() => {}
                ["bits", v] => bail!("model has {v} hash bits, this build reads {HASH_BITS}"),
                ["d", name, v] => {
                    let Some(j) = names.iter().position(|n| n == name) else {
                        bail!("unknown feature {name:?}");
                    };
                    dense[j] = num(v)?;
                }
                ["h", b, v] => {
                    let b: usize = b
                        .parse()
                        .with_context(|| format!("bad bucket in {line:?}"))?;
                    let Some(slot) = hashed.get_mut(b) else {
                        bail!("bucket {b} out of range");
                    };
                    *slot = num(v)?;
                }
                _ => bail!("bad model line {line:?}"),
            }
        }
        if let Some(j) = dense.iter().position(|w| w.is_nan()) {
            bail!("missing weight for {}", names[j]);
        }
        let [Some(body_bar), Some(keep_inside), Some(keep_outside), Some(smoothing)] = bars else {
            bail!("model lacks one of body_bar, keep_inside, keep_outside, smoothing");
        };
        Ok(Self {
            dense,
            hashed,
            decode: Decode {
                body_bar,
                keep_inside,
                keep_outside,
                smoothing,
            },
        })
    }

    /// Renders the model; weights are rounded so the file is small and rebuilt byte for byte.
    pub fn render(&self) -> String {
        let d = &self.decode;
        let mut s = format!(
            "body_bar {:.2}\nkeep_inside {:.2}\nkeep_outside {:.2}\nsmoothing {:.2}\nbits {HASH_BITS}\n",
            d.body_bar, d.keep_inside, d.keep_outside, d.smoothing
        );
        for (j, w) in self.dense.iter().enumerate() {
            s.push_str(&format!("d {} {w:.5}\n", dense_name(j)));
        }
        for (b, w) in self.hashed.iter().enumerate() {
            if format!("{w:.4}").trim_start_matches('-') != "0.0000" {
                s.push_str(&format!("h {b} {w:.4}\n"));
            }
        }
        s
    }

    /// Returns the content probability of one block.
    #[inline]
    pub fn probability(&self, x: &[f32; N_DENSE], buckets: &[u32]) -> f32 {
        let mut z: f32 = self.dense.iter().zip(x).map(|(w, v)| w * v).sum();
        for &b in buckets {
            z += self.hashed[b as usize];
        }
        crate::logistic::sigmoid_f32(z)
    }
}

/// Returns the bucket of a context-token hash.
#[inline]
fn bucket(t: u64) -> u32 {
    (t >> (64 - HASH_BITS)) as u32
}

/// A page's blocks measured for the model.
#[derive(Debug, Default)]
pub struct Measured {
    pub page: BlockPage,
    /// Per block, its line measures (range into `page.text`).
    pub lines: Vec<Line>,
    pub dense: Vec<[f32; N_DENSE]>,
    /// Hash buckets of every block's context tokens; block `i` owns `bucket_ends[i-1]..bucket_ends[i]`.
    pub buckets: Vec<u32>,
    pub bucket_ends: Vec<usize>,
}

impl Measured {
    /// Returns the hash buckets of block `i`'s context tokens.
    pub fn buckets(&self, i: usize) -> &[u32] {
        let start = i.checked_sub(1).map_or(0, |j| self.bucket_ends[j]);
        &self.buckets[start..self.bucket_ends[i]]
    }
}

/// What the features of one block read of the page: every block's line measures and link
/// share (the windows and the position read the neighbours and the count), and the overlap of
/// the blocks with the readability candidate (read in a window of two blocks either side).
/// [`measure_page`] fills it for every block; the edge pruner ([`super::edge_score`]) only where
/// its blocks read it, so both give a block the same features, bit for bit.
pub(super) struct PageView<'a> {
    pub page: &'a BlockPage,
    pub lines: &'a [Line],
    /// Per block, its share of characters inside links.
    pub link_density: &'a [f32],
    /// Per block, the share of its token 3-grams in the readability candidate.
    pub rd_ov: &'a [f32],
    /// Whether the page has a readability candidate and a JSON-LD `articleBody`.
    pub rd: bool,
    pub ld: bool,
}

impl PageView<'_> {
    /// Returns the dense features of block `i`, given its line features `lf` and its overlap
    /// `ld_ov` with the JSON-LD `articleBody`.
    pub fn dense(&self, i: usize, lf: &[f32; N_LINE], ld_ov: f32) -> [f32; N_DENSE] {
        let (b, l) = (&self.page.blocks[i], &self.lines[i]);
        let n = self.page.blocks.len();
        let text = &self.page.text[b.start..b.end];
        let lo = i.saturating_sub(2);
        let hi = (i + 3).min(n);
        let win = self.link_density[lo..hi].iter().sum::<f32>() / (hi - lo) as f32;
        let mut x = [0f32; N_DENSE];
        x[..N_LINE].copy_from_slice(lf);
        let d = &mut x[N_LINE..N_LINE + N_DOM];
        d[0] = self.link_density[i];
        d[1] = win;
        d[2] = (1.0 + b.depth as f32).ln();
        d[3] = flag(super::rules::shape_kind(text, l).is_some());
        d[4] = flag(self.rd);
        d[5] = self.rd_ov[i];
        d[6] = self.rd_ov[lo..hi].iter().sum::<f32>() / (hi - lo) as f32;
        d[7] = flag(self.ld);
        d[8] = ld_ov;
        d[9] = i as f32 / n.max(1) as f32;
        for (k, v) in x[N_LINE + N_DOM..].iter_mut().enumerate() {
            *v = flag(b.flags & (1 << k) != 0);
        }
        x
    }

    /// Appends the hash buckets of block `i`'s context tokens to `out`.
    pub fn push_buckets(&self, i: usize, out: &mut Vec<u32>) {
        let b = &self.page.blocks[i];
        // Each token twice: alone, and joined with whether the readability candidate holds the
        // block, so a class name can weigh differently inside and outside that candidate.
        let salt = if self.rd_ov[i] >= 0.5 {
            0x5bd1_e995
        } else {
            0x1b87_3593
        };
        for &t in &self.page.tokens[b.tok_start..b.tok_end] {
            out.push(bucket(t));
            out.push(bucket((t ^ salt).wrapping_mul(0x9e37_79b9_7f4a_7c15)));
        }
    }
}

/// Returns the line measures of every block of `page`, as the block model reads them.
pub(super) fn block_lines(page: &BlockPage) -> Vec<Line> {
    page.blocks
        .iter()
        .map(|b| {
            let mut l = measure(&page.text[b.start..b.end]);
            l.start = b.start;
            l.end = b.end;
            // Blocks are separate elements: none continues another the way a wrapped text
            // line does.
            l.blank_before = false;
            l
        })
        .collect()
}

/// Returns each block's share of characters inside links.
pub(super) fn link_density(page: &BlockPage) -> Vec<f32> {
    page.blocks
        .iter()
        .map(|b| b.link_chars as f32 / b.chars.max(1) as f32)
        .collect()
}

/// Measures every block of `page`.
pub fn measure_page(page: BlockPage) -> Measured {
    let n = page.blocks.len();
    let lines = block_lines(&page);
    let mut sorted: Vec<u64> = lines.iter().map(|l| l.shape).collect();
    sorted.sort_unstable();
    let dup: Vec<bool> = lines
        .iter()
        .map(|l| {
            let lo = sorted.partition_point(|x| *x < l.shape);
            sorted.get(lo + 1) == Some(&l.shape)
        })
        .collect();
    let mut lf = Vec::with_capacity(n);
    line_features(&lines, &dup, &mut lf);

    let rd = page.readability.as_deref().map(SourceSet::new);
    let ld = (!page.json_ld.trim().is_empty()).then(|| SourceSet::new(&page.json_ld));
    let ld_density = link_density(&page);
    let mut toks = Vec::new();
    let mut overlaps = |src: &Option<SourceSet>| -> Vec<f32> {
        page.blocks
            .iter()
            .map(|b| {
                toks.clear();
                toks.extend(tokens(&page.text[b.start..b.end]));
                src.as_ref().map_or(0.0, |s| s.overlap(&toks))
            })
            .collect()
    };
    let rd_ov = overlaps(&rd);
    let ld_ov = overlaps(&ld);
    let view = PageView {
        page: &page,
        lines: &lines,
        link_density: &ld_density,
        rd_ov: &rd_ov,
        rd: rd.is_some(),
        ld: ld.is_some(),
    };
    let mut dense = Vec::with_capacity(n);
    let (mut buckets, mut bucket_ends) = (Vec::new(), Vec::with_capacity(n));
    for i in 0..n {
        dense.push(view.dense(i, &lf[i], ld_ov[i]));
        view.push_buckets(i, &mut buckets);
        bucket_ends.push(buckets.len());
    }
    Measured {
        page,
        lines,
        dense,
        buckets,
        bucket_ends,
    }
}

/// Token 3-grams of a structured source's text, to measure how much of a block it holds.
struct SourceSet {
    grams: HashSet<u64>,
}

impl SourceSet {
    fn new(text: &str) -> Self {
        let mut grams = HashSet::new();
        // Per line, so a short line (fewer than three tokens) is one whole-line shingle.
        for line in text.lines() {
            let toks: Vec<&str> = tokens(line).collect();
            grams.extend(shingles(&toks, 3));
        }
        Self { grams }
    }

    /// Returns the share of the block's token 3-grams found in the source.
    fn overlap(&self, toks: &[&str]) -> f32 {
        let sh = shingles(toks, 3);
        if sh.is_empty() {
            return 0.0;
        }
        sh.iter().filter(|s| self.grams.contains(s)).count() as f32 / sh.len() as f32
    }
}

/// Returns the content probability of every block.
pub fn probabilities(model: &BlockModel, m: &Measured) -> Vec<f32> {
    (0..m.dense.len())
        .map(|i| model.probability(&m.dense[i], m.buckets(i)))
        .collect()
}

/// Decides which blocks to keep from their probabilities: smooths each with its neighbours,
/// finds the article as the contiguous run with the most word-weighted evidence, and keeps
/// blocks inside it on a lower bar than blocks outside it.
pub fn keep(lines: &[Line], probs: &[f32], d: Decode) -> Vec<bool> {
    let s = d.smoothing;
    let smoothed: Vec<f32> = (0..probs.len())
        .map(|i| {
            let p = probs[i];
            let prev = i.checked_sub(1).map(|j| probs[j]);
            let next = probs.get(i + 1).copied();
            match (prev, next) {
                (Some(a), Some(b)) => (1.0 - s) * p + s * (a + b) / 2.0,
                (Some(a), None) | (None, Some(a)) => (1.0 - s) * p + s * a,
                (None, None) => p,
            }
        })
        .collect();
    let forced = vec![false; probs.len()];
    let bars = Decoding {
        body_bar: d.body_bar,
        keep_inside: d.keep_inside,
        keep_outside: d.keep_outside,
    };
    let mut keep = Vec::new();
    decode(lines, &smoothed, &forced, &bars, &mut keep);
    keep
}

/// Returns the kept blocks' text, one block per line.
pub fn kept_text(m: &Measured, keep: &[bool]) -> String {
    let mut out = String::new();
    for (l, _) in m.lines.iter().zip(keep).filter(|(_, k)| **k) {
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(l.text(&m.page.text));
    }
    out
}

#[inline]
fn flag(b: bool) -> f32 {
    if b {
        1.0
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_model_parses_and_renders_back() {
        let m = BlockModel::shipped().unwrap();
        let again = BlockModel::parse(&m.render()).unwrap();
        assert_eq!(m, again);
        assert!(m.decode.keep_inside > 0.0 && m.decode.keep_inside < 1.0);
    }

    #[test]
    fn parse_rejects_missing_and_unknown_features() {
        assert!(BlockModel::parse(
            "body_bar 0.5\nkeep_inside 0.5\nkeep_outside 0.5\nsmoothing 0\nbits 12\n"
        )
        .is_err());
        let m = BlockModel::shipped().unwrap();
        let text = m.render() + "d no_such_feature 1.0\n";
        assert!(BlockModel::parse(&text).is_err());
    }

    #[test]
    fn smoothing_and_the_body_run_lift_a_weak_block_between_strong_ones() {
        let lines: Vec<Line> = [
            "Home",
            "A paragraph of the article.",
            "Subhead",
            "Another paragraph here.",
            "More",
        ]
        .iter()
        .map(|t| measure(t))
        .collect();
        let probs = [0.45, 0.9, 0.3, 0.9, 0.0];
        let d = Decode {
            body_bar: 0.5,
            keep_inside: 0.5,
            keep_outside: 0.5,
            smoothing: 0.5,
        };
        assert_eq!(keep(&lines, &probs, d), [true, true, true, true, false]);
        let d = Decode {
            smoothing: 0.0,
            ..d
        };
        assert_eq!(keep(&lines, &probs, d), [false, true, false, true, false]);
        // Inside the run a lower bar keeps the subheading; outside a higher bar drops the menu.
        let d = Decode {
            keep_inside: 0.25,
            keep_outside: 0.8,
            smoothing: 0.0,
            ..d
        };
        assert_eq!(keep(&lines, &probs, d), [false, true, true, true, false]);
    }

    #[test]
    fn source_overlap_counts_shared_trigrams() {
        let s = SourceSet::new("the council met on tuesday\nShort line");
        assert_eq!(s.overlap(&["the", "council", "met"]), 1.0);
        assert_eq!(s.overlap(&["Short", "line"]), 1.0);
        assert_eq!(s.overlap(&["council", "met", "on", "friday"]), 0.5);
        assert_eq!(s.overlap(&[]), 0.0);
    }
}
