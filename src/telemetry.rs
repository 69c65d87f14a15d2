//! Owns observability: metric names and descriptions, the Prometheus recorder, tracing set-up
//! and the summary lines. Every metric is named once here; label values come from small fixed
//! sets, never a path. The HTTP listener that serves the metrics is `crate::status`.

use crate::admission::Admission;
use crate::model::Envelope;
use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

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
pub const BACKLOG: &str = "dropline_backlog_files";
pub const END_TO_END_SECONDS: &str = "dropline_end_to_end_seconds";
pub const COMMIT_SECONDS: &str = "dropline_commit_seconds";
pub const BATCH_SIZE: &str = "dropline_commit_batch_files";
/// 1 while the sink waits for disk space (ENOSPC, EDQUOT), else 0.
pub const SINK_BLOCKED: &str = "dropline_sink_blocked";
pub const BUILD_INFO: &str = "dropline_build_info";

/// The label values of the labelled series, so every series exists (at zero) from start-up.
pub const STAGES: &[&str] = &["read", "strip", "dedup", "entities"];
pub const FAILED_STAGES: &[&str] = &["read", "strip", "dedup", "entities", "internal"];
pub const QUEUES: &[&str] = &["read", "strip", "dedup", "entities", "sink"];
pub const DEDUP_STATUSES: &[&str] = &["unique", "exact_duplicate", "near_duplicate", "rewrite"];
pub const ENTITY_LABELS: &[&str] = &[
    "PER", "ORG", "LOC", "MISC", "DATE", "TIME", "MONEY", "PERCENT", "QUANTITY", "CARDINAL",
    "ORDINAL", "OTHER",
];
pub const RESCAN_REASONS: &[&str] = &[
    "startup", "interval", "overflow", "poll", "backlog", "rewatch",
];

/// Histogram buckets for per-stage and commit latencies, in seconds (100 us to 30 s).
const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0,
];

/// Buckets for end-to-end latency, in seconds: coarse below 1 s, then each bound 10 % above
/// the last up to 10 min, then 30 and 60 min. A file can wait minutes in a burst, and
/// `histogram_quantile` interpolates linearly inside a bucket, so with 10 % steps a quantile it
/// reports is within 10 % of the true one anywhere from 1 s to 10 min.
fn end_to_end_buckets() -> Vec<f64> {
    let mut b = vec![0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75];
    let mut x: f64 = 1.0;
    while x <= 600.0 {
        b.push(x);
        // Rounded down to three significant digits: readable `le` labels, and never a step
        // above 10 %.
        let next = x * 1.1;
        let f = 10f64.powi(2 - next.log10().floor() as i32);
        x = (next * f).floor() / f;
    }
    b.extend([1800.0, 3600.0]);
    b
}

/// Buckets for files per committed batch: counts, not seconds.
const BATCH_BUCKETS: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0,
];

