//! Owns the story tier's centroid search: finding a document's terms in a story centroid (a
//! term-sorted vector of [`Cell`]s) and inserting new ones, with a bucket directory for large
//! centroids.

use super::story_terms::{order_of, Cell};

/// Finds term `t` in the sorted centroid from position `from`; returns its index, or where the
/// search may resume for a larger term. Gallops, so a small vector against a large centroid
/// costs a few probes a term.
pub(super) fn seek(centroid: &[Cell], from: usize, t: u32) -> (Option<usize>, usize) {
    let rest = &centroid[from..];
    let bound = order_of(t);
    let mut hi = 1usize;
    while hi < rest.len() && rest[hi - 1].order() < bound {
        hi *= 2;
    }
    let hi = hi.min(rest.len());
    let i = from + rest[..hi].partition_point(|e| e.order() < bound);
    found_at(centroid, i, t)
}

/// [`seek`] by a walk from position `from`: the same answer, for a small centroid sought in
/// term order (a whole document costs one pass over it, not a few probes a term).
#[inline(always)]
pub(super) fn scan(centroid: &[Cell], from: usize, t: u32) -> (Option<usize>, usize) {
    let bound = order_of(t);
    let rest = centroid.get(from..).unwrap_or_default();
    let i = from
        + rest
            .iter()
            .position(|e| e.order() >= bound)
            .unwrap_or(rest.len());
    found_at(centroid, i, t)
}

/// The answer of a [`seek`] for term `t` that stopped at position `i`.
#[inline(always)]
fn found_at(centroid: &[Cell], i: usize, t: u32) -> (Option<usize>, usize) {
    match centroid.get(i) {
        Some(e) if e.term() == t => (Some(i), i + 1),
        _ => (None, i),
    }
}

/// A ranking's query as [`dots`] reads it: the document vector, its terms' name flags, IDF
/// values and [`filter_bit`]s, all in term id order. The filter bits are worked out once a
/// ranking ([`filter_bits`]), not once a centroid.
#[derive(Debug, Clone, Copy)]
pub(super) struct Query<'a> {
    pub(super) vector: &'a [(u32, f32)],
    pub(super) is_name: &'a [bool],
    pub(super) idfs: &'a [f32],
    /// Empty when no centroid with a directory is scored.
    pub(super) bits: &'a [u8],
}

/// Sets `bits` to the [`filter_bit`] of each term of `vector`.
pub(super) fn filter_bits(vector: &[(u32, f32)], bits: &mut Vec<u8>) {
    bits.clear();
    bits.extend(vector.iter().map(|&(t, _)| filter_bit(t) as u8));
}

/// Returns the dot products of a query with a story centroid: over all terms, and over the
/// terms name-like on both sides. Each term found adds `mass * weight * idf`, in query order
/// whatever the search: a plain `merge` walk, seeks through the centroid's directory `dir`
/// (whose filter spares most absent terms a scan; `query.bits` must then be filled), or
/// galloping seeks. A loop of its own for each, with the query's weights read only for the
/// terms found. Kept out of line: inlined into the ranking, its loops run short of registers.
#[inline(never)]
pub(super) fn dots(
    cells: &[Cell],
    dir: Option<Dir<'_>>,
    merge: bool,
    query: Query<'_>,
) -> (f32, f32) {
    let Query {
        vector,
        is_name,
        idfs,
        bits,
    } = query;
    let n = vector.len().min(is_name.len()).min(idfs.len());
    let (vector, is_name, idfs) = (&vector[..n], &is_name[..n], &idfs[..n]);
    let (mut dot, mut name_dot) = (0.0f32, 0.0f32);
    let mut add = |k: usize, i: usize| {
        let (key, c) = (cells[i].key(), cells[i].mass());
        let x = c * vector[k].1 * idfs[k];
        dot += x;
        if is_name[k] && key & 1 != 0 {
            name_dot += x;
        }
    };
    let mut at = 0usize;
    if merge {
        for (k, &(t, _)) in vector.iter().enumerate() {
            let bound = order_of(t);
            while cells.get(at).is_some_and(|e| e.order() < bound) {
                at += 1;
            }
            if cells.get(at).is_some_and(|e| e.term() == t) {
                add(k, at);
                at += 1;
            }
            if at >= cells.len() {
                break;
            }
        }
    } else if let Some(dir) = dir.filter(|_| bits.len() >= n) {
        // In chunks: first the filter alone over the chunk's terms (a tight loop without
        // branches that keeps the positions of those that pass), then the seeks for those
        // only. The same terms are sought in the same order as one loop asking the filter
        // before each seek would, so the sums are the same.
        let mut passed = [0u16; CHUNK];
        'chunks: for from in (0..n).step_by(CHUNK) {
            let to = (from + CHUNK).min(n);
            let m = dir.passing(&vector[from..to], &bits[from..to], &mut passed);
            for &j in &passed[..m] {
                let k = from + usize::from(j);
                let (found, next) = dir.seek(cells, at, vector[k].0);
                at = next;
                if let Some(i) = found {
                    add(k, i);
                }
                if at >= cells.len() {
                    break 'chunks;
                }
            }
        }
    } else {
        // Without a directory (or, by mistake, without the filter bits: the same sums).
        for (k, &(t, _)) in vector.iter().enumerate() {
            let (found, next) = match dir {
                Some(dir) => dir.seek(cells, at, t),
                None => seek(cells, at, t),
            };
            at = next;
            if let Some(i) = found {
                add(k, i);
            }
            if at >= cells.len() {
                break;
            }
        }
    }
    (dot, name_dot)
}

