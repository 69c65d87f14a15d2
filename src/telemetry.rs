//! Owns observability: metric names and descriptions, the Prometheus endpoint, tracing set-up
//! and the periodic summary line. Every metric is named once here; label values come from
//! small fixed sets, never a path.

use crate::config::{LogConfig, LogFormat, MetricsConfig};
use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
use metrics_exporter_prometheus::PrometheusBuilder;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;
use tracing_subscriber::EnvFilter;

pub const FILES_DISCOVERED: &str = "dropline_files_discovered_total";
pub const FILES_PROCESSED: &str = "dropline_files_processed_total";
pub const FILES_FAILED: &str = "dropline_files_failed_total";
pub const BYTES_READ: &str = "dropline_bytes_read_total";
pub const DOCUMENTS_EMITTED: &str = "dropline_documents_emitted_total";
pub const DOCUMENTS_DROPPED: &str = "dropline_documents_dropped_total";
pub const ENTITIES: &str = "dropline_entities_total";
pub const RESCANS: &str = "dropline_rescans_total";
pub const STAGE_SECONDS: &str = "dropline_stage_seconds";
pub const QUEUE_DEPTH: &str = "dropline_queue_depth";
pub const IN_FLIGHT: &str = "dropline_files_in_flight";
pub const END_TO_END_SECONDS: &str = "dropline_end_to_end_seconds";
pub const COMMIT_SECONDS: &str = "dropline_commit_seconds";
pub const BATCH_SIZE: &str = "dropline_commit_batch_files";
/// 1 while the sink waits for disk space (ENOSPC, EDQUOT), else 0.
pub const SINK_BLOCKED: &str = "dropline_sink_blocked";

/// Histogram buckets for latencies, in seconds (100 us to 30 s).
const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0,
];

/// Describes every metric once, so the endpoint carries HELP lines.
pub fn describe() {
    describe_counter!(FILES_DISCOVERED, "Files found ready in the drop folder.");
    describe_counter!(
        FILES_PROCESSED,
        "Files whose line (document or error) was committed."
    );
    describe_counter!(
        FILES_FAILED,
        "Files that yielded an error record, by stage."
    );
    describe_counter!(BYTES_READ, Unit::Bytes, "Bytes read from dropped files.");
    describe_counter!(DOCUMENTS_EMITTED, "Documents committed, by dedup status.");
    describe_counter!(
        DOCUMENTS_DROPPED,
        "Duplicates committed but not written (on_duplicate = drop)."
    );
    describe_counter!(ENTITIES, "Entity mentions emitted, by label.");
    describe_counter!(RESCANS, "Full scans of the drop folder, by reason.");
    describe_histogram!(
        STAGE_SECONDS,
        Unit::Seconds,
        "Time a stage spent on one file."
    );
    describe_gauge!(QUEUE_DEPTH, "Items waiting in a stage's input queue.");
    describe_gauge!(IN_FLIGHT, "Files admitted and not yet committed.");
    describe_histogram!(
        END_TO_END_SECONDS,
        Unit::Seconds,
        "From ready to committed."
    );
    describe_histogram!(
        COMMIT_SECONDS,
        Unit::Seconds,
        "Write, fsync and ledger commit of one batch."
    );
    describe_histogram!(BATCH_SIZE, "Files per committed batch.");
    describe_gauge!(
        SINK_BLOCKED,
        "1 while the sink waits for disk space, else 0."
    );
}

/// Starts the Prometheus endpoint; must run inside the tokio runtime.
pub fn install_exporter(config: &MetricsConfig) -> anyhow::Result<()> {
    if !config.enabled {
        return Ok(());
    }
    PrometheusBuilder::new()
        .with_http_listener(config.listen)
        .set_buckets(LATENCY_BUCKETS)?
        .install()
        .map_err(|e| anyhow::anyhow!("cannot serve metrics on {}: {e}", config.listen))?;
    describe();
    Ok(())
}

