//! Shared helpers for the integration tests: a temp drop folder, configs, and the real binary.
#![allow(dead_code)] // each test file uses its own subset

pub mod listener;
pub mod prometheus;
pub mod wait;

use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Rewrites a test's config file with `edit` and returns the new text.
pub fn edit_config(cfg: &Path, edit: impl FnOnce(String) -> String) -> String {
    let text = edit(std::fs::read_to_string(cfg).unwrap());
    std::fs::write(cfg, &text).unwrap();
    text
}

/// Path of the binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_dropline")
}

/// Folder of the five sample articles.
pub fn seeds() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds")
}

/// A temporary workspace: `drop/`, `state/`, `out.jsonl` and a config.
pub struct Workspace {
    pub tmp: tempfile::TempDir,
}

impl Workspace {
    pub fn new() -> Self {
        let tmp = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir(tmp.path().join("drop")).unwrap();
        Self { tmp }
    }

    pub fn drop_dir(&self) -> PathBuf {
        self.tmp.path().join("drop")
    }

    pub fn state_dir(&self) -> PathBuf {
        self.tmp.path().join("state")
    }

    pub fn out(&self) -> PathBuf {
        self.tmp.path().join("out.jsonl")
    }

    /// Writes a config for a file sink with the given extra TOML appended under each section.
    pub fn config(&self, extra: &str) -> PathBuf {
        let text = format!(
            r#"[source]
dir = "{drop}"
settle = "200ms"
rescan_interval = "1s"
[output]
kind = "file"
path = "{out}"
[state]
dir = "{state}"
[metrics]
enabled = false
{entities}{extra}
"#,
            drop = self.drop_dir().display(),
            out = self.out().display(),
            state = self.state_dir().display(),
            // The daemon tests are about the spine; the entity model loads slowly in debug builds.
            entities = if extra.contains("[entities]") {
                ""
            } else {
                "[entities]\nenabled = false\n"
            },
        );
        let path = self.tmp.path().join("pipeline.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Drops `body` as `name` the way scrapers should: write a temp name, then rename.
    pub fn drop_file(&self, name: &str, body: &[u8]) {
        let tmp = self.drop_dir().join(format!(".{name}.tmp"));
        std::fs::write(&tmp, body).unwrap();
        std::fs::rename(&tmp, self.drop_dir().join(name)).unwrap();
    }

    /// Returns the output records, failing on any line that is not a whole JSON object.
    pub fn records(&self) -> Vec<Value> {
        read_records(&self.out())
    }

    /// Waits until the output holds `n` records or `timeout` passes; returns the records.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Value> {
        let every = Duration::from_millis(20);
        wait::poll(timeout, every, || self.records(), |recs| recs.len() >= n)
    }

    /// Starts `dropline run` on this workspace's config and returns once it watches the folder.
    pub fn spawn_daemon(&self, config: &Path, args: &[&str]) -> Child {
        let mut cmd = Command::new(bin());
        cmd.arg("run").arg("--config").arg(config).args(args);
        spawn_watching(cmd)
    }

    /// Runs `dropline run --once` to completion.
    pub fn run_once(&self, config: &Path) -> Output {
        Command::new(bin())
            .args(["run", "--once", "--config"])
            .arg(config)
            .env("RUST_LOG", "warn")
            .output()
            .expect("run dropline")
    }
}

/// Spawns a `dropline run` command and waits for its "watching drop folder" log line; stderr
/// keeps being drained (and echoed) so the daemon never blocks on it.
pub fn spawn_watching(cmd: Command) -> Child {
    spawn_logged(cmd).0
}

/// Like [`spawn_watching`], and keeps every stderr line for [`wait_log`].
pub fn spawn_logged(mut cmd: Command) -> (Child, Arc<Mutex<Vec<String>>>) {
    let mut child = cmd
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn dropline");
    let stderr = child.stderr.take().expect("piped stderr");
    let log = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    let lines = Arc::clone(&log);
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if line.contains("watching drop folder") {
                let _ = tx.send(());
            }
            if line.contains("WARN") || line.contains("ERROR") || line.starts_with("dropline:") {
                eprintln!("daemon: {line}");
            }
            lines.lock().unwrap().push(line);
        }
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("daemon never started watching");
    (child, log)
}

