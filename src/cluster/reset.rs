//! Owns what a node does when one of the cluster's JetStream objects is deleted or purged
//! under it (`nats stream rm`, a JetStream reset, a server's store lost): tell a missing
//! stream from a server that does not answer, and report such an object once, with its name
//! and what it means, rather than at every retry.

use super::wire::{self, PreparedMeta};
use super::Cluster;
use anyhow::{Context, Result};
use async_nats::jetstream::context::{GetStreamError, GetStreamErrorKind};
use async_nats::jetstream::{self, ErrorCode};
use std::sync::atomic::Ordering;

/// Whether stream `name` is gone: `Some(true)` when the servers say it does not exist,
/// `Some(false)` when it is there, `None` when they did not answer either way.
pub async fn stream_missing(js: &jetstream::Context, name: &str) -> Option<bool> {
    match js.get_stream(name).await {
        Ok(_) => Some(false),
        Err(e) if not_found(&e) => Some(true),
        Err(_) => None,
    }
}

/// Whether the servers said the stream does not exist (not merely that they did not answer).
pub fn not_found(e: &GetStreamError) -> bool {
    matches!(e.kind(), GetStreamErrorKind::JetStream(j) if j.error_code() == ErrorCode::STREAM_NOT_FOUND)
}

/// Makes the cluster's streams again when stream `name` (the `what` stream) is gone (deleted,
/// or a JetStream reset), with a warning, or an error when they cannot be made; returns whether
/// it was gone.
pub async fn remake_if_missing(cluster: &Cluster, name: &str, what: &str) -> bool {
    if stream_missing(&cluster.js, name).await != Some(true) {
        return false;
    }
    tracing::warn!(stream = %name, "the {what} stream is gone (deleted, or a JetStream reset): making it again");
    if let Err(error) = cluster.ensure().await {
        tracing::error!(error = %format!("{error:#}"), "cannot make the cluster's streams again");
    }
    true
}

/// An object a node keeps writing: a warning when writes start failing, one line when they
/// work again, nothing in between.
#[derive(Debug, Default)]
pub struct Outage {
    failing: bool,
}

impl Outage {
    /// Notes a failed write of `object`; warns with `meaning` the first time in a row.
    pub fn failed(&mut self, object: &str, error: &dyn std::fmt::Display, meaning: &str) {
        if !self.failing {
            tracing::warn!(object, error = %error, "{meaning}");
            self.failing = true;
        }
    }

    /// Notes a write of `object` that went through.
    pub fn worked(&mut self, object: &str) {
        if std::mem::take(&mut self.failing) {
            tracing::info!(object, "written again");
        }
    }
}

/// Whether this process may open a work stream made anew (still on its private subject):
/// only one that runs the intake, which moves it past every work sequence it was given
/// ([`super::Cluster::work_floor`]). Opened by another node, it would start after the last
/// sequence the output and prepared streams name, and give files sequences the intake's
/// ledger holds for files lost with the old stream, whose lines would then settle the wrong
/// files; and the decider could not tell those files lost.
pub fn may_open_work(cluster: &Cluster) -> bool {
    let floor = cluster.work_floor.load(Ordering::Relaxed);
    if floor == 0 {
        tracing::info!(
            stream = %cluster.names.work,
            "the work stream is made on its private subject; the intake opens it"
        );
    }
    floor > 0
}

/// Makes the work and prepared streams, made anew after a deletion, continue the sequences
/// of the ones lost, so that the decider, which decides in work-sequence order and reads the
/// prepared stream from a position, takes what is published into them: the work stream after
/// the highest work sequence the output and prepared streams name, the prepared stream at the
/// position the output stream's last line resumes from. A stream of a new cluster starts at 1.
pub async fn continue_sequences(cluster: &Cluster, work: bool, prepared: bool) -> Result<()> {
    let n = &cluster.names;
    let (mut next_work, mut next_prepared) = (1, 1);
    let out = cluster.js.get_stream(&n.out).await?;
    let last = out.cached_info().state.last_sequence;
    if last > 0 {
        let msg = out
            .get_raw_message(last)
            .await
            .with_context(|| format!("cannot read output line {last}"))?;
        let fields = wire::line_fields(&msg.headers)?;
        (next_work, next_prepared) = (fields.work_seq + 1, fields.floor.max(1));
    }
    if !prepared {
        let p = cluster.js.get_stream(&n.prepared).await?;
        let last = p.cached_info().state.last_sequence;
        if let Ok(msg) = p.get_raw_message(last).await {
            if let Ok((meta, _)) = wire::decode::<PreparedMeta>(&msg.payload) {
                next_work = next_work.max(meta.work_seq + 1);
            }
        }
    }
    // Past every work sequence the intake was given, so none is given twice.
    next_work = next_work.max(cluster.work_floor.load(Ordering::Relaxed));
    for (made, name, next) in [
        (work, &n.work, next_work),
        (prepared, &n.prepared, next_prepared),
    ] {
        let stream = cluster.js.get_stream(name).await?;
        if !made || next <= stream.cached_info().state.last_sequence + 1 {
            continue;
        }
        stream
            .purge()
            .sequence(next)
            .await
            .with_context(|| format!("cannot move stream {name} on to sequence {next}"))?;
        tracing::warn!(
            stream = %name,
            sequence = next,
            "the stream was missing and is made again, continuing the lost one's sequence; \
             what it held and no node had taken is lost (the intake publishes again what it \
             had no ack for; the decider declares a work sequence lost after \
             cluster.lost_after and the intake publishes its file again)"
        );
    }
    Ok(())
}

/// Refuses to make the output stream again once files were published: it is the decider's
/// ledger (what is committed, the dedup index), and a new one would have lines decided twice
/// and copies taken for originals.
pub async fn refuse_lost_output(cluster: &Cluster) -> Result<()> {
    let n = &cluster.names;
    let work = cluster.js.get_stream(&n.work).await?;
    let published = work.cached_info().state.last_sequence;
    if published > 0 {
        anyhow::bail!(
            "the output stream {} is gone (deleted, or a JetStream reset) while {published} \
             files went through the work stream {}: the cluster's ledger of committed lines \
             and its dedup index are lost, so exactly once cannot be kept, and no node makes \
             it again by itself. To start over: stop the nodes, delete the cluster's streams \
             ({}, {}, KV_{}, KV_{}, OBJ_{}, OBJ_{}) and each intake's state.dir/{}, then start \
             the nodes: the files still in the drop folder are published again and decided \
             against an empty index",
            n.out,
            n.work,
            n.work,
            n.prepared,
            n.leader,
            n.nodes,
            n.files,
            n.checkpoint,
            super::settle::PUBLISHED_FILE,
        );
    }
    Ok(())
}
