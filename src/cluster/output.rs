//! Owns the cluster's local file sink: follows the output stream into `output.path`.
//!
//! With `dedup.on_duplicate = "emit"` and no position file, line N of the file is
//! output-stream sequence N, so the file is its own ledger: on start the sink cuts a torn last
//! line and continues at the sequence after the last complete one.
//!
//! With a `state.dir`, the sink keeps its position there (`cluster-sink.pos`: the last stream
//! sequence consumed, the file's length after it and the file's identity), written after each
//! fsync of the file. That lets it leave out the duplicates `on_duplicate` drops (the output
//! stream keeps every line; its subject names the status) and follow the file when it is
//! rotated: a restart cuts what follows the recorded length of the same file (written, not
//! recorded), continues at the end of a new file (renamed or deleted, then recreated) or of a
//! file truncated in place. Exactly once in the file, across kills at any instant. The file
//! is written by this sink only (the state lock keeps a second process off `state.dir`).

use super::{wire, Cluster};
use crate::dedup::OnDuplicate;
use crate::durable::{self, Rename};
use crate::model::DedupStatus;
use anyhow::{bail, Context, Result};
use async_nats::jetstream::consumer::{pull, DeliverPolicy};
use futures_util::StreamExt;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::watch;

/// Lines written between fsyncs at most; a quiet second syncs too.
const SYNC_EVERY: u64 = 1024;

/// Where the file sink is to write and what it leaves out.
pub struct FileSink {
    pub path: PathBuf,
    /// `state.dir`, where the position is kept; `None`: the file is its own ledger (config
    /// validation refuses a sink that leaves lines out without one).
    pub state_dir: Option<PathBuf>,
    pub on_duplicate: OnDuplicate,
}

/// Appends the output stream to the sink's file until `stop` turns true.
pub async fn run(cluster: Cluster, sink: FileSink, stop: watch::Receiver<bool>) -> Result<()> {
    let stopping = super::stopped(stop);
    tokio::pin!(stopping);
    let pos_path = sink.state_dir.as_ref().map(|d| d.join(POSITION_FILE));
    let (path, pp) = (sink.path.clone(), pos_path.clone());
    // Without a recorded position the file's lines are counted: map them to the stream.
    let counted = pos_path.as_ref().is_none_or(|p| !p.exists());
    let (mut file, mut at) =
        tokio::task::spawn_blocking(move || open(&path, pp.as_deref())).await??;
    if counted {
        at.seq = seq_of_line(&cluster, at.seq).await?;
    }
    let path = sink.path;
    tracing::info!(path = %path.display(), seq = at.seq, "file sink continues after its last line");
    let out = cluster.js.get_stream(&cluster.names.out).await?;
    let mut messages = super::ordered::ordered(
        &out,
        pull::OrderedConfig {
            deliver_policy: DeliverPolicy::ByStartSequence {
                start_sequence: at.seq + 1,
            },
            ..Default::default()
        },
    )
    .await?;
    let mut unsynced = 0u64;
    let mut buf: Vec<u8> = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    let prefix = format!("{}.", cluster.names.out_prefix);
    loop {
        tokio::select! {
            _ = &mut stopping => break,
            _ = tick.tick() => {
                if unsynced > 0 {
                    flush(&mut file, &mut buf, &mut at, pos_path.as_deref())?;
                    unsynced = 0;
                }
            }
            msg = messages.next() => {
                let Some(msg) = msg else { break };
                let msg = msg.map_err(|e| anyhow::anyhow!("cannot read the output stream: {e}"))?;
                let seq = msg.info().map_err(|e| anyhow::anyhow!("{e}"))?.stream_sequence;
                if seq != at.seq + 1 {
                    bail!("output stream sequence {seq} follows line {} of {}: the file is not this stream's", at.seq, path.display());
                }
                let status = msg.subject.strip_prefix(prefix.as_str()).and_then(DedupStatus::parse);
                let marker = wire::is_lost(&msg.subject, &cluster.names.out_prefix);
                if !marker && !status.is_some_and(|s| sink.on_duplicate.drops(s)) {
                    buf.extend_from_slice(&msg.payload);
                    buf.push(b'\n');
                }
                at.seq = seq;
                unsynced += 1;
                if unsynced >= SYNC_EVERY {
                    flush(&mut file, &mut buf, &mut at, pos_path.as_deref())?;
                    unsynced = 0;
                }
            }
        }
    }
    flush(&mut file, &mut buf, &mut at, pos_path.as_deref())
}

