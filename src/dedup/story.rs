//! Owns the story tier: online TF-IDF clustering against story centroids within a time window.
//!
//! In the style of Miranda et al. (2018), "Multilingual clustering of streaming news": each
//! document becomes a sublinear TF-IDF vector over words (name-like words weighted higher, a
//! proxy for the entities the later stage finds), IDF counted online from the documents seen so
//! far, and joins the most similar active story centroid if the cosine clears a threshold, else
//! starts a story. Time is arrival position: a story no document joined for `window` documents
//! is closed. Every update runs in document-term order so replay reproduces the same floats.

use super::text::IdMap;

#[path = "story_add.rs"]
mod story_add;
#[path = "story_cells.rs"]
mod story_cells;
#[path = "story_postings.rs"]
mod story_postings;
#[path = "story_table.rs"]
mod story_table;
#[path = "story_terms.rs"]
mod story_terms;
use story_add::AddScratch;
#[cfg(test)]
use story_cells::{directory, insert_cells, update_directory};
use story_cells::{dots, filter_bits, Dir, Query};
#[cfg(test)]
use story_cells::{may_hold, scan, seek, seek_in};
use story_postings::{heaviest_among, TermTable, SHARDS};
pub(super) use story_terms::is_stop;
pub use story_terms::{terms, DfPrior, Term, MAX_TERMS};
use story_terms::{tf_weights, Cell, Idf};

/// Terms of a document used to look up candidate stories (the heaviest of those it is listed
/// under).
const QUERY_TERMS: usize = 24;
const _: () = assert!(QUERY_TERMS <= story_postings::LISTED_TERMS);
/// Stories whose centroid is compared, at most.
const MAX_CANDIDATES: usize = 64;
/// Documents per round of term-table sweeps: one shard every `SWEEP_EVERY / SHARDS` documents.
const SWEEP_EVERY: u64 = 4096;
const SHARD_EVERY: u64 = SWEEP_EVERY / SHARDS as u64;
/// Story slots checked for closing per document; slots grow by at most one a document, so the
/// check comes round to every slot.
const CLOSE_PER_DOC: usize = 2;

/// Settings of the story tier.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StoryParams {
    pub threshold: f32,
    pub window: u64,
    pub name_boost: f32,
    pub idf_power: f32,
    /// Share of the name-only cosine in the similarity (the rest is the all-words cosine).
    pub name_weight: f32,
}

#[derive(Debug)]
struct Story {
    id: u128,
    /// Sum of the members' unit vectors with IDF divided out (IDF is applied at comparison),
    /// as `(term id << 2 | listed in the term table << 1 | name-like in some member, mass)`
    /// sorted by term id: a dot product with a document vector (also in term id order) is a
    /// merge, and a one-member story costs 6 bytes a term ([`Cell`]).
    centroid: Vec<Cell>,
    /// Squared norm of the centroid under the IDF of the last time a member joined.
    norm_sq: f32,
    /// The centroid's squared norm over its name-like terms.
    names_sq: f32,
    last_seq: u64,
    size: u32,
}

/// A document's unit TF-IDF vector ([`StoryIndex::vector_with`]) with the keys of its heaviest
/// terms ([`StoryIndex::listed_keys`]), as a decision worked them out.
pub type Weighed<'a> = (&'a [(u32, f32)], &'a [u64]);

/// A scored story: its id and the cosine of the document to its centroid.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Match {
    pub story: u128,
    pub similarity: f32,
}

/// The online story clusterer.
#[derive(Debug)]
pub struct StoryIndex {
    params: StoryParams,
    /// Document frequencies and the stories holding each term.
    terms: TermTable,
    /// Background document frequencies blended into the IDF, if any.
    prior: Option<std::sync::Arc<DfPrior>>,
    docs_seen: u64,
    /// Stories by slot; postings name slots (4 bytes) rather than story ids (16).
    slots: Vec<Option<Story>>,
    /// One bit a slot, set while it holds a story: the sweeps ask this for every posting, and
    /// 64 slots a word stay in cache where the slots themselves (a story each) do not.
    open: Vec<u64>,
    /// The [`directory`] of each open story's centroid of [`DIRECTORY_MIN`] terms or more, by
    /// slot (half a byte or less a term, only for the few large stories).
    dirs: IdMap<u32, Vec<u32>>,
    /// Slots of closed stories whose postings every shard has since dropped, for new stories.
    free: Vec<u32>,
    /// Slots of closed stories and the arrival position they closed at, until freed.
    closed: Vec<(u32, u64)>,
    /// Next slot checked for closing.
    cursor: usize,
    by_id: IdMap<u128, u32>,
    /// Arrival position of the next document.
    seq: u64,
    /// Buffers [`StoryIndex::add_with`] reuses from one document to the next.
    scratch: AddScratch,
}

