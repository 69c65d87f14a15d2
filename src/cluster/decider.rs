//! Owns the decider: the one ordered dedup decision of the cluster, run by whichever worker
//! holds the lease in the KV bucket `<NAME>_leader`.
//!
//! It reads the prepared stream, puts documents back in work-sequence order (a reorder
//! buffer), decides each with the single-node ordered dedup step and publishes its line to
//! `<name>.out.<status>`. The output stream is its ledger:
//! - each line carries in one header, `Dropline-Line` ([`wire::line_headers`]), its work
//!   sequence, ready time, prepared floor (where to resume reading the prepared stream) and
//!   dedup index entry (lines of older deciders carry them in four headers, still read);
//! - each publish expects the stream's last sequence to be the previous line's
//!   (`Nats-Expected-Last-Sequence`), so only one decider can append, whatever the leases say
//!   during a takeover, and a line lost by the servers stops every later one (no gaps);
//! - a new leader (or one whose publish failed) restores the checkpoint
//!   ([`super::checkpoint`]: the index entries of the lines up to its last, written every few
//!   seconds), replays the headers of the output lines after it (`Deduper::restore`, as the
//!   single-node ledger replay does) and resumes at the next work sequence. `Nats-Msg-Id` =
//!   `o<work seq>` drops a line published twice.
//!
//! Per document the decider does: one prepared message in (small JSON metadata, its dedup
//! work decoded, the sentence lookup rebuilt), one index query and update, the line the worker
//! rendered completed with the time and the verdict ([`super::decide`]), and one publish.
//! Publishes are pipelined: the lines decided together go out as one batch in which only the
//! last asks for an ack; since every line expects its predecessor as the stream's last, that
//! ack covers the batch. The prepared stream is purged below the floor of the last
//! acknowledged line.

use super::append::{self, Batch, Out, BATCH};
use super::checkpoint;
use super::decide::{Core, Decided};
use super::gap::Gaps;
use super::lease::{self, Lease, Leases};
use super::wire::{self, PreparedMeta};
use super::Cluster;
use crate::config::Config;
use crate::driver::sched::thread_cpu;
use anyhow::{bail, Result};
use async_nats::jetstream::consumer::{pull, DeliverPolicy};
use bytes::Bytes;
use futures_util::StreamExt;
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

pub use super::lease::LEASE_KEY;
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
    let mut leases = Leases::open(&cluster).await?;
    let me = super::node_id();
    let mut failing = Failing::default();
    let mut failures = 0u32;
    loop {
        if *stop.borrow() {
            return Ok(());
        }
        let value = serde_json::to_vec(&LeaseValue {
            node: me.clone(),
            committed: 0,
            indexed: 0,
        })?;
        let sent = Instant::now();
        let taken = match lease::acquire(&leases, value.into()).await {
            Ok(taken) => {
                failing.recovered();
                taken
            }
            Err(error) => {
                failing.note(&error);
                // The bucket may be gone (deleted by hand, a stream reset): open it again,
                // which creates it, so the cluster does not stall for good.
                match Leases::open(&cluster).await {
                    Ok(again) => leases = again,
                    Err(error) => failing.note(&error),
                }
                None
            }
        };
        let Some(revision) = taken else {
            tokio::select! {
                _ = tokio::time::sleep(lease::RENEW_EVERY) => {}
                _ = stop.changed() => {}
            }
            continue;
        };
        tracing::info!(node = %me, "took the decider lease");
        let holding = Holding::new(leases.clone(), me.clone(), revision, sent);
        let led = Instant::now();
        let result = lead(&cluster, &config, &holding, stop.clone()).await;
        holding.lease.release().await;
        match result {
            Ok(()) if *stop.borrow() => return Ok(()),
            Ok(()) => tracing::warn!("lost the decider lease"),
            Err(error) => {
                tracing::warn!(error = %format!("{error:#}"), "decider stopped, replaying the output stream");
                // Failures in a row wait longer (up to 10 s), so one that lasts (a stream
                // gone for good) does not flood the log; a stream deleted is made again.
                failures = if led.elapsed() > Duration::from_secs(30) {
                    0
                } else {
                    failures + 1
                };
                let wait = Duration::from_millis(500) * 2u32.pow(failures.min(5));
                tokio::time::sleep(wait.min(Duration::from_secs(10))).await;
                if let Err(error) = cluster.ensure().await {
                    tracing::error!(error = %format!("{error:#}"), "cannot make the cluster's streams again");
                }
            }
        }
    }
}

