//! Owns admission: which files are in flight or committed, and the in-flight cap that turns a
//! full pipeline into backpressure on the watcher.

use crate::model::FileKey;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use tokio::sync::Semaphore;

/// Shared by the intake (watcher or `process`) and the sink.
#[derive(Debug)]
pub struct Admission {
    permits: Semaphore,
    state: Mutex<Sets>,
    next_seq: AtomicU64,
}

#[derive(Debug, Default)]
struct Sets {
    /// When the pipeline last went from empty to busy, until the summary takes it.
    busy_since: Option<std::time::Instant>,
    in_flight: HashSet<FileKey>,
    /// Committed files still expected in the folder, with whether they failed.
    committed: HashMap<FileKey, bool>,
}

/// Why a ready file was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    InFlight,
    /// Committed earlier; `failed` when its line was an error record.
    Committed {
        failed: bool,
    },
}

impl Admission {
    /// Starts with the files the ledger says are committed and room for `max_in_flight` files.
    pub fn new(max_in_flight: usize, committed: HashMap<FileKey, bool>) -> Self {
        Self {
            permits: Semaphore::new(max_in_flight),
            state: Mutex::new(Sets {
                busy_since: None,
                in_flight: HashSet::new(),
                committed,
            }),
            next_seq: AtomicU64::new(0),
        }
    }

    /// Returns why `key` must not be admitted, if it must not.
    pub fn skip_reason(&self, key: &FileKey) -> Option<Skip> {
        let s = self.lock();
        if s.in_flight.contains(key) {
            return Some(Skip::InFlight);
        }
        s.committed
            .get(key)
            .map(|&failed| Skip::Committed { failed })
    }

    /// Waits for room in the pipeline, then admits `key` and returns its sequence number;
    /// `None` when `key` was admitted or committed meanwhile.
    pub async fn admit(&self, key: FileKey) -> Option<u64> {
        // The semaphore is never closed, so acquire only fails if it were; treat as no room.
        let permit = self.permits.acquire().await.ok()?;
        let mut s = self.lock();
        if s.in_flight.contains(&key) || s.committed.contains_key(&key) {
            return None;
        }
        if s.in_flight.is_empty() && s.busy_since.is_none() {
            s.busy_since = Some(std::time::Instant::now());
        }
        s.in_flight.insert(key);
        permit.forget();
        Some(self.next_seq.fetch_add(1, Ordering::Relaxed))
    }

    /// Records a committed file; `remember` keeps it in the committed set (files left in place).
    pub fn committed(&self, key: FileKey, failed: bool, remember: bool) {
        let mut s = self.lock();
        s.in_flight.remove(&key);
        if remember {
            s.committed.insert(key, failed);
        }
        drop(s);
        self.permits.add_permits(1);
    }

    /// Forgets committed files no longer present; `present` is every key a full scan saw.
    pub fn prune(&self, present: &HashSet<FileKey>) {
        self.lock().committed.retain(|k, _| present.contains(k));
    }

    /// Returns how many of `present` are neither in flight nor committed: files waiting.
    pub fn count_waiting(&self, present: &HashSet<FileKey>) -> usize {
        let s = self.lock();
        present
            .iter()
            .filter(|k| !s.in_flight.contains(k) && !s.committed.contains_key(k))
            .count()
    }

    /// Returns when the current (or last) burst started, once.
    pub fn take_busy_since(&self) -> Option<std::time::Instant> {
        self.lock().busy_since.take()
    }

    /// Returns the number of files admitted and not yet committed.
    pub fn in_flight(&self) -> usize {
        self.lock().in_flight.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Sets> {
        // A poisoned lock means a thread panicked while holding it; the sets are still valid.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(ino: u64) -> FileKey {
        FileKey {
            dev: 1,
            ino,
            size: 1,
            mtime_ns: 1,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn full_pipeline_blocks_admission_until_a_commit() {
        let a = std::sync::Arc::new(Admission::new(1, HashMap::new()));
        assert_eq!(a.admit(key(1)).await, Some(0));
        assert!(
            a.take_busy_since().is_some(),
            "the first admission starts a burst"
        );
        assert!(
            a.take_busy_since().is_none(),
            "and the summary takes it once"
        );
        let a2 = a.clone();
        let waiting = tokio::spawn(async move { a2.admit(key(2)).await });
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        assert!(!waiting.is_finished(), "second file admitted past the cap");
        a.committed(key(1), false, true);
        assert_eq!(waiting.await.unwrap(), Some(1));
        assert_eq!(
            a.skip_reason(&key(1)),
            Some(Skip::Committed { failed: false })
        );
        assert_eq!(a.skip_reason(&key(2)), Some(Skip::InFlight));
    }
}
