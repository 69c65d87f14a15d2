//! Owns the near-copy tier: MinHash signatures over word shingles and the LSH band index.
//!
//! The signature is 112 MinHash values over word 5-grams, banded 14 x 8 (the datatrove /
//! text-dedup setting). Per indexed document the index holds the signature's low 16 bits (224 bytes), the ids
//! of the document and its story (32), 14 band links (56) and 14 entries of the band map; see
//! `benches/dedup_serial.rs` for the measured bytes per document.

use super::blocks::{Blocks, Id};
use super::text::{shingles, IdMap, Word};

/// MinHash values in the near-copy signature.
pub const NUM_PERM: usize = 112;
/// LSH bands; `NUM_PERM / BANDS` rows each.
pub const BANDS: usize = 14;
const ROWS: usize = NUM_PERM / BANDS;
/// Word n-gram length of the near-copy signature.
pub const NEAR_NGRAM: usize = 5;

/// Per-value hash parameters: `h(x) = g((x ^ b) * a mod 2^32)` with `a` odd and `g` an
/// xorshift, so each `h` is a bijection of 32-bit words. Shingle hashes are already uniform, so
/// a bijection keeps the minimum uniform over the union (the MinHash collision probability is
/// the Jaccard similarity); multiplication by different odd constants decorrelates the values,
/// and 32-bit lanes let the compiler vectorise the inner loop.
struct Perms<const K: usize> {
    a: [u32; K],
    b: [u32; K],
}

const fn splitmix(state: u64) -> (u64, u64) {
    let s = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = s;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (s, z ^ (z >> 31))
}

const fn perms<const K: usize>(seed: u64) -> Perms<K> {
    let mut a = [0u32; K];
    let mut b = [0u32; K];
    let mut state = seed;
    let mut i = 0;
    while i < K {
        let (s, x) = splitmix(state);
        let (s2, y) = splitmix(s);
        state = s2;
        a[i] = (x as u32) | 1;
        b[i] = y as u32;
        i += 1;
    }
    Perms { a, b }
}

/// Size of [`Signatures::to_bytes`].
const BYTES: usize = NUM_PERM * 4;
/// Size of the signatures ledgers written before the rewrite signature and anchors were
/// dropped (a bigram MinHash, a word count and anchors after the same near values).
const LEGACY_BYTES: usize = NUM_PERM * 4 + 64 * 2 + 4 + 40 * 4;

static NEAR_PERMS: Perms<NUM_PERM> = perms(0x6472_6f70_6c69_6e65);

/// Lanes per block of the blocked MinHash loop: two AVX2 vectors, four SSE2 ones.
const LANES: usize = 16;

/// Folds a 64-bit shingle hash to the 32-bit word the permutations act on.
fn fold(x: u64) -> u32 {
    (x ^ (x >> 32)) as u32
}

/// Returns the MinHash of the folded shingle hashes `xs`: for each value `k` the minimum of
/// `h_k` over `xs`. Exact integer arithmetic, so every code path gives the same values.
fn minhash<const K: usize>(xs: &[u32], p: &Perms<K>) -> [u32; K] {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, checked just above; the function is otherwise safe.
        return unsafe { minhash_avx2(xs, p) };
    }
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("sse4.1") {
        // SAFETY: the CPU supports SSE4.1, checked just above; the function is otherwise safe.
        return unsafe { minhash_sse41(xs, p) };
    }
    minhash_blocked(xs, p)
}

/// [`minhash_blocked`] compiled for SSE4.1, which has the 32-bit multiply and unsigned minimum
/// that baseline SSE2 lacks (CPUs without AVX2).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse4.1")]
unsafe fn minhash_sse41<const K: usize>(xs: &[u32], p: &Perms<K>) -> [u32; K] {
    minhash_blocked(xs, p)
}

/// [`minhash_blocked`] compiled for AVX2 (eight 32-bit multiplies per instruction).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn minhash_avx2<const K: usize>(xs: &[u32], p: &Perms<K>) -> [u32; K] {
    minhash_blocked(xs, p)
}

