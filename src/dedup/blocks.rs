//! Owns [`Blocks`]: a FIFO of small fixed-size records stored in whole blocks, for the dedup
//! index's per-document arrays.
//!
//! A `VecDeque` doubles its buffer, so between doublings up to half of it is empty (at 50,000
//! documents a 65,536-slot buffer leaves 24 % unused); blocks of [`BLOCK`] records are allocated
//! and freed whole, so at most one block is partly used at each end.

use std::collections::VecDeque;

/// A `u128` (a document or story id) stored with 4-byte alignment: a `u128` field aligns its
/// record to 16 bytes (and a `[u64; 2]` to 8), which pads most of the index's records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct Id([u32; 4]);

impl Id {
    pub(super) fn get(self) -> u128 {
        let [a, b, c, d] = self.0.map(u128::from);
        a | b << 32 | c << 64 | d << 96
    }
}

impl From<u128> for Id {
    fn from(v: u128) -> Self {
        Self([
            v as u32,
            (v >> 32) as u32,
            (v >> 64) as u32,
            (v >> 96) as u32,
        ])
    }
}

impl std::hash::Hash for Id {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u128(self.get());
    }
}

/// Records per block.
pub(super) const BLOCK: usize = 1024;

/// A FIFO queue of `Copy` records in fixed-size blocks, indexed from the oldest.
#[derive(Debug)]
pub(super) struct Blocks<T> {
    blocks: VecDeque<Vec<T>>,
    /// Records already popped from the first block.
    head: usize,
    len: usize,
}

impl<T> Default for Blocks<T> {
    fn default() -> Self {
        Self {
            blocks: VecDeque::new(),
            head: 0,
            len: 0,
        }
    }
}

impl<T: Copy> Blocks<T> {
    /// Returns the number of records.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Returns whether there are no records.
    #[cfg(test)]
    pub(super) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Returns the `i`-th oldest record.
    pub(super) fn get(&self, i: usize) -> Option<&T> {
        if i >= self.len {
            return None;
        }
        let at = self.head + i;
        self.blocks.get(at / BLOCK)?.get(at % BLOCK)
    }

    /// Returns the oldest record.
    pub(super) fn front(&self) -> Option<&T> {
        self.get(0)
    }

    /// Returns the newest record.
    pub(super) fn back_mut(&mut self) -> Option<&mut T> {
        self.blocks.back_mut()?.last_mut()
    }

    /// Appends a record.
    pub(super) fn push_back(&mut self, v: T) {
        match self.blocks.back_mut() {
            Some(b) if b.len() < BLOCK => b.push(v),
            _ => {
                let mut b = Vec::with_capacity(BLOCK);
                b.push(v);
                self.blocks.push_back(b);
            }
        }
        self.len += 1;
    }

    /// Removes and returns the oldest record; its block is freed once all its records are.
    pub(super) fn pop_front(&mut self) -> Option<T> {
        let v = *self.front()?;
        self.head += 1;
        self.len -= 1;
        let first_done = self
            .blocks
            .front()
            .is_some_and(|b| self.head >= b.len() && (b.len() == BLOCK || self.len == 0));
        if first_done {
            self.blocks.pop_front();
            self.head = 0;
        }
        Some(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_across_blocks() {
        let mut q: Blocks<u64> = Blocks::default();
        let mut model: VecDeque<u64> = VecDeque::new();
        let mut next = 0u64;
        // Pushes and pops in uneven runs so the front and back blocks move independently.
        for round in 0..40usize {
            for _ in 0..(round * 97) % 700 {
                q.push_back(next);
                model.push_back(next);
                next += 1;
            }
            for _ in 0..(round * 61) % 650 {
                assert_eq!(q.pop_front(), model.pop_front());
            }
            assert_eq!(q.len(), model.len());
            for i in [
                0,
                model.len() / 2,
                model.len().saturating_sub(1),
                model.len(),
            ] {
                assert_eq!(q.get(i), model.get(i));
            }
            assert!(q.blocks.len() <= model.len() / BLOCK + 2);
        }
        while let Some(v) = model.pop_front() {
            assert_eq!(q.pop_front(), Some(v));
        }
        assert!(q.is_empty() && q.pop_front().is_none() && q.blocks.is_empty());
    }
}
