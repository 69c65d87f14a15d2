//! Owns the word view of a document that every dedup tier reads: normalised word hashes in order.
//!
//! Words follow the same normal form as [`super::normalize`]: NFKC, lowercase, runs of letters and
//! digits. Pure-ASCII text skips NFKC (it is the identity there), which keeps signatures fast.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use unicode_normalization::{is_nfkc_quick, IsNormalized, UnicodeNormalization};

/// One word of a document: the hash of its normal form and whether it looked like a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Word {
    pub hash: u64,
    /// Capitalised and not at the start of a sentence or line: a cheap proper-noun proxy.
    pub name_like: bool,
    /// Length of the normal form in bytes.
    pub len: u16,
}

/// Hashes keys that are already uniform hash bits (word and term hashes, story and band ids)
/// with a multiply instead of SipHash: the dedup maps sit on the stage's one sequential thread.
#[derive(Debug, Default, Clone, Copy)]
pub struct IdHasher(u64);

impl IdHasher {
    fn mix(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(26) ^ v).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        // Folds the well-mixed high bits into the low ones the table indexes by.
        self.0 ^ (self.0 >> 29)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.mix(u64::from(b));
        }
    }

    fn write_u32(&mut self, v: u32) {
        self.mix(u64::from(v));
    }

    fn write_u64(&mut self, v: u64) {
        self.mix(v);
    }

    fn write_u128(&mut self, v: u128) {
        self.mix(v as u64 ^ (v >> 64) as u64);
    }
}

/// A map keyed by hash-derived ids, see [`IdHasher`].
pub type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;
/// A set of hash-derived ids, see [`IdHasher`].
pub type IdSet<K> = HashSet<K, BuildHasherDefault<IdHasher>>;

#[path = "text_scan.rs"]
mod scan;
pub use scan::{scan, Scan};

/// Returns the words of `text` in order.
///
/// Works on bytes: ASCII bytes (most of any news text) take a byte fast path, and only the
/// characters at or above U+0080 are decoded and classified as Unicode.
pub fn words(text: &str) -> Vec<Word> {
    let mut out = Vec::with_capacity(text.len() / 6 + 1);
    words_into(text, &mut out);
    out
}

/// Appends the words of `text` to `out`, as [`words`] returns them (a caller that splits a
/// text into many pieces keeps one buffer).
pub fn words_into(text: &str, out: &mut Vec<Word>) {
    let text: Cow<'_, str> = if text.is_ascii() {
        Cow::Borrowed(text)
    } else {
        nfkc(text)
    };
    let bytes = text.as_bytes();
    let mut buf: Vec<u8> = Vec::with_capacity(32);
    let mut sentence_start = true;
    let mut first_upper = false;
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let sentence_mark = if b < 0x80 {
            i += 1;
            if b.is_ascii_alphanumeric() {
                if buf.is_empty() {
                    first_upper = b.is_ascii_uppercase();
                }
                buf.push(b.to_ascii_lowercase());
                continue;
            }
            matches!(b, b'.' | b'!' | b'?' | b'\n' | b':' | b'"')
        } else {
            // `i` is always at a character boundary: it moves by whole characters.
            let Some(c) = text.get(i..).and_then(|rest| rest.chars().next()) else {
                break;
            };
            i += c.len_utf8();
            if c.is_alphanumeric() {
                if buf.is_empty() {
                    first_upper = c.is_uppercase();
                }
                for l in c.to_lowercase() {
                    buf.extend_from_slice(l.encode_utf8(&mut [0u8; 4]).as_bytes());
                }
                continue;
            }
            matches!(c, '“' | '”')
        };
        if !buf.is_empty() {
            push_word(out, &buf, first_upper && !sentence_start);
            sentence_start = false;
            buf.clear();
        }
        if sentence_mark {
            sentence_start = true;
        }
    }
    if !buf.is_empty() {
        push_word(out, &buf, first_upper && !sentence_start);
    }
}

/// Whether [`sentences`] cuts after the byte `b`, followed by `next`.
pub(super) fn is_cut(b: u8, next: Option<&u8>) -> bool {
    b == b'\n' || (matches!(b, b'.' | b'!' | b'?') && next.is_none_or(u8::is_ascii_whitespace))
}

