//! Owns the compact file identities admission keeps per file: a 128-bit hash of a file's
//! metadata in place of its 40-byte [`FileKey`], the committed set built on it, and the key set
//! a folder scan fills.
//!
//! # Collisions
//! [`BaseId`] is XXH3-128 of (device, inode, size, mtime) under a seed drawn at random once
//! per process (the ids are never written anywhere: the ledger keeps full keys). Two different
//! files collide with probability about 2^-128 per pair, so for n files seen in one process
//! lifetime the chance that any two share an id is at most n^2 / 2^129: below 10^-24 for 10^7
//! files. A collision would make one file pass for another (skipped as committed: a lost
//! line); the random seed keeps it from being aimed at, since the inputs a user controls
//! (size, mtime) cannot be chosen against a seed they do not know.

use crate::model::FileKey;
use std::sync::OnceLock;

/// Returns the per-process seed of the ids here.
fn seed() -> u64 {
    static SEED: OnceLock<u64> = OnceLock::new();
    *SEED.get_or_init(|| {
        use std::hash::BuildHasher;
        // `RandomState` draws its keys from the operating system's randomness.
        std::collections::hash_map::RandomState::new().hash_one(0x6472_6f70_u64)
    })
}

/// Returns the seeded 128-bit hash of `words` (little-endian), as two words.
pub(crate) fn id128<const N: usize>(words: [u64; N]) -> [u64; 2] {
    let mut buf = [0u8; 64];
    let n = N * 8;
    for (c, w) in buf[..n].chunks_exact_mut(8).zip(words) {
        c.copy_from_slice(&w.to_le_bytes());
    }
    let h = xxhash_rust::xxh3::xxh3_128_with_seed(&buf[..n], seed());
    [h as u64, (h >> 64) as u64]
}

/// A file's (device, inode, size, mtime) as a seeded 128-bit hash (16 bytes against 40).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BaseId([u64; 2]);

impl BaseId {
    /// Returns the id of `key`'s metadata; its fingerprint is not part of it.
    pub fn of(key: &FileKey) -> Self {
        Self(id128([key.dev, key.ino, key.size, key.mtime_ns as u64]))
    }
}

/// A file version as a scan saw it: its metadata id and fingerprint (0 when unknown).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId {
    pub base: BaseId,
    pub fp: u64,
}

impl KeyId {
    /// Returns the id of `key`.
    pub fn of(key: &FileKey) -> Self {
        Self {
            base: BaseId::of(key),
            fp: key.fp,
        }
    }
}

/// The keys a folder scan saw (24 bytes each), as a sorted list: a scan of 100,000 files
/// filled a hash set of 131,072 slots (3.28 MB, and the 1.64 MB table it outgrew alongside
/// while it grew); the list is 2.4 MB, and sized from the previous scan's count.
///
/// Fill it with [`KeySet::insert`], then call [`KeySet::seal`] before asking it anything.
#[derive(Debug, Default)]
pub struct KeySet {
    keys: Vec<KeyId>,
    sealed: bool,
}

impl KeySet {
    /// Returns an empty set with room for `n` keys.
    pub fn with_capacity(n: usize) -> Self {
        Self {
            keys: Vec::with_capacity(n),
            sealed: false,
        }
    }

    /// Adds `key`.
    pub fn insert(&mut self, key: FileKey) {
        self.keys.push(KeyId::of(&key));
        self.sealed = false;
    }

    /// Sorts the keys and drops repeats (a file seen twice, by two links); queries need it.
    pub fn seal(&mut self) {
        self.keys.sort_unstable();
        self.keys.dedup();
        self.sealed = true;
    }

    /// Returns whether the version `id` was seen.
    pub fn contains(&self, id: &KeyId) -> bool {
        debug_assert!(
            self.sealed || self.keys.is_empty(),
            "KeySet queried before seal"
        );
        self.keys.binary_search(id).is_ok()
    }

    /// Returns the number of versions seen.
    pub fn len(&self) -> usize {
        debug_assert!(
            self.sealed || self.keys.is_empty(),
            "KeySet counted before seal"
        );
        self.keys.len()
    }

    /// Returns whether nothing was seen.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Returns every key seen, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &KeyId> {
        debug_assert!(
            self.sealed || self.keys.is_empty(),
            "KeySet listed before seal"
        );
        self.keys.iter()
    }
}

impl FromIterator<FileKey> for KeySet {
    fn from_iter<I: IntoIterator<Item = FileKey>>(iter: I) -> Self {
        let mut s = Self::default();
        for k in iter {
            s.insert(k);
        }
        s.seal();
        s
    }
}

/// One committed version of a file's metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Version {
    pub fp: u64,
    pub failed: bool,
}

