//! The decider's core without servers: prepared documents from the worker's core through
//! the decision, compared with the single-node mode line for line, and (ignored, by hand)
//! its cost per document:
//!
//! ```text
//! DROPLINE_DECIDER_DATA=../shared/data/dedup/ecbplus-dev/docs cargo test --release \
//!     --test cluster_decider -- --ignored --nocapture
//! ```

mod util;

use async_nats::header::{NATS_EXPECTED_LAST_SEQUENCE, NATS_MESSAGE_ID};
use async_nats::HeaderMap;
use dropline::cluster::checkpoint;
use dropline::cluster::decide::{Core, Decided};
use dropline::cluster::wire::{self, PreparedMeta, WorkMeta};
use dropline::cluster::worker::Cores;
use dropline::config::Config;
use dropline::dedup::{Deduper, Prepared};
use dropline::driver::sched::thread_cpu;
use std::path::{Path, PathBuf};
use std::time::Instant;

const CONFIG: &str = "[entities]\nenabled = false\n[strip]\nsource_memory = false\n";

/// The prepared message a worker publishes for the file at `path`, `seq`-th in work order.
fn prepared(cores: &Cores, seq: u64, path: &Path) -> Vec<u8> {
    let meta = std::fs::symlink_metadata(path).unwrap();
    let (key, _) = dropline::read::file_key_at(path, &meta);
    let env = dropline::watcher::envelope(seq, path.to_path_buf(), key);
    let work = WorkMeta {
        path: path.to_string_lossy().into_owned(),
        key,
        source: env.source,
        ready_ms: wire::now_ms(),
        source_key: String::new(),
        object: None,
        error: None,
    };
    let (meta, body) = cores.prepare(seq, work, &std::fs::read(path).unwrap());
    wire::encode(&meta, &body).unwrap()
}

/// Decides one prepared message as the decider does.
fn decide(core: &mut Core, payload: &[u8]) -> Vec<u8> {
    let (meta, body): (PreparedMeta, &[u8]) = wire::decode(payload).unwrap();
    let now = dropline::model::timestamp_now();
    core.decide(&meta, body, 1, &now).unwrap().line
}

/// Writes the test's files into `dir` (each seed article, a near copy and an exact copy, an
/// empty and a binary file) and returns them sorted.
fn write_files(dir: &Path) -> Vec<PathBuf> {
    let mut seeds: Vec<PathBuf> = std::fs::read_dir(util::seeds())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    seeds.sort();
    for (i, p) in seeds.iter().enumerate() {
        let body = std::fs::read_to_string(p).unwrap();
        let near = format!("{body}\nOne more line was added here.\n");
        std::fs::write(dir.join(format!("{i}-a.txt")), &body).unwrap();
        std::fs::write(dir.join(format!("{i}-b-near.txt")), near).unwrap();
        std::fs::write(dir.join(format!("{i}-c-copy.txt")), &body).unwrap();
    }
    std::fs::write(dir.join("9-empty.txt"), "").unwrap();
    std::fs::write(dir.join("9-binary.txt"), [0u8, 159, 146, 150, 0, 1]).unwrap();
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

/// The test's files (see [`write_files`]) in a temp `drop` folder, the config and the worker's
/// cores.
fn setup() -> (tempfile::TempDir, Vec<PathBuf>, Config, Cores) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("drop");
    std::fs::create_dir(&dir).unwrap();
    let files = write_files(&dir);
    let config = Config::parse(CONFIG, &[]).unwrap();
    let cores = Cores::new(&config).unwrap();
    (tmp, files, config, cores)
}

#[test]
fn decided_lines_are_the_single_node_lines() {
    let (tmp, files, config, cores) = setup();
    let dir = tmp.path().join("drop");
    let mut core = Core::new(&config, "t.out", 0);
    let mut lines = Vec::new();
    for (i, path) in files.iter().enumerate() {
        let payload = prepared(&cores, i as u64 + 1, path);
        lines.extend(decide(&mut core, &payload));
        lines.push(b'\n');
    }
    let single = util::dropline(&[
        "process",
        "--set",
        "strip.source_memory=false",
        "--set",
        "entities.enabled=false",
        "--set",
        "metrics.enabled=false",
        dir.to_str().unwrap(),
    ]);
    let ours = util::without_timestamps(&lines);
    assert_eq!(ours, util::without_timestamps(&single.stdout));
    for status in ["exact_duplicate", "near_duplicate", "\"type\":\"error\""] {
        assert!(ours.contains(status), "{status} in {ours}");
    }
}

