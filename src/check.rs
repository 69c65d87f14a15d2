//! Owns what `dropline check` verifies beyond parsing (the same things `run` needs before it
//! starts: folders, port, log level) and the one table of config key docs behind
//! `check --explain KEY`.

use crate::config::{Config, OutputKind};
use anyhow::{bail, Result};
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};

/// Every config key with its meaning; `check --explain` prints these with the default and
/// current value. A unit test keeps it complete.
pub const KEYS: &[(&str, &str)] = &[
    ("source.dir", "the drop folder, watched for new files"),
    ("source.done", "what happens to a file after its line is committed: leave | move | delete"),
    ("source.done_dir", "where done = \"move\" puts committed files; relative paths are inside source.dir"),
    ("source.failed_dir", "where files that yielded an error record go with done = \"move\" or \"delete\"; relative to source.dir"),
    ("source.recursive", "descend into subfolders (the done and failed folders are always skipped)"),
    ("source.poll_only", "ignore filesystem events and find files by rescans alone (network filesystems)"),
    ("source.settle", "a file whose size and mtime stay unchanged this long is ready (renames and close-after-write are ready at once); reloadable with SIGHUP"),
    ("source.rescan_interval", "period of the full scan of the drop folder; events are only hints; at least 100ms; reloadable with SIGHUP"),
    ("source.max_file_bytes", "files larger than this on disk become error records"),
    ("source.max_inflated_bytes", "cap on the inflated size of a gzipped file"),
    ("source.max_pending", "paths awaiting their readiness check; past it the watcher scans again later"),
    ("source.read_attempts", "tries for a file whose read fails transiently (descriptors exhausted, permission, I/O, no space), with backoff 2 s, 4 s, 8 s...; 1 = no retry"),
    ("source.include", "globs of files to read; a glob without `/` matches the file name at any depth, one with `/` the path relative to source.dir; case-insensitive; reloadable with SIGHUP"),
    ("source.exclude", "globs of files and folders never touched, winning over include (partial uploads, swap files, dot files by default); dot files, *.tmp, *.part and *~ are never read whatever this says; reloadable with SIGHUP"),
    ("output.kind", "stdout (at-least-once) | file (exactly-once with state.dir)"),
    ("output.path", "the JSON Lines file, appended; required when output.kind = \"file\""),
    ("output.batch_max", "lines committed together (one fsync per batch)"),
    ("output.batch_linger", "how long the sink waits to fill a batch once it has one line"),
    ("state.dir", "ledger, dedup index and error log; without it nothing survives a restart"),
    ("pipeline.queue_capacity", "capacity of every bounded queue between stages"),
    ("pipeline.max_in_flight", "files admitted and not yet committed; bounds memory under any burst"),
    ("pipeline.max_in_flight_bytes", "memory charged to files admitted and not yet committed: decoded size x working set (8 bytes a byte, 72 with entities); a file that needs more becomes an error record"),
    ("pipeline.file_timeout", "time budget per file and stage, counting work, not time waiting for a CPU; past it the file becomes an error record and the pipeline moves on"),
    ("pipeline.read_workers", "workers of the read stage"),
    ("pipeline.strip_workers", "workers of the strip stage (output bytes do not depend on it)"),
    ("pipeline.entities_workers", "workers of the entities stage (output bytes do not depend on it)"),
    ("pipeline.summary_interval", "period of the summary log line"),
    ("strip.enabled", "run the strip stage (boilerplate removal); off: the raw text is the text"),
    ("strip.keep_removed", "put removed lines into the record's `boilerplate` field, by kind"),
    ("strip.source_memory", "learn lines that recur across a source's pages (state.dir/strip-lines.json)"),
    ("strip.body_bar", "line-model probability a line needs to start the article body"),
    ("strip.keep_inside", "line-model probability a line needs to stay once inside the body"),
    ("strip.keep_outside", "line-model probability a line needs to be kept outside the body"),
    ("strip.smoothing", "weight of the neighbouring lines' probabilities"),
    ("strip.html_classify", "also run the line model over the HTML extractor's output"),
    ("strip.html_keep", "the line-model bar with html_classify"),
    ("strip.html_fallback_ratio", "use the plain-text pass when the HTML extractor keeps less than this share of its words"),
    ("strip.html_extractor", "readability | blocks: the HTML main-content extractor (blocks = the DOM-block model fitted by `dropline train strip`)"),
    ("strip.html_structured", "readability path: the page's JSON-LD articleBody, itemprop=articleBody element or single <article> replaces the readability candidate when it agrees with it"),
    ("strip.structured_agree", "share of the structured source's words the readability candidate must hold for them to agree"),
    ("strip.structured_min_share", "smallest size of the structured source, as a share of the readability candidate's words (below: a teaser)"),
    ("dedup.enabled", "run the dedup stage (exact, near-copy, rewrite, story)"),
    ("dedup.on_duplicate", "emit | drop | drop_rewrites: drop commits and counts exact and near duplicates without writing them; drop_rewrites drops rewrites too; a reuse is never dropped"),
    ("dedup.capacity", "documents indexed (about 1.4 KB each); the oldest are evicted first"),
    ("dedup.near_threshold", "estimated word 5-gram Jaccard at or above which a document is a near-copy (a re-post)"),
    ("dedup.rewrite_threshold", "score of the rewrite model (coverage of a sentence matching and how the matched sentences differ: words swapped in place, or clauses cut or added) at or above which a document is a rewrite; above 1 turns the tier off"),
    ("dedup.rewrite_min_words", "content words an alignment must hold for a rewrite (shorter texts only get `reuse`)"),
    ("dedup.rewrite_short_words", "content words from which a shorter matching than rewrite_min_words (two matched sentences or more) is still scored, against rewrite_short_threshold"),
    ("dedup.rewrite_short_threshold", "rewrite model score a matching of that short band must reach (above 1 closes the band)"),
    ("dedup.rewrite_min_reworded", "share of a rewrite's aligned words in reworded (not verbatim) sentences"),
    ("dedup.align_overlap", "share of the larger sentence's content words two sentences must share to align"),
    ("dedup.reuse_min_share", "share of a document an earlier one must make up to be listed in `reuse`"),
    ("dedup.story_reuse_share", "join the story of the document reused most when it makes up this share"),
    ("dedup.align_window", "most recent documents whose sentence sketches are kept for rewrites and reuse"),
    ("dedup.story_threshold", "centroid cosine at or above which a document joins a story"),
    ("dedup.story_window", "documents after which a story with no new member closes"),
    ("dedup.story_name_boost", "weight of name-like tokens and years in story vectors"),
    ("dedup.story_idf_power", "exponent of the IDF factor in story vectors"),
    ("dedup.story_name_weight", "share of the name-only cosine in the story similarity"),
    (
        "dedup.story_prior",
        "background document-frequency file for the story IDF (`dropline train story-prior`)",
    ),
    ("entities.enabled", "run the entities stage"),
    ("entities.model", "a trained model file; unset uses the model compiled into the binary"),
    ("entities.numeric", "tag DATE, TIME, MONEY, PERCENT, QUANTITY, CARDINAL and ORDINAL"),
    ("entities.link", "give every mention a `canonical` form within its document"),
    ("metrics.enabled", "serve Prometheus metrics"),
    ("metrics.listen", "address of the metrics endpoint; check verifies it can be bound"),
    ("log.level", "a level (error, warn, info, debug, trace, off) or TARGET=LEVEL directives, comma-separated; RUST_LOG wins when set; reloadable with SIGHUP"),
    ("log.format", "plain | json (fatal errors too)"),
    ("cluster.url", "NATS server URLs, comma-separated; empty (the default) runs the single-node mode"),
    ("cluster.role", "intake | worker | all: watch the folder and publish, prepare files and stand for the decider, or both"),
    ("cluster.name", "prefix of the cluster's streams, buckets and subjects (default dropline)"),
    ("cluster.credentials", "a NATS credentials file (JWT and NKey seed); unset when the servers need no auth"),
    ("cluster.lost_after", "how long the decider waits before it declares a work sequence lost with its stream (deleted) and the intake publishes its file again (default 30s)"),
];