/// Returns the sentences of `text`: cut after `.`, `!` or `?` followed by white space, and at
/// line breaks.
pub fn sentences(text: &str) -> impl Iterator<Item = &str> {
    let bytes = text.as_bytes();
    let mut start = 0;
    let mut i = 0;
    std::iter::from_fn(move || {
        while i < bytes.len() {
            let b = bytes[i];
            i += 1;
            if is_cut(b, bytes.get(i)) {
                let s = &text[start..i];
                start = i;
                return Some(s);
            }
        }
        (start < bytes.len()).then(|| {
            let s = &text[start..];
            start = bytes.len();
            s
        })
    })
}

/// Returns `text` in NFKC, borrowed when the quick check proves it already is (most news text,
/// curly quotes and dashes included), which skips the costly normalisation pass.
///
/// Otherwise only the pieces that need it are normalised: NFKC of a text is the NFKC of its
/// pieces put together when every cut is just before an ASCII character (a starter that is
/// never the second of a composition, so nothing reorders or composes across it). A piece is a
/// run of non-ASCII characters with the ASCII character before it (which may compose with
/// them); the ASCII between pieces is copied as it is, and a piece the quick check passes too.
pub fn nfkc(text: &str) -> Cow<'_, str> {
    if is_nfkc_quick(text.chars()) == IsNormalized::Yes {
        return Cow::Borrowed(text);
    }
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    // `text[..done]` is in `out`; `done` and `i` are always at character boundaries.
    let (mut done, mut i) = (0, 0);
    while i < bytes.len() {
        if bytes[i] < 0x80 {
            i += 1;
            continue;
        }
        let end = bytes[i..]
            .iter()
            .position(|&b| b < 0x80)
            .map_or(bytes.len(), |n| i + n);
        let start = i.saturating_sub(1).max(done);
        out.push_str(&text[done..start]);
        let piece = &text[start..end];
        if is_nfkc_quick(piece.chars()) == IsNormalized::Yes {
            out.push_str(piece);
        } else {
            out.extend(piece.nfkc());
        }
        (done, i) = (end, end);
    }
    out.push_str(&text[done..]);
    Cow::Owned(out)
}

pub(super) fn push_word(out: &mut Vec<Word>, normal: &[u8], name_like: bool) {
    out.push(Word {
        hash: xxhash_rust::xxh3::xxh3_64(normal),
        name_like: name_like || is_year(normal),
        len: normal.len().min(u16::MAX as usize) as u16,
    });
}

/// Years tell two events of one kind apart as names do (an earthquake in 2009 or in 2013).
fn is_year(w: &[u8]) -> bool {
    w.len() == 4 && w.iter().all(u8::is_ascii_digit) && (w[..2] == *b"19" || w[..2] == *b"20")
}

/// Returns the hashes of the word `n`-grams of `words`; a text shorter than `n` words is one
/// shingle of all its words, as the reference scorer counts it.
pub fn shingles(words: &[Word], n: usize) -> impl Iterator<Item = u64> + '_ {
    let n = n.max(1);
    let windows = if words.is_empty() {
        0
    } else {
        words.len().saturating_sub(n) + 1
    };
    (0..windows).map(move |i| {
        let end = (i + n).min(words.len());
        words[i..end]
            .iter()
            .fold(0x51_7c_c1_b7_27_22_0a_95u64, |h, w| {
                (h.rotate_left(23) ^ w.hash).wrapping_mul(0x9e37_79b9_7f4a_7c15)
            })
    })
}

#[cfg(test)]
pub(in crate::dedup) mod tests {
    use super::*;

