//! Owns the feature templates: each token's `N_FEATURES` values, hashed with their template id
//! into buckets of the weight table.
//!
//! A bucket is the top `bits` bits of `mix(template constant ^ value)`. Writing them is most of
//! what features cost, so the same buckets are reached with less work where that is exact:
//! the pair values that neighbouring tokens share (template 19 of a token is template 20 of
//! the one before it, 21 and 22 likewise) are combined once, and templates whose values come
//! from a few small integers (the constant, the second-pass fields, capitalised runs) read
//! their hashes from tables computed once per process.

use super::super::perceptron::N_TAGS;
use super::{combine, mix, TokInfo, N_FEATURES, PAD};
use std::sync::LazyLock;

#[inline]
fn gaz_code(t: &TokInfo) -> u64 {
    let mut v = 0u64;
    for g in t.gaz {
        v = (v << 3) | u64::from(g);
    }
    v
}

/// Templates whose values read the second-pass fields (`prior`, `prior_mask`, `first`,
/// `pair_prev`, `pair_next`); every other template has the same bucket in every pass.
pub const SECOND_PASS: [usize; 8] = [38, 39, 40, 41, 42, 49, 51, 52];

/// Template ids are below this (an id names its hash constant; not every id is in use).
pub const N_IDS: usize = 55;

/// The template of each position of a token's row of buckets: the first pass's templates
/// ([`FIRST_PASS`] of them), then the [`SECOND_PASS`] ones, which only later passes read (in
/// the first pass their fields are all zero, so they would only repeat the bias and the
/// short shape).
pub const ORDER: [usize; N_FEATURES] = {
    let mut order = [0; N_FEATURES];
    let mut n = 0;
    let mut id = 0;
    while id < N_IDS {
        let mut second = false;
        let mut k = 0;
        while k < SECOND_PASS.len() {
            second |= SECOND_PASS[k] == id;
            k += 1;
        }
        if !second {
            order[n] = id;
            n += 1;
        }
        id += 1;
    }
    let mut k = 0;
    while k < SECOND_PASS.len() {
        order[n] = SECOND_PASS[k];
        n += 1;
        k += 1;
    }
    assert!(n == N_FEATURES);
    order
};

/// Positions the first pass reads: every template but the [`SECOND_PASS`] ones.
pub const FIRST_PASS: usize = N_FEATURES - SECOND_PASS.len();

/// The position of each template id in a token's row: the inverse of [`ORDER`], so that a
/// template's bucket is written straight to its slot.
const POS: [usize; N_IDS] = {
    let mut pos = [usize::MAX; N_IDS];
    let mut k = 0;
    while k < N_FEATURES {
        pos[ORDER[k]] = k;
        k += 1;
    }
    let mut id = 0;
    while id < N_IDS {
        assert!(pos[id] < N_FEATURES);
        id += 1;
    }
    pos
};

/// A token's row of buckets.
type Row = [u32; N_FEATURES];

/// Returns the neighbour of token `i` at offset `d` in `sent`.
#[inline]
fn near(sent: &[TokInfo], i: usize, d: isize) -> Option<&TokInfo> {
    sent.get(i.checked_add_signed(d)?)
}

