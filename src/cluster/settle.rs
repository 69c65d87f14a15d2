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

use super::{wire, Cluster, DUPLICATE_WINDOW};
use crate::model::FileKey;
use crate::sink::{apply_done, DonePolicy};
use anyhow::{Context, Result};
use async_nats::jetstream::consumer::{pull, DeliverPolicy};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The intake's ledger of published files, in `state.dir`.
pub const PUBLISHED_FILE: &str = "published.jsonl";
/// Output lines kept for files whose publish ack has not arrived yet, at most.
const EARLY_MAX: usize = 65_536;
/// Clock difference between the intake and the servers allowed for, on a restart.
const CLOCK_MARGIN: Duration = Duration::from_secs(60);

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum Entry {
    Published {
        key: FileKey,
        #[serde(default)]
        failed: bool,
        /// Work-stream sequence; absent in ledgers of intakes that ran the done-action at the
        /// publish ack.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seq: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        path: Option<String>,
        /// Unix ms of the publish.
        #[serde(default)]
        ms: u64,
    },
    Done {
        done: u64,
    },
}

/// A published file whose line is not seen yet.
struct Unsettled {
    path: PathBuf,
    ms: u64,
}

/// The intake's record of published files and of the done-actions still to run.
pub struct PublishedLedger {
    file: Option<std::fs::File>,
    /// Every published file version (and whether it is known to have failed), for admission.
    pub published: HashMap<FileKey, bool>,
    unsettled: BTreeMap<u64, Unsettled>,
    /// Lines seen before their publish was acknowledged: work sequence -> failed.
    early: BTreeMap<u64, bool>,
}

