//! Owns the messages that travel between stages and the output records.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Instant;

/// The input format of a dropped file, after any compression is removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Text,
    Html,
}

/// Where a document came from, as written into every record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceInfo {
    /// The path as discovered (relative to the working directory when the drop folder is).
    pub path: String,
    /// Size of the file on disk, before decompression.
    pub bytes: u64,
    /// `text` or `html`; absent when the file could not be read far enough to tell.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<Format>,
    /// `gzip` when the file was compressed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compression: Option<String>,
    /// Base64 of the raw file name bytes, when they are not UTF-8 (`path` then escapes them
    /// as `\xNN`, so two such names never share a `path`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_bytes: Option<String>,
    /// The charset the bytes were decoded from (`utf-8`, `windows-1252`, `shift_jis`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<String>,
}

impl SourceInfo {
    /// Returns what is known of a file before it is read: its shown path and size on disk.
    pub fn named(path: String, bytes: u64) -> Self {
        Self {
            path,
            bytes,
            format: None,
            compression: None,
            path_bytes: None,
            encoding: None,
        }
    }
}

/// A decoded file on its way to the strip stage.
#[derive(Debug, Clone)]
pub struct RawDoc {
    /// Hex content hash of the raw bytes on disk.
    pub id: String,
    pub format: Format,
    /// The decoded UTF-8 body: plain text or HTML markup.
    pub body: String,
    /// Names the site or folder the file came from, for per-source statistics.
    pub source_key: String,
}

/// One line removed by the strip stage, kept when `strip.keep_removed` is on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RemovedLine {
    pub kind: String,
    pub text: String,
}

/// What the dedup stage decided for one document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DedupStatus {
    Unique,
    ExactDuplicate,
    NearDuplicate,
    Rewrite,
}

impl DedupStatus {
    /// Returns the status as it appears in records and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            DedupStatus::Unique => "unique",
            DedupStatus::ExactDuplicate => "exact_duplicate",
            DedupStatus::NearDuplicate => "near_duplicate",
            DedupStatus::Rewrite => "rewrite",
        }
    }

    /// Returns the status [`DedupStatus::as_str`] names (`None` for any other word).
    pub fn parse(word: &str) -> Option<DedupStatus> {
        [
            DedupStatus::Unique,
            DedupStatus::ExactDuplicate,
            DedupStatus::NearDuplicate,
            DedupStatus::Rewrite,
        ]
        .into_iter()
        .find(|s| s.as_str() == word)
    }
}

/// The `dedup` field of a record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DedupInfo {
    pub status: DedupStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicate_of: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub similarity: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub story: Option<String>,
    /// Earlier documents whose sentences make up a share of this one, largest share first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reuse: Vec<Reuse>,
}

/// One `reuse` entry: an earlier document and the share of this one its sentences make up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reuse {
    pub of: String,
    pub shared: f32,
}

/// One entity mention; `start`/`end` count Unicode code points of `text`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entity {
    pub text: String,
    pub label: String,
    pub start: usize,
    pub end: usize,
    pub canonical: String,
}

/// A document record: one JSON line in the output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Document {
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
    pub source: SourceInfo,
    pub title: String,
    pub text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub boilerplate: Option<Vec<RemovedLine>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dedup: Option<DedupInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entities: Option<Vec<Entity>>,
    /// The strip stage's per-source memory work, applied in arrival order; never written.
    #[serde(skip)]
    pub strip_memory: Option<Box<crate::strip::MemoryWork>>,
}

/// An error record: the one line a file that could not become a document yields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorRecord {
    #[serde(rename = "type")]
    pub kind: String,
    pub source: SourceInfo,
    pub stage: String,
    pub error: String,
}

/// The record schema every output line names in its `schema` field (`schema/record.schema.json`).
pub const RECORD_SCHEMA: &str = "dropline.record/1";

/// One output line: the contract fields every record carries, then the record's own fields.
///
/// `line_id` is the upsert key for stores: unique per file version and the same whenever that
/// file's line is emitted again (a stdout sink re-emits after a crash). `id` is the content
/// hash and repeats on exact duplicates by design.
#[derive(Debug, Serialize)]
pub struct Line<'a, T: Serialize> {
    pub schema: &'static str,
    pub line_id: String,
    /// RFC 3339 UTC with milliseconds: when the sink wrote the line.
    pub processed_at: &'a str,
    #[serde(flatten)]
    pub record: &'a T,
}

impl<'a, T: Serialize> Line<'a, T> {
    /// Wraps `record` of `file` (whose raw content hash is `content_id`, when it was read).
    pub fn new(
        file: &ReadyFile,
        content_id: Option<&str>,
        processed_at: &'a str,
        record: &'a T,
    ) -> Self {
        Self {
            schema: RECORD_SCHEMA,
            line_id: line_id(&file.key, &file.path, content_id),
            processed_at,
            record,
        }
    }
}

