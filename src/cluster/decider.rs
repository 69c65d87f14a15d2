//! Owns the decider: the one ordered dedup decision of the cluster, run by whichever worker
//! holds the lease in the KV bucket `<NAME>_leader`.
//!
//! It reads the prepared stream, puts documents back in work-sequence order (a reorder
//! buffer), decides each with the single-node ordered dedup step and publishes its line to
//! `<name>.out.<status>`. The output stream is its ledger:
//! - each line carries `Dropline-Work-Seq`, `Dropline-Prepared-Floor` (where to resume reading
//!   the prepared stream) and `Dropline-Index` (the dedup index entry) in its headers;
//! - each publish expects the stream's last sequence to be the previous line's
//!   (`Nats-Expected-Last-Sequence`), so only one decider can append, whatever the leases say
//!   during a takeover, and a line lost by the servers stops every later one (no gaps);
//! - a new leader (or one whose publish failed) replays the headers of the whole output
//!   stream (`Deduper::restore`, as the single-node ledger replay does) and resumes at the
//!   next work sequence. `Nats-Msg-Id` = `o<work seq>` drops a line published twice.
//!
//! Per document the decider does: one prepared message in (its dedup work decoded, the
//! sentence lookup rebuilt), one index query and update, one JSON line and one publish
//! (pipelined: acks are awaited in batches). The prepared stream is purged below the floor
//! of the last acknowledged line.

use super::wire::{self, PreparedMeta, Record};
use super::{Cluster, LEASE_TTL};
use crate::config::Config;
use crate::dedup::{self, Deduper, Prepared};
use crate::model::{DedupStatus, Envelope, Line, ReadyFile, Work};
use crate::telemetry;
use anyhow::{bail, Context, Result};
use async_nats::jetstream::consumer::{pull, DeliverPolicy};
use async_nats::jetstream::context::PublishAckFuture;
use async_nats::jetstream::kv;
use async_nats::HeaderMap;
use futures_util::StreamExt;
use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// The key of the lease in the leader bucket.
pub const LEASE_KEY: &str = "decider";
/// Unacknowledged output publishes the decider keeps in flight.
const IN_FLIGHT: usize = 512;

/// What the lease holder writes into the lease, for `cluster status`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct LeaseValue {
    pub node: String,
    /// The last work sequence whose line is acknowledged.
    pub committed: u64,
    /// Documents in the index.
    pub indexed: u64,
}