/// Waits until a log line contains `needle`; returns whether one did within `timeout`.
pub fn wait_log(log: &Mutex<Vec<String>>, needle: &str, timeout: Duration) -> bool {
    let seen = || log.lock().unwrap().iter().any(|l| l.contains(needle));
    wait::poll(timeout, Duration::from_millis(20), seen, |&b| b)
}

/// Returns the number environment variable `name` holds, or `default` when unset or not a number.
pub fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Returns the texts of the files directly in `dir`, in sorted path order.
pub fn read_texts(dir: impl AsRef<Path>) -> Vec<String> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect()
}

/// Reads JSON Lines, panicking on a torn or invalid line.
pub fn read_records(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad line {l:?}: {e}")))
        .collect()
}

/// Runs `dropline` with `args`, returning its output.
pub fn dropline(args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run dropline")
}

/// Parses stdout as JSON Lines.
pub fn stdout_records(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad line {l:?}: {e}")))
        .collect()
}

/// Returns JSON Lines output with each record's `processed_at` removed: the bytes that must
/// not depend on timing or worker counts.
pub fn without_timestamps(stdout: &[u8]) -> String {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|l| {
            let mut v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}"));
            v.as_object_mut().map(|o| o.remove("processed_at"));
            v.to_string() + "\n"
        })
        .collect()
}

/// Sends a signal to a child by pid.
pub fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(child.id().to_string())
        .status()
        .expect("kill")
        .success();
    assert!(ok, "kill -{sig} failed");
}

/// Waits for a child to exit within `timeout`, killing it if it does not.
pub fn wait_exit(child: &mut Child, timeout: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Returns a free loopback port, never the same one twice in a test process, and below Linux's
/// ephemeral range (32768-60999): a port the kernel hands out for `:0` can be taken by any
/// outgoing connection (a nats-server route, a client) before the server that was given it
/// binds, which is how a 3-node test cluster failed to form under load.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const LOW: u32 = 20_000;
    const SPAN: u32 = 12_000;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    // Test binaries run one after another; a start per process keeps a rerun off the ports a
    // dying server of the last one may still hold.
    let start = (std::process::id() % 97) * 120;
    for _ in 0..SPAN {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = (LOW + (start + n) % SPAN) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port in {LOW}..{}", LOW + SPAN)
}

/// Fetches `path` over HTTP/1.0 from 127.0.0.1:`port`; `None` while nothing answers.
pub fn http_get(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    Some(body)
}

/// Returns the value of a metric line `name{labels} value` (or `name value`).
pub fn metric(text: &str, name_and_labels: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (k, v) = l.rsplit_once(' ')?;
        (k == name_and_labels).then(|| v.parse().ok()).flatten()
    })
}

/// Runs `dropline run --once --config CONFIG ARGS...` to completion.
pub fn run_once_with(config: &Path, args: &[&str]) -> Output {
    Command::new(bin())
        .args(["run", "--once", "--config"])
        .arg(config)
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run dropline")
}

/// Returns the file name of a record's `source.path`.
pub fn record_name(r: &Value) -> String {
    let path = r["source"]["path"].as_str().unwrap_or_default();
    path.rsplit('/').next().unwrap_or_default().to_string()
}

/// Returns the `source.path` of every record in the JSON Lines file at `path` (panics on a
/// torn line).
pub fn record_paths(path: &Path) -> Vec<String> {
    read_records(path)
        .iter()
        .map(|r| r["source"]["path"].as_str().unwrap_or_default().to_string())
        .collect()
}
