//! Owns the worker role: pulls files from the work stream and prepares them on parallel
//! threads (read, strip, the index-free dedup work, entities), then publishes each to the
//! prepared stream and acks its work message.
//!
//! Per file: one work message in, one prepared message out (`Nats-Msg-Id` = `w<work seq>`, so
//! a redelivered file's second publish is dropped within two minutes, and the decider takes
//! one prepared document per work sequence after that), one ack. The per-source line memory
//! of the strip stage is off in cluster mode: it learns in arrival order on one node, which a
//! set of workers does not have.

use super::line;
use super::records::{self, assemble, failed_meta, failed_work, timed_out, unreadable};
use super::wire::{self, PreparedMeta, WorkMeta};
use super::{reset, Cluster};
use crate::config::Config;
use crate::dedup::KnownRaw;
use crate::entities::{stage::entities_step, EntityTagger};
use crate::model::{Envelope, ReadyFile, Work};
use crate::read::{self, ReadLimits};
use crate::strip::{self, Stripper};
use anyhow::{bail, Context, Result};
use async_nats::jetstream::consumer::pull::MessagesErrorKind;
use async_nats::jetstream::consumer::{pull, AckPolicy, Consumer};
use async_nats::jetstream::{AckKind, Message};
use async_nats::HeaderMap;
use futures_util::StreamExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// The durable consumer all workers share.
pub const CONSUMER: &str = "workers";
/// How long the servers wait for a worker's ack before redelivering; a worker that is still
/// busy with a file says so every [`PROGRESS_EVERY`].
const ACK_WAIT: Duration = Duration::from_secs(10);
const PROGRESS_EVERY: Duration = Duration::from_secs(3);
/// The delivery of a work message that gives up on its file and yields an error record.
pub const MAX_DELIVER: i64 = 4;
/// Base of the delay before a failed delivery is redelivered (times the delivery number).
const RETRY_AFTER: Duration = Duration::from_secs(1);
/// Publishes of one prepared message before the delivery is given up.
const PUBLISH_TRIES: u32 = 4;

/// What a worker's threads share.
pub struct Cores {
    stripper: Option<Stripper>,
    keep_removed: bool,
    dedup: Option<KnownRaw>,
    tagger: Option<EntityTagger>,
    limits: ReadLimits,
    /// Bytes a rendered line may have: the decider appends it to the output stream as one
    /// message, which the servers refuse past their `max_payload`.
    max_line: usize,
}

/// Room left in a message beside the rendered line, for what the decider adds (the time, the
/// dedup verdict, the ledger header with the index entry: a few KB at most).
const LINE_HEADROOM: usize = 64 * 1024;

impl Cores {
    /// Builds the stage cores of `config`, with the strip stage's per-source memory off.
    pub fn new(config: &Config) -> Result<Self> {
        let stripper = if config.strip.enabled {
            let mut sc = config.strip.clone();
            sc.source_memory = false;
            Some(Stripper::new(&sc, None)?)
        } else {
            None
        };
        let tagger = if config.entities.enabled {
            Some(EntityTagger::load(&config.entities).context("cannot load entity model")?)
        } else {
            None
        };
        Ok(Self {
            stripper,
            keep_removed: config.strip.keep_removed,
            dedup: config.dedup.enabled.then(KnownRaw::default),
            tagger,
            limits: ReadLimits {
                max_file_bytes: config.source.max_file_bytes,
                max_inflated_bytes: config.source.max_inflated_bytes,
            },
            // nats-server's default.
            max_line: (1 << 20) - LINE_HEADROOM,
        })
    }

    /// Sizes lines for servers whose `max_payload` is `max_payload` bytes.
    pub fn for_servers(mut self, max_payload: usize) -> Self {
        self.max_line = max_payload.saturating_sub(LINE_HEADROOM);
        self
    }

