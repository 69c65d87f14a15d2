//! Owns the configuration: `pipeline.toml`, `--set` overrides and validation.

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A start-up refusal the user must act on (config, state dir in use, output not ours): the
/// commands exit 2 on it, like on any config error.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

/// The smallest `source.rescan_interval` the watcher supports (its poll period is clamped
/// between 100 ms and the rescan interval).
pub const MIN_RESCAN_INTERVAL: Duration = Duration::from_millis(100);

/// The whole effective configuration. Unknown keys are errors.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub source: SourceConfig,
    pub output: OutputConfig,
    pub state: StateConfig,
    pub pipeline: PipelineConfig,
    pub strip: crate::strip::StripConfig,
    pub dedup: crate::dedup::DedupConfig,
    pub entities: crate::entities::EntitiesConfig,
    pub metrics: MetricsConfig,
    pub log: LogConfig,
    pub cluster: crate::cluster::ClusterConfig,
}

/// What happens to a dropped file once its line is committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DoneAction {
    Leave,
    Move,
    Delete,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SourceConfig {
    /// The drop folder.
    pub dir: PathBuf,
    pub done: DoneAction,
    /// Where `done = "move"` puts committed files; relative paths are inside `dir`.
    pub done_dir: PathBuf,
    /// Where `done = "move"` puts files that yielded an error record; relative to `dir`.
    pub failed_dir: PathBuf,
    /// Descend into subfolders (the done and failed folders are always skipped).
    pub recursive: bool,
    /// Ignore filesystem events and rely on rescans alone (network filesystems).
    pub poll_only: bool,
    /// A file whose size and mtime stay unchanged this long is ready.
    #[serde(with = "humantime_serde")]
    pub settle: Duration,
    /// Full directory scan period; events are only hints.
    #[serde(with = "humantime_serde")]
    pub rescan_interval: Duration,
    /// Files larger than this on disk become error records.
    pub max_file_bytes: u64,
    /// Cap on the inflated size of a gzipped file.
    pub max_inflated_bytes: u64,
    /// Cap on paths waiting for their readiness check; past it the watcher falls back to a rescan.
    pub max_pending: usize,
    /// Tries to read a file that fails transiently (descriptors exhausted, permission, I/O,
    /// no space, folder recreated), with backoff 2 s, 4 s, 8 s, 16 s...; 1 = no retry.
    pub read_attempts: u32,
    /// Globs of files to read, on the name (or, with a `/`, the path relative to `dir`).
    pub include: Vec<String>,
    /// Globs of files and folders never touched; they win over `include`.
    pub exclude: Vec<String>,
}

impl Default for SourceConfig {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("drop"),
            done: DoneAction::Leave,
            done_dir: PathBuf::from("done"),
            failed_dir: PathBuf::from("failed"),
            recursive: false,
            poll_only: false,
            settle: Duration::from_secs(2),
            rescan_interval: Duration::from_secs(30),
            max_file_bytes: 16 << 20,
            max_inflated_bytes: 64 << 20,
            max_pending: 10_000,
            read_attempts: 5,
            include: own(crate::filter::DEFAULT_INCLUDE),
            exclude: own(crate::filter::DEFAULT_EXCLUDE),
        }
    }
}

