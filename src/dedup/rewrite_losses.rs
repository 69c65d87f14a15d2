//! Owns the breakdown `eval dedup --fit-rewrite` prints of where the training rewrites of each
//! generator and rate are lost: a sentence matching under [`MIN_COVERED`] of the new text,
//! under `rewrite_min_words`, under `rewrite_min_reworded`, or a score under the threshold by
//! a model fitted without the sample's topic fold (so the breakdown reads held-out scores, as
//! the threshold choice does).

use super::{held_out_scores, Sample, FEATURES, TRAIN_RATES};
use crate::dedup::eval_gen::Generator;
use crate::dedup::rewrite_model::{MIN_COVERED, SHORT_MIN_MATCHES};
use crate::dedup::DedupConfig;
use std::fmt::Write as _;

/// Where the rewrites of one generator and rate went.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Losses {
    /// Matching under [`MIN_COVERED`] of the new text (never collected as a sample).
    pub uncovered: usize,
    /// Under `rewrite_min_words`.
    pub short: usize,
    /// Of those, found by the short band (`rewrite_short_words`, two matched sentences or
    /// more, held-out score at or above `rewrite_short_threshold`).
    pub band_found: usize,
    /// At least `rewrite_min_words`, under `rewrite_min_reworded`.
    pub verbatim: usize,
    /// Past the gates, scored under the threshold.
    pub below: usize,
    /// Past the gates, scored at or above the threshold.
    pub found: usize,
    /// Mean features of those under the threshold and of those found.
    pub means: [[f64; FEATURES.len()]; 2],
}

/// Counts the losses among `probes` rewrites of generator `g` at `rate`: `collected` are every
/// sample whose matching covers [`MIN_COVERED`] of the new text, `past` those past the gates of
/// `c`, with `held` their held-out scores; `collected_held` are the held-out scores of
/// `collected` by the model fitted past the gates (for the short band).
pub(super) fn count(
    probes: usize,
    (g, rate): (Generator, f64),
    (collected, collected_held): (&[Sample], &[f32]),
    past: &[Sample],
    held: &[f32],
    c: &DedupConfig,
) -> Losses {
    let of = |s: &Sample| s.generator.is_some_and(|(x, r)| x == g && r == rate);
    let mine: Vec<&Sample> = collected.iter().filter(|s| of(s)).collect();
    let short = mine
        .iter()
        .filter(|s| s.words < c.rewrite_min_words)
        .count();
    let band_found = collected
        .iter()
        .zip(collected_held)
        .filter(|(s, &p)| {
            of(s)
                && s.words < c.rewrite_min_words
                && s.words >= c.rewrite_short_words
                && s.matches >= SHORT_MIN_MATCHES
                && s.reworded >= c.rewrite_min_reworded
                && p >= c.rewrite_short_threshold
        })
        .count();
    let verbatim = mine
        .iter()
        .filter(|s| s.words >= c.rewrite_min_words && s.reworded < c.rewrite_min_reworded)
        .count();
    let mut n = [0usize; 2];
    let mut means = [[0.0f64; FEATURES.len()]; 2];
    for (s, &p) in past.iter().zip(held) {
        if of(s) {
            let found = usize::from(p >= c.rewrite_threshold);
            n[found] += 1;
            for (m, x) in means[found].iter_mut().zip(&s.x) {
                *m += f64::from(*x);
            }
        }
    }
    for (m, n) in means.iter_mut().zip(n) {
        for v in m.iter_mut() {
            *v /= n.max(1) as f64;
        }
    }
    Losses {
        uncovered: probes.saturating_sub(mine.len()),
        short,
        band_found,
        verbatim,
        below: n[0],
        found: n[1],
        means,
    }
}

/// Prints the breakdown for every generator and training rate.
pub(super) fn report(
    probes: usize,
    rf: &super::super::cv::RewriteFit,
    c: &DedupConfig,
    report: &mut String,
) {
    let held = held_out_scores(&rf.samples);
    let gates = (c.rewrite_min_words, c.rewrite_min_reworded);
    let collected_held = super::short::held_out_scores_on(&rf.collected, |s| s.passes(gates));
    say!(
        report,
        "where the training rewrites are lost (of {probes} each; held-out topic scores):"
    );
    for g in Generator::ALL {
        for r in TRAIN_RATES {
            let collected = (rf.collected.as_slice(), collected_held.as_slice());
            let l = count(probes, (g, r), collected, &rf.samples, &held, c);
            say!(
                report,
                "  {:.0}% {}: covered under {MIN_COVERED} {}, under min words {} (of them found by the short band {}), under min reworded {}, scored under the threshold {}, found {} ({:.4})",
                r * 100.0,
                g.name(),
                l.uncovered,
                l.short,
                l.band_found,
                l.verbatim,
                l.below,
                l.found,
                l.found as f64 / probes.max(1) as f64
            );
            for (name, m) in ["under", "found"].iter().zip(&l.means) {
                let m: Vec<String> = m.iter().map(|v| format!("{v:.3}")).collect();
                say!(
                    report,
                    "    mean features {name} the threshold: [{}]",
                    m.join(", ")
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(g: Generator, rate: f64, words: usize, reworded: f32, x0: f32) -> Sample {
        let mut x = [0.0; FEATURES.len()];
        x[0] = x0;
        Sample {
            x,
            rewrite: true,
            generator: Some((g, rate)),
            names: (String::new(), String::new()),
            topic: "1".into(),
            words,
            reworded,
            matches: 4,
        }
    }

    #[test]
    fn losses_are_counted_at_the_gate_or_score_that_lost_them() {
        let c = DedupConfig {
            rewrite_min_words: 30,
            rewrite_min_reworded: 0.5,
            rewrite_threshold: 0.9,
            ..DedupConfig::default()
        };
        let (g, r) = (Generator::SpinEdit, 0.3);
        let collected = vec![
            sample(g, r, 10, 1.0, 0.1),               // too short
            sample(g, r, 40, 0.2, 0.2),               // mostly verbatim
            sample(g, r, 40, 1.0, 0.4),               // scored under
            sample(g, r, 50, 1.0, 0.8),               // found
            sample(g, r, 60, 1.0, 1.0),               // found
            sample(Generator::Spin, r, 60, 1.0, 0.0), // another generator
            sample(g, 0.1, 60, 1.0, 0.0),             // another rate
        ];
        let past: Vec<Sample> = collected
            .iter()
            .filter(|s| s.passes((30, 0.5)))
            .cloned()
            .collect();
        let held: Vec<f32> = past.iter().map(|s| s.x[0] + 0.1).collect();
        let mut collected_held: Vec<f32> = collected.iter().map(|s| s.x[0] + 0.1).collect();
        let l = count(8, (g, r), (&collected, &collected_held), &past, &held, &c);
        assert_eq!(
            (
                l.uncovered,
                l.short,
                l.band_found,
                l.verbatim,
                l.below,
                l.found
            ),
            (3, 1, 0, 1, 1, 2),
            "{l:?}"
        );
        // The short one scored above the short band's bar is found by the band.
        collected_held[0] = 0.95;
        let band = count(8, (g, r), (&collected, &collected_held), &past, &held, &c);
        assert_eq!((band.short, band.band_found), (1, 1), "{band:?}");
        assert!((l.means[0][0] - 0.4).abs() < 1e-6, "{l:?}");
        assert!((l.means[1][0] - 0.9).abs() < 1e-6, "{l:?}");
    }
}
