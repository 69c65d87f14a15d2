//! Owns the commit ledger: which files' lines are durably in the sink, and the recovery that
//! makes the file sink exactly-once across crashes.
//!
//! The ledger is an append-only JSON Lines log in `state.dir/ledger.jsonl`. The sink writes a
//! batch to the output (and `errors.jsonl`), fsyncs, then appends one ledger entry per file and
//! fsyncs the ledger. An entry names the byte length the output and the error log had once its
//! line was in; on start-up both files are cut back to the last committed lengths, so a line
//! written but never committed disappears and its file is processed again. A torn last ledger
//! line is ignored. Compaction rewrites the log (temp, fsync, rename) keeping a checkpoint of
//! the lengths, the entries of files still present, and the most recent dedup entries.

use crate::dedup::IndexEntry;
use crate::model::FileKey;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

/// File name of the ledger inside `state.dir`.
pub const LEDGER_FILE: &str = "ledger.jsonl";
/// File name of the error log inside `state.dir`.
pub const ERRORS_FILE: &str = "errors.jsonl";

/// One committed file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LedgerEntry {
    pub key: FileKey,
    pub path: String,
    /// Document id, absent for error records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The file's line was an error record.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub failed: bool,
    /// Output file length once this file's line was written.
    pub out: u64,
    /// Error log length once this file's error record (if any) was written.
    pub err: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dedup: Option<IndexEntry>,
}

/// A ledger line: an entry, or what compaction writes: a checkpoint first, then the entries of
/// files still present and the retained dedup entries. `Entry` is tried before `Dedup`, whose
/// one field an entry line also has.
#[derive(Debug, Serialize, Deserialize)]
#[serde(untagged)]
enum Line {
    Checkpoint { checkpoint: Checkpoint },
    Entry(Box<LedgerEntry>),
    Dedup { dedup: IndexEntry },
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
struct Checkpoint {
    out: u64,
    err: u64,
}

/// A committed file: its path at commit time and whether it yielded an error record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    pub path: String,
    pub failed: bool,
}

/// What start-up recovery found.
#[derive(Debug, Default)]
pub struct Recovered {
    /// Committed files by identity.
    pub committed: HashMap<FileKey, Committed>,
    /// Dedup entries in commit order, for [`crate::dedup::Deduper::restore`].
    pub dedup: Vec<IndexEntry>,
    /// Committed lengths of the output file and the error log.
    pub out_len: u64,
    pub err_len: u64,
    /// Bytes of uncommitted output cut back during recovery.
    pub truncated_bytes: u64,
}

/// The open, append-only ledger.
#[derive(Debug)]
pub struct Ledger {
    path: PathBuf,
    file: File,
    appended: usize,
}

impl Ledger {
    /// Opens (creating) the ledger in `dir`, reads what is committed, compacts it, and cuts the
    /// output file and error log back to their committed lengths.
    pub fn open(
        dir: &Path,
        output: Option<&Path>,
        keep_dedup: usize,
    ) -> Result<(Ledger, Recovered)> {
        fs::create_dir_all(dir)
            .with_context(|| format!("cannot create state dir {}", dir.display()))?;
        let path = dir.join(LEDGER_FILE);
        let mut rec = read_ledger(&path)?;
        if let Some(out) = output {
            rec.truncated_bytes += cut_back(out, &mut rec.out_len)?;
        }
        rec.truncated_bytes += cut_back(&dir.join(ERRORS_FILE), &mut rec.err_len)?;
        compact(&path, &mut rec, keep_dedup)?;
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("cannot open ledger {}", path.display()))?;
        Ok((
            Ledger {
                path,
                file,
                appended: 0,
            },
            rec,
        ))
    }

    /// Appends and fsyncs a batch of entries: once this returns, the batch is committed.
    pub fn commit(&mut self, entries: &[LedgerEntry]) -> Result<()> {
        let mut buf = Vec::with_capacity(entries.len() * 256);
        for e in entries {
            // An entry line is the entry itself (`Line` is untagged).
            serde_json::to_writer(&mut buf, e)?;
            buf.push(b'\n');
        }
        self.file
            .write_all(&buf)
            .and_then(|()| self.file.sync_data())
            .with_context(|| format!("cannot commit to ledger {}", self.path.display()))?;
        self.appended += entries.len();
        Ok(())
    }
}

fn read_ledger(path: &Path) -> Result<Recovered> {
    let mut rec = Recovered::default();
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(rec),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let mut valid_len = 0u64;
    let mut reader = BufReader::new(file);
    let mut line = String::new();
    loop {
        line.clear();
        let n = reader.read_line(&mut line)?;
        if n == 0 || !line.ends_with('\n') {
            break; // end, or a torn last line: everything before it stands
        }
        match serde_json::from_str::<Line>(&line) {
            Ok(Line::Checkpoint { checkpoint }) => {
                rec.out_len = checkpoint.out;
                rec.err_len = checkpoint.err;
            }
            Ok(Line::Entry(e)) => {
                rec.out_len = e.out;
                rec.err_len = e.err;
                let committed = Committed {
                    path: e.path,
                    failed: e.failed,
                };
                rec.committed.insert(e.key, committed);
                rec.dedup.extend(e.dedup);
            }
            Ok(Line::Dedup { dedup }) => rec.dedup.push(dedup),
            Err(error) => {
                tracing::warn!(path = %path.display(), %error, "ignoring unreadable ledger tail");
                break;
            }
        }
        valid_len += n as u64;
    }
    let len = fs::metadata(path)?.len();
    if len > valid_len {
        let f = OpenOptions::new().write(true).open(path)?;
        f.set_len(valid_len)?;
        f.sync_all()?;
    }
    Ok(rec)
}

