//! One intake per cluster (issue 13), enforced by the intake lease (`src/cluster/sole.rs`), on
//! a 3-server cluster: a second intake is refused naming the first, a restart of the same node
//! after kill -9 takes its lease over at once (another machine sharing its host name and state
//! path is refused), and a clean stop lets another node be the intake at once. Each file still gets exactly one line.

mod cluster_util;
mod util;

use cluster_util::*;
use std::path::Path;
use std::time::Duration;

/// Waits until `cluster status` names `node` as the intake, and checks it was not refused.
fn assert_is_the_intake(c: &Path, node: &mut Node, who: &str) {
    let line = wait_intake(c, node.pid(), Duration::from_secs(30));
    assert!(node.running(), "{who} was refused:\n{}", node.log());
    assert!(line.contains(&format!(", pid {},", node.pid())), "{line}");
}

/// Waits for one line per file in `names` in the output stream and in the file sink `out`,
/// and checks that each file is there exactly once in both.
fn once_in_stream_and_file(c: &Path, out: &Path, names: &[String], nodes: &[&Node]) {
    let lines = wait_for_lines(c, names.len(), Duration::from_secs(180), nodes);
    assert_exactly_once(&lines, names);
    let file = wait_for_file(out, names.len(), Duration::from_secs(30));
    assert_exactly_once(&file, names);
}

#[test]
fn a_second_intake_is_refused_naming_the_first_and_each_file_is_once() {
    let bed = Bed::start();
    let out = bed.path("out.jsonl");
    let mut names = drop_files(&bed.drop, 20, 0);
    let (first, c) = bed.node("first", "intake", Some(&out), NO_ENTITIES);
    let (worker, _) = bed.node("worker", "worker", None, NO_ENTITIES);
    wait_for_lines(&c, 1, Duration::from_secs(120), &[&first, &worker]);
    // A second operator starts another node that intakes, on the same cluster.
    let (mut second, _) = bed.node("second", "all", None, NO_ENTITIES);
    let status = second.exited_within(Duration::from_secs(60));
    let log = second.log();
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(2),
        "the second intake exits with a refusal; its log:\n{log}"
    );
    let drop = std::fs::canonicalize(&bed.drop).unwrap();
    for want in [
        "another intake holds".to_string(),
        format!("pid {}", first.pid()),
        format!("drop folder {}", drop.display()),
        "One intake per cluster: stop it, or give this node `cluster.role".to_string(),
    ] {
        assert!(log.contains(&want), "{want:?} not in its log:\n{log}");
    }
    let line = wait_intake(&c, first.pid(), Duration::from_secs(30));
    assert!(line.contains(&format!(", pid {},", first.pid())), "{line}");
    names.extend(drop_files(&bed.drop, 20, 20));
    once_in_stream_and_file(&c, &out, &names, &[&first, &worker]);
}

#[test]
fn a_kill_9_intake_started_again_takes_its_own_lease_over_at_once() {
    let bed = Bed::start();
    let out = bed.path("out.jsonl");
    let mut names = drop_files(&bed.drop, 20, 0);
    let (mut intake, c) = bed.node("intake", "intake", Some(&out), NO_ENTITIES);
    let (worker, _) = bed.node("worker", "worker", None, NO_ENTITIES);
    wait_for_lines(&c, 5, Duration::from_secs(120), &[&intake, &worker]);
    intake.kill9();
    names.extend(drop_files(&bed.drop, 10, 20));
    // At once: its lease lives on for up to 4 s, and names the same node (host, state folder).
    let mut intake = Node::start(&bed.path("intake"), &c);
    assert_is_the_intake(&c, &mut intake, "the restarted intake");
    assert!(
        intake
            .log()
            .contains("took over this node's own intake lease"),
        "{}",
        intake.log()
    );
    once_in_stream_and_file(&c, &out, &names, &[&intake, &worker]);
}