/// The MinHash loop blocked by [`LANES`] values: a block's minima stay in registers while all
/// shingles stream past, and the fixed-width lane loop vectorises on any x86-64.
#[inline(always)]
fn minhash_blocked<const K: usize>(xs: &[u32], p: &Perms<K>) -> [u32; K] {
    let mut sig = [u32::MAX; K];
    let blocks = sig
        .chunks_exact_mut(LANES)
        .zip(p.a.chunks_exact(LANES))
        .zip(p.b.chunks_exact(LANES));
    for ((s, a), b) in blocks {
        let mut a_l = [0u32; LANES];
        let mut b_l = [0u32; LANES];
        a_l.copy_from_slice(a);
        b_l.copy_from_slice(b);
        let mut m = [u32::MAX; LANES];
        for &x in xs {
            for l in 0..LANES {
                let h = (x ^ b_l[l]).wrapping_mul(a_l[l]);
                m[l] = m[l].min(h ^ (h >> 16));
            }
        }
        s.copy_from_slice(&m);
    }
    // Values past the last whole block (none for the current sizes).
    let done = K / LANES * LANES;
    let tail = sig[done..].iter_mut().zip(&p.a[done..]).zip(&p.b[done..]);
    for ((s, &a), &b) in tail {
        for &x in xs {
            let h = (x ^ b).wrapping_mul(a);
            *s = (*s).min(h ^ (h >> 16));
        }
    }
    sig
}

/// The MinHash signature of one document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signatures {
    /// Word 5-gram MinHash, for near-copies.
    pub near: [u32; NUM_PERM],
}

impl Signatures {
    /// Returns the signature of a document, or `None` when it has no words.
    pub fn of(words: &[Word]) -> Option<Self> {
        if words.is_empty() {
            return None;
        }
        let folded: Vec<u32> = shingles(words, NEAR_NGRAM).map(fold).collect();
        Some(Self {
            near: minhash(&folded, &NEAR_PERMS),
        })
    }

    /// Returns the estimated word 5-gram Jaccard similarity.
    pub fn near_similarity(&self, other: &Self) -> f32 {
        let same = self
            .near
            .iter()
            .zip(&other.near)
            .filter(|(a, b)| a == b)
            .count();
        same as f32 / NUM_PERM as f32
    }

    /// Returns the signature as little-endian bytes: 112 x u32.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.near.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    /// Parses what [`Signatures::to_bytes`] wrote (or the longer legacy layout, whose first
    /// bytes are the same values); `None` on any other length.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != BYTES && bytes.len() != LEGACY_BYTES {
            return None;
        }
        let mut near = [0u32; NUM_PERM];
        for (v, c) in near.iter_mut().zip(bytes[..BYTES].chunks_exact(4)) {
            *v = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        }
        Some(Self { near })
    }

    /// Returns the signature as the index keeps it.
    pub fn compact(&self) -> Compact {
        Compact(self.near.map(|v| v as u16))
    }

    /// Returns the estimated word 5-gram Jaccard similarity to an indexed signature: the share
    /// of values whose low 16 bits agree (two different values agree by chance 1 time in
    /// 65,536, which moves an estimate by less than 0.0001 on average).
    pub fn similarity_to(&self, other: &Compact) -> f32 {
        let same = self
            .near
            .iter()
            .zip(&other.0)
            .filter(|(&a, &b)| a as u16 == b)
            .count();
        same as f32 / NUM_PERM as f32
    }
}

/// A signature as the near index keeps it: the low 16 bits of each MinHash value (224 bytes
/// instead of 448). Band keys are computed from these bits, at query and insert alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compact(pub [u16; NUM_PERM]);

impl Compact {
    /// Returns the estimated word 5-gram Jaccard similarity of two indexed signatures.
    pub fn similarity(&self, other: &Compact) -> f32 {
        let same = self.0.iter().zip(&other.0).filter(|(a, b)| a == b).count();
        same as f32 / NUM_PERM as f32
    }

