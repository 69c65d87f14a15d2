//! Owns `dropline train strip`: fits the DOM-block model on a training folder (`html/`, `gold/`,
//! `manifest.tsv`, e.g. wcxb-train; never wcxb-dev), chooses the decoding bar and smoothing by
//! cross-validation grouped by site, and writes the model file.
//!
//! The run is deterministic: pages in sorted id order, folds by a fixed hash of the site, a
//! seeded shuffle, f64 arithmetic in a fixed order and rounded output, so the same data and
//! build rebuild `src/strip/block_model.txt` byte for byte.

use super::block_model::{keep, BlockModel, Decode, Measured, N_DENSE};
use super::eval::{gold_ids, read_manifest, read_page, Input};
use super::metric::{label_lines, score, shingle_match, Match};
use super::{StripConfig, Stripper};
use crate::logistic::{sigmoid, Standardiser};
use anyhow::{bail, Context};
use std::path::PathBuf;

/// Arguments of `dropline train strip`.
#[derive(Debug, clap::Args)]
pub struct TrainStripArgs {
    /// Training folder with `html/`, `gold/` and `manifest.tsv` (sites for the folds).
    pub train_dir: PathBuf,
    /// Where the model file is written.
    #[arg(long, default_value = "src/strip/block_model.txt")]
    pub out: PathBuf,
    /// Folds of the site-grouped cross-validation.
    #[arg(long, default_value_t = 5)]
    pub folds: usize,
    /// Passes over the training blocks.
    #[arg(long, default_value_t = 10)]
    pub epochs: usize,
    /// L2 penalty of the hashed context-token weights (site-specific class names overfit without it).
    #[arg(long, default_value_t = 1e-3)]
    pub l2_tokens: f64,
    /// Writes per-page precision/recall of the out-of-fold predictions at the chosen setting as TSV.
    #[arg(long)]
    pub per_doc: Option<PathBuf>,
}

/// One training page: its measured blocks, their labels and the gold body.
struct TrainPage {
    site: String,
    m: Measured,
    labels: Vec<bool>,
    gold: String,
}

/// The decoding settings the cross-validation chooses among.
fn grid() -> Vec<Decode> {
    let mut g = Vec::new();
    for smoothing in [0.0f32, 0.3] {
        for body_bar in [0.15f32, 0.25, 0.35, 0.5] {
            for keep_inside in [0.01f32, 0.03, 0.1, 0.3] {
                for keep_outside in [0.6f32, 0.8, 0.9, 1.01] {
                    g.push(Decode {
                        body_bar,
                        keep_inside,
                        keep_outside,
                        smoothing,
                    });
                }
            }
        }
    }
    g
}

