//! Owns `dropline eval dedup`: near-duplicate, rewrite, reuse and story scores on a labelled
//! folder, once with given settings or cross-validated across topics (`--cv K`).
//!
//! Scores are computed as `shared/tools/score_dedup.py` computes them: near-duplicate gold is
//! word 5-gram Jaccard >= 0.7 after normalisation, closed transitively, and predicted groups are
//! documents with status `exact_duplicate` or `near_duplicate` linked to their `duplicate_of`;
//! stories are scored pairwise and by adjusted Rand index. A `rewrite` verdict on a real article
//! whose original is not in its near-duplicate group is a rewrite false positive. Synthetic
//! rewrites ([`super::eval_gen`]) of every article are checked against the index of the real
//! ones.
//!
//! With `--cv K` the topics are split into K folds; for each fold everything is chosen on the
//! other folds' topics alone and every score is measured on the held-out fold: the rewrite
//! model is fitted on synthetic rewrites of the training articles (word swaps drawn from
//! their words only) and their real same-topic pairs, its gates (`rewrite_min_words`,
//! `rewrite_min_reworded`) and threshold chosen by inner topic-grouped CV; then the near
//! threshold (best near-duplicate F1, ties to the default) with that model in place; then the
//! rewrite threshold's check on a run (the lowest with the fewest false positives on real
//! articles) and the story threshold (best mean of pairwise F1 and ARI, ties to the default).

use super::eval_gen::{self, Generator, Thesaurus};
use super::{hash128, DedupConfig, Deduper, Tier};
use crate::model::{DedupInfo, DedupStatus};
use anyhow::Context as _;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;

/// Arrival order of the documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Order {
    /// Sorted by file name.
    Sorted,
    /// Shuffled with `--seed`.
    Shuffle,
}

/// Arguments of `dropline eval dedup`.
#[derive(Debug, clap::Args)]
pub struct EvalDedupArgs {
    /// Folder with `docs/` and `labels.csv`.
    pub data_dir: PathBuf,
    /// Arrival order.
    #[arg(long, value_enum, default_value = "sorted")]
    pub order: Order,
    /// Seed of the shuffle, of the folds and of the synthetic rewrites.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Cross-validates the thresholds across topics in this many folds.
    #[arg(long)]
    pub cv: Option<usize>,
    /// Writes one JSON line per document (`id`, `source.path`, `dedup`) for score_dedup.py.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Shares of words replaced in the synthetic rewrites (empty: none).
    #[arg(long, value_delimiter = ',', default_value = "0.1,0.2,0.3")]
    pub rewrite_rates: Vec<f64>,
    /// Overrides `dedup.near_threshold`.
    #[arg(long)]
    pub near_threshold: Option<f32>,
    /// Overrides `dedup.rewrite_threshold`.
    #[arg(long)]
    pub rewrite_threshold: Option<f32>,
    /// Overrides `dedup.rewrite_min_words`.
    #[arg(long)]
    pub rewrite_min_words: Option<usize>,
    /// Overrides `dedup.rewrite_min_reworded`.
    #[arg(long)]
    pub rewrite_min_reworded: Option<f32>,
    /// Overrides `dedup.align_overlap`.
    #[arg(long)]
    pub align_overlap: Option<f32>,
    /// Overrides `dedup.reuse_min_share`.
    #[arg(long)]
    pub reuse_min_share: Option<f32>,
    /// Overrides `dedup.story_reuse_share`.
    #[arg(long)]
    pub story_reuse_share: Option<f32>,
    /// Overrides `dedup.story_threshold`.
    #[arg(long)]
    pub story_threshold: Option<f32>,
    /// Overrides `dedup.story_name_boost`.
    #[arg(long)]
    pub name_boost: Option<f32>,
    /// Overrides `dedup.story_idf_power`.
    #[arg(long)]
    pub idf_power: Option<f32>,
    /// Overrides `dedup.story_name_weight`.
    #[arg(long)]
    pub name_weight: Option<f32>,
    /// Prints every duplicate or rewrite verdict that is not in the gold, and every reuse.
    #[arg(long)]
    pub verbose: bool,
    /// Fits the rewrite model on every topic of the folder (synthetic rewrites made with a seed
    /// apart from the reported ones, real same-topic pairs), chooses its threshold and prints
    /// both, as `src/dedup/rewrite_model.rs` ships them.
    #[arg(long)]
    pub fit_rewrite: bool,
    /// Rewrite-model features left out of the fit (weight 0), by name: for ablations.
    #[arg(long, value_delimiter = ',')]
    pub drop_features: Vec<String>,
}

