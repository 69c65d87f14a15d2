//! Owns the ledger's compactions, at start-up and while running (written in the background by
//! [`prepare`], swapped in by [`swap`]), and the reading back of the dedup entries start-up
//! keeps. All of it streams: a ledger holds about 2 KB of dedup entry per document (100,000
//! documents make 180 MB), so neither the entries nor the new file are ever held whole.

use super::{parse_line, push_line, Binding, Checkpoint, LedgerEntry, Line, Recovered};
use crate::dedup::IndexEntry;
use crate::durable::{self, Rename};
use anyhow::{bail, Context, Result};
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// The dedup entries of a compacted ledger: its last `count` lines, from byte `from`.
#[derive(Debug, Default)]
pub struct DedupEntries {
    path: Option<PathBuf>,
    from: u64,
    count: usize,
}

impl DedupEntries {
    /// How many entries there are.
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Calls `f` with each entry, in commit order.
    pub fn for_each(&self, mut f: impl FnMut(IndexEntry)) -> Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        if self.count == 0 {
            return Ok(());
        }
        let what = || format!("cannot read the dedup entries of {}", path.display());
        let mut r = BufReader::with_capacity(1 << 16, File::open(path).with_context(what)?);
        r.seek(SeekFrom::Start(self.from)).with_context(what)?;
        let mut line = Vec::new();
        for _ in 0..self.count {
            match read_line(&mut r, &mut line).with_context(what)? {
                Some(Line::Dedup { dedup }) => f(dedup),
                _ => bail!(
                    "{}: a compacted ledger's dedup line does not read back",
                    what()
                ),
            }
        }
        Ok(())
    }
}

/// Reads the next line into `buf` and parses it; `None` for a damaged line.
fn read_line(r: &mut impl BufRead, buf: &mut Vec<u8>) -> Result<Option<Line>> {
    buf.clear();
    let n = r.read_until(b'\n', buf)?;
    if n == 0 || buf.last() != Some(&b'\n') {
        bail!("the ledger ends mid-line");
    }
    Ok(std::str::from_utf8(&buf[..n - 1]).ok().and_then(parse_line))
}

/// Rewrites the ledger at `path` keeping the checkpoint (bound to `output`), files still
/// present, and the last `keep_dedup` dedup entries (read again from the old file at the
/// offsets `rec` noted); temp file, fsync, rename, fsync dir. Then `rec.dedup` reads them.
pub(super) fn compact(
    path: &Path,
    rec: &mut Recovered,
    keep_dedup: usize,
    output: Option<Binding>,
    tail: Option<u32>,
) -> Result<()> {
    rec.committed.retain(|_, c| Path::new(&c.path).exists());
    let skip = rec.dedup_at.len().saturating_sub(keep_dedup);
    let mut from = 0;
    durable::replace_with(path, Rename::Durable, |w| {
        from = write_compacted(w, path, rec, skip, output, tail)?;
        Ok(())
    })?;
    rec.dedup = DedupEntries {
        path: Some(path.to_path_buf()),
        from,
        count: rec.dedup_at.len() - skip,
    };
    rec.dedup_at = Vec::new();
    Ok(())
}

/// Writes the compacted ledger to `w`: a checkpoint (`rec`'s lengths, bound to `output`), an
/// entry per file in `rec.committed`, then the dedup entries `rec` noted past the first `skip`,
/// read again from the ledger at `path`. Returns where the dedup entries start.
fn write_compacted(
    w: &mut impl Write,
    path: &Path,
    rec: &Recovered,
    skip: usize,
    output: Option<Binding>,
    tail: Option<u32>,
) -> Result<u64> {
    let kept = &rec.dedup_at[skip..];
    let mut buf = Vec::new();
    let cp = Checkpoint {
        out: rec.out_len,
        err: rec.err_len,
        output,
        tail,
    };
    let (out, err) = (cp.out, cp.err);
    push_line(&mut buf, &Line::Checkpoint { checkpoint: cp })?;
    let mut from = 0;
    for (key, c) in &rec.committed {
        let e = LedgerEntry {
            key: *key,
            path: c.path.clone(),
            id: None,
            failed: c.failed,
            out,
            err,
            tail: None,
            dedup: None,
        };
        push_line(&mut buf, &e)?;
        if buf.len() >= 1 << 16 {
            from += buf.len() as u64;
            w.write_all(&buf)?;
            buf.clear();
        }
    }
    from += buf.len() as u64;
    w.write_all(&buf)?;
    if kept.is_empty() {
        return Ok(from);
    }
    let old = File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut r = BufReader::with_capacity(1 << 16, old);
    let (mut at, mut line) = (0u64, Vec::new());
    for &offset in kept {
        r.seek_relative((offset - at) as i64)?;
        let dedup = match read_line(&mut r, &mut line)? {
            Some(Line::Entry(e)) => e.dedup,
            Some(Line::Dedup { dedup }) => Some(dedup),
            _ => None,
        };
        let Some(dedup) = dedup else {
            bail!("ledger line at byte {offset} no longer holds the dedup entry it held");
        };
        at = offset + line.len() as u64;
        buf.clear();
        push_line(&mut buf, &Line::Dedup { dedup })?;
        w.write_all(&buf)?;
    }
    Ok(from)
}

