//! Owns each thread's cache of word forms: the form-only part of a token's information
//! (hashes of the word, its lower-case form, shapes and affixes, and its flags) depends on the
//! word alone, and news repeats its words, so a word seen lately is copied, not hashed again.
//!
//! The cache is direct-mapped (one slot per index, the newest word wins) and keyed exactly: a
//! word of up to 16 bytes is told apart from every other by its length and two integers read
//! from its bytes, so a hit gives what [`super::token_form`] would compute. Longer words are
//! computed every time.

use super::{flag, TokInfo};
use std::cell::RefCell;

/// Slots of the cache: a power of two. 1,024 slots of about 150 bytes stay in the
/// second-level cache beside the model's rows.
const SLOTS: usize = 1 << 10;

/// One cached word: its key (`len` 0 for an empty slot) and its form without `SENT_START`.
#[derive(Clone, Copy, Default)]
struct Slot {
    a: u64,
    b: u64,
    len: u32,
    info: TokInfo,
}

thread_local! {
    static FORMS: RefCell<Vec<Slot>> = const { RefCell::new(Vec::new()) };
}

/// Returns a word of 1 to 16 bytes as two integers that, with its length, tell it apart from
/// every other word of 1 to 16 bytes (for 8 to 16 bytes the first and the last eight, which
/// overlap for fewer than 16); `None` for other lengths.
#[inline]
fn key(w: &[u8]) -> Option<(u64, u64)> {
    let n = w.len();
    let le8 = |s: &[u8]| s.try_into().map_or(0, u64::from_le_bytes);
    let le4 = |s: &[u8]| s.try_into().map_or(0, |x| u64::from(u32::from_le_bytes(x)));
    Some(match n {
        8..=16 => (le8(&w[..8]), le8(&w[n - 8..])),
        4..=7 => (le4(&w[..4]), le4(&w[n - 4..])),
        // Every byte of a word of one to three bytes is among these three.
        1..=3 => (
            u64::from(w[0]) | u64::from(w[n / 2]) << 8 | u64::from(w[n - 1]) << 16,
            0,
        ),
        _ => return None,
    })
}

/// Returns the slot index of a key.
#[inline]
fn index(a: u64, b: u64, len: usize) -> usize {
    let h = (a ^ b.rotate_left(31) ^ len as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (h >> (64 - SLOTS.trailing_zeros())) as usize
}

/// Pushes the form-only information of each of `words` (with `SENT_START` where `starts`
/// says) onto `infos`, exactly as [`super::token_form`] computes it, through this thread's
/// cache.
pub(super) fn push_forms<'w>(
    words: impl Iterator<Item = (&'w str, bool)>,
    infos: &mut Vec<TokInfo>,
) {
    FORMS.with_borrow_mut(|slots| {
        if slots.len() != SLOTS {
            *slots = vec![Slot::default(); SLOTS];
        }
        for (word, sent_start) in words {
            infos.push(cached_form(slots, word, sent_start));
        }
    });
}

/// Returns a word's form-only information from `slots`, computing and storing it on a miss.
#[inline]
fn cached_form(slots: &mut [Slot], word: &str, sent_start: bool) -> TokInfo {
    let bytes = word.as_bytes();
    let Some((a, b)) = key(bytes) else {
        return super::token_form(word, sent_start);
    };
    let len = bytes.len() as u32;
    let Some(slot) = slots.get_mut(index(a, b, bytes.len())) else {
        return super::token_form(word, sent_start);
    };
    if slot.len != len || slot.a != a || slot.b != b {
        *slot = Slot {
            a,
            b,
            len,
            info: super::token_form(word, false),
        };
    }
    let mut info = slot.info;
    if sent_start {
        info.flags |= flag::SENT_START;
    }
    info
}

#[cfg(test)]
mod tests {
    use super::*;

    fn same(x: &TokInfo, y: &TokInfo) -> bool {
        (x.word, x.lower, x.shape, x.short, x.pre, x.suf, x.flags)
            == (y.word, y.lower, y.shape, y.short, y.pre, y.suf, y.flags)
    }

    #[test]
    fn keys_tell_words_of_every_length_apart() {
        let mut seen = std::collections::HashMap::new();
        let mut words = vec![String::new()];
        for n in 1..=18 {
            for fill in ["a", "b", "é"] {
                let w: String = fill.repeat(n);
                words.push(w.clone());
                // One byte changed at every position: each must change the key.
                for i in 0..w.len() {
                    let mut b = w.clone().into_bytes();
                    b[i] ^= 1;
                    if let Ok(s) = String::from_utf8(b) {
                        words.push(s);
                    }
                }
            }
        }
        for w in &words {
            if let Some(k) = key(w.as_bytes()) {
                if let Some(other) = seen.insert((k, w.len()), w.clone()) {
                    assert_eq!(&other, w, "two words share a key");
                }
            } else {
                assert!(w.is_empty() || w.len() > 16, "{w:?} not cached");
            }
        }
    }

    #[test]
    fn cached_forms_are_the_computed_ones() {
        // Many more words than slots, each seen several times and at sentence starts or not,
        // so slots are hit, missed and overwritten.
        let mut words: Vec<String> = (0..3 * SLOTS).map(|i| format!("W{i}x")).collect();
        words.extend(
            [
                "the",
                "The",
                "THE",
                "a",
                "A",
                "U.S.",
                "Zoë",
                "Straße",
                "İstanbul",
                "東京",
                "a-very-long-hyphenated-word",
                "1,200",
                "$",
                "'s",
                "McDonald's",
                "",
            ]
            .map(String::from),
        );
        let mut got = Vec::new();
        let mut want = Vec::new();
        for round in 0..3 {
            let it = words
                .iter()
                .enumerate()
                .map(|(i, w)| (w.as_str(), (i + round) % 3 == 0));
            want.extend(it.clone().map(|(w, s)| super::super::token_form(w, s)));
            push_forms(it, &mut got);
        }
        assert_eq!(got.len(), want.len());
        for (k, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!(same(g, w), "token {k}: {:?}", words[k % words.len()]);
        }
    }
}
