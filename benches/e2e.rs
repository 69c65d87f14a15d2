//! End-to-end benchmark of the daemon: generates a corpus from `seeds/`, drops it into a live
//! drop folder by rename (as a burst, or at an offered rate), and reports throughput, latency
//! from rename to committed line, and peak RSS. Not a test: run it with
//! `cargo bench --bench e2e -- [burst N] [rate DOCS_PER_S SECONDS] [--set KEY=VALUE]...`.
//!
//! The baseline measured in the same run is the floor any ingest pays: reading every corpus
//! file and hashing it, single-threaded, in this process. The daemon's throughput is reported
//! as a ratio against it.

use std::collections::HashMap;
use std::fs;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Target size of a generated article, in bytes.
const ARTICLE_BYTES: usize = 2048;

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let mut sets = Vec::new();
    let mut modes = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--set" => sets.push(it.next().expect("--set KEY=VALUE").clone()),
            "burst" => modes.push(Mode::Burst(
                it.next().map_or(20_000, |n| n.parse().expect("N")),
            )),
            "rate" => {
                let r = it.next().map_or(1000, |n| n.parse().expect("rate"));
                let s = it.next().map_or(5, |n| n.parse().expect("seconds"));
                modes.push(Mode::Rate(r, s));
            }
            _ => {}
        }
    }
    if modes.is_empty() {
        modes = vec![Mode::Burst(20_000), Mode::Rate(1000, 5)];
    }
    for mode in modes {
        let report = run(mode, &sets);
        println!("{report}");
    }
}

#[derive(Debug, Clone, Copy)]
enum Mode {
    /// Rename N files into the folder as fast as possible.
    Burst(usize),
    /// Rename files at a fixed rate for a number of seconds.
    Rate(usize, u64),
}

/// Builds `n` distinct ~2 KB articles from the seeds, deterministically.
fn corpus(n: usize) -> Vec<Vec<u8>> {
    let seeds_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
    let mut paths: Vec<PathBuf> = fs::read_dir(&seeds_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    let seeds: Vec<Vec<String>> = paths
        .iter()
        .map(|p| {
            fs::read_to_string(p)
                .unwrap()
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(String::from)
                .collect()
        })
        .collect();
    let words: Vec<&str> = seeds
        .iter()
        .flatten()
        .flat_map(|l| l.split_whitespace())
        .collect();
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..n)
        .map(|i| {
            let lines = &seeds[i % seeds.len()];
            let mut doc = format!("Report {i}: {}\n", lines[0]);
            let mut k = (next() as usize) % lines.len();
            while doc.len() < ARTICLE_BYTES {
                // Every few lines, a sentence of random seed words keeps documents distinct.
                if next() % 3 == 0 {
                    let s: Vec<&str> = (0..12)
                        .map(|_| words[(next() as usize) % words.len()])
                        .collect();
                    doc.push_str(&s.join(" "));
                    doc.push_str(".\n");
                } else {
                    doc.push_str(&lines[k % lines.len()]);
                    doc.push('\n');
                    k += 1;
                }
            }
            let mut cut = ARTICLE_BYTES;
            while !doc.is_char_boundary(cut) {
                cut -= 1;
            }
            doc.truncate(cut);
            doc.into_bytes()
        })
        .collect()
}

/// Reads and hashes every file once: the floor of any ingest.
fn baseline(paths: &[PathBuf]) -> f64 {
    let started = Instant::now();
    let mut acc = 0u64;
    for p in paths {
        let b = fs::read(p).unwrap();
        acc ^= xxhash_rust::xxh3::xxh3_64(&b);
    }
    std::hint::black_box(acc);
    paths.len() as f64 / started.elapsed().as_secs_f64()
}

