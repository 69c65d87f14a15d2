//! The cluster's JetStream objects deleted under a running node (issue 13, continued): each
//! object a node depends on is deleted mid-run with the harness's 3-server cluster, and the
//! node must say so, make it again and carry on, every file's line exactly once.
//!
//! `survey_*` (ignored) print what a node does for each object, without asserting:
//! `cargo test --release --test cluster_reset -- --ignored survey --test-threads=1 --nocapture`.

mod cluster_util;
mod util;

use cluster_util::*;
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// Deletes stream `name` (a bucket's stream is `KV_<bucket>` or `OBJ_<bucket>`).
fn delete_stream(url: &str, name: &str) {
    let name = name.to_string();
    with_js(url, |js| async move {
        js.delete_stream(&name).await.unwrap();
    });
}

/// Purges stream `name`: its messages go, the stream stays.
fn purge_stream(url: &str, name: &str) {
    let name = name.to_string();
    with_js(url, |js| async move {
        js.get_stream(&name).await.unwrap().purge().await.unwrap();
    });
}

/// The output stream's lines now, or `None` when `cluster tail` fails.
fn lines_now(config: &Path) -> Option<Vec<Value>> {
    let out = Command::new(util::bin())
        .args(["cluster", "tail", "--once", "--config"])
        .arg(config)
        .output()
        .ok()?;
    out.status.success().then(|| util::stdout_records(&out))
}

/// Waits up to `limit` for `n` lines; returns what the stream holds then.
fn lines_within(config: &Path, n: usize, limit: Duration) -> Vec<Value> {
    // A read that fails (a server just killed) keeps the last one that did not.
    let mut last = Vec::new();
    let every = Duration::from_millis(500);
    let probe = || {
        if let Some(l) = lines_now(config) {
            last = l;
        }
        last.len()
    };
    util::wait::poll(limit, every, probe, |&got| got >= n);
    last
}

/// Files of `names` without a line, and files with more than one.
fn tally(lines: &[Value], names: &[String]) -> (usize, usize) {
    let mut seen: HashMap<String, usize> = HashMap::new();
    for l in lines {
        let path = l["source"]["path"].as_str().unwrap_or("");
        let name = Path::new(path).file_name().unwrap_or_default();
        *seen.entry(name.to_string_lossy().into_owned()).or_default() += 1;
    }
    let missing = names.iter().filter(|n| !seen.contains_key(*n)).count();
    (missing, seen.values().filter(|n| **n > 1).count())
}

/// The distinct warnings and errors of `log` (messages without their fields).
fn complaints(log: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for l in log
        .lines()
        .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
    {
        let msg = l.split(": ").nth(1).unwrap_or(l);
        let msg: String = msg.chars().take(90).collect();
        if !out.contains(&msg) {
            out.push(msg);
        }
    }
    out
}

/// Deletes (or purges) `stream` mid-run and prints what the node does.
fn survey(stream: &str, purge: bool) {
    let bed = Bed::start();
    let out = bed.path("out.jsonl");
    let mut names = drop_files(&bed.drop, 10, 0);
    names.push(big_file(&bed.drop, "big0.txt", 1));
    let (mut node, c) = bed.node("node", "all", Some(&out), NO_ENTITIES);
    wait_for_lines(&c, 11, Duration::from_secs(120), &[&node]);
    // A checkpoint and a heartbeat are written meanwhile.
    std::thread::sleep(Duration::from_secs(6));
    let from = node.log().len();
    if purge {
        purge_stream(&bed.url, stream);
    } else {
        delete_stream(&bed.url, stream);
    }
    std::thread::sleep(Duration::from_secs(6));
    names.extend(drop_files(&bed.drop, 10, 10));
    names.push(big_file(&bed.drop, "big1.txt", 2));
    let lines = lines_within(&c, 22, Duration::from_secs(45));
    let (missing, twice) = tally(&lines, &names);
    let alive = node.running();
    let log = node.log();
    let said = complaints(&log[from.min(log.len())..]);
    let status = Command::new(util::bin())
        .args(["cluster", "status", "--config"])
        .arg(&c)
        .output()
        .unwrap();
    let nodes = String::from_utf8_lossy(&status.stdout)
        .lines()
        .skip_while(|l| *l != "nodes:")
        .count()
        .saturating_sub(1);
    println!(
        "SURVEY {stream} {}: after: {} lines of {} files, {missing} without, {twice} twice, \
         node running {alive}, status nodes {nodes}; said: {said:?}",
        if purge { "purged" } else { "deleted" },
        lines.len(),
        names.len()
    );
    node.kill9();
    let from = node.log().len();
    let mut node = Node::start(&bed.path("node"), &c);
    names.extend(drop_files(&bed.drop, 5, 20));
    let lines = lines_within(&c, names.len(), Duration::from_secs(45));
    let (missing, twice) = tally(&lines, &names);
    let log = node.log();
    let said = complaints(&log[from.min(log.len())..]);
    let sink = util::read_records(&out).len();
    println!(
        "SURVEY {stream} restarted: {} lines of {} files, {missing} without, {twice} twice, \
         sink {sink} lines, node running {}; said: {said:?}",
        lines.len(),
        names.len(),
        node.running()
    );
}