/// Describes every metric once, so the endpoint carries HELP lines.
pub fn describe() {
    describe_counter!(FILES_DISCOVERED, "Files admitted from the drop folder.");
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
    describe_gauge!(
        BACKLOG,
        "Files seen in the drop folder and not yet admitted (settling or waiting for room)."
    );
    describe_histogram!(
        END_TO_END_SECONDS,
        Unit::Seconds,
        "From the file landing in the drop folder (its ctime, or first sight) to its commit, \
         including the wait for admission."
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
    describe_histogram!(BATCH_SIZE, "Files per committed batch (a count).");
    describe_gauge!(BUILD_INFO, "Always 1; labels name the version and commit.");
}

/// Registers every series at zero, so `rate()` and alerts see them right after a restart.
pub fn register_zeros() {
    for name in [
        FILES_DISCOVERED,
        FILES_PROCESSED,
        BYTES_READ,
        DOCUMENTS_DROPPED,
    ] {
        metrics::counter!(name).increment(0);
    }
    for stage in FAILED_STAGES {
        metrics::counter!(FILES_FAILED, "stage" => *stage).increment(0);
    }
    for status in DEDUP_STATUSES {
        metrics::counter!(DOCUMENTS_EMITTED, "status" => *status).increment(0);
    }
    for label in ENTITY_LABELS {
        metrics::counter!(ENTITIES, "label" => *label).increment(0);
    }
    for reason in RESCAN_REASONS {
        metrics::counter!(RESCANS, "reason" => *reason).increment(0);
    }
    for stage in STAGES {
        // A histogram appears on the endpoint once it has a handle; no sample is recorded.
        let _ = metrics::histogram!(STAGE_SECONDS, "stage" => *stage);
    }
    for queue in QUEUES {
        metrics::gauge!(QUEUE_DEPTH, "stage" => *queue).set(0.0);
    }
    let _ = metrics::histogram!(END_TO_END_SECONDS);
    let _ = metrics::histogram!(COMMIT_SECONDS);
    let _ = metrics::histogram!(BATCH_SIZE);
    metrics::gauge!(IN_FLIGHT).set(0.0);
    metrics::gauge!(BACKLOG).set(0.0);
    metrics::gauge!(SINK_BLOCKED).set(0.0);
    metrics::gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION"), "commit" => COMMIT)
        .set(1.0);
}

/// The commit the binary was built from (`build.rs`), or `unknown` outside a git checkout.
pub const COMMIT: &str = env!("DROPLINE_COMMIT");

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the global Prometheus recorder (once per process) and registers every series at
/// zero; returns the handle that renders `/metrics`.
pub fn install_recorder() -> anyhow::Result<PrometheusHandle> {
    if let Some(handle) = HANDLE.get() {
        return Ok(handle.clone());
    }
    let recorder = PrometheusBuilder::new()
        .set_buckets(LATENCY_BUCKETS)?
        .set_buckets_for_metric(
            Matcher::Full(END_TO_END_SECONDS.into()),
            &end_to_end_buckets(),
        )?
        .set_buckets_for_metric(Matcher::Full(BATCH_SIZE.into()), BATCH_BUCKETS)?
        .build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder)
        .map_err(|e| anyhow::anyhow!("cannot install the metrics recorder: {e}"))?;
    describe();
    register_zeros();
    Ok(HANDLE.get_or_init(|| handle).clone())
}

/// Records one file through `stage`: its latency histogram and the status page's counter.
pub fn stage_done(stage: &'static str, secs: f64) {
    metrics::histogram!(STAGE_SECONDS, "stage" => stage).record(secs);
    crate::status::live().stage_done(stage);
}

/// Sets the backlog gauge: files seen in the drop folder and not yet admitted.
pub fn set_backlog(files: usize) {
    metrics::gauge!(BACKLOG).set(files as f64);
    crate::status::live().set_backlog(files as u64);
}

/// Returns when the file whose metadata is `meta` landed in the drop folder: its ctime (its last write, or
/// its rename into the folder), never later than now. End-to-end latency counts from here, so
/// the wait in the folder (settling, a backlog, a restart) is part of it.
pub fn landed_at(meta: &std::fs::Metadata) -> Instant {
    use std::os::unix::fs::MetadataExt;
    let now = Instant::now();
    let (secs, nanos) = (meta.ctime(), meta.ctime_nsec());
    let Ok(secs) = u64::try_from(secs) else {
        return now;
    };
    let ctime =
        std::time::UNIX_EPOCH + std::time::Duration::new(secs, nanos.clamp(0, 999_999_999) as u32);
    let age = std::time::SystemTime::now()
        .duration_since(ctime)
        .unwrap_or_default();
    now.checked_sub(age).unwrap_or(now)
}

