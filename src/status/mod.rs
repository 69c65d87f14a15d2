//! Owns the live view of a running daemon: readiness, the bounded rings of recent samples,
//! latencies, documents and stories behind the status page and `/api/status`, sd-notify, and
//! the HTTP listener (`server`) that serves them beside `/metrics`.
//!
//! Everything here is bounded: a sample per second for ten minutes, the latencies of the last
//! `LATENCY_CAP` commits, the last `RECENT_CAP` documents, and at most `STORY_CAP` stories seen
//! in the last hour.

mod server;

pub use server::{serve, start};

use crate::model::{Envelope, Work};
use crate::telemetry::{Totals, STAGES};
use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Samples kept: one a second for ten minutes.
const SAMPLE_CAP: usize = 600;
/// Commit latencies kept for the percentiles.
const LATENCY_CAP: usize = 50_000;
/// The window the latency percentiles cover.
const LATENCY_WINDOW: Duration = Duration::from_secs(60);
/// The clock a commit latency is stamped with: tenths of a second since start-up (a `u32`
/// lasts 13 years), so an entry is 8 bytes, not the 24 of an `Instant` and an `f32`: the ring
/// of `LATENCY_CAP` took 1.57 MB (65,536 slots) once a burst filled it.
const LATENCY_TICK_MS: u128 = 100;
/// Latest documents shown.
const RECENT_CAP: usize = 20;
/// Stories tracked; past it the least recently seen is forgotten.
const STORY_CAP: usize = 20_000;
/// Stories count towards "largest" while they had a document this recently.
const STORY_WINDOW: Duration = Duration::from_secs(3600);
/// Entities listed per recent document.
const ENTITIES_SHOWN: usize = 8;

/// The process-wide live state; one daemon runs per process.
pub fn live() -> &'static Live {
    static LIVE: OnceLock<Live> = OnceLock::new();
    LIVE.get_or_init(Live::new)
}

/// Marks the daemon ready (ledger recovered, watcher scanning) and tells systemd so.
pub fn mark_ready() {
    debug_hold_ready();
    if !live().ready.swap(true, Ordering::SeqCst) {
        // A no-op outside systemd (no NOTIFY_SOCKET).
        if let Err(error) = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]) {
            tracing::warn!(%error, "cannot notify systemd of readiness");
        }
        tracing::info!("ready");
    }
}

/// Debug builds only: `DROPLINE_TEST_HOLD_READY_MS` holds readiness back that long, so a test
/// can watch `/health/ready` answer 503 while `/health/live` answers 200 (with the entity model
/// read in place, a daemon is otherwise ready before a test's first poll). Release builds never
/// read the variable.
fn debug_hold_ready() {
    if cfg!(debug_assertions) {
        let ms = std::env::var("DROPLINE_TEST_HOLD_READY_MS").ok();
        if let Some(ms) = ms.and_then(|v| v.parse::<u64>().ok()) {
            let hold = || std::thread::sleep(Duration::from_millis(ms));
            // Called from the watcher task: let the runtime move its other tasks elsewhere.
            match tokio::runtime::Handle::try_current() {
                Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                    tokio::task::block_in_place(hold)
                }
                _ => hold(),
            }
        }
    }
}

/// Marks the daemon as draining: `/health/ready` answers 503 again and systemd hears
/// `STOPPING=1`.
pub fn mark_stopping() {
    live().ready.store(false, Ordering::SeqCst);
    if let Err(error) = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]) {
        tracing::warn!(%error, "cannot notify systemd of stopping");
    }
}

/// Live counters and rings; cheap atomics for what stages bump per file, one mutex for the rest.
#[derive(Debug)]
pub struct Live {
    started: Instant,
    ready: AtomicBool,
    backlog: AtomicU64,
    processed: AtomicU64,
    failed: AtomicU64,
    stage_files: [AtomicU64; 4],
    rings: Mutex<Rings>,
}

#[derive(Debug, Default)]
struct Rings {
    samples: VecDeque<Sample>,
    /// (commit time in [`Live::tick`]s, latency in seconds).
    latencies: VecDeque<(u32, f32)>,
    recent: VecDeque<RecentDoc>,
    stories: HashMap<String, StoryStat>,
    last_prune: Option<Instant>,
}

/// One per-second sample; counts are cumulative, the page differentiates them.
#[derive(Debug, Clone, Serialize)]
struct Sample {
    /// Unix time, seconds.
    t: f64,
    processed: u64,
    failed: u64,
    bytes: u64,
    backlog: u64,
    in_flight: u64,
    /// Files through each stage in `STAGES` order.
    stages: [u64; 4],
    /// Queue depths by stage.
    queues: Vec<(&'static str, usize)>,
}

#[derive(Debug, Clone, Serialize)]
struct RecentDoc {
    id: String,
    path: String,
    title: String,
    status: &'static str,
    story: Option<String>,
    entities: Vec<(String, String)>,
    latency_s: f32,
}

#[derive(Debug, Clone)]
struct StoryStat {
    title: String,
    documents: u64,
    last_seen: Instant,
}

#[derive(Debug, Serialize)]
struct StoryView {
    story: String,
    title: String,
    documents: u64,
}

/// End-to-end latency percentiles over the recent window, in seconds.
#[derive(Debug, Serialize, PartialEq)]
pub struct Percentiles {
    pub window_s: u64,
    pub count: usize,
    pub p50: f32,
    pub p90: f32,
    pub p99: f32,
    pub max: f32,
}

impl Live {
    fn new() -> Self {
        Self {
            started: Instant::now(),
            ready: AtomicBool::new(false),
            backlog: AtomicU64::new(0),
            processed: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            stage_files: Default::default(),
            rings: Mutex::new(Rings::default()),
        }
    }