/// Returns the full hash of template `tmpl` with value `v`; a bucket is its top `bits` bits.
#[inline]
fn hash(tmpl: usize, v: u64) -> u64 {
    mix((tmpl as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ v)
}

/// Values of `first` (a BILOU tag) and of `prior` (0, or 1 + a type) that the tables cover; a
/// missing neighbour (`PAD`) takes the slot after them.
const FIRSTS: usize = N_TAGS;
const PRIORS: usize = 5;
/// Values of the four-bit type sets `prior_mask`, `pair_prev`, `pair_next`.
const MASKS: usize = 16;
/// Values of `run` (position * 8 + length, length at most 5, position at most 4).
const RUNS: usize = 64;

/// Template hashes over small value sets, computed once (see [`small`]).
struct Small {
    /// Template 0: the bias, value 0.
    bias: u64,
    /// 39: `prior_mask`.
    prior_mask: [u64; MASKS],
    /// 40: `first`.
    first: [u64; FIRSTS],
    /// 41: combine(previous token's `first` or PAD, `first`), indexed `[previous][own]`.
    first_prev: [[u64; FIRSTS]; FIRSTS + 1],
    /// 42: combine(`first`, next token's `first` or PAD), indexed `[own][next]`.
    first_next: [[u64; FIRSTS + 1]; FIRSTS],
    /// 49: combine(combine(previous `prior` or PAD, `prior`), next `prior` or PAD).
    priors: [[[u64; PRIORS + 1]; PRIORS]; PRIORS + 1],
    /// 51: combine(`pair_prev`, `pair_next`).
    pairs: [[u64; MASKS]; MASKS],
    /// 47: combine(`run`, caps line).
    run: [[u64; 2]; RUNS],
}

/// Returns a table slot's value: `i` itself, or `PAD` for the slot after the `n` values.
fn slot_value(i: usize, n: usize) -> u64 {
    if i == n {
        PAD
    } else {
        i as u64
    }
}

static SMALL: LazyLock<Box<Small>> = LazyLock::new(|| {
    let v = |i: usize| i as u64;
    Box::new(Small {
        bias: hash(0, 0),
        prior_mask: std::array::from_fn(|m| hash(39, v(m))),
        first: std::array::from_fn(|f| hash(40, v(f))),
        first_prev: std::array::from_fn(|p| {
            std::array::from_fn(|f| hash(41, combine(slot_value(p, FIRSTS), v(f))))
        }),
        first_next: std::array::from_fn(|f| {
            std::array::from_fn(|n| hash(42, combine(v(f), slot_value(n, FIRSTS))))
        }),
        priors: std::array::from_fn(|p| {
            std::array::from_fn(|o| {
                std::array::from_fn(|n| {
                    let inner = combine(slot_value(p, PRIORS), v(o));
                    hash(49, combine(inner, slot_value(n, PRIORS)))
                })
            })
        }),
        pairs: std::array::from_fn(|a| std::array::from_fn(|b| hash(51, combine(v(a), v(b))))),
        run: std::array::from_fn(|r| std::array::from_fn(|c| hash(47, combine(v(r), v(c))))),
    })
});

/// Returns the table of small-value template hashes.
#[inline]
fn small() -> &'static Small {
    &SMALL
}

/// Returns the table slot of a neighbour's small field: its value, `pad` when the neighbour
/// is missing, or a slot past the table for a value the table does not cover (`pad` or more).
#[inline]
fn slot(o: Option<&TokInfo>, field: impl Fn(&TokInfo) -> u8, pad: usize) -> usize {
    o.map_or(pad, |t| {
        let v = usize::from(field(t));
        if v < pad {
            v
        } else {
            usize::MAX
        }
    })
}

/// Returns the value a neighbour's small field hashes as: its value, or `PAD` when missing.
#[inline]
fn value(o: Option<&TokInfo>, field: impl Fn(&TokInfo) -> u8) -> u64 {
    o.map_or(PAD, |t| u64::from(field(t)))
}

/// Writes the buckets (top `64 - shift` bits) of the `SECOND_PASS` templates of token `i`
/// into their slots of `row`; values outside the tables (never produced by decoding) are
/// hashed directly, to the same result.
#[inline]
fn second_pass_buckets(sent: &[TokInfo], i: usize, shift: u32, row: &mut Row) {
    let mut put = |tmpl: usize, h: u64| row[POS[tmpl]] = (h >> shift) as u32;
    let s = small();
    let t = &sent[i];
    let (p1, n1) = (near(sent, i, -1), near(sent, i, 1));
    let first = |t: &TokInfo| t.first;
    let prior = |t: &TokInfo| t.prior;
    let (own_first, own_prior) = (usize::from(t.first), usize::from(t.prior));
    put(38, hash(38, combine(u64::from(t.prior), t.short)));
    let prior_mask = s
        .prior_mask
        .get(usize::from(t.prior_mask))
        .copied()
        .unwrap_or_else(|| hash(39, u64::from(t.prior_mask)));
    put(39, prior_mask);
    let own = s
        .first
        .get(own_first)
        .copied()
        .unwrap_or_else(|| hash(40, u64::from(t.first)));
    put(40, own);
    let first_prev = s
        .first_prev
        .get(slot(p1, first, FIRSTS))
        .and_then(|r| r.get(own_first))
        .copied()
        .unwrap_or_else(|| hash(41, combine(value(p1, first), u64::from(t.first))));
    put(41, first_prev);
    let first_next = s
        .first_next
        .get(own_first)
        .and_then(|r| r.get(slot(n1, first, FIRSTS)))
        .copied()
        .unwrap_or_else(|| hash(42, combine(u64::from(t.first), value(n1, first))));
    put(42, first_next);
    let priors = s
        .priors
        .get(slot(p1, prior, PRIORS))
        .and_then(|r| r.get(own_prior))
        .and_then(|r| r.get(slot(n1, prior, PRIORS)))
        .copied()
        .unwrap_or_else(|| {
            let inner = combine(value(p1, prior), u64::from(t.prior));
            hash(49, combine(inner, value(n1, prior)))
        });
    put(49, priors);
    let pairs = s
        .pairs
        .get(usize::from(t.pair_prev))
        .and_then(|r| r.get(usize::from(t.pair_next)))
        .copied()
        .unwrap_or_else(|| hash(51, combine(u64::from(t.pair_prev), u64::from(t.pair_next))));
    put(51, pairs);
    put(52, hash(52, combine(u64::from(t.pair_next), t.short)));
}

