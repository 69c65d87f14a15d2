//! Owns the sink: restores readiness order, batches, writes JSON Lines, commits to the ledger,
//! then runs the done-action and counts. One blocking thread; the only writer of the output.
//!
//! Order of a commit: output lines written and fsynced, error records written and fsynced,
//! ledger entries appended and fsynced (the commit point), then done-actions, metrics and
//! admission release. A crash before the commit point is cut back at start-up.

use crate::admission::Admission;
use crate::config::DoneAction;
use crate::dedup::OnDuplicate;
use crate::driver::Reorder;
use crate::ledger::{Ledger, LedgerEntry};
use crate::model::{Document, Envelope, Work};
use crate::telemetry::{self, Totals};
use anyhow::{Context, Result};
use async_channel::Receiver;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Where document lines go.
#[derive(Debug)]
pub enum Output {
    Stdout,
    File { file: File, len: u64 },
}

impl Output {
    /// Opens the output file for appending, or stdout.
    pub fn open(path: Option<&Path>) -> Result<Output> {
        match path {
            None => Ok(Output::Stdout),
            Some(p) => {
                if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
                    fs::create_dir_all(dir)?;
                }
                let file = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .with_context(|| format!("cannot open output {}", p.display()))?;
                let len = file.metadata()?.len();
                Ok(Output::File { file, len })
            }
        }
    }

    fn write_durable(&mut self, buf: &[u8]) -> std::io::Result<u64> {
        match self {
            Output::Stdout => {
                let mut out = std::io::stdout().lock();
                out.write_all(buf)?;
                out.flush()?;
                Ok(0)
            }
            Output::File { file, len } => {
                if !buf.is_empty() {
                    file.write_all(buf)?;
                    file.sync_data()?;
                    *len += buf.len() as u64;
                }
                Ok(*len)
            }
        }
    }
}

/// What happens to files after commit; `None` of the dirs in `process` mode.
#[derive(Debug, Clone)]
pub struct DonePolicy {
    pub action: DoneAction,
    pub done_dir: PathBuf,
    pub failed_dir: PathBuf,
}

/// The sink's configuration and durable handles.
pub struct Sink {
    pub output: Output,
    /// `state.dir/errors.jsonl` and its committed length.
    pub errors: Option<(File, u64)>,
    pub ledger: Option<Ledger>,
    pub done: Option<DonePolicy>,
    pub on_duplicate: OnDuplicate,
    pub batch_max: usize,
    pub admission: Arc<Admission>,
    pub totals: Arc<Totals>,
}

/// Counts of what the sink committed.
#[derive(Debug, Default, Clone, Copy)]
pub struct SinkReport {
    pub documents: u64,
    pub errors: u64,
}

impl Sink {
    /// Runs until `rx` is closed and drained; an `Err` means the output or ledger broke.
    pub fn run(mut self, rx: Receiver<Envelope>) -> Result<SinkReport> {
        let mut report = SinkReport::default();
        let mut reorder = Reorder::default();
        let mut batch = Vec::with_capacity(self.batch_max);
        while let Ok(env) = rx.recv_blocking() {
            reorder.push(env, &mut batch);
            // Take whatever else is already queued: batches grow while an fsync is running.
            while batch.len() < self.batch_max {
                match rx.try_recv() {
                    Ok(env) => reorder.push(env, &mut batch),
                    Err(_) => break,
                }
            }
            if !batch.is_empty() {
                self.commit(&mut batch, &mut report)?;
            }
        }
        let mut rest = reorder.drain_all();
        if !rest.is_empty() {
            tracing::error!(
                held = rest.len(),
                "sequence gap at shutdown, committing held files"
            );
            self.commit(&mut rest, &mut report)?;
        }
        Ok(report)
    }

    fn commit(&mut self, batch: &mut Vec<Envelope>, report: &mut SinkReport) -> Result<()> {
        let started = std::time::Instant::now();
        let mut out_buf = Vec::with_capacity(batch.len() * 4096);
        let mut err_buf = Vec::new();
        // Offsets relative to the start of this batch, fixed up after the writes.
        let mut marks = Vec::with_capacity(batch.len());
        for env in batch.iter() {
            match &env.work {
                Work::Doc(doc) => {
                    if !self.drops(doc) {
                        serde_json::to_writer(&mut out_buf, doc.as_ref())?;
                        out_buf.push(b'\n');
                    }
                }
                Work::Failed(rec) => {
                    serde_json::to_writer(&mut out_buf, rec)?;
                    out_buf.push(b'\n');
                    if self.errors.is_some() {
                        serde_json::to_writer(&mut err_buf, rec)?;
                        err_buf.push(b'\n');
                    }
                }
                // Unfinished work cannot reach the sink: every stage maps it to Doc or Failed.
                Work::Ready | Work::Raw(_) => {}
            }
            marks.push((out_buf.len() as u64, err_buf.len() as u64));
        }
        let out_base = match &self.output {
            Output::File { len, .. } => *len,
            Output::Stdout => 0,
        };
        self.output
            .write_durable(&out_buf)
            .context("cannot write output")?;
        let mut err_base = 0;
        if let Some((file, len)) = &mut self.errors {
            err_base = *len;
            if !err_buf.is_empty() {
                file.write_all(&err_buf)
                    .and_then(|()| file.sync_data())
                    .context("cannot write errors.jsonl")?;
                *len += err_buf.len() as u64;
            }
        }
        if let Some(ledger) = &mut self.ledger {
            let stdout = matches!(self.output, Output::Stdout);
            let entries: Vec<LedgerEntry> = batch
                .iter_mut()
                .zip(&marks)
                .map(|(env, (o, e))| LedgerEntry {
                    key: env.file.key,
                    path: env.file.path.display().to_string(),
                    id: match &env.work {
                        Work::Doc(d) => Some(d.id.clone()),
                        _ => None,
                    },
                    failed: matches!(env.work, Work::Failed(_)),
                    out: if stdout { 0 } else { out_base + o },
                    err: err_base + e,
                    dedup: env.index_entry.take(),
                })
                .collect();
            ledger.commit(&entries)?;
        }
        self.totals.mark_commit();
        metrics::histogram!(telemetry::COMMIT_SECONDS).record(started.elapsed().as_secs_f64());
        metrics::histogram!(telemetry::BATCH_SIZE).record(batch.len() as f64);
        for env in batch.drain(..) {
            self.after_commit(env, report);
        }
        Ok(())
    }

