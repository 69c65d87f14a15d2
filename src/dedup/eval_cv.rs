//! Owns `eval dedup --cv K`: thresholds chosen on the other folds' topics, scored on each
//! held-out fold, reported as mean and spread across folds.

use super::fit::{self, GateScore, Sample, REWRITE_GRID};
use super::{near_gold, run_docs, score, Doc, Rng, Scores, Synthetic, TRAIN_RATES, TRAIN_SEED};
use crate::dedup::eval_gen::Thesaurus;
use crate::dedup::rewrite_model::RewriteModel;
use crate::dedup::story::DfPrior;
use crate::dedup::DedupConfig;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

const NEAR_GRID: [f32; 7] = [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8];
const STORY_GRID: [f32; 12] = [
    0.12, 0.14, 0.16, 0.18, 0.2, 0.22, 0.24, 0.26, 0.28, 0.3, 0.33, 0.36,
];

/// Picks the grid value with the best score; among equal scores (a plateau: ECB+ has few
/// near-duplicate pairs, so the near score is flat over a wide range) the one closest to
/// `prior`, the shipped default.
fn tune(grid: &[f32], prior: f32, mut score: impl FnMut(f32) -> f64) -> f32 {
    let scores: Vec<f64> = grid.iter().map(|&v| score(v)).collect();
    let best = scores.iter().copied().fold(f64::MIN, f64::max);
    grid.iter()
        .zip(&scores)
        .filter(|(_, &s)| s >= best - 1e-9)
        .map(|(&v, _)| v)
        .min_by(|a, b| (a - prior).abs().total_cmp(&(b - prior).abs()))
        .unwrap_or(prior)
}

/// How `eval dedup --cv` runs the story tier, from `DROPLINE_STORY_PRIOR`: by default the
/// held-out fold's story IDF is blended with document frequencies counted on its training topics
/// ([`DfPrior`]) and the threshold is chosen on training folds run alone; `0` gives neither
/// (one run over all training topics, no prior); `split` chooses on training folds run alone
/// without a prior, for the ablation; `file:PATH` uses the table in PATH (`dropline train
/// story-prior` on other articles) for every run, training folds and held-out fold alike.
#[derive(Debug, Clone)]
enum PriorMode {
    Off,
    Split,
    On,
    Fixed(Arc<DfPrior>),
}

fn prior_mode() -> anyhow::Result<PriorMode> {
    let var = std::env::var("DROPLINE_STORY_PRIOR");
    Ok(match var.as_deref() {
        Ok("0") => PriorMode::Off,
        Ok("split") => PriorMode::Split,
        Ok(v) => match v.strip_prefix("file:") {
            Some(path) => {
                PriorMode::Fixed(Arc::new(crate::dedup::story_prior::load(Path::new(path))?))
            }
            None => PriorMode::On,
        },
        Err(_) => PriorMode::On,
    })
}

/// Returns the background document frequencies of `docs`.
fn df_prior(docs: &[&Doc]) -> Arc<DfPrior> {
    Arc::new(crate::dedup::story_prior::count(
        docs.iter().map(|d| d.text.as_str()),
        1,
    ))
}

/// One training fold run alone to choose the story threshold: its documents, their near-copy
/// gold, and the prior counted on the other training folds (counted once, not per threshold).
struct StoryGroup<'a> {
    docs: Vec<&'a Doc>,
    gold: HashMap<String, usize>,
    prior: Option<Arc<DfPrior>>,
}

/// Splits the training topics into their folds (all but `held`), each with the prior of the
/// others when `with_prior`: a prior counted on the documents it is used on would give them the
/// IDF of a stream that has seen them all.
fn story_groups<'a>(
    train: &[&'a Doc],
    fold_of: &HashMap<&str, usize>,
    folds: usize,
    held: usize,
    mode: &PriorMode,
) -> Vec<StoryGroup<'a>> {
    let in_fold = |g: usize| -> Vec<&'a Doc> {
        train
            .iter()
            .copied()
            .filter(|d| fold_of[d.topic.as_str()] == g)
            .collect()
    };
    (0..folds)
        .filter(|&g| g != held)
        .map(|g| {
            let docs = in_fold(g);
            let prior = match mode {
                PriorMode::On => {
                    let others: Vec<&Doc> = (0..folds)
                        .filter(|&h| h != held && h != g)
                        .flat_map(in_fold)
                        .collect();
                    Some(df_prior(&others))
                }
                PriorMode::Fixed(p) => Some(p.clone()),
                PriorMode::Off | PriorMode::Split => None,
            };
            StoryGroup {
                gold: near_gold(&docs),
                docs,
                prior,
            }
        })
        .collect()
}