/// Query terms a [`Dir::passing`] pass filters at a time.
const CHUNK: usize = 128;
const _: () = assert!(CHUNK.is_power_of_two() && CHUNK <= 1 << 16);

/// Centroids of at least this many terms get a [`directory`].
pub(super) const DIRECTORY_MIN: usize = 256;
/// Bits of a term id (see `story_terms`).
const TERM_ID_BITS: u32 = 24;

/// Rebuilds `dir` for `centroid`: the centroid's term ids are hashes, so spread evenly; with
/// `2^b` buckets by their top `b` bits (8 to 16 terms a bucket), `dir[j]` is the position of the
/// first term in bucket `j` or after, and `dir[2^b]` the length. Then, for each bucket, a 64-bit
/// filter (two words, low first) with the [`filter_bit`] of each of its terms set: a term whose
/// bit is clear is not in the centroid ([`may_hold`]), which a ranking learns without a scan.
pub(super) fn directory(centroid: &[Cell], dir: &mut Vec<u32>) {
    let b = bucket_bits(centroid.len());
    let buckets = 1u32 << b;
    dir.clear();
    dir.reserve_exact(3 * buckets as usize + 1);
    let mut next = 0u32;
    for (i, c) in centroid.iter().enumerate() {
        let bucket = (c.term() >> (TERM_ID_BITS - b)).min(buckets - 1);
        while next <= bucket {
            dir.push(i as u32);
            next += 1;
        }
    }
    while next <= buckets {
        dir.push(centroid.len() as u32);
        next += 1;
    }
    dir.resize(3 * buckets as usize + 1, 0);
    for c in centroid {
        set_filter(dir, buckets as usize, b, c.term());
    }
}

/// Bucket bits of the [`directory`] of a centroid of `len` terms.
fn bucket_bits(len: usize) -> u32 {
    (len / 8).max(1).ilog2().min(TERM_ID_BITS)
}

/// The bit of term `t` in its bucket's filter: bits of a multiplicative hash of the id that are
/// independent of the bucket (its top bits).
#[inline]
fn filter_bit(t: u32) -> u32 {
    t.wrapping_mul(0x9e37_79b1) >> 26
}

/// Sets term `t`'s bit in the filter of its bucket.
fn set_filter(dir: &mut [u32], buckets: usize, b: u32, t: u32) {
    let j = ((t >> (TERM_ID_BITS - b)) as usize).min(buckets - 1);
    let bit = filter_bit(t);
    dir[buckets + 1 + 2 * j + (bit >> 5) as usize] |= 1 << (bit & 31);
}

/// Returns false when term `t` is surely not in the centroid `dir` is the [`directory`] of
/// (true: it may be; about one in six absent terms of a full bucket).
#[cfg(test)]
pub(super) fn may_hold(dir: &[u32], t: u32) -> bool {
    Dir::new(dir).is_none_or(|d| d.may_hold(t))
}

/// A [`directory`] read for many lookups: its two parts and its bucket shift worked out once,
/// not for every term looked up.
#[derive(Debug, Clone, Copy)]
pub(super) struct Dir<'a> {
    /// The first position of each bucket, then the centroid's length.
    starts: &'a [u32],
    /// Two filter words a bucket.
    filters: &'a [u32],
    /// Right shift of a term id to its bucket.
    shift: u32,
    /// The last bucket.
    last: usize,
}

