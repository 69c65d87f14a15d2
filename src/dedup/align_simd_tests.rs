//! The word pass against a straightforward one: a presence test and a branch a word, each
//! earlier sentence in turn.

use super::*;
use crate::dedup::eval::Rng;
use std::collections::HashMap;

/// A new document: the presence set and each word's sentences, `ns` sentences of words from
/// `0..vocab`.
fn new_document(rng: &mut Rng, ns: usize, vocab: usize) -> (Box<Present>, HashMap<u16, u64>) {
    let mut present = Box::new([0u64; 1 << 10]);
    let mut sentences = HashMap::new();
    for i in 0..ns {
        for _ in 0..1 + rng.below(24) {
            let w = rng.below(vocab) as u16;
            present[usize::from(w >> 6)] |= 1 << (w & 63);
            *sentences.entry(w).or_insert(0u64) |= 1 << i;
        }
    }
    (present, sentences)
}

/// Earlier words: `n` of them, each from the new document's vocabulary with odds `1 / mix`
/// (always for 1, never for 0), otherwise from anywhere.
fn earlier_words(rng: &mut Rng, n: usize, vocab: usize, mix: usize) -> Vec<u16> {
    (0..n)
        .map(|_| {
            if mix > 0 && rng.below(mix) == 0 {
                rng.below(vocab) as u16
            } else {
                rng.next_u64() as u16
            }
        })
        .collect()
}

/// Sentence ends over `n` words: `os` of them, ordered, some equal (empty sentences), the last
/// at `n`.
fn sentence_ends(rng: &mut Rng, n: usize, os: usize) -> Vec<u16> {
    let mut ends: Vec<u16> = (1..os).map(|_| rng.below(n + 1) as u16).collect();
    ends.sort_unstable();
    ends.push(n as u16);
    ends
}

/// The pass as a loop a sentence with a test and a branch a word.
fn reference(
    sentences: &HashMap<u16, u64>,
    ends: &[u16],
    words: &[u16],
    ns: usize,
) -> (Vec<u16>, Vec<u32>) {
    let os = ends.len();
    let (mut common, mut cells) = (vec![0u16; ns * os], Vec::new());
    let mut start = 0;
    for (j, &end) in ends.iter().enumerate() {
        for w in &words[start..usize::from(end)] {
            let Some(&mask) = sentences.get(w) else {
                continue;
            };
            for i in 0..ns {
                if mask >> i & 1 != 0 {
                    let cell = i * os + j;
                    common[cell] += 1;
                    if common[cell] == 2 {
                        cells.push(cell as u32);
                    }
                }
            }
        }
        start = usize::from(end);
    }
    (common, cells)
}

#[test]
fn the_presence_masks_are_the_presence_bits() {
    let mut rng = Rng(0x243f_6a88_85a3_08d3);
    for round in 0..400 {
        let ns = 1 + rng.below(64);
        let (present, _) = new_document(&mut rng, ns, [50, 2000, 65536][round % 3]);
        // Lengths on and off every multiple of 8, 16 and 64.
        let n = [0, 1, 7, 8, 15, 16, 17, 63, 64, 65, 127, 128, 129, 200][round % 14] + round / 14;
        let words = earlier_words(&mut rng, n, 2000, 1 + round % 4);
        let want: Vec<u64> = words
            .chunks(LANE)
            .map(|lane| {
                let set = lane
                    .iter()
                    .enumerate()
                    .filter(|&(_, &w)| present[usize::from(w >> 6)] >> (w & 63) & 1 == 1);
                set.fold(0, |m, (k, _)| m | 1 << k)
            })
            .collect();
        let mut got = vec![!0u64; want.len()];
        present_masks_portable(&present, &words, &mut got);
        assert_eq!(got, want, "portable, round {round}");
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            got.fill(!0);
            // SAFETY: the CPU supports AVX2, checked just above.
            unsafe { present_masks_avx2(&present, &words, &mut got) };
            assert_eq!(got, want, "avx2, round {round}");
        }
    }
}

#[test]
fn the_word_pass_counts_and_lists_as_the_loop_a_sentence() {
    let mut rng = Rng(0x1319_8a2e_0370_7344);
    let (mut common, mut cells) = (Vec::new(), Vec::new());
    let mut listed = 0;
    for round in 0..3000 {
        let ns = 1 + rng.below(64);
        let vocab = [20, 300, 4000][round % 3];
        let (present, sentences) = new_document(&mut rng, ns, vocab);
        // Word counts on and off the multiples of 16 and 64, past one block of 1,024 now and
        // then; from all absent to all present.
        let n = match round % 10 {
            0 => rng.below(3000),
            1 => 64 * rng.below(20),
            2 => 16 * rng.below(60) + 1 + rng.below(15),
            _ => rng.below(800),
        };
        let words = earlier_words(&mut rng, n, vocab, [0, 1, 2, 5, 20][round % 5]);
        let os = 1 + rng.below(64);
        let ends = sentence_ends(&mut rng, n, os);
        let (want_common, want_cells) = reference(&sentences, &ends, &words, ns);
        common.clear();
        common.resize(ns * os, 0);
        cells.clear();
        let lookup = |w| sentences.get(&w).copied().unwrap_or(0);
        count_common(&present, lookup, &ends, &words, os, &mut common, &mut cells);
        assert_eq!(common, want_common, "round {round}");
        assert_eq!(cells, want_cells, "round {round}");
        listed += cells.len();
    }
    assert!(listed > 10_000, "{listed}");
}