/// The version 1 headers (before `Dropline-Line`) an older decider wrote for a line.
fn old_headers(d: &Decided, out_last: u64, ready_ms: u64, floor: u64) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(NATS_MESSAGE_ID, format!("o{}", d.work_seq));
    h.insert(NATS_EXPECTED_LAST_SEQUENCE, out_last.to_string());
    h.insert(wire::WORK_SEQ, d.work_seq.to_string());
    h.insert(wire::READY_MS, ready_ms.to_string());
    if let Some(e) = &d.entry {
        h.insert(wire::INDEX_ENTRY, e.as_str());
    }
    h.insert(wire::PREPARED_FLOOR, floor.to_string());
    h
}

/// A new decider resuming from the headers of the lines before (replayed as after a
/// takeover) decides the rest as the decider that made them, whether those lines carry the
/// current header or the version 1 headers of an older decider.
#[test]
fn replayed_headers_of_either_version_decide_identically() {
    let (_tmp, files, config, cores) = setup();
    let payloads: Vec<Vec<u8>> = files
        .iter()
        .enumerate()
        .map(|(i, path)| prepared(&cores, i as u64 + 1, path))
        .collect();
    let now = dropline::model::timestamp_now();
    let mut first = Core::new(&config, "t.out", 0);
    let (mut new_headers, mut old) = (Vec::new(), Vec::new());
    let split = 2 * payloads.len() / 3;
    for (i, p) in payloads[..split].iter().enumerate() {
        let (meta, body): (PreparedMeta, &[u8]) = wire::decode(p).unwrap();
        let floor = 100 + i as u64;
        let out_last = first.out_last;
        let d = first.decide(&meta, body, floor, &now).unwrap();
        old.push(old_headers(&d, out_last, meta.ready_ms, floor));
        new_headers.push(d.headers);
    }
    assert!(old.iter().any(|h| h.get(wire::INDEX_ENTRY).is_some()));
    let resume = |headers: &[HeaderMap]| {
        let mut core = Core::new(&config, "t.out", headers.len() as u64);
        let mut at = (0, 0);
        for h in headers {
            at = checkpoint::replay_line(&mut core, h).unwrap();
        }
        assert_eq!(at, (split as u64 + 1, 100 + split as u64 - 1));
        core
    };
    let mut cores = [first, resume(&new_headers), resume(&old)];
    assert_eq!(cores[1].indexed(), cores[0].indexed());
    assert_eq!(cores[2].indexed(), cores[0].indexed());
    let mut statuses = Vec::new();
    for p in &payloads[split..] {
        let (meta, body): (PreparedMeta, &[u8]) = wire::decode(p).unwrap();
        let d: Vec<Decided> = cores
            .iter_mut()
            .map(|c| c.decide(&meta, body, 1, &now).unwrap())
            .collect();
        for other in &d[1..] {
            assert_eq!(other.line, d[0].line);
            assert_eq!(other.subject, d[0].subject);
            assert_eq!(other.entry, d[0].entry);
            assert_eq!(other.headers, d[0].headers);
        }
        statuses.push(d[0].subject.clone());
    }
    // The lines decided after the resume include copies of documents before it.
    assert!(
        statuses.iter().any(|s| s.ends_with("exact_duplicate")),
        "{statuses:?}"
    );
    assert!(
        statuses.iter().any(|s| s.ends_with("near_duplicate")),
        "{statuses:?}"
    );
}

