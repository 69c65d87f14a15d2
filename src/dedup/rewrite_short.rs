//! Owns the rewrite tier's short band: matchings of fewer content words than
//! `rewrite_min_words` but at least `rewrite_short_words`, which the model (fitted on the
//! matchings past the gates) scores against a higher bar, `rewrite_short_threshold`. Both are
//! chosen on the training topics alone, from held-out topic scores, as the gates and the
//! threshold are.

use super::{Sample, INNER_FOLDS};
use crate::dedup::rewrite_model::SHORT_MIN_MATCHES;
use std::collections::HashMap;

/// Returns each sample's score by a model fitted on the samples `fit_on` accepts outside its
/// topic's inner fold (topics sorted and dealt round-robin, as [`super::held_out_scores`]
/// deals them), so samples the model is not fitted on are scored as held out too.
pub(super) fn held_out_scores_on(samples: &[Sample], fit_on: impl Fn(&Sample) -> bool) -> Vec<f32> {
    let mut topics: Vec<&str> = samples.iter().map(|s| s.topic.as_str()).collect();
    topics.sort_by_key(|t| (t.parse::<u32>().unwrap_or(u32::MAX), t.to_string()));
    topics.dedup();
    let fold_of: HashMap<&str, usize> = topics
        .iter()
        .enumerate()
        .map(|(i, t)| (*t, i % INNER_FOLDS))
        .collect();
    let mut out = vec![0.0f32; samples.len()];
    for f in 0..INNER_FOLDS {
        let train: Vec<Sample> = samples
            .iter()
            .filter(|s| fold_of[s.topic.as_str()] != f && fit_on(s))
            .cloned()
            .collect();
        let m = super::fit(&train);
        for (o, s) in out.iter_mut().zip(samples) {
            if fold_of[s.topic.as_str()] == f {
                *o = m.probability(&s.x);
            }
        }
    }
    out
}

/// Floors of the short band tried (each below the chosen `rewrite_min_words`).
pub(crate) const SHORT_WORDS_GRID: [usize; 5] = [15, 12, 10, 8, 5];
/// Bars of the short band tried; above 1 closes it.
pub(crate) const SHORT_GRID: [f32; 7] = [0.9, 0.95, 0.98, 0.99, 0.995, 0.999, 1.01];

/// The short band chosen on training samples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Band {
    /// `rewrite_short_words`.
    pub words: usize,
    /// `rewrite_short_threshold` (above 1: closed).
    pub threshold: f32,
    /// Share of the probes the band adds at that bar (held-out scores).
    pub recall: f64,
}

/// Chooses the short band below `gates` on `samples` (every collected matching): each sample
/// is scored by a model fitted on the matchings past the gates without its inner topic fold;
/// for each floor the bar is the lowest of [`SHORT_GRID`] that no held-out real pair of the
/// band reaches, and the floor adding the most of the `probes` rewrites wins (ties: the higher
/// floor). Closed when no floor adds any.
pub(crate) fn choose_band(samples: &[Sample], gates: (usize, f32), probes: usize) -> Band {
    let held = held_out_scores_on(samples, |s| s.passes(gates));
    let mut best = Band {
        words: gates.0,
        threshold: SHORT_GRID[SHORT_GRID.len() - 1],
        recall: 0.0,
    };
    for &w in SHORT_WORDS_GRID.iter().filter(|&&w| w < gates.0) {
        let band: Vec<(&Sample, f32)> = samples
            .iter()
            .zip(&held)
            .filter(|(s, _)| {
                s.words >= w
                    && s.words < gates.0
                    && s.reworded >= gates.1
                    && s.matches >= SHORT_MIN_MATCHES
            })
            .map(|(s, &p)| (s, p))
            .collect();
        let Some(&t) = SHORT_GRID
            .iter()
            .find(|&&t| band.iter().all(|(s, p)| s.rewrite || *p < t))
        else {
            continue;
        };
        let hit = band.iter().filter(|(s, p)| s.rewrite && *p >= t).count();
        let recall = hit as f64 / probes.max(1) as f64;
        if recall > best.recall {
            best = Band {
                words: w,
                threshold: t,
                recall,
            };
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::super::test_sample;
    use super::*;

    fn sample(x0: f32, rewrite: bool, topic: usize, words: usize, matches: usize) -> Sample {
        test_sample(x0, rewrite, &topic.to_string(), words, matches)
    }

    #[test]
    fn the_band_opens_only_above_its_held_out_real_pairs() {
        let mut s = Vec::new();
        for t in 0..8 {
            for i in 0..10 {
                s.push(sample(0.8 + i as f32 / 100.0, true, t, 100, 5));
                s.push(sample(0.2 + i as f32 / 100.0, false, t, 100, 5));
            }
            for _ in 0..3 {
                s.push(sample(0.9, true, t, 12, 2));
            }
            s.push(sample(0.25, false, t, 12, 2));
            // A one-sentence lookalike: never in the band.
            s.push(sample(0.95, false, t, 12, 1));
        }
        let band = choose_band(&s, (20, 0.5), 104);
        assert_eq!(band.words, 12, "{band:?}");
        assert!(band.threshold <= 1.0, "{band:?}");
        assert!((band.recall - 24.0 / 104.0).abs() < 1e-9, "{band:?}");
        // The same lookalike over two sentences closes the band: no bar takes the short
        // rewrites without it.
        for x in s.iter_mut().filter(|x| x.matches == 1) {
            x.matches = 2;
        }
        let band = choose_band(&s, (20, 0.5), 104);
        assert!(band.threshold > 1.0 && band.recall == 0.0, "{band:?}");
    }
}

#[cfg(test)]
#[path = "rewrite_short_analysis.rs"]
mod analysis;
