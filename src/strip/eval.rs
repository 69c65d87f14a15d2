//! Owns `dropline eval strip`: scores stripping against gold bodies.
//!
//! Pages are processed once, in sorted id order, by one fresh [`Stripper`] without a state dir, the
//! way a daemon would meet them; the source key of each page is its `manifest.tsv` domain.

use super::metric::{score, shingle_match, Match};
use super::{StripConfig, Stripped, Stripper};
use crate::model::{Format, RawDoc};
use anyhow::{bail, Context};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{Read, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Which pages the evaluation reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Input {
    /// `text/<id>.txt`: each page's visible text.
    Text,
    /// `html/<id>.html[.gz]`: the page markup.
    Html,
}

/// What the evaluation runs on each page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// The strip stage as configured.
    Strip,
    /// The HTML extractor alone, without the plain-text post-pass.
    ExtractOnly,
    /// No removal at all (`strip.enabled=false`).
    KeepAll,
}

/// Arguments of `dropline eval strip`.
#[derive(Debug, clap::Args)]
pub struct EvalStripArgs {
    /// Folder with `html/` or `text/` pages and `gold/` bodies.
    pub gold_dir: PathBuf,
    /// Input path; default: `html` when GOLD_DIR has `html/`, else `text`.
    #[arg(long, value_enum)]
    pub input: Option<Input>,
    #[arg(long, value_enum, default_value = "strip")]
    pub mode: Mode,
    /// Overrides `html_fallback_ratio` (0 turns the fallback off).
    #[arg(long)]
    pub fallback_ratio: Option<f32>,
    /// Writes each prediction to DIR/<id>.txt (for `score_strip.py`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Writes per-document precision and recall as TSV.
    #[arg(long)]
    pub per_doc: Option<PathBuf>,
    /// Overrides of the decoding bars (for tuning on a dev set).
    #[arg(long)]
    pub body_bar: Option<f32>,
    #[arg(long)]
    pub keep_inside: Option<f32>,
    #[arg(long)]
    pub keep_outside: Option<f32>,
    #[arg(long)]
    pub smoothing: Option<f32>,
    /// Runs the line classifier on the extractor's output with this keep bar.
    #[arg(long)]
    pub html_keep: Option<f32>,
    /// The HTML path's extractor (default: the configured default, `readability`).
    #[arg(long, value_enum)]
    pub html_extractor: Option<super::HtmlExtractor>,
    /// Turns the structured-source cascade on or off (`true`/`false`).
    #[arg(long)]
    pub html_structured: Option<bool>,
    /// Overrides `structured_agree`.
    #[arg(long)]
    pub structured_agree: Option<f32>,
    /// Overrides `structured_min_share`.
    #[arg(long)]
    pub structured_min_share: Option<f32>,
    /// Turns the per-source recurring-line memory off.
    #[arg(long)]
    pub no_memory: bool,
    /// Scores another extractor's output on the same pages: a folder of `<id>.txt`, or JSON
    /// Lines with `text` and either `id` or `source.path` (whose file stem is the page id).
    #[arg(long)]
    pub compare: Option<PathBuf>,
    /// How many pages with the largest loss to print.
    #[arg(long, default_value_t = 10)]
    pub worst: usize,
    /// Scores blocks with this model file (as `dropline train strip --out` writes it) instead
    /// of the shipped one, e.g. one fitted without the pages scored, for cross-validation.
    #[arg(long)]
    pub block_model: Option<PathBuf>,
    /// Analysis of the block pruner ([`super::prune`]): writes per-document TSVs of a grid of
    /// pruning rules applied to the output, and every output line with its block's score, to DIR.
    #[arg(long)]
    pub prune_grid: Option<PathBuf>,
    /// Overrides the tail trim's container share ([`super::tail::TAIL_SHARE`]; 0 turns it off).
    #[arg(long)]
    pub tail_share: Option<f32>,
}

