//! Owns what `eval dedup --fit-rewrite` prints: the rewrite tier fitted on every topic of the
//! folder as `--cv` fits it per fold (model, gates, short band, threshold), where the training
//! rewrites are lost, and the real pairs that score highest.

use super::{as_rust, losses, near_gold, Doc, Sample, TRAIN_RATES};
use crate::dedup::eval_gen::{Generator, Thesaurus};
use crate::dedup::rewrite_model::FEATURES;
use crate::dedup::DedupConfig;
use std::fmt::Write as _;

/// Fits the rewrite model on every document of the folder as `--cv` fits it per fold, and
/// prints it with its gates and threshold.
pub(crate) fn report(
    docs: &[Doc],
    config: &DedupConfig,
    seed: u64,
    thesaurus: &Thesaurus,
    mask: &[usize],
    report: &mut String,
) {
    let all: Vec<&Doc> = docs.iter().collect();
    let gold = near_gold(&all);
    let fitting = super::super::cv::Fitting {
        base: config,
        seed,
        thesaurus,
        mask,
    };
    let rf = fitting.rewrite(&all, &gold);
    let mut c = config.clone();
    super::super::cv::set_rewrite(&mut c, &rf, &all, &gold);
    let (model, threshold, samples) = (rf.model, c.rewrite_threshold, &rf.samples);
    for g in &rf.gate_scores {
        say!(
            report,
            "gates min words {:>2}, min reworded {:.2}: held-out threshold {:.2}, real pairs at or above it {}, recall of the training rewrites {:.4}",
            g.gates.0, g.gates.1, g.threshold, g.false_positives, g.recall
        );
    }
    let pos = samples.iter().filter(|s| s.rewrite).count();
    say!(
        report,
        "rewrite model fitted on {} documents: {pos} synthetic rewrites, {} real same-topic pairs past the gates",
        docs.len(),
        samples.len() - pos
    );
    say!(report, "features: {}", FEATURES.join(", "));
    say!(report, "{}", as_rust(&model));
    say!(report, "rewrite_min_words {} rewrite_min_reworded {:.2} rewrite_threshold {threshold:.2} (chosen as `--cv` chooses them per fold: held-out topic scores, then a run over the documents)", c.rewrite_min_words, c.rewrite_min_reworded);
    say!(report, "rewrite_short_words {} rewrite_short_threshold {:.3} (the short band, chosen the same way; it adds {:.4} of the training rewrites by held-out scores)", c.rewrite_short_words, c.rewrite_short_threshold, rf.band.recall);
    match drift_from_shipped(&c).as_slice() {
        [] => {
            say!(
                report,
                "the shipped defaults are these (model, gates, threshold, short band)"
            );
        }
        drift => {
            say!(report, "differs from the shipped defaults (src/dedup/config.rs, pipeline.toml, rewrite_model::SHIPPED) in: {}", drift.join(", "));
        }
    }
    let groups = Generator::ALL
        .iter()
        .flat_map(|&g| TRAIN_RATES.map(|r| Some((g, r))))
        .chain([None]);
    losses::report(docs.len(), &rf, &c, report);
    for g in groups {
        let group: Vec<&Sample> = samples
            .iter()
            .filter(|s| {
                s.generator.map(|(g, r)| (g, r.to_bits())) == g.map(|(g, r)| (g, r.to_bits()))
            })
            .collect();
        let hit = group
            .iter()
            .filter(|s| model.probability(&s.x) >= threshold)
            .count();
        let mean: Vec<String> = (0..FEATURES.len())
            .map(|f| {
                let m = group.iter().map(|s| f64::from(s.x[f])).sum::<f64>();
                format!("{:.3}", m / group.len().max(1) as f64)
            })
            .collect();
        let name = g.map_or("real pairs".to_string(), |(g, r)| {
            format!("{:.0}% {} (of {})", r * 100.0, g.name(), docs.len())
        });
        say!(
            report,
            "  {name}: {} past the gates, {hit} at or above the threshold; mean features [{}]",
            group.len(),
            mean.join(", ")
        );
    }
    let mut negs: Vec<(f32, &Sample)> = samples
        .iter()
        .filter(|s| !s.rewrite)
        .map(|s| (model.probability(&s.x), s))
        .collect();
    negs.sort_by(|a, b| b.0.total_cmp(&a.0));
    for (p, s) in negs.iter().take(8) {
        let x: Vec<String> = s.x.iter().map(|v| format!("{v:.3}")).collect();
        say!(
            report,
            "  real pair {} <- {}: score {p:.3}, features [{}]",
            s.names.0,
            s.names.1,
            x.join(", ")
        );
    }
}

/// Returns the rewrite settings in which `fitted` differs from the shipped defaults, so that a
/// refit whose choices are not shipped says so instead of drifting silently.
fn drift_from_shipped(fitted: &DedupConfig) -> Vec<&'static str> {
    let shipped = DedupConfig::default();
    let mut drift = Vec::new();
    // The weights as printed (four decimals) are what a refit ships.
    if as_rust(&fitted.rewrite_model) != as_rust(&shipped.rewrite_model) {
        drift.push("rewrite_model");
    }
    if fitted.rewrite_min_words != shipped.rewrite_min_words {
        drift.push("rewrite_min_words");
    }
    if fitted.rewrite_min_reworded != shipped.rewrite_min_reworded {
        drift.push("rewrite_min_reworded");
    }
    if fitted.rewrite_threshold != shipped.rewrite_threshold {
        drift.push("rewrite_threshold");
    }
    if fitted.rewrite_short_words != shipped.rewrite_short_words {
        drift.push("rewrite_short_words");
    }
    if fitted.rewrite_short_threshold != shipped.rewrite_short_threshold {
        drift.push("rewrite_short_threshold");
    }
    drift
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fit_that_is_not_shipped_names_what_differs() {
        assert!(drift_from_shipped(&DedupConfig::default()).is_empty());
        let mut fitted = DedupConfig {
            rewrite_min_words: DedupConfig::default().rewrite_min_words + 10,
            ..DedupConfig::default()
        };
        assert_eq!(drift_from_shipped(&fitted), ["rewrite_min_words"]);
        fitted.rewrite_model.weights[0] += 0.00001;
        assert_eq!(drift_from_shipped(&fitted), ["rewrite_min_words"]);
        fitted.rewrite_model.weights[0] += 0.5;
        fitted.rewrite_short_threshold = 1.01;
        assert_eq!(
            drift_from_shipped(&fitted),
            [
                "rewrite_model",
                "rewrite_min_words",
                "rewrite_short_threshold"
            ]
        );
    }
}
