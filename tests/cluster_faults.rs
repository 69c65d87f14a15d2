//! The cluster at the scale: 5,000 files through 1 intake and 3 workers, with kill -9
//! of the decider and of one of the three nats-servers; and a lost quorum (two servers down for
//! 20 s) that the cluster waits out (harness in `cluster_util`).

mod cluster_util;
mod util;

use cluster_util::*;
use std::time::Duration;

#[test]
fn five_thousand_files_through_three_workers_survive_decider_and_server_kills() {
    let mut bed = Bed::start();
    let mut run = bed.intake_and_workers(2500, 3);
    let c = run.config.clone();
    wait_for_lines(&c, 500, Duration::from_secs(240), &run.nodes());
    // Kill -9 of the decider: another worker takes the lease and resumes.
    let pid = decider_pid(&c).expect("a decider holds the lease");
    let i = run
        .workers
        .iter()
        .position(|w| w.pid() == pid)
        .expect("the decider is a worker");
    run.workers[i].kill9();
    run.names.extend(drop_files(&bed.drop, 2500, 2500));
    wait_for_lines(&c, 2000, Duration::from_secs(240), &run.nodes());
    let successors = run
        .workers
        .iter()
        .filter(|w| w.pid() != 0 && w.log().contains("took the decider lease"))
        .count();
    assert_eq!(successors, 1, "one surviving worker took the lease over");
    // Kill -9 of one of the three servers: R3 streams keep a quorum of two.
    bed.nats.kill(1);
    let lines = wait_for_lines(&c, 5000, Duration::from_secs(300), &run.nodes());
    assert_exactly_once(&lines, &run.names);
    let file = wait_for_file(&run.out, 5000, Duration::from_secs(60));
    assert_eq!(file.len(), 5000);
    assert_exactly_once(&file, &run.names);
    // The server comes back and catches up; nothing is emitted twice meanwhile.
    bed.nats.restart(1);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(tail(&c).len(), 5000);
}

#[test]
fn a_lost_quorum_stalls_the_cluster_and_its_return_resumes_it_each_file_once() {
    let mut bed = Bed::start();
    let mut run = bed.intake_and_workers(200, 1);
    let (c, out) = (run.config.clone(), run.out.clone());
    wait_for_lines(&c, 50, Duration::from_secs(180), &run.nodes());
    // Two of three servers gone: nothing can be written; files keep arriving meanwhile.
    bed.nats.kill(1);
    bed.nats.kill(2);
    let at_kill = util::read_records(&out).len();
    run.names.extend(drop_files(&bed.drop, 100, 200));
    std::thread::sleep(Duration::from_secs(20));
    // Lines in flight at the kill may still land; the new files cannot be decided.
    let during = util::read_records(&out).len();
    assert!(during < 300, "{during} lines without a quorum");
    eprintln!("lines: {at_kill} at the kill, {during} after 20 s without a quorum");
    bed.nats.restart(1);
    bed.nats.restart(2);
    let lines = wait_for_lines(&c, 300, Duration::from_secs(300), &run.nodes());
    assert_exactly_once(&lines, &run.names);
    let file = wait_for_file(&out, 300, Duration::from_secs(60));
    assert_eq!(
        file, lines,
        "the file sink holds the output stream, line for line"
    );
}
