//! The daemon's one listener seen from outside: every documented series from start-up, counters
//! that agree with the output, the backlog gauge, end-to-end latency from landing, health
//! endpoints, bounded connections, and a real Prometheus scraping it.

mod util;

use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use util::listener::{
    body, config_with_metrics, scrape, seed_files, spawn_quiet, spawn_quiet_with, status_code,
    wait_metric, wait_ready,
};
use util::prometheus::{Prometheus, PROMETHEUS};
use util::{bin, free_port, http_get, metric, signal, wait_exit, Workspace};

const WAIT: Duration = Duration::from_secs(60);

/// Every series the README documents, as it appears before any file is dropped.
const SERIES_AT_START: &[&str] = &[
    "dropline_files_discovered_total",
    "dropline_files_processed_total",
    "dropline_files_failed_total{stage=\"read\"}",
    "dropline_files_failed_total{stage=\"strip\"}",
    "dropline_files_failed_total{stage=\"entities\"}",
    "dropline_bytes_read_total",
    "dropline_documents_emitted_total{status=\"unique\"}",
    "dropline_documents_emitted_total{status=\"exact_duplicate\"}",
    "dropline_documents_emitted_total{status=\"near_duplicate\"}",
    "dropline_documents_dropped_total",
    "dropline_entities_total{label=\"PER\"}",
    "dropline_entities_total{label=\"LOC\"}",
    "dropline_rescans_total{reason=\"interval\"}",
    "dropline_rescans_total{reason=\"overflow\"}",
    "dropline_stage_seconds_count{stage=\"read\"}",
    "dropline_stage_seconds_count{stage=\"entities\"}",
    "dropline_queue_depth{stage=\"read\"}",
    "dropline_queue_depth{stage=\"sink\"}",
    "dropline_files_in_flight",
    "dropline_backlog_files",
    "dropline_end_to_end_seconds_count",
    "dropline_commit_seconds_count",
    "dropline_commit_batch_files_count",
];