/// Scores the story tier of `c` on training topics as a held-out fold is scored: each training
/// fold is run alone with its prior, and the story scores are averaged over those runs.
fn story_train_score(c: &DedupConfig, groups: &[StoryGroup]) -> f64 {
    let mut quiet = String::new();
    let total: f64 = groups
        .iter()
        .map(|g| {
            let c = DedupConfig {
                story_df_prior: g.prior.clone(),
                ..c.clone()
            };
            score(
                &run_docs(&c, g.docs.clone(), &g.gold),
                None,
                false,
                &mut quiet,
            )
            .story_score()
        })
        .sum();
    total / groups.len().max(1) as f64
}

/// How the rewrite tier is fitted on a set of training documents.
pub(super) struct Fitting<'a> {
    /// The settings every choice starts from (their values are the ties' priors).
    pub base: &'a DedupConfig,
    /// Seed of the folds and, mixed with [`TRAIN_SEED`], of the training rewrites.
    pub seed: u64,
    /// The spinner's word clusters (the entity stage's, shipped).
    pub thesaurus: &'a Thesaurus,
    /// Features left out of the fit.
    pub mask: &'a [usize],
}

/// The rewrite tier fitted on training documents.
pub(super) struct RewriteFit {
    pub model: RewriteModel,
    /// The chosen (`rewrite_min_words`, `rewrite_min_reworded`) and what each pair scored.
    pub gates: GateScore,
    pub gate_scores: Vec<GateScore>,
    /// The short band below the gates.
    pub band: fit::Band,
    /// The samples past the chosen gates.
    pub samples: Vec<Sample>,
    /// Every sample collected (matching covering [`crate::dedup::rewrite_model::MIN_COVERED`]
    /// of the new text), gated or not: where the training rewrites are lost.
    pub collected: Vec<Sample>,
}

impl Fitting<'_> {
    /// Fits the rewrite tier on `docs` alone: synthetic rewrites of them (word swaps drawn from
    /// their own words) and their real same-topic pairs as samples, the gates chosen by
    /// [`fit::choose_gates`], the model fitted on the samples past them.
    pub(super) fn rewrite(&self, docs: &[&Doc], gold: &HashMap<String, usize>) -> RewriteFit {
        let probes = Synthetic::make(docs, &TRAIN_RATES, self.seed ^ TRAIN_SEED, self.thesaurus);
        let all = fit::collect(docs, gold, &probes, self.base, self.mask);
        let prior = (self.base.rewrite_min_words, self.base.rewrite_min_reworded);
        let (gates, gate_scores) = fit::choose_gates(&all, probes.sets.len() * docs.len(), prior);
        let samples: Vec<Sample> = all
            .iter()
            .filter(|s| s.passes(gates.gates))
            .cloned()
            .collect();
        let band = fit::choose_band(&all, gates.gates, probes.sets.len() * docs.len());
        RewriteFit {
            model: fit::fit(&samples),
            gates,
            band,
            gate_scores,
            samples,
            collected: all,
        }
    }
}

