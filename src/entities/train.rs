//! Owns `dropline train entities`: fits the entity model on CoNLL data.
//!
//! Pass 1 is a bagged averaged perceptron over local features (the [`features::FIRST_PASS`]
//! templates: not the second-pass ones, whose fields are all zero in pass 1). Pass 2 adds
//! document-level evidence from pass 1 (how the same word and word pair were tagged elsewhere
//! in the document); on the training data that evidence comes from pass-1 models trained
//! without the document's fold, so it is as noisy as on new text. The tagger runs pass 2 only
//! on sentences where that evidence disagrees with pass 1 ([`super::unsure`]). A share of the training documents is also
//! trained on in lower case (`--lower-copies`), so that the model does not lean on capitals
//! alone (text that is not Reuters often lacks them). Both passes run a fixed number of epochs
//! chosen by `--cv` (grouped by document on the training data, see [`super::cv`]); `--dev` is
//! scored once at the end and chooses nothing. With the defaults the run is deterministic:
//!
//! ```text
//! dropline train entities --train ../shared/data/ner/conll2003/eng.train \
//!     --dev ../shared/data/ner/conll2003/eng.testa --out models/entities.bin
//! ```
//!
//! rebuilds the shipped `models/entities.bin` byte for byte from the embedded
//! `resources/entities.res.gz`. The file is the read-in-place format of [`super::model_file`]:
//! i8 weight rows with per-row scales, resources as flat tables.

use super::conll::{self, Doc, Scorer, Span};
use super::features::TokInfo;
use super::features::{self, N_FEATURES};
use super::gate::Gate;
use super::model_file::{self, ModelFile};
use super::perceptron::{average_of, tag, Part, Stage, Trainer, TYPES};
use super::resources::{ResourceTables, ResourcesView};
use super::{decode_doc, spans_from_tags, NameSpan};
use anyhow::Context;
use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Instant;

/// Arguments of `dropline train entities`.
#[derive(Debug, clap::Args)]
pub struct TrainEntitiesArgs {
    /// Training data, CoNLL-2003 format.
    #[arg(long)]
    pub train: PathBuf,
    /// Development data, scored once after training and reported; it chooses nothing.
    #[arg(long)]
    pub dev: Option<PathBuf>,
    /// Where the model file is written.
    #[arg(long, required_unless_present = "cv")]
    pub out: Option<PathBuf>,
    /// Resource file (clusters and gazetteer) built by `scripts/build_resources.py`; embedded
    /// into the model. Defaults to the shipped one.
    #[arg(long)]
    pub resources: Option<PathBuf>,
    /// Passes over the training data for pass 1 (chosen by `--cv`); with `--cv`, the most
    /// epochs scored.
    #[arg(long, default_value_t = 10)]
    pub epochs: usize,
    /// Passes over the training data for pass 2 (chosen by `--cv`).
    #[arg(long, default_value_t = 6)]
    pub epochs2: usize,
    /// log2 of the number of weight-table rows.
    #[arg(long, default_value_t = 19)]
    pub bits: u32,
    /// Folds for the first pass's cross-validated predictions on the training data (the second
    /// pass learns from them); 0 trains a single-pass model.
    #[arg(long, default_value_t = 4)]
    pub folds: usize,
    /// Perceptrons trained on different shuffles and averaged into each pass.
    #[arg(long, default_value_t = 5)]
    pub bags: usize,
    /// Zeroes weights below this fraction of the largest weight before writing.
    #[arg(long, default_value_t = 0.006)]
    pub prune: f32,
    /// Share of training documents (0 to 1, a fixed pseudo-random choice) also trained on with
    /// every word lower-cased.
    #[arg(long, default_value_t = 1.0)]
    pub lower_copies: f64,
    /// Share of training sentences (0 to 1, a fixed pseudo-random choice) trained on without
    /// their gazetteer matches, so that names the gazetteer lacks are still learnt from context.
    #[arg(long, default_value_t = 0.0)]
    pub gaz_dropout: f64,
    /// Instead of writing a model, cross-validates over this many folds of whole documents of
    /// `--train` and prints held-out F1 per epoch and fold (original and lower-cased text).
    #[arg(long)]
    pub cv: Option<usize>,
}