#[test]
fn every_series_is_there_from_start_and_counters_agree_with_the_output() {
    let ws = Workspace::new();
    let port = free_port();
    let cfg = config_with_metrics(&ws, port, true, "");
    // No interval rescan may count before the first scrape, however slow the machine.
    util::edit_config(&cfg, |t| {
        t.replace("rescan_interval = \"1s\"", "rescan_interval = \"1h\"")
    });
    // Debug builds hold readiness back for a second after the start-up scan (a test hook; the
    // model is read in place, so a daemon is otherwise ready before the first poll).
    let mut d = spawn_quiet_with(&cfg, &[("DROPLINE_TEST_HOLD_READY_MS", "1000")]);

    // The listener is up before the daemon is ready: not ready yet, but live.
    let (before, live) = wait_ready(port);
    if cfg!(debug_assertions) {
        assert!(
            before.contains(&503),
            "ready answered 200 at once: {before:?}"
        );
    }
    assert!(
        before.is_empty() || live,
        "/health/live did not answer 200 while not ready: {before:?}"
    );
    assert!(before.iter().all(|c| *c == 503), "{before:?}");

    let text = scrape(port);
    for series in SERIES_AT_START {
        assert_eq!(metric(&text, series), Some(0.0), "{series} at start");
    }
    let build = format!(
        "dropline_build_info{{version=\"{}\",commit=",
        env!("CARGO_PKG_VERSION")
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with(&build) && l.ends_with(" 1")),
        "no build_info gauge"
    );
    // CPU time may still read 0 at the clock tick's resolution: a fast start-up uses < 10 ms.
    assert!(
        metric(&text, "process_cpu_seconds_total").is_some_and(|v| v >= 0.0),
        "process_cpu_seconds_total missing"
    );
    for series in [
        "process_resident_memory_bytes",
        "process_open_fds",
        "process_start_time_seconds",
    ] {
        assert!(
            metric(&text, series).is_some_and(|v| v > 0.0),
            "{series} missing"
        );
    }
    assert_eq!(
        metric(&text, "dropline_rescans_total{reason=\"startup\"}"),
        Some(1.0)
    );
    // Count buckets for batch sizes, not latency buckets.
    assert!(text.contains("dropline_commit_batch_files_bucket{le=\"1024\"} 0"));
    assert!(!text.contains("dropline_commit_batch_files_bucket{le=\"0.0001\"}"));

    let mut files = seed_files();
    files.push((files[0].0.replace(".txt", "-copy.txt"), files[0].1.clone()));
    files.push(("binary.txt".into(), b"\0\x01\x02 not text".to_vec()));
    for (name, bytes) in &files {
        ws.drop_file(name, bytes);
    }
    let recs = ws.wait_for(files.len(), WAIT);
    assert_eq!(recs.len(), files.len());
    let n = files.len() as f64;
    // The sink records end-to-end latency last for each file: once it counts them all, every
    // other counter is final. A scrape is no snapshot (the exporter reads counters one by one,
    // histograms last), so the counters are read from a scrape taken after that one.
    wait_metric(port, "dropline_end_to_end_seconds_count", n);
    let text = scrape(port);
    // The gauges settle after the last commit: the in-flight count is sampled each second, and
    // the watcher may still be skipping a late event for a file already admitted.
    let backlog = wait_metric(port, "dropline_backlog_files", 0.0);
    let in_flight = wait_metric(port, "dropline_files_in_flight", 0.0);
    signal(&d, "TERM");
    assert!(wait_exit(&mut d, WAIT).is_some_and(|s| s.success()));

    // One record per dropped file, none twice.
    let mut names: Vec<String> = recs.iter().map(util::record_name).collect();
    names.sort();
    let mut dropped: Vec<String> = files.iter().map(|(name, _)| name.clone()).collect();
    dropped.sort();
    assert_eq!(names, dropped);
    let docs: Vec<&Value> = recs.iter().filter(|r| r["type"] == "document").collect();
    let errors = recs.len() - docs.len();
    assert_eq!(errors, 1);
    assert_eq!(metric(&text, "dropline_files_processed_total"), Some(n));
    // Admission counts a file before it is read, so this holds once the records are out.
    assert_eq!(
        metric(&text, "dropline_files_discovered_total"),
        Some(n),
        "{text}"
    );
    assert_eq!(
        metric(&text, "dropline_files_failed_total{stage=\"read\"}"),
        Some(errors as f64)
    );
    let mut by_status: HashMap<String, f64> = HashMap::new();
    let mut by_label: HashMap<String, f64> = HashMap::new();
    for d in &docs {
        *by_status
            .entry(d["dedup"]["status"].as_str().unwrap().into())
            .or_default() += 1.0;
        for e in d["entities"].as_array().unwrap() {
            *by_label
                .entry(e["label"].as_str().unwrap().into())
                .or_default() += 1.0;
        }
    }
    assert_eq!(by_status.get("exact_duplicate"), Some(&1.0));
    for (status, count) in &by_status {
        let series = format!("dropline_documents_emitted_total{{status=\"{status}\"}}");
        assert_eq!(metric(&text, &series), Some(*count), "{series}");
    }
    assert!(by_label.values().sum::<f64>() > 0.0);
    for (label, count) in &by_label {
        let series = format!("dropline_entities_total{{label=\"{label}\"}}");
        assert_eq!(metric(&text, &series), Some(*count), "{series}");
    }
    let bytes: u64 = docs
        .iter()
        .map(|d| d["source"]["bytes"].as_u64().unwrap())
        .sum();
    assert_eq!(
        metric(&text, "dropline_bytes_read_total"),
        Some(bytes as f64)
    );
    assert_eq!(metric(&text, "dropline_end_to_end_seconds_count"), Some(n));
    assert_eq!(metric(&text, "dropline_commit_batch_files_sum"), Some(n));
    for stage in ["read", "strip", "dedup", "entities"] {
        let series = format!("dropline_stage_seconds_count{{stage=\"{stage}\"}}");
        assert!(
            metric(&text, &series).is_some_and(|c| c >= docs.len() as f64),
            "{series}"
        );
    }
    assert_eq!(metric(&backlog, "dropline_backlog_files"), Some(0.0));
    assert_eq!(metric(&in_flight, "dropline_files_in_flight"), Some(0.0));
}