/// Runs the training and prints the cross-validated figures.
pub fn run(args: &TrainStripArgs) -> anyhow::Result<()> {
    if args.folds < 2 {
        bail!("--folds must be at least 2");
    }
    let dir = &args.train_dir;
    let sites = read_manifest(&dir.join("manifest.tsv"))?;
    let stripper = Stripper::new(
        &StripConfig {
            source_memory: false,
            ..StripConfig::default()
        },
        None,
    )?;
    let mut pages = Vec::new();
    for id in gold_ids(&dir.join("gold"))? {
        let (_, html) = read_page(dir, Input::Html, &id)?;
        let gold = std::fs::read_to_string(dir.join("gold").join(format!("{id}.txt")))
            .with_context(|| format!("failed to read gold for {id}"))?;
        let Some(m) = super::html::measure(&html) else {
            continue;
        };
        let labels = label_lines(&m.page.text, &m.lines, &gold);
        let site = sites.get(&id).cloned().unwrap_or_else(|| id.clone());
        pages.push(TrainPage {
            site,
            m,
            labels,
            gold,
        });
    }
    if pages.is_empty() {
        bail!("no pages in {}", dir.display());
    }
    let fold_of = assign_folds(&pages, args.folds);
    let n_blocks: usize = pages.iter().map(|p| p.labels.len()).sum();
    println!(
        "pages {} blocks {} sites {} folds {}",
        pages.len(),
        n_blocks,
        {
            let mut s: Vec<&str> = pages.iter().map(|p| p.site.as_str()).collect();
            s.sort_unstable();
            s.dedup();
            s.len()
        },
        args.folds
    );

    // Out-of-fold probabilities: each page scored by a model that saw none of its site's pages.
    let mut oof: Vec<Vec<f32>> = vec![Vec::new(); pages.len()];
    for k in 0..args.folds {
        let train: Vec<&TrainPage> = pages
            .iter()
            .zip(&fold_of)
            .filter(|(_, f)| **f != k)
            .map(|(p, _)| p)
            .collect();
        let model = fit(&train, args.epochs, args.l2_tokens);
        for (i, p) in pages.iter().enumerate() {
            if fold_of[i] == k {
                oof[i] = super::block_model::probabilities(&model, &p.m);
            }
        }
    }
    let grid = grid();
    // matches[g][page]: the page's score at setting g.
    let matches: Vec<Vec<Match>> = grid
        .iter()
        .map(|d| {
            pages
                .iter()
                .zip(&oof)
                .map(|(p, probs)| {
                    let kept = keep(&p.m.lines, probs, *d);
                    let text = stripper.html_from_blocks(&p.m, &kept).0.text;
                    shingle_match(&p.gold, &text)
                })
                .collect()
        })
        .collect();
    let f1_on = |g: usize, fold: Option<usize>, inside: bool| {
        let sel: Vec<Match> = matches[g]
            .iter()
            .zip(&fold_of)
            .filter(|(_, f)| fold.is_none_or(|k| (**f == k) == inside))
            .map(|(m, _)| *m)
            .collect();
        score(&sel).f1
    };
    // Nested choice: each fold's setting is chosen on the other folds' out-of-fold pages.
    let mut held = Vec::new();
    for k in 0..args.folds {
        let best = best_setting(grid.len(), |g| f1_on(g, Some(k), false));
        let f = f1_on(best, Some(k), true);
        println!(
            "fold {k} pages {} chosen {} held-out F1 {f:.4}",
            fold_of.iter().filter(|f| **f == k).count(),
            show(&grid[best]),
        );
        held.push(f);
    }
    let (mean, sd) = mean_sd(&held);
    let best = best_setting(grid.len(), |g| f1_on(g, None, true));
    let fixed: Vec<f64> = (0..args.folds)
        .map(|k| f1_on(best, Some(k), true))
        .collect();
    let (fm, fs) = mean_sd(&fixed);
    let all = score(&matches[best]);
    println!(
        "cv F1 mean {mean:.4} std {sd:.4} folds {}; chosen on all pages: {} (out-of-fold F1 {:.4} P {:.4} R {:.4}; per fold {fm:.4} ± {fs:.4})",
        args.folds, show(&grid[best]), all.f1, all.precision, all.recall
    );
    if let Some(path) = &args.per_doc {
        let mut s = String::from("id\tprecision\trecall\ttp\tfp\tfn\n");
        let ids = gold_ids(&dir.join("gold"))?;
        for (id, m) in ids.iter().zip(&matches[best]) {
            let p = m.tp / (m.tp + m.fp).max(1e-12);
            let r = m.tp / (m.tp + m.fn_).max(1e-12);
            s.push_str(&format!(
                "{id}\t{p:.4}\t{r:.4}\t{:.4}\t{:.4}\t{:.4}\n",
                m.tp, m.fp, m.fn_
            ));
        }
        std::fs::write(path, s).with_context(|| format!("failed to write {}", path.display()))?;
    }

    let all_pages: Vec<&TrainPage> = pages.iter().collect();
    let mut model = fit(&all_pages, args.epochs, args.l2_tokens);
    model.decode = grid[best];
    let header = format!(
        "# DOM-block model: logistic regression over {N_DENSE} dense features and 2^{} hashed context tokens\n\
         # fitted on {} blocks of {} pages of {}; {} epochs\n\
         # decoding chosen by {}-fold site-grouped cross-validation: held-out F1 {mean:.4} ± {sd:.4}\n\
         # rebuild: dropline train strip {} --out {} (l2 on tokens {})\n",
        super::block_model::HASH_BITS,
        n_blocks,
        pages.len(),
        dir.display(),
        args.epochs,
        args.folds,
        dir.display(),
        args.out.display(),
        args.l2_tokens
    );
    std::fs::write(&args.out, header + &model.render())
        .with_context(|| format!("failed to write {}", args.out.display()))?;
    println!("wrote {}", args.out.display());
    Ok(())
}

fn show(d: &Decode) -> String {
    format!(
        "body_bar {:.2} keep_inside {:.2} keep_outside {:.2} smoothing {:.2}",
        d.body_bar, d.keep_inside, d.keep_outside, d.smoothing
    )
}

/// Returns the index with the best score (the first on ties, so the choice is stable).
fn best_setting(n: usize, f1: impl Fn(usize) -> f64) -> usize {
    let mut best = (0, f64::MIN);
    for g in 0..n {
        let f = f1(g);
        if f > best.1 {
            best = (g, f);
        }
    }
    best.0
}

fn mean_sd(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    (mean, var.sqrt())
}

/// Assigns every page the fold of its site: sites ordered by a fixed hash, dealt round-robin.
fn assign_folds(pages: &[TrainPage], folds: usize) -> Vec<usize> {
    let mut sites: Vec<&str> = pages.iter().map(|p| p.site.as_str()).collect();
    sites.sort_unstable();
    sites.dedup();
    sites.sort_by_key(|s| xxhash_rust::xxh3::xxh3_64_with_seed(s.as_bytes(), 7));
    pages
        .iter()
        .map(|p| sites.iter().position(|s| *s == p.site).unwrap_or(0) % folds)
        .collect()
}

