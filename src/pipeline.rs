//! Owns the wiring: builds the stage cores, connects them with bounded queues downstream-first
//! (sink, entities, dedup, strip, read, then intake), and runs the `run` and `process` commands.
//!
//! Shutdown is two-phase: the intake stops taking files and drops its sender; each stage drains
//! its queue and ends, closing the next one; the sink commits its last batch and returns.

use crate::admission::Admission;
use crate::config::{Config, OutputKind, Refused};
use crate::dedup::{self, Deduper, KnownRaw};
use crate::driver::{spawn_ordered_stage, spawn_stage, Budget};
use crate::entities::{stage::entities_step, EntityTagger};
use crate::ledger::{Ledger, ERRORS_FILE};
use crate::lock::StateLock;
use crate::model::Envelope;
use crate::read::{self, ReadLimits};
use crate::signals;
use crate::sink::{DonePolicy, Output, Sink, SinkReport};
use crate::strip::{self, Stripper};
use crate::telemetry::{self, Totals};
use crate::watcher::{self, WatchConfig};
use anyhow::{bail, Context, Result};
use async_channel::bounded;
use std::fs::OpenOptions;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Where files come from.
enum Intake {
    /// The daemon: watch the drop folder until shutdown (or until idle with `once`).
    Watch { config: WatchConfig, once: bool },
    /// `process`: these files, in this order.
    List(Vec<PathBuf>),
}

/// Runs the daemon until SIGINT/SIGTERM; a second signal exits at once. With `reload`, SIGHUP
/// re-reads the config from there and applies what can change live.
pub fn run_daemon(config: Config, once: bool, reload: Option<crate::reload::Source>) -> Result<()> {
    let rt = runtime()?;
    let result = rt.block_on(async {
        match read::raise_fd_limit() {
            Ok((old, new)) if new > old => tracing::info!(old, new, "raised open-file limit"),
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "cannot raise the open-file limit"),
        }
        crate::status::start(&config.metrics).await?;
        let live = crate::reload::Live::new(&config)?;
        let hangup = signals::hangups();
        if let Some(source) = reload {
            let (current, live) = (config.clone(), live.clone());
            tokio::spawn(crate::reload::on_hangup(
                source,
                current,
                live,
                hangup.clone(),
            ));
        }
        let report = daemon_with(config, signals::shutdown_signal(), once, live, hangup).await?;
        tracing::info!(
            documents = report.documents,
            errors = report.errors,
            "stopped"
        );
        Ok(())
    });
    // A thread still busy with a file past its time budget must not hold up the exit.
    rt.shutdown_timeout(Duration::from_secs(1));
    result
}

/// Runs the daemon until `shutdown` resolves; tests call this with their own future.
pub async fn daemon(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
    once: bool,
) -> Result<SinkReport> {
    let live = crate::reload::Live::new(&config)?;
    daemon_with(config, shutdown, once, live, signals::hangups()).await
}

/// [`daemon`] with the file filter and watcher timing a reload can swap.
async fn daemon_with(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
    once: bool,
    live: crate::reload::Live,
    hangup: watch::Receiver<u64>,
) -> Result<SinkReport> {
    let dir = &config.source.dir;
    if !dir.is_dir() {
        return Err(Refused(format!("source.dir {} is not a folder", dir.display())).into());
    }
    let watch = WatchConfig::from_config(&config, live);
    let done = watch.done.clone();
    let root = std::fs::canonicalize(dir)?;
    run_pipeline(
        &config,
        Intake::Watch {
            config: watch,
            once,
        },
        Some(root),
        done,
        shutdown,
        Some(hangup),
    )
    .await
}

/// What `process` did.
#[derive(Debug, Clone, Copy)]
pub struct ProcessSummary {
    pub documents: u64,
    pub failed: u64,
}

/// Runs the stages once over `paths` (folders recursively, files in sorted path order) and
/// writes JSON Lines to stdout.
pub fn run_process(mut config: Config, paths: &[PathBuf]) -> Result<ProcessSummary> {
    config.output.kind = OutputKind::Stdout;
    config.output.path = None;
    let files = list_inputs(paths, &config.file_filter()?)?;
    let rt = runtime()?;
    let report = rt.block_on(run_pipeline(
        &config,
        Intake::List(files),
        None,
        None,
        std::future::pending(),
        None,
    ));
    rt.shutdown_timeout(Duration::from_secs(1));
    let report = report?;
    Ok(ProcessSummary {
        documents: report.documents,
        failed: report.errors,
    })
}

