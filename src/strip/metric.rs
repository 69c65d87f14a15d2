//! Owns the article-extraction benchmark metric: 4-gram shingle multisets of `\w+` tokens.
//!
//! A port of the ScrapingHub article-extraction-benchmark `evaluate.py` (as in
//! `../shared/tools/score_strip.py`): per-document TP/FP/FN normalised to sum to one, precision and
//! recall averaged over documents, F1 of the averages.

use std::collections::HashMap;
use xxhash_rust::xxh3::Xxh3;

/// Returns the `\w+` tokens of `text` (Unicode letters, digits, marks and `_`).
pub fn tokens(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !is_word_char(c))
        .filter(|t| !t.is_empty())
}

/// Returns whether `c` matches Python's `\w`.
#[inline]
pub fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || (!c.is_ascii() && is_mark(c))
}

fn is_mark(c: char) -> bool {
    // Combining marks that Python's `\w` accepts (common Latin/Devanagari/Arabic ranges).
    matches!(c as u32, 0x300..=0x36F | 0x483..=0x489 | 0x591..=0x5BD | 0x610..=0x61A | 0x64B..=0x65F | 0x900..=0x903 | 0x93A..=0x94F | 0x1AB0..=0x1AFF | 0x1DC0..=0x1DFF | 0x20D0..=0x20FF | 0xFE20..=0xFE2F)
}

/// Returns the hash of one shingle, the tokens `toks` in order (as [`shingles`] hashes them).
pub fn shingle_hash(toks: &[&str]) -> u64 {
    let mut h = Xxh3::new();
    for t in toks {
        h.update(t.as_bytes());
        h.update(&[0]);
    }
    h.digest()
}

/// Returns the hashes of the token n-grams (`n`-shingles) of `toks`; fewer than `n` tokens give one shorter shingle.
pub fn shingles(toks: &[&str], n: usize) -> Vec<u64> {
    let hash = shingle_hash;
    if toks.is_empty() {
        return Vec::new();
    }
    if toks.len() < n {
        return vec![hash(toks)];
    }
    toks.windows(n).map(hash).collect()
}

/// Labels each line: content when most token 4-grams overlapping it (across line ends) occur in the gold text.
///
/// Looking across line ends lets a short subheading count as content only where the gold text
/// has it between the same neighbours.
pub fn label_lines(text: &str, lines: &[super::lines::Line], gold: &str) -> Vec<bool> {
    let gold_toks: Vec<&str> = tokens(gold).collect();
    let gold_set: std::collections::HashSet<u64> = shingles(&gold_toks, 4).into_iter().collect();
    let mut toks = Vec::new();
    let mut ranges = Vec::with_capacity(lines.len());
    for l in lines {
        let a = toks.len();
        toks.extend(tokens(l.text(text)));
        ranges.push((a, toks.len()));
    }
    let in_gold: Vec<bool> = shingles(&toks, 4)
        .into_iter()
        .map(|s| gold_set.contains(&s))
        .collect();
    ranges
        .iter()
        .map(|&(a, b)| {
            if a == b || in_gold.is_empty() {
                return false;
            }
            let lo = a.saturating_sub(3).min(in_gold.len() - 1);
            let hi = b.min(in_gold.len());
            let hits = in_gold[lo..hi].iter().filter(|x| **x).count();
            hi > lo && hits * 2 >= hi - lo
        })
        .collect()
}

/// Per-document shingle match, normalised so that TP + FP + FN = 1 (all zero for two empty texts).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Match {
    pub tp: f64,
    pub fp: f64,
    pub fn_: f64,
}

/// Compares a predicted text with the gold text.
pub fn shingle_match(gold: &str, pred: &str) -> Match {
    let count = |t: &str| {
        let toks: Vec<&str> = tokens(t).collect();
        let mut m: HashMap<u64, i64> = HashMap::new();
        for s in shingles(&toks, 4) {
            *m.entry(s).or_default() += 1;
        }
        m
    };
    let g = count(gold);
    let p = count(pred);
    let (mut tp, mut fp, mut fn_) = (0i64, 0i64, 0i64);
    for (k, &gc) in &g {
        let pc = p.get(k).copied().unwrap_or(0);
        tp += gc.min(pc);
        fn_ += (gc - pc).max(0);
    }
    for (k, &pc) in &p {
        fp += (pc - g.get(k).copied().unwrap_or(0)).max(0);
    }
    let s = (tp + fp + fn_) as f64;
    if s == 0.0 {
        return Match::default();
    }
    Match {
        tp: tp as f64 / s,
        fp: fp as f64 / s,
        fn_: fn_ as f64 / s,
    }
}

/// Benchmark scores over a set of documents.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scores {
    pub f1: f64,
    pub precision: f64,
    pub recall: f64,
}

/// Averages per-document precision and recall as the benchmark does and returns F1 of the averages.
pub fn score(matches: &[Match]) -> Scores {
    let prec = |m: &Match| {
        if m.fp == 0.0 && m.fn_ == 0.0 {
            1.0
        } else {
            m.tp / (m.tp + m.fp)
        }
    };
    let rec = |m: &Match| {
        if m.fp == 0.0 && m.fn_ == 0.0 {
            1.0
        } else {
            m.tp / (m.tp + m.fn_)
        }
    };
    let mean = |v: Vec<f64>| {
        if v.is_empty() {
            0.0
        } else {
            v.iter().sum::<f64>() / v.len() as f64
        }
    };
    let precision = mean(
        matches
            .iter()
            .filter(|m| m.tp + m.fp > 0.0)
            .map(prec)
            .collect(),
    );
    let recall = mean(
        matches
            .iter()
            .filter(|m| m.tp + m.fn_ > 0.0)
            .map(rec)
            .collect(),
    );
    let f1 = if precision + recall > 0.0 {
        2.0 * precision * recall / (precision + recall)
    } else {
        0.0
    };
    Scores {
        f1,
        precision,
        recall,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perfect_and_empty_predictions() {
        let g = "one two three four five";
        // Case is kept: only "two three four five" matches; TP, FP and FN are one third each.
        assert!((shingle_match(g, "One two three four five").tp - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(shingle_match(g, g).tp, 1.0);
        let empty = shingle_match(g, "");
        assert_eq!(empty.fn_, 1.0);
        let s = score(&[shingle_match(g, g), empty]);
        assert_eq!(s.precision, 1.0);
        assert_eq!(s.recall, 0.5);
    }

    #[test]
    fn short_texts_give_one_shingle() {
        let m = shingle_match("a b", "a b");
        assert_eq!(m.tp, 1.0);
        let toks: Vec<&str> = tokens("it's 2026—ok_go").collect();
        assert_eq!(toks, ["it", "s", "2026", "ok_go"]);
    }
}
