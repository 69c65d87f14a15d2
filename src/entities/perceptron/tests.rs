use super::*;

/// A xorshift64 stream from `seed`, for reproducible random trials.
fn xorshift(mut rng: u64) -> impl FnMut() -> u64 {
    move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    }
}

#[test]
fn tags_round_trip_and_constraints() {
    for ty in 0..4 {
        for part in [Part::Begin, Part::Inside, Part::Last, Part::Unit] {
            assert_eq!(part_of(tag(part, ty)), (part, ty));
        }
    }
    assert!(allowed(START, tag(Part::Begin, 1)));
    assert!(!allowed(START, tag(Part::Inside, 1)));
    assert!(allowed(tag(Part::Begin, 1), tag(Part::Last, 1)));
    assert!(!allowed(tag(Part::Begin, 1), tag(Part::Last, 2)));
    assert!(!allowed(tag(Part::Begin, 1), 0));
}

/// A plain scalar decoder: every pair scored, forbidden ones at minus infinity.
fn dense_viterbi(em: &[f32], trans: &[f32]) -> Vec<u8> {
    let n = em.len() / N_TAGS;
    if n == 0 {
        return Vec::new();
    }
    let mut score = [f32::NEG_INFINITY; N_TAGS];
    for (c, s) in score.iter_mut().enumerate() {
        if allowed(START, c) {
            *s = em[c] + trans[START * N_TAGS + c];
        }
    }
    let mut back = vec![0u8; n * N_TAGS];
    for i in 1..n {
        let mut next = [f32::NEG_INFINITY; N_TAGS];
        for c in 0..N_TAGS {
            let (mut best, mut arg) = (f32::NEG_INFINITY, 0);
            for p in 0..N_TAGS {
                let t = if allowed(p, c) {
                    trans[p * N_TAGS + c]
                } else {
                    f32::NEG_INFINITY
                };
                let v = score[p] + t;
                if v > best {
                    best = v;
                    arg = p;
                }
            }
            next[c] = best + em[i * N_TAGS + c];
            back[i * N_TAGS + c] = arg as u8;
        }
        score = next;
    }
    let mut cur = (0..N_TAGS)
        .filter(|&c| ends_ok(c))
        .max_by(|&a, &b| score[a].total_cmp(&score[b]))
        .unwrap_or(0);
    let mut out = vec![0u8; n];
    for i in (0..n).rev() {
        out[i] = cur as u8;
        cur = back[i * N_TAGS + cur] as usize;
    }
    out
}

#[test]
fn viterbi_matches_the_scalar_one_ties_included() {
    let mut next = xorshift(0x9e37_79b9_7f4a_7c15);
    // Small integer scores, so ties are frequent.
    let mut draw = || (next() % 7) as f32 - 3.0;
    let (mut back, mut out) = (Vec::new(), Vec::new());
    for trial in 0..400 {
        let n = trial % 23;
        let em: Vec<f32> = (0..n * N_TAGS).map(|_| draw()).collect();
        let trans: Vec<f32> = (0..TRANS_LEN).map(|_| draw()).collect();
        viterbi(&em, &trans, &mut back, &mut out);
        assert_eq!(out, dense_viterbi(&em, &trans), "trial {trial}");
    }
}

