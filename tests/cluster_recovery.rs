//! Recovery in the cluster mode (harness in `cluster_util`): a decider restarted after a
//! checkpoint resumes from it exactly once, and a file no worker can finish becomes an error
//! record instead of stalling the decider, and `done = "move"` sends files the workers cannot
//! decode, or give up on, to the failed folder once their lines are committed (files stay in
//! the drop folder until then, and a restarted intake settles what its last run left).

mod cluster_util;
mod util;

use cluster_util::*;
use serde_json::Value;
use std::time::Duration;

#[test]
fn a_decider_restarted_after_a_checkpoint_resumes_from_it_exactly_once() {
    let bed = Bed::start();
    let out = bed.path("out.jsonl");
    let mut names = drop_files(&bed.drop, 60, 0);
    let (mut node, c) = bed.node("node", "all", Some(&out), NO_ENTITIES);
    let before = wait_for_lines(&c, 60, Duration::from_secs(120), &[&node]);
    // The checkpoint follows within a few seconds of the last commit.
    wait_for_checkpoint(&bed.url, 60, &node);
    node.kill9();
    // More files, among them copies of files the checkpoint holds: still exact duplicates.
    names.extend(drop_files(&bed.drop, 20, 60));
    names.extend(drop_copies(&bed.drop, 5));
    let node = Node::start(&bed.path("node"), &c);
    let lines = wait_for_lines(&c, 85, Duration::from_secs(120), &[&node]);
    assert_exactly_once(&lines, &names);
    assert_eq!(
        lines[..60],
        before[..],
        "the lines before the restart stay as they were"
    );
    for i in 0..5u64 {
        let name = format!("again{i}.txt");
        let l = lines
            .iter()
            .find(|l| l["source"]["path"].as_str().unwrap().ends_with(&name))
            .unwrap();
        let original = lines
            .iter()
            .find(|l| {
                l["source"]["path"]
                    .as_str()
                    .unwrap()
                    .ends_with(&format!("f{i:05}.txt"))
            })
            .unwrap();
        assert_eq!(l["dedup"]["status"], "exact_duplicate", "{l}");
        assert_eq!(l["dedup"]["duplicate_of"], original["id"], "{l}");
    }
    assert_resumed_from_checkpoint(&node.log(), 60);
    let file = wait_for_file(&out, 85, Duration::from_secs(30));
    assert_eq!(file, lines, "the file sink holds each line once");
}

/// A file whose line is larger than the servers take in one message (1 MB `max_payload`)
/// becomes an error record at once, and files after it are not held up. Before, its prepared
/// publish failed at every delivery and it took 4 deliveries to give up; a decider that got
/// such a line would stop at every append.
#[test]
fn a_document_whose_line_passes_max_payload_becomes_an_error_record() {
    let bed = Bed::start();
    let sentence = "The council met again on Tuesday to discuss the bridge budget. ";
    let big: String = (0..24_000).map(|i| format!("{sentence}{i}\n")).collect();
    assert!(big.len() > 1_500_000);
    let extra = format!("{NO_ENTITIES}[pipeline]\nfile_timeout = \"300s\"\n");
    let (node, big, names) = one_bad_file(&bed, "big.txt", &big, &extra, &[]);
    assert_eq!(big["type"], "error", "{big}");
    assert_eq!(big["stage"], "output", "{big}");
    let error = big["error"].as_str().unwrap();
    assert!(error.contains("raise max_payload"), "{error}");
    let log = node.log();
    assert!(
        !log.contains("prepared publish"),
        "no publish tried:\n{log}"
    );
    // The intake reads and decodes it without error: only its committed error line sends it
    // to the failed folder.
    wait_for_listing(&bed, "failed", &["big.txt".to_string()]);
    let mut done: Vec<String> = names.into_iter().filter(|n| n != "big.txt").collect();
    done.sort();
    wait_for_listing(&bed, "done", &done);
}