/// Stands for the lease until `stop` turns true; while holding it, decides.
pub async fn run(cluster: Cluster, config: Config, mut stop: watch::Receiver<bool>) -> Result<()> {
    let leases = cluster.kv(&cluster.names.leader, LEASE_TTL).await?;
    let me = super::node_id();
    loop {
        if *stop.borrow() {
            return Ok(());
        }
        let value = serde_json::to_vec(&LeaseValue {
            node: me.clone(),
            committed: 0,
            indexed: 0,
        })?;
        match leases.create(LEASE_KEY, value.into()).await {
            Ok(revision) => {
                tracing::info!(node = %me, "took the decider lease");
                let lease = Lease::hold(leases.clone(), me.clone(), revision);
                let result = lead(&cluster, &config, &lease, stop.clone()).await;
                lease.release().await;
                match result {
                    Ok(()) if *stop.borrow() => return Ok(()),
                    Ok(()) => tracing::warn!("lost the decider lease"),
                    Err(error) => {
                        tracing::warn!(error = %format!("{error:#}"), "decider stopped, replaying the output stream");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                }
            }
            Err(_) => {
                tokio::select! {
                    _ = tokio::time::sleep(LEASE_TTL / 4) => {}
                    _ = stop.changed() => {}
                }
            }
        }
    }
}

/// A held lease, renewed in the background; `lost` turns true when a renewal fails.
struct Lease {
    lost: Arc<AtomicBool>,
    committed: Arc<AtomicU64>,
    indexed: Arc<AtomicU64>,
    renewer: tokio::task::JoinHandle<()>,
    store: kv::Store,
    node: String,
}

impl Lease {
    fn hold(store: kv::Store, node: String, mut revision: u64) -> Lease {
        let lost = Arc::new(AtomicBool::new(false));
        let committed = Arc::new(AtomicU64::new(0));
        let indexed = Arc::new(AtomicU64::new(0));
        let (l, c, i, s, me) = (
            Arc::clone(&lost),
            Arc::clone(&committed),
            Arc::clone(&indexed),
            store.clone(),
            node.clone(),
        );
        let renewer = tokio::spawn(async move {
            loop {
                tokio::time::sleep(LEASE_TTL / 4).await;
                let v = LeaseValue {
                    node: me.clone(),
                    committed: c.load(Ordering::Relaxed),
                    indexed: i.load(Ordering::Relaxed),
                };
                let Ok(bytes) = serde_json::to_vec(&v) else {
                    continue;
                };
                match s.update(LEASE_KEY, bytes.into(), revision).await {
                    Ok(r) => revision = r,
                    Err(error) => {
                        tracing::warn!(%error, "cannot renew the decider lease");
                        l.store(true, Ordering::Relaxed);
                        return;
                    }
                }
            }
        });
        Lease {
            lost,
            committed,
            indexed,
            renewer,
            store,
            node,
        }
    }

    /// Stops renewing and deletes the lease if it is still ours, so a successor need not wait
    /// for it to expire.
    async fn release(self) {
        self.renewer.abort();
        let _ = self.renewer.await;
        if self.lost.load(Ordering::Relaxed) {
            return;
        }
        let Ok(Some(entry)) = self.store.entry(LEASE_KEY).await else {
            return;
        };
        let ours =
            serde_json::from_slice::<LeaseValue>(&entry.value).is_ok_and(|v| v.node == self.node);
        if ours {
            let _ = self
                .store
                .delete_expect_revision(LEASE_KEY, Some(entry.revision))
                .await;
        }
    }
}

/// The decider's state: the index and where the output stream stands.
struct State {
    deduper: Option<Deduper>,
    entities: bool,
    /// The next work sequence to decide.
    next_work: u64,
    /// The output stream's last sequence, counting lines published and not yet acknowledged.
    out_last: u64,
    /// Decided documents waiting for their turn, by work sequence: (prepared seq, message).
    waiting: BTreeMap<u64, (u64, PreparedMeta, Vec<u8>)>,
    /// The prepared sequence to read from next.
    read_from: u64,
}

impl State {
    /// The lowest prepared sequence still needed: the oldest waiting document's, else the next.
    fn floor(&self) -> u64 {
        self.waiting
            .values()
            .map(|(s, _, _)| *s)
            .min()
            .unwrap_or(self.read_from)
            .min(self.read_from)
    }
}

/// Rebuilds the state from the output stream's headers.
async fn rebuild(cluster: &Cluster, config: &Config) -> Result<State> {
    let started = Instant::now();
    let mut out = cluster.js.get_stream(&cluster.names.out).await?;
    let last = out.info().await?.state.last_sequence;
    let mut state = State {
        deduper: config.dedup.enabled.then(|| Deduper::new(&config.dedup)),
        entities: config.entities.enabled,
        next_work: 1,
        out_last: last,
        waiting: BTreeMap::new(),
        read_from: 1,
    };
    let first = out.info().await?.state.first_sequence;
    if last == 0 || last < first {
        return Ok(state);
    }
    let consumer = out
        .create_consumer(pull::OrderedConfig {
            headers_only: true,
            deliver_policy: DeliverPolicy::All,
            ..Default::default()
        })
        .await?;
    let mut messages = consumer.messages().await?;
    let mut lines = 0u64;
    while let Some(msg) = messages.next().await {
        let msg = msg.map_err(|e| anyhow::anyhow!("cannot replay the output stream: {e}"))?;
        let seq = msg
            .info()
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .stream_sequence;
        let h = msg
            .headers
            .as_ref()
            .context("an output line without headers")?;
        let num = |name: &str| -> Result<u64> {
            h.get(name)
                .and_then(|v| v.as_str().parse().ok())
                .with_context(|| format!("output line {seq} has no {name}"))
        };
        state.next_work = num(wire::WORK_SEQ)? + 1;
        state.read_from = num(wire::PREPARED_FLOOR)?;
        if let (Some(d), Some(v)) = (state.deduper.as_mut(), h.get(wire::INDEX_ENTRY)) {
            d.restore(&wire::index_entry(v.as_str())?);
        }
        lines += 1;
        if seq >= last {
            break;
        }
    }
    tracing::info!(
        lines,
        next_work = state.next_work,
        secs = started.elapsed().as_secs_f64(),
        "decider state rebuilt from the output stream"
    );
    Ok(state)
}

/// Decides while the lease holds and nothing fails; `Ok` when stopped or the lease was lost.
async fn lead(
    cluster: &Cluster,
    config: &Config,
    lease: &Lease,
    stop: watch::Receiver<bool>,
) -> Result<()> {
    let stopping = super::stopped(stop);
    tokio::pin!(stopping);
    let mut state = rebuild(cluster, config).await?;
    lease
        .committed
        .store(state.next_work - 1, Ordering::Relaxed);
    let prepared = cluster.js.get_stream(&cluster.names.prepared).await?;
    let consumer = prepared
        .create_consumer(pull::OrderedConfig {
            deliver_policy: DeliverPolicy::ByStartSequence {
                start_sequence: state.read_from.max(1),
            },
            ..Default::default()
        })
        .await?;
    let mut messages = consumer.messages().await?;
    let mut pending: VecDeque<(PublishAckFuture, u64, u64)> = VecDeque::new();
    let mut purged_to = 0;
    // Acks are collected on this tick (and when too many are in flight), never per document:
    // a line is committed when the servers store it, not when the decider reads the ack.
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut last_purge = Instant::now();
    let mut cost = Cost::default();
    let mut cost_logged = Instant::now();
    loop {
        tokio::select! {
            _ = &mut stopping => {
                cost.log();
                settle(&mut pending, lease, usize::MAX).await?;
                return Ok(());
            }
            _ = tick.tick() => {
                if lease.lost.load(Ordering::Relaxed) {
                    return Ok(());
                }
                let floor = settle(&mut pending, lease, usize::MAX).await?;
                if cost_logged.elapsed() >= Duration::from_secs(10) {
                    cost.log();
                    cost_logged = Instant::now();
                }
                let due = last_purge.elapsed() >= Duration::from_secs(1);
                if let Some(floor) = floor.filter(|f| due && *f > purged_to + 1) {
                    last_purge = Instant::now();
                    // Best effort: what stays is skipped on replay, it only takes space.
                    if prepared.purge().sequence(floor).await.is_ok() {
                        purged_to = floor - 1;
                    }
                }
            }
            msg = messages.next() => {
                let Some(msg) = msg else { bail!("the prepared stream ended") };
                let msg = msg.map_err(|e| anyhow::anyhow!("cannot read the prepared stream: {e}"))?;
                let prep_seq = msg.info().map_err(|e| anyhow::anyhow!("{e}"))?.stream_sequence;
                state.read_from = prep_seq + 1;
                let started = thread_cpu();
                let (meta, body): (PreparedMeta, &[u8]) = wire::decode(&msg.payload)?;
                if meta.work_seq >= state.next_work {
                    state.waiting.entry(meta.work_seq).or_insert((prep_seq, meta, body.to_vec()));
                }
                cost.add(thread_cpu().saturating_sub(started), 0);
                while let Some((_, meta, body)) = state.waiting.remove(&state.next_work) {
                    let started = thread_cpu();
                    let (subject, headers, line) = decide(cluster, &mut state, meta, &body)?;
                    cost.add(thread_cpu().saturating_sub(started), 1);
                    let ack = cluster
                        .js
                        .publish_with_headers(subject, headers, line.into())
                        .await
                        .context("cannot publish an output line")?;
                    pending.push_back((ack, state.next_work, state.floor()));
                    state.next_work += 1;
                    if pending.len() >= IN_FLIGHT {
                        settle(&mut pending, lease, IN_FLIGHT / 2).await?;
                    }
                }
                if let Some(d) = &state.deduper {
                    lease.indexed.store(d.len() as u64, Ordering::Relaxed);
                }
            }
        }
    }
}

/// Awaits acks until at most `keep` are pending; returns the floor of the last acknowledged.
async fn settle(
    pending: &mut VecDeque<(PublishAckFuture, u64, u64)>,
    lease: &Lease,
    keep: usize,
) -> Result<Option<u64>> {
    let keep = if keep == usize::MAX { 0 } else { keep };
    let mut floor = None;
    while pending.len() > keep {
        let (ack, work_seq, f) = pending.pop_front().expect("checked non-empty");
        let ack = ack
            .await
            .with_context(|| format!("output line of work sequence {work_seq} not stored"))?;
        if ack.duplicate {
            bail!("output line of work sequence {work_seq} was already stored: another decider appended");
        }
        lease.committed.store(work_seq, Ordering::Relaxed);
        floor = Some(f);
    }
    Ok(floor)
}

/// Decides one document; returns its line's subject, headers and bytes. Synchronous, so its
/// thread CPU time is the decider's own cost per document.
fn decide(
    cluster: &Cluster,
    state: &mut State,
    meta: PreparedMeta,
    body: &[u8],
) -> Result<(String, HeaderMap, Vec<u8>)> {
    let file = ReadyFile {
        seq: meta.work_seq,
        path: PathBuf::from(&meta.path),
        key: meta.key,
        ready_at: Instant::now(),
    };
    let (work, source) = match meta.record {
        Record::Doc(d) => {
            let s = d.source.clone();
            (Work::Doc(d), s)
        }
        Record::Failed(f) => {
            let s = f.source.clone();
            (Work::Failed(f), s)
        }
    };
    let mut env = Envelope {
        file,
        source,
        work,
        index_entry: None,
        prepared: Prepared::from_bytes(body).map(Box::new),
    };
    if let Some(d) = state.deduper.as_mut() {
        // Mostly tens of microseconds, but a rewrite check aligns many sentences: off the reactor.
        env = tokio::task::block_in_place(|| dedup::stage::dedup_step(d, env));
    }
    let now = crate::model::timestamp_now();
    let (status, line) = match &mut env.work {
        Work::Doc(doc) => {
            let copy = doc
                .dedup
                .as_ref()
                .is_some_and(|d| d.status == DedupStatus::ExactDuplicate);
            if copy && state.entities {
                // As in the single-node mode, where entities run after dedup: a copy has none.
                doc.entities = Some(Vec::new());
            }
            let status = doc.dedup.as_ref().map_or("document", |d| d.status.as_str());
            // The metric's label set has `unknown` where the subject says `document`.
            let label = doc.dedup.as_ref().map_or("unknown", |d| d.status.as_str());
            metrics::counter!(telemetry::DOCUMENTS_EMITTED, "status" => label).increment(1);
            let line =
                serde_json::to_vec(&Line::new(&env.file, Some(&doc.id), &now, doc.as_ref()))?;
            (status, line)
        }
        Work::Failed(rec) => {
            let stage = telemetry::FAILED_STAGES
                .iter()
                .find(|s| **s == rec.stage)
                .copied()
                .unwrap_or("internal");
            metrics::counter!(telemetry::FILES_FAILED, "stage" => stage).increment(1);
            (
                "error",
                serde_json::to_vec(&Line::new(&env.file, None, &now, rec))?,
            )
        }
        Work::Ready | Work::Raw(_) => bail!(
            "work sequence {} reached the decider unprocessed",
            meta.work_seq
        ),
    };
    metrics::counter!(telemetry::FILES_PROCESSED).increment(1);
    let waited = wire::now_ms().saturating_sub(meta.ready_ms);
    metrics::histogram!(telemetry::END_TO_END_SECONDS).record(waited as f64 / 1000.0);
    let mut headers = HeaderMap::new();
    headers.insert(
        async_nats::header::NATS_MESSAGE_ID,
        format!("o{}", meta.work_seq).as_str(),
    );
    headers.insert(
        async_nats::header::NATS_EXPECTED_LAST_SEQUENCE,
        state.out_last.to_string().as_str(),
    );
    headers.insert(wire::WORK_SEQ, meta.work_seq.to_string().as_str());
    headers.insert(wire::READY_MS, meta.ready_ms.to_string().as_str());
    if let Some(entry) = &env.index_entry {
        headers.insert(wire::INDEX_ENTRY, serde_json::to_string(entry)?.as_str());
    }
    // The floor after this line: the waiting documents' and the next unread.
    let floor = state.floor();
    headers.insert(wire::PREPARED_FLOOR, floor.to_string().as_str());
    let subject = format!("{}.{status}", cluster.names.out_prefix);
    state.out_last += 1;
    Ok((subject, headers, line))
}

/// The decider's own CPU per document: decoding the prepared message, deciding, and writing
/// the line and its headers (publishing and waiting are not counted).
#[derive(Default)]
struct Cost {
    docs: u64,
    cpu: Duration,
    logged: u64,
}

impl Cost {
    fn add(&mut self, cpu: Duration, docs: u64) {
        self.cpu += cpu;
        self.docs += docs;
    }

    fn log(&mut self) {
        if self.docs > self.logged {
            let per_doc = self.cpu.as_secs_f64() * 1e6 / self.docs as f64;
            tracing::info!(
                docs = self.docs,
                cpu_us_per_doc = format!("{per_doc:.1}"),
                "decider cost"
            );
            self.logged = self.docs;
        }
    }
}

/// Returns this thread's CPU time.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec it is given and nothing else.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}
