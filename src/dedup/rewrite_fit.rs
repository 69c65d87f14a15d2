//! Owns fitting the rewrite model ([`crate::dedup::rewrite_model`]) for `eval dedup`: the
//! alignment features of synthetic rewrites of the training articles with their originals
//! (positives) and of real same-topic article pairs that are not near-copies (negatives), and a
//! class-balanced, lightly ridged logistic regression over them (Newton's method, f64,
//! deterministic).

use super::{near_gold, Doc, Synthetic, TRAIN_RATES};
use crate::dedup::align::{Alignment, Probe, Sketch};
use crate::dedup::eval_gen::Generator;
use crate::dedup::rewrite_model::{features, RewriteModel, FEATURES, MIN_COVERED};
use crate::dedup::DedupConfig;
use std::collections::HashMap;

#[path = "rewrite_losses.rs"]
mod losses;
#[path = "rewrite_short.rs"]
mod short;
pub(super) use short::{choose_band, Band, SHORT_GRID};
#[path = "rewrite_fit_report.rs"]
mod fit_report;
pub(super) use fit_report::report;

const N: usize = FEATURES.len() + 1;
/// Ridge on the weights (not the bias), against the mean loss.
const RIDGE: f64 = 1e-3;

/// One training example: an alignment's features and whether it is a rewrite.
#[derive(Debug, Clone)]
pub(super) struct Sample {
    pub x: [f32; FEATURES.len()],
    pub rewrite: bool,
    /// The generator and rate of a positive; `None` for a real pair.
    pub generator: Option<(Generator, f64)>,
    /// The documents (new, old) by name.
    pub names: (String, String),
    /// Their topic.
    pub topic: String,
    /// Content words in the matching ([`Alignment::aligned_words`]).
    pub words: usize,
    /// Share of them in reworded sentences ([`Alignment::reworded`]).
    pub reworded: f32,
    /// Matches in the matching ([`Alignment::matches`]).
    pub matches: usize,
}

impl Sample {
    /// Returns whether the sample passes the gates `(rewrite_min_words, rewrite_min_reworded)`.
    pub fn passes(&self, gates: (usize, f32)) -> bool {
        self.words >= gates.0 && self.reworded >= gates.1
    }
}

/// Returns the indices of the features named in `names` (for `--drop-features`).
pub(super) fn feature_mask(names: &[String]) -> anyhow::Result<Vec<usize>> {
    names
        .iter()
        .filter(|n| !n.is_empty())
        .map(|n| {
            FEATURES.iter().position(|f| f == n).ok_or_else(|| {
                anyhow::anyhow!(
                    "unknown rewrite feature {n:?}; features: {}",
                    FEATURES.join(", ")
                )
            })
        })
        .collect()
}

/// Returns the features of an alignment with the `mask`ed ones zeroed (a zero column gets
/// weight 0 from the ridge).
fn masked(a: &Alignment, mask: &[usize]) -> [f32; FEATURES.len()] {
    let mut x = features(a);
    for &m in mask {
        x[m] = 0.0;
    }
    x
}

