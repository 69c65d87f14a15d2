//! Owns the decider's checkpoint: the index entries of committed output lines, written in
//! segments to the object store `<NAME>_checkpoint`, so a new leader reads a few objects
//! instead of replaying every output line's headers, and the output stream could be trimmed
//! below the checkpoint.
//!
//! Layout: objects `seg-<first>-<last>` (output sequences, zero-padded) hold the index
//! entries (JSON lines) of the lines `first..=last` that have one; the object `manifest` lists
//! the segments in order and says where the decider stood after the last covered line. The
//! manifest is written after its segment, so it only ever names complete segments, and a
//! segment's bytes are fixed by the output stream, so two deciders writing during a takeover
//! cannot disagree: at worst an older manifest makes a new leader replay a little more.
//!
//! A new leader ([`resume`]) restores the segments, then replays the output stream's headers
//! after the manifest's last line (`super::decider`'s replay), and continues.

use super::decide::Core;
use super::{wire, Cluster};
use crate::config::Config;
use anyhow::{bail, Context, Result};
use async_nats::jetstream::consumer::{pull, DeliverPolicy};
use async_nats::jetstream::object_store::{InfoErrorKind, ObjectStore};
use async_nats::jetstream::Context as JetStream;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

/// How often a checkpoint is written while lines are committed.
pub const EVERY: Duration = Duration::from_secs(5);
/// Entry bytes that start a checkpoint before [`EVERY`] is up.
const MAX_BUFFERED: usize = 16 << 20;
const MANIFEST: &str = "manifest";

/// Where the decider stood after the last line the segments cover.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Segment objects, in output order.
    pub segments: Vec<String>,
    /// The last output sequence covered.
    pub out_seq: u64,
    /// The next work sequence to decide after it.
    pub next_work: u64,
    /// The prepared sequence to read from after it.
    pub read_from: u64,
}

/// The decider's state after a takeover.
pub struct Resumed {
    pub core: Core,
    pub next_work: u64,
    pub read_from: u64,
    pub checkpoint: Checkpointer,
}

/// Opens (creating) the checkpoint bucket of `cluster`.
pub async fn store(cluster: &Cluster) -> Result<ObjectStore> {
    cluster.object_store(&cluster.names.checkpoint).await
}

/// Rebuilds the decider's state: the checkpoint's segments, then the output stream's
/// headers after them. A checkpoint that cannot be used (its manifest unreadable, a segment
/// gone: the bucket deleted or purged) is reported and the whole output stream replayed
/// instead; what is replayed goes into the next checkpoint.
pub async fn resume(cluster: &Cluster, config: &Config) -> Result<Resumed> {
    let started = Instant::now();
    let store = store(cluster).await?;
    let mut out = cluster.js.get_stream(&cluster.names.out).await?;
    let info = out.info().await?.state.clone();
    let (first, last) = (info.first_sequence, info.last_sequence);
    let bucket = &cluster.names.checkpoint;
    let mut manifest = match super::objects::read(&cluster.js, bucket, MANIFEST).await? {
        Some(b) => serde_json::from_slice::<Manifest>(&b).unwrap_or_else(|error| {
            tracing::warn!(bucket = %bucket, %error, "the checkpoint manifest is damaged: replaying the whole output stream");
            Manifest::default()
        }),
        None => Manifest::default(),
    };
    if manifest.out_seq > last {
        tracing::warn!(
            checkpoint = manifest.out_seq,
            last,
            "the checkpoint is ahead of the output stream (a new stream?): ignoring it"
        );
        manifest = Manifest::default();
    }
    let mut core = Core::new(config, &cluster.names.out_prefix, last);
    let mut from_checkpoint = restore(cluster, &manifest, &mut core).await?;
    if from_checkpoint.is_none() {
        manifest = Manifest::default();
        core = Core::new(config, &cluster.names.out_prefix, last);
        from_checkpoint = Some(0);
    }
    if last > 0 && first > manifest.out_seq + 1 {
        bail!(
            "the output stream starts at line {first}, the checkpoint covers lines up to {}: \
             the lines between are gone",
            manifest.out_seq
        );
    }
    let mut checkpoint = Checkpointer::new(cluster, store, manifest.clone());
    let (mut next_work, mut read_from) = (manifest.next_work.max(1), manifest.read_from.max(1));
    let mut replayed = 0u64;
    if last > manifest.out_seq {
        let mut messages = super::ordered::ordered(
            &out,
            pull::OrderedConfig {
                headers_only: true,
                deliver_policy: DeliverPolicy::ByStartSequence {
                    start_sequence: manifest.out_seq + 1,
                },
                ..Default::default()
            },
        )
        .await?;
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
            let fields = wire::line_fields(h).with_context(|| format!("output line {seq}"))?;
            (next_work, read_from) =
                replay_line(&mut core, h).with_context(|| format!("output line {seq}"))?;
            // The replayed lines are not in the checkpoint yet: the next one covers them.
            checkpoint.committed(seq, fields.work_seq, fields.floor, fields.entry);
            replayed += 1;
            if seq >= last {
                break;
            }
        }
    }
    tracing::info!(
        checkpoint_lines = manifest.out_seq,
        checkpoint_entries = from_checkpoint.unwrap_or(0),
        replayed,
        next_work,
        indexed = core.indexed(),
        secs = started.elapsed().as_secs_f64(),
        "decider state rebuilt from the checkpoint and the output stream"
    );
    Ok(Resumed {
        core,
        next_work,
        read_from,
        checkpoint,
    })
}

