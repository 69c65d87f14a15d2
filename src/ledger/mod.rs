//! Owns the commit ledger: which files' lines are durably in the sink, which output file they
//! are in, and the recovery that makes the file sink exactly-once across crashes.
//!
//! The ledger is an append-only log in `state.dir/ledger.jsonl`, one JSON object per line
//! followed by a tab and the CRC-32 of the JSON, so a damaged line is skipped and its
//! neighbours kept. The sink writes a batch to the output (and `errors.jsonl`), fsyncs, then
//! appends one entry per file and fsyncs the ledger (the commit point). An entry names the
//! byte length the output and the error log had once its line was in; the last entry of a
//! batch also carries the CRC of the output's last bytes before that length.
//!
//! A checkpoint line binds the ledger to its output: path, device and inode, committed length
//! and tail CRC. It is written by compaction at start-up and by the sink whenever the output
//! changed under it (deleted, renamed, truncated). At start-up the output is cut back to its
//! committed length only when it is the bound file and its committed tail is intact; lines
//! past that length whose source file is gone (moved or deleted by the done-action) prove
//! that the ledger lost entries, and are kept. An output the ledger cannot explain is refused
//! with [`Refused`](crate::config::Refused), never truncated.

use crate::dedup::IndexEntry;
use crate::durable;
use crate::model::FileKey;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

mod compact;
mod output;
pub use compact::DedupEntries;
use compact::{compact, SwapError};
use output::reconcile_output;

/// File name of the ledger inside `state.dir`.
pub const LEDGER_FILE: &str = "ledger.jsonl";
/// File name of the error log inside `state.dir`.
pub const ERRORS_FILE: &str = "errors.jsonl";
/// Bytes of committed output covered by a tail checksum.
pub const TAIL_BYTES: u64 = 64;

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
    /// CRC-32 of the output's last [`TAIL_BYTES`] before `out` (last entry of a batch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tail: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dedup: Option<IndexEntry>,
}

/// The output file a ledger belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Binding {
    pub path: PathBuf,
    pub dev: u64,
    pub ino: u64,
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

/// Committed lengths, and (for a file sink) the output they are lengths of.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Checkpoint {
    pub out: u64,
    pub err: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Binding>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tail: Option<u32>,
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
    /// The retained dedup entries in commit order, for [`crate::dedup::Deduper::restore`],
    /// read from the compacted ledger one at a time.
    pub dedup: DedupEntries,
    /// Committed lengths of the output file and the error log.
    pub out_len: u64,
    pub err_len: u64,
    /// Bytes of uncommitted output cut back during recovery.
    pub truncated_bytes: u64,
    /// Damaged ledger lines skipped (not counting a torn last line).
    pub damaged: usize,
    /// Output lines past the committed length kept because their files were already gone.
    pub adopted: usize,
    /// The output the ledger was bound to, and the last known tail checksum `(offset, crc)`.
    pub(crate) binding: Option<Binding>,
    pub(crate) tail: Option<(u64, u32)>,
    /// Whether the ledger held anything at all.
    pub(crate) seen: bool,
    /// Output ranges whose ledger entries were damaged.
    pub(crate) gaps: Vec<(u64, u64)>,
    /// Offsets of the ledger lines that carry a dedup entry, in commit order (the entries
    /// themselves are read again by compaction, not kept: a week's ledger holds gigabytes).
    dedup_at: Vec<u64>,
}

/// The open, append-only ledger.
#[derive(Debug)]
pub struct Ledger {
    path: PathBuf,
    file: File,
    len: u64,
    binding: Option<Binding>,
    /// Dedup entries a compaction keeps (`dedup.capacity`).
    keep_dedup: usize,
    /// The ledger's length after its last compaction: the next one starts once it has grown by
    /// as much again, and by at least [`COMPACT_ABOVE`] (so a compaction, which reads and
    /// writes about what it keeps, costs at most about one more write of each committed byte).
    compacted: u64,
    /// A fixed growth instead, whether or not a compaction would shrink the ledger (for tests).
    compact_every: Option<u64>,
    /// Whether committed files stay in the drop folder (`done = "leave"`): their entries stay
    /// through a compaction, which then only shrinks the ledger past `keep_dedup` entries.
    files_stay: bool,
    /// Dedup entries in the ledger, and how many there were when the compaction being written
    /// started.
    dedup_entries: usize,
    dedup_at_start: usize,
    /// A compaction being written in the background.
    compaction: Option<std::thread::JoinHandle<Result<compact::Prepared>>>,
    /// A compaction was renamed over the ledger but `file` is still the old one: it must be
    /// opened again before anything is appended.
    reopen: bool,
    /// Compactions swapped in while running.
    swaps: u64,
}

