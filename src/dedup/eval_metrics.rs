//! Owns the clustering scores `dropline eval dedup` reports: pairwise precision, recall and F1
//! over same-group pairs, the adjusted Rand index, and the union-find that closes groups.

use std::collections::{HashMap, HashSet};

pub(super) struct UnionFind(Vec<usize>);

impl UnionFind {
    pub(super) fn new(n: usize) -> Self {
        Self((0..n).collect())
    }

    pub(super) fn find(&mut self, mut x: usize) -> usize {
        while self.0[x] != x {
            self.0[x] = self.0[self.0[x]];
            x = self.0[x];
        }
        x
    }

    pub(super) fn union(&mut self, a: usize, b: usize) {
        let (ra, rb) = (self.find(a), self.find(b));
        self.0[ra] = rb;
    }
}

fn same_pairs(groups: &[String]) -> HashSet<(usize, usize)> {
    let mut by: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, g) in groups.iter().enumerate() {
        by.entry(g).or_default().push(i);
    }
    let mut out = HashSet::new();
    for members in by.values() {
        for (x, &i) in members.iter().enumerate() {
            for &j in &members[x + 1..] {
                out.insert((i.min(j), i.max(j)));
            }
        }
    }
    out
}

/// Returns pairwise precision, recall and F1 of `pred` against `gold` (1.0 on empty sets).
pub(super) fn pair_prf(gold: &[String], pred: &[String]) -> (f64, f64, f64) {
    let (g, p) = (same_pairs(gold), same_pairs(pred));
    let tp = g.intersection(&p).count() as f64;
    let precision = if p.is_empty() {
        1.0
    } else {
        tp / p.len() as f64
    };
    let recall = if g.is_empty() {
        1.0
    } else {
        tp / g.len() as f64
    };
    let f1 = if precision + recall > 0.0 {
        2.0 * precision * recall / (precision + recall)
    } else {
        0.0
    };
    (precision, recall, f1)
}

pub(super) fn adjusted_rand(a: &[String], b: &[String]) -> f64 {
    let c2 = |n: usize| (n * n.saturating_sub(1) / 2) as f64;
    let mut cont: HashMap<(&str, &str), usize> = HashMap::new();
    let mut ca: HashMap<&str, usize> = HashMap::new();
    let mut cb: HashMap<&str, usize> = HashMap::new();
    for (x, y) in a.iter().zip(b) {
        *cont.entry((x, y)).or_default() += 1;
        *ca.entry(x).or_default() += 1;
        *cb.entry(y).or_default() += 1;
    }
    let s: f64 = cont.values().map(|&v| c2(v)).sum();
    let sa: f64 = ca.values().map(|&v| c2(v)).sum();
    let sb: f64 = cb.values().map(|&v| c2(v)).sum();
    let n = c2(a.len());
    let expected = if n > 0.0 { sa * sb / n } else { 0.0 };
    let max = (sa + sb) / 2.0;
    if (max - expected).abs() < f64::EPSILON {
        1.0
    } else {
        (s - expected) / (max - expected)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn identical_clusterings_score_one() {
        let a = g(&["x", "x", "y", "z", "z"]);
        assert_eq!(pair_prf(&a, &a), (1.0, 1.0, 1.0));
        assert!((adjusted_rand(&a, &a) - 1.0).abs() < 1e-9);
    }

    #[test]
    fn split_cluster_loses_recall_not_precision() {
        let gold = g(&["x", "x", "x", "y"]);
        let pred = g(&["a", "a", "b", "c"]);
        let (p, r, _) = pair_prf(&gold, &pred);
        assert_eq!(p, 1.0);
        assert!((r - 1.0 / 3.0).abs() < 1e-9);
        assert!(adjusted_rand(&gold, &pred) < 1.0);
    }
}
