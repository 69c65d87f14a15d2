//! Tests of the near-copy tier: MinHash paths, the b-bit estimate and the band index.
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

/// Signatures of random sets of `n` shingles, the first `common` of them shared by both.
fn pair(state: &mut u64, n: usize, common: usize) -> (Signatures, Signatures) {
    let mut next = || {
        let (s, x) = splitmix(*state);
        *state = s;
        fold(x)
    };
    let shared: Vec<u32> = (0..common).map(|_| next()).collect();
    let mut a = shared.clone();
    let mut b = shared;
    a.extend((common..n).map(|_| next()));
    b.extend((common..n).map(|_| next()));
    let sig = |xs: &[u32]| Signatures {
        near: minhash(xs, &NEAR_PERMS),
    };
    (sig(&a), sig(&b))
}

#[test]
fn b_bit_estimate_corrects_chance_agreement() {
    assert_eq!(b_bit_estimate(NUM_PERM), 1.0);
    assert_eq!(b_bit_estimate(0), 0.0);
    let mut state = 5u64;
    // Unrelated sets: 1 value in 256 agrees by chance; the estimate takes it out.
    let (mut raw, mut corrected) = (0.0f64, 0.0f64);
    for _ in 0..400 {
        let (a, b) = pair(&mut state, 200, 0);
        let same = a
            .compact()
            .0
            .iter()
            .zip(&b.compact().0)
            .filter(|(x, y)| x == y)
            .count();
        raw += same as f64 / NUM_PERM as f64 / 400.0;
        corrected += f64::from(a.similarity_to(&b.compact())) / 400.0;
    }
    assert!((raw - 1.0 / 256.0).abs() < 0.0015, "{raw}");
    assert!(corrected < 0.0033, "{corrected}");
    // J = 120 / 280 = 0.43 and 180 / 220 = 0.82: the b-bit estimate follows the full one.
    for common in [120usize, 180] {
        let (mut full, mut bbit) = (0.0f64, 0.0f64);
        for _ in 0..100 {
            let (a, b) = pair(&mut state, 200, common);
            full += f64::from(a.near_similarity(&b)) / 100.0;
            bbit += f64::from(a.similarity_to(&b.compact())) / 100.0;
        }
        let j = common as f64 / (400 - common) as f64;
        assert!(
            (full - j).abs() < 0.02 && (bbit - j).abs() < 0.02,
            "{j} {full} {bbit}"
        );
    }
}

/// Returns, by brute force, the positions of the `kept` documents sharing a band with `q`.
fn sharing_a_band(kept: &[(u64, Compact)], q: &Compact) -> Vec<u64> {
    kept.iter()
        .filter(|(_, s)| (0..BANDS).any(|b| s.band(b) == q.band(b)))
        .map(|&(seq, _)| seq)
        .collect()
}

#[test]
fn candidates_are_exactly_the_documents_sharing_a_band() {
    let mut state = 9u64;
    let mut idx = NearIndex::default();
    let mut kept: Vec<(u64, Compact)> = Vec::new();
    let mut queries = Vec::new();
    for i in 0..3000u64 {
        // Near copies of earlier documents share some bands with them.
        let (a, b) = pair(&mut state, 60, if i % 3 == 0 { 50 } else { 0 });
        let seq = idx.insert(i * 7, a.compact());
        assert_eq!(idx.get(seq).map(NearDoc::at), Some((i * 7) as u32));
        kept.push((seq, a.compact()));
        queries.push(b.compact());
        if i % 5 == 4 {
            let gone = idx.evict_oldest().unwrap();
            assert_eq!(gone.sig, kept.remove(0).1);
        }
    }
    for q in queries.iter().step_by(7) {
        assert_eq!(idx.candidates(q), sharing_a_band(&kept, q));
    }
    assert!(queries.iter().any(|q| !idx.candidates(q).is_empty()));
}

#[test]
fn index_finds_copy_and_forgets_evicted() {
    let mut idx = NearIndex::default();
    let a = Signatures::of(&words(TEXT)).unwrap();
    let edited = format!("{TEXT} Officials agreed.");
    let b = Signatures::of(&words(&edited)).unwrap();
    let s = idx.insert(1, a.compact());
    assert_eq!(idx.candidates(&b.compact()), vec![s]);
    let sim = b.similarity_to(&idx.get(s).unwrap().sig);
    assert!((sim - b.near_similarity(&a)).abs() < 0.02, "{sim}");
    assert!(idx.evict_oldest().is_some());
    assert!(idx.candidates(&b.compact()).is_empty());
    assert!(idx.is_empty());
}

#[test]
fn many_documents_sharing_bands_are_all_candidates_until_evicted() {
    // Hundreds of documents share one of a few values in bands 0 and 5 (one hash each), the
    // rest of their signatures random: every one of them is a candidate while indexed.
    let mut state = 5u64;
    let mut next = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as u8
    };
    let mut idx = NearIndex::default();
    let mut kept: Vec<(u64, Compact)> = Vec::new();
    for i in 0..1500u64 {
        let mut sig = Compact([0; NUM_PERM]);
        sig.0.iter_mut().for_each(|v| *v = next());
        if i % 2 == 0 {
            sig.0[..ROWS].fill((i % 3) as u8);
        }
        if i % 5 == 0 {
            sig.0[5 * ROWS..6 * ROWS].fill(7);
        }
        kept.push((idx.insert(i, sig), sig));
        if i % 3 == 2 {
            assert_eq!(idx.evict_oldest().map(|d| d.sig), Some(kept.remove(0).1));
        }
        if i % 97 == 0 {
            for (_, q) in kept.iter().step_by(11) {
                assert_eq!(idx.candidates(q), sharing_a_band(&kept, q));
            }
        }
    }
    let shared = kept
        .iter()
        .find(|(_, s)| s.0[..ROWS] == [1; ROWS])
        .unwrap()
        .1;
    assert!(idx.candidates(&shared).len() > 100);
    while idx.evict_oldest().is_some() {}
    assert!(idx.candidates(&shared).is_empty() && idx.heads.iter().all(|h| h.is_empty()));
    assert_eq!(idx.links.len(), 0);
}
