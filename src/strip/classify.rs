//! Owns the line classifier: context features, the logistic model fitted on wcxb-train, and decoding.
//!
//! Each line gets a content probability from a logistic regression over its own shape and its
//! neighbours' (jusText/boilerpipe-style context). Decoding then finds the article body as the
//! contiguous run of lines with the most content evidence and keeps lines inside it on a lower
//! bar than lines outside it, so short subheadings between good paragraphs survive.

use super::lines::Line;
use anyhow::{bail, Context};

/// Names of the model features, in vector order; the weights file lists them by name.
pub const FEATURES: &[&str] = &[
    "bias",
    "log_words",
    "stop_density",
    "terminal",
    "caps_ratio",
    "digit_share",
    "chrome_ratio",
    "separators",
    "blank_before",
    "dup_in_doc",
    "word_pos",
    "word_pos_sq",
    "first_line",
    "short",
    "log_words_prev",
    "log_words_next",
    "terminal_prev",
    "terminal_next",
    "win_log_words",
    "win_stop_density",
    "win_terminal",
    "rel_len",
    "log_dist_long",
    "long_sentence",
    "url_like",
    "ends_colon",
    "log_short_run",
];
pub const N_FEATURES: usize = 27;

/// The shipped weights, rebuilt by the ignored test `strip::train::tests::fit_line_model`.
const SHIPPED_WEIGHTS: &str = include_str!("line_model.txt");

/// Logistic-regression weights over [`FEATURES`].
#[derive(Debug, Clone, PartialEq)]
pub struct LineModel {
    pub weights: [f32; N_FEATURES],
}

impl LineModel {
    /// Returns the model shipped with the crate.
    pub fn shipped() -> anyhow::Result<Self> {
        Self::parse(SHIPPED_WEIGHTS).context("shipped line model is malformed")
    }

    /// Parses `name weight` lines (blank lines and `#` comments skipped); every feature must be present.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let mut weights = [f32::NAN; N_FEATURES];
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut parts = line.split_whitespace();
            let (Some(name), Some(value)) = (parts.next(), parts.next()) else {
                bail!("bad weight line {line:?}");
            };
            let Some(i) = FEATURES.iter().position(|f| *f == name) else {
                bail!("unknown feature {name:?}");
            };
            weights[i] = value
                .parse()
                .with_context(|| format!("bad weight for {name}"))?;
        }
        if let Some(i) = weights.iter().position(|w| w.is_nan()) {
            bail!("missing weight for {}", FEATURES[i]);
        }
        Ok(Self { weights })
    }

    /// Renders the weights in the format [`LineModel::parse`] reads.
    pub fn render(&self) -> String {
        FEATURES
            .iter()
            .zip(self.weights)
            .map(|(n, w)| format!("{n} {w:.5}\n"))
            .collect()
    }

    /// Returns the content probability of a feature vector.
    #[inline]
    pub fn probability(&self, x: &[f32; N_FEATURES]) -> f32 {
        let z: f32 = self.weights.iter().zip(x).map(|(w, v)| w * v).sum();
        crate::logistic::sigmoid_f32(z)
    }
}

/// Stop-word density used for every line when the document is not English, so no line is judged by it.
const NEUTRAL_STOP_DENSITY: f32 = 0.3;