#[test]
#[ignore]
fn survey_nodes() {
    survey("KV_T_nodes", false);
}

#[test]
#[ignore]
fn survey_files() {
    survey("OBJ_T_files", false);
}

#[test]
#[ignore]
fn survey_checkpoint() {
    survey("OBJ_T_checkpoint", false);
}

#[test]
#[ignore]
fn survey_checkpoint_purged() {
    survey("OBJ_T_checkpoint", true);
}

#[test]
#[ignore]
fn survey_work() {
    survey("T_WORK", false);
}

#[test]
#[ignore]
fn survey_prepared() {
    survey("T_PREPARED", false);
}

#[test]
#[ignore]
fn survey_out() {
    survey("T_OUT", false);
}

/// The nodes `cluster status` lists.
fn status_nodes(config: &Path) -> usize {
    let status = cluster_cmd(config, &["status"]);
    status
        .lines()
        .skip_while(|l| *l != "nodes:")
        .skip(1)
        .filter(|l| l.contains(" role "))
        .count()
}

/// Waits up to `limit` for `ok`, failing with `what` and the node's log.
fn wait_until(limit: Duration, node: &Node, what: &str, ok: impl FnMut() -> bool) {
    let every = Duration::from_millis(500);
    util::wait::wait_until(limit, every, what, ok, || {
        format!("node log:\n{}", node.log())
    });
}

/// The nodes bucket deleted: the heartbeat makes it again (the node is listed again) and the
/// node says so once; the files go on. Before, the heartbeat's puts failed at debug level for
/// good and `cluster status` listed no node.
#[test]
fn a_deleted_nodes_bucket_is_made_again() {
    let bed = Bed::start();
    let mut names = drop_files(&bed.drop, 10, 0);
    let (node, c) = bed.node("node", "all", None, NO_ENTITIES);
    wait_for_lines(&c, 10, Duration::from_secs(120), &[&node]);
    wait_until(Duration::from_secs(20), &node, "the node listed", || {
        status_nodes(&c) == 1
    });
    delete_stream(&bed.url, "KV_T_nodes");
    assert_eq!(status_nodes(&c), 0);
    names.extend(drop_files(&bed.drop, 10, 10));
    // The next heartbeat (every 5 s) fails, the one after makes the bucket again.
    wait_until(
        Duration::from_secs(25),
        &node,
        "the node listed again",
        || status_nodes(&c) == 1,
    );
    let lines = wait_for_lines(&c, 20, Duration::from_secs(60), &[&node]);
    assert_exactly_once(&lines, &names);
    let log = node.log();
    let warned = log.matches("cannot write this node's heartbeat").count();
    assert_eq!(warned, 1, "one warning naming the bucket:\n{log}");
    assert!(log.contains("T_nodes"), "{log}");
}

