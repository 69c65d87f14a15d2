//! Owns the story tier's update: adding a document to its story's centroid (sparse, in term
//! order, with the norms kept up to date) and counting its terms.

use super::story_cells::{directory, insert_cells, scan, update_directory, Dir, DIRECTORY_MIN};
use super::story_postings::{listed_terms, mark_listed};
use super::story_terms::{Cell, Idf};
use super::{Story, StoryIndex, Term, Weighed};

/// The per-document working buffers of [`StoryIndex::add_with`], kept so an add allocates
/// nothing but the centroid's growth.
#[derive(Debug, Default)]
pub(super) struct AddScratch {
    vector: Vec<(u32, f32)>,
    idfs: Vec<f32>,
    keys: Vec<u64>,
    listed: Vec<bool>,
    fresh_terms: Vec<bool>,
    inserts: Vec<(usize, Cell)>,
}

/// Returns `terms` sorted by id with one entry per id (a repeated id, only from a damaged
/// ledger, keeps the larger count and is name-like if any copy is).
fn canonical(terms: &[Term]) -> std::borrow::Cow<'_, [Term]> {
    if terms.windows(2).all(|w| w[0].id < w[1].id) {
        return std::borrow::Cow::Borrowed(terms);
    }
    let mut v = terms.to_vec();
    v.sort_unstable();
    v.dedup_by(|later, kept| {
        let same = later.id == kept.id;
        if same {
            kept.tf = kept.tf.max(later.tf);
            kept.name_like |= later.name_like;
        }
        same
    });
    std::borrow::Cow::Owned(v)
}

impl StoryIndex {
    /// Adds a document with these terms to `story` (created when new) and counts its terms.
    pub fn add(&mut self, story: u128, terms: &[Term]) {
        self.add_with(story, terms, None, None);
    }

    /// [`StoryIndex::add`] with the terms' IDF values under the current document frequencies
    /// given (as [`StoryIndex::idfs`] returns them), and the document's vector built from them
    /// (as [`StoryIndex::vector_with`] returns it) with its [`StoryIndex::listed_keys`], when
    /// the caller has them already.
    pub fn add_with(
        &mut self,
        story: u128,
        terms: &[Term],
        idfs: Option<&[f32]>,
        vector: Option<Weighed<'_>>,
    ) {
        let terms = canonical(terms);
        let mut scratch = std::mem::take(&mut self.scratch);
        // The given values are for the terms as given: usable only when those were canonical.
        let given = idfs
            .filter(|v| v.len() == terms.len() && matches!(terms, std::borrow::Cow::Borrowed(_)));
        let added = self.add_scratch(story, &terms, given, vector, &mut scratch);
        self.scratch = scratch;
        if added {
            self.docs_seen += 1;
            self.advance();
        }
    }

