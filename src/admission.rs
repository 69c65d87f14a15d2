//! Owns admission: which files are in flight or committed, and the two caps that turn a full
//! pipeline into backpressure on the watcher: a file count and a byte budget.
//!
//! The byte budget charges what a file costs in memory while in flight: its decoded size
//! (first guessed as the larger of its size on disk and the size its gzip trailer claims,
//! capped by `max_inflated_bytes`) times the working set the enabled stages build per decoded
//! byte ([`working_set_factor`]). Once the read stage knows the decoded size it corrects the
//! charge ([`Admission::resize`]); the commit releases it. A file charged more than the whole
//! budget is admitted when nothing else is in flight and no runaway thread still holds memory
//! (its estimate may overstate: a gzip trailer can claim anything), and is refused by the read
//! stage once its decoded size says it needs more than the whole budget ([`Admission::over_budget`]):
//! memory stays under the budget instead of reaching one big file's working set. Corrections
//! may overshoot the budget (a file turns out bigger than claimed): new admissions then wait
//! until commits bring the total back under it.

use crate::model::FileKey;
use keys::{BaseId, Committed, Version};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use tokio::sync::{Notify, Semaphore};

/// Peak RSS per decoded byte of read, strip, dedup and the sink (the document, its stripped
/// text and its JSON line coexist), rounded up. Measured with `/usr/bin/time -v dropline
/// process --set entities.enabled=false --set pipeline.file_timeout=600s DIR` on one
/// article-shaped 15 MB file (peak RSS minus the 18 MB of a run on a one-line file): strip off
/// 6.4, plain-text strip 7.0, HTML strip 7.4 bytes per byte.
pub const BASE_BYTES_PER_BYTE: u64 = 8;

/// Added per decoded byte when entities are on: the tagger holds per token its span, its
/// features (55 u32) and its token record (~120 bytes), ~400 bytes a token of ~5.5 bytes.
/// Measured as above with entities on: 69 bytes per byte in all (1,060 MB peak for 15 MB).
pub const ENTITIES_BYTES_PER_BYTE: u64 = 64;

/// Returns the bytes of memory one decoded byte costs in flight with the given stages on.
pub fn working_set_factor(entities: bool) -> u64 {
    BASE_BYTES_PER_BYTE + if entities { ENTITIES_BYTES_PER_BYTE } else { 0 }
}

/// Shared by the intake (watcher or `process`) and the sink.
#[derive(Debug)]
pub struct Admission {
    permits: Semaphore,
    state: Mutex<Sets>,
    next_seq: AtomicU64,
    /// Signalled whenever reserved bytes go down.
    bytes_freed: Notify,
    max_bytes: u64,
    max_inflated: u64,
    /// Bytes charged per decoded byte; see [`working_set_factor`].
    factor: u64,
    /// Set by [`Admission::with_fingerprint_on_read`].
    fp_on_read: bool,
}

#[derive(Debug, Default)]
struct Sets {
    /// When the pipeline last went from empty to busy, until the summary takes it.
    busy_since: Option<std::time::Instant>,
    /// Files in flight by metadata id, with their fingerprint and reserved bytes.
    in_flight: foldhash::HashMap<BaseId, Vec<(u64, u64)>>,
    in_flight_files: usize,
    reserved: u64,
    /// Bytes of files whose stage thread ran past its time budget and still runs: committed
    /// (as an error record) but still in memory, so still charged to the budget.
    runaway: u64,
    /// Committed files still expected in the folder, with their fingerprint and whether they
    /// failed.
    committed: Committed,
}

pub(crate) use keys::id128;
pub use keys::{KeyId, KeySet};

/// Why a ready file was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    InFlight,
    /// Committed earlier; `failed` when its line was an error record.
    Committed {
        failed: bool,
    },
}

fn fp_matches(a: u64, b: u64) -> bool {
    a == b || a == 0 || b == 0
}

/// Returns the in-flight entry of a file whose key has fingerprint `fp`: the one admitted
/// with it, else one admitted with it unknown (the read stage fills it in after admission).
fn slot_of(v: &[(u64, u64)], fp: u64) -> Option<usize> {
    v.iter()
        .position(|&(f, _)| f == fp)
        .or_else(|| v.iter().position(|&(f, _)| f == 0))
}

impl Admission {
    /// Starts with the files the ledger says are committed and room for `max_in_flight` files;
    /// no byte budget until [`Admission::with_byte_budget`].
    pub fn new(max_in_flight: usize, committed: HashMap<FileKey, bool>) -> Self {
        let mut sets = Sets::default();
        for (key, failed) in committed {
            let v = Version { fp: key.fp, failed };
            sets.committed.record(BaseId::of(&key), v);
        }
        Self {
            permits: Semaphore::new(max_in_flight),
            state: Mutex::new(sets),
            next_seq: AtomicU64::new(0),
            bytes_freed: Notify::new(),
            max_bytes: u64::MAX,
            max_inflated: u64::MAX,
            factor: 1,
            fp_on_read: false,
        }
    }