/// Runs the evaluation and prints F1, P, R and docs/s.
pub fn run(args: &EvalStripArgs) -> anyhow::Result<()> {
    let dir = &args.gold_dir;
    let input = match args.input {
        Some(i) => i,
        None if dir.join("html").is_dir() => Input::Html,
        None if dir.join("text").is_dir() => Input::Text,
        None => bail!("{} has neither html/ nor text/", dir.display()),
    };
    let mut config = StripConfig {
        enabled: args.mode != Mode::KeepAll,
        ..StripConfig::default()
    };
    if let Some(v) = args.fallback_ratio {
        config.html_fallback_ratio = v;
    }
    if let Some(v) = args.body_bar {
        config.body_bar = v;
    }
    if let Some(v) = args.keep_inside {
        config.keep_inside = v;
    }
    if let Some(v) = args.keep_outside {
        config.keep_outside = v;
    }
    if let Some(v) = args.smoothing {
        config.smoothing = v;
    }
    if let Some(v) = args.html_keep {
        config.html_classify = true;
        config.html_keep = v;
    }
    config.source_memory = !args.no_memory;
    if let Some(v) = args.html_structured {
        config.html_structured = v;
    }
    if let Some(v) = args.structured_agree {
        config.structured_agree = v;
    }
    if let Some(v) = args.structured_min_share {
        config.structured_min_share = v;
    }
    if let Some(e) = args.html_extractor {
        config.html_extractor = e;
    }
    let mut stripper = Stripper::new(&config, None)?;
    let block_model = match &args.block_model {
        Some(path) => super::block_model::BlockModel::parse(
            &std::fs::read_to_string(path)
                .with_context(|| format!("failed to read {}", path.display()))?,
        )?,
        None => super::block_model::BlockModel::shipped()?,
    };
    stripper.set_block_model(block_model.clone());
    if let Some(v) = args.tail_share {
        stripper.set_tail_share(v);
    }
    let stripper = stripper;
    let mut grid = args
        .prune_grid
        .as_ref()
        .map(|_| super::prune_grid::Grid::new());
    let domains = read_manifest(&dir.join("manifest.tsv"))?;
    let gold_dir = dir.join("gold");
    let ids = gold_ids(&gold_dir)?;
    if let Some(out) = &args.out {
        std::fs::create_dir_all(out)
            .with_context(|| format!("failed to create {}", out.display()))?;
    }

    let mut matches = Vec::with_capacity(ids.len());
    let mut golds = Vec::with_capacity(ids.len());
    let mut busy = Duration::ZERO;
    // Thread CPU time as well: on a shared machine wall time also counts other processes' turns.
    let mut cpu = Duration::ZERO;
    let mut bytes = 0usize;
    for id in &ids {
        let (format, body) = read_page(dir, input, id)?;
        bytes += body.len();
        let doc = RawDoc {
            id: id.clone(),
            format,
            body,
            source_key: domains.get(id).cloned().unwrap_or_default(),
        };
        let t = Instant::now();
        let c = crate::driver::sched::thread_cpu();
        let out: Stripped = match (args.mode, format) {
            (Mode::ExtractOnly, Format::Html) => stripper.extract_only(&doc.body),
            _ => stripper.strip(&doc),
        };
        busy += t.elapsed();
        cpu += crate::driver::sched::thread_cpu().saturating_sub(c);
        let gold = std::fs::read_to_string(gold_dir.join(format!("{id}.txt")))
            .with_context(|| format!("failed to read gold for {id}"))?;
        if let Some(g) = &mut grid {
            g.add(id, &doc.body, &out.text, &gold, &block_model);
        }
        matches.push(shingle_match(&gold, &out.text));
        golds.push(gold);
        if let Some(dir) = &args.out {
            std::fs::write(dir.join(format!("{id}.txt")), &out.text)?;
        }
    }
    if let Some(path) = &args.per_doc {
        write_per_doc(path, &ids, &matches)?;
    }
    if let (Some(g), Some(dir)) = (&grid, &args.prune_grid) {
        g.write(dir, &ids, write_per_doc)?;
    }
    let s = score(&matches);
    let secs = busy.as_secs_f64().max(1e-9);
    // Written at the end in one go: a closed pipe (`| head`) then ends the command with an
    // error, not a panic.
    let mut report = String::new();
    let _ = writeln!(
        report,
        "F1 {:.4} P {:.4} R {:.4} n {} docs/s {:.1} MB/s {:.2} docs/cpu-s {:.1} input {:?} mode {:?}",
        s.f1,
        s.precision,
        s.recall,
        ids.len(),
        ids.len() as f64 / secs,
        bytes as f64 / secs / 1e6,
        ids.len() as f64 / cpu.as_secs_f64().max(1e-9),
        input,
        args.mode
    );
    print_worst(&mut report, "dropline", &ids, &matches, args.worst);
    if let Some(path) = &args.compare {
        let theirs = read_compare(path)?;
        let mut missing = 0;
        let other: Vec<Match> = ids
            .iter()
            .zip(&golds)
            .map(|(id, gold)| {
                let text = theirs.get(id).map(String::as_str).unwrap_or_else(|| {
                    missing += 1;
                    ""
                });
                shingle_match(gold, text)
            })
            .collect();
        let o = score(&other);
        let _ = writeln!(
            report,
            "compare F1 {:.4} P {:.4} R {:.4} n {} missing {} file {}",
            o.f1,
            o.precision,
            o.recall,
            ids.len(),
            missing,
            path.display()
        );
        print_worst(&mut report, "compare", &ids, &other, args.worst);
    }
    std::io::stdout()
        .write_all(report.as_bytes())
        .context("writing the report")
}