/// The files bucket deleted: the intake's next large file makes it again instead of ending
/// the node (before: "cannot store a large file", the node exited).
#[test]
fn a_deleted_files_bucket_is_made_again_for_the_next_large_file() {
    let bed = Bed::start();
    let mut names = drop_files(&bed.drop, 5, 0);
    names.push(big_file(&bed.drop, "big0.txt", 1));
    let (mut node, c) = bed.node("node", "all", None, NO_ENTITIES);
    wait_for_lines(&c, 6, Duration::from_secs(120), &[&node]);
    delete_stream(&bed.url, "OBJ_T_files");
    names.extend(drop_files(&bed.drop, 5, 5));
    names.push(big_file(&bed.drop, "big1.txt", 2));
    let lines = wait_for_lines(&c, 12, Duration::from_secs(60), &[&node]);
    assert_exactly_once(&lines, &names);
    for l in &lines {
        assert_eq!(l["type"], "document", "{l}");
    }
    assert!(node.running(), "the node carries on");
    let log = node.log();
    assert!(
        log.contains("cannot store a large file in the files bucket") && log.contains("T_files"),
        "the intake says what happened:\n{log}"
    );
}

/// The checkpoint bucket deleted (or purged) mid-run: the decider says so, makes the
/// checkpoint again from the whole output stream, and a decider restarted later resumes from
/// it with every earlier document still indexed (copies stay exact duplicates), each file once.
fn checkpoint_lost(purge: bool) {
    let bed = Bed::start();
    let out = bed.path("out.jsonl");
    let mut names = drop_files(&bed.drop, 20, 0);
    let (mut node, c) = bed.node("node", "all", Some(&out), NO_ENTITIES);
    wait_for_lines(&c, 20, Duration::from_secs(120), &[&node]);
    wait_for_checkpoint(&bed.url, 20, &node);
    if purge {
        purge_stream(&bed.url, "OBJ_T_checkpoint");
    } else {
        delete_stream(&bed.url, "OBJ_T_checkpoint");
    }
    names.extend(drop_files(&bed.drop, 10, 20));
    wait_for_lines(&c, 30, Duration::from_secs(60), &[&node]);
    wait_for_checkpoint(&bed.url, 30, &node);
    node.kill9();
    names.extend(drop_copies(&bed.drop, 3));
    let node = Node::start(&bed.path("node"), &c);
    let lines = wait_for_lines(&c, 33, Duration::from_secs(60), &[&node]);
    assert_exactly_once(&lines, &names);
    for i in 0..3u64 {
        let of = |name: &str| {
            lines
                .iter()
                .find(|l| l["source"]["path"].as_str().unwrap().ends_with(name))
                .unwrap()
        };
        let (copy, original) = (of(&format!("again{i}.txt")), of(&format!("f{i:05}.txt")));
        assert_eq!(copy["dedup"]["status"], "exact_duplicate", "{copy}");
        assert_eq!(copy["dedup"]["duplicate_of"], original["id"], "{copy}");
    }
    let log = node.log();
    assert_resumed_from_checkpoint(&log, 30);
    let file = wait_for_file(&out, 33, Duration::from_secs(30));
    assert_eq!(file, lines, "the file sink holds each line once");
    // The first run's log comes before the restart's in the same file.
    assert!(
        log.contains("the checkpoint bucket T_checkpoint was deleted or purged"),
        "the decider said what happened:\n{log}"
    );
}

#[test]
fn a_deleted_checkpoint_bucket_is_made_again_from_the_output_stream() {
    checkpoint_lost(false);
}

#[test]
fn a_purged_checkpoint_bucket_is_made_again_from_the_output_stream() {
    checkpoint_lost(true);
}

/// The checkpoint's segments lost while no decider runs: the restarted decider finds a manifest
/// naming segments that are gone, says so and replays the whole output stream (before: it
/// failed on the missing segment, tried again every half second, and decided nothing more).
#[test]
fn a_checkpoint_whose_segments_are_gone_is_replayed_around() {
    let bed = Bed::start();
    let mut names = drop_files(&bed.drop, 10, 0);
    let (mut node, c) = bed.node("node", "all", None, NO_ENTITIES);
    wait_for_lines(&c, 10, Duration::from_secs(120), &[&node]);
    wait_for_checkpoint(&bed.url, 10, &node);
    node.kill9();
    // The manifest survives, its segments do not: a purge racing a write, or a partial reset.
    let m = manifest(&bed.url).unwrap();
    with_js(&bed.url, |js| async move {
        let store = js.get_object_store("T_checkpoint").await.unwrap();
        for s in m["segments"].as_array().unwrap() {
            store.delete(s.as_str().unwrap()).await.unwrap();
        }
    });
    names.extend(drop_copies(&bed.drop, 3));
    let node = Node::start(&bed.path("node"), &c);
    let lines = wait_for_lines(&c, 13, Duration::from_secs(60), &[&node]);
    assert_exactly_once(&lines, &names);
    for l in &lines[10..] {
        assert_eq!(l["dedup"]["status"], "exact_duplicate", "{l}");
    }
    let log = node.log();
    assert!(
        log.contains("a segment of the checkpoint is gone"),
        "the decider says what happened:\n{log}"
    );
}

