//! Owns the learned story join decision: a small logistic model over a document and its best
//! candidate story (the centroid cosine, the second story's, the story's size) that says how
//! likely joining is right, and vetoes the joins the cosine threshold lets through below a
//! probability bar.
//!
//! The features cost a few multiply-adds from what ranking already computed. `eval dedup --cv`
//! with `DROPLINE_STORY_JOIN=learned` fits the weights per fold on join events replayed on the
//! training topics (`story_join_fit.rs`). None are shipped: in that CV the veto lowered story
//! F1 and ARI (sorted and shuffled), and so did the model in place of the threshold, so the
//! cosine threshold alone is the decision and [`super::DedupConfig::story_join`] is `None`.

use super::story::Match;

/// Features of a (document, best story) pair, in the order of [`JoinModel::weights`] (the
/// bias last).
pub const FEATURES: [&str; 5] = [
    "similarity",
    "second_similarity",
    "log_size",
    "similarity_log_size",
    "margin_log_size",
];

/// Below this centroid cosine a document never joins (and no join event is collected).
pub const MIN_SIMILARITY: f32 = 0.1;

/// Members of a story counted for its size, at most (the deduper keeps this many).
pub const MAX_SIZE: usize = 32;

/// Logistic weights over [`FEATURES`], then the bias.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JoinModel {
    pub weights: [f32; FEATURES.len() + 1],
}

/// Returns the features of joining `ranked[0]`, a story of `size` members (capped at
/// [`MAX_SIZE`]).
pub fn features(ranked: &[Match], size: usize) -> [f32; FEATURES.len()] {
    let s1 = ranked.first().map_or(0.0, |m| m.similarity);
    let s2 = ranked.get(1).map_or(0.0, |m| m.similarity);
    let log_size = (1.0 + size.min(MAX_SIZE) as f32).ln();
    [s1, s2, log_size, s1 * log_size, (s1 - s2) * log_size]
}

impl JoinModel {
    /// The modelled probability that joining is right.
    pub fn probability(&self, x: &[f32; FEATURES.len()]) -> f32 {
        let z = x
            .iter()
            .zip(&self.weights)
            .fold(self.weights[FEATURES.len()], |z, (x, w)| z + x * w);
        1.0 / (1.0 + (-z).exp())
    }

    /// Returns the story a document ranked `ranked` joins: the best one, when its cosine is at
    /// least `min_similarity` (and [`MIN_SIMILARITY`]) and the model's probability at least
    /// `min_probability` (a veto on the cosine threshold's joins); `size` gives a story's
    /// member count.
    pub fn choose(
        &self,
        ranked: &[Match],
        size: impl Fn(u128) -> usize,
        min_probability: f32,
        min_similarity: f32,
    ) -> Option<u128> {
        let bar = min_similarity.max(MIN_SIMILARITY);
        let best = ranked.first().filter(|m| m.similarity >= bar)?;
        let x = features(ranked, size(best.story));
        (self.probability(&x) >= min_probability).then_some(best.story)
    }
}

/// One join event: the features of a document and its best story, and whether the story was
/// of the document's gold story.
pub type Sample = ([f32; FEATURES.len()], bool);

