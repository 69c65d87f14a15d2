//! Owns the one generic stage driver: bounded channel in, bounded channel out, N workers that
//! run each file on a blocking thread (stage cores are CPU work and stay off the async
//! reactor) under a per-file time budget, and the reorder buffer that restores readiness order
//! where a stage or the sink needs it.

use crate::model::{Envelope, ErrorRecord, ReadyFile, SourceInfo, Work};
use async_channel::{Receiver, Sender};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

mod pool;
pub mod sched;

/// Threads whose file ran past its budget and that are still running, across all stages.
///
/// A synchronous core on a blocking thread cannot be killed: at the deadline the driver emits
/// the file's error record and moves on, and the thread is left to finish (its result is
/// discarded; cores that read, like the read stage, poll [`cancelled`] and stop early). Each
/// such runaway holds one of these slots until it ends; a worker whose file ran away waits for
/// a free slot before taking the next file, so at most the stages' workers plus this many
/// stage threads ever exist, and when every slot is taken the stage slows down instead of
/// spawning without bound.
pub const MAX_RUNAWAY_THREADS: usize = 4;

/// The per-file time budget every stage worker enforces.
#[derive(Debug, Clone)]
pub struct Budget {
    pub timeout: Duration,
    runaways: Arc<Semaphore>,
    /// Keeps a runaway file's bytes charged to the in-flight byte budget until its thread ends.
    admission: Option<Arc<crate::admission::Admission>>,
}

impl Budget {
    /// A budget of `timeout` per file and stage, with [`MAX_RUNAWAY_THREADS`] runaway slots.
    pub fn new(timeout: Duration) -> Self {
        Self {
            timeout,
            runaways: Arc::new(Semaphore::new(MAX_RUNAWAY_THREADS)),
            admission: None,
        }
    }

    /// Charges runaway files' bytes to `admission`'s byte budget until their threads end.
    pub fn with_admission(mut self, admission: Arc<crate::admission::Admission>) -> Self {
        self.admission = Some(admission);
        self
    }

    /// Returns the number of runaway threads still running.
    pub fn runaways(&self) -> usize {
        MAX_RUNAWAY_THREADS - self.runaways.available_permits()
    }
}

thread_local! {
    pub(crate) static CANCEL: RefCell<Option<Arc<AtomicBool>>> = const { RefCell::new(None) };
}

/// Returns whether the file the current stage thread works on has spent its time budget; long
/// loops in stage cores may poll it and give up early (their result is discarded anyway).
pub fn cancelled() -> bool {
    CANCEL.with(|c| {
        c.borrow()
            .as_ref()
            .is_some_and(|f| f.load(Ordering::Relaxed))
    })
}

/// How a budgeted job ended.
#[derive(Debug)]
pub enum Outcome<T> {
    Done(T),
    /// The job ran past the budget; its thread was left to finish in a runaway slot.
    TimedOut,
    Panicked,
}

/// Runs `job` on a blocking thread under `budget`, timing it as stage `name`.
pub async fn run_budgeted<T, J>(
    name: &'static str,
    budget: &Budget,
    file: &ReadyFile,
    job: J,
) -> Outcome<T>
where
    T: Send + 'static,
    J: FnOnce() -> T + Send + 'static,
{
    let cancel = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&cancel);
    let started = Instant::now();
    let mut handle = tokio::task::spawn_blocking(move || {
        CANCEL.with(|c| *c.borrow_mut() = Some(flag));
        let out = catch_unwind(AssertUnwindSafe(job));
        CANCEL.with(|c| *c.borrow_mut() = None);
        out
    });
    let out = match tokio::time::timeout(budget.timeout, &mut handle).await {
        Ok(Ok(Ok(v))) => Outcome::Done(v),
        Ok(_) => Outcome::Panicked,
        Err(_elapsed) => {
            cancel.store(true, Ordering::Relaxed);
            tracing::warn!(
                stage = name,
                path = %file.path.display(),
                budget_ms = budget.timeout.as_millis() as u64,
                "file took longer than its time budget, moving on"
            );
            // The semaphore is never closed; a failed acquire would only mean no bound.
            let pinned = budget
                .admission
                .as_ref()
                .map(|a| (Arc::clone(a), a.pin(&file.key)));
            let slot = Arc::clone(&budget.runaways).acquire_owned().await.ok();
            tokio::spawn(async move {
                let _ = handle.await;
                drop(slot);
                if let Some((admission, bytes)) = pinned {
                    admission.unpin(bytes);
                }
            });
            Outcome::TimedOut
        }
    };
    crate::telemetry::stage_done(name, started.elapsed().as_secs_f64());
    out
}

