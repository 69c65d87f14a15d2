//! Error analysis of short matchings on training folds (run by hand:
//! `DROPLINE_SHORT_ANALYSIS=DIR cargo test --release --lib short_matching_analysis --
//! --ignored --nocapture`; without the variable it does nothing). For sorted and shuffle seeds
//! 1-3 (the training rewrites depend on the order), the rewrite tier is fitted on each fold's
//! training topics as `eval dedup --cv 5` fits it; every collected matching under the chosen
//! `rewrite_min_words` (and past `rewrite_min_reworded`) is scored by a model fitted on the
//! matchings past the gates without its inner topic fold, and tabled by content words; the
//! band from 8 words is also scored by a model fitted on the band alone. With
//! `DROPLINE_SHORT_DUMP=FILE` every collected matching is appended to FILE as a tab-separated row.

use super::super::super::cv::Fitting;
use super::super::super::{load, near_gold, Doc, Rng};
use super::held_out_scores_on;
use super::Sample;
use crate::dedup::eval_gen::{Generator, Thesaurus};
use crate::dedup::DedupConfig;

const BINS: [(usize, usize); 6] = [(0, 5), (5, 10), (10, 15), (15, 20), (20, 30), (30, 40)];
const SHORT_FLOOR: usize = 8;
const BARS: [f32; 5] = [0.5, 0.9, 0.95, 0.99, 0.999];

