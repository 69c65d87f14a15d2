//! The averaged-perceptron trainer over the dense layout the tagger's [`Stage`] is built from.

use super::*;

/// Averaged-perceptron training state over the same dense layout as [`Stage`].
pub struct Trainer {
    pub bits: u32,
    /// Leading positions of each token's buckets read (see [`Stage::with_templates`]).
    templates: usize,
    w: Vec<i32>,
    /// Sum of `step * update`, so the average is `w - u / step`.
    u: Vec<i64>,
    tw: Vec<i32>,
    tu: Vec<i64>,
    step: i64,
    em: Vec<f32>,
    back: Vec<u8>,
}

impl Trainer {
    /// Returns a zeroed trainer with `2^bits` rows.
    pub fn new(bits: u32) -> Self {
        Self::with_templates(bits, N_FEATURES)
    }

    /// Returns a zeroed trainer with `2^bits` rows reading the first `templates` positions
    /// of each token's buckets.
    pub fn with_templates(bits: u32, templates: usize) -> Self {
        let rows = 1usize << bits;
        Self {
            bits,
            templates: templates.clamp(1, N_FEATURES),
            w: vec![0; rows * N_TAGS],
            u: vec![0; rows * N_TAGS],
            tw: vec![0; (N_TAGS + 1) * N_TAGS],
            tu: vec![0; (N_TAGS + 1) * N_TAGS],
            step: 1,
            em: Vec::new(),
            back: Vec::new(),
        }
    }

    /// Decodes with the current (not averaged) weights, updates towards `gold`, and returns
    /// the number of wrong tags.
    pub fn learn(&mut self, feats: &[u32], gold: &[u8], pred: &mut Vec<u8>) -> usize {
        self.em.clear();
        let used = self.templates;
        for tok in feats.chunks_exact(N_FEATURES) {
            let mut acc = [0i32; N_TAGS];
            for &b in &tok[..used] {
                let row = &self.w[b as usize * N_TAGS..(b as usize + 1) * N_TAGS];
                for (a, &w) in acc.iter_mut().zip(row) {
                    *a += w;
                }
            }
            self.em.extend(acc.iter().map(|&a| a as f32));
        }
        let trans: Vec<f32> = self.tw.iter().map(|&t| t as f32).collect();
        viterbi(&self.em, &trans, &mut self.back, pred);
        let mut wrong = 0;
        let step = self.step;
        for i in 0..gold.len() {
            let (g, p) = (gold[i] as usize, pred[i] as usize);
            let gp = if i == 0 { START } else { gold[i - 1] as usize };
            let pp = if i == 0 { START } else { pred[i - 1] as usize };
            if g != p {
                wrong += 1;
                for &b in &feats[i * N_FEATURES..][..used] {
                    let base = b as usize * N_TAGS;
                    self.w[base + g] += 1;
                    self.u[base + g] += step;
                    self.w[base + p] -= 1;
                    self.u[base + p] -= step;
                }
            }
            if g != p || gp != pp {
                self.tw[gp * N_TAGS + g] += 1;
                self.tu[gp * N_TAGS + g] += step;
                self.tw[pp * N_TAGS + p] -= 1;
                self.tu[pp * N_TAGS + p] -= step;
            }
        }
        self.step += 1;
        wrong
    }

    /// Returns the averaged weights as a stage.
    pub fn averaged(&self) -> Stage {
        average_of(std::slice::from_ref(self))
    }
}

/// Returns the mean of several trainers' averaged weights (a bagged ensemble folded into one
/// table, so tagging costs the same as with one model).
pub fn average_of(trainers: &[Trainer]) -> Stage {
    let first = &trainers[0];
    let mut w = vec![0f32; first.w.len()];
    let mut t = vec![0f32; first.tw.len()];
    let k = trainers.len() as f64;
    for tr in trainers {
        let c = tr.step as f64;
        for ((o, &x), &u) in w.iter_mut().zip(&tr.w).zip(&tr.u) {
            *o += ((f64::from(x) - u as f64 / c) / k) as f32;
        }
        for ((o, &x), &u) in t.iter_mut().zip(&tr.tw).zip(&tr.tu) {
            *o += ((f64::from(x) - u as f64 / c) / k) as f32;
        }
    }
    Stage::from_floats(first.bits, &w, t).with_templates(first.templates)
}
