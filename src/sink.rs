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
use crate::ledger::{Binding, Ledger, LedgerEntry, TAIL_BYTES};
use crate::model::{Document, Envelope, Line, Work};
use crate::telemetry::{self, Totals};
use anyhow::{Context, Result};
use async_channel::Receiver;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Where document lines go.
#[derive(Debug)]
pub enum Output {
    Stdout,
    File(FileOutput),
}

/// The output file, reopened at its path whenever the path stops naming it.
#[derive(Debug)]
pub struct FileOutput {
    path: PathBuf,
    file: File,
    /// Length after the last committed batch (as far as this process knows).
    len: u64,
    /// The last [`TAIL_BYTES`] bytes before `len`, for the ledger's tail checksum.
    tail: Vec<u8>,
}

impl Output {
    /// Opens the output file for appending, or stdout.
    pub fn open(path: Option<&Path>) -> Result<Output> {
        match path {
            None => Ok(Output::Stdout),
            Some(p) => Ok(Output::File(FileOutput::open(p)?)),
        }
    }
}

impl FileOutput {
    fn open(p: &Path) -> Result<FileOutput> {
        if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(p)
            .with_context(|| format!("cannot open output {}", p.display()))?;
        let mut out = FileOutput {
            path: p.to_path_buf(),
            file,
            len: 0,
            tail: Vec::new(),
        };
        out.resync()?;
        Ok(out)
    }

    /// Takes the open file's current length as committed and rereads its tail.
    fn resync(&mut self) -> Result<()> {
        self.len = self.file.metadata()?.len();
        let start = self.len.saturating_sub(TAIL_BYTES);
        self.tail = vec![0; (self.len - start) as usize];
        self.file
            .read_exact_at(&mut self.tail, start)
            .with_context(|| format!("cannot read output {}", self.path.display()))?;
        Ok(())
    }

    /// Makes sure the next lines go where the user looks: reopens the path when the open file
    /// was deleted or renamed away (or on `reopen`), and continues at the end of a file that
    /// was truncated in place (copytruncate). Returns what changed.
    fn check(&mut self, reopen: bool) -> Result<Option<&'static str>> {
        let open = self.file.metadata()?;
        let mut reason = match fs::metadata(&self.path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some("deleted"),
            Err(e) => {
                return Err(e).with_context(|| format!("cannot stat {}", self.path.display()))
            }
            Ok(m) if (m.dev(), m.ino()) != (open.dev(), open.ino()) => Some("replaced"),
            Ok(_) if reopen => Some("hangup"),
            Ok(_) => None,
        };
        if reason.is_some() {
            *self = FileOutput::open(&self.path)?;
        } else if open.len() != self.len {
            reason = Some(if open.len() < self.len {
                "truncated"
            } else {
                "grown"
            });
            self.resync()?;
        }
        Ok(reason)
    }

    fn binding(&self) -> Result<Binding> {
        let m = self.file.metadata()?;
        Ok(Binding {
            path: self.path.clone(),
            dev: m.dev(),
            ino: m.ino(),
        })
    }
}

/// Test hook: called before each durable write ("output", "errors"); `Some(n)` writes the
/// first `n` bytes and then fails with ENOSPC, as a full disk would.
pub type FaultHook = Box<dyn FnMut(&'static str) -> Option<usize> + Send>;

/// Writes and fsyncs `buf`, through the fault hook when there is one.
fn write_synced(
    file: &mut File,
    buf: &[u8],
    step: &'static str,
    fault: &mut Option<FaultHook>,
) -> std::io::Result<()> {
    if buf.is_empty() {
        return Ok(());
    }
    if let Some(n) = fault.as_mut().and_then(|h| h(step)) {
        file.write_all(&buf[..n.min(buf.len())])?;
        return Err(std::io::Error::from_raw_os_error(libc::ENOSPC));
    }
    file.write_all(buf)?;
    file.sync_data()
}

/// Returns whether `e` is a full disk or an exhausted quota: conditions to wait out.
fn is_disk_full(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::raw_os_error)
            .is_some_and(|code| code == libc::ENOSPC || code == libc::EDQUOT)
    })
}