/// Returns the output sequence of the file's line `lines` (its last complete one), for a
/// sink without a position file: `lines` itself unless the stream holds lost-work markers
/// ([`wire::LOST`], not lines), which are then counted out of the stream's headers.
async fn seq_of_line(cluster: &Cluster, lines: u64) -> Result<u64> {
    let out = cluster.js.get_stream(&cluster.names.out).await?;
    if lines == 0 || lost_markers(&out, &cluster.names.out_prefix).await? == 0 {
        return Ok(lines);
    }
    let mut messages = super::ordered::ordered(
        &out,
        pull::OrderedConfig {
            headers_only: true,
            ..Default::default()
        },
    )
    .await?;
    let mut seen = 0;
    while let Some(msg) = messages.next().await {
        let msg = msg.map_err(|e| anyhow::anyhow!("cannot read the output stream: {e}"))?;
        if !wire::is_lost(&msg.subject, &cluster.names.out_prefix) {
            seen += 1;
        }
        if seen == lines {
            return Ok(msg
                .info()
                .map_err(|e| anyhow::anyhow!("{e}"))?
                .stream_sequence);
        }
        if msg.info().is_ok_and(|i| i.pending == 0) {
            break;
        }
    }
    bail!("the output file has {lines} lines, the output stream {seen}: the file is not this stream's")
}

/// Returns how many lost-work markers ([`wire::LOST`]) the output stream `out` holds, from
/// the server's count per subject.
pub(super) async fn lost_markers(
    out: &async_nats::jetstream::stream::Stream,
    out_prefix: &str,
) -> Result<usize> {
    let mut subjects = out
        .info_with_subjects(format!("{out_prefix}.{}", wire::LOST))
        .await?;
    let mut n = 0;
    while let Some(s) = subjects.next().await {
        n += s.map_err(|e| anyhow::anyhow!("{e}"))?.1;
    }
    Ok(n)
}

/// The position file's name in `state.dir`.
pub const POSITION_FILE: &str = "cluster-sink.pos";

/// Where the sink stands: the last output sequence consumed, the file's length after it and
/// the file's identity.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Position {
    seq: u64,
    len: u64,
    dev: u64,
    ino: u64,
}

impl Position {
    fn parse(text: &str) -> Option<Position> {
        let mut f = text.split_ascii_whitespace().map(|w| w.parse::<u64>().ok());
        let (seq, len, dev, ino) = (f.next()??, f.next()??, f.next()??, f.next()??);
        Some(Position { seq, len, dev, ino })
    }

    /// Writes the position to `path` through a temporary file and a rename.
    fn store(&self, path: &Path) -> Result<()> {
        let text = format!("{} {} {} {}\n", self.seq, self.len, self.dev, self.ino);
        // An older position after a power loss makes the sink cut back to it and read the
        // stream again from there: the same lines, not a gap.
        durable::replace(path, text.as_bytes(), Rename::Atomic)
    }
}

