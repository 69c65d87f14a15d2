//! Measures entity tagging throughput (tokenizer, features, both passes, rules and linking) and
//! the start-up cost of loading the shipped model, and prints how many heap allocations one
//! call makes on the seeds and on four copies of them (a count that grows with the text is an
//! allocation per sentence or per token; the names-only count covers features, both passes and
//! Viterbi, without rules, linking and the output strings).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use dropline::entities::{tokenize, EntitiesConfig, EntityTagger};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Counts heap allocations (calls, not bytes).
struct Counting;

static ALLOCS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; only a counter is added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Returns the allocations of one call of `f`, after a first call warmed the reused buffers.
fn allocations(f: impl Fn()) -> usize {
    f();
    let before = ALLOCS.load(Ordering::Relaxed);
    f();
    ALLOCS.load(Ordering::Relaxed) - before
}

/// Prints the allocations of one names-only pass (`name_spans`) and one `tag` call on `text`.
fn print_allocations(label: &str, tagger: &EntityTagger, text: &str) {
    let tokens = tokenize::tokenize(text);
    let sentences = tokenize::sentences(text, &tokens);
    let words: Vec<&str> = tokens.iter().map(|t| t.text(text)).collect();
    let names = allocations(|| {
        std::hint::black_box(tagger.name_spans(&words, &sentences));
    });
    let tag = allocations(|| {
        std::hint::black_box(tagger.tag(text));
    });
    println!(
        "entities/allocations {label}: {} sentences, {} tokens: name_spans {names}, tag {tag}",
        sentences.len(),
        tokens.len()
    );
}

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
    print_allocations("seeds", &tagger, &text);
    print_allocations("seeds x4", &tagger, &[text.as_str(); 4].join("\n"));
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
