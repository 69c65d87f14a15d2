//! Owns deduplication: exact copies, near-copies, rewrites and story assignment, in arrival order.
//!
//! The core is synchronous and single-owner: one dedup worker holds the [`Deduper`], so
//! decisions are deterministic for a given arrival order (first seen wins).

pub mod eval;

use crate::model::{DedupInfo, DedupStatus};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use unicode_normalization::UnicodeNormalization;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnDuplicate {
    /// Duplicates are written with their verdict.
    Emit,
    /// Duplicates are counted and committed but not written.
    Drop,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DedupConfig {
    pub enabled: bool,
    pub on_duplicate: OnDuplicate,
    /// Documents kept in the index; the oldest are evicted past it.
    pub capacity: usize,
}

impl Default for DedupConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            on_duplicate: OnDuplicate::Emit,
            capacity: 1_000_000,
        }
    }
}

/// What the ledger stores per committed document so that replay rebuilds the index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexEntry {
    /// The document id (hash of the raw bytes).
    pub id: String,
    /// Hash of the normalised text, hex.
    pub text_hash: String,
    /// The earlier document this one duplicates exactly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicate_of: Option<String>,
    /// The story the document was assigned to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub story: Option<String>,
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

    fn insert(&self, raw: u128) {
        if let Ok(mut s) = self.ids.lock() {
            s.insert(raw);
        }
    }

    fn remove(&self, raw: u128) {
        if let Ok(mut s) = self.ids.lock() {
            s.remove(&raw);
        }
    }
}

#[derive(Debug, Clone)]
struct Known {
    id: String,
    story: String,
}

/// The streaming deduplication index.
#[derive(Debug)]
pub struct Deduper {
    config: DedupConfig,
    by_raw: HashMap<u128, Known>,
    by_text: HashMap<u128, Known>,
    /// Insertion order for eviction: (raw hash, text hash).
    order: VecDeque<(u128, u128)>,
    known_raw: Arc<KnownRaw>,
}

impl Deduper {
    pub fn new(config: &DedupConfig) -> Self {
        Self {
            config: config.clone(),
            by_raw: HashMap::new(),
            by_text: HashMap::new(),
            order: VecDeque::new(),
            known_raw: Arc::new(KnownRaw::default()),
        }
    }

    /// Returns the shared set of decided raw hashes, for the strip stage's fast path.
    pub fn known_raw(&self) -> Arc<KnownRaw> {
        Arc::clone(&self.known_raw)
    }

    /// Returns whether a document with this id was already decided (an exact re-drop).
    pub fn is_known_raw(&self, id: &str) -> Option<&str> {
        parse_hex(id)
            .and_then(|h| self.by_raw.get(&h))
            .map(|k| k.id.as_str())
    }

    /// Decides `text` (already stripped) for the document `id` and adds it to the index.
    pub fn observe(&mut self, id: &str, text: &str) -> (DedupInfo, IndexEntry) {
        let raw = parse_hex(id).unwrap_or_else(|| hash128(id.as_bytes()));
        let text_hash = hash128(normalize(text).as_bytes());
        let earlier = self
            .by_raw
            .get(&raw)
            .or_else(|| self.by_text.get(&text_hash))
            .cloned();
        let (info, entry) = match earlier {
            Some(k) => (
                DedupInfo {
                    status: DedupStatus::ExactDuplicate,
                    duplicate_of: Some(k.id.clone()),
                    similarity: Some(1.0),
                    story: Some(k.story.clone()),
                },
                IndexEntry {
                    id: id.to_string(),
                    text_hash: format!("{text_hash:032x}"),
                    duplicate_of: Some(k.id),
                    story: Some(k.story),
                },
            ),
            None => (
                DedupInfo {
                    status: DedupStatus::Unique,
                    duplicate_of: None,
                    similarity: None,
                    story: Some(id.to_string()),
                },
                IndexEntry {
                    id: id.to_string(),
                    text_hash: format!("{text_hash:032x}"),
                    duplicate_of: None,
                    story: Some(id.to_string()),
                },
            ),
        };
        self.restore(&entry);
        (info, entry)
    }

    /// Re-adds a committed entry on start-up, bringing the index to the state `observe` left it in.
    pub fn restore(&mut self, entry: &IndexEntry) {
        let Some(raw) = parse_hex(&entry.id) else {
            return;
        };
        let text = parse_hex(&entry.text_hash).unwrap_or(0);
        let known = Known {
            id: entry
                .duplicate_of
                .clone()
                .unwrap_or_else(|| entry.id.clone()),
            story: entry.story.clone().unwrap_or_else(|| entry.id.clone()),
        };
        self.by_raw.entry(raw).or_insert_with(|| known.clone());
        self.by_text.entry(text).or_insert(known);
        self.known_raw.insert(raw);
        self.order.push_back((raw, text));
        while self.order.len() > self.config.capacity {
            if let Some((r, t)) = self.order.pop_front() {
                self.by_raw.remove(&r);
                self.by_text.remove(&t);
                self.known_raw.remove(r);
            }
        }
    }
}

/// Returns the normal form exact duplicates are judged on: NFKC, lowercase, punctuation and
/// whitespace folded to single spaces.
pub fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut pending_space = false;
    for c in text.nfkc().flat_map(char::to_lowercase) {
        if c.is_alphanumeric() {
            if pending_space && !out.is_empty() {
                out.push(' ');
            }
            pending_space = false;
            out.push(c);
        } else {
            pending_space = true;
        }
    }
    out
}

/// Returns the 128-bit content hash used for ids and exact matching.
pub fn hash128(bytes: &[u8]) -> u128 {
    xxhash_rust::xxh3::xxh3_128(bytes)
}

fn parse_hex(s: &str) -> Option<u128> {
    u128::from_str_radix(s, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> String {
        format!("{:032x}", hash128(s.as_bytes()))
    }

    #[test]
    fn same_text_other_wrapper_is_exact_duplicate() {
        let mut d = Deduper::new(&DedupConfig::default());
        let (a, _) = d.observe(&id("a"), "Hello, World!\nSecond line.");
        let (b, _) = d.observe(&id("b"), "hello world  second LINE");
        assert_eq!(a.status, DedupStatus::Unique);
        assert_eq!(b.status, DedupStatus::ExactDuplicate);
        assert_eq!(b.duplicate_of, Some(id("a")));
        assert_eq!(b.story, a.story);
    }

    #[test]
    fn restore_rebuilds_decisions() {
        let mut d = Deduper::new(&DedupConfig::default());
        let (_, e) = d.observe(&id("a"), "some article text");
        let mut fresh = Deduper::new(&DedupConfig::default());
        fresh.restore(&e);
        let (b, _) = fresh.observe(&id("b"), "Some article text.");
        assert_eq!(b.status, DedupStatus::ExactDuplicate);
    }

    #[test]
    fn capacity_evicts_oldest() {
        let cfg = DedupConfig {
            capacity: 1,
            ..DedupConfig::default()
        };
        let mut d = Deduper::new(&cfg);
        d.observe(&id("a"), "first text");
        d.observe(&id("b"), "second text");
        let (c, _) = d.observe(&id("c"), "first text");
        assert_eq!(c.status, DedupStatus::Unique);
    }
}
