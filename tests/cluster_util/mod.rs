//! Shared harness of the cluster tests (`tests/cluster*.rs`): a 3-node JetStream cluster
//! (nats-server on loopback ports, R3 streams), dropline nodes as child processes that can be
//! killed with SIGKILL, and readers of the output stream and the file sink.
//!
//! `nats-server` must be on PATH (CI installs it with apt); without it these tests fail, they
//! do not skip.
#![allow(dead_code)] // each test file uses its own subset

mod checkpoint;
mod files;
mod intake;
mod lease;
mod started;
#[allow(unused_imports)] // each test file uses its own subset
pub use {checkpoint::*, files::*, intake::*, lease::*, started::*};

use crate::util;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Config lines that switch the entity stage off (its model loads slowly in debug builds).
pub const NO_ENTITIES: &str = "[entities]\nenabled = false\n";

/// A 3-node JetStream cluster on free loopback ports, each node with its own store dir.
pub struct NatsCluster {
    dir: PathBuf,
    ports: Vec<(u16, u16)>,
    servers: Vec<Option<Child>>,
}

fn nats_server() -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("nats-server"))
            .find(|p| p.is_file())
    });
    found.expect(
        "nats-server is not installed: the cluster tests need it (apt-get install -y nats-server)",
    )
}

impl NatsCluster {
    pub fn start(dir: &Path) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let ports = (0..3)
            .map(|_| (util::free_port(), util::free_port()))
            .collect();
        let mut c = NatsCluster {
            dir: dir.to_path_buf(),
            ports,
            servers: Vec::new(),
        };
        for i in 0..3 {
            let child = c.spawn(i);
            c.servers.push(Some(child));
        }
        c.wait_ready();
        c
    }

    fn spawn(&self, i: usize) -> Child {
        let (client, route) = self.ports[i];
        let routes: Vec<String> = self
            .ports
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, (_, r))| format!("nats://127.0.0.1:{r}"))
            .collect();
        let store = self.dir.join(format!("n{i}"));
        let log = std::fs::File::create(self.dir.join(format!("n{i}.log"))).unwrap();
        Command::new(nats_server())
            .args(["-a", "127.0.0.1", "-p", &client.to_string(), "-js"])
            .args(["-sd", store.to_str().unwrap()])
            .args(["--server_name", &format!("n{i}")])
            .args(["--cluster_name", "droplinetest"])
            .args(["--cluster", &format!("nats://127.0.0.1:{route}")])
            .args(["--routes", &routes.join(",")])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start nats-server")
    }

    pub fn url(&self) -> String {
        self.ports
            .iter()
            .map(|(c, _)| format!("nats://127.0.0.1:{c}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Waits until the JetStream meta group can place an R3 stream.
    fn wait_ready(&self) {
        with_js(&self.url(), |js| async move {
            // Generous: a loaded 2-core machine (a build beside the tests) elects slowly.
            let deadline = Instant::now() + Duration::from_secs(120);
            loop {
                assert!(
                    Instant::now() < deadline,
                    "JetStream cluster did not form in 120 s; ports {:?}; server logs:\n{}",
                    self.ports,
                    self.log_tails()
                );
                let made = js
                    .create_stream(async_nats::jetstream::stream::Config {
                        name: "READY".into(),
                        subjects: vec!["ready.check".into()],
                        num_replicas: 3,
                        ..Default::default()
                    })
                    .await;
                if made.is_ok() {
                    let _ = js.delete_stream("READY").await;
                    return;
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        });
    }

    /// The last lines of each server's log, for a failure message.
    fn log_tails(&self) -> String {
        (0..self.ports.len())
            .map(|i| {
                let log =
                    std::fs::read_to_string(self.dir.join(format!("n{i}.log"))).unwrap_or_default();
                let lines: Vec<&str> = log.lines().collect();
                let tail = lines[lines.len().saturating_sub(8)..].join("\n");
                format!("--- n{i}\n{tail}\n")
            })
            .collect()
    }

    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.servers[i].take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The running servers' process ids.
    pub fn pids(&self) -> Vec<u32> {
        self.servers.iter().flatten().map(Child::id).collect()
    }

    /// Pins every server (all its threads) to the CPUs `cpus` (a `taskset` list).
    pub fn pin(&self, cpus: &str) {
        for c in self.servers.iter().flatten() {
            pin(c.id(), cpus);
        }
    }

    pub fn restart(&mut self, i: usize) {
        let child = self.spawn(i);
        self.servers[i] = Some(child);
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for i in 0..self.servers.len() {
            self.kill(i);
        }
    }
}

/// Runs `f` with a JetStream context on the servers of `url`, on a runtime of its own.
pub fn with_js<T, F, Fut>(url: &str, f: F) -> T
where
    F: FnOnce(async_nats::jetstream::Context) -> Fut,
    Fut: Future<Output = T>,
{
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let urls: Vec<&str> = url.split(',').collect();
        let client = async_nats::ConnectOptions::new()
            .retry_on_initial_connect()
            .connect(urls.as_slice())
            .await
            .unwrap();
        f(async_nats::jetstream::new(client)).await
    })
}

/// One test: a temp dir, a 3-node JetStream cluster and a drop folder.
pub struct Bed {
    pub nats: NatsCluster,
    pub drop: PathBuf,
    pub url: String,
    pub tmp: tempfile::TempDir,
}

impl Bed {
    pub fn start() -> Bed {
        let tmp = tempfile::tempdir().unwrap();
        let nats = NatsCluster::start(&tmp.path().join("nats"));
        let drop = tmp.path().join("drop");
        std::fs::create_dir(&drop).unwrap();
        let url = nats.url();
        Bed {
            nats,
            drop,
            url,
            tmp,
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    /// Writes the config of node `name` (cluster name `t`) and returns its path.
    pub fn config(&self, name: &str, role: &str, out: Option<&Path>, extra: &str) -> PathBuf {
        node_config(&self.path(name), &self.url, role, &self.drop, out, extra)
    }

    /// Starts node `name`; returns it and its config.
    pub fn node(&self, name: &str, role: &str, out: Option<&Path>, extra: &str) -> (Node, PathBuf) {
        let config = self.config(name, role, out, extra);
        (Node::start(&self.path(name), &config), config)
    }
}

impl Drop for Bed {
    /// A failed test keeps its folder (the servers' and nodes' logs and stores) and prints
    /// where it is, with the servers' last log lines.
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.tmp.disable_cleanup(true);
            eprintln!(
                "test folder kept: {}\n{}",
                self.tmp.path().display(),
                self.nats.log_tails()
            );
        }
    }
}

/// The binary the nodes run: `DROPLINE_BIN` when set (the figures run a release build from
/// the debug test binary), else the one under test.
pub fn dropline_bin() -> String {
    std::env::var("DROPLINE_BIN").unwrap_or_else(|_| util::bin().to_string())
}

/// Writes a node config in `dir`: `role`, the drop folder, and a file sink when `out` is given.
pub fn node_config(
    dir: &Path,
    url: &str,
    role: &str,
    drop: &Path,
    out: Option<&Path>,
    extra: &str,
) -> PathBuf {
    std::fs::create_dir_all(dir.join("state")).unwrap();
    let output = match out {
        Some(p) => format!("[output]\nkind = \"file\"\npath = \"{}\"\n", p.display()),
        None => String::new(),
    };
    let text = format!(
        "[source]\ndir = \"{drop}\"\nsettle = \"200ms\"\nrescan_interval = \"500ms\"\n{output}\
         [state]\ndir = \"{state}\"\n[metrics]\nenabled = false\n[strip]\nsource_memory = false\n\
         {extra}[cluster]\nurl = \"{url}\"\nrole = \"{role}\"\nname = \"t\"\n",
        drop = drop.display(),
        state = dir.join("state").display(),
    );
    let path = dir.join("pipeline.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// One dropline node: its own folder with state dir and config, run as a child process.
pub struct Node {
    pub dir: PathBuf,
    child: Option<Child>,
}

impl Node {
    pub fn start(dir: &Path, config: &Path) -> Node {
        Self::start_with(dir, config, &[])
    }

    /// Starts a node with `env` added to its environment (the debug builds' fault hooks).
    pub fn start_with(dir: &Path, config: &Path, env: &[(&str, &str)]) -> Node {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("node.log"))
            .unwrap();
        let child = Command::new(dropline_bin())
            .args(["run", "--config", config.to_str().unwrap()])
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start dropline");
        Node {
            dir: dir.to_path_buf(),
            child: Some(child),
        }
    }

    /// The process id, 0 once killed.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("node.log")).unwrap_or_default()
    }

    /// Pins the node (all its threads) to the CPUs `cpus` (a `taskset` list).
    pub fn pin(&self, cpus: &str) {
        pin(self.pid(), cpus);
    }

    /// Whether the process is still running (false once it exited or was killed).
    pub fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Pins process `pid` and its threads to `cpus` with `taskset`.
fn pin(pid: u32, cpus: &str) {
    let ok = Command::new("taskset")
        .args(["-a", "-c", "-p", cpus, &pid.to_string()])
        .stdout(Stdio::null())
        .status()
        .expect("run taskset");
    assert!(ok.success(), "taskset of {pid} failed");
}

/// Runs `dropline cluster <args>` against `config` and returns stdout.
pub fn cluster_cmd(config: &Path, args: &[&str]) -> String {
    let out = Command::new(util::bin())
        .arg("cluster")
        .args(args)
        .args(["--config", config.to_str().unwrap()])
        .output()
        .expect("run dropline cluster");
    assert!(
        out.status.success(),
        "dropline cluster {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The output stream's lines (`cluster tail --once`), retried while the servers elect a
/// new stream leader after a kill (requests time out meanwhile).
pub fn tail(config: &Path) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = Command::new(util::bin())
            .args(["cluster", "tail", "--once", "--config"])
            .arg(config)
            .output()
            .expect("run dropline cluster tail");
        if out.status.success() {
            return util::stdout_records(&out);
        }
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            Instant::now() < deadline,
            "cluster tail keeps failing: {err}"
        );
        eprintln!("cluster tail failed, retrying: {err}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Waits until the output stream holds `n` lines (or fails after `limit`, printing the logs).
pub fn wait_for_lines(config: &Path, n: usize, limit: Duration, nodes: &[&Node]) -> Vec<Value> {
    let deadline = Instant::now() + limit;
    loop {
        let lines = tail(config);
        if lines.len() >= n {
            return lines;
        }
        if Instant::now() > deadline {
            for node in nodes {
                eprintln!("--- {} ---\n{}", node.dir.display(), node.log());
            }
            panic!("{} of {n} lines after {limit:?}", lines.len());
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Waits until the file sink at `path` holds `n` lines (returns what it holds after `limit`).
pub fn wait_for_file(path: &Path, n: usize, limit: Duration) -> Vec<Value> {
    let deadline = Instant::now() + limit;
    loop {
        let lines = util::read_records(path);
        if lines.len() >= n || Instant::now() > deadline {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Asserts every name yields exactly one line, and no other line exists.
pub fn assert_exactly_once(lines: &[Value], names: &[String]) {
    let mut seen: HashMap<String, usize> = HashMap::new();
    for l in lines {
        let path = l["source"]["path"].as_str().expect("source.path");
        let name = Path::new(path).file_name().unwrap().to_string_lossy();
        *seen.entry(name.into_owned()).or_default() += 1;
    }
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "files with more than one line: {twice:?}");
    let missing: Vec<_> = names.iter().filter(|n| !seen.contains_key(*n)).collect();
    assert!(missing.is_empty(), "files without a line: {missing:?}");
    assert_eq!(lines.len(), names.len());
    let ids: HashSet<&str> = lines
        .iter()
        .map(|l| l["line_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), lines.len(), "line ids are unique");
}

/// Runs single-node `dropline process` over `dir` with the strip memory off, as the cluster
/// runs; returns its lines.
pub fn process(dir: &Path) -> Vec<Value> {
    let out = Command::new(util::bin())
        .args(["process", "--set", "strip.source_memory=false"])
        .args(["--set", "metrics.enabled=false"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    util::stdout_records(&out)
}

/// The output stream of cluster `name`, headers only: per line, its headers and the Unix ms
/// the servers stored it at.
pub fn out_headers(url: &str, name: &str) -> Vec<(HashMap<String, String>, u64)> {
    use futures_util::StreamExt;
    let stream = format!("{}_OUT", name.to_uppercase());
    with_js(url, |js| async move {
        let mut stream = js.get_stream(stream).await.unwrap();
        let last = stream.info().await.unwrap().state.last_sequence;
        let mut out = Vec::new();
        if last == 0 {
            return out;
        }
        let consumer = stream
            .create_consumer(async_nats::jetstream::consumer::pull::OrderedConfig {
                headers_only: true,
                ..Default::default()
            })
            .await
            .unwrap();
        let mut messages = consumer.messages().await.unwrap();
        while let Some(Ok(msg)) = messages.next().await {
            let info = msg.info().unwrap();
            let committed = (info.published.unix_timestamp_nanos() / 1_000_000) as u64;
            let seq = info.stream_sequence;
            let headers = msg
                .headers
                .iter()
                .flat_map(|h| h.iter())
                .filter_map(|(k, v)| Some((k.to_string(), v.first()?.as_str().to_string())))
                .collect();
            out.push((headers, committed));
            if seq >= last {
                break;
            }
        }
        out
    })
}
