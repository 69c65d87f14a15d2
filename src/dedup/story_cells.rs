//! Owns the story tier's centroid search: finding a document's terms in a story centroid (a
//! term-sorted vector of [`Cell`]s) and inserting new ones, with a bucket directory for large
//! centroids.

use super::story_terms::Cell;

/// Finds term `t` in the sorted centroid from position `from`; returns its index, or where the
/// search may resume for a larger term. Gallops, so a small vector against a large centroid
/// costs a few probes a term.
pub(super) fn seek(centroid: &[Cell], from: usize, t: u32) -> (Option<usize>, usize) {
    let rest = &centroid[from..];
    let mut hi = 1usize;
    while hi < rest.len() && rest[hi - 1].term() < t {
        hi *= 2;
    }
    let hi = hi.min(rest.len());
    let i = from + rest[..hi].partition_point(|e| e.term() < t);
    match centroid.get(i) {
        Some(e) if e.term() == t => (Some(i), i + 1),
        _ => (None, i),
    }
}

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

/// Buckets of a [`directory`].
fn buckets_of(dir: &[u32]) -> usize {
    (dir.len() - 1) / 3
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
#[inline]
pub(super) fn may_hold(dir: &[u32], t: u32) -> bool {
    let buckets = buckets_of(dir);
    let b = buckets.ilog2();
    let j = ((t >> (TERM_ID_BITS - b)) as usize).min(buckets - 1);
    let bit = filter_bit(t);
    dir[buckets + 1 + 2 * j + (bit >> 5) as usize] >> (bit & 31) & 1 != 0
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
pub(super) fn seek_in(
    centroid: &[Cell],
    dir: &[u32],
    from: usize,
    t: u32,
) -> (Option<usize>, usize) {
    let buckets = buckets_of(dir);
    let b = buckets.ilog2();
    let j = ((t >> (TERM_ID_BITS - b)) as usize).min(buckets - 1);
    let end = (dir[j + 1] as usize).min(centroid.len());
    let mut i = (dir[j] as usize).max(from);
    while i < end && centroid[i].term() < t {
        i += 1;
    }
    match centroid.get(i) {
        Some(e) if e.term() == t => (Some(i), i + 1),
        _ => (None, i),
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