/// Sets the fitted model and gates in `c` and chooses its threshold: the lowest with the fewest
/// held-out real pairs at or above it (from the gate choice), and no lower than the lowest with
/// the fewest false positives on a run over `docs` with `c` (recall only grows as the
/// threshold falls).
pub(super) fn set_rewrite(
    c: &mut DedupConfig,
    f: &RewriteFit,
    docs: &[&Doc],
    gold: &HashMap<String, usize>,
) {
    c.rewrite_model = f.model;
    (c.rewrite_min_words, c.rewrite_min_reworded) = f.gates.gates;
    let mut quiet = String::new();
    let run_fp: Vec<usize> = REWRITE_GRID
        .iter()
        .map(|&v| {
            let c = DedupConfig {
                rewrite_threshold: v,
                ..c.clone()
            };
            score(&run_docs(&c, docs.to_vec(), gold), None, false, &mut quiet).rewrite_fp
        })
        .collect();
    c.rewrite_threshold = f.gates.threshold.max(fit::lowest_fewest(&run_fp).0);
    // The short band's bar, no lower than the lowest with the fewest false positives on the run.
    let band_fp: Vec<usize> = fit::SHORT_GRID
        .iter()
        .map(|&v| {
            let c = DedupConfig {
                rewrite_short_words: f.band.words,
                rewrite_short_threshold: v,
                ..c.clone()
            };
            score(&run_docs(&c, docs.to_vec(), gold), None, false, &mut quiet).rewrite_fp
        })
        .collect();
    let fewest = band_fp.iter().copied().min().unwrap_or(0);
    let at = band_fp.iter().position(|&n| n == fewest).unwrap_or(0);
    c.rewrite_short_words = f.band.words;
    c.rewrite_short_threshold = f.band.threshold.max(fit::SHORT_GRID[at]);
}

/// Deals the documents' topics, in numeric order shuffled by `seed`, round robin into `k` folds;
/// returns each topic's fold.
pub(super) fn topic_folds<'a>(
    docs: impl IntoIterator<Item = &'a Doc>,
    seed: u64,
    k: usize,
) -> HashMap<&'a str, usize> {
    let mut topics: Vec<&str> = docs.into_iter().map(|d| d.topic.as_str()).collect();
    topics.sort_by_key(|t| (t.parse::<u32>().unwrap_or(u32::MAX), t.to_string()));
    topics.dedup();
    let mut rng = Rng(seed);
    for i in (1..topics.len()).rev() {
        topics.swap(i, rng.below(i + 1));
    }
    topics
        .iter()
        .enumerate()
        .map(|(i, t)| (*t, i % k))
        .collect()
}

