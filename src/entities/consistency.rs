//! Owns document-level label consistency: a post-pass over the tagger's name spans.
//!
//! A word sequence the tagger named in one place of a document is usually the same name where
//! it occurs again, but a second mention in a weaker context (a short sentence, a list, text
//! without capitals) is easily missed. After decoding, every occurrence of a named sequence
//! that the tagger left untagged gets the name's type, when
//!
//! - the sequence is written exactly the same way (case-sensitive: "US" does not name "us"),
//! - every time the tagger named that exact sequence in the document it gave it the same type,
//! - the occurrence overlaps no span the tagger found, and it is not part of a longer run of
//!   capitalised words (then the tagger saw a different, longer name, or none, there).
//!
//! Names the tagger found are never changed or dropped; only gaps are filled. Nothing here is
//! fitted: the pass was kept because grouped cross-validation on `eng.train` scored it (see
//! `dropline train entities --cv`, which prints held-out F1 with and without it).

use super::features::{combine, flag, TokInfo};
use super::resources::IdMap;
use super::NameSpan;
use std::ops::Range;

/// Longest sequence (in tokens) propagated.
const MAX_LEN: usize = 6;
/// Marks a sequence that was named with more than one type.
const MIXED: usize = usize::MAX;

/// Returns whether token `t` is a capitalised or all-capitals word away from a sentence start.
fn capitalised(t: &TokInfo) -> bool {
    t.capitalised() && t.flags & flag::SENT_START == 0
}

const SEED: u64 = 0x6a09_e667_f3bc_c908;

/// Returns the case-sensitive hash of the token sequence `infos[r]`.
fn seq_hash(infos: &[TokInfo], r: Range<usize>) -> u64 {
    infos[r].iter().fold(SEED, |h, t| combine(h, t.word))
}

/// Adds a span for every untagged occurrence of a sequence named elsewhere in the document
/// (see the module documentation); `spans` ends sorted by start. `sentences` are the token
/// ranges of the sentences of `infos`; spans never cross them.
pub fn propagate(infos: &[TokInfo], sentences: &[Range<usize>], spans: &mut Vec<NameSpan>) {
    if spans.is_empty() {
        return;
    }
    // Each named sequence's type (or MIXED), and the lengths that occur.
    // Both sized once for every span (at most that many entries): neither grows and rehashes.
    let mut named: IdMap<usize> = IdMap::with_capacity_and_hasher(spans.len(), Default::default());
    // First words of named sequences: most tokens are ruled out by one lookup.
    let mut firsts: IdMap<()> = IdMap::with_capacity_and_hasher(spans.len(), Default::default());
    let mut lengths = [false; MAX_LEN + 1];
    for s in spans.iter() {
        let len = s.end - s.start;
        if len > MAX_LEN {
            continue;
        }
        lengths[len] = true;
        firsts.insert(infos[s.start].word, ());
        let e = named.entry(seq_hash(infos, s.start..s.end)).or_insert(s.ty);
        if *e != s.ty {
            *e = MIXED;
        }
    }
    let mut covered = vec![false; infos.len()];
    for s in spans.iter() {
        covered[s.start..s.end].iter_mut().for_each(|c| *c = true);
    }
    let before = spans.len();
    for sent in sentences {
        let mut i = sent.start;
        'token: while i < sent.end {
            if covered[i] || !firsts.contains_key(&infos[i].word) {
                i += 1;
                continue;
            }
            // Hashes of the uncovered sequences starting at i, by length.
            let mut hashes = [0u64; MAX_LEN + 1];
            let mut longest = 0;
            let mut h = SEED;
            while longest < MAX_LEN && i + longest < sent.end && !covered[i + longest] {
                h = combine(h, infos[i + longest].word);
                longest += 1;
                hashes[longest] = h;
            }
            // Longest sequence first, so "New York" is not filled as "York".
            for len in (1..=longest).rev() {
                if !lengths[len] {
                    continue;
                }
                let r = i..i + len;
                let Some(&ty) = named.get(&hashes[len]) else {
                    continue;
                };
                if ty == MIXED {
                    continue;
                }
                // Part of a longer capitalised run: not this name.
                let prev_cap = r.start > sent.start && capitalised(&infos[r.start - 1]);
                let next_cap = r.end < sent.end && capitalised(&infos[r.end]);
                if prev_cap || next_cap {
                    continue;
                }
                spans.push(NameSpan {
                    start: r.start,
                    end: r.end,
                    ty,
                });
                covered[r.clone()].iter_mut().for_each(|c| *c = true);
                i = r.end;
                continue 'token;
            }
            i += 1;
        }
    }
    if spans.len() > before {
        spans.sort_unstable_by_key(|s| s.start);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entities::features::doc_infos;
    use crate::entities::resources::ResourceTables;

    fn run(
        words: &[&str],
        sents: &[Range<usize>],
        spans: &[(usize, usize, usize)],
    ) -> Vec<(usize, usize, usize)> {
        let tables = ResourceTables::empty();
        let infos = doc_infos(words, sents, &tables.view());
        let mut s: Vec<NameSpan> = spans
            .iter()
            .map(|&(start, end, ty)| NameSpan { start, end, ty })
            .collect();
        propagate(&infos, sents, &mut s);
        s.iter().map(|n| (n.start, n.end, n.ty)).collect()
    }

    #[test]
    fn fills_untagged_repeats_of_a_name() {
        // "Rose Hill won . She thanked Rose Hill fans , not Hill ."
        let w = [
            "Rose", "Hill", "won", ".", "She", "thanked", "Rose", "Hill", "fans", ",", "not",
            "Hill", ".",
        ];
        let sents = [0..4, 4..13];
        assert_eq!(
            run(&w, &sents, &[(0, 2, 0)]),
            vec![(0, 2, 0), (6, 8, 0)],
            "the repeat is filled, the lone surname is a different sequence"
        );
    }

    #[test]
    fn keeps_case_types_and_longer_runs_apart() {
        let w = [
            "US", "troops", "left", ".", "let", "us", "go", "to", "US", "Open", "and", "US", ".",
        ];
        let sents = [0..4, 4..13];
        // "us" is not "US"; "US" inside the run "US Open" is left alone; the last "US" is filled.
        assert_eq!(run(&w, &sents, &[(0, 1, 2)]), vec![(0, 1, 2), (11, 12, 2)]);
        // A sequence named with two types is not propagated.
        assert_eq!(
            run(&w, &sents, &[(0, 1, 2), (8, 10, 3), (11, 12, 1)]),
            vec![(0, 1, 2), (8, 10, 3), (11, 12, 1)]
        );
        // Tagged spans are never changed, and nothing is added without names.
        assert_eq!(run(&w, &sents, &[]), vec![]);
    }
}
