//! Owns the candidate checks of a decision: verifying LSH candidates as near-copies and aligning
//! the document with candidates (LSH and recent story members) for rewrites and reuse.

use super::align::{Alignment, Gate, Probe, Scratch};
use super::minhash::Compact;
use super::rewrite_model::MIN_COVERED;
use super::{story, Deduper, Tier, REWRITE_STORIES};

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

    /// Aligns the document with its candidates that still have a sketch: the LSH candidates
    /// and the recent members of the best-matching stories, in near-index order.
    pub(super) fn align(
        &self,
        probe: &Probe,
        mut cands: Vec<u64>,
        ranked: &[story::Match],
    ) -> Vec<(u64, Alignment)> {
        if probe.sketch().sentence_count() == 0 {
            return Vec::new();
        }
        for m in ranked.iter().take(REWRITE_STORIES) {
            if let Some(members) = self.story_members.get(&m.story.into()) {
                cands.extend(members.iter().copied());
            }
        }
        cands.sort_unstable();
        cands.dedup();
        let mut scratch = Scratch::default();
        // Only the rewrite model's score and `shared` are read (`best_rewrite`, reuse).
        let gate = Gate {
            min_words: self.config.rewrite_floor(),
            min_reworded: self.config.rewrite_min_reworded,
        };
        let overlap = self.config.align_overlap;
        cands
            .into_iter()
            .filter_map(|c| {
                let old = self.sketches.get(c)?;
                let a = probe.align_gated(old, overlap, MIN_COVERED, Some(gate), &mut scratch);
                Some((c, a))
            })
            .collect()
    }

    /// Returns the best rewrite among the aligned candidates: (tier, id, story, model score).
    pub(super) fn best_rewrite(
        &self,
        aligned: &[(u64, Alignment)],
    ) -> Option<(Tier, u128, u128, f32)> {
        let mut best: Option<(Tier, u128, u128, f32)> = None;
        for (seq, a) in aligned {
            let cov = self.config.rewrite_model.score(
                a,
                self.config.rewrite_floor(),
                self.config.rewrite_min_reworded,
            );
            if cov >= self.config.rewrite_bar(a) && best.is_none_or(|b| cov > b.3) {
                if let Some((id, story)) = self.near_ids(*seq) {
                    best = Some((Tier::Rewrite, id, story, cov));
                }
            }
        }
        best
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
