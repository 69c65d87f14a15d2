//! Owns `dropline train entities`: fits the entity model on CoNLL data.
//!
//! Pass 1 is a bagged averaged perceptron over local features, its epoch chosen on `--dev`.
//! Pass 2 adds document-level evidence from pass 1 (how the same word and word pair were tagged
//! elsewhere in the document); on the training data that evidence comes from pass-1 models
//! trained without the document's fold, so it is as noisy as on new text. `--dev` only picks
//! epochs and is reported; nothing is fitted on it. With the defaults the run is deterministic:
//!
//! ```text
//! dropline train entities --train ../shared/data/ner/conll2003/eng.train \
//!     --dev ../shared/data/ner/conll2003/eng.testa --out models/entities.bin
//! ```
//!
//! rebuilds the shipped `models/entities.bin` byte for byte (about 190 s on the shared 2-core
//! machine) from the embedded `resources/entities.res.gz`. The file is the read-in-place format
//! of [`super::model_file`]: i8 weight rows with per-row scales, resources as flat tables.

use super::conll::{self, Doc, Scorer, Span};
use super::features::TokInfo;
use super::features::{self, N_FEATURES};
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
    /// Development data, used only to pick the epoch.
    #[arg(long)]
    pub dev: PathBuf,
    /// Where the model file is written.
    #[arg(long)]
    pub out: PathBuf,
    /// Resource file (clusters and gazetteer) built by `scripts/build_resources.py`; embedded
    /// into the model. Defaults to the shipped one.
    #[arg(long)]
    pub resources: Option<PathBuf>,
    /// Maximum number of passes over the training data.
    #[arg(long, default_value_t = 25)]
    pub epochs: usize,
    /// log2 of the number of weight-table rows.
    #[arg(long, default_value_t = 19)]
    pub bits: u32,
    /// Stop after this many epochs without a better dev F1.
    #[arg(long, default_value_t = 4)]
    pub patience: usize,
    /// Folds for the first pass's cross-validated predictions on the training data (the second
    /// pass learns from them); 0 trains a single-pass model.
    #[arg(long, default_value_t = 4)]
    pub folds: usize,
    /// Perceptrons trained on different shuffles and averaged into each pass.
    #[arg(long, default_value_t = 5)]
    pub bags: usize,
    /// Zeroes weights below this fraction of the largest weight before writing.
    #[arg(long, default_value_t = 0.002)]
    pub prune: f32,
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
struct Prepared {
    feats: Vec<u32>,
    gold: Vec<u8>,
}

