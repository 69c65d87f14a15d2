//! Owns the intake role: the single-node watcher and admission feed a publisher that puts each
//! ready file on the work stream and, after the publish ack, remembers the file in
//! `published.jsonl` so a restart does not publish it again; its done-action waits for its
//! committed line ([`super::settle`]).
//!
//! Per file: one read of its bytes and one JetStream publish (pipelined, up to [`IN_FLIGHT`]
//! unacknowledged), plus an object-store put for files over [`super::INLINE_MAX`].

use super::republish;
use super::reset::Outage;
use super::settle::{self, PublishedLedger, Republish, Verdict};
use super::sole::IntakeLease;
use super::wire::{self, WorkMeta};
use super::Cluster;
use crate::admission::Admission;
use crate::config::Config;
use crate::model::Envelope;
use crate::read::ReadError;
use crate::sink::DonePolicy;
use crate::watcher::{self, WatchConfig};
use anyhow::{Context, Result};
use async_nats::jetstream::context::PublishAckFuture;
use async_nats::jetstream::object_store::{DeleteErrorKind, ObjectStore};
use async_nats::HeaderMap;
use std::future::Future;
use std::io::Read;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// Unacknowledged publishes the intake keeps in flight.
const IN_FLIGHT: usize = 256;
pub use settle::PUBLISHED_FILE;

/// One published, not yet acknowledged file.
struct Pending {
    ack: PublishAckFuture,
    env: Envelope,
    msg_id: String,
    payload: bytes::Bytes,
    /// Its files-bucket object, for a file too large to go inline.
    object: Option<String>,
    /// The work sequence declared lost that this publish replaces.
    replaces: Option<u64>,
}

