//! Owns the cluster's local file sink: follows the output stream into `output.path`.
//!
//! Line N of the file is output-stream sequence N, so the file is its own ledger: on start the
//! sink cuts a torn last line and continues at the sequence after the last complete one.
//! Exactly once in the file, across kills at any instant, without a separate ledger. The file
//! is written by this sink only (the state lock keeps a second process off `state.dir`).

use super::Cluster;
use anyhow::{bail, Context, Result};
use async_nats::jetstream::consumer::{pull, DeliverPolicy};
use futures_util::StreamExt;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::watch;

/// Lines written between fsyncs at most; a quiet second syncs too.
const SYNC_EVERY: u64 = 1024;

/// Appends the output stream to `path` until `stop` turns true.
pub async fn run(cluster: Cluster, path: PathBuf, stop: watch::Receiver<bool>) -> Result<()> {
    let stopping = super::stopped(stop);
    tokio::pin!(stopping);
    let p = path.clone();
    let (mut file, lines) = tokio::task::spawn_blocking(move || open_at_last_line(&p)).await??;
    tracing::info!(path = %path.display(), lines, "file sink continues after its last complete line");
    let out = cluster.js.get_stream(&cluster.names.out).await?;
    let consumer = out
        .create_consumer(pull::OrderedConfig {
            deliver_policy: DeliverPolicy::ByStartSequence {
                start_sequence: lines + 1,
            },
            ..Default::default()
        })
        .await?;
    let mut messages = consumer.messages().await?;
    let mut written = lines;
    let mut unsynced = 0u64;
    let mut buf: Vec<u8> = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    loop {
        tokio::select! {
            _ = &mut stopping => break,
            _ = tick.tick() => {
                if unsynced > 0 {
                    flush(&mut file, &mut buf)?;
                    unsynced = 0;
                }
            }
            msg = messages.next() => {
                let Some(msg) = msg else { break };
                let msg = msg.map_err(|e| anyhow::anyhow!("cannot read the output stream: {e}"))?;
                let seq = msg.info().map_err(|e| anyhow::anyhow!("{e}"))?.stream_sequence;
                if seq != written + 1 {
                    bail!("output stream sequence {seq} follows line {written} of {}: the file is not this stream's", path.display());
                }
                buf.extend_from_slice(&msg.payload);
                buf.push(b'\n');
                written += 1;
                unsynced += 1;
                if unsynced >= SYNC_EVERY {
                    flush(&mut file, &mut buf)?;
                    unsynced = 0;
                }
            }
        }
    }
    flush(&mut file, &mut buf)
}

fn flush(file: &mut File, buf: &mut Vec<u8>) -> Result<()> {
    file.write_all(buf)
        .context("cannot write the output file")?;
    file.sync_data().context("cannot sync the output file")?;
    buf.clear();
    Ok(())
}

/// Opens `path` for appending after its last complete line (cutting what follows it) and
/// returns the file and the number of complete lines.
fn open_at_last_line(path: &Path) -> Result<(File, u64)> {
    let mut f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(path)
        .with_context(|| format!("cannot open output.path {}", path.display()))?;
    let mut lines = 0u64;
    let mut end = 0u64;
    let mut pos = 0u64;
    let mut chunk = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        for (i, b) in chunk[..n].iter().enumerate() {
            if *b == b'\n' {
                lines += 1;
                end = pos + i as u64 + 1;
            }
        }
        pos += n as u64;
    }
    if end < pos {
        tracing::warn!(
            bytes = pos - end,
            "cut a torn last line from the output file"
        );
        f.set_len(end)?;
    }
    f.seek(SeekFrom::Start(end))?;
    Ok((f, lines))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_torn_last_line_is_cut_and_not_counted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.jsonl");
        std::fs::write(&path, b"{\"a\":1}\n{\"b\":2}\n{\"c\"").unwrap();
        let (mut f, lines) = open_at_last_line(&path).unwrap();
        assert_eq!(lines, 2);
        f.write_all(b"{\"c\":3}\n").unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\"a\":1}\n{\"b\":2}\n{\"c\":3}\n"
        );
        let (_, lines) = open_at_last_line(&path).unwrap();
        assert_eq!(lines, 3);
    }
}