fn run(mode: Mode, sets: &[String]) -> String {
    let tmp = tempfile::tempdir().unwrap();
    let staging = tmp.path().join("staging");
    let drop = tmp.path().join("drop");
    fs::create_dir_all(&staging).unwrap();
    fs::create_dir_all(&drop).unwrap();
    let n = match mode {
        Mode::Burst(n) => n,
        Mode::Rate(r, s) => r * s as usize,
    };
    let docs = corpus(n);
    let total_bytes: usize = docs.iter().map(Vec::len).sum();
    let staged: Vec<PathBuf> = docs
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let p = staging.join(format!("{i:07}.txt"));
            fs::write(&p, d).unwrap();
            p
        })
        .collect();
    let base_docs_s = baseline(&staged);
    let out = tmp.path().join("out.jsonl");
    let mut daemon = spawn(tmp.path(), &drop, &out, sets);
    wait_for_start(&out, &mut daemon);

    let mut renamed_at: HashMap<String, Instant> = HashMap::with_capacity(n);
    let mut tail = Tail::new(&out);
    let mut committed_at: HashMap<String, Instant> = HashMap::with_capacity(n);
    let started = Instant::now();
    let interval = match mode {
        Mode::Rate(r, _) => Some(Duration::from_secs_f64(1.0 / r as f64)),
        Mode::Burst(_) => None,
    };
    for (i, src) in staged.iter().enumerate() {
        if let Some(iv) = interval {
            let due = started + iv * i as u32;
            while Instant::now() < due {
                tail.poll(&mut committed_at);
                std::hint::spin_loop();
            }
        }
        let dst = drop.join(src.file_name().unwrap());
        fs::rename(src, &dst).unwrap();
        renamed_at.insert(dst.display().to_string(), Instant::now());
    }
    let deadline = Instant::now() + Duration::from_secs(600);
    while committed_at.len() < n && Instant::now() < deadline {
        if !tail.poll(&mut committed_at) {
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    let elapsed = committed_at
        .values()
        .max()
        .map_or(Duration::ZERO, |t| t.duration_since(started));
    let rss_kb = peak_rss_kb(daemon.0.id());
    let stop = daemon.stop();

    let mut lat: Vec<f64> = committed_at
        .iter()
        .filter_map(|(p, t)| {
            renamed_at
                .get(p)
                .map(|r| t.saturating_duration_since(*r).as_secs_f64() * 1e3)
        })
        .collect();
    lat.sort_by(|a, b| a.total_cmp(b));
    let pct = |q: f64| {
        lat.get(((lat.len() as f64 * q) as usize).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or(f64::NAN)
    };
    let secs = elapsed.as_secs_f64();
    let docs_s = committed_at.len() as f64 / secs;
    format!(
        "{mode:?} sets={sets:?}: committed {c}/{n} in {secs:.2}s: {docs_s:.0} docs/s, {mbs:.1} MB/s \
         (baseline read+hash {base_docs_s:.0} docs/s, ratio {ratio:.3}); latency rename->committed \
         p50 {p50:.1} ms, p99 {p99:.1} ms, max {max:.1} ms; peak RSS {rss:.1} MB; {stop}",
        c = committed_at.len(),
        mbs = total_bytes as f64 / secs / 1e6,
        ratio = docs_s / base_docs_s,
        p50 = pct(0.50),
        p99 = pct(0.99),
        max = lat.last().copied().unwrap_or(f64::NAN),
        rss = rss_kb as f64 / 1024.0,
    )
}

/// The daemon under test; killed if the harness unwinds, so no run leaves it behind.
struct Daemon(Child);

impl Daemon {
    /// Sends SIGTERM and reports how long the drain took.
    fn stop(&mut self) -> String {
        let t = Instant::now();
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.0.id().to_string())
            .status();
        while t.elapsed() < Duration::from_secs(30) {
            if let Ok(Some(status)) = self.0.try_wait() {
                return format!(
                    "stopped on SIGTERM in {} ms ({status})",
                    t.elapsed().as_millis()
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        "DID NOT STOP within 30 s of SIGTERM".into()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(dir: &Path, drop: &Path, out: &Path, sets: &[String]) -> Daemon {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dropline"));
    cmd.arg("run")
        .arg("--set")
        .arg(format!("source.dir=\"{}\"", drop.display()))
        .arg("--set")
        .arg("output.kind=file")
        .arg("--set")
        .arg(format!("output.path=\"{}\"", out.display()))
        .arg("--set")
        .arg(format!("state.dir=\"{}\"", dir.join("state").display()))
        .arg("--set")
        .arg("metrics.enabled=false")
        .arg("--set")
        .arg("source.settle=\"1s\"");
    for s in sets {
        cmd.arg("--set").arg(s);
    }
    Daemon(
        cmd.env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn dropline"),
    )
}

/// Waits until the daemon has opened its output (it creates the file at start-up).
fn wait_for_start(out: &Path, daemon: &mut Daemon) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !out.exists() {
        assert!(
            daemon.0.try_wait().unwrap().is_none(),
            "daemon exited at start-up"
        );
        assert!(Instant::now() < deadline, "daemon did not start");
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(200));
}

/// Follows the output file, recording when each path's line was first seen.
struct Tail {
    reader: Option<BufReader<fs::File>>,
    path: PathBuf,
    line: Vec<u8>,
}

impl Tail {
    fn new(path: &Path) -> Self {
        Self {
            reader: None,
            path: path.to_path_buf(),
            line: Vec::new(),
        }
    }

    /// Reads whatever whole lines are new; returns whether any were.
    fn poll(&mut self, seen: &mut HashMap<String, Instant>) -> bool {
        if self.reader.is_none() {
            let Ok(f) = fs::File::open(&self.path) else {
                return false;
            };
            self.reader = Some(BufReader::new(f));
        }
        let r = self.reader.as_mut().unwrap();
        let mut any = false;
        loop {
            let pos = r.stream_position().unwrap();
            self.line.clear();
            match r.read_until(b'\n', &mut self.line) {
                Ok(0) => return any,
                Ok(_) if self.line.last() != Some(&b'\n') => {
                    r.seek(SeekFrom::Start(pos)).unwrap();
                    return any;
                }
                Ok(_) => {
                    let now = Instant::now();
                    let v: serde_json::Value =
                        serde_json::from_slice(&self.line).expect("valid line");
                    if let Some(p) = v["source"]["path"].as_str() {
                        seen.entry(p.to_string()).or_insert(now);
                    }
                    any = true;
                }
                Err(e) => panic!("reading output: {e}"),
            }
        }
    }
}

fn peak_rss_kb(pid: u32) -> u64 {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}