/// The least growth of the ledger between two compactions while running.
pub const COMPACT_ABOVE: u64 = 64 << 20;

impl Ledger {
    /// Opens (creating) the ledger in `dir`, reads what is committed, reconciles the output
    /// with it (cutting back an uncommitted tail, refusing an output it cannot explain),
    /// compacts it, and cuts the error log back to its committed length.
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
            reconcile_output(out, dir, &mut rec)?;
        }
        if rec.damaged == 0 {
            rec.truncated_bytes += cut_back(&dir.join(ERRORS_FILE), &mut rec.err_len)?;
        } else {
            // The error log is only a second copy; with entries lost keep all of it.
            rec.err_len = file_len(&dir.join(ERRORS_FILE))?;
        }
        let binding = output.and_then(|o| {
            identity(o).map(|(dev, ino)| Binding {
                path: o.to_path_buf(),
                dev,
                ino,
            })
        });
        let tail = match output {
            Some(o) if binding.is_some() => Some(tail_crc(o, rec.out_len)?),
            _ => None,
        };
        compact(&path, &mut rec, keep_dedup, binding.clone(), tail)?;
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("cannot open ledger {}", path.display()))?;
        let len = file.metadata()?.len();
        // A compaction a crash interrupted while running: its file is of no use now.
        let _ = fs::remove_file(compact::compacting(&path));
        Ok((
            Ledger {
                path,
                file,
                len,
                binding,
                keep_dedup,
                compacted: len,
                compact_every: None,
                files_stay: false,
                dedup_entries: rec.dedup.len(),
                dedup_at_start: 0,
                compaction: None,
                reopen: false,
                swaps: 0,
            },
            rec,
        ))
    }

    /// The output file this ledger's lengths refer to.
    pub fn binding(&self) -> Option<&Binding> {
        self.binding.as_ref()
    }

    /// Binds the ledger to a new output file (reopened after a rotation or a truncation) whose
    /// committed length is now `out`; durable before any line goes into the new file.
    pub fn rebind(&mut self, output: Binding, out: u64, err: u64, tail: u32) -> Result<()> {
        self.finish_compaction()?;
        let cp = Checkpoint {
            out,
            err,
            output: Some(output.clone()),
            tail: Some(tail),
        };
        let mut buf = Vec::new();
        push_line(&mut buf, &Line::Checkpoint { checkpoint: cp })?;
        self.append(&buf)?;
        self.binding = Some(output);
        Ok(())
    }

    /// Compacts while running each time the ledger has grown by `bytes` (for tests: the
    /// default grows with the ledger, and waits until a compaction would shrink it).
    pub fn compact_every(mut self, bytes: u64) -> Self {
        self.compact_every = Some(bytes);
        self
    }

    /// Says that committed files stay in the drop folder (`done = "leave"`), so that no
    /// compaction runs before the ledger holds more than `keep_dedup` dedup entries: it would
    /// rewrite the ledger at about its size.
    pub fn files_stay(mut self, stay: bool) -> Self {
        self.files_stay = stay;
        self
    }

    /// Appends and fsyncs a batch of entries: once this returns, the batch is committed. On
    /// failure the ledger is cut back to where it was, so a retry starts clean.
    ///
    /// A ledger grows by an entry per file (about 2 KB with its dedup entry), and start-up
    /// compaction alone would let a daemon that runs for weeks fill its disk. So past its
    /// threshold a compaction of what is committed so far is written in the background, and
    /// a later commit, before its own entries, appends what was committed meanwhile and
    /// renames it over the ledger.
    pub fn commit(&mut self, entries: &[LedgerEntry]) -> Result<()> {
        self.finish_compaction()?;
        let mut buf = Vec::with_capacity(entries.len() * 256);
        for e in entries {
            // An entry line is the entry itself (`Line` is untagged).
            push_line(&mut buf, e)?;
        }
        self.append(&buf)?;
        self.dedup_entries += entries.iter().filter(|e| e.dedup.is_some()).count();
        if self.compaction.is_none() && self.compaction_due() {
            self.dedup_at_start = self.dedup_entries;
            let (path, upto, keep) = (self.path.clone(), self.len, self.keep_dedup);
            let entries = self.dedup_entries;
            let spawned = std::thread::Builder::new()
                .name("ledger-compact".into())
                .spawn(move || compact::prepare(&path, upto, entries, keep));
            match spawned {
                Ok(h) => {
                    tracing::info!(path = %self.path.display(), len = self.len, "compacting the ledger");
                    self.compaction = Some(h);
                }
                Err(error) => {
                    tracing::warn!(%error, "cannot start the ledger's compaction");
                    self.compacted = self.len;
                }
            }
        }
        Ok(())
    }

    /// Whether the ledger has grown enough since its last compaction, and a compaction would
    /// shrink it: files leave the drop folder, or it holds more dedup entries than it keeps.
    fn compaction_due(&self) -> bool {
        match self.compact_every {
            Some(every) => self.len >= self.compacted + every,
            None => {
                let shrinks = !self.files_stay || self.dedup_entries > self.keep_dedup;
                shrinks && self.len >= self.compacted + COMPACT_ABOVE.max(self.compacted)
            }
        }
    }

    /// Whether no compaction is being written, and how many were swapped in.
    #[cfg(test)]
    fn compaction_state(&self) -> (bool, u64) {
        let idle = self.compaction.as_ref().is_none_or(|h| h.is_finished());
        (idle, self.swaps)
    }

    /// Swaps in a compaction that is written; a failed one leaves the ledger as it is (the
    /// next is tried once it has doubled again). An error means the ledger was replaced but
    /// cannot be used: nothing can be committed.
    fn finish_compaction(&mut self) -> Result<()> {
        if self.reopen {
            durable::sync_folder(&self.path)?;
            self.file = OpenOptions::new()
                .append(true)
                .open(&self.path)
                .with_context(|| format!("cannot open ledger {}", self.path.display()))?;
            self.len = self.file.metadata()?.len();
            self.compacted = self.len;
            self.reopen = false;
        }
        if !self.compaction.as_ref().is_some_and(|h| h.is_finished()) {
            return Ok(());
        }
        let Some(handle) = self.compaction.take() else {
            return Ok(());
        };
        let tmp = compact::compacting(&self.path);
        let prepared = match handle.join() {
            Ok(p) => p,
            Err(_) => Err(anyhow::anyhow!("the compaction thread panicked")),
        };
        let swapped = prepared
            .map_err(SwapError::Before)
            .and_then(|p| compact::swap(&self.path, self.len, &p));
        match swapped {
            Ok(file) => {
                let before = self.len;
                self.file = file;
                self.len = self.file.metadata()?.len();
                self.compacted = self.len;
                self.swaps += 1;
                let since = self.dedup_entries - self.dedup_at_start;
                self.dedup_entries = self.dedup_at_start.min(self.keep_dedup) + since;
                tracing::info!(path = %self.path.display(), before, after = self.len, "ledger compacted");
            }
            Err(SwapError::Before(error)) => {
                let _ = fs::remove_file(&tmp);
                self.compacted = self.len;
                tracing::warn!(path = %self.path.display(), error = format!("{error:#}"), "cannot compact the ledger; it is tried again once it has grown by its size");
            }
            Err(SwapError::After(error)) => {
                self.reopen = true;
                return Err(error);
            }
        }
        Ok(())
    }

    fn append(&mut self, buf: &[u8]) -> Result<()> {
        let r = self
            .file
            .write_all(buf)
            .and_then(|()| self.file.sync_data());
        if let Err(e) = r {
            let _ = self.file.set_len(self.len);
            return Err(e)
                .with_context(|| format!("cannot commit to ledger {}", self.path.display()));
        }
        self.len += buf.len() as u64;
        Ok(())
    }
}

