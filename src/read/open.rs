//! Owns how a dropped file is opened and read: open first, then check where the descriptor
//! really points (no check-then-open race with a swapped-in symlink), reads sized by what
//! arrives rather than by a claimed length, holes refused, cooperative cancellation, and the
//! content fingerprint that tells file versions apart.

use super::ReadError;
use crate::model::FileKey;
use hashbrown::hash_table::{Entry, HashTable};
use std::fs::{File, Metadata, OpenOptions};
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

/// Bytes hashed at each end of a file for its fingerprint.
const FP_EDGE: usize = 4096;
/// Files at least this large are checked for holes before reading.
const HOLE_CHECK_MIN: u64 = 1 << 20;
/// Read granularity: the buffer grows by what each read returned, never by the file's size.
const CHUNK: usize = 1 << 20;
/// Capacity reserved before the first read: most articles fit.
const FIRST_READ: usize = 16 << 10;

/// An opened regular file and its metadata, taken from the descriptor.
#[derive(Debug)]
pub struct Opened {
    pub file: File,
    pub meta: Metadata,
}

/// Opens `path` for reading. With `root` (the canonical drop folder), the descriptor's real
/// path must lie inside it: a symlink, or a folder swapped for one, that leads outside is
/// refused whatever instant the swap happened, because the check is on the opened descriptor.
pub fn open_checked(path: &Path, root: Option<&Path>) -> Result<Opened, ReadError> {
    // O_NONBLOCK: a FIFO swapped in must not hang a worker; it has no effect on regular files.
    let flags = libc::O_NONBLOCK | libc::O_CLOEXEC;
    let no_follow = OpenOptions::new()
        .read(true)
        .custom_flags(flags | libc::O_NOFOLLOW)
        .open(path);
    let (file, followed) = match no_follow {
        Ok(f) => (f, false),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            let f = OpenOptions::new()
                .read(true)
                .custom_flags(flags)
                .open(path)
                .map_err(|e| io_error(path, e))?;
            (f, true)
        }
        Err(e) => return Err(io_error(path, e)),
    };
    if let Some(root) = root {
        match fd_path(&file) {
            Some(real) if real.starts_with(root) => {}
            Some(real) => return Err(ReadError::SymlinkOutside(real)),
            // Without /proc the descriptor cannot be checked: only a file opened without
            // following a final symlink is taken.
            None if followed => {
                return Err(ReadError::SymlinkOutside(PathBuf::from("(unverifiable)")))
            }
            None => {}
        }
    }
    let meta = file.metadata().map_err(|e| io_error(path, e))?;
    if !meta.is_file() {
        return Err(ReadError::NotAFile);
    }
    Ok(Opened { file, meta })
}

/// Returns the path the kernel has for an open descriptor.
fn fd_path(file: &File) -> Option<PathBuf> {
    std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())).ok()
}

/// Refuses a large file with holes: they read as zeros, which no text is, and a sparse file can
/// claim any size (a 1 TB file of 4 KB on disk) without costing its writer anything.
pub fn refuse_holes(file: &File, size: u64) -> Result<(), ReadError> {
    if size < HOLE_CHECK_MIN {
        return Ok(());
    }
    let fd = file.as_raw_fd();
    // SAFETY: lseek on a descriptor this function borrows; no memory is touched.
    let hole = unsafe { libc::lseek(fd, 0, libc::SEEK_HOLE) };
    // SAFETY: as above; puts the offset back where reading starts.
    unsafe { libc::lseek(fd, 0, libc::SEEK_SET) };
    // Filesystems without hole support report the end of the file (or fail): no hole.
    if hole >= 0 && (hole as u64) < size {
        return Err(ReadError::Sparse {
            data: hole as u64,
            size,
        });
    }
    Ok(())
}