    /// Prepares one file: its record and the dedup work the decider needs (empty when none).
    pub fn prepare(&self, work_seq: u64, meta: WorkMeta, bytes: &[u8]) -> (PreparedMeta, Vec<u8>) {
        test_panic(&meta.path);
        let path = PathBuf::from(&meta.path);
        let file = ReadyFile {
            seq: work_seq,
            path: path.clone(),
            key: meta.key,
            ready_at: Instant::now(),
        };
        let mut env = Envelope {
            file,
            source: meta.source,
            work: Work::Ready,
            index_entry: None,
            prepared: None,
        };
        env = match meta.error {
            Some(error) => crate::driver::failed(env.file, env.source, "read", error),
            None => self.read(env, &path, bytes, &meta.source_key),
        };
        env = strip::stage::strip_step(self.stripper.as_ref(), self.keep_removed, None, env);
        crate::dedup::stage::prepare_step(self.dedup.as_ref(), &mut env);
        if let Some(t) = &self.tagger {
            env = entities_step(t, env);
        }
        let dedup = env
            .prepared
            .take()
            .map(|p| p.to_bytes())
            .unwrap_or_default();
        let rendered = match &env.work {
            Work::Doc(d) => line::render_doc(&env.file, d).map(|r| (Some(d.id.clone()), None, r)),
            Work::Failed(f) => {
                line::render_error(&env.file, f).map(|r| (None, Some(f.stage.clone()), r))
            }
            // Every step above maps its input to a document or an error record.
            Work::Ready | Work::Raw(_) => Err(anyhow::anyhow!("the file was not processed")),
        };
        match rendered {
            // No decider could append it: an error record now rather than a stalled decider.
            Ok((_, _, r)) if r.bytes.len() > self.max_line => failed_meta(
                work_seq,
                meta.path,
                meta.key,
                meta.ready_ms,
                env.source,
                "output",
                format!(
                    "its line would be {} bytes, more than the servers take in one message \
                     (max_payload less {} KiB): raise max_payload for documents this large",
                    r.bytes.len(),
                    LINE_HEADROOM >> 10
                ),
            ),
            Ok((id, stage, r)) => assemble(work_seq, meta.ready_ms, id, stage, dedup, r),
            Err(error) => failed_meta(
                work_seq,
                meta.path,
                meta.key,
                meta.ready_ms,
                env.source,
                "internal",
                format!("internal error: {error:#}"),
            ),
        }
    }

    fn read(&self, mut env: Envelope, path: &Path, bytes: &[u8], source_key: &str) -> Envelope {
        env.source.bytes = bytes.len() as u64;
        match read::decode(path, bytes, self.limits, &mut env.source) {
            Ok(mut raw) => {
                raw.source_key = source_key.to_string();
                env.work = Work::Raw(raw);
                env
            }
            Err(error) => crate::driver::failed(env.file, env.source, "read", error.to_string()),
        }
    }
}

/// Debug builds only: a file whose path contains `DROPLINE_TEST_PANIC_PREPARE` panics its
/// worker thread at every delivery, for the tests of a file no worker can finish.
fn test_panic(path: &str) {
    const HOOK: &str = "DROPLINE_TEST_PANIC_PREPARE";
    assert!(!crate::driver::debug_hook(HOOK, path), "{HOOK}: {path}");
}

/// Pulls and prepares files until `stop` turns true, `pipeline.strip_workers` at a time.
pub async fn run(cluster: Cluster, config: Config, stop: watch::Receiver<bool>) -> Result<()> {
    let stopping = super::stopped(stop);
    tokio::pin!(stopping);
    let mut cores = Cores::new(&config)?;
    // 0 until the servers said: keep the default then.
    let max_payload = cluster.js.client().server_info().max_payload;
    if max_payload > 0 {
        cores = cores.for_servers(max_payload);
    }
    let cores = Arc::new(cores);
    let parallel = config.pipeline.strip_workers.max(1);
    let timeout = config.pipeline.file_timeout;
    let mut messages = pull(&cluster, parallel).await?;
    // Files in flight: `parallel` on CPU threads, the others waiting for a publish ack, so
    // round trips to the servers overlap the CPU work.
    let cpu = Arc::new(tokio::sync::Semaphore::new(parallel));
    let in_flight = parallel * 4;
    let mut busy = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut stopping => break,
            Some(done) = busy.join_next(), if !busy.is_empty() => log_failure(done),
            next = messages.next(), if busy.len() < in_flight => {
                let Some(next) = next else { break };
                let msg = match next {
                    Ok(m) => m,
                    Err(error) => {
                        tracing::warn!(%error, "pull from the work stream failed, retrying");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        // The consumer, or the stream with it, deleted: make them again.
                        let gone = error.kind() == MessagesErrorKind::ConsumerDeleted;
                        let work = &cluster.names.work;
                        if gone || reset::stream_missing(&cluster.js, work).await == Some(true) {
                            match repull(&cluster, parallel).await {
                                Ok(m) => messages = m,
                                Err(e) => tracing::warn!(error = %format!("{e:#}"), "cannot pull from the work stream"),
                            }
                        }
                        continue;
                    }
                };
                let (cl, c, cpu) = (cluster.clone(), Arc::clone(&cores), Arc::clone(&cpu));
                busy.spawn(async move { handle(cl, c, cpu, msg, timeout).await });
            }
        }
    }
    // Files already taken are finished; what was only buffered is redelivered to others.
    while let Some(done) = busy.join_next().await {
        log_failure(done);
    }
    Ok(())
}

