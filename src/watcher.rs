//! Owns drop-folder discovery: notify events are hints, directory scans are the truth, and a
//! file is admitted once it is ready (renamed in, closed after writing, or unchanged in size
//! and mtime for the settle time).
//!
//! notify calls back on its own thread; the callback only records paths in a bounded map, and
//! past its cap it asks for a rescan instead, so no queue here grows without bound.

use crate::admission::{Admission, KeySet, Skip};
use crate::model::{Envelope, FileKey, ReadyFile, SourceInfo, Work};
use crate::read::{display_path, has_document_extension, sort_by_path, KeyCache};
use crate::sink::{apply_done, DonePolicy};
use crate::telemetry;
use async_channel::Sender;
use events::{lock, start_notify, Hint, Pending};
use std::fs;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::Notify;

/// The watcher's settings.
#[derive(Debug, Clone)]
pub struct WatchConfig {
    pub dir: PathBuf,
    pub recursive: bool,
    pub poll_only: bool,
    /// `source.settle` and `source.rescan_interval`, read on every tick; a reload swaps them.
    pub timing: crate::reload::Timing,
    pub max_pending: usize,
    /// Folders inside `dir` never scanned (done and failed folders).
    pub skip_dirs: Vec<PathBuf>,
    /// Re-runs a done-action that a crash interrupted after commit.
    pub done: Option<DonePolicy>,
    /// Which files are read (`source.include`/`exclude`); a reload swaps it.
    pub filter: crate::filter::SharedFilter,
}

type PathMap<V> = foldhash::HashMap<PathBuf, V>;

/// The files waiting to be ready (at most `max_pending`), by path. A B-tree rather than a hash
/// map: files leave it all the time, and a hash table of n entries under that churn fills with
/// tombstones and doubles to 3.3n slots and more (2.4 MB for 10,000 files), where the tree
/// keeps its nodes at least half full.
type Tracker = std::collections::BTreeMap<PathBuf, Candidate>;

impl WatchConfig {
    /// Returns the watcher settings `config` gives, with the live cells a reload swaps; the
    /// done and failed folders are never scanned, and a done-action a crash interrupted is
    /// finished per `config` (shared by the daemon and the cluster intake).
    pub fn from_config(config: &crate::config::Config, live: crate::reload::Live) -> Self {
        Self {
            dir: config.source.dir.clone(),
            recursive: config.source.recursive,
            poll_only: config.source.poll_only,
            timing: live.timing,
            max_pending: config.source.max_pending,
            skip_dirs: vec![
                config.in_source(&config.source.done_dir),
                config.in_source(&config.source.failed_dir),
            ],
            done: DonePolicy::from_config(config),
            filter: live.filter,
        }
    }
}

/// A file seen and not yet admitted.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    size: u64,
    mtime: SystemTime,
    stable_since: Instant,
    complete: bool,
}

