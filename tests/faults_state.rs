//! State and sink faults an operator causes: the output deleted, rotated or truncated under a
//! running daemon, a damaged or missing ledger, two daemons on one state dir, SIGHUP, and the
//! configs that would make the daemon eat its own output or state.

mod util;

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;
use util::{dropline, record_paths, run_once_with, signal, wait_exit, Workspace};

const WAIT: Duration = Duration::from_secs(20);

fn body(i: usize) -> Vec<u8> {
    format!("Headline {i}\nArticle {i} tells its own story in plain words.\n").into_bytes()
}

fn stop(mut d: std::process::Child) {
    signal(&d, "TERM");
    let status = wait_exit(&mut d, WAIT).expect("daemon did not stop");
    assert!(status.success(), "{status:?}");
}

/// Waits until the JSON Lines file at `path` holds `n` records.
fn wait_lines(path: &Path, n: usize) -> Vec<String> {
    let every = Duration::from_millis(20);
    util::wait::poll(WAIT, every, || record_paths(path), |p| p.len() >= n)
}

fn assert_once(paths: &[String], expected: usize) {
    let distinct: HashSet<_> = paths.iter().collect();
    assert_eq!(distinct.len(), paths.len(), "a file twice: {paths:?}");
    assert_eq!(paths.len(), expected, "{paths:?}");
}

