//! Owns the exact tier's index and the ids of every indexed document: the documents in arrival
//! order, and two hash tables over them (raw-byte hash, normalised-text hash) that hold only
//! arrival positions.
//!
//! A table bucket is the low 32 bits of an arrival position and a control byte (5 bytes, against
//! 57 for a map from a 16-byte hash to a 40-byte record); the key is read from the document's
//! record. The near index keeps arrival positions too, and finds its documents' ids here.

use super::blocks::{Blocks, Id};
use super::minhash::widen;
use super::text::IdMap;
use hashbrown::hash_table::{Entry, HashTable};

/// One indexed document in arrival order (56 bytes).
#[derive(Debug, Clone, Copy)]
pub(super) struct Slot {
    pub(super) raw: Id,
    text: Id,
    pub(super) story: Id,
    /// Whether the document is in the near index (evicted from it together with this slot).
    pub(super) in_near: bool,
}

/// The table hash of a 128-bit content hash (already uniform: its two halves folded and
/// mixed, so hashbrown's bucket and tag bits are both uniform).
fn hash_of(id: Id) -> u64 {
    let v = id.get();
    let z = (v as u64 ^ (v >> 64) as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z ^ (z >> 29)
}

/// Documents in arrival order with their exact-match tables.
#[derive(Debug, Default)]
pub(super) struct Exact {
    order: Blocks<Slot>,
    /// Arrival position of `order[0]`.
    first_seq: u64,
    by_raw: HashTable<u32>,
    by_text: HashTable<u32>,
    /// The earlier document each exact duplicate resolves to, by the duplicate's position.
    exact_of: IdMap<u64, Id>,
}

impl Exact {
    /// Returns the number of indexed documents.
    pub(super) fn len(&self) -> usize {
        self.order.len()
    }

    /// Returns the arrival position the next document gets.
    pub(super) fn next_seq(&self) -> u64 {
        self.first_seq + self.order.len() as u64
    }

    /// Returns the full arrival position of an indexed document from its low 32 bits.
    pub(super) fn widen(&self, low: u32) -> u64 {
        widen(self.first_seq, self.order.len(), low)
    }

    /// Returns the document at this arrival position, if still indexed.
    pub(super) fn slot(&self, seq: u64) -> Option<&Slot> {
        let i = seq.checked_sub(self.first_seq)?;
        self.order.get(usize::try_from(i).ok()?)
    }

    /// Returns the id an exact copy of the document at `seq` resolves to, and its story.
    fn resolve(&self, seq: u64) -> Option<(u128, u128)> {
        let s = self.slot(seq)?;
        let of = self.exact_of.get(&seq).copied().unwrap_or(s.raw);
        Some((of.get(), s.story.get()))
    }

    fn find(&self, table: &HashTable<u32>, key: Id, raw: bool) -> Option<u64> {
        let eq = |&low: &u32| {
            self.slot(self.widen(low))
                .is_some_and(|s| if raw { s.raw } else { s.text } == key)
        };
        table.find(hash_of(key), eq).map(|&low| self.widen(low))
    }

    /// Returns the document an exact copy with these hashes resolves to (raw bytes first, then
    /// the normalised text) and its story.
    pub(super) fn lookup(&self, raw: u128, text: u128) -> Option<(u128, u128)> {
        self.find(&self.by_raw, raw.into(), true)
            .or_else(|| self.find(&self.by_text, text.into(), false))
            .and_then(|seq| self.resolve(seq))
    }

    /// Returns what a document with these raw bytes resolves to, if one was indexed.
    pub(super) fn lookup_raw(&self, raw: u128) -> Option<u128> {
        self.find(&self.by_raw, raw.into(), true)
            .and_then(|seq| self.resolve(seq))
            .map(|(id, _)| id)
    }

    /// Appends a document (`exact_of`: the document it exactly duplicates) and returns its
    /// arrival position. A hash seen before keeps pointing at the earlier document.
    pub(super) fn push(
        &mut self,
        raw: u128,
        text: u128,
        story: u128,
        exact_of: Option<u128>,
        in_near: bool,
    ) -> u64 {
        let seq = self.next_seq();
        self.order.push_back(Slot {
            raw: raw.into(),
            text: text.into(),
            story: story.into(),
            in_near,
        });
        if let Some(of) = exact_of {
            self.exact_of.insert(seq, of.into());
        }
        let (order, first) = (&self.order, self.first_seq);
        let slot = |low: u32| {
            let i = widen(first, order.len(), low) - first;
            order.get(i as usize)
        };
        for (table, raw_key) in [(&mut self.by_raw, true), (&mut self.by_text, false)] {
            let key_of = |s: &Slot| if raw_key { s.raw } else { s.text };
            let key = if raw_key { raw.into() } else { text.into() };
            let entry = table.entry(
                hash_of(key),
                |&low| slot(low).is_some_and(|s| key_of(s) == key),
                |&low| slot(low).map_or(0, |s| hash_of(key_of(s))),
            );
            if let Entry::Vacant(e) = entry {
                e.insert(seq as u32);
            }
        }
        seq
    }

    /// Removes the oldest document; returns its record and whether its raw hash left the
    /// index with it (no later document with those bytes holds the entry).
    pub(super) fn pop(&mut self) -> Option<(Slot, bool)> {
        let seq = self.first_seq;
        let slot = *self.order.front()?;
        // A table entry is this document's only when it holds its position.
        let mut removed = [false; 2];
        let tables = [(&mut self.by_raw, slot.raw), (&mut self.by_text, slot.text)];
        for ((table, key), removed) in tables.into_iter().zip(&mut removed) {
            if let Ok(e) = table.find_entry(hash_of(key), |&low| low == seq as u32) {
                e.remove();
                *removed = true;
            }
        }
        self.exact_of.remove(&seq);
        self.order.pop_front();
        self.first_seq += 1;
        Some((slot, removed[0]))
    }
}
