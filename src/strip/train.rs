//! Owns fitting the line model on a training folder (text/ + gold/), e.g. wcxb-train; never on wcxb-dev.
//!
//! Rebuild the shipped weights (`src/strip/line_model.txt`) with:
//! `DROPLINE_STRIP_TRAIN=../shared/data/boilerplate/wcxb-train cargo test --release --lib strip::train -- --ignored`

use super::classify::{features, LineModel, FEATURES, N_FEATURES};
use super::lines::analyse;
use super::metric::label_lines;
use crate::logistic::{sigmoid, Standardiser};
use std::path::Path;

/// Feature vectors, labels and sample weights of every line in a folder.
fn samples(dir: &Path) -> (Vec<[f32; N_FEATURES]>, Vec<f32>, Vec<f32>) {
    let mut ids: Vec<_> = std::fs::read_dir(dir.join("gold"))
        .expect("training folder has gold/")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    ids.sort();
    let (mut xs, mut ys, mut ws) = (Vec::new(), Vec::new(), Vec::new());
    let (mut lines, mut feats) = (Vec::new(), Vec::new());
    for gold_path in ids {
        let name = gold_path.file_name().expect("file has a name");
        let Ok(text) = std::fs::read_to_string(dir.join("text").join(name)) else {
            continue;
        };
        let gold = std::fs::read_to_string(&gold_path).expect("gold is UTF-8");
        analyse(&text, &mut lines);
        let mut shapes: Vec<u64> = lines.iter().map(|l| l.shape).collect();
        shapes.sort_unstable();
        let dup: Vec<bool> = lines
            .iter()
            .map(|l| {
                shapes.partition_point(|s| *s <= l.shape) - shapes.partition_point(|s| *s < l.shape)
                    > 1
            })
            .collect();
        features(&lines, &dup, &mut feats);
        let labels = label_lines(&text, &lines, &gold);
        for ((x, y), l) in feats.iter().zip(labels).zip(&lines) {
            xs.push(*x);
            ys.push(if y { 1.0 } else { 0.0 });
            ws.push((1.0 + l.words as f32).sqrt());
        }
    }
    (xs, ys, ws)
}

/// Fits L2-regularised logistic regression by full-batch gradient descent with momentum.
pub fn fit(xs: &[[f32; N_FEATURES]], ys: &[f32], ws: &[f32], epochs: usize) -> LineModel {
    // Standardise features (the bias stays 1) so one step size fits all, then map weights back.
    let std = Standardiser::fit(xs.iter(), 1e-6);
    let wsum: f64 = ws.iter().map(|w| f64::from(*w)).sum();
    let mut w = [0f64; N_FEATURES];
    let mut vel = [0f64; N_FEATURES];
    let (lr, momentum, l2) = (0.5, 0.9, 1e-4);
    let mut z = [0f64; N_FEATURES];
    for _ in 0..epochs {
        let mut grad = [0f64; N_FEATURES];
        for ((x, y), sw) in xs.iter().zip(ys).zip(ws) {
            std.apply(x, &mut z);
            let s: f64 = w.iter().zip(&z).map(|(a, b)| a * b).sum();
            let p = sigmoid(s);
            let g = (p - f64::from(*y)) * f64::from(*sw) / wsum;
            for j in 0..N_FEATURES {
                grad[j] += g * z[j];
            }
        }
        for j in 0..N_FEATURES {
            let reg = if j == 0 { 0.0 } else { l2 * w[j] };
            vel[j] = momentum * vel[j] - lr * (grad[j] + reg);
            w[j] += vel[j];
        }
    }
    LineModel {
        weights: std.raw_weights(&w),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_follow_the_gold_text() {
        let text = "Home\nNews\nThe first paragraph has enough words to count.\nSubhead\nThe second paragraph has enough words too.\nShare this";
        let gold = "The first paragraph has enough words to count.\n\nSubhead\n\nThe second paragraph has enough words too.";
        let mut lines = Vec::new();
        analyse(text, &mut lines);
        assert_eq!(
            label_lines(text, &lines, gold),
            [false, false, true, true, true, false]
        );
    }

    #[test]
    fn fit_separates_a_trivial_problem() {
        let mut xs = Vec::new();
        let mut ys = Vec::new();
        for i in 0..200 {
            let mut x = [0f32; N_FEATURES];
            x[0] = 1.0;
            x[1] = (i % 2) as f32 * 3.0;
            xs.push(x);
            ys.push((i % 2) as f32);
        }
        let ws = vec![1.0; xs.len()];
        let m = fit(&xs, &ys, &ws, 300);
        assert!(m.probability(&xs[1]) > 0.9 && m.probability(&xs[0]) < 0.1);
    }

    /// Rebuilds `src/strip/line_model.txt` from the folder named by `DROPLINE_STRIP_TRAIN`.
    #[test]
    #[ignore = "needs the training folder; rebuilds the shipped weights"]
    fn fit_line_model() {
        let dir = std::env::var("DROPLINE_STRIP_TRAIN")
            .expect("set DROPLINE_STRIP_TRAIN to a text/ + gold/ folder");
        let (xs, ys, ws) = samples(Path::new(&dir));
        assert!(!xs.is_empty(), "no training lines found");
        let m = fit(&xs, &ys, &ws, 1500);
        let correct = xs
            .iter()
            .zip(&ys)
            .filter(|(x, y)| (m.probability(x) >= 0.5) == (**y >= 0.5))
            .count();
        let header = format!(
            "# logistic line model over {} features, fitted on {} lines of {dir}\n# training accuracy {:.4}\n# rebuild: DROPLINE_STRIP_TRAIN={dir} cargo test --release --lib strip::train -- --ignored\n",
            FEATURES.len(),
            xs.len(),
            correct as f64 / xs.len() as f64
        );
        let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/strip/line_model.txt");
        std::fs::write(&out, header + &m.render()).expect("weights written");
    }
}
