//! Owns the decider's appends to the output stream: decided lines (and lost-work markers)
//! published in pipelined batches, each line expecting its predecessor as the stream's last
//! sequence, and the acks that commit them (to the checkpoint and the lease's report).

use super::checkpoint::Checkpointer;
use super::decide::Decided;
use super::decider::Holding;
use super::Cluster;
use anyhow::{bail, Context, Result};
use async_nats::jetstream::context::PublishAckFuture;
use bytes::Bytes;
use std::collections::VecDeque;
use std::sync::atomic::Ordering;

/// Lines published per ack asked for, at most.
pub const BATCH: usize = 128;
/// Lines published and not yet acknowledged, at most; past it the decider waits for the
/// older half. A trickle of documents goes out one batch each, so this, not the batch size,
/// keeps the servers' round trips off the decider's path.
const IN_FLIGHT: usize = 1024;

/// Where decided lines go: the output stream, by the lease holder.
pub struct Out<'a> {
    pub cluster: &'a Cluster,
    pub client: &'a async_nats::Client,
    pub lease: &'a Holding,
}

impl Out<'_> {
    /// Publishes `decided` in batches of at most [`BATCH`] lines, only the last of each asking
    /// for an ack; waits for the older half when [`IN_FLIGHT`] lines are unacknowledged.
    pub async fn send(
        &self,
        decided: Vec<(Decided, u64)>,
        batches: &mut VecDeque<Batch>,
        cp: &mut Checkpointer,
    ) -> Result<()> {
        let n = decided.len();
        let mut lines = Vec::new();
        for (i, (d, floor)) in decided.into_iter().enumerate() {
            lines.push(Sent {
                work_seq: d.work_seq,
                floor,
                entry: d.entry,
            });
            let payload = Bytes::from(d.line);
            if i + 1 < n && lines.len() < BATCH {
                self.client
                    .publish_with_headers(d.subject, d.headers, payload)
                    .await
                    .context("cannot publish an output line")?;
                continue;
            }
            let ack = self
                .cluster
                .js
                .publish_with_headers(d.subject, d.headers, payload)
                .await
                .context("cannot publish an output line")?;
            batches.push_back(Batch {
                ack,
                lines: std::mem::take(&mut lines),
            });
            if in_flight(batches) >= IN_FLIGHT {
                settle(batches, self.lease, cp, IN_FLIGHT / 2).await?;
            }
        }
        Ok(())
    }
}

/// A line published and not yet known to be stored.
struct Sent {
    work_seq: u64,
    floor: u64,
    entry: Option<String>,
}

/// Lines published together; only the last asked for an ack. Each line expects the stream's
/// last sequence to be its predecessor's, so that ack says the whole batch is stored.
pub struct Batch {
    ack: PublishAckFuture,
    lines: Vec<Sent>,
}

/// Lines published and not yet acknowledged.
pub fn in_flight(batches: &VecDeque<Batch>) -> usize {
    batches.iter().map(|b| b.lines.len()).sum()
}

/// Awaits acks until at most `keep` lines are unacknowledged; returns the prepared floor after
/// the last line known stored.
pub async fn settle(
    batches: &mut VecDeque<Batch>,
    lease: &Holding,
    cp: &mut Checkpointer,
    keep: usize,
) -> Result<Option<u64>> {
    let mut floor = None;
    while in_flight(batches) > keep {
        let Batch { ack, lines } = batches.pop_front().expect("checked non-empty");
        let last = lines.last().map_or(0, |l| l.work_seq);
        let ack = ack
            .await
            .with_context(|| format!("output lines up to work sequence {last} not stored"))?;
        if ack.duplicate {
            bail!(
                "output line of work sequence {last} was already stored: another decider appended"
            );
        }
        let first_seq = ack.sequence + 1 - lines.len() as u64;
        for (i, l) in lines.iter().enumerate() {
            cp.committed(
                first_seq + i as u64,
                l.work_seq,
                l.floor,
                l.entry.as_deref(),
            );
        }
        lease.committed.store(last, Ordering::Relaxed);
        floor = lines.last().map(|l| l.floor);
    }
    Ok(floor)
}
