//! Owns the story tier's term table: each term's document frequency and the open stories listed
//! under it, in one map entry of 12 bytes and a shared list of 8-byte postings.
//!
//! A story is listed under the [`LISTED_TERMS`] heaviest terms of each of its members, not
//! under every centroid term: candidate stories are looked up by a document's heaviest terms
//! only, so the long tail of a centroid's light terms cost postings (most of the index's
//! memory) that rarely found a story the heavy terms did not.

/// Heaviest terms of a document its story is listed under.
pub(super) const LISTED_TERMS: usize = 32;

/// Returns the positions in `vector` of its `k` heaviest entries (ties: smaller position), in
/// no particular order; all of them when there are no more than `k`. Weights are positive, so
/// their bits order as they do: each entry is one `u64` key (inverted weight bits, position),
/// selected without a comparison closure.
pub(super) fn heaviest(vector: &[(u32, f32)], k: usize) -> Vec<usize> {
    let mut keys = Vec::new();
    heaviest_into(vector, k, &mut keys);
    keys.iter().map(|&key| key as u32 as usize).collect()
}

/// [`heaviest`] into a reused buffer: `keys` ends holding one key per chosen entry, whose low
/// 32 bits are its position.
pub(super) fn heaviest_into(vector: &[(u32, f32)], k: usize, keys: &mut Vec<u64>) {
    keys.clear();
    keys.extend(
        vector
            .iter()
            .enumerate()
            .map(|(i, &(_, w))| u64::from(!w.to_bits()) << 32 | i as u64),
    );
    if vector.len() <= k {
        return;
    }
    if k > 0 {
        keys.select_nth_unstable(k - 1);
    }
    keys.truncate(k);
}

/// Sets `listed` to say, for each entry of a document's TF-IDF vector (in term id order),
/// whether it is one of the [`LISTED_TERMS`] heaviest (ties: smaller term id, as the query's
/// term choice); `keys` is scratch.
pub(super) fn listed_terms(vector: &[(u32, f32)], listed: &mut Vec<bool>, keys: &mut Vec<u64>) {
    debug_assert!(vector.windows(2).all(|w| w[0].0 < w[1].0));
    listed.clear();
    listed.resize(vector.len(), false);
    heaviest_into(vector, LISTED_TERMS, keys);
    for &key in keys.iter() {
        listed[key as u32 as usize] = true;
    }
}

/// No posting (the end of a list).
const END: u32 = u32::MAX;
/// A free slot of a shard's table (term ids have 24 bits, so no term has this id).
const FREE: u32 = u32::MAX;
/// Shards of the term table, by the low bits of the term id; one is swept at a time.
pub(super) const SHARDS: usize = 256;
/// Slots of a shard's first table.
const MIN_SLOTS: usize = 16;

/// A term's document frequency and the first node of its posting list.
#[derive(Debug, Clone, Copy)]
pub(super) struct TermStat {
    pub(super) df: u32,
    head: u32,
}

/// One shard: its terms in an open-addressing table (linear probing, at most 3/4 full, a
/// power of two slots or none), the term ids and their stats in two arrays of the same slots,
/// and the shard's postings.
///
/// A term id is uniform hash bits, so its slot is a multiplicative hash of the id; a lookup
/// reads the 4-byte ids from the term's slot on until it meets the id or a free slot, which
/// costs fewer instructions than a general map's hasher and group probe. Nothing is removed
/// one by one: a sweep rebuilds the table from the terms it keeps.
#[derive(Debug, Default)]
struct Shard {
    ids: Vec<u32>,
    stats: Vec<TermStat>,
    /// Terms held.
    len: usize,
    /// `32 - log2(slots)`: the top bits of the hashed id pick the first slot.
    shift: u32,
    nodes: Vec<(u32, u32)>,
}

impl Shard {
    #[inline]
    fn home(&self, term: u32) -> usize {
        (term.wrapping_mul(0x9e37_79b1) >> self.shift) as usize
    }

    /// Returns the slot holding `term`, if any.
    #[inline]
    fn find(&self, term: u32) -> Option<usize> {
        let mask = self.ids.len().checked_sub(1)?;
        let mut i = self.home(term);
        loop {
            match self.ids.get(i).copied() {
                Some(id) if id == term => return Some(i),
                Some(FREE) | None => return None,
                Some(_) => i = (i + 1) & mask,
            }
        }
    }

    /// Returns the slot of `term`, inserted with document frequency 0 and no postings when new.
    fn find_or_insert(&mut self, term: u32) -> usize {
        if (self.len + 1) * 4 > self.ids.len() * 3 {
            self.rebuild((2 * self.ids.len()).max(MIN_SLOTS));
        }
        let mask = self.ids.len() - 1;
        let mut i = self.home(term);
        loop {
            match self.ids[i] {
                id if id == term => return i,
                FREE => break,
                _ => i = (i + 1) & mask,
            }
        }
        self.ids[i] = term;
        self.stats[i] = TermStat { df: 0, head: END };
        self.len += 1;
        i
    }

    /// Puts the held terms into a table of `slots` slots (a power of two, more than 4/3 of
    /// the terms).
    fn rebuild(&mut self, slots: usize) {
        let ids = std::mem::replace(&mut self.ids, vec![FREE; slots]);
        let stats = std::mem::replace(&mut self.stats, vec![TermStat { df: 0, head: END }; slots]);
        self.shift = 32 - slots.trailing_zeros();
        self.place(ids.iter().copied().zip(stats).filter(|&(id, _)| id != FREE));
    }