    /// The former implementation (separate ASCII and char paths), the reference for the
    /// byte-wise one.
    fn words_reference(text: &str) -> Vec<Word> {
        let mut out = Vec::new();
        let mut buf = String::with_capacity(32);
        let mut sentence_start = true;
        let mut first_upper = false;
        for c in nfkc(text).chars() {
            if c.is_alphanumeric() {
                if buf.is_empty() {
                    first_upper = c.is_uppercase();
                }
                buf.extend(c.to_lowercase());
            } else {
                if !buf.is_empty() {
                    push_word(&mut out, buf.as_bytes(), first_upper && !sentence_start);
                    sentence_start = false;
                    buf.clear();
                }
                if matches!(c, '.' | '!' | '?' | '\n' | ':' | '"' | '“' | '”') {
                    sentence_start = true;
                }
            }
        }
        if !buf.is_empty() {
            push_word(&mut out, buf.as_bytes(), first_upper && !sentence_start);
        }
        out
    }

    #[test]
    fn bytewise_words_match_reference() {
        let mut texts = seed_texts();
        texts.extend(
            [
                "",
                "a",
                "Ünïcödé at the START. Then İstanbul, ΣΟΦΙΑ and Straße: “Quoted” Words!",
                "Ｆｕｌｌｗｉｄｔｈ ﬁ ligature ½ and e\u{301} combining; 東京 2013 Zürich?",
                "Tabs\tand\nnew lines\r\n\"Quotes\" — dashes – and ’apostrophes’ ends with É",
                "ends mid word ñ",
            ]
            .map(String::from),
        );
        assert!(texts.len() > 5);
        for t in &texts {
            assert_eq!(words(t), words_reference(t), "{t:?}");
        }
    }

    /// The texts of the sample articles in `seeds/`.
    pub(in crate::dedup) fn seed_texts() -> Vec<String> {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/seeds");
        std::fs::read_dir(dir)
            .expect("seeds folder ships with the crate")
            .filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
            .collect()
    }

    /// Characters that compose, reorder, decompose or fold under NFKC, with ASCII around them.
    const TRICKY: &[char] = &[
        'a', 'e', 'A', '.', ' ', '\n', '1', '\u{301}', '\u{327}', '\u{323}', '\u{338}', '\u{345}',
        '…', 'ﬁ', 'Ｆ', '½', 'é', 'Å', '\u{212b}', '\u{1100}', '\u{1161}', '\u{11a8}', '가',
        '\u{bc6}', '\u{bbe}', 'ǅ', '\u{a0}', '’', '東', 'ſ', 'ẛ', '\u{f73}', 'İ', 'Σ', 'ß',
    ];

    /// Deterministic strings over [`TRICKY`], up to 12 characters.
    pub(in crate::dedup) fn tricky_strings(count: usize) -> Vec<String> {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as usize
        };
        (0..count)
            .map(|_| {
                (0..next() % 13)
                    .map(|_| TRICKY[next() % TRICKY.len()])
                    .collect()
            })
            .collect()
    }

    #[test]
    fn piecewise_nfkc_is_the_whole_text_nfkc() {
        let mut texts = seed_texts();
        texts.extend(tricky_strings(50_000));
        texts.push("Le cafe\u{301} …  ﬁn e\u{323}\u{302} 가\u{11a8} Ａ½".into());
        let mut owned = 0;
        for t in &texts {
            let got = nfkc(t);
            owned += usize::from(matches!(got, Cow::Owned(_)));
            assert_eq!(*got, t.nfkc().collect::<String>(), "{t:?}");
        }
        assert!(owned > 10_000, "{owned}");
    }

    #[test]
    fn ascii_and_unicode_paths_agree_on_words() {
        let a = words("Hello, World! Cafe");
        let b = words("Ｈｅｌｌｏ, World! Cafe\u{00a0}");
        assert_eq!(
            a.iter().map(|w| w.hash).collect::<Vec<_>>(),
            b.iter().map(|w| w.hash).collect::<Vec<_>>()
        );
    }

    #[test]
    fn capitalised_words_mid_sentence_are_name_like() {
        let w = words("The talks in Geneva ended. Nobody left");
        let flags: Vec<bool> = w.iter().map(|w| w.name_like).collect();
        assert_eq!(flags, vec![false, false, false, true, false, false, false]);
    }

    #[test]
    fn short_text_is_one_shingle() {
        let w = words("two words");
        assert_eq!(shingles(&w, 5).count(), 1);
        assert_eq!(shingles(&words(""), 5).count(), 0);
        assert_eq!(shingles(&words("a b c d e f"), 5).count(), 2);
    }
}