/// A compaction of the ledger's first `upto` bytes, written and synced to `tmp` while the sink
/// went on committing.
#[derive(Debug)]
pub(super) struct Prepared {
    upto: u64,
    tmp: PathBuf,
}

/// The file a compaction while running writes before [`swap`] renames it over the ledger (a
/// crash leaves it; start-up removes it).
pub(super) fn compacting(path: &Path) -> PathBuf {
    durable::beside(path, ".compacting")
}

/// Compacts the ledger's first `upto` bytes (whole committed lines, holding `dedup_entries`
/// dedup entries) into [`compacting`], in one pass and without holding them: each line is
/// copied as it is, or without its dedup entry (past the newest `keep_dedup`), or as its dedup
/// entry alone (its file gone), or dropped; then a checkpoint with the lengths, binding and
/// tail checksum the last of them recorded (start-up reads the latest). A prefix with damaged
/// lines is left to start-up, which reconciles the output with them first.
pub(super) fn prepare(
    path: &Path,
    upto: u64,
    dedup_entries: usize,
    keep_dedup: usize,
) -> Result<Prepared> {
    let old = File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut r = BufReader::with_capacity(1 << 16, old.take(upto));
    let tmp = compacting(path);
    let f = File::create(&tmp).with_context(|| format!("cannot write {}", tmp.display()))?;
    let mut w = BufWriter::with_capacity(1 << 16, &f);
    let skip = dedup_entries.saturating_sub(keep_dedup);
    let mut last = Checkpoint::default();
    // The last tail checksum recorded, and the output length it is of.
    let mut tail: Option<(u64, u32)> = None;
    let (mut seen, mut read, mut line, mut buf) = (0usize, 0u64, Vec::new(), Vec::new());
    while read < upto {
        let parsed = read_line(&mut r, &mut line)?;
        read += line.len() as u64;
        buf.clear();
        match parsed {
            Some(Line::Checkpoint { checkpoint }) => {
                (last.out, last.err) = (checkpoint.out, checkpoint.err);
                tail = checkpoint.tail.map(|t| (checkpoint.out, t));
                if checkpoint.output.is_some() {
                    last.output = checkpoint.output;
                }
            }
            Some(Line::Entry(mut e)) => {
                (last.out, last.err) = (e.out, e.err);
                if let Some(t) = e.tail {
                    tail = Some((e.out, t));
                }
                let dedup_kept = e.dedup.is_some() && {
                    seen += 1;
                    seen > skip
                };
                let present = Path::new(&e.path).exists();
                if present && dedup_kept {
                    buf.extend_from_slice(&line);
                } else if present {
                    (e.dedup, e.tail) = (None, None);
                    push_line(&mut buf, &*e)?;
                } else if let (true, Some(dedup)) = (dedup_kept, e.dedup) {
                    push_line(&mut buf, &Line::Dedup { dedup })?;
                }
            }
            Some(Line::Dedup { .. }) => {
                seen += 1;
                if seen > skip {
                    buf.extend_from_slice(&line);
                }
            }
            None => bail!(
                "a damaged line at byte {}: left for the next start-up, which reconciles the \
                 output with it",
                read - line.len() as u64
            ),
        }
        w.write_all(&buf)?;
    }
    last.tail = tail.filter(|&(at, _)| at == last.out).map(|(_, crc)| crc);
    buf.clear();
    push_line(&mut buf, &Line::Checkpoint { checkpoint: last })?;
    w.write_all(&buf)?;
    w.flush()
        .and_then(|()| f.sync_all())
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    Ok(Prepared { upto, tmp })
}

/// Why [`swap`] failed: before the rename the old ledger stands and is still the one open;
/// after it, the new one is in place but could not be opened or made durable.
pub(super) enum SwapError {
    Before(anyhow::Error),
    After(anyhow::Error),
}

/// Appends the ledger's bytes from `p.upto` to `len` (committed while `p` was prepared) to
/// `p.tmp`, syncs it, renames it over the ledger and syncs the folder; returns the new ledger
/// open for appending.
pub(super) fn swap(path: &Path, len: u64, p: &Prepared) -> Result<File, SwapError> {
    let before = |e: anyhow::Error| SwapError::Before(e);
    let tmp = &p.tmp;
    let copy = || -> Result<()> {
        let old = File::open(path)?;
        let mut new = OpenOptions::new().append(true).open(tmp)?;
        let mut chunk = vec![0; 1 << 20];
        let mut at = p.upto;
        while at < len {
            let n = chunk.len().min((len - at) as usize);
            old.read_exact_at(&mut chunk[..n], at)?;
            new.write_all(&chunk[..n])?;
            at += n as u64;
        }
        new.sync_all()?;
        Ok(())
    };
    copy()
        .with_context(|| format!("cannot finish {}", tmp.display()))
        .map_err(before)?;
    fs::rename(tmp, path)
        .with_context(|| format!("cannot replace {}", path.display()))
        .map_err(before)?;
    let after = |e: anyhow::Error| SwapError::After(e);
    durable::sync_folder(path).map_err(after)?;
    OpenOptions::new()
        .append(true)
        .open(path)
        .with_context(|| format!("cannot open ledger {}", path.display()))
        .map_err(after)
}