impl<'a> Dir<'a> {
    /// Returns the view of `dir`, `None` when it holds no bucket.
    pub(super) fn new(dir: &'a [u32]) -> Option<Self> {
        let buckets = dir.len().checked_sub(1)? / 3;
        let b = buckets.checked_ilog2()?;
        let (starts, filters) = dir.split_at(buckets + 1);
        Some(Self {
            starts,
            filters,
            shift: TERM_ID_BITS - b,
            last: buckets - 1,
        })
    }

    #[inline]
    fn bucket(&self, t: u32) -> usize {
        ((t >> self.shift) as usize).min(self.last)
    }

    /// [`may_hold`] on this directory.
    #[cfg(test)]
    pub(super) fn may_hold(&self, t: u32) -> bool {
        self.may_hold_bit(t, filter_bit(t) as u8)
    }

    /// [`Dir::may_hold`] with the term's [`filter_bit`] given (the test [`passing`] makes).
    #[cfg(test)]
    fn may_hold_bit(&self, t: u32, bit: u8) -> bool {
        // Unclamped: a term id beyond 24 bits (none is) finds no filter word and may be held.
        let w = self
            .filters
            .get(2 * (t >> self.shift) as usize + usize::from(bit >> 5))
            .map_or(u32::MAX, |&w| w);
        w >> (bit & 31) & 1 != 0
    }

    /// Writes to the front of `passed` the positions in `terms` (at most [`CHUNK`], with their
    /// [`filter_bit`]s in `bits`) of those the filter lets through (may be held), in order;
    /// returns how many.
    fn passing(&self, terms: &[(u32, f32)], bits: &[u8], passed: &mut [u16; CHUNK]) -> usize {
        passing(self.filters, self.shift, terms, bits, passed)
    }

    /// [`seek`] through the directory: a scan of one bucket, the same answer.
    #[inline]
    pub(super) fn seek(&self, centroid: &[Cell], from: usize, t: u32) -> (Option<usize>, usize) {
        let j = self.bucket(t);
        let end = (self.starts[j + 1] as usize).min(centroid.len());
        let start = (self.starts[j] as usize).max(from);
        let bound = order_of(t);
        // A scan of the bucket's slice (empty when `from` is past it), not bounds-checked.
        let i = centroid.get(start..end).map_or(start, |bucket| {
            start
                + bucket
                    .iter()
                    .position(|e| e.order() >= bound)
                    .unwrap_or(bucket.len())
        });
        found_at(centroid, i, t)
    }
}

/// [`Dir::passing`] on the directory's filter words and bucket shift. Out of line, so the
/// loop has the registers to itself (inlined into [`dots`], it kept its pointers on the
/// stack), and over indices in slices cut to one length (an iterator chain built a slower
/// loop).
#[inline(never)]
fn passing(
    filters: &[u32],
    shift: u32,
    terms: &[(u32, f32)],
    bits: &[u8],
    passed: &mut [u16; CHUNK],
) -> usize {
    let n = terms.len().min(bits.len()).min(CHUNK);
    let (terms, bits) = (&terms[..n], &bits[..n]);
    let mut m = 0usize;
    for j in 0..n {
        let (t, bit) = (terms[j].0, bits[j]);
        // No filter word (a term id beyond 24 bits) may hold.
        let w = filters
            .get(2 * (t >> shift) as usize + usize::from(bit >> 5))
            .map_or(u32::MAX, |&w| w);
        // Written whether or not it passes, and kept only when it does: no branch. `m` is at
        // most `j`, below CHUNK, so the mask changes nothing but the bounds check.
        passed[m & (CHUNK - 1)] = j as u16;
        m += (w >> (bit & 31) & 1) as usize;
    }
    m
}

