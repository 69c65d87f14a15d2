//! Owns the lexical resources features read: word clusters and the gazetteer (places, names).
//!
//! Both are keyed by hashes of lower-case token forms, so lookups build no strings. The text
//! form (`C\tword\tc0\tc1\tc2` and `G\ttypes\tphrase` lines) is what
//! `scripts/build_resources.py` writes; training compiles it into [`ResourceTables`], which the
//! model file stores as flat arrays and the tagger reads in place through [`ResourcesView`].

use super::features::{combine, lower_hash, TokInfo};
use super::table::{Table, TableView};
use super::tokenize::tokenize;
use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};

/// Number of gazetteer types: countries, cities, regions (states, continents), given names,
/// family names (type `k` is bit `1 << k` of a `G` line).
pub const GAZ_TYPES: usize = 5;
const MAX_PHRASE: usize = 6;
const PHRASE_SEED: u64 = 0x0123_4567_89ab_cdef;
/// Gazetteer value flags beside the type bits: the hash ends a phrase, or begins a longer one.
const PHRASE: u8 = 0x40;
const PREFIX: u8 = 0x80;

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

/// Word clusters and gazetteer as owned flat tables, built from the text form.
#[derive(Debug, Clone)]
pub struct ResourceTables {
    /// Lower-case hash to an index into `triples`.
    pub clusters: Table<u16>,
    /// Distinct (fine, middle, coarse) cluster ids, shifted by one so 0 means unknown; entry 0
    /// is the unknown word's.
    pub triples: Vec<[u16; 3]>,
    /// Phrase and phrase-prefix hashes to gazetteer type bits plus `PHRASE`/`PREFIX` flags.
    pub gazetteer: Table<u8>,
    pub max_len: usize,
}

impl ResourceTables {
    /// Returns tables with no clusters and an empty gazetteer.
    pub fn empty() -> Self {
        Self::parse("").0
    }

    /// Parses the text form; malformed lines are skipped and counted.
    pub fn parse(text: &str) -> (Self, usize) {
        let mut bad = 0;
        let mut words: Vec<(u64, [u16; 3])> = Vec::new();
        let mut places: Vec<(u64, u8)> = Vec::new();
        let mut max_len = 0;
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
                            words.push((lower_hash(w), v));
                        }
                        _ => bad += 1,
                    }
                }
                Some("G") => match (
                    parts.next().and_then(|b| b.parse::<u8>().ok()),
                    parts.next(),
                ) {
                    (Some(bits), Some(phrase)) if bits < PHRASE => {
                        max_len = max_len.max(add_place(phrase, bits, &mut places));
                    }
                    _ => bad += 1,
                },
                Some("") | None => {}
                Some(_) => bad += 1,
            }
        }
        let mut ids: BTreeMap<[u16; 3], u16> = BTreeMap::new();
        ids.insert([0; 3], 0);
        for (_, v) in &words {
            ids.entry(*v).or_insert(0);
        }
        if ids.len() > usize::from(u16::MAX) {
            // More distinct triples than an index can name: keep the first ones.
            bad += ids.len() - usize::from(u16::MAX);
        }
        let triples: Vec<[u16; 3]> = ids.keys().copied().take(usize::from(u16::MAX)).collect();
        for (i, t) in triples.iter().enumerate() {
            ids.insert(*t, i as u16);
        }
        let pairs: Vec<(u64, u16)> = words
            .iter()
            .filter_map(|(h, v)| {
                let i = *ids.get(v)?;
                (triples.get(usize::from(i)) == Some(v)).then_some((*h, i))
            })
            .collect();
        // A later line for the same word wins, as a map insert would.
        let (clusters, shared_c) = Table::build(&pairs, |_, new| new);
        let (gazetteer, shared_g) = Table::build(&places, |a, b| a | b);
        if shared_c + shared_g > 0 {
            tracing::warn!(
                words = shared_c,
                places = shared_g,
                "resource keys share a 48-bit hash"
            );
        }
        let tables = Self {
            clusters,
            triples,
            gazetteer,
            max_len,
        };
        (tables, bad)
    }

    /// Returns a view over the owned tables.
    pub fn view(&self) -> ResourcesView<'_> {
        ResourcesView {
            clusters: self.clusters.view(),
            triples: &self.triples,
            gazetteer: self.gazetteer.view(),
            max_len: self.max_len,
        }
    }
}