/// Restores the entries of the segments `manifest` names into `core`; returns how many, or
/// `None` when a segment is gone (then `core` holds a part of them and is to be dropped).
async fn restore(cluster: &Cluster, manifest: &Manifest, core: &mut Core) -> Result<Option<u64>> {
    let bucket = &cluster.names.checkpoint;
    let mut restored = 0u64;
    for name in &manifest.segments {
        let Some(bytes) = super::objects::read(&cluster.js, bucket, name).await? else {
            tracing::warn!(
                bucket = %bucket,
                segment = %name,
                "a segment of the checkpoint is gone (the bucket deleted or purged?): \
                 replaying the whole output stream instead"
            );
            return Ok(None);
        };
        for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let entry = serde_json::from_slice(line)
                .with_context(|| format!("bad entry in checkpoint segment {name}"))?;
            core.restore(&entry);
            restored += 1;
        }
    }
    Ok(Some(restored))
}

/// Replays the headers `h` of one committed output line (either layout, [`wire::line_fields`])
/// into `core`; returns the next work sequence and the prepared-stream position after it.
pub fn replay_line(core: &mut Core, h: &async_nats::HeaderMap) -> Result<(u64, u64)> {
    let fields = wire::line_fields(h)?;
    if let Some(entry) = fields.entry {
        core.restore(&wire::index_entry(entry)?);
    }
    Ok((fields.work_seq + 1, fields.floor))
}

/// Collects the entries of committed lines and writes them out as segments, one write at a
/// time, in the background.
pub struct Checkpointer {
    store: ObjectStore,
    js: async_nats::jetstream::Context,
    bucket: String,
    manifest: Manifest,
    /// Entries (JSON lines) of committed lines after the manifest's.
    buf: Vec<u8>,
    /// Where the decider stands after the last committed line: (out seq, next work, read from).
    end: (u64, u64, u64),
    /// The write in progress and the buffered bytes it covers.
    writing: Option<(tokio::task::JoinHandle<Result<Written>>, usize)>,
    last: Instant,
    /// Set when a write found the bucket deleted or purged.
    lost: bool,
}

/// How a checkpoint write ended.
enum Written {
    Done(Manifest),
    /// The bucket is gone, or its manifest is: the segments the manifest would name may be.
    Lost,
}

impl Checkpointer {
    fn new(cluster: &Cluster, store: ObjectStore, manifest: Manifest) -> Self {
        let end = (manifest.out_seq, manifest.next_work, manifest.read_from);
        Self {
            store,
            js: cluster.js.clone(),
            bucket: cluster.names.checkpoint.clone(),
            manifest,
            buf: Vec::new(),
            end,
            writing: None,
            last: Instant::now(),
            lost: false,
        }
    }

    /// Notes that output line `out_seq` (of work sequence `work_seq`, leaving the prepared
    /// floor at `floor`) is stored.
    pub fn committed(&mut self, out_seq: u64, work_seq: u64, floor: u64, entry: Option<&str>) {
        if let Some(e) = entry {
            self.buf.extend_from_slice(e.as_bytes());
            self.buf.push(b'\n');
        }
        self.end = (out_seq, work_seq + 1, floor);
    }

