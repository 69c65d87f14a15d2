//! Owns the new document's side of sentence alignment ([`Probe`]) and the alignment itself.

use super::super::rewrite_model::MIN_COVERED;
use super::super::rewrite_model::{edit_script, runs};
use super::{Alignment, Sketch, MAX_SENTENCES, MIN_COMMON};

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
    present: &'a [u64; 1 << 10],
    slots: &'a [(u16, u64)],
    shift: u32,
    wrap: usize,
}

impl View<'_> {
    /// Returns the sentences holding `w` as a bitmask (0: none), as [`WordMasks::get`] does.
    #[inline]
    fn get(&self, w: u16) -> u64 {
        if self.present[usize::from(w >> 6)] >> (w & 63) & 1 == 0 {
            return 0;
        }
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

/// The working buffers of [`Probe::align_with`].
#[derive(Debug, Default)]
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

/// Returns the two parts of a match with each one's words sorted, in `buf`.
fn sorted_parts<'a>(parts: [&[u16]; 2], buf: &'a mut Vec<u16>) -> [&'a [u16]; 2] {
    buf.clear();
    buf.extend_from_slice(parts[0]);
    buf.extend_from_slice(parts[1]);
    let (a, b) = buf.split_at_mut(parts[0].len());
    a.sort_unstable();
    b.sort_unstable();
    let (a, b) = buf.split_at(parts[0].len());
    [a, b]
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
        self.align_gated(old, overlap, chain_from, None, scratch)
    }

    /// [`Probe::align_with`] for a decision: with a `gate` that shuts on the sentence matching
    /// ([`Gate`]), the edit-script measures are left 0 (the rewrite model scores it 0 anyway).
    pub fn align_gated(
        &self,
        old: &Sketch,
        overlap: f32,
        chain_from: f32,
        gate: Option<Gate>,
        scratch: &mut Scratch,
    ) -> Alignment {
        let new = &self.sketch;
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
        let lookup = self.lookup.view();
        let mut start = 0;
        for (j, &end) in ends.iter().enumerate() {
            let end = usize::from(end);
            old_len.push(end.saturating_sub(start));
            let Some(lookup) = &lookup else {
                continue;
            };
            for &w in &words[start..end] {
                let mut m = lookup.get(w);
                while m != 0 {
                    let cell = m.trailing_zeros() as usize * os + j;
                    common[cell] += 1;
                    if common[cell] == 2 {
                        cells.push(cell as u32);
                    }
                    m &= m - 1;
                }
            }
            start = end;
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

/// The words two documents' sentences share, new sentence major, and each sentence's length.
pub(super) struct Counts<'a> {
    pub common: &'a [u16],
    pub new_len: &'a [usize],
    pub old_len: &'a [usize],
}

/// The rewrite model's gates ([`RewriteModel::score`](super::super::rewrite_model::RewriteModel::score)):
/// an alignment with fewer than `min_words` content words in its matching, fewer than
/// `min_reworded` of them reworded, or less than [`MIN_COVERED`] of the new document covered
/// scores 0 whatever its edit scripts say, so a decision does not compute them there.
#[derive(Debug, Clone, Copy)]
pub struct Gate {
    pub min_words: usize,
    pub min_reworded: f32,
}

impl Gate {
    /// Returns whether the model scores `a` 0 without looking at its edit-script measures.
    fn shuts(self, a: &Alignment) -> bool {
        a.aligned_words < self.min_words
            || a.reworded < self.min_reworded
            || a.covered_new < MIN_COVERED
    }
}

/// Returns the alignment from the candidate matches `pairs` ((overlap, kind, new sentence, old
/// sentence), see [`Probe::align_with`]) with `shared` already known: the one-to-one matching
/// and everything measured on it. The only part after the pair search, shared with the
/// reference alignment of the tests. With a `gate` that shuts on the matching, the
/// edit-script measures (`substituted`, `inserted_deleted`, `clustered`, `lacking`) are left 0.
pub(super) fn matching(
    new: &Sketch,
    old: &Sketch,
    counts: Counts<'_>,
    shared: f32,
    pairs: &mut [(usize, u8, usize, usize)],
    resorted: &mut Vec<u16>,
    gate: Option<Gate>,
) -> Alignment {
    let Counts {
        common,
        new_len,
        old_len,
    } = counts;
    let (ns, os) = (new_len.len(), old_len.len());
    let c = |i: usize, j: usize| common[i * os + j] as usize;
    let new_total: usize = new_len.iter().sum();
    // A one-to-one matching of sentences (or a sentence with a merged or split pair),
    // taken greedily by overlap (shared words over the larger side, so a sentence's own
    // rewording beats a merge with its neighbour): the order of the sentences does not matter, so a
    // copy whose sentences were moved, merged or dropped is still covered where it repeats
    // the earlier one. Ties go to the earlier sentences, so the result is deterministic.
    pairs.sort_unstable_by(|a, b| b.0.cmp(&a.0).then((a.2, a.3, a.1).cmp(&(b.2, b.3, b.1))));
    let (mut used_new, mut used_old) = (0u64, 0u64);
    let (mut cov_new, mut cov_old, mut reworded, mut merged) = (0usize, 0usize, 0usize, 0usize);
    // The first earlier sentence each new sentence was matched to (plus one; 0: none), and
    // the last (two for a merge).
    let mut match_of = [0u8; MAX_SENTENCES];
    let mut match_end = [0u8; MAX_SENTENCES];
    // The matches taken, (kind, new sentence, old sentence), at most one a new sentence.
    let mut taken = [(0u8, 0u8, 0u8); MAX_SENTENCES];
    let mut n_taken = 0;
    for &(_, k, i, j) in pairs.iter() {
        let (mask_new, mask_old) = match k {
            1 => (1u64 << i, 1u64 << j),
            2 => (1u64 << i, 3u64 << (j - 1)),
            _ => (3u64 << (i - 1), 1u64 << j),
        };
        if used_new & mask_new != 0 || used_old & mask_old != 0 {
            continue;
        }
        used_new |= mask_new;
        used_old |= mask_old;
        // The words on each side of the match (those of the sentences in its masks).
        let (nw, ow) = match k {
            1 => (new_len[i], old_len[j]),
            2 => (new_len[i], old_len[j - 1] + old_len[j]),
            _ => (new_len[i - 1] + new_len[i], old_len[j]),
        };
        cov_new += nw;
        cov_old += ow;
        if k != 1 || c(i, j) != nw.max(ow) {
            reworded += nw;
        }
        if k != 1 {
            merged += nw;
        }
        taken[n_taken] = (k, i as u8, j as u8);
        n_taken += 1;
        let first = if k == 2 { j - 1 } else { j };
        match_of[i] = first as u8 + 1;
        match_end[i] = j as u8 + 1;
        if k == 4 {
            match_of[i - 1] = j as u8 + 1;
            match_end[i - 1] = j as u8 + 1;
        }
    }
    // Sentences left between two matches, as many on each side (or before the first, after
    // the last), pair up by position when they share a word: a copy whose wording drifted too
    // far for the overlap bar keeps its place, a sentence a later version added or cut has
    // no counterpart at that place.
    let (mut fill_new, mut fill_old) = (0usize, 0usize);
    let (mut prev_new, mut prev_old) = (0usize, 0usize); // one past the last match
    for i in 0..=ns {
        let (lo, hi) = if i == ns {
            (os, os)
        } else if match_of[i] != 0 {
            (usize::from(match_of[i]) - 1, usize::from(match_end[i]))
        } else {
            continue;
        };
        if lo >= prev_old && lo - prev_old == i - prev_new {
            for (x, y) in (prev_new..i).zip(prev_old..lo) {
                if used_new >> x & 1 == 0 && used_old >> y & 1 == 0 && c(x, y) >= 1 {
                    fill_new += new_len[x];
                    fill_old += old_len[y];
                }
            }
        }
        if i < ns {
            prev_new = i + 1;
            prev_old = prev_old.max(hi);
        }
    }
    let (mut matches, mut moved, mut last) = (0usize, 0usize, 0u8);
    for &m in match_of.iter().take(ns).filter(|&&m| m != 0) {
        matches += 1;
        moved += usize::from(m < last);
        last = last.max(m);
    }
    let old_total: usize = old_len.iter().sum();
    let mut a = Alignment {
        shared,
        covered_new: cov_new as f32 / new_total.max(1) as f32,
        covered_old: cov_old as f32 / old_total.max(1) as f32,
        aligned_words: cov_new.min(cov_old),
        reworded: reworded as f32 / cov_new.max(1) as f32,
        substituted: 0.0,
        inserted_deleted: 0.0,
        merged: merged as f32 / cov_new.max(1) as f32,
        out_of_order: moved as f32 / matches.max(1) as f32,
        placed_new: (cov_new + fill_new) as f32 / new_total.max(1) as f32,
        placed_old: (cov_old + fill_old) as f32 / old_total.max(1) as f32,
        clustered: 0.0,
        lacking: 0.0,
    };
    if gate.is_some_and(|g| g.shuts(&a)) {
        return a;
    }
    let (mut subst, mut indel, mut script_len) = (0usize, 0usize, 0usize);
    let (mut lacking, mut following, mut script_words) = (0usize, 0usize, 0usize);
    for &(k, i, j) in &taken[..n_taken] {
        let (i, j) = (usize::from(i), usize::from(j));
        let empty: &[u16] = &[];
        let (mut sn, mut so) = match k {
            1 => ([new.sentence(i), empty], [old.sentence(j), empty]),
            2 => (
                [new.sentence(i), empty],
                [old.sentence(j - 1), old.sentence(j)],
            ),
            _ => (
                [new.sentence(i - 1), new.sentence(i)],
                [old.sentence(j), empty],
            ),
        };
        let (nw, ow) = (sn[0].len() + sn[1].len(), so[0].len() + so[1].len());
        // A sorted sketch's words are compared with the other side's sorted too.
        if new.sorted != old.sorted {
            if new.sorted {
                so = sorted_parts(so, resorted);
            } else {
                sn = sorted_parts(sn, resorted);
            }
        }
        // A sentence repeated word for word needs no edit script (most matches of a re-post
        // or a wire version).
        if k != 1 || sn[0] != so[0] {
            let (s, d) = edit_script(sn, so);
            let (l1, f1) = runs(sn, so);
            let (l2, f2) = runs(so, sn);
            lacking += l1 + l2;
            following += f1 + f2;
            subst += s;
            indel += d;
        }
        script_len += nw.max(ow);
        script_words += nw + ow;
    }
    a.substituted = subst as f32 / script_len.max(1) as f32;
    a.inserted_deleted = indel as f32 / script_len.max(1) as f32;
    a.clustered = following as f32 / lacking.max(1) as f32;
    a.lacking = lacking as f32 / script_words.max(1) as f32;
    a
}

#[cfg(test)]
#[path = "align_reference.rs"]
mod reference;
