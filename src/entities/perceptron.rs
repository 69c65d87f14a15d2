//! Owns the linear-chain model: BILOU tags, the hashed weight table (dense for training,
//! sparse and quantised for tagging), Viterbi decoding and the averaged-perceptron update.

use super::features::N_FEATURES;
use super::simd::{prefetch_l2, Masked};

mod trainer;
mod viterbi;
pub use trainer::{average_of, Trainer};
#[cfg(test)]
use viterbi::ends_ok;
pub use viterbi::viterbi;
pub use viterbi::Ends;
use viterbi::{masked_transitions, viterbi_masked, viterbi_runs};

/// Entity types the statistical model tags.
pub const TYPES: [&str; 4] = ["PER", "ORG", "LOC", "MISC"];
/// Number of BILOU tags: O plus B, I, L, U for each type.
pub const N_TAGS: usize = 1 + 4 * TYPES.len();
/// The start state's row in the transition table.
pub const START: usize = N_TAGS;
/// Weights per row of the tagging table: tag O's weight is subtracted from every tag's (a
/// per-token constant, which Viterbi ignores), so O scores 0 and a row is 16 `i8`, a quarter
/// of a cache line.
pub const ROW: usize = N_TAGS - 1;
/// Length of a transition table: `(N_TAGS + 1) x N_TAGS`, the start state's row last.
pub const TRANS_LEN: usize = (N_TAGS + 1) * N_TAGS;

/// Position of a tag inside its entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Out,
    Begin,
    Inside,
    Last,
    Unit,
}

/// Returns the tag index of `part` for entity type `ty`.
pub fn tag(part: Part, ty: usize) -> usize {
    match part {
        Part::Out => 0,
        Part::Begin => 1 + 4 * ty,
        Part::Inside => 2 + 4 * ty,
        Part::Last => 3 + 4 * ty,
        Part::Unit => 4 + 4 * ty,
    }
}

/// Returns the part and type of a tag index.
pub fn part_of(tag: usize) -> (Part, usize) {
    if tag == 0 || tag >= N_TAGS {
        return (Part::Out, 0);
    }
    let ty = (tag - 1) / 4;
    let part = match (tag - 1) % 4 {
        0 => Part::Begin,
        1 => Part::Inside,
        2 => Part::Last,
        _ => Part::Unit,
    };
    (part, ty)
}

/// Transition admissibility, computed once: `ALLOWED[prev][cur]`, `prev == START` first.
static ALLOWED: std::sync::LazyLock<[[bool; N_TAGS]; N_TAGS + 1]> =
    std::sync::LazyLock::new(|| {
        let mut a = [[false; N_TAGS]; N_TAGS + 1];
        for (p, row) in a.iter_mut().enumerate() {
            for (c, v) in row.iter_mut().enumerate() {
                *v = allowed_slow(p, c);
            }
        }
        a
    });

/// Returns whether `cur` may follow `prev` (`START` for the first token).
#[inline]
pub fn allowed(prev: usize, cur: usize) -> bool {
    ALLOWED[prev][cur]
}

fn allowed_slow(prev: usize, cur: usize) -> bool {
    let (pp, pt) = part_of(prev);
    let (cp, ct) = part_of(cur);
    let prev_open = prev != START && matches!(pp, Part::Begin | Part::Inside);
    if prev_open {
        matches!(cp, Part::Inside | Part::Last) && ct == pt
    } else {
        matches!(cp, Part::Out | Part::Begin | Part::Unit)
    }
}

/// Reusable buffers for decoding, so tagging allocates nothing per sentence or token.
#[derive(Debug, Default)]
pub struct Scratch {
    pub em: Vec<f32>,
    back: Vec<u8>,
    /// Per token, 64 slots of row numbers, the first `counts[t]` of them used.
    ids: Vec<u32>,
    counts: Vec<u8>,
    /// The last transition table (its bits) and its masked form, so that consecutive sentences
    /// of one pass mask it once. Keyed by content, not address: a table freed and another
    /// loaded at the same address must not reuse the old mask.
    masked: Vec<(Vec<u32>, Box<Masked>)>,
    /// One run's tags in [`StageView::decode_kept`].
    run: Vec<u8>,
}