/// Returns the samples of `docs`: each synthetic rewrite (of `synthetic`) aligned with its
/// original, and each ordered pair of documents of one topic that are not in one gold
/// near-duplicate group; only those whose matching covers [`MIN_COVERED`] of the new text (the
/// gates `rewrite_min_words` and `rewrite_min_reworded` are chosen on them by
/// [`choose_gates`]).
pub(super) fn collect(
    docs: &[&Doc],
    gold_near: &HashMap<String, usize>,
    synthetic: &Synthetic,
    c: &DedupConfig,
    mask: &[usize],
) -> Vec<Sample> {
    let sketches: Vec<Sketch> = docs.iter().map(|d| Sketch::of(&d.text)).collect();
    let mut out = Vec::new();
    let sample = |a: &Alignment, generator: Option<(Generator, f64)>, names, topic: &str| Sample {
        x: masked(a, mask),
        rewrite: generator.is_some(),
        generator,
        names,
        topic: topic.to_string(),
        words: a.aligned_words,
        reworded: a.reworded,
        matches: a.matches,
    };
    for (g, rate, texts) in &synthetic.sets {
        for (d, old) in docs.iter().zip(&sketches) {
            let a = Probe::new(Sketch::of(&texts[&d.name])).align(old, c.align_overlap, 0.0);
            if a.covered_new >= MIN_COVERED {
                let names = (format!("{} ({})", d.name, g.name()), d.name.clone());
                out.push(sample(&a, Some((*g, *rate)), names, &d.topic));
            }
        }
    }
    for (i, d) in docs.iter().enumerate() {
        let probe = Probe::new(sketches[i].clone());
        for (j, e) in docs.iter().enumerate() {
            if i == j || d.topic != e.topic || gold_near[&d.name] == gold_near[&e.name] {
                continue;
            }
            let a = probe.align(&sketches[j], c.align_overlap, MIN_COVERED);
            if a.covered_new >= MIN_COVERED {
                out.push(sample(&a, None, (d.name.clone(), e.name.clone()), &d.topic));
            }
        }
    }
    out
}

/// Rewrite model scores tried as `rewrite_threshold`.
pub(super) const REWRITE_GRID: [f32; 10] = [0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99];
/// `rewrite_min_words` values tried. None below 20: a matching of fewer content words is too
/// small to tell a reworded copy from two short reports of one fact, and the few real pairs
/// that short on the training topics are too few to show it (folds that chose no floor took
/// two and three real pairs on their held-out topics for rewrites).
const MIN_WORDS_GRID: [usize; 4] = [20, 30, 40, 60];
/// `rewrite_min_reworded` values tried.
const MIN_REWORDED_GRID: [f32; 5] = [0.0, 0.25, 0.4, 0.5, 0.65];

/// Returns the lowest grid threshold with the fewest of `counts` (false positives per
/// threshold of [`REWRITE_GRID`]), and that count.
pub(super) fn lowest_fewest(counts: &[usize]) -> (f32, usize) {
    let fewest = counts.iter().copied().min().unwrap_or(0);
    let at = counts.iter().position(|&f| f == fewest).unwrap_or(0);
    (REWRITE_GRID[at], fewest)
}

/// Returns the real pairs among `samples` whose score in `held` is at or above each threshold
/// of [`REWRITE_GRID`].
pub(super) fn false_positives(samples: &[Sample], held: &[f32]) -> Vec<usize> {
    REWRITE_GRID
        .iter()
        .map(|&v| {
            samples
                .iter()
                .zip(held)
                .filter(|(s, &p)| !s.rewrite && p >= v)
                .count()
        })
        .collect()
}

/// What a choice of gates gives on held-out topics.
#[derive(Debug, Clone, Copy)]
pub(super) struct GateScore {
    pub gates: (usize, f32),
    pub threshold: f32,
    pub false_positives: usize,
    pub recall: f64,
}

/// Chooses `(rewrite_min_words, rewrite_min_reworded)` on `samples` alone: for each pair of the
/// grids, the model is fitted on the samples past those gates without each inner fold of
/// topics ([`held_out_scores`]), the threshold is the lowest with the fewest held-out real pairs
/// at or above it, and recall is the share of all `probes` synthetic rewrites (gated ones count
/// as missed) scoring at or above it. The fewest false positives win, then the highest recall,
/// then the gates closest to `prior` (the shipped ones). Returns the winner and every score.
pub(super) fn choose_gates(
    samples: &[Sample],
    probes: usize,
    prior: (usize, f32),
) -> (GateScore, Vec<GateScore>) {
    let mut all = Vec::new();
    for &w in &MIN_WORDS_GRID {
        for &r in &MIN_REWORDED_GRID {
            let sub: Vec<Sample> = samples
                .iter()
                .filter(|s| s.passes((w, r)))
                .cloned()
                .collect();
            let held = held_out_scores(&sub);
            let (threshold, fp) = lowest_fewest(&false_positives(&sub, &held));
            let hit = sub
                .iter()
                .zip(&held)
                .filter(|(s, &p)| s.rewrite && p >= threshold)
                .count();
            all.push(GateScore {
                gates: (w, r),
                threshold,
                false_positives: fp,
                recall: hit as f64 / probes.max(1) as f64,
            });
        }
    }
    let distance =
        |g: (usize, f32)| (g.0 as f32 - prior.0 as f32).abs() / 40.0 + (g.1 - prior.1).abs() / 0.5;
    let best = all
        .iter()
        .copied()
        .min_by(|a, b| {
            a.false_positives
                .cmp(&b.false_positives)
                .then(b.recall.total_cmp(&a.recall))
                .then(distance(a.gates).total_cmp(&distance(b.gates)))
        })
        .expect("the grids are not empty");
    (best, all)
}

