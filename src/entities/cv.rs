//! Owns `dropline train entities --cv K`: grouped K-fold cross-validation on the training data.
//!
//! The training documents are cut into K folds of consecutive whole documents (CoNLL's
//! `-DOCSTART-` boundaries; neighbouring documents share days and topics, so a fold holds them
//! together). For each fold, pass 1 is trained on the other folds (plus their lower-cased
//! copies, as `--lower-copies` says) and scored on the held-out fold after every epoch, as
//! written and lower-cased (a check of text without capitals, built from training data only).
//! The pass-1 epoch with the best mean held-out F1 is chosen; its held-out tags give every
//! training document the same first-pass evidence the final training gives it, and pass 2 is
//! cross-validated over the same folds. Printed: F1 per epoch as mean ± std over folds, and per
//! fold at the chosen epochs. Scores are of the stages pruned by `--prune`, as the written model
//! is. No model is written and no development file is read.

use super::conll::{self, Doc, Scorer};
use super::decode_doc;
use super::features;
use super::perceptron::{average_of, Trainer};
use super::resources::ResourcesView;
use super::train::{doc_data, fit, lower_copy, prepare, spans_of, DocData, TrainEntitiesArgs};
use std::time::Instant;

/// Held-out F1 of one fold at one epoch: on the text as written and lower-cased, each without
/// and with the document-level consistency pass ([`super::consistency`]).
#[derive(Debug, Clone, Copy, Default)]
struct FoldScore {
    cased: f64,
    lower: f64,
    cased_consistent: f64,
    lower_consistent: f64,
    /// Pass 2 only where [`super::unsure`] says so, first-pass tags elsewhere (as written,
    /// lower-cased; each without and with consistency).
    gated: [f64; 4],
}

/// Returns the mean and (population) standard deviation.
fn mean_std(v: &[f64]) -> (f64, f64) {
    let n = v.len().max(1) as f64;
    let m = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / n;
    (m, var.sqrt())
}

/// Decodes `docs` with the trainers' averaged stage, pruned as the written model is, returning
/// the F1 without and with the consistency pass, and each document's tags.
#[allow(clippy::type_complexity)]
fn score_docs(
    trainers: &[Trainer],
    prune: f32,
    docs: &mut [&mut DocData],
) -> ((f64, f64), (f64, f64), f64, Vec<Vec<u8>>) {
    let mut stage = average_of(trainers);
    if prune > 0.0 {
        stage.prune(prune);
    }
    let compiled = stage.compile();
    let mut scorer = Scorer::default();
    let mut consistent = Scorer::default();
    let mut gated = Scorer::default();
    let mut gated_consistent = Scorer::default();
    let mut tags = Vec::with_capacity(docs.len());
    let (mut toks, mut unsure) = (0usize, 0usize);
    for d in docs.iter_mut() {
        let t = decode_doc([compiled.view()], &mut d.infos, &d.sents);
        scorer.add(&d.gold_spans, &spans_of(&t, &d.sents, None));
        consistent.add(&d.gold_spans, &spans_of(&t, &d.sents, Some(&d.infos)));
        let mut g = t.clone();
        for s in &d.sents {
            let sent = &d.infos[s.clone()];
            toks += sent.len();
            if super::unsure(sent) {
                unsure += sent.len();
            } else {
                for (o, i) in g[s.clone()].iter_mut().zip(sent) {
                    *o = i.first;
                }
            }
        }
        gated.add(&d.gold_spans, &spans_of(&g, &d.sents, None));
        gated_consistent.add(&d.gold_spans, &spans_of(&g, &d.sents, Some(&d.infos)));
        tags.push(t);
    }
    (
        (scorer.overall.prf().2, consistent.overall.prf().2),
        (gated.overall.prf().2, gated_consistent.overall.prf().2),
        unsure as f64 / toks.max(1) as f64,
        tags,
    )
}

/// Cross-validates one pass (its label, and the template positions it reads) over `k` folds
/// for up to `epochs` epochs; returns scores
/// `[fold][epoch - 1]` and, per epoch, every document's held-out tags (cased, lower-cased).
#[allow(clippy::type_complexity)]
fn cv_pass(
    args: &TrainEntitiesArgs,
    (label, templates): (&str, usize),
    k: usize,
    epochs: usize,
    cased: &mut [DocData],
    lower: &mut [DocData],
    started: Instant,
) -> (Vec<Vec<FoldScore>>, Vec<(Vec<Vec<u8>>, Vec<Vec<u8>>)>) {
    let n = cased.len();
    let fold_of = |i: usize| i * k / n;
    let mut scores = vec![vec![FoldScore::default(); epochs]; k];
    let mut tags = vec![(vec![Vec::new(); n], vec![Vec::new(); n]); epochs];
    for (fold, fold_scores) in scores.iter_mut().enumerate() {
        let train: Vec<&DocData> = (0..n)
            .filter(|&i| fold_of(i) != fold)
            .map(|i| &cased[i])
            .chain(
                (0..n)
                    .filter(|&i| fold_of(i) != fold && lower_copy(i, args.lower_copies))
                    .map(|i| &lower[i]),
            )
            .collect();
        let data = prepare(&train, args.bits, args.gaz_dropout);
        drop(train);
        let held: Vec<usize> = (0..n).filter(|&i| fold_of(i) == fold).collect();
        let mut held_cased: Vec<&mut DocData> = cased
            .iter_mut()
            .enumerate()
            .filter(|(i, _)| fold_of(*i) == fold)
            .map(|(_, d)| d)
            .collect();
        let mut held_lower: Vec<&mut DocData> = lower
            .iter_mut()
            .enumerate()
            .filter(|(i, _)| fold_of(*i) == fold)
            .map(|(_, d)| d)
            .collect();
        fit(
            &data,
            args.bits,
            templates,
            args.bags,
            epochs,
            |epoch, _, trainers| {
                let (fc, gc, uc, tc) = score_docs(trainers, args.prune, &mut held_cased);
                let (fl, gl, ul, tl) = score_docs(trainers, args.prune, &mut held_lower);
                fold_scores[epoch - 1] = FoldScore {
                    cased: fc.0,
                    lower: fl.0,
                    cased_consistent: fc.1,
                    lower_consistent: fl.1,
                    gated: [gc.0, gl.0, gc.1, gl.1],
                };
                for ((&i, c), l) in held.iter().zip(tc).zip(tl) {
                    tags[epoch - 1].0[i] = c;
                    tags[epoch - 1].1[i] = l;
                }
                eprintln!(
                "{label} fold {} epoch {epoch}: held-out F1 {:.4}, lower-cased {:.4}; with consistency {:.4}, {:.4}; gated {:.4}, {:.4} (tokens re-tagged {uc:.3}, {ul:.3}) ({:.0}s)",
                fold + 1,
                fc.0,
                fl.0,
                fc.1,
                fl.1,
                gc.0,
                gl.0,
                started.elapsed().as_secs_f64()
            );
            },
        );
    }
    (scores, tags)
}