/// Watches `config.dir` and sends ready files into `tx` until `shutdown` resolves.
pub async fn run(
    config: WatchConfig,
    admission: Arc<Admission>,
    tx: Sender<Envelope>,
    shutdown: impl Future<Output = ()>,
    once: bool,
) -> anyhow::Result<()> {
    tokio::pin!(shutdown);
    let pending = Arc::new(Mutex::new(Pending::default()));
    let wake = Arc::new(Notify::new());
    let mut watch = if config.poll_only {
        None
    } else {
        match start_notify(&config, Arc::clone(&pending), Arc::clone(&wake)) {
            Ok(w) => Some(w),
            Err(error) => {
                tracing::warn!(dir = %config.dir.display(), %error, "cannot watch drop folder, polling");
                None
            }
        }
    };
    let mut poll = watch.is_none();
    // The folder's identity: a folder deleted and recreated is a new inode that notify does not
    // watch, so it is checked on every tick and the watch re-established.
    let mut watched_dir = dir_identity(&config.dir);
    let mut keys = KeyCache::default();
    tracing::info!(dir = %config.dir.display(), poll, "watching drop folder");
    let mut tracker = Tracker::new();
    let mut last_scan = Instant::now();
    let mut scan_reason = Some("startup");
    let mut backlog = false;
    // Waiting files a truncated scan left out of the tracker (for the backlog gauge).
    let mut untracked = 0;
    // The files the last scan saw: the next one's list is sized for as many.
    let mut last_present = 0;
    loop {
        let now = Instant::now();
        // Read every tick, so a reload's new values hold from the next tick on.
        let (settle, rescan_interval) = config.timing.get();
        let tick = (settle / 4).clamp(Duration::from_millis(10), Duration::from_millis(250));
        // Without events, scanning is the only discovery: as often as the settle time allows.
        let poll_every = (settle / 2).clamp(Duration::from_millis(100), rescan_interval);
        let current = dir_identity(&config.dir);
        // A folder removed and recreated between two ticks may get its inode number back; the
        // removal event of the watched folder itself says the watch is gone all the same.
        let lost = std::mem::take(&mut lock(&pending).watch_lost);
        if lost && current.is_some() && current == watched_dir {
            watched_dir = None;
        }
        if current != watched_dir {
            match current {
                None => {
                    tracing::warn!(dir = %config.dir.display(), "drop folder vanished, waiting for it")
                }
                Some(_) => {
                    watch = None;
                    if !config.poll_only {
                        match start_notify(&config, Arc::clone(&pending), Arc::clone(&wake)) {
                            Ok(w) => watch = Some(w),
                            Err(error) => {
                                tracing::warn!(%error, "cannot watch drop folder, polling")
                            }
                        }
                    }
                    poll = watch.is_none();
                    tracing::info!(dir = %config.dir.display(), poll, "drop folder recreated, watch re-established");
                    scan_reason = Some("rewatch");
                }
            }
            watched_dir = current;
        }
        if std::mem::take(&mut lock(&pending).overflow) {
            scan_reason = Some("overflow");
        }
        // A scan that hit the tracker's cap left files behind: look again once there is room.
        if scan_reason.is_none() && backlog && tracker.len() < config.max_pending / 2 {
            scan_reason = Some("backlog");
        }
        if scan_reason.is_none() && now >= last_scan + rescan_interval {
            scan_reason = Some("interval");
        }
        if scan_reason.is_none() && poll && now >= last_scan + poll_every {
            scan_reason = Some("poll");
        }
        if let Some(reason) = scan_reason.take() {
            metrics::counter!(telemetry::RESCANS, "reason" => reason).increment(1);
            tracing::debug!(reason, "scanning drop folder");
            let (present, truncated) = tokio::task::block_in_place(|| {
                scan(&config, &admission, &mut tracker, &mut keys, last_present)
            });
            last_present = present.len();
            if reason != "startup" {
                admission.prune(&present);
            }
            backlog = truncated;
            untracked = admission
                .count_waiting(&present)
                .saturating_sub(tracker.len());
            if reason == "startup" {
                crate::status::mark_ready();
            }
            last_scan = now;
        }
        let events = std::mem::take(&mut lock(&pending).paths);
        let ready = tokio::task::block_in_place(|| {
            check(&config, &admission, &mut tracker, events, &mut keys)
        });
        tracing::debug!(
            tracked = tracker.len(),
            ready = ready.len(),
            "readiness check"
        );
        let mut waiting = tracker.len() + untracked + ready.len();
        telemetry::set_backlog(waiting);
        for (path, key, hint, landed) in ready {
            waiting -= 1;
            if !admissible(&config, &admission, &path, &key) {
                continue;
            }
            let bytes = admission.estimate(&key, hint);
            let seq = tokio::select! {
                biased;
                () = &mut shutdown => return Ok(()),
                seq = admission.admit(key, bytes) => seq,
            };
            let Some(seq) = seq else { continue };
            metrics::counter!(telemetry::FILES_DISCOVERED).increment(1);
            telemetry::set_backlog(waiting);
            let mut env = envelope(seq, path, key);
            env.file.ready_at = landed;
            tokio::select! {
                biased;
                () = &mut shutdown => return Ok(()),
                sent = tx.send(env) => if sent.is_err() { return Ok(()) },
            }
        }
        // A ready file skipped (admitted or committed meanwhile) set no gauge above.
        telemetry::set_backlog(waiting);
        if once && tracker.is_empty() && !backlog {
            return Ok(());
        }
        tokio::select! {
            () = &mut shutdown => return Ok(()),
            () = wake.notified() => {}
            () = tokio::time::sleep(tick) => {}
        }
    }
}

/// Returns whether a file still needs processing; a committed file whose done-action a crash
/// interrupted gets it finished here.
fn admissible(config: &WatchConfig, admission: &Admission, path: &Path, key: &FileKey) -> bool {
    match admission.skip_reason(key) {
        None => true,
        Some(Skip::InFlight) => false,
        Some(Skip::Committed { failed }) => {
            if let Some(policy) = &config.done {
                if let Err(error) = apply_done(policy, path, failed) {
                    tracing::warn!(path = %path.display(), %error, "done-action failed");
                }
            }
            false
        }
    }
}

/// Returns the (device, inode, birth time) of the drop folder, `None` while it is missing.
fn dir_identity(dir: &Path) -> Option<(u64, u64, Option<SystemTime>)> {
    use std::os::unix::fs::MetadataExt;
    fs::metadata(dir)
        .ok()
        .map(|m| (m.dev(), m.ino(), m.created().ok()))
}

/// Returns the envelope a ready file starts its way with.
pub fn envelope(seq: u64, path: PathBuf, key: FileKey) -> Envelope {
    let (shown, path_bytes) = display_path(&path);
    let source = SourceInfo {
        path_bytes,
        ..SourceInfo::named(shown, key.size)
    };
    Envelope {
        file: ReadyFile {
            seq,
            path,
            key,
            ready_at: Instant::now(),
        },
        source,
        work: Work::Ready,
        index_entry: None,
        prepared: None,
    }
}

