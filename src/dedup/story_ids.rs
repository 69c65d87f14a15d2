//! Owns [`StoryIds`]: the story ids of the indexed documents, kept once per story.
//!
//! Every indexed document names its story (16 bytes). Most documents either started their
//! story (its id is their own raw id) or joined one that many others joined too, so the exact
//! tier keeps a 4-byte code a document instead: [`OWN`] for a story named after the document
//! itself, else the slot of the story's id here, counted once per document that names it and
//! freed when the last of them leaves the index.

use super::blocks::Id;
use super::entry::hash_of;
use hashbrown::hash_table::{Entry, HashTable};

/// The code of a document whose story is its own raw id.
pub(super) const OWN: u32 = u32::MAX;

/// Story ids by code, with the number of indexed documents naming each.
#[derive(Debug, Default)]
pub(super) struct StoryIds {
    /// Each code's story id and its count of documents (0: the code is free).
    ids: Vec<(Id, u32)>,
    /// Free codes, reused before new ones.
    free: Vec<u32>,
    /// The codes in use, by story id.
    table: HashTable<u32>,
}

impl StoryIds {
    /// Returns the code of `story` for a document whose raw id is `raw`, counting the document.
    pub(super) fn add(&mut self, raw: Id, story: Id) -> u32 {
        if story == raw {
            return OWN;
        }
        let ids = &mut self.ids;
        let entry = self.table.entry(
            hash_of(story),
            |&c| ids[c as usize].0 == story,
            |&c| hash_of(ids[c as usize].0),
        );
        let code = match entry {
            Entry::Occupied(e) => *e.get(),
            Entry::Vacant(e) => {
                let code = match self.free.pop() {
                    Some(c) => {
                        ids[c as usize] = (story, 0);
                        c
                    }
                    None => {
                        // Fewer codes than indexed documents, and an index holds far fewer than
                        // `OWN` documents.
                        ids.push((story, 0));
                        (ids.len() - 1) as u32
                    }
                };
                e.insert(code);
                code
            }
        };
        ids[code as usize].1 += 1;
        code
    }

    /// Returns the story id of a document whose raw id is `raw` and whose code is `code`.
    pub(super) fn get(&self, raw: Id, code: u32) -> Id {
        if code == OWN {
            return raw;
        }
        self.ids[code as usize].0
    }

    /// Uncounts a document that leaves the index; its story's code is freed with the last one.
    pub(super) fn remove(&mut self, code: u32) {
        if code == OWN {
            return;
        }
        let (story, n) = &mut self.ids[code as usize];
        *n -= 1;
        if *n == 0 {
            if let Ok(e) = self.table.find_entry(hash_of(*story), |&c| c == code) {
                e.remove();
            }
            self.free.push(code);
        }
    }

    /// Returns the number of stories with a code.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.table.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn codes_give_back_each_story_and_are_freed_with_its_last_document() {
        let id = |v: u128| Id::from(v);
        let mut s = StoryIds::default();
        let mut model: HashMap<u32, (u128, u32)> = HashMap::new();
        let mut held: Vec<(u128, u32)> = Vec::new();
        // Documents 0..300 in stories of ids 1000 + i % 7, every fifth its own story.
        for i in 0..300u128 {
            let story = if i % 5 == 0 { i } else { 1000 + i % 7 };
            let code = s.add(id(i), id(story));
            assert_eq!(code == OWN, story == i);
            assert_eq!(s.get(id(i), code).get(), story);
            if code != OWN {
                let e = model.entry(code).or_insert((story, 0));
                assert_eq!(e.0, story, "one code, one story");
                e.1 += 1;
            }
            held.push((i, code));
            if i % 3 == 2 {
                let (raw, code) = held.remove(0);
                assert_eq!(
                    s.get(id(raw), code).get(),
                    if raw % 5 == 0 { raw } else { 1000 + raw % 7 }
                );
                s.remove(code);
                if let Some(e) = model.get_mut(&code) {
                    e.1 -= 1;
                    if e.1 == 0 {
                        model.remove(&code);
                    }
                }
            }
            assert_eq!(s.len(), model.len());
        }
        for (raw, code) in held.drain(..) {
            assert_eq!(
                s.get(id(raw), code).get(),
                if raw % 5 == 0 { raw } else { 1000 + raw % 7 }
            );
            s.remove(code);
        }
        assert_eq!(s.len(), 0);
        assert_eq!(s.free.len(), s.ids.len());
        // A freed code is reused, for whatever story comes next.
        let c = s.add(id(1), id(77));
        assert!((c as usize) < s.ids.len() && s.get(id(1), c).get() == 77);
    }

    #[test]
    fn an_indexed_document_takes_20_bytes_besides_its_raw_id() {
        // The text hash and a story code (a text hash and a story id took 32).
        assert_eq!(std::mem::size_of::<super::super::exact::Slot>(), 20);
        assert_eq!(std::mem::align_of::<Id>(), 4);
    }
}
