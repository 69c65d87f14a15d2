//! Owns the article-extraction benchmark metric: 4-gram shingle multisets of `\w+` tokens.
//!
//! A port of the ScrapingHub article-extraction-benchmark `evaluate.py` (as in
//! `../shared/tools/score_strip.py`): per-document TP/FP/FN normalised to sum to one, precision and
//! recall averaged over documents, F1 of the averages.

use std::collections::HashMap;
use xxhash_rust::xxh3::{xxh3_64, Xxh3};

/// Returns the `\w+` tokens of `text` (Unicode letters, digits, marks and `_`): the maximal runs
/// of [`is_word_char`] characters. ASCII bytes are classified by a table; other characters are
/// decoded and classified as [`is_word_char`] says.
pub fn tokens(text: &str) -> Tokens<'_> {
    Tokens { text, at: 0 }
}

/// The iterator of [`tokens`].
pub struct Tokens<'a> {
    text: &'a str,
    at: usize,
}

/// Whether each ASCII byte is a `\w` character.
const ASCII_WORD: [bool; 128] = {
    let mut t = [false; 128];
    let mut b = 0;
    while b < 128 {
        t[b] = (b as u8).is_ascii_alphanumeric() || b == b'_' as usize;
        b += 1;
    }
    t
};

impl<'a> Tokens<'a> {
    /// Returns whether the character at byte `i` is a word character, and its length in bytes.
    #[inline]
    fn class_at(&self, i: usize) -> (bool, usize) {
        let b = self.text.as_bytes()[i];
        if b < 0x80 {
            return (ASCII_WORD[b as usize], 1);
        }
        let c = self.text[i..].chars().next().unwrap_or(' ');
        (is_word_char(c), c.len_utf8())
    }
}

impl<'a> Iterator for Tokens<'a> {
    type Item = &'a str;

    #[inline]
    fn next(&mut self) -> Option<&'a str> {
        let n = self.text.len();
        // Skip to the next word character.
        while self.at < n {
            let (word, len) = self.class_at(self.at);
            if word {
                break;
            }
            self.at += len;
        }
        if self.at >= n {
            return None;
        }
        let start = self.at;
        while self.at < n {
            let (word, len) = self.class_at(self.at);
            if !word {
                break;
            }
            self.at += len;
        }
        Some(&self.text[start..self.at])
    }
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
///
/// The bytes hashed are each token followed by a zero byte; a shingle of up to [`SHORT`] such
/// bytes is hashed in one call ([`xxh3_64`]), which gives the streaming hasher's digest of the
/// same bytes without its setup.
pub fn shingle_hash(toks: &[&str]) -> u64 {
    let mut buf = [0u8; SHORT];
    let mut at = 0;
    for t in toks {
        let end = at + t.len();
        let Some(slot) = buf.get_mut(at..end) else {
            return shingle_hash_streamed(toks);
        };
        slot.copy_from_slice(t.as_bytes());
        // The separator: the buffer starts zeroed, so it is there once the token fits before it.
        if end >= SHORT {
            return shingle_hash_streamed(toks);
        }
        at = end + 1;
    }
    xxh3_64(&buf[..at])
}

/// Longest shingle, in bytes with its separators, that [`shingle_hash`] hashes in one call.
const SHORT: usize = 128;

/// Returns [`shingle_hash`] of `toks` through the streaming hasher, for shingles of any length.
fn shingle_hash_streamed(toks: &[&str]) -> u64 {
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
    fn tokens_are_the_runs_of_word_characters() {
        let texts = [
            "",
            "   ",
            "one two_three, four-five!",
            "Ünïcödé wörds — and 42 numbers… ok",
            "é\u{301}e\u{301}x a\u{300}\u{300} \u{301}lead",
            "日本語のテキスト。次の文",
            "emoji 😀between😀 words\ttab\nnew",
            "__ _a_ a__b ___",
            "\u{a0}nbsp\u{a0}spaced\u{2003}em",
            "x",
            "tail word",
        ];
        for t in texts {
            let slow: Vec<&str> = t
                .split(|c: char| !is_word_char(c))
                .filter(|w| !w.is_empty())
                .collect();
            assert_eq!(tokens(t).collect::<Vec<_>>(), slow, "{t:?}");
        }
    }

    #[test]
    fn shingle_hashes_match_the_streaming_hasher_at_every_length() {
        let long = "ab".repeat(200);
        for a in 0..140 {
            for b in [0, 1, 2, 5, 60, 126, 127] {
                let toks = [&long[..a], "x", &long[..b]];
                assert_eq!(shingle_hash(&toks), shingle_hash_streamed(&toks), "{a} {b}");
            }
        }
        let toks = [long.as_str(), "y"];
        assert_eq!(shingle_hash(&toks), shingle_hash_streamed(&toks));
        assert_eq!(shingle_hash(&[]), shingle_hash_streamed(&[]));
    }

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
