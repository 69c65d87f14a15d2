//! Owns the index-free work of a decision, done on the parallel workers: hashes, MinHash
//! signature, story terms and sentence sketch of one document, with their ledger encodings;
//! and the normal form and hashes exact matching uses.

use super::align::{Probe, Sketch, WordMasks};
use super::minhash::Signatures;
use super::story::{self, Term};
use super::text;
use super::IndexEntry;
use base64::Engine as _;
use std::borrow::Cow;

/// The index-free part of a decision: hashes, signatures, story terms and sentence sketch of
/// one document, and their ledger encodings. The pipeline computes it on the parallel strip
/// workers, so the single ordered dedup worker only queries and updates the index.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub(super) raw: u128,
    pub(super) text_hash: u128,
    pub(super) sigs: Option<Signatures>,
    pub(super) terms: Vec<Term>,
    pub(super) sentences: Sentences,
    /// Base64 of the signature, the terms and the sketch, as [`IndexEntry`] carries them, when
    /// encoded beforehand ([`prepare`] on a parallel worker); `None` leaves the encoding to
    /// the decision, which skips the parts its entry does not carry.
    pub(super) encoded: Option<Encoded>,
}

/// The ledger encodings of a document's index-free work.
#[derive(Debug, Clone)]
pub(super) struct Encoded {
    pub(super) sig: Option<String>,
    pub(super) terms: Option<String>,
    pub(super) sent: Option<String>,
}

impl Encoded {
    /// The encodings of a document's signature, terms and sketch.
    pub(super) fn of(sigs: Option<&Signatures>, terms: &[Term], sketch: &Sketch) -> Self {
        Self {
            sig: sigs.map(sig_b64),
            terms: terms_b64(terms),
            sent: sent_b64(sketch),
        }
    }
}

/// The sentence sketch of a document, with its word lookup ([`Probe`]) when that was built
/// beforehand: [`prepare`] builds it on a parallel worker, a decoded [`Prepared`] leaves it to
/// the decision, which needs it only for a document that is not a copy.
#[derive(Debug, Clone)]
pub(super) enum Sentences {
    Sketch(Sketch),
    Probe(Probe),
}

impl Sentences {
    pub(super) fn sketch(&self) -> &Sketch {
        match self {
            Sentences::Sketch(s) => s,
            Sentences::Probe(p) => p.sketch(),
        }
    }

    /// Returns the sentence lookup, refilling `masks` (left empty) when it has to be built.
    pub(super) fn into_probe_with(self, masks: &mut WordMasks) -> Probe {
        match self {
            Sentences::Sketch(s) => Probe::with_masks(s, std::mem::take(masks)),
            Sentences::Probe(p) => p,
        }
    }

    /// Returns the sketch, keeping the probe's word table in `masks` for the next one.
    pub(super) fn into_sketch_keeping(self, masks: &mut WordMasks) -> Sketch {
        match self {
            Sentences::Sketch(s) => s,
            Sentences::Probe(p) => {
                let (sketch, table) = p.into_parts();
                *masks = table;
                sketch
            }
        }
    }
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD_NO_PAD.encode(bytes)
}

/// Returns the ledger's base64 of a signature.
pub(super) fn sig_b64(sigs: &Signatures) -> String {
    b64(&sigs.to_bytes())
}

/// Returns the ledger's base64 of story terms; `None` when there are none.
pub(super) fn terms_b64(terms: &[Term]) -> Option<String> {
    (!terms.is_empty()).then(|| {
        let bytes: Vec<u8> = terms.iter().flat_map(|t| t.pack().to_le_bytes()).collect();
        b64(&bytes)
    })
}

/// Returns the ledger's base64 of a sentence sketch; `None` when it has no sentence.
pub(super) fn sent_b64(sketch: &Sketch) -> Option<String> {
    (sketch.sentence_count() > 0).then(|| b64(&sketch.to_bytes()))
}

