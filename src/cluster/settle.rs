//! Owns what the intake does after a publish: its ledger of published files
//! (`published.jsonl`) and the done-action, run once the file's output line is committed.
//!
//! As in the single-node mode, a file is moved to `done_dir` (or deleted) or to `failed_dir`
//! only after its line is committed, and the line says which: its output subject names its
//! status, `error` for an error record, whichever stage failed (read, a strip timeout, a file
//! given up after its deliveries). The intake follows the output stream's headers (not the
//! lines) from a point before its oldest unsettled file and matches each line to a file by the
//! work-stream sequence the publish ack gave it.
//!
//! The ledger holds one JSON line per acknowledged publish (file identity, work sequence, path,
//! time) and one per done-action run (`{"done": seq}`); a restart settles what is left.

use super::{wire, DUPLICATE_WINDOW};
use crate::durable::{self, Rename};
use crate::model::{is_zero, FileKey};
use crate::sink::{apply_done, DonePolicy};
use anyhow::{Context, Result};
use async_nats::jetstream::consumer::DeliverPolicy;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The intake's ledger of published files, in `state.dir`.
pub const PUBLISHED_FILE: &str = "published.jsonl";
/// Output lines kept for files whose publish ack has not arrived yet, at most (about 10 MB).
const EARLY_MAX: usize = 262_144;
/// Clock difference between the intake and the servers allowed for, on a restart.
const CLOCK_MARGIN: Duration = Duration::from_secs(60);
/// How often done-actions that failed (a full or read-only disk) are tried again.
pub const RETRY_EVERY: Duration = Duration::from_secs(10);

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum Entry {
    Published {
        key: FileKey,
        #[serde(default)]
        failed: bool,
        /// Work-stream sequence of a file whose done-action waits for its line.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seq: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        path: Option<String>,
        /// Unix ms of the publish.
        #[serde(default, skip_serializing_if = "is_zero")]
        ms: u64,
        /// The files-bucket object of a large file, deleted when the file is published again.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        obj: Option<String>,
    },
    Done {
        done: u64,
    },
    /// The highest work sequence the intake was given, kept across compactions.
    High {
        high: u64,
    },
}

/// What the output stream says about a work sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Its line is committed (`failed`: an error record).
    Line { failed: bool },
    /// The decider declared it lost with its stream ([`super::gap`]): its file is to be
    /// published again.
    Lost,
}

/// A file whose work sequence `lost` was declared lost, to publish again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Republish {
    pub lost: u64,
    pub key: FileKey,
    pub path: PathBuf,
}

/// A published file whose line is not seen yet (or whose done-action failed).
struct Unsettled {
    key: FileKey,
    path: PathBuf,
    ms: u64,
    /// Its files-bucket object, when it was too large to go inline.
    object: Option<String>,
}

/// The intake's record of published files and of the done-actions still to run.
pub struct PublishedLedger {
    file: Option<std::fs::File>,
    /// Every file version published before this run (and whether it failed), for admission.
    pub published: HashMap<FileKey, bool>,
    unsettled: BTreeMap<u64, Unsettled>,
    /// Lines seen before their publish was acknowledged.
    early: BTreeMap<u64, Verdict>,
    /// Lines whose done-action failed, tried again every [`RETRY_EVERY`].
    retry: BTreeMap<u64, bool>,
    /// The highest work sequence a publish was acknowledged with, ever.
    pub high: u64,
    /// Files-bucket objects of forgotten publishes, for the intake to delete: a worker deletes
    /// a large file's object after its work, but not one whose work was lost.
    pub orphans: Vec<String>,
}