/// A file whose preparation fails at every delivery (a debug build's hook panics its worker
/// thread) becomes an error record after 4 deliveries, and files after it are not held up.
#[cfg(debug_assertions)]
#[test]
fn a_file_no_worker_can_finish_becomes_an_error_record() {
    let bed = Bed::start();
    let text = "A short article no worker finishes.\n";
    let hook = [("DROPLINE_TEST_PANIC_PREPARE", "nofinish")];
    let (node, failed, _) = one_bad_file(&bed, "nofinish.txt", text, NO_ENTITIES, &hook);
    assert_eq!(failed["type"], "error", "{failed}");
    let error = failed["error"].as_str().unwrap();
    assert!(error.contains("given up after 4 deliveries"), "{error}");
    assert!(
        node.log().contains("a worker thread panicked"),
        "the workers logged why"
    );
    wait_for_listing(&bed, "failed", &["nofinish.txt".to_string()]);
}

/// Drops 5 files and `name` (holding `text`), starts an all-role node with done-move, `extra`
/// config and `env`, then drops 5 more: every file's line comes once (the later files are not
/// held up). Returns the node, `name`'s line and the names of all 11 files.
fn one_bad_file(
    bed: &Bed,
    name: &str,
    text: &str,
    extra: &str,
    env: &[(&str, &str)],
) -> (Node, Value, Vec<String>) {
    let mut names = drop_files(&bed.drop, 5, 0);
    std::fs::write(bed.drop.join(name), text).unwrap();
    names.push(name.into());
    let c = with_done_move(bed.config("node", "all", None, extra));
    let node = Node::start_with(&bed.path("node"), &c, env);
    wait_for_lines(&c, 6, Duration::from_secs(180), &[&node]);
    names.extend(drop_files(&bed.drop, 5, 5));
    let lines = wait_for_lines(&c, 11, Duration::from_secs(120), &[&node]);
    assert_exactly_once(&lines, &names);
    let line = lines
        .into_iter()
        .find(|l| l["source"]["path"].as_str().unwrap().ends_with(name))
        .unwrap();
    (node, line, names)
}

#[test]
fn files_stay_until_their_lines_are_committed_and_a_restarted_intake_moves_them() {
    let bed = Bed::start();
    let names = drop_files(&bed.drop, 10, 0);
    let c = with_done_move(bed.config("intake", "intake", None, NO_ENTITIES));
    let mut intake = Node::start(&bed.path("intake"), &c);
    // Every file published and acknowledged, with no worker to make its line.
    let published = bed.path("intake").join("state/published.jsonl");
    util::wait::wait_until(
        Duration::from_secs(60),
        Duration::from_millis(200),
        "the intake published 10 files",
        || std::fs::read_to_string(&published).map_or(0, |t| t.lines().count()) >= 10,
        || intake.log(),
    );
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(listing(&bed, "done"), Vec::<String>::new(), "no line yet");
    intake.kill9();
    let (worker, wc) = bed.node("worker", "worker", None, NO_ENTITIES);
    let lines = wait_for_lines(&wc, 10, Duration::from_secs(120), &[&worker]);
    assert_exactly_once(&lines, &names);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        listing(&bed, "done"),
        Vec::<String>::new(),
        "the intake is down"
    );
    // The restarted intake publishes nothing again and settles the ten from their lines.
    let intake = Node::start(&bed.path("intake"), &c);
    let mut sorted = names.clone();
    sorted.sort();
    wait_for_listing(&bed, "done", &sorted);
    std::thread::sleep(Duration::from_secs(2));
    let lines = wait_for_lines(&wc, 10, Duration::from_secs(30), &[&worker, &intake]);
    assert_exactly_once(&lines, &names);
}

/// Returns `config` with `done = "move"` in its `[source]` section.
fn with_done_move(config: std::path::PathBuf) -> std::path::PathBuf {
    let text = std::fs::read_to_string(&config).unwrap();
    let text = text.replacen("[source]\n", "[source]\ndone = \"move\"\n", 1);
    std::fs::write(&config, text).unwrap();
    config
}

