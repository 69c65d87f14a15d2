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

    pub(super) fn into_probe(self) -> Probe {
        match self {
            Sentences::Sketch(s) => Probe::new(s),
            Sentences::Probe(p) => p,
        }
    }

    pub(super) fn into_sketch(self) -> Sketch {
        match self {
            Sentences::Sketch(s) => s,
            Sentences::Probe(p) => p.into_sketch(),
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
pub fn prepare(id: &str, text: &str) -> Prepared {
    let words = text::words(text);
    let sigs = Signatures::of(&words);
    let terms = story::terms(&words);
    let sketch = Sketch::of(text);
    let encoded = Encoded {
        sig: sigs.as_ref().map(sig_b64),
        terms: terms_b64(&terms),
        sent: sent_b64(&sketch),
    };
    Prepared {
        raw: parse_hex(id).unwrap_or_else(|| hash128(id.as_bytes())),
        text_hash: hash128(normalize(text).as_bytes()),
        sigs,
        terms,
        sentences: Sentences::Probe(Probe::new(sketch)),
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