impl PublishedLedger {
    /// Opens (reads and compacts) `published.jsonl` in `dir`; without a state dir nothing is
    /// kept and a restart relies on the work stream's duplicate window alone.
    pub fn open(dir: Option<&Path>) -> Result<Self> {
        let mut ledger = Self {
            file: None,
            published: HashMap::new(),
            unsettled: BTreeMap::new(),
            early: BTreeMap::new(),
            retry: BTreeMap::new(),
            high: 0,
            orphans: Vec::new(),
        };
        let Some(dir) = dir else {
            tracing::warn!("no state.dir: a restarted intake publishes files left in the folder again, also those waiting for their lines (the servers drop repeats within 10 minutes)");
            return Ok(ledger);
        };
        let path = dir.join(PUBLISHED_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        // A torn line (a crash mid-append) does not parse and is skipped: that file is published
        // again, and the servers drop the repeat and ack its first sequence.
        for line in bytes.split(|&b| b == b'\n') {
            match serde_json::from_slice::<Entry>(line) {
                Ok(Entry::Published {
                    key,
                    failed,
                    seq,
                    path,
                    ms,
                    obj,
                }) => {
                    ledger.published.insert(key, failed);
                    ledger.high = ledger.high.max(seq.unwrap_or(0));
                    if let (Some(seq), Some(path)) = (seq, path) {
                        let path = PathBuf::from(path);
                        let u = Unsettled {
                            key,
                            path,
                            ms,
                            object: obj,
                        };
                        ledger.unsettled.insert(seq, u);
                    }
                }
                Ok(Entry::Done { done }) => {
                    ledger.unsettled.remove(&done);
                }
                Ok(Entry::High { high }) => ledger.high = ledger.high.max(high),
                Err(_) => {}
            }
        }
        ledger.compact(&path)?;
        Ok(ledger)
    }

    /// Rewrites the ledger as one line per published file (no settled sequences, no `done`
    /// lines), then opens it for appending.
    fn compact(&mut self, path: &Path) -> Result<()> {
        let waiting: HashMap<FileKey, (u64, &Unsettled)> = self
            .unsettled
            .iter()
            .map(|(&seq, u)| (u.key, (seq, u)))
            .collect();
        let mut out = Vec::new();
        if self.high > 0 {
            serde_json::to_writer(&mut out, &Entry::High { high: self.high })?;
            out.push(b'\n');
        }
        for (&key, &failed) in &self.published {
            let (seq, path, ms, obj) = match waiting.get(&key) {
                Some((seq, u)) => (
                    Some(*seq),
                    u.path.to_str().map(str::to_owned),
                    u.ms,
                    u.object.clone(),
                ),
                None => (None, None, 0, None),
            };
            let entry = Entry::Published {
                key,
                failed,
                seq,
                path,
                ms,
                obj,
            };
            serde_json::to_writer(&mut out, &entry)?;
            out.push(b'\n');
        }
        // The uncompacted file, back after a power loss, says the same with more lines.
        durable::replace(path, &out, Rename::Atomic)?;
        self.file = Some(
            std::fs::OpenOptions::new()
                .append(true)
                .open(path)
                .with_context(|| format!("cannot open {}", path.display()))?,
        );
        Ok(())
    }

    fn append(&mut self, entry: &Entry) -> Result<()> {
        if let Some(f) = &mut self.file {
            let mut line = serde_json::to_vec(entry)?;
            line.push(b'\n');
            f.write_all(&line)
                .context("cannot append to published.jsonl")?;
        }
        Ok(())
    }

    /// Records an acknowledged publish (`object`: its files-bucket object, if any). With a
    /// done-action the file waits for its line (or is settled now when its line came first);
    /// returns it when the decider declared its sequence lost before the ack came.
    pub fn published(
        &mut self,
        key: FileKey,
        seq: u64,
        path: &Path,
        object: Option<&str>,
        done: Option<&DonePolicy>,
    ) -> Result<Option<Republish>> {
        let ms = wire::now_ms();
        let text = done.and_then(|_| path.to_str().map(str::to_owned));
        let waits = text.is_some();
        let object = object.filter(|_| waits).map(str::to_owned);
        self.high = self.high.max(seq);
        self.append(&Entry::Published {
            key,
            failed: false,
            seq: Some(seq),
            path: text,
            ms,
            obj: object.clone(),
        })?;
        if let (true, Some(policy)) = (waits, done) {
            let path = path.to_path_buf();
            let u = Unsettled {
                key,
                path,
                ms,
                object,
            };
            self.unsettled.insert(seq, u);
            if let Some(verdict) = self.early.remove(&seq) {
                return self.line(seq, verdict, policy);
            }
        } else if done.is_some() {
            tracing::warn!(path = %path.display(), "a path that is not UTF-8 is left in place");
        }
        Ok(None)
    }

    /// Handles what the output stream says about work sequence `seq`: runs the done-action
    /// of a committed line's file; returns the file of a sequence declared lost, to publish
    /// again (it stays unsettled until [`Self::forget`], after the new publish's ack).
    pub fn line(
        &mut self,
        seq: u64,
        verdict: Verdict,
        policy: &DonePolicy,
    ) -> Result<Option<Republish>> {
        let Some(u) = self.unsettled.get(&seq) else {
            // Another intake's file, or one of ours whose ack is still on its way.
            self.early.insert(seq, verdict);
            if self.early.len() > EARLY_MAX {
                self.early.pop_first();
            }
            return Ok(None);
        };
        let failed = match verdict {
            Verdict::Line { failed } => failed,
            Verdict::Lost => {
                if holds(&u.path, &u.key) {
                    let (key, path) = (u.key, u.path.clone());
                    return Ok(Some(Republish {
                        lost: seq,
                        key,
                        path,
                    }));
                }
                tracing::warn!(path = %u.path.display(), work_seq = seq, "a file whose work was lost is gone or replaced: not published again");
                self.forget(seq)?;
                return Ok(None);
            }
        };
        self.settle(seq, failed, policy)?;
        Ok(None)
    }

    /// Forgets work sequence `seq` (its file was published again under a new one, or is
    /// gone); its object, if any, goes to [`Self::orphans`].
    pub fn forget(&mut self, seq: u64) -> Result<()> {
        if let Some(u) = self.unsettled.remove(&seq) {
            self.orphans.extend(u.object);
            self.append(&Entry::Done { done: seq })?;
        }
        Ok(())
    }

    /// Tries the done-actions that failed again.
    pub fn retry(&mut self, policy: &DonePolicy) -> Result<()> {
        for (seq, failed) in std::mem::take(&mut self.retry) {
            self.settle(seq, failed, policy)?;
        }
        Ok(())
    }

    /// Runs the done-action of `seq` when its path still holds the file version published;
    /// a failed action is kept for [`Self::retry`].
    fn settle(&mut self, seq: u64, failed: bool, policy: &DonePolicy) -> Result<()> {
        let Some(u) = self.unsettled.get(&seq) else {
            return Ok(());
        };
        match std::fs::symlink_metadata(&u.path) {
            // Gone: moved or deleted by someone else; nothing left to do.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Ok(meta) if !same_version(&meta, &u.key) => {
                tracing::warn!(path = %u.path.display(), "the file was replaced after its publish; the new one is left for the watcher");
            }
            _ => {
                if let Err(error) = apply_done(policy, &u.path, failed) {
                    tracing::warn!(path = %u.path.display(), %error, "done-action failed, trying again");
                    self.retry.insert(seq, failed);
                    return Ok(());
                }
            }
        }
        self.unsettled.remove(&seq);
        self.append(&Entry::Done { done: seq })
    }

    /// Returns where in the output stream the lines of unsettled files can start: before the
    /// oldest unsettled publish and before anything a repeat publish could be acked for.
    pub fn follow_from(&self) -> DeliverPolicy {
        let window = (DUPLICATE_WINDOW + CLOCK_MARGIN).as_millis() as u64;
        let oldest = self.unsettled.values().map(|u| u.ms).min();
        let since = oldest
            .unwrap_or(u64::MAX)
            .min(wire::now_ms().saturating_sub(window));
        let nanos = i128::from(since) * 1_000_000;
        match time::OffsetDateTime::from_unix_timestamp_nanos(nanos) {
            Ok(start_time) => DeliverPolicy::ByStartTime { start_time },
            Err(_) => DeliverPolicy::All,
        }
    }
}

/// Whether `meta` is the file version `key` names (its fingerprint aside).
fn same_version(meta: &std::fs::Metadata, key: &FileKey) -> bool {
    crate::read::file_key(meta) == key.without_fp()
}

/// Whether `path` still holds the file version `key`.
fn holds(path: &Path, key: &FileKey) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| same_version(&m, key))
}

#[cfg(test)]
#[path = "settle_tests.rs"]
mod tests;
