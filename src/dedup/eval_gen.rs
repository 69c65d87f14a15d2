//! Owns the synthetic rewrites `dropline eval dedup` checks recall on: random word swaps, a
//! thesaurus-style spinner over the entity stage's word clusters, and sentence-level edits.

use super::eval::Rng;
use anyhow::Context as _;
use std::collections::HashMap;
use std::io::Read as _;

/// How a synthetic rewrite is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Generator {
    /// A share of the whitespace tokens replaced by tokens drawn from the other articles.
    Swap,
    /// A share of the words replaced by a near neighbour in the word clusters (a spinner).
    Spin,
    /// The spinner, then a few sentences merged, dropped and swapped with a neighbour.
    SpinEdit,
}

impl Generator {
    pub const ALL: [Generator; 3] = [Generator::Swap, Generator::Spin, Generator::SpinEdit];

    pub fn name(self) -> &'static str {
        match self {
            Generator::Swap => "word swap",
            Generator::Spin => "spinner",
            Generator::SpinEdit => "spinner + sentence edits",
        }
    }
}

/// Near neighbours of words: words whose fine cluster id is within a few of the word's, in the
/// same middle cluster (the cluster ids follow the hierarchy, so "biggest" sits next to
/// "largest").
#[derive(Debug, Default)]
pub struct Thesaurus {
    /// Word to (fine, middle) cluster.
    cluster: HashMap<String, (u32, u32)>,
    /// Fine cluster to its words.
    words: HashMap<u32, Vec<(String, u32)>>,
}

/// Fine-cluster ids on either side that still count as near neighbours.
const NEIGHBOURHOOD: u32 = 2;

impl Thesaurus {
    /// Loads the word clusters the entity stage ships (`resources/entities.res.gz`).
    pub fn load() -> anyhow::Result<Self> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/resources/entities.res.gz");
        let file = std::fs::File::open(path).with_context(|| format!("opening {path}"))?;
        let mut text = String::new();
        flate2::read::GzDecoder::new(file)
            .read_to_string(&mut text)
            .with_context(|| format!("reading {path}"))?;
        let mut t = Self::default();
        for line in text.lines() {
            let mut p = line.split('\t');
            let (Some("C"), Some(w), Some(fine), Some(mid)) =
                (p.next(), p.next(), p.next(), p.next())
            else {
                continue;
            };
            if !w.bytes().all(|b| b.is_ascii_lowercase()) || w.len() < 3 {
                continue;
            }
            let (Ok(fine), Ok(mid)) = (fine.parse::<u32>(), mid.parse::<u32>()) else {
                continue;
            };
            t.cluster.insert(w.to_string(), (fine, mid));
            t.words.entry(fine).or_default().push((w.to_string(), mid));
        }
        for ws in t.words.values_mut() {
            ws.sort();
        }
        Ok(t)
    }

    /// Returns a near neighbour of the lower-case word `w`, if it has one.
    fn neighbour(&self, w: &str, rng: &mut Rng) -> Option<&str> {
        let &(fine, mid) = self.cluster.get(w)?;
        let near: Vec<&str> = (fine.saturating_sub(NEIGHBOURHOOD)..=fine + NEIGHBOURHOOD)
            .filter_map(|f| self.words.get(&f))
            .flatten()
            .filter(|(x, m)| *m == mid && x != w)
            .map(|(x, _)| x.as_str())
            .collect();
        (!near.is_empty()).then(|| near[rng.below(near.len())])
    }
}

/// Returns a synthetic rewrite of `text` replacing `rate` of its words.
pub fn rewrite(
    generator: Generator,
    text: &str,
    rate: f64,
    vocab: &[&str],
    thesaurus: &Thesaurus,
    rng: &mut Rng,
) -> String {
    match generator {
        Generator::Swap => swap(text, rate, vocab, rng),
        Generator::Spin => spin(text, rate, thesaurus, rng),
        Generator::SpinEdit => edit_sentences(&spin(text, rate, thesaurus, rng), rng),
    }
}

/// Replaces `rate` of the whitespace tokens of `text` with tokens drawn from `vocab`, keeping
/// the white space (line breaks) between them.
pub fn swap(text: &str, rate: f64, vocab: &[&str], rng: &mut Rng) -> String {
    let spans: Vec<(usize, usize)> = text
        .split_whitespace()
        .map(|t| {
            let start = t.as_ptr() as usize - text.as_ptr() as usize;
            (start, start + t.len())
        })
        .collect();
    let k = ((spans.len() as f64) * rate).round() as usize;
    let mut positions: Vec<usize> = (0..spans.len()).collect();
    let mut replaced: Vec<(usize, &str)> = Vec::with_capacity(k);
    for i in 0..k.min(positions.len()) {
        let j = i + rng.below(positions.len() - i);
        positions.swap(i, j);
        if !vocab.is_empty() {
            replaced.push((positions[i], vocab[rng.below(vocab.len())]));
        }
    }
    replaced.sort_unstable_by_key(|r| r.0);
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (p, w) in replaced {
        let (s, e) = spans[p];
        out.push_str(&text[at..s]);
        out.push_str(w);
        at = e;
    }
    out.push_str(&text[at..]);
    out
}