/// Deletes `stream` once 10 files are decided, drops 10 more and expects each of the 20 once,
/// and `said` in the node's log.
fn stream_deleted_between_files(stream: &str, said: &[&str]) {
    let bed = Bed::start();
    let mut names = drop_files(&bed.drop, 10, 0);
    let (node, c) = bed.node("node", "all", None, NO_ENTITIES);
    wait_for_lines(&c, 10, Duration::from_secs(120), &[&node]);
    delete_stream(&bed.url, stream);
    std::thread::sleep(Duration::from_secs(4));
    names.extend(drop_files(&bed.drop, 10, 10));
    let lines = wait_for_lines(&c, 20, Duration::from_secs(60), &[&node]);
    assert_exactly_once(&lines, &names);
    let log = node.log();
    for s in said {
        assert!(log.contains(s), "the node says {s:?}:\n{log}");
    }
}

/// The work stream deleted between files: made again, its sequence continuing the lost
/// one's, so the decider takes the files published into it (before: the stream stayed gone,
/// the intake retried its publishes for ever; a restart made it again from sequence 1, and
/// the decider dropped those files as already decided).
#[test]
fn a_deleted_work_stream_is_made_again_continuing_its_sequence() {
    stream_deleted_between_files(
        "T_WORK",
        &[
            "the work stream is gone",
            "the stream was missing and is made again",
        ],
    );
}

/// The prepared stream deleted between files: made again where the decider resumes reading
/// (before: the workers' publishes failed for ever and no file was decided again).
#[test]
fn a_deleted_prepared_stream_is_made_again_where_the_decider_reads() {
    stream_deleted_between_files("T_PREPARED", &["the prepared stream"]);
}

/// The output stream deleted: exactly once cannot be kept, and the node says so rather than
/// making a new ledger (before: a restarted node made it again and decided anew what the
/// prepared stream still held, against an empty index).
#[test]
fn a_deleted_output_stream_is_refused_with_an_error_that_says_what_to_do() {
    let bed = Bed::start();
    drop_files(&bed.drop, 5, 0);
    let (node, c) = bed.node("node", "all", None, NO_ENTITIES);
    wait_for_lines(&c, 5, Duration::from_secs(120), &[&node]);
    delete_stream(&bed.url, "T_OUT");
    drop_files(&bed.drop, 5, 5);
    wait_until(Duration::from_secs(30), &node, "the node's error", || {
        node.log().contains("the output stream T_OUT is gone")
    });
    std::thread::sleep(Duration::from_secs(3));
    let missing = with_js(&bed.url, |js| async move {
        js.get_stream("T_OUT").await.is_err()
    });
    assert!(missing, "no node made a new output stream");
}

/// A remake cut short: the prepared stream left on the private subject it is made on (the
/// node stopped, or a JetStream request timed out, before it was opened again). The next
/// start finishes the remake and the files go through; before, every prepared publish failed
/// with "no stream found for given subject" for good.
#[test]
fn a_stream_left_on_its_private_subject_is_opened_at_the_next_start() {
    let bed = Bed::start();
    with_js(&bed.url, |js| async move {
        js.create_stream(async_nats::jetstream::stream::Config {
            name: "T_PREPARED".into(),
            subjects: vec!["t.prepared.making".into()],
            num_replicas: 3,
            ..Default::default()
        })
        .await
        .unwrap();
    });
    let names = drop_files(&bed.drop, 10, 0);
    let (node, c) = bed.node("node", "all", None, NO_ENTITIES);
    let lines = wait_for_lines(&c, 10, Duration::from_secs(60), &[&node]);
    assert_exactly_once(&lines, &names);
}
