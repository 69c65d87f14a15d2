//! The daemon on a live drop folder: readiness, restarts, done-actions, shutdown, metrics.

mod util;

use std::io::Write;
use std::time::Duration;
use util::{free_port, http_get, metric, signal, wait_exit, Workspace};

const WAIT: Duration = Duration::from_secs(20);

#[test]
fn renamed_in_file_is_processed_once_and_restart_re_emits_nothing() {
    let ws = Workspace::new();
    // A settle time no test waits for: only the rename can make the file ready.
    let cfg = ws.config("");
    util::edit_config(&cfg, |t| t.replace("200ms", "1h"));
    let mut d = ws.spawn_daemon(&cfg, &[]);
    ws.drop_file("a.txt", b"Headline\nBody of the article.");
    let recs = ws.wait_for(1, WAIT);
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0]["title"], "Headline");
    assert_eq!(recs[0]["text"], "Body of the article.");
    signal(&d, "TERM");
    assert!(wait_exit(&mut d, WAIT).is_some_and(|s| s.success()));

    let mut d = ws.spawn_daemon(&cfg, &[]);
    ws.drop_file("b.txt", b"Second\nAnother body.");
    let recs = ws.wait_for(2, WAIT);
    signal(&d, "TERM");
    assert!(wait_exit(&mut d, WAIT).is_some_and(|s| s.success()));
    let paths: Vec<_> = ws
        .records()
        .iter()
        .map(|r| r["source"]["path"].clone())
        .collect();
    assert_eq!(recs.len(), 2, "{paths:?}");
    assert!(paths[1].as_str().unwrap().ends_with("b.txt"));
}

#[test]
fn a_file_written_slowly_is_read_only_when_complete() {
    let ws = Workspace::new();
    let cfg = ws.config("");
    let mut d = ws.spawn_daemon(&cfg, &[]);
    let path = ws.drop_dir().join("slow.txt");
    let mut f = std::fs::File::create(&path).unwrap();
    for i in 0..6 {
        writeln!(f, "Line number {i} of a slowly written article.").unwrap();
        f.flush().unwrap();
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(f);
    let recs = ws.wait_for(1, WAIT);
    std::thread::sleep(Duration::from_millis(500));
    signal(&d, "TERM");
    assert!(wait_exit(&mut d, WAIT).is_some_and(|s| s.success()));
    let recs_after = ws.records();
    assert_eq!(recs_after.len(), 1, "{recs_after:?}");
    assert!(recs[0]["text"].as_str().unwrap().contains("Line number 5"));
}

#[test]
fn sigterm_drains_everything_dropped_before_it() {
    let ws = Workspace::new();
    let cfg = ws.config("");
    for i in 0..200 {
        ws.drop_file(
            &format!("{i:04}.txt"),
            format!("Title {i}\nBody number {i}.").as_bytes(),
        );
    }
    let mut d = ws.spawn_daemon(&cfg, &[]);
    let first = ws.wait_for(1, WAIT);
    assert!(!first.is_empty());
    signal(&d, "TERM");
    assert!(wait_exit(&mut d, WAIT).is_some_and(|s| s.success()));
    // Whatever was admitted before the signal is committed; the rest comes on the next run.
    let out = ws.run_once(&cfg);
    assert!(out.status.success());
    let recs = ws.records();
    assert_eq!(recs.len(), 200);
    let mut paths: Vec<String> = recs
        .iter()
        .map(|r| r["source"]["path"].as_str().unwrap().to_string())
        .collect();
    paths.sort();
    paths.dedup();
    assert_eq!(paths.len(), 200);
}

#[test]
fn done_move_moves_only_committed_files() {
    let ws = Workspace::new();
    let cfg = ws.config("");
    util::edit_config(&cfg, |t| {
        t.replace("[source]\n", "[source]\ndone = \"move\"\n")
    });
    ws.drop_file("ok.txt", b"Headline\nA fine body.");
    // Real binary: a UTF-16 byte-order mark alone would now be decoded as text.
    ws.drop_file("bad.txt", b"\x7fELF\x02\x01\x01 binary-ish \x00");
    let out = ws.run_once(&cfg);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(ws.drop_dir().join("done/ok.txt").exists());
    assert!(ws.drop_dir().join("failed/bad.txt").exists());
    assert!(!ws.drop_dir().join("ok.txt").exists());
    assert_eq!(ws.records().len(), 2);
    let errors = util::read_records(&ws.state_dir().join("errors.jsonl"));
    assert_eq!(errors.len(), 1);
    assert!(errors[0]["source"]["path"]
        .as_str()
        .unwrap()
        .ends_with("bad.txt"));
}

#[test]
fn metrics_endpoint_agrees_with_the_output() {
    let ws = Workspace::new();
    let port = free_port();
    let cfg = ws.config("");
    util::edit_config(&cfg, |t| {
        t.replace(
            "[metrics]\nenabled = false",
            &format!("[metrics]\nenabled = true\nlisten = \"127.0.0.1:{port}\""),
        )
    });
    for entry in std::fs::read_dir(util::seeds()).unwrap() {
        let p = entry.unwrap().path();
        ws.drop_file(
            p.file_name().unwrap().to_str().unwrap(),
            &std::fs::read(&p).unwrap(),
        );
    }
    ws.drop_file(
        "copy.txt",
        &std::fs::read(util::seeds().join("000_5072810ba3105ce7.txt")).unwrap(),
    );
    ws.drop_file("empty.txt", b"");
    let mut d = ws.spawn_daemon(&cfg, &[]);
    let recs = ws.wait_for(7, WAIT);
    assert_eq!(recs.len(), 7);
    let mut body = None;
    for _ in 0..100 {
        body = http_get(port, "/metrics");
        // Every series exists from start-up at zero: wait for the count, not the name.
        if body
            .as_deref()
            .is_some_and(|b| metric(b, "dropline_files_processed_total") == Some(7.0))
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // A scrape is no snapshot (counters are read one by one): the counters the sink bumps
    // before the processed count are read from a scrape taken after that one.
    if body.is_some() {
        body = http_get(port, "/metrics");
    }
    signal(&d, "TERM");
    assert!(wait_exit(&mut d, WAIT).is_some_and(|s| s.success()));
    let body = body.expect("metrics endpoint answered");
    assert_eq!(
        metric(&body, "dropline_files_processed_total"),
        Some(7.0),
        "{body}"
    );
    assert_eq!(metric(&body, "dropline_files_discovered_total"), Some(7.0));
    assert_eq!(
        metric(&body, "dropline_files_failed_total{stage=\"read\"}"),
        Some(1.0)
    );
    let dups = recs
        .iter()
        .filter(|r| r["dedup"]["status"] == "exact_duplicate")
        .count();
    assert_eq!(dups, 1);
    assert_eq!(
        metric(
            &body,
            "dropline_documents_emitted_total{status=\"exact_duplicate\"}"
        ),
        Some(1.0)
    );
    let bytes: u64 = recs
        .iter()
        .map(|r| r["source"]["bytes"].as_u64().unwrap())
        .sum();
    assert_eq!(
        metric(&body, "dropline_bytes_read_total"),
        Some(bytes as f64)
    );
    assert!(
        body.contains("dropline_end_to_end_seconds_bucket"),
        "latency is a histogram"
    );
    assert!(body.contains("dropline_stage_seconds_bucket{stage=\"read\""));
    assert!(body.contains("dropline_rescans_total{reason=\"startup\"} 1"));
}

#[test]
fn poll_only_mode_finds_files_without_events() {
    let ws = Workspace::new();
    let cfg = ws.config("");
    util::edit_config(&cfg, |t| {
        t.replace("[source]\n", "[source]\npoll_only = true\n")
    });
    let mut d = ws.spawn_daemon(&cfg, &[]);
    std::fs::write(ws.drop_dir().join("polled.txt"), "Polled\nFound by a scan.").unwrap();
    let recs = ws.wait_for(1, WAIT);
    signal(&d, "TERM");
    assert!(wait_exit(&mut d, WAIT).is_some_and(|s| s.success()));
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0]["title"], "Polled");
    assert_eq!(recs[0]["text"], "Found by a scan.");
}

