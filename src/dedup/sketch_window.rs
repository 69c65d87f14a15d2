//! Owns the align window: the sentence sketches of the most recent near-index documents,
//! packed one after another into shared chunks.
//!
//! The window holds `align_window` sketches (20,000 by default) of a few hundred bytes each.
//! Kept as one allocation per sketch in a hash map by sequence number, with a queue of the
//! numbers in arrival order, they cost about 100 bytes a sketch beyond their words (a 32-byte
//! map slot at most 7/8 full, a control byte, 8 bytes in the queue, the allocator's header and
//! rounding), and freed sketches left holes between newer allocations. Here a sketch's words
//! are copied into the newest chunk, the window keeps one 24-byte slot a sketch in arrival
//! (and so sequence) order, found by binary search, and a chunk is given back whole once its
//! last sketch has left the window.

use super::align::{Sketch, SketchView};
use std::collections::VecDeque;

/// Values (`u16`) a chunk holds: 128 KiB, which the allocator maps on its own (the mmap
/// threshold `main` fixes), so a chunk given back goes back to the kernel. A sketch never
/// spans two chunks; one larger than a chunk (only a hand-made ledger holds one) gets a chunk
/// of its own size.
const CHUNK: usize = 1 << 16;

/// Where one sketch is kept.
#[derive(Debug, Clone, Copy)]
struct Slot {
    /// The document's near-index sequence number.
    seq: u64,
    /// Low 32 bits of the number of its chunk (chunks are numbered from 0 as they are made).
    chunk: u32,
    /// Its first value in the chunk.
    start: u32,
    /// Its values: ends, then words ([`Sketch::packed`]).
    len: u32,
    n: u8,
    sorted: bool,
}

/// The sketches of the last documents added, oldest first.
#[derive(Debug, Default)]
pub struct SketchWindow {
    slots: VecDeque<Slot>,
    /// The chunks that hold the slots' values, oldest first.
    chunks: VecDeque<Vec<u16>>,
    /// Number of `chunks[0]`.
    first_chunk: u64,
    /// An emptied chunk kept for the next one needed (no new mapping and page faults every
    /// few hundred documents).
    spare: Option<Vec<u16>>,
}

impl SketchWindow {
    /// Returns the number of sketches held.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Returns the sequence number of the oldest sketch held.
    pub fn first_seq(&self) -> Option<u64> {
        self.slots.front().map(|s| s.seq)
    }