/// Watches the drop folder and publishes ready files until `shutdown` resolves; each publish
/// first checks that this node still holds the intake `lease`.
pub async fn run(
    cluster: Cluster,
    config: Config,
    lease: Arc<IntakeLease>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let dir = config.source.dir.clone();
    let root = std::fs::canonicalize(&dir)
        .with_context(|| format!("source.dir {} is not a folder", dir.display()))?;
    // Without a done-action the files are left in place, but the output stream is followed
    // all the same: a file whose work sequence is declared lost is published again.
    let done = DonePolicy::from_config(&config).unwrap_or_else(|| DonePolicy {
        action: crate::config::DoneAction::Leave,
        done_dir: Default::default(),
        failed_dir: Default::default(),
    });
    let mut ledger = PublishedLedger::open(config.state.dir.as_deref())?;
    // A work stream made anew continues past every sequence this intake was given.
    cluster
        .work_floor
        .fetch_max(ledger.high + 1, Ordering::Relaxed);
    if let Err(error) = cluster.ensure().await {
        tracing::warn!(error = %format!("{error:#}"), "cannot open the work stream yet");
    }
    let keeper = tokio::spawn(republish::keep_work_open(
        cluster.clone(),
        Arc::clone(&lease),
    ));
    let admission = Arc::new(Admission::new(
        config.pipeline.max_in_flight.max(IN_FLIGHT),
        ledger.published.clone(),
    ));
    let live = crate::reload::Live::new(&config)?;
    let mut watch = WatchConfig::from_config(&config, live);
    // Published files stay in the folder until their lines are committed: their done-actions
    // are the settler's, also after a restart, never the watcher's.
    watch.done = None;
    let (tx, rx) = async_channel::bounded::<Envelope>(config.pipeline.queue_capacity);
    let a = Arc::clone(&admission);
    let watcher = tokio::spawn(async move { watcher::run(watch, a, tx, shutdown, false).await });
    let mut files = cluster.files().await?;
    let mut outage = Outage::default();
    let max_bytes = config.source.max_file_bytes;
    // The output stream is followed from before the first publish, so no line is missed.
    let (lines_tx, mut lines) = tokio::sync::mpsc::unbounded_channel::<(u64, Verdict)>();
    let follower = tokio::spawn(republish::follow(
        cluster.clone(),
        ledger.follow_from(),
        lines_tx,
    ));
    // Files whose work sequence was declared lost, from the settler to the publisher.
    let (again_tx, mut again) = tokio::sync::mpsc::unbounded_channel::<Republish>();
    // Acks are awaited in publish order by a task of their own, so a trickle of files never
    // waits a round trip per file; the channel bounds the publishes in flight. The same task
    // runs done-actions as their files' lines are committed.
    let (acks_tx, mut acks_rx) = tokio::sync::mpsc::channel::<Pending>(IN_FLIGHT);
    let (cl, a, l) = (cluster.clone(), Arc::clone(&admission), Arc::clone(&lease));
    let mut settler = tokio::spawn(async move {
        let mut retry = tokio::time::interval(settle::RETRY_EVERY);
        // When the servers come back, every publish in flight may fail once: one warning.
        let mut unacked = super::throttle::Throttled::default();
        loop {
            tokio::select! {
                p = acks_rx.recv() => match p {
                    Some(p) => {
                        let settled = settle(&cl, &l, p, &mut ledger, &a, &done, &mut unacked);
                        if let Some(r) = settled.await? {
                            let _ = again_tx.send(r);
                        }
                    }
                    None => break,
                },
                Some((seq, verdict)) = lines.recv() => {
                    if let Some(r) = ledger.line(seq, verdict, &done)? {
                        let _ = again_tx.send(r);
                    }
                    delete_orphans(&cl, &mut ledger).await;
                }
                _ = retry.tick() => ledger.retry(&done)?,
            }
        }
        anyhow::Ok(())
    });
    let mut held = tokio::time::interval(super::lease::RENEW_EVERY);
    loop {
        let (env, replaces) = tokio::select! {
            env = rx.recv() => match env {
                Ok(env) => (env, None),
                Err(_) => break,
            },
            Some(r) = again.recv() => {
                tracing::info!(path = %r.path.display(), lost = r.lost, "publishing a file whose work was lost again");
                (crate::watcher::envelope(0, r.path, r.key), Some(r.lost))
            }
            // The settler stops only on an error (the ledger cannot be written): so does the
            // intake, at once rather than at the next file.
            r = &mut settler => {
                watcher.abort();
                keeper.abort();
                r.context("intake ack task")??;
                anyhow::bail!("the intake's ack task stopped");
            }
            // Also without files, a lapsed lease is taken again (or found lost) within a
            // second, not at the next publish.
            _ = held.tick() => {
                lease.check().await?;
                continue;
            }
        };
        let (path, r) = (env.file.path.clone(), root.clone());
        let read = tokio::task::spawn_blocking(move || read_bytes(&path, &r, max_bytes))
            .await
            .unwrap_or_else(|e| Err(format!("internal error: {e}")));
        let path_str = env.file.path.to_string_lossy().into_owned();
        let mut msg_id = wire::work_msg_id(&env.file.key, &path_str);
        if let Some(lost) = replaces {
            msg_id = republish::msg_id(&msg_id, lost);
        }
        let ready_ms =
            wire::now_ms().saturating_sub(env.file.ready_at.elapsed().as_millis() as u64);
        let mut meta = WorkMeta {
            path: path_str,
            key: env.file.key,
            source: env.source.clone(),
            ready_ms,
            source_key: source_key(&root, &env.file.path),
            object: None,
            error: None,
        };
        let body = match read {
            Ok(bytes) if bytes.len() > super::INLINE_MAX => {
                put_large(&cluster, &mut files, &msg_id, &bytes, &mut outage).await;
                meta.object = Some(msg_id.clone());
                Vec::new()
            }
            Ok(bytes) => bytes,
            Err(error) => {
                meta.error = Some(error);
                Vec::new()
            }
        };
        let payload = bytes::Bytes::from(wire::encode(&meta, &body)?);
        let ack = publish(&cluster, &lease, &msg_id, payload.clone()).await?;
        let p = Pending {
            ack,
            env,
            msg_id,
            payload,
            object: meta.object,
            replaces,
        };
        if acks_tx.send(p).await.is_err() {
            break; // the settler failed; its error is returned below
        }
    }
    drop(acks_tx);
    settler.await.context("intake ack task")??;
    follower.abort();
    keeper.abort();
    watcher.await.context("watcher task")??;
    Ok(())
}

/// Puts a large file into the files bucket, trying again until it is stored; after a failed
/// put the bucket is opened again, which makes it anew when it was deleted.
async fn put_large(
    cluster: &Cluster,
    files: &mut ObjectStore,
    name: &str,
    bytes: &[u8],
    outage: &mut Outage,
) {
    let bucket = &cluster.names.files;
    let mut wait = Duration::from_millis(200);
    loop {
        match files.put(name, &mut &bytes[..]).await {
            Ok(_) => {
                outage.worked(bucket);
                return;
            }
            Err(error) => outage.failed(
                bucket,
                &error,
                "cannot store a large file in the files bucket (deleted, or no JetStream \
                 quorum): making the bucket again; the intake publishes nothing meanwhile",
            ),
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_secs(5));
        match cluster.files().await {
            Ok(store) => *files = store,
            Err(error) => {
                tracing::debug!(error = %format!("{error:#}"), "cannot open the files bucket")
            }
        }
    }
}

/// Returns the folder of `path` relative to the drop folder `root`, as the single-node read
/// stage names a file's source.
fn source_key(root: &Path, path: &Path) -> String {
    let parent = path.parent().unwrap_or(Path::new(""));
    std::fs::canonicalize(parent)
        .ok()
        .and_then(|p| p.strip_prefix(root).ok().map(Path::to_path_buf))
        .unwrap_or_else(|| parent.to_path_buf())
        .display()
        .to_string()
}