#[test]
fn compiled_rows_stay_within_half_a_step_of_the_float_weights() {
    let mut w = vec![0f32; (1 << 8) * N_TAGS];
    // Row 3: differences from O up to 16; at this table's scale (1000 / 32767) they need a
    // row shift of 3, a step of about 0.24.
    for t in 0..N_TAGS {
        w[3 * N_TAGS + t] = t as f32;
    }
    // Row 5: one weight at the global maximum.
    w[5 * N_TAGS + 2] = 1000.0;
    w[5 * N_TAGS + 4] = -3.0;
    let stage = Stage::from_floats(8, &w, vec![0.0; TRANS_LEN]);
    let c = stage.compile();
    let v = c.view();
    assert!(v.is_well_formed());
    assert_eq!(c.rows.len(), 2);
    let mut scratch = Scratch::default();
    let mut feats = vec![0u32; N_FEATURES];
    feats[0] = 3;
    v.emissions(&feats, &mut scratch);
    for t in 1..N_TAGS {
        let want = t as f32;
        // Half a step plus the i16 rounding of the dense table.
        assert!(
            (scratch.em[t] - want).abs() <= 0.14,
            "{t}: {}",
            scratch.em[t]
        );
    }
    feats[0] = 5;
    v.emissions(&feats, &mut scratch);
    assert!((scratch.em[2] - 1000.0).abs() < 1000.0 / 127.0);
    assert!(scratch.em[4] <= 0.0 && scratch.em[4] > -3.0 - 1000.0 / 127.0);
    feats[0] = 4; // a row of zeros is left out
    v.emissions(&feats, &mut scratch);
    assert!(scratch.em.iter().all(|&x| x == 0.0));
}

#[test]
fn vector_and_portable_emissions_are_identical() {
    let mut next = xorshift(0x2545_f491_4f6c_dd1d);
    // Weights at every magnitude, so rows get shifts from 0 up.
    let w: Vec<f32> = (0..(1 << 10) * N_TAGS)
        .map(|_| match next() % 4 {
            0 => 0.0,
            1 => (next() % 200) as f32 - 100.0,
            _ => ((next() % 2_000_001) as f32 - 1_000_000.0) / 7.0,
        })
        .collect();
    let trans: Vec<f32> = (0..TRANS_LEN).map(|_| (next() % 9) as f32 - 4.0).collect();
    let c = Stage::from_floats(10, &w, trans).compile();
    let v = c.view();
    assert!(v.is_well_formed());
    let (mut a, mut b) = (Scratch::default(), Scratch::default());
    for n_tok in [0usize, 1, 2, 3, 7, 30] {
        let feats: Vec<u32> = (0..n_tok * N_FEATURES)
            .map(|_| (next() % (1 << 10)) as u32)
            .collect();
        v.emissions(&feats, &mut a);
        v.emissions_body::<false>(&feats, &mut b);
        let bits = |s: &Scratch| s.em.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&a), bits(&b), "{n_tok} tokens");
        assert_eq!(a.em.len(), n_tok * N_TAGS);
        let (mut out_a, mut out_b) = (Vec::new(), Vec::new());
        v.decode(&feats, &mut a, &mut out_a);
        viterbi(&b.em, v.trans, &mut b.back, &mut out_b);
        assert_eq!(out_a, out_b);
    }
}

#[test]
fn learns_a_toy_pattern_and_decodes_it_compiled() {
    // One feature per template; token 0 always a unit PER, token 1 always O.
    let mut feats = Vec::new();
    for tok in 0..2u32 {
        for f in 0..N_FEATURES as u32 {
            feats.push(tok * 100 + f);
        }
    }
    let gold = vec![tag(Part::Unit, 0) as u8, 0];
    let mut tr = Trainer::new(10);
    let mut pred = Vec::new();
    for _ in 0..5 {
        tr.learn(&feats, &gold, &mut pred);
    }
    let compiled = tr.averaged().compile();
    let (mut scratch, mut out) = (Scratch::default(), Vec::new());
    compiled.view().decode(&feats, &mut scratch, &mut out);
    assert_eq!(out, gold);
    assert!(compiled.view().is_well_formed());
}