/// Lists the folder into `tracker`; returns the keys of every file present, and whether some
/// were left out because the tracker is full.
fn scan(
    config: &WatchConfig,
    admission: &Admission,
    tracker: &mut Tracker,
    keys: &mut KeyCache,
    expect: usize,
) -> (KeySet, bool) {
    let mut present = KeySet::with_capacity(expect);
    let mut truncated = false;
    let (filter, settle) = (config.filter.get(), config.timing.get().0);
    let mut dirs = vec![config.dir.clone()];
    while let Some(dir) = dirs.pop() {
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(error) => {
                tracing::warn!(dir = %dir.display(), %error, "cannot scan folder");
                continue;
            }
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            let Ok(meta) = fs::symlink_metadata(&path) else {
                continue;
            };
            if filter.skips(&config.dir, &path, meta.is_dir()) {
                continue;
            }
            if meta.is_dir() {
                if config.recursive {
                    if !config.skip_dirs.iter().any(|d| d == &path) {
                        dirs.push(path);
                    }
                    continue;
                }
                if !has_document_extension(&name.to_string_lossy()) {
                    continue;
                }
            }
            let (key, _) = keys.key(&path, &meta, |b| admission.needs_fingerprint(b));
            present.insert(key);
            // Files already handled never take a place in the tracker.
            if !tracker.contains_key(&path) && !admissible(config, admission, &path, &key) {
                continue;
            }
            if tracker.len() < config.max_pending || tracker.contains_key(&path) {
                tracker
                    .entry(path)
                    .or_insert_with(|| first_sight(&meta, settle));
            } else {
                truncated = true;
            }
        }
    }
    keys.sweep();
    present.seal();
    (present, truncated)
}

fn first_sight(meta: &fs::Metadata, settle: Duration) -> Candidate {
    let mtime = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
    let age = SystemTime::now().duration_since(mtime).unwrap_or_default();
    let now = Instant::now();
    Candidate {
        size: meta.len(),
        mtime,
        // Untouched for longer than the settle time already: stable since before we looked.
        stable_since: now.checked_sub(age.min(settle)).unwrap_or(now),
        complete: false,
    }
}

/// Applies event hints, re-stats every candidate and returns the ready ones in path order.
fn check(
    config: &WatchConfig,
    admission: &Admission,
    tracker: &mut Tracker,
    events: PathMap<Hint>,
    keys: &mut KeyCache,
) -> Vec<(PathBuf, FileKey, Option<u64>, Instant)> {
    let filter = config.filter.get();
    for (path, hint) in events {
        let outside = path.parent() != Some(config.dir.as_path()) && !config.recursive;
        if path.file_name().is_none()
            || outside
            || config.skip_dirs.iter().any(|d| path.starts_with(d))
        {
            continue;
        }
        match hint {
            // Forgetting a path never tracked is harmless: no filter, no stat.
            Hint::Removed => {
                tracker.remove(&path);
            }
            Hint::Complete | Hint::Changed => {
                let Ok(meta) = fs::symlink_metadata(&path) else {
                    tracker.remove(&path);
                    continue;
                };
                // The unfollowed stat decides the rule, as in `scan`.
                if filter.skips(&config.dir, &path, meta.is_dir()) {
                    continue;
                }
                let name = path.file_name().unwrap_or_default().to_string_lossy();
                if meta.is_dir() && (config.recursive || !has_document_extension(&name)) {
                    continue;
                }
                if tracker.len() >= config.max_pending && !tracker.contains_key(&path) {
                    continue; // the next rescan finds it
                }
                let c = tracker.entry(path).or_insert_with(|| Candidate {
                    size: meta.len(),
                    mtime: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                    stable_since: Instant::now(),
                    complete: false,
                });
                if hint == Hint::Complete {
                    c.complete = true;
                } else {
                    c.complete = false;
                    c.stable_since = Instant::now();
                }
            }
        }
    }
    let (now, settle) = (Instant::now(), config.timing.get().0);
    let mut ready = Vec::new();
    tracker.retain(|path, c| {
        let Ok(meta) = fs::symlink_metadata(path) else {
            return false;
        };
        let mtime = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
        if (meta.len(), mtime) != (c.size, c.mtime) {
            *c = Candidate {
                size: meta.len(),
                mtime,
                stable_since: now,
                complete: c.complete,
            };
        }
        if c.complete || now.duration_since(c.stable_since) >= settle {
            let (key, hint) = keys.key(path, &meta, |b| admission.needs_fingerprint(b));
            // From the stat just taken: no second one per file on the watcher thread.
            ready.push((path.clone(), key, hint, telemetry::landed_at(&meta)));
            return false;
        }
        true
    });
    // The list waits here while admission is full (up to `max_pending` entries of 96 bytes):
    // at exact size, not the doubling's up to twice that (16,384 slots, 1.57 MB, for 10,000).
    ready.shrink_to_fit();
    sort_by_path(&mut ready, |r| &r.0);
    ready
}

mod events;
#[cfg(test)]
mod tests;
