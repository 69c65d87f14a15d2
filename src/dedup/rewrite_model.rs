//! Owns the rewrite decision: a small logistic model over how a new document's aligned
//! sentences differ from an earlier document's, which tells a spun copy (every sentence kept,
//! content words substituted in place) from another version of one wire story (sentences kept
//! verbatim, clauses inserted or cut, sentences added or dropped) at the same coverage.
//!
//! The features come from [`super::align::Probe::align`] (one pass over the candidate pair, no
//! allocation per sentence); the weights below are fitted by `dropline eval dedup DIR
//! --fit-rewrite` ([`super::rewrite_fit`]) on synthetic rewrites of the folder's articles as
//! positives and the folder's real same-topic article pairs as negatives.

use super::align::Alignment;

/// Features of an alignment, in the order of [`RewriteModel::weights`] (the bias last).
pub const FEATURES: [&str; 20] = [
    "covered_new",
    "covered_old",
    "reworded",
    "substituted",
    "inserted_deleted",
    "merged",
    "out_of_order",
    "placed_new",
    "placed_old",
    "clustered",
    "clustered_beyond_chance",
    "substitution_share",
    "merged_squared",
    "out_of_order_squared",
    "lacking",
    "placed_min",
    "placed_max",
    "covered_min",
    "covered_product",
    "clustered_beyond_chance_reworded",
];

/// Below this share of the new document's words in the sentence matching the model is not
/// consulted (no rewrite): the alignment stops early below it.
pub const MIN_COVERED: f32 = 0.5;

/// Matches a matching below `rewrite_min_words` must hold to be scored in the short band: with
/// one sentence on each side the coverage and placement features are 1 whatever the texts, and
/// an editor's rewording of a one-sentence report looks like a spun copy of it.
pub const SHORT_MIN_MATCHES: usize = 2;

/// Logistic weights over [`FEATURES`], then the bias.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RewriteModel {
    pub weights: [f32; FEATURES.len() + 1],
}

/// The shipped weights: `dropline eval dedup ../shared/data/dedup/ecbplus-dev --fit-rewrite`
/// prints them (fitted on every topic of the folder; `--cv` refits them per fold).
pub const SHIPPED: RewriteModel = RewriteModel {
    weights: [
        1.3797, 0.9309, 3.4986, -0.4128, -0.0484, -0.9051, -0.6457, 2.1095, 1.4885, -2.3354,
        -4.1258, -0.5685, -0.7265, -0.7242, 1.7904, 2.5172, 1.0808, 1.9126, 1.9701, -3.2299,
        -11.8806,
    ],
};

impl Default for RewriteModel {
    fn default() -> Self {
        SHIPPED
    }
}

/// Returns the features of an alignment.
pub fn features(a: &Alignment) -> [f32; FEATURES.len()] {
    [
        a.covered_new,
        a.covered_old,
        a.reworded,
        a.substituted,
        a.inserted_deleted,
        a.merged,
        a.out_of_order,
        a.placed_new,
        a.placed_old,
        a.clustered,
        a.clustered - a.lacking,
        // A spinner's edits are substitutions in place; an editor's are clauses cut or added
        // (a merge adds only a conjunction, a stop word).
        if a.substituted + a.inserted_deleted > 0.0 {
            a.substituted / (a.substituted + a.inserted_deleted)
        } else {
            0.0
        },
        // A few sentences merged or moved is an edited copy; most of them, another text.
        a.merged * a.merged,
        a.out_of_order * a.out_of_order,
        a.lacking,
        // How much of the text both sides keep in place (a copy keeps both; a later version
        // of a wire story adds to one side or cuts from it), and the same for the matching
        // alone, also as a product: a linear model cannot tell "both high" from "one very
        // high" otherwise.
        a.placed_new.min(a.placed_old),
        a.placed_new.max(a.placed_old),
        a.covered_new.min(a.covered_old),
        a.covered_new * a.covered_old,
        // Edits in runs weigh by how much of the matching was edited at all.
        (a.clustered - a.lacking) * a.reworded,
    ]
}

impl RewriteModel {
    /// Returns the model's probability that the alignment is a reworded copy: 0 when the
    /// matching holds fewer than `min_words` content words, when fewer than `min_reworded` of
    /// them are in reworded sentences, or when it covers less than [`MIN_COVERED`] of the new
    /// document.
    pub fn score(&self, a: &Alignment, min_words: usize, min_reworded: f32) -> f32 {
        if a.aligned_words < min_words || a.reworded < min_reworded || a.covered_new < MIN_COVERED {
            return 0.0;
        }
        self.probability(&features(a))
    }

