//! Owns Viterbi decoding over the masked transition table, of a whole sentence or of a
//! segment of one between tokens fixed to O (see [`crate::entities::gate`]).

use super::{allowed, part_of, Part, N_TAGS, START};
use crate::entities::simd::{Masked, LANES};

pub(super) fn ends_ok(tag: usize) -> bool {
    matches!(part_of(tag).0, Part::Out | Part::Last | Part::Unit)
}

/// Returns the transition scores as `(N_TAGS + 1)` rows of `LANES`, forbidden transitions and
/// padding at minus infinity (so they never win a strict comparison).
pub(super) fn masked_transitions(trans: &[f32]) -> Masked {
    let mut t = [[f32::NEG_INFINITY; LANES]; N_TAGS + 1];
    for (p, row) in t.iter_mut().enumerate() {
        for (c, v) in row.iter_mut().enumerate().take(N_TAGS) {
            if allowed(p, c) {
                *v = trans[p * N_TAGS + c];
            }
        }
    }
    t
}

/// Returns the best tag sequence for emission scores `em` (n x N_TAGS) and transition scores
/// `trans` ((N_TAGS + 1) x N_TAGS, last row from the start state). Forbidden transitions score
/// minus infinity; ties go to the lowest previous tag.
///
/// The inner loop runs over previous tags in ascending order and, for each, over all current
/// tags at once with a branch-free compare-and-select, so it vectorises and has no
/// data-dependent branch; a strict comparison keeps the lowest previous tag on ties, exactly as
/// a scalar loop over the allowed previous tags would.
pub fn viterbi(em: &[f32], trans: &[f32], back: &mut Vec<u8>, out: &mut Vec<u8>) {
    viterbi_masked(em, &masked_transitions(trans), back, out);
}

/// [`viterbi`] over transitions already masked by [`masked_transitions`].
pub(super) fn viterbi_masked(em: &[f32], t: &Masked, back: &mut Vec<u8>, out: &mut Vec<u8>) {
    viterbi_segment(em, t, Ends::SENTENCE, back, out);
}

/// Where a decoded run of tokens sits in its sentence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ends {
    /// Whether the token before the run is one fixed to O (else the run starts the sentence).
    pub after_o: bool,
    /// Whether the token after the run is one fixed to O (else the run ends the sentence).
    pub before_o: bool,
}

impl Ends {
    /// A whole sentence.
    pub const SENTENCE: Self = Self {
        after_o: false,
        before_o: false,
    };
}

/// [`viterbi_masked`] over a run of tokens between tokens fixed to O: the run's first tag
/// follows O (not the start state) when `ends.after_o`, and its last tag is followed by O's
/// transition when `ends.before_o`. With the fixed tokens' O scores being a constant, these
/// are the best tags of the whole sentence with those tokens fixed to O.
pub(super) fn viterbi_segment(
    em: &[f32],
    t: &Masked,
    ends: Ends,
    back: &mut Vec<u8>,
    out: &mut Vec<u8>,
) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the target feature was just detected on this CPU.
        unsafe { viterbi_avx2(em, t, ends, back, out) };
        return;
    }
    viterbi_body::<false>(em, t, ends, back, out);
}

/// [`viterbi`] compiled for eight-lane vectors (same scores and ties: the same operations in
/// the same order, only wider).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn viterbi_avx2(em: &[f32], t: &Masked, ends: Ends, back: &mut Vec<u8>, out: &mut Vec<u8>) {
    viterbi_body::<true>(em, t, ends, back, out);
}