/// The pair values a token shares with its neighbours: (previous, own) and (own, next) of the
/// short shapes and of the lower-case forms.
#[derive(Clone, Copy)]
struct Pairs {
    short: u64,
    lower: u64,
}

impl Pairs {
    /// Returns the pair values of the gap before token `i` (`PAD` stands in for a missing
    /// token on either side).
    #[inline]
    fn before(sent: &[TokInfo], i: usize) -> Self {
        let a = near(sent, i, -1);
        let b = sent.get(i);
        Self {
            short: combine(a.map_or(PAD, |t| t.short), b.map_or(PAD, |t| t.short)),
            lower: combine(a.map_or(PAD, |t| t.lower), b.map_or(PAD, |t| t.lower)),
        }
    }
}

/// Writes the bucket of `hash(t, v)` to template `t`'s slot of `row` for each `t => v`.
macro_rules! put {
    ($row:ident, $shift:ident; $($t:literal => $v:expr),* $(,)?) => {
        $( $row[POS[$t]] = (hash($t, $v) >> $shift) as u32; )*
    };
}

/// Writes the buckets (top `64 - shift` bits) of the first pass's templates of token `i` into
/// their slots of `row`; `left` and `right` are the pair values of the gaps before and after it.
#[inline]
fn first_pass_buckets(
    sent: &[TokInfo],
    i: usize,
    left: Pairs,
    right: Pairs,
    shift: u32,
    row: &mut Row,
) {
    let s = small();
    let t = &sent[i];
    let p1 = near(sent, i, -1);
    let n1 = near(sent, i, 1);
    let p2 = near(sent, i, -2);
    let n2 = near(sent, i, 2);
    let low = |o: Option<&TokInfo>| o.map_or(PAD, |t| t.lower);
    let shp = |o: Option<&TokInfo>| o.map_or(PAD, |t| t.short);
    let clu = |o: Option<&TokInfo>| o.map_or(PAD, |t| u64::from(t.clusters[1]));
    let gz = |o: Option<&TokInfo>| o.map_or(PAD, gaz_code);
    let suf3 = |o: Option<&TokInfo>| o.map_or(PAD, |t| t.suf[2]);
    let fine = |o: Option<&TokInfo>| o.map_or(PAD, |t| u64::from(t.clusters[0]));
    let caps = u64::from(t.caps_line);
    let gaz = gaz_code(t);
    // One statement per template, so that each template constant is folded into its hash.
    put!(row, shift;
        1 => t.word,
        2 => t.lower,
        3 => t.shape,
        4 => t.short,
        5 => t.pre[0],
        6 => t.pre[1],
        7 => t.pre[2],
        8 => t.pre[3],
        9 => t.suf[0],
        10 => t.suf[1],
        11 => t.suf[2],
        12 => t.suf[3],
        13 => low(p1),
        14 => low(n1),
        15 => low(p2),
        16 => low(n2),
        17 => shp(p1),
        18 => shp(n1),
        19 => left.short,
        20 => right.short,
        21 => left.lower,
        22 => right.lower,
        23 => combine(u64::from(t.flags), t.short),
        24 => combine(u64::from(t.doc), t.short ^ caps),
        25 => u64::from(t.clusters[0]),
        26 => u64::from(t.clusters[1]),
        27 => u64::from(t.clusters[2]),
        28 => clu(p1),
        29 => clu(n1),
        30 => gaz,
        31 => combine(gaz, t.short),
        32 => gz(p1),
        33 => gz(n1),
        34 => combine(low(p1), t.short),
        35 => combine(t.short, low(n1)),
        36 => combine(caps, t.lower),
        37 => combine(combine(u64::from(t.clusters[1]), t.short), caps),
        43 => suf3(p1),
        44 => suf3(n1),
        45 => fine(p1),
        46 => fine(n1),
        48 => combine(low(p1), low(n1)),
        50 => combine(shp(p2), shp(n2)),
        53 => combine(combine(u64::from(t.doc), t.lower), caps),
        54 => combine(u64::from(t.clusters[2]), combine(shp(p1), shp(n1))),
    );
    row[POS[0]] = (s.bias >> shift) as u32;
    let run = s
        .run
        .get(usize::from(t.run))
        .map(|r| r[usize::from(t.caps_line)])
        .unwrap_or_else(|| hash(47, combine(u64::from(t.run), caps)));
    row[POS[47]] = (run >> shift) as u32;
}

