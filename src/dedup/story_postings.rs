//! Owns the story tier's term table: each term's document frequency and the open stories listed
//! under it, in one map entry of 12 bytes and a shared list of 8-byte postings.
//!
//! A story is listed under the [`LISTED_TERMS`] heaviest terms of each of its members, not
//! under every centroid term: candidate stories are looked up by a document's heaviest terms
//! only, so the long tail of a centroid's light terms cost postings (most of the index's
//! memory) that rarely found a story the heavy terms did not.

use super::story_table::ShardMap;

/// Heaviest terms of a document its story is listed under.
pub(super) const LISTED_TERMS: usize = 32;

/// Returns the positions in `vector` of its `k` heaviest entries (ties: smaller position), in
/// no particular order; all of them when there are no more than `k`. Weights are positive, so
/// their bits order as they do: each entry is one `u64` key (inverted weight bits, position),
/// selected without a comparison closure.
#[cfg(test)]
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

/// Returns the keys of the [`LISTED_TERMS`] heaviest entries of a document's TF-IDF vector (as
/// [`heaviest_into`] leaves them): the terms its story is listed under, among which are the
/// ranking's query terms ([`heaviest_among`]), so one selection serves both.
pub(super) fn listed_keys(vector: &[(u32, f32)]) -> Vec<u64> {
    let mut keys = Vec::new();
    heaviest_into(vector, LISTED_TERMS, &mut keys);
    keys
}

/// Returns the positions of the `k` heaviest entries (ties: smaller position) of the vector whose
/// [`listed_keys`] are `listed`, in no particular order: the same entries as [`heaviest`] with
/// `k`, for `k` up to [`LISTED_TERMS`] (keys are distinct, so the `k` smallest of the whole
/// vector are the `k` smallest of any set of its smallest keys holding at least `k`).
pub(super) fn heaviest_among(listed: &[u64], k: usize) -> impl Iterator<Item = usize> {
    debug_assert!(k <= LISTED_TERMS);
    let mut keys = [0u64; LISTED_TERMS];
    let n = listed.len().min(LISTED_TERMS);
    keys[..n].copy_from_slice(&listed[..n]);
    let chosen = &mut keys[..n];
    if n > k && k > 0 {
        chosen.select_nth_unstable(k - 1);
    }
    let kept = n.min(k);
    (0..kept).map(move |i| keys[i] as u32 as usize)
}

/// Sets `listed` to say, for each entry of a document's TF-IDF vector (in term id order, `len`
/// of them), whether it is one of the [`LISTED_TERMS`] heaviest (ties: smaller term id, as the
/// query's term choice), given their [`listed_keys`].
pub(super) fn mark_listed(len: usize, keys: &[u64], listed: &mut Vec<bool>) {
    listed.clear();
    listed.resize(len, false);
    for &key in keys {
        listed[key as u32 as usize] = true;
    }
}

/// [`mark_listed`] with the keys worked out from `vector` (into `keys`, scratch).
pub(super) fn listed_terms(vector: &[(u32, f32)], listed: &mut Vec<bool>, keys: &mut Vec<u64>) {
    debug_assert!(vector.windows(2).all(|w| w[0].0 < w[1].0));
    heaviest_into(vector, LISTED_TERMS, keys);
    mark_listed(vector.len(), keys, listed);
}

/// No posting (the end of a list).
const END: u32 = u32::MAX;
/// Shards of the term table, by the low bits of the term id; one is swept at a time.
pub(super) const SHARDS: usize = 256;

/// One shard: its terms and their postings.
#[derive(Debug, Default)]
struct Shard {
    terms: ShardMap,
    nodes: Vec<(u32, u32)>,
}

/// Document frequencies and story postings by term id, in [`SHARDS`] shards.
///
/// Postings are singly linked lists in their shard's arena (`(story slot, next node)`), newest
/// first; a sweep rebuilds a shard's arena with each term's list contiguous, so a long list is
/// read mostly in order. A term without postings costs only its map entry. Shards are swept one
/// at a time, so no sweep costs more than a 1/[`SHARDS`] slice of the table.
#[derive(Debug)]
pub(super) struct TermTable {
    /// A fixed array, so that a shard is picked without a bounds check.
    shards: Box<[Shard; SHARDS]>,
}

impl Default for TermTable {
    fn default() -> Self {
        Self {
            shards: Box::new(std::array::from_fn(|_| Shard::default())),
        }
    }
}

#[inline(always)]
fn shard_of(term: u32) -> usize {
    term as usize % SHARDS
}

impl TermTable {
    /// Returns the document frequency of `term`.
    #[inline(always)]
    pub(super) fn df(&self, term: u32) -> u32 {
        self.shards[shard_of(term)]
            .terms
            .get(term)
            .map_or(0, |s| s.df)
    }

    /// Asks the processor to load where `term`'s entry is looked for, ahead of a lookup.
    #[inline(always)]
    pub(super) fn prefetch(&self, term: u32) {
        self.shards[shard_of(term)].terms.prefetch(term);
    }

    /// Returns the story slots whose centroid holds `term`.
    pub(super) fn stories(&self, term: u32) -> impl Iterator<Item = u32> + '_ {
        let shard = &self.shards[shard_of(term)];
        let mut at = shard.terms.get(term).map_or(END, |s| s.head);
        std::iter::from_fn(move || {
            let &(slot, next) = shard.nodes.get(at as usize)?;
            at = next;
            Some(slot)
        })
    }

    /// Counts one more document holding `term`, and when `slot` is given lists that story
    /// under it (the term is new to the story's centroid).
    #[inline]
    pub(super) fn count(&mut self, term: u32, slot: Option<u32>) {
        let shard = &mut self.shards[shard_of(term)];
        let nodes = &mut shard.nodes;
        shard.terms.upsert(term, END, |s| {
            s.df += 1;
            if let Some(slot) = slot {
                let node = u32::try_from(nodes.len()).unwrap_or(END);
                nodes.push((slot, s.head));
                s.head = node;
            }
        });
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
        shard.terms.retain(|s| {
            kept.clear();
            let mut at = s.head;
            while let Some(&(slot, next)) = old.get(at as usize) {
                if live(slot) {
                    kept.push(slot);
                }
                at = next;
            }
            // Rebuilt contiguous, in the order the list was read (newest first).
            s.head = END;
            for &slot in kept.iter().rev() {
                let node = u32::try_from(nodes.len()).unwrap_or(END);
                nodes.push((slot, s.head));
                s.head = node;
            }
            s.df > 1 || s.head != END
        });
        nodes.shrink_to_fit();
        shard.nodes = nodes;
    }
}