#[test]
fn a_node_with_the_same_host_and_state_path_but_another_id_is_refused() {
    let bed = Bed::start();
    let out = bed.path("out.jsonl");
    let mut names = drop_files(&bed.drop, 10, 0);
    let (mut intake, c) = bed.node("intake", "intake", Some(&out), NO_ENTITIES);
    let (worker, _) = bed.node("worker", "worker", None, NO_ENTITIES);
    wait_for_lines(&c, 10, Duration::from_secs(120), &[&intake, &worker]);
    intake.kill9();
    // Another machine whose host name and state folder's path are the first's (one container
    // template started twice), while the first's lease lives on: its state folder holds
    // another id.
    let id = bed.path("intake").join("state").join("node.id");
    let first = std::fs::read_to_string(&id).unwrap_or_default();
    std::fs::write(&id, "0123456789abcdef0123456789abcdef\n").unwrap();
    let mut other = Node::start(&bed.path("intake"), &c);
    let status = other.exited_within(Duration::from_secs(60));
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(2),
        "the other machine is refused while the lease lives; its log:\n{}",
        other.log()
    );
    assert!(
        other.log().contains("another intake holds"),
        "{}",
        other.log()
    );
    assert_eq!(first.trim().len(), 32, "the first's id: {first:?}");
    // Once the lease has aged out (4 s TTL), it may be the intake.
    std::thread::sleep(Duration::from_secs(5));
    let mut other = Node::start(&bed.path("intake"), &c);
    assert_is_the_intake(&c, &mut other, "the other machine after the TTL");
    names.extend(drop_files(&bed.drop, 10, 10));
    once_in_stream_and_file(&c, &out, &names, &[&other, &worker]);
}

#[test]
fn after_a_clean_stop_another_node_is_the_intake_at_once() {
    let bed = Bed::start();
    let mut names = drop_files(&bed.drop, 10, 0);
    let (mut first, c) = bed.node("first", "intake", None, NO_ENTITIES);
    let (worker, _) = bed.node("worker", "worker", None, NO_ENTITIES);
    wait_for_lines(&c, 10, Duration::from_secs(120), &[&first, &worker]);
    let status = first.stop(Duration::from_secs(30));
    assert!(
        status.is_some_and(|s| s.success()),
        "{status:?}\n{}",
        first.log()
    );
    // Another node, its own state folder (its `published.jsonl` empty): not refused.
    let (mut second, _) = bed.node("second", "intake", None, NO_ENTITIES);
    assert_is_the_intake(&c, &mut second, "the second intake");
    assert!(
        first.log().contains("released the intake lease"),
        "{}",
        first.log()
    );
    names.extend(drop_files(&bed.drop, 10, 10));
    let lines = wait_for_lines(&c, 20, Duration::from_secs(180), &[&second, &worker]);
    assert_exactly_once(&lines, &names);
}

#[test]
fn a_deleted_intake_bucket_is_made_again_and_the_intake_takes_its_lease_again() {
    let bed = Bed::start();
    let mut names = drop_files(&bed.drop, 5, 0);
    let (intake, c) = bed.node("intake", "intake", None, NO_ENTITIES);
    let (worker, _) = bed.node("worker", "worker", None, NO_ENTITIES);
    wait_for_lines(&c, 5, Duration::from_secs(120), &[&intake, &worker]);
    with_js(&bed.url, |js| async move {
        js.delete_stream("KV_T_intake").await.unwrap();
    });
    // No file comes: the intake still notices within seconds and takes its lease again.
    std::thread::sleep(Duration::from_secs(6));
    let line = wait_intake(&c, intake.pid(), Duration::from_secs(30));
    assert!(line.contains(&format!(", pid {},", intake.pid())), "{line}");
    names.extend(drop_files(&bed.drop, 5, 5));
    let lines = wait_for_lines(&c, 10, Duration::from_secs(120), &[&intake, &worker]);
    assert_exactly_once(&lines, &names);
}