/// Pulls from the workers' durable consumer, creating it when missing.
async fn pull(cluster: &Cluster, parallel: usize) -> Result<pull::Stream> {
    let stream = cluster.js.get_stream(&cluster.names.work).await?;
    let consumer: Consumer<pull::Config> = stream
        .get_or_create_consumer(
            CONSUMER,
            pull::Config {
                durable_name: Some(CONSUMER.into()),
                ack_policy: AckPolicy::Explicit,
                ack_wait: ACK_WAIT,
                max_ack_pending: 4096,
                ..Default::default()
            },
        )
        .await
        .context("cannot create the workers' consumer")?;
    consumer
        .stream()
        .max_messages_per_batch(parallel * 4)
        .messages()
        .await
        .context("cannot pull from the work stream")
}

/// Pulls again after the consumer was deleted; makes the work stream again first when it is
/// gone too (deleted, or a JetStream reset).
async fn repull(cluster: &Cluster, parallel: usize) -> Result<pull::Stream> {
    if !reset::remake_if_missing(cluster, &cluster.names.work, "work").await {
        tracing::warn!(
            consumer = CONSUMER,
            "the workers' consumer is gone: making it again"
        );
    }
    pull(cluster, parallel).await
}

/// Logs a file the worker could not finish: its work message was not acked, so the servers
/// redeliver it (to this worker or another) once the ack wait ran out.
fn log_failure(done: Result<Result<()>, tokio::task::JoinError>) {
    let error = match done {
        Ok(Ok(())) => return,
        Ok(Err(e)) => format!("{e:#}"),
        Err(e) => e.to_string(),
    };
    tracing::warn!(%error, "file left for redelivery");
}

/// Prepares one work message, publishes the result and acks the work message. A message
/// delivered [`MAX_DELIVER`] times (every earlier attempt failed or its worker died) becomes
/// an error record instead, so one file no worker can finish does not stall the decider.
async fn handle(
    cluster: Cluster,
    cores: Arc<Cores>,
    cpu: Arc<tokio::sync::Semaphore>,
    msg: Message,
    timeout: Duration,
) -> Result<()> {
    let info = msg.info().map_err(|e| anyhow::anyhow!("{e}"))?;
    let (work_seq, delivered) = (info.stream_sequence, info.delivered);
    let result = match attempt(&cluster, cores, cpu, &msg, work_seq, delivered, timeout).await {
        Ok(out) => publish_prepared(&cluster, work_seq, out).await,
        Err(error) => Err(error),
    };
    if let Err(error) = result {
        // Back to the servers soon rather than after the ack wait; a later delivery retries.
        let delay = RETRY_AFTER * delivered.clamp(1, MAX_DELIVER) as u32;
        let _ = msg.ack_with(AckKind::Nak(Some(delay))).await;
        return Err(error.context(format!("work sequence {work_seq}, delivery {delivered}")));
    }
    msg.ack()
        .await
        .map_err(|e| anyhow::anyhow!("cannot ack a work message: {e}"))?;
    if let Some(name) = decode_object(&msg) {
        if let Ok(store) = cluster.js.get_object_store(&cluster.names.files).await {
            let _ = store.delete(name.as_str()).await;
        }
    }
    Ok(())
}