/// Returns the masked form of `trans` from `cache`, computing it only for a table not among
/// the last few seen (one per pass of a model); it ends last in `cache`.
fn masked_cached<'s>(cache: &'s mut Vec<(Vec<u32>, Box<Masked>)>, trans: &[f32]) -> &'s Masked {
    let same =
        |k: &[u32]| k.len() == trans.len() && k.iter().zip(trans).all(|(&a, b)| a == b.to_bits());
    let at = match cache.iter().position(|(k, _)| same(k)) {
        Some(at) => {
            // The table just used goes last, where [`StageView::prepare`] finds it.
            let last = cache.len() - 1;
            cache[at..].rotate_left(1);
            last
        }
        None => {
            if cache.len() >= super::model_file::MAX_STAGES {
                cache.remove(0);
            }
            let key = trans.iter().map(|t| t.to_bits()).collect();
            cache.push((key, Box::new(masked_transitions(trans))));
            cache.len() - 1
        }
    };
    &cache[at].1
}

/// A pass's masked transitions found by [`StageView::prepare`]: their slot in the scratch.
#[derive(Debug, Clone, Copy)]
pub struct Prepared(usize);

/// One pass's dense quantised weights, as training produces them.
#[derive(Debug, Clone)]
pub struct Stage {
    pub bits: u32,
    /// How many leading positions of each token's buckets this pass reads (see
    /// [`super::features::ORDER`]).
    pub templates: u32,
    /// `2^bits` rows of `N_TAGS` quantised weights.
    weights: Vec<i16>,
    scale: f32,
    trans: Vec<f32>,
}

impl Stage {
    /// Quantises float weights into a stage.
    pub fn from_floats(bits: u32, w: &[f32], trans: Vec<f32>) -> Self {
        let max = w.iter().fold(0f32, |m, x| m.max(x.abs())).max(1e-9);
        let scale = max / 32767.0;
        let weights = w.iter().map(|x| (x / scale).round() as i16).collect();
        Self {
            bits,
            templates: N_FEATURES as u32,
            weights,
            scale,
            trans,
        }
    }

    /// Returns the stage reading only the first `templates` positions of each token.
    pub fn with_templates(mut self, templates: usize) -> Self {
        self.templates = templates.clamp(1, N_FEATURES) as u32;
        self
    }

    /// Zeroes weights smaller than `frac` of the largest (a smaller model file); returns how
    /// many non-zero weights remain.
    pub fn prune(&mut self, frac: f32) -> usize {
        let cut = (frac * 32767.0) as i16;
        for w in &mut self.weights {
            if w.abs() < cut {
                *w = 0;
            }
        }
        self.weights.iter().filter(|w| **w != 0).count()
    }

    /// Builds the tagging table: each row's weights relative to tag O, quantised to `i8` with
    /// a per-row power-of-two scale; rows that are all zero are left out and a bitmap with
    /// running ranks finds the others.
    pub fn compile(&self) -> CompiledStage {
        let rows = 1usize << self.bits;
        let words = rows.div_ceil(64);
        let mut out = CompiledStage {
            bits: self.bits,
            templates: self.templates,
            scale: self.scale,
            trans: self.trans.clone(),
            bitmap: vec![0; words],
            rank: vec![0; words],
            shifts: Vec::new(),
            rows: Vec::new(),
        };
        for (r, w) in self.weights.chunks_exact(N_TAGS).enumerate() {
            let o = i32::from(w[0]);
            let d: [i32; ROW] = std::array::from_fn(|t| i32::from(w[t + 1]) - o);
            let max = d.iter().map(|x| x.unsigned_abs()).max().unwrap_or(0);
            let mut shift = 0u32;
            while ((max + ((1 << shift) >> 1)) >> shift) > 127 {
                shift += 1;
            }
            let q: [i8; ROW] = std::array::from_fn(|t| {
                let v = (f64::from(d[t]) / f64::from(1u32 << shift)).round();
                v.clamp(-127.0, 127.0) as i8
            });
            if q.iter().all(|&x| x == 0) {
                continue;
            }
            out.bitmap[r / 64] |= 1 << (r % 64);
            out.shifts.push(shift as u8);
            out.rows.push(q);
        }
        let mut seen = 0u32;
        for (rank, word) in out.rank.iter_mut().zip(&out.bitmap) {
            *rank = seen;
            seen += word.count_ones();
        }
        out
    }
}

/// One pass's tagging table, owned (training, tests); the model file stores these arrays.
#[derive(Debug, Clone)]
pub struct CompiledStage {
    pub bits: u32,
    pub templates: u32,
    pub scale: f32,
    pub trans: Vec<f32>,
    pub bitmap: Vec<u64>,
    pub rank: Vec<u32>,
    pub shifts: Vec<u8>,
    pub rows: Vec<[i8; ROW]>,
}

impl CompiledStage {
    /// Returns a view over the owned arrays.
    pub fn view(&self) -> StageView<'_> {
        StageView {
            bits: self.bits,
            templates: self.templates,
            scale: self.scale,
            trans: &self.trans,
            bitmap: &self.bitmap,
            rank: &self.rank,
            shifts: &self.shifts,
            rows: &self.rows,
        }
    }
}