    /// Returns the logistic of the weighted features.
    pub fn probability(&self, x: &[f32; FEATURES.len()]) -> f32 {
        let (w, bias) = self.weights.split_at(FEATURES.len());
        let z: f32 = w.iter().zip(x).map(|(w, x)| w * x).sum::<f32>() + bias[0];
        crate::logistic::sigmoid_f32(z)
    }
}

/// Longest sentence (content words, the two parts of a merge together) the edit script looks
/// at; longer ones are cut (the script's row lives on the stack).
const MAX_SCRIPT: usize = 128;

/// The word-level edit distance between two word sequences, each given as up to two parts (a
/// merged or split pair is its two sentences one after the other): the substitutions,
/// insertions and deletions that turn one into the other at unit cost. Returns (in-place
/// substitutions, insertions plus deletions): the length difference is taken as inserted or
/// deleted, the rest of the distance as substituted.
pub fn edit_script(new: [&[u16]; 2], old: [&[u16]; 2]) -> (usize, usize) {
    let at = |s: [&[u16]; 2], x: usize| {
        if x < s[0].len() {
            s[0][x]
        } else {
            s[1][x - s[0].len()]
        }
    };
    let nl = (new[0].len() + new[1].len()).min(MAX_SCRIPT);
    let ol = (old[0].len() + old[1].len()).min(MAX_SCRIPT);
    // One row of the dynamic programme over the old words.
    let mut row = [0u16; MAX_SCRIPT + 1];
    for (y, r) in row.iter_mut().enumerate().take(ol + 1) {
        *r = y as u16;
    }
    for x in 0..nl {
        let w = at(new, x);
        let mut diag = row[0];
        row[0] = x as u16 + 1;
        for y in 0..ol {
            let sub = diag + u16::from(at(old, y) != w);
            diag = row[y + 1];
            row[y + 1] = sub.min(row[y] + 1).min(diag + 1);
        }
    }
    let dist = usize::from(row[ol]);
    let indel = nl.abs_diff(ol);
    (dist.saturating_sub(indel), indel)
}

/// Counts the words of `a` (in up to two parts) that `b` lacks, and how many of those follow
/// another such word: a spinner's substitutions stand alone, an editor's cut or added clause
/// is a run. Returns (lacking, following a lacking word).
pub fn runs(a: [&[u16]; 2], b: [&[u16]; 2]) -> (usize, usize) {
    let (mut lacking, mut following, mut prev) = (0, 0, false);
    for &w in a[0].iter().chain(a[1]).take(MAX_SCRIPT) {
        let absent = !b[0].contains(&w) && !b[1].contains(&w);
        lacking += usize::from(absent);
        following += usize::from(absent && prev);
        prev = absent;
    }
    (lacking, following)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_script_tells_substitution_from_insertion() {
        let old: &[u16] = &[1, 2, 3, 4, 5, 6];
        // Two words replaced in place.
        assert_eq!(edit_script([&[1, 9, 3, 4, 8, 6], &[]], [old, &[]]), (2, 0));
        // A clause of three words inserted.
        assert_eq!(
            edit_script([&[1, 2, 3, 7, 8, 9, 4, 5, 6], &[]], [old, &[]]),
            (0, 3)
        );
        // Two words cut, one replaced; a merge given in two parts.
        assert_eq!(
            edit_script([&[1, 2, 9], &[6]], [&[1, 2, 3], &[4, 5, 6]]),
            (1, 2)
        );
        assert_eq!(edit_script([old, &[]], [old, &[]]), (0, 0));
    }

    #[test]
    fn runs_count_words_after_a_missing_one() {
        let old: &[u16] = &[1, 2, 3, 4, 5, 6];
        assert_eq!(runs([&[1, 9, 3, 8, 5, 6], &[]], [old, &[]]), (2, 0));
        assert_eq!(runs([&[1, 2, 7, 8, 9, 6], &[]], [old, &[]]), (3, 2));
    }

    #[test]
    fn score_is_zero_below_the_gates() {
        let m = RewriteModel {
            weights: [0.0; FEATURES.len() + 1],
        };
        let mut m = m;
        m.weights[FEATURES.len()] = 10.0;
        let a = Alignment {
            covered_new: 0.9,
            aligned_words: 100,
            reworded: 1.0,
            ..Alignment::default()
        };
        assert!(m.score(&a, 40, 0.5) > 0.99);
        assert_eq!(m.score(&a, 200, 0.5), 0.0);
        let low = Alignment {
            covered_new: 0.3,
            ..a
        };
        assert_eq!(m.score(&low, 40, 0.5), 0.0);
    }
}