/// Returns the runtime both commands run on: multi-threaded, because the watcher's scans use
/// `block_in_place`.
fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// Expands folders (recursively, keeping what `filter` reads) and sorts the whole list by path;
/// files named on the command line are read whatever their name.
fn list_inputs(paths: &[PathBuf], filter: &crate::filter::FileFilter) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for p in paths {
        if std::fs::symlink_metadata(p).is_err() {
            bail!("no such file or folder: {}", p.display());
        }
        if p.is_dir() {
            let mut stack = vec![p.clone()];
            while let Some(d) = stack.pop() {
                for entry in std::fs::read_dir(&d)? {
                    let path = entry?.path();
                    if filter.skips(p, &path, path.is_dir()) {
                        continue;
                    }
                    if path.is_dir() {
                        stack.push(path);
                    } else {
                        files.push(path);
                    }
                }
            }
        } else {
            files.push(p.clone());
        }
    }
    read::sort_paths(&mut files);
    Ok(files)
}

/// The stage cores, built once and shared by the workers.
struct Cores {
    stripper: Option<Arc<Stripper>>,
    keep_removed: bool,
    deduper: Option<Deduper>,
    known_raw: Option<Arc<KnownRaw>>,
    tagger: Option<Arc<EntityTagger>>,
}

async fn run_pipeline(
    config: &Config,
    intake: Intake,
    root: Option<PathBuf>,
    done: Option<DonePolicy>,
    shutdown: impl Future<Output = ()> + Send + 'static,
    hangup: Option<watch::Receiver<u64>>,
) -> Result<SinkReport> {
    let state_dir = config.state.dir.as_deref();
    // One process per state dir, for as long as this function runs.
    let _lock = state_dir.map(StateLock::acquire).transpose()?;
    let out_path = match config.output.kind {
        OutputKind::File => config.output.path.as_deref(),
        OutputKind::Stdout => None,
    };
    // Recovery first: cut uncommitted output back before anything is appended.
    let (ledger, recovered) = match state_dir {
        Some(dir) => {
            let (l, r) = Ledger::open(dir, out_path, config.dedup.capacity)?;
            let l = l.files_stay(config.source.done == crate::config::DoneAction::Leave);
            let l = match test_compact_every() {
                Some(bytes) => l.compact_every(bytes),
                None => l,
            };
            if r.truncated_bytes > 0 {
                tracing::warn!(bytes = r.truncated_bytes, "cut back uncommitted output");
            }
            if r.damaged > 0 || r.adopted > 0 {
                tracing::warn!(
                    damaged = r.damaged,
                    kept = r.adopted,
                    "ledger had damaged or missing entries; output lines of finished files kept"
                );
            }
            tracing::info!(committed = r.committed.len(), "ledger recovered");
            (Some(l), r)
        }
        None => (None, Default::default()),
    };
    let errors = match state_dir {
        Some(dir) => {
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.join(ERRORS_FILE))
                .context("cannot open errors.jsonl")?;
            Some((f, recovered.err_len))
        }
        None => None,
    };
    let output = Output::open(out_path)?;
    let cores = build_cores(config, state_dir, &recovered.dedup)?;
    // Rates in the closing summary count from here: recovery and model loading are start-up.
    let started = std::time::Instant::now();
    let admission = Arc::new(
        Admission::new(
            config.pipeline.max_in_flight,
            recovered
                .committed
                .into_iter()
                .map(|(k, c)| (k, c.failed))
                .collect(),
        )
        .with_byte_budget(
            config.pipeline.max_in_flight_bytes,
            config.source.max_inflated_bytes,
        )
        .with_working_set(crate::admission::working_set_factor(
            config.entities.enabled,
        ))
        .with_fingerprint_on_read(),
    );
    let budget = Budget::new(config.pipeline.file_timeout).with_admission(Arc::clone(&admission));
    let totals = Arc::new(Totals::default());
    let cap = config.pipeline.queue_capacity;
    let (read_tx, read_rx) = bounded::<Envelope>(cap);
    let (strip_tx, strip_rx) = bounded::<Envelope>(cap);
    let (sink_tx, sink_rx) = bounded::<Envelope>(cap);
    // Weak handles, so sampling a queue's depth never keeps it open.
    let mut queues = vec![
        ("read", read_rx.downgrade()),
        ("strip", strip_rx.downgrade()),
        ("sink", sink_rx.downgrade()),
    ];

    // Shutdown is watched from a task of its own, so it is heard even after intake has ended
    // (`--once`): intake stops taking files, and a sink waiting for disk space gives up.
    let stopping = Arc::new(AtomicBool::new(false));
    let (stop_tx, mut stop_rx) = watch::channel(false);
    let stop_task = {
        let stopping = Arc::clone(&stopping);
        tokio::spawn(async move {
            shutdown.await;
            stopping.store(true, Ordering::SeqCst);
            let _ = stop_tx.send(true);
        })
    };
    let shutdown = async move {
        // An error means the task ended without a shutdown (aborted at the end of the run).
        let _ = stop_rx.wait_for(|stop| *stop).await;
    };

    // Downstream first: the sink, then each stage feeding it. A stage that is switched off is
    // not spawned at all: its upstream sends straight to its downstream.
    let sink = Sink {
        output,
        errors,
        ledger,
        done,
        on_duplicate: config.dedup.on_duplicate,
        batch_max: config.output.batch_max,
        admission: Arc::clone(&admission),
        totals: Arc::clone(&totals),
        hangup,
        fault: None,
        stop: Some(Arc::clone(&stopping)),
    };
    let sink_task = tokio::task::spawn_blocking(move || sink.run(sink_rx));
    let p = &config.pipeline;
    let (entities_tx, entities_rx) = bounded::<Envelope>(cap);
    let dedup_out = match cores.tagger.clone() {
        Some(tagger) => {
            queues.push(("entities", entities_rx.downgrade()));
            spawn_stage(
                "entities",
                p.entities_workers,
                entities_rx,
                sink_tx,
                &budget,
                move |e| entities_step(&tagger, e),
            );
            entities_tx
        }
        None => sink_tx,
    };
    let (dedup_tx, dedup_rx) = bounded::<Envelope>(cap);
    let strip_out = match cores.deduper {
        Some(mut deduper) => {
            queues.push(("dedup", dedup_rx.downgrade()));
            spawn_ordered_stage("dedup", dedup_rx, dedup_out, move |e| {
                dedup::stage::dedup_step(&mut deduper, e)
            });
            dedup_tx
        }
        None => dedup_out,
    };
    let known = cores.known_raw;
    // The strip stage's per-source memory learns in arrival order, in its own ordered step.
    // The dedup work that needs no index runs in parallel, not in an ordered step: after the
    // memory when there is one (the memory changes most texts of a source that repeats its
    // lines, and a text prepared before it would be prepared again in the ordered step), else
    // on the strip workers.
    let learns = cores.stripper.clone().filter(|s| s.learns());
    let strip_out = match learns.clone() {
        Some(s) => {
            let memory_out = match known.clone() {
                Some(known) => {
                    let (prepare_tx, prepare_rx) = bounded::<Envelope>(cap);
                    queues.push(("dedup_prepare", prepare_rx.downgrade()));
                    spawn_stage(
                        "dedup_prepare",
                        p.strip_workers,
                        prepare_rx,
                        strip_out,
                        &budget,
                        move |mut e| {
                            dedup::stage::prepare_step(Some(&known), &mut e);
                            e
                        },
                    );
                    prepare_tx
                }
                None => strip_out,
            };
            let (memory_tx, memory_rx) = bounded::<Envelope>(cap);
            queues.push(("strip_memory", memory_rx.downgrade()));
            spawn_ordered_stage("strip_memory", memory_rx, memory_out, move |e| {
                strip::stage::memory_step(&s, e)
            });
            memory_tx
        }
        None => strip_out,
    };
    let depths = telemetry::QueueDepths(queues);
    let learned = cores.stripper.clone();
    let (stripper, keep) = (cores.stripper, cores.keep_removed);
    let prepare_here = learns.is_none();
    spawn_stage(
        "strip",
        p.strip_workers,
        strip_rx,
        strip_out,
        &budget,
        move |e| {
            let mut e = strip::stage::strip_step(stripper.as_deref(), keep, known.as_deref(), e);
            if prepare_here {
                dedup::stage::prepare_step(known.as_deref(), &mut e);
            }
            e
        },
    );
    let read_stage = read::ReadStage {
        root: root.clone(),
        drop_dir: root.is_some().then(|| config.source.dir.clone()),
        limits: ReadLimits {
            max_file_bytes: config.source.max_file_bytes,
            max_inflated_bytes: config.source.max_inflated_bytes,
        },
        totals: Arc::clone(&totals),
        admission: Arc::clone(&admission),
        attempts: config.source.read_attempts,
    };
    read::spawn_read_stage(read_stage, p.read_workers, read_rx, strip_tx, &budget);

    let persister = learned.clone().map(|s| tokio::spawn(persist_loop(s)));
    let summary = tokio::spawn(telemetry::summary_loop(
        depths,
        Arc::clone(&admission),
        Arc::clone(&totals),
        config.pipeline.summary_interval,
    ));
    let intake_admission = Arc::clone(&admission);
    let intake_task = tokio::spawn(async move {
        match intake {
            Intake::Watch { config, once } => {
                watcher::run(config, intake_admission, read_tx, shutdown, once).await
            }
            Intake::List(files) => read::feed_list(files, intake_admission, read_tx).await,
        }
    });
    let abort = intake_task.abort_handle();
    let report = match sink_task.await {
        Ok(r) => r,
        Err(e) => Err(anyhow::anyhow!("sink thread ended abnormally: {e}")),
    };
    abort.abort();
    stop_task.abort();
    if let Ok(Err(error)) = intake_task.await {
        tracing::error!(%error, "intake failed");
    }
    summary.abort();
    if let Some(p) = persister {
        p.abort();
    }
    if let Some(s) = learned {
        if let Err(error) = s.persist() {
            tracing::warn!(%error, "cannot save the stripper's line memory");
        }
    }
    telemetry::log_final(&totals, started);
    report
}