/// Log levels a `log.level` directive may name.
const LEVELS: &[&str] = &["off", "error", "warn", "info", "debug", "trace"];

/// Parses `log.level` strictly: every directive is a level or `TARGET=LEVEL`. tracing alone
/// would take `infoo` for a target name and silently log nothing.
pub fn parse_log_level(level: &str) -> Result<tracing_subscriber::EnvFilter> {
    let directives: Vec<&str> = level
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .collect();
    for d in &directives {
        let lvl = d.rsplit_once('=').map_or(*d, |(_, l)| l);
        if !LEVELS.contains(&lvl.to_ascii_lowercase().as_str()) {
            bail!(
                "log.level: `{d}` is not a level ({}) or TARGET=LEVEL",
                LEVELS.join(", ")
            );
        }
    }
    tracing_subscriber::EnvFilter::try_new(directives.join(","))
        .map_err(|e| anyhow::anyhow!("log.level: invalid filter `{level}`: {e}"))
}

/// Returns every problem `run` would hit with `config` before doing any work, each naming its
/// key: folders missing, unreadable or not writable, the metrics port taken.
pub fn environment(config: &Config) -> Vec<String> {
    let mut problems = Vec::new();
    let dir = &config.source.dir;
    match std::fs::read_dir(dir) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            problems.push(format!("source.dir: {} does not exist", dir.display()))
        }
        Err(e) => problems.push(format!("source.dir: cannot read {}: {e}", dir.display())),
    }
    if dir.is_dir() && config.source.done != crate::config::DoneAction::Leave {
        for (key, p) in [
            ("source.done_dir", &config.source.done_dir),
            ("source.failed_dir", &config.source.failed_dir),
        ] {
            if let Err(e) = writable_or_creatable(&config.in_source(p)) {
                problems.push(format!("{key}: {e}"));
            }
        }
    }
    if let Some(state) = &config.state.dir {
        if let Err(e) = writable_or_creatable(state) {
            problems.push(format!("state.dir: {e}"));
        }
    }
    if let (OutputKind::File, Some(out)) = (config.output.kind, &config.output.path) {
        let parent = out
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if let Err(e) = writable_or_creatable(parent) {
            problems.push(format!("output.path: {e}"));
        } else if out.exists() {
            if let Err(e) = OpenOptions::new().append(true).open(out) {
                problems.push(format!(
                    "output.path: cannot append to {}: {e}",
                    out.display()
                ));
            }
        }
    }
    if let (true, Some(model)) = (config.entities.enabled, &config.entities.model) {
        if let Err(e) = std::fs::File::open(model) {
            problems.push(format!(
                "entities.model: cannot read {}: {e}",
                model.display()
            ));
        }
    }
    if config.metrics.enabled {
        if let Err(e) = std::net::TcpListener::bind(config.metrics.listen) {
            problems.push(format!(
                "metrics.listen: cannot bind {}: {e} (is another dropline running?)",
                config.metrics.listen
            ));
        }
    }
    problems
}

