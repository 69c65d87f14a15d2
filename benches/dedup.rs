//! Benchmarks the dedup stage: signature throughput and index query/insert cost at scale.
//!
//! `cargo bench --bench dedup`. Throughput is reported in bytes of article text.

use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use dropline::dedup::eval::Rng;
use dropline::dedup::eval_gen::synthetic_article;
use dropline::dedup::minhash::{NearIndex, Signatures, NUM_PERM};
use dropline::dedup::text::words;
use dropline::dedup::{hash128, prepare, DedupConfig, Deduper};

/// Documents in the near-copy index for the query and insert benchmarks.
const INDEXED: usize = 1_000_000;
/// Documents behind the whole-stage benchmark (all tiers, stories included).
const STAGE_INDEXED: usize = 50_000;

fn seeds() -> Vec<String> {
    dropline::dedup::eval::seed_texts()
}

fn random_sigs(rng: &mut Rng) -> Signatures {
    let mut near = [0u32; NUM_PERM];
    near.iter_mut().for_each(|v| *v = rng.next_u64() as u32);
    Signatures { near }
}

fn signatures(c: &mut Criterion) {
    let texts = seeds();
    let bytes: usize = texts.iter().map(String::len).sum();
    let mut g = c.benchmark_group("dedup_signatures");
    g.throughput(Throughput::Bytes(bytes as u64));
    g.bench_function("words_and_minhash_seeds", |b| {
        b.iter(|| {
            for t in &texts {
                black_box(Signatures::of(&words(black_box(t))));
            }
        })
    });
    let dedup = Deduper::new(&DedupConfig::default());
    g.bench_function("check_all_tiers_empty_index_seeds", |b| {
        b.iter(|| {
            for t in &texts {
                black_box(dedup.check("00000000000000000000000000000001", black_box(t)));
            }
        })
    });
    g.finish();
}

fn near_index(c: &mut Criterion) {
    let mut rng = Rng(7);
    let mut idx = NearIndex::default();
    let mut kept = Vec::new();
    for i in 0..INDEXED {
        let s = random_sigs(&mut rng);
        if i % 1000 == 0 {
            kept.push(s.clone());
        }
        idx.insert(i as u64, s.compact());
    }
    // Queries: half near-copies of indexed documents (a quarter of the values changed), half new.
    let queries: Vec<Signatures> = kept
        .iter()
        .enumerate()
        .map(|(i, s)| {
            if i % 2 == 0 {
                let mut q = s.clone();
                for v in q.near.iter_mut().step_by(4) {
                    *v = rng.next_u64() as u32;
                }
                q
            } else {
                random_sigs(&mut rng)
            }
        })
        .collect();
    let mut g = c.benchmark_group("dedup_near_index_1m");
    let mut qi = 0usize;
    g.bench_function("query_and_verify", |b| {
        b.iter(|| {
            qi = (qi + 1) % queries.len();
            let q = &queries[qi];
            let best = idx
                .candidates(&q.compact())
                .into_iter()
                .filter_map(|c| idx.get(c))
                .map(|d| q.similarity_to(&d.sig))
                .fold(0.0f32, f32::max);
            black_box(best)
        })
    });
    let mut next = INDEXED as u64;
    g.bench_function("insert_and_evict_oldest", |b| {
        b.iter_batched(
            || random_sigs(&mut rng),
            |s| {
                next += 1;
                idx.insert(next, s.compact());
                black_box(idx.evict_oldest());
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn whole_stage(c: &mut Criterion) {
    let mut rng = Rng(11);
    let mut dedup = Deduper::new(&DedupConfig::default());
    for i in 0..STAGE_INDEXED {
        let text = synthetic_article(&mut rng, 300);
        dedup.observe(
            &format!("{:032x}", hash128(&(i as u64).to_le_bytes())),
            &text,
        );
    }
    let probes: Vec<String> = (0..256).map(|_| synthetic_article(&mut rng, 300)).collect();
    let mut g = c.benchmark_group("dedup_stage_50k");
    let mut n = 0usize;
    g.bench_function("observe_synthetic_300_words", |b| {
        b.iter(|| {
            n += 1;
            let t = &probes[n % probes.len()];
            let id = format!("{:032x}", hash128(&((n as u64 + 1) << 40).to_le_bytes()));
            black_box(dedup.observe(&id, t))
        })
    });
    // The sequential part alone, on fresh articles (the probes above repeat, so after one lap
    // they are exact duplicates): index-free work happens in the untimed setup, as the
    // pipeline's parallel workers do it.
    let mut m = 0u64;
    g.bench_function("observe_prepared_fresh_synthetic_300_words", |b| {
        b.iter_batched(
            || {
                m += 1;
                let id = format!("{:032x}", hash128(&((m + 1) << 48).to_le_bytes()));
                prepare(&id, &synthetic_article(&mut rng, 300))
            },
            |p| black_box(dedup.observe_prepared(p)),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, signatures, near_index, whole_stage);
criterion_main!(benches);