    /// Returns whether `doc` is a duplicate that `on_duplicate` commits without writing (exact
    /// and near duplicates with `drop`, rewrites too with `drop_rewrites`; never a reuse).
    fn drops(&self, doc: &Document) -> bool {
        doc.dedup
            .as_ref()
            .is_some_and(|d| self.on_duplicate.drops(d.status))
    }

    /// Runs the done-action and counts one committed file.
    fn after_commit(&self, env: Envelope, report: &mut SinkReport) {
        let failed = matches!(env.work, Work::Failed(_));
        match &env.work {
            Work::Doc(doc) => {
                report.documents += 1;
                let status = doc.dedup.as_ref().map_or("unknown", |d| d.status.as_str());
                if self.drops(doc) {
                    metrics::counter!(telemetry::DOCUMENTS_DROPPED).increment(1);
                }
                metrics::counter!(telemetry::DOCUMENTS_EMITTED, "status" => status).increment(1);
                for e in doc.entities.iter().flatten() {
                    metrics::counter!(telemetry::ENTITIES, "label" => entity_label(&e.label))
                        .increment(1);
                }
            }
            Work::Failed(rec) => {
                report.errors += 1;
                self.totals.failed.fetch_add(1, Ordering::Relaxed);
                metrics::counter!(telemetry::FILES_FAILED, "stage" => stage_label(&rec.stage))
                    .increment(1);
            }
            Work::Ready | Work::Raw(_) => {}
        }
        self.totals.files.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(telemetry::FILES_PROCESSED).increment(1);
        metrics::histogram!(telemetry::END_TO_END_SECONDS)
            .record(env.file.ready_at.elapsed().as_secs_f64());
        let mut remember = true;
        if let Some(policy) = &self.done {
            remember = policy.action == DoneAction::Leave;
            if let Err(error) = apply_done(policy, &env.file.path, failed) {
                tracing::warn!(path = %env.file.path.display(), %error, "done-action failed");
                remember = true;
            }
        }
        self.admission.committed(env.file.key, failed, remember);
    }
}

/// Runs the done-action on one committed file.
pub fn apply_done(policy: &DonePolicy, path: &Path, failed: bool) -> std::io::Result<()> {
    match (policy.action, failed) {
        (DoneAction::Leave, _) => Ok(()),
        (DoneAction::Delete, false) => match fs::remove_file(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            r => r,
        },
        (DoneAction::Move, _) | (DoneAction::Delete, true) => {
            let dir = if failed {
                &policy.failed_dir
            } else {
                &policy.done_dir
            };
            move_into(path, dir)
        }
    }
}

/// Moves `path` into `dir` under its own name, adding `.1`, `.2`, ... when the name is taken.
fn move_into(path: &Path, dir: &Path) -> std::io::Result<()> {
    if fs::symlink_metadata(path).is_err() {
        return Ok(()); // vanished files have nothing left to move
    }
    fs::create_dir_all(dir)?;
    let name = path.file_name().unwrap_or_default();
    let mut target = dir.join(name);
    let mut n = 0;
    while fs::symlink_metadata(&target).is_ok() {
        n += 1;
        let mut alt = name.to_os_string();
        alt.push(format!(".{n}"));
        target = dir.join(alt);
    }
    fs::rename(path, target)
}

/// Maps a model label to the fixed label set of the entities counter.
fn entity_label(label: &str) -> &'static str {
    const LABELS: &[&str] = &[
        "PER", "ORG", "LOC", "MISC", "DATE", "TIME", "MONEY", "PERCENT", "QUANTITY", "CARDINAL",
        "ORDINAL",
    ];
    LABELS
        .iter()
        .find(|l| **l == label)
        .copied()
        .unwrap_or("OTHER")
}

fn stage_label(stage: &str) -> &'static str {
    const STAGES: &[&str] = &["read", "strip", "dedup", "entities"];
    STAGES
        .iter()
        .find(|s| **s == stage)
        .copied()
        .unwrap_or("internal")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn move_keeps_both_files_on_name_clash() {
        let dir = tempfile::tempdir().unwrap();
        let done = dir.path().join("done");
        for body in ["one", "two"] {
            let p = dir.path().join("a.txt");
            fs::write(&p, body).unwrap();
            move_into(&p, &done).unwrap();
            assert!(!p.exists());
        }
        assert_eq!(fs::read_to_string(done.join("a.txt")).unwrap(), "one");
        assert_eq!(fs::read_to_string(done.join("a.txt.1")).unwrap(), "two");
    }

    #[test]
    fn failed_files_go_to_failed_dir_even_with_delete() {
        let dir = tempfile::tempdir().unwrap();
        let policy = DonePolicy {
            action: DoneAction::Delete,
            done_dir: dir.path().join("done"),
            failed_dir: dir.path().join("failed"),
        };
        let p = dir.path().join("bad.bin");
        fs::write(&p, b"\0").unwrap();
        apply_done(&policy, &p, true).unwrap();
        assert!(dir.path().join("failed/bad.bin").exists());
    }
}
