//! Owns the index-free work of a decision, done on the parallel workers: hashes, MinHash
//! signature, story terms and sentence sketch of one document, with their ledger encodings;
//! and the normal form and hashes exact matching uses.

use super::align::{Probe, Sketch};
use super::minhash::Signatures;
use super::story::{self, Term};
use super::text;
use base64::Engine as _;

/// The index-free part of a decision: hashes, signatures, story terms and sentence sketch of
/// one document, and their ledger encodings. The pipeline computes it on the parallel strip
/// workers, so the single ordered dedup worker only queries and updates the index.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub(super) raw: u128,
    pub(super) text_hash: u128,
    pub(super) sigs: Option<Signatures>,
    pub(super) terms: Vec<Term>,
    pub(super) probe: Probe,
    /// Base64 of the signature, the terms and the sketch, as [`IndexEntry`] carries them.
    pub(super) sig_b64: Option<String>,
    pub(super) terms_b64: Option<String>,
    pub(super) sent_b64: Option<String>,
}

/// Returns the index-free work of deciding `text` for the document `id`.
pub fn prepare(id: &str, text: &str) -> Prepared {
    let words = text::words(text);
    let sigs = Signatures::of(&words);
    let terms = story::terms(&words);
    let sketch = Sketch::of(text);
    Prepared::assemble(
        parse_hex(id).unwrap_or_else(|| hash128(id.as_bytes())),
        hash128(normalize(text).as_bytes()),
        sigs,
        terms,
        sketch,
    )
}

impl Prepared {
    /// Builds the prepared work from its parts, with the base64 forms the ledger's
    /// [`IndexEntry`] carries, so the ordered worker does not encode them.
    pub(super) fn assemble(
        raw: u128,
        text_hash: u128,
        sigs: Option<Signatures>,
        terms: Vec<Term>,
        sketch: Sketch,
    ) -> Prepared {
        let b64 = |bytes: Vec<u8>| base64::engine::general_purpose::STANDARD_NO_PAD.encode(bytes);
        let sig_b64 = sigs.as_ref().map(|s| b64(s.to_bytes()));
        let terms_b64 = (!terms.is_empty())
            .then(|| b64(terms.iter().flat_map(|t| t.pack().to_le_bytes()).collect()));
        let sent_b64 = (sketch.sentence_count() > 0).then(|| b64(sketch.to_bytes()));
        Prepared {
            raw,
            text_hash,
            sigs,
            terms,
            probe: Probe::new(sketch),
            sig_b64,
            terms_b64,
            sent_b64,
        }
    }
}

pub(super) fn decode_b64(s: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(s.trim_end_matches('='))
        .ok()
}

/// Returns the normal form exact duplicates are judged on: NFKC, lowercase, punctuation and
/// whitespace folded to single spaces.
pub fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut pending_space = false;
    let mut push = |c: char| {
        if c.is_alphanumeric() {
            if pending_space && !out.is_empty() {
                out.push(' ');
            }
            pending_space = false;
            out.push(c);
        } else {
            pending_space = true;
        }
    };
    if text.is_ascii() {
        // NFKC is the identity on ASCII.
        text.chars()
            .map(|c| c.to_ascii_lowercase())
            .for_each(&mut push);
    } else {
        text::nfkc(text)
            .chars()
            .flat_map(char::to_lowercase)
            .for_each(&mut push);
    }
    out
}

/// Returns the 128-bit content hash used for ids and exact matching.
pub fn hash128(bytes: &[u8]) -> u128 {
    xxhash_rust::xxh3::xxh3_128(bytes)
}

pub(super) fn parse_hex(s: &str) -> Option<u128> {
    u128::from_str_radix(s, 16).ok()
}

pub(super) fn hex(v: u128) -> String {
    format!("{v:032x}")
}