/// Folds of the topics for the held-out scores.
pub(super) const INNER_FOLDS: usize = 4;

/// Returns each sample's score by a model fitted without its topic's fold (the topics sorted
/// and dealt round-robin into [`INNER_FOLDS`] folds): what a model scores on topics it has
/// not seen, for choosing the threshold.
pub(super) fn held_out_scores(samples: &[Sample]) -> Vec<f32> {
    short::held_out_scores_on(samples, |_| true)
}

/// Fits the logistic model, positives and negatives weighted to equal totals.
pub(super) fn fit(samples: &[Sample]) -> RewriteModel {
    let pos = samples.iter().filter(|s| s.rewrite).count().max(1) as f64;
    let neg = samples.iter().filter(|s| !s.rewrite).count().max(1) as f64;
    let weight = |s: &Sample| if s.rewrite { 0.5 / pos } else { 0.5 / neg };
    let row = |s: &Sample| {
        let mut r = [1.0f64; N];
        for (r, x) in r.iter_mut().zip(&s.x) {
            *r = f64::from(*x);
        }
        r
    };
    let mut w = [0.0f64; N];
    for _ in 0..100 {
        let mut g = [0.0f64; N];
        let mut h = [[0.0f64; N]; N];
        for s in samples {
            let x = row(s);
            let z: f64 = w.iter().zip(&x).map(|(w, x)| w * x).sum();
            let p = crate::logistic::sigmoid(z);
            let (sw, y) = (weight(s), f64::from(u8::from(s.rewrite)));
            for a in 0..N {
                g[a] += sw * (p - y) * x[a];
                for b in 0..N {
                    h[a][b] += sw * p * (1.0 - p) * x[a] * x[b];
                }
            }
        }
        for a in 0..N {
            let ridge = if a + 1 < N { RIDGE } else { 1e-9 };
            g[a] += ridge * w[a];
            h[a][a] += ridge;
        }
        let step = solve(h, g);
        let size: f64 = step.iter().map(|s| s.abs()).sum();
        for (w, s) in w.iter_mut().zip(&step) {
            *w -= s;
        }
        if size < 1e-9 {
            break;
        }
    }
    let mut weights = [0.0f32; N];
    for (o, w) in weights.iter_mut().zip(&w) {
        *o = *w as f32;
    }
    RewriteModel { weights }
}

/// Solves `h x = g` by Gaussian elimination with partial pivoting.
fn solve(mut h: [[f64; N]; N], mut g: [f64; N]) -> [f64; N] {
    for col in 0..N {
        let p = (col..N)
            .max_by(|&a, &b| h[a][col].abs().total_cmp(&h[b][col].abs()))
            .unwrap_or(col);
        h.swap(col, p);
        g.swap(col, p);
        let d = h[col][col];
        if d.abs() < 1e-12 {
            continue;
        }
        let pivot = h[col];
        for r in col + 1..N {
            let f = h[r][col] / d;
            for (x, p) in h[r].iter_mut().zip(&pivot).skip(col) {
                *x -= f * p;
            }
            g[r] -= f * g[col];
        }
    }
    let mut x = [0.0f64; N];
    for r in (0..N).rev() {
        let s: f64 = (r + 1..N).map(|k| h[r][k] * x[k]).sum();
        x[r] = if h[r][r].abs() < 1e-12 {
            0.0
        } else {
            (g[r] - s) / h[r][r]
        };
    }
    x
}