/// Writes `value` as one self-checking ledger line: JSON, a tab, its CRC-32 in hex.
fn push_line<T: Serialize>(buf: &mut Vec<u8>, value: &T) -> Result<()> {
    let start = buf.len();
    serde_json::to_writer(&mut *buf, value)?;
    let crc = crc32fast::hash(&buf[start..]);
    writeln!(buf, "\t{crc:08x}")?;
    Ok(())
}

/// Parses one ledger line (without its newline); `None` when it is damaged. Lines without a
/// checksum (ledgers written before it existed) are accepted when they parse.
fn parse_line(line: &str) -> Option<Line> {
    let json = match line.rsplit_once('\t') {
        Some((json, crc)) => {
            let crc = u32::from_str_radix(crc, 16).ok()?;
            (crc32fast::hash(json.as_bytes()) == crc).then_some(json)?
        }
        None => line,
    };
    serde_json::from_str(json).ok()
}

fn read_ledger(path: &Path) -> Result<Recovered> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Recovered::default()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let (rec, valid_len) = read_lines(BufReader::new(file), path)?;
    let len = fs::metadata(path)?.len();
    if len > valid_len {
        let f = OpenOptions::new().write(true).open(path)?;
        f.set_len(valid_len)?;
        f.sync_all()?;
    }
    Ok(rec)
}