/// Appends `N_FEATURES` bucket indices per token of `sent` to `out`.
pub fn sentence_features(sent: &[TokInfo], bits: u32, out: &mut Vec<u32>) {
    let start = out.len();
    out.resize(start + sent.len() * N_FEATURES, 0);
    write_features(sent, bits, N_FEATURES, &mut out[start..]);
}

/// Writes the bucket indices of the first `templates` positions of [`ORDER`] (all of them, or
/// the [`FIRST_PASS`] ones) per token of `sent` into `out`, `N_FEATURES` slots per token; the
/// slots after `templates` are left as they were.
pub fn write_features(sent: &[TokInfo], bits: u32, templates: usize, out: &mut [u32]) {
    write_kept(sent, &[], bits, templates, out);
}

/// [`write_features`] for the tokens of `sent` that `far` does not mark (see
/// [`crate::entities::gate`]; an empty `far` marks none), one row each, in order: a marked
/// token gets no row, and its neighbours still read its word forms as context.
pub fn write_kept(sent: &[TokInfo], far: &[bool], bits: u32, templates: usize, out: &mut [u32]) {
    let shift = 64 - bits;
    let mut left = None;
    let later = templates > FIRST_PASS;
    let kept = (0..sent.len()).filter(|&i| !far.get(i).is_some_and(|&f| f));
    for (i, row) in kept.zip(out.chunks_exact_mut(N_FEATURES)) {
        let l = left.unwrap_or_else(|| Pairs::before(sent, i));
        let right = Pairs::before(sent, i + 1);
        let row: &mut Row = row.try_into().expect("chunks of N_FEATURES");
        first_pass_buckets(sent, i, l, right, shift, row);
        if later {
            second_pass_buckets(sent, i, shift, row);
        }
        // The next token's left gap is this one's right only if it is the next row.
        left = (!far.get(i + 1).is_some_and(|&f| f)).then_some(right);
    }
}

/// Writes only the `SECOND_PASS` buckets (the positions after [`FIRST_PASS`]) into features
/// written by [`write_features`] with the same `bits`, after the second-pass fields of `sent`
/// changed.
pub fn refresh_second_pass(sent: &[TokInfo], bits: u32, out: &mut [u32]) {
    refresh_kept(sent, &[], bits, out);
}

/// [`refresh_second_pass`] for features written by [`write_kept`] with the same `far`.
pub fn refresh_kept(sent: &[TokInfo], far: &[bool], bits: u32, out: &mut [u32]) {
    let shift = 64 - bits;
    let kept = (0..sent.len()).filter(|&i| !far.get(i).is_some_and(|&f| f));
    for (i, row) in kept.zip(out.chunks_exact_mut(N_FEATURES)) {
        let row: &mut Row = row.try_into().expect("chunks of N_FEATURES");
        second_pass_buckets(sent, i, shift, row);
    }
}

#[cfg(test)]
mod tests;