/// Prints per-epoch mean ± std and per-fold scores at the best epoch; returns that epoch
/// (the best mean F1 on the text as written, gated as tagged for later passes; ties go to the
/// earlier epoch).
fn report(label: &str, scores: &[Vec<FoldScore>]) -> usize {
    let epochs = scores.first().map_or(0, Vec::len);
    // Later passes re-tag only the sentences the first left unsure, as the tagger does; their
    // epoch is chosen on those scores.
    let gated = label != "pass 1";
    let mut best = (0, f64::MIN);
    for e in 0..epochs {
        let stat = |get: fn(&FoldScore) -> f64| {
            let v: Vec<f64> = scores.iter().map(|f| get(&f[e])).collect();
            mean_std(&v)
        };
        let ((cm, cs), (lm, ls)) = (stat(|f| f.cased), stat(|f| f.lower));
        let ((ccm, ccs), (lcm, lcs)) = (stat(|f| f.cased_consistent), stat(|f| f.lower_consistent));
        println!(
            "{label} epoch {}: held-out F1 {cm:.4} ± {cs:.4}, lower-cased {lm:.4} ± {ls:.4}; with consistency {ccm:.4} ± {ccs:.4}, lower-cased {lcm:.4} ± {lcs:.4}",
            e + 1
        );
        let mut key = cm;
        if gated {
            let g: Vec<(f64, f64)> = (0..4)
                .map(|k| mean_std(&scores.iter().map(|f| f[e].gated[k]).collect::<Vec<_>>()))
                .collect();
            println!(
                "{label} epoch {} gated: held-out F1 {:.4} ± {:.4}, lower-cased {:.4} ± {:.4}; with consistency {:.4} ± {:.4}, lower-cased {:.4} ± {:.4}",
                e + 1, g[0].0, g[0].1, g[1].0, g[1].1, g[2].0, g[2].1, g[3].0, g[3].1
            );
            key = g[0].0;
        }
        if key > best.1 {
            best = (e, key);
        }
    }
    let per_fold: Vec<String> = scores
        .iter()
        .map(|f| {
            let f = &f[best.0];
            if gated {
                let g = f.gated;
                format!("{:.4}/{:.4} ({:.4}/{:.4})", g[0], g[1], g[2], g[3])
            } else {
                format!(
                    "{:.4}/{:.4} ({:.4}/{:.4})",
                    f.cased, f.lower, f.cased_consistent, f.lower_consistent
                )
            }
        })
        .collect();
    println!(
        "{label} chosen epoch {}: per fold cased/lower-cased (with consistency) {}",
        best.0 + 1,
        per_fold.join(" ")
    );
    best.0 + 1
}

/// Runs the cross-validation and prints its results.
pub fn run(
    args: &TrainEntitiesArgs,
    k: usize,
    docs: &[Doc],
    res: &ResourcesView<'_>,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        k >= 2 && k <= docs.len(),
        "--cv needs at least 2 folds and no more folds than documents"
    );
    let started = Instant::now();
    let mut cased = doc_data(docs, res);
    let lower_docs: Vec<Doc> = docs.iter().map(conll::lowercased).collect();
    let mut lower = doc_data(&lower_docs, res);
    drop(lower_docs);
    println!(
        "cv: {k} folds of consecutive documents over {} documents; bags {}, bits {}, lower-cased copies {}, gazetteer dropout {}",
        docs.len(),
        args.bags,
        args.bits,
        args.lower_copies,
        args.gaz_dropout
    );
    let (s1, tags) = cv_pass(
        args,
        ("pass 1", features::FIRST_PASS),
        k,
        args.epochs,
        &mut cased,
        &mut lower,
        started,
    );
    let e1 = report("pass 1", &s1);
    if args.folds < 2 {
        return Ok(());
    }
    let (tc, tl) = &tags[e1 - 1];
    for (d, t) in cased.iter_mut().zip(tc) {
        features::set_priors(&mut d.infos, t);
    }
    for (d, t) in lower.iter_mut().zip(tl) {
        features::set_priors(&mut d.infos, t);
    }
    drop(tags);
    let (s2, _) = cv_pass(
        args,
        ("pass 2", features::N_FEATURES),
        k,
        args.epochs2,
        &mut cased,
        &mut lower,
        started,
    );
    report("pass 2", &s2);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_and_spread() {
        let (m, s) = mean_std(&[0.9, 0.92, 0.94]);
        assert!((m - 0.92).abs() < 1e-12);
        assert!((s - 0.016_329_9).abs() < 1e-6);
    }
}
