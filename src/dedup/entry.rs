//! The dedup index's records: what the ledger stores per committed document, which tier
//! decided, and the raw-byte ids already decided (shared with the strip stage).

use super::prepared::parse_hex;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::sync::Mutex;

/// What the ledger stores per committed document so that replay rebuilds the index.
///
/// An exact duplicate carries `duplicate_of` and no `sig`; a near duplicate carries both.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexEntry {
    /// The document id (hash of the raw bytes).
    pub id: String,
    /// Hash of the normalised text, hex.
    pub text_hash: String,
    /// The earlier document this one duplicates, exactly or nearly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicate_of: Option<String>,
    /// The story the document was assigned to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub story: Option<String>,
    /// MinHash signature, base64 (448 bytes raw, 598 encoded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sig: Option<String>,
    /// Story terms (24-bit word hash, name flag, count) as little-endian u32s, base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terms: Option<String>,
    /// Sentence sketch ([`Sketch::to_bytes`]), base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent: Option<String>,
}

/// Which tier made a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tier {
    Unique,
    Exact,
    NearCopy,
    Rewrite,
}

/// Raw-byte hashes already decided, shared with the strip stage so exact re-drops skip all work.
#[derive(Debug, Default)]
pub struct KnownRaw {
    ids: Mutex<HashSet<u128>>,
}

impl KnownRaw {
    /// Returns whether a document with these raw bytes was already decided.
    pub fn contains(&self, raw: u128) -> bool {
        self.ids.lock().map(|s| s.contains(&raw)).unwrap_or(false)
    }

    /// Returns whether the document with this hex id was already decided.
    pub fn contains_id(&self, id: &str) -> bool {
        parse_hex(id).is_some_and(|raw| self.contains(raw))
    }

    pub(super) fn insert(&self, raw: u128) {
        if let Ok(mut s) = self.ids.lock() {
            s.insert(raw);
        }
    }

    pub(super) fn remove(&self, raw: u128) {
        if let Ok(mut s) = self.ids.lock() {
            s.remove(&raw);
        }
    }
}
