//! Owns the near-copy tier: MinHash signatures over word shingles and the LSH band index.
//!
//! The signature is 112 MinHash values over word 5-grams, banded 14 x 8 (the datatrove /
//! text-dedup setting). Per indexed document the index holds the low 8 bits of each value (112
//! bytes), the low 32 bits of its arrival position (4), which bands link to an older document
//! and where those links are (6, 124 bytes with padding), 4 bytes a link, and 14 band-table
//! buckets of 5 bytes; see
//! `benches/dedup_serial.rs` for the measured bytes per document.

use super::blocks::Blocks;
use super::text::{shingles, Word};
use hashbrown::hash_table::{Entry, HashTable};

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
        Compact(self.near.map(|v| v as u8))
    }

    /// Returns the estimated word 5-gram Jaccard similarity to an indexed signature, from the
    /// share of values whose low [`B_BITS`] bits agree ([`b_bit_estimate`]).
    pub fn similarity_to(&self, other: &Compact) -> f32 {
        self.compact().similarity(other)
    }
}

/// Bits of each MinHash value the index keeps (b-bit MinHash, Li and König 2010).
pub const B_BITS: u32 = 8;
/// Chance that two different values agree in their low [`B_BITS`] bits.
const CHANCE: f32 = 1.0 / (1u32 << B_BITS) as f32;

/// Returns the Jaccard similarity estimated from `same` of [`NUM_PERM`] b-bit values agreeing:
/// a value agrees when the minima are equal (probability J) or, when they differ, by chance
/// (1 in 2^b), so P = J + (1 - J) / 2^b and J = (P - 1/2^b) / (1 - 1/2^b) (Li and König's
/// estimator for large sets), clamped to 0. At J = 0.7 its standard deviation over 112 values is
/// 0.0435 against 0.0433 for full values.
pub fn b_bit_estimate(same: usize) -> f32 {
    let p = same as f32 / NUM_PERM as f32;
    ((p - CHANCE) / (1.0 - CHANCE)).max(0.0)
}

/// A signature as the near index keeps it: the low [`B_BITS`] bits of each MinHash value (112
/// bytes instead of 448). A band is its [`ROWS`] bytes read as one `u64`, at query and insert
/// alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compact(pub [u8; NUM_PERM]);

impl Compact {
    /// Returns the estimated word 5-gram Jaccard similarity of two indexed signatures.
    pub fn similarity(&self, other: &Compact) -> f32 {
        let same = self.0.iter().zip(&other.0).filter(|(a, b)| a == b).count();
        b_bit_estimate(same)
    }

    /// Returns band `b`: its rows' bytes as one little-endian word.
    fn band(&self, b: usize) -> u64 {
        let mut rows = [0u8; 8];
        rows.copy_from_slice(&self.0[b * ROWS..(b + 1) * ROWS]);
        u64::from_le_bytes(rows)
    }
}