impl PublishedLedger {
    /// Opens (and reads) `published.jsonl` in `dir`; without a state dir nothing is kept and a
    /// restart relies on the work stream's duplicate window alone.
    pub fn open(dir: Option<&Path>) -> Result<Self> {
        let mut ledger = Self {
            file: None,
            published: HashMap::new(),
            unsettled: BTreeMap::new(),
            early: BTreeMap::new(),
        };
        let Some(dir) = dir else {
            tracing::warn!("no state.dir: a restarted intake publishes files left in place again (the servers drop repeats within 10 minutes)");
            return Ok(ledger);
        };
        let path = dir.join(PUBLISHED_FILE);
        if let Ok(f) = std::fs::File::open(&path) {
            // A torn last line (a crash mid-append) does not parse and is skipped: that file is
            // published again, the servers drop the repeat and ack its first sequence.
            for line in std::io::BufReader::new(f).lines().map_while(Result::ok) {
                match serde_json::from_str::<Entry>(&line) {
                    Ok(Entry::Published {
                        key,
                        failed,
                        seq,
                        path,
                        ms,
                    }) => {
                        ledger.published.insert(key, failed);
                        if let (Some(seq), Some(path)) = (seq, path) {
                            let path = PathBuf::from(path);
                            ledger.unsettled.insert(seq, Unsettled { path, ms });
                        }
                    }
                    Ok(Entry::Done { done }) => {
                        ledger.unsettled.remove(&done);
                    }
                    Err(_) => {}
                }
            }
        }
        ledger.file = Some(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .with_context(|| format!("cannot open {}", path.display()))?,
        );
        Ok(ledger)
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
    /// is settled now when its line came first).
    pub fn published(
        &mut self,
        key: FileKey,
        seq: u64,
        path: &Path,
        done: Option<&DonePolicy>,
    ) -> Result<()> {
        let ms = wire::now_ms();
        let text = done.and_then(|_| path.to_str().map(str::to_owned));
        let waits = text.is_some();
        self.append(&Entry::Published {
            key,
            failed: false,
            seq: waits.then_some(seq),
            path: text,
            ms,
        })?;
        self.published.insert(key, false);
        if let (true, Some(policy)) = (waits, done) {
            self.unsettled.insert(
                seq,
                Unsettled {
                    path: path.to_path_buf(),
                    ms,
                },
            );
            if let Some(failed) = self.early.remove(&seq) {
                self.settle(seq, failed, policy)?;
            }
        } else if done.is_some() {
            tracing::warn!(path = %path.display(), "a path that is not UTF-8 is left in place");
        }
        Ok(())
    }

    /// Handles the committed line of work sequence `seq`.
    pub fn line(&mut self, seq: u64, failed: bool, policy: &DonePolicy) -> Result<()> {
        if self.unsettled.contains_key(&seq) {
            return self.settle(seq, failed, policy);
        }
        // Another intake's file, or one of ours whose ack is still on its way.
        self.early.insert(seq, failed);
        if self.early.len() > EARLY_MAX {
            self.early.pop_first();
        }
        Ok(())
    }

    fn settle(&mut self, seq: u64, failed: bool, policy: &DonePolicy) -> Result<()> {
        let Some(u) = self.unsettled.remove(&seq) else {
            return Ok(());
        };
        if let Err(error) = apply_done(policy, &u.path, failed) {
            tracing::warn!(path = %u.path.display(), %error, "done-action failed");
        }
        self.append(&Entry::Done { done: seq })
    }

    /// Returns where in the output stream the lines of unsettled files can start: before the
    /// oldest unsettled publish and before anything a repeat publish could be acked for.
    fn follow_from(&self) -> DeliverPolicy {
        let window = (DUPLICATE_WINDOW + CLOCK_MARGIN).as_millis() as u64;
        let oldest = self.unsettled.values().map(|u| u.ms).min();
        let since = oldest
            .unwrap_or(u64::MAX)
            .min(wire::now_ms().saturating_sub(window))
            .saturating_sub(CLOCK_MARGIN.as_millis() as u64);
        let nanos = i128::from(since) * 1_000_000;
        match time::OffsetDateTime::from_unix_timestamp_nanos(nanos) {
            Ok(start_time) => DeliverPolicy::ByStartTime { start_time },
            Err(_) => DeliverPolicy::All,
        }
    }
}

/// The output stream's lines as (work sequence, failed), from where the unsettled files of
/// `ledger` may have theirs.
pub async fn follow_lines(
    cluster: &Cluster,
    ledger: &PublishedLedger,
) -> Result<impl futures_util::Stream<Item = Result<(u64, bool)>> + Unpin> {
    let out = cluster.js.get_stream(&cluster.names.out).await?;
    let consumer = out
        .create_consumer(pull::OrderedConfig {
            deliver_policy: ledger.follow_from(),
            headers_only: true,
            ..Default::default()
        })
        .await
        .context("cannot follow the output stream")?;
    let messages = consumer.messages().await?;
    let error_subject = format!("{}.error", cluster.names.out_prefix);
    Ok(messages.filter_map(move |m| {
        let r = match m {
            Err(e) => Some(Err(anyhow::anyhow!("cannot follow the output stream: {e}"))),
            Ok(m) => m
                .headers
                .as_ref()
                .and_then(|h| h.get(wire::WORK_SEQ))
                .and_then(|v| v.as_str().parse::<u64>().ok())
                .map(|seq| Ok((seq, m.subject.as_str() == error_subject))),
        };
        std::future::ready(r)
    }))
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

    fn key(n: u64) -> FileKey {
        FileKey {
            ino: n,
            size: 10,
            fp: n,
            ..Default::default()
        }
    }

    #[test]
    fn files_wait_for_their_line_and_a_restart_settles_what_is_left() {
        let dir = tempfile::tempdir().unwrap();
        let (root, p) = (dir.path(), policy(dir.path()));
        for name in ["a", "b", "c"] {
            std::fs::write(root.join(name), name).unwrap();
        }
        let mut l = PublishedLedger::open(Some(root)).unwrap();
        l.published(key(1), 10, &root.join("a"), Some(&p)).unwrap();
        // c's line arrives before its ack; b's never arrives before the restart.
        l.line(12, true, &p).unwrap();
        l.published(key(2), 11, &root.join("b"), Some(&p)).unwrap();
        l.published(key(3), 12, &root.join("c"), Some(&p)).unwrap();
        assert!(root.join("a").exists(), "no line yet: the file stays");
        assert!(root.join("failed/c").exists());
        l.line(10, false, &p).unwrap();
        assert!(root.join("done/a").exists());
        l.line(99, false, &p).unwrap(); // another intake's file
        drop(l);
        let mut l = PublishedLedger::open(Some(root)).unwrap();
        assert_eq!(l.published.len(), 3);
        assert_eq!(l.unsettled.keys().collect::<Vec<_>>(), [&11]);
        l.line(11, true, &p).unwrap();
        assert!(root.join("failed/b").exists());
        let l = PublishedLedger::open(Some(root)).unwrap();
        assert!(l.unsettled.is_empty());
    }

    #[test]
    fn without_a_done_action_nothing_waits() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = PublishedLedger::open(Some(dir.path())).unwrap();
        l.published(key(1), 1, &dir.path().join("a"), None).unwrap();
        assert!(l.unsettled.is_empty());
        let l = PublishedLedger::open(Some(dir.path())).unwrap();
        assert!(l.unsettled.is_empty() && l.published.len() == 1);
    }
}
