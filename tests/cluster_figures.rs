//! The closing note's figures, run by hand on a release build (ignored in CI):
//!
//! ```text
//! cargo build --release && DROPLINE_BIN=target/release/dropline cargo test --release \
//!     --test cluster_figures -- --ignored --nocapture
//! ```
//!
//! `DROPLINE_FIGURES_DATA` = a folder of articles (else generated ones),
//! `DROPLINE_FIGURES_FILES` = how many files (default 2000), `DROPLINE_FIGURES_PERF` = a
//! `perf record` output file for the worker nodes over the decider-alone drain.

mod cluster_util;
mod util;

use cluster_util::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Fills `drop` with `n` files: the articles of `DROPLINE_FIGURES_DATA` (a folder of .txt)
/// cycled with a numbered last line, or generated articles.
fn figure_files(drop: &Path, n: usize) {
    let data: Vec<String> = std::env::var_os("DROPLINE_FIGURES_DATA")
        .map(util::read_texts)
        .unwrap_or_default();
    for i in 0..n {
        let body = if data.is_empty() {
            article(i as u64)
        } else {
            format!("{}\nCopy {}.\n", data[i % data.len()], i / data.len())
        };
        std::fs::write(drop.join(format!("f{i:05}.txt")), body).unwrap();
    }
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Per line of cluster `name`'s output stream: (ready ms, committed ms).
fn out_times(url: &str, name: &str) -> Vec<(u64, u64)> {
    out_headers(url, name)
        .into_iter()
        .map(|(h, committed)| (ready_ms(&h), committed))
        .collect()
}

/// The ready time of an output line: the third field of `Dropline-Line`, or the version 1
/// header of an older decider.
fn ready_ms(h: &std::collections::HashMap<String, String>) -> u64 {
    match h.get("Dropline-Line") {
        Some(v) => v.split(' ').nth(2).unwrap().parse().unwrap(),
        None => h["Dropline-Ready-Ms"].parse().unwrap(),
    }
}

/// Lines per second from the first line's commit to the last's.
fn commit_rate(url: &str, name: &str, n: usize) -> f64 {
    let times = out_times(url, name);
    let first = times.iter().map(|t| t.1).min().unwrap();
    let last = times.iter().map(|t| t.1).max().unwrap();
    (n - 1) as f64 / ((last - first) as f64 / 1000.0)
}

/// CPU seconds (user and system) that process `pid` has used so far, its ended threads
/// included, from `/proc/<pid>/stat` (in clock ticks, 10 ms: over 2,000 documents 5 us a
/// document; the threads' own `schedstat` counts finer but loses a thread that ends, as the
/// idle node's blocking threads do during a drain).
fn cpu_seconds(pid: u32) -> f64 {
    // utime and stime are fields 14 and 15.
    let ticks: f64 = stat_fields(pid)[11..13]
        .iter()
        .map(|f| f.parse::<f64>().unwrap())
        .sum();
    // SAFETY: sysconf reads a constant of the system; no memory is passed.
    ticks / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
}

/// Minor page faults that process `pid` has taken so far (`/proc/<pid>/stat` field 10): pages
/// touched for the first time since they were mapped, the allocator's fresh memory among them.
fn minor_faults(pid: u32) -> f64 {
    stat_fields(pid)[7].parse().unwrap()
}

/// The fields of `/proc/<pid>/stat` after the command name in parentheses (state first).
fn stat_fields(pid: u32) -> Vec<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("a running process");
    let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    rest.split_whitespace().map(str::to_string).collect()
}

/// `perf record` of the worker nodes over a drain, when `DROPLINE_FIGURES_PERF` names its
/// output file (a profiling build in `DROPLINE_BIN` gives symbols): the decider's own profile,
/// without the fill's strip and entity work. Stopped with SIGINT, so that perf writes its file.
struct Perf(Option<std::process::Child>);

