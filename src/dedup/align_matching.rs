//! Owns the second half of sentence alignment: the one-to-one matching of the candidate
//! sentence matches a pair search found ([`Probe`](super::Probe)), and what is measured on it.

use super::super::rewrite_model::{edit_script, runs, MIN_COVERED};
use super::{Alignment, SketchView, MAX_SENTENCES};

/// Returns the two parts of a match with each one's words sorted, in `buf`.
fn sorted_parts<'a>(parts: [&[u16]; 2], buf: &'a mut Vec<u16>) -> [&'a [u16]; 2] {
    buf.clear();
    buf.extend_from_slice(parts[0]);
    buf.extend_from_slice(parts[1]);
    let (a, b) = buf.split_at_mut(parts[0].len());
    a.sort_unstable();
    b.sort_unstable();
    let (a, b) = buf.split_at(parts[0].len());
    [a, b]
}

/// The words two documents' sentences share, new sentence major, and each sentence's length.
pub(super) struct Counts<'a> {
    pub common: &'a [u16],
    pub new_len: &'a [usize],
    pub old_len: &'a [usize],
}

/// The rewrite model's gates ([`RewriteModel::score`](super::super::rewrite_model::RewriteModel::score)):
/// an alignment with fewer than `min_words` content words in its matching, fewer than
/// `min_reworded` of them reworded, or less than [`MIN_COVERED`] of the new document covered
/// scores 0 whatever its edit scripts say, so a decision does not compute them there.
#[derive(Debug, Clone, Copy)]
pub struct Gate {
    pub min_words: usize,
    pub min_reworded: f32,
}

impl Gate {
    /// Returns whether the model scores `a` 0 without looking at its edit-script measures.
    pub(super) fn shuts(self, a: &Alignment) -> bool {
        a.aligned_words < self.min_words
            || a.reworded < self.min_reworded
            || a.covered_new < MIN_COVERED
    }
}

