//! Owns the new document's side of sentence alignment ([`Probe`]) and the alignment itself.

use super::matching::{matching, Counts, Gate};
use super::{Alignment, Sketch, SketchView, MAX_SENTENCES, MIN_COMMON};
use simd::{count_common, Present};

#[path = "align_simd.rs"]
mod simd;

/// Content word to the bitmask of the new document's sentences holding it: a 65,536-bit
/// presence set (most words of an earlier document are not in the new one, and are told so by
/// one bit) over an open-addressing table with linear probing. The decider keeps one and
/// refills it for each document ([`Probe::with_masks`]): clearing the slots it used costs less
/// than zeroing a fresh table (up to 40 KB).
#[derive(Debug, Clone, Default)]
pub struct WordMasks {
    present: Box<[u64]>,
    /// Slots of (word, mask); a mask of 0 marks an empty slot.
    slots: Box<[(u16, u64)]>,
    /// Right shift of the multiplicative hash to a slot.
    shift: u32,
    /// The slots in use.
    used: Vec<u32>,
}

impl WordMasks {
    fn new(sketch: &Sketch) -> Self {
        let mut masks = Self::default();
        masks.fill(sketch);
        masks
    }

    /// Empties the table and fills it with the words of `sketch`: the same masks as
    /// [`WordMasks::new`] makes, in the memory this one holds when it is large enough.
    fn fill(&mut self, sketch: &Sketch) {
        for &at in &self.used {
            let (key, mask) = &mut self.slots[at as usize];
            self.present[usize::from(*key >> 6)] = 0;
            *key = 0;
            *mask = 0;
        }
        self.used.clear();
        let words = sketch.words().len();
        if words == 0 {
            return;
        }
        // At most half full; a larger table kept from an earlier document serves as well
        // (the same masks, fewer collisions).
        let bits = (2 * words).next_power_of_two().trailing_zeros().max(4);
        if self.present.len() != 1 << 10 {
            self.present = vec![0u64; 1 << 10].into_boxed_slice();
        }
        if self.slots.len() < 1 << bits {
            self.slots = vec![(0u16, 0u64); 1 << bits].into_boxed_slice();
        }
        self.shift = 32 - self.slots.len().trailing_zeros();
        for i in 0..sketch.sentence_count() {
            for &w in sketch.sentence(i) {
                self.present[usize::from(w >> 6)] |= 1 << (w & 63);
                let mut at = self.slot(w);
                loop {
                    let (key, mask) = &mut self.slots[at];
                    if *mask == 0 || *key == w {
                        if *mask == 0 {
                            self.used.push(at as u32);
                        }
                        *key = w;
                        *mask |= 1 << i;
                        break;
                    }
                    at = (at + 1) & (self.slots.len() - 1);
                }
            }
        }
    }

    fn slot(&self, w: u16) -> usize {
        (u32::from(w).wrapping_mul(0x9E37_79B1) >> self.shift) as usize
    }

    /// Returns the table borrowed for many lookups ([`View::get`]), its sizes checked once;
    /// `None` when it was never filled with a word (every lookup would say none).
    fn view(&self) -> Option<View<'_>> {
        Some(View {
            present: self.present.as_ref().try_into().ok()?,
            slots: &self.slots,
            shift: self.shift,
            wrap: self.slots.len().checked_sub(1)?,
        })
    }

    /// Returns the sentences holding `w` as a bitmask (0: none).
    #[cfg(test)]
    fn get(&self, w: u16) -> u64 {
        let Some(&bits) = self.present.get(usize::from(w >> 6)) else {
            return 0;
        };
        if bits >> (w & 63) & 1 == 0 {
            return 0;
        }
        let mut at = self.slot(w);
        loop {
            let (key, mask) = self.slots[at];
            if mask == 0 || key == w {
                return mask;
            }
            at = (at + 1) & (self.slots.len() - 1);
        }
    }
}

/// A filled [`WordMasks`] borrowed for the lookups of one alignment.
struct View<'a> {
    present: &'a Present,
    slots: &'a [(u16, u64)],
    shift: u32,
    wrap: usize,
}

