//! Owns the wire form of [`Prepared`]: the index-free dedup work of one document as bytes, so a
//! cluster worker can do it in parallel and the one ordered decider only queries the index.
//!
//! Layout (little-endian): a version byte, the raw-byte hash and the text hash (16 bytes
//! each), the signatures' length (u32) and bytes ([`Signatures::to_bytes`], empty when the
//! text has no words), the term count (u32) and the packed terms, then (version 2) the
//! ledger's base64 of the signature, the terms and the sketch, each as a length (u32, 0 for
//! none) and its ASCII, then the sentence sketch ([`Sketch::to_bytes`]) to the end. The
//! sketch's word lookup ([`Probe`](super::align::Probe)) is rebuilt by the decision when it
//! needs it (not for a copy): it is larger than the sketch and cheap to build.
//!
//! Version 1 (before the base64 forms were carried) is still read: its decision encodes the
//! base64 forms itself, the same strings. Any other version is refused (`None`). The base64
//! forms of version 2 are the worker's [`prepare`](super::prepare) encodings of the parts
//! around them, trusted as the rest of the work is; on reading, each must be UTF-8 of the
//! length that encoding gives (none exactly when the part is empty), or the bytes are refused.

use super::align::Sketch;
use super::minhash::Signatures;
use super::prepared::{Encoded, Sentences};
use super::story::Term;
use super::Prepared;

/// Version byte of the layout above.
const VERSION: u8 = 2;
/// The layout without the base64 forms, still read.
const VERSION_1: u8 = 1;

/// Returns the length of the unpadded base64 of `n` bytes.
fn b64_len(n: usize) -> usize {
    n / 3 * 4 + [0, 2, 3][n % 3]
}

impl Prepared {
    /// Returns the prepared work as bytes ([`Prepared::from_bytes`] reads them back), with the
    /// base64 forms [`prepare`](super::prepare) encoded (encoded here when it did not).
    pub fn to_bytes(&self) -> Vec<u8> {
        let sigs = self
            .sigs
            .as_ref()
            .map(Signatures::to_bytes)
            .unwrap_or_default();
        let sketch = self.sentences.sketch().to_bytes();
        let fresh;
        let encoded = match &self.encoded {
            Some(e) => e,
            None => {
                fresh = Encoded::of(self.sigs.as_ref(), &self.terms, self.sentences.sketch());
                &fresh
            }
        };
        let forms = [&encoded.sig, &encoded.terms, &encoded.sent].map(|f| f.as_deref());
        let b64: usize = forms.iter().map(|f| 4 + f.map_or(0, str::len)).sum();
        let mut out =
            Vec::with_capacity(41 + sigs.len() + 4 * self.terms.len() + b64 + sketch.len());
        out.push(VERSION);
        out.extend_from_slice(&self.raw.to_le_bytes());
        out.extend_from_slice(&self.text_hash.to_le_bytes());
        out.extend_from_slice(&(sigs.len() as u32).to_le_bytes());
        out.extend_from_slice(&sigs);
        out.extend_from_slice(&(self.terms.len() as u32).to_le_bytes());
        for t in &self.terms {
            out.extend_from_slice(&t.pack().to_le_bytes());
        }
        for f in forms {
            let f = f.unwrap_or_default();
            out.extend_from_slice(&(f.len() as u32).to_le_bytes());
            out.extend_from_slice(f.as_bytes());
        }
        out.extend_from_slice(&sketch);
        out
    }

    /// Parses what [`Prepared::to_bytes`] wrote, or the version 1 layout; `None` when the
    /// bytes are neither.
    pub fn from_bytes(bytes: &[u8]) -> Option<Prepared> {
        let (&version, mut rest) = bytes.split_first()?;
        if version != VERSION && version != VERSION_1 {
            return None;
        }
        let raw = u128::from_le_bytes(take(&mut rest, 16)?.try_into().ok()?);
        let text_hash = u128::from_le_bytes(take(&mut rest, 16)?.try_into().ok()?);
        let sig_len = u32::from_le_bytes(take(&mut rest, 4)?.try_into().ok()?) as usize;
        let sig_bytes = take(&mut rest, sig_len)?;
        let sigs = if sig_len == 0 {
            None
        } else {
            Some(Signatures::from_bytes(sig_bytes)?)
        };
        let n_terms = u32::from_le_bytes(take(&mut rest, 4)?.try_into().ok()?) as usize;
        let term_bytes = take(&mut rest, n_terms.checked_mul(4)?)?;
        let mut terms = vec![Term::unpack(0); n_terms];
        for (t, c) in terms.iter_mut().zip(term_bytes.chunks_exact(4)) {
            *t = Term::unpack(u32::from_le_bytes([c[0], c[1], c[2], c[3]]));
        }
        let forms = if version == VERSION {
            let mut forms = [None, None, None];
            for f in &mut forms {
                let n = u32::from_le_bytes(take(&mut rest, 4)?.try_into().ok()?) as usize;
                *f = (n > 0).then_some(take(&mut rest, n)?);
            }
            Some(forms)
        } else {
            None
        };
        let sketch = Sketch::from_bytes(rest)?;
        let encoded = match forms {
            Some([sig, terms_form, sent]) => {
                // Each form is there exactly when its part is, at the length its encoding has.
                let fits = |form: Option<&[u8]>, part: Option<usize>| match (form, part) {
                    (Some(f), Some(n)) => f.len() == b64_len(n),
                    (None, None) => true,
                    _ => false,
                };
                let sent_part = (sketch.sentence_count() > 0).then_some(rest.len());
                let ok = fits(sig, (sig_len > 0).then_some(sig_len))
                    && fits(terms_form, (n_terms > 0).then_some(term_bytes.len()))
                    && fits(sent, sent_part);
                if !ok {
                    return None;
                }
                let text = |f: Option<&[u8]>| match f {
                    Some(f) => std::str::from_utf8(f).ok().map(|s| Some(s.to_owned())),
                    None => Some(None),
                };
                Some(Encoded {
                    sig: text(sig)?,
                    terms: text(terms_form)?,
                    sent: text(sent)?,
                })
            }
            None => None,
        };
        Some(Prepared {
            raw,
            text_hash,
            sigs,
            terms,
            sentences: Sentences::Sketch(sketch),
            encoded,
        })
    }
}