/// Brings `dir`, the [`directory`] of a centroid before `inserted` (ascending terms) went in
/// by [`insert_cells`], up to date: each bucket's start moves by the inserted terms of the
/// buckets before it, a pass over the buckets (8 to 16 times fewer than the terms) rather than
/// the centroid, and the inserted terms' filter bits are set. When the centroid's new length
/// calls for another bucket count, or `dir` is not a directory, it is rebuilt.
pub(super) fn update_directory(centroid: &[Cell], inserted: &[(usize, Cell)], dir: &mut Vec<u32>) {
    let b = bucket_bits(centroid.len());
    let buckets = 1usize << b;
    if dir.len() != 3 * buckets + 1 {
        directory(centroid, dir);
        return;
    }
    // Starts up to the first inserted term's bucket do not move: a member that inserts
    // nothing (a near copy's usual case) costs no pass, and the pass starts there.
    let Some(&(_, first)) = inserted.first() else {
        return;
    };
    let from = ((first.term() >> (TERM_ID_BITS - b)) as usize).min(buckets - 1) + 1;
    let (mut k, mut moved) = (0usize, 0u32);
    for (j, start) in dir[..=buckets].iter_mut().enumerate().skip(from) {
        while let Some(&(_, c)) = inserted.get(k) {
            let bucket = ((c.term() >> (TERM_ID_BITS - b)) as usize).min(buckets - 1);
            if bucket >= j {
                break;
            }
            k += 1;
            moved += 1;
        }
        *start += moved;
    }
    for &(_, c) in inserted {
        set_filter(dir, buckets, b, c.term());
    }
}

/// [`seek`] through the centroid's [`directory`]: a scan of one bucket, the same answer.
#[cfg(test)]
pub(super) fn seek_in(
    centroid: &[Cell],
    dir: &[u32],
    from: usize,
    t: u32,
) -> (Option<usize>, usize) {
    match Dir::new(dir) {
        Some(d) => d.seek(centroid, from, t),
        None => seek(centroid, from, t),
    }
}

/// Inserts `cells` into the sorted centroid, each before the entry at its position (positions
/// ascending, as [`seek`] gave them for ascending terms), moving every entry once.
pub(super) fn insert_cells(centroid: &mut Vec<Cell>, cells: &[(usize, Cell)]) {
    let Some(&(_, fill)) = cells.first() else {
        return;
    };
    let mut src = centroid.len();
    // Exact growth: a centroid is never shrunk, and most members add few terms.
    centroid.reserve_exact(cells.len());
    centroid.resize(src + cells.len(), fill);
    let mut dst = centroid.len();
    for &(pos, cell) in cells.iter().rev() {
        let moved = src - pos;
        centroid.copy_within(pos..src, dst - moved);
        dst -= moved + 1;
        src = pos;
        centroid[dst] = cell;
    }
}

#[cfg(test)]
mod tests {
    use super::{directory, filter_bits, Cell, Dir, CHUNK};

    #[test]
    fn passing_keeps_in_order_the_terms_the_filter_may_hold() {
        let mut rng = crate::dedup::eval::Rng(17);
        let mut dir = Vec::new();
        for (len, q) in [
            (256usize, 1usize),
            (300, 127),
            (2000, 128),
            (700, 129),
            (5000, 400),
        ] {
            let mut terms: Vec<u32> = (0..len).map(|_| rng.below(1 << 24) as u32).collect();
            terms.sort_unstable();
            terms.dedup();
            let centroid: Vec<Cell> = terms.iter().map(|&t| Cell::new(t << 2, 1.0)).collect();
            directory(&centroid, &mut dir);
            let d = Dir::new(&dir).unwrap();
            // A third of the query terms are held, the rest mostly not.
            let mut ids: Vec<u32> = (0..q)
                .map(|i| match i % 3 {
                    0 => terms[rng.below(terms.len())],
                    _ => rng.below(1 << 24) as u32,
                })
                .collect();
            ids.sort_unstable();
            ids.dedup();
            let vector: Vec<(u32, f32)> = ids.iter().map(|&t| (t, 1.0)).collect();
            let mut bits = Vec::new();
            filter_bits(&vector, &mut bits);
            let mut passed = [0u16; CHUNK];
            let (mut held, mut total) = (0, 0);
            for from in (0..vector.len()).step_by(CHUNK) {
                let to = (from + CHUNK).min(vector.len());
                let m = d.passing(&vector[from..to], &bits[from..to], &mut passed);
                let want: Vec<u16> = (from..to)
                    .filter(|&k| d.may_hold(vector[k].0))
                    .map(|k| (k - from) as u16)
                    .collect();
                assert_eq!(&passed[..m], &want[..], "len {len} q {q} from {from}");
                held += (from..to)
                    .filter(|&k| terms.binary_search(&vector[k].0).is_ok())
                    .count();
                total += m;
            }
            // Every held term passed, and most others did not.
            assert!(held <= total && total < held + (vector.len() - held) / 3 + 2);
        }
    }
}