/// One pass's tagging table over borrowed arrays (the model file's bytes).
#[derive(Debug, Clone, Copy)]
pub struct StageView<'a> {
    pub bits: u32,
    /// How many leading positions of each token's `N_FEATURES` buckets this pass reads.
    pub templates: u32,
    /// Multiplies the integer row sums into scores.
    pub scale: f32,
    /// `TRANS_LEN` transition scores, the start state's row last.
    pub trans: &'a [f32],
    /// One bit per hashed feature bucket: whether it has a row.
    pub bitmap: &'a [u64],
    /// Per bitmap word, the number of rows before it.
    pub rank: &'a [u32],
    /// Per row, the power of two its `i8` weights are scaled by.
    pub shifts: &'a [u8],
    pub rows: &'a [[i8; ROW]],
}

impl StageView<'_> {
    /// Returns whether the arrays fit together, so that lookups stay in bounds.
    pub fn is_well_formed(&self) -> bool {
        let words = (1usize << self.bits).div_ceil(64);
        let ones: u64 = self.bitmap.iter().map(|w| u64::from(w.count_ones())).sum();
        let ranks_ok = self
            .rank
            .iter()
            .zip(self.bitmap)
            .try_fold(0u32, |seen, (&r, w)| {
                (r == seen).then(|| seen + w.count_ones())
            })
            .is_some();
        self.trans.len() == TRANS_LEN
            && self.bitmap.len() == words
            && self.rank.len() == words
            && ranks_ok
            && ones == self.rows.len() as u64
            && self.shifts.len() == self.rows.len()
            && self.shifts.iter().all(|&s| s < 24)
            && (1..=N_FEATURES as u32).contains(&self.templates)
    }

    /// Writes emission scores for a sentence's features (`N_FEATURES` buckets per token).
    ///
    /// A first loop turns every bucket of the sentence into a row number without a branch and
    /// asks for the row and its shift at once, so the whole sentence's cache misses overlap; a
    /// second adds up each token's rows. Uses AVX2, POPCNT and BMI2 when the CPU has them (same sums
    /// either way).
    pub fn emissions(&self, feats: &[u32], scratch: &mut Scratch) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("popcnt")
            && std::arch::is_x86_feature_detected!("bmi2")
        {
            // SAFETY: the three target features were just detected on this CPU.
            unsafe { self.emissions_avx2(feats, scratch) };
            return;
        }
        self.emissions_body::<false>(feats, scratch);
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,popcnt,bmi2")]
    unsafe fn emissions_avx2(&self, feats: &[u32], scratch: &mut Scratch) {
        self.emissions_body::<true>(feats, scratch);
    }

    /// [`Self::emissions`]'s body; `AVX2` (set only where the CPU has it) sums each token's
    /// rows with [`super::simd::token_scores`], the same integer sums in explicit vectors.
    #[inline(always)]
    fn emissions_body<const AVX2: bool>(&self, feats: &[u32], scratch: &mut Scratch) {
        /// Slots of row numbers per token: a power of two, so that indexing a token's slots
        /// with `n % IDS` needs no bounds check (n stays below `N_FEATURES`).
        const IDS: usize = 64;
        const { assert!(N_FEATURES <= IDS) };
        let n_tok = feats.len() / N_FEATURES;
        let Scratch {
            em, ids, counts, ..
        } = scratch;
        // Every slot read below is written first, so the buffer is only grown, never cleared.
        if ids.len() < n_tok * IDS {
            ids.resize(n_tok * IDS, 0);
        }
        counts.clear();
        // The bitmap and rank words (96 KiB for 2^19 buckets) mostly stay in the second-level
        // cache, so they are not prefetched: a loop that asked for all of a sentence's first
        // measured slower (tokens per CPU second on eng.testa, same run, noted in the commit).
        // One length for both, so that one comparison checks a bucket's word against both.
        let n_words = self.bitmap.len().min(self.rank.len());
        let (bitmap, ranks) = (&self.bitmap[..n_words], &self.rank[..n_words]);
        let used = (self.templates as usize).min(N_FEATURES);
        for (tok, out) in feats
            .chunks_exact(N_FEATURES)
            .zip(ids.chunks_exact_mut(IDS))
        {
            // A fixed-size view, so that `n % IDS` needs no bounds check.
            let out: &mut [u32; IDS] = out.try_into().expect("chunks of IDS");
            let mut n = 0;
            for &b in &tok[..used] {
                let b = b as usize;
                // Buckets come from `write_features` with this pass's bits, so they are below
                // `2^bits`; an out-of-range one simply has no row.
                let (word, rank) = match (bitmap.get(b >> 6), ranks.get(b >> 6)) {
                    (Some(&w), Some(&r)) => (w, r),
                    _ => (0, 0),
                };
                let bit = 1u64 << (b & 63);
                let id = (rank + (word & (bit - 1)).count_ones()) as usize;
                out[n % IDS] = id as u32;
                n += usize::from(word & bit != 0);
                // Start the row's and the shift's misses now, whole sentence at once, so they
                // overlap each other and the rest of this loop (a bucket without a row
                // prefetches its neighbour's, harmlessly).
                prefetch_l2(self.rows.as_ptr().wrapping_add(id).cast());
                prefetch_l2(self.shifts.as_ptr().wrapping_add(id).cast());
            }
            counts.push(n as u8);
        }
        // Every token's scores are written whole below, so old values need no clearing.
        em.resize(n_tok * N_TAGS, 0.0);
        // The load-time check makes shifts as long as rows; slicing both to one length lets
        // the compiler check one index per row, not two.
        let n_rows = self.rows.len().min(self.shifts.len());
        let (rows, shifts) = (&self.rows[..n_rows], &self.shifts[..n_rows]);
        for (t, em_t) in em.chunks_exact_mut(N_TAGS).enumerate() {
            let mine = &ids[t * IDS..][..usize::from(counts[t])];
            #[cfg(target_arch = "x86_64")]
            if AVX2 {
                let em_t: &mut [f32; N_TAGS] = em_t.try_into().expect("chunks of N_TAGS");
                // SAFETY: `AVX2` is set only on the path that detected AVX2 on this CPU.
                unsafe { super::simd::token_scores(rows, shifts, mine, self.scale, em_t) };
                continue;
            }
            let mut acc = [0i32; ROW];
            for &i in mine {
                let i = i as usize;
                // The load-time check guarantees a row and a shift for every set bit.
                let (Some(row), Some(&shift)) = (rows.get(i), shifts.get(i)) else {
                    continue;
                };
                for (a, &w) in acc.iter_mut().zip(row) {
                    *a += i32::from(w) << shift;
                }
            }
            em_t[0] = 0.0;
            for (e, &a) in em_t[1..].iter_mut().zip(&acc) {
                *e = a as f32 * self.scale;
            }
        }
    }

    /// Decodes a sentence's features into tags.
    pub fn decode(&self, feats: &[u32], scratch: &mut Scratch, out: &mut Vec<u8>) {
        let p = self.prepare(scratch);
        self.decode_prepared(feats, scratch, p, out);
    }

    /// Finds (or computes) this pass's masked transitions in `scratch`, for
    /// [`Self::decode_prepared`]: a caller decoding many sentences of one pass compares the
    /// transition table once, not once per sentence.
    pub fn prepare(&self, scratch: &mut Scratch) -> Prepared {
        masked_cached(&mut scratch.masked, self.trans);
        let at = scratch.masked.len() - 1;
        Prepared(at)
    }

    /// [`Self::decode`] with the masked transitions [`Self::prepare`] found; `p` must come from
    /// this pass's `prepare` on this `scratch`, with no other pass prepared since.
    pub fn decode_prepared(
        &self,
        feats: &[u32],
        scratch: &mut Scratch,
        p: Prepared,
        out: &mut Vec<u8>,
    ) {
        self.decode_kept(feats, &[], scratch, p, out);
    }

    /// [`Self::decode_prepared`] of a sentence some of whose tokens `far` fixes to O (see
    /// [`super::gate`]): `feats` holds rows only for the other tokens (as
    /// [`super::features::write_kept`] writes them), and each run of them between fixed tokens
    /// is decoded on its own, which for BILOU is exact (an O ends every entity). `out` gets a
    /// tag for every token of the sentence; an empty `far` fixes none.
    pub fn decode_kept(
        &self,
        feats: &[u32],
        far: &[bool],
        scratch: &mut Scratch,
        p: Prepared,
        out: &mut Vec<u8>,
    ) {
        self.emissions(feats, scratch);
        let Scratch {
            em,
            back,
            masked,
            run,
            ..
        } = scratch;
        let t: &Masked = match masked.get(p.0) {
            Some((_, t)) => t,
            None => masked_cached(masked, self.trans),
        };
        if far.contains(&true) {
            viterbi_runs(em, far, t, back, run, out);
        } else {
            viterbi_masked(em, t, back, out);
        }
    }
}

#[cfg(test)]
mod tests;