    /// Returns the sketch of the document `seq`, if held.
    pub fn get(&self, seq: u64) -> Option<SketchView<'_>> {
        let i = self.slots.binary_search_by_key(&seq, |s| s.seq).ok()?;
        Some(self.view(&self.slots[i]))
    }

    /// Returns the sketches held, oldest first.
    #[cfg(test)]
    pub fn iter(&self) -> impl Iterator<Item = SketchView<'_>> {
        self.slots.iter().map(|s| self.view(s))
    }

    fn view(&self, s: &Slot) -> SketchView<'_> {
        let at = s.chunk.wrapping_sub(self.first_chunk as u32) as usize;
        let (start, len) = (s.start as usize, s.len as usize);
        SketchView::from_packed(&self.chunks[at][start..start + len], s.n, s.sorted)
    }

    /// Adds the sketch of the document `seq` (newer than every sketch held), then drops the
    /// oldest ones beyond `limit`.
    pub fn push(&mut self, seq: u64, sketch: &Sketch, limit: usize) {
        debug_assert!(self.slots.back().is_none_or(|s| s.seq < seq));
        let values = sketch.packed();
        let fits = self
            .chunks
            .back()
            .is_some_and(|c| c.capacity() - c.len() >= values.len());
        if !fits {
            let chunk = match self.spare.take() {
                Some(c) if values.len() <= c.capacity() => c,
                _ => Vec::with_capacity(values.len().max(CHUNK)),
            };
            self.chunks.push_back(chunk);
        }
        let chunk_no = self.first_chunk + self.chunks.len() as u64 - 1;
        let Some(chunk) = self.chunks.back_mut() else {
            return;
        };
        let start = chunk.len();
        chunk.extend_from_slice(values);
        // Grown by doubling up to the limit and no further: a window that is full holds
        // `limit + 1` slots for a moment, and a deque grown past that would carry the
        // difference for good.
        if self.slots.len() == self.slots.capacity() {
            let want = (2 * self.slots.capacity())
                .max(16)
                .min(limit.saturating_add(1));
            self.slots
                .reserve_exact(want.saturating_sub(self.slots.len()).max(1));
        }
        self.slots.push_back(Slot {
            seq,
            chunk: chunk_no as u32,
            start: start as u32,
            len: values.len() as u32,
            n: sketch.sentence_count() as u8,
            sorted: sketch.is_sorted(),
        });
        while self.slots.len() > limit {
            self.pop_front();
        }
    }

    /// Drops the sketches of the documents numbered below `seq`.
    pub fn drop_below(&mut self, seq: u64) {
        while self.first_seq().is_some_and(|s| s < seq) {
            self.pop_front();
        }
    }

    /// Drops the oldest sketch, and the chunks no sketch left uses.
    fn pop_front(&mut self) {
        self.slots.pop_front();
        let in_use = match self.slots.front() {
            Some(s) => s.chunk.wrapping_sub(self.first_chunk as u32) as usize,
            None => self.chunks.len(),
        };
        for _ in 0..in_use {
            let Some(mut done) = self.chunks.pop_front() else {
                break;
            };
            self.first_chunk += 1;
            if done.capacity() == CHUNK {
                done.clear();
                self.spare = Some(done);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sketch of `n` sentences of three words each, the words numbered from `base`.
    fn sketch(n: u16, base: u16) -> Sketch {
        let ends: Vec<u16> = (1..=n).map(|i| 3 * i).collect();
        let words: Vec<u16> = (0..3 * n).map(|w| base.wrapping_add(w)).collect();
        Sketch::from_parts(&ends, &words)
    }

    #[test]
    fn holds_the_last_sketches_and_finds_them_by_number() {
        let mut w = SketchWindow::default();
        let all: Vec<Sketch> = (0..5_000u16).map(|i| sketch(1 + i % 40, i)).collect();
        // Every other number, as near-index documents without sentences leave gaps.
        for (i, s) in all.iter().enumerate() {
            w.push(2 * i as u64, s, 1_000);
        }
        assert_eq!(w.len(), 1_000);
        assert_eq!(w.first_seq(), Some(2 * 4_000));
        for (i, s) in all.iter().enumerate() {
            let got = w.get(2 * i as u64);
            assert_eq!(got, (i >= 4_000).then(|| s.view()), "sketch {i}");
            assert_eq!(w.get(2 * i as u64 + 1), None);
        }
        // Chunks no sketch uses are given back: about 21 values a sketch, 65,536 a chunk.
        assert!(w.chunks.len() <= 2, "{} chunks", w.chunks.len());
        assert!(w.slots.capacity() <= 1_001);
        assert!(w.iter().eq(all[4_000..].iter().map(Sketch::view)));
    }

    #[test]
    fn drops_below_a_number_and_keeps_an_oversized_sketch_whole() {
        let mut w = SketchWindow::default();
        let big = sketch(64, 7);
        let huge = Sketch::from_parts(&[40_000], &[9; 40_000]);
        // Two ends and 65,535 words: one value more than a chunk.
        let huger = Sketch::from_parts(&[1, 65_535], &vec![8; 65_535]);
        w.push(1, &big, 10);
        w.push(2, &huge, 10);
        w.push(3, &huger, 10);
        w.push(4, &big, 10);
        assert_eq!(w.get(2), Some(huge.view()));
        assert_eq!(w.get(3), Some(huger.view()));
        assert_eq!(w.get(4), Some(big.view()));
        w.drop_below(3);
        assert_eq!((w.len(), w.first_seq(), w.get(1)), (2, Some(3), None));
        w.drop_below(5);
        assert_eq!((w.len(), w.first_seq()), (0, None));
        assert!(w.chunks.is_empty());
        w.push(9, &big, 0);
        assert_eq!((w.len(), w.get(9)), (0, None));
    }
}