/// [`viterbi`]'s body; `AVX2` (set only where the CPU has it) takes each step with
/// [`crate::entities::simd::viterbi_step`], the same arithmetic in explicit vectors.
#[inline(always)]
fn viterbi_body<const AVX2: bool>(
    em: &[f32],
    t: &Masked,
    ends: Ends,
    back: &mut Vec<u8>,
    out: &mut Vec<u8>,
) {
    let n = em.len() / N_TAGS;
    out.clear();
    if n == 0 {
        return;
    }
    let mut score = [f32::NEG_INFINITY; LANES];
    // The start row is masked like the others: forbidden first tags stay at minus infinity.
    let first = if ends.after_o { &t[0] } else { &t[START] };
    for (c, s) in score.iter_mut().enumerate().take(N_TAGS) {
        if first[c] != f32::NEG_INFINITY {
            *s = em[c] + first[c];
        }
    }
    back.clear();
    back.resize(n * N_TAGS, 0);
    #[cfg(target_arch = "x86_64")]
    let open = crate::entities::simd::Open::new(t);
    for (em_i, back_i) in em
        .chunks_exact(N_TAGS)
        .zip(back.chunks_exact_mut(N_TAGS))
        .skip(1)
    {
        #[cfg(target_arch = "x86_64")]
        if AVX2 {
            let em_i: &[f32; N_TAGS] = em_i.try_into().expect("chunks of N_TAGS");
            let back_i: &mut [u8; N_TAGS] = back_i.try_into().expect("chunks of N_TAGS");
            // SAFETY: `AVX2` is set only on the path that detected AVX2 on this CPU.
            unsafe { crate::entities::simd::viterbi_step(&mut score, t, &open, em_i, back_i) };
            continue;
        }
        let mut best = [f32::NEG_INFINITY; LANES];
        let mut arg = [0u32; LANES];
        for (p, row) in t.iter().enumerate().take(N_TAGS) {
            let sp = score[p];
            for ((b, a), &w) in best.iter_mut().zip(arg.iter_mut()).zip(row) {
                let v = sp + w;
                // All ones where `v` wins; selecting by bit masks (not `if`) is what keeps the
                // compiler from emitting a branch per lane.
                let win = 0u32.wrapping_sub(u32::from(v > *b));
                let old = b.to_bits();
                *b = f32::from_bits(old ^ ((old ^ v.to_bits()) & win));
                *a ^= (*a ^ p as u32) & win;
            }
        }
        for c in 0..N_TAGS {
            score[c] = best[c] + em_i[c];
            back_i[c] = arg[c] as u8;
        }
    }
    let mut cur = if ends.before_o {
        // Into O: the masked row leaves B and I at minus infinity, as `ends_ok` would.
        (0..N_TAGS)
            .filter(|&c| t[c][0] != f32::NEG_INFINITY)
            .max_by(|&a, &b| (score[a] + t[a][0]).total_cmp(&(score[b] + t[b][0])))
            .unwrap_or(0)
    } else {
        (0..N_TAGS)
            .filter(|&c| ends_ok(c))
            .max_by(|&a, &b| score[a].total_cmp(&score[b]))
            .unwrap_or(0)
    };
    out.resize(n, 0);
    for i in (0..n).rev() {
        out[i] = cur as u8;
        cur = usize::from(back[i * N_TAGS + cur]);
    }
}

/// Decodes each run of tokens between those `far` fixes to O, `em` holding emission rows for
/// the other tokens only, in order; `out` gets a tag for every token.
pub(super) fn viterbi_runs(
    em: &[f32],
    far: &[bool],
    t: &Masked,
    back: &mut Vec<u8>,
    run: &mut Vec<u8>,
    out: &mut Vec<u8>,
) {
    out.clear();
    out.resize(far.len(), 0);
    let (mut i, mut row) = (0, 0);
    while i < far.len() {
        if far[i] {
            i += 1;
            continue;
        }
        let end = far[i..]
            .iter()
            .position(|&f| f)
            .map_or(far.len(), |k| i + k);
        let ends = Ends {
            after_o: i > 0,
            before_o: end < far.len(),
        };
        let rows = end - i;
        viterbi_segment(&em[row * N_TAGS..(row + rows) * N_TAGS], t, ends, back, run);
        out[i..end].copy_from_slice(run);
        row += rows;
        i = end;
    }
}
