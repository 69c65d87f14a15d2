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
                }) => {
                    ledger.published.insert(key, failed);
                    ledger.high = ledger.high.max(seq.unwrap_or(0));
                    if let (Some(seq), Some(path)) = (seq, path) {
                        let path = PathBuf::from(path);
                        ledger.unsettled.insert(seq, Unsettled { key, path, ms });
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
            let (seq, path, ms) = match waiting.get(&key) {
                Some((seq, u)) => (Some(*seq), u.path.to_str().map(str::to_owned), u.ms),
                None => (None, None, 0),
            };
            let entry = Entry::Published {
                key,
                failed,
                seq,
                path,
                ms,
            };
            serde_json::to_writer(&mut out, &entry)?;
            out.push(b'\n');
        }
        let tmp = path.with_extension("jsonl.tmp");
        let mut f = std::fs::File::create(&tmp)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        f.write_all(&out)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
            .with_context(|| format!("cannot replace {}", path.display()))?;
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

    /// Records an acknowledged publish. With a done-action the file waits for its line (or
    /// is settled now when its line came first); returns it when the decider declared its
    /// sequence lost before the ack came.
    pub fn published(
        &mut self,
        key: FileKey,
        seq: u64,
        path: &Path,
        done: Option<&DonePolicy>,
    ) -> Result<Option<Republish>> {
        let ms = wire::now_ms();
        let text = done.and_then(|_| path.to_str().map(str::to_owned));
        let waits = text.is_some();
        self.high = self.high.max(seq);
        self.append(&Entry::Published {
            key,
            failed: false,
            seq: Some(seq),
            path: text,
            ms,
        })?;
        if let (true, Some(policy)) = (waits, done) {
            let path = path.to_path_buf();
            self.unsettled.insert(seq, Unsettled { key, path, ms });
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

    /// Forgets work sequence `seq` (its file was published again under a new one).
    pub fn forget(&mut self, seq: u64) -> Result<()> {
        if self.unsettled.remove(&seq).is_some() {
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
mod tests {
    use super::*;
    use crate::config::DoneAction;

    fn policy(root: &Path) -> DonePolicy {
        DonePolicy {
            action: DoneAction::Move,
            done_dir: root.join("done"),
            failed_dir: root.join("failed"),
        }
    }

    /// The key of the file at `path` as the watcher makes it.
    fn key_of(path: &Path) -> FileKey {
        crate::read::file_key(&std::fs::symlink_metadata(path).unwrap())
    }

    #[test]
    fn files_wait_for_their_line_and_a_restart_settles_what_is_left() {
        let dir = tempfile::tempdir().unwrap();
        let (root, p) = (dir.path(), policy(dir.path()));
        for name in ["a", "b", "c"] {
            std::fs::write(root.join(name), name).unwrap();
        }
        let mut l = PublishedLedger::open(Some(root)).unwrap();
        let k = |n: &str| key_of(&root.join(n));
        l.published(k("a"), 10, &root.join("a"), Some(&p)).unwrap();
        // c's line arrives before its ack; b's never arrives before the restart.
        l.line(12, Verdict::Line { failed: true }, &p).unwrap();
        l.published(k("b"), 11, &root.join("b"), Some(&p)).unwrap();
        l.published(k("c"), 12, &root.join("c"), Some(&p)).unwrap();
        assert!(root.join("a").exists(), "no line yet: the file stays");
        assert!(root.join("failed/c").exists());
        l.line(10, Verdict::Line { failed: false }, &p).unwrap();
        assert!(root.join("done/a").exists());
        l.line(99, Verdict::Line { failed: false }, &p).unwrap(); // another intake's file
        drop(l);
        // A crash mid-append leaves a torn line; what follows it still counts.
        let ledger = root.join(PUBLISHED_FILE);
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&ledger)
            .unwrap();
        f.write_all("{\"key\":{\"dev\":1,\"ino\":\"\u{e9}".as_bytes())
            .unwrap();
        drop(f);
        let mut l = PublishedLedger::open(Some(root)).unwrap();
        assert_eq!(l.published.len(), 3);
        assert_eq!(l.unsettled.keys().collect::<Vec<_>>(), [&11]);
        l.line(11, Verdict::Line { failed: true }, &p).unwrap();
        assert!(root.join("failed/b").exists());
        let l = PublishedLedger::open(Some(root)).unwrap();
        assert!(l.unsettled.is_empty());
    }

    #[test]
    fn without_a_done_action_nothing_waits() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = PublishedLedger::open(Some(dir.path())).unwrap();
        l.published(FileKey::default(), 1, &dir.path().join("a"), None)
            .unwrap();
        assert!(l.unsettled.is_empty());
        let l = PublishedLedger::open(Some(dir.path())).unwrap();
        assert!(l.unsettled.is_empty() && l.published.len() == 1);
    }

    #[test]
    fn a_file_replaced_after_its_publish_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let (root, p) = (dir.path(), policy(dir.path()));
        let path = root.join("feed.txt");
        std::fs::write(&path, "first").unwrap();
        let mut l = PublishedLedger::open(Some(root)).unwrap();
        l.published(key_of(&path), 7, &path, Some(&p)).unwrap();
        // A producer renames a new version over it before the first one's line comes.
        let tmp = root.join(".feed.tmp");
        std::fs::write(&tmp, "second, longer").unwrap();
        std::fs::rename(&tmp, &path).unwrap();
        l.line(7, Verdict::Line { failed: false }, &p).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "second, longer");
        assert!(!root.join("done").exists());
        assert!(l.unsettled.is_empty());
    }

    #[test]
    fn a_done_action_that_fails_is_tried_again() {
        let dir = tempfile::tempdir().unwrap();
        let (root, p) = (dir.path(), policy(dir.path()));
        let path = root.join("a.txt");
        std::fs::write(&path, "a").unwrap();
        // A file where the done folder should be: the move fails until it is cleared.
        std::fs::write(root.join("done"), "in the way").unwrap();
        let mut l = PublishedLedger::open(Some(root)).unwrap();
        l.published(key_of(&path), 3, &path, Some(&p)).unwrap();
        l.line(3, Verdict::Line { failed: false }, &p).unwrap();
        assert!(path.exists());
        std::fs::remove_file(root.join("done")).unwrap();
        l.retry(&p).unwrap();
        assert!(root.join("done/a.txt").exists() && !path.exists());
        assert!(l.unsettled.is_empty() && l.retry.is_empty());
    }

    #[test]
    fn a_lost_sequence_gives_its_file_back_until_it_is_published_again() {
        let dir = tempfile::tempdir().unwrap();
        let (root, p) = (dir.path(), policy(dir.path()));
        for name in ["a", "b"] {
            std::fs::write(root.join(name), name).unwrap();
        }
        let (a, b) = (root.join("a"), root.join("b"));
        let mut l = PublishedLedger::open(Some(root)).unwrap();
        l.published(key_of(&a), 5, &a, Some(&p)).unwrap();
        let again = l.line(5, Verdict::Lost, &p).unwrap();
        let want = |lost, path: &Path| Republish {
            lost,
            key: key_of(path),
            path: path.to_path_buf(),
        };
        assert_eq!(again, Some(want(5, &a)));
        assert!(a.exists() && !root.join("done").exists(), "no done-action");
        // Published again as 9; 5 is forgotten.
        assert_eq!(l.published(key_of(&a), 9, &a, Some(&p)).unwrap(), None);
        l.forget(5).unwrap();
        // b's marker comes before its publish ack.
        assert_eq!(l.line(7, Verdict::Lost, &p).unwrap(), None);
        let again = l.published(key_of(&b), 7, &b, Some(&p)).unwrap();
        assert_eq!(again, Some(want(7, &b)));
        // A restart before b's new publish: b still waits on 7, a on 9, and the highest
        // sequence survives the compaction.
        drop(l);
        let mut l = PublishedLedger::open(Some(root)).unwrap();
        assert_eq!(l.unsettled.keys().collect::<Vec<_>>(), [&7, &9]);
        assert_eq!(l.high, 9);
        let l2 = PublishedLedger::open(Some(root)).unwrap();
        assert_eq!(l2.high, 9, "kept across two compactions");
        drop(l2);
        // A file gone by the time its marker comes is not published again.
        std::fs::remove_file(&b).unwrap();
        assert_eq!(l.line(7, Verdict::Lost, &p).unwrap(), None);
        assert_eq!(l.unsettled.keys().collect::<Vec<_>>(), [&9]);
        l.line(9, Verdict::Line { failed: false }, &p).unwrap();
        assert!(root.join("done/a").exists());
    }
}