/// Splits the first `n` bytes off `rest`.
fn take<'a>(rest: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    if rest.len() < n {
        return None;
    }
    let (head, tail) = rest.split_at(n);
    *rest = tail;
    Some(head)
}

#[cfg(test)]
mod tests {
    use super::super::{prepare, DedupConfig, Deduper};
    use super::*;

    const A: &str = "The minister said on Tuesday that the bridge will reopen in March. \
        Engineers found cracks in two of its pillars last year. Traffic has used a ferry since.";

    #[test]
    fn decisions_from_decoded_work_match_direct_ones() {
        let texts = [
            A,
            A,
            "The minister said on Tuesday the bridge will reopen in March. Engineers found \
             cracks in two of its pillars last year. Traffic has used a ferry since then.",
            "A different story about football results and the weather over the weekend.",
            "",
        ];
        let config = DedupConfig::default();
        let (mut direct, mut wired) = (Deduper::new(&config), Deduper::new(&config));
        for (i, t) in texts.iter().enumerate() {
            let id = format!("{:032x}", i + 1);
            let p = prepare(&id, t);
            let bytes = p.to_bytes();
            let back = Prepared::from_bytes(&bytes).expect("own layout parses");
            assert_eq!(back.to_bytes(), bytes, "round trip of text {i}");
            assert_eq!(direct.observe_prepared(p), wired.observe_prepared(back));
        }
    }

    /// `bytes` (version 2) in the version 1 layout: without the base64 forms.
    fn as_version_1(bytes: &[u8]) -> Vec<u8> {
        let mut at = 33;
        let sig_len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        at += 4 + sig_len;
        let n_terms = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        at += 4 + 4 * n_terms;
        let mut forms_end = at;
        for _ in 0..3 {
            let n = u32::from_le_bytes(bytes[forms_end..forms_end + 4].try_into().unwrap());
            forms_end += 4 + n as usize;
        }
        let mut v1 = bytes[..at].to_vec();
        v1[0] = VERSION_1;
        v1.extend_from_slice(&bytes[forms_end..]);
        v1
    }

    #[test]
    fn carried_base64_is_the_prepared_one_and_version_1_still_decides_the_same() {
        let texts = [
            A,
            A,
            "The minister said on Tuesday the bridge will reopen in March. Engineers found \
             cracks in two of its pillars last year. Traffic has used a ferry since then.",
            "Short one.",
            "",
        ];
        let config = DedupConfig::default();
        let (mut v2, mut v1) = (Deduper::new(&config), Deduper::new(&config));
        for (i, t) in texts.iter().enumerate() {
            let p = prepare(&format!("{:032x}", i + 1), t);
            let bytes = p.to_bytes();
            assert_eq!(bytes[0], VERSION);
            let back = Prepared::from_bytes(&bytes).expect("version 2 parses");
            let (e, b) = (p.encoded.as_ref().unwrap(), back.encoded.as_ref().unwrap());
            assert_eq!(
                (&e.sig, &e.terms, &e.sent),
                (&b.sig, &b.terms, &b.sent),
                "{i}"
            );
            let old = Prepared::from_bytes(&as_version_1(&bytes)).expect("version 1 parses");
            assert!(old.encoded.is_none());
            // Without the forms, they are encoded when written: the same bytes.
            assert_eq!(old.to_bytes(), bytes, "{i}");
            assert_eq!(v2.observe_prepared(back), v1.observe_prepared(old), "{i}");
        }
    }

    #[test]
    fn base64_forms_that_do_not_fit_are_refused() {
        let p = prepare("ab", A);
        let mut e = p.encoded.clone().unwrap();
        e.sig.as_mut().unwrap().pop();
        let short = Prepared {
            encoded: Some(e),
            ..p.clone()
        };
        assert!(Prepared::from_bytes(&short.to_bytes()).is_none());
        let mut e = p.encoded.clone().unwrap();
        e.sent = None;
        let missing = Prepared {
            encoded: Some(e),
            ..p.clone()
        };
        assert!(Prepared::from_bytes(&missing.to_bytes()).is_none());
        // A form of the right length that is not UTF-8: the signature's first byte.
        let mut bytes = p.to_bytes();
        let at = 33 + 4 + 448 + 4 + 4 * p.terms.len() + 4;
        assert_eq!(bytes[at - 4..at], (598u32).to_le_bytes());
        bytes[at] = 0xff;
        assert!(Prepared::from_bytes(&bytes).is_none());
        assert!(Prepared::from_bytes(&p.to_bytes()).is_some());
    }

    #[test]
    fn other_bytes_are_refused() {
        let bytes = prepare("ab", A).to_bytes();
        assert!(Prepared::from_bytes(&[]).is_none());
        assert!(Prepared::from_bytes(&bytes[..20]).is_none());
        for v in [0, 3, 9] {
            let mut other = bytes.clone();
            other[0] = v;
            assert!(Prepared::from_bytes(&other).is_none(), "version {v}");
        }
    }
}
