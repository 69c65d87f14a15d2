//! Owns `dropline eval entities`: conlleval-style scores on a CoNLL file.
//!
//! Each document is rebuilt as `conll_to_docs.py` writes it (tokens joined by spaces, one
//! sentence a line), tagged by the stage exactly as the pipeline tags text, and the entities'
//! code-point spans are mapped back onto the CoNLL tokens the way `score_ner.py` maps them.

use super::conll::{self, Scorer, Span};
use super::perceptron::TYPES;
use super::train::gold_spans;
use super::{EntitiesConfig, EntityTagger};
use anyhow::Context;
use std::collections::HashSet;
use std::fmt::Write as _;
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

/// Arguments of `dropline eval entities`.
#[derive(Debug, clap::Args)]
pub struct EvalEntitiesArgs {
    /// A CoNLL-2003 file (`word POS chunk NER`).
    #[arg(long, required_unless_present = "text")]
    pub conll: Option<PathBuf>,
    /// Instead of scoring, tags these plain-text files and prints one JSON line per file.
    #[arg(long, num_args = 1..)]
    pub text: Vec<PathBuf>,
    /// A model file; defaults to the shipped model.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Also writes JSON Lines records (`source.path`, `text`, `entities`) for `score_ner.py`.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Also scores with every gold and predicted span that is exactly this one token left out
    /// (btc-news tags a bare `@` before a user name as an entity of its own, a conversion
    /// artefact: `--leave-out-word @`).
    #[arg(long)]
    pub leave_out_word: Option<String>,
}

/// Returns a document's text as `conll_to_docs.py` writes it, and each token's code-point start.
pub fn doc_text(doc: &conll::Doc) -> (String, Vec<usize>) {
    let mut text = String::new();
    let mut starts = Vec::new();
    let mut cp = 0;
    for s in doc {
        for (i, w) in s.words.iter().enumerate() {
            if i > 0 {
                text.push(' ');
                cp += 1;
            }
            starts.push(cp);
            text.push_str(w);
            cp += w.chars().count();
        }
        text.push('\n');
        cp += 1;
    }
    (text, starts)
}

/// Tags plain-text files, printing `{"source":{"path"},"text","entities"}` lines.
fn tag_files(tagger: &EntityTagger, paths: &[PathBuf]) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let mut w = stdout.lock();
    for p in paths {
        let text = std::fs::read_to_string(p)
            .with_context(|| format!("failed to read {}", p.display()))?;
        let entities = tagger.tag(&text);
        let rec = serde_json::json!({
            "source": {"path": p.display().to_string()},
            "text": text,
            "entities": entities,
        });
        writeln!(w, "{rec}")?;
    }
    Ok(())
}

/// Runs the evaluation and prints P/R/F1 overall and per type, plus tokens/s.
pub fn run(args: &EvalEntitiesArgs) -> anyhow::Result<()> {
    let config = EntitiesConfig {
        model: args.model.clone(),
        ..EntitiesConfig::default()
    };
    let tagger = EntityTagger::load(&config)?;
    let Some(conll_path) = &args.conll else {
        return tag_files(&tagger, &args.text);
    };
    let docs = conll::read_docs(conll_path)?;
    let mut out = match &args.out {
        Some(p) => Some(std::io::BufWriter::new(
            std::fs::File::create(p)
                .with_context(|| format!("failed to create {}", p.display()))?,
        )),
        None => None,
    };
    let mut scorer = Scorer::default();
    let mut kept = Scorer::default();
    let mut left_out = (0usize, 0usize);
    let mut tokens = 0usize;
    let mut elapsed = 0f64;
    let mut cpu = 0f64;
    for (i, doc) in docs.iter().enumerate() {
        let (text, starts) = doc_text(doc);
        let lens: Vec<usize> = doc
            .iter()
            .flat_map(|s| s.words.iter().map(|w| w.chars().count()))
            .collect();
        tokens += starts.len();
        let (t0, c0) = (
            Instant::now(),
            crate::driver::sched::thread_cpu().as_secs_f64(),
        );
        let entities = tagger.tag(&text);
        elapsed += t0.elapsed().as_secs_f64();
        cpu += crate::driver::sched::thread_cpu().as_secs_f64() - c0;
        let mut pred: HashSet<Span> = HashSet::new();
        for e in &entities {
            if !TYPES.contains(&e.label.as_str()) {
                continue;
            }
            let covered: Vec<usize> = (0..starts.len())
                .filter(|&j| starts[j] >= e.start && starts[j] + lens[j] <= e.end)
                .collect();
            if let (Some(a), Some(b)) = (covered.first(), covered.last()) {
                pred.insert((*a, b + 1, e.label.clone()));
            }
        }
        let gold = gold_spans(doc);
        scorer.add(&gold, &pred);
        if let Some(word) = &args.leave_out_word {
            let words: Vec<&str> = doc
                .iter()
                .flat_map(|s| s.words.iter())
                .map(String::as_str)
                .collect();
            let keep = |s: &Span| !(s.1 == s.0 + 1 && words[s.0] == word.as_str());
            let g: HashSet<Span> = gold.iter().filter(|s| keep(s)).cloned().collect();
            let p: HashSet<Span> = pred.iter().filter(|s| keep(s)).cloned().collect();
            left_out.0 += gold.len() - g.len();
            left_out.1 += pred.len() - p.len();
            kept.add(&g, &p);
        }
        if let Some(w) = out.as_mut() {
            let rec = serde_json::json!({
                "source": {"path": format!("doc{i:04}.txt")},
                "text": text,
                "entities": entities,
            });
            writeln!(w, "{rec}")?;
        }
    }
    if let Some(mut w) = out {
        w.flush()?;
    }
    // Written at the end in one go: a closed pipe (`| head`) then ends the command with an
    // error, not a panic.
    let mut report = String::new();
    let _ = writeln!(report, "documents {} tokens {tokens}", docs.len());
    for (ty, c) in &scorer.per_type {
        let (p, r, f) = c.prf();
        let _ = writeln!(report, "  {ty}: P {p:.3} R {r:.3} F1 {f:.3}");
    }
    let (p, r, f) = scorer.overall.prf();
    let _ = writeln!(report, "F1 {f:.4} P {p:.4} R {r:.4}");
    if let Some(word) = &args.leave_out_word {
        for (ty, c) in &kept.per_type {
            let (p, r, f) = c.prf();
            let _ = writeln!(
                report,
                "  {ty}: P {p:.3} R {r:.3} F1 {f:.3} (without {word:?})"
            );
        }
        let (p, r, f) = kept.overall.prf();
        let _ = writeln!(
        report,
            "F1 {f:.4} P {p:.4} R {r:.4} without spans of the bare word {word:?} ({} gold and {} predicted left out)",
            left_out.0, left_out.1
        );
    }
    let _ = writeln!(
        report,
        "tagging {:.0} tokens/s (one thread, tokenizer, rules and linking included)",
        tokens as f64 / elapsed.max(1e-9)
    );
    // On a shared machine the thread's CPU time is the steadier measure.
    let _ = writeln!(
        report,
        "tagging {:.0} tokens per CPU second of the tagging thread",
        tokens as f64 / cpu.max(1e-9)
    );
    std::io::stdout()
        .write_all(report.as_bytes())
        .context("writing the report")
}
