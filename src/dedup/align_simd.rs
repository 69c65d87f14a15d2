//! Owns the alignments' word pass ([`count_common`]): which of an earlier document's words the
//! new document holds, tested 64 words to a bitmask without a branch a word (portable, or eight
//! at a time with AVX2 gathers where the CPU has them), then the counts for the words it holds.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// The new document's presence set: bit `w & 63` of word `w >> 6` says whether it holds `w`.
pub(super) type Present = [u64; 1 << 10];

/// Earlier words tested per presence mask.
const LANE: usize = 64;
/// Presence masks worked out before their words are counted (a block of 1,024 words, more
/// than a sketch keeps).
const BLOCK: usize = 16;

/// Returns whether `present` holds `w`, as 0 or 1.
#[inline]
fn bit(present: &Present, w: u16) -> u64 {
    present[usize::from(w >> 6)] >> (w & 63) & 1
}

/// Sets `out[c]` to the mask of the words `words[64 c..64 c + 64]` that `present` holds (bit
/// `k` for word `64 c + k`); `out` has one mask for each 64 words or part.
#[inline]
fn present_masks(present: &Present, words: &[u16], out: &mut [u64]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, checked just above; the function is otherwise safe.
        return unsafe { present_masks_avx2(present, words, out) };
    }
    present_masks_portable(present, words, out);
}

/// [`present_masks`] without vector instructions: each tested bit shifted into place and or-ed,
/// no branch on it.
fn present_masks_portable(present: &Present, words: &[u16], out: &mut [u64]) {
    for (lane, m) in words.chunks(LANE).zip(out) {
        let mut bits = 0u64;
        for (k, &w) in lane.iter().enumerate() {
            bits |= bit(present, w) << k;
        }
        *m = bits;
    }
}

/// [`present_masks`] with AVX2: the presence set read as 32-bit words by gathers (`w >> 5`),
/// the tested bit shifted to the sign (left by `31 - (w & 31)`), 32 words' signs packed to
/// bytes and collected by one `movemask` ([`bits32`]), the rest eight at a time ([`bits8`]),
/// and the last words short of eight tested with the eight ending the slice (the first of
/// them tested twice, their bits shifted out).
///
/// # Safety
/// The CPU must have AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn present_masks_avx2(present: &Present, words: &[u16], out: &mut [u64]) {
    let n = words.len();
    let mut lanes = words.chunks_exact(LANE);
    for (lane, m) in (&mut lanes).zip(&mut *out) {
        // SAFETY: the CPU has AVX2 (this function's contract).
        let (lo, hi) = unsafe { (bits32(present, lane), bits32(present, &lane[32..])) };
        *m = u64::from(lo) | u64::from(hi) << 32;
    }
    let rest = lanes.remainder();
    if rest.is_empty() {
        return;
    }
    let (mut bits, mut k) = (0u64, 0);
    if rest.len() >= 32 {
        // SAFETY: as above.
        bits = u64::from(unsafe { bits32(present, rest) });
        k = 32;
    }
    while k + 8 <= rest.len() {
        // SAFETY: as above.
        bits |= u64::from(unsafe { bits8(present, &rest[k..]) }) << k;
        k += 8;
    }
    let short = rest.len() - k;
    if short > 0 {
        let last = if n >= 8 {
            // SAFETY: as above.
            u64::from(unsafe { bits8(present, &words[n - 8..]) }) >> (8 - short)
        } else {
            let set = words.iter().enumerate();
            set.fold(0, |m, (i, &w)| m | bit(present, w) << i)
        };
        bits |= last << k;
    }
    out[n / LANE] = bits;
}

/// Returns the first eight of `words` widened to 32 bits, each with its presence bit in the
/// sign.
///
/// # Safety
/// The CPU must have AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn signs8(present: &Present, words: &[u16]) -> __m256i {
    assert!(words.len() >= 8);
    // SAFETY: 8 `u16`s, one unaligned 16-byte load; each gathered index is `w >> 5 < 2048`,
    // a 32-bit word of the 8 KB presence set.
    unsafe {
        let w = _mm256_cvtepu16_epi32(_mm_loadu_si128(words.as_ptr().cast()));
        let base = present.as_ptr().cast::<i32>();
        let words32 = _mm256_i32gather_epi32::<4>(base, _mm256_srli_epi32::<5>(w));
        let shift = _mm256_andnot_si256(w, _mm256_set1_epi32(31));
        _mm256_sllv_epi32(words32, shift)
    }
}

