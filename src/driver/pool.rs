//! Owns a stage's worker pool: long-lived stage threads that each record the file they work
//! on in a shared slot, and the async watchdog that turns a file past its time budget into its
//! error record, abandons that thread (its eventual result is discarded) and starts a
//! replacement within the runaway bound.
//!
//! One thread per worker, not one blocking task per file: handing every file to a fresh
//! blocking task and back cost a context switch and a timer per file, most of the spine's time.

use super::{failed, format_budget, panicked, Budget, CANCEL};
use crate::model::{Envelope, ReadyFile, SourceInfo};
use async_channel::{Receiver, Sender};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, OwnedSemaphorePermit};
use tokio::task::JoinHandle;

/// What a stage core made of one file.
#[derive(Debug)]
pub enum Step {
    /// Goes downstream now.
    Send(Envelope),
    /// Goes to the pool's `later` hook with a sender (e.g. a retry after a backoff, which must
    /// not hold a worker); the hook sends it downstream when it is done.
    Later(Envelope),
}

/// What one stage thread is doing.
// One per worker and moved only by replace: boxing the running file would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum State {
    Idle,
    Running {
        file: ReadyFile,
        source: SourceInfo,
        started: Instant,
        cancel: Arc<AtomicBool>,
        /// The thread's run-queue wait when the watchdog first saw this file, once it has.
        queued_at: Option<Duration>,
    },
    /// Its file ran past the budget and was reported; whatever the thread produces is dropped.
    Abandoned,
}

#[derive(Debug)]
struct SlotInner {
    state: State,
    /// The thread's way downstream; taken away when it is abandoned, so a runaway never keeps
    /// the next queue open.
    tx: Option<Sender<Envelope>>,
    /// Set once an abandoned thread has ended.
    ended: bool,
    /// The stage thread's kernel id, for its run-queue wait; 0 until the thread started.
    tid: i32,
    /// What an abandoned thread holds until it ends: a runaway slot and its file's bytes.
    permit: Option<OwnedSemaphorePermit>,
    pinned: Option<(Arc<crate::admission::Admission>, u64)>,
}

#[derive(Debug)]
struct Slot(Mutex<SlotInner>);

impl Slot {
    fn lock(&self) -> MutexGuard<'_, SlotInner> {
        // A panic never happens under this lock (cores run outside it).
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Called by an abandoned thread when its core returns: gives back what it held.
    fn end_runaway(&self) {
        let mut s = self.lock();
        s.ended = true;
        let (permit, pinned) = (s.permit.take(), s.pinned.take());
        drop(s);
        drop(permit);
        if let Some((admission, bytes)) = pinned {
            admission.unpin(bytes);
        }
    }
}

struct Pool<F, L> {
    name: &'static str,
    budget: Budget,
    rx: Receiver<Envelope>,
    f: F,
    later: L,
    slots: Mutex<Vec<Arc<Slot>>>,
    /// Workers not abandoned and not yet ended, counting replacements still to start.
    live: AtomicUsize,
    changed: Notify,
}