/// Returns the index-free work of deciding `text` for the document `id`.
///
/// One [`text::scan`] gives the words, the sentences of the sketch and the normal form (but
/// for a text with a character whose lowercase is classified otherwise, which takes
/// [`normalize`]).
pub fn prepare(id: &str, text: &str) -> Prepared {
    let scan = text::scan(text);
    let words = &scan.words;
    let sigs = Signatures::of(words);
    let terms = story::terms(words);
    let sketch = Sketch::of_sentences(scan.sentences());
    let text_hash = match &scan.normal {
        Some(normal) => hash128(normal),
        None => hash128(normalize(text).as_bytes()),
    };
    let encoded = Encoded::of(sigs.as_ref(), &terms, &sketch);
    Prepared {
        raw: parse_hex(id).unwrap_or_else(|| hash128(id.as_bytes())),
        text_hash,
        sigs,
        terms,
        sentences: Sentences::Sketch(sketch),
        encoded: Some(encoded),
    }
}

pub(super) fn decode_b64(s: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(s.trim_end_matches('='))
        .ok()
}

/// Returns the normal form exact duplicates are judged on: NFKC, lowercase, punctuation and
/// whitespace folded to single spaces.
///
/// Works on bytes as [`text::words`] does: ASCII bytes (NFKC is the identity on them, and
/// their lowercase is one ASCII byte) take a byte fast path, other characters are decoded,
/// lowercased and classified as Unicode.
pub fn normalize(text: &str) -> String {
    let text = if text.is_ascii() {
        Cow::Borrowed(text)
    } else {
        text::nfkc(text)
    };
    // Room for every byte and a space before each (a lowercase that is longer grows it).
    let mut out: Vec<u8> = Vec::with_capacity(2 * text.len());
    let mut pending_space = false;
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b < 0x80 {
            i += 1;
            if b.is_ascii_alphanumeric() {
                if pending_space && !out.is_empty() {
                    out.push(b' ');
                }
                pending_space = false;
                out.push(b.to_ascii_lowercase());
            } else {
                pending_space = true;
            }
            continue;
        }
        // `i` is always at a character boundary: it moves by whole characters.
        let Some(c) = text.get(i..).and_then(|rest| rest.chars().next()) else {
            break;
        };
        i += c.len_utf8();
        for l in c.to_lowercase() {
            if l.is_alphanumeric() {
                if pending_space && !out.is_empty() {
                    out.push(b' ');
                }
                pending_space = false;
                out.extend_from_slice(l.encode_utf8(&mut [0u8; 4]).as_bytes());
            } else {
                pending_space = true;
            }
        }
    }
    // Whole characters and ASCII bytes only, so this always holds.
    String::from_utf8(out).unwrap_or_default()
}

/// Returns the 128-bit content hash used for ids and exact matching.
pub fn hash128(bytes: &[u8]) -> u128 {
    xxhash_rust::xxh3::xxh3_128(bytes)
}

/// Parses a hexadecimal id as `u128::from_str_radix(s, 16)` does (32 digits directly).
pub(super) fn parse_hex(s: &str) -> Option<u128> {
    let digits = s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit());
    if !digits {
        return u128::from_str_radix(s, 16).ok();
    }
    Some(s.bytes().fold(0u128, |v, b| {
        let d = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            _ => b - b'A' + 10,
        };
        v << 4 | u128::from(d)
    }))
}

/// Returns `v` as 32 lowercase hexadecimal digits (`format!("{v:032x}")`).
pub(super) fn hex(v: u128) -> String {
    let mut out = [0u8; 32];
    // Eight digits at a time, high to low, in one `u64` each (no table lookups).
    for (d, part) in out.chunks_exact_mut(8).zip([96, 64, 32, 0]) {
        d.copy_from_slice(&hex8((v >> part) as u32));
    }
    // Hexadecimal digits are ASCII, so this always holds.
    std::str::from_utf8(&out).map_or_else(|_| String::new(), str::to_owned)
}

/// Returns the 8 lowercase hexadecimal digits of `x`, high to low: its nibbles spread one to a
/// byte, then each turned into its digit, all eight at once.
fn hex8(x: u32) -> [u8; 8] {
    const LOW: u64 = 0x0101_0101_0101_0101;
    let x = u64::from(x);
    let x = (x | x << 16) & 0x0000_ffff_0000_ffff;
    let x = (x | x << 8) & 0x00ff_00ff_00ff_00ff;
    let n = (x | x << 4) & 0x0f0f_0f0f_0f0f_0f0f;
    // 1 in each byte whose nibble is 10 or more (no byte carries into the next: at most 21).
    let letter = ((n + 6 * LOW) >> 4) & LOW;
    // '0' + n, and 39 more for a letter ('a' is '0' + 49): at most 102, no carries either.
    (n + b'0' as u64 * LOW + 39 * letter).to_be_bytes()
}

