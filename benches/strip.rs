//! Measures the strip stage: plain-text path in bytes/s, HTML path against the extractor alone.
//!
//! By default it runs on the seeds and a synthetic HTML page built from them. With
//! `DROPLINE_STRIP_BENCH_DIR=../shared/data/boilerplate/wcxb-dev` it also runs on that set's
//! `text/` and `html/` pages (read at start-up; nothing is copied into the repository).

use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use dropline::model::{Format, RawDoc};
use dropline::strip::{StripConfig, Stripper};
use std::io::Read;
use std::path::{Path, PathBuf};

fn raw(format: Format, body: String) -> RawDoc {
    RawDoc {
        id: String::new(),
        format,
        body,
        source_key: "bench".into(),
    }
}

fn seeds() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect()
}

fn synthetic_html(texts: &[String]) -> String {
    let mut html = String::from("<html><head><title>Seeds</title></head><body><nav><ul>");
    for item in ["Home", "World", "Business", "Sport", "Culture", "Contact"] {
        html.push_str(&format!("<li><a href=\"/{item}\">{item}</a></li>"));
    }
    html.push_str("</ul></nav><article>");
    for line in texts[0].lines().filter(|l| !l.trim().is_empty()) {
        html.push_str(&format!("<p>{line}</p>"));
    }
    html.push_str("</article><aside><h3>Latest news</h3><ul>");
    for line in texts[1].lines().skip(12) {
        html.push_str(&format!("<li>{line}</li>"));
    }
    html.push_str(
        "</ul></aside><footer>Copyright 2026. All rights reserved.</footer></body></html>",
    );
    html
}

fn dev_pages(sub: &str) -> Vec<String> {
    let Ok(dir) = std::env::var("DROPLINE_STRIP_BENCH_DIR") else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = match std::fs::read_dir(Path::new(&dir).join(sub)) {
        Ok(rd) => rd.map(|e| e.unwrap().path()).collect(),
        Err(_) => return Vec::new(),
    };
    files.sort();
    files
        .iter()
        .map(|p| {
            let mut bytes = Vec::new();
            if p.extension().is_some_and(|e| e == "gz") {
                flate2::read::GzDecoder::new(std::fs::File::open(p).unwrap())
                    .read_to_end(&mut bytes)
                    .unwrap();
            } else {
                bytes = std::fs::read(p).unwrap();
            }
            String::from_utf8_lossy(&bytes).into_owned()
        })
        .collect()
}

/// CPU time of the measuring thread (from `/proc/thread-self/schedstat`, in ns): on a shared
/// machine this gives the per-core throughput that wall-clock time hides under other load.
struct ThreadCpu {
    wall: WallTime,
}

fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

impl Measurement for ThreadCpu {
    type Intermediate = u64;
    type Value = u64;
    fn start(&self) -> u64 {
        thread_cpu_ns()
    }
    fn end(&self, start: u64) -> u64 {
        thread_cpu_ns().saturating_sub(start)
    }
    fn add(&self, a: &u64, b: &u64) -> u64 {
        a + b
    }
    fn zero(&self) -> u64 {
        0
    }
    fn to_f64(&self, v: &u64) -> f64 {
        *v as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        // Values are nanoseconds, as with wall time.
        self.wall.formatter()
    }
}

fn bench_text_cpu(c: &mut Criterion<ThreadCpu>) {
    text_group(c, "strip_text_cpu");
}

fn bench_text(c: &mut Criterion) {
    text_group(c, "strip_text");
}

fn text_group<M: Measurement>(c: &mut Criterion<M>, group: &str) {
    let stripper = Stripper::new(&StripConfig::default(), None).unwrap();
    let mut sets = vec![("seeds", seeds())];
    let dev = dev_pages("text");
    if !dev.is_empty() {
        sets.push(("wcxb-dev", dev));
    }
    let mut g = c.benchmark_group(group);
    for (name, texts) in sets {
        let docs: Vec<RawDoc> = texts.into_iter().map(|t| raw(Format::Text, t)).collect();
        let bytes: usize = docs.iter().map(|d| d.body.len()).sum();
        g.throughput(Throughput::Bytes(bytes as u64));
        g.bench_function(BenchmarkId::new("strip", name), |b| {
            b.iter(|| {
                docs.iter()
                    .map(|d| stripper.strip(d).text.len())
                    .sum::<usize>()
            })
        });
    }
    g.finish();
}

fn bench_html_cpu(c: &mut Criterion<ThreadCpu>) {
    html_group(c, "strip_html_cpu");
}

fn bench_html(c: &mut Criterion) {
    html_group(c, "strip_html");
}

fn html_group<M: Measurement>(c: &mut Criterion<M>, group: &str) {
    let stripper = Stripper::new(&StripConfig::default(), None).unwrap();
    let mut sets = vec![("synthetic", vec![synthetic_html(&seeds())])];
    let dev = dev_pages("html");
    if !dev.is_empty() {
        sets.push(("wcxb-dev", dev));
    }
    let mut g = c.benchmark_group(group);
    g.sample_size(10);
    for (name, pages) in sets {
        let docs: Vec<RawDoc> = pages.into_iter().map(|t| raw(Format::Html, t)).collect();
        let bytes: usize = docs.iter().map(|d| d.body.len()).sum();
        g.throughput(Throughput::Bytes(bytes as u64));
        g.bench_function(BenchmarkId::new("whole_path", name), |b| {
            b.iter(|| {
                docs.iter()
                    .map(|d| stripper.strip(d).text.len())
                    .sum::<usize>()
            })
        });
        g.bench_function(BenchmarkId::new("extractor_only", name), |b| {
            b.iter(|| {
                docs.iter()
                    .map(|d| stripper.extract_only(&d.body).text.len())
                    .sum::<usize>()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench_text, bench_html);
criterion_group! {
    name = cpu;
    config = Criterion::default().with_measurement(ThreadCpu { wall: WallTime });
    targets = bench_text_cpu, bench_html_cpu
}
criterion_main!(benches, cpu);
