//! Owns the exact tier's index and the ids of every indexed document: the documents in arrival
//! order, and two hash tables over them (raw-byte hash, normalised-text hash) that hold only
//! arrival positions. The raw-byte ids and their table are the [`KnownRaw`] shared with the
//! strip stage.
//!
//! A table bucket is the low 32 bits of an arrival position and a control byte (5 bytes, against
//! 57 for a map from a 16-byte hash to a 40-byte record); the key is read from the document's
//! record. The near index keeps arrival positions too, and finds its documents' ids here.

use super::blocks::{Blocks, Id};
use super::entry::{hash_of, insert_earliest, KnownRaw};
use super::minhash::widen;
use super::story_ids::StoryIds;
use super::text::IdMap;
use hashbrown::hash_table::HashTable;
use std::sync::Arc;

/// One indexed document in arrival order (20 bytes; its raw id is in [`KnownRaw`], its story
/// id in [`StoryIds`] under the code here, and whether it is in the near index is told by the
/// near index's oldest document).
#[derive(Debug, Clone, Copy)]
pub(super) struct Slot {
    text: Id,
    story: u32,
}

/// Documents in arrival order with their exact-match tables.
#[derive(Debug, Default)]
pub(super) struct Exact {
    order: Blocks<Slot>,
    /// Arrival position of `order[0]`.
    first_seq: u64,
    /// The raw-byte ids in arrival order and their table, in step with `order`.
    raws: Arc<KnownRaw>,
    by_text: HashTable<u32>,
    /// The earlier document each exact duplicate resolves to, by the duplicate's position.
    exact_of: IdMap<u64, Id>,
    /// The story ids of the documents in `order`.
    stories: StoryIds,
}

impl Exact {
    /// Returns the raw ids and their table, shared with the strip stage.
    pub(super) fn known_raw(&self) -> Arc<KnownRaw> {
        Arc::clone(&self.raws)
    }

    /// Returns the number of indexed documents.
    pub(super) fn len(&self) -> usize {
        self.order.len()
    }

    /// Returns the arrival position the next document gets.
    pub(super) fn next_seq(&self) -> u64 {
        self.first_seq + self.order.len() as u64
    }

    /// Returns the full arrival position of an indexed document from its low 32 bits.
    pub(super) fn widen(&self, low: u32) -> u64 {
        widen(self.first_seq, self.order.len(), low)
    }

    /// Returns the document at this arrival position, if still indexed.
    pub(super) fn slot(&self, seq: u64) -> Option<&Slot> {
        let i = seq.checked_sub(self.first_seq)?;
        self.order.get(usize::try_from(i).ok()?)
    }

    /// Returns the raw id and the story of the document at this arrival position.
    pub(super) fn ids(&self, seq: u64) -> Option<(u128, u128)> {
        let code = self.slot(seq)?.story;
        let raw = self.raws.lock().get(seq)?;
        Some((raw.get(), self.stories.get(raw, code).get()))
    }

    /// Returns the id an exact copy of the document at `seq` resolves to, and its story.
    fn resolve(&self, seq: u64) -> Option<(u128, u128)> {
        let (raw, story) = self.ids(seq)?;
        let of = self.exact_of.get(&seq).map_or(raw, |of| of.get());
        Some((of, story))
    }

    fn find_text(&self, key: Id) -> Option<u64> {
        let eq = |&low: &u32| self.slot(self.widen(low)).is_some_and(|s| s.text == key);
        self.by_text
            .find(hash_of(key), eq)
            .map(|&low| self.widen(low))
    }

    /// Returns the document an exact copy with these hashes resolves to (raw bytes first, then
    /// the normalised text) and its story.
    pub(super) fn lookup(&self, raw: u128, text: u128) -> Option<(u128, u128)> {
        let by_raw = self.raws.lock().find(raw.into());
        by_raw
            .or_else(|| self.find_text(text.into()))
            .and_then(|seq| self.resolve(seq))
    }

    /// Returns what a document with these raw bytes resolves to, if one was indexed.
    pub(super) fn lookup_raw(&self, raw: u128) -> Option<u128> {
        let by_raw = self.raws.lock().find(raw.into());
        by_raw.and_then(|seq| self.resolve(seq)).map(|(id, _)| id)
    }

    /// Appends a document (`exact_of`: the document it exactly duplicates) and returns its
    /// arrival position. A hash seen before keeps pointing at the earlier document.
    pub(super) fn push(
        &mut self,
        raw: u128,
        text: u128,
        story: u128,
        exact_of: Option<u128>,
    ) -> u64 {
        let seq = self.next_seq();
        let story = self.stories.add(raw.into(), story.into());
        self.order.push_back(Slot {
            text: text.into(),
            story,
        });
        self.raws.lock().push(raw.into());
        if let Some(of) = exact_of {
            self.exact_of.insert(seq, of.into());
        }
        let (order, first) = (&self.order, self.first_seq);
        insert_earliest(&mut self.by_text, text.into(), seq, |low| {
            let i = widen(first, order.len(), low) - first;
            order.get(i as usize).map(|s| s.text)
        });
        seq
    }

    /// Removes the oldest document; returns its arrival position.
    pub(super) fn pop(&mut self) -> Option<u64> {
        let seq = self.first_seq;
        let slot = *self.order.front()?;
        self.raws.lock().pop();
        // A table entry is this document's only when it holds its position.
        if let Ok(e) = self
            .by_text
            .find_entry(hash_of(slot.text), |&low| low == seq as u32)
        {
            e.remove();
        }
        self.exact_of.remove(&seq);
        self.stories.remove(slot.story);
        self.order.pop_front();
        self.first_seq += 1;
        Some(seq)
    }
}
