//! Owns `dropline train entities`: fits the entity model on CoNLL data.

use super::conll::{self, Doc, Scorer, Span};
use super::features::{self, N_FEATURES};
use super::perceptron::{tag, Model, Part, Trainer, TYPES};
use super::resources::Resources;
use super::EntityTagger;
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
    #[arg(long, default_value_t = 20)]
    pub epochs: usize,
    /// log2 of the number of weight-table rows.
    #[arg(long, default_value_t = 20)]
    pub bits: u32,
    /// Stop after this many epochs without a better dev F1.
    #[arg(long, default_value_t = 4)]
    pub patience: usize,
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

fn prepare(docs: &[Doc], res: &Resources, bits: u32) -> Vec<Prepared> {
    let mut out = Vec::new();
    for doc in docs {
        let (words, sents) = doc_words(doc);
        let infos = features::doc_infos(&words, &sents, res);
        for (s, range) in doc.iter().zip(&sents) {
            let mut feats = Vec::with_capacity(range.len() * N_FEATURES);
            features::sentence_features(&infos[range.clone()], bits, &mut feats);
            out.push(Prepared {
                feats,
                gold: bilou(&s.tags),
            });
        }
    }
    out
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

/// Scores a model on gold-tokenised documents (fast; used to pick the epoch).
fn dev_score(model: &Model, docs: &[Doc]) -> Scorer {
    let tagger = EntityTagger::from_model(model.clone());
    let mut scorer = Scorer::default();
    for doc in docs {
        let (words, sents) = doc_words(doc);
        let pred: HashSet<Span> = tagger
            .name_spans(&words, &sents)
            .into_iter()
            .map(|n| (n.start, n.end, TYPES[n.ty].to_string()))
            .collect();
        scorer.add(&gold_spans(doc), &pred);
    }
    scorer
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
    let (res, bad) = Resources::parse(&res_text);
    anyhow::ensure!(bad == 0, "resource file has {bad} malformed lines");
    let train = conll::read_docs(&args.train)?;
    let dev = conll::read_docs(&args.dev)?;
    let data = prepare(&train, &res, args.bits);
    let n_tokens: usize = data.iter().map(|p| p.gold.len()).sum();
    let (clusters, places) = res.sizes();
    eprintln!(
        "train: {} documents, {} sentences, {n_tokens} tokens; resources: {clusters} cluster words, {places} places",
        train.len(),
        data.len()
    );
    let mut trainer = Trainer::new(args.bits);
    let mut order: Vec<usize> = (0..data.len()).collect();
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut best: Option<(f64, usize, Model)> = None;
    let mut pred = Vec::new();
    for epoch in 1..=args.epochs {
        // Fisher-Yates with xorshift: deterministic shuffles, so runs are reproducible.
        for i in (1..order.len()).rev() {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            order.swap(i, (rng % (i as u64 + 1)) as usize);
        }
        let mut wrong = 0;
        for &k in &order {
            wrong += trainer.learn(&data[k].feats, &data[k].gold, &mut pred);
        }
        let model = trainer.averaged(res_text.clone());
        let (p, r, f) = dev_score(&model, &dev).overall.prf();
        eprintln!(
            "epoch {epoch}: train tag errors {wrong}, dev P {p:.4} R {r:.4} F1 {f:.4} ({:.0}s)",
            started.elapsed().as_secs_f64()
        );
        if best.as_ref().is_none_or(|b| f > b.0) {
            best = Some((f, epoch, model));
        } else if best.as_ref().is_some_and(|b| epoch - b.1 >= args.patience) {
            break;
        }
    }
    let (f, epoch, model) = best.context("no epochs were run")?;
    let file = std::fs::File::create(&args.out)
        .with_context(|| format!("failed to create {}", args.out.display()))?;
    model
        .write(std::io::BufWriter::new(file))
        .with_context(|| format!("failed to write {}", args.out.display()))?;
    let size = std::fs::metadata(&args.out).map(|m| m.len()).unwrap_or(0);
    println!(
        "wrote {} ({size} bytes): epoch {epoch}, dev F1 {f:.4} on gold tokens, {:.0}s",
        args.out.display(),
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
        let (_, bad) = Resources::parse(&text);
        assert_eq!(bad, 0);
    }
}