/// Cuts `path` back to `committed` bytes; returns how many bytes were removed.
fn cut_back(path: &Path, committed: &mut u64) -> Result<u64> {
    let len = match fs::metadata(path) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
        Err(e) => return Err(e).with_context(|| format!("cannot stat {}", path.display())),
    };
    if len > *committed {
        let f = OpenOptions::new()
            .write(true)
            .open(path)
            .with_context(|| format!("cannot cut back {}", path.display()))?;
        f.set_len(*committed)?;
        f.sync_all()?;
        return Ok(len - *committed);
    }
    if len < *committed {
        // The file was rotated or truncated by someone else: new lines start at its length.
        tracing::warn!(path = %path.display(), len, committed = *committed, "output shorter than committed, assuming rotation");
        *committed = len;
    }
    Ok(0)
}

/// Rewrites the ledger keeping the checkpoint, files still present, and the last `keep_dedup`
/// dedup entries; temp file, fsync, rename, fsync dir.
fn compact(path: &Path, rec: &mut Recovered, keep_dedup: usize) -> Result<()> {
    rec.committed.retain(|_, c| Path::new(&c.path).exists());
    if rec.dedup.len() > keep_dedup {
        let drop = rec.dedup.len() - keep_dedup;
        rec.dedup.drain(..drop);
    }
    let tmp = path.with_extension("jsonl.tmp");
    let mut buf = Vec::new();
    let cp = Checkpoint {
        out: rec.out_len,
        err: rec.err_len,
    };
    serde_json::to_writer(&mut buf, &Line::Checkpoint { checkpoint: cp })?;
    buf.push(b'\n');
    for (key, c) in &rec.committed {
        let e = LedgerEntry {
            key: *key,
            path: c.path.clone(),
            id: None,
            failed: c.failed,
            out: cp.out,
            err: cp.err,
            dedup: None,
        };
        serde_json::to_writer(&mut buf, &e)?;
        buf.push(b'\n');
    }
    for d in &rec.dedup {
        serde_json::to_writer(&mut buf, &Line::Dedup { dedup: d.clone() })?;
        buf.push(b'\n');
    }
    {
        let mut f = File::create(&tmp)?;
        f.write_all(&buf)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(ino: u64) -> FileKey {
        FileKey {
            dev: 1,
            ino,
            size: 10,
            mtime_ns: 5,
        }
    }

    #[test]
    fn torn_tail_and_uncommitted_output_are_cut_back() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out.jsonl");
        let live = dir.path().join("a.txt");
        fs::write(&live, "x").unwrap();
        {
            let (mut l, _) = Ledger::open(dir.path(), Some(&out), 10).unwrap();
            fs::write(&out, "line1\n").unwrap();
            l.commit(&[LedgerEntry {
                key: key(1),
                path: live.display().to_string(),
                id: Some("ab".into()),
                failed: false,
                out: 6,
                err: 0,
                dedup: None,
            }])
            .unwrap();
        }
        // A second line written but never committed, and a torn ledger line.
        fs::write(&out, "line1\nline2-uncommitted\n").unwrap();
        let mut f = OpenOptions::new()
            .append(true)
            .open(dir.path().join(LEDGER_FILE))
            .unwrap();
        f.write_all(b"{\"key\":").unwrap();
        let (_, rec) = Ledger::open(dir.path(), Some(&out), 10).unwrap();
        assert_eq!(fs::read_to_string(&out).unwrap(), "line1\n");
        assert_eq!(rec.out_len, 6);
        assert!(rec.committed.contains_key(&key(1)));
        assert_eq!(rec.committed.len(), 1);
    }

    #[test]
    fn compaction_keeps_recent_dedup_entries_and_lengths() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut l, _) = Ledger::open(dir.path(), None, 10).unwrap();
            let entries: Vec<LedgerEntry> = (0..5)
                .map(|i| LedgerEntry {
                    key: key(i),
                    path: format!("/nonexistent/{i}"),
                    id: Some(format!("{i:032x}")),
                    failed: false,
                    out: 0,
                    err: i * 3,
                    dedup: Some(IndexEntry {
                        id: format!("{i:032x}"),
                        text_hash: format!("{i:032x}"),
                        duplicate_of: None,
                        story: None,
                        sig: None,
                        terms: None,
                        sent: None,
                    }),
                })
                .collect();
            l.commit(&entries).unwrap();
        }
        fs::write(dir.path().join(ERRORS_FILE), vec![b'x'; 12]).unwrap();
        let (_, rec) = Ledger::open(dir.path(), None, 2).unwrap();
        assert_eq!(rec.dedup.len(), 2);
        assert_eq!(rec.dedup[1].id, format!("{:032x}", 4));
        let (_, again) = Ledger::open(dir.path(), None, 2).unwrap();
        assert_eq!(again.dedup.len(), 2);
        assert_eq!(again.err_len, 12);
        assert!(again.committed.is_empty());
    }

    #[test]
    fn failed_flag_survives_compaction() {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("bad.bin");
        fs::write(&live, b"\0").unwrap();
        {
            let (mut l, _) = Ledger::open(dir.path(), None, 10).unwrap();
            l.commit(&[LedgerEntry {
                key: key(7),
                path: live.display().to_string(),
                id: None,
                failed: true,
                out: 0,
                err: 0,
                dedup: None,
            }])
            .unwrap();
        }
        // The first reopen compacts; the second reads what compaction wrote.
        Ledger::open(dir.path(), None, 10).unwrap();
        let (_, rec) = Ledger::open(dir.path(), None, 10).unwrap();
        assert_eq!(rec.committed.get(&key(7)).map(|c| c.failed), Some(true));
    }
}