#[test]
#[ignore]
fn short_matching_analysis() {
    let Ok(dir) = std::env::var("DROPLINE_SHORT_ANALYSIS") else {
        return;
    };
    let mut sorted = load(std::path::Path::new(&dir)).expect("data");
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    let thesaurus = Thesaurus::load().expect("thesaurus");
    let base = DedupConfig::default();
    let kinds: [Option<Generator>; 4] = [
        Some(Generator::Swap),
        Some(Generator::Spin),
        Some(Generator::SpinEdit),
        None,
    ];
    // (bin, kind) -> scores, covered_new, reworded.
    let mut cells: Vec<Vec<(f32, f32, f32)>> = vec![Vec::new(); BINS.len() * kinds.len()];
    let mut real_high = Vec::new();
    let mut own_cells: Vec<Vec<f32>> = vec![Vec::new(); kinds.len()];
    let mut own_high = Vec::new();
    let mut long_real_max = Vec::new();
    for (shuffle, seed) in [(false, 1u64), (true, 1), (true, 2), (true, 3)] {
        // The documents in the order `eval dedup` reads them (the training rewrites depend on it).
        let mut docs: Vec<&Doc> = sorted.iter().collect();
        if shuffle {
            let mut rng = Rng(seed);
            for i in (1..docs.len()).rev() {
                docs.swap(i, rng.below(i + 1));
            }
        }
        let fitting = Fitting {
            base: &base,
            seed,
            thesaurus: &thesaurus,
            mask: &[],
        };
        let fold_of = super::super::super::cv::topic_folds(docs.iter().copied(), seed ^ 0xf01d, 5);
        for f in 0..5 {
            let train: Vec<&Doc> = docs
                .iter()
                .copied()
                .filter(|d| fold_of[d.topic.as_str()] != f)
                .collect();
            let gold = near_gold(&train);
            let rf = fitting.rewrite(&train, &gold);
            let gates = rf.gates.gates;
            let held = held_out_scores_on(&rf.collected, |s| s.passes(gates));
            // A model of its own for the band [SHORT_FLOOR, gates.0): fitted on the band alone.
            let band: Vec<Sample> = rf
                .collected
                .iter()
                .filter(|s| !s.passes(gates) && s.words >= SHORT_FLOOR && s.reworded >= gates.1)
                .cloned()
                .collect();
            let own = held_out_scores_on(&band, |_| true);
            if let Ok(path) = std::env::var("DROPLINE_SHORT_DUMP") {
                use std::io::Write as _;
                let mut w = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .expect("dump file");
                for (s, &p) in rf.collected.iter().zip(&held) {
                    let x: Vec<String> = s.x.iter().map(|v| v.to_string()).collect();
                    let kind = s
                        .generator
                        .map_or("real".to_string(), |(g, r)| format!("{g:?}{r}"));
                    let _ = writeln!(
                        w,
                        "{shuffle}\t{seed}\t{f}\t{}\t{}\t{}\t{kind}\t{}\t{}\t{p}\t{}\t{}\t{}",
                        gates.0,
                        gates.1,
                        s.topic,
                        s.words,
                        s.reworded,
                        s.names.0,
                        s.names.1,
                        x.join("\t")
                    );
                }
            }
            for (s, &p) in band.iter().zip(&own) {
                let k = kinds
                    .iter()
                    .position(|&g| g == s.generator.map(|(g, _)| g))
                    .expect("a kind");
                own_cells[k].push(p);
                if !s.rewrite && p >= 0.9 {
                    own_high.push((shuffle, seed, f, s.words, p, s.names.clone()));
                }
            }
            let mut top = 0.0f32;
            for (s, &p) in rf.collected.iter().zip(&held) {
                if s.passes(gates) {
                    if !s.rewrite {
                        top = top.max(p);
                    }
                    continue;
                }
                if s.reworded < gates.1 {
                    continue;
                }
                let Some(b) = BINS
                    .iter()
                    .position(|&(lo, hi)| s.words >= lo && s.words < hi)
                else {
                    continue;
                };
                let k = kinds
                    .iter()
                    .position(|&g| g == s.generator.map(|(g, _)| g))
                    .expect("a kind");
                cells[b * kinds.len() + k].push((p, s.x[0], s.reworded));
                if !s.rewrite && p >= 0.5 {
                    real_high.push((shuffle, seed, f, s.words, p, s.names.clone()));
                }
            }
            long_real_max.push((shuffle, seed, f, gates, rf.gates.threshold, top));
        }
    }
    println!("short matchings on training folds (4 orders x 5 folds; a document counts once per training set it is in), held-out scores by a model fitted on the matchings past the gates:");
    println!(
        "words | kind | n | mean covered_new | mean reworded | median score | share >= {BARS:?}"
    );
    for (b, &(lo, hi)) in BINS.iter().enumerate() {
        for (k, g) in kinds.iter().enumerate() {
            let mut v = cells[b * kinds.len() + k].clone();
            if v.is_empty() {
                continue;
            }
            v.sort_by(|a, b| a.0.total_cmp(&b.0));
            let n = v.len() as f32;
            let cov = v.iter().map(|x| x.1).sum::<f32>() / n;
            let rew = v.iter().map(|x| x.2).sum::<f32>() / n;
            let shares: Vec<String> = BARS
                .iter()
                .map(|&t| format!("{:.2}", v.iter().filter(|x| x.0 >= t).count() as f32 / n))
                .collect();
            println!(
                "{lo}-{} | {} | {} | {cov:.3} | {rew:.3} | {:.3} | {}",
                hi - 1,
                g.map_or("real pairs", |g| g.name()),
                v.len(),
                v[v.len() / 2].0,
                shares.join(" ")
            );
        }
    }
    println!("the band [{SHORT_FLOOR}, gate) scored by a model fitted on the band alone (held-out inner topic folds): kind | n | share >= {BARS:?}");
    for (k, g) in kinds.iter().enumerate() {
        let v = &own_cells[k];
        let shares: Vec<String> = BARS
            .iter()
            .map(|&t| {
                format!(
                    "{:.2}",
                    v.iter().filter(|&&x| x >= t).count() as f32 / v.len().max(1) as f32
                )
            })
            .collect();
        println!(
            "{} | {} | {}",
            g.map_or("real pairs", |g| g.name()),
            v.len(),
            shares.join(" ")
        );
    }
    println!("real pairs of the band scoring 0.9 or more by that model:");
    for r in &own_high {
        println!("  {r:?}");
    }
    println!("real short pairs scoring 0.5 or more (seed, fold, words, score, names):");
    for r in &real_high {
        println!("  {r:?}");
    }
    println!(
        "per training set: gates, held-out threshold, highest held-out real pair past the gates:"
    );
    for r in &long_real_max {
        println!("  {r:?}");
    }
}