/// Scores each fold with the near, rewrite and story settings chosen on the other folds: the
/// rewrite model, its gates and (held-out) threshold first, from the training topics alone;
/// then the near threshold with that model in place; then the rewrite threshold's run check
/// and the story threshold.
pub(super) fn cross_validate(
    docs: &[Doc],
    fitting: &Fitting,
    k: usize,
    synthetic: Option<&Synthetic>,
    report: &mut String,
) -> anyhow::Result<()> {
    let mode = prior_mode()?;
    let base = fitting.base;
    let fold_of = topic_folds(docs, fitting.seed ^ 0xf01d, k);
    let mut all: Vec<Scores> = Vec::new();
    for f in 0..k {
        let train: Vec<&Doc> = docs
            .iter()
            .filter(|d| fold_of[d.topic.as_str()] != f)
            .collect();
        let test: Vec<&Doc> = docs
            .iter()
            .filter(|d| fold_of[d.topic.as_str()] == f)
            .collect();
        let (train_gold, test_gold) = (near_gold(&train), near_gold(&test));
        let mut c = base.clone();
        let rf = fitting.rewrite(&train, &train_gold);
        c.rewrite_model = rf.model;
        (c.rewrite_min_words, c.rewrite_min_reworded) = rf.gates.gates;
        c.rewrite_threshold = rf.gates.threshold;
        (c.rewrite_short_words, c.rewrite_short_threshold) = (rf.band.words, rf.band.threshold);
        let mut quiet = String::new();
        let mut train_score = |c: &DedupConfig| {
            score(
                &run_docs(c, train.clone(), &train_gold),
                None,
                false,
                &mut quiet,
            )
        };
        c.near_threshold = tune(&NEAR_GRID, base.near_threshold, |v| {
            train_score(&DedupConfig {
                near_threshold: v,
                ..c.clone()
            })
            .near
            .2
        });
        set_rewrite(&mut c, &rf, &train, &train_gold);
        let prior = !matches!(mode, PriorMode::Off);
        let groups = if prior {
            story_groups(&train, &fold_of, k, f, &mode)
        } else {
            Vec::new()
        };
        c.story_threshold = tune(&STORY_GRID, base.story_threshold, |v| {
            let t = DedupConfig {
                story_threshold: v,
                ..c.clone()
            };
            if prior {
                story_train_score(&t, &groups)
            } else {
                train_score(&t).story_score()
            }
        });
        match &mode {
            PriorMode::On => c.story_df_prior = Some(df_prior(&train)),
            PriorMode::Fixed(p) => c.story_df_prior = Some(p.clone()),
            PriorMode::Off | PriorMode::Split => {}
        }
        let mut fold_topics: Vec<&str> = fold_of
            .iter()
            .filter(|(_, &g)| g == f)
            .map(|(t, _)| *t)
            .collect();
        fold_topics.sort_by_key(|t| (t.parse::<u32>().unwrap_or(u32::MAX), t.to_string()));
        let s = score(&run_docs(&c, test, &test_gold), synthetic, false, report);
        say!(report,
            "fold {f}: topics {} ({} docs); chosen near {:.2} rewrite {:.2} (min words {}, min reworded {:.2}, short from {} at {:.3}) story {:.2}: near P {:.4} F1 {:.4}, rewrite FP {}, story F1 {:.4} ARI {:.4}",
            fold_topics.join(" "), s.docs, c.near_threshold, c.rewrite_threshold,
            c.rewrite_min_words, c.rewrite_min_reworded, c.rewrite_short_words, c.rewrite_short_threshold, c.story_threshold,
            s.near.0, s.near.2, s.rewrite_fp, s.story.2, s.ari);
        all.push(s);
    }
    let stat = |f: &dyn Fn(&Scores) -> f64| {
        let v: Vec<f64> = all.iter().map(f).collect();
        let m = v.iter().sum::<f64>() / v.len() as f64;
        let sd = (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / v.len() as f64).sqrt();
        format!("{m:.4} ± {sd:.4}")
    };
    say!(
        report,
        "cross-validated over {k} topic folds (mean ± std across folds):"
    );
    say!(
        report,
        "  near-duplicate P {} R {} F1 {}",
        stat(&|s| s.near.0),
        stat(&|s| s.near.1),
        stat(&|s| s.near.2)
    );
    let fp: usize = all.iter().map(|s| s.rewrite_fp).sum();
    let n: usize = all.iter().map(|s| s.docs).sum();
    say!(
        report,
        "  rewrite false positives on real articles: {fp} in {n} documents ({:.2} per 1,000)",
        fp as f64 * 1000.0 / n.max(1) as f64
    );
    say!(
        report,
        "  story pairwise P {} R {} F1 {} ARI {}",
        stat(&|s| s.story.0),
        stat(&|s| s.story.1),
        stat(&|s| s.story.2),
        stat(&|s| s.ari)
    );
    let reuse: usize = all.iter().map(|s| s.reuse_entries).sum();
    let same: usize = all.iter().map(|s| s.reuse_same_story).sum();
    say!(
        report,
        "  reuse entries {reuse} ({same} within the gold story)"
    );
    for (i, (g, rate, _, _)) in all[0].recall.iter().enumerate() {
        say!(
            report,
            "  rewrites {:.0}% {}: recall {}",
            rate * 100.0,
            g.name(),
            stat(&|s| s.recall[i].2)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(name: &str, topic: &str, text: &str) -> Doc {
        Doc {
            name: name.into(),
            topic: topic.into(),
            id: name.into(),
            text: text.into(),
            story: topic.into(),
        }
    }

    #[test]
    fn training_rewrites_never_draw_held_out_words() {
        let train = [
            doc(
                "1_1",
                "1",
                "The council approved the budget on Monday after a long debate.",
            ),
            doc(
                "2_1",
                "2",
                "Floods closed the river road and schools stayed shut for days.",
            ),
        ];
        let held_out = doc("3_1", "3", "Zyxwheldout qxvheldout words only here.");
        let docs: Vec<&Doc> = train.iter().collect();
        let made = Synthetic::make(&docs, &[0.9], 7, &Thesaurus::default());
        for (_, _, texts) in &made.sets {
            assert_eq!(texts.len(), 2);
            assert!(!texts.contains_key(&held_out.name));
            for t in texts.values() {
                assert!(!t.contains("heldout"), "{t}");
            }
        }
    }

    #[test]
    fn tune_prefers_the_prior_on_a_plateau() {
        assert_eq!(tune(&NEAR_GRID, 0.7, |_| 1.0), 0.7);
        assert_eq!(tune(&NEAR_GRID, 0.7, |v| f64::from(-v)), 0.5);
    }
}

#[cfg(test)]
#[path = "story_analysis.rs"]
mod analysis;