impl StoryIndex {
    pub fn new(params: StoryParams) -> Self {
        Self {
            params,
            terms: TermTable::default(),
            prior: None,
            docs_seen: 0,
            slots: Vec::new(),
            open: Vec::new(),
            dirs: IdMap::default(),
            free: Vec::new(),
            closed: Vec::new(),
            cursor: 0,
            by_id: IdMap::default(),
            seq: 0,
            scratch: AddScratch::default(),
        }
    }

    /// [`StoryIndex::new`] with background document frequencies blended into the IDF.
    pub fn with_prior(params: StoryParams, prior: Option<std::sync::Arc<DfPrior>>) -> Self {
        Self {
            prior,
            ..Self::new(params)
        }
    }

    /// Returns the IDF of each term under the current document frequencies.
    pub fn idfs(&self, terms: &[Term]) -> Vec<f32> {
        // All the entries are asked for first, so their cache misses overlap (the table
        // outgrows the caches: 2 million terms after 200,000 synthetic articles).
        for t in terms {
            self.terms.prefetch(t.id);
        }
        let mut idf = self.idf();
        terms.iter().map(|t| idf.of(t.id)).collect()
    }

    /// Returns the document's unit TF-IDF vector under the current document frequencies.
    pub fn vector(&self, terms: &[Term]) -> Vec<(u32, f32)> {
        self.vector_with(terms, &self.idfs(terms))
    }

    /// [`StoryIndex::vector`] with the terms' IDF values given.
    pub fn vector_with(&self, terms: &[Term], idfs: &[f32]) -> Vec<(u32, f32)> {
        let mut v = Vec::with_capacity(terms.len());
        self.vector_into(terms, idfs, &mut v);
        v
    }

    /// [`StoryIndex::vector_with`] into a reused buffer.
    fn vector_into(&self, terms: &[Term], idfs: &[f32], v: &mut Vec<(u32, f32)>) {
        let tf_weight = tf_weights();
        v.clear();
        v.extend(terms.iter().zip(idfs).map(|(t, &idf)| {
            let boost = if t.name_like {
                self.params.name_boost
            } else {
                1.0
            };
            (t.id, tf_weight[usize::from(t.tf)] * idf * boost)
        }));
        let norm = v.iter().map(|(_, w)| w * w).sum::<f32>().sqrt();
        if norm > 0.0 {
            for (_, w) in v.iter_mut() {
                *w /= norm;
            }
        }
    }

