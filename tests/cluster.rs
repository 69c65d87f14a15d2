//! The cluster mode against real servers: a 3-node JetStream cluster and dropline nodes as
//! child processes (harness in `cluster_util`): a worker killed mid-run, the same decisions as
//! the single-node mode, and `cluster status` when two of the three servers are gone.

mod cluster_util;
mod util;

use cluster_util::*;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

#[test]
fn intake_and_two_workers_emit_each_file_once_through_a_worker_kill() {
    let bed = Bed::start();
    let out = bed.path("out.jsonl");
    let mut names = drop_files(&bed.drop, 100, 0);
    let (intake, c) = bed.node("node0", "intake", Some(&out), NO_ENTITIES);
    let (mut w1, _) = bed.node("node1", "worker", None, NO_ENTITIES);
    // A worker: a second node that intakes ("all") would be refused (one intake per cluster).
    let (w2, _) = bed.node("node2", "worker", None, NO_ENTITIES);
    wait_for_lines(&c, 20, Duration::from_secs(120), &[&intake, &w1, &w2]);
    // A worker dies mid-run with files taken and not acknowledged; more files keep coming.
    names.extend(drop_files(&bed.drop, 100, 100));
    std::thread::sleep(Duration::from_millis(300));
    w1.kill9();
    let lines = wait_for_lines(&c, 200, Duration::from_secs(180), &[&intake, &w2]);
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
    // The buckets allow direct gets, which a lagging replica may answer: the status catches
    // up within a few heartbeats.
    let live = format!("-{}", w2.pid());
    let status = util::wait::poll(
        Duration::from_secs(30),
        Duration::from_millis(500),
        || cluster_cmd(&c, &["status"]),
        |status| status.contains(&live),
    );
    assert!(
        status.contains("T_OUT") && status.contains("decider:"),
        "{status}"
    );
    assert!(status.contains("replicas 3"), "R3 streams: {status}");
    assert!(
        status.contains(&live),
        "the live nodes are listed: {status}"
    );
}

#[test]
fn decisions_match_the_single_node_mode_for_the_same_order() {
    let bed = Bed::start();
    // Seeds, near copies (a sentence added), exact copies and unrelated articles.
    let mut n = 0;
    for entry in std::fs::read_dir(util::seeds()).unwrap() {
        let body = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        let near = format!("{body}\nOne more line was added here.\n");
        std::fs::write(bed.drop.join(format!("s{n}.txt")), &body).unwrap();
        std::fs::write(bed.drop.join(format!("s{n}-near.txt")), near).unwrap();
        std::fs::write(bed.drop.join(format!("s{n}-copy.txt")), &body).unwrap();
        n += 1;
    }
    drop_files(&bed.drop, 20, 0);
    let total = std::fs::read_dir(&bed.drop).unwrap().count();
    let (node, config) = bed.node("node", "all", None, "");
    let lines = wait_for_lines(&config, total, Duration::from_secs(120), &[&node]);
    // The same files, named so that sorted path order is the cluster's work order.
    let again = bed.path("again");
    std::fs::create_dir(&again).unwrap();
    for (i, l) in lines.iter().enumerate() {
        let path = Path::new(l["source"]["path"].as_str().unwrap());
        let name = path.file_name().unwrap().to_string_lossy();
        std::fs::copy(bed.drop.join(&*name), again.join(format!("{i:04}-{name}"))).unwrap();
    }
    let single = process(&again);
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

#[test]
fn status_says_the_servers_lack_a_quorum_instead_of_naming_no_decider() {
    let mut bed = Bed::start();
    let names = drop_files(&bed.drop, 20, 0);
    let (node, c) = bed.node("node0", "all", None, NO_ENTITIES);
    wait_for_lines(&c, names.len(), Duration::from_secs(120), &[&node]);
    let status = cluster_cmd(&c, &["status"]);
    assert!(!status.contains("NO LEADER"), "{status}");
    assert!(!status.contains("decider: none"), "{status}");
    // Right after the last line, not a lease renewal later: the committed sequence is the
    // output stream's last line's. Before, it was the lease's, up to a second old ("work
    // sequence 0 committed, lag 20" in a probe).
    assert!(
        status.contains("work sequence 20 committed, lag 0,"),
        "{status}"
    );
    // Two of three servers gone: the last one still answers with what it last saw, but no
    // stream or bucket has a leader, and the node that runs can renew nothing.
    bed.nats.kill(1);
    bed.nats.kill(2);
    // A server that led a stream notices the lost quorum only after a while: wait for it.
    let leaderless = |status: &str| {
        status
            .lines()
            .filter(|l| l.trim_start().starts_with("T_") && l.contains(" messages "))
            .all(|l| l.contains("NO LEADER"))
            && status.contains("decider: (no answer: bucket")
            && status.contains("intake: (no answer: bucket")
            && status.contains("nodes:\n  (cannot list them: bucket")
    };
    let status = util::wait::poll(
        Duration::from_secs(90),
        Duration::from_secs(1),
        || {
            let start = std::time::Instant::now();
            let status = cluster_cmd(&c, &["status"]);
            eprintln!("status took {:?}", start.elapsed());
            status
        },
        |status| leaderless(status),
    );
    assert!(leaderless(&status), "{status}");
    assert!(status.contains("the servers lack a quorum"), "{status}");
    assert_eq!(status.matches("NO LEADER").count(), 3, "{status}");
}
