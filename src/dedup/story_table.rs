//! Owns one shard's term map of the story tier's term table: an open-addressing table (linear
//! probing) of 10-byte slots, each a term's key within the shard, its document frequency and the
//! head of its posting list.
//!
//! It replaces a `HashMap<u32, TermStat>` (13 bytes a bucket, two dependent cache misses a lookup
//! once the table outgrows the caches: control bytes, then the bucket) so that a lookup is one
//! slot address computed from the term, which [`ShardMap::prefetch`] can load ahead: the ordered
//! worker asks for the slots of all of a document's terms before it reads the first, and the
//! misses overlap instead of following one another. A slot with document frequency 0 is empty
//! (a listed term is always counted first); terms are only dropped by [`ShardMap::retain`],
//! which shifts the later entries of a run back into a dropped entry's slot, so there are no
//! tombstones.

/// A term's document frequency and the first node of its posting list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct TermStat {
    pub(super) df: u32,
    pub(super) head: u32,
}

/// One slot: packed, so it is 10 bytes (its fields are copied out, never referenced).
#[derive(Debug, Clone, Copy, Default)]
#[repr(C, packed)]
struct Slot {
    /// The term id without the shard's bits (`term >> 8`).
    key: u16,
    /// 0: the slot is empty.
    df: u32,
    head: u32,
}

/// Slots of a table that has any, at least.
const MIN_SLOTS: usize = 16;

/// A term map of one shard: term id (whose low 8 bits are the shard's) to [`TermStat`].
#[derive(Debug, Default)]
pub(super) struct ShardMap {
    /// A power of two long (or empty), at most 7/8 full: grown at the load hashbrown grows its
    /// tables at, with 10 bytes a slot against the `HashMap`'s 13 a bucket.
    slots: Vec<Slot>,
    len: usize,
    /// The entries the slots hold before they are grown: 7/8 of them (0 when there are none).
    limit: usize,
}

/// The key of `term` within its shard (term ids are 24 bits, the low 8 pick the shard).
#[inline(always)]
fn key_of(term: u32) -> u16 {
    debug_assert!(term < 1 << 24);
    (term >> 8) as u16
}

/// The first slot `key` is looked for at, in a table of `len` slots (a power of two).
#[inline(always)]
fn home(key: u16, len: usize) -> usize {
    // Fibonacci hashing: the product's top bits depend on every key bit.
    (u64::from(key).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32) as usize & (len - 1)
}

impl ShardMap {
    /// Returns the number of terms held.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// The slot holding `key`, or the empty slot where it would go, with what that slot holds
    /// (none when there are no slots): one probe loop for [`ShardMap::get`] and
    /// [`ShardMap::upsert`], each slot read once.
    #[inline(always)]
    fn find(&self, key: u16) -> Option<(usize, Slot)> {
        let n = self.slots.len();
        if n == 0 {
            return None;
        }
        let mut i = home(key, n);
        loop {
            let s = *self.slots.get(i)?;
            if s.df == 0 || s.key == key {
                return Some((i, s));
            }
            i = (i + 1) & (n - 1);
        }
    }

    /// Returns the entry of `term`, if held.
    #[inline(always)]
    pub(super) fn get(&self, term: u32) -> Option<TermStat> {
        let (_, s) = self.find(key_of(term))?;
        (s.df != 0).then_some(TermStat {
            df: s.df,
            head: s.head,
        })
    }

    /// Asks the processor to load the slot `term` is looked for at, without waiting for it.
    #[inline(always)]
    pub(super) fn prefetch(&self, term: u32) {
        let n = self.slots.len();
        if n == 0 {
            return;
        }
        let at: *const Slot = &self.slots[home(key_of(term), n)];
        #[cfg(target_arch = "x86_64")]
        // SAFETY: a prefetch is a hint that reads nothing into the program and cannot fault;
        // `at` points into the slots anyway. SSE is part of every x86_64 target.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(at.cast());
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = at;
    }

    /// Returns the entry of `term`, inserted as `TermStat { df: 0, head }` when new, for
    /// `update` to change; the entry must leave it with a document frequency above 0.
    #[inline(always)]
    pub(super) fn upsert(&mut self, term: u32, head: u32, update: impl FnOnce(&mut TermStat)) {
        if self.len >= self.limit {
            self.grow();
        }
        let key = key_of(term);
        let Some((i, s)) = self.find(key) else {
            return;
        };
        let mut stat = if s.df == 0 {
            self.len += 1;
            TermStat { df: 0, head }
        } else {
            TermStat {
                df: s.df,
                head: s.head,
            }
        };
        update(&mut stat);
        debug_assert!(stat.df > 0);
        if let Some(slot) = self.slots.get_mut(i) {
            *slot = Slot {
                key,
                df: stat.df,
                head: stat.head,
            };
        }
    }

    /// Doubles the slots (to [`MIN_SLOTS`] when none).
    #[cold]
    fn grow(&mut self) {
        let n = (self.slots.len() * 2).max(MIN_SLOTS);
        self.rebuild(n);
    }