impl Perf {
    fn start(pids: &[u32]) -> Perf {
        let Some(out) = std::env::var_os("DROPLINE_FIGURES_PERF") else {
            return Perf(None);
        };
        let pids: Vec<String> = pids.iter().map(u32::to_string).collect();
        let child = std::process::Command::new("perf")
            .args(["record", "-q", "-e", "cpu-clock", "-F", "4000"])
            .args(["--call-graph", "dwarf,16384", "-o"])
            .arg(out)
            .args(["-p", &pids.join(",")])
            .spawn()
            .expect("perf runs");
        // perf attaches before the drain starts.
        std::thread::sleep(Duration::from_millis(500));
        Perf(Some(child))
    }
}

impl Drop for Perf {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            util::signal(&child, "INT");
            let _ = child.wait();
        }
    }
}

/// CPU seconds of each server and each worker node over a drain ([`Run::drain_alone`]).
struct Cpu {
    servers: Vec<f64>,
    nodes: Vec<f64>,
    /// Minor page faults of each worker node over the drain.
    node_faults: Vec<f64>,
}

/// The nodes of one figure: cluster `name`, an intake and `workers` workers on `drop`.
struct Run {
    intake: Node,
    config: PathBuf,
    workers: Vec<Node>,
}

impl Run {
    fn intake(bed: &Bed, name: &str, drop: &Path) -> Run {
        let (intake, config) = node(bed, name, "intake", drop, "intake");
        Run {
            intake,
            config,
            workers: Vec::new(),
        }
    }

    fn add_workers(&mut self, bed: &Bed, name: &str, drop: &Path, n: usize) {
        for i in 0..n {
            let tag = format!("w{i}");
            self.workers.push(node(bed, name, "worker", drop, &tag).0);
        }
    }

    fn wait(&self, n: usize) {
        let refs: Vec<&Node> = std::iter::once(&self.intake).chain(&self.workers).collect();
        wait_for_lines(&self.config, n, Duration::from_secs(900), &refs);
    }

    /// Waits until every node has joined the cluster and the intake watches its folder (a
    /// node's first stream requests can time out, 10 s, when several create the same streams
    /// at once; files dropped meanwhile would time that start-up, not the cluster).
    fn wait_joined(&self) {
        let joined = |n: &Node| n.log().contains("joined the cluster");
        util::wait::wait_until(
            Duration::from_secs(120),
            Duration::from_millis(200),
            "the nodes joined",
            || self.workers.iter().all(joined) && self.intake.log().contains("status: ready"),
            String::new,
        );
    }

    /// Whether stream `stream` of the status holds `n` messages (its last sequence).
    fn stream_at(&self, stream: &str, n: usize) -> bool {
        let want = format!("last_seq {n:>9}");
        let s = cluster_cmd(&self.config, &["status"]);
        s.lines().any(|l| l.contains(stream) && l.contains(&want))
    }

