//! kill -9 at several instants of a run, then restart: every file appears exactly once.

mod util;

use std::collections::HashMap;
use std::process::Command;
use std::time::Duration;
use util::Workspace;

const FILES: usize = 4000;

#[test]
fn kill_9_at_any_instant_loses_nothing_and_emits_nothing_twice() {
    kill_9_at_six_instants(&[]);
}

/// The same with the ledger compacted while running, each time it has grown by 32 KiB:
/// kills land while a compaction is written, and between its rename and the next commit.
#[test]
fn kill_9_while_the_ledger_compacts_loses_nothing_and_emits_nothing_twice() {
    let log = kill_9_at_six_instants(&[("DROPLINE_TEST_LEDGER_COMPACT_EVERY", "32768")]);
    let count = |what: &str| log.iter().filter(|l| l.contains(what)).count();
    let (started, swapped) = (count("compacting the ledger"), count("ledger compacted"));
    eprintln!("compactions started {started}, swapped in {swapped}");
    assert!(
        started >= 2 && swapped >= 1,
        "started {started}, swapped in {swapped}"
    );
    let failed: Vec<_> = log
        .iter()
        .filter(|l| l.contains("cannot compact"))
        .collect();
    assert!(failed.is_empty(), "{failed:#?}");
}

/// Kills a 4,000-file run at six instants after its first commit, then runs it to the end
/// (`env` for each daemon) and checks each file is in the output once; returns the daemons'
/// logs.
fn kill_9_at_six_instants(env: &[(&str, &str)]) -> Vec<String> {
    let ws = Workspace::new();
    let cfg = ws.config(
        "[pipeline]\nmax_in_flight = 256\nqueue_capacity = 32\n[entities]\nenabled = false\n",
    );
    util::edit_config(&cfg, |t| {
        t.replace("[output]\n", "[output]\nbatch_max = 16\n")
            .replace("settle = \"200ms\"", "settle = \"0s\"")
    });
    for i in 0..FILES {
        let body = format!(
            "Headline {i}\nArticle number {i} has its own body, {}.\n",
            "words ".repeat(i % 50)
        );
        std::fs::write(ws.drop_dir().join(format!("{i:05}.txt")), body).unwrap();
    }
    let mut partial_kills = 0;
    let mut logs = Vec::new();
    let count = || {
        std::fs::read_to_string(ws.out())
            .unwrap_or_default()
            .lines()
            .count()
    };
    for delay_ms in [0, 5, 20, 50, 100, 200] {
        let before = count();
        let mut cmd = Command::new(util::bin());
        cmd.arg("run")
            .arg("--config")
            .arg(&cfg)
            .envs(env.iter().copied());
        let (mut d, log) = util::spawn_logged(cmd);
        // Kill at a chosen instant after this run's first commit, whatever start-up costs.
        util::wait::poll(
            Duration::from_secs(30),
            Duration::from_millis(1),
            count,
            |&n| n != before,
        );
        std::thread::sleep(Duration::from_millis(delay_ms));
        d.kill().unwrap(); // SIGKILL
        d.wait().unwrap();
        logs.extend(log.lock().unwrap().drain(..));
        let lines = std::fs::read_to_string(ws.out())
            .unwrap_or_default()
            .lines()
            .count();
        eprintln!("killed after {delay_ms} ms: {lines} lines");
        if lines > 0 && lines < FILES {
            partial_kills += 1;
        }
    }
    assert!(
        partial_kills >= 2,
        "kills did not land mid-run ({partial_kills}); the test proves nothing"
    );
    let out = Command::new(util::bin())
        .args(["run", "--once", "--config"])
        .arg(&cfg)
        .envs(env.iter().copied())
        .env("RUST_LOG", "info")
        .output()
        .expect("run dropline");
    logs.extend(
        String::from_utf8_lossy(&out.stderr)
            .lines()
            .map(str::to_string),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let recs = ws.records();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for r in &recs {
        // Synthetic bodies of one shape are partly boilerplate to the per-source line memory:
        // a file may end as a document or an error record, but always as exactly one line.
        assert!(r["type"] == "document" || r["type"] == "error", "{r}");
        *seen
            .entry(r["source"]["path"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "emitted twice: {twice:?}");
    assert_eq!(seen.len(), FILES, "lost files");
    assert_eq!(recs.len(), FILES);
    logs
}