/// The sorted names in folder `dir` of the drop folder.
fn listing(bed: &Bed, dir: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(bed.drop.join(dir))
        .map(|d| {
            d.map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Waits (up to 30 s) for folder `dir` of the drop folder to list `want`: done-actions run
/// once lines are committed, shortly after the lines are seen.
fn wait_for_listing(bed: &Bed, dir: &str, want: &[String]) {
    let every = Duration::from_millis(200);
    let held = util::wait::poll(
        Duration::from_secs(30),
        every,
        || listing(bed, dir),
        |l| l == want,
    );
    assert_eq!(held, want, "{dir}/ within 30 s");
}

#[test]
fn with_done_move_files_that_fail_decoding_on_a_worker_go_to_the_failed_folder() {
    let bed = Bed::start();
    let mut names = drop_files(&bed.drop, 3, 0);
    // Both are read by the intake without error; only decoding (on a worker) refuses them.
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend((0..4_000u32).map(|i| (i * 7 % 251) as u8));
    std::fs::write(bed.drop.join("photo.txt"), png).unwrap();
    std::fs::write(
        bed.drop.join("broken.txt.gz"),
        b"\x1f\x8b\x08\x00 not gzip at all",
    )
    .unwrap();
    names.extend(["photo.txt".to_string(), "broken.txt.gz".to_string()]);
    let config = with_done_move(bed.config("node", "all", None, NO_ENTITIES));
    let node = Node::start(&bed.path("node"), &config);
    let lines = wait_for_lines(&config, 5, Duration::from_secs(120), &[&node]);
    assert_exactly_once(&lines, &names);
    for l in &lines {
        let path = l["source"]["path"].as_str().unwrap();
        let bad = path.ends_with("photo.txt") || path.ends_with("broken.txt.gz");
        assert_eq!(l["type"] == "error", bad, "{l}");
    }
    wait_for_listing(
        &bed,
        "failed",
        &["broken.txt.gz".into(), "photo.txt".into()],
    );
    wait_for_listing(&bed, "done", &names[..3]);
}

/// The last output sequence the file sink of node `dir` has recorded.
fn sink_seq(dir: &std::path::Path) -> u64 {
    std::fs::read_to_string(dir.join("state/cluster-sink.pos"))
        .ok()
        .and_then(|t| t.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn status(l: &Value) -> &str {
    l["dedup"]["status"].as_str().unwrap_or("none")
}

#[test]
fn the_file_sink_leaves_out_dropped_duplicates_across_a_kill_and_a_rotation() {
    let bed = Bed::start();
    let out = bed.path("out.jsonl");
    let extra = format!("[dedup]\non_duplicate = \"drop\"\n{NO_ENTITIES}");
    let names = drop_files(&bed.drop, 40, 0);
    let (mut node, c) = bed.node("node", "all", Some(&out), &extra);
    // The output stream keeps every line; the file leaves the exact copies out.
    let lines = wait_for_lines(&c, 40, Duration::from_secs(120), &[&node]);
    assert_exactly_once(&lines, &names);
    let kept: Vec<&Value> = lines
        .iter()
        .filter(|l| status(l) != "exact_duplicate")
        .collect();
    assert_eq!(kept.len(), 36, "every tenth file is an exact copy");
    util::wait::wait_until(
        Duration::from_secs(30),
        Duration::from_millis(200),
        "the sink recorded line 40",
        || sink_seq(&bed.path("node")) >= 40,
        || node.log(),
    );
    let first = util::read_records(&out);
    assert_eq!(first.iter().collect::<Vec<_>>(), kept);
    // Kill, rotate the file away, drop more: the new file gets only the new lines.
    node.kill9();
    let rotated = bed.path("out.jsonl.1");
    std::fs::rename(&out, &rotated).unwrap();
    let more = drop_files(&bed.drop, 20, 40);
    let node = Node::start(&bed.path("node"), &c);
    let lines = wait_for_lines(&c, 60, Duration::from_secs(120), &[&node]);
    let expect: Vec<&Value> = lines[40..]
        .iter()
        .filter(|l| status(l) != "exact_duplicate")
        .collect();
    assert_eq!(expect.len(), 18);
    let second = wait_for_file(&out, 18, Duration::from_secs(60));
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(util::read_records(&out).iter().collect::<Vec<_>>(), expect);
    assert_eq!(second.len(), 18);
    assert_eq!(
        util::read_records(&rotated),
        first,
        "the rotated file is left alone"
    );
    let names_in_file: Vec<String> = second.iter().map(util::record_name).collect();
    assert!(names_in_file.iter().all(|n| more.contains(n)));
}