impl View<'_> {
    /// Returns the sentences holding `w`, a word in the presence set.
    #[inline]
    fn mask(&self, w: u16) -> u64 {
        let mut at = (u32::from(w).wrapping_mul(0x9E37_79B1) >> self.shift) as usize;
        loop {
            let (key, mask) = self.slots[at & self.wrap];
            if mask == 0 || key == w {
                return mask;
            }
            at += 1;
        }
    }
}

/// A new document's sketch with a lookup from content word to the sentences holding it, built
/// once per document (off the ordered worker) and aligned against many earlier documents.
#[derive(Debug, Clone, Default)]
pub struct Probe {
    sketch: Sketch,
    /// Content word to a bitmask of the sentences that hold it.
    lookup: WordMasks,
    /// The content words of each sentence, and of all of them.
    lens: Vec<usize>,
    total: usize,
}

/// Returns the content words of each sentence of `sketch`.
fn sentence_lens(sketch: &Sketch) -> Vec<usize> {
    let mut start = 0;
    sketch
        .ends()
        .iter()
        .map(|&end| {
            let len = usize::from(end).saturating_sub(start);
            start = usize::from(end);
            len
        })
        .collect()
}

/// Sentence pairs of an alignment at most.
const CELLS: usize = MAX_SENTENCES * MAX_SENTENCES;

/// The working buffers of [`Probe::align_with`], made at the sizes a document's alignments
/// need (at most [`MAX_SENTENCES`] a side), so that they do not grow by doubling over the
/// first pairs of every document.
#[derive(Debug)]
pub struct Scratch {
    /// Content words each pair of sentences shares, new sentence major.
    common: Vec<u16>,
    old_len: Vec<usize>,
    /// The pairs sharing at least two words (index into `common`).
    cells: Vec<u32>,
    /// Candidate matches: (overlap, kind, new sentence, old sentence).
    pairs: Vec<(usize, u8, usize, usize)>,
    /// One side of a match with its words sorted, to compare with a sorted sketch.
    resorted: Vec<u16>,
}

impl Default for Scratch {
    fn default() -> Self {
        Self {
            common: Vec::with_capacity(CELLS),
            old_len: Vec::with_capacity(MAX_SENTENCES),
            cells: Vec::with_capacity(CELLS),
            // Up to three a cell, but far fewer pass: grown beyond this when needed.
            pairs: Vec::with_capacity(4 * MAX_SENTENCES),
            resorted: Vec::new(),
        }
    }
}

impl Probe {
    /// Returns the probe of a new document.
    pub fn new(sketch: Sketch) -> Self {
        let lookup = WordMasks::new(&sketch);
        Self::with_lookup(sketch, lookup)
    }

    fn with_lookup(sketch: Sketch, lookup: WordMasks) -> Self {
        let lens = sentence_lens(&sketch);
        let total = lens.iter().sum();
        Self {
            sketch,
            lookup,
            lens,
            total,
        }
    }

    /// Returns the document's sketch.
    pub fn sketch(&self) -> &Sketch {
        &self.sketch
    }

    /// [`Probe::new`] with the word table of an earlier probe ([`Probe::into_parts`]) refilled.
    pub fn with_masks(sketch: Sketch, mut lookup: WordMasks) -> Self {
        lookup.fill(&sketch);
        Self::with_lookup(sketch, lookup)
    }

    /// Returns the document's sketch and the word table, for [`Probe::with_masks`].
    pub fn into_parts(self) -> (Sketch, WordMasks) {
        (self.sketch, self.lookup)
    }

    /// Aligns the new document with an earlier one; `overlap` is the share of the larger
    /// sentence two sentences must share to match. The sentence matching is computed only when
    /// `shared` reaches `chain_from` (it cannot exceed `shared`); otherwise only `shared` is set.
    pub fn align(&self, old: &Sketch, overlap: f32, chain_from: f32) -> Alignment {
        self.align_with(old, overlap, chain_from, &mut Scratch::default())
    }

    /// [`Probe::align`] with the working buffers of `scratch`, which a caller aligning one
    /// document with many keeps across them (no allocation per pair once they have grown).
    pub fn align_with(
        &self,
        old: &Sketch,
        overlap: f32,
        chain_from: f32,
        scratch: &mut Scratch,
    ) -> Alignment {
        self.align_gated(old.view(), overlap, chain_from, None, scratch)
    }