/// Returns the model's weights as the Rust constant `rewrite_model.rs` ships.
pub(super) fn as_rust(m: &RewriteModel) -> String {
    let ws: Vec<String> = m.weights.iter().map(|w| format!("{w:.4}")).collect();
    format!(
        "pub const SHIPPED: RewriteModel = RewriteModel {{\n    weights: [{}],\n}};",
        ws.join(", ")
    )
}

/// A sample whose first feature is `x0` (the others 0), for the tests of this module and
/// [`short`].
#[cfg(test)]
fn test_sample(x0: f32, rewrite: bool, topic: &str, words: usize, matches: usize) -> Sample {
    let mut x = [0.0; crate::dedup::rewrite_model::FEATURES.len()];
    x[0] = x0;
    Sample {
        x,
        rewrite,
        generator: None,
        names: (String::new(), String::new()),
        topic: topic.to_string(),
        words,
        reworded: 1.0,
        matches,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(x0: f32, rewrite: bool) -> Sample {
        test_sample(x0, rewrite, "", 100, 4)
    }

    #[test]
    fn fit_separates_by_the_informative_feature() {
        let mut s: Vec<Sample> = (0..20)
            .map(|i| sample(0.6 + i as f32 / 100.0, false))
            .collect();
        s.extend((0..40).map(|i| sample(0.75 + i as f32 / 200.0, true)));
        let m = fit(&s);
        assert!(m.weights[0] > 1.0, "{m:?}");
        assert!(m.probability(&sample(0.95, true).x) > 0.5);
        assert!(m.probability(&sample(0.6, false).x) < 0.5);
        // Deterministic.
        assert_eq!(fit(&s), m);
    }

    #[test]
    fn gates_are_chosen_to_keep_short_lookalikes_out() {
        // Eight topics; in each, rewrites score high on feature 0 and real pairs low, except
        // short real pairs (25 words) that look like rewrites: only a words gate of at least
        // 30 keeps them from the held-out false positives.
        let mut s = Vec::new();
        for t in 0..8 {
            for i in 0..10 {
                let mut p = sample(0.8 + i as f32 / 100.0, true);
                p.topic = t.to_string();
                s.push(p);
                let mut n = sample(0.2 + i as f32 / 100.0, false);
                n.topic = t.to_string();
                s.push(n);
            }
            let mut short = sample(0.9, false);
            (short.topic, short.words) = (t.to_string(), 25);
            s.push(short);
        }
        let (best, all) = choose_gates(&s, 80, (40, 0.5));
        assert_eq!(all.len(), MIN_WORDS_GRID.len() * MIN_REWORDED_GRID.len());
        assert_eq!(best.false_positives, 0, "{best:?}");
        assert!(best.gates.0 >= 30, "{best:?}");
        assert!(all
            .iter()
            .filter(|g| g.gates.0 == 20)
            .all(|g| g.false_positives > 0 || g.recall < best.recall));
        // Every rewrite passes 60 words: recall 1, and the closest gates to the prior among
        // the equals.
        assert!((best.recall - 1.0).abs() < 1e-9, "{best:?}");
        assert_eq!(best.gates, (40, 0.5));
    }

    #[test]
    fn masked_features_get_no_weight() {
        let mask = feature_mask(&["covered_old".to_string()]).unwrap();
        assert_eq!(mask, vec![1]);
        assert!(feature_mask(&["no_such_feature".to_string()]).is_err());
        let a = Alignment {
            covered_new: 0.9,
            covered_old: 0.8,
            ..Alignment::default()
        };
        let x = masked(&a, &mask);
        assert_eq!((x[0], x[1]), (0.9, 0.0));
    }
}
