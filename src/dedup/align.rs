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

use super::story::is_stop;
use super::text::{self, sentences};

#[path = "align_matching.rs"]
mod matching;
#[path = "align_probe.rs"]
mod probe;
pub use matching::Gate;
pub use probe::{Probe, Scratch, WordMasks};

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
    /// content-word hashes, each once within its sentence, in sentence order (or sorted, see
    /// `sorted`).
    data: Box<[u16]>,
    /// Sentences.
    n: u8,
    /// Whether each sentence's words are sorted rather than in sentence order: a sketch read
    /// back from bytes without [`IN_ORDER`] (written before the order was kept, or by a version
    /// that did not flag it), whose words are sorted on reading. It aligns the same; its edit
    /// scripts compare sorted words on both sides (coarser), never sorted with ordered ones.
    sorted: bool,
}

/// A sketch borrowed from where it is kept: a [`Sketch`], or the align window's packed chunks
/// ([`Sketch::packed`] laid out in a larger buffer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SketchView<'a> {
    /// The ends, then the words, as in [`Sketch`].
    data: &'a [u16],
    n: u8,
    sorted: bool,
}

impl<'a> SketchView<'a> {
    /// Returns the view of what [`Sketch::packed`] gave for a sketch of `n` sentences,
    /// `sorted` or not, copied elsewhere.
    pub(super) fn from_packed(data: &'a [u16], n: u8, sorted: bool) -> Self {
        debug_assert!(usize::from(n) <= data.len());
        Self { data, n, sorted }
    }

    /// Returns the number of sentences kept.
    #[inline]
    pub fn sentence_count(self) -> usize {
        usize::from(self.n)
    }

    /// Returns whether each sentence's words are sorted rather than in sentence order.
    pub fn is_sorted(self) -> bool {
        self.sorted
    }

    #[inline]
    fn ends(self) -> &'a [u16] {
        &self.data[..usize::from(self.n)]
    }

    #[inline]
    fn words(self) -> &'a [u16] {
        &self.data[usize::from(self.n)..]
    }

    #[inline]
    fn sentence(self, i: usize) -> &'a [u16] {
        let ends = self.ends();
        let start = if i == 0 { 0 } else { ends[i - 1] as usize };
        &self.words()[start..ends[i] as usize]
    }
}

/// Set in the count byte of [`Sketch::to_bytes`] when the words are in sentence order.
const IN_ORDER: u8 = 0x80;

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
    /// Matches in the matching (a merged or split pair counts once).
    pub matches: usize,
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

/// Builds a sketch a sentence at a time.
#[derive(Default)]
struct Builder {
    words: Vec<u16>,
    ends: Vec<u16>,
    sentence: Vec<u16>,
}

impl Builder {
    /// Whether the sketch holds all the sentences or words it keeps.
    fn is_full(&self) -> bool {
        self.ends.len() == MAX_SENTENCES || self.words.len() >= MAX_WORDS
    }

    /// Adds the sentence of `found` (its words in order) when it has enough content words.
    fn add(&mut self, found: &[text::Word]) {
        let sentence = &mut self.sentence;
        sentence.clear();
        let room = MAX_WORDS - self.words.len();
        // Only the first `room` words are kept, so collecting stops there: the
        // duplicate check below stays bounded on one endless unpunctuated line.
        let cap = room.max(MIN_SENTENCE_WORDS);
        // In sentence order (the rewrite model's edit script reads it), each word once.
        for w in found {
            let h = (w.hash >> 48) as u16;
            if w.len >= 3 && !is_stop(w.hash) && !sentence.contains(&h) {
                sentence.push(h);
                if sentence.len() >= cap {
                    break;
                }
            }
        }
        if sentence.len() < MIN_SENTENCE_WORDS {
            return;
        }
        self.words
            .extend_from_slice(&sentence[..sentence.len().min(room)]);
        self.ends.push(self.words.len() as u16);
    }

    fn finish(self) -> Sketch {
        Sketch::from_parts(&self.ends, &self.words)
    }
}

impl Sketch {
    /// Returns the sketch of a document's text.
    pub fn of(text: &str) -> Self {
        let mut b = Builder::default();
        let mut found = Vec::new();
        for s in sentences(text) {
            if b.is_full() {
                break;
            }
            found.clear();
            text::words_into(s, &mut found);
            b.add(&found);
        }
        b.finish()
    }