/// A lost-work marker (`src/cluster/gap.rs`): the headers of a line (numbered, fenced, no
/// index entry), no payload, its own subject; replayed, it moves the next work sequence past
/// it and leaves the index as it was.
#[test]
fn a_lost_work_marker_replays_as_a_skipped_sequence() {
    let (_tmp, files, config, cores) = setup();
    let now = dropline::model::timestamp_now();
    let mut core = Core::new(&config, "t.out", 0);
    let mut headers = Vec::new();
    for (i, path) in files.iter().take(3).enumerate() {
        let p = prepared(&cores, i as u64 + 1, path);
        let (meta, body): (PreparedMeta, &[u8]) = wire::decode(&p).unwrap();
        headers.push(core.decide(&meta, body, 1, &now).unwrap().headers);
    }
    let indexed = core.indexed();
    let m = core.lost(4, 7);
    assert_eq!(m.subject, "t.out.lost");
    assert!(wire::is_lost(&m.subject, "t.out"));
    assert!(m.line.is_empty() && m.entry.is_none());
    let header = |name| m.headers.get(name).map(|v| v.as_str().to_string());
    assert_eq!(header(NATS_MESSAGE_ID).as_deref(), Some("o4"));
    assert_eq!(header(NATS_EXPECTED_LAST_SEQUENCE).as_deref(), Some("3"));
    assert_eq!((core.out_last, core.indexed()), (4, indexed));
    headers.push(m.headers);
    let mut replayed = Core::new(&config, "t.out", 4);
    let mut at = (0, 0);
    for h in &headers {
        at = checkpoint::replay_line(&mut replayed, h).unwrap();
    }
    assert_eq!(at, (5, 7));
    assert_eq!(replayed.indexed(), indexed);
}

/// A worker that finds a large file's object gone sends a notice, not a document: through the
/// wire and the decider it becomes the lost-work marker of its sequence (the intake then
/// publishes the file again), not a line. Before: an error record ("object ... is gone").
#[test]
fn an_object_gone_notice_is_decided_as_a_lost_work_marker() {
    let (_tmp, files, config, cores) = setup();
    let now = dropline::model::timestamp_now();
    let mut core = Core::new(&config, "t.out", 0);
    let p = prepared(&cores, 1, &files[0]);
    let (meta, body): (PreparedMeta, &[u8]) = wire::decode(&p).unwrap();
    assert!(!meta.object_lost);
    core.decide(&meta, body, 1, &now).unwrap();
    let (meta, body) = dropline::cluster::records::object_lost(2, 1);
    let payload = wire::encode(&meta, &body).unwrap();
    let (meta, body): (PreparedMeta, &[u8]) = wire::decode(&payload).unwrap();
    assert!(meta.object_lost, "the notice survives the wire");
    let indexed = core.indexed();
    let m = core.decide(&meta, body, 3, &now).unwrap();
    assert!(wire::is_lost(&m.subject, "t.out"), "{}", m.subject);
    assert!(m.line.is_empty() && m.entry.is_none());
    let id = m
        .headers
        .get(NATS_MESSAGE_ID)
        .map(|v| v.as_str().to_string());
    assert_eq!(id.as_deref(), Some("o2"));
    assert_eq!((core.out_last, core.indexed()), (2, indexed));
}

/// A document whose line would pass the servers' message limit is prepared as an `output`
/// error record, which a decider can append; under the limit it stays a document.
#[test]
fn a_line_over_the_servers_limit_is_prepared_as_an_error_record() {
    let (_tmp, files, config, cores) = setup();
    let line_of = |cores: &Cores| {
        let mut core = Core::new(&config, "t.out", 0);
        let line = decide(&mut core, &prepared(cores, 1, &files[0]));
        serde_json::from_slice::<serde_json::Value>(&line).unwrap()
    };
    let doc = line_of(&cores);
    assert_eq!(doc["type"], "document", "{doc}");
    let size = serde_json::to_vec(&doc).unwrap().len();
    // 64 KiB of the limit are kept for what the decider adds.
    let small = Cores::new(&config)
        .unwrap()
        .for_servers(64 * 1024 + size / 2);
    let error = line_of(&small);
    assert_eq!(error["type"], "error", "{error}");
    assert_eq!(error["stage"], "output", "{error}");
    assert!(error["error"]
        .as_str()
        .unwrap()
        .contains("raise max_payload"));
    let roomy = Cores::new(&config)
        .unwrap()
        .for_servers(64 * 1024 + size * 2);
    assert_eq!(line_of(&roomy)["type"], "document");
}