    /// Puts terms not held yet into their slots (the table has room for them).
    fn place(&mut self, terms: impl Iterator<Item = (u32, TermStat)>) {
        let mask = self.ids.len() - 1;
        for (id, stat) in terms {
            let mut i = self.home(id);
            while self.ids[i] != FREE {
                i = (i + 1) & mask;
            }
            self.ids[i] = id;
            self.stats[i] = stat;
            self.len += 1;
        }
    }
}

/// Document frequencies and story postings by term id, in [`SHARDS`] shards.
///
/// Postings are singly linked lists in their shard's arena (`(story slot, next node)`), newest
/// first; a sweep rebuilds a shard's arena with each term's list contiguous, so a long list is
/// read mostly in order. A term without postings costs only its table slot. Shards are swept one
/// at a time, so no sweep costs more than a 1/[`SHARDS`] slice of the table.
#[derive(Debug)]
pub(super) struct TermTable {
    shards: Vec<Shard>,
}

impl Default for TermTable {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Shard::default()).collect(),
        }
    }
}

fn shard_of(term: u32) -> usize {
    term as usize % SHARDS
}

impl TermTable {
    /// Returns the document frequency of `term`.
    #[inline]
    pub(super) fn df(&self, term: u32) -> u32 {
        let shard = &self.shards[shard_of(term)];
        shard.find(term).map_or(0, |i| shard.stats[i].df)
    }

    /// Returns the story slots whose centroid holds `term`.
    pub(super) fn stories(&self, term: u32) -> impl Iterator<Item = u32> + '_ {
        let shard = &self.shards[shard_of(term)];
        let mut at = shard.find(term).map_or(END, |i| shard.stats[i].head);
        std::iter::from_fn(move || {
            let &(slot, next) = shard.nodes.get(at as usize)?;
            at = next;
            Some(slot)
        })
    }

    /// Counts one more document holding `term`, and when `slot` is given lists that story
    /// under it (the term is new to the story's centroid).
    pub(super) fn count(&mut self, term: u32, slot: Option<u32>) {
        let shard = &mut self.shards[shard_of(term)];
        let i = shard.find_or_insert(term);
        let s = &mut shard.stats[i];
        s.df += 1;
        if let Some(slot) = slot {
            let node = u32::try_from(shard.nodes.len()).unwrap_or(END);
            shard.nodes.push((slot, s.head));
            s.head = node;
        }
    }

    /// Drops shard `k`'s postings of stories that are not `live`, and forgets its terms seen
    /// in one document only that no live story holds.
    pub(super) fn sweep(&mut self, k: usize, live: impl Fn(u32) -> bool) {
        let Some(shard) = self.shards.get_mut(k) else {
            return;
        };
        let old = std::mem::take(&mut shard.nodes);
        let mut nodes: Vec<(u32, u32)> = Vec::with_capacity(old.len());
        let mut kept: Vec<u32> = Vec::new();
        let mut keep: Vec<(u32, TermStat)> = Vec::with_capacity(shard.len);
        for (&id, &stat) in shard.ids.iter().zip(&shard.stats) {
            if id == FREE {
                continue;
            }
            kept.clear();
            let mut at = stat.head;
            while let Some(&(slot, next)) = old.get(at as usize) {
                if live(slot) {
                    kept.push(slot);
                }
                at = next;
            }
            // Rebuilt contiguous, in the order the list was read (newest first).
            let mut head = END;
            for &slot in kept.iter().rev() {
                let node = u32::try_from(nodes.len()).unwrap_or(END);
                nodes.push((slot, head));
                head = node;
            }
            if stat.df > 1 || head != END {
                keep.push((id, TermStat { df: stat.df, head }));
            }
        }
        nodes.shrink_to_fit();
        shard.nodes = nodes;
        // The same slots unless they are more than four times the terms kept (and 64).
        let mut slots = shard.ids.len();
        if slots > 4 * keep.len() + 64 {
            slots = (keep.len() * 4 / 3 + 1).next_power_of_two().max(MIN_SLOTS);
        }
        shard.ids.clear();
        shard.ids.resize(slots, FREE);
        shard.stats.clear();
        shard.stats.resize(slots, TermStat { df: 0, head: END });
        shard.stats.shrink_to_fit();
        shard.ids.shrink_to_fit();
        shard.len = 0;
        if slots > 0 {
            shard.shift = 32 - slots.trailing_zeros();
            shard.place(keep.into_iter());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::TermTable;

    /// The table against a plain map: counts, postings and sweeps of many colliding terms.
    #[test]
    fn term_table_counts_lists_and_sweeps_as_a_map_would() {
        let mut table = TermTable::default();
        let mut model: std::collections::BTreeMap<u32, (u32, Vec<u32>)> = Default::default();
        let mut x = 12345u64;
        for step in 0..40_000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Few shards (low bits) and a narrow range, so slots collide and tables grow.
            let term = ((x >> 20) as u32 % 3000) << 8 | (x as u32 % 3);
            let slot = (x >> 50) as u32 % 7;
            let listed = x % 3 == 0;
            table.count(term, listed.then_some(slot));
            let e = model.entry(term).or_default();
            e.0 += 1;
            if listed {
                e.1.insert(0, slot);
            }
            if step % 5000 == 4999 {
                let live = |s: u32| s % 2 == 0;
                for k in 0..3 {
                    table.sweep(k, live);
                }
                model.retain(|_, (df, list)| {
                    list.retain(|&s| live(s));
                    *df > 1 || !list.is_empty()
                });
            }
        }
        for t in 0..3000u32 {
            for low in 0..4 {
                let term = t << 8 | low;
                let (df, list) = model.get(&term).cloned().unwrap_or_default();
                assert_eq!(table.df(term), df, "term {term}");
                assert_eq!(table.stories(term).collect::<Vec<_>>(), list, "term {term}");
            }
        }
    }
}
