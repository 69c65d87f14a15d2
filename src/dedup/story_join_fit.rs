//! Fits the learned story join decision ([`crate::dedup::story_join`]) inside `eval dedup --cv`
//! (with `DROPLINE_STORY_JOIN=learned`): join events are replayed on each training fold run
//! alone (with its prior, under the cosine threshold chosen for the fold), the probability bar
//! is chosen by scoring each training fold with a model fitted on the other training folds'
//! events, and the held-out fold is scored with a model fitted on every training fold's events.

use super::super::{run_docs, score, Doc};
use super::{tune, StoryGroup};
use crate::dedup::prepared::prepare;
use crate::dedup::story_join::{self, features, JoinModel, Sample, MIN_SIMILARITY};
use crate::dedup::{DedupConfig, Deduper, Tier};
use std::collections::HashMap;

/// Probability bars tried.
/// 0 turns the veto off: the cosine threshold alone.
pub(super) const JOIN_GRID: [f32; 12] = [
    0.0, 0.3, 0.4, 0.5, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95,
];

/// L2 penalties tried (features are cosines and log sizes, of order one; a few hundred events).
pub(super) const L2_GRID: [f64; 3] = [0.001, 0.03, 1.0];

/// Whether `eval dedup --cv` fits the learned join (`DROPLINE_STORY_JOIN=learned`).
pub(super) fn learned() -> bool {
    std::env::var("DROPLINE_STORY_JOIN").as_deref() == Ok("learned")
}

/// Replays `docs` with `c` and returns a join event for every document decided unique whose
/// best story's cosine is at least [`MIN_SIMILARITY`]: its features, and whether the story's
/// founding document is of the document's gold story.
pub(super) fn collect(c: &DedupConfig, docs: &[&Doc]) -> Vec<Sample> {
    let mut d = Deduper::new(c);
    let mut founder: HashMap<u128, &str> = HashMap::new();
    let mut out = Vec::new();
    for doc in docs {
        let (_, tier) = d.check(&doc.id, &doc.text);
        if tier == Tier::Unique {
            let terms = prepare(&doc.id, &doc.text).terms;
            let idfs = d.stories.idfs(&terms);
            let v = d.stories.vector_with(&terms, &idfs);
            let ranked = d.stories.rank_with(&v, &terms, &idfs);
            if let Some(best) = ranked.first().filter(|m| m.similarity >= MIN_SIMILARITY) {
                let x = features(&ranked, d.story_size(best.story));
                let right = founder.get(&best.story) == Some(&doc.story.as_str());
                out.push((x, right));
            }
        }
        let (info, _) = d.observe(&doc.id, &doc.text);
        let story = info
            .story
            .as_deref()
            .and_then(|s| u128::from_str_radix(s, 16).ok())
            .unwrap_or(0);
        founder.entry(story).or_insert(doc.story.as_str());
    }
    out
}

/// What the learned join chose for a fold.
pub(super) struct JoinChoice {
    pub model: JoinModel,
    pub l2: f64,
    pub min_probability: f32,
    pub events: usize,
    pub right: usize,
}

/// Chooses the learned join for a held-out fold from its training `groups`, `c` holding the
/// fold's other settings (its cosine threshold replays the events).
pub(super) fn choose(c: &DedupConfig, groups: &[StoryGroup]) -> JoinChoice {
    let with_prior = |g: &StoryGroup| DedupConfig {
        story_df_prior: g.prior.clone(),
        ..c.clone()
    };
    let events: Vec<Vec<Sample>> = groups
        .iter()
        .map(|g| {
            let mut e = collect(&with_prior(g), &g.docs);
            // Only joins the cosine threshold lets through are the model's to veto.
            e.retain(|s| s.0[0] >= c.story_threshold);
            e
        })
        .collect();
    let others = |i: usize| -> Vec<Sample> {
        events
            .iter()
            .enumerate()
            .filter(|&(j, _)| j != i)
            .flat_map(|(_, e)| e.iter().copied())
            .collect()
    };
    let mut quiet = String::new();
    let mut best: Option<(f64, f64, f32)> = None;
    for l2 in L2_GRID {
        let inner: Vec<JoinModel> = (0..groups.len())
            .map(|i| story_join::fit(&others(i), l2))
            .collect();
        let score_at = |p: f32, quiet: &mut String| -> f64 {
            let total: f64 = groups
                .iter()
                .zip(&inner)
                .map(|(g, m)| {
                    let t = DedupConfig {
                        story_join: Some(*m),
                        story_join_min_probability: p,
                        ..with_prior(g)
                    };
                    score(&run_docs(&t, g.docs.clone(), &g.gold), None, false, quiet).story_score()
                })
                .sum();
            total / groups.len().max(1) as f64
        };
        let p = tune(&JOIN_GRID, c.story_join_min_probability, |p| {
            score_at(p, &mut quiet)
        });
        let s = score_at(p, &mut quiet);
        // Ties keep the smaller penalty tried first.
        if best.is_none_or(|(b, _, _)| s > b + 1e-9) {
            best = Some((s, l2, p));
        }
    }
    let (_, l2, min_probability) = best.unwrap_or((0.0, L2_GRID[0], 0.5));
    let all: Vec<Sample> = events.iter().flatten().copied().collect();
    JoinChoice {
        model: story_join::fit(&all, l2),
        l2,
        min_probability,
        events: all.len(),
        right: all.iter().filter(|s| s.1).count(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(name: &str, story: &str, text: &str) -> Doc {
        Doc {
            name: name.into(),
            topic: "1".into(),
            id: name.into(),
            text: text.into(),
            story: story.into(),
        }
    }

    #[test]
    fn join_events_are_labelled_by_the_founders_gold_story() {
        let docs = [
            doc(
                "1_1",
                "a",
                "Police arrested Maria Lopez in Madrid after the bank robbery on Monday.",
            ),
            doc(
                "1_2",
                "a",
                "Maria Lopez was arrested by Madrid police after Monday's bank robbery.",
            ),
            doc(
                "1_3",
                "b",
                "Madrid police arrested Maria Lopez again after a second bank robbery in June.",
            ),
            doc(
                "1_4",
                "c",
                "Floods closed the river road and schools stayed shut for days.",
            ),
        ];
        let refs: Vec<&Doc> = docs.iter().collect();
        let c = DedupConfig {
            story_threshold: 0.1,
            ..DedupConfig::default()
        };
        let events = collect(&c, &refs);
        // 1_2 and 1_3 find 1_1's story; the flood report shares no word with it.
        assert_eq!(events.len(), 2, "{events:?}");
        assert!(events[0].1, "1_2 is of the founder's gold story");
        assert!(!events[1].1, "1_3 is of another gold story");
        assert!(events.iter().all(|(x, _)| x[0] >= MIN_SIMILARITY));
        // 1_3 sees a story of two members (1_2 joined it).
        assert_eq!(events[1].0[2], 3.0f32.ln());
    }
}
