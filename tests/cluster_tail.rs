//! `dropline cluster tail` and `status` with one of the three servers killed. nats-server before
//! 2.12 may place the tail's reader (an ephemeral consumer) on the dead server for minutes after it
//! died, and a quarter to a third of the requests then time out (src/cluster/ordered.rs); each tail
//! must still print every line, and each status list every node.

mod cluster_util;
mod util;

use cluster_util::*;
use std::process::Command;
use std::time::{Duration, Instant};

#[test]
fn every_tail_and_status_reads_through_a_killed_server() {
    let mut bed = Bed::start();
    let out = bed.path("out.jsonl");
    let names = drop_files(&bed.drop, 30, 0);
    let (intake, c) = bed.node("intake", "intake", Some(&out), NO_ENTITIES);
    let (worker, _) = bed.node("worker", "worker", None, NO_ENTITIES);
    wait_for_lines(&c, 30, Duration::from_secs(180), &[&intake, &worker]);
    bed.nats.kill(1);
    // Eight tails, each with a new reader: before the fix, each one failed with a chance of a
    // quarter to a third (6 of 22 in a probe), so all eight passed about once in 10 to 25 runs.
    for i in 0..8 {
        let start = Instant::now();
        let run = Command::new(dropline_bin())
            .args(["cluster", "tail", "--once", "--config"])
            .arg(&c)
            .output()
            .expect("run dropline cluster tail");
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(
            run.status.success(),
            "tail {i} failed after {:?}: {stderr}",
            start.elapsed()
        );
        assert_exactly_once(&util::stdout_records(&run), &names);
        eprintln!(
            "tail {i}: {:?}, a reader asked for again {} times",
            start.elapsed(),
            stderr.matches("asking again").count()
        );
        // `cluster status` lists both nodes each time (it used to list the nodes through a
        // consumer of its own, and showed none when that request timed out).
        let run = Command::new(dropline_bin())
            .args(["cluster", "status", "--config"])
            .arg(&c)
            .output()
            .expect("run dropline cluster status");
        assert!(run.status.success(), "status {i} failed");
        let status = String::from_utf8_lossy(&run.stdout);
        let listed = status.lines().filter(|l| l.contains(" role ")).count();
        assert_eq!(listed, 2, "status {i} lists {listed} nodes:\n{status}");
        assert!(!status.contains("(no answer"), "status {i}:\n{status}");
    }
}