/// The decider's own cost per document: `DROPLINE_DECIDER_DOCS` (default 2000) documents,
/// the articles of `DROPLINE_DECIDER_DATA` cycled with a numbered last line (or generated
/// ones), prepared by the worker's core, then decided in order; `DROPLINE_DECIDER_ROUNDS`
/// (default 1) decides them that many times in all, each round with a fresh core.
#[test]
#[ignore]
fn decider_cost() {
    let n = util::env_number("DROPLINE_DECIDER_DOCS", 2000);
    let data: Vec<String> = match std::env::var_os("DROPLINE_DECIDER_DATA") {
        Some(d) => util::read_texts(d),
        None => seeds_text(),
    };
    let tmp = tempfile::tempdir().unwrap();
    let config = Config::parse(CONFIG, &[]).unwrap();
    let cores = Cores::new(&config).unwrap();
    let payloads: Vec<Vec<u8>> = (0..n)
        .map(|i| {
            let path = tmp.path().join(format!("f{i:06}.txt"));
            let body = format!("{}\nCopy {}.\n", data[i % data.len()], i / data.len());
            std::fs::write(&path, body).unwrap();
            prepared(&cores, i as u64 + 1, &path)
        })
        .collect();
    let bytes: usize = payloads.iter().map(Vec::len).sum();
    // Decoding alone, then the whole decision.
    let t = thread_cpu();
    for p in &payloads {
        let (meta, body): (PreparedMeta, &[u8]) = wire::decode(p).unwrap();
        std::hint::black_box((meta, body));
    }
    let decode = thread_cpu() - t;
    // The dedup work read back (each dropped at once), then the index alone (query and
    // update) over work read back beforehand.
    let t = thread_cpu();
    for p in &payloads {
        let (meta, body): (PreparedMeta, &[u8]) = wire::decode(p).unwrap();
        std::hint::black_box(Prepared::from_bytes(&body[..meta.dedup_len]));
    }
    let read_back = thread_cpu() - t;
    let works: Vec<Prepared> = payloads
        .iter()
        .filter_map(|p| {
            let (meta, body): (PreparedMeta, &[u8]) = wire::decode(p).unwrap();
            Prepared::from_bytes(&body[..meta.dedup_len])
        })
        .collect();
    let mut dedup = Deduper::new(&config.dedup);
    let t = thread_cpu();
    for w in works {
        std::hint::black_box(dedup.observe_prepared(w));
    }
    let index = thread_cpu() - t;
    let mut core = Core::new(&config, "t.out", 0);
    let (t, wall) = (thread_cpu(), Instant::now());
    let mut out = 0;
    for p in &payloads {
        out += decide(&mut core, p).len();
    }
    let cpu = thread_cpu() - t;
    let per_doc = cpu.as_secs_f64() * 1e6 / n as f64;
    println!(
        "FIGURE decider core: {n} docs ({} KB prepared, {} KB lines): {per_doc:.1} us CPU/doc \
         ({:.0} docs/s ceiling; wall {:.1} us/doc), of which metadata decoding {:.1} us, \
         metadata and dedup work read back {:.1} us, index query and update alone {:.1} us",
        bytes / 1024,
        out / 1024,
        1e6 / per_doc,
        wall.elapsed().as_secs_f64() * 1e6 / n as f64,
        decode.as_secs_f64() * 1e6 / n as f64,
        read_back.as_secs_f64() * 1e6 / n as f64,
        index.as_secs_f64() * 1e6 / n as f64,
    );
    // More rounds of the whole decision in this process, each with a fresh core over the same
    // messages: whether a run's speed belongs to the process (its memory) or to the moment.
    let rounds = util::env_number("DROPLINE_DECIDER_ROUNDS", 1);
    if rounds > 1 {
        drop(dedup);
        let mut us: Vec<f64> = (1..rounds)
            .map(|_| {
                let mut core = Core::new(&config, "t.out", 0);
                let t = thread_cpu();
                for p in &payloads {
                    std::hint::black_box(decide(&mut core, p));
                }
                (thread_cpu() - t).as_secs_f64() * 1e6 / n as f64
            })
            .collect();
        let each: Vec<String> = us.iter().map(|u| format!("{u:.1}")).collect();
        us.sort_by(f64::total_cmp);
        println!(
            "FIGURE decider core rounds: {} more, median {:.1} us CPU/doc (min {:.1}, max {:.1}); \
             each: {}",
            us.len(),
            us[us.len() / 2],
            us[0],
            us[us.len() - 1],
            each.join(" "),
        );
    }
}

fn seeds_text() -> Vec<String> {
    util::read_texts(util::seeds())
}