struct Doc {
    name: String,
    topic: String,
    id: String,
    text: String,
    story: String,
}

/// Runs the evaluation and prints the scores.
pub fn run(args: &EvalDedupArgs) -> anyhow::Result<()> {
    let report = evaluate(args)?;
    // A closed pipe (`| head`) ends the command with an error rather than a panic.
    std::io::stdout()
        .write_all(report.as_bytes())
        .context("writing the report")
}

/// Appends one line to the report.
macro_rules! say {
    ($report:ident, $($arg:tt)*) => {
        let _ = writeln!($report, $($arg)*);
    };
}

fn config_of(args: &EvalDedupArgs) -> DedupConfig {
    let mut c = DedupConfig::default();
    let set = |slot: &mut f32, v: Option<f32>| {
        if let Some(v) = v {
            *slot = v;
        }
    };
    set(&mut c.near_threshold, args.near_threshold);
    set(&mut c.rewrite_threshold, args.rewrite_threshold);
    set(&mut c.align_overlap, args.align_overlap);
    set(&mut c.rewrite_min_reworded, args.rewrite_min_reworded);
    if let Some(v) = args.rewrite_min_words {
        c.rewrite_min_words = v;
    }
    set(&mut c.reuse_min_share, args.reuse_min_share);
    set(&mut c.story_reuse_share, args.story_reuse_share);
    set(&mut c.story_threshold, args.story_threshold);
    set(&mut c.story_name_boost, args.name_boost);
    set(&mut c.story_idf_power, args.idf_power);
    set(&mut c.story_name_weight, args.name_weight);
    c
}

/// Everything one run over a set of documents measured.
#[derive(Debug, Clone, Default)]
struct Scores {
    docs: usize,
    near: (f64, f64, f64),
    rewrite_fp: usize,
    story: (f64, f64, f64),
    ari: f64,
    reuse_entries: usize,
    reuse_same_story: usize,
    /// Recall of synthetic rewrites per generator and rate, and how many matched another article.
    recall: Vec<(Generator, f64, f64, usize)>,
}

impl Scores {
    fn story_score(&self) -> f64 {
        (self.story.2 + self.ari) / 2.0
    }
}

/// The state of one run: documents in arrival order, their verdicts and the index after them.
struct Run<'a> {
    docs: Vec<&'a Doc>,
    infos: Vec<(DedupInfo, Tier)>,
    dedup: Deduper,
    /// Each document's gold near-duplicate group ([`near_gold`] of the same documents).
    gold_near: &'a HashMap<String, usize>,
}

/// Runs the documents through a fresh index; `gold_near` is [`near_gold`] of the same documents
/// (computed once by the caller: it does not depend on the settings).
fn run_docs<'a>(
    config: &DedupConfig,
    docs: Vec<&'a Doc>,
    gold_near: &'a HashMap<String, usize>,
) -> Run<'a> {
    let mut dedup = Deduper::new(config);
    let infos = docs
        .iter()
        .map(|d| {
            let (_, tier) = dedup.check(&d.id, &d.text);
            let (info, _) = dedup.observe(&d.id, &d.text);
            (info, tier)
        })
        .collect();
    Run {
        docs,
        infos,
        dedup,
        gold_near,
    }
}

/// Synthetic rewrites made once per document, generator and rate.
struct Synthetic {
    /// (generator, rate, rewritten text of each document by name).
    sets: Vec<(Generator, f64, HashMap<String, String>)>,
}

