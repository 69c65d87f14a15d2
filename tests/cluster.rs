//! The cluster mode against real servers: a 3-node JetStream cluster (nats-server on loopback
//! ports, R3 streams) and dropline nodes as child processes, killed with SIGKILL mid-run.
//!
//! `nats-server` must be on PATH (CI installs it with apt); without it these tests fail, they
//! do not skip.

mod util;

use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A 3-node JetStream cluster on free loopback ports, each node with its own store dir.
struct NatsCluster {
    dir: PathBuf,
    ports: Vec<(u16, u16)>,
    servers: Vec<Option<Child>>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
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
    fn start(dir: &Path) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let ports: Vec<(u16, u16)> = (0..3).map(|_| (free_port(), free_port())).collect();
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

    fn url(&self) -> String {
        self.ports
            .iter()
            .map(|(c, _)| format!("nats://127.0.0.1:{c}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Waits until the JetStream meta group can place an R3 stream.
    fn wait_ready(&self) {
        let url = self.url();
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                assert!(
                    Instant::now() < deadline,
                    "JetStream cluster did not form in 60 s"
                );
                let urls: Vec<&str> = url.split(',').collect();
                if let Ok(client) = async_nats::connect(urls.as_slice()).await {
                    let js = async_nats::jetstream::new(client);
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
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        });
    }

    fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.servers[i].take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn restart(&mut self, i: usize) {
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

/// One dropline node: its own folder with state dir and config, run as a child process.
struct Node {
    dir: PathBuf,
    child: Option<Child>,
}

/// Config lines that switch the entity stage off (its model loads slowly in debug builds).
const NO_ENTITIES: &str = "[entities]\nenabled = false\n";

/// Writes a node config: `role`, the drop folder, and a file sink when `out` is given.
/// The binary the nodes run: `DROPLINE_BIN` when set (the figures run a release build from
/// the debug test binary), else the one under test.
fn dropline_bin() -> String {
    std::env::var("DROPLINE_BIN").unwrap_or_else(|_| util::bin().to_string())
}

fn node_config(
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

impl Node {
    fn start(dir: &Path, config: &Path) -> Node {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("node.log"))
            .unwrap();
        let child = Command::new(dropline_bin())
            .args(["run", "--config", config.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start dropline");
        Node {
            dir: dir.to_path_buf(),
            child: Some(child),
        }
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("node.log")).unwrap_or_default()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Runs `dropline cluster <args>` against `config` and returns stdout.
fn cluster_cmd(config: &Path, args: &[&str]) -> String {
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
fn tail(config: &Path) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = Command::new(util::bin())
            .args([
                "cluster",
                "tail",
                "--once",
                "--config",
                config.to_str().unwrap(),
            ])
            .output()
            .expect("run dropline cluster tail");
        if out.status.success() {
            return String::from_utf8(out.stdout)
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).expect("tail prints JSON lines"))
                .collect();
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
fn wait_for_lines(config: &Path, n: usize, limit: Duration, nodes: &[&Node]) -> Vec<Value> {
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

/// A deterministic article: sentences drawn from a word list by a small LCG.
fn article(seed: u64) -> String {
    const WORDS: &[&str] = &[
        "minister", "council", "bridge", "river", "budget", "election", "harbour", "police",
        "school", "market", "storm", "court", "hospital", "railway", "festival", "union", "mayor",
        "museum", "factory", "airport", "farmers", "teachers", "rates", "housing",
    ];
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut next = || {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (x >> 33) as usize
    };
    let mut s = format!("Report number {seed}\n\n");
    for _ in 0..6 {
        let n = 8 + next() % 8;
        let words: Vec<&str> = (0..n).map(|_| WORDS[next() % WORDS.len()]).collect();
        s.push_str(&format!(
            "The {} said on day {} that {}. ",
            words[0],
            next() % 28,
            words[1..].join(" ")
        ));
    }
    s.push('\n');
    s
}

/// Drops `n` files (every tenth an exact copy of an earlier one) and returns their names.
fn drop_files(drop: &Path, n: usize, from: usize) -> Vec<String> {
    let mut names = Vec::new();
    for i in from..from + n {
        let body = if i % 10 == 9 {
            article(i as u64 - 5)
        } else {
            article(i as u64)
        };
        let name = format!("f{i:05}.txt");
        let tmp = drop.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, body).unwrap();
        std::fs::rename(&tmp, drop.join(&name)).unwrap();
        names.push(name);
    }
    names
}

/// Asserts every name yields exactly one line, and no other line exists.
fn assert_exactly_once(lines: &[Value], names: &[String]) {
    let mut seen: HashMap<String, usize> = HashMap::new();
    for l in lines {
        let path = l["source"]["path"].as_str().expect("source.path");
        let name = Path::new(path)
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        *seen.entry(name).or_default() += 1;
    }
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "files with more than one line: {twice:?}");
    let missing: Vec<_> = names.iter().filter(|n| !seen.contains_key(*n)).collect();
    assert!(missing.is_empty(), "files without a line: {missing:?}");
    assert_eq!(lines.len(), names.len());
    let ids: std::collections::HashSet<&str> = lines
        .iter()
        .map(|l| l["line_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), lines.len(), "line ids are unique");
}

fn read_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("file sink holds JSON lines"))
        .collect()
}

/// Waits until the file sink at `path` holds `n` lines.
fn wait_for_file(path: &Path, n: usize, limit: Duration) -> Vec<Value> {
    let deadline = Instant::now() + limit;
    loop {
        let lines = read_lines(path);
        if lines.len() >= n || Instant::now() > deadline {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn intake_and_two_workers_emit_each_file_once_through_a_worker_kill() {
    let tmp = tempfile::tempdir().unwrap();
    let nats = NatsCluster::start(&tmp.path().join("nats"));
    let drop = tmp.path().join("drop");
    std::fs::create_dir(&drop).unwrap();
    let out = tmp.path().join("out.jsonl");
    let url = nats.url();
    let dirs: Vec<PathBuf> = (0..3)
        .map(|i| tmp.path().join(format!("node{i}")))
        .collect();
    let c_intake = node_config(&dirs[0], &url, "intake", &drop, Some(&out), NO_ENTITIES);
    let c_w1 = node_config(&dirs[1], &url, "worker", &drop, None, NO_ENTITIES);
    let c_w2 = node_config(&dirs[2], &url, "all", &drop, None, NO_ENTITIES);
    let mut names = drop_files(&drop, 100, 0);
    let intake = Node::start(&dirs[0], &c_intake);
    let mut w1 = Node::start(&dirs[1], &c_w1);
    let w2 = Node::start(&dirs[2], &c_w2);
    wait_for_lines(
        &c_intake,
        20,
        Duration::from_secs(120),
        &[&intake, &w1, &w2],
    );
    // A worker dies mid-run with files taken and not acknowledged; more files keep coming.
    names.extend(drop_files(&drop, 100, 100));
    std::thread::sleep(Duration::from_millis(300));
    w1.kill9();
    let lines = wait_for_lines(&c_intake, 200, Duration::from_secs(180), &[&intake, &w2]);
    assert_exactly_once(&lines, &names);
    // Exact copies are decided against the one index.
    let copies = lines
        .iter()
        .filter(|l| l["dedup"]["status"] == "exact_duplicate")
        .count();
    assert_eq!(copies, 20, "every tenth file is a copy");
    let file = wait_for_file(&out, 200, Duration::from_secs(30));
    assert_eq!(
        file, lines,
        "the file sink holds the output stream, line for line"
    );
    let status = cluster_cmd(&c_intake, &["status"]);
    assert!(
        status.contains("T_OUT") && status.contains("decider:"),
        "{status}"
    );
    assert!(status.contains("replicas 3"), "R3 streams: {status}");
    assert!(
        status.contains(&format!("-{}", w2.pid())),
        "the live nodes are listed: {status}"
    );
}

#[test]
fn decisions_match_the_single_node_mode_for_the_same_order() {
    let tmp = tempfile::tempdir().unwrap();
    let nats = NatsCluster::start(&tmp.path().join("nats"));
    let drop = tmp.path().join("drop");
    std::fs::create_dir(&drop).unwrap();
    // Seeds, near copies (a sentence added), exact copies and unrelated articles.
    let mut n = 0;
    for entry in std::fs::read_dir(util::seeds()).unwrap() {
        let body = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        std::fs::write(drop.join(format!("s{n}.txt")), &body).unwrap();
        std::fs::write(
            drop.join(format!("s{n}-near.txt")),
            format!("{body}\nOne more line was added here.\n"),
        )
        .unwrap();
        std::fs::write(drop.join(format!("s{n}-copy.txt")), &body).unwrap();
        n += 1;
    }
    drop_files(&drop, 20, 0);
    let total = std::fs::read_dir(&drop).unwrap().count();
    let dir = tmp.path().join("node");
    let config = node_config(&dir, &nats.url(), "all", &drop, None, "");
    let node = Node::start(&dir, &config);
    let lines = wait_for_lines(&config, total, Duration::from_secs(120), &[&node]);
    // The same files, named so that sorted path order is the cluster's work order.
    let again = tmp.path().join("again");
    std::fs::create_dir(&again).unwrap();
    for (i, l) in lines.iter().enumerate() {
        let path = Path::new(l["source"]["path"].as_str().unwrap());
        let name = path.file_name().unwrap().to_string_lossy();
        std::fs::copy(drop.join(&*name), again.join(format!("{i:04}-{name}"))).unwrap();
    }
    let single = Command::new(util::bin())
        .args([
            "process",
            "--set",
            "strip.source_memory=false",
            "--set",
            "metrics.enabled=false",
        ])
        .arg(&again)
        .output()
        .unwrap();
    assert!(
        single.status.success(),
        "{}",
        String::from_utf8_lossy(&single.stderr)
    );
    let single: Vec<Value> = String::from_utf8(single.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(single.len(), lines.len());
    let mut statuses: BTreeMap<String, usize> = BTreeMap::new();
    for (c, s) in lines.iter().zip(&single) {
        for field in ["id", "title", "text", "dedup", "entities"] {
            assert_eq!(c[field], s[field], "{field} of {}", c["source"]["path"]);
        }
        *statuses
            .entry(c["dedup"]["status"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    assert!(statuses.get("exact_duplicate") >= Some(&n), "{statuses:?}");
    assert!(statuses.get("near_duplicate") >= Some(&1), "{statuses:?}");
}

fn all<'a>(intake: &'a Node, workers: &'a [Node]) -> Vec<&'a Node> {
    std::iter::once(intake).chain(workers.iter()).collect()
}

/// The pid of the node holding the decider lease, from `cluster status`.
fn decider_pid(config: &Path) -> Option<u32> {
    let status = cluster_cmd(config, &["status"]);
    let line = status.lines().find(|l| l.starts_with("decider: "))?;
    let node = line.strip_prefix("decider: ")?.split_whitespace().next()?;
    node.rsplit('-').next()?.parse().ok()
}

#[test]
fn five_thousand_files_through_three_workers_survive_decider_and_server_kills() {
    let tmp = tempfile::tempdir().unwrap();
    let mut nats = NatsCluster::start(&tmp.path().join("nats"));
    let drop = tmp.path().join("drop");
    std::fs::create_dir(&drop).unwrap();
    let out = tmp.path().join("out.jsonl");
    let url = nats.url();
    let mut names = drop_files(&drop, 2500, 0);
    let dir = tmp.path().join("intake");
    let c_intake = node_config(&dir, &url, "intake", &drop, Some(&out), NO_ENTITIES);
    let intake = Node::start(&dir, &c_intake);
    let mut workers: Vec<Node> = (0..3)
        .map(|i| {
            let dir = tmp.path().join(format!("worker{i}"));
            let c = node_config(&dir, &url, "worker", &drop, None, NO_ENTITIES);
            Node::start(&dir, &c)
        })
        .collect();
    wait_for_lines(
        &c_intake,
        500,
        Duration::from_secs(240),
        &all(&intake, &workers),
    );
    // Kill -9 of the decider: another worker takes the lease and replays the output stream.
    let pid = decider_pid(&c_intake).expect("a decider holds the lease");
    let i = workers
        .iter()
        .position(|w| w.pid() == pid)
        .expect("the decider is a worker");
    workers[i].kill9();
    names.extend(drop_files(&drop, 2500, 2500));
    wait_for_lines(
        &c_intake,
        2000,
        Duration::from_secs(240),
        &all(&intake, &workers),
    );
    let successors = workers
        .iter()
        .filter(|w| w.pid() != 0 && w.log().contains("took the decider lease"))
        .count();
    assert_eq!(successors, 1, "one surviving worker took the lease over");
    // Kill -9 of one of the three servers: R3 streams keep a quorum of two.
    nats.kill(1);
    let lines = wait_for_lines(
        &c_intake,
        5000,
        Duration::from_secs(300),
        &all(&intake, &workers),
    );
    assert_exactly_once(&lines, &names);
    let file = wait_for_file(&out, 5000, Duration::from_secs(60));
    assert_eq!(file.len(), 5000);
    assert_exactly_once(&file, &names);
    // The server comes back and catches up; nothing is emitted twice meanwhile.
    nats.restart(1);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(tail(&c_intake).len(), 5000);
}

/// What the output stream of cluster `name` says per line: (ready ms, committed ms).
fn out_times(url: &str, name: &str) -> Vec<(u64, u64)> {
    use futures_util::StreamExt;
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let urls: Vec<&str> = url.split(',').collect();
        let js = async_nats::jetstream::new(async_nats::connect(urls.as_slice()).await.unwrap());
        let mut stream = js
            .get_stream(format!("{}_OUT", name.to_uppercase()))
            .await
            .unwrap();
        let last = stream.info().await.unwrap().state.last_sequence;
        let consumer = stream
            .create_consumer(async_nats::jetstream::consumer::pull::OrderedConfig {
                headers_only: true,
                ..Default::default()
            })
            .await
            .unwrap();
        let mut messages = consumer.messages().await.unwrap();
        let mut out = Vec::new();
        while let Some(Ok(msg)) = messages.next().await {
            let info = msg.info().unwrap();
            let ready: u64 = msg
                .headers
                .as_ref()
                .unwrap()
                .get("Dropline-Ready-Ms")
                .unwrap()
                .as_str()
                .parse()
                .unwrap();
            let committed = (info.published.unix_timestamp_nanos() / 1_000_000) as u64;
            out.push((ready, committed));
            if info.stream_sequence >= last {
                break;
            }
        }
        out
    })
}

/// Holds (or releases) the decider lease of cluster `name` from outside, so workers fill the
/// prepared stream while no decider runs.
fn hold_lease(url: &str, name: &str, hold: bool) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let urls: Vec<&str> = url.split(',').collect();
        let js = async_nats::jetstream::new(async_nats::connect(urls.as_slice()).await.unwrap());
        let bucket = format!("{}_leader", name.to_uppercase());
        let kv = js.get_key_value(&bucket).await.unwrap();
        if hold {
            let v = br#"{"node":"figures-harness","committed":0,"indexed":0}"#;
            kv.put("decider", v.to_vec().into()).await.unwrap();
        } else {
            kv.delete("decider").await.unwrap();
        }
    })
}

/// Fills `drop` with `n` files: the articles of `DROPLINE_FIGURES_DATA` (a folder of .txt)
/// cycled with a numbered last line, or generated articles.
fn figure_files(drop: &Path, n: usize) {
    let data: Vec<String> = std::env::var_os("DROPLINE_FIGURES_DATA")
        .map(|d| {
            let mut paths: Vec<PathBuf> = std::fs::read_dir(d)
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            paths.sort();
            paths
                .iter()
                .map(|p| std::fs::read_to_string(p).unwrap())
                .collect()
        })
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

/// The closing note's figures, run by hand on a release build:
/// `cargo build --release && DROPLINE_BIN=target/release/dropline cargo test --test cluster
/// -- --ignored --nocapture figures` (`DROPLINE_FIGURES_DATA` = a folder of articles,
/// `DROPLINE_FIGURES_FILES` = how many files, default 2000).
#[test]
#[ignore]
fn figures() {
    let n: usize = std::env::var("DROPLINE_FIGURES_FILES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let tmp = tempfile::tempdir().unwrap();
    let nats = NatsCluster::start(&tmp.path().join("nats"));
    let url = nats.url();
    let src = tmp.path().join("src");
    std::fs::create_dir(&src).unwrap();
    figure_files(&src, n);
    // Single-node baseline in the same run: `process` over the same files.
    let t = Instant::now();
    let single = Command::new(dropline_bin())
        .args([
            "process",
            "--set",
            "strip.source_memory=false",
            "--set",
            "metrics.enabled=false",
        ])
        .arg(&src)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    // Exit 1 only says some inputs became error records (they are lines all the same).
    assert!(matches!(single.code(), Some(0 | 1)), "{single:?}");
    let single_rate = n as f64 / t.elapsed().as_secs_f64();
    println!("FIGURE single-node process: {n} files, {single_rate:.0} docs/s (incl. start-up)");
    let copy_to = |name: &str| -> PathBuf {
        let d = tmp.path().join(format!("drop-{name}"));
        std::fs::create_dir(&d).unwrap();
        for e in std::fs::read_dir(&src).unwrap() {
            let p = e.unwrap().path();
            std::fs::copy(&p, d.join(p.file_name().unwrap())).unwrap();
        }
        d
    };
    let node = |name: &str, role: &str, drop: &Path, tag: &str| -> (Node, PathBuf) {
        let dir = tmp.path().join(format!("{name}-{tag}"));
        let mut extra = "[pipeline]\nstrip_workers = 2\n".to_string();
        if name == "lat" {
            extra.push_str(NO_ENTITIES);
        }
        let c = node_config(&dir, &url, role, drop, None, &extra);
        let text = std::fs::read_to_string(&c)
            .unwrap()
            .replace("name = \"t\"", &format!("name = \"{name}\""));
        std::fs::write(&c, text).unwrap();
        (Node::start(&dir, &c), c)
    };
    // Throughput with 1 and 2 worker processes; the backlog is published before they start.
    for workers in [1usize, 2] {
        let name = format!("w{workers}");
        let drop = copy_to(&name);
        let (intake, c) = node(&name, "intake", &drop, "intake");
        while !cluster_cmd(&c, &["status"]).contains(&format!("last_seq {n:>9}")) {
            std::thread::sleep(Duration::from_millis(500));
        }
        let ws: Vec<(Node, PathBuf)> = (0..workers)
            .map(|i| node(&name, "worker", &drop, &format!("w{i}")))
            .collect();
        let refs: Vec<&Node> = std::iter::once(&intake)
            .chain(ws.iter().map(|w| &w.0))
            .collect();
        wait_for_lines(&c, n, Duration::from_secs(900), &refs);
        let times = out_times(&url, &name);
        let first = times.iter().map(|t| t.1).min().unwrap();
        let last = times.iter().map(|t| t.1).max().unwrap();
        let rate = (n - 1) as f64 / ((last - first) as f64 / 1000.0);
        println!(
            "FIGURE {workers} worker(s): {rate:.0} docs/s first to last line ({:.2}x single-node)",
            rate / single_rate
        );
    }
    // The decider alone: workers fill the prepared stream while the lease is held elsewhere.
    {
        let name = "dec";
        let drop = copy_to(name);
        let (intake, c) = node(name, "intake", &drop, "intake");
        std::thread::sleep(Duration::from_secs(2));
        hold_lease(&url, name, true);
        let ws: Vec<(Node, PathBuf)> = (0..2)
            .map(|i| node(name, "worker", &drop, &format!("w{i}")))
            .collect();
        loop {
            let s = cluster_cmd(&c, &["status"]);
            let line = s
                .lines()
                .find(|l| l.contains("DEC_PREPARED"))
                .unwrap()
                .to_string();
            if line.contains(&format!("last_seq {n:>9}")) {
                break;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        hold_lease(&url, name, false);
        let refs: Vec<&Node> = std::iter::once(&intake)
            .chain(ws.iter().map(|w| &w.0))
            .collect();
        wait_for_lines(&c, n, Duration::from_secs(900), &refs);
        let times = out_times(&url, name);
        let first = times.iter().map(|t| t.1).min().unwrap();
        let last = times.iter().map(|t| t.1).max().unwrap();
        let rate = (n - 1) as f64 / ((last - first) as f64 / 1000.0);
        println!(
            "FIGURE decider alone on a full prepared stream: {rate:.0} docs/s ({:.1} us/doc)",
            1e6 / rate
        );
        // The decider logs its own CPU per document every 10 s.
        std::thread::sleep(Duration::from_secs(11));
        for (w, _) in &ws {
            if let Some(l) = w.log().lines().rev().find(|l| l.contains("decider cost")) {
                println!("FIGURE decider own cost: {l}");
            }
        }
    }
    // Latency ready -> committed at about 1,000 files/s, entities off, 2 workers.
    {
        let name = "lat";
        let drop = tmp.path().join("drop-lat");
        std::fs::create_dir(&drop).unwrap();
        let (intake, c) = node(name, "intake", &drop, "intake");
        let ws: Vec<(Node, PathBuf)> = (0..2)
            .map(|i| node(name, "worker", &drop, &format!("w{i}")))
            .collect();
        std::thread::sleep(Duration::from_secs(5));
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
        let refs: Vec<&Node> = std::iter::once(&intake)
            .chain(ws.iter().map(|w| &w.0))
            .collect();
        wait_for_lines(&c, n, Duration::from_secs(900), &refs);
        let mut lat: Vec<u64> = out_times(&url, name)
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
