//! The pair search of the sentence alignment as it was before [`Probe::align_with`] visited
//! only the sentence pairs sharing two words, with buffers reused: kept to show, on random and
//! edited sketches, that the faster search finds exactly the same candidate matches (every
//! decision depends on them). Both hand them to the same [`matching`].

use super::super::*;
use super::*;

pub(super) fn align(probe: &Probe, old: &Sketch, overlap: f32, chain_from: f32) -> Alignment {
    let new = &probe.sketch;
    let (ns, os) = (new.sentence_count(), old.sentence_count());
    if ns == 0 || os == 0 {
        return Alignment::default();
    }
    let mut common = vec![0u16; ns * os];
    for j in 0..os {
        for w in old.sentence(j) {
            let mask = probe.lookup.get(*w);
            if mask == 0 {
                continue;
            }
            let mut m = mask;
            while m != 0 {
                let i = m.trailing_zeros() as usize;
                common[i * os + j] += 1;
                m &= m - 1;
            }
        }
    }
    let new_len: Vec<usize> = (0..ns).map(|i| new.sentence(i).len()).collect();
    let old_len: Vec<usize> = (0..os).map(|j| old.sentence(j).len()).collect();
    let c = |i: usize, j: usize| common[i * os + j] as usize;
    let passes = |c: usize, size: usize| c >= MIN_COMMON && c as f32 >= overlap * size as f32;
    // Which pairs match: bit 0 sentence to sentence, bit 1 new `i` to old `j - 1` and `j`
    // merged, bit 2 new `i - 1` and `i` (one old sentence split in two) to old `j`; a
    // merged or split match needs each part to share words.
    let mut kind = vec![0u8; ns * os];
    let mut hit_new = vec![false; ns];
    for i in 0..ns {
        for j in 0..os {
            let (nl, ol) = (new_len[i], old_len[j]);
            let mut k = 0u8;
            if passes(c(i, j), nl.max(ol)) {
                k |= 1;
            }
            if j > 0 && c(i, j - 1) >= 2 && c(i, j) >= 2 {
                let merged = old_len[j - 1] + ol;
                if passes(c(i, j - 1) + c(i, j), nl.max(merged)) {
                    k |= 2;
                }
            }
            if i > 0 && c(i - 1, j) >= 2 && c(i, j) >= 2 {
                let split = new_len[i - 1] + nl;
                if passes(c(i - 1, j) + c(i, j), split.max(ol)) {
                    k |= 4;
                    hit_new[i - 1] = true;
                }
            }
            hit_new[i] |= k != 0;
            kind[i * os + j] = k;
        }
    }
    let new_total: usize = new_len.iter().sum();
    let shared: usize = (0..ns).filter(|&i| hit_new[i]).map(|i| new_len[i]).sum();
    let shared = shared as f32 / new_total.max(1) as f32;
    // Every new sentence in the matching matched something, so its share of the new
    // document is at most `shared`: below `chain_from` it cannot matter.
    if shared < chain_from {
        return Alignment {
            shared,
            ..Alignment::default()
        };
    }
    // The candidate matches; the matching and its measures are the probe's own.
    let mut pairs: Vec<(usize, u8, usize, usize)> = Vec::new();
    for i in 0..ns {
        for j in 0..os {
            let k = kind[i * os + j];
            // Overlap in 1/65536ths: integers, so the order is the same on every machine.
            let score = |common: usize, a: usize, b: usize| (common << 16) / a.max(b).max(1);
            if k & 1 != 0 {
                pairs.push((score(c(i, j), new_len[i], old_len[j]), 1, i, j));
            }
            if k & 2 != 0 {
                let merged = old_len[j - 1] + old_len[j];
                pairs.push((score(c(i, j - 1) + c(i, j), new_len[i], merged), 2, i, j));
            }
            if k & 4 != 0 {
                let split = new_len[i - 1] + new_len[i];
                pairs.push((score(c(i - 1, j) + c(i, j), split, old_len[j]), 4, i, j));
            }
        }
    }
    matching(
        new.view(),
        old.view(),
        Counts {
            common: &common,
            new_len: &new_len,
            old_len: &old_len,
        },
        shared,
        &mut pairs,
        &mut Vec::new(),
        None,
    )
}

/// A small deterministic generator (xorshift64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A sketch of `n` sentences of 1 to 24 distinct words from a vocabulary of `vocab`.
fn random_sentences(rng: &mut Rng, n: usize, vocab: usize) -> Vec<Vec<u16>> {
    (0..n)
        .map(|_| {
            let len = 1 + rng.below(24);
            let mut s: Vec<u16> = Vec::new();
            while s.len() < len.min(vocab) {
                let w = rng.below(vocab) as u16;
                if !s.contains(&w) {
                    s.push(w);
                }
            }
            s
        })
        .collect()
}

fn sketch(sentences: &[Vec<u16>]) -> Sketch {
    let (mut ends, mut words) = (Vec::new(), Vec::new());
    for s in sentences.iter().take(MAX_SENTENCES) {
        words.extend_from_slice(s);
        ends.push(words.len() as u16);
    }
    Sketch::from_parts(&ends, &words)
}