/// First and longest wait between attempts while the disk is full.
const FULL_BACKOFF: (Duration, Duration) = (Duration::from_millis(50), Duration::from_secs(5));

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
    /// Bumped on SIGHUP: the output is reopened at its path before the next commit.
    pub hangup: Option<tokio::sync::watch::Receiver<u64>>,
    /// Fault injection for tests; `None` in the daemon.
    pub fault: Option<FaultHook>,
    /// Set once shutdown is asked for: a sink waiting for disk space gives its batch up
    /// (nothing of it committed, so a restart redoes it) instead of holding the exit.
    pub stop: Option<Arc<AtomicBool>>,
}

/// Ends a run whose batch was given up at shutdown: the files of that batch (and any still
/// queued) are not committed, so the ledger leaves them for the next start.
fn give_up(error: &anyhow::Error, report: SinkReport) -> SinkReport {
    metrics::gauge!(telemetry::SINK_BLOCKED).set(0.0);
    tracing::warn!(%error, "sink stopped without committing; those files are redone at the next start");
    report
}

/// The sink gave its batch up: shutdown came while the disk was full.
#[derive(Debug, thiserror::Error)]
#[error("shutdown while the disk was full: {files} files left uncommitted")]
pub struct StoppedWhileFull {
    pub files: usize,
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
                match self.commit(&mut batch, &mut report) {
                    Err(e) if e.is::<StoppedWhileFull>() => return Ok(give_up(&e, report)),
                    r => r?,
                }
            }
        }
        let mut rest = reorder.drain_all();
        if !rest.is_empty() {
            tracing::error!(
                held = rest.len(),
                "sequence gap at shutdown, committing held files"
            );
            match self.commit(&mut rest, &mut report) {
                Err(e) if e.is::<StoppedWhileFull>() => return Ok(give_up(&e, report)),
                r => r?,
            }
        }
        Ok(report)
    }

    /// Writes, commits and finishes one batch in order (`run` calls it for each batch it
    /// gathers; `benches/commit.rs` times it).
    pub fn commit(&mut self, batch: &mut Vec<Envelope>, report: &mut SinkReport) -> Result<()> {
        let started = std::time::Instant::now();
        let mut out_buf = Vec::with_capacity(batch.len() * 4096);
        let mut err_buf = Vec::new();
        // Offsets relative to the start of this batch, fixed up at each write attempt.
        let mut marks = Vec::with_capacity(batch.len());
        let now = crate::model::timestamp_now();
        for env in batch.iter() {
            match &env.work {
                Work::Doc(doc) => {
                    if !self.drops(doc) {
                        let line = Line::new(&env.file, Some(&doc.id), &now, doc.as_ref());
                        serde_json::to_writer(&mut out_buf, &line)?;
                        out_buf.push(b'\n');
                    }
                }
                Work::Failed(rec) => {
                    let line = Line::new(&env.file, None, &now, rec);
                    serde_json::to_writer(&mut out_buf, &line)?;
                    out_buf.push(b'\n');
                    if self.errors.is_some() {
                        serde_json::to_writer(&mut err_buf, &line)?;
                        err_buf.push(b'\n');
                    }
                }
                // Unfinished work cannot reach the sink: every stage maps it to Doc or Failed.
                Work::Ready | Work::Raw(_) => {}
            }
            marks.push((out_buf.len() as u64, err_buf.len() as u64));
        }
        let mut entries: Vec<LedgerEntry> = batch
            .iter_mut()
            .map(|env| LedgerEntry {
                key: env.file.key,
                path: env.file.path.display().to_string(),
                id: match &env.work {
                    Work::Doc(d) => Some(d.id.clone()),
                    _ => None,
                },
                failed: matches!(env.work, Work::Failed(_)),
                out: 0,
                err: 0,
                tail: None,
                dedup: env.index_entry.take(),
            })
            .collect();
        // A full disk is waited out: each attempt starts from the batch's first byte.
        let mut wait = FULL_BACKOFF.0;
        let mut blocked = false;
        loop {
            match self.attempt(&out_buf, &err_buf, &marks, &mut entries) {
                Ok(()) => break,
                Err(error) if is_disk_full(&error) && !matches!(self.output, Output::Stdout) => {
                    if !blocked {
                        tracing::warn!(error = %format!("{error:#}"), files = batch.len(), "disk full, sink waiting for space");
                        metrics::gauge!(telemetry::SINK_BLOCKED).set(1.0);
                        blocked = true;
                    }
                    if self.sleep_unless_stopped(wait) {
                        return Err(StoppedWhileFull { files: batch.len() }.into());
                    }
                    wait = (wait * 2).min(FULL_BACKOFF.1);
                }
                Err(error) => return Err(error),
            }
        }
        if blocked {
            tracing::info!(files = batch.len(), "disk space back, sink resumed");
            metrics::gauge!(telemetry::SINK_BLOCKED).set(0.0);
        }
        self.totals.mark_commit();
        crate::status::live().note_batch(batch);
        metrics::histogram!(telemetry::COMMIT_SECONDS).record(started.elapsed().as_secs_f64());
        metrics::histogram!(telemetry::BATCH_SIZE).record(batch.len() as f64);
        for env in batch.drain(..) {
            self.after_commit(env, report);
        }
        Ok(())
    }

    /// Sleeps `wait` in short steps; returns `true` as soon as shutdown is asked for.
    fn sleep_unless_stopped(&self, wait: Duration) -> bool {
        let stopped = || self.stop.as_ref().is_some_and(|s| s.load(Ordering::SeqCst));
        let deadline = std::time::Instant::now() + wait;
        loop {
            if stopped() {
                return true;
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return false;
            }
            std::thread::sleep(left.min(FULL_BACKOFF.0));
        }
    }

    /// One try at writing and committing a batch; on failure nothing of it stays on disk.
    fn attempt(
        &mut self,
        out_buf: &[u8],
        err_buf: &[u8],
        marks: &[(u64, u64)],
        entries: &mut [LedgerEntry],
    ) -> Result<()> {
        let reopen = self
            .hangup
            .as_mut()
            .is_some_and(|h| h.has_changed().unwrap_or(false));
        if reopen {
            self.hangup.as_mut().map(|h| h.borrow_and_update());
        }
        let err_base = self.errors.as_ref().map_or(0, |(_, len)| *len);
        let out_base = match &mut self.output {
            Output::Stdout => {
                let mut out = std::io::stdout().lock();
                out.write_all(out_buf)
                    .and_then(|()| out.flush())
                    .context("cannot write output")?;
                None
            }
            Output::File(f) => {
                let changed = f.check(reopen)?;
                if let Some(reason) = changed {
                    tracing::info!(path = %f.path.display(), reason, len = f.len, "output changed under the sink, continuing in the file at its path");
                }
                if let Some(ledger) = &mut self.ledger {
                    let b = f.binding()?;
                    if changed.is_some() || ledger.binding() != Some(&b) {
                        ledger.rebind(b, f.len, err_base, crc32fast::hash(&f.tail))?;
                    }
                }
                let base = f.len;
                if let Err(e) = write_synced(&mut f.file, out_buf, "output", &mut self.fault) {
                    let _ = f.file.set_len(base);
                    return Err(e).context("cannot write output");
                }
                Some(base)
            }
        };
        let rollback = |sink: &mut Sink| {
            if let (Output::File(f), Some(base)) = (&mut sink.output, out_base) {
                let _ = f.file.set_len(base);
            }
            if let Some((file, _)) = &mut sink.errors {
                let _ = file.set_len(err_base);
            }
        };
        if let Some((file, _)) = &mut self.errors {
            if let Err(e) = write_synced(file, err_buf, "errors", &mut self.fault) {
                rollback(self);
                return Err(e).context("cannot write errors.jsonl");
            }
        }
        let mut tail = Vec::new();
        if let Output::File(f) = &self.output {
            tail.extend_from_slice(&f.tail);
            tail.extend_from_slice(out_buf);
            tail.drain(..tail.len().saturating_sub(TAIL_BYTES as usize));
        }
        if let Some(ledger) = &mut self.ledger {
            for (e, (o, r)) in entries.iter_mut().zip(marks) {
                e.out = out_base.map_or(0, |b| b + o);
                e.err = err_base + r;
            }
            if let (Some(last), Some(_)) = (entries.last_mut(), out_base) {
                last.tail = Some(crc32fast::hash(&tail));
            }
            if let Err(e) = ledger.commit(entries) {
                rollback(self);
                return Err(e);
            }
        }
        if let Output::File(f) = &mut self.output {
            f.len += out_buf.len() as u64;
            f.tail = tail;
        }
        if let Some((_, len)) = &mut self.errors {
            *len += err_buf.len() as u64;
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

mod done;
#[cfg(test)]
mod tests;

pub use done::{apply_done, DonePolicy};