/// Computes the feature vectors of all lines of one document into `out` (cleared first).
///
/// `dup` says, per line, whether its shape occurs on another line of the document.
pub fn features(lines: &[Line], dup: &[bool], out: &mut Vec<[f32; N_FEATURES]>) {
    out.clear();
    let n = lines.len();
    if n == 0 {
        return;
    }
    let total_words: u32 = lines.iter().map(|l| l.words).sum::<u32>().max(1);
    let total_stops: u32 = lines.iter().map(|l| l.stops).sum();
    // Below this share of stop words the text is not English: stop-word evidence is switched off.
    let english = total_stops as f32 / total_words as f32 >= 0.12;
    let max_words = lines.iter().map(|l| l.words).max().unwrap_or(1).max(1);
    let log_max = ln1(max_words);
    let stop_density = |l: &Line| {
        if !english {
            NEUTRAL_STOP_DENSITY
        } else if l.words == 0 {
            0.0
        } else {
            l.stops as f32 / l.words as f32
        }
    };
    let is_long = |l: &Line| l.words >= 15 && l.terminal;

    // Distance (in lines) to the nearest long sentence-like line, forward and backward passes.
    let mut dist = vec![u32::MAX / 2; n];
    let mut last = None;
    for i in 0..n {
        if is_long(&lines[i]) {
            last = Some(i);
        }
        if let Some(j) = last {
            dist[i] = (i - j) as u32;
        }
    }
    last = None;
    for i in (0..n).rev() {
        if is_long(&lines[i]) {
            last = Some(i);
        }
        if let Some(j) = last {
            dist[i] = dist[i].min((j - i) as u32);
        }
    }

    // Length of the run of consecutive short lines (menus, tag lists) each line belongs to.
    let mut run = vec![0u32; n];
    let mut i = 0;
    while i < n {
        let mut j = i;
        while j < n && lines[j].words <= 4 {
            j += 1;
        }
        for r in &mut run[i..j] {
            *r = (j - i) as u32;
        }
        i = j.max(i + 1);
    }

    // Per-line values the window features reuse, computed once (ln is the costly part).
    let lw: Vec<f32> = lines.iter().map(|l| ln1(l.words)).collect();
    let sd: Vec<f32> = lines.iter().map(stop_density).collect();
    let mut words_before = 0u32;
    let (mut wl, mut ws, mut wt) = (0.0f32, 0.0f32, 0.0f32);
    let (mut lo, mut hi) = (0usize, 0usize);
    for i in 0..n {
        let l = &lines[i];
        let w = l.words.max(1) as f32;
        let prev = i.checked_sub(1).map(|j| &lines[j]);
        let next = lines.get(i + 1);
        // Sliding window of up to three lines either side.
        while hi < (i + 4).min(n) {
            wl += lw[hi];
            ws += sd[hi];
            wt += flag(lines[hi].terminal);
            hi += 1;
        }
        while lo < i.saturating_sub(3) {
            wl -= lw[lo];
            ws -= sd[lo];
            wt -= flag(lines[lo].terminal);
            lo += 1;
        }
        let win = (hi - lo) as f32;
        let pos = (words_before as f32 + 0.5 * l.words as f32) / total_words as f32;
        words_before += l.words;
        out.push([
            1.0,
            lw[i],
            sd[i],
            flag(l.terminal),
            l.caps as f32 / w,
            l.digits as f32 / (l.digits + l.letters).max(1) as f32,
            l.chrome as f32 / w,
            flag(l.separators > 0),
            flag(l.blank_before),
            flag(dup[i]),
            pos,
            pos * pos,
            flag(i == 0),
            flag(l.words <= 3),
            i.checked_sub(1).map_or(0.0, |j| lw[j]),
            lw.get(i + 1).copied().unwrap_or(0.0),
            flag(prev.is_some_and(|p| p.terminal)),
            flag(next.is_some_and(|p| p.terminal)),
            wl / win,
            ws / win,
            wt / win,
            lw[i] / log_max.max(1e-3),
            ln1(dist[i].min(1000)),
            flag(is_long(l)),
            flag(l.url_like),
            flag(l.ends_colon),
            ln1(run[i]),
        ]);
    }
}

/// Returns ln(1 + x), from a table for the small counts that dominate.
#[inline]
fn ln1(x: u32) -> f32 {
    static TABLE: std::sync::OnceLock<[f32; 256]> = std::sync::OnceLock::new();
    let t = TABLE.get_or_init(|| std::array::from_fn(|i| (1.0 + i as f32).ln()));
    match t.get(x as usize) {
        Some(v) => *v,
        None => (1.0 + x as f32).ln(),
    }
}

#[inline]
fn flag(b: bool) -> f32 {
    if b {
        1.0
    } else {
        0.0
    }
}

/// Thresholds of the decoding step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decoding {
    /// A line adds (p - body_bar) x weight to the body run's evidence.
    pub body_bar: f32,
    /// Lines inside the body run are kept when p is at least this.
    pub keep_inside: f32,
    /// Lines outside the body run are kept when p is at least this.
    pub keep_outside: f32,
}