/// Committed files still expected in the folder, by metadata id: the fingerprint of each
/// file with one version that did not fail in one table (24 bytes a file: a burst of files
/// left in place keeps one entry each), the versions of the others (an error record, or a
/// file rewritten with its size and mtime kept) in a second, nearly always empty one. A file
/// is in one of the two. Versions keep their commit order, first to last, as one list each.
#[derive(Debug, Default)]
pub struct Committed {
    single: foldhash::HashMap<BaseId, u64>,
    rest: foldhash::HashMap<BaseId, Vec<Version>>,
}

impl Committed {
    /// Returns whether some version of `base` is committed.
    pub fn contains(&self, base: &BaseId) -> bool {
        self.single.contains_key(base) || self.rest.contains_key(base)
    }

    /// Returns the first version of `base`, in commit order, that `matches`.
    pub fn find(&self, base: &BaseId, mut matches: impl FnMut(u64) -> bool) -> Option<Version> {
        if let Some(&fp) = self.single.get(base) {
            return matches(fp).then_some(Version { fp, failed: false });
        }
        self.rest.get(base)?.iter().find(|v| matches(v.fp)).copied()
    }

    /// Records `v` as the newest version of `base`, replacing one with its fingerprint.
    pub fn record(&mut self, base: BaseId, v: Version) {
        if !v.failed && !self.rest.contains_key(&base) {
            match self.single.get(&base) {
                None => {
                    self.single.insert(base, v.fp);
                    return;
                }
                Some(&fp) if fp == v.fp => return,
                Some(_) => {}
            }
        }
        let mut all = self.take(&base);
        all.retain(|o| o.fp != v.fp);
        all.push(v);
        self.put(base, all);
    }

    /// Keeps only the versions for which `keep(base, fp)` holds.
    pub fn retain(&mut self, mut keep: impl FnMut(&BaseId, u64) -> bool) {
        self.single.retain(|b, fp| keep(b, *fp));
        let multi: Vec<BaseId> = self.rest.keys().copied().collect();
        for b in multi {
            let mut all = self.take(&b);
            all.retain(|v| keep(&b, v.fp));
            self.put(b, all);
        }
    }

    /// Returns the ids of the files with a version whose fingerprint `pick` selects.
    pub fn bases_where(&self, pick: impl Fn(u64) -> bool) -> foldhash::HashSet<BaseId> {
        let single = self
            .single
            .iter()
            .filter(|(_, &fp)| pick(fp))
            .map(|(b, _)| *b);
        let rest = self
            .rest
            .iter()
            .filter(|(_, vs)| vs.iter().any(|v| pick(v.fp)))
            .map(|(b, _)| *b);
        single.chain(rest).collect()
    }

    /// Removes and returns every version of `base`, in commit order.
    fn take(&mut self, base: &BaseId) -> Vec<Version> {
        match self.single.remove(base) {
            Some(fp) => vec![Version { fp, failed: false }],
            None => self.rest.remove(base).unwrap_or_default(),
        }
    }

    /// Stores `all` (in commit order) as the versions of `base`.
    fn put(&mut self, base: BaseId, all: Vec<Version>) {
        match all[..] {
            [] => {}
            [Version { fp, failed: false }] => {
                self.single.insert(base, fp);
            }
            _ => {
                self.rest.insert(base, all);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(fp: u64) -> Version {
        Version { fp, failed: false }
    }

    fn failed(fp: u64) -> Version {
        Version { fp, failed: true }
    }

    #[test]
    fn only_files_with_one_version_that_did_not_fail_take_the_small_table() {
        let base = |i: u64| BaseId([i, !i]);
        let mut c = Committed::default();
        for i in 0..100 {
            c.record(base(i), ok(i + 1));
        }
        c.record(base(1), ok(2));
        c.record(base(2), failed(9));
        c.record(base(3), failed(4));
        assert_eq!((c.single.len(), c.rest.len()), (98, 2));
        assert_eq!(c.find(&base(2), |_| true), Some(ok(3)));
        assert_eq!(c.find(&base(2), |fp| fp == 9), Some(failed(9)));
        assert_eq!(c.find(&base(3), |_| true), Some(failed(4)));
        assert_eq!(c.find(&base(4), |fp| fp == 4), None);
        c.retain(|_, fp| fp != 3 && fp != 6);
        assert_eq!((c.single.len(), c.rest.len()), (97, 2));
        assert_eq!(c.find(&base(2), |_| true), Some(failed(9)));
        c.record(base(3), ok(4));
        assert_eq!((c.single.len(), c.rest.len()), (98, 1));
        assert_eq!(c.find(&base(3), |_| true), Some(ok(4)));
        assert!(c.contains(&base(2)) && !c.contains(&base(5)));
        let picked = c.bases_where(|fp| fp == 9 || fp == 10);
        assert_eq!(picked, [base(2), base(8), base(9)].into_iter().collect());
    }
}