impl Synthetic {
    /// Rewrites each of `docs`; the word swaps draw from the words of `docs` only (so a fold's
    /// training rewrites never see a held-out text), the spinner from the entity stage's
    /// shipped word clusters.
    fn make(docs: &[&Doc], rates: &[f64], seed: u64, thesaurus: &Thesaurus) -> Self {
        let vocab: Vec<&str> = docs
            .iter()
            .flat_map(|d| d.text.split_whitespace())
            .collect();
        let mut sets = Vec::new();
        for g in Generator::ALL {
            for &rate in rates {
                let mut rng = Rng(seed ^ rate.to_bits() ^ (g as u64) << 56);
                let texts = docs
                    .iter()
                    .map(|d| {
                        let t = eval_gen::rewrite(g, &d.text, rate, &vocab, thesaurus, &mut rng);
                        (d.name.clone(), t)
                    })
                    .collect();
                sets.push((g, rate, texts));
            }
        }
        Self { sets }
    }
}

fn score(run: &Run, synthetic: Option<&Synthetic>, verbose: bool, report: &mut String) -> Scores {
    let docs = &run.docs;
    let index: HashMap<&str, usize> = docs
        .iter()
        .enumerate()
        .map(|(i, d)| (d.id.as_str(), i))
        .collect();
    let group = |i: usize| run.gold_near[&docs[i].name];
    let mut pred = UnionFind::new(docs.len());
    let mut s = Scores {
        docs: docs.len(),
        ..Scores::default()
    };
    for (i, (info, tier)) in run.infos.iter().enumerate() {
        for r in &info.reuse {
            if let Some(&j) = index.get(r.of.as_str()) {
                s.reuse_entries += 1;
                s.reuse_same_story += usize::from(docs[i].story == docs[j].story);
                if verbose {
                    say!(
                        report,
                        "reuse: {} <- {} shared {:.2} (same story {})",
                        docs[i].name,
                        docs[j].name,
                        r.shared,
                        docs[i].story == docs[j].story
                    );
                }
            }
        }
        let Some(&j) = info.duplicate_of.as_deref().and_then(|o| index.get(o)) else {
            continue;
        };
        let wrong = group(i) != group(j);
        if info.status == DedupStatus::Rewrite {
            s.rewrite_fp += usize::from(wrong);
        } else {
            pred.union(i, j);
        }
        if wrong && verbose {
            say!(
                report,
                "not in gold: {} -> {} ({:?}, similarity {:.3}, 5-gram Jaccard {:.3})",
                docs[i].name,
                docs[j].name,
                tier,
                info.similarity.unwrap_or(0.0),
                jaccard5(&docs[i].text, &docs[j].text)
            );
        }
    }
    let gold_groups: Vec<String> = (0..docs.len()).map(|i| group(i).to_string()).collect();
    let pred_groups: Vec<String> = (0..docs.len()).map(|i| pred.find(i).to_string()).collect();
    s.near = pair_prf(&gold_groups, &pred_groups);
    let gold_story: Vec<String> = docs.iter().map(|d| d.story.clone()).collect();
    let pred_story: Vec<String> = run
        .infos
        .iter()
        .enumerate()
        .map(|(i, (info, _))| info.story.clone().unwrap_or_else(|| format!("none:{i}")))
        .collect();
    s.story = pair_prf(&gold_story, &pred_story);
    s.ari = adjusted_rand(&gold_story, &pred_story);
    for (g, rate, texts) in synthetic.map(|x| x.sets.as_slice()).unwrap_or_default() {
        let (mut hit, mut wrong) = (0usize, 0usize);
        for (i, d) in docs.iter().enumerate() {
            let text = &texts[&d.name];
            let probe = format!("{:032x}", hash128(text.as_bytes()));
            let (info, _) = run.dedup.check(&probe, text);
            if info.status == DedupStatus::Unique {
                continue;
            }
            match info.duplicate_of.as_deref().and_then(|o| index.get(o)) {
                Some(&j) if group(j) == group(i) => hit += 1,
                _ => wrong += 1,
            }
        }
        s.recall
            .push((*g, *rate, hit as f64 / docs.len().max(1) as f64, wrong));
    }
    s
}

