//! Owns deduplication: exact copies, near-copies, rewrites and story assignment, in arrival order.
//!
//! The core is synchronous and single-owner: one dedup worker holds the [`Deduper`], so
//! decisions are deterministic for a given arrival order (first seen wins).
//!
//! Tiers, in the order they decide:
//! 1. exact: the raw-byte id or the hash of the [`normalize`]d text was seen before;
//! 2. near-copy ([`minhash`]): an LSH candidate whose word 5-gram MinHash estimate clears
//!    `near_threshold`;
//! 3. rewrite ([`align`]): a candidate (LSH, or a recent member of the best-matching stories)
//!    whose sentences align with the document's so that the rewrite model ([`rewrite_model`]:
//!    coverage, and words swapped in place rather than clauses cut or added) scores at least
//!    `rewrite_threshold`: a reworded (spun) copy;
//! 4. reuse: candidates whose sentences, verbatim or reworded, make up at least
//!    `reuse_min_share` of the document are listed in `reuse`; the document stays `unique`
//!    (a newer version of a wire story, an article quoting another);
//! 5. story ([`story`]): duplicates and rewrites inherit the story of what they repeat; other
//!    documents join the most similar open story, else the story of the document they reuse
//!    most when it makes up `story_reuse_share` of them, else start one named after themselves.
//!
//! Everything a decision depends on is carried by the [`IndexEntry`] the pipeline commits, so
//! replaying the committed entries with [`Deduper::restore`] rebuilds the same index.

pub mod align;
mod blocks;
mod candidates;
mod config;
mod entry;
pub mod eval;
pub mod eval_gen;
mod exact;
pub mod minhash;
mod prepared;
pub mod rewrite_model;
mod sketch_window;
pub mod snapshot;
pub mod stage;
pub mod story;
mod story_ids;
pub mod story_prior;
pub mod text;

use crate::model::{DedupInfo, DedupStatus, Reuse};
use align::{Sketch, WordMasks};
use blocks::Id;
use exact::Exact;
use minhash::{Compact, NearIndex, Signatures};
use sketch_window::SketchWindow;
use std::collections::VecDeque;
use std::sync::Arc;
use story::{StoryIndex, StoryParams, Term};

pub use config::{DedupConfig, OnDuplicate};
pub use entry::{IndexEntry, KnownRaw, Tier};
use prepared::{decode_b64, hex, parse_hex};
pub use prepared::{hash128, normalize, prepare, Prepared};

/// Recent near-index members kept per story, as rewrite candidates.
const STORY_MEMBERS: usize = 32;
/// Best stories whose recent members are checked for rewrites and reuse.
const REWRITE_STORIES: usize = 2;
/// Earlier documents listed in `reuse`, at most.
const MAX_REUSE: usize = 4;

/// The streaming deduplication index.
#[derive(Debug)]
pub struct Deduper {
    config: DedupConfig,
    /// Every indexed document in arrival order, with the exact-match tables.
    exact: Exact,
    near: NearIndex,
    stories: StoryIndex,
    story_members: text::IdMap<Id, VecDeque<u64>>,
    /// Sentence sketches of the last `align_window` near-index documents, by near-index seq.
    sketches: SketchWindow,
    /// Near-index sequence number below which story member lists are pruned.
    pruned: u64,
    /// The sentence lookup's word table, refilled for each decision that needs one.
    masks: WordMasks,
}

/// What a decision computed for the story tier: the IDF of each term and, when stories were
/// ranked, the document's story vector with the keys of its heaviest terms.
type Given<'a> = (&'a [f32], Option<story::Weighed<'a>>);

/// The ids an index entry carries in hex: the document, its normal text, its story (the
/// document's own id when none) and what it duplicates.
#[derive(Debug, Clone, Copy)]
struct Ids {
    raw: u128,
    text: u128,
    story: u128,
    duplicate_of: Option<u128>,
}