/// Returns the presence bits of the first eight of `words` (bit `k` for word `k`).
///
/// # Safety
/// The CPU must have AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn bits8(present: &Present, words: &[u16]) -> u8 {
    // SAFETY: the CPU has AVX2 (this function's contract).
    let signs = unsafe { signs8(present, words) };
    _mm256_movemask_ps(_mm256_castsi256_ps(signs)) as u8
}

/// Returns the presence bits of the first 32 of `words` (bit `k` for word `k`): the signs of
/// four groups of eight packed (with signed saturation, which keeps them) to 16 and 8 bits,
/// whose lane interleaving one permutation undoes.
///
/// # Safety
/// The CPU must have AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn bits32(present: &Present, words: &[u16]) -> u32 {
    assert!(words.len() >= 32);
    // SAFETY: the CPU has AVX2 (this function's contract); each group has eight words.
    let [a, b, c, d] = unsafe { [0, 8, 16, 24].map(|at| signs8(present, &words[at..])) };
    // 16-bit lanes: a0-3 b0-3 | a4-7 b4-7 and c0-3 d0-3 | c4-7 d4-7; then bytes:
    // a0-3 b0-3 c0-3 d0-3 | a4-7 b4-7 c4-7 d4-7, 32-bit groups 0 1 2 3 | 4 5 6 7, to be read
    // in the order a0-3 a4-7 b0-3 b4-7 ...: 0 4 1 5 2 6 3 7.
    let ab = _mm256_packs_epi32(a, b);
    let cd = _mm256_packs_epi32(c, d);
    let bytes = _mm256_packs_epi16(ab, cd);
    let order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    _mm256_movemask_epi8(_mm256_permutevar8x32_epi32(bytes, order)) as u32
}

/// Adds to `common` (new sentence major, `os` cells a row) the content words each pair of
/// sentences shares, for the earlier document's sentences ending at `ends` in `words` (its
/// words up to the last end), and lists in `cells` each pair as it reaches two (so once).
/// `present` says which words the new document holds and `sentences` which of its sentences
/// (a bitmask) hold one it holds.
///
/// One pass over all the earlier words, not a loop a sentence: most words are not in the new
/// document, and which are is tested 64 words at a time into a mask ([`present_masks`]); only
/// for the words it holds, visited in order through the mask's set bits, is their sentence
/// worked out, by moving past the ends at or before their position (the same sentence the loop
/// a sentence gave, `ends` being ordered), and their cells counted.
#[inline]
pub(super) fn count_common(
    present: &Present,
    sentences: impl Fn(u16) -> u64,
    ends: &[u16],
    words: &[u16],
    os: usize,
    common: &mut [u16],
    cells: &mut Vec<u32>,
) {
    let mut j = 0usize;
    let mut masks = [0u64; BLOCK];
    for (b, block) in words.chunks(LANE * BLOCK).enumerate() {
        let masks = &mut masks[..block.len().div_ceil(LANE)];
        present_masks(present, block, masks);
        for (c, &mask) in masks.iter().enumerate() {
            let mut m = mask;
            while m != 0 {
                let k = c * LANE + m.trailing_zeros() as usize;
                m &= m - 1;
                let at = b * LANE * BLOCK + k;
                while ends.get(j).is_some_and(|&end| usize::from(end) <= at) {
                    j += 1;
                }
                let mut s = sentences(block[k]);
                while s != 0 {
                    // Below `ns * os`: new sentence `i < ns` (a mask bit) and old `j < os`.
                    let cell = s.trailing_zeros() as usize * os + j;
                    if let Some(c) = common.get_mut(cell) {
                        *c += 1;
                        if *c == 2 {
                            cells.push(cell as u32);
                        }
                    }
                    s &= s - 1;
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "align_simd_tests.rs"]
mod tests;