#[test]
fn backlog_rises_then_falls_to_zero_and_latency_counts_the_wait_in_the_folder() {
    let ws = Workspace::new();
    let port = free_port();
    // Two files in flight at a time: the rest of the burst waits in the folder.
    let cfg = config_with_metrics(&ws, port, false, "[pipeline]\nmax_in_flight = 2\n");
    let n = 400;
    for i in 0..n {
        ws.drop_file(
            &format!("{i:04}.txt"),
            format!(
                "Headline {i}\nBody of article number {i}, unique words {}.",
                i * 7919
            )
            .as_bytes(),
        );
    }
    // Every file has waited at least this long when the daemon starts.
    let waited = Duration::from_millis(1500);
    std::thread::sleep(waited);
    let mut d = spawn_quiet(&cfg);
    let deadline = Instant::now() + WAIT;
    let (mut max_backlog, mut last) = (0.0f64, String::new());
    while Instant::now() < deadline {
        if let Some(resp) = http_get(port, "/metrics") {
            last = body(&resp).to_string();
            let backlog = metric(&last, "dropline_backlog_files").unwrap_or(0.0);
            max_backlog = max_backlog.max(backlog);
            if metric(&last, "dropline_end_to_end_seconds_count") == Some(n as f64)
                && backlog == 0.0
            {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    // A scrape is no snapshot: the counters are read from one taken after the last commit.
    let done = scrape(port);
    signal(&d, "TERM");
    assert!(wait_exit(&mut d, WAIT).is_some_and(|s| s.success()));
    assert_eq!(ws.records().len(), n);
    assert_eq!(
        metric(&done, "dropline_files_processed_total"),
        Some(n as f64)
    );
    assert_eq!(
        metric(&last, "dropline_backlog_files"),
        Some(0.0),
        "backlog never drained"
    );
    assert!(
        max_backlog >= 100.0,
        "the burst never showed as a backlog (max {max_backlog})"
    );
    // Latency counts from the file landing, so nothing is faster than the wait before start.
    assert_eq!(
        metric(&last, "dropline_end_to_end_seconds_count"),
        Some(n as f64)
    );
    assert_eq!(
        metric(&last, "dropline_end_to_end_seconds_bucket{le=\"1.21\"}"),
        Some(0.0),
        "some files' latency left out their wait in the folder"
    );
}

#[test]
fn idle_connections_cannot_exhaust_descriptors() {
    let ws = Workspace::new();
    let port = free_port();
    let cfg = config_with_metrics(&ws, port, false, "");
    raise_fd_limit(4096);
    let mut d = spawn_quiet(&cfg);
    wait_ready(port);
    let idle: Vec<_> = (0..1100)
        .filter_map(|_| std::net::TcpStream::connect(("127.0.0.1", port)).ok())
        .collect();
    assert!(idle.len() > 1000, "only {} connections opened", idle.len());
    std::thread::sleep(Duration::from_millis(500));
    let fds = std::fs::read_dir(format!("/proc/{}/fd", d.id()))
        .unwrap()
        .count();
    assert!(
        fds < 400,
        "the daemon holds {fds} descriptors for idle clients"
    );
    // Idle clients are closed after the header timeout; scrapes are served again.
    let served = util::wait::poll(
        Duration::from_secs(20),
        Duration::from_millis(200),
        || http_get(port, "/health/live").and_then(|r| status_code(&r)) == Some(200),
        |&ok| ok,
    );
    drop(idle);
    signal(&d, "TERM");
    assert!(wait_exit(&mut d, WAIT).is_some_and(|s| s.success()));
    assert!(served, "no request served while idle clients were held");
}

/// Raises this process's soft descriptor limit towards `want` (within the hard limit), so the
/// test can hold 1,100 client sockets where the default soft limit is 1,024.
fn raise_fd_limit(want: u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed to them.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < want {
            lim.rlim_cur = want.min(lim.rlim_max);
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

#[test]
fn a_real_prometheus_scrapes_the_processed_count() {
    if !Path::new(PROMETHEUS).exists() {
        eprintln!(
            "\n\n!!! SKIPPED: {PROMETHEUS} not installed (apt-get install prometheus); \
             .ci/run installs it so CI runs this test !!!\n"
        );
        return;
    }
    let ws = Workspace::new();
    let port = free_port();
    let cfg = config_with_metrics(&ws, port, false, "");
    let mut d = spawn_quiet(&cfg);
    wait_ready(port);
    let prom = Prometheus::start(port);
    let files = seed_files();
    for (name, bytes) in &files {
        ws.drop_file(name, bytes);
    }
    assert_eq!(ws.wait_for(files.len(), WAIT).len(), files.len());
    let processed = util::wait::poll(
        WAIT,
        Duration::from_millis(250),
        || prom.query("dropline_files_processed_total"),
        |&p| p == Some(files.len() as f64),
    );
    let build = prom.query("dropline_build_info");
    let up = prom.query("up{job=\"dropline\"}");
    signal(&d, "TERM");
    assert!(wait_exit(&mut d, WAIT).is_some_and(|s| s.success()));
    assert_eq!(processed, Some(files.len() as f64));
    assert_eq!(build, Some(1.0));
    assert_eq!(up, Some(1.0));
}

#[test]
fn systemd_hears_ready_once_ready_and_watchdog_pings() {
    let ws = Workspace::new();
    let port = free_port();
    let cfg = config_with_metrics(&ws, port, false, "");
    let sock_path = ws.tmp.path().join("notify.sock");
    let sock = std::os::unix::net::UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    // systemd names the main process in WATCHDOG_PID: `exec` keeps the shell's pid.
    let mut d = Command::new("sh")
        .arg("-c")
        .arg("WATCHDOG_PID=$$ exec \"$0\" run --config \"$1\"")
        .arg(bin())
        .arg(&cfg)
        .env("RUST_LOG", "warn")
        .env("NOTIFY_SOCKET", &sock_path)
        .env("WATCHDOG_USEC", "200000")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 256];
    while !(got.iter().any(|m| m == "READY=1")
        && got.iter().filter(|m| *m == "WATCHDOG=1").count() >= 2)
    {
        let Ok(n) = sock.recv(&mut buf) else { break };
        let msg = String::from_utf8_lossy(&buf[..n]).trim().to_string();
        if msg == "READY=1" {
            // Readiness is announced only once the endpoint says so.
            let ready = http_get(port, "/health/ready").and_then(|r| status_code(&r));
            assert_eq!(ready, Some(200), "READY=1 sent before /health/ready");
        }
        got.push(msg);
    }
    signal(&d, "TERM");
    let stopping = loop {
        let Ok(n) = sock.recv(&mut buf) else {
            break false;
        };
        if String::from_utf8_lossy(&buf[..n]).trim() == "STOPPING=1" {
            break true;
        }
    };
    assert!(wait_exit(&mut d, WAIT).is_some_and(|s| s.success()));
    assert!(stopping, "no STOPPING=1 on SIGTERM");
    assert!(got.iter().any(|m| m == "READY=1"), "{got:?}");
    assert!(
        got.iter().filter(|m| *m == "WATCHDOG=1").count() >= 2,
        "{got:?}"
    );
}

#[test]
fn burst_line_counts_the_whole_burst_and_idle_summaries_are_skipped() {
    let ws = Workspace::new();
    let port = free_port();
    let cfg = config_with_metrics(
        &ws,
        port,
        false,
        "[pipeline]\nmax_in_flight = 2\nsummary_interval = \"1s\"\n[log]\nformat = \"json\"\n",
    );
    let n = 400;
    for i in 0..n {
        ws.drop_file(
            &format!("{i:04}.txt"),
            format!(
                "Headline {i}\nBody of article number {i}, words {}.",
                i * 7919
            )
            .as_bytes(),
        );
    }
    let mut d = Command::new(bin())
        .args(["run", "--config"])
        .arg(&cfg)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = d.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<String>>()
    });
    assert_eq!(ws.wait_for(n, WAIT).len(), n);
    // Idle for a few summary intervals.
    std::thread::sleep(Duration::from_secs(4));
    signal(&d, "TERM");
    assert!(wait_exit(&mut d, WAIT).is_some_and(|s| s.success()));
    let logs: Vec<Value> = reader
        .join()
        .unwrap()
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    let message = |l: &Value| l["fields"]["message"].as_str().unwrap_or("").to_string();
    let bursts: Vec<&Value> = logs
        .iter()
        .filter(|l| message(l) == "burst committed")
        .collect();
    assert_eq!(bursts.len(), 1, "one burst, one line: {bursts:?}");
    let f = &bursts[0]["fields"];
    assert_eq!(f["files"].as_u64(), Some(n as u64), "{f}");
    let (rate, secs) = (f["docs_per_s"].as_f64(), f["elapsed_s"].as_f64());
    let (rate, secs) = (
        rate.expect("docs_per_s a number"),
        secs.expect("elapsed_s a number"),
    );
    assert!((rate * secs - n as f64).abs() < n as f64 * 0.02, "{f}");
    // Summaries mid-burst (the interval is 1 s), none once idle.
    let summaries: Vec<u64> = logs
        .iter()
        .filter(|l| message(l) == "summary")
        .map(|l| l["fields"]["files_total"].as_u64().expect("a number"))
        .collect();
    eprintln!("burst {f}; summaries {summaries:?}");
    let at_end = summaries.iter().filter(|f| **f == n as u64).count();
    assert_eq!(at_end, 1, "idle summaries logged: {summaries:?}");
}