    fn band_keys(&self) -> [u64; BANDS] {
        let mut keys = [0u64; BANDS];
        for (b, key) in keys.iter_mut().enumerate() {
            let rows = &self.0[b * ROWS..(b + 1) * ROWS];
            let mut h = (b as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x2545_f491_4f6c_dd1d;
            for &r in rows {
                h = (h.rotate_left(29) ^ u64::from(r)).wrapping_mul(0xff51_afd7_ed55_8ccd);
            }
            *key = h ^ (h >> 32);
        }
        keys
    }
}

/// One document in the near-copy index (312 bytes).
#[derive(Debug, Clone, Copy)]
pub struct NearDoc {
    id: Id,
    story: Id,
    pub sig: Compact,
    /// Distance back (in sequence numbers) to the next-older document sharing each band, 0 for
    /// none. A document more than `u32::MAX` positions back is not linked: no index holds that
    /// many documents.
    links: [u32; BANDS],
}

impl NearDoc {
    /// Returns the document's id.
    pub fn id(&self) -> u128 {
        self.id.get()
    }

    /// Returns the id of the document's story.
    pub fn story(&self) -> u128 {
        self.story.get()
    }
}

/// The LSH index: documents in arrival order, band buckets as chains through the documents.
#[derive(Debug, Default)]
pub struct NearIndex {
    docs: Blocks<NearDoc>,
    /// Sequence number of `docs[0]`.
    first_seq: u64,
    /// Per band, the band key's low 32 bits to the low 32 bits of the sequence number of the
    /// newest document in that bucket (8 bytes an entry instead of 16). Two keys of one band
    /// that agree in 32 bits share a chain: their documents become each other's candidates and
    /// the similarity check sorts them out; chains never cross bands.
    heads: [IdMap<u32, u32>; BANDS],
}

impl NearIndex {
    /// Returns whether the index is empty.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.docs.is_empty()
    }

    /// Returns the sequence number of the oldest indexed document.
    pub fn first_seq(&self) -> u64 {
        self.first_seq
    }

    /// Returns the document with this sequence number, if still indexed.
    pub fn get(&self, seq: u64) -> Option<&NearDoc> {
        let i = seq.checked_sub(self.first_seq)?;
        self.docs.get(usize::try_from(i).ok()?)
    }

    /// Returns the full sequence number whose low 32 bits are `low`: the newest one indexed
    /// (nothing older than 2^32 documents is), `u64::MAX` when the index is empty.
    fn widen(&self, low: u32) -> u64 {
        let Some(last) = (self.first_seq + self.docs.len() as u64).checked_sub(1) else {
            return u64::MAX;
        };
        last.checked_sub(u64::from((last as u32).wrapping_sub(low)))
            .unwrap_or(u64::MAX)
    }

