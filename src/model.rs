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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FileKey {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub mtime_ns: i64,
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