    /// [`Probe::align_with`] for a decision: with a `gate` that shuts on the sentence matching
    /// ([`Gate`]), the edit-script measures are left 0 (the rewrite model scores it 0 anyway).
    pub fn align_gated(
        &self,
        old: SketchView<'_>,
        overlap: f32,
        chain_from: f32,
        gate: Option<Gate>,
        scratch: &mut Scratch,
    ) -> Alignment {
        let new = self.sketch.view();
        let (ns, os) = (new.sentence_count(), old.sentence_count());
        if ns == 0 || os == 0 {
            return Alignment::default();
        }
        let Scratch {
            common,
            old_len,
            cells,
            pairs,
            resorted,
        } = scratch;
        common.clear();
        common.resize(ns * os, 0);
        cells.clear();
        old_len.clear();
        // Every kind of match below needs its own pair to share two words, so only the pairs
        // that reach two are visited afterwards (each once: it reaches two once).
        let (ends, words) = (old.ends(), old.words());
        let mut start = 0;
        old_len.extend(ends.iter().map(|&end| {
            let len = usize::from(end).saturating_sub(start);
            start = usize::from(end);
            len
        }));
        if let Some(lookup) = self.lookup.view() {
            let sentences = |w| lookup.mask(w);
            count_common(
                lookup.present,
                sentences,
                ends,
                &words[..start],
                os,
                common,
                cells,
            );
        }
        let new_len = &self.lens[..];
        let (common, old_len) = (&common[..], &old_len[..]);
        let c = |i: usize, j: usize| common[i * os + j] as usize;
        let passes = |c: usize, size: usize| c >= MIN_COMMON && c as f32 >= overlap * size as f32;
        // Overlap in 1/65536ths: integers, so the order is the same on every machine.
        let score = |common: usize, a: usize, b: usize| (common << 16) / a.max(b).max(1);
        // Which pairs match: sentence to sentence (kind 1), new `i` to old `j - 1` and `j`
        // merged (2), new `i - 1` and `i` (one old sentence split in two) to old `j` (4); a
        // merged or split match needs each part to share words. Each candidate match with its
        // overlap, for the matching below.
        let mut hit_new = 0u64;
        pairs.clear();
        for &cell in cells.iter() {
            let (i, j) = (cell as usize / os, cell as usize % os);
            let (nl, ol) = (new_len[i], old_len[j]);
            let mut hit = false;
            if passes(c(i, j), nl.max(ol)) {
                pairs.push((score(c(i, j), nl, ol), 1, i, j));
                hit = true;
            }
            if j > 0 && c(i, j - 1) >= 2 {
                let merged = old_len[j - 1] + ol;
                if passes(c(i, j - 1) + c(i, j), nl.max(merged)) {
                    pairs.push((score(c(i, j - 1) + c(i, j), nl, merged), 2, i, j));
                    hit = true;
                }
            }
            if i > 0 && c(i - 1, j) >= 2 {
                let split = new_len[i - 1] + nl;
                if passes(c(i - 1, j) + c(i, j), split.max(ol)) {
                    pairs.push((score(c(i - 1, j) + c(i, j), split, ol), 4, i, j));
                    hit_new |= 1 << (i - 1);
                    hit = true;
                }
            }
            hit_new |= u64::from(hit) << i;
        }
        let new_total = self.total;
        let shared: usize = (0..ns)
            .filter(|&i| hit_new >> i & 1 != 0)
            .map(|i| new_len[i])
            .sum();
        let shared = shared as f32 / new_total.max(1) as f32;
        // Every new sentence in the matching matched something, so its share of the new
        // document is at most `shared`: below `chain_from` it cannot matter.
        if shared < chain_from {
            return Alignment {
                shared,
                ..Alignment::default()
            };
        }
        matching(
            new,
            old,
            Counts {
                common,
                new_len,
                old_len,
            },
            shared,
            pairs,
            resorted,
            gate,
        )
    }
}

#[cfg(test)]
#[path = "align_reference.rs"]
mod reference;