    /// Rebuilds the table into `n` slots.
    fn rebuild(&mut self, n: usize) {
        let old = std::mem::take(&mut self.slots);
        self.slots = vec![Slot::default(); n];
        self.limit = n / 8 * 7;
        for s in old {
            if s.df == 0 {
                continue;
            }
            let mut i = home(s.key, n);
            while self.slots[i].df != 0 {
                i = (i + 1) & (n - 1);
            }
            self.slots[i] = s;
        }
    }

    /// Keeps the entries `keep` returns true for (it may change them) and shrinks the table
    /// when it is mostly empty; a kept entry must keep a document frequency above 0.
    ///
    /// In place: a dropped entry's slot is filled by shifting back the later entries of its run
    /// that may live there (backward-shift deletion), so the table needs no second allocation
    /// and kept entries are not hashed again. The walk starts after an empty slot, so no run
    /// wraps past its start, and an entry shifted back is always one not yet visited.
    pub(super) fn retain(&mut self, mut keep: impl FnMut(&mut TermStat) -> bool) {
        let n = self.slots.len();
        // A table is at most 7/8 full, so it has an empty slot.
        let Some(empty) = self.slots.iter().position(|s| s.df == 0) else {
            return;
        };
        let mut i = (empty + 1) & (n - 1);
        let mut left = n;
        while left > 0 {
            let s = self.slots[i];
            if s.df != 0 {
                let mut stat = TermStat {
                    df: s.df,
                    head: s.head,
                };
                if !keep(&mut stat) {
                    self.len -= 1;
                    self.remove_at(i);
                    // Slot `i` now holds a later entry of the run, or nothing.
                    continue;
                }
                self.slots[i] = Slot {
                    key: s.key,
                    df: stat.df,
                    head: stat.head,
                };
            }
            i = (i + 1) & (n - 1);
            left -= 1;
        }
        let want = Self::slots_for(self.len);
        if self.slots.len() > 4 * want {
            self.rebuild(want);
        }
    }

    /// Empties slot `hole` and shifts back the later entries of its run whose probe path
    /// passes it, so every entry stays reachable from its home slot.
    fn remove_at(&mut self, mut hole: usize) {
        let n = self.slots.len();
        let mut j = hole;
        loop {
            j = (j + 1) & (n - 1);
            let s = self.slots[j];
            if s.df == 0 {
                break;
            }
            // The entry may move to `hole` when its home is no later than `hole` on its path.
            let from_home = j.wrapping_sub(home(s.key, n)) & (n - 1);
            let from_hole = j.wrapping_sub(hole) & (n - 1);
            if from_home >= from_hole {
                self.slots[hole] = s;
                hole = j;
            }
        }
        self.slots[hole] = Slot::default();
    }

    /// The slots a table of `len` entries is built with.
    fn slots_for(len: usize) -> usize {
        if len == 0 {
            return 0;
        }
        (len * 8 / 7 + 1).next_power_of_two().max(MIN_SLOTS)
    }

    /// Returns the heap bytes the slots take.
    #[cfg(test)]
    pub(super) fn slot_bytes(&self) -> usize {
        self.slots.len() * std::mem::size_of::<Slot>()
    }
}

#[cfg(test)]
mod tests {
    use super::{ShardMap, TermStat};
    use std::collections::HashMap;

    #[test]
    fn a_slot_is_10_bytes() {
        assert_eq!(std::mem::size_of::<super::Slot>(), 10);
    }

    #[test]
    fn the_map_holds_what_a_hash_map_holds() {
        let mut rng = crate::dedup::eval::Rng(3);
        let mut map = ShardMap::default();
        let mut want: HashMap<u32, TermStat> = HashMap::new();
        for round in 0..40 {
            for _ in 0..2_000 {
                // Terms of shard 5, some repeated.
                let term = (rng.below(1 << 12) as u32) << 8 | 5;
                let head = rng.below(1000) as u32;
                map.upsert(term, head, |s| s.df += 1);
                want.entry(term).or_insert(TermStat { df: 0, head }).df += 1;
                map.prefetch(term);
            }
            for (&t, &s) in &want {
                assert_eq!(map.get(t), Some(s));
            }
            assert_eq!(map.len(), want.len());
            assert_eq!(map.get(0xffff << 8 | 5), None);
            // Drops about half, and changes the heads of the rest.
            let drop = |s: &TermStat| (s.df + s.head + round) % 2 == 0;
            map.retain(|s| {
                s.head += 1;
                !drop(&TermStat {
                    df: s.df,
                    head: s.head - 1,
                })
            });
            want.retain(|_, s| !drop(s));
            want.values_mut().for_each(|s| s.head += 1);
            assert_eq!(map.len(), want.len());
            for (&t, &s) in &want {
                assert_eq!(map.get(t), Some(s));
            }
        }
        map.retain(|_| false);
        assert_eq!((map.len(), map.slot_bytes()), (0, 0));
        assert_eq!(map.get(5), None);
    }
}