/// Initialises tracing to stderr; `RUST_LOG` wins over the configured level.
pub fn init_tracing(config: &LogConfig) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&config.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second initialisation (tests calling the library twice) is harmless: keep the first.
    let _ = match config.format {
        LogFormat::Plain => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// Totals behind the summary line, cheap to bump from any stage.
#[derive(Debug)]
pub struct Totals {
    pub files: AtomicU64,
    pub failed: AtomicU64,
    pub bytes: AtomicU64,
    /// When the sink last committed, as nanoseconds since `epoch` (0: never).
    last_commit_ns: AtomicU64,
    epoch: Instant,
}

impl Default for Totals {
    fn default() -> Self {
        Self {
            files: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            last_commit_ns: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }
}

impl Totals {
    /// Records that a batch was just committed.
    pub fn mark_commit(&self) {
        let ns = u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.last_commit_ns.store(ns.max(1), Ordering::Relaxed);
    }

    /// Returns when the sink last committed.
    pub fn last_commit(&self) -> Option<Instant> {
        match self.last_commit_ns.load(Ordering::Relaxed) {
            0 => None,
            ns => Some(self.epoch + std::time::Duration::from_nanos(ns)),
        }
    }
}

/// Logs the line that closes a burst: files from the first admission to the last commit.
pub fn log_burst(files: u64, bytes: u64, started: Instant, committed: Instant) {
    let secs = committed
        .saturating_duration_since(started)
        .as_secs_f64()
        .max(1e-6);
    tracing::info!(
        files,
        docs_per_s = format_args!("{:.1}", files as f64 / secs),
        mb_per_s = format_args!("{:.2}", bytes as f64 / secs / 1e6),
        elapsed_s = format_args!("{secs:.3}"),
        "burst committed"
    );
}

/// Remembers the last summary to print rates over the interval.
#[derive(Debug)]
pub struct Summary {
    last_at: Instant,
    last_files: u64,
    last_bytes: u64,
    started: Instant,
}

impl Summary {
    pub fn new() -> Self {
        let now = Instant::now();
        Self {
            last_at: now,
            last_files: 0,
            last_bytes: 0,
            started: now,
        }
    }

    /// Logs one summary line for the interval since the last one; `queues` are (stage, depth).
    pub fn log(&mut self, totals: &Totals, queues: &[(&str, usize)], in_flight: usize) {
        let now = Instant::now();
        let files = totals.files.load(Ordering::Relaxed);
        let bytes = totals.bytes.load(Ordering::Relaxed);
        let secs = now.duration_since(self.last_at).as_secs_f64().max(1e-9);
        let docs_per_s = (files - self.last_files) as f64 / secs;
        let mb_per_s = (bytes - self.last_bytes) as f64 / secs / 1e6;
        let depths: Vec<String> = queues.iter().map(|(n, d)| format!("{n}={d}")).collect();
        tracing::info!(
            files_total = files,
            failed_total = totals.failed.load(Ordering::Relaxed),
            docs_per_s = format_args!("{docs_per_s:.1}"),
            mb_per_s = format_args!("{mb_per_s:.2}"),
            in_flight,
            queues = %depths.join(","),
            uptime_s = self.started.elapsed().as_secs(),
            "summary"
        );
        self.last_at = now;
        self.last_files = files;
        self.last_bytes = bytes;
    }
}

/// Logs the closing line: totals and rates over the whole run since `started`.
pub fn log_final(totals: &Totals, started: Instant) {
    let secs = started.elapsed().as_secs_f64().max(1e-9);
    let files = totals.files.load(Ordering::Relaxed);
    let bytes = totals.bytes.load(Ordering::Relaxed);
    tracing::info!(
        files_total = files,
        failed_total = totals.failed.load(Ordering::Relaxed),
        docs_per_s = format_args!("{:.1}", files as f64 / secs),
        mb_per_s = format_args!("{:.2}", bytes as f64 / secs / 1e6),
        elapsed_s = format_args!("{secs:.3}"),
        "run summary"
    );
}

impl Default for Summary {
    fn default() -> Self {
        Self::new()
    }
}
