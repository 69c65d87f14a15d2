//! Owns start-up reconciliation of the output file with the ledger: cut back an uncommitted
//! tail, keep lines the ledger lost (their files are gone: the done-action ran), adopt lines in
//! the range of a damaged entry, and refuse an output the ledger cannot explain.

use super::{file_len, identity, tail_crc, Committed, Recovered};
use crate::config::Refused;
use anyhow::{Context, Result};
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// Makes the output at `out` agree with the ledger: cuts an uncommitted tail back, keeps lines
/// the ledger lost, and refuses (exit 2) an output that is not the one it committed to.
pub(super) fn reconcile_output(out: &Path, dir: &Path, rec: &mut Recovered) -> Result<()> {
    let len = file_len(out)?;
    let here = identity(out);
    let advice = "move it aside (or point output.path at a new file) and start again";
    match &rec.binding {
        _ if len == 0 => {
            // Nothing to lose: a new or emptied output starts at 0.
            if rec.out_len > 0 {
                tracing::warn!(path = %out.display(), committed = rec.out_len, "output is empty, assuming it was rotated");
            }
            rec.out_len = 0;
            rec.tail = None;
            return Ok(());
        }
        None if !rec.seen => {
            return Err(Refused(format!(
                "output {} already holds {len} bytes that state.dir {} has no record of \
                 (new, emptied or deleted state); dropline will not append to or cut it: {advice}",
                out.display(),
                dir.display()
            ))
            .into());
        }
        // A ledger from before bindings existed: it wrote to this path.
        None => {}
        Some(b) if b.path != out || Some((b.dev, b.ino)) != here => {
            return Err(Refused(format!(
                "output {} ({len} bytes) is not the file state.dir {} committed to ({}, inode {}): \
                 it was replaced or output.path changed; {advice}",
                out.display(),
                dir.display(),
                b.path.display(),
                b.ino
            ))
            .into());
        }
        Some(_) => {}
    }
    if len < rec.out_len {
        // Truncated in place (copytruncate) after the last commit: new lines go at its end.
        tracing::warn!(path = %out.display(), len, committed = rec.out_len, "output shorter than committed, assuming it was truncated by a rotation");
        rec.out_len = len;
        rec.tail = None;
        return Ok(());
    }
    if let Some((at, crc)) = rec.tail {
        if at <= len && tail_crc(out, at)? != crc {
            return Err(Refused(format!(
                "output {} was rewritten since its last commit (its bytes before offset {at} \
                 differ from what was committed); {advice}",
                out.display()
            ))
            .into());
        }
    }
    for (from, to) in std::mem::take(&mut rec.gaps) {
        if to <= len && from < to {
            for l in scan_lines(out, from, to)?.unwrap_or_default() {
                adopt(&l, rec);
            }
        }
    }
    if len > rec.out_len {
        let lines = scan_lines(out, rec.out_len, len)?.map_err(|at| {
            Refused(format!(
                "output {} has a line at offset {at}, past what was committed, that dropline \
                 did not write; {advice}",
                out.display()
            ))
        })?;
        // Lines up to the last one whose file is gone were committed: the done-action ran.
        let keep = lines.iter().rposition(|l| l.gone()).map_or(0, |i| i + 1);
        for l in &lines[..keep] {
            adopt(l, rec);
        }
        rec.adopted += keep;
        let new_len = lines[..keep].last().map_or(rec.out_len, |l| l.end);
        let f = OpenOptions::new()
            .write(true)
            .open(out)
            .with_context(|| format!("cannot cut back {}", out.display()))?;
        f.set_len(new_len)?;
        f.sync_all()?;
        rec.truncated_bytes += len - new_len;
        rec.out_len = new_len;
    }
    Ok(())
}

/// One whole output line found past the committed length (or in a damaged entry's range).
struct FoundLine {
    path: Option<PathBuf>,
    failed: bool,
    bytes: Option<u64>,
    end: u64,
}

impl FoundLine {
    fn gone(&self) -> bool {
        self.path
            .as_ref()
            .is_some_and(|p| fs::symlink_metadata(p).is_err())
    }
}

/// Reads the whole lines in `[from, to)` of `path` (a torn last line is left out); `Err` with
/// the offset of the first whole line that is not a record with a `source.path`: something
/// other than dropline wrote it.
fn scan_lines(path: &Path, from: u64, to: u64) -> Result<std::result::Result<Vec<FoundLine>, u64>> {
    let mut f = File::open(path)?;
    f.seek(SeekFrom::Start(from))?;
    let mut reader = BufReader::new(f.take(to - from));
    let mut found = Vec::new();
    let mut at = from;
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line)?;
        if n == 0 || line.last() != Some(&b'\n') {
            break;
        }
        let v = serde_json::from_slice::<serde_json::Value>(&line).unwrap_or_default();
        let source = &v["source"];
        let Some(p) = source["path"].as_str() else {
            return Ok(Err(at));
        };
        at += n as u64;
        found.push(FoundLine {
            path: Some(PathBuf::from(p)),
            failed: v["type"] == "error",
            bytes: source["bytes"].as_u64(),
            end: at,
        });
    }
    Ok(Ok(found))
}

/// Marks the file of a kept line committed, when it is still there with the size it had.
fn adopt(line: &FoundLine, rec: &mut Recovered) {
    let Some(path) = &line.path else { return };
    let Ok(meta) = fs::symlink_metadata(path) else {
        return;
    };
    if line.bytes.is_some_and(|b| b != meta.len()) {
        return; // rewritten since: a new version, processed again
    }
    let (key, _) = crate::read::file_key_at(path, &meta);
    rec.committed.entry(key).or_insert(Committed {
        path: path.display().to_string(),
        failed: line.failed,
    });
}