/// The sparse Viterbi step scores the closed tags against every lane and B and I of a type
/// against that type's I and L lanes only; this is what makes skipping the rest exact.
#[test]
fn closed_and_open_tags_are_what_the_sparse_step_assumes() {
    use super::super::simd::{Open, CLOSED};
    for p in 0..N_TAGS {
        let (pp, pt) = part_of(p);
        let closed = CLOSED.contains(&p);
        assert_eq!(closed, !matches!(pp, Part::Begin | Part::Inside), "{p}");
        for c in 0..N_TAGS {
            let (cp, ct) = part_of(c);
            let continues = matches!(cp, Part::Inside | Part::Last);
            let want = if closed {
                !continues
            } else {
                continues && ct == pt
            };
            assert_eq!(allowed(p, c), want, "{p} -> {c}");
        }
    }
    let trans: Vec<f32> = (0..TRANS_LEN).map(|i| i as f32).collect();
    let open = Open::new(&masked_transitions(&trans));
    for c in 0..16 {
        let (cp, ct) = part_of(c);
        if matches!(cp, Part::Inside | Part::Last) {
            assert_eq!(open.from_b[c], trans[tag(Part::Begin, ct) * N_TAGS + c]);
            assert_eq!(open.from_i[c], trans[tag(Part::Inside, ct) * N_TAGS + c]);
        } else {
            assert_eq!(open.from_b[c], f32::NEG_INFINITY);
            assert_eq!(open.from_i[c], f32::NEG_INFINITY);
        }
    }
}

#[test]
fn runs_between_fixed_tokens_decode_like_the_whole_sentence_with_them_fixed_to_o() {
    let mut next = xorshift(0x2545_f491_4f6c_dd1d);
    let (mut back, mut run, mut out) = (Vec::new(), Vec::new(), Vec::new());
    let mut fixed_any = 0;
    for trial in 0..400 {
        let n = trial % 19;
        // Continuous scores, so no two paths tie.
        let mut score = || (next() >> 40) as f32 / (1u64 << 24) as f32 * 6.0 - 3.0;
        let em: Vec<f32> = (0..n * N_TAGS).map(|_| score()).collect();
        let trans: Vec<f32> = (0..TRANS_LEN).map(|_| score()).collect();
        let far: Vec<bool> = (0..n).map(|_| next() % 3 == 0).collect();
        // The whole sentence, a fixed token scoring only O.
        let mut whole = em.clone();
        for (i, _) in far.iter().enumerate().filter(|(_, &f)| f) {
            whole[i * N_TAGS] = 0.0;
            whole[i * N_TAGS + 1..(i + 1) * N_TAGS].fill(f32::NEG_INFINITY);
        }
        let kept: Vec<f32> = em
            .chunks_exact(N_TAGS)
            .zip(&far)
            .filter(|(_, &f)| !f)
            .flat_map(|(r, _)| r.iter().copied())
            .collect();
        viterbi_runs(
            &kept,
            &far,
            &masked_transitions(&trans),
            &mut back,
            &mut run,
            &mut out,
        );
        assert_eq!(out, dense_viterbi(&whole, &trans), "trial {trial}");
        assert!(far.iter().zip(&out).all(|(&f, &t)| !f || t == 0));
        fixed_any += usize::from(far.contains(&true) && far.contains(&false));
    }
    assert!(fixed_any > 100);
}

#[test]
fn fixed_tokens_get_no_scores_and_no_fixed_token_decodes_as_before() {
    let mut w = vec![0f32; (1 << 8) * N_TAGS];
    // Bucket 7 favours U-PER strongly.
    w[7 * N_TAGS + tag(Part::Unit, 0)] = 50.0;
    let stage = Stage::from_floats(8, &w, vec![0.0; TRANS_LEN]);
    let c = stage.compile();
    let v = c.view();
    let mut scratch = Scratch::default();
    let feats = vec![7u32; 3 * N_FEATURES];
    let p = v.prepare(&mut scratch);
    let mut all = Vec::new();
    v.decode_prepared(&feats, &mut scratch, p, &mut all);
    assert_eq!(all, [4, 4, 4]);
    let mut none = Vec::new();
    v.decode_kept(&feats, &[false; 3], &mut scratch, p, &mut none);
    assert_eq!(none, all);
    // The middle token is fixed: two rows of features, two rows of scores, O in the middle.
    let mut gated = Vec::new();
    v.decode_kept(
        &feats[..2 * N_FEATURES],
        &[false, true, false],
        &mut scratch,
        p,
        &mut gated,
    );
    assert_eq!(gated, [4, 0, 4]);
    assert_eq!(scratch.em.len(), 2 * N_TAGS);
}