    /// The body of [`StoryIndex::add_with`] for canonical `terms` (with their IDF values when
    /// `given`), with its buffers; returns whether the document was added.
    fn add_scratch(
        &mut self,
        story: u128,
        terms: &[Term],
        given: Option<&[f32]>,
        vector: Option<Weighed<'_>>,
        scratch: &mut AddScratch,
    ) -> bool {
        let AddScratch {
            vector: vector_buf,
            idfs: idfs_buf,
            keys,
            listed,
            fresh_terms,
            inserts,
        } = scratch;
        let idfs: &[f32] = match given {
            Some(v) => v,
            None => {
                let mut idf = self.idf();
                idfs_buf.clear();
                idfs_buf.extend(terms.iter().map(|t| idf.of(t.id)));
                idfs_buf
            }
        };
        let given_vector = vector.filter(|(v, _)| given.is_some() && v.len() == terms.len());
        let vector: &[(u32, f32)] = match given_vector {
            Some((v, _)) => v,
            None => {
                self.vector_into(terms, idfs, vector_buf);
                vector_buf
            }
        };
        let seq = self.seq;
        let slot = match self.by_id.get(&story) {
            Some(&slot) => slot,
            None => {
                let fresh = Story {
                    id: story,
                    centroid: Vec::new(),
                    norm_sq: 0.0,
                    names_sq: 0.0,
                    last_seq: seq,
                    size: 0,
                };
                let slot = match self.free.pop() {
                    Some(slot) => {
                        self.slots[slot as usize] = Some(fresh);
                        slot
                    }
                    None => {
                        self.slots.push(Some(fresh));
                        u32::try_from(self.slots.len() - 1).unwrap_or(u32::MAX)
                    }
                };
                self.by_id.insert(story, slot);
                self.mark_open(slot);
                slot
            }
        };
        let Some(Some(s)) = self.slots.get_mut(slot as usize) else {
            return false;
        };
        // Which of the document's heaviest terms are not yet listed under the story.
        match given_vector {
            Some((_, given_keys)) => {
                debug_assert_eq!(given_keys, StoryIndex::listed_keys(vector));
                mark_listed(vector.len(), given_keys, listed)
            }
            None => listed_terms(vector, listed, keys),
        }
        fresh_terms.clear();
        fresh_terms.resize(vector.len(), false);
        // Terms already in the centroid are updated where they are, new ones are inserted in
        // one backward pass afterwards: no copy of a large centroid per member.
        inserts.clear();
        let mut at = 0usize;
        // A new story's centroid is the document's terms, pushed in order.
        let new_story = s.centroid.is_empty();
        let dir = self
            .dirs
            .get(&slot)
            .filter(|_| !new_story)
            .and_then(|d| Dir::new(d));
        if new_story {
            s.centroid.reserve_exact(vector.len());
        }
        // In term id order, so the norm updates run in the order they always did (into locals,
        // the same sums in the same order, stored once).
        let (mut norm_sq, mut names_sq) = (s.norm_sq, s.names_sq);
        let rows = vector.iter().zip(idfs).zip(terms).zip(listed.iter());
        for ((((&(t, w), &idf_t), term), &list), fresh) in rows.zip(fresh_terms.iter_mut()) {
            let (found, next) = if new_story {
                (None, 0)
            } else {
                match dir {
                    Some(dir) => dir.seek(&s.centroid, at, t),
                    // Under `DIRECTORY_MIN` cells: a walk beside the document's terms.
                    None => scan(&s.centroid, at, t),
                }
            };
            at = next;
            let mass = w / idf_t;
            let name_now = u32::from(term.name_like);
            let (before, name) = match found {
                Some(k) => {
                    let (key, c) = s.centroid[k].add(name_now | u32::from(list) << 1, mass);
                    *fresh = list && key & 2 == 0;
                    (c, (key | name_now) & 1 != 0)
                }
                None => {
                    let cell = Cell::new(t << 2 | u32::from(list) << 1 | name_now, mass);
                    if new_story {
                        s.centroid.push(cell);
                    } else {
                        inserts.push((at, cell));
                    }
                    *fresh = list;
                    (0.0, name_now != 0)
                }
            };
            // Incremental update under today's IDF; the full recount below corrects the drift.
            let i2 = idf_t.powi(2);
            let delta = ((before + mass).powi(2) - before * before) * i2;
            norm_sq += delta;
            if name {
                names_sq += delta;
            }
        }
        (s.norm_sq, s.names_sq) = (norm_sq, names_sq);
        let had_dir = dir.is_some();
        insert_cells(&mut s.centroid, inserts);
        if s.centroid.len() >= DIRECTORY_MIN {
            let d = self.dirs.entry(slot).or_default();
            if had_dir && !new_story {
                update_directory(&s.centroid, inserts, d);
            } else {
                directory(&s.centroid, d);
            }
        }
        s.size += 1;
        if s.size.is_power_of_two() || s.size % 64 == 0 {
            // Recounts the norms under the current IDF, in term id order: O(centroid) at doubling
            // sizes and every 64 members, so the cost per document stays bounded.
            let mut idf = Idf::new(
                &self.terms,
                self.prior.as_deref(),
                self.docs_seen,
                self.params.idf_power,
            );
            // The document's own terms (all of a new story's centroid) have their IDF values at
            // hand, the same numbers `Idf::of` would return: found by a walk beside the centroid.
            let (mut norm_sq, mut names_sq) = (0.0f32, 0.0f32);
            let mut j = 0usize;
            for cell in &s.centroid {
                let (key, c) = (cell.key(), cell.mass());
                let t = key >> 2;
                while vector.get(j).is_some_and(|&(u, _)| u < t) {
                    j += 1;
                }
                let idf_t = match (vector.get(j), idfs.get(j)) {
                    (Some(&(u, _)), Some(&v)) if u == t => v,
                    _ => idf.of(t),
                };
                let w = c * idf_t;
                norm_sq += w * w;
                if key & 1 != 0 {
                    names_sq += w * w;
                }
            }
            s.norm_sq = norm_sq;
            s.names_sq = names_sq;
        }
        s.last_seq = seq;
        for (t, &new) in terms.iter().zip(fresh_terms.iter()) {
            self.terms.count(t.id, new.then_some(slot));
        }
        true
    }
}