/// A decision before it is applied to the index.
struct Decision {
    info: DedupInfo,
    tier: Tier,
    entry: IndexEntry,
    /// The entry's ids, as [`Deduper::apply`] would parse them back.
    ids: Ids,
    sig: Option<Compact>,
    terms: Vec<Term>,
    /// IDF of each term when the decision was made, for adding the document's story vector.
    idfs: Vec<f32>,
    /// The document's story vector built from `idfs` when stories were ranked (else empty).
    vector: Vec<(u32, f32)>,
    /// The keys of the vector's heaviest terms ([`StoryIndex::listed_keys`]), with it.
    listed: Vec<u64>,
    sketch: Option<Sketch>,
    /// The word table the decision was given, back for the next one.
    masks: WordMasks,
}

impl Deduper {
    pub fn new(config: &DedupConfig) -> Self {
        Self {
            config: config.clone(),
            exact: Exact::default(),
            near: NearIndex::default(),
            stories: StoryIndex::with_prior(
                StoryParams {
                    threshold: config.story_threshold,
                    window: config.story_window,
                    name_boost: config.story_name_boost,
                    idf_power: config.story_idf_power,
                    name_weight: config.story_name_weight,
                },
                config.story_df_prior.clone(),
            ),
            story_members: text::IdMap::default(),
            sketches: SketchWindow::default(),
            pruned: 0,
            masks: WordMasks::default(),
        }
    }

    /// Returns the shared set of decided raw hashes, for the strip stage's fast path.
    pub fn known_raw(&self) -> Arc<KnownRaw> {
        self.exact.known_raw()
    }

    /// Returns whether a document with this id was already decided (an exact re-drop).
    pub fn is_known_raw(&self, id: &str) -> Option<String> {
        parse_hex(id)
            .and_then(|h| self.exact.lookup_raw(h))
            .map(hex)
    }

    /// Returns the number of documents in the index.
    pub fn len(&self) -> usize {
        self.exact.len()
    }

    /// Returns whether the index is empty.
    pub fn is_empty(&self) -> bool {
        self.exact.len() == 0
    }

    /// Returns the id and the story of the near-index document with this sequence number.
    fn near_ids(&self, nseq: u64) -> Option<(u128, u128)> {
        let doc = self.near.get(nseq)?;
        self.exact.ids(self.exact.widen(doc.at()))
    }

    /// Decides `text` (already stripped) for the document `id` and adds it to the index.
    pub fn observe(&mut self, id: &str, text: &str) -> (DedupInfo, IndexEntry) {
        self.observe_prepared(prepare(id, text))
    }

    /// Decides a document whose index-free work [`prepare`] already did, and adds it.
    pub fn observe_prepared(&mut self, p: Prepared) -> (DedupInfo, IndexEntry) {
        let masks = std::mem::take(&mut self.masks);
        let mut d = self.decide(p, masks);
        self.masks = std::mem::take(&mut d.masks);
        let vector = (!d.vector.is_empty()).then_some((&d.vector[..], &d.listed[..]));
        self.apply_ids(
            d.ids,
            d.entry.duplicate_of.is_some(),
            d.sig,
            d.sketch,
            &d.terms,
            Some((&d.idfs[..], vector)),
        );
        (d.info, d.entry)
    }

    /// Decides `text` as [`Deduper::observe`] would, without adding it; also says which tier.
    pub fn check(&self, id: &str, text: &str) -> (DedupInfo, Tier) {
        let d = self.decide(prepare(id, text), WordMasks::default());
        (d.info, d.tier)
    }

    /// Re-adds a committed entry on start-up, bringing the index to the state `observe` left it in.
    pub fn restore(&mut self, entry: &IndexEntry) {
        let sigs = entry
            .sig
            .as_deref()
            .and_then(decode_b64)
            .and_then(|b| Signatures::from_bytes(&b))
            .map(|s| s.compact());
        let terms: Vec<Term> = entry
            .terms
            .as_deref()
            .and_then(decode_b64)
            .map(|b| {
                b.chunks_exact(4)
                    .map(|c| Term::unpack(u32::from_le_bytes([c[0], c[1], c[2], c[3]])))
                    .collect()
            })
            .unwrap_or_default();
        let sketch = entry
            .sent
            .as_deref()
            .and_then(decode_b64)
            .and_then(|b| Sketch::from_bytes(&b));
        self.apply(entry, sigs, sketch, &terms, None);
    }