/// Checks that `dir` can be written (a probe file is created and removed), or, when it does
/// not exist, that its nearest existing ancestor can (so `run` can create it).
fn writable_or_creatable(dir: &Path) -> Result<(), String> {
    let mut probe_dir: PathBuf = dir.to_path_buf();
    while !probe_dir.exists() {
        match probe_dir.parent() {
            Some(p) if !p.as_os_str().is_empty() => probe_dir = p.to_path_buf(),
            _ => probe_dir = PathBuf::from("."),
        }
    }
    if !probe_dir.is_dir() {
        return Err(format!("{} is not a folder", probe_dir.display()));
    }
    // A dot name: a watcher that sees it (state inside the drop folder) ignores it.
    let probe = probe_dir.join(format!(".dropline-check-{}", std::process::id()));
    match OpenOptions::new().write(true).create_new(true).open(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(e) if probe_dir == dir => Err(format!("cannot write in {}: {e}", dir.display())),
        Err(e) => Err(format!(
            "cannot create {}: {} is not writable: {e}",
            dir.display(),
            probe_dir.display()
        )),
    }
}

/// Renders what `check --explain KEY` prints: each key under `key` (a key or a section) with
/// its meaning, default and current value.
pub fn explain(key: &str, current: &Config) -> Result<String> {
    let matching: Vec<&(&str, &str)> = KEYS
        .iter()
        .filter(|(k, _)| *k == key || k.strip_prefix(key).is_some_and(|r| r.starts_with('.')))
        .collect();
    if matching.is_empty() {
        bail!(
            "unknown config key `{key}` (dropline check --explain SECTION lists a section's keys)"
        );
    }
    let defaults = toml::Value::try_from(Config::default())?;
    let now = toml::Value::try_from(current)?;
    let mut out = String::new();
    for (k, doc) in matching {
        out.push_str(&format!(
            "{k}\n  {doc}\n  default: {}\n  current: {}\n",
            render(lookup(&defaults, k)),
            render(lookup(&now, k)),
        ));
    }
    Ok(out)
}

fn lookup<'a>(v: &'a toml::Value, key: &str) -> Option<&'a toml::Value> {
    key.split('.').try_fold(v, |v, part| v.get(part))
}