#[test]
fn output_deleted_while_running_is_recreated_at_its_path() {
    let ws = Workspace::new();
    let cfg = ws.config("");
    let d = ws.spawn_daemon(&cfg, &[]);
    ws.drop_file("a.txt", &body(1));
    assert_eq!(wait_lines(&ws.out(), 1).len(), 1);
    std::fs::remove_file(ws.out()).unwrap();
    ws.drop_file("b.txt", &body(2));
    let now = wait_lines(&ws.out(), 1);
    assert_eq!(now.len(), 1, "the file dropped after rm never appeared");
    assert!(now[0].ends_with("b.txt"));
    stop(d);
    // A restart neither re-emits nor refuses the recreated output.
    let out = run_once_with(&cfg, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_once(&record_paths(&ws.out()), 1);
}

#[test]
fn output_renamed_by_logrotate_create_continues_in_the_new_file() {
    let ws = Workspace::new();
    let cfg = ws.config("");
    let d = ws.spawn_daemon(&cfg, &[]);
    ws.drop_file("a.txt", &body(1));
    wait_lines(&ws.out(), 1);
    let rotated = ws.tmp.path().join("out.jsonl.1");
    std::fs::rename(ws.out(), &rotated).unwrap();
    std::fs::write(ws.out(), "").unwrap(); // logrotate's `create`
    signal(&d, "HUP"); // its postrotate
    ws.drop_file("b.txt", &body(2));
    ws.drop_file("c.txt", &body(3));
    let now = wait_lines(&ws.out(), 2);
    stop(d);
    assert_once(&now, 2);
    assert_once(&record_paths(&rotated), 1);
}

#[test]
fn copytruncate_then_kill_9_then_restart_duplicates_and_tears_nothing() {
    let ws = Workspace::new();
    let cfg = ws.config("");
    let mut d = ws.spawn_daemon(&cfg, &[]);
    ws.drop_file("a.txt", &body(1));
    ws.drop_file("b.txt", &body(2));
    wait_lines(&ws.out(), 2);
    let copy = ws.tmp.path().join("out.jsonl.1");
    std::fs::copy(ws.out(), &copy).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(ws.out())
        .unwrap()
        .set_len(0)
        .unwrap();
    // One batch after the truncation (written at the new end), one file still on its way.
    ws.drop_file("c.txt", &body(3));
    wait_lines(&ws.out(), 1);
    ws.drop_file("d.txt", &body(4));
    d.kill().unwrap();
    d.wait().unwrap();
    let out = run_once_with(&cfg, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut all = record_paths(&copy);
    all.extend(record_paths(&ws.out()));
    assert_once(&all, 4);
}

#[test]
fn fresh_state_never_truncates_an_existing_output() {
    let ws = Workspace::new();
    let cfg = ws.config("");
    let before = "{\"type\":\"document\",\"source\":{\"path\":\"x\"}}\n".repeat(3);
    std::fs::write(ws.out(), &before).unwrap();
    ws.drop_file("a.txt", &body(1));
    let out = run_once_with(&cfg, &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no record of") && err.contains("out.jsonl"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(ws.out()).unwrap(), before);
}

/// Runs six files with done = move, damages the ledger with `damage`, runs again with one
/// more file: returns the second run's output and the paths now in the output.
fn after_ledger_damage(damage: impl Fn(&Path)) -> (std::process::Output, Vec<String>) {
    let ws = Workspace::new();
    let cfg = ws.config("");
    let mv = ["--set", "source.done=move", "--set", "output.batch_max=2"];
    for i in 0..6 {
        ws.drop_file(&format!("{i}.txt"), &body(i));
    }
    let out = run_once_with(&cfg, &mv);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_once(&record_paths(&ws.out()), 6);
    damage(&ws.state_dir().join("ledger.jsonl"));
    ws.drop_file("new.txt", &body(7));
    let out = run_once_with(&cfg, &mv);
    (out, record_paths(&ws.out()))
}

#[test]
fn ledger_cut_in_half_keeps_every_committed_line() {
    let (out, paths) = after_ledger_damage(|ledger| {
        let len = std::fs::metadata(ledger).unwrap().len();
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(ledger)
            .unwrap();
        f.set_len(len / 2).unwrap();
    });
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_once(&paths, 7);
}

#[test]
fn one_garbage_line_mid_ledger_keeps_its_neighbours_and_every_line() {
    let (out, paths) = after_ledger_damage(|ledger| {
        let text = std::fs::read_to_string(ledger).unwrap();
        let mut lines: Vec<&str> = text.lines().collect();
        let mid = lines.len() / 2;
        lines.insert(mid, "not json at all");
        // And one bit flipped inside a real line: its checksum no longer matches.
        let flipped = lines[mid + 1].replacen("\"out\":", "\"out\" :", 1);
        lines[mid + 1] = &flipped;
        std::fs::write(ledger, lines.join("\n") + "\n").unwrap();
    });
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_once(&paths, 7);
}

#[test]
fn emptied_ledger_is_refused_not_obeyed() {
    let (out, paths) = after_ledger_damage(|ledger| std::fs::write(ledger, "").unwrap());
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no record of"));
    assert_once(&paths, 6);
}

#[test]
fn second_process_on_one_state_dir_exits_2_naming_the_holder() {
    let ws = Workspace::new();
    let cfg = ws.config("");
    let d = ws.spawn_daemon(&cfg, &[]);
    let pid = format!("pid {}", d.id());
    let out = run_once_with(&cfg, &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&pid), "{err}");
    let state = format!("state.dir={}", ws.state_dir().display());
    let seed = util::seeds();
    let seed = seed.to_str().unwrap();
    let out = dropline(&[
        "process",
        "--set",
        &state,
        "--set",
        "entities.enabled=false",
        seed,
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(&pid), "{err}");
    stop(d);
}

#[test]
fn sighup_never_kills_the_daemon() {
    let ws = Workspace::new();
    let cfg = ws.config("");
    let mut d = ws.spawn_daemon(&cfg, &[]);
    for i in 0..3 {
        signal(&d, "HUP");
        std::thread::sleep(Duration::from_millis(100));
        ws.drop_file(&format!("{i}.txt"), &body(i));
    }
    assert_once(&wait_lines(&ws.out(), 3), 3);
    assert!(d.try_wait().unwrap().is_none(), "died of SIGHUP");
    stop(d);
}

#[test]
fn dangerous_configs_exit_2_from_check_and_run_naming_the_key() {
    let ws = Workspace::new();
    let cfg = ws.config("");
    let cfg_s = cfg.to_str().unwrap();
    let drop = ws.drop_dir();
    let in_drop = format!("output.path={}", drop.join("out.jsonl").display());
    let state_in_drop = format!("state.dir={}", drop.join("state").display());
    let on_ledger = format!(
        "output.path={}",
        ws.state_dir().join("ledger.jsonl").display()
    );
    let on_errors = format!(
        "output.path={}",
        ws.state_dir().join("errors.jsonl").display()
    );
    let cases: [(&str, &str); 6] = [
        (&in_drop, "output.path"),
        (&state_in_drop, "state.dir"),
        (&on_ledger, "output.path"),
        (&on_errors, "output.path"),
        ("source.done_dir=../../x", "source.done_dir"),
        ("source.rescan_interval=50ms", "source.rescan_interval"),
    ];
    for (set, key) in cases {
        for cmd in ["check", "run"] {
            let out = dropline(&[cmd, "--config", cfg_s, "--set", set]);
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{cmd} {set}: {err}");
            assert!(err.contains(key), "{cmd} {set}: {err}");
        }
    }
    let missing = format!("source.dir={}", ws.tmp.path().join("nope").display());
    let out = dropline(&["run", "--config", cfg_s, "--set", &missing]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("source.dir"));
}