    /// Decides `p` without adding it; `masks` is the word table to refill for its sentence
    /// lookup, handed back in the decision.
    fn decide(&self, p: Prepared, mut masks: WordMasks) -> Decision {
        let Prepared {
            raw,
            text_hash,
            sigs,
            terms,
            sentences,
            encoded,
        } = p;
        let mut entry = IndexEntry {
            id: hex(raw),
            text_hash: hex(text_hash),
            duplicate_of: None,
            story: None,
            sig: None,
            terms: None,
            sent: None,
        };
        if let Some((of, story)) = self.exact.lookup(raw, text_hash) {
            entry.duplicate_of = Some(hex(of));
            entry.story = Some(hex(story));
            let info = DedupInfo {
                status: DedupStatus::ExactDuplicate,
                duplicate_of: entry.duplicate_of.clone(),
                similarity: Some(1.0),
                story: entry.story.clone(),
                reuse: Vec::new(),
            };
            return Decision {
                info,
                tier: Tier::Exact,
                entry,
                ids: Ids {
                    raw,
                    text: text_hash,
                    story,
                    duplicate_of: Some(of),
                },
                sig: None,
                terms: Vec::new(),
                idfs: Vec::new(),
                vector: Vec::new(),
                listed: Vec::new(),
                sketch: None,
                masks,
            };
        }
        let idfs = self.stories.idfs(&terms);
        let sig = sigs.as_ref().map(Signatures::compact);
        let lsh = sig
            .as_ref()
            .map(|s| self.near.candidates(s))
            .unwrap_or_default();
        let mut found = sig.as_ref().and_then(|s| self.best_near(s, &lsh));
        let mut reuse: Vec<(u64, f32)> = Vec::new();
        // Stories are ranked, and the sentence lookup built, only for a document that is not a
        // near-copy: a near-copy takes the story of what it copies.
        let mut ranked = Vec::new();
        let mut vector = Vec::new();
        let mut listed = Vec::new();
        let mut sentences = sentences;
        if found.is_none() {
            vector = self.stories.vector_with(&terms, &idfs);
            listed = StoryIndex::listed_keys(&vector);
            ranked = self.stories.rank_listed(&vector, &terms, &idfs, &listed);
            let probe = sentences.into_probe_with(&mut masks);
            let (rewrite, reused) = self.align(&probe, lsh, &ranked);
            sentences = prepared::Sentences::Probe(probe);
            found = rewrite;
            if found.is_none() {
                reuse = reused;
            }
        }
        let (tier, status, of, similarity, story) = match found {
            Some((tier, of, story, sim)) => {
                let status = if tier == Tier::Rewrite {
                    DedupStatus::Rewrite
                } else {
                    DedupStatus::NearDuplicate
                };
                (tier, status, Some(of), Some(sim), story)
            }
            None => {
                let by_reuse = reuse
                    .first()
                    .filter(|r| r.1 >= self.config.story_reuse_share)
                    .and_then(|r| self.near_ids(r.0))
                    .map(|(_, story)| story);
                let story = self.stories.choose(&ranked).or(by_reuse).unwrap_or(raw);
                (Tier::Unique, DedupStatus::Unique, None, None, story)
            }
        };
        let duplicate_of = of.map(hex);
        entry.duplicate_of = duplicate_of.clone();
        entry.story = Some(hex(story));
        let ids = Ids {
            raw,
            text: text_hash,
            story,
            duplicate_of: of,
        };
        let sketch = sentences.into_sketch_keeping(&mut masks);
        match encoded {
            Some(e) => {
                entry.sig = e.sig;
                entry.terms = e.terms;
                entry.sent = e.sent.filter(|_| duplicate_of.is_none());
            }
            None => {
                entry.sig = sigs.as_ref().map(prepared::sig_b64);
                entry.terms = prepared::terms_b64(&terms);
                if duplicate_of.is_none() {
                    entry.sent = prepared::sent_b64(&sketch);
                }
            }
        }
        let reuse = reuse
            .iter()
            .filter_map(|&(seq, shared)| {
                self.near_ids(seq).map(|(id, _)| Reuse {
                    of: hex(id),
                    shared: (shared * 100.0).round() / 100.0,
                })
            })
            .collect();
        Decision {
            info: DedupInfo {
                status,
                duplicate_of,
                similarity,
                story: entry.story.clone(),
                reuse,
            },
            tier,
            entry,
            ids,
            sig,
            terms,
            idfs,
            vector,
            listed,
            sketch: Some(sketch),
            masks,
        }
    }