/// Fits the weights by Newton's method (iteratively reweighted least squares) with an L2
/// penalty `l2` on the weights (not the bias), in f64 and sample order: the same samples give
/// the same weights.
pub fn fit(samples: &[Sample], l2: f64) -> JoinModel {
    const N: usize = FEATURES.len() + 1;
    let mut w = [0.0f64; N];
    let row = |x: &[f32; FEATURES.len()]| -> [f64; N] {
        let mut r = [1.0f64; N];
        for (r, &x) in r.iter_mut().zip(x) {
            *r = f64::from(x);
        }
        r
    };
    for _ in 0..50 {
        let mut grad = [0.0f64; N];
        let mut hess = [[0.0f64; N]; N];
        for (x, y) in samples {
            let r = row(x);
            let z: f64 = r.iter().zip(&w).map(|(a, b)| a * b).sum();
            let p = 1.0 / (1.0 + (-z).exp());
            let g = p - f64::from(u8::from(*y));
            let h = (p * (1.0 - p)).max(1e-9);
            for i in 0..N {
                grad[i] += g * r[i];
                for j in 0..N {
                    hess[i][j] += h * r[i] * r[j];
                }
            }
        }
        for i in 0..N - 1 {
            grad[i] += l2 * w[i];
            hess[i][i] += l2;
        }
        hess[N - 1][N - 1] += 1e-9;
        let step = solve(hess, grad);
        let mut moved = 0.0f64;
        for (w, s) in w.iter_mut().zip(&step) {
            *w -= s;
            moved = moved.max(s.abs());
        }
        if moved < 1e-10 {
            break;
        }
    }
    let mut weights = [0.0f32; N];
    for (o, w) in weights.iter_mut().zip(&w) {
        *o = *w as f32;
    }
    JoinModel { weights }
}

/// Solves `a x = b` by Gaussian elimination with partial pivoting.
fn solve<const N: usize>(mut a: [[f64; N]; N], mut b: [f64; N]) -> [f64; N] {
    for c in 0..N {
        let p = (c..N)
            .max_by(|&i, &j| a[i][c].abs().total_cmp(&a[j][c].abs()))
            .unwrap_or(c);
        a.swap(c, p);
        b.swap(c, p);
        let d = a[c][c];
        if d.abs() < 1e-300 {
            continue;
        }
        let pivot = a[c];
        for r in c + 1..N {
            let f = a[r][c] / d;
            for (x, p) in a[r][c..].iter_mut().zip(&pivot[c..]) {
                *x -= f * p;
            }
            b[r] -= f * b[c];
        }
    }
    let mut x = [0.0f64; N];
    for c in (0..N).rev() {
        let s: f64 = (c + 1..N).map(|k| a[c][k] * x[k]).sum();
        x[c] = if a[c][c].abs() < 1e-300 {
            0.0
        } else {
            (b[c] - s) / a[c][c]
        };
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(story: u128, similarity: f32) -> Match {
        Match { story, similarity }
    }

    #[test]
    fn features_read_the_best_two_stories_and_the_capped_size() {
        let x = features(&[m(7, 0.5), m(3, 0.2)], 100);
        let ls = (33.0f32).ln();
        assert_eq!(x, [0.5, 0.2, ls, 0.5 * ls, (0.5 - 0.2) * ls]);
        assert_eq!(features(&[], 0), [0.0; 5]);
    }

    #[test]
    fn a_fit_separates_high_from_low_similarity_and_replays() {
        // Joins above a cosine of 0.4 right, below it wrong, one label flipped either side.
        let mut s: Vec<Sample> = (0..40)
            .map(|i| {
                let sim = 0.1 + i as f32 * 0.02;
                (features(&[m(1, sim), m(2, 0.1)], 3), sim > 0.4)
            })
            .collect();
        s[3].1 = true;
        s[35].1 = false;
        let model = fit(&s, 0.1);
        assert_eq!(
            fit(&s, 0.1),
            model,
            "the same samples give the same weights"
        );
        let p = |sim: f32| model.probability(&features(&[m(1, sim), m(2, 0.1)], 3));
        assert!(p(0.2) < 0.2 && p(0.7) > 0.8, "{} {}", p(0.2), p(0.7));
        assert_eq!(
            model.choose(&[m(1, 0.7), m(2, 0.1)], |_| 3, 0.5, 0.0),
            Some(1)
        );
        assert_eq!(model.choose(&[m(1, 0.2), m(2, 0.1)], |_| 3, 0.5, 0.0), None);
        // Below MIN_SIMILARITY nothing is joined, whatever the model says.
        let always = JoinModel {
            weights: [0.0, 0.0, 0.0, 0.0, 0.0, 10.0],
        };
        assert_eq!(always.choose(&[m(1, 0.05)], |_| 3, 0.5, 0.0), None);
        assert_eq!(always.choose(&[m(1, 0.15)], |_| 3, 0.5, 0.0), Some(1));
    }
}
