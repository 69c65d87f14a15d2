//! Owns the start-up compaction of the ledger and the reading back of the dedup entries it
//! keeps. Both stream: a ledger holds about 2 KB of dedup entry per document (100,000
//! documents make 180 MB), so neither the entries nor the new file are ever held whole.

use super::{parse_line, push_line, Binding, Checkpoint, LedgerEntry, Line, Recovered};
use crate::dedup::IndexEntry;
use crate::durable::{self, Rename};
use anyhow::{bail, Context, Result};
use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
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
    let kept = &rec.dedup_at[skip..];
    let old = match File::open(path) {
        Ok(f) => Some(BufReader::with_capacity(1 << 16, f)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && kept.is_empty() => None,
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let mut from = 0;
    durable::replace_with(path, Rename::Durable, |w| {
        let mut buf = Vec::new();
        let cp = Checkpoint {
            out: rec.out_len,
            err: rec.err_len,
            output,
            tail,
        };
        let (out, err) = (cp.out, cp.err);
        push_line(&mut buf, &Line::Checkpoint { checkpoint: cp })?;
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
        let Some(mut r) = old else {
            return Ok(());
        };
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
        Ok(())
    })?;
    rec.dedup = DedupEntries {
        path: Some(path.to_path_buf()),
        from,
        count: kept.len(),
    };
    rec.dedup_at = Vec::new();
    Ok(())
}