/// Returns the alignment from the candidate matches `pairs` ((overlap, kind, new sentence, old
/// sentence), see [`Probe::align_with`]) with `shared` already known: the one-to-one matching
/// and everything measured on it. The only part after the pair search, shared with the
/// reference alignment of the tests. With a `gate` that shuts on the matching, the
/// edit-script measures (`substituted`, `inserted_deleted`, `clustered`, `lacking`) are left 0.
pub(super) fn matching(
    new: SketchView<'_>,
    old: SketchView<'_>,
    counts: Counts<'_>,
    shared: f32,
    pairs: &mut [(usize, u8, usize, usize)],
    resorted: &mut Vec<u16>,
    gate: Option<Gate>,
) -> Alignment {
    let Counts {
        common,
        new_len,
        old_len,
    } = counts;
    let (ns, os) = (new_len.len(), old_len.len());
    let c = |i: usize, j: usize| common[i * os + j] as usize;
    let new_total: usize = new_len.iter().sum();
    // A one-to-one matching of sentences (or a sentence with a merged or split pair),
    // taken greedily by overlap (shared words over the larger side, so a sentence's own
    // rewording beats a merge with its neighbour): the order of the sentences does not matter, so a
    // copy whose sentences were moved, merged or dropped is still covered where it repeats
    // the earlier one. Ties go to the earlier sentences, so the result is deterministic.
    pairs.sort_unstable_by(|a, b| b.0.cmp(&a.0).then((a.2, a.3, a.1).cmp(&(b.2, b.3, b.1))));
    let (mut used_new, mut used_old) = (0u64, 0u64);
    let (mut cov_new, mut cov_old, mut reworded, mut merged) = (0usize, 0usize, 0usize, 0usize);
    // The first earlier sentence each new sentence was matched to (plus one; 0: none), and
    // the last (two for a merge).
    let mut match_of = [0u8; MAX_SENTENCES];
    let mut match_end = [0u8; MAX_SENTENCES];
    // The matches taken, (kind, new sentence, old sentence), at most one a new sentence.
    let mut taken = [(0u8, 0u8, 0u8); MAX_SENTENCES];
    let mut n_taken = 0;
    for &(_, k, i, j) in pairs.iter() {
        let (mask_new, mask_old) = match k {
            1 => (1u64 << i, 1u64 << j),
            2 => (1u64 << i, 3u64 << (j - 1)),
            _ => (3u64 << (i - 1), 1u64 << j),
        };
        if used_new & mask_new != 0 || used_old & mask_old != 0 {
            continue;
        }
        used_new |= mask_new;
        used_old |= mask_old;
        // The words on each side of the match (those of the sentences in its masks).
        let (nw, ow) = match k {
            1 => (new_len[i], old_len[j]),
            2 => (new_len[i], old_len[j - 1] + old_len[j]),
            _ => (new_len[i - 1] + new_len[i], old_len[j]),
        };
        cov_new += nw;
        cov_old += ow;
        if k != 1 || c(i, j) != nw.max(ow) {
            reworded += nw;
        }
        if k != 1 {
            merged += nw;
        }
        taken[n_taken] = (k, i as u8, j as u8);
        n_taken += 1;
        let first = if k == 2 { j - 1 } else { j };
        match_of[i] = first as u8 + 1;
        match_end[i] = j as u8 + 1;
        if k == 4 {
            match_of[i - 1] = j as u8 + 1;
            match_end[i - 1] = j as u8 + 1;
        }
    }
    // Sentences left between two matches, as many on each side (or before the first, after
    // the last), pair up by position when they share a word: a copy whose wording drifted too
    // far for the overlap bar keeps its place, a sentence a later version added or cut has
    // no counterpart at that place.
    let (mut fill_new, mut fill_old) = (0usize, 0usize);
    let (mut prev_new, mut prev_old) = (0usize, 0usize); // one past the last match
    for i in 0..=ns {
        let (lo, hi) = if i == ns {
            (os, os)
        } else if match_of[i] != 0 {
            (usize::from(match_of[i]) - 1, usize::from(match_end[i]))
        } else {
            continue;
        };
        if lo >= prev_old && lo - prev_old == i - prev_new {
            for (x, y) in (prev_new..i).zip(prev_old..lo) {
                if used_new >> x & 1 == 0 && used_old >> y & 1 == 0 && c(x, y) >= 1 {
                    fill_new += new_len[x];
                    fill_old += old_len[y];
                }
            }
        }
        if i < ns {
            prev_new = i + 1;
            prev_old = prev_old.max(hi);
        }
    }
    let (mut matches, mut moved, mut last) = (0usize, 0usize, 0u8);
    for &m in match_of.iter().take(ns).filter(|&&m| m != 0) {
        matches += 1;
        moved += usize::from(m < last);
        last = last.max(m);
    }
    let old_total: usize = old_len.iter().sum();
    let mut a = Alignment {
        shared,
        covered_new: cov_new as f32 / new_total.max(1) as f32,
        covered_old: cov_old as f32 / old_total.max(1) as f32,
        aligned_words: cov_new.min(cov_old),
        matches: n_taken,
        reworded: reworded as f32 / cov_new.max(1) as f32,
        substituted: 0.0,
        inserted_deleted: 0.0,
        merged: merged as f32 / cov_new.max(1) as f32,
        out_of_order: moved as f32 / matches.max(1) as f32,
        placed_new: (cov_new + fill_new) as f32 / new_total.max(1) as f32,
        placed_old: (cov_old + fill_old) as f32 / old_total.max(1) as f32,
        clustered: 0.0,
        lacking: 0.0,
    };
    if gate.is_some_and(|g| g.shuts(&a)) {
        return a;
    }
    let (mut subst, mut indel, mut script_len) = (0usize, 0usize, 0usize);
    let (mut lacking, mut following, mut script_words) = (0usize, 0usize, 0usize);
    for &(k, i, j) in &taken[..n_taken] {
        let (i, j) = (usize::from(i), usize::from(j));
        let empty: &[u16] = &[];
        let (mut sn, mut so) = match k {
            1 => ([new.sentence(i), empty], [old.sentence(j), empty]),
            2 => (
                [new.sentence(i), empty],
                [old.sentence(j - 1), old.sentence(j)],
            ),
            _ => (
                [new.sentence(i - 1), new.sentence(i)],
                [old.sentence(j), empty],
            ),
        };
        let (nw, ow) = (sn[0].len() + sn[1].len(), so[0].len() + so[1].len());
        // A sorted sketch's words are compared with the other side's sorted too.
        if new.sorted != old.sorted {
            if new.sorted {
                so = sorted_parts(so, resorted);
            } else {
                sn = sorted_parts(sn, resorted);
            }
        }
        // A sentence repeated word for word needs no edit script (most matches of a re-post
        // or a wire version).
        if k != 1 || sn[0] != so[0] {
            let (s, d) = edit_script(sn, so);
            let (l1, f1) = runs(sn, so);
            let (l2, f2) = runs(so, sn);
            lacking += l1 + l2;
            following += f1 + f2;
            subst += s;
            indel += d;
        }
        script_len += nw.max(ow);
        script_words += nw + ow;
    }
    a.substituted = subst as f32 / script_len.max(1) as f32;
    a.inserted_deleted = indel as f32 / script_len.max(1) as f32;
    a.clustered = following as f32 / lacking.max(1) as f32;
    a.lacking = lacking as f32 / script_words.max(1) as f32;
    a
}