/// Failed attempts at the lease in a row, reported without flooding the log: the first at
/// once, then one warning every [`super::throttle::WARN_EVERY`] with how many failed since.
#[derive(Default)]
struct Failing {
    count: u64,
    reports: super::throttle::Throttled,
}

impl Failing {
    fn note(&mut self, error: &anyhow::Error) {
        self.count += 1;
        if let Some(failed) = self.reports.note(Instant::now()) {
            tracing::warn!(
                error = %format!("{error:#}"),
                failed,
                "cannot take the decider lease; retrying"
            );
        }
    }

    fn recovered(&mut self) {
        if self.count > 0 {
            tracing::info!(failed = self.count, "the decider lease can be read again");
        }
        *self = Failing::default();
    }
}

/// The lease this node holds, with what its renewals write for `cluster status`.
pub struct Holding {
    pub lease: Lease,
    pub committed: Arc<AtomicU64>,
    pub indexed: Arc<AtomicU64>,
}

impl Holding {
    fn new(leases: Leases, node: String, revision: u64, sent: Instant) -> Holding {
        let committed = Arc::new(AtomicU64::new(0));
        let indexed = Arc::new(AtomicU64::new(0));
        let (c, i) = (Arc::clone(&committed), Arc::clone(&indexed));
        let lease = Lease::hold(leases, revision, sent, move || {
            let v = LeaseValue {
                node: node.clone(),
                committed: c.load(Ordering::Relaxed),
                indexed: i.load(Ordering::Relaxed),
            };
            serde_json::to_vec(&v).ok().map(Bytes::from)
        });
        Holding {
            lease,
            committed,
            indexed,
        }
    }
}

/// The decider's state: the ordered decision and the reorder buffer in front of it.
struct State {
    core: Core,
    /// The next work sequence to decide.
    next_work: u64,
    /// Documents waiting for their turn, by work sequence: (prepared seq, metadata, body).
    waiting: BTreeMap<u64, (u64, PreparedMeta, Bytes)>,
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

    /// Takes one prepared message into the reorder buffer.
    fn take(&mut self, msg: async_nats::jetstream::Message) -> Result<()> {
        let prep_seq = msg
            .info()
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .stream_sequence;
        self.read_from = prep_seq + 1;
        let payload = msg.message.payload;
        let (meta, body): (PreparedMeta, &[u8]) = wire::decode(&payload)?;
        if meta.work_seq >= self.next_work {
            let body = payload.slice(payload.len() - body.len()..);
            self.waiting
                .entry(meta.work_seq)
                .or_insert((prep_seq, meta, body));
        }
        Ok(())
    }

    /// Appends a lost-work marker for each sequence of `lost` from the next to decide on
    /// ([`super::gap`]), then decides what waited behind them.
    fn declare_lost(&mut self, lost: std::ops::Range<u64>) -> Result<Vec<(Decided, u64)>> {
        let mut out = Vec::new();
        for seq in lost {
            if seq != self.next_work || self.waiting.contains_key(&seq) {
                break;
            }
            tracing::warn!(
                work_seq = seq,
                "work sequence lost with its stream (deleted, or a JetStream reset): marked \
                 lost in the output stream, the intake publishes its file again"
            );
            let floor = self.floor();
            out.push((self.core.lost(seq, floor), floor));
            self.next_work += 1;
        }
        out.extend(self.decide_ready()?);
        Ok(out)
    }

    /// Decides every document whose turn has come.
    fn decide_ready(&mut self) -> Result<Vec<(Decided, u64)>> {
        let mut out = Vec::new();
        let now = crate::model::timestamp_now();
        while let Some((_, meta, body)) = self.waiting.remove(&self.next_work) {
            let floor = self.floor();
            out.push((self.core.decide(&meta, &body, floor, &now)?, floor));
            self.next_work += 1;
        }
        Ok(out)
    }
}