fn build_cores(
    config: &Config,
    state_dir: Option<&Path>,
    restore: &crate::ledger::DedupEntries,
) -> Result<Cores> {
    let stripper = if config.strip.enabled {
        Some(Arc::new(Stripper::new(&config.strip, state_dir)?))
    } else {
        None
    };
    let deduper = if config.dedup.enabled {
        let mut d = Deduper::new(&config.dedup);
        restore.for_each(|e| d.restore(&e))?;
        Some(d)
    } else {
        None
    };
    let tagger = if config.entities.enabled {
        Some(Arc::new(
            EntityTagger::load(&config.entities).context("cannot load entity model")?,
        ))
    } else {
        None
    };
    Ok(Cores {
        known_raw: deduper.as_ref().map(Deduper::known_raw),
        stripper,
        keep_removed: config.strip.keep_removed,
        deduper,
        tagger,
    })
}

/// Debug builds only: `DROPLINE_TEST_LEDGER_COMPACT_EVERY` bytes of ledger growth between
/// compactions while running, so that a test can make them frequent (release builds never read
/// the variable).
fn test_compact_every() -> Option<u64> {
    cfg!(debug_assertions)
        .then(|| std::env::var("DROPLINE_TEST_LEDGER_COMPACT_EVERY").ok())
        .flatten()
        .and_then(|v| v.parse().ok())
}

/// How often the stripper's learned line memory is saved while running.
const PERSIST_EVERY: Duration = Duration::from_secs(60);

/// Saves the stripper's per-source line memory periodically (it is a heuristic: losing the last
/// minute of it in a crash costs nothing but a little stripping quality).
async fn persist_loop(stripper: Arc<Stripper>) {
    loop {
        tokio::time::sleep(PERSIST_EVERY).await;
        let s = Arc::clone(&stripper);
        if let Ok(Err(error)) = tokio::task::spawn_blocking(move || s.persist()).await {
            tracing::warn!(%error, "cannot save the stripper's line memory");
        }
    }
}
