//! Owns the per-source memory of recurring lines (CCNet-style), bounded and persisted in the state dir.
//!
//! For each source (drop sub-folder or site) it counts in how many earlier documents each
//! digit-normalised line shape occurred. Lines that recur across a source's pages are navigation,
//! footers and teasers, so the stripper improves the more it sees of a site.

use crate::durable::{self, Rename};
use anyhow::Context;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::path::Path;

/// File name of the persisted memory inside `state.dir`.
pub const FILE_NAME: &str = "strip-lines.json";
/// Line shapes remembered per source; past it the rarest half is forgotten.
const MAX_SHAPES_PER_SOURCE: usize = 8192;
/// Sources remembered; past it the least recently seen source is forgotten.
const MAX_SOURCES: usize = 4096;

/// Line shapes are already well-mixed 64-bit hashes: the map uses them as they are.
#[derive(Debug, Default, Clone, Copy)]
struct ShapeHasher(u64);

impl Hasher for ShapeHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) ^ u64::from(*b) ^ (self.0 >> 56);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

type ShapeMap = HashMap<u64, u32, BuildHasherDefault<ShapeHasher>>;

/// What one source has shown so far.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct SourceLines {
    /// Documents seen from this source.
    docs: u32,
    /// Value of the global document counter when this source was last seen.
    last_seen: u64,
    /// Line shape -> number of documents it occurred in.
    shapes: ShapeMap,
}

/// Recurring-line memory for all sources.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct LineMemory {
    version: u32,
    clock: u64,
    sources: HashMap<String, SourceLines>,
}

impl LineMemory {
    /// Loads the memory from `dir`, or starts empty when there is no file yet.
    pub fn load(dir: &Path) -> anyhow::Result<Self> {
        let path = dir.join(FILE_NAME);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .with_context(|| format!("failed to parse {}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(e).with_context(|| format!("failed to read {}", path.display())),
        }
    }

    /// Writes the memory crash-safely (temp file, fsync, rename) into `dir`.
    pub fn save(&self, dir: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("failed to create {}", dir.display()))?;
        let bytes = serde_json::to_vec(self)?;
        // An older memory after a power loss only strips a few repeated lines less.
        durable::replace(&dir.join(FILE_NAME), &bytes, Rename::Atomic)
    }

    /// Returns, per shape in `shapes`, in how many earlier documents of `source` it occurred, and how many
    /// documents of the source were seen; then records this document's shapes.
    pub fn observe(&mut self, source: &str, shapes: &[u64], seen_in: &mut Vec<u32>) -> u32 {
        seen_in.clear();
        self.clock += 1;
        if !self.sources.contains_key(source) && self.sources.len() >= MAX_SOURCES {
            self.evict_oldest_source();
        }
        let entry = self.sources.entry(source.to_string()).or_default();
        let docs = entry.docs;
        seen_in.extend(
            shapes
                .iter()
                .map(|s| entry.shapes.get(s).copied().unwrap_or(0)),
        );
        let mut unique: Vec<u64> = shapes.to_vec();
        unique.sort_unstable();
        unique.dedup();
        for s in unique {
            *entry.shapes.entry(s).or_default() += 1;
        }
        entry.docs += 1;
        entry.last_seen = self.clock;
        if entry.shapes.len() > MAX_SHAPES_PER_SOURCE {
            forget_rarest_half(&mut entry.shapes);
        }
        docs
    }

    /// Like [`LineMemory::observe`] but records nothing: for a second look at the same document.
    pub fn lookup(&self, source: &str, shapes: &[u64], seen_in: &mut Vec<u32>) -> u32 {
        seen_in.clear();
        match self.sources.get(source) {
            Some(entry) => {
                seen_in.extend(
                    shapes
                        .iter()
                        .map(|s| entry.shapes.get(s).copied().unwrap_or(0)),
                );
                entry.docs
            }
            None => {
                seen_in.resize(shapes.len(), 0);
                0
            }
        }
    }

    fn evict_oldest_source(&mut self) {
        if let Some(key) = self
            .sources
            .iter()
            .min_by_key(|(_, s)| s.last_seen)
            .map(|(k, _)| k.clone())
        {
            self.sources.remove(&key);
        }
    }
}

fn forget_rarest_half(shapes: &mut ShapeMap) {
    let mut counts: Vec<u32> = shapes.values().copied().collect();
    let mid = counts.len() / 2;
    let (_, median, _) = counts.select_nth_unstable(mid);
    let cut = *median;
    // Keep shapes above the median; drop ties too when they would keep more than half.
    shapes.retain(|_, c| *c > cut);
    if shapes.len() > MAX_SHAPES_PER_SOURCE / 2 {
        let mut v: Vec<(u64, u32)> = shapes.drain().collect();
        v.sort_unstable_by_key(|e| std::cmp::Reverse(e.1));
        v.truncate(MAX_SHAPES_PER_SOURCE / 2);
        shapes.extend(v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_documents_per_source_and_persists() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = LineMemory::default();
        let mut seen = Vec::new();
        assert_eq!(m.observe("a", &[1, 2, 2], &mut seen), 0);
        assert_eq!(seen, [0, 0, 0]);
        m.observe("a", &[1, 3], &mut seen);
        assert_eq!(seen, [1, 0]);
        m.observe("b", &[1], &mut seen);
        assert_eq!(seen, [0], "sources are kept apart");
        m.save(dir.path()).unwrap();
        let mut back = LineMemory::load(dir.path()).unwrap();
        assert_eq!(back.observe("a", &[1, 2], &mut seen), 2);
        assert_eq!(seen, [2, 1]);
    }

    #[test]
    fn stays_bounded() {
        let mut m = LineMemory::default();
        let mut seen = Vec::new();
        let shapes: Vec<u64> = (0..(MAX_SHAPES_PER_SOURCE as u64 + 10)).collect();
        m.observe("a", &shapes, &mut seen);
        assert!(m.sources["a"].shapes.len() <= MAX_SHAPES_PER_SOURCE);
        for i in 0..(MAX_SOURCES + 5) {
            m.observe(&i.to_string(), &[1], &mut seen);
        }
        assert!(m.sources.len() <= MAX_SOURCES);
    }

    #[test]
    fn missing_file_is_an_empty_memory() {
        let dir = tempfile::tempdir().unwrap();
        assert!(LineMemory::load(dir.path()).unwrap().sources.is_empty());
    }
}
