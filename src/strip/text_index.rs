//! Owns a per-page index of texts (the page's blocks, or the visible-text walk's lines) by
//! content, for the edge pruner and the tail trim, which look output lines up in it: one sorted
//! vector of (hash, position), so building it costs one allocation and a sort, and a page of
//! thousands of equal lines costs a binary search a line, not a pass over the page. Lines are
//! compared as [`collapse`] writes them.

use std::borrow::Cow;
use xxhash_rust::xxh3::xxh3_64;

/// Returns `text` with runs of whitespace collapsed to one space and the ends trimmed (as
/// `split_whitespace` sees whitespace), as the walk writes its lines and blocks; borrowed when
/// it is so already (an ASCII text with no whitespace but single spaces between words: the
/// common case).
pub fn collapse(text: &str) -> Cow<'_, str> {
    let b = text.as_bytes();
    // ASCII whitespace as `split_whitespace` has it: `is_ascii_whitespace` leaves out \x0B.
    let space = |x: u8| x.is_ascii_whitespace() || x == 0x0B;
    let plain = text.is_ascii()
        && !b.first().is_some_and(|&x| space(x))
        && !b.last().is_some_and(|&x| space(x))
        && !b
            .windows(2)
            .any(|w| space(w[0]) && (w[0] != b' ' || space(w[1])));
    if plain {
        return Cow::Borrowed(text);
    }
    Cow::Owned(text.split_whitespace().collect::<Vec<_>>().join(" "))
}

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

    #[test]
    fn collapse_is_split_whitespace_joined_by_single_spaces() {
        for t in [
            "",
            " ",
            "a",
            "a b",
            " a b",
            "a b ",
            "a  b",
            "a\tb",
            "a\x0Bb",
            "a \nb",
            "caf\u{e9}  au lait",
            "a\u{a0}b",
            "x\r",
            "\x0C",
        ] {
            let want = t.split_whitespace().collect::<Vec<_>>().join(" ");
            let got = collapse(t);
            assert_eq!(got, want, "{t:?}");
            assert_eq!(
                matches!(got, Cow::Borrowed(_)),
                want == t && t.is_ascii(),
                "{t:?}"
            );
        }
    }
}
