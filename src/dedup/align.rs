//! Owns sentence alignment: per-sentence content-word sketches of a document, and the reuse
//! and rewrite relations they reveal between a new document and an earlier one.
//!
//! A sentence is the set of its content words (three bytes or more, no stop word), each kept
//! as 16 bits of its hash. Two sentences match when they share at least `overlap` of the
//! larger set (and three words): a verbatim quote matches fully, a reworded one partly. From
//! the matches between a new document and an earlier
//! one come
//! - `shared`: the share of the new document's content words in sentences that match some
//!   sentence of the earlier one (the `reuse` relation), and
//! - the coverage: a one-to-one matching of sentences (a merged or split pair counting as one),
//!   in any order, as a share of the new document's words and of the earlier document's. A
//!   rewrite covers most of both, even with a few sentences merged, dropped or moved; a newer
//!   version of a wire story, or an article quoting one, covers only part of one side.

use super::rewrite_model::{edit_script, runs};
use super::story::is_stop;
use super::text::{self, IdMap};

/// Sentences kept per document (the first ones); alignment bitmasks are 64 bits wide.
pub const MAX_SENTENCES: usize = 64;
/// Content words kept per document, over all its sentences.
pub const MAX_WORDS: usize = 768;
/// Sentences with fewer content words are skipped (datelines, bylines, fragments).
const MIN_SENTENCE_WORDS: usize = 3;
/// Content words two sentences must share to match.
const MIN_COMMON: usize = 3;

/// The content words of a document's sentences, in one allocation of its exact size (the
/// index keeps thousands of sketches).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Sketch {
    /// The end of each sentence in the words (one value a sentence), then the 16-bit
    /// content-word hashes, each once within its sentence, in sentence order (sketches written
    /// before the order was kept hold them sorted: they align the same, with a coarser edit
    /// script).
    data: Box<[u16]>,
    /// Sentences.
    n: u8,
}

/// What the alignment of a new document with an earlier one found.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Alignment {
    /// Share of the new document's content words in sentences matching the earlier one.
    pub shared: f32,
    /// Share of the new document's words in the one-to-one sentence matching.
    pub covered_new: f32,
    /// Share of the earlier document's words in that matching.
    pub covered_old: f32,
    /// Content words in the matching, on the smaller side.
    pub aligned_words: usize,
    /// Share of the matching's new words in sentences that differ from their match (reworded).
    pub reworded: f32,
    /// Word substitutions in place in the matched sentences' edit scripts, as a share of their
    /// words (the larger side of each match).
    pub substituted: f32,
    /// Words inserted or deleted in those edit scripts, as the same share.
    pub inserted_deleted: f32,
    /// Share of the matching's new words in merged or split matches (two sentences to one).
    pub merged: f32,
    /// Share of the matches whose earlier sentence comes before that of a preceding match.
    pub out_of_order: f32,
    /// `covered_new` with the sentences that pair up by position between matches (sharing a
    /// word) counted too.
    pub placed_new: f32,
    /// The same for the earlier document.
    pub placed_old: f32,
    /// Share of the words either side of a match lacks that follow another such word (edits
    /// in runs: clauses cut or added rather than words swapped).
    pub clustered: f32,
    /// Share of the matched sentences' words (both sides) that the other side lacks: what
    /// `clustered` would be by chance if those words were spread at random.
    pub lacking: f32,
}

impl Alignment {
    /// Returns how much of both documents the sentence matching covers (the rewrite score); 0
    /// when it holds fewer than `min_words` content words (too few to tell a reworded copy from
    /// two reports of one fact) or when most aligned sentences are verbatim (an edited version
    /// of one text, not a reworded copy: those that are close enough are near-copies).
    pub fn coverage(&self, min_words: usize, min_reworded: f32) -> f32 {
        if self.aligned_words < min_words || self.reworded < min_reworded {
            return 0.0;
        }
        self.covered_new.min(self.covered_old)
    }
}

/// Returns the sentences of `text`: cut after `.`, `!` or `?` followed by white space, and at
/// line breaks.
fn sentences(text: &str) -> impl Iterator<Item = &str> {
    let bytes = text.as_bytes();
    let mut start = 0;
    let mut i = 0;
    std::iter::from_fn(move || {
        while i < bytes.len() {
            let b = bytes[i];
            i += 1;
            let end = b == b'\n'
                || (matches!(b, b'.' | b'!' | b'?')
                    && bytes.get(i).is_none_or(|c| c.is_ascii_whitespace()));
            if end {
                let s = &text[start..i];
                start = i;
                return Some(s);
            }
        }
        (start < bytes.len()).then(|| {
            let s = &text[start..];
            start = bytes.len();
            s
        })
    })
}