/// The resource file shipped in the repository.
pub static SHIPPED_RESOURCES: &[u8] = include_bytes!("../../resources/entities.res.gz");

/// Returns the text of a gzip-compressed resource file.
pub fn gunzip_text(bytes: &[u8]) -> anyhow::Result<String> {
    use std::io::Read;
    let mut s = String::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_string(&mut s)
        .context("resource file is not gzip-compressed UTF-8")?;
    Ok(s)
}

/// A sentence ready for training: its feature buckets and gold BILOU tags.
pub(super) struct Prepared {
    feats: Vec<u32>,
    gold: Vec<u8>,
}

/// A document's words turned into token information, with its sentences and gold tags.
pub(super) struct DocData {
    pub(super) infos: Vec<TokInfo>,
    pub(super) sents: Vec<std::ops::Range<usize>>,
    gold: Vec<u8>,
    pub(super) gold_spans: HashSet<Span>,
}

/// Converts IOB tags into BILOU tag indices.
fn bilou(tags: &[String]) -> Vec<u8> {
    let mut out = vec![0u8; tags.len()];
    for (s, e, ty) in conll::spans(tags) {
        let Some(t) = TYPES.iter().position(|x| *x == ty) else {
            continue;
        };
        if e - s == 1 {
            out[s] = tag(Part::Unit, t) as u8;
        } else {
            out[s] = tag(Part::Begin, t) as u8;
            for o in &mut out[s + 1..e - 1] {
                *o = tag(Part::Inside, t) as u8;
            }
            out[e - 1] = tag(Part::Last, t) as u8;
        }
    }
    out
}

/// Flattens a document into words and sentence ranges.
pub fn doc_words(doc: &Doc) -> (Vec<&str>, Vec<std::ops::Range<usize>>) {
    let mut words = Vec::new();
    let mut sents = Vec::new();
    for s in doc {
        let start = words.len();
        words.extend(s.words.iter().map(String::as_str));
        sents.push(start..words.len());
    }
    (words, sents)
}

/// Returns gold spans of a document over its flattened tokens.
pub fn gold_spans(doc: &Doc) -> HashSet<Span> {
    let mut g = HashSet::new();
    let mut off = 0;
    for s in doc {
        for (a, b, ty) in conll::spans(&s.tags) {
            if TYPES.contains(&ty.as_str()) {
                g.insert((a + off, b + off, ty));
            }
        }
        off += s.words.len();
    }
    g
}

pub(super) fn doc_data(docs: &[Doc], res: &ResourcesView<'_>) -> Vec<DocData> {
    docs.iter()
        .map(|doc| {
            let (words, sents) = doc_words(doc);
            DocData {
                infos: features::doc_infos(&words, &sents, res),
                gold: doc.iter().flat_map(|s| bilou(&s.tags)).collect(),
                gold_spans: gold_spans(doc),
                sents,
            }
        })
        .collect()
}

/// Returns the training sentences of `docs`; a `gaz_dropout` share of them (a fixed
/// pseudo-random choice) is trained on without its gazetteer matches.
pub(super) fn prepare(docs: &[&DocData], bits: u32, gaz_dropout: f64) -> Vec<Prepared> {
    let mut out = Vec::new();
    let mut no_gaz: Vec<TokInfo> = Vec::new();
    for d in docs {
        for r in &d.sents {
            let mut feats = Vec::with_capacity(r.len() * N_FEATURES);
            let sent = &d.infos[r.clone()];
            if gaz_dropout > 0.0 && picked(out.len(), gaz_dropout, 0x0067_617a_6472_6f70) {
                no_gaz.clear();
                no_gaz.extend(sent.iter().map(|t| TokInfo {
                    gaz: Default::default(),
                    ..*t
                }));
                features::sentence_features(&no_gaz, bits, &mut feats);
            } else {
                features::sentence_features(sent, bits, &mut feats);
            }
            out.push(Prepared {
                feats,
                gold: d.gold[r.clone()].to_vec(),
            });
        }
    }
    out
}

