//! Owns the candidate checks of a decision: verifying LSH candidates as near-copies and aligning
//! the document with candidates (LSH and recent story members) for rewrites and reuse.

use super::align::{Alignment, Gate, Probe, Scratch};
use super::minhash::Compact;
use super::rewrite_model::MIN_COVERED;
use super::{story, Deduper, Tier, MAX_REUSE, REWRITE_STORIES};
use std::cmp::Ordering;

/// A decision found by a candidate: (tier, id, story, similarity or model score).
pub(super) type Found = (Tier, u128, u128, f32);

/// The order of the documents listed in `reuse`: largest share first, then oldest.
fn reuse_order(a: &(u64, f32), b: &(u64, f32)) -> Ordering {
    b.1.total_cmp(&a.1).then(a.0.cmp(&b.0))
}

/// Adds `r` to `best`, the first [`MAX_REUSE`] in [`reuse_order`] of what it was given (as
/// sorting them all and keeping the first would).
fn keep_best(best: &mut Vec<(u64, f32)>, r: (u64, f32)) {
    let at = best.partition_point(|b| reuse_order(b, &r) == Ordering::Less);
    if at < MAX_REUSE {
        best.insert(at, r);
        best.truncate(MAX_REUSE);
    }
}

impl Deduper {
    /// Returns the best verified near-copy among the candidates: (tier, id, story, similarity).
    pub(super) fn best_near(&self, s: &Compact, cands: &[u64]) -> Option<(Tier, u128, u128, f32)> {
        let mut best: Option<(Tier, u128, u128, f32)> = None;
        for &c in cands {
            let Some(doc) = self.near.get(c) else {
                continue;
            };
            let sim = s.similarity(&doc.sig);
            if sim >= self.config.near_threshold && best.is_none_or(|b| sim > b.3) {
                if let Some((id, story)) = self.near_ids(c) {
                    best = Some((Tier::NearCopy, id, story, sim));
                }
            }
        }
        best
    }

    /// Aligns the document with its candidates that still have a sketch (the LSH candidates
    /// and the recent members of the best-matching stories, in near-index order) and returns
    /// the best rewrite among them, (tier, id, story, model score), and the [`MAX_REUSE`] whose
    /// sentences make up the largest shares of the document, at least `reuse_min_share`
    /// ((near-index number, share), largest share first, then oldest). Each alignment is used as
    /// it is made: a syndicated story gives a document thousands of candidates, whose alignments
    /// (72 bytes each) were all collected first.
    pub(super) fn align(
        &self,
        probe: &Probe,
        mut cands: Vec<u64>,
        ranked: &[story::Match],
    ) -> (Option<Found>, Vec<(u64, f32)>) {
        let mut best: Option<Found> = None;
        let mut reused = Vec::new();
        if probe.sketch().sentence_count() == 0 {
            return (best, reused);
        }
        for m in ranked.iter().take(REWRITE_STORIES) {
            if let Some(members) = self.story_members.get(&m.story.into()) {
                cands.extend(members.iter().copied());
            }
        }
        cands.sort_unstable();
        cands.dedup();
        let mut scratch = Scratch::default();
        // Only the rewrite model's score and `shared` are read.
        let gate = Gate {
            min_words: self.config.rewrite_floor(),
            min_reworded: self.config.rewrite_min_reworded,
        };
        let overlap = self.config.align_overlap;
        for c in cands {
            let Some(old) = self.sketches.get(c) else {
                continue;
            };
            let a = probe.align_gated(old, overlap, MIN_COVERED, Some(gate), &mut scratch);
            self.keep_better_rewrite(&mut best, c, &a);
            if a.shared >= self.config.reuse_min_share {
                keep_best(&mut reused, (c, a.shared));
            }
        }
        (best, reused)
    }

    /// Makes the candidate `seq` aligned as `a` the best rewrite when the rewrite model scores
    /// it above the bar and above the best so far: (tier, id, story, model score).
    fn keep_better_rewrite(&self, best: &mut Option<Found>, seq: u64, a: &Alignment) {
        let cov = self.config.rewrite_model.score(
            a,
            self.config.rewrite_floor(),
            self.config.rewrite_min_reworded,
        );
        if cov >= self.config.rewrite_bar(a) && best.is_none_or(|b| cov > b.3) {
            if let Some((id, story)) = self.near_ids(seq) {
                *best = Some((Tier::Rewrite, id, story, cov));
            }
        }
    }

    /// Drops the near-index documents below `upto` from their stories' member lists (each is
    /// the oldest of its list, as documents are pruned in order) and the lists left empty: one
    /// step a near-index document, so pruning never costs a pass over every story.
    pub(super) fn prune_members(&mut self, upto: u64) {
        while self.pruned < upto {
            let nseq = self.pruned;
            self.pruned += 1;
            let Some((_, story)) = self.near_ids(nseq) else {
                continue;
            };
            let story = story.into();
            let Some(m) = self.story_members.get_mut(&story) else {
                continue;
            };
            if m.front() == Some(&nseq) {
                m.pop_front();
            }
            if m.is_empty() {
                self.story_members.remove(&story);
                if self.story_members.capacity() > 2 * self.story_members.len() + 1024 {
                    self.story_members.shrink_to_fit();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dedup::eval::Rng;

    #[test]
    fn keeping_the_best_as_they_come_lists_what_sorting_all_of_them_lists() {
        let mut rng = Rng(7);
        for n in [0usize, 1, 3, 4, 5, 40, 2000] {
            let mut all: Vec<(u64, f32)> = (0..n as u64)
                // Shares on a coarse grid, so that ties are broken by the number.
                .map(|seq| (seq * 7919 % 100_003, (rng.below(9) as f32) / 8.0))
                .collect();
            let mut kept = Vec::new();
            for &r in &all {
                keep_best(&mut kept, r);
            }
            all.sort_by(reuse_order);
            all.truncate(MAX_REUSE);
            assert_eq!(kept, all, "{n} candidates");
        }
    }
}