fn own(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputKind {
    Stdout,
    File,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutputConfig {
    pub kind: OutputKind,
    /// JSON Lines file, appended; required when `kind = "file"`.
    pub path: Option<PathBuf>,
    /// Lines committed together (one fsync per batch).
    pub batch_max: usize,
    /// How long the sink waits to fill a batch once it has one line.
    #[serde(with = "humantime_serde")]
    pub batch_linger: Duration,
}

impl Default for OutputConfig {
    fn default() -> Self {
        Self {
            kind: OutputKind::Stdout,
            path: None,
            batch_max: 1024,
            batch_linger: Duration::from_millis(2),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct StateConfig {
    /// Ledger, dedup index and error log; without it nothing survives a restart.
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PipelineConfig {
    /// Capacity of every bounded queue between stages.
    pub queue_capacity: usize,
    /// Files admitted into the pipeline and not yet committed; bounds memory under any burst.
    pub max_in_flight: usize,
    pub read_workers: usize,
    pub strip_workers: usize,
    pub entities_workers: usize,
    /// Period of the summary log line (docs/s, MB/s, queue depths).
    #[serde(with = "humantime_serde")]
    pub summary_interval: Duration,
    /// Time budget of one file in one stage, counting work (not time waiting for a CPU);
    /// past it the file becomes an error record.
    #[serde(with = "humantime_serde")]
    pub file_timeout: Duration,
    /// Memory admitted files may take (decoded size times the enabled stages' working set); a
    /// file that needs more than all of it becomes an error record.
    pub max_in_flight_bytes: u64,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self {
            queue_capacity: 256,
            max_in_flight: 1024,
            read_workers: 2,
            strip_workers: 2,
            entities_workers: 2,
            summary_interval: Duration::from_secs(10),
            file_timeout: Duration::from_secs(10),
            max_in_flight_bytes: 256 << 20,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    pub enabled: bool,
    pub listen: SocketAddr,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], 9464)),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Plain,
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// A tracing filter such as `info` or `dropline=debug`; `RUST_LOG` wins when set.
    pub level: String,
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: "info".into(),
            format: LogFormat::Plain,
        }
    }
}

impl Config {
    /// Loads `path` (or the defaults when `None`), applies `KEY=VALUE` overrides and validates;
    /// every error names the file (or `--set`) and the key.
    pub fn load(path: Option<&Path>, overrides: &[String]) -> Result<Config> {
        let origin = path.map_or_else(|| "--set".into(), |p| p.display().to_string());
        Self::load_unnamed(path, overrides).with_context(|| origin)
    }

    fn load_unnamed(path: Option<&Path>, overrides: &[String]) -> Result<Config> {
        let text = match path {
            Some(p) => std::fs::read_to_string(p).context("cannot read the config file")?,
            None => String::new(),
        };
        let mut config = Self::parse(&text, overrides)?;
        config.dedup.load_files()?;
        Ok(config)
    }

    /// Parses config `text` (TOML), applies `KEY=VALUE` overrides and validates: [`Self::load`]
    /// without the file, for callers that hold the text (and the config fuzz target); files the
    /// settings name (`dedup.story_prior`) are not read.
    pub fn parse(text: &str, overrides: &[String]) -> Result<Config> {
        let mut table = text.parse::<toml::Table>().context("invalid TOML")?;
        for kv in overrides {
            apply_override(&mut table, kv)?;
        }
        let de = toml::Value::Table(table);
        let config: Config = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            anyhow::anyhow!("invalid config at `{}`: {}", path, e.inner())
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks the cross-key rules that the types cannot express.
    pub fn validate(&self) -> Result<()> {
        if self.output.kind == OutputKind::File && self.output.path.is_none() {
            bail!("output.path is required when output.kind = \"file\"");
        }
        let p = &self.pipeline;
        if p.queue_capacity == 0 || p.max_in_flight == 0 {
            bail!("pipeline.queue_capacity and pipeline.max_in_flight must be at least 1");
        }
        if p.read_workers == 0 || p.strip_workers == 0 || p.entities_workers == 0 {
            bail!("pipeline worker counts must be at least 1");
        }
        if p.file_timeout.is_zero() || p.max_in_flight_bytes == 0 {
            bail!("pipeline.file_timeout and pipeline.max_in_flight_bytes must be above zero");
        }
        if self.source.read_attempts == 0 {
            bail!("source.read_attempts must be at least 1");
        }
        if self.output.batch_max == 0 {
            bail!("output.batch_max must be at least 1");
        }
        self.file_filter()?;
        crate::check::parse_log_level(&self.log.level)?;
        self.cluster.validate()?;
        if self.cluster.enabled()
            && self.output.kind == OutputKind::File
            && self.dedup.on_duplicate != crate::dedup::OnDuplicate::Emit
            && self.state.dir.is_none()
        {
            bail!(
                "dedup.on_duplicate = \"{}\" in cluster mode needs state.dir: the file sink \
                 keeps its position there once it leaves lines out",
                self.dedup.on_duplicate.as_str()
            );
        }
        self.validate_paths()
    }

    /// Refuses durations the watcher cannot run with and paths that would make the daemon read
    /// its own output, corrupt its state, or move files outside the drop folder.
    fn validate_paths(&self) -> Result<()> {
        let s = &self.source;
        if s.rescan_interval < MIN_RESCAN_INTERVAL {
            bail!(
                "source.rescan_interval = {:?} is below the supported minimum of {:?}",
                s.rescan_interval,
                MIN_RESCAN_INTERVAL
            );
        }
        let drop = resolve(&s.dir);
        for (key, p) in [
            ("source.done_dir", &s.done_dir),
            ("source.failed_dir", &s.failed_dir),
        ] {
            if p.is_relative() && !resolve(&self.in_source(p)).starts_with(&drop) {
                bail!(
                    "{key} = {} leaves the drop folder; relative paths must stay inside source.dir \
                     (give an absolute path to put it elsewhere)",
                    p.display()
                );
            }
        }
        let state = self.state.dir.as_deref().map(resolve);
        if let Some(state) = &state {
            if state.starts_with(&drop) {
                bail!(
                    "state.dir {} is inside the drop folder source.dir {}",
                    state.display(),
                    drop.display()
                );
            }
        }
        let out = match (self.output.kind, &self.output.path) {
            (OutputKind::File, Some(p)) => resolve(p),
            _ => return Ok(()),
        };
        if out.starts_with(&drop) {
            bail!(
                "output.path {} is inside the drop folder source.dir {}: the daemon would read \
                 its own output",
                out.display(),
                drop.display()
            );
        }
        if let Some(state) = &state {
            let taken = out.parent() == Some(state.as_path())
                && out.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                    STATE_FILES.contains(&n) || n.starts_with(crate::ledger::LEDGER_FILE)
                });
            if taken || out == *state {
                bail!(
                    "output.path {} is a state file in state.dir {}",
                    out.display(),
                    state.display()
                );
            }
        }
        Ok(())
    }

    /// Compiles `source.include` and `source.exclude`.
    pub fn file_filter(&self) -> Result<crate::filter::FileFilter> {
        crate::filter::FileFilter::new(&self.source.include, &self.source.exclude)
    }

    /// Renders the effective configuration as TOML.
    pub fn to_toml(&self) -> Result<String> {
        Ok(toml::to_string_pretty(self)?)
    }

    /// Resolves a path under the drop folder (done and failed folders).
    pub fn in_source(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.source.dir.join(p)
        }
    }
}

