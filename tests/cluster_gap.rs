//! A file whose work message (in the work stream) or prepared document (in the prepared
//! stream, not yet decided) is lost with its stream (issue 13, continued): the decider, which
//! decides in work-sequence order, must not wait for it for ever, and the file must still get
//! its line, exactly once, in the output stream and the file sink. The decider declares such a
//! sequence lost after `cluster.lost_after` (30 s by default) and the intake publishes the file
//! again (`src/cluster/gap.rs`, `src/cluster/republish.rs`).

mod cluster_util;
mod util;

use cluster_util::*;
use std::path::Path;
use std::time::Duration;

/// Deletes stream `name`.
fn delete_stream(url: &str, name: &str) {
    let name = name.to_string();
    with_js(url, |js| async move {
        js.delete_stream(&name).await.unwrap();
    });
}

/// The messages stream `name` holds and its last sequence (0s while it is missing).
fn state(url: &str, name: &str) -> (u64, u64) {
    let name = name.to_string();
    with_js(url, |js| async move {
        match js.get_stream(&name).await {
            Ok(mut s) => s
                .info()
                .await
                .map_or((0, 0), |i| (i.state.messages, i.state.last_sequence)),
            Err(_) => (0, 0),
        }
    })
}

/// Waits until `ok` holds, failing with `what` after `limit`.
fn wait_until(limit: Duration, what: &str, ok: impl FnMut() -> bool) {
    util::wait::wait_until(limit, Duration::from_millis(300), what, ok, String::new);
}

/// Every file once in the output stream and in the file sink `out`; no more lines come.
fn each_once(config: &Path, out: &Path, names: &[String], nodes: &[&Node]) {
    let lines = wait_for_lines(config, names.len(), Duration::from_secs(90), nodes);
    assert_exactly_once(&lines, names);
    let sink = wait_for_file(out, names.len(), Duration::from_secs(20));
    assert_exactly_once(&sink, names);
    // Nothing decided twice later (a late prepared document, a second publish).
    std::thread::sleep(Duration::from_secs(3));
    assert_exactly_once(&tail(config), names);
    assert_eq!(util::read_records(out).len(), names.len());
}

/// Lost-work markers in the output stream.
fn markers(url: &str) -> usize {
    with_js(url, |js| async move {
        let Ok(out) = js.get_stream("T_OUT").await else {
            return 0;
        };
        let mut n = 0;
        if let Ok(mut subjects) = out.info_with_subjects("t.out.lost").await {
            use futures_util::StreamExt;
            while let Some(Ok((_, count))) = subjects.next().await {
                n += count;
            }
        }
        n
    })
}

/// The objects the files bucket holds (large files whose work is not done).
fn objects(url: &str) -> Vec<String> {
    with_js(url, |js| async move {
        use futures_util::StreamExt;
        let Ok(store) = js.get_object_store("T_files").await else {
            return Vec::new();
        };
        let mut names = Vec::new();
        if let Ok(mut list) = store.list().await {
            while let Some(Ok(info)) = list.next().await {
                names.push(info.name);
            }
        }
        names
    })
}

/// An intake with the file sink and a worker: 5 files decided, the worker killed, 10 files
/// (one of them over the inline limit, so it goes through the files bucket) published into
/// the work stream, the stream deleted, the worker started again, 5 more files. Returns the
/// intake, the worker, their configs and the file names.
fn work_stream_lost(bed: &Bed) -> (Node, Node, [std::path::PathBuf; 2], Vec<String>) {
    let out = bed.path("out.jsonl");
    let mut names = drop_files(&bed.drop, 5, 0);
    let (intake, ci) = bed.node("intake", "intake", Some(&out), "");
    let (mut worker, cw) = bed.node("worker", "worker", None, "");
    wait_for_lines(&ci, 5, Duration::from_secs(120), &[&intake, &worker]);
    worker.kill9();
    names.extend(drop_files(&bed.drop, 9, 5));
    names.push(big_file(&bed.drop, "f00014.txt", 14));
    wait_until(Duration::from_secs(30), "10 work messages", || {
        state(&bed.url, "T_WORK").0 == 10
    });
    delete_stream(&bed.url, "T_WORK");
    let worker = Node::start(&bed.path("worker"), &cw);
    std::thread::sleep(Duration::from_secs(2));
    names.extend(drop_files(&bed.drop, 5, 15));
    (intake, worker, [ci, cw], names)
}

/// Files published while no worker runs sit in the work stream; the stream is deleted. Before:
/// the stream was made again after the output stream's last work sequence, the files dropped
/// next took the lost files' sequences, and the 10 lost files never got a line (10 of 20).
#[test]
fn files_lost_with_the_work_stream_are_published_again_and_decided_once() {
    let bed = Bed::start();
    let (intake, worker, [ci, _], names) = work_stream_lost(&bed);
    each_once(&ci, &bed.path("out.jsonl"), &names, &[&intake, &worker]);
    let log = worker.log();
    assert!(
        log.contains("work sequence lost with its stream"),
        "the decider says what it did:\n{log}"
    );
    assert_eq!(markers(&bed.url), 10, "one marker per lost file");
    let status = cluster_cmd(&ci, &["status"]);
    assert!(
        status.contains("10 of T_OUT's messages are lost-work markers, not lines"),
        "{status}"
    );
    // The large file's first object went with nothing to read it; the intake deletes it
    // once the file is published again, and the worker deletes the second after its work.
    // Before: the first object stayed in the bucket for good.
    wait_until(Duration::from_secs(20), "an empty files bucket", || {
        objects(&bed.url).is_empty()
    });
}

