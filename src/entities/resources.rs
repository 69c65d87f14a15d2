//! Owns the lexical resources features read: word clusters and the place gazetteer.
//!
//! Both are keyed by hashes of lower-case token forms, so lookups build no strings. The text
//! form (`C\tword\tc0\tc1\tc2` and `G\ttypes\tphrase` lines) is what `scripts/build_resources.py`
//! writes and what the trained model embeds, so a model always carries the resources it was
//! trained with.

use super::features::{combine, lower_hash, TokInfo};
use super::tokenize::tokenize;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Number of gazetteer types: countries, cities, regions (states, continents).
pub const GAZ_TYPES: usize = 3;
const MAX_PHRASE: usize = 6;
const PHRASE_SEED: u64 = 0x0123_4567_89ab_cdef;

/// A hasher for keys that already are well-mixed 64-bit hashes.
#[derive(Default)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// A map keyed by precomputed 64-bit hashes.
pub type IdMap<V> = HashMap<u64, V, BuildHasherDefault<IdHasher>>;

/// Word clusters and gazetteer, immutable once built.
#[derive(Debug, Default, Clone)]
pub struct Resources {
    clusters: IdMap<[u16; 3]>,
    /// Phrase hash to a bit set of gazetteer types.
    gazetteer: IdMap<u8>,
    /// Prefix hashes of gazetteer phrases, to stop matching early.
    prefixes: IdMap<()>,
    max_len: usize,
}

impl Resources {
    /// Returns resources with no clusters and an empty gazetteer.
    pub fn empty() -> Self {
        Self::default()
    }

    /// Parses the text form; malformed lines are skipped and counted.
    pub fn parse(text: &str) -> (Self, usize) {
        let mut res = Self::default();
        let mut bad = 0;
        for line in text.lines() {
            let mut parts = line.split('\t');
            match parts.next() {
                Some("C") => {
                    let word = parts.next();
                    let ids: Vec<u16> = parts.filter_map(|p| p.parse().ok()).collect();
                    match (word, ids.as_slice()) {
                        (Some(w), [a, b, c]) => {
                            // Cluster ids are shifted by one so 0 means "unknown word".
                            let v = [
                                a.saturating_add(1),
                                b.saturating_add(1),
                                c.saturating_add(1),
                            ];
                            res.clusters.insert(lower_hash(w), v);
                        }
                        _ => bad += 1,
                    }
                }
                Some("G") => match (
                    parts.next().and_then(|b| b.parse::<u8>().ok()),
                    parts.next(),
                ) {
                    (Some(bits), Some(phrase)) => res.add_place(phrase, bits),
                    _ => bad += 1,
                },
                Some("") | None => {}
                Some(_) => bad += 1,
            }
        }
        (res, bad)
    }

    fn add_place(&mut self, phrase: &str, bits: u8) {
        let toks = tokenize(phrase);
        if toks.is_empty() || toks.len() > MAX_PHRASE {
            return;
        }
        let mut h = PHRASE_SEED;
        for (i, t) in toks.iter().enumerate() {
            h = combine(h, lower_hash(t.text(phrase)));
            if i + 1 < toks.len() {
                self.prefixes.insert(h, ());
            }
        }
        *self.gazetteer.entry(h).or_default() |= bits;
        self.max_len = self.max_len.max(toks.len());
    }

    /// Returns the cluster ids (fine, middle, coarse; 0 when unknown) of a lower-case hash.
    #[inline]
    pub fn clusters(&self, lower: u64) -> [u16; 3] {
        self.clusters.get(&lower).copied().unwrap_or([0; 3])
    }

    /// Returns the number of cluster words and gazetteer phrases.
    pub fn sizes(&self) -> (usize, usize) {
        (self.clusters.len(), self.gazetteer.len())
    }

    /// Marks the longest gazetteer matches in one sentence, left to right.
    pub fn mark_gazetteer(&self, sent: &mut [TokInfo]) {
        if self.gazetteer.is_empty() {
            return;
        }
        let mut i = 0;
        while i < sent.len() {
            let mut h = PHRASE_SEED;
            let mut best: Option<(usize, u8)> = None;
            for (j, t) in sent.iter().enumerate().take(i + self.max_len).skip(i) {
                h = combine(h, t.lower);
                if let Some(&bits) = self.gazetteer.get(&h) {
                    best = Some((j + 1, bits));
                }
                if !self.prefixes.contains_key(&h) {
                    break;
                }
            }
            match best {
                Some((end, bits)) => {
                    for k in 0..GAZ_TYPES {
                        if bits & (1 << k) == 0 {
                            continue;
                        }
                        if end - i == 1 {
                            sent[i].gaz[k] = 4;
                        } else {
                            sent[i].gaz[k] = 1;
                            for t in &mut sent[i + 1..end - 1] {
                                t.gaz[k] = 2;
                            }
                            sent[end - 1].gaz[k] = 3;
                        }
                    }
                    i = end;
                }
                None => i += 1,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entities::features::doc_infos;

    #[test]
    fn parses_and_matches_longest_place() {
        let (res, bad) =
            Resources::parse("C\talmaty\t5\t6\t7\nG\t2\tNew York\nG\t2\tYork\nG\t1\tRussia\nX\n");
        assert_eq!(bad, 1);
        assert_eq!(res.sizes(), (1, 3));
        let words = ["in", "new", "York", "and", "Russia", "Almaty"];
        let sents = [std::ops::Range {
            start: 0,
            end: words.len(),
        }];
        let infos = doc_infos(&words, &sents, &res);
        let codes: Vec<u8> = infos.iter().map(|t| t.gaz[1]).collect();
        assert_eq!(codes, vec![0, 1, 3, 0, 0, 0]);
        assert_eq!(infos[4].gaz[0], 4);
        assert_eq!(infos[5].clusters, [6, 7, 8]);
    }
}
