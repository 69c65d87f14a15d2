//! Owns the labelled folder `eval dedup` reads and the near-duplicate gold computed from it.

use super::{Doc, UnionFind};
use crate::dedup::{hash128, normalize};
use anyhow::Context as _;
use std::collections::{HashMap, HashSet};

pub(super) fn load(dir: &std::path::Path) -> anyhow::Result<Vec<Doc>> {
    let labels_path = dir.join("labels.csv");
    let labels = std::fs::read_to_string(&labels_path)
        .with_context(|| format!("reading {}", labels_path.display()))?;
    let mut docs = Vec::new();
    for (n, line) in labels.lines().enumerate().skip(1) {
        let cols: Vec<&str> = line.trim().split(',').collect();
        let [name, topic, story] = cols[..] else {
            if line.trim().is_empty() {
                continue;
            }
            anyhow::bail!(
                "{}:{}: expected doc,topic,story",
                labels_path.display(),
                n + 1
            );
        };
        let path = dir.join("docs").join(format!("{name}.txt"));
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        docs.push(Doc {
            name: name.to_string(),
            topic: topic.to_string(),
            id: format!("{:032x}", hash128(&bytes)),
            text: String::from_utf8_lossy(&bytes).into_owned(),
            story: story.to_string(),
        });
    }
    Ok(docs)
}

fn shingle_set(text: &str) -> HashSet<String> {
    let norm = normalize(text);
    let w: Vec<&str> = norm.split(' ').filter(|w| !w.is_empty()).collect();
    if w.len() < 5 {
        return std::iter::once(w.join(" ")).collect();
    }
    w.windows(5).map(|s| s.join(" ")).collect()
}

fn jaccard(a: &HashSet<String>, b: &HashSet<String>) -> f64 {
    let inter = a.intersection(b).count();
    let union = a.len() + b.len() - inter;
    if union == 0 {
        0.0
    } else {
        inter as f64 / union as f64
    }
}

pub(super) fn jaccard5(a: &str, b: &str) -> f64 {
    jaccard(&shingle_set(a), &shingle_set(b))
}

/// Returns each document's gold near-duplicate group (exact 5-gram Jaccard >= 0.7, transitive)
/// as the index of a representative member.
pub(super) fn near_gold(docs: &[&Doc]) -> HashMap<String, usize> {
    let sets: Vec<HashSet<String>> = docs.iter().map(|d| shingle_set(&d.text)).collect();
    let mut uf = UnionFind::new(docs.len());
    for i in 0..docs.len() {
        for j in i + 1..docs.len() {
            if jaccard(&sets[i], &sets[j]) >= 0.7 {
                uf.union(i, j);
            }
        }
    }
    docs.iter()
        .enumerate()
        .map(|(i, d)| (d.name.clone(), uf.find(i)))
        .collect()
}