/// Publishes one work message with its file identity as `Nats-Msg-Id`, once this node holds
/// the intake `lease` (an error when another node took it).
async fn publish(
    cluster: &Cluster,
    lease: &IntakeLease,
    msg_id: &str,
    payload: bytes::Bytes,
) -> Result<PublishAckFuture> {
    lease.check().await?;
    let mut headers = HeaderMap::new();
    headers.insert(async_nats::header::NATS_MESSAGE_ID, msg_id);
    cluster
        .js
        .publish_with_headers(cluster.names.work_subject.clone(), headers, payload)
        .await
        .context("cannot publish to the work stream")
}

/// Waits for one publish ack (re-publishing under the same message id until the servers take
/// it), then records the file; its done-action waits for its line. Returns the file when its
/// new sequence was already declared lost. A failed ack is a warning when `unacked` says so, a
/// debug line otherwise.
async fn settle(
    cluster: &Cluster,
    lease: &IntakeLease,
    mut p: Pending,
    ledger: &mut PublishedLedger,
    admission: &Admission,
    done: &DonePolicy,
    unacked: &mut super::throttle::Throttled,
) -> Result<Option<Republish>> {
    let mut wait = Duration::from_millis(200);
    let ack = loop {
        match p.ack.await {
            // Newer servers answer a repeat of a publish still in flight with sequence 0.
            Ok(ack) if !(ack.duplicate && ack.sequence == 0) => break ack,
            r => {
                let error = match r {
                    Err(e) => e.to_string(),
                    Ok(_) => "a repeat of a publish still in flight".into(),
                };
                match unacked.note(std::time::Instant::now()) {
                    Some(failed) => {
                        tracing::warn!(%error, msg_id = %p.msg_id, failed, "work publish not acknowledged, publishing again")
                    }
                    None => {
                        tracing::debug!(%error, msg_id = %p.msg_id, "work publish not acknowledged, publishing again")
                    }
                }
                tokio::time::sleep(wait).await;
                if !super::reset::remake_if_missing(cluster, &cluster.names.work, "work").await {
                    // Made again by another node and left on its private subject: open it.
                    let _ = cluster.ensure().await;
                }
                wait = (wait * 2).min(Duration::from_secs(5));
                p.ack = publish(cluster, lease, &p.msg_id, p.payload.clone()).await?;
            }
        }
    };
    // A repeat of an earlier publish is acked with the first one's sequence.
    let key = p.env.file.key;
    cluster
        .work_floor
        .fetch_max(ack.sequence + 1, Ordering::Relaxed);
    let path = &p.env.file.path;
    let again = ledger.published(key, ack.sequence, path, p.object.as_deref(), Some(done))?;
    if let Some(lost) = p.replaces {
        ledger.forget(lost)?;
        delete_orphans(cluster, ledger).await;
    }
    // The file stays in the folder until its line is committed: admission keeps it known.
    admission.committed(key, false, true);
    Ok(again)
}

/// Deletes the files-bucket objects of publishes the ledger forgot (their work was lost, so
/// no worker deletes them). A failure leaves the object behind: it is only storage.
async fn delete_orphans(cluster: &Cluster, ledger: &mut PublishedLedger) {
    for name in std::mem::take(&mut ledger.orphans) {
        let deleted = match cluster.js.get_object_store(&cluster.names.files).await {
            Ok(store) => match store.delete(name.as_str()).await {
                // Gone already: the object whose loss had the file published again.
                Err(e) if e.kind() == DeleteErrorKind::NotFound => Ok(()),
                r => r.map_err(|e| e.to_string()),
            },
            Err(e) => Err(e.to_string()),
        };
        if let Err(error) = deleted {
            tracing::warn!(object = %name, %error, "cannot delete the object of a file whose work was lost");
        }
    }
}

/// Reads a ready file's bytes, refusing what the single-node read stage refuses before
/// decoding: non-files, symlinks out of the folder, empty and oversized files.
fn read_bytes(path: &Path, root: &Path, max: u64) -> Result<Vec<u8>, String> {
    let real = match std::fs::canonicalize(path) {
        Ok(p) => p,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ReadError::Vanished.to_string())
        }
        Err(e) => return Err(ReadError::Unreadable(e).to_string()),
    };
    if !real.starts_with(root) {
        return Err(ReadError::SymlinkOutside(real).to_string());
    }
    let file = std::fs::File::open(&real).map_err(|e| ReadError::Unreadable(e).to_string())?;
    let meta = file
        .metadata()
        .map_err(|e| ReadError::Unreadable(e).to_string())?;
    if !meta.is_file() {
        return Err(ReadError::NotAFile.to_string());
    }
    if meta.len() > max {
        return Err(ReadError::TooLarge {
            size: meta.len(),
            cap: max,
        }
        .to_string());
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| ReadError::Unreadable(e).to_string())?;
    if bytes.len() as u64 > max {
        return Err(ReadError::TooLarge {
            size: bytes.len() as u64,
            cap: max,
        }
        .to_string());
    }
    if bytes.is_empty() {
        return Err(ReadError::Empty.to_string());
    }
    Ok(bytes)
}
