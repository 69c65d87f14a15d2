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
use super::gate::Gate;
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
    /// Per gate setting ([`gates`]), as the tagger tags (for later passes only where unsure,
    /// with consistency): held-out F1 as written and lower-cased, and the share of tokens the
    /// gate fixes (as written, lower-cased).
    gate: [[f64; 4]; N_GATES],
}

/// Gate settings scored: none, then [`Gate::TRIED`].
const N_GATES: usize = 1 + Gate::TRIED.len();

fn gates() -> impl Iterator<Item = Gate> {
    std::iter::once(Gate::OFF).chain(Gate::TRIED)
}

/// Each held-out document's tags per gate setting: `[setting][document]`.
type GateTags = Vec<Vec<Vec<u8>>>;

/// Held-out scores of one fold's documents with one model: F1 without and with consistency,
/// gated as tagged (with, without consistency), the share re-tagged, and per gate setting the F1 as tagged, the share fixed and the tags.
struct Scored {
    plain: (f64, f64),
    gated: (f64, f64),
    unsure: f64,
    gate: [(f64, f64); N_GATES],
    gate_tags: GateTags,
}

/// Returns the mean and (population) standard deviation.
fn mean_std(v: &[f64]) -> (f64, f64) {
    let n = v.len().max(1) as f64;
    let m = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / n;
    (m, var.sqrt())
}

/// Decodes `docs` with the trainers' averaged stage, pruned as the written model is. For a
/// later pass, `firsts[setting][doc]` are the documents' first-pass tags under each gate
/// setting: each setting is scored with its own first pass's evidence, as the tagger would
/// see it (`firsts[0]`, no gate, is what the documents' evidence holds and is put back).
fn score_docs(
    trainers: &[Trainer],
    prune: f32,
    docs: &mut [&mut DocData],
    firsts: Option<&[Vec<&[u8]>]>,
) -> Scored {
    let mut stage = average_of(trainers);
    if prune > 0.0 {
        stage.prune(prune);
    }
    let compiled = stage.compile();
    let mut scorer = Scorer::default();
    let mut consistent = Scorer::default();
    let mut gated = Scorer::default();
    let mut gated_consistent = Scorer::default();
    let (mut toks, mut unsure) = (0usize, 0usize);
    for d in docs.iter_mut() {
        let t = decode_doc([compiled.view()], &mut d.infos, &d.sents, Gate::OFF);
        scorer.add(&d.gold_spans, &spans_of(&t, &d.sents, None));
        consistent.add(&d.gold_spans, &spans_of(&t, &d.sents, Some(&d.infos)));
        let g = only_unsure(t, d);
        for s in &d.sents {
            toks += s.len();
            if super::unsure(&d.infos[s.clone()]) {
                unsure += s.len();
            }
        }
        gated.add(&d.gold_spans, &spans_of(&g, &d.sents, None));
        gated_consistent.add(&d.gold_spans, &spans_of(&g, &d.sents, Some(&d.infos)));
    }
    let mut gate = [(0.0, 0.0); N_GATES];
    let mut gate_tags = vec![Vec::new(); N_GATES];
    let mut far = Vec::new();
    for (k, g) in gates().enumerate() {
        let mut scorer = Scorer::default();
        let mut fixed = 0usize;
        for (j, d) in docs.iter_mut().enumerate() {
            if let Some(f) = firsts {
                features::set_priors(&mut d.infos, f[k][j]);
            }
            let mut t = decode_doc([compiled.view()], &mut d.infos, &d.sents, g);
            if firsts.is_some() {
                t = only_unsure(t, d);
            }
            scorer.add(&d.gold_spans, &spans_of(&t, &d.sents, Some(&d.infos)));
            g.mark(&d.infos, &d.sents, &mut far);
            fixed += far.iter().filter(|&&x| x).count();
            if let Some(f) = firsts {
                features::set_priors(&mut d.infos, f[0][j]);
            }
            gate_tags[k].push(t);
        }
        gate[k] = (scorer.overall.prf().2, fixed as f64 / toks.max(1) as f64);
    }
    Scored {
        plain: (scorer.overall.prf().2, consistent.overall.prf().2),
        gated: (gated.overall.prf().2, gated_consistent.overall.prf().2),
        unsure: unsure as f64 / toks.max(1) as f64,
        gate,
        gate_tags,
    }
}

/// Returns `t` with the first pass's tags where the document's evidence leaves a sentence
/// nothing to decide (as the tagger runs later passes).
fn only_unsure(mut t: Vec<u8>, d: &DocData) -> Vec<u8> {
    for s in &d.sents {
        let sent = &d.infos[s.clone()];
        if !super::unsure(sent) {
            for (o, i) in t[s.clone()].iter_mut().zip(sent) {
                *o = i.first;
            }
        }
    }
    t
}