impl Sketch {
    /// Returns the sketch of a document's text.
    pub fn of(text: &str) -> Self {
        let (mut words, mut ends) = (Vec::new(), Vec::new());
        let mut sentence: Vec<u16> = Vec::new();
        for s in sentences(text) {
            if ends.len() == MAX_SENTENCES || words.len() >= MAX_WORDS {
                break;
            }
            sentence.clear();
            let room = MAX_WORDS - words.len();
            // Only the first `room` words are kept, so collecting stops there: the
            // duplicate check below stays bounded on one endless unpunctuated line.
            let cap = room.max(MIN_SENTENCE_WORDS);
            // In sentence order (the rewrite model's edit script reads it), each word once.
            for w in text::words(s) {
                let h = (w.hash >> 48) as u16;
                if w.len >= 3 && !is_stop(w.hash) && !sentence.contains(&h) {
                    sentence.push(h);
                    if sentence.len() >= cap {
                        break;
                    }
                }
            }
            if sentence.len() < MIN_SENTENCE_WORDS {
                continue;
            }
            words.extend_from_slice(&sentence[..sentence.len().min(room)]);
            ends.push(words.len() as u16);
        }
        Self::from_parts(&ends, &words)
    }

    fn from_parts(ends: &[u16], words: &[u16]) -> Self {
        let mut data = Vec::with_capacity(ends.len() + words.len());
        data.extend_from_slice(ends);
        data.extend_from_slice(words);
        Self {
            data: data.into_boxed_slice(),
            n: ends.len() as u8,
        }
    }

    fn ends(&self) -> &[u16] {
        &self.data[..usize::from(self.n)]
    }

    fn words(&self) -> &[u16] {
        &self.data[usize::from(self.n)..]
    }

    /// Returns the number of sentences kept.
    pub fn sentence_count(&self) -> usize {
        usize::from(self.n)
    }

    fn sentence(&self, i: usize) -> &[u16] {
        let ends = self.ends();
        let start = if i == 0 { 0 } else { ends[i - 1] as usize };
        &self.words()[start..ends[i] as usize]
    }

    /// Returns the sketch as bytes: the sentence count, the ends, then the words, little-endian.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + 2 * self.data.len());
        out.push(self.n);
        for v in self.data.iter() {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out
    }

    /// Parses what [`Sketch::to_bytes`] wrote; `None` when it is inconsistent.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let (&n, rest) = bytes.split_first()?;
        if rest.len() % 2 != 0 || rest.len() / 2 < n as usize || n as usize > MAX_SENTENCES {
            return None;
        }
        let vals: Vec<u16> = rest
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        let (ends, words) = vals.split_at(n as usize);
        let ordered = ends.windows(2).all(|w| w[0] <= w[1]);
        if !ordered || ends.last().is_some_and(|&e| e as usize != words.len()) {
            return None;
        }
        Some(Self::from_parts(ends, words))
    }

    /// Returns the memory the sketch holds on the heap, in bytes.
    pub fn heap_bytes(&self) -> usize {
        2 * self.data.len()
    }
}

/// A new document's sketch with a lookup from content word to the sentences holding it, built
/// once per document (off the ordered worker) and aligned against many earlier documents.
#[derive(Debug, Clone, Default)]
pub struct Probe {
    sketch: Sketch,
    /// Content word to a bitmask of the sentences that hold it.
    sentences_of: IdMap<u16, u64>,
}

impl Probe {
    /// Returns the probe of a new document.
    pub fn new(sketch: Sketch) -> Self {
        let mut sentences_of: IdMap<u16, u64> = IdMap::default();
        for i in 0..sketch.sentence_count() {
            for &w in sketch.sentence(i) {
                *sentences_of.entry(w).or_insert(0) |= 1 << i;
            }
        }
        Self {
            sketch,
            sentences_of,
        }
    }

    /// Returns the document's sketch.
    pub fn sketch(&self) -> &Sketch {
        &self.sketch
    }

    /// Returns the document's sketch, dropping the lookup.
    pub fn into_sketch(self) -> Sketch {
        self.sketch
    }