/// Adds one phrase's hash and its prefixes' hashes; returns its length in tokens (0 if skipped).
fn add_place(phrase: &str, bits: u8, out: &mut Vec<(u64, u8)>) -> usize {
    let toks = tokenize(phrase);
    if toks.is_empty() || toks.len() > MAX_PHRASE {
        return 0;
    }
    let mut h = PHRASE_SEED;
    for (i, t) in toks.iter().enumerate() {
        h = combine(h, lower_hash(t.text(phrase)));
        if i + 1 < toks.len() {
            out.push((h, PREFIX));
        }
    }
    out.push((h, bits | PHRASE));
    toks.len()
}

/// Word clusters and gazetteer over borrowed arrays (the model file's bytes).
#[derive(Debug, Clone, Copy)]
pub struct ResourcesView<'a> {
    pub clusters: TableView<'a, u16>,
    pub triples: &'a [[u16; 3]],
    pub gazetteer: TableView<'a, u8>,
    pub max_len: usize,
}

impl ResourcesView<'_> {
    /// Returns the cluster ids (fine, middle, coarse; 0 when unknown) of a lower-case hash.
    #[inline]
    pub fn clusters(&self, lower: u64) -> [u16; 3] {
        self.clusters
            .get(lower)
            .and_then(|i| self.triples.get(usize::from(i)).copied())
            .unwrap_or([0; 3])
    }

    /// Returns the number of cluster words and gazetteer phrases.
    pub fn sizes(&self) -> (usize, usize) {
        let phrases = self
            .gazetteer
            .vals
            .iter()
            .filter(|v| *v & PHRASE != 0)
            .count();
        (self.clusters.keys.len(), phrases)
    }

    /// Asks the CPU to start loading what the cluster lookups and the gazetteer's first-word
    /// lookups of `infos` will read (hints: whole-document lookups then overlap their cache
    /// misses instead of waiting for them one token at a time).
    pub fn prefetch(&self, infos: &[TokInfo]) {
        // Tokens at a time: few enough that the directory lines asked for stay in the
        // first-level cache until their keys are asked for.
        const CHUNK: usize = 256;
        let first = |t: &TokInfo| combine(PHRASE_SEED, t.lower);
        for chunk in infos.chunks(CHUNK) {
            for t in chunk {
                self.clusters.prefetch_dir(t.lower);
                self.gazetteer.prefetch_dir(first(t));
            }
            for t in chunk {
                self.clusters.prefetch_keys(t.lower);
                self.gazetteer.prefetch_keys(first(t));
            }
        }
    }

    /// Marks the longest gazetteer matches in one sentence, left to right.
    pub fn mark_gazetteer(&self, sent: &mut [TokInfo]) {
        if self.gazetteer.keys.is_empty() {
            return;
        }
        let mut i = 0;
        while i < sent.len() {
            let mut h = PHRASE_SEED;
            let mut best: Option<(usize, u8)> = None;
            for (j, t) in sent.iter().enumerate().take(i + self.max_len).skip(i) {
                h = combine(h, t.lower);
                let v = self.gazetteer.get(h).unwrap_or(0);
                if v & PHRASE != 0 {
                    best = Some((j + 1, v & !(PHRASE | PREFIX)));
                }
                if v & PREFIX == 0 {
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
        let (res, bad) = ResourceTables::parse(
            "C\talmaty\t5\t6\t7\nG\t2\tNew York\nG\t2\tYork\nG\t1\tRussia\nX\n",
        );
        assert_eq!(bad, 1);
        let res = res.view();
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
        assert_eq!(infos[0].clusters, [0, 0, 0]);
    }
}