fn render(v: Option<&toml::Value>) -> String {
    match v {
        None => "(unset)".into(),
        // Thresholds are f32: print them as written, not as their f64 widening.
        Some(toml::Value::Float(f)) => format!("{}", *f as f32),
        Some(v) => v.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keys that are absent from the defaults because they are unset options.
    const OPTIONAL: &[&str] = &[
        "output.path",
        "state.dir",
        "entities.model",
        "dedup.story_prior",
        "cluster.credentials",
    ];

    fn leaves(prefix: &str, v: &toml::Value, out: &mut Vec<String>) {
        match v {
            toml::Value::Table(t) => {
                for (k, v) in t {
                    let key = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    leaves(&key, v, out);
                }
            }
            _ => out.push(prefix.to_string()),
        }
    }

    #[test]
    fn every_config_key_is_documented_once() {
        let mut keys = Vec::new();
        leaves(
            "",
            &toml::Value::try_from(Config::default()).unwrap(),
            &mut keys,
        );
        let documented: Vec<&str> = KEYS.iter().map(|(k, _)| *k).collect();
        let missing: Vec<&String> = keys
            .iter()
            .filter(|k| !documented.contains(&k.as_str()))
            .collect();
        assert!(
            missing.is_empty(),
            "add these keys to check::KEYS: {missing:?}"
        );
        for k in &documented {
            assert!(
                keys.iter().any(|x| x == k) || OPTIONAL.contains(k),
                "check::KEYS documents `{k}`, which is no config key"
            );
            assert_eq!(documented.iter().filter(|d| *d == k).count(), 1, "{k}");
        }
    }

    #[test]
    fn the_shipped_pipeline_toml_lists_every_key() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("pipeline.toml");
        let text = std::fs::read_to_string(path).unwrap();
        let mut section = "";
        let mut listed = Vec::new();
        for line in text.lines().map(str::trim) {
            if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                section = s;
            } else if let Some((k, _)) = line.trim_start_matches("# ").split_once(" = ") {
                listed.push(format!("{section}.{}", k.trim()));
            }
        }
        let missing: Vec<&str> = KEYS
            .iter()
            .map(|(k, _)| *k)
            .filter(|k| !listed.iter().any(|l| l == k))
            .collect();
        assert!(missing.is_empty(), "pipeline.toml lacks {missing:?}");
    }

    #[test]
    fn log_level_typos_are_errors_and_directives_pass() {
        for ok in [
            "info",
            "WARN",
            "dropline=debug,warn",
            "off",
            "info, dropline::sink=trace",
        ] {
            assert!(parse_log_level(ok).is_ok(), "{ok}");
        }
        for bad in ["infoo", "dropline=verbose", "dropline"] {
            let err = parse_log_level(bad).unwrap_err().to_string();
            assert!(err.starts_with("log.level:"), "{err}");
        }
    }

    #[test]
    fn explain_shows_default_and_current() {
        let cfg = Config::load(None, &["dedup.near_threshold=0.8".into()]).unwrap();
        let text = explain("dedup.near_threshold", &cfg).unwrap();
        assert!(text.contains("default: 0.7\n"), "{text}");
        assert!(text.contains("current: 0.8\n"), "{text}");
        let section = explain("log", &cfg).unwrap();
        assert!(section.contains("log.level") && section.contains("log.format"));
        assert!(explain("log.levle", &cfg).is_err());
    }

    #[test]
    fn environment_names_the_keys_of_missing_folders() {
        let tmp = tempfile::tempdir().unwrap();
        let cfg = Config::load(
            None,
            &[
                format!("source.dir={}", tmp.path().join("nope").display()),
                format!("state.dir={}", tmp.path().join("state/deep").display()),
                format!("entities.model={}", tmp.path().join("model.bin").display()),
                "metrics.enabled=false".into(),
            ],
        )
        .unwrap();
        let problems = environment(&cfg);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].starts_with("source.dir:"), "{problems:?}");
        assert!(problems[1].starts_with("entities.model:"), "{problems:?}");
        assert!(!tmp.path().join("state").exists(), "check creates nothing");
    }

    #[test]
    fn a_taken_port_is_a_problem() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let cfg = Config::load(
            None,
            &[
                "source.dir=.".into(),
                format!("metrics.listen=\"{}\"", taken.local_addr().unwrap()),
            ],
        )
        .unwrap();
        let problems = environment(&cfg);
        assert!(
            problems.len() == 1 && problems[0].starts_with("metrics.listen:"),
            "{problems:?}"
        );
    }
}