/// Cross-validates one pass (its label, and the template positions it reads) over `k` folds
/// for up to `epochs` epochs; a later pass gets every document's first-pass tags per gate
/// setting in `firsts`. Returns scores `[fold][epoch - 1]` and, per epoch, every document's
/// held-out tags per gate setting (cased, lower-cased).
#[allow(clippy::type_complexity, clippy::too_many_arguments)]
fn cv_pass(
    args: &TrainEntitiesArgs,
    (label, templates): (&str, usize),
    k: usize,
    epochs: usize,
    cased: &mut [DocData],
    lower: &mut [DocData],
    firsts: Option<&(GateTags, GateTags)>,
    started: Instant,
) -> (Vec<Vec<FoldScore>>, Vec<(GateTags, GateTags)>) {
    let n = cased.len();
    let fold_of = |i: usize| i * k / n;
    let mut scores = vec![vec![FoldScore::default(); epochs]; k];
    let empty = || vec![vec![Vec::new(); n]; N_GATES];
    let mut tags = vec![(empty(), empty()); epochs];
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
        let firsts_held = firsts.map(|(c, l)| (held_of(c, &held), held_of(l, &held)));
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
                let fc_ = firsts_held.as_ref().map(|f| f.0.as_slice());
                let fl_ = firsts_held.as_ref().map(|f| f.1.as_slice());
                let c = score_docs(trainers, args.prune, &mut held_cased, fc_);
                let l = score_docs(trainers, args.prune, &mut held_lower, fl_);
                let gate =
                    std::array::from_fn(|g| [c.gate[g].0, l.gate[g].0, c.gate[g].1, l.gate[g].1]);
                fold_scores[epoch - 1] = FoldScore {
                    cased: c.plain.0,
                    lower: l.plain.0,
                    cased_consistent: c.plain.1,
                    lower_consistent: l.plain.1,
                    gated: [c.gated.0, l.gated.0, c.gated.1, l.gated.1],
                    gate,
                };
                let (tc, tl) = &mut tags[epoch - 1];
                for (g, (gc, gl)) in c.gate_tags.into_iter().zip(l.gate_tags).enumerate() {
                    for ((&i, x), y) in held.iter().zip(gc).zip(gl) {
                        tc[g][i] = x;
                        tl[g][i] = y;
                    }
                }
                let as_tagged: Vec<String> = (1..N_GATES)
                    .map(|g| format!("{:.4}/{:.4}", gate[g][0], gate[g][1]))
                    .collect();
                eprintln!(
                "{label} fold {} epoch {epoch}: held-out F1 {:.4}, lower-cased {:.4}; with consistency {:.4}, {:.4}; gated {:.4}, {:.4} (tokens re-tagged {:.3}, {:.3}); as tagged {:.4}/{:.4}, with gates {} ({:.0}s)",
                fold + 1,
                c.plain.0,
                l.plain.0,
                c.plain.1,
                l.plain.1,
                c.gated.0,
                l.gated.0,
                c.unsure,
                l.unsure,
                gate[0][0],
                gate[0][1],
                as_tagged.join(" "),
                started.elapsed().as_secs_f64()
            );
            },
        );
    }
    (scores, tags)
}

/// Returns the tags of the `held` documents, per gate setting.
fn held_of<'t>(all: &'t GateTags, held: &[usize]) -> Vec<Vec<&'t [u8]>> {
    all.iter()
        .map(|g| held.iter().map(|&i| g[i].as_slice()).collect())
        .collect()
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
        for (g, gate) in gates().enumerate() {
            let v =
                |i: usize| mean_std(&scores.iter().map(|f| f[e].gate[g][i]).collect::<Vec<_>>());
            let (c, l, fc, fl) = (v(0), v(1), v(2), v(3));
            println!(
                "{label} epoch {} as tagged, gate radius {} {:?}: held-out F1 {:.4} ± {:.4}, lower-cased {:.4} ± {:.4}; tokens fixed {:.3}, lower-cased {:.3}",
                e + 1, gate.radius, gate.scope, c.0, c.1, l.0, l.1, fc.0, fl.0
            );
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
    let (s1, mut tags) = cv_pass(
        args,
        ("pass 1", features::FIRST_PASS),
        k,
        args.epochs,
        &mut cased,
        &mut lower,
        None,
        started,
    );
    let e1 = report("pass 1", &s1);
    if args.folds < 2 {
        return Ok(());
    }
    // Every document's evidence is its ungated first pass (as the model is trained); each
    // gate setting's held-out score reads its own.
    let firsts = tags.swap_remove(e1 - 1);
    drop(tags);
    for (d, t) in cased.iter_mut().zip(&firsts.0[0]) {
        features::set_priors(&mut d.infos, t);
    }
    for (d, t) in lower.iter_mut().zip(&firsts.1[0]) {
        features::set_priors(&mut d.infos, t);
    }
    let (s2, _) = cv_pass(
        args,
        ("pass 2", features::N_FEATURES),
        k,
        args.epochs2,
        &mut cased,
        &mut lower,
        Some(&firsts),
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