impl<F, L> Pool<F, L>
where
    F: Fn(Envelope) -> Step + Send + Sync + 'static,
    L: Fn(Envelope, Sender<Envelope>) + Send + Sync + 'static,
{
    fn slots(&self) -> MutexGuard<'_, Vec<Arc<Slot>>> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts one stage thread sending through `tx`; it counts as live already.
    fn start_worker(self: &Arc<Self>, tx: Sender<Envelope>) {
        let slot = Arc::new(Slot(Mutex::new(SlotInner {
            state: State::Idle,
            tx: Some(tx),
            ended: false,
            tid: 0,
            permit: None,
            pinned: None,
        })));
        self.slots().push(Arc::clone(&slot));
        let pool = Arc::clone(self);
        let spawned = std::thread::Builder::new()
            .name(format!("dropline-{}", self.name))
            .spawn(move || pool.work(slot));
        if let Err(error) = spawned {
            tracing::error!(stage = self.name, %error, "cannot start a stage thread");
            self.worker_ended();
        }
    }

    fn worker_ended(&self) {
        self.live.fetch_sub(1, Ordering::AcqRel);
        self.changed.notify_one();
    }

    fn forget(&self, slot: &Arc<Slot>) {
        self.slots().retain(|s| !Arc::ptr_eq(s, slot));
    }

    /// The stage thread's loop: one file at a time, recorded in `slot` for the watchdog.
    fn work(self: Arc<Self>, slot: Arc<Slot>) {
        slot.lock().tid = super::sched::current_tid();
        while let Ok(env) = self.rx.recv_blocking() {
            let cancel = Arc::new(AtomicBool::new(false));
            slot.lock().state = State::Running {
                file: env.file.clone(),
                source: env.source.clone(),
                started: Instant::now(),
                cancel: Arc::clone(&cancel),
                queued_at: None,
            };
            CANCEL.with(|c| *c.borrow_mut() = Some(cancel));
            let out = catch_unwind(AssertUnwindSafe(|| (self.f)(env)));
            CANCEL.with(|c| *c.borrow_mut() = None);
            let mut s = slot.lock();
            let (file, source, started) = match std::mem::replace(&mut s.state, State::Idle) {
                State::Running {
                    file,
                    source,
                    started,
                    ..
                } => (file, source, started),
                State::Idle | State::Abandoned => {
                    // The watchdog reported this file and started a replacement.
                    s.state = State::Abandoned;
                    drop(s);
                    slot.end_runaway();
                    return;
                }
            };
            let tx = s.tx.clone();
            drop(s);
            crate::telemetry::stage_done(self.name, started.elapsed().as_secs_f64());
            let Some(tx) = tx else { break };
            let sent = match out {
                Ok(Step::Send(env)) => tx.send_blocking(env).is_ok(),
                Ok(Step::Later(env)) => {
                    (self.later)(env, tx);
                    true
                }
                Err(_) => tx.send_blocking(panicked(self.name, file, source)).is_ok(),
            };
            if !sent {
                break;
            }
        }
        slot.lock().tx = None;
        self.forget(&slot);
        self.worker_ended();
    }

    /// Reports every file past its budget, abandons its thread and starts a replacement.
    async fn watch(self: Arc<Self>, tx: Sender<Envelope>) {
        let tick =
            (self.budget.timeout / 8).clamp(Duration::from_millis(5), Duration::from_millis(100));
        let mut interval = tokio::time::interval(tick);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = interval.tick() => {}
                _ = self.changed.notified() => {}
            }
            if self.live.load(Ordering::Acquire) == 0 {
                return;
            }
            let slots: Vec<Arc<Slot>> = self.slots().clone();
            for slot in slots {
                let Some((file, source)) = self.abandon_if_overdue(&slot) else {
                    continue;
                };
                self.forget(&slot);
                let error = format!("took longer than {}", format_budget(self.budget.timeout));
                let _ = tx.send(failed(file, source, self.name, error)).await;
                self.replace(slot, tx.clone());
            }
        }
    }

    /// Marks `slot` abandoned when its file is past the budget; returns that file.
    ///
    /// The budget counts the file's wall time less what its thread waited for a CPU: the
    /// watchdog notes the thread's run-queue wait when it first sees the file (files done
    /// within a tick never cost a look), and takes the wait since then off the wall time.
    fn abandon_if_overdue(&self, slot: &Slot) -> Option<(ReadyFile, SourceInfo)> {
        let mut s = slot.lock();
        let tid = s.tid;
        let State::Running {
            started, queued_at, ..
        } = &mut s.state
        else {
            return None;
        };
        if queued_at.is_none() {
            *queued_at = super::sched::run_queue_wait(tid);
        }
        let wall = started.elapsed();
        if wall < self.budget.timeout {
            return None;
        }
        let since = match (*queued_at, super::sched::run_queue_wait(tid)) {
            (Some(first), Some(now)) => now.saturating_sub(first),
            _ => Duration::ZERO,
        };
        if super::sched::worked(wall, since) < self.budget.timeout {
            return None;
        }
        let State::Running {
            file,
            source,
            started,
            cancel,
            ..
        } = std::mem::replace(&mut s.state, State::Abandoned)
        else {
            return None;
        };
        cancel.store(true, Ordering::Relaxed);
        s.tx = None;
        // Charged to the byte budget until the thread ends, though its record commits now.
        s.pinned = self
            .budget
            .admission
            .as_ref()
            .map(|a| (Arc::clone(a), a.pin(&file.key)));
        drop(s);
        tracing::warn!(
            stage = self.name,
            path = %file.path.display(),
            budget_ms = self.budget.timeout.as_millis() as u64,
            "file took longer than its time budget, moving on"
        );
        crate::telemetry::stage_done(self.name, started.elapsed().as_secs_f64());
        Some((file, source))
    }

    /// Starts a thread in place of the abandoned one once a runaway slot is free; the
    /// abandoned thread holds the slot until it ends, so stage threads stay bounded.
    fn replace(self: &Arc<Self>, abandoned: Arc<Slot>, tx: Sender<Envelope>) {
        let pool = Arc::clone(self);
        tokio::spawn(async move {
            // The semaphore is never closed; a failed acquire would only mean no bound.
            let permit = Arc::clone(&pool.budget.runaways).acquire_owned().await.ok();
            let mut s = abandoned.lock();
            if !s.ended {
                s.permit = permit;
            }
            drop(s);
            pool.start_worker(tx);
        });
    }
}

