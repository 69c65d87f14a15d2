//! Measures entity tagging throughput (tokenizer, features, both passes, rules and linking) and
//! the start-up cost of loading the shipped model.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use dropline::entities::{tokenize, EntitiesConfig, EntityTagger};

fn seeds() -> String {
    let mut paths: Vec<_> = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/seeds"))
        .expect("seeds folder is in the repository")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| std::fs::read_to_string(p).expect("seed files are UTF-8"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn bench(c: &mut Criterion) {
    let tagger = EntityTagger::load(&EntitiesConfig::default()).expect("shipped model loads");
    let text = seeds();
    let tokens = tokenize::tokenize(&text).len() as u64;
    let mut g = c.benchmark_group("entities");
    g.throughput(Throughput::Elements(tokens));
    g.bench_function("tag_seeds_tokens", |b| b.iter(|| tagger.tag(&text)));
    g.throughput(Throughput::Bytes(text.len() as u64));
    g.bench_function("tag_seeds_bytes", |b| b.iter(|| tagger.tag(&text)));
    let names_only = EntityTagger::load(&EntitiesConfig {
        numeric: false,
        link: false,
        ..EntitiesConfig::default()
    })
    .expect("shipped model loads");
    g.throughput(Throughput::Elements(tokens));
    g.bench_function("names_only_tokens", |b| b.iter(|| names_only.tag(&text)));
    g.finish();
    // Start-up: checks the header, the checksum over the whole file and every table's bounds.
    c.bench_function("entities/load_shipped_model", |b| {
        b.iter(|| EntityTagger::load(&EntitiesConfig::default()).expect("shipped model loads"))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