/// Returns `x` rounded to `places` decimals, so JSON logs carry short numbers, not strings.
fn round(x: f64, places: i32) -> f64 {
    let f = 10f64.powi(places);
    (x * f).round() / f
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
        docs_per_s = round(files as f64 / secs, 1),
        mb_per_s = round(bytes as f64 / secs / 1e6, 2),
        elapsed_s = round(secs, 3),
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
    /// An idle interval (nothing committed, nothing in flight or waiting) logs nothing.
    pub fn log(
        &mut self,
        totals: &Totals,
        queues: &[(&str, usize)],
        in_flight: usize,
        backlog: u64,
    ) {
        let now = Instant::now();
        let files = totals.files.load(Ordering::Relaxed);
        let bytes = totals.bytes.load(Ordering::Relaxed);
        let busy = in_flight > 0 || backlog > 0 || queues.iter().any(|(_, d)| *d > 0);
        if files == self.last_files && !busy {
            self.last_at = now;
            self.last_bytes = bytes;
            return;
        }
        let secs = now.duration_since(self.last_at).as_secs_f64().max(1e-9);
        let docs_per_s = (files - self.last_files) as f64 / secs;
        let mb_per_s = (bytes - self.last_bytes) as f64 / secs / 1e6;
        let depths: Vec<String> = queues.iter().map(|(n, d)| format!("{n}={d}")).collect();
        tracing::info!(
            files_total = files,
            failed_total = totals.failed.load(Ordering::Relaxed),
            docs_per_s = round(docs_per_s, 1),
            mb_per_s = round(mb_per_s, 2),
            in_flight,
            backlog,
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
        docs_per_s = round(files as f64 / secs, 1),
        mb_per_s = round(bytes as f64 / secs / 1e6, 2),
        elapsed_s = round(secs, 3),
        "run summary"
    );
}

impl Default for Summary {
    fn default() -> Self {
        Self::new()
    }
}

/// Weak handles on the stage queues, so sampling their depth never keeps a queue open.
pub struct QueueDepths(pub Vec<(&'static str, async_channel::WeakReceiver<Envelope>)>);

impl QueueDepths {
    pub fn sample(&self) -> Vec<(&'static str, usize)> {
        self.0
            .iter()
            .map(|(n, w)| (*n, w.upgrade().map_or(0, |r| r.len())))
            .collect()
    }
}

/// Samples queue depths, in-flight files and the backlog every second for the gauges and the
/// status page; logs the periodic summary and one `burst committed` line per drained burst.
pub async fn summary_loop(
    depths: QueueDepths,
    admission: Arc<Admission>,
    totals: Arc<Totals>,
    every: Duration,
) {
    let mut summary = Summary::new();
    let mut since_last = Duration::ZERO;
    // Totals when the current burst started (the last one ended).
    let mut burst_files = 0;
    let mut burst_bytes = 0;
    let live = crate::status::live();
    let step = Duration::from_secs(1);
    loop {
        tokio::time::sleep(step).await;
        since_last += step;
        let queues = depths.sample();
        for (stage, depth) in &queues {
            metrics::gauge!(QUEUE_DEPTH, "stage" => *stage).set(*depth as f64);
        }
        let in_flight = admission.in_flight();
        metrics::gauge!(IN_FLIGHT).set(in_flight as f64);
        live.sample(&totals, &queues, in_flight);
        let backlog = live.backlog();
        let files = totals.files.load(Ordering::Relaxed);
        // Log on the period, and once whenever a burst has been fully committed: nothing in
        // flight and nothing waiting in the folder.
        let went_idle = in_flight == 0 && backlog == 0 && files != burst_files;
        if went_idle {
            let bytes = totals.bytes.load(Ordering::Relaxed);
            if let (Some(start), Some(end)) = (admission.take_busy_since(), totals.last_commit()) {
                log_burst(files - burst_files, bytes - burst_bytes, start, end);
            }
            burst_files = files;
            burst_bytes = bytes;
        }
        if since_last >= every || went_idle {
            summary.log(&totals, &queues, in_flight, backlog);
            since_last = Duration::ZERO;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn end_to_end_buckets_rise_by_at_most_ten_percent_from_one_second_to_ten_minutes() {
        let b = end_to_end_buckets();
        assert!(b.windows(2).all(|w| w[0] < w[1]), "{b:?}");
        let fine: Vec<f64> = b
            .iter()
            .copied()
            .filter(|x| (1.0..=600.0).contains(x))
            .collect();
        assert!(fine[0] == 1.0 && *fine.last().unwrap() > 550.0, "{fine:?}");
        for w in fine.windows(2) {
            assert!(w[1] / w[0] <= 1.1 + 1e-9, "{} -> {}", w[0], w[1]);
        }
    }
}
