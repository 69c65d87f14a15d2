//! Checks the template hashes against the plain formulas they shortcut: one value per
//! template, each hashed on its own.

use super::*;

/// The buckets of every template of token `i`, each value computed and hashed directly.
fn reference(sent: &[TokInfo], i: usize, shift: u32) -> [u32; N_FEATURES] {
    let v = reference_values(sent, i);
    std::array::from_fn(|pos| {
        let tmpl = ORDER[pos];
        (hash(tmpl, v[tmpl]) >> shift) as u32
    })
}

fn reference_second_pass(sent: &[TokInfo], i: usize, values: &mut [u64; N_IDS]) {
    let t = &sent[i];
    let (p1, n1) = (near(sent, i, -1), near(sent, i, 1));
    let first = |o: Option<&TokInfo>| o.map_or(PAD, |t| u64::from(t.first));
    let prior = |o: Option<&TokInfo>| o.map_or(PAD, |t| u64::from(t.prior));
    values[38] = combine(u64::from(t.prior), t.short);
    values[39] = u64::from(t.prior_mask);
    values[40] = u64::from(t.first);
    values[41] = combine(first(p1), u64::from(t.first));
    values[42] = combine(u64::from(t.first), first(n1));
    values[49] = combine(combine(prior(p1), u64::from(t.prior)), prior(n1));
    values[51] = combine(u64::from(t.pair_prev), u64::from(t.pair_next));
    values[52] = combine(u64::from(t.pair_next), t.short);
}

fn reference_values(sent: &[TokInfo], i: usize) -> [u64; N_IDS] {
    let t = &sent[i];
    let p1 = near(sent, i, -1);
    let n1 = near(sent, i, 1);
    let p2 = near(sent, i, -2);
    let n2 = near(sent, i, 2);
    let low = |o: Option<&TokInfo>| o.map_or(PAD, |t| t.lower);
    let shp = |o: Option<&TokInfo>| o.map_or(PAD, |t| t.short);
    let clu = |o: Option<&TokInfo>| o.map_or(PAD, |t| u64::from(t.clusters[1]));
    let gz = |o: Option<&TokInfo>| o.map_or(PAD, gaz_code);
    let suf3 = |o: Option<&TokInfo>| o.map_or(PAD, |t| t.suf[2]);
    let fine = |o: Option<&TokInfo>| o.map_or(PAD, |t| u64::from(t.clusters[0]));
    let caps = u64::from(t.caps_line);
    let mut values: [u64; N_IDS] = [
        0,
        t.word,
        t.lower,
        t.shape,
        t.short,
        t.pre[0],
        t.pre[1],
        t.pre[2],
        t.pre[3],
        t.suf[0],
        t.suf[1],
        t.suf[2],
        t.suf[3],
        low(p1),
        low(n1),
        low(p2),
        low(n2),
        shp(p1),
        shp(n1),
        combine(shp(p1), t.short),
        combine(t.short, shp(n1)),
        combine(low(p1), t.lower),
        combine(t.lower, low(n1)),
        combine(u64::from(t.flags), t.short),
        combine(u64::from(t.doc), t.short ^ caps),
        u64::from(t.clusters[0]),
        u64::from(t.clusters[1]),
        u64::from(t.clusters[2]),
        clu(p1),
        clu(n1),
        gaz_code(t),
        combine(gaz_code(t), t.short),
        gz(p1),
        gz(n1),
        combine(low(p1), t.short),
        combine(t.short, low(n1)),
        combine(caps, t.lower),
        combine(combine(u64::from(t.clusters[1]), t.short), caps),
        0, // 38..=42: second pass
        0,
        0,
        0,
        0,
        suf3(p1),
        suf3(n1),
        fine(p1),
        fine(n1),
        combine(u64::from(t.run), caps),
        combine(low(p1), low(n1)),
        0, // 49: second pass
        combine(shp(p2), shp(n2)),
        0, // 51, 52: second pass
        0,
        combine(combine(u64::from(t.doc), t.lower), caps),
        combine(u64::from(t.clusters[2]), combine(shp(p1), shp(n1))),
    ];
    reference_second_pass(sent, i, &mut values);
    values
}

/// A sentence whose tokens take every small value the tables cover, values past them, and
/// varied hashes, so that neighbours, padding and fallbacks are all exercised.
fn varied_sentence(n: usize, salt: u64) -> Vec<TokInfo> {
    (0..n)
        .map(|i| {
            let k = i as u64 + salt * 1000;
            let x = |j: u64| mix(k * 31 + j);
            TokInfo {
                word: x(1),
                lower: x(2),
                shape: x(3),
                short: x(4) % 7,
                pre: [x(5), x(6), PAD, x(7)],
                suf: [x(8), x(9), x(10), PAD],
                flags: (x(11) % 64) as u32,
                clusters: [(x(12) % 5) as u16, (x(13) % 300) as u16, 0],
                gaz: [(k % 5) as u8, 0, ((k / 5) % 5) as u8, 0, 4],
                doc: (k % 4) as u8,
                caps_line: k % 3 == 0,
                run: ((k * 7) % 70) as u8,
                prior: ((k * 3) % 7) as u8,
                prior_mask: ((k * 5) % 20) as u8,
                first: ((k * 11) % 20) as u8,
                pair_next: ((k * 13) % 18) as u8,
                pair_prev: ((k * 17) % 18) as u8,
                plain: k % 2 == 0,
            }
        })
        .collect()
}