/// Opens the sink's file where the position (or, without one, its last complete line) says.
fn open(path: &Path, pos_path: Option<&Path>) -> Result<(File, Position)> {
    let recorded = match pos_path {
        Some(p) => match std::fs::read_to_string(p) {
            Ok(text) => Some(Position::parse(&text).with_context(|| {
                format!(
                    "{} is damaged: remove it and the output file to start over",
                    p.display()
                )
            })?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", p.display())),
        },
        None => None,
    };
    let Some(mut at) = recorded else {
        let (file, lines) = open_at_last_line(path)?;
        let meta = file.metadata()?;
        let at = Position {
            seq: lines,
            len: meta.len(),
            dev: meta.dev(),
            ino: meta.ino(),
        };
        return Ok((file, at));
    };
    let mut f = open_rw(path)?;
    let meta = f.metadata()?;
    if (meta.dev(), meta.ino()) != (at.dev, at.ino) {
        tracing::info!(path = %path.display(), "the output file is a new one (rotated or recreated): continuing at its end");
    } else if meta.len() > at.len {
        tracing::warn!(
            bytes = meta.len() - at.len,
            "cut output lines written after the last recorded position"
        );
        f.set_len(at.len)?;
    } else if meta.len() < at.len {
        tracing::warn!(path = %path.display(), "the output file was truncated in place: continuing at its new end");
    }
    at.len = f.seek(SeekFrom::End(0))?;
    (at.dev, at.ino) = (meta.dev(), meta.ino());
    Ok((f, at))
}

/// Writes and syncs `buf`, then records the position (when the sink keeps one).
fn flush(
    file: &mut File,
    buf: &mut Vec<u8>,
    at: &mut Position,
    pos_path: Option<&Path>,
) -> Result<()> {
    file.write_all(buf)
        .context("cannot write the output file")?;
    file.sync_data().context("cannot sync the output file")?;
    at.len += buf.len() as u64;
    buf.clear();
    match pos_path {
        Some(p) => at.store(p),
        None => Ok(()),
    }
}

/// Opens (creating) the output file for reading and writing, as it is.
fn open_rw(path: &Path) -> Result<File> {
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(path)
        .with_context(|| format!("cannot open output.path {}", path.display()))
}

/// Opens `path` for appending after its last complete line (cutting what follows it) and
/// returns the file and the number of complete lines.
fn open_at_last_line(path: &Path) -> Result<(File, u64)> {
    let mut f = open_rw(path)?;
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

    /// Writes `text` to the sink's file and returns its position after line `seq`.
    fn written(path: &Path, text: &str, seq: u64) -> Position {
        std::fs::write(path, text).unwrap();
        let m = std::fs::metadata(path).unwrap();
        Position {
            seq,
            len: m.len(),
            dev: m.dev(),
            ino: m.ino(),
        }
    }

    #[test]
    fn a_recorded_position_cuts_unrecorded_lines_and_follows_rotation_and_truncation() {
        let dir = tempfile::tempdir().unwrap();
        let (path, pos) = (dir.path().join("out.jsonl"), dir.path().join(POSITION_FILE));
        // Lines written after the last recorded position are cut.
        let at = written(&path, "{\"a\":1}\n", 7);
        at.store(&pos).unwrap();
        std::fs::write(&path, "{\"a\":1}\n{\"b\":2}\n").unwrap();
        let (_, got) = open(&path, Some(&pos)).unwrap();
        assert_eq!((got.seq, got.len), (7, 8));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"a\":1}\n");
        // A file renamed away and recreated: the new one continues at its end, same sequence.
        std::fs::rename(&path, dir.path().join("out.jsonl.1")).unwrap();
        std::fs::write(&path, "x\n").unwrap();
        let (_, got) = open(&path, Some(&pos)).unwrap();
        assert_eq!((got.seq, got.len), (7, 2));
        assert_eq!(
            std::fs::read_to_string(dir.path().join("out.jsonl.1")).unwrap(),
            "{\"a\":1}\n"
        );
        // Deleted: a new empty file.
        std::fs::remove_file(&path).unwrap();
        let (_, got) = open(&path, Some(&pos)).unwrap();
        assert_eq!((got.seq, got.len), (7, 0));
        // Truncated in place (copytruncate): continue at the new end.
        let at = written(&path, "{\"a\":1}\n{\"b\":2}\n", 9);
        at.store(&pos).unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(0)
            .unwrap();
        let (_, got) = open(&path, Some(&pos)).unwrap();
        assert_eq!((got.seq, got.len), (9, 0));
    }

    #[test]
    fn a_damaged_position_is_an_error_that_says_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let (path, pos) = (dir.path().join("out.jsonl"), dir.path().join(POSITION_FILE));
        std::fs::write(&pos, "12 x").unwrap();
        let e = open(&path, Some(&pos)).unwrap_err();
        assert!(format!("{e:#}").contains("is damaged"), "{e:#}");
    }
}