/// Fits the model on `pages` by AdaGrad over a seeded shuffle of their blocks.
fn fit(pages: &[&TrainPage], epochs: usize, l2_tokens: f64) -> BlockModel {
    // (page, block) of every sample, and its weight: longer blocks weigh more, as in the metric.
    let mut samples: Vec<(usize, usize)> = Vec::new();
    for (pi, p) in pages.iter().enumerate() {
        samples.extend((0..p.labels.len()).map(|b| (pi, b)));
    }
    let weight = |pi: usize, b: usize| (1.0 + f64::from(pages[pi].m.lines[b].words)).sqrt();
    // Standardise the dense features (the bias stays 1), then map the weights back at the end.
    // A floor keeps near-constant features (a flag set on almost every block) from huge weights.
    let std = Standardiser::fit(samples.iter().map(|&(pi, b)| &pages[pi].m.dense[b]), 0.05);
    let mut wd = [0f64; N_DENSE];
    let mut gd = [1e-8f64; N_DENSE];
    let n_hash = 1usize << super::block_model::HASH_BITS;
    let mut wh = vec![0f64; n_hash];
    let mut gh = vec![1e-8f64; n_hash];
    let (lr, l2) = (0.05, 1e-5);
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut z = [0f64; N_DENSE];
    for _ in 0..epochs {
        // Fisher-Yates with xorshift64: the same order on every run.
        for i in (1..samples.len()).rev() {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            samples.swap(i, (rng % (i as u64 + 1)) as usize);
        }
        for &(pi, b) in &samples {
            let m = &pages[pi].m;
            let x = &m.dense[b];
            std.apply(x, &mut z);
            let toks = m.buckets(b);
            let mut s: f64 = wd.iter().zip(&z).map(|(a, c)| a * c).sum();
            for &t in toks {
                s += wh[t as usize];
            }
            let p = sigmoid(s);
            let y = if pages[pi].labels[b] { 1.0 } else { 0.0 };
            let g = (p - y) * weight(pi, b);
            for j in 0..N_DENSE {
                let gj = g * z[j] + l2 * wd[j];
                gd[j] += gj * gj;
                wd[j] -= lr * gj / gd[j].sqrt();
            }
            for &t in toks {
                let k = t as usize;
                let gk = g + l2_tokens * wh[k];
                gh[k] += gk * gk;
                wh[k] -= lr * gk / gh[k].sqrt();
            }
        }
    }
    let dense = std.raw_weights(&wd).to_vec();
    let model = BlockModel {
        dense,
        hashed: wh.iter().map(|w| *w as f32).collect(),
        decode: Decode {
            body_bar: 0.5,
            keep_inside: 0.5,
            keep_outside: 0.5,
            smoothing: 0.0,
        },
    };
    // Cross-validate the weights exactly as they are shipped: rounded by the file format.
    BlockModel::parse(&model.render()).unwrap_or(model)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(site: &str, i: usize) -> TrainPage {
        let para = format!("The council met on day {i} and agreed on a new budget for the schools of the town, after a long debate.");
        let html = format!(
            "<html><body><nav class=\"menu\"><a href=/>Home</a> <a href=/n>News</a></nav><article><p>{para}</p><p>{para}</p></article><footer class=\"site-footer\">Copyright 2026 Town News</footer></body></html>"
        );
        let m = crate::strip::html::measure(&html).unwrap();
        let gold = format!("{para}\n{para}");
        let labels = label_lines(&m.page.text, &m.lines, &gold);
        TrainPage {
            site: site.to_string(),
            m,
            labels,
            gold,
        }
    }

    #[test]
    fn fitting_is_deterministic_and_learns_the_article() {
        let pages: Vec<TrainPage> = (0..12).map(|i| page(&format!("s{}", i % 4), i)).collect();
        assert_eq!(pages[0].labels, [false, true, true, false]);
        let refs: Vec<&TrainPage> = pages.iter().collect();
        let a = fit(&refs, 3, 1e-3);
        let b = fit(&refs, 3, 1e-3);
        assert_eq!(a.render(), b.render());
        let probs = crate::strip::block_model::probabilities(&a, &pages[0].m);
        assert!(
            probs[1] > 0.5 && probs[0] < 0.5 && probs[3] < 0.5,
            "{probs:?}"
        );
    }

    #[test]
    fn folds_keep_a_site_together() {
        let pages: Vec<TrainPage> = (0..12).map(|i| page(&format!("s{}", i % 4), i)).collect();
        let folds = assign_folds(&pages, 2);
        for (p, f) in pages.iter().zip(&folds) {
            let same = pages.iter().zip(&folds).filter(|(q, _)| q.site == p.site);
            assert!(same.into_iter().all(|(_, g)| g == f));
        }
        assert!(folds.contains(&0) && folds.contains(&1));
    }
}