    /// Waits until stream `stream` of the status holds `n` messages.
    fn wait_stream(&self, stream: &str, n: usize) {
        while !self.stream_at(stream, n) {
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// Fills the prepared stream of cluster `name` (`n` documents) with two workers while the
    /// harness holds the decider lease, then releases it and waits for the `n` lines; returns
    /// the CPU seconds of each server and each worker node (one of them decides) over the
    /// drain. Panics if a node decided during the fill (the hold did not keep the lease).
    fn drain_alone(&mut self, bed: &Bed, name: &str, dir: &Path, n: usize, pin: bool) -> Cpu {
        let hold = Hold::start(&bed.url, name);
        self.add_workers(bed, name, dir, 2);
        if pin {
            self.workers.iter().for_each(|w| w.pin("1"));
        }
        let prepared = format!("{}_PREPARED", name.to_uppercase());
        self.wait_stream(&prepared, n);
        let out = format!("{}_OUT", name.to_uppercase());
        assert!(
            self.stream_at(&out, 0),
            "a node decided while the harness held the lease"
        );
        let pids: Vec<u32> = bed.nats.pids();
        let nodes: Vec<u32> = self.workers.iter().map(Node::pid).collect();
        let cpu = |pids: &[u32]| pids.iter().map(|&p| cpu_seconds(p)).collect::<Vec<_>>();
        let faults = |pids: &[u32]| pids.iter().map(|&p| minor_faults(p)).collect::<Vec<_>>();
        let before = (cpu(&pids), cpu(&nodes), faults(&nodes));
        let perf = Perf::start(&nodes);
        drop(hold);
        self.wait(n);
        drop(perf);
        let spent =
            |now: Vec<f64>, then: Vec<f64>| now.iter().zip(&then).map(|(a, b)| a - b).collect();
        Cpu {
            servers: spent(cpu(&pids), before.0),
            nodes: spent(cpu(&nodes), before.1),
            node_faults: spent(faults(&nodes), before.2),
        }
    }
}

/// Starts a node of cluster `name` (2 strip workers; entities off for the latency run).
fn node(bed: &Bed, name: &str, role: &str, drop: &Path, tag: &str) -> (Node, PathBuf) {
    let dir = bed.path(&format!("{name}-{tag}"));
    let mut extra = "[pipeline]\nstrip_workers = 2\n".to_string();
    if name == "lat" {
        extra.push_str(NO_ENTITIES);
    }
    let c = node_config(&dir, &bed.url, role, drop, None, &extra);
    let text = std::fs::read_to_string(&c)
        .unwrap()
        .replace("name = \"t\"", &format!("name = \"{name}\""));
    std::fs::write(&c, text).unwrap();
    (Node::start(&dir, &c), c)
}

#[test]
#[ignore]
fn figures() {
    let n = util::env_number("DROPLINE_FIGURES_FILES", 2000);
    let bed = Bed::start();
    let src = bed.path("src");
    std::fs::create_dir(&src).unwrap();
    figure_files(&src, n);
    // Single-node baseline in the same run: `process` over the same files.
    let t = Instant::now();
    let single = Command::new(dropline_bin())
        .args(["process", "--set", "strip.source_memory=false"])
        .args(["--set", "metrics.enabled=false"])
        .arg(&src)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    // Exit 1 only says some inputs became error records (they are lines all the same).
    assert!(matches!(single.code(), Some(0 | 1)), "{single:?}");
    let single_rate = n as f64 / t.elapsed().as_secs_f64();
    println!("FIGURE single-node process: {n} files, {single_rate:.0} docs/s (incl. start-up)");
    let copy_to = |name: &str| -> PathBuf {
        let d = bed.path(&format!("drop-{name}"));
        std::fs::create_dir(&d).unwrap();
        for e in std::fs::read_dir(&src).unwrap() {
            let p = e.unwrap().path();
            std::fs::copy(&p, d.join(p.file_name().unwrap())).unwrap();
        }
        d
    };
    // Throughput with 1 and 2 worker processes; the backlog is published before they start.
    for workers in [1usize, 2] {
        let name = format!("w{workers}");
        let drop = copy_to(&name);
        let mut run = Run::intake(&bed, &name, &drop);
        run.wait_stream(&format!("{}_WORK", name.to_uppercase()), n);
        run.add_workers(&bed, &name, &drop, workers);
        run.wait(n);
        let rate = commit_rate(&bed.url, &name, n);
        println!(
            "FIGURE {workers} worker(s): {rate:.0} docs/s first to last line ({:.2}x single-node)",
            rate / single_rate
        );
    }
    // The decider alone: workers fill the prepared stream while the lease is held elsewhere.
    {
        let name = "dec";
        let drop = copy_to(name);
        let mut run = Run::intake(&bed, name, &drop);
        std::thread::sleep(Duration::from_secs(2));
        let cpu = run.drain_alone(&bed, name, &drop, n, false);
        let rate = commit_rate(&bed.url, name, n);
        println!(
            "FIGURE decider alone on a full prepared stream: {rate:.0} docs/s ({:.1} us/doc)",
            1e6 / rate
        );
        let per_doc = |secs: &[f64]| -> Vec<String> {
            let us = secs.iter().map(|s| s * 1e6 / n as f64);
            us.map(|u| format!("{u:.1}")).collect()
        };
        println!(
            "FIGURE decider alone, CPU us a document over the drain (cluster status polls \
             included): servers {:?}, worker nodes {:?}; minor page faults a document: worker \
             nodes {:.1?}",
            per_doc(&cpu.servers),
            per_doc(&cpu.nodes),
            cpu.node_faults
                .iter()
                .map(|f| f / n as f64)
                .collect::<Vec<_>>(),
        );
        // The decider logs its own CPU per document every 10 s.
        std::thread::sleep(Duration::from_secs(11));
        for w in &run.workers {
            let log = w.log();
            if let Some(l) = log.lines().rfind(|l| l.contains("decider cost")) {
                println!("FIGURE decider own cost: {l}");
            }
            for l in log
                .lines()
                .filter(|l| l.contains("WARN") || l.contains("rebuilt"))
            {
                println!("decider node: {l}");
            }
        }
    }
    // Latency ready -> committed at about 1,000 files/s, entities off, 2 workers.
    {
        let name = "lat";
        let drop = bed.path("drop-lat");
        std::fs::create_dir(&drop).unwrap();
        let mut run = Run::intake(&bed, name, &drop);
        run.add_workers(&bed, name, &drop, 2);
        run.wait_joined();
        std::thread::sleep(Duration::from_secs(1));
        let files: Vec<PathBuf> = std::fs::read_dir(&src)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        let start = Instant::now();
        for (i, p) in files.iter().enumerate() {
            let due = Duration::from_micros(1000 * i as u64);
            if let Some(wait) = due.checked_sub(start.elapsed()) {
                std::thread::sleep(wait);
            }
            let tmpname = drop.join(format!(".{i}.tmp"));
            std::fs::copy(p, &tmpname).unwrap();
            std::fs::rename(&tmpname, drop.join(p.file_name().unwrap())).unwrap();
        }
        let offered = n as f64 / start.elapsed().as_secs_f64();
        run.wait(n);
        let mut lat: Vec<u64> = out_times(&bed.url, name)
            .iter()
            .map(|(r, c)| c.saturating_sub(*r))
            .collect();
        lat.sort_unstable();
        println!(
            "FIGURE latency ready->committed at {offered:.0} files/s offered: p50 {} ms, p99 {} ms, max {} ms",
            percentile(&lat, 0.5),
            percentile(&lat, 0.99),
            lat[lat.len() - 1]
        );
    }
}

/// The decider alone draining a full prepared stream (as in [`figures`]), with the three
/// servers pinned to CPU 0 and the worker nodes (one of which decides) to CPU 1, beside the
/// same run unpinned, alternating: `DROPLINE_FIGURES_RUNS` pairs (default 3).
#[test]
#[ignore]
fn decider_ceiling_pinned() {
    let n = util::env_number("DROPLINE_FIGURES_FILES", 2000);
    let runs = util::env_number("DROPLINE_FIGURES_RUNS", 3);
    let (mut pinned, mut free) = (Vec::new(), Vec::new());
    for r in 0..runs {
        let order = if r % 2 == 0 {
            [false, true]
        } else {
            [true, false]
        };
        for pin in order {
            let bed = Bed::start();
            if pin {
                bed.nats.pin("0");
            }
            let drop = bed.path("drop-dec");
            std::fs::create_dir(&drop).unwrap();
            figure_files(&drop, n);
            let name = "dec";
            let mut run = Run::intake(&bed, name, &drop);
            std::thread::sleep(Duration::from_secs(2));
            let cpu = run.drain_alone(&bed, name, &drop, n, pin);
            let rate = commit_rate(&bed.url, name, n);
            let node_us = cpu.nodes.iter().sum::<f64>() * 1e6 / n as f64;
            let faults = cpu.node_faults.iter().sum::<f64>() / n as f64;
            println!(
                "FIGURE decider alone, pinned {pin}: {rate:.0} docs/s, worker nodes {node_us:.1} \
                 us of CPU and {faults:.1} minor page faults a document"
            );
            if pin { &mut pinned } else { &mut free }.push(rate);
        }
    }
    let stats = |v: &[f64]| {
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        let var =
            v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (v.len() as f64 - 1.0).max(1.0);
        (mean, var.sqrt())
    };
    let ((pm, ps), (fm, fs)) = (stats(&pinned), stats(&free));
    println!("FIGURE decider alone pinned: {pm:.0} ± {ps:.0} docs/s over {runs} ({pinned:.0?})");
    println!("FIGURE decider alone unpinned: {fm:.0} ± {fs:.0} docs/s over {runs} ({free:.0?})");
}