    /// Adds a committed entry to every index, as [`Deduper::apply_ids`] with its ids parsed.
    fn apply(
        &mut self,
        entry: &IndexEntry,
        sigs: Option<Compact>,
        sketch: Option<Sketch>,
        terms: &[Term],
        given: Option<Given<'_>>,
    ) {
        let Some(raw) = parse_hex(&entry.id) else {
            return;
        };
        let ids = Ids {
            raw,
            text: parse_hex(&entry.text_hash).unwrap_or(0),
            story: entry.story.as_deref().and_then(parse_hex).unwrap_or(raw),
            duplicate_of: entry.duplicate_of.as_deref().and_then(parse_hex),
        };
        let duplicate = entry.duplicate_of.is_some();
        self.apply_ids(ids, duplicate, sigs, sketch, terms, given);
    }

    /// Adds a decided document to every index; `observe` (with the ids its decision made) and
    /// `restore` (with those its entry holds, through [`Deduper::apply`]) share it so replay
    /// repeats the same updates in the same order. `duplicate`: the entry names a document
    /// it duplicates (even one whose id does not parse).
    fn apply_ids(
        &mut self,
        ids: Ids,
        duplicate: bool,
        sigs: Option<Compact>,
        sketch: Option<Sketch>,
        terms: &[Term],
        given: Option<Given<'_>>,
    ) {
        let Ids {
            raw,
            text,
            story,
            duplicate_of,
        } = ids;
        let exact_of = duplicate_of.filter(|_| sigs.is_none());
        // A near-copy is represented by the document it copies: keeping it out of the LSH
        // index bounds the candidates a syndicated story produces (thousands of re-posts
        // would otherwise all be verified for every new one). A copy of a copy is still
        // found when it is close enough to the first one.
        let sigs = sigs.filter(|_| !duplicate);
        let seq = self.exact.push(raw, text, story, exact_of);
        if let Some(s) = sigs {
            let nseq = self.near.insert(seq, s);
            if let Some(sk) = sketch.filter(|k| k.sentence_count() > 0) {
                self.sketches.push(nseq, &sk, self.config.align_window);
            }
            let members = self.story_members.entry(story.into()).or_default();
            members.push_back(nseq);
            if members.len() > STORY_MEMBERS {
                members.pop_front();
            }
        }
        if exact_of.is_some() {
            self.stories.advance_only();
        } else {
            let (idfs, vector) = given.unzip();
            self.stories.add_with(story, terms, idfs, vector.flatten());
        }
        while self.exact.len() > self.config.capacity {
            self.evict_oldest();
        }
        // Members older than the oldest sketch can never be aligned again (sketches are kept
        // for a suffix of the near index), so dropping them as the sketch window moves changes
        // no decision. Without this, every story ever seen kept an entry.
        let oldest = self.sketches.first_seq().unwrap_or(self.near.next_seq());
        self.prune_members(oldest);
    }

    fn evict_oldest(&mut self) {
        let Some(seq) = self.exact.pop() else {
            return;
        };
        // The near index holds a subsequence of the documents, evicted with them: the document
        // is in it when it is its oldest.
        let oldest_near = self.near.get(self.near.first_seq()).map(|d| d.at());
        if oldest_near == Some(seq as u32) {
            // Its story's member list must not outlive it (the list is found by its story).
            self.prune_members(self.near.first_seq() + 1);
            self.near.evict_oldest();
            self.sketches.drop_below(self.near.first_seq());
        }
    }
}

#[cfg(test)]
#[path = "rewrite_short_tests.rs"]
mod rewrite_short_tests;
#[cfg(test)]
mod tests;
