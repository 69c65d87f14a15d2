//! Owns the tagger's AVX2 kernels (the sum of a token's weight rows and one Viterbi step) and the
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
    let mut lo = _mm256_setzero_si256();
    let mut hi = _mm256_setzero_si256();
    for &i in ids {
        let i = i as usize;
        // The load-time check guarantees a row and a shift for every set bit.
        let (Some(row), Some(&shift)) = (rows.get(i), shifts.get(i)) else {
            continue;
        };
        // SAFETY: `row` is 16 readable bytes; the load has no alignment requirement.
        let w = unsafe { _mm_loadu_si128(row.as_ptr().cast()) };
        let count = _mm_cvtsi32_si128(i32::from(shift));
        let w_lo = _mm256_cvtepi8_epi32(w);
        let w_hi = _mm256_cvtepi8_epi32(_mm_srli_si128::<8>(w));
        lo = _mm256_add_epi32(lo, _mm256_sll_epi32(w_lo, count));
        hi = _mm256_add_epi32(hi, _mm256_sll_epi32(w_hi, count));
    }
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

/// One Viterbi step: for every current tag, the best previous tag (the lowest on ties) and
/// its score plus the transition, then plus the emission `em_i`; writes the new scores into
/// `score` and the back-pointers into `back_i`.
///
/// # Safety
/// The CPU must have AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
pub unsafe fn viterbi_step(score: &mut [f32; LANES], t: &Masked, em_i: &[f32], back_i: &mut [u8]) {
    let mut best = [_mm256_set1_ps(f32::NEG_INFINITY); 3];
    let mut arg = [_mm256_setzero_si256(); 3];
    for (p, row) in t.iter().enumerate().take(N_TAGS) {
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
    let mut b = [0f32; LANES];
    let mut a = [0u32; LANES];
    for k in 0..3 {
        // SAFETY: `b` and `a` hold 24 lanes, so lanes 8k..8k+8 are in bounds.
        unsafe {
            _mm256_storeu_ps(b.as_mut_ptr().add(8 * k), best[k]);
            _mm256_storeu_si256(a.as_mut_ptr().add(8 * k).cast(), arg[k]);
        }
    }
    for c in 0..N_TAGS {
        score[c] = b[c] + em_i[c];
        back_i[c] = a[c] as u8;
    }
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