/// Makes the prepared message of one delivery of a work message.
async fn attempt(
    cluster: &Cluster,
    cores: Arc<Cores>,
    cpu: Arc<tokio::sync::Semaphore>,
    msg: &Message,
    work_seq: u64,
    delivered: i64,
    timeout: Duration,
) -> Result<(PreparedMeta, Vec<u8>)> {
    let (meta, inline): (WorkMeta, &[u8]) = match wire::decode(&msg.payload) {
        Ok(m) => m,
        Err(error) => {
            // Not ours to decide on: a message no worker can read would stall the decider, so
            // it becomes an error record like any unreadable file.
            tracing::error!(%error, work_seq, "unreadable work message");
            return Ok(unreadable(msg, work_seq, &error.to_string()));
        }
    };
    if delivered >= MAX_DELIVER {
        tracing::error!(work_seq, path = %meta.path, delivered, "giving up on a file no worker could finish");
        let error = format!(
            "given up after {delivered} deliveries: no worker could finish the file \
             (see the workers' logs)"
        );
        return failed_work(work_seq, msg, "internal", error);
    }
    let mut bytes = inline.to_vec();
    if let Some(name) = meta.object.clone() {
        let files = &cluster.names.files;
        match super::objects::read(&cluster.js, files, &name).await {
            Ok(Some(b)) => bytes = b,
            // Deleted or purged while the file waited: the decider marks its work lost and the
            // intake publishes the file again (with a new object), as for work lost with its
            // stream.
            Ok(None) => {
                tracing::warn!(work_seq, path = %meta.path, object = %name, "a large file's object is gone from {files}: its work is marked lost and the intake publishes the file again");
                return Ok(records::object_lost(work_seq, meta.ready_ms));
            }
            // The servers or the bucket did not answer: a later delivery tries again (the
            // last gives an error record).
            Err(error) => return Err(error.context("cannot fetch the file from the object store")),
        }
    }
    let path = meta.path.clone();
    let permit = cpu
        .acquire_owned()
        .await
        .context("worker semaphore closed")?;
    // The permit goes with the thread: one that runs past the budget keeps its core.
    let job = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        cores.prepare(work_seq, meta, &bytes)
    });
    tokio::pin!(job);
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    let mut progress = tokio::time::interval(PROGRESS_EVERY);
    loop {
        tokio::select! {
            r = &mut job => return r.context("a worker thread panicked"),
            _ = &mut deadline => {
                // The thread is abandoned; its result, when it comes, is dropped.
                tracing::warn!(path = %path, "file took longer than pipeline.file_timeout");
                return timed_out(work_seq, msg, timeout);
            }
            _ = progress.tick() => { let _ = msg.ack_with(AckKind::Progress).await; }
        }
    }
}

fn decode_object(msg: &Message) -> Option<String> {
    wire::decode::<WorkMeta>(&msg.payload)
        .ok()
        .and_then(|(m, _)| m.object)
}

/// Publishes a prepared document and waits until the servers stored it, retrying a few
/// times under the same message id; a publish that keeps failing is left to a redelivery.
async fn publish_prepared(
    cluster: &Cluster,
    work_seq: u64,
    (meta, body): (PreparedMeta, Vec<u8>),
) -> Result<()> {
    let payload = bytes::Bytes::from(wire::encode(&meta, &body)?);
    let id = format!("w{work_seq}");
    let mut wait = Duration::from_millis(200);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut headers = HeaderMap::new();
        headers.insert(async_nats::header::NATS_MESSAGE_ID, id.as_str());
        let sent = cluster
            .js
            .publish_with_headers(
                cluster.names.prepared_subject.clone(),
                headers,
                payload.clone(),
            )
            .await;
        let acked = match sent {
            Ok(ack) => ack.await.map(|_| ()).map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match acked {
            Ok(()) => return Ok(()),
            Err(error) if attempt >= PUBLISH_TRIES => {
                bail!(
                    "prepared publish of {} bytes failed: {error}",
                    payload.len()
                )
            }
            Err(error) => {
                tracing::warn!(%error, work_seq, "prepared publish not acknowledged, publishing again");
                tokio::time::sleep(wait).await;
                reset::remake_if_missing(cluster, &cluster.names.prepared, "prepared").await;
                wait = (wait * 2).min(Duration::from_secs(5));
            }
        }
    }
}
