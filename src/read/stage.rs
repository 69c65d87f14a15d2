//! Owns the read stage's pipeline adapter: the intake of a file list (`process`), and the
//! workers that turn an admitted file into a [`Work::Raw`] document or an error record, under
//! the per-file time budget, retrying what is transient without holding a worker.

use crate::admission::Admission;
use crate::driver::{self, Budget, Outcome, Step};
use crate::model::{Envelope, FileKey, Work};
use crate::read::{self, ReadError, ReadLimits};
use crate::telemetry::{self, Totals};
use crate::watcher;
use async_channel::{Receiver, Sender};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Admits `files` in order and sends them to the read stage (the `process` command's intake).
/// A file is probed for its fingerprint only when [`read::wants_probe`] says so; the read stage
/// fingerprints the others from what it reads.
pub async fn feed_list(
    files: Vec<PathBuf>,
    admission: Arc<Admission>,
    tx: Sender<Envelope>,
) -> anyhow::Result<()> {
    for path in files {
        let (key, hint) = match std::fs::symlink_metadata(&path) {
            Ok(meta) => {
                let base = read::file_key(&meta);
                if read::wants_probe(&path, admission.needs_fingerprint(&base)) {
                    read::file_key_at(&path, &meta)
                } else {
                    (base, None)
                }
            }
            // Still sent: the read stage turns it into an error record.
            Err(_) => (FileKey::default(), None),
        };
        let bytes = admission.estimate(&key, hint);
        let Some(seq) = admission.admit(key, bytes).await else {
            continue;
        };
        if tx.send(watcher::envelope(seq, path, key)).await.is_err() {
            break;
        }
    }
    Ok(())
}

/// What the read workers share.
#[derive(Debug)]
pub struct ReadStage {
    /// The canonical drop folder opened files must lie in; `None` in `process`.
    pub root: Option<PathBuf>,
    /// The drop folder as configured, for the stripper's per-source key.
    pub drop_dir: Option<PathBuf>,
    pub limits: ReadLimits,
    pub totals: Arc<Totals>,
    pub admission: Arc<Admission>,
    /// Tries per file for transient errors (1 = no retry).
    pub attempts: u32,
}

/// Waits between tries: 2 s, 4 s, 8 s, then 16 s each; five tries span 30 s.
fn backoff(tries_done: u32) -> Duration {
    Duration::from_secs(1u64 << tries_done.clamp(1, 4))
}

/// Spawns the read stage's `workers` on `rx`, sending to `tx`. A file that fails with a
/// transient error leaves its worker: a task of its own waits out the backoff and tries again,
/// holding a sender so the next stage's queue stays open until it is done.
pub fn spawn_read_stage(
    stage: ReadStage,
    workers: usize,
    rx: Receiver<Envelope>,
    tx: Sender<Envelope>,
    budget: &Budget,
) {
    let stage = Arc::new(stage);
    let s = Arc::clone(&stage);
    let step = move |env: Envelope| {
        if !matches!(env.work, Work::Ready) {
            return Step::Send(env);
        }
        let (env, got) = read_job(&s, env);
        match finish(&s, env, got) {
            Ok(out) => Step::Send(out),
            Err((env, _)) => Step::Later(env),
        }
    };
    let runtime = tokio::runtime::Handle::current();
    let b = budget.clone();
    let later = move |env: Envelope, tx: Sender<Envelope>| {
        runtime.spawn(retry(Arc::clone(&stage), b.clone(), env, tx));
    };
    driver::spawn_pool("read", workers, rx, tx, budget, step, later);
}

/// Tries a file again after each backoff until it reads, fails for good, or runs out of tries.
async fn retry(stage: Arc<ReadStage>, budget: Budget, mut env: Envelope, tx: Sender<Envelope>) {
    let mut tries = 1;
    let out = loop {
        tokio::time::sleep(backoff(tries)).await;
        tries += 1;
        match attempt(&stage, &budget, env).await {
            Ok(out) => break out,
            Err((back, error)) if tries >= stage.attempts => {
                env = back;
                let msg = format!("{error} (transient, gave up after {tries} tries)");
                tracing::warn!(path = %env.file.path.display(), %error, tries, "giving up on a file");
                break fail(env, msg);
            }
            Err((back, _)) => env = back,
        }
    };
    let _ = tx.send(out).await;
}

/// Reads the file of `env` (on a stage thread).
fn read_job(
    s: &ReadStage,
    mut env: Envelope,
) -> (Envelope, Result<crate::model::RawDoc, ReadError>) {
    debug_stall(&env.file.path);
    let mut fp = 0;
    let got = read::read_file(
        &env.file.path,
        s.root.as_deref(),
        s.limits,
        &mut env.source,
        &mut fp,
    );
    // A key discovery did not fingerprint gets the fingerprint of what was read, so the ledger
    // can tell this version from a later one (admission finds it under its unknown one).
    if env.file.key.fp == 0 {
        env.file.key.fp = fp;
    }
    (env, got)
}

/// Turns a read into the envelope leaving the stage, or `Err` with a transient error worth
/// another try.
// The envelope goes back by value on the rare transient path, as `attempt` always did.
#[allow(clippy::result_large_err)]
fn finish(
    stage: &ReadStage,
    mut env: Envelope,
    got: Result<crate::model::RawDoc, ReadError>,
) -> Result<Envelope, (Envelope, ReadError)> {
    match got {
        Ok(mut raw) => {
            let source_bytes = env.source.bytes;
            let decoded = source_bytes.max(raw.body.len() as u64);
            if let Some(need) = stage.admission.over_budget(decoded) {
                let (budget, per_byte) = stage.admission.budget();
                let msg = format!(
                    "needs about {} MiB in flight ({per_byte} bytes per decoded byte with the \
                     enabled stages), over pipeline.max_in_flight_bytes = {} MiB: raise it to \
                     process this file",
                    need.div_ceil(1 << 20),
                    budget >> 20
                );
                return Ok(fail(env, msg));
            }
            stage
                .totals
                .bytes
                .fetch_add(source_bytes, Ordering::Relaxed);
            metrics::counter!(telemetry::BYTES_READ).increment(source_bytes);
            // The budget now charges the decoded size (times the stages' working set).
            stage.admission.resize(&env.file.key, decoded);
            raw.source_key = source_key(stage.drop_dir.as_deref(), &env.file.path);
            env.work = Work::Raw(raw);
            Ok(env)
        }
        Err(error) => {
            let transient = read::is_transient(&error);
            warn_limited(&env.file.path, &error, transient);
            if transient && stage.attempts > 1 {
                return Err((env, error));
            }
            let msg = error.to_string();
            Ok(fail(env, msg))
        }
    }
}

/// One try on a blocking thread under the budget (the retry path): `Ok` with the file's
/// envelope as it leaves the stage, or `Err` with a transient error worth another try.
async fn attempt(
    stage: &Arc<ReadStage>,
    budget: &Budget,
    env: Envelope,
) -> Result<Envelope, (Envelope, ReadError)> {
    if !matches!(env.work, Work::Ready) {
        return Ok(env);
    }
    let (file, source) = (env.file.clone(), env.source.clone());
    let s = Arc::clone(stage);
    let job = move || read_job(&s, env);
    match driver::run_budgeted("read", budget, &file, job).await {
        Outcome::Done((env, got)) => finish(stage, env, got),
        Outcome::TimedOut => {
            let msg = format!("took longer than {}", driver::format_budget(budget.timeout));
            Ok(driver::failed(file, source, "read", msg))
        }
        Outcome::Panicked => {
            tracing::error!(path = %file.path.display(), "read stage panicked on a file");
            let msg = "internal error: the stage panicked on this file".to_string();
            Ok(driver::failed(file, source, "read", msg))
        }
    }
}

/// Debug builds only: a file whose path contains `DROPLINE_TEST_STALL_READ` stalls its read for
/// 20 s without polling for cancellation, the way a runaway core would; tests use it to check
/// the time budget. Release builds never read the variable.
fn debug_stall(path: &Path) {
    if driver::debug_hook("DROPLINE_TEST_STALL_READ", &path.to_string_lossy()) {
        std::thread::sleep(Duration::from_secs(20));
    }
}

fn fail(env: Envelope, error: String) -> Envelope {
    driver::failed(env.file, env.source, "read", error)
}

/// Read warnings logged per second at most; the rest are counted and reported in one line, so
/// a storm (descriptor exhaustion fails every file at once) cannot flood the log.
const WARNINGS_PER_SECOND: u32 = 10;

static WARN_WINDOW: Mutex<Option<(Instant, u32, u64)>> = Mutex::new(None);

fn warn_limited(path: &Path, error: &ReadError, transient: bool) {
    let now = Instant::now();
    let mut w = WARN_WINDOW.lock().unwrap_or_else(|e| e.into_inner());
    let (start, logged, suppressed) = w.get_or_insert((now, 0, 0));
    if now.duration_since(*start) >= Duration::from_secs(1) {
        if *suppressed > 0 {
            tracing::warn!(
                suppressed = *suppressed,
                "read warnings suppressed in the last second"
            );
        }
        (*start, *logged, *suppressed) = (now, 0, 0);
    }
    if *logged >= WARNINGS_PER_SECOND {
        *suppressed += 1;
        return;
    }
    *logged += 1;
    drop(w);
    tracing::warn!(path = %path.display(), %error, transient, "failed to read dropped file");
}

/// Returns the folder a file came from, relative to the drop folder: the stripper's source.
fn source_key(root: Option<&Path>, path: &Path) -> String {
    let parent = path.parent().unwrap_or(Path::new(""));
    let rel = root
        .and_then(|r| canonical(parent).map(|p| (r.to_path_buf(), p)))
        .and_then(|(r, p)| p.strip_prefix(&r).ok().map(Path::to_path_buf))
        .unwrap_or_else(|| parent.to_path_buf());
    rel.display().to_string()
}

/// Folders resolved at most this many at once; past it the cache starts over.
const CANONICAL_CACHE: usize = 1024;

/// Returns the canonical form of folder `dir`, resolved once per folder rather than once per
/// file: `canonicalize` costs a `readlink` per path component, and every file of a folder
/// asks for the same one. A folder replaced by a symlink later keeps its first answer until
/// the cache starts over; the answer only names the stripper's per-source memory.
fn canonical(dir: &Path) -> Option<PathBuf> {
    static CACHE: Mutex<Option<std::collections::HashMap<PathBuf, PathBuf>>> = Mutex::new(None);
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    let map = cache.get_or_insert_with(Default::default);
    if let Some(c) = map.get(dir) {
        return Some(c.clone());
    }
    drop(cache);
    let resolved = std::fs::canonicalize(dir).ok()?;
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    let map = cache.get_or_insert_with(Default::default);
    if map.len() >= CANONICAL_CACHE {
        map.clear();
    }
    map.insert(dir.to_path_buf(), resolved.clone());
    Some(resolved)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_spans_about_thirty_seconds_over_five_tries() {
        let total: Duration = (1..5).map(backoff).sum();
        assert_eq!(total, Duration::from_secs(30));
        assert_eq!(backoff(9), Duration::from_secs(16));
    }
}
