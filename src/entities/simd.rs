//! Owns the tagger's AVX2 kernels (the sum of a token's weight rows and one sparse Viterbi step) and the
//! cache prefetch hints the table lookups use.
//!
//! Both do exactly the arithmetic of the portable loops in [`super::perceptron`] (the same
//! integer sums, the same `f32` additions and strict comparisons in the same order), written
//! with explicit vector instructions because the compiler kept those loops scalar. Callers check
//! that the CPU has AVX2 before calling them.

use super::perceptron::{N_TAGS, ROW};
#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// Score lanes of a Viterbi step: the tags padded to three vectors of eight.
pub const LANES: usize = 24;

/// Transition scores as `(N_TAGS + 1)` rows of `LANES`, the start state's row last; forbidden
/// transitions and padding at minus infinity.
pub type Masked = [[f32; LANES]; N_TAGS + 1];

/// Adds up the rows `ids` (each `row << shift`, widened to `i32`) and writes the token's
/// emission scores into `em`: 0 for tag O, then the sums times `scale`.
///
/// # Safety
/// The CPU must have AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
pub unsafe fn token_scores(
    rows: &[[i8; ROW]],
    shifts: &[u8],
    ids: &[u32],
    scale: f32,
    em: &mut [f32; N_TAGS],
) {
    const { assert!(ROW == 16) };
    // One length for both, so that one comparison checks a row number against both.
    let n = rows.len().min(shifts.len());
    let (rows, shifts) = (&rows[..n], &shifts[..n]);
    // Two pairs of accumulators, a row to each in turn: half the loop overhead, and two
    // chains of additions that do not wait on each other. Integer sums, so the split does
    // not change them.
    let mut acc = [_mm256_setzero_si256(); 4];
    let mut pairs = ids.chunks_exact(2);
    for pair in &mut pairs {
        for (k, &i) in pair.iter().enumerate() {
            let i = i as usize;
            // The load-time check guarantees a row and a shift for every set bit.
            let (Some(row), Some(&shift)) = (rows.get(i), shifts.get(i)) else {
                continue;
            };
            let (lo, hi) = row_lanes(row, shift);
            acc[2 * k] = _mm256_add_epi32(acc[2 * k], lo);
            acc[2 * k + 1] = _mm256_add_epi32(acc[2 * k + 1], hi);
        }
    }
    for &i in pairs.remainder() {
        let i = i as usize;
        let (Some(row), Some(&shift)) = (rows.get(i), shifts.get(i)) else {
            continue;
        };
        let (lo, hi) = row_lanes(row, shift);
        acc[0] = _mm256_add_epi32(acc[0], lo);
        acc[1] = _mm256_add_epi32(acc[1], hi);
    }
    let lo = _mm256_add_epi32(acc[0], acc[2]);
    let hi = _mm256_add_epi32(acc[1], acc[3]);
    let s = _mm256_set1_ps(scale);
    let mut out = [0f32; ROW];
    // SAFETY: `out` holds 16 floats, two unaligned stores of eight.
    unsafe {
        _mm256_storeu_ps(out.as_mut_ptr(), _mm256_mul_ps(_mm256_cvtepi32_ps(lo), s));
        _mm256_storeu_ps(
            out.as_mut_ptr().add(8),
            _mm256_mul_ps(_mm256_cvtepi32_ps(hi), s),
        );
    }
    em[0] = 0.0;
    em[1..].copy_from_slice(&out);
}

/// Returns a row's 16 weights widened to `i32` and shifted left by `shift`, as lanes 0..8 and
/// 8..16.
///
/// # Safety
/// The CPU must have AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn row_lanes(row: &[i8; ROW], shift: u8) -> (__m256i, __m256i) {
    let count = _mm_cvtsi32_si128(i32::from(shift));
    // SAFETY: `row` is 16 readable bytes: two unaligned 8-byte loads, at 0 and 8.
    let (w_lo, w_hi) = unsafe {
        (
            _mm_loadl_epi64(row.as_ptr().cast()),
            _mm_loadl_epi64(row.as_ptr().add(8).cast()),
        )
    };
    (
        _mm256_sll_epi32(_mm256_cvtepi8_epi32(w_lo), count),
        _mm256_sll_epi32(_mm256_cvtepi8_epi32(w_hi), count),
    )
}

/// Previous tags that close an entity or are outside one (O, and L and U of every type): the
/// only ones that may be followed by O, B or U, and never by I or L.
pub const CLOSED: [usize; 9] = [0, 3, 4, 7, 8, 11, 12, 15, 16];

/// The transitions out of the open tags (B and I of every type), which may only be followed by
/// I or L of their own type: per current tag (the first 16 lanes), the score from B and from
/// I of the current tag's type, minus infinity for currents that are not I or L.
#[derive(Debug, Clone, Copy)]
pub struct Open {
    pub from_b: [f32; 16],
    pub from_i: [f32; 16],
}

impl Open {
    /// Reads the open tags' transitions out of masked transition rows.
    pub fn new(t: &Masked) -> Self {
        let mut o = Self {
            from_b: [f32::NEG_INFINITY; 16],
            from_i: [f32::NEG_INFINITY; 16],
        };
        for ty in 0..4 {
            let (b, i) = (1 + 4 * ty, 2 + 4 * ty);
            for c in [2 + 4 * ty, 3 + 4 * ty] {
                o.from_b[c] = t[b][c];
                o.from_i[c] = t[i][c];
            }
        }
        o
    }
}