impl IndexEntry {
    /// Returns the entry as JSON: the bytes of `serde_json::to_string`, written directly when
    /// no string needs an escape (ids are hex, the rest base64, as the decision makes them).
    pub fn to_json(&self) -> serde_json::Result<String> {
        let fields: [(&str, Option<&str>); 7] = [
            ("id", Some(&self.id)),
            ("text_hash", Some(&self.text_hash)),
            ("duplicate_of", self.duplicate_of.as_deref()),
            ("story", self.story.as_deref()),
            ("sig", self.sig.as_deref()),
            ("terms", self.terms.as_deref()),
            ("sent", self.sent.as_deref()),
        ];
        // Without a short cut, so that the scan vectorises.
        let escaped = |v: &str| {
            v.bytes()
                .fold(false, |e, b| e | (b < 0x20) | (b == b'"') | (b == b'\\'))
        };
        if fields.iter().any(|(_, v)| v.is_some_and(escaped)) {
            return serde_json::to_string(self);
        }
        let len: usize = fields
            .iter()
            .map(|(k, v)| v.map_or(0, |v| k.len() + v.len() + 6))
            .sum();
        let mut out = String::with_capacity(len + 2);
        out.push('{');
        for (k, v) in fields {
            if let Some(v) = v {
                if out.len() > 1 {
                    out.push(',');
                }
                out.push('"');
                out.push_str(k);
                out.push_str("\":\"");
                out.push_str(v);
                out.push('"');
            }
        }
        out.push('}');
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use unicode_normalization::UnicodeNormalization;

    #[test]
    fn eight_digits_at_once_are_the_formatter_ones() {
        // Every digit in every place, then values spread over the range.
        for place in 0..8 {
            for d in 0..16u32 {
                let x = d << (4 * place);
                assert_eq!(hex8(x), format!("{x:08x}").as_bytes(), "{x:#x}");
            }
        }
        let mut v = 0x9e37_79b9_7f4a_7c15_u128;
        for _ in 0..10_000 {
            v = v
                .wrapping_mul(0x2545_f491_4f6c_dd1d_0000_0000_0000_0001)
                .wrapping_add(1442695040888963407);
            assert_eq!(hex(v), format!("{v:032x}"));
            assert_eq!(hex8(v as u32), format!("{:08x}", v as u32).as_bytes());
        }
    }

    #[test]
    fn hex_forms_are_the_formatter_and_parser_ones() {
        for v in [
            0u128,
            1,
            0xabc,
            u128::MAX,
            0x0123_4567_89ab_cdef_fedc_ba98_7654_3210,
            0xf0e1_d2c3_b4a5_9687_7869_5a4b_3c2d_1e0f,
            0x9a9a_a9a9_0f0f_f0f0_1010_0101_fefe_efef,
        ] {
            assert_eq!(hex(v), format!("{v:032x}"));
            assert_eq!(parse_hex(&hex(v)), Some(v));
            assert_eq!(parse_hex(&format!("{v:032X}")), Some(v));
        }
        for s in [
            "",
            "+1",
            "ab",
            "g0000000000000000000000000000000",
            "+0000000000000000000000000000001",
        ] {
            assert_eq!(parse_hex(s), u128::from_str_radix(s, 16).ok(), "{s:?}");
        }
        assert_eq!(parse_hex(&"0".repeat(33)), Some(0));
        assert_eq!(parse_hex(&"é".repeat(16)), None);
    }

    /// The former implementation, the reference for the byte-wise one.
    fn normalize_reference(text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut pending_space = false;
        for c in text.nfkc().flat_map(char::to_lowercase) {
            if c.is_alphanumeric() {
                if pending_space && !out.is_empty() {
                    out.push(' ');
                }
                pending_space = false;
                out.push(c);
            } else {
                pending_space = true;
            }
        }
        out
    }

    #[test]
    fn bytewise_normalize_matches_reference() {
        let mut texts = text::tests::seed_texts();
        texts.extend(text::tests::tricky_strings(20_000));
        texts.push("  İstanbul, ΣΟΦΙΑ — Straße… ﬁne Ｆｕｌｌ ½ e\u{301}!  ".into());
        for t in &texts {
            assert_eq!(normalize(t), normalize_reference(t), "{t:?}");
        }
    }

    /// Texts with sentences, curly quotes, ellipses and characters NFKC or lowercasing change:
    /// the seeds, then pieces of them and [`text::tests::tricky_strings`] put together.
    fn scan_texts() -> Vec<String> {
        let mut texts = text::tests::seed_texts();
        let tricky = text::tests::tricky_strings(40_000);
        const GLUE: &[&str] = &[
            ". ", ".", "\n", "! ", "?", ": ", " ", "\"", "“", "” ", "…", "—", "İ", "a.b", "3.5",
            "The ", "Geneva", "talks", "ended", "in", "2013", "\u{301}", "ǅ", "ﬁ", "!\n",
        ];
        for (i, chunk) in tricky.chunks(8).enumerate() {
            let mut t = String::new();
            for (j, s) in chunk.iter().enumerate() {
                t.push_str(s);
                t.push_str(GLUE[(i * 7 + j * 3) % GLUE.len()]);
                t.push_str(GLUE[(i + j * 5) % GLUE.len()]);
            }
            texts.push(t);
        }
        // The seeds with a tricky piece at a varying place.
        let seeds = text::tests::seed_texts();
        for (i, piece) in tricky.iter().take(2_000).enumerate() {
            let s = &seeds[i % seeds.len()];
            let at = (0..=i * 997 % s.len())
                .rev()
                .find(|&c| s.is_char_boundary(c))
                .unwrap_or(0);
            texts.push(format!("{}{piece}{}", &s[..at], &s[at..]));
        }
        texts.extend(tricky);
        texts
    }

    #[test]
    fn one_scan_prepares_as_the_separate_passes() {
        let texts = scan_texts();
        let (mut cut, mut multi, mut normal) = (0, 0, 0);
        for t in &texts {
            let scan = text::scan(t);
            assert_eq!(scan.words, text::words(t), "{t:?}");
            if let Some(n) = &scan.normal {
                normal += 1;
                assert_eq!(n.as_slice(), normalize(t).as_bytes(), "{t:?}");
            }
            let sketch = Sketch::of_sentences(scan.sentences());
            assert_eq!(sketch, Sketch::of(t), "{t:?}");
            cut += usize::from(!scan.cuts.is_empty());
            multi += usize::from(sketch.sentence_count() > 1);
            // The whole preparation against the separate passes it replaced.
            let p = prepare("ab", t);
            let words = text::words(t);
            assert_eq!(p.text_hash, hash128(normalize(t).as_bytes()), "{t:?}");
            assert_eq!(p.sigs, Signatures::of(&words), "{t:?}");
            assert_eq!(p.terms, story::terms(&words), "{t:?}");
            assert_eq!(*p.sentences.sketch(), Sketch::of(t), "{t:?}");
        }
        // Sentences were cut, and both the one pass and the fallback of the normal form tried.
        let n = texts.len();
        assert!(
            cut > n / 10 && multi > 100 && normal > n / 4 && normal < n,
            "{cut} {multi} {normal} {n}"
        );
    }

    #[test]
    fn entry_json_is_the_serde_json() {
        let p = prepare(
            "ab",
            "The bridge reopens in March after repairs to two of its pillars.",
        );
        let full = IndexEntry {
            id: hex(7),
            text_hash: hex(u128::MAX),
            duplicate_of: Some(hex(3)),
            story: Some(hex(9)),
            sig: p.encoded.as_ref().and_then(|e| e.sig.clone()),
            terms: p.encoded.as_ref().and_then(|e| e.terms.clone()),
            sent: p.encoded.as_ref().and_then(|e| e.sent.clone()),
        };
        assert!(full.sig.is_some() && full.sent.is_some());
        let bare = IndexEntry {
            duplicate_of: None,
            sig: None,
            sent: None,
            ..full.clone()
        };
        // Strings that need escapes (not made by the decision) go through serde_json.
        let odd = IndexEntry {
            id: "a\"b\\c\n\u{1}é".into(),
            ..bare.clone()
        };
        for e in [full, bare, odd] {
            assert_eq!(e.to_json().unwrap(), serde_json::to_string(&e).unwrap());
        }
    }
}