    /// Aligns the new document with an earlier one; `overlap` is the share of the larger
    /// sentence two sentences must share to match. The sentence matching is computed only when
    /// `shared` reaches `chain_from` (it cannot exceed `shared`); otherwise only `shared` is set.
    pub fn align(&self, old: &Sketch, overlap: f32, chain_from: f32) -> Alignment {
        let new = &self.sketch;
        let (ns, os) = (new.sentence_count(), old.sentence_count());
        if ns == 0 || os == 0 {
            return Alignment::default();
        }
        let mut common = vec![0u16; ns * os];
        for j in 0..os {
            for w in old.sentence(j) {
                let Some(&mask) = self.sentences_of.get(w) else {
                    continue;
                };
                let mut m = mask;
                while m != 0 {
                    let i = m.trailing_zeros() as usize;
                    common[i * os + j] += 1;
                    m &= m - 1;
                }
            }
        }
        let new_len: Vec<usize> = (0..ns).map(|i| new.sentence(i).len()).collect();
        let old_len: Vec<usize> = (0..os).map(|j| old.sentence(j).len()).collect();
        let c = |i: usize, j: usize| common[i * os + j] as usize;
        let passes = |c: usize, size: usize| c >= MIN_COMMON && c as f32 >= overlap * size as f32;
        // Which pairs match: bit 0 sentence to sentence, bit 1 new `i` to old `j - 1` and `j`
        // merged, bit 2 new `i - 1` and `i` (one old sentence split in two) to old `j`; a
        // merged or split match needs each part to share words.
        let mut kind = vec![0u8; ns * os];
        let mut hit_new = vec![false; ns];
        for i in 0..ns {
            for j in 0..os {
                let (nl, ol) = (new_len[i], old_len[j]);
                let mut k = 0u8;
                if passes(c(i, j), nl.max(ol)) {
                    k |= 1;
                }
                if j > 0 && c(i, j - 1) >= 2 && c(i, j) >= 2 {
                    let merged = old_len[j - 1] + ol;
                    if passes(c(i, j - 1) + c(i, j), nl.max(merged)) {
                        k |= 2;
                    }
                }
                if i > 0 && c(i - 1, j) >= 2 && c(i, j) >= 2 {
                    let split = new_len[i - 1] + nl;
                    if passes(c(i - 1, j) + c(i, j), split.max(ol)) {
                        k |= 4;
                        hit_new[i - 1] = true;
                    }
                }
                hit_new[i] |= k != 0;
                kind[i * os + j] = k;
            }
        }
        let new_total: usize = new_len.iter().sum();
        let shared: usize = (0..ns).filter(|&i| hit_new[i]).map(|i| new_len[i]).sum();
        let shared = shared as f32 / new_total.max(1) as f32;
        // Every new sentence in the matching matched something, so its share of the new
        // document is at most `shared`: below `chain_from` it cannot matter.
        if shared < chain_from {
            return Alignment {
                shared,
                ..Alignment::default()
            };
        }
        // A one-to-one matching of sentences (or a sentence with a merged or split pair),
        // taken greedily by overlap (shared words over the larger side, so a sentence's own
        // rewording beats a merge with its neighbour): the order of the sentences does not matter, so a
        // copy whose sentences were moved, merged or dropped is still covered where it repeats
        // the earlier one. Ties go to the earlier sentences, so the result is deterministic.
        let mut pairs: Vec<(usize, u8, usize, usize)> = Vec::new();
        for i in 0..ns {
            for j in 0..os {
                let k = kind[i * os + j];
                // Overlap in 1/65536ths: integers, so the order is the same on every machine.
                let score = |common: usize, a: usize, b: usize| (common << 16) / a.max(b).max(1);
                if k & 1 != 0 {
                    pairs.push((score(c(i, j), new_len[i], old_len[j]), 1, i, j));
                }
                if k & 2 != 0 {
                    let merged = old_len[j - 1] + old_len[j];
                    pairs.push((score(c(i, j - 1) + c(i, j), new_len[i], merged), 2, i, j));
                }
                if k & 4 != 0 {
                    let split = new_len[i - 1] + new_len[i];
                    pairs.push((score(c(i - 1, j) + c(i, j), split, old_len[j]), 4, i, j));
                }
            }
        }
        pairs.sort_unstable_by(|a, b| b.0.cmp(&a.0).then((a.2, a.3, a.1).cmp(&(b.2, b.3, b.1))));
        let (mut used_new, mut used_old) = (0u64, 0u64);
        let (mut cov_new, mut cov_old, mut reworded) = (0usize, 0usize, 0usize);
        let (mut subst, mut indel, mut script_len, mut merged) = (0usize, 0usize, 0usize, 0usize);
        // The first earlier sentence each new sentence was matched to (plus one; 0: none), and
        // the last (two for a merge).
        let mut match_of = [0u8; MAX_SENTENCES];
        let mut match_end = [0u8; MAX_SENTENCES];
        let (mut lacking, mut following, mut script_words) = (0usize, 0usize, 0usize);
        for (_, k, i, j) in pairs {
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
            let words = |mask: u64, len: &[usize]| -> usize {
                (0..len.len())
                    .filter(|&x| mask >> x & 1 != 0)
                    .map(|x| len[x])
                    .sum()
            };
            let (nw, ow) = (words(mask_new, &new_len), words(mask_old, &old_len));
            cov_new += nw;
            cov_old += ow;
            if k != 1 || c(i, j) != nw.max(ow) {
                reworded += nw;
            }
            let empty: &[u16] = &[];
            let (sn, so) = match k {
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
            if k != 1 {
                merged += nw;
            }
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
        Alignment {
            shared,
            covered_new: cov_new as f32 / new_total.max(1) as f32,
            covered_old: cov_old as f32 / old_total.max(1) as f32,
            aligned_words: cov_new.min(cov_old),
            reworded: reworded as f32 / cov_new.max(1) as f32,
            substituted: subst as f32 / script_len.max(1) as f32,
            inserted_deleted: indel as f32 / script_len.max(1) as f32,
            merged: merged as f32 / cov_new.max(1) as f32,
            out_of_order: moved as f32 / matches.max(1) as f32,
            placed_new: (cov_new + fill_new) as f32 / new_total.max(1) as f32,
            placed_old: (cov_old + fill_old) as f32 / old_total.max(1) as f32,
            clustered: following as f32 / lacking.max(1) as f32,
            lacking: lacking as f32 / script_words.max(1) as f32,
        }
    }
}

#[cfg(test)]
#[path = "rewrite_align_tests.rs"]
mod tests;