fn print_scores(s: &Scores, report: &mut String) {
    let (np, nr, nf) = s.near;
    let (sp, sr, sf) = s.story;
    say!(
        report,
        "near-duplicate pairs (J>=0.7): P {np:.4} R {nr:.4} F1 {nf:.4}"
    );
    say!(
        report,
        "rewrite false positives on real articles: {} in {} documents ({:.2} per 1,000)",
        s.rewrite_fp,
        s.docs,
        s.rewrite_fp as f64 * 1000.0 / s.docs.max(1) as f64
    );
    say!(
        report,
        "reuse entries: {} ({} within the gold story)",
        s.reuse_entries,
        s.reuse_same_story
    );
    say!(
        report,
        "story clusters: pairwise P {sp:.4} R {sr:.4} F1 {sf:.4} ARI {:.4}",
        s.ari
    );
    for (g, rate, recall, wrong) in &s.recall {
        say!(
            report,
            "rewrites {:.0}% {}: recall {recall:.4}, matched to another article {wrong}",
            rate * 100.0,
            g.name()
        );
    }
}

fn evaluate(args: &EvalDedupArgs) -> anyhow::Result<String> {
    let mut report = String::new();
    let config = config_of(args);
    let mut docs = load(&args.data_dir)?;
    docs.sort_by(|a, b| a.name.cmp(&b.name));
    if args.order == Order::Shuffle {
        let mut rng = Rng(args.seed);
        for i in (1..docs.len()).rev() {
            let j = rng.below(i + 1);
            docs.swap(i, j);
        }
    }
    let thesaurus = Thesaurus::load()?;
    let mask = fit::feature_mask(&args.drop_features)?;
    if args.fit_rewrite {
        fit::report(&docs, &config, args.seed, &thesaurus, &mask, &mut report);
        return Ok(report);
    }
    let all: Vec<&Doc> = docs.iter().collect();
    let synthetic = if args.rewrite_rates.is_empty() {
        None
    } else {
        Some(Synthetic::make(
            &all,
            &args.rewrite_rates,
            args.seed,
            &thesaurus,
        ))
    };
    say!(
        report,
        "documents {}, order {:?} (seed {})",
        docs.len(),
        args.order,
        args.seed
    );
    if let Some(k) = args.cv {
        let fold = cv::Fitting {
            base: &config,
            seed: args.seed,
            thesaurus: &thesaurus,
            mask: &mask,
        };
        cross_validate(&docs, &fold, k.max(2), synthetic.as_ref(), &mut report)?;
        return Ok(report);
    }
    let gold = near_gold(&all);
    let run = run_docs(&config, all, &gold);
    if let Some(p) = &args.out {
        let mut w = std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?,
        );
        for (d, (info, _)) in run.docs.iter().zip(&run.infos) {
            let rec = serde_json::json!({
                "type": "document",
                "id": d.id,
                "source": {"path": format!("docs/{}.txt", d.name)},
                "dedup": info,
            });
            writeln!(w, "{rec}")?;
        }
        w.flush()?;
    }
    let s = score(&run, synthetic.as_ref(), args.verbose, &mut report);
    print_scores(&s, &mut report);
    say!(
        report,
        "near F1 {:.4} story F1 {:.4} ARI {:.4}",
        s.near.2,
        s.story.2,
        s.ari
    );
    Ok(report)
}

/// Rates of the synthetic rewrites the rewrite model is fitted on.
pub(super) const TRAIN_RATES: [f64; 3] = [0.1, 0.2, 0.3];
/// Mixed into the seed of those rewrites, so they differ from the ones recall is measured on.
pub(super) const TRAIN_SEED: u64 = 0x7a11_5eed;

/// Returns the five sample articles shipped in `seeds/`, in path order (tests and benches).
pub fn seed_texts() -> Vec<String> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/seeds");
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .expect("seeds folder ships with the crate")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| std::fs::read_to_string(p).expect("seed is UTF-8"))
        .collect()
}

/// splitmix64: a small deterministic generator for shuffles, synthetic rewrites, tests and
/// benches.
#[derive(Debug, Clone)]
pub struct Rng(pub u64);

impl Rng {
    /// Returns the next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Returns a number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
}

#[path = "eval_cv.rs"]
mod cv;
#[path = "eval_data.rs"]
mod data;
#[path = "rewrite_fit.rs"]
mod fit;
#[path = "eval_metrics.rs"]
mod metrics;
use cv::cross_validate;
use data::{jaccard5, load, near_gold};
use metrics::{adjusted_rand, pair_prf, UnionFind};