/// As above, and the intake and the decider are killed (-9) once the markers and the lines
/// after them are stored, while the intake publishes the lost files again; the sink's
/// position file is removed too, so the restarted sink counts its lines past the markers.
#[test]
fn a_kill_9_of_the_intake_and_the_decider_while_lost_files_go_again_keeps_each_once() {
    let bed = Bed::start();
    let (mut intake, mut worker, [ci, cw], names) = work_stream_lost(&bed);
    // The 5 files that waited behind the lost ones are decided right after the markers: the
    // sink then holds lines past them, which the restarted sink has to count past them.
    wait_until(
        Duration::from_secs(90),
        "markers and lines after them",
        || markers(&bed.url) > 0 && util::read_records(&bed.path("out.jsonl")).len() >= 10,
    );
    intake.kill9();
    worker.kill9();
    let _ = std::fs::remove_file(bed.path("intake/state/cluster-sink.pos"));
    let intake = Node::start(&bed.path("intake"), &ci);
    let worker = Node::start(&bed.path("worker"), &cw);
    each_once(&ci, &bed.path("out.jsonl"), &names, &[&intake, &worker]);
}

/// Documents prepared while no decider runs (the harness holds the lease) sit in the prepared
/// stream; the stream is deleted. Before: the decider waited for the first lost work sequence
/// for ever, and every later file with it (5 of 20 lines).
#[test]
fn files_lost_with_the_prepared_stream_are_published_again_and_decided_once() {
    let bed = Bed::start();
    let out = bed.path("out.jsonl");
    let mut names = drop_files(&bed.drop, 5, 0);
    let (node, c) = bed.node("node", "all", Some(&out), "");
    wait_for_lines(&c, 5, Duration::from_secs(120), &[&node]);
    let hold = Hold::start(&bed.url, "t");
    // The decider believes in its lease for up to 3 s after its last renewal.
    std::thread::sleep(Duration::from_secs(5));
    let before = state(&bed.url, "T_PREPARED").1;
    names.extend(drop_files(&bed.drop, 10, 5));
    wait_until(Duration::from_secs(30), "10 prepared documents", || {
        state(&bed.url, "T_PREPARED").1 >= before + 10 && state(&bed.url, "T_WORK").0 == 0
    });
    assert_eq!(tail(&c).len(), 5, "the 10 documents are not decided yet");
    delete_stream(&bed.url, "T_PREPARED");
    drop(hold);
    names.extend(drop_files(&bed.drop, 5, 15));
    each_once(&c, &out, &names, &[&node]);
}

/// Deletes object `name` from the files bucket.
fn delete_object(url: &str, name: &str) {
    let name = name.to_string();
    with_js(url, |js| async move {
        let store = js.get_object_store("T_files").await.unwrap();
        store.delete(name.as_str()).await.unwrap();
    });
}

/// A large file's object deleted while its work waits for a worker: the worker sends a notice
/// instead of a document, the decider marks the work lost, and the intake publishes the file
/// again with a new object. Before: the file got an error record ("object ... is gone from
/// the files bucket ...: drop the file again").
#[test]
fn a_large_file_whose_object_is_deleted_while_it_waits_is_published_again() {
    let bed = Bed::start();
    let out = bed.path("out.jsonl");
    // Entities off: with them, a 540 KB article's line passes the servers' 1 MB max_payload
    // and is an `output` error record (README, "Files no worker can finish").
    let (intake, ci) = bed.node("intake", "intake", Some(&out), NO_ENTITIES);
    let mut names = drop_files(&bed.drop, 3, 0);
    names.push(big_file(&bed.drop, "big.txt", 3));
    wait_until(Duration::from_secs(30), "4 work messages", || {
        state(&bed.url, "T_WORK").0 == 4
    });
    let waiting = objects(&bed.url);
    assert_eq!(waiting.len(), 1, "{waiting:?}");
    delete_object(&bed.url, &waiting[0]);
    let (worker, _) = bed.node("worker", "worker", None, NO_ENTITIES);
    each_once(&ci, &out, &names, &[&intake, &worker]);
    let big = tail(&ci)
        .into_iter()
        .find(|l| l["source"]["path"].as_str().unwrap().ends_with("big.txt"))
        .unwrap();
    assert_eq!(big["type"], "document", "{big}\n{}", worker.log());
    assert_eq!(markers(&bed.url), 1, "one marker for the first publish");
    assert!(
        worker.log().contains("a large file's object is gone"),
        "{}",
        worker.log()
    );
    wait_until(Duration::from_secs(20), "an empty files bucket", || {
        objects(&bed.url).is_empty()
    });
}