/// Decides while the lease holds and nothing fails; `Ok` when stopped or the lease was lost.
async fn lead(
    cluster: &Cluster,
    config: &Config,
    lease: &Holding,
    stop: watch::Receiver<bool>,
) -> Result<()> {
    let stopping = super::stopped(stop);
    tokio::pin!(stopping);
    let resumed = checkpoint::resume(cluster, config).await?;
    let mut cp = resumed.checkpoint;
    let mut state = State {
        core: resumed.core,
        next_work: resumed.next_work,
        waiting: BTreeMap::new(),
        read_from: resumed.read_from,
    };
    lease
        .committed
        .store(state.next_work - 1, Ordering::Relaxed);
    let prepared = cluster.js.get_stream(&cluster.names.prepared).await?;
    // The stream deleted (and maybe made again) under the decider: its reading position means
    // nothing in a new one, so the decider starts over from the output stream's last line.
    let created = prepared.cached_info().created;
    let mut last_check = Instant::now();
    let mut messages = super::ordered::ordered(
        &prepared,
        pull::OrderedConfig {
            deliver_policy: DeliverPolicy::ByStartSequence {
                start_sequence: state.read_from.max(1),
            },
            ..Default::default()
        },
    )
    .await?;
    let client = cluster.js.client();
    let mut batches: VecDeque<Batch> = VecDeque::new();
    let mut purged_to = 0;
    // Acks are collected on this tick (and when too many batches are in flight), never per
    // document: a line is committed when the servers store it, not when the decider reads
    // the ack.
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut last_purge = Instant::now();
    let mut cost = Cost::default();
    let mut cost_logged = Instant::now();
    let mut gaps = Gaps::new(config.cluster.lost_after);
    loop {
        tokio::select! {
            _ = &mut stopping => {
                cost.log();
                append::settle(&mut batches, lease, &mut cp, 0).await?;
                cp.flush().await;
                return Ok(());
            }
            _ = tick.tick() => {
                if !lease.lease.held() {
                    return Ok(());
                }
                let floor = append::settle(&mut batches, lease, &mut cp, 0).await?;
                cp.tick()?;
                if cost_logged.elapsed() >= Duration::from_secs(10) {
                    cost.log();
                    cost_logged = Instant::now();
                }
                let waiting = state.waiting.keys().next().copied();
                if let Some(lost) = gaps.due(cluster, state.next_work, waiting, state.read_from).await {
                    let decided = tokio::task::block_in_place(|| state.declare_lost(lost))?;
                    let out = Out { cluster, client: &client, lease };
                    out.send(decided, &mut batches, &mut cp).await?;
                }
                if last_check.elapsed() >= PREPARED_CHECK {
                    last_check = Instant::now();
                    same_prepared(cluster, created).await?;
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
                // A decider whose lease ran out or was taken stops before deciding more.
                if !lease.lease.held() {
                    return Ok(());
                }
                let started = thread_cpu();
                state.take(msg)?;
                // What the servers already sent is taken too, so lines go out in batches.
                for _ in 1..BATCH {
                    match futures_util::FutureExt::now_or_never(messages.next()) {
                        Some(Some(Ok(m))) => state.take(m)?,
                        Some(Some(Err(e))) => bail!("cannot read the prepared stream: {e}"),
                        _ => break,
                    }
                }
                // Mostly tens of microseconds, but a rewrite check aligns many sentences: off the reactor.
                let decided = tokio::task::block_in_place(|| state.decide_ready())?;
                cost.add(thread_cpu().saturating_sub(started), decided.len() as u64);
                let out = Out { cluster, client: &client, lease };
                out.send(decided, &mut batches, &mut cp).await?;
                lease.indexed.store(state.core.indexed() as u64, Ordering::Relaxed);
            }
        }
    }
}

/// How often the decider checks that its prepared stream is still the one it reads.
const PREPARED_CHECK: Duration = Duration::from_secs(3);

/// Fails when the prepared stream was deleted, or made again since `created`.
async fn same_prepared(cluster: &Cluster, created: time::OffsetDateTime) -> Result<()> {
    let name = &cluster.names.prepared;
    let now = match super::reset::stream_missing(&cluster.js, name).await {
        Some(true) => None,
        Some(false) => match cluster.js.get_stream(name).await {
            Ok(s) => Some(s.cached_info().created),
            Err(_) => return Ok(()),
        },
        None => return Ok(()),
    };
    if now != Some(created) {
        bail!(
            "the prepared stream {name} was deleted (or made again): documents prepared and \
             not yet decided in it are lost; the decider resumes from the output stream"
        );
    }
    Ok(())
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