/// Returns the hash a band's bucket is found by (a SplitMix64 finaliser of the band and its
/// number, so hashbrown's bucket bits and tag bits are both uniform).
fn band_hash(b: usize, band: u64) -> u64 {
    let mut z = band ^ (b as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// One document in the near-copy index (124 bytes).
#[derive(Debug, Clone, Copy)]
pub struct NearDoc {
    /// Low 32 bits of the document's arrival position, where the caller keeps its ids.
    at: u32,
    pub sig: Compact,
    /// The bands (bit `b`) whose bucket held an older document when this one was added: those
    /// have a link, the distance back (in sequence numbers) to that document, in
    /// [`NearIndex`]'s list of links. A document more than `u32::MAX` positions back is not
    /// linked: no index holds that many documents. Most bands of most documents have no
    /// older document, so the links are kept for the others only (14 fixed links took 56 bytes).
    linked: u16,
    /// Low 32 bits of the position of this document's first link in that list.
    first_link: u32,
}

impl NearDoc {
    /// Returns the low 32 bits of the arrival position given to [`NearIndex::insert`].
    pub fn at(&self) -> u32 {
        self.at
    }
}

/// Returns the full sequence number whose low 32 bits are `low`, among `len` consecutive ones
/// from `first`; `u64::MAX` when there are none.
pub(super) fn widen(first: u64, len: usize, low: u32) -> u64 {
    if len == 0 {
        return u64::MAX;
    }
    first + u64::from(low.wrapping_sub(first as u32))
}

/// The LSH index: documents in arrival order, band buckets as chains through the documents.
#[derive(Debug, Default)]
pub struct NearIndex {
    docs: Blocks<NearDoc>,
    /// Sequence number of `docs[0]`.
    first_seq: u64,
    /// The documents' links in document order, band order within a document.
    links: Blocks<u32>,
    /// Position of `links[0]`.
    first_link: u64,
    /// Per band, the low 32 bits of the sequence number of the newest document in each bucket
    /// (5 bytes a bucket with its control byte); the bucket's band is read from that document's
    /// signature, so buckets are told apart by all 64 bits of the band.
    heads: [HashTable<u32>; BANDS],
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

    /// Returns the sequence number the next document gets.
    pub fn next_seq(&self) -> u64 {
        self.first_seq + self.docs.len() as u64
    }

    /// Returns the document with this sequence number, if still indexed.
    pub fn get(&self, seq: u64) -> Option<&NearDoc> {
        let i = seq.checked_sub(self.first_seq)?;
        self.docs.get(usize::try_from(i).ok()?)
    }

    /// Returns the distance back from the document `doc` to the next-older one sharing band
    /// `b`, 0 for none.
    fn link(&self, doc: &NearDoc, b: usize) -> u32 {
        if doc.linked & 1 << b == 0 {
            return 0;
        }
        let rank = (doc.linked & ((1 << b) - 1)).count_ones();
        // The list holds fewer than 2^32 links (14 a document at most: an index of under 306
        // million documents), so the low 32 bits place the link.
        let at =
            widen(self.first_link, self.links.len(), doc.first_link).saturating_add(rank.into());
        at.checked_sub(self.first_link)
            .and_then(|i| self.links.get(usize::try_from(i).ok()?))
            .copied()
            .unwrap_or(0)
    }

    /// Returns the newest document whose band `b` is `band`, if any.
    fn head(&self, b: usize, band: u64) -> Option<u64> {
        let (docs, first) = (&self.docs, self.first_seq);
        let doc_band = |low: u32| {
            let i = widen(first, docs.len(), low) - first;
            docs.get(i as usize).map(|d| d.sig.band(b))
        };
        self.heads[b]
            .find(band_hash(b, band), |&low| doc_band(low) == Some(band))
            .map(|&low| widen(first, docs.len(), low))
    }

    /// Returns the sequence numbers of the documents sharing at least one band, oldest first.
    pub fn candidates(&self, sig: &Compact) -> Vec<u64> {
        let mut out = Vec::new();
        for b in 0..BANDS {
            let mut seq = self.head(b, sig.band(b)).unwrap_or(u64::MAX);
            while let Some(doc) = self.get(seq) {
                out.push(seq);
                seq = match self.link(doc, b) {
                    0 => u64::MAX,
                    back => seq - u64::from(back),
                };
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Adds a document that arrived at position `at` (any counter the caller keeps its ids
    /// by; [`NearDoc::at`] gives back its low 32 bits) and returns its sequence number here.
    pub fn insert(&mut self, at: u64, sig: Compact) -> u64 {
        let seq = self.first_seq + self.docs.len() as u64;
        let first_link = self.first_link + self.links.len() as u64;
        self.docs.push_back(NearDoc {
            at: at as u32,
            sig,
            linked: 0,
            first_link: first_link as u32,
        });
        let (docs, first) = (&self.docs, self.first_seq);
        let doc_band = |low: u32, b: usize| {
            let i = widen(first, docs.len(), low) - first;
            docs.get(i as usize).map_or(0, |d| d.sig.band(b))
        };
        let mut links = [0u32; BANDS];
        for (b, (heads, link)) in self.heads.iter_mut().zip(&mut links).enumerate() {
            let band = sig.band(b);
            let hash = band_hash(b, band);
            match heads.entry(
                hash,
                |&low| doc_band(low, b) == band,
                |&low| band_hash(b, doc_band(low, b)),
            ) {
                Entry::Occupied(mut e) => {
                    // Both are 32-bit truncations; the wrapping difference is the true distance.
                    *link = (seq as u32).wrapping_sub(*e.get());
                    *e.get_mut() = seq as u32;
                }
                Entry::Vacant(e) => {
                    e.insert(seq as u32);
                }
            }
        }
        let mut linked = 0u16;
        for (b, &link) in links.iter().enumerate().filter(|(_, &l)| l != 0) {
            linked |= 1 << b;
            self.links.push_back(link);
        }
        if let Some(d) = self.docs.back_mut() {
            d.linked = linked;
        }
        seq
    }

    /// Removes the oldest document (FIFO eviction) and returns it.
    pub fn evict_oldest(&mut self) -> Option<NearDoc> {
        let seq = self.first_seq;
        let doc = *self.docs.front()?;
        for (b, heads) in self.heads.iter_mut().enumerate() {
            // The bucket's head is this document only when it holds its sequence number.
            if let Ok(e) = heads.find_entry(band_hash(b, doc.sig.band(b)), |&low| low == seq as u32)
            {
                e.remove();
            }
        }
        for _ in 0..doc.linked.count_ones() {
            self.links.pop_front();
        }
        self.first_link += u64::from(doc.linked.count_ones());
        self.docs.pop_front();
        self.first_seq += 1;
        Some(doc)
    }
}

#[cfg(test)]
#[path = "minhash_tests.rs"]
mod tests;