    /// Bounds the bytes in flight to `max_bytes`; gzip size hints count up to `max_inflated`.
    pub fn with_byte_budget(mut self, max_bytes: u64, max_inflated: u64) -> Self {
        self.max_bytes = max_bytes.max(1);
        self.max_inflated = max_inflated;
        self
    }

    /// Charges `factor` bytes of the budget per decoded byte (1 until set).
    pub fn with_working_set(mut self, factor: u64) -> Self {
        self.factor = factor.max(1);
        self
    }

    /// Returns the charge for a file of `decoded` bytes when it is more than the whole byte
    /// budget: such a file is refused once its decoded size is known (it could only run alone,
    /// taking memory past the budget), with this charge in its error record.
    pub fn over_budget(&self, decoded: u64) -> Option<u64> {
        let need = self.charge(decoded);
        (need > self.max_bytes).then_some(need)
    }

    /// Returns the byte budget and the bytes charged per decoded byte.
    pub fn budget(&self) -> (u64, u64) {
        (self.max_bytes, self.factor)
    }

    /// Returns the charge for a file of `decoded` bytes.
    pub fn charge(&self, decoded: u64) -> u64 {
        decoded.max(1).saturating_mul(self.factor)
    }

    /// Returns whether a file of key `base` (no fingerprint) needs its fingerprint to be told
    /// apart: a version with the same metadata is in flight or committed. Always true for
    /// an admission built without [`Admission::with_fingerprint_on_read`].
    pub fn needs_fingerprint(&self, base: &FileKey) -> bool {
        if !self.fp_on_read {
            return true;
        }
        let id = BaseId::of(base);
        let s = self.lock();
        s.in_flight.contains_key(&id) || s.committed.contains(&id)
    }

    /// Lets discovery admit files with their fingerprint unknown when no other version could be
    /// mistaken for them ([`Admission::needs_fingerprint`]): the pipeline's read stage fills it
    /// in from the bytes it reads before the commit records it.
    pub fn with_fingerprint_on_read(mut self) -> Self {
        self.fp_on_read = true;
        self
    }

    /// Returns why `key` must not be admitted, if it must not.
    pub fn skip_reason(&self, key: &FileKey) -> Option<Skip> {
        let id = KeyId::of(key);
        let s = self.lock();
        Self::skip_in(&s, &id)
    }

    fn skip_in(s: &Sets, key: &KeyId) -> Option<Skip> {
        if s.in_flight
            .get(&key.base)
            .is_some_and(|v| v.iter().any(|&(fp, _)| fp_matches(fp, key.fp)))
        {
            return Some(Skip::InFlight);
        }
        s.committed
            .find(&key.base, |fp| fp_matches(fp, key.fp))
            .map(|v| Skip::Committed { failed: v.failed })
    }

    /// Returns the bytes a file is expected to take in memory: the charge for its size, or for
    /// what its gzip trailer claims when larger, never more than the inflate cap allows.
    pub fn estimate(&self, key: &FileKey, inflated_hint: Option<u64>) -> u64 {
        let hint = inflated_hint.unwrap_or(0).min(self.max_inflated);
        self.charge(key.size.max(hint))
    }

    /// Waits for room in the pipeline (a file slot, then `bytes` of the byte budget), then
    /// admits `key` and returns its sequence number; `None` when `key` was admitted or
    /// committed meanwhile.
    pub async fn admit(&self, key: FileKey, bytes: u64) -> Option<u64> {
        // The semaphore is never closed, so acquire only fails if it were; treat as no room.
        let permit = self.permits.acquire().await.ok()?;
        let want = bytes.min(self.max_bytes);
        let id = KeyId::of(&key);
        loop {
            let freed = self.bytes_freed.notified();
            tokio::pin!(freed);
            // Registered before the check, so a release between check and await is not missed.
            freed.as_mut().enable();
            {
                let mut s = self.lock();
                if Self::skip_in(&s, &id).is_some() {
                    return None;
                }
                // With nothing in flight a file goes once it fits beside the runaways, or once
                // they ended: a file over the budget waits for them, else memory would be the
                // runaways plus the biggest file. Runaway threads end (every stage is bounded
                // in work per byte), so this delays the pipeline, never halts it.
                let charged = s.reserved.saturating_add(s.runaway);
                let fits = charged.saturating_add(want) <= self.max_bytes;
                if fits || (s.reserved == 0 && s.runaway == 0) {
                    if s.in_flight_files == 0 && s.busy_since.is_none() {
                        s.busy_since = Some(std::time::Instant::now());
                    }
                    s.reserved += want;
                    s.in_flight_files += 1;
                    s.in_flight.entry(id.base).or_default().push((key.fp, want));
                    permit.forget();
                    return Some(self.next_seq.fetch_add(1, Ordering::Relaxed));
                }
            }
            freed.await;
        }
    }