/// A document's words turned into token information, with its sentences and gold tags.
struct DocData {
    infos: Vec<TokInfo>,
    sents: Vec<std::ops::Range<usize>>,
    gold: Vec<u8>,
    gold_spans: HashSet<Span>,
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

fn doc_data(docs: &[Doc], res: &ResourcesView<'_>) -> Vec<DocData> {
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

fn prepare(docs: &[&DocData], bits: u32) -> Vec<Prepared> {
    let mut out = Vec::new();
    for d in docs {
        for r in &d.sents {
            let mut feats = Vec::with_capacity(r.len() * N_FEATURES);
            features::sentence_features(&d.infos[r.clone()], bits, &mut feats);
            out.push(Prepared {
                feats,
                gold: d.gold[r.clone()].to_vec(),
            });
        }
    }
    out
}

fn spans_of(tags: &[u8], sents: &[std::ops::Range<usize>]) -> HashSet<Span> {
    let mut spans: Vec<NameSpan> = Vec::new();
    for s in sents {
        spans_from_tags(&tags[s.clone()], s.start, &mut spans);
    }
    spans
        .into_iter()
        .map(|n| (n.start, n.end, TYPES[n.ty].to_string()))
        .collect()
}

/// Scores one pass on documents whose second-pass fields are already set.
fn dev_score(stage: &Stage, docs: &mut [DocData]) -> Scorer {
    let compiled = stage.compile();
    let mut scorer = Scorer::default();
    for d in docs.iter_mut() {
        let tags = decode_doc([compiled.view()], &mut d.infos, &d.sents);
        scorer.add(&d.gold_spans, &spans_of(&tags, &d.sents));
    }
    scorer
}

/// Runs perceptron epochs; with `dev`, keeps the best epoch by dev F1 (stopping after
/// `patience` epochs without gain), else runs exactly `epochs`. Returns the stage, its epoch
/// and dev F1.
fn fit(
    data: &[Prepared],
    args: &TrainEntitiesArgs,
    epochs: usize,
    mut dev: Option<&mut [DocData]>,
    label: &str,
    started: Instant,
) -> (Stage, usize, f64) {
    let bags = args.bags.max(1);
    let mut trainers: Vec<Trainer> = (0..bags).map(|_| Trainer::new(args.bits)).collect();
    let mut orders: Vec<Vec<usize>> = vec![(0..data.len()).collect(); bags];
    let mut rngs: Vec<u64> = (0..bags as u64)
        .map(|b| 0x2545_f491_4f6c_dd1d ^ b.wrapping_mul(0x9e37_79b9_7f4a_7c15))
        .collect();
    let mut best: Option<(Stage, usize, f64)> = None;
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
        let Some(dev) = dev.as_deref_mut() else {
            continue;
        };
        let stage = average_of(&trainers);
        let (p, r, f) = dev_score(&stage, dev).overall.prf();
        eprintln!(
            "{label} epoch {epoch}: train tag errors {wrong}, dev P {p:.4} R {r:.4} F1 {f:.4} ({:.0}s)",
            started.elapsed().as_secs_f64()
        );
        if best.as_ref().is_none_or(|b| f > b.2) {
            best = Some((stage, epoch, f));
        } else if best.as_ref().is_some_and(|b| epoch - b.1 >= args.patience) {
            break;
        }
    }
    best.unwrap_or_else(|| (average_of(&trainers), epochs, 0.0))
}

/// Trains and writes the model.
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
    let res = tables.view();
    let train_docs = conll::read_docs(&args.train)?;
    let mut train = doc_data(&train_docs, &res);
    let mut dev = doc_data(&conll::read_docs(&args.dev)?, &res);
    drop(res_text);
    let all: Vec<&DocData> = train.iter().collect();
    let data = prepare(&all, args.bits);
    let n_tokens: usize = data.iter().map(|p| p.gold.len()).sum();
    let (clusters, places) = res.sizes();
    eprintln!(
        "train: {} documents, {} sentences, {n_tokens} tokens; resources: {clusters} cluster words, {places} places",
        train.len(),
        data.len()
    );
    let (first, first_epoch, _) = fit(&data, args, args.epochs, Some(&mut dev), "pass 1", started);
    let mut stages = vec![first];
    let mut epoch = first_epoch;
    if args.folds >= 2 {
        // Cross-validated first-pass tags on the training data, so the second pass learns
        // from first-pass evidence as noisy as it will be on new text.
        let mut tags: Vec<Vec<u8>> = vec![Vec::new(); train.len()];
        for fold in 0..args.folds {
            let rest: Vec<&DocData> = train
                .iter()
                .enumerate()
                .filter(|(i, _)| i % args.folds != fold)
                .map(|(_, d)| d)
                .collect();
            let (stage, _, _) = fit(
                &prepare(&rest, args.bits),
                args,
                first_epoch,
                None,
                "",
                started,
            );
            let compiled = stage.compile();
            for (i, d) in train.iter_mut().enumerate() {
                if i % args.folds == fold {
                    tags[i] = decode_doc([compiled.view()], &mut d.infos, &d.sents);
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
        let first = stages[0].compile();
        for d in dev.iter_mut() {
            let t = decode_doc([first.view()], &mut d.infos, &d.sents);
            features::set_priors(&mut d.infos, &t);
        }
        let all: Vec<&DocData> = train.iter().collect();
        let data2 = prepare(&all, args.bits);
        let (second, e2, _) = fit(&data2, args, args.epochs, Some(&mut dev), "pass 2", started);
        stages.push(second);
        epoch = e2;
    }
    if args.prune > 0.0 {
        for (k, s) in stages.iter_mut().enumerate() {
            let kept = s.prune(args.prune);
            eprintln!("pass {} pruned: {kept} non-zero weights", k + 1);
        }
    }
    let compiled: Vec<_> = stages.iter().map(Stage::compile).collect();
    let bytes = model_file::write(&compiled, &tables);
    // Scores the written file exactly as the tagger will read it.
    let model = ModelFile::from_bytes(&bytes).context("the written model does not load")?;
    let view = model.view();
    let mut scorer = Scorer::default();
    for d in dev.iter_mut() {
        // Re-run from clean second-pass fields, as the tagger does.
        for t in d.infos.iter_mut() {
            (t.prior, t.prior_mask, t.first, t.pair_next, t.pair_prev) = (0, 0, 0, 0, 0);
        }
        let tags = decode_doc(view.stages(), &mut d.infos, &d.sents);
        scorer.add(&d.gold_spans, &spans_of(&tags, &d.sents));
    }
    let best_f = scorer.overall.prf().2;
    std::fs::write(&args.out, &bytes)
        .with_context(|| format!("failed to write {}", args.out.display()))?;
    let rows: usize = compiled.iter().map(|c| c.rows.len()).sum();
    println!(
        "wrote {} ({} bytes, {} passes, {rows} weight rows): last pass epoch {epoch}, dev F1 {best_f:.4} on gold tokens, {:.0}s",
        args.out.display(),
        bytes.len(),
        stages.len(),
        started.elapsed().as_secs_f64()
    );
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
    fn shipped_resources_parse() {
        let text = gunzip_text(SHIPPED_RESOURCES).unwrap();
        let (_, bad) = ResourceTables::parse(&text);
        assert_eq!(bad, 0);
    }
}
