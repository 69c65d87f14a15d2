//! Measures the dedup stage's ordered section alone (`Deduper::observe_prepared` on fresh
//! articles whose index-free work is done beforehand, as the pipeline's parallel workers do it)
//! and the index's memory per document.
//!
//! `cargo bench --bench dedup_serial -- [DOCS] [PROBES]` indexes DOCS synthetic articles of 300
//! words (about 2.4 KB; default 100,000), then times PROBES fresh ones (default 2,000) one by
//! one and prints the median, p90, p99 and mean. Memory is counted by a global allocator wrapper:
//! the bytes requested and not yet freed (allocator overhead excluded), after the index is
//! built minus before, over DOCS.
//!
//! With `DROPLINE_DEDUP_BENCH_DATA` set to a folder of articles (one sentence a line, such as
//! `../shared/data/dedup/ecbplus-dev/docs`), the articles are real sentences recombined instead:
//! each takes the lines of one random article (each kept with probability 0.8) and two lines of
//! other random articles at random places, so the vocabulary and the story structure are those of
//! news text (the synthetic articles' vocabulary is wider than news text's).
//!
//! Stable instruction counts: build with `cargo bench --no-run --profile profiling --bench
//! dedup_serial` and run the binary under `valgrind --tool=callgrind
//! --toggle-collect='*probe_phase*' BINARY 20000 1000`; the instructions collected over PROBES
//! are the ordered cost per document.

use dropline::dedup::eval::Rng;
use dropline::dedup::eval_gen::synthetic_article;
use dropline::dedup::{hash128, prepare, DedupConfig, Deduper, Prepared};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Instant;

/// Counts the live heap bytes of the process.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; only a counter is added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        System.alloc(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        System.dealloc(ptr, layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        System.alloc_zeroed(layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn id(n: u64) -> String {
    format!("{:032x}", hash128(&n.to_le_bytes()))
}

/// The article source: synthetic, or real sentences recombined.
enum Source {
    Synthetic,
    Real(Vec<Vec<String>>),
}

impl Source {
    fn from_env() -> Self {
        let Some(dir) = std::env::var_os("DROPLINE_DEDUP_BENCH_DATA") else {
            return Source::Synthetic;
        };
        let mut paths: Vec<_> = std::fs::read_dir(&dir)
            .expect("DROPLINE_DEDUP_BENCH_DATA is a folder")
            .filter_map(|e| Some(e.ok()?.path()))
            .collect();
        paths.sort();
        let docs: Vec<Vec<String>> = paths
            .iter()
            .filter_map(|p| std::fs::read_to_string(p).ok())
            .map(|t| {
                t.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(String::from)
                    .collect::<Vec<_>>()
            })
            .filter(|lines| !lines.is_empty())
            .collect();
        assert!(!docs.is_empty(), "no articles in {}", dir.to_string_lossy());
        Source::Real(docs)
    }

    fn article(&self, rng: &mut Rng) -> String {
        let docs = match self {
            Source::Synthetic => return synthetic_article(rng, 300),
            Source::Real(docs) => docs,
        };
        let base = &docs[rng.below(docs.len())];
        let mut lines: Vec<&str> = base
            .iter()
            .filter(|_| rng.below(10) < 8)
            .map(String::as_str)
            .collect();
        for _ in 0..2 {
            let other = &docs[rng.below(docs.len())];
            let at = rng.below(lines.len() + 1);
            lines.insert(at, &other[rng.below(other.len())]);
        }
        lines.join("\n")
    }
}

/// The timed part: each prepared document decided and added in order; returns nanoseconds each.
#[inline(never)]
fn probe_phase(dedup: &mut Deduper, probes: Vec<Prepared>) -> Vec<u64> {
    let mut times = Vec::with_capacity(probes.len());
    for p in probes {
        let t = Instant::now();
        std::hint::black_box(dedup.observe_prepared(p));
        times.push(t.elapsed().as_nanos() as u64);
    }
    times
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .filter_map(|a| a.parse().ok())
        .collect();
    let docs = args.first().copied().unwrap_or(100_000);
    let probes = args.get(1).copied().unwrap_or(2_000);
    let mut rng = Rng(11);
    let source = Source::from_env();
    let mut text_bytes = 0usize;
    let before = LIVE.load(Ordering::Relaxed);
    let mut dedup = Deduper::new(&DedupConfig::default());
    let started = Instant::now();
    for i in 0..docs as u64 {
        let text = source.article(&mut rng);
        text_bytes += text.len();
        let p = prepare(&id(i), &text);
        dedup.observe_prepared(p);
    }
    let built = started.elapsed();
    let live = LIVE.load(Ordering::Relaxed) - before;
    println!(
        "index of {docs} documents: {live} live heap bytes, {:.0} bytes per document (built in {:.1} s; articles {:.0} bytes on average)",
        live as f64 / docs.max(1) as f64,
        built.as_secs_f64(),
        text_bytes as f64 / docs.max(1) as f64
    );
    let fresh: Vec<Prepared> = (0..probes as u64)
        .map(|i| prepare(&id(i | 1 << 62), &source.article(&mut rng)))
        .collect();
    let mut times = probe_phase(&mut dedup, fresh);
    times.sort_unstable();
    let at = |q: f64| times[((times.len() - 1) as f64 * q) as usize] as f64 / 1000.0;
    let mean = times.iter().sum::<u64>() as f64 / times.len().max(1) as f64 / 1000.0;
    println!(
        "observe_prepared, fresh articles, {probes} after {docs}: median {:.1} us, p90 {:.1} us, p99 {:.1} us, mean {mean:.1} us",
        at(0.5),
        at(0.9),
        at(0.99)
    );
}
