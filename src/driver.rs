//! Owns the one generic stage driver: bounded channel in, bounded channel out, N workers on
//! blocking threads (stage cores are CPU work and stay off the async reactor), and the reorder
//! buffer that restores readiness order where a stage or the sink needs it.

use crate::model::{Envelope, ErrorRecord, Work};
use crate::telemetry::STAGE_SECONDS;
use async_channel::{Receiver, Sender};
use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;
use tokio::task::JoinHandle;

/// Spawns `workers` blocking workers applying `f` to every envelope from `rx` and sending the
/// result to `tx`. Workers end when `rx` is closed and drained, or when `tx` is closed; the
/// last worker to end drops the last sender, which closes the next stage's queue.
pub fn spawn_stage<F>(
    name: &'static str,
    workers: usize,
    rx: Receiver<Envelope>,
    tx: Sender<Envelope>,
    f: F,
) -> Vec<JoinHandle<()>>
where
    F: Fn(Envelope) -> Envelope + Send + Sync + Clone + 'static,
{
    (0..workers)
        .map(|_| {
            let (rx, tx, f) = (rx.clone(), tx.clone(), f.clone());
            tokio::task::spawn_blocking(move || {
                while let Ok(env) = rx.recv_blocking() {
                    let out = guarded(name, env, &f);
                    if tx.send_blocking(out).is_err() {
                        break;
                    }
                }
            })
        })
        .collect()
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
    metrics::histogram!(STAGE_SECONDS, "stage" => name).record(started.elapsed().as_secs_f64());
    out.unwrap_or_else(|_| {
        tracing::error!(stage = name, path = %file.path.display(), "stage panicked on a file");
        Envelope {
            file,
            source: source.clone(),
            work: Work::Failed(ErrorRecord {
                kind: "error".into(),
                source,
                stage: name.into(),
                error: "internal error: the stage panicked on this file".into(),
            }),
            index_entry: None,
            prepared: None,
        }
    })
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
    use crate::model::{FileKey, ReadyFile, SourceInfo};

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
                },
                ready_at: Instant::now(),
            },
            source: SourceInfo {
                path: format!("{seq}"),
                bytes: 0,
                format: None,
                compression: None,
                encoding: None,
            },
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