    fn idf(&self) -> Idf<'_> {
        Idf::new(
            &self.terms,
            self.prior.as_deref(),
            self.docs_seen,
            self.params.idf_power,
        )
    }

    fn active(&self, s: &Story) -> bool {
        self.seq.saturating_sub(s.last_seq) <= self.params.window
    }

    /// Returns the active stories most similar to `vector`, best first (ties: smaller id).
    pub fn rank(&self, vector: &[(u32, f32)], terms: &[Term]) -> Vec<Match> {
        let idfs: Vec<f32> = {
            let mut idf = self.idf();
            vector.iter().map(|&(t, _)| idf.of(t)).collect()
        };
        self.rank_with(vector, terms, &idfs)
    }

    /// [`StoryIndex::rank`] with the IDF of each vector term given; `vector` and `terms` are
    /// in the same (term id) order.
    pub fn rank_with(&self, vector: &[(u32, f32)], terms: &[Term], idfs: &[f32]) -> Vec<Match> {
        self.rank_listed(vector, terms, idfs, &Self::listed_keys(vector))
    }

    /// Returns the keys of the heaviest terms of a document's `vector` (from
    /// [`StoryIndex::vector_with`]), for [`StoryIndex::rank_listed`] and [`StoryIndex::add_with`],
    /// which both choose from them.
    pub fn listed_keys(vector: &[(u32, f32)]) -> Vec<u64> {
        story_postings::listed_keys(vector)
    }

    /// [`StoryIndex::rank_with`] with the vector's [`StoryIndex::listed_keys`] given.
    pub fn rank_listed(
        &self,
        vector: &[(u32, f32)],
        terms: &[Term],
        idfs: &[f32],
        listed: &[u64],
    ) -> Vec<Match> {
        debug_assert_eq!(listed, Self::listed_keys(vector));
        let is_name: Vec<bool> = terms.iter().map(|t| t.name_like).collect();
        let q_names = vector
            .iter()
            .zip(&is_name)
            .filter(|(_, &n)| n)
            .map(|((_, w), _)| w * w)
            .sum::<f32>()
            .sqrt();
        // The heaviest terms (ties: smaller id, `vector` being in id order) look up candidates;
        // their order does not matter.
        let mut slots: Vec<u32> = heaviest_among(listed, QUERY_TERMS)
            .flat_map(|i| self.terms.stories(vector[i].0))
            .collect();
        // Keep the stories sharing the most query terms, so a popular term costs no more than
        // MAX_CANDIDATES exact comparisons.
        slots.sort_unstable();
        let mut hits: Vec<(usize, u128, u32)> = Vec::new();
        for slot in slots {
            match hits.last_mut() {
                Some((n, _, last)) if *last == slot => *n += 1,
                _ => {
                    if let Some(Some(s)) = self.slots.get(slot as usize) {
                        hits.push((1, s.id, slot));
                    }
                }
            }
        }
        hits.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        hits.truncate(MAX_CANDIDATES);
        let mut out: Vec<Match> = Vec::with_capacity(hits.len());
        // The query terms' filter bits, worked out at the first centroid with a directory.
        let mut bits: Vec<u8> = Vec::new();
        for (_, _, slot) in hits {
            let Some(s) = self.slots[slot as usize]
                .as_ref()
                .filter(|s| self.active(s))
            else {
                continue;
            };
            let dir = self.dirs.get(&slot).and_then(|d| Dir::new(d));
            if dir.is_some() && bits.is_empty() {
                filter_bits(vector, &mut bits);
            }
            let cells = &s.centroid;
            // A plain merge when the centroid is not much longer than the query and has no
            // directory, else seeks (through the directory, whose filter spares most absent
            // terms a scan).
            let merge = dir.is_none() && cells.len() <= 4 * vector.len();
            let query = Query {
                vector,
                is_name: &is_name,
                idfs,
                bits: &bits,
            };
            let (dot, name_dot) = dots(cells, dir, merge, query);
            let all = dot / s.norm_sq.max(f32::MIN_POSITIVE).sqrt();
            let names = if q_names > 0.0 && s.names_sq > 0.0 {
                name_dot / (q_names * s.names_sq.sqrt())
            } else {
                0.0
            };
            let a = self.params.name_weight;
            out.push(Match {
                story: s.id,
                similarity: (1.0 - a) * all + a * names,
            });
        }
        out.sort_unstable_by(|a, b| {
            b.similarity
                .total_cmp(&a.similarity)
                .then(a.story.cmp(&b.story))
        });
        out.truncate(MAX_CANDIDATES);
        out
    }

    /// Returns the story a new document joins, if one clears the threshold.
    pub fn choose(&self, ranked: &[Match]) -> Option<u128> {
        ranked
            .first()
            .filter(|m| m.similarity >= self.params.threshold)
            .map(|m| m.story)
    }

    /// Marks `slot` as holding a story.
    fn mark_open(&mut self, slot: u32) {
        let i = slot as usize;
        if self.open.len() <= i / 64 {
            self.open.resize(i / 64 + 1, 0);
        }
        self.open[i / 64] |= 1 << (i % 64);
    }

    /// Moves time forward by one document that joined no story (an exact duplicate).
    pub fn advance_only(&mut self) {
        self.advance();
    }

    /// Moves time forward: closes the stories of the next [`CLOSE_PER_DOC`] slots that no
    /// document joined within the window, and every [`SHARD_EVERY`] documents sweeps the next
    /// shard of the term table, so no document pays for a sweep of the whole table. Both run at
    /// fixed arrival positions, so replay closes and forgets the same things.
    fn advance(&mut self) {
        self.seq += 1;
        let (seq, window) = (self.seq, self.params.window);
        for _ in 0..CLOSE_PER_DOC.min(self.slots.len()) {
            if self.cursor >= self.slots.len() {
                self.cursor = 0;
            }
            let i = self.cursor;
            self.cursor += 1;
            let slot = &mut self.slots[i];
            if slot
                .as_ref()
                .is_some_and(|s| seq.saturating_sub(s.last_seq) > window)
            {
                if let Some(s) = slot.take() {
                    self.open[i / 64] &= !(1 << (i % 64));
                    self.by_id.remove(&s.id);
                    self.dirs.remove(&(i as u32));
                }
                self.closed.push((i as u32, seq));
            }
        }
        if seq % SHARD_EVERY != 0 {
            return;
        }
        // A term seen in one document only, whose story has closed, is forgotten: its document
        // frequency goes back to 0. Without this the map grows with every name and typo ever
        // seen (most terms occur once); with it, it is bounded by the terms of open stories and
        // the terms seen twice.
        let k = (seq / SHARD_EVERY) as usize % SHARDS;
        let open = &self.open;
        self.terms.sweep(k, |i| {
            let i = i as usize;
            open.get(i / 64).is_some_and(|w| w >> (i % 64) & 1 == 1)
        });
        if k == SHARDS - 1 {
            // A round of sweeps ended: a story closed before it began has no postings left in
            // any shard, so its slot can hold a new story.
            let begun = seq - (SWEEP_EVERY - SHARD_EVERY);
            let free = &mut self.free;
            self.closed.retain(|&(slot, at)| {
                let done = at <= begun;
                if done {
                    free.push(slot);
                }
                !done
            });
        }
    }
}

#[cfg(test)]
#[path = "story_tests.rs"]
mod tests;

/// Golden outputs of the whole dedup stage and of the story tier on a deterministic corpus, so
/// that speed work provably changes no decision and no float.
#[cfg(test)]
#[path = "story_golden.rs"]
mod golden;
