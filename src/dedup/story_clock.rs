//! Owns the story tier's clock: arrival positions, closing stories nobody joined within the
//! window, and the staggered sweep of the term table.

use super::{StoryIndex, CLOSE_PER_DOC, SHARDS, SHARD_EVERY, SWEEP_EVERY};

impl StoryIndex {
    /// Moves time forward by one document that joined no story (an exact duplicate).
    pub fn advance_only(&mut self) {
        self.advance();
    }

    /// Moves time forward: closes the stories of the next [`CLOSE_PER_DOC`] slots that no
    /// document joined within the window, and every [`SHARD_EVERY`] documents sweeps the next
    /// shard of the term table, so no document pays for a sweep of the whole table. Both run at
    /// fixed arrival positions, so replay closes and forgets the same things.
    pub(super) fn advance(&mut self) {
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
                    self.by_id.remove(&s.id);
                    self.dirs.remove(&(i as u32));
                    self.anchors.remove(&(i as u32));
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
        let slots = &self.slots;
        self.terms
            .sweep(k, |i| slots.get(i as usize).is_some_and(Option::is_some));
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