    /// Sets the charge of in-flight `key` to that of `decoded` bytes (what reading produced).
    pub fn resize(&self, key: &FileKey, decoded: u64) {
        let bytes = self.charge(decoded);
        let base = BaseId::of(key);
        let mut s = self.lock();
        let Some(slot) = s.in_flight.get_mut(&base).and_then(|v| {
            let i = slot_of(v, key.fp)?;
            v.get_mut(i)
        }) else {
            return;
        };
        let old = std::mem::replace(&mut slot.1, bytes);
        s.reserved = s.reserved - old + bytes;
        drop(s);
        if bytes < old {
            self.bytes_freed.notify_waiters();
        }
    }

    /// Keeps the bytes of in-flight `key` charged after its commit, until [`Admission::unpin`]:
    /// its stage thread ran past the time budget and still holds the file in memory. Returns
    /// the bytes pinned.
    pub fn pin(&self, key: &FileKey) -> u64 {
        let base = BaseId::of(key);
        let mut s = self.lock();
        let bytes = s
            .in_flight
            .get(&base)
            .and_then(|v| v.get(slot_of(v, key.fp)?))
            .map_or(0, |&(_, b)| b);
        s.runaway += bytes;
        bytes
    }

    /// Releases bytes pinned by [`Admission::pin`] once the runaway thread ended.
    pub fn unpin(&self, bytes: u64) {
        let mut s = self.lock();
        s.runaway = s.runaway.saturating_sub(bytes);
        drop(s);
        self.bytes_freed.notify_waiters();
    }

    /// Records a committed file; `remember` keeps it in the committed set (files left in place).
    pub fn committed(&self, key: FileKey, failed: bool, remember: bool) {
        let base = BaseId::of(&key);
        let mut s = self.lock();
        let mut released = None;
        if let Some(v) = s.in_flight.get_mut(&base) {
            if let Some(i) = slot_of(v, key.fp) {
                released = Some(v.swap_remove(i).1);
            }
            if v.is_empty() {
                s.in_flight.remove(&base);
            }
        }
        if let Some(bytes) = released {
            s.reserved -= bytes;
            s.in_flight_files -= 1;
        }
        if remember {
            let v = Version { fp: key.fp, failed };
            s.committed.record(base, v);
        }
        drop(s);
        if released.is_some() {
            self.permits.add_permits(1);
            self.bytes_freed.notify_waiters();
        }
    }

    /// Forgets committed files no longer present; `present` is every key a full scan saw.
    pub fn prune(&self, present: &KeySet) {
        let mut s = self.lock();
        // A version committed with its fingerprint unknown matches any present file of its
        // metadata: only those (rare) need the present keys indexed by metadata.
        let unknown = s.committed.bases_where(|fp| fp == 0);
        let unknown_present: foldhash::HashSet<BaseId> = if unknown.is_empty() {
            Default::default()
        } else {
            present
                .iter()
                .map(|k| k.base)
                .filter(|b| unknown.contains(b))
                .collect()
        };
        s.committed.retain(|&base, fp| {
            if fp == 0 {
                unknown_present.contains(&base)
            } else {
                present.contains(&KeyId { base, fp }) || present.contains(&KeyId { base, fp: 0 })
            }
        });
    }

    /// Returns how many of `present` are neither in flight nor committed: files waiting.
    pub fn count_waiting(&self, present: &KeySet) -> usize {
        let s = self.lock();
        present
            .iter()
            .filter(|k| Self::skip_in(&s, k).is_none())
            .count()
    }

    /// Returns when the current (or last) burst started, once.
    pub fn take_busy_since(&self) -> Option<std::time::Instant> {
        self.lock().busy_since.take()
    }

    /// Returns the number of files admitted and not yet committed.
    pub fn in_flight(&self) -> usize {
        self.lock().in_flight_files
    }

    /// Returns the bytes reserved by files admitted and not yet committed.
    pub fn in_flight_bytes(&self) -> u64 {
        self.lock().reserved
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Sets> {
        // A poisoned lock means a thread panicked while holding it; the sets are still valid.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

mod keys;
#[cfg(test)]
mod tests;