/// Reads at most `cap + 1` bytes, growing the buffer by what each read returned; stops early
/// when the driver cancels the file (its time budget ran out).
///
/// Each step reads at most [`CHUNK`] through `read_to_end`, which grows the buffer
/// geometrically from what arrived and never zero-fills spare capacity: a 2 KB file costs a
/// few small allocations, not a zeroed 1 MiB chunk (which dominated the spine's profile).
pub fn read_bounded(file: &mut File, cap: u64) -> Result<Vec<u8>, ReadError> {
    let limit = cap.saturating_add(1);
    let mut buf: Vec<u8> = Vec::new();
    // A small first buffer, so a typical article takes one read instead of growing from 32
    // bytes; its size does not depend on what the file claims.
    let first = FIRST_READ.min(usize::try_from(limit).unwrap_or(usize::MAX));
    buf.try_reserve_exact(first)
        .map_err(|_| ReadError::OutOfMemory(first as u64))?;
    loop {
        if crate::driver::cancelled() {
            return Err(ReadError::Cancelled);
        }
        let room = limit - buf.len() as u64;
        if room == 0 {
            return Ok(buf);
        }
        let want = CHUNK.min(room as usize);
        let before = buf.len();
        match Read::by_ref(file).take(want as u64).read_to_end(&mut buf) {
            // Fewer bytes than asked: the end of the file.
            Ok(n) if n < want => return Ok(buf),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::OutOfMemory => {
                return Err(ReadError::OutOfMemory(before as u64 + want as u64))
            }
            Err(e) => return Err(ReadError::Unreadable(e)),
        }
    }
}

/// What discovery learns from a file's first and last bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Probe {
    /// xxh3 of the first and last 4 KiB and the size; never 0 (0 means unknown).
    pub fp: u64,
    /// The size a gzip file claims it inflates to (its trailer, modulo 4 GiB): a hint for the
    /// in-flight byte budget, never used to size an allocation.
    pub inflated_hint: Option<u64>,
}

/// Reads the first and last 4 KiB of a regular file without following a final symlink; `None`
/// for anything else or when it cannot be opened (the fingerprint is then unknown).
pub fn probe(path: &Path, meta: &Metadata) -> Option<Probe> {
    if !meta.file_type().is_file() {
        return None;
    }
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .ok()?;
    let size = file.metadata().ok()?.len();
    probe_file(&file, size)
}

/// [`probe`] on an open file of `size` bytes, reading its ends in place (the offset stays).
pub fn probe_file(file: &File, size: u64) -> Option<Probe> {
    let head = read_at_most(file, 0, FP_EDGE.min(size as usize))?;
    let tail_start = size.saturating_sub(FP_EDGE as u64).max(head.len() as u64);
    let tail = read_at_most(file, tail_start, (size - tail_start) as usize)?;
    Some(Probe {
        fp: fingerprint(&head, &tail, size),
        inflated_hint: inflated_hint(&head, &tail),
    })
}

/// Returns the fingerprint of a whole file read into `raw`: the same value [`probe`] gives for
/// those bytes, so the read stage can fill in a fingerprint discovery did not take.
pub fn fingerprint_bytes(raw: &[u8]) -> u64 {
    let head = &raw[..raw.len().min(FP_EDGE)];
    let tail_start = raw.len().saturating_sub(FP_EDGE).max(head.len());
    fingerprint(head, &raw[tail_start..], raw.len() as u64)
}

/// xxh3 of the first bytes, the last bytes (not overlapping the first) and the size; never 0.
fn fingerprint(head: &[u8], tail: &[u8], size: u64) -> u64 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    h.update(head);
    h.update(tail);
    h.update(&size.to_le_bytes());
    h.digest().max(1)
}

/// The size a gzip stream claims in its trailer, from a file's first and last bytes.
fn inflated_hint(head: &[u8], tail: &[u8]) -> Option<u64> {
    let whole_tail: &[u8] = if tail.len() >= 4 { tail } else { head };
    (head.starts_with(&[0x1f, 0x8b]) && whole_tail.len() >= 4).then(|| {
        let t = &whole_tail[whole_tail.len() - 4..];
        u64::from(u32::from_le_bytes([t[0], t[1], t[2], t[3]]))
    })
}