    /// Takes a finished write into account and starts the next one when it is due. Fails
    /// once a write found the bucket deleted or purged: the checkpoint is then to be made
    /// anew from the whole output stream, which a new [`resume`] does.
    pub fn tick(&mut self) -> Result<()> {
        if let Some((job, _)) = &self.writing {
            if !job.is_finished() {
                return Ok(());
            }
        }
        if let Some((job, len)) = self.writing.take() {
            // Finished: the first poll is ready.
            if let Some(done) = futures_util::FutureExt::now_or_never(job) {
                self.apply(done, len);
            }
        }
        if self.lost {
            bail!(
                "the checkpoint bucket {} was deleted or purged: making it again from the whole \
                 output stream (the lines stay exactly once)",
                self.bucket
            );
        }
        let due = self.last.elapsed() >= EVERY || self.buf.len() >= MAX_BUFFERED;
        if due && self.end.0 > self.manifest.out_seq {
            self.start();
        }
        Ok(())
    }

    fn apply(&mut self, done: Result<Result<Written>, tokio::task::JoinError>, len: usize) {
        match done {
            Ok(Ok(Written::Done(m))) => {
                self.buf.drain(..len);
                self.manifest = m;
            }
            Ok(Ok(Written::Lost)) => self.lost = true,
            Ok(Err(error)) => {
                tracing::warn!(error = %format!("{error:#}"), "cannot write a checkpoint")
            }
            Err(error) => tracing::warn!(%error, "a checkpoint write ended abnormally"),
        }
    }

    /// Waits for the write in progress, if any.
    async fn finish(&mut self) {
        if let Some((job, len)) = self.writing.take() {
            let done = job.await;
            self.apply(done, len);
        }
    }

    fn start(&mut self) {
        self.last = Instant::now();
        let (out_seq, next_work, read_from) = self.end;
        let mut next = Manifest {
            segments: self.manifest.segments.clone(),
            out_seq,
            next_work,
            read_from,
        };
        let bytes = self.buf.clone();
        let segment = (!bytes.is_empty())
            .then(|| format!("seg-{:020}-{:020}", self.manifest.out_seq + 1, out_seq));
        if let Some(s) = &segment {
            next.segments.push(s.clone());
        }
        let (store, js, bucket) = (self.store.clone(), self.js.clone(), self.bucket.clone());
        // A manifest this decider read or wrote must still be there: if it is not, the
        // segments it names may not be either, and a manifest naming them would stall the
        // next leader.
        let expect_manifest = self.manifest.out_seq > 0;
        let len = bytes.len();
        let job = tokio::spawn(async move {
            if gone(&js, &bucket, &store, expect_manifest).await {
                return Ok(Written::Lost);
            }
            let written = async {
                if let Some(s) = &segment {
                    store
                        .put(s.as_str(), &mut bytes.as_slice())
                        .await
                        .map_err(|e| anyhow::anyhow!("cannot write checkpoint segment {s}: {e}"))?;
                }
                let m = serde_json::to_vec(&next)?;
                store
                    .put(MANIFEST, &mut m.as_slice())
                    .await
                    .map_err(|e| anyhow::anyhow!("cannot write the checkpoint manifest: {e}"))?;
                anyhow::Ok(())
            };
            match written.await {
                Ok(()) => {
                    tracing::debug!(out_seq = next.out_seq, "checkpoint written");
                    Ok(Written::Done(next))
                }
                Err(_) if gone(&js, &bucket, &store, false).await => Ok(Written::Lost),
                Err(error) => Err(error),
            }
        });
        self.writing = Some((job, len));
    }

    /// Waits for the write in progress and writes what is left (on a clean stop).
    pub async fn flush(&mut self) {
        self.finish().await;
        if self.end.0 > self.manifest.out_seq {
            self.start();
            self.finish().await;
        }
    }

    /// The last output sequence the written checkpoint covers.
    pub fn covered(&self) -> u64 {
        self.manifest.out_seq
    }
}

/// Whether the checkpoint bucket's stream is gone, or (with `expect_manifest`) its manifest.
async fn gone(js: &JetStream, bucket: &str, store: &ObjectStore, expect_manifest: bool) -> bool {
    match super::reset::stream_missing(js, &format!("OBJ_{bucket}")).await {
        Some(true) => return true,
        // The servers did not answer: the write itself tells.
        None => return false,
        Some(false) => {}
    }
    if !expect_manifest {
        return false;
    }
    match store.info(MANIFEST).await {
        Ok(info) => info.deleted,
        Err(e) => e.kind() == InfoErrorKind::NotFound,
    }
}