/// An edited copy: words swapped, sentences dropped, merged, split and moved.
fn edited(rng: &mut Rng, old: &[Vec<u16>], vocab: usize) -> Vec<Vec<u16>> {
    let mut out: Vec<Vec<u16>> = Vec::new();
    for s in old {
        match rng.below(10) {
            0 => continue,
            1 if !out.is_empty() => {
                let last = out.last_mut().unwrap();
                for &w in s {
                    if !last.contains(&w) {
                        last.push(w);
                    }
                }
            }
            2 if s.len() > 3 => {
                let (a, b) = s.split_at(s.len() / 2);
                out.push(a.to_vec());
                out.push(b.to_vec());
            }
            _ => {
                let mut t = s.clone();
                for x in t.iter_mut() {
                    if rng.below(6) == 0 {
                        let w = (vocab + rng.below(vocab)) as u16;
                        if !s.contains(&w) {
                            *x = w;
                        }
                    }
                }
                t.dedup();
                let mut seen = Vec::new();
                t.retain(|w| {
                    let fresh = !seen.contains(w);
                    seen.push(*w);
                    fresh
                });
                out.push(t);
            }
        }
        if rng.below(8) == 0 && out.len() > 1 {
            let (a, b) = (rng.below(out.len()), rng.below(out.len()));
            out.swap(a, b);
        }
    }
    out
}

#[test]
fn faster_alignment_is_the_reference_alignment() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut scratch = Scratch::default();
    let mut full = 0;
    for round in 0..3000 {
        let vocab = [12, 40, 200, 3000][round % 4];
        let n = 1 + rng.below(70);
        let old = random_sentences(&mut rng, n, vocab);
        let n = 1 + rng.below(70);
        let new = if round % 3 == 0 {
            random_sentences(&mut rng, n, vocab)
        } else {
            edited(&mut rng, &old, vocab)
        };
        let (old, probe) = (sketch(&old), Probe::new(sketch(&new)));
        for (overlap, chain_from) in [(0.4, 0.5), (0.5, 0.0), (0.3, 0.2)] {
            let want = align(&probe, &old, overlap, chain_from);
            let got = probe.align_with(&old, overlap, chain_from, &mut scratch);
            assert_eq!(
                got, want,
                "round {round}, overlap {overlap}, from {chain_from}"
            );
            full += usize::from(want.covered_new > 0.0);
        }
    }
    // The generator reaches the full matching often, not only the early return.
    assert!(full > 3000, "{full}");
}

#[test]
fn a_gated_alignment_scores_as_the_full_one() {
    let model = crate::dedup::rewrite_model::RewriteModel::default();
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let mut scratch = Scratch::default();
    let (mut shut, mut open) = (0, 0);
    for round in 0..3000 {
        let vocab = [12, 40, 200, 3000][round % 4];
        let n = 1 + rng.below(40);
        let old = random_sentences(&mut rng, n, vocab);
        let new = if round % 3 == 0 {
            let n = 1 + rng.below(40);
            random_sentences(&mut rng, n, vocab)
        } else {
            edited(&mut rng, &old, vocab)
        };
        let (old, probe) = (sketch(&old), Probe::new(sketch(&new)));
        for (min_words, min_reworded) in [(20, 0.5), (5, 0.1), (0, 0.0), (60, 0.9)] {
            let gate = Gate {
                min_words,
                min_reworded,
            };
            let full = probe.align_with(&old, 0.4, 0.0, &mut scratch);
            let gated = probe.align_gated(old.view(), 0.4, 0.0, Some(gate), &mut scratch);
            let score = |a: &Alignment| model.score(a, min_words, min_reworded);
            assert_eq!(score(&gated), score(&full), "round {round}");
            if gate.shuts(&full) {
                shut += 1;
                assert_eq!(score(&full), 0.0);
                let bare = Alignment {
                    substituted: 0.0,
                    inserted_deleted: 0.0,
                    clustered: 0.0,
                    lacking: 0.0,
                    ..full
                };
                assert_eq!(gated, bare, "round {round}");
            } else {
                open += 1;
                assert_eq!(gated, full, "round {round}");
            }
        }
    }
    // Both sides of the gate are exercised.
    assert!(shut > 1000 && open > 1000, "{shut} shut, {open} open");
}

#[test]
fn one_pass_over_the_earlier_words_finds_each_words_sentence_past_empty_ones() {
    // Sketches read back from bytes may hold empty sentences (equal ends), at the start, in
    // the middle and at the end: the pass over all the words must still give every word the
    // sentence the loop a sentence gave it, so each pair counts the same words.
    let mut rng = Rng(0x6a09_e667_f3bc_c908);
    let mut scratch = Scratch::default();
    for round in 0..500 {
        let vocab = [12, 40, 200][round % 3];
        let n = 1 + rng.below(30);
        let old = random_sentences(&mut rng, n, vocab);
        let new = edited(&mut rng, &old, vocab);
        let (mut ends, mut words) = (Vec::new(), Vec::new());
        for s in &old {
            while rng.below(3) == 0 && ends.len() < MAX_SENTENCES - 1 {
                ends.push(words.len() as u16);
            }
            if ends.len() == MAX_SENTENCES {
                break;
            }
            words.extend_from_slice(s);
            ends.push(words.len() as u16);
        }
        let old = Sketch::from_parts(&ends, &words);
        let probe = Probe::new(sketch(&new));
        for (overlap, chain_from) in [(0.4, 0.5), (0.3, 0.0)] {
            let want = align(&probe, &old, overlap, chain_from);
            let got = probe.align_with(&old, overlap, chain_from, &mut scratch);
            assert_eq!(got, want, "round {round}");
        }
    }
}