/// Debug builds only: whether `path` contains the value of environment variable `var` (not
/// empty), the fault hooks tests use to make one file stall or fail. Release builds never read
/// the variable.
pub fn debug_hook(var: &str, path: &str) -> bool {
    cfg!(debug_assertions)
        && std::env::var(var).is_ok_and(|marker| !marker.is_empty() && path.contains(&marker))
}

/// Returns the error record of a file whose `stage` could not finish it.
pub fn failed(file: ReadyFile, source: SourceInfo, stage: &str, error: String) -> Envelope {
    Envelope {
        file,
        source: source.clone(),
        work: Work::Failed(ErrorRecord {
            kind: "error".into(),
            source,
            stage: stage.into(),
            error,
        }),
        index_entry: None,
        prepared: None,
    }
}

/// Renders a budget the way the config writes it: `10s`, `250ms`.
pub fn format_budget(d: Duration) -> String {
    if d.subsec_millis() == 0 && d.as_secs() > 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// Spawns `workers` workers applying `f` to every envelope from `rx` and sending the result to
/// `tx`. Each file runs on a long-lived stage thread under `budget`: past it the file becomes
/// an error record ("took longer than ...") and the stage moves on. Workers end when `rx` is
/// closed and drained, or when `tx` is closed; the stage's watchdog ends after the last of
/// them and drops the last sender, which closes the next stage's queue.
pub fn spawn_stage<F>(
    name: &'static str,
    workers: usize,
    rx: Receiver<Envelope>,
    tx: Sender<Envelope>,
    budget: &Budget,
    f: F,
) -> Vec<JoinHandle<()>>
where
    F: Fn(Envelope) -> Envelope + Send + Sync + 'static,
{
    let step = move |e| Step::Send(f(e));
    vec![pool::spawn_pool(
        name,
        workers,
        rx,
        tx,
        budget,
        step,
        |_, _| {},
    )]
}

pub use pool::{spawn_pool, Step};

pub(crate) fn panicked(name: &'static str, file: ReadyFile, source: SourceInfo) -> Envelope {
    tracing::error!(stage = name, path = %file.path.display(), "stage panicked on a file");
    let error = "internal error: the stage panicked on this file".to_string();
    failed(file, source, name, error)
}

/// Spawns one blocking worker that applies `f` in readiness (sequence) order: for stateful
/// cores whose decisions must be deterministic for a given arrival order.
pub fn spawn_ordered_stage<F>(
    name: &'static str,
    rx: Receiver<Envelope>,
    tx: Sender<Envelope>,
    mut f: F,
) -> JoinHandle<()>
where
    F: FnMut(Envelope) -> Envelope + Send + 'static,
{
    tokio::task::spawn_blocking(move || {
        let mut reorder = Reorder::default();
        let mut ready = Vec::new();
        while let Ok(env) = rx.recv_blocking() {
            reorder.push(env, &mut ready);
            for env in ready.drain(..) {
                let out = guarded(name, env, &mut f);
                if tx.send_blocking(out).is_err() {
                    return;
                }
            }
        }
        // Closed: a gap means an envelope was lost upstream; never hold the rest back for it.
        for env in reorder.drain_all() {
            let out = guarded(name, env, &mut f);
            if tx.send_blocking(out).is_err() {
                return;
            }
        }
    })
}

/// Runs `f` on one envelope, timing it; a panic becomes an error record, never a lost file.
fn guarded<F>(name: &'static str, env: Envelope, f: F) -> Envelope
where
    F: FnOnce(Envelope) -> Envelope,
{
    let file = env.file.clone();
    let source = env.source.clone();
    let started = Instant::now();
    let out = catch_unwind(AssertUnwindSafe(|| f(env)));
    crate::telemetry::stage_done(name, started.elapsed().as_secs_f64());
    out.unwrap_or_else(|_| panicked(name, file, source))
}

/// Restores sequence order; holds at most the envelopes that overtook a slower one, which the
/// in-flight cap bounds.
#[derive(Debug, Default)]
pub struct Reorder {
    next: u64,
    pending: BTreeMap<u64, Envelope>,
}

impl Reorder {
    /// Adds `env` and moves every envelope now in order to `ready`.
    pub fn push(&mut self, env: Envelope, ready: &mut Vec<Envelope>) {
        self.pending.insert(env.file.seq, env);
        while let Some(env) = self.pending.remove(&self.next) {
            self.next += 1;
            ready.push(env);
        }
    }

    /// Returns whatever is still held, in order, skipping gaps.
    pub fn drain_all(&mut self) -> Vec<Envelope> {
        let held = std::mem::take(&mut self.pending);
        if let Some((&last, _)) = held.iter().next_back() {
            self.next = last + 1;
        }
        held.into_values().collect()
    }

    /// Returns the number of envelopes waiting for an earlier one.
    pub fn held(&self) -> usize {
        self.pending.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::FileKey;

    fn env(seq: u64) -> Envelope {
        Envelope {
            file: ReadyFile {
                seq,
                path: format!("{seq}").into(),
                key: FileKey {
                    dev: 0,
                    ino: seq,
                    size: 0,
                    mtime_ns: 0,
                    fp: 0,
                },
                ready_at: Instant::now(),
            },
            source: SourceInfo::named(format!("{seq}"), 0),
            work: Work::Ready,
            index_entry: None,
            prepared: None,
        }
    }

    #[test]
    fn reorder_releases_in_sequence() {
        let mut r = Reorder::default();
        let mut out = Vec::new();
        r.push(env(2), &mut out);
        r.push(env(1), &mut out);
        assert!(out.is_empty());
        assert_eq!(r.held(), 2);
        r.push(env(0), &mut out);
        let seqs: Vec<u64> = out.iter().map(|e| e.file.seq).collect();
        assert_eq!(seqs, vec![0, 1, 2]);
    }

    #[tokio::test]
    async fn panicking_core_yields_error_record_and_order_holds() {
        let (tx_in, rx_in) = async_channel::bounded(4);
        let (tx_out, rx_out) = async_channel::bounded(4);
        let handle = spawn_ordered_stage("test", rx_in, tx_out, |e: Envelope| {
            assert!(e.file.seq != 1, "boom");
            e
        });
        for s in [1, 0, 2] {
            tx_in.send(env(s)).await.unwrap();
        }
        drop(tx_in);
        let mut got = Vec::new();
        while let Ok(e) = rx_out.recv().await {
            got.push((e.file.seq, matches!(e.work, Work::Failed(_))));
        }
        handle.await.unwrap();
        assert_eq!(got, vec![(0, false), (1, true), (2, false)]);
    }
}

#[cfg(test)]
mod budget_tests {
    use super::*;
    use crate::model::FileKey;

    fn env(seq: u64) -> Envelope {
        crate::watcher::envelope(seq, format!("f{seq}").into(), FileKey::default())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_runaway_file_becomes_an_error_and_later_files_flow() {
        let (tx_in, rx_in) = async_channel::bounded(8);
        let (tx_out, rx_out) = async_channel::bounded(8);
        let budget = Budget::new(Duration::from_millis(200));
        spawn_stage("test", 1, rx_in, tx_out, &budget, |e: Envelope| {
            if e.file.seq == 0 {
                // Polls the flag like a cooperative core; gives up once cancelled.
                while !cancelled() {
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
            e
        });
        for s in 0..3 {
            tx_in.send(env(s)).await.unwrap();
        }
        drop(tx_in);
        let mut got = Vec::new();
        while let Ok(e) = rx_out.recv().await {
            let err = match &e.work {
                Work::Failed(r) => Some((r.stage.clone(), r.error.clone())),
                _ => None,
            };
            got.push((e.file.seq, err));
        }
        assert_eq!(
            got,
            vec![
                (0, Some(("test".into(), "took longer than 200ms".into()))),
                (1, None),
                (2, None)
            ]
        );
        // The cancelled thread ends and gives its slot back.
        for _ in 0..100 {
            if budget.runaways() == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(budget.runaways(), 0);
    }

    #[test]
    fn budgets_render_like_the_config() {
        assert_eq!(format_budget(Duration::from_secs(10)), "10s");
        assert_eq!(format_budget(Duration::from_millis(250)), "250ms");
    }
}
