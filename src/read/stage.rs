//! Owns the read stage's pipeline adapter: the intake of a file list (`process`), and the step
//! that turns an admitted file into a [`Work::Raw`] document or an error record.

use crate::admission::Admission;
use crate::model::{Envelope, ErrorRecord, FileKey, Work};
use crate::read::{self, ReadLimits};
use crate::telemetry::{self, Totals};
use crate::watcher;
use async_channel::Sender;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Admits `files` in order and sends them to the read stage (the `process` command's intake).
pub async fn feed_list(
    files: Vec<PathBuf>,
    admission: Arc<Admission>,
    tx: Sender<Envelope>,
) -> anyhow::Result<()> {
    for path in files {
        let key = match std::fs::symlink_metadata(&path) {
            Ok(meta) => read::file_key(&meta),
            // Still sent: the read stage turns it into an error record.
            Err(_) => FileKey {
                dev: 0,
                ino: 0,
                size: 0,
                mtime_ns: 0,
            },
        };
        let Some(seq) = admission.admit(key).await else {
            continue;
        };
        if tx.send(watcher::envelope(seq, path, key)).await.is_err() {
            break;
        }
    }
    Ok(())
}

/// Reads one admitted file: `root` is the canonical drop folder (`None` in `process`),
/// `drop_dir` the folder as configured, for the stripper's per-source key.
pub fn read_step(
    root: Option<&Path>,
    drop_dir: Option<&Path>,
    limits: ReadLimits,
    totals: &Totals,
    mut env: Envelope,
) -> Envelope {
    if !matches!(env.work, Work::Ready) {
        return env;
    }
    match read::read_file(&env.file.path, root, limits, &mut env.source) {
        Ok(mut raw) => {
            totals.bytes.fetch_add(env.source.bytes, Ordering::Relaxed);
            metrics::counter!(telemetry::BYTES_READ).increment(env.source.bytes);
            raw.source_key = source_key(drop_dir, &env.file.path);
            env.work = Work::Raw(raw);
        }
        Err(error) => {
            tracing::warn!(path = %env.file.path.display(), %error, "failed to read dropped file");
            env.work = Work::Failed(ErrorRecord {
                kind: "error".into(),
                source: env.source.clone(),
                stage: "read".into(),
                error: error.to_string(),
            });
        }
    }
    env
}

/// Returns the folder a file came from, relative to the drop folder: the stripper's source.
fn source_key(root: Option<&Path>, path: &Path) -> String {
    let parent = path.parent().unwrap_or(Path::new(""));
    let rel = root
        .and_then(|r| {
            std::fs::canonicalize(parent)
                .ok()
                .map(|p| (r.to_path_buf(), p))
        })
        .and_then(|(r, p)| p.strip_prefix(&r).ok().map(Path::to_path_buf))
        .unwrap_or_else(|| parent.to_path_buf());
    rel.display().to_string()
}
