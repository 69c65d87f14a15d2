//! Owns a per-page index of texts (the page's blocks, or the visible-text walk's lines) by
//! content, for the edge pruner and the tail trim, which look output lines up in it: one sorted
//! vector of (hash, position), so building it costs one allocation and a sort, and a page of
//! thousands of equal lines costs a binary search a line, not a pass over the page.

use xxhash_rust::xxh3::xxh3_64;

/// Texts by content: `(hash, position)` sorted, so each text's positions are one run, in order.
pub struct TextIndex {
    keys: Vec<(u64, u32)>,
}

impl TextIndex {
    /// Indexes `texts`, numbered from 0 in order.
    pub fn new<'a>(texts: impl Iterator<Item = &'a [u8]>) -> Self {
        let mut keys: Vec<(u64, u32)> = texts
            .enumerate()
            .map(|(i, t)| (xxh3_64(t), i as u32))
            .collect();
        keys.sort_unstable();
        Self { keys }
    }

    /// Returns the positions, ascending, of the texts whose hash is that of `want` (a superset
    /// of those equal to it: the caller compares the bytes).
    pub fn candidates(&self, want: &[u8]) -> &[(u64, u32)] {
        let h = xxh3_64(want);
        let from = self.keys.partition_point(|&(k, _)| k < h);
        let to = from + self.keys[from..].partition_point(|&(k, _)| k == h);
        &self.keys[from..to]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_every_position_of_a_text_in_order() {
        let texts: [&[u8]; 5] = [b"a", b"b", b"a", b"", b"a"];
        let index = TextIndex::new(texts.iter().copied());
        let at: Vec<u32> = index.candidates(b"a").iter().map(|k| k.1).collect();
        assert_eq!(at, [0, 2, 4]);
        assert!(index.candidates(b"c").is_empty());
        assert_eq!(index.candidates(b"").len(), 1);
    }
}
