//! Live reload: SIGHUP re-reads the config file; include rules, rescan interval, settle time
//! and the log level change without a restart, and an invalid file changes nothing.

mod util;

use std::process::Command;
use std::time::Duration;
use util::{bin, signal, spawn_watching, wait_exit, Workspace};

#[test]
fn sighup_reloads_include_rules_and_the_daemon_keeps_running() {
    let ws = Workspace::new();
    let cfg = ws.config("");
    let mut cmd = Command::new(bin());
    cmd.arg("run").arg("--config").arg(&cfg);
    let mut d = spawn_watching(cmd);
    ws.drop_file("a.txt", b"Alpha\nA plain article.");
    ws.drop_file("feed.csv", b"Feed\nA csv that is an article after all.");
    let recs = ws.wait_for(1, Duration::from_secs(20));
    // Two rescans (1 s each): the csv stays unread under the default rules.
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(ws.records().len(), 1, "{recs:#?}");
    // First an invalid config: the reload fails and changes nothing.
    let text = util::edit_config(&cfg, |t| {
        t.replace(
            "[source]\n",
            "[source]\ninclude = [\"*.txt\", \"*.csv\"]\nbatch_nonsense_is_not_here = 1\n",
        )
    });
    signal(&d, "HUP");
    std::thread::sleep(Duration::from_millis(2500));
    assert!(
        d.try_wait().unwrap().is_none(),
        "SIGHUP must not kill the daemon"
    );
    assert_eq!(ws.records().len(), 1);
    std::fs::write(&cfg, text.replace("batch_nonsense_is_not_here = 1\n", "")).unwrap();
    signal(&d, "HUP");
    let recs = ws.wait_for(2, Duration::from_secs(20));
    signal(&d, "TERM");
    assert!(wait_exit(&mut d, Duration::from_secs(20)).is_some_and(|s| s.success()));
    assert_eq!(recs.len(), 2, "{recs:#?}");
    assert!(recs[1]["source"]["path"]
        .as_str()
        .unwrap()
        .ends_with("/feed.csv"));
}

#[test]
fn sighup_makes_a_shorter_rescan_interval_and_settle_live() {
    let ws = Workspace::new();
    // Polling only, with an hour to settle and between scans: a new file waits half an hour.
    let cfg = ws.config("");
    let slow = util::edit_config(&cfg, |t| {
        t.replace("settle = \"200ms\"", "settle = \"1h\"\npoll_only = true")
            .replace("rescan_interval = \"1s\"", "rescan_interval = \"1h\"")
    });
    let mut cmd = Command::new(bin());
    cmd.arg("run").arg("--config").arg(&cfg);
    let mut d = spawn_watching(cmd);
    ws.drop_file("a.txt", b"Alpha\nA plain article.");
    // The control: under the running values the file stays unread.
    assert!(ws.wait_for(1, Duration::from_millis(1500)).is_empty());
    let fast = slow
        .replace("settle = \"1h\"", "settle = \"300ms\"")
        .replace("rescan_interval = \"1h\"", "rescan_interval = \"200ms\"");
    std::fs::write(&cfg, fast).unwrap();
    signal(&d, "HUP");
    let recs = ws.wait_for(1, Duration::from_secs(5));
    assert_eq!(
        recs.len(),
        1,
        "the file must appear within seconds of the reload"
    );
    assert!(recs[0]["source"]["path"]
        .as_str()
        .unwrap()
        .ends_with("/a.txt"));
    // And later files too, found by the 200 ms polls.
    ws.drop_file("b.txt", b"Beta\nAnother plain article.");
    assert_eq!(ws.wait_for(2, Duration::from_secs(5)).len(), 2);
    signal(&d, "TERM");
    assert!(wait_exit(&mut d, Duration::from_secs(20)).is_some_and(|s| s.success()));
}

#[test]
fn sighup_changes_the_log_level_live() {
    use std::io::BufRead;
    let ws = Workspace::new();
    let cfg = ws.config("[log]\nlevel = \"warn\"\n");
    let mut d = Command::new(bin())
        .arg("run")
        .arg("--config")
        .arg(&cfg)
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = d.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    // Up and scanning (rescans every second) but silent at warn.
    ws.drop_file("a.txt", b"Alpha\nA plain article.");
    assert_eq!(ws.wait_for(1, Duration::from_secs(20)).len(), 1);
    std::thread::sleep(Duration::from_millis(1500));
    let before: Vec<String> = rx.try_iter().collect();
    assert!(
        before
            .iter()
            .all(|l| !l.contains("INFO") && !l.contains("DEBUG")),
        "{before:#?}"
    );
    util::edit_config(&cfg, |t| t.replace("level = \"warn\"", "level = \"debug\""));
    signal(&d, "HUP");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut after = Vec::new();
    while std::time::Instant::now() < deadline
        && !after
            .iter()
            .any(|l: &String| l.contains("scanning drop folder"))
    {
        if let Ok(l) = rx.recv_timeout(Duration::from_millis(200)) {
            after.push(l);
        }
    }
    signal(&d, "TERM");
    assert!(wait_exit(&mut d, Duration::from_secs(20)).is_some_and(|s| s.success()));
    assert!(
        after.iter().any(|l| l.contains("config reloaded")),
        "{after:#?}"
    );
    assert!(
        after
            .iter()
            .any(|l| l.contains("DEBUG") && l.contains("scanning drop folder")),
        "{after:#?}"
    );
    assert!(
        after.iter().all(|l| !l.contains("\x1b[")),
        "no colour codes when stderr is not a terminal"
    );
}