    /// Returns the sequence numbers of the documents sharing at least one band, oldest first.
    pub fn candidates(&self, sig: &Compact) -> Vec<u64> {
        let mut out = Vec::new();
        for (b, key) in sig.band_keys().into_iter().enumerate() {
            let mut seq = self.heads[b]
                .get(&(key as u32))
                .map_or(u64::MAX, |&low| self.widen(low));
            while let Some(doc) = self.get(seq) {
                out.push(seq);
                seq = match doc.links[b] {
                    0 => u64::MAX,
                    back => seq - u64::from(back),
                };
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Adds a document and returns its sequence number.
    pub fn insert(&mut self, id: u128, story: u128, sig: Compact) -> u64 {
        let seq = self.first_seq + self.docs.len() as u64;
        let mut links = [0u32; BANDS];
        for (b, key) in sig.band_keys().into_iter().enumerate() {
            if let Some(prev) = self.heads[b].insert(key as u32, seq as u32) {
                // Both are 32-bit truncations; the wrapping difference is the true distance.
                links[b] = (seq as u32).wrapping_sub(prev);
            }
        }
        self.docs.push_back(NearDoc {
            id: id.into(),
            story: story.into(),
            sig,
            links,
        });
        seq
    }

    /// Removes the oldest document (FIFO eviction) and returns it.
    pub fn evict_oldest(&mut self) -> Option<NearDoc> {
        let doc = self.docs.pop_front()?;
        let seq = self.first_seq;
        self.first_seq += 1;
        for (b, key) in doc.sig.band_keys().into_iter().enumerate() {
            if self.heads[b].get(&(key as u32)) == Some(&(seq as u32)) {
                self.heads[b].remove(&(key as u32));
            }
        }
        Some(doc)
    }
}

#[cfg(test)]
mod tests {
    use super::super::text::words;
    use super::*;

    const TEXT: &str = "The council approved the new budget on Tuesday after a long debate \
        about school funding, road repairs and the cost of the city's ageing water system, \
        which officials said would need urgent work before next winter arrives in the valley.";

    #[test]
    fn identical_text_has_similarity_one_and_unrelated_near_zero() {
        let a = Signatures::of(&words(TEXT)).unwrap();
        let b = Signatures::of(&words("Completely different words about football matches and goals scored late in the evening by visiting teams from abroad")).unwrap();
        assert_eq!(a.near_similarity(&a), 1.0);
        assert!(a.near_similarity(&b) < 0.05);
    }

    /// The original per-shingle loop, the reference every fast path must match.
    fn minhash_reference<const K: usize>(hashes: &[u64], p: &Perms<K>) -> [u32; K] {
        let mut sig = [u32::MAX; K];
        for &x in hashes {
            let x = (x ^ (x >> 32)) as u32;
            for ((s, &a), &b) in sig.iter_mut().zip(&p.a).zip(&p.b) {
                let h = (x ^ b).wrapping_mul(a);
                *s = (*s).min(h ^ (h >> 16));
            }
        }
        sig
    }

    #[test]
    fn fast_minhash_matches_scalar_reference() {
        let mut state = 1u64;
        for len in [0usize, 1, 2, 15, 16, 17, 333, 2000] {
            let hashes: Vec<u64> = (0..len)
                .map(|_| {
                    let (s, x) = splitmix(state);
                    state = s;
                    x
                })
                .collect();
            let xs: Vec<u32> = hashes.iter().map(|&h| fold(h)).collect();
            let near = minhash_reference(&hashes, &NEAR_PERMS);
            assert_eq!(minhash(&xs, &NEAR_PERMS), near);
            assert_eq!(minhash_blocked(&xs, &NEAR_PERMS), near);
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("sse4.1") {
                // SAFETY: the CPU supports SSE4.1, checked just above.
                assert_eq!(unsafe { minhash_sse41(&xs, &NEAR_PERMS) }, near);
            }
            // A size that leaves a partial block exercises the tail loop.
            let odd: Perms<21> = perms(len as u64);
            assert_eq!(minhash_blocked(&xs, &odd), minhash_reference(&hashes, &odd));
        }
    }

    #[test]
    fn bytes_round_trip() {
        let a = Signatures::of(&words(TEXT)).unwrap();
        assert_eq!(Signatures::from_bytes(&a.to_bytes()), Some(a.clone()));
        assert_eq!(Signatures::from_bytes(&[1, 2, 3]), None);
        // A ledger line from before the bigram signature was dropped keeps its near values.
        let mut legacy = a.to_bytes();
        legacy.resize(LEGACY_BYTES, 0xab);
        assert_eq!(Signatures::from_bytes(&legacy), Some(a));
    }

    #[test]
    fn index_finds_copy_and_forgets_evicted() {
        let mut idx = NearIndex::default();
        let a = Signatures::of(&words(TEXT)).unwrap();
        let edited = format!("{TEXT} Officials agreed.");
        let b = Signatures::of(&words(&edited)).unwrap();
        let s = idx.insert(1, 1, a.compact());
        assert_eq!(idx.candidates(&b.compact()), vec![s]);
        let sim = b.similarity_to(&idx.get(s).unwrap().sig);
        assert!((sim - b.near_similarity(&a)).abs() < 0.02, "{sim}");
        assert!(idx.evict_oldest().is_some());
        assert!(idx.candidates(&b.compact()).is_empty());
        assert!(idx.is_empty());
    }
}