/// Returns the line id of one file version: the xxh3-128 of its identity (device, inode,
/// size, mtime) and its content hash. Nothing time- or order-dependent goes in, so a
/// re-emitted line keeps its id; the path does not either (a restart from another working
/// directory spells it differently), except for a file that could not even be stat'ed, whose
/// identity is all zeros.
pub fn line_id(key: &FileKey, path: &std::path::Path, content_id: Option<&str>) -> String {
    use std::os::unix::ffi::OsStrExt;
    let mut buf = Vec::with_capacity(96);
    buf.extend_from_slice(&key.dev.to_le_bytes());
    buf.extend_from_slice(&key.ino.to_le_bytes());
    buf.extend_from_slice(&key.size.to_le_bytes());
    buf.extend_from_slice(&key.mtime_ns.to_le_bytes());
    buf.extend_from_slice(&key.fp.to_le_bytes());
    buf.extend_from_slice(content_id.unwrap_or("").as_bytes());
    let unknown = FileKey::default();
    if *key == unknown {
        buf.push(0);
        buf.extend_from_slice(path.as_os_str().as_bytes());
    }
    format!("{:032x}", xxhash_rust::xxh3::xxh3_128(&buf))
}

/// Returns `now` as RFC 3339 UTC with milliseconds, e.g. `2026-12-02T10:00:00.123Z`.
pub fn timestamp_now() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}

/// A file the watcher (or the `process` command) has declared ready.
#[derive(Debug, Clone)]
pub struct ReadyFile {
    /// Position in readiness order; the sink and the dedup stage restore this order.
    pub seq: u64,
    pub path: PathBuf,
    /// Stable identity of the file version (device, inode, size, mtime).
    pub key: FileKey,
    pub ready_at: Instant,
}

/// Identifies one version of one file across renames and restarts.
///
/// (device, inode, size, mtime) alone would call a new file that reuses a deleted file's inode
/// with the same size and a preserved mtime (`cp -p`, `rsync -t`) "already done"; `fp`, a hash
/// of the file's first and last 4 KiB and its size, tells them apart. `fp = 0` means unknown
/// (unreadable at discovery, or a ledger written before fingerprints): it matches any
/// fingerprint of the same (device, inode, size, mtime), see [`FileKey::same_version`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FileKey {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub mtime_ns: i64,
    /// Content fingerprint; 0 when unknown.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub fp: u64,
}

impl FileKey {
    /// Returns the key without its fingerprint: what the filesystem alone says.
    pub fn without_fp(self) -> FileKey {
        FileKey { fp: 0, ..self }
    }

    /// Returns whether both keys name the same file version: same metadata, and the same
    /// fingerprint unless either is unknown.
    pub fn same_version(&self, other: &FileKey) -> bool {
        self.without_fp() == other.without_fp()
            && (self.fp == other.fp || self.fp == 0 || other.fp == 0)
    }
}

/// Returns whether `v` is zero, for serde's `skip_serializing_if`.
pub(crate) fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// The payload carried between stages: a document in progress, or the error that ended it.
#[derive(Debug)]
pub enum Work {
    /// Admitted, not yet read.
    Ready,
    Raw(RawDoc),
    Doc(Box<Document>),
    Failed(ErrorRecord),
}

/// What travels on every channel: the file, its work, and what the dedup stage wants persisted.
#[derive(Debug)]
pub struct Envelope {
    pub file: ReadyFile,
    pub source: SourceInfo,
    pub work: Work,
    /// The dedup index entry to store in the ledger with the commit, so replay rebuilds the index.
    pub index_entry: Option<crate::dedup::IndexEntry>,
    /// The dedup work done ahead of the ordered dedup worker, by the strip stage.
    pub prepared: Option<Box<crate::dedup::Prepared>>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn line_id_follows_the_file_version_not_its_spelling() {
        let key = FileKey {
            dev: 1,
            ino: 2,
            size: 3,
            mtime_ns: 4,
            fp: 5,
        };
        let id = line_id(&key, Path::new("drop/a.txt"), Some("ab"));
        assert_eq!(id.len(), 32);
        assert_eq!(id, line_id(&key, Path::new("/srv/drop/a.txt"), Some("ab")));
        for other in [
            FileKey { ino: 9, ..key },
            FileKey { size: 9, ..key },
            FileKey { mtime_ns: 9, ..key },
            FileKey { fp: 9, ..key },
        ] {
            assert_ne!(id, line_id(&other, Path::new("drop/a.txt"), Some("ab")));
        }
        assert_ne!(id, line_id(&key, Path::new("drop/a.txt"), Some("cd")));
        let unknown = FileKey::default();
        assert_ne!(
            line_id(&unknown, Path::new("x"), None),
            line_id(&unknown, Path::new("y"), None),
            "files that could not be stat'ed are told apart by path"
        );
    }

    #[test]
    fn timestamps_are_rfc3339_utc_milliseconds() {
        let t = timestamp_now();
        assert_eq!(t.len(), "2026-12-02T10:00:00.123Z".len(), "{t}");
        assert!(t.ends_with('Z') && t.as_bytes()[10] == b'T' && t.as_bytes()[19] == b'.');
    }
}