/// Files that live in `state.dir` and must never be the output.
const STATE_FILES: &[&str] = &[
    crate::ledger::LEDGER_FILE,
    crate::ledger::ERRORS_FILE,
    crate::lock::LOCK_FILE,
    "strip-lines.json",
    crate::cluster::intake::PUBLISHED_FILE,
    crate::cluster::output::POSITION_FILE,
];

/// Makes `p` absolute and normal without requiring it to exist: the longest existing ancestor
/// is canonicalized (symlinks resolved), the rest is normalized lexically (`.` and `..`).
fn resolve(p: &Path) -> PathBuf {
    let joined = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(p)
    };
    let mut abs = PathBuf::from("/");
    for c in joined.components() {
        match c {
            std::path::Component::ParentDir => {
                abs.pop();
            }
            std::path::Component::Normal(n) => abs.push(n),
            _ => {}
        }
    }
    let mut base = abs.as_path();
    let mut rest = Vec::new();
    loop {
        if let Ok(canon) = std::fs::canonicalize(base) {
            return rest.iter().rev().fold(canon, |acc, n| acc.join(n));
        }
        match (base.parent(), base.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                base = parent;
            }
            _ => return abs,
        }
    }
}

/// Sets the dotted `key` to `value` in `table`; the value is read as TOML, else as a string.
fn apply_override(table: &mut toml::Table, kv: &str) -> Result<()> {
    let (key, raw) = kv
        .split_once('=')
        .with_context(|| format!("--set expects KEY=VALUE, got `{kv}`"))?;
    let key = key.trim();
    let value = parse_value(raw.trim());
    let mut parts: Vec<&str> = key.split('.').collect();
    let last = parts.pop().filter(|s| !s.is_empty());
    let Some(last) = last else {
        bail!("--set expects KEY=VALUE, got `{kv}`");
    };
    let mut cur = table;
    for part in parts {
        let entry = cur
            .entry(part.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        cur = entry
            .as_table_mut()
            .with_context(|| format!("config key `{key}`: `{part}` is not a section"))?;
    }
    cur.insert(last.to_string(), value);
    Ok(())
}

fn parse_value(raw: &str) -> toml::Value {
    let doc = format!("v = {raw}");
    match doc.parse::<toml::Table>() {
        Ok(mut t) => t
            .remove("v")
            .unwrap_or_else(|| toml::Value::String(raw.into())),
        Err(_) => toml::Value::String(raw.to_string()),
    }
}

#[cfg(test)]
mod tests;