    /// Returns whether the ledger is recovered and the watcher is scanning.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }

    pub fn set_backlog(&self, files: u64) {
        self.backlog.store(files, Ordering::Relaxed);
    }

    /// Returns the files seen in the drop folder and not yet admitted.
    pub fn backlog(&self) -> u64 {
        self.backlog.load(Ordering::Relaxed)
    }

    /// Counts one file through `stage`.
    pub fn stage_done(&self, stage: &str) {
        if let Some(i) = STAGES.iter().position(|s| *s == stage) {
            self.stage_files[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Takes the per-second sample; called by the pipeline's summary loop.
    pub fn sample(&self, totals: &Totals, queues: &[(&'static str, usize)], in_flight: usize) {
        let sample = Sample {
            t: unix_now(),
            processed: self.processed.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            bytes: totals.bytes.load(Ordering::Relaxed),
            backlog: self.backlog(),
            in_flight: in_flight as u64,
            stages: std::array::from_fn(|i| self.stage_files[i].load(Ordering::Relaxed)),
            queues: queues.to_vec(),
        };
        let mut r = self.lock();
        if r.samples.len() == SAMPLE_CAP {
            r.samples.pop_front();
        }
        r.samples.push_back(sample);
    }

    /// Returns `t` in tenths of a second since start-up (the stamp of a commit latency).
    fn tick(&self, t: Instant) -> u32 {
        let ms = t.saturating_duration_since(self.started).as_millis();
        u32::try_from(ms / LATENCY_TICK_MS).unwrap_or(u32::MAX)
    }

    /// Takes what the page shows from a batch the sink has just committed: one lock a batch.
    pub fn note_batch(&self, batch: &[Envelope]) {
        let now = Instant::now();
        let stamp = self.tick(now);
        let mut r = self.lock();
        // Only the batch's last documents can stay in the recent ring: build no others.
        let shown_from = batch.len().saturating_sub(RECENT_CAP);
        for (i, env) in batch.iter().enumerate() {
            self.processed.fetch_add(1, Ordering::Relaxed);
            let latency = now
                .saturating_duration_since(env.file.ready_at)
                .as_secs_f32();
            if r.latencies.len() == LATENCY_CAP {
                r.latencies.pop_front();
            }
            r.latencies.push_back((stamp, latency));
            match &env.work {
                Work::Doc(doc) => {
                    let story = doc.dedup.as_ref().and_then(|d| d.story.as_deref());
                    if let Some(story) = story {
                        r.note_story(story, &doc.title, now);
                    }
                    if i < shown_from {
                        continue;
                    }
                    let status = doc.dedup.as_ref().map_or("unknown", |d| d.status.as_str());
                    let mut entities: Vec<(String, String)> = Vec::new();
                    for e in doc.entities.iter().flatten() {
                        if entities.len() == ENTITIES_SHOWN {
                            break;
                        }
                        if !entities.iter().any(|(t, _)| *t == e.canonical) {
                            entities.push((e.canonical.clone(), e.label.clone()));
                        }
                    }
                    if r.recent.len() == RECENT_CAP {
                        r.recent.pop_front();
                    }
                    r.recent.push_back(RecentDoc {
                        id: doc.id.clone(),
                        path: doc.source.path.clone(),
                        title: doc.title.clone(),
                        status,
                        story: story.map(str::to_string),
                        entities,
                        latency_s: latency,
                    });
                }
                Work::Failed(_) => {
                    self.failed.fetch_add(1, Ordering::Relaxed);
                }
                Work::Ready | Work::Raw(_) => {}
            }
        }
        if r.last_prune
            .is_none_or(|t| now.duration_since(t) > Duration::from_secs(10))
        {
            r.stories
                .retain(|_, s| now.duration_since(s.last_seen) <= STORY_WINDOW);
            r.last_prune = Some(now);
        }
    }

    /// Returns the end-to-end latency percentiles of the files committed in the last minute.
    pub fn percentiles(&self) -> Percentiles {
        let now = self.tick(Instant::now());
        let window = (LATENCY_WINDOW.as_millis() / LATENCY_TICK_MS) as u32;
        let r = self.lock();
        let mut xs: Vec<f32> = r
            .latencies
            .iter()
            .rev()
            .take_while(|(t, _)| now.saturating_sub(*t) <= window)
            .map(|(_, l)| *l)
            .collect();
        drop(r);
        percentiles_of(&mut xs)
    }

    /// Returns everything the status page shows, as the `/api/status` JSON.
    pub fn snapshot(&self) -> serde_json::Value {
        let latency = self.percentiles();
        let r = self.lock();
        let mut stories: Vec<StoryView> = r
            .stories
            .iter()
            .map(|(id, s)| StoryView {
                story: id.clone(),
                title: s.title.clone(),
                documents: s.documents,
            })
            .collect();
        // Largest first; ties by id, so the list is stable between polls.
        stories.sort_by(|a, b| b.documents.cmp(&a.documents).then(a.story.cmp(&b.story)));
        stories.truncate(10);
        let recent: Vec<&RecentDoc> = r.recent.iter().rev().collect();
        serde_json::json!({
            "version": env!("CARGO_PKG_VERSION"),
            "commit": crate::telemetry::COMMIT,
            "ready": self.is_ready(),
            "uptime_s": self.started.elapsed().as_secs(),
            "now": unix_now(),
            "processed": self.processed.load(Ordering::Relaxed),
            "failed": self.failed.load(Ordering::Relaxed),
            "backlog": self.backlog(),
            "stages": STAGES,
            "latency": latency,
            "samples": r.samples,
            "recent": recent,
            "stories": stories,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Rings> {
        // The rings stay valid if a thread panicked while holding the lock.
        self.rings.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Rings {
    fn note_story(&mut self, story: &str, title: &str, now: Instant) {
        if let Some(s) = self.stories.get_mut(story) {
            s.documents += 1;
            s.last_seen = now;
            if s.title.is_empty() {
                s.title = title.to_string();
            }
            return;
        }
        if self.stories.len() >= STORY_CAP {
            // Forget the stalest tenth in one pass, so a stream of new stories costs O(1) each
            // amortised rather than a scan per insert.
            let mut seen: Vec<Instant> = self.stories.values().map(|s| s.last_seen).collect();
            let cut = *seen.select_nth_unstable(STORY_CAP / 10).1;
            self.stories.retain(|_, s| s.last_seen > cut);
        }
        self.stories.insert(
            story.to_string(),
            StoryStat {
                title: title.to_string(),
                documents: 1,
                last_seen: now,
            },
        );
    }
}

/// Nearest-rank percentiles of `xs` (sorted in place); zeros when empty.
fn percentiles_of(xs: &mut [f32]) -> Percentiles {
    xs.sort_by(f32::total_cmp);
    let rank = |q: f64| -> f32 {
        if xs.is_empty() {
            return 0.0;
        }
        let i = ((q * xs.len() as f64).ceil() as usize).clamp(1, xs.len()) - 1;
        xs[i]
    };
    Percentiles {
        window_s: LATENCY_WINDOW.as_secs(),
        count: xs.len(),
        p50: rank(0.50),
        p90: rank(0.90),
        p99: rank(0.99),
        max: xs.last().copied().unwrap_or(0.0),
    }
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_percentiles_cover_the_last_minute_in_tenths() {
        let mut live = Live::new();
        let Some(started) = Instant::now().checked_sub(Duration::from_secs(3600)) else {
            return; // a clock this close to its origin cannot hold the stamps below
        };
        live.started = started;
        let now = live.tick(Instant::now());
        assert!(
            (35_990..=36_010).contains(&now),
            "tenths of a second: {now}"
        );
        {
            let mut r = live.lock();
            r.latencies.push_back((now - 700, 9.0)); // 70 s ago: out of the window
            r.latencies.push_back((now - 590, 2.0)); // 59 s ago: in
            r.latencies.push_back((now, 1.0));
        }
        let p = live.percentiles();
        assert_eq!((p.count, p.max), (2, 2.0));
        assert_eq!(std::mem::size_of::<(u32, f32)>(), 8);
    }

    #[test]
    fn percentiles_use_nearest_rank() {
        let mut xs: Vec<f32> = (1..=100).rev().map(|x| x as f32).collect();
        let p = percentiles_of(&mut xs);
        assert_eq!(
            (p.p50, p.p90, p.p99, p.max, p.count),
            (50.0, 90.0, 99.0, 100.0, 100)
        );
        assert_eq!(percentiles_of(&mut []).p99, 0.0);
    }

    #[test]
    fn story_table_stays_bounded_and_forgets_the_stalest() {
        let mut r = Rings::default();
        let t0 = Instant::now();
        for i in 0..STORY_CAP + 5 {
            r.note_story(&format!("s{i}"), "t", t0 + Duration::from_millis(i as u64));
        }
        assert!(r.stories.len() <= STORY_CAP);
        let last = format!("s{}", STORY_CAP + 4);
        assert!(
            !r.stories.contains_key("s0"),
            "the stalest story went first"
        );
        r.note_story(&last, "", t0);
        assert_eq!(r.stories[&last].documents, 2);
        assert_eq!(
            r.stories[&last].title, "t",
            "an empty title never replaces one"
        );
    }
}
