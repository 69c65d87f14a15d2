//! Owns the intake role: the single-node watcher and admission feed a publisher that puts each
//! ready file on the work stream, runs the done-action after the publish ack and remembers the
//! file in `published.jsonl` so a restart does not publish it again.
//!
//! Per file: one read of its bytes and one JetStream publish (pipelined, up to [`IN_FLIGHT`]
//! unacknowledged), plus an object-store put for files over [`super::INLINE_MAX`].

use super::wire::{self, WorkMeta};
use super::Cluster;
use crate::admission::Admission;
use crate::config::{Config, DoneAction};
use crate::model::{Envelope, FileKey, SourceInfo};
use crate::read::{self, ReadError, ReadLimits};
use crate::sink::{apply_done, DonePolicy};
use crate::watcher::{self, WatchConfig};
use anyhow::{Context, Result};
use async_nats::jetstream::context::PublishAckFuture;
use async_nats::HeaderMap;
use std::collections::HashMap;
use std::future::Future;
use std::io::{BufRead, Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Unacknowledged publishes the intake keeps in flight.
const IN_FLIGHT: usize = 256;
/// The intake's ledger of published files, in `state.dir`.
pub const PUBLISHED_FILE: &str = "published.jsonl";

/// One published, not yet acknowledged file.
struct Pending {
    ack: PublishAckFuture,
    env: Envelope,
    failed: bool,
    msg_id: String,
    payload: bytes::Bytes,
}

/// Watches the drop folder and publishes ready files until `shutdown` resolves.
pub async fn run(
    cluster: Cluster,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let dir = config.source.dir.clone();
    let root = std::fs::canonicalize(&dir)
        .with_context(|| format!("source.dir {} is not a folder", dir.display()))?;
    let done = DonePolicy::from_config(&config);
    let mut ledger = PublishedLedger::open(config.state.dir.as_deref())?;
    let admission = Arc::new(Admission::new(
        config.pipeline.max_in_flight.max(IN_FLIGHT),
        ledger.published.clone(),
    ));
    let live = crate::reload::Live::new(&config)?;
    let watch = WatchConfig::from_config(&config, live);
    let (tx, rx) = async_channel::bounded::<Envelope>(config.pipeline.queue_capacity);
    let a = Arc::clone(&admission);
    let watcher = tokio::spawn(async move { watcher::run(watch, a, tx, shutdown, false).await });
    let files = cluster.js.get_object_store(&cluster.names.files).await?;
    let max_bytes = config.source.max_file_bytes;
    // With a done-action that sorts files into done and failed folders, the intake decodes what
    // it publishes (as the worker will, with this node's limits), so a file that will become a
    // read error record goes to `failed_dir`, as in the single-node mode.
    let predict = done
        .as_ref()
        .is_some_and(|p| p.action != DoneAction::Leave)
        .then_some(ReadLimits {
            max_file_bytes: max_bytes,
            max_inflated_bytes: config.source.max_inflated_bytes,
        });
    // Acks are awaited in publish order by a task of their own, so a trickle of files never
    // waits a round trip per file; the channel bounds the publishes in flight.
    let (acks_tx, mut acks_rx) = tokio::sync::mpsc::channel::<Pending>(IN_FLIGHT);
    let (cl, a) = (cluster.clone(), Arc::clone(&admission));
    let settler = tokio::spawn(async move {
        while let Some(p) = acks_rx.recv().await {
            settle(&cl, p, &mut ledger, &a, done.as_ref()).await?;
        }
        anyhow::Ok(())
    });
    while let Ok(env) = rx.recv().await {
        let (path, r) = (env.file.path.clone(), root.clone());
        let read = tokio::task::spawn_blocking(move || {
            let bytes = read_bytes(&path, &r, max_bytes)?;
            let undecodable = predict.is_some_and(|limits| {
                read::decode(
                    &path,
                    &bytes,
                    limits,
                    &mut SourceInfo::named(String::new(), 0),
                )
                .is_err()
            });
            Ok((bytes, undecodable))
        })
        .await
        .unwrap_or_else(|e| Err(format!("internal error: {e}")));
        let path_str = env.file.path.to_string_lossy().into_owned();
        let msg_id = wire::work_msg_id(&env.file.key, &path_str);
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
        let undecodable = matches!(read, Ok((_, true)));
        let body = match read.map(|(bytes, _)| bytes) {
            Ok(bytes) if bytes.len() > super::INLINE_MAX => {
                let mut reader = bytes.as_slice();
                files
                    .put(msg_id.as_str(), &mut reader)
                    .await
                    .map_err(|e| anyhow::anyhow!("cannot store a large file: {e}"))?;
                meta.object = Some(msg_id.clone());
                Vec::new()
            }
            Ok(bytes) => bytes,
            Err(error) => {
                meta.error = Some(error);
                Vec::new()
            }
        };
        let failed = meta.error.is_some() || undecodable;
        let payload = bytes::Bytes::from(wire::encode(&meta, &body)?);
        let ack = publish(&cluster, &msg_id, payload.clone()).await?;
        let p = Pending {
            ack,
            env,
            failed,
            msg_id,
            payload,
        };
        if acks_tx.send(p).await.is_err() {
            break; // the settler failed; its error is returned below
        }
    }
    drop(acks_tx);
    settler.await.context("intake ack task")??;
    watcher.await.context("watcher task")??;
    Ok(())
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

/// Publishes one work message with its file identity as `Nats-Msg-Id`.
async fn publish(
    cluster: &Cluster,
    msg_id: &str,
    payload: bytes::Bytes,
) -> Result<PublishAckFuture> {
    let mut headers = HeaderMap::new();
    headers.insert(async_nats::header::NATS_MESSAGE_ID, msg_id);
    cluster
        .js
        .publish_with_headers(cluster.names.work_subject.clone(), headers, payload)
        .await
        .context("cannot publish to the work stream")
}

/// Waits for one publish ack (re-publishing under the same message id until the servers take
/// it), then records the file and runs its done-action.
async fn settle(
    cluster: &Cluster,
    mut p: Pending,
    ledger: &mut PublishedLedger,
    admission: &Admission,
    done: Option<&DonePolicy>,
) -> Result<()> {
    let mut wait = Duration::from_millis(200);
    loop {
        match p.ack.await {
            Ok(_) => break,
            Err(error) => {
                tracing::warn!(%error, msg_id = %p.msg_id, "work publish not acknowledged, publishing again");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(5));
                p.ack = publish(cluster, &p.msg_id, p.payload.clone()).await?;
            }
        }
    }
    let key = p.env.file.key;
    ledger.record(&key, p.failed)?;
    let mut remember = true;
    if let Some(policy) = done {
        remember = policy.action == DoneAction::Leave;
        if let Err(error) = apply_done(policy, &p.env.file.path, p.failed) {
            tracing::warn!(path = %p.env.file.path.display(), %error, "done-action failed");
            remember = true;
        }
    }
    admission.committed(key, p.failed, remember);
    Ok(())
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

/// The intake's record of published files: one JSON line per file, appended after its ack.
struct PublishedLedger {
    file: Option<std::fs::File>,
    published: HashMap<FileKey, bool>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct PublishedEntry {
    key: FileKey,
    #[serde(default)]
    failed: bool,
}

impl PublishedLedger {
    /// Opens (and reads) `published.jsonl` in `dir`; without a state dir nothing is kept and a
    /// restart relies on the work stream's duplicate window alone.
    fn open(dir: Option<&Path>) -> Result<Self> {
        let Some(dir) = dir else {
            tracing::warn!("no state.dir: a restarted intake publishes files left in place again (the servers drop repeats within 10 minutes)");
            return Ok(Self {
                file: None,
                published: HashMap::new(),
            });
        };
        let path = dir.join(PUBLISHED_FILE);
        let mut published = HashMap::new();
        if let Ok(f) = std::fs::File::open(&path) {
            // A torn last line (a crash mid-append) does not parse and is skipped: that file is
            // published again and the servers drop the repeat.
            for line in std::io::BufReader::new(f).lines().map_while(Result::ok) {
                if let Ok(e) = serde_json::from_str::<PublishedEntry>(&line) {
                    published.insert(e.key, e.failed);
                }
            }
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        Ok(Self {
            file: Some(file),
            published,
        })
    }

    fn record(&mut self, key: &FileKey, failed: bool) -> Result<()> {
        if let Some(f) = &mut self.file {
            let mut line = serde_json::to_vec(&PublishedEntry { key: *key, failed })?;
            line.push(b'\n');
            f.write_all(&line)
                .context("cannot append to published.jsonl")?;
        }
        Ok(())
    }
}
