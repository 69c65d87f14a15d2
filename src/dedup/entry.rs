//! The dedup index's records: what the ledger stores per committed document, which tier
//! decided, and the raw-byte ids already decided (shared with the strip stage).

use super::blocks::{Blocks, Id};
use super::minhash::widen;
use super::prepared::parse_hex;
use hashbrown::hash_table::{Entry, HashTable};
use serde::{Deserialize, Serialize};
use std::sync::{Mutex, MutexGuard, PoisonError};

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

/// The raw-byte ids of the indexed documents in arrival order and the exact tier's table over
/// them, shared with the strip stage so exact re-drops skip all work: one table serves both (a
/// separate set of the decided ids held a second copy of every id, 17 bytes a bucket).
///
/// The dedup worker changes it together with the rest of its index ([`super::exact::Exact`]);
/// the strip workers only ask whether an id is there. A lookup compares all 128 bits of the id
/// read from the arrival-ordered list, so it answers as a set of the ids would.
#[derive(Debug, Default)]
pub struct KnownRaw {
    index: Mutex<RawIndex>,
}

/// The raw-byte ids in arrival order and a hash table of their arrival positions (the low 32
/// bits and a control byte a bucket). An id indexed more than once stays at its earliest
/// position; it leaves the table when that document is evicted.
#[derive(Debug, Default)]
pub(super) struct RawIndex {
    ids: Blocks<Id>,
    /// Arrival position of `ids[0]`.
    first_seq: u64,
    table: HashTable<u32>,
}

/// The table hash of a 128-bit content hash (already uniform: its two halves folded and
/// mixed, so hashbrown's bucket and tag bits are both uniform).
pub(super) fn hash_of(id: Id) -> u64 {
    let v = id.get();
    let z = (v as u64 ^ (v >> 64) as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z ^ (z >> 29)
}

/// Adds the arrival position `seq` under `key` to a table of positions whose keys are read by
/// `key_at` (from the low 32 bits of a position), unless `key` is there already: the earliest
/// position stays.
pub(super) fn insert_earliest(
    table: &mut HashTable<u32>,
    key: Id,
    seq: u64,
    key_at: impl Fn(u32) -> Option<Id>,
) {
    let entry = table.entry(
        hash_of(key),
        |&low| key_at(low) == Some(key),
        |&low| key_at(low).map_or(0, hash_of),
    );
    if let Entry::Vacant(e) = entry {
        e.insert(seq as u32);
    }
}

impl RawIndex {
    /// Returns the raw id of the document at this arrival position, if still indexed.
    pub(super) fn get(&self, seq: u64) -> Option<Id> {
        let i = seq.checked_sub(self.first_seq)?;
        self.ids.get(usize::try_from(i).ok()?).copied()
    }

    /// Returns the earliest indexed arrival position of these raw bytes.
    pub(super) fn find(&self, raw: Id) -> Option<u64> {
        let (ids, first) = (&self.ids, self.first_seq);
        let at = |low: u32| widen(first, ids.len(), low);
        self.table
            .find(hash_of(raw), |&low| self.get(at(low)) == Some(raw))
            .map(|&low| at(low))
    }

    /// Appends the next document's raw id; a raw id already indexed keeps its earlier position.
    pub(super) fn push(&mut self, raw: Id) {
        let seq = self.first_seq + self.ids.len() as u64;
        self.ids.push_back(raw);
        let (ids, first) = (&self.ids, self.first_seq);
        insert_earliest(&mut self.table, raw, seq, |low| {
            let i = widen(first, ids.len(), low) - first;
            ids.get(i as usize).copied()
        });
    }

    /// Removes the oldest document's raw id; returns it and whether it left the table with it
    /// (no later document with those bytes holds the entry).
    pub(super) fn pop(&mut self) -> Option<(Id, bool)> {
        let seq = self.first_seq;
        let raw = *self.ids.front()?;
        let removed = match self
            .table
            .find_entry(hash_of(raw), |&low| low == seq as u32)
        {
            Ok(e) => {
                e.remove();
                true
            }
            Err(_) => false,
        };
        self.ids.pop_front();
        self.first_seq += 1;
        Some((raw, removed))
    }
}

impl KnownRaw {
    /// Returns whether a document with these raw bytes was already decided.
    pub fn contains(&self, raw: u128) -> bool {
        self.index
            .lock()
            .map(|s| s.find(raw.into()).is_some())
            .unwrap_or(false)
    }

    /// Returns whether the document with this hex id was already decided.
    pub fn contains_id(&self, id: &str) -> bool {
        parse_hex(id).is_some_and(|raw| self.contains(raw))
    }

    /// Returns the index for the dedup worker's reads and changes.
    pub(super) fn lock(&self) -> MutexGuard<'_, RawIndex> {
        self.index.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{HashMap, VecDeque};

    #[test]
    fn known_raw_answers_as_a_map_from_id_to_its_earliest_position() {
        // A model: ids in arrival order; an id is in the table at its earliest position
        // until that document leaves (a later copy does not take its place).
        let known = KnownRaw::default();
        let mut order: VecDeque<u128> = VecDeque::new();
        let mut model: HashMap<u128, u64> = HashMap::new();
        let (mut first, mut state) = (0u64, 3u64);
        for i in 0..5000u64 {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
            // Few distinct ids, so copies are common; high halves differ, low halves collide.
            let raw = u128::from(state >> 55) << 64 | u128::from(state >> 62);
            let seq = first + order.len() as u64;
            known.lock().push(raw.into());
            order.push_back(raw);
            model.entry(raw).or_insert(seq);
            if i % 3 == 1 {
                let gone = order.pop_front().unwrap();
                let (id, removed) = known.lock().pop().unwrap();
                assert_eq!(id.get(), gone);
                assert_eq!(removed, model.get(&gone) == Some(&first));
                if removed {
                    model.remove(&gone);
                }
                first += 1;
            }
            for probe in order.iter().step_by(17).chain([&(raw ^ 1 << 100)]) {
                assert_eq!(
                    known.lock().find((*probe).into()),
                    model.get(probe).copied()
                );
                assert_eq!(known.contains(*probe), model.contains_key(probe));
            }
        }
        assert!(!known.contains_id("not hex"));
    }
}