/// Spawns a stage of `workers` threads applying `f` to every envelope from `rx` under
/// `budget`, and its watchdog; a [`Step::Later`] goes to `later` with a sender. Returns the
/// watchdog's handle: it ends after the last worker, dropping the stage's last sender.
pub fn spawn_pool<F, L>(
    name: &'static str,
    workers: usize,
    rx: Receiver<Envelope>,
    tx: Sender<Envelope>,
    budget: &Budget,
    f: F,
    later: L,
) -> JoinHandle<()>
where
    F: Fn(Envelope) -> Step + Send + Sync + 'static,
    L: Fn(Envelope, Sender<Envelope>) + Send + Sync + 'static,
{
    let workers = workers.max(1);
    let pool = Arc::new(Pool {
        name,
        budget: budget.clone(),
        rx,
        f,
        later,
        slots: Mutex::new(Vec::with_capacity(workers)),
        live: AtomicUsize::new(workers),
        changed: Notify::new(),
    });
    for _ in 0..workers {
        pool.start_worker(tx.clone());
    }
    tokio::spawn(pool.watch(tx))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::MAX_RUNAWAY_THREADS;
    use crate::model::{FileKey, Work};

    fn env(seq: u64) -> Envelope {
        crate::watcher::envelope(seq, format!("f{seq}").into(), FileKey::default())
    }

    fn outcome(e: &Envelope) -> (u64, Option<String>) {
        let err = match &e.work {
            Work::Failed(r) => Some(r.error.clone()),
            _ => None,
        };
        (e.file.seq, err)
    }

    /// Files 0..=4 ignore cancellation and block until released: the first four runaways take
    /// every runaway slot, the fifth is reported but gets no replacement thread, so the stage
    /// waits instead of spawning; once released, later files flow on a replacement.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn runaways_are_reported_bounded_and_later_files_flow() {
        let (tx_in, rx_in) = async_channel::bounded(16);
        let (tx_out, rx_out) = async_channel::bounded(16);
        let budget = Budget::new(Duration::from_millis(100));
        let release = Arc::new(AtomicBool::new(false));
        let (inside, peak) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (r, i, p) = (release.clone(), inside.clone(), peak.clone());
        let step = move |e: Envelope| {
            let now = i.fetch_add(1, Ordering::SeqCst) + 1;
            p.fetch_max(now, Ordering::SeqCst);
            if e.file.seq < 5 {
                while !r.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
            i.fetch_sub(1, Ordering::SeqCst);
            Step::Send(e)
        };
        let watchdog = spawn_pool("test", 1, rx_in, tx_out, &budget, step, |_, _| {});
        for s in 0..8 {
            tx_in.send(env(s)).await.unwrap();
        }
        drop(tx_in);
        let mut got = Vec::new();
        for _ in 0..5 {
            got.push(outcome(&rx_out.recv().await.unwrap()));
        }
        let late = "took longer than 100ms".to_string();
        let want: Vec<_> = (0..5).map(|s| (s, Some(late.clone()))).collect();
        assert_eq!(got, want);
        // Every runaway slot is taken: nothing else runs until one frees.
        let held = tokio::time::timeout(Duration::from_millis(400), rx_out.recv()).await;
        assert!(
            held.is_err(),
            "a file flowed past the runaway bound: {held:?}"
        );
        assert_eq!(budget.runaways(), MAX_RUNAWAY_THREADS);
        assert_eq!(peak.load(Ordering::SeqCst), 1 + MAX_RUNAWAY_THREADS);
        release.store(true, Ordering::SeqCst);
        let mut rest = Vec::new();
        while let Ok(e) = rx_out.recv().await {
            rest.push(outcome(&e));
        }
        assert_eq!(rest, vec![(5, None), (6, None), (7, None)]);
        watchdog.await.unwrap();
        for _ in 0..100 {
            if budget.runaways() == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(budget.runaways(), 0);
    }

    /// Pins the calling thread to CPU `cpu`.
    fn pin_to(cpu: usize) {
        // SAFETY: an all-zero cpu_set_t is the empty set; the calls write only the local set.
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(cpu, &mut set);
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
        }
    }

    /// A file whose thread shares its CPU with two spinning threads runs past the budget in
    /// wall time while working less than it: it is not a runaway. The core spins until that
    /// holds by its own schedstat (a third of the CPU makes it hold after ~1.5x the budget).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn waiting_for_a_cpu_does_not_use_up_the_budget() {
        use crate::driver::sched::{current_tid, run_queue_wait, worked};
        if run_queue_wait(current_tid()).is_none() {
            return; // no schedstat: the budget is wall time
        }
        let budget = Budget::new(Duration::from_millis(200));
        let stop = Arc::new(AtomicBool::new(false));
        let spinners: Vec<_> = (0..2)
            .map(|_| {
                let stop = Arc::clone(&stop);
                std::thread::spawn(move || {
                    pin_to(0);
                    while !stop.load(Ordering::Relaxed) {
                        std::hint::spin_loop();
                    }
                })
            })
            .collect();
        let step = |e: Envelope| {
            pin_to(0);
            let (start, queued) = (Instant::now(), run_queue_wait(current_tid()).unwrap());
            loop {
                let wall = start.elapsed();
                let waited = run_queue_wait(current_tid()).unwrap() - queued;
                let over = wall >= Duration::from_millis(300);
                if (over && worked(wall, waited) <= Duration::from_millis(120))
                    || wall > Duration::from_secs(5)
                {
                    break;
                }
                std::hint::spin_loop();
            }
            Step::Send(e)
        };
        let (tx_in, rx_in) = async_channel::bounded(4);
        let (tx_out, rx_out) = async_channel::bounded(4);
        spawn_pool("test", 1, rx_in, tx_out, &budget, step, |_, _| {});
        tx_in.send(env(0)).await.unwrap();
        drop(tx_in);
        let got = outcome(&rx_out.recv().await.unwrap());
        stop.store(true, Ordering::Relaxed);
        for t in spinners {
            t.join().unwrap();
        }
        assert_eq!(got, (0, None));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panicking_core_becomes_an_error_record() {
        let (tx_in, rx_in) = async_channel::bounded(4);
        let (tx_out, rx_out) = async_channel::bounded(4);
        let budget = Budget::new(Duration::from_secs(5));
        let step = |e: Envelope| {
            assert!(e.file.seq != 1, "boom");
            Step::Send(e)
        };
        spawn_pool("test", 2, rx_in, tx_out, &budget, step, |_, _| {});
        for s in 0..3 {
            tx_in.send(env(s)).await.unwrap();
        }
        drop(tx_in);
        let mut got = Vec::new();
        while let Ok(e) = rx_out.recv().await {
            got.push(outcome(&e));
        }
        got.sort();
        let boom = "internal error: the stage panicked on this file".to_string();
        assert_eq!(got, vec![(0, None), (1, Some(boom)), (2, None)]);
    }
}