/// Returns the name spans of a document's tags as scored spans; with `infos`, after the
/// document-level consistency pass the tagger runs (see [`super::consistency`]).
pub(super) fn spans_of(
    tags: &[u8],
    sents: &[std::ops::Range<usize>],
    infos: Option<&[TokInfo]>,
) -> HashSet<Span> {
    let mut spans: Vec<NameSpan> = Vec::new();
    for s in sents {
        spans_from_tags(&tags[s.clone()], s.start, &mut spans);
    }
    if let Some(infos) = infos {
        super::consistency::propagate(infos, sents, &mut spans);
    }
    spans
        .into_iter()
        .map(|n| (n.start, n.end, TYPES[n.ty].to_string()))
        .collect()
}

/// Returns whether training document `i` also gets a lower-cased copy, for a `share` in 0..1
/// (a fixed pseudo-random choice, so runs are reproducible).
pub(super) fn lower_copy(i: usize, share: f64) -> bool {
    picked(i, share, 0)
}

/// Returns whether item `i` is in a fixed pseudo-random `share` (0 to 1) of items; `seed`
/// makes independent choices.
fn picked(i: usize, share: f64, seed: u64) -> bool {
    let h = features::mix((i as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ seed) >> 11;
    (h as f64) < share * (1u64 << 53) as f64
}

/// Runs `epochs` perceptron epochs of `bags` bagged trainers over `data`, calling `on_epoch`
/// after each with the epoch number (from 1) and the trainers; returns their averaged stage.
pub(super) fn fit(
    data: &[Prepared],
    bits: u32,
    templates: usize,
    bags: usize,
    epochs: usize,
    mut on_epoch: impl FnMut(usize, usize, &[Trainer]),
) -> Stage {
    let bags = bags.max(1);
    let mut trainers: Vec<Trainer> = (0..bags)
        .map(|_| Trainer::with_templates(bits, templates))
        .collect();
    let mut orders: Vec<Vec<usize>> = vec![(0..data.len()).collect(); bags];
    let mut rngs: Vec<u64> = (0..bags as u64)
        .map(|b| 0x2545_f491_4f6c_dd1d ^ b.wrapping_mul(0x9e37_79b9_7f4a_7c15))
        .collect();
    let mut pred = Vec::new();
    for epoch in 1..=epochs {
        let mut wrong = 0;
        for ((trainer, order), rng) in trainers.iter_mut().zip(&mut orders).zip(&mut rngs) {
            // Fisher-Yates with xorshift: deterministic shuffles, so runs are reproducible.
            for i in (1..order.len()).rev() {
                *rng ^= *rng << 13;
                *rng ^= *rng >> 7;
                *rng ^= *rng << 17;
                order.swap(i, (*rng % (i as u64 + 1)) as usize);
            }
            for &k in order.iter() {
                wrong += trainer.learn(&data[k].feats, &data[k].gold, &mut pred);
            }
        }
        on_epoch(epoch, wrong, &trainers);
    }
    average_of(&trainers)
}

/// Builds the training documents: the originals, then the chosen lower-cased copies; returns
/// them with each one's original document index (its fold group).
fn training_docs(docs: &[Doc], share: f64, res: &ResourcesView<'_>) -> (Vec<DocData>, Vec<usize>) {
    let mut data = doc_data(docs, res);
    let mut groups: Vec<usize> = (0..docs.len()).collect();
    let picked: Vec<usize> = (0..docs.len()).filter(|&i| lower_copy(i, share)).collect();
    let lower: Vec<Doc> = picked
        .iter()
        .map(|&i| conll::lowercased(&docs[i]))
        .collect();
    data.extend(doc_data(&lower, res));
    groups.extend(picked);
    (data, groups)
}

/// Trains and writes the model, or cross-validates with `--cv`.
pub fn run(args: &TrainEntitiesArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let res_text = match &args.resources {
        Some(p) => {
            let bytes =
                std::fs::read(p).with_context(|| format!("failed to read {}", p.display()))?;
            gunzip_text(&bytes)?
        }
        None => gunzip_text(SHIPPED_RESOURCES)?,
    };
    let (tables, bad) = ResourceTables::parse(&res_text);
    anyhow::ensure!(bad == 0, "resource file has {bad} malformed lines");
    drop(res_text);
    let res = tables.view();
    let train_docs = conll::read_docs(&args.train)?;
    if let Some(k) = args.cv {
        return super::cv::run(args, k, &train_docs, &res);
    }
    let out = args.out.as_ref().context("--out is required")?;
    let (mut train, groups) = training_docs(&train_docs, args.lower_copies, &res);
    let all: Vec<&DocData> = train.iter().collect();
    let data = prepare(&all, args.bits, args.gaz_dropout);
    let n_tokens: usize = data.iter().map(|p| p.gold.len()).sum();
    let (clusters, places) = res.sizes();
    eprintln!(
        "train: {} documents ({} lower-cased copies), {} sentences, {n_tokens} tokens; resources: {clusters} cluster words, {places} places",
        train.len(),
        train.len() - train_docs.len(),
        data.len()
    );
    let progress = |label: &str| {
        let label = label.to_string();
        move |epoch: usize, wrong: usize, _: &[Trainer]| {
            eprintln!(
                "{label} epoch {epoch}: train tag errors {wrong} ({:.0}s)",
                started.elapsed().as_secs_f64()
            );
        }
    };
    let first = fit(
        &data,
        args.bits,
        features::FIRST_PASS,
        args.bags,
        args.epochs,
        progress("pass 1"),
    );
    drop(data);
    let mut stages = vec![first];
    if args.folds >= 2 {
        // Cross-validated first-pass tags on the training data, so the second pass learns
        // from first-pass evidence as noisy as it will be on new text. A document and its
        // lower-cased copy share a fold.
        let mut tags: Vec<Vec<u8>> = vec![Vec::new(); train.len()];
        for fold in 0..args.folds {
            let rest: Vec<&DocData> = train
                .iter()
                .zip(&groups)
                .filter(|(_, g)| *g % args.folds != fold)
                .map(|(d, _)| d)
                .collect();
            let stage = fit(
                &prepare(&rest, args.bits, args.gaz_dropout),
                args.bits,
                features::FIRST_PASS,
                args.bags,
                args.epochs,
                |_, _, _| {},
            );
            let compiled = stage.compile();
            for ((d, g), t) in train.iter_mut().zip(&groups).zip(tags.iter_mut()) {
                if g % args.folds == fold {
                    *t = decode_doc([compiled.view()], &mut d.infos, &d.sents, Gate::OFF);
                }
            }
            eprintln!(
                "pass 1 fold {} done ({:.0}s)",
                fold + 1,
                started.elapsed().as_secs_f64()
            );
        }
        for (d, t) in train.iter_mut().zip(&tags) {
            features::set_priors(&mut d.infos, t);
        }
        let all: Vec<&DocData> = train.iter().collect();
        let data2 = prepare(&all, args.bits, args.gaz_dropout);
        stages.push(fit(
            &data2,
            args.bits,
            N_FEATURES,
            args.bags,
            args.epochs2,
            progress("pass 2"),
        ));
    }
    drop(train);
    if args.prune > 0.0 {
        for (k, s) in stages.iter_mut().enumerate() {
            let kept = s.prune(args.prune);
            eprintln!("pass {} pruned: {kept} non-zero weights", k + 1);
        }
    }
    let compiled: Vec<_> = stages.iter().map(Stage::compile).collect();
    let bytes = model_file::write(&compiled, &tables);
    // Loads the written file exactly as the tagger will read it.
    let model = ModelFile::from_bytes(&bytes).context("the written model does not load")?;
    std::fs::write(out, &bytes).with_context(|| format!("failed to write {}", out.display()))?;
    let rows: usize = compiled.iter().map(|c| c.rows.len()).sum();
    println!(
        "wrote {} ({} bytes, {} passes, {rows} weight rows): epochs {} and {}, {:.0}s",
        out.display(),
        bytes.len(),
        stages.len(),
        args.epochs,
        args.epochs2,
        started.elapsed().as_secs_f64()
    );
    if let Some(dev_path) = &args.dev {
        let view = model.view();
        let mut scorer = Scorer::default();
        for d in doc_data(&conll::read_docs(dev_path)?, &res).iter_mut() {
            let tags = decode_doc(view.stages(), &mut d.infos, &d.sents, Gate::SHIPPED);
            scorer.add(&d.gold_spans, &spans_of(&tags, &d.sents, Some(&d.infos)));
        }
        let (p, r, f) = scorer.overall.prf();
        println!("dev (chose nothing) F1 {f:.4} P {p:.4} R {r:.4} on gold tokens");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iob_becomes_bilou() {
        let t: Vec<String> = ["I-PER", "I-PER", "O", "I-LOC", "B-LOC"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(bilou(&t), vec![1, 3, 0, 12, 12]);
    }

    #[test]
    fn lower_copies_take_the_share_asked_for() {
        let n = 4000;
        assert!((0..n).all(|i| lower_copy(i, 1.0)));
        assert!(!(0..n).any(|i| lower_copy(i, 0.0)));
        let half = (0..n).filter(|&i| lower_copy(i, 0.5)).count();
        assert!((1800..2200).contains(&half), "{half}");
        // A larger share keeps every document a smaller one picked.
        assert!((0..n).all(|i| !lower_copy(i, 0.25) || lower_copy(i, 0.5)));
    }

    #[test]
    fn gazetteer_dropout_clears_only_gazetteer_templates() {
        let (tables, bad) = ResourceTables::parse("G\t1\tRussia\nG\t8\tBoris\n");
        assert_eq!(bad, 0);
        let docs = conll::parse_docs(
            "-DOCSTART- -X- O O\n\nBoris NNP I-NP I-PER\nvisited VBD I-VP O\nRussia NNP I-NP I-LOC\n\n",
        );
        let data = doc_data(&docs, &tables.view());
        let refs: Vec<&DocData> = data.iter().collect();
        let kept = prepare(&refs, 18, 0.0);
        let dropped = prepare(&refs, 18, 1.0);
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].gold, dropped[0].gold);
        // Templates 30..=33 read the gazetteer codes (token, with shape, neighbours).
        for (k, (a, b)) in kept[0].feats.iter().zip(&dropped[0].feats).enumerate() {
            let tmpl = k % N_FEATURES;
            if !(30..=33).contains(&tmpl) {
                assert_eq!(a, b, "template {tmpl} changed");
            }
        }
        assert_ne!(
            kept[0].feats, dropped[0].feats,
            "the gazetteer matched nothing"
        );
        // Without the flag the choice is never made: the default model is unchanged.
        assert_eq!(prepare(&refs, 18, 0.0)[0].feats, kept[0].feats);
    }

    #[test]
    fn shipped_resources_parse() {
        let text = gunzip_text(SHIPPED_RESOURCES).unwrap();
        let (_, bad) = ResourceTables::parse(&text);
        assert_eq!(bad, 0);
    }

    #[test]
    fn shipped_resources_carry_no_build_time_or_file_name() {
        // `scripts/build_resources.py` writes a gzip header without either, so that a rebuild
        // from the same inputs is the same bytes (`cmp`), not only the same text.
        let head = &SHIPPED_RESOURCES[..10];
        assert_eq!(&head[..3], &[0x1f, 0x8b, 8], "gzip, deflate");
        assert_eq!(head[3], 0, "no FNAME or other optional header field");
        assert_eq!(&head[4..8], &[0; 4], "modification time 0");
    }
}
