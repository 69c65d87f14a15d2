//! Owns the story tier's join decision: the best open story whose centroid clears the
//! threshold and, when an anchor bar is set, whose founding document the new one also
//! resembles.
//!
//! ECB+ topics hold two events of one kind (two earthquakes, two arrests). A story that one
//! event founded drifts once a document of the other joins it, and then absorbs the rest of
//! that event: on training folds, wrongly joined documents resemble the story's founding
//! document less than rightly joined ones do (cosine median 0.29 against 0.39) while their
//! centroid cosines barely differ (0.48 against 0.52). The anchor is the founding document's
//! [`ANCHOR_TERMS`] heaviest terms (names weigh double, so mostly names and rare words), fixed
//! when the story starts; a document joins only a story whose anchor cosine also clears
//! `anchor` (0 turns the guard off and keeps no anchors).

use super::story_postings::heaviest;
use super::story_terms::Cell;
use super::{Match, StoryIndex};

/// Heaviest terms of a story's founding document kept as its anchor (6 bytes each).
pub(super) const ANCHOR_TERMS: usize = 32;

/// Returns the anchor of a founding document's TF-IDF vector (term id order): its
/// [`ANCHOR_TERMS`] heaviest terms (ties: smaller id), scaled to unit length, in term id order.
pub(super) fn anchor_of(vector: &[(u32, f32)]) -> Box<[Cell]> {
    let mut at = heaviest(vector, ANCHOR_TERMS);
    at.sort_unstable();
    let norm = at
        .iter()
        .map(|&i| vector[i].1 * vector[i].1)
        .sum::<f32>()
        .sqrt();
    let scale = if norm > 0.0 { 1.0 / norm } else { 0.0 };
    at.iter()
        .map(|&i| Cell::new(vector[i].0 << 2, vector[i].1 * scale))
        .collect()
}

/// Returns the dot product of a unit document vector (term id order) with an anchor: the
/// cosine of the document to its story's founding document's heaviest terms.
pub(super) fn anchor_similarity(vector: &[(u32, f32)], anchor: &[Cell]) -> f32 {
    let (mut i, mut dot) = (0usize, 0.0f32);
    for cell in anchor {
        let t = cell.term();
        while vector.get(i).is_some_and(|&(v, _)| v < t) {
            i += 1;
        }
        match vector.get(i) {
            Some(&(v, w)) if v == t => dot += w * cell.mass(),
            Some(_) => {}
            None => break,
        }
    }
    dot
}

impl StoryIndex {
    /// Returns the story a new document joins: the most similar one whose centroid cosine
    /// clears the threshold (plus `single_margin` for a story of one document) and whose anchor
    /// cosine clears the anchor bar (when set).
    pub fn choose(&self, ranked: &[Match]) -> Option<u128> {
        let bar = self.params.anchor;
        ranked
            .iter()
            .take_while(|m| m.similarity >= self.params.threshold)
            .find(|m| {
                (bar <= 0.0 || m.anchor >= bar)
                    && (m.size != 1
                        || m.similarity >= self.params.threshold + self.params.single_margin)
            })
            .map(|m| m.story)
    }

    /// Returns the anchor cosine of `vector` to the story in `slot` when the guard is on and
    /// the centroid cosine `similarity` clears the threshold (else 0: it is not read); a story
    /// without an anchor is not guarded (1).
    pub(super) fn anchor_score(&self, slot: u32, vector: &[(u32, f32)], similarity: f32) -> f32 {
        if self.params.anchor <= 0.0 || similarity < self.params.threshold {
            return 0.0;
        }
        self.anchors
            .get(&slot)
            .map_or(1.0, |a| anchor_similarity(vector, a))
    }

    /// Keeps the anchor of a story founded in `slot` by a document with this vector.
    pub(super) fn found_anchor(&mut self, slot: u32, vector: &[(u32, f32)]) {
        if self.params.anchor > 0.0 {
            self.anchors.insert(slot, anchor_of(vector));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchor_keeps_the_heaviest_terms_at_unit_length() {
        let v: Vec<(u32, f32)> = (0..40u32).map(|t| (t, (t + 1) as f32)).collect();
        let a = anchor_of(&v);
        assert_eq!(a.len(), ANCHOR_TERMS);
        assert_eq!(a[0].term(), 8);
        assert_eq!(a[ANCHOR_TERMS - 1].term(), 39);
        let n: f32 = a.iter().map(|c| c.mass() * c.mass()).sum();
        assert!((n - 1.0).abs() < 1e-3, "{n}");
        // The founder itself scores its heaviest terms' share of its norm.
        let unit: f32 = v.iter().map(|x| x.1 * x.1).sum::<f32>().sqrt();
        let u: Vec<(u32, f32)> = v.iter().map(|&(t, w)| (t, w / unit)).collect();
        let s = anchor_similarity(&u, &a);
        assert!(s > 0.9 && s <= 1.0 + 1e-3, "{s}");
        assert_eq!(anchor_similarity(&[(100, 1.0)], &a), 0.0);
    }
}