#[test]
fn buckets_are_the_plain_formulas() {
    for bits in [18, 22, 24] {
        let shift = 64 - bits;
        for n in [0, 1, 2, 3, 5, 40] {
            for salt in 0..6 {
                let sent = varied_sentence(n, salt);
                let mut out = vec![0u32; n * N_FEATURES];
                write_features(&sent, bits, N_FEATURES, &mut out);
                for (i, row) in out.chunks_exact(N_FEATURES).enumerate() {
                    assert_eq!(
                        row,
                        reference(&sent, i, shift),
                        "n {n} token {i} bits {bits}"
                    );
                }
                // Later-pass refreshes after the second-pass fields change.
                let mut changed = sent.clone();
                for (j, t) in changed.iter_mut().enumerate() {
                    t.first = ((j + salt as usize) % 17) as u8;
                    t.prior = (j % 5) as u8;
                }
                refresh_second_pass(&changed, bits, &mut out);
                for (i, row) in out.chunks_exact(N_FEATURES).enumerate() {
                    assert_eq!(row, reference(&changed, i, shift), "refreshed token {i}");
                }
            }
        }
    }
}

#[test]
fn small_tables_cover_what_decoding_produces() {
    use crate::entities::perceptron::TYPES;
    let s = small();
    // Every BILOU tag, every prior and every type set has a slot, so tagging never falls back.
    assert_eq!(s.first.len(), N_TAGS);
    assert_eq!(s.priors[0].len(), 1 + TYPES.len());
    assert_eq!(s.pairs.len(), 1 << TYPES.len());
    assert_eq!(s.first_prev[FIRSTS][3], hash(41, combine(PAD, 3)));
    assert_eq!(
        s.priors[PRIORS][2][PRIORS],
        hash(49, combine(combine(PAD, 2), PAD))
    );
}

#[test]
fn the_first_pass_writes_only_its_own_positions() {
    let bits = 20;
    for salt in 0..4 {
        let sent = varied_sentence(9, salt);
        let mut full = vec![0u32; sent.len() * N_FEATURES];
        write_features(&sent, bits, N_FEATURES, &mut full);
        let mut first = vec![7u32; sent.len() * N_FEATURES];
        write_features(&sent, bits, FIRST_PASS, &mut first);
        for (a, b) in full
            .chunks_exact(N_FEATURES)
            .zip(first.chunks_exact(N_FEATURES))
        {
            assert_eq!(a[..FIRST_PASS], b[..FIRST_PASS]);
            assert!(
                b[FIRST_PASS..].iter().all(|&x| x == 7),
                "later slots untouched"
            );
        }
        // A refresh completes the row to what writing every template gives.
        refresh_second_pass(&sent, bits, &mut first);
        assert_eq!(first, full);
    }
    // Every template id appears once, the second-pass ones last.
    let mut seen = [false; N_IDS];
    for &t in &ORDER {
        assert!(!seen[t], "template {t} twice");
        seen[t] = true;
    }
    assert_eq!(ORDER[FIRST_PASS..], SECOND_PASS);
}

/// The feature rows of `full` whose tokens `far` does not fix, in order.
fn rows_not_far(full: &[u32], far: &[bool]) -> Vec<u32> {
    full.chunks_exact(N_FEATURES)
        .zip(far)
        .filter(|(_, &f)| !f)
        .flat_map(|(r, _)| r.iter().copied())
        .collect()
}

#[test]
fn kept_rows_are_the_rows_of_the_same_tokens_written_whole() {
    let bits = 20;
    for salt in 0..4u64 {
        let sent = varied_sentence(17, salt);
        let mut full = vec![0u32; sent.len() * N_FEATURES];
        write_features(&sent, bits, N_FEATURES, &mut full);
        // Fixed tokens at the ends, alone and in runs.
        let far: Vec<bool> = (0..sent.len())
            .map(|i| [0, 3, 4, 5, 9, 16].contains(&((i + salt as usize) % 17)))
            .collect();
        let kept_rows = rows_not_far(&full, &far);
        let mut kept = vec![0u32; kept_rows.len()];
        write_kept(&sent, &far, bits, N_FEATURES, &mut kept);
        assert_eq!(kept, kept_rows, "salt {salt}");
        // Refreshing after the second-pass fields change gives the same rows too.
        let mut changed = sent.clone();
        for t in &mut changed {
            t.first = (t.first + 3) % 17;
            t.prior = (t.prior + 1) % 5;
        }
        write_features(&changed, bits, N_FEATURES, &mut full);
        let kept_rows = rows_not_far(&full, &far);
        refresh_kept(&changed, &far, bits, &mut kept);
        assert_eq!(kept, kept_rows, "salt {salt}, refreshed");
    }
}