/// Reads ledger lines from `reader`; returns what they commit and the length of the whole
/// lines read (a torn last line is not counted).
fn read_lines(mut reader: impl BufRead, path: &Path) -> Result<(Recovered, u64)> {
    let mut rec = Recovered::default();
    let mut valid_len = 0u64;
    let mut line = Vec::new();
    let mut gap_from = None;
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line)?;
        if n == 0 || line.last() != Some(&b'\n') {
            break; // end, or a torn last line: everything before it stands
        }
        valid_len += n as u64;
        let text = std::str::from_utf8(&line[..n - 1]).unwrap_or("");
        match parse_line(text) {
            Some(Line::Checkpoint { checkpoint }) => {
                rec.seen = true;
                rec.out_len = checkpoint.out;
                rec.err_len = checkpoint.err;
                rec.tail = checkpoint.tail.map(|t| (checkpoint.out, t));
                if checkpoint.output.is_some() {
                    rec.binding = checkpoint.output;
                }
                gap_from = None;
            }
            Some(Line::Entry(e)) => {
                rec.seen = true;
                if let Some(from) = gap_from.take() {
                    rec.gaps.push((from, e.out));
                }
                rec.out_len = e.out;
                rec.err_len = e.err;
                if let Some(t) = e.tail {
                    rec.tail = Some((e.out, t));
                }
                let committed = Committed {
                    path: e.path,
                    failed: e.failed,
                };
                rec.committed.insert(e.key, committed);
                if e.dedup.is_some() {
                    rec.dedup_at.push(valid_len - n as u64);
                }
            }
            Some(Line::Dedup { .. }) => rec.dedup_at.push(valid_len - n as u64),
            None => {
                rec.damaged += 1;
                gap_from.get_or_insert(rec.out_len);
                tracing::warn!(path = %path.display(), offset = valid_len - n as u64, "skipping damaged ledger line");
            }
        }
    }
    Ok((rec, valid_len))
}

pub(crate) fn file_len(path: &Path) -> Result<u64> {
    match fs::metadata(path) {
        Ok(m) => Ok(m.len()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(e).with_context(|| format!("cannot stat {}", path.display())),
    }
}

/// Returns the (device, inode) of `path`, `None` when it does not exist.
pub fn identity(path: &Path) -> Option<(u64, u64)> {
    fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// CRC-32 of the last [`TAIL_BYTES`] (or fewer) of `path` before offset `end`.
pub fn tail_crc(path: &Path, end: u64) -> Result<u32> {
    let f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(crc32fast::hash(b"")),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let start = end.saturating_sub(TAIL_BYTES);
    let mut buf = vec![0; (end - start) as usize];
    f.read_exact_at(&mut buf, start)
        .with_context(|| format!("cannot read the tail of {}", path.display()))?;
    Ok(crc32fast::hash(&buf))
}

/// Cuts `path` back to `committed` bytes; returns how many bytes were removed.
fn cut_back(path: &Path, committed: &mut u64) -> Result<u64> {
    let len = file_len(path)?;
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
        tracing::warn!(path = %path.display(), len, committed = *committed, "file shorter than committed, assuming rotation");
        *committed = len;
    }
    Ok(0)
}

#[cfg(test)]
mod tests;