/// Replaces `rate` of all words (as counted over every word) with near neighbours, choosing
/// among the words that have one; keeps the first letter's case and the punctuation around.
fn spin(text: &str, rate: f64, thesaurus: &Thesaurus, rng: &mut Rng) -> String {
    // Word spans: runs of ASCII letters.
    let mut spans: Vec<(usize, usize)> = Vec::new();
    let mut start = None;
    for (i, b) in text
        .bytes()
        .enumerate()
        .chain(std::iter::once((text.len(), b' ')))
    {
        match (b.is_ascii_alphabetic(), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                spans.push((s, i));
                start = None;
            }
            _ => {}
        }
    }
    let k = ((spans.len() as f64) * rate).round() as usize;
    let mut replaceable: Vec<(usize, usize, String)> = spans
        .iter()
        .filter_map(|&(s, e)| {
            let w = text[s..e].to_ascii_lowercase();
            thesaurus.cluster.contains_key(&w).then_some((s, e, w))
        })
        .collect();
    // A partial Fisher-Yates picks k of them.
    let k = k.min(replaceable.len());
    for i in 0..k {
        let j = i + rng.below(replaceable.len() - i);
        replaceable.swap(i, j);
    }
    let mut chosen: Vec<(usize, usize, String)> = Vec::new();
    for (s, e, w) in replaceable.into_iter().take(k) {
        if let Some(n) = thesaurus.neighbour(&w, rng) {
            let upper = text[s..e].starts_with(|c: char| c.is_ascii_uppercase());
            let mut r = n.to_string();
            if upper {
                r[..1].make_ascii_uppercase();
            }
            chosen.push((s, e, r));
        }
    }
    chosen.sort_by_key(|c| c.0);
    let mut out = String::with_capacity(text.len() + 64);
    let mut at = 0;
    for (s, e, r) in chosen {
        out.push_str(&text[at..s]);
        out.push_str(&r);
        at = e;
    }
    out.push_str(&text[at..]);
    out
}

/// Edits about one sentence in ten each way: merges one with the next, drops one, swaps one
/// with the next.
fn edit_sentences(text: &str, rng: &mut Rng) -> String {
    let mut sents: Vec<String> = text
        .split_inclusive(['.', '\n'])
        .map(str::to_string)
        .filter(|s| !s.trim().is_empty())
        .collect();
    let edits = (sents.len() / 10).max(1);
    for _ in 0..edits {
        if sents.len() < 4 {
            break;
        }
        let i = rng.below(sents.len() - 1);
        let merged = format!(
            "{}, and {}",
            sents[i].trim_end().trim_end_matches('.'),
            lower_first(sents[i + 1].trim_start())
        );
        sents[i] = merged;
        sents.remove(i + 1);
        let d = rng.below(sents.len());
        sents.remove(d);
        let s = rng.below(sents.len() - 1);
        sents.swap(s, s + 1);
    }
    sents
        .iter()
        .map(|s| s.trim())
        .collect::<Vec<_>>()
        .join("\n")
}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

/// Returns a synthetic article of `len` words for benchmarks: two thirds of its words drawn
/// from a Zipf-like vocabulary of 50,000 words, one third from 40 words of its own topic (one
/// of 100,000 topics), a sentence every 20 words. 300 words make about 2.4 KB.
pub fn synthetic_article(rng: &mut Rng, len: usize) -> String {
    let mut out = String::with_capacity(len * 8);
    let topic = rng.next_u64() % 100_000;
    for i in 0..len {
        if i % 3 == 0 {
            out.push_str(if i % 2 == 0 { "Topic" } else { "topic" });
            out.push_str(&(topic * 40 + rng.next_u64() % 40).to_string());
        } else {
            let r = (rng.next_u64() % 1_000_000) as f64 / 1_000_000.0;
            out.push_str("word");
            out.push_str(&(50_000f64.powf(r) as u64).to_string());
        }
        out.push(if i % 20 == 19 { '.' } else { ' ' });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swap_replaces_the_requested_share() {
        let mut rng = Rng(3);
        let out = swap("a b c d e f g h i j", 0.3, &["Z"], &mut rng);
        assert_eq!(out.split(' ').filter(|w| *w == "Z").count(), 3);
    }

    #[test]
    fn spinner_replaces_words_with_cluster_neighbours() {
        let mut t = Thesaurus::default();
        for (w, f) in [("biggest", 10), ("largest", 11), ("city", 50), ("town", 51)] {
            t.cluster.insert(w.into(), (f, 1));
            t.words.entry(f).or_default().push((w.into(), 1));
        }
        let mut rng = Rng(1);
        let out = spin("The biggest city. Biggest news", 1.0, &t, &mut rng);
        assert_eq!(out, "The largest town. Largest news");
    }

    #[test]
    fn sentence_edits_keep_most_sentences() {
        let text: String = (0..20)
            .map(|i| format!("Sentence number {i} here.\n"))
            .collect();
        let out = edit_sentences(&text, &mut Rng(5));
        // Two rounds of edits on 20 sentences: two merges and two drops.
        assert_eq!(out.lines().count(), 16, "{out}");
    }
}