#[test]
fn a_second_signal_exits_at_once_and_state_stays_consistent() {
    let ws = Workspace::new();
    let cfg = ws.config("[output]\nbatch_max = 8\n");
    // Two [output] tables are invalid TOML: fold the extra key into the first one.
    util::edit_config(&cfg, |t| {
        t.replacen("[output]\nbatch_max = 8\n", "", 1)
            .replace("[output]\n", "[output]\nbatch_max = 8\n")
    });
    for i in 0..3000 {
        std::fs::write(
            ws.drop_dir().join(format!("{i:05}.txt")),
            format!("T{i}\nBody {i}."),
        )
        .unwrap();
    }
    let mut d = ws.spawn_daemon(&cfg, &[]);
    ws.wait_for(1, WAIT);
    signal(&d, "TERM");
    signal(&d, "INT");
    let status = wait_exit(&mut d, WAIT).expect("exited");
    let out = ws.run_once(&cfg);
    assert!(out.status.success());
    let recs = ws.records();
    let mut paths: Vec<_> = recs
        .iter()
        .map(|r| r["source"]["path"].as_str().unwrap().to_string())
        .collect();
    paths.sort();
    paths.dedup();
    assert_eq!(
        (recs.len(), paths.len()),
        (3000, 3000),
        "first exit: {status}"
    );
}

#[test]
fn relative_drop_folder_sees_renames_and_records_keep_relative_paths() {
    let ws = Workspace::new();
    let cfg = ws.tmp.path().join("rel.toml");
    std::fs::write(
        &cfg,
        "[source]\ndir = \"drop\"\nsettle = \"1h\"\n[output]\nkind = \"file\"\npath = \"out.jsonl\"\n\
         [state]\ndir = \"state\"\n[metrics]\nenabled = false\n[entities]\nenabled = false\n",
    )
    .unwrap();
    let mut cmd = std::process::Command::new(util::bin());
    cmd.args(["run", "--config", "rel.toml"])
        .current_dir(ws.tmp.path());
    let mut d = util::spawn_watching(cmd);
    ws.drop_file("r.txt", b"Relative\nA body.");
    let recs = ws.wait_for(1, WAIT);
    signal(&d, "TERM");
    assert!(wait_exit(&mut d, WAIT).is_some_and(|s| s.success()));
    assert_eq!(
        recs.len(),
        1,
        "a rename into a relative drop folder was missed"
    );
    assert_eq!(recs[0]["source"]["path"], "drop/r.txt");
}

#[test]
fn a_burst_larger_than_the_pending_cap_is_processed_completely() {
    let ws = Workspace::new();
    let cfg = ws.config("");
    util::edit_config(&cfg, |t| {
        t.replace("[source]\n", "[source]\nmax_pending = 20\n")
    });
    let mut d = ws.spawn_daemon(&cfg, &[]);
    for i in 0..600 {
        ws.drop_file(
            &format!("{i:04}.txt"),
            format!("T{i}\nBody {i}.").as_bytes(),
        );
    }
    let recs = ws.wait_for(600, Duration::from_secs(30));
    signal(&d, "TERM");
    assert!(wait_exit(&mut d, WAIT).is_some_and(|s| s.success()));
    assert_eq!(recs.len(), 600);
}
