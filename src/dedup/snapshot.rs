//! Owns the wire form of [`Prepared`]: the index-free dedup work of one document as bytes, so a
//! cluster worker can do it in parallel and the one ordered decider only queries the index.
//!
//! Layout (little-endian): a version byte, the raw-byte hash and the text hash (16 bytes
//! each), the signatures' length (u32) and bytes ([`Signatures::to_bytes`], empty when the
//! text has no words), the term count (u32) and the packed terms, then the sentence sketch
//! ([`Sketch::to_bytes`]) to the end. The sketch's word lookup ([`Probe`](super::align::Probe)) is rebuilt by the
//! decision when it needs it (not for a copy): it is larger than the sketch and cheap to build;
//! the ledger's base64 forms are likewise encoded by the decision, only those its entry carries.

use super::align::Sketch;
use super::minhash::Signatures;
use super::prepared::Sentences;
use super::story::Term;
use super::Prepared;

/// Version byte of the layout above.
const VERSION: u8 = 1;

impl Prepared {
    /// Returns the prepared work as bytes ([`Prepared::from_bytes`] reads them back).
    pub fn to_bytes(&self) -> Vec<u8> {
        let sigs = self
            .sigs
            .as_ref()
            .map(Signatures::to_bytes)
            .unwrap_or_default();
        let sketch = self.sentences.sketch().to_bytes();
        let mut out = Vec::with_capacity(41 + sigs.len() + 4 * self.terms.len() + sketch.len());
        out.push(VERSION);
        out.extend_from_slice(&self.raw.to_le_bytes());
        out.extend_from_slice(&self.text_hash.to_le_bytes());
        out.extend_from_slice(&(sigs.len() as u32).to_le_bytes());
        out.extend_from_slice(&sigs);
        out.extend_from_slice(&(self.terms.len() as u32).to_le_bytes());
        for t in &self.terms {
            out.extend_from_slice(&t.pack().to_le_bytes());
        }
        out.extend_from_slice(&sketch);
        out
    }

    /// Parses what [`Prepared::to_bytes`] wrote; `None` when the bytes are not that layout.
    pub fn from_bytes(bytes: &[u8]) -> Option<Prepared> {
        let (&version, mut rest) = bytes.split_first()?;
        if version != VERSION {
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
        let terms = take(&mut rest, n_terms.checked_mul(4)?)?
            .chunks_exact(4)
            .map(|c| Term::unpack(u32::from_le_bytes([c[0], c[1], c[2], c[3]])))
            .collect();
        let sketch = Sketch::from_bytes(rest)?;
        Some(Prepared {
            raw,
            text_hash,
            sigs,
            terms,
            sentences: Sentences::Sketch(sketch),
            encoded: None,
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

    #[test]
    fn other_bytes_are_refused() {
        let bytes = prepare("ab", A).to_bytes();
        assert!(Prepared::from_bytes(&[]).is_none());
        assert!(Prepared::from_bytes(&bytes[..20]).is_none());
        let mut other = bytes.clone();
        other[0] = 9;
        assert!(Prepared::from_bytes(&other).is_none());
    }
}