    /// Returns the sketch of a document from the words of each of its sentences, as
    /// [`Sketch::of`] splits and reads them ([`text::Scan::sentences`]).
    pub fn of_sentences<'a>(sentences: impl IntoIterator<Item = &'a [text::Word]>) -> Self {
        let mut b = Builder::default();
        for s in sentences {
            if b.is_full() {
                break;
            }
            b.add(s);
        }
        b.finish()
    }

    pub(super) fn from_parts(ends: &[u16], words: &[u16]) -> Self {
        let mut data = Vec::with_capacity(ends.len() + words.len());
        data.extend_from_slice(ends);
        data.extend_from_slice(words);
        Self {
            data: data.into_boxed_slice(),
            n: ends.len() as u8,
            sorted: false,
        }
    }

    /// Returns the sketch as a [`SketchView`].
    #[inline]
    pub fn view(&self) -> SketchView<'_> {
        SketchView {
            data: &self.data,
            n: self.n,
            sorted: self.sorted,
        }
    }

    /// Returns the ends, then the words, in one slice: what a [`SketchView`] is made from
    /// again, with the sentence count and [`Sketch::is_sorted`].
    pub(super) fn packed(&self) -> &[u16] {
        &self.data
    }

    #[inline]
    fn ends(&self) -> &[u16] {
        self.view().ends()
    }

    #[inline]
    fn words(&self) -> &[u16] {
        self.view().words()
    }

    /// Returns the number of sentences kept.
    #[inline]
    pub fn sentence_count(&self) -> usize {
        usize::from(self.n)
    }

    #[inline]
    fn sentence(&self, i: usize) -> &[u16] {
        self.view().sentence(i)
    }

    /// Returns whether each sentence's words are sorted rather than in sentence order.
    pub fn is_sorted(&self) -> bool {
        self.sorted
    }

    /// Returns the sketch as bytes: the sentence count (with [`IN_ORDER`] set unless the words
    /// are sorted), the ends, then the words, little-endian.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + 2 * self.data.len());
        out.push(if self.sorted {
            self.n
        } else {
            self.n | IN_ORDER
        });
        for v in self.data.iter() {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out
    }

    /// Parses what [`Sketch::to_bytes`] wrote; `None` when it is inconsistent. Without the
    /// [`IN_ORDER`] flag the words of each sentence are sorted (they were sorted, or their
    /// order is not known to be the one every flagged sketch keeps).
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let (&count, rest) = bytes.split_first()?;
        let (n, sorted) = (count & !IN_ORDER, count & IN_ORDER == 0);
        if rest.len() % 2 != 0 || rest.len() / 2 < n as usize || n as usize > MAX_SENTENCES {
            return None;
        }
        // Read into the sketch's one allocation directly (a loop the compiler vectorises).
        let mut data = vec![0u16; rest.len() / 2].into_boxed_slice();
        for (v, c) in data.iter_mut().zip(rest.chunks_exact(2)) {
            *v = u16::from_le_bytes([c[0], c[1]]);
        }
        let (ends, words) = data.split_at(n as usize);
        let ordered = ends.windows(2).all(|w| w[0] <= w[1]);
        if !ordered || ends.last().is_some_and(|&e| e as usize != words.len()) {
            return None;
        }
        let mut sketch = Self {
            data,
            n,
            sorted: false,
        };
        if sorted {
            sketch.sort_sentences();
        }
        Some(sketch)
    }

    /// Sorts the words of each sentence and marks the sketch sorted.
    fn sort_sentences(&mut self) {
        let n = usize::from(self.n);
        let (ends, words) = self.data.split_at_mut(n);
        let mut start = 0;
        for &end in ends.iter() {
            words[start..usize::from(end)].sort_unstable();
            start = usize::from(end);
        }
        self.sorted = true;
    }

    /// Returns the memory the sketch holds on the heap, in bytes.
    pub fn heap_bytes(&self) -> usize {
        2 * self.data.len()
    }
}

#[cfg(test)]
#[path = "rewrite_align_tests.rs"]
mod tests;