/// Writes the pages that lose the most F1, with their precision and recall.
fn print_worst(report: &mut String, label: &str, ids: &[String], matches: &[Match], n: usize) {
    let mut rows: Vec<(f64, &str, f64, f64)> = ids
        .iter()
        .zip(matches)
        .map(|(id, m)| {
            let p = if m.tp + m.fp > 0.0 {
                m.tp / (m.tp + m.fp)
            } else {
                0.0
            };
            let r = if m.tp + m.fn_ > 0.0 {
                m.tp / (m.tp + m.fn_)
            } else {
                1.0
            };
            let f = if p + r > 0.0 {
                2.0 * p * r / (p + r)
            } else {
                0.0
            };
            (1.0 - f, id.as_str(), p, r)
        })
        .collect();
    rows.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(b.1)));
    for (loss, id, p, r) in rows.into_iter().take(n) {
        let _ = writeln!(
            report,
            "{label} worst {id} loss {loss:.3} P {p:.3} R {r:.3}"
        );
    }
}

/// Reads another extractor's output keyed by page id.
fn read_compare(path: &Path) -> anyhow::Result<HashMap<String, String>> {
    let mut out = HashMap::new();
    if path.is_dir() {
        for e in
            std::fs::read_dir(path).with_context(|| format!("failed to list {}", path.display()))?
        {
            let p = e?.path();
            if let Some(id) = p
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".txt"))
            {
                out.insert(id.to_string(), std::fs::read_to_string(&p)?);
            }
        }
        return Ok(out);
    }
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("failed to read {}", path.display()))?;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line)
            .with_context(|| format!("bad JSON line in {}", path.display()))?;
        let id = v["id"].as_str().map(str::to_string).or_else(|| {
            v["source"]["path"].as_str().and_then(|p| {
                let name = Path::new(p).file_name()?.to_str()?;
                Some(name.split('.').next()?.to_string())
            })
        });
        if let Some(id) = id {
            out.insert(id, v["text"].as_str().unwrap_or_default().to_string());
        }
    }
    Ok(out)
}

pub(crate) fn gold_ids(gold_dir: &Path) -> anyhow::Result<Vec<String>> {
    let mut ids: Vec<String> = std::fs::read_dir(gold_dir)
        .with_context(|| format!("failed to list {}", gold_dir.display()))?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_suffix(".txt"))
                .map(str::to_string)
        })
        .collect();
    ids.sort();
    if ids.is_empty() {
        bail!("no gold/<id>.txt files in {}", gold_dir.display());
    }
    Ok(ids)
}

/// Reads `manifest.tsv` (id, url, domain, ...) into id -> domain; a missing manifest gives no keys.
pub(crate) fn read_manifest(path: &Path) -> anyhow::Result<HashMap<String, String>> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(HashMap::new());
    };
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split('\t').collect();
    let (Some(id_col), Some(dom_col)) = (
        header.iter().position(|h| *h == "id"),
        header.iter().position(|h| *h == "domain"),
    ) else {
        return Ok(HashMap::new());
    };
    Ok(lines
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            Some((f.get(id_col)?.to_string(), f.get(dom_col)?.to_string()))
        })
        .collect())
}

pub(crate) fn read_page(dir: &Path, input: Input, id: &str) -> anyhow::Result<(Format, String)> {
    match input {
        Input::Text => {
            let p = dir.join("text").join(format!("{id}.txt"));
            let bytes =
                std::fs::read(&p).with_context(|| format!("failed to read {}", p.display()))?;
            Ok((Format::Text, crate::decode::decode(&bytes, false).text))
        }
        Input::Html => {
            let gz = dir.join("html").join(format!("{id}.html.gz"));
            let bytes = if gz.exists() {
                let mut out = Vec::new();
                flate2::read::GzDecoder::new(std::fs::File::open(&gz)?)
                    .read_to_end(&mut out)
                    .with_context(|| format!("failed to gunzip {}", gz.display()))?;
                out
            } else {
                let p = dir.join("html").join(format!("{id}.html"));
                std::fs::read(&p).with_context(|| format!("failed to read {}", p.display()))?
            };
            // Read like the daemon does: charset sniffing, NUL and line-end normalization.
            Ok((Format::Html, crate::decode::decode(&bytes, true).text))
        }
    }
}

pub(crate) fn write_per_doc(path: &Path, ids: &[String], matches: &[Match]) -> anyhow::Result<()> {
    let mut s = String::from("id\tprecision\trecall\ttp\tfp\tfn\n");
    for (id, m) in ids.iter().zip(matches) {
        let p = if m.tp + m.fp > 0.0 {
            m.tp / (m.tp + m.fp)
        } else {
            f64::NAN
        };
        let r = if m.tp + m.fn_ > 0.0 {
            m.tp / (m.tp + m.fn_)
        } else {
            f64::NAN
        };
        s.push_str(&format!(
            "{id}\t{p:.4}\t{r:.4}\t{:.4}\t{:.4}\t{:.4}\n",
            m.tp, m.fp, m.fn_
        ));
    }
    std::fs::write(path, s).with_context(|| format!("failed to write {}", path.display()))
}