/// Decides which lines to keep: `keep[i]` is set for the lines of the article body.
///
/// `forced[i]` marks lines that rules already removed; they neither count as evidence nor are kept.
pub fn decode(lines: &[Line], probs: &[f32], forced: &[bool], d: &Decoding, keep: &mut Vec<bool>) {
    keep.clear();
    keep.resize(lines.len(), false);
    // Maximum-sum contiguous run (Kadane) over word-weighted evidence.
    let (mut best, mut best_lo, mut best_hi) = (0.0f32, 0usize, 0usize);
    let (mut cur, mut cur_lo) = (0.0f32, 0usize);
    for i in 0..lines.len() {
        let gain = if forced[i] {
            0.0
        } else {
            (probs[i] - d.body_bar) * (1.0 + lines[i].words as f32).sqrt()
        };
        if cur <= 0.0 {
            cur = 0.0;
            cur_lo = i;
        }
        cur += gain;
        if cur > best {
            best = cur;
            best_lo = cur_lo;
            best_hi = i + 1;
        }
    }
    for i in 0..lines.len() {
        if forced[i] {
            continue;
        }
        let bar = if (best_lo..best_hi).contains(&i) {
            d.keep_inside
        } else {
            d.keep_outside
        };
        keep[i] = probs[i] >= bar;
    }
}

/// Keeps the best-supported line when `keep` holds none: the non-forced line with words and the
/// highest probability (ties: more words, then the earlier line). Returns the line kept.
///
/// For input that is an article by premise. When no line clears `body_bar` there is no body run
/// and every line faces `keep_outside`, so a short article whose lines the model doubts (one or
/// two sentences, their probabilities smoothed down by a trailing short line) comes out empty.
/// The line kept is the body run the decoding would find were the body bar lowered to just
/// under the document's best probability; inside a run a line faces the lower `keep_inside`,
/// which a line that starts the run clears.
pub fn keep_best_line(
    lines: &[Line],
    probs: &[f32],
    forced: &[bool],
    keep: &mut [bool],
) -> Option<usize> {
    if keep.contains(&true) {
        return None;
    }
    let best = (0..lines.len())
        .filter(|&i| !forced[i] && lines[i].words > 0)
        .max_by(|&a, &b| {
            probs[a]
                .total_cmp(&probs[b])
                .then(lines[a].words.cmp(&lines[b].words))
                .then(b.cmp(&a))
        })?;
    keep[best] = true;
    Some(best)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strip::lines::analyse;

    #[test]
    fn shipped_model_parses_and_round_trips() {
        let m = LineModel::shipped().unwrap();
        assert_eq!(LineModel::parse(&m.render()).unwrap(), m);
    }

    #[test]
    fn rejects_incomplete_weights() {
        assert!(LineModel::parse("bias 1.0\n").is_err());
        assert!(LineModel::parse("nonsense 1.0\n").is_err());
    }

    #[test]
    fn short_line_between_paragraphs_is_inside_the_body_run() {
        let text = "Home\nNews\nSport\nA long paragraph with many words that reads like prose and ends well.\nSubheading\nAnother long paragraph with many words that reads like prose and ends well.\nCopyright";
        let mut lines = Vec::new();
        analyse(text, &mut lines);
        let probs = [0.1, 0.1, 0.1, 0.9, 0.4, 0.9, 0.1];
        let forced = [false; 7];
        let d = Decoding {
            body_bar: 0.5,
            keep_inside: 0.3,
            keep_outside: 0.8,
        };
        let mut keep = Vec::new();
        decode(&lines, &probs, &forced, &d, &mut keep);
        assert_eq!(keep, [false, false, false, true, true, true, false]);
    }

    #[test]
    fn an_article_no_line_of_which_clears_the_body_bar_keeps_its_best_line() {
        // The shipped model's smoothed probabilities of a two-sentence report followed by a
        // short line: neither clears the body bar, so there is no body run.
        let text = "Flood closes river road\nThe old bridge over the Mill River was closed by county engineers,\n\nCopy 0.\n";
        let mut lines = Vec::new();
        analyse(text, &mut lines);
        let probs = [0.26, 0.49, 0.28];
        let d = Decoding {
            body_bar: 0.5,
            keep_inside: 0.3,
            keep_outside: 0.8,
        };
        let mut keep = Vec::new();
        decode(&lines, &probs, &[false; 3], &d, &mut keep);
        assert_eq!(keep, [false; 3]);
        assert_eq!(
            keep_best_line(&lines, &probs, &[false; 3], &mut keep),
            Some(1)
        );
        assert_eq!(keep, [false, true, false]);
        // Lines the rules removed never come back, and a decoding that kept a line is left alone.
        let mut keep = vec![false; 3];
        assert_eq!(
            keep_best_line(&lines, &probs, &[false, true, false], &mut keep),
            Some(2)
        );
        assert_eq!(keep_best_line(&lines, &probs, &[false; 3], &mut keep), None);
        assert_eq!(keep, [false, false, true]);
    }
}