/// One Viterbi step: for every current tag, the best allowed previous tag (the lowest on
/// ties) and its score plus the transition, then plus the emission `em_i`; writes the new
/// scores into `score` and the back-pointers into `back_i`.
///
/// Only allowed transitions are scored: the nine closed previous tags against every lane (their
/// rows are minus infinity at I and L), then, for the I and L lanes, B and I of the lane's own
/// type, read out of the score vector by a lane permutation. A lane sees its candidates in
/// ascending previous tag, as the dense loop over all tags does, and every candidate this skips
/// is minus infinity, which never wins the strict comparison: same scores, same ties.
///
/// # Safety
/// The CPU must have AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
pub unsafe fn viterbi_step(
    score: &mut [f32; LANES],
    t: &Masked,
    open: &Open,
    em_i: &[f32; N_TAGS],
    back_i: &mut [u8; N_TAGS],
) {
    const { assert!(N_TAGS == 17 && LANES == 24) };
    let mut best = [_mm256_set1_ps(f32::NEG_INFINITY); 3];
    let mut arg = [_mm256_setzero_si256(); 3];
    for p in CLOSED {
        let row = &t[p];
        let sp = _mm256_set1_ps(score[p]);
        let pv = _mm256_set1_epi32(p as i32);
        for k in 0..3 {
            // SAFETY: `row` holds 24 floats, so lanes 8k..8k+8 are in bounds.
            let w = unsafe { _mm256_loadu_ps(row.as_ptr().add(8 * k)) };
            let v = _mm256_add_ps(sp, w);
            // Strictly greater (scores are never NaN), so the lowest previous tag keeps a tie.
            let win = _mm256_cmp_ps::<_CMP_GT_OQ>(v, best[k]);
            best[k] = _mm256_blendv_ps(best[k], v, win);
            arg[k] = _mm256_blendv_epi8(arg[k], pv, _mm256_castps_si256(win));
        }
    }
    // Lanes I and L of type j sit at 4j + 2 and 4j + 3, B and I of that type at 4j + 1 and
    // 4j + 2: within each vector of eight, lanes 2, 3 read lanes 1 (B) and 2 (I), lanes 6, 7
    // read 5 and 6. Other lanes read lane 0 and add minus infinity.
    let from_b = _mm256_setr_epi32(0, 0, 1, 1, 0, 0, 5, 5);
    let from_i = _mm256_setr_epi32(0, 0, 2, 2, 0, 0, 6, 6);
    for k in 0..2 {
        // SAFETY: `score` holds 24 floats and `open`'s arrays 16, so lanes 8k..8k+8 are in
        // bounds of each.
        let (s, tb, ti) = unsafe {
            (
                _mm256_loadu_ps(score.as_ptr().add(8 * k)),
                _mm256_loadu_ps(open.from_b.as_ptr().add(8 * k)),
                _mm256_loadu_ps(open.from_i.as_ptr().add(8 * k)),
            )
        };
        let base = _mm256_set1_epi32(8 * k as i32);
        for (idx, tr) in [(from_b, tb), (from_i, ti)] {
            let v = _mm256_add_ps(_mm256_permutevar8x32_ps(s, idx), tr);
            let win = _mm256_cmp_ps::<_CMP_GT_OQ>(v, best[k]);
            best[k] = _mm256_blendv_ps(best[k], v, win);
            let pv = _mm256_add_epi32(idx, base);
            arg[k] = _mm256_blendv_epi8(arg[k], pv, _mm256_castps_si256(win));
        }
    }
    // SAFETY: `score` holds 24 floats and `em_i` 17, so lanes 0..16 are in bounds of both.
    unsafe {
        for (k, b) in best.iter().enumerate().take(2) {
            let e = _mm256_loadu_ps(em_i.as_ptr().add(8 * k));
            _mm256_storeu_ps(score.as_mut_ptr().add(8 * k), _mm256_add_ps(*b, e));
        }
    }
    score[16] = _mm256_cvtss_f32(best[2]) + em_i[16];
    // Back-pointers are below 17: pack lanes 0..16 from 32 to 16 to 8 bits.
    let w = _mm256_permute4x64_epi64::<0b11_01_10_00>(_mm256_packs_epi32(arg[0], arg[1]));
    let b = _mm_packus_epi16(_mm256_castsi256_si128(w), _mm256_extracti128_si256::<1>(w));
    // SAFETY: `back_i` holds 17 bytes, so the 16-byte unaligned store is in bounds.
    unsafe { _mm_storeu_si128(back_i.as_mut_ptr().cast(), b) };
    back_i[16] = _mm256_cvtsi256_si32(arg[2]) as u8;
}

/// Asks the CPU to start loading the cache line at `p` into the first-level cache (a hint;
/// never faults).
#[inline(always)]
pub(super) fn prefetch(p: *const i8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint that never dereferences or faults, whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch(p, std::arch::x86_64::_MM_HINT_T0);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Asks the CPU to start loading the cache line at `p` into the second-level cache, for data
/// needed a little later than [`prefetch`]'s (a hint; never faults).
#[inline(always)]
pub(super) fn prefetch_l2(p: *const i8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint that never dereferences or faults, whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch(p, std::arch::x86_64::_MM_HINT_T1);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}