fn read_at_most(file: &File, offset: u64, len: usize) -> Option<Vec<u8>> {
    let mut buf = vec![0; len];
    let mut got = 0;
    while got < len {
        match file.read_at(&mut buf[got..], offset + got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    buf.truncate(got);
    Some(buf)
}

/// Returns the identity of the file version at `path` from its (unfollowed) metadata, with
/// the content fingerprint and the gzip size hint when the file can be read.
pub fn file_key_at(path: &Path, meta: &Metadata) -> (FileKey, Option<u64>) {
    let mut key = super::file_key(meta);
    let p = probe(path, meta);
    key.fp = p.map_or(0, |p| p.fp);
    (key, p.and_then(|p| p.inflated_hint))
}

/// Returns whether discovery should take the fingerprint of a file named `path`: a gzip name
/// always (its trailer's size claim sizes the byte budget's first charge), other files only
/// when `collides` says an earlier version with the same (device, inode, size, mtime) is in
/// flight or committed: the one case the fingerprint decides. Every other file's fingerprint
/// is taken by the read stage from the bytes it reads anyway ([`fingerprint_bytes`]), which
/// saves discovery an open, two reads and a close per file.
pub fn wants_probe(path: &Path, collides: bool) -> bool {
    collides
        || path
            .as_os_str()
            .as_bytes()
            .rsplit(|&b| b == b'/')
            .next()
            .is_some_and(|n| n.len() >= 3 && n[n.len() - 3..].eq_ignore_ascii_case(b".gz"))
}

/// Fingerprints of the files discovery has probed, by file version: a file is read again only
/// when its (device, inode, size, mtime, ctime) changed, so rescans of a folder of files left
/// in place cost a `stat` each. Every write, rename or link changes a file's ctime, and no path
/// is kept per file. Entries not looked up between two sweeps are dropped (a changed file's
/// old entry with them).
///
/// An entry is 24 bytes: the version is keyed by a seeded 128-bit hash of those five numbers
/// with its lowest bit given to the sweep (see [`crate::admission::KeyId`] for why a
/// collision, about n^2 / 2^128 for n files with 127 bits, is not a concern), and the rare
/// gzip size hints sit in a map of their own.
#[derive(Debug, Default)]
pub struct KeyCache {
    /// (id, fingerprint): bit 0 of the id's second word is not part of the id but the parity
    /// of the sweep period in which the entry was last looked up.
    map: HashTable<([u64; 2], u64)>,
    /// The gzip size hints of the entries that have one, by id (bit 0 clear).
    hints: foldhash::HashMap<[u64; 2], u64>,
    /// Sweeps so far; its parity marks the entries looked up since the last one.
    generation: u32,
}

/// Returns whether the cache entry id `entry` is the id `id` (bit 0 clear), whatever its mark.
fn same_id(entry: [u64; 2], id: [u64; 2]) -> bool {
    entry[0] == id[0] && entry[1] | 1 == id[1] | 1
}

impl KeyCache {
    /// Returns the key of the file at `path` and its gzip size hint. The file is probed for
    /// its fingerprint only when `collides` says its metadata alone matches a version in
    /// flight or committed, or when it has a gzip name (see [`wants_probe`]); otherwise the key
    /// has `fp = 0` and nothing is cached.
    pub fn key(
        &mut self,
        path: &Path,
        meta: &Metadata,
        collides: impl FnOnce(&FileKey) -> bool,
    ) -> (FileKey, Option<u64>) {
        let base = super::file_key(meta);
        let [lo, hi] = crate::admission::id128([
            base.dev,
            base.ino,
            base.size,
            base.mtime_ns as u64,
            ctime_ns(meta) as u64,
        ]);
        // The first word is uniform (a seeded hash): it serves as the table's hash.
        let id = [lo, hi & !1];
        let marked = [lo, id[1] | u64::from(self.generation & 1)];
        if !self.map.is_empty() {
            if let Some(e) = self.map.find_mut(lo, |e| same_id(e.0, id)) {
                if e.1 != 0 {
                    e.0 = marked;
                    let hint = self.hints.get(&id).copied();
                    return (FileKey { fp: e.1, ..base }, hint);
                }
            }
        }
        if !wants_probe(path, collides(&base)) {
            return (base, None);
        }
        let (key, hint) = file_key_at(path, meta);
        match self.map.entry(lo, |e| same_id(e.0, id), |e| e.0[0]) {
            Entry::Occupied(mut e) => *e.get_mut() = (marked, key.fp),
            Entry::Vacant(e) => {
                e.insert((marked, key.fp));
            }
        }
        match hint {
            Some(h) if h != 0 => self.hints.insert(id, h),
            _ => self.hints.remove(&id),
        };
        (key, hint)
    }

    /// Drops the entries not looked up since the last sweep (call after a full scan).
    pub fn sweep(&mut self) {
        let parity = u64::from(self.generation & 1);
        self.map.retain(|e| e.0[1] & 1 == parity);
        if !self.hints.is_empty() {
            let map = &self.map;
            self.hints
                .retain(|id, _| map.find(id[0], |e| same_id(e.0, *id)).is_some());
        }
        self.generation = self.generation.wrapping_add(1);
    }
}

/// Returns the ctime of `meta` in nanoseconds: changed by every write, chmod, rename and
/// `cp -p`, and settable by no one, so a cached fingerprint is reused only while it is equal.
pub fn ctime_ns(meta: &Metadata) -> i64 {
    meta.ctime()
        .saturating_mul(1_000_000_000)
        .saturating_add(meta.ctime_nsec())
}

/// Maps an open or read error to a [`ReadError`]; a missing file whose folder is missing too
/// is a vanished parent (the folder being recreated), worth retrying.
pub fn io_error(path: &Path, e: io::Error) -> ReadError {
    match e.kind() {
        io::ErrorKind::NotFound => match path.parent() {
            Some(p) if !p.as_os_str().is_empty() && !p.exists() => ReadError::ParentVanished,
            _ => ReadError::Vanished,
        },
        io::ErrorKind::IsADirectory => ReadError::NotAFile,
        _ => ReadError::Unreadable(e),
    }
}

/// Returns whether `e` is a condition that may clear by itself: descriptor exhaustion, a
/// permission fixed later, I/O and space trouble, a folder being recreated.
pub fn is_transient(e: &ReadError) -> bool {
    match e {
        ReadError::ParentVanished => true,
        ReadError::Unreadable(io) => matches!(
            io.raw_os_error(),
            Some(
                libc::EMFILE
                    | libc::ENFILE
                    | libc::EACCES
                    | libc::EPERM
                    | libc::EIO
                    | libc::ENOSPC
                    | libc::ENOMEM
                    | libc::EAGAIN
                    | libc::ENOBUFS
                    | libc::ESTALE
            )
        ),
        _ => false,
    }
}

/// Raises the soft limit on open descriptors to the hard limit, as most daemons do; returns
/// the (old, new) soft limits. With the common 1,024 soft limit, a thousand idle connections to
/// the metrics port would otherwise leave no descriptor for reading files.
pub fn raise_fd_limit() -> io::Result<(libc::rlim_t, libc::rlim_t)> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit write and read the struct this function owns.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let old = lim.rlim_cur;
    if lim.rlim_cur < lim.rlim_max {
        lim.rlim_cur = lim.rlim_max;
        // SAFETY: as above.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok((old, lim.rlim_cur))
}

/// Returns `path` as written into records: UTF-8 as is; otherwise every byte that is not part of
/// valid UTF-8 escaped as `\xNN`, with the raw bytes in base64 beside it, so two names that
/// differ only in such bytes never share a `source.path`.
pub fn display_path(path: &Path) -> (String, Option<String>) {
    let bytes = path.as_os_str().as_bytes();
    if let Ok(s) = std::str::from_utf8(bytes) {
        return (s.to_string(), None);
    }
    let mut out = String::with_capacity(bytes.len() + 8);
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02X}"));
        }
    }
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
    (out, Some(b64))
}

#[cfg(test)]
mod tests;
