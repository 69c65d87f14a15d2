use super::done::move_into;
use super::*;
use crate::model::{ErrorRecord, FileKey};
use std::collections::HashMap;

/// A file sink over `dir/out.jsonl` with a ledger and error log in `dir/state`.
fn sink(dir: &Path, fault: Option<FaultHook>) -> Sink {
    let state = dir.join("state");
    let out = dir.join("out.jsonl");
    let (ledger, rec) = Ledger::open(&state, Some(&out), 10).unwrap();
    let errors = OpenOptions::new()
        .create(true)
        .append(true)
        .open(state.join(crate::ledger::ERRORS_FILE))
        .unwrap();
    Sink {
        output: Output::open(Some(&out)).unwrap(),
        errors: Some((errors, rec.err_len)),
        ledger: Some(ledger),
        done: None,
        on_duplicate: OnDuplicate::Emit,
        batch_max: 16,
        admission: Arc::new(Admission::new(16, HashMap::new())),
        totals: Arc::new(Totals::default()),
        hangup: None,
        fault,
        stop: None,
    }
}

/// A batch of `n` error records (they go to the output and to errors.jsonl).
fn batch(first: u64, n: u64) -> Vec<Envelope> {
    (first..first + n)
        .map(|i| {
            let key = FileKey {
                dev: 1,
                ino: i,
                size: 1,
                mtime_ns: 1,
                fp: 0,
            };
            let mut env = crate::watcher::envelope(i, PathBuf::from(format!("/gone/{i}")), key);
            env.work = Work::Failed(ErrorRecord {
                kind: "error".into(),
                source: env.source.clone(),
                stage: "read".into(),
                error: "test".into(),
            });
            env
        })
        .collect()
}

fn lines(path: &Path) -> Vec<String> {
    let text = fs::read_to_string(path).unwrap();
    assert!(text.is_empty() || text.ends_with('\n'), "torn: {text:?}");
    text.lines().map(str::to_string).collect()
}

#[test]
fn a_full_disk_is_waited_out_and_the_batch_written_once() {
    let dir = tempfile::tempdir().unwrap();
    let calls = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = Arc::clone(&calls);
    // Half the output, then ENOSPC; then the error log fails; then the disk has room.
    let hook: FaultHook = Box::new(move |step| {
        let mut c = seen.lock().unwrap();
        c.push(step);
        match c.len() {
            1 => Some(100),
            3 => Some(0),
            _ => None,
        }
    });
    let mut s = sink(dir.path(), Some(hook));
    let mut report = SinkReport::default();
    s.commit(&mut batch(0, 3), &mut report).unwrap();
    s.commit(&mut batch(3, 2), &mut report).unwrap();
    assert_eq!(
        *calls.lock().unwrap(),
        ["output", "output", "errors", "output", "errors", "output", "errors"]
    );
    drop(s);
    let out = lines(&dir.path().join("out.jsonl"));
    let paths: Vec<String> = out
        .iter()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["source"]["path"].to_string()
        })
        .collect();
    assert_eq!(paths.len(), 5, "{paths:?}");
    assert_eq!(lines(&dir.path().join("state/errors.jsonl")).len(), 5);
    // The ledger explains every byte: nothing cut back, all five committed.
    let len = fs::metadata(dir.path().join("out.jsonl")).unwrap().len();
    let (_, rec) = Ledger::open(
        &dir.path().join("state"),
        Some(&dir.path().join("out.jsonl")),
        10,
    )
    .unwrap();
    assert_eq!((rec.out_len, rec.truncated_bytes), (len, 0));
    assert_eq!(report.errors, 5);
}

#[test]
fn shutdown_while_the_disk_is_full_gives_the_batch_up_uncommitted() {
    let dir = tempfile::tempdir().unwrap();
    // The disk never has room.
    let hook: FaultHook = Box::new(|_| Some(0));
    let mut s = sink(dir.path(), Some(hook));
    let stop = Arc::new(AtomicBool::new(false));
    s.stop = Some(Arc::clone(&stop));
    let (tx, rx) = async_channel::bounded(8);
    for env in batch(0, 2) {
        tx.send_blocking(env).unwrap();
    }
    let run = std::thread::spawn(move || s.run(rx));
    std::thread::sleep(Duration::from_millis(300));
    assert!(!run.is_finished(), "the sink waits for space");
    let asked = std::time::Instant::now();
    stop.store(true, Ordering::SeqCst);
    let report = run.join().unwrap().unwrap();
    assert!(
        asked.elapsed() < Duration::from_secs(1),
        "{:?}",
        asked.elapsed()
    );
    assert_eq!((report.documents, report.errors), (0, 0));
    drop(tx);
    // Nothing of the batch is on disk or in the ledger: the next start redoes both files.
    let out = dir.path().join("out.jsonl");
    assert!(lines(&out).is_empty());
    let (_, rec) = Ledger::open(&dir.path().join("state"), Some(&out), 10).unwrap();
    assert!(rec.committed.is_empty());
    assert_eq!((rec.out_len, rec.err_len), (0, 0));
}

#[test]
fn a_deleted_or_truncated_output_is_followed_and_the_ledger_rebound() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.jsonl");
    let mut s = sink(dir.path(), None);
    let mut report = SinkReport::default();
    s.commit(&mut batch(0, 2), &mut report).unwrap();
    fs::rename(&out, dir.path().join("out.jsonl.1")).unwrap();
    s.commit(&mut batch(2, 3), &mut report).unwrap();
    assert_eq!(lines(&out).len(), 3);
    assert_eq!(lines(&dir.path().join("out.jsonl.1")).len(), 2);
    // copytruncate: the same inode cut to 0; the next batch starts at the new end.
    fs::copy(&out, dir.path().join("out.jsonl.2")).unwrap();
    OpenOptions::new()
        .write(true)
        .open(&out)
        .unwrap()
        .set_len(0)
        .unwrap();
    s.commit(&mut batch(5, 1), &mut report).unwrap();
    drop(s);
    let now = lines(&out);
    assert_eq!(now.len(), 1);
    assert!(now[0].contains("/gone/5"), "{now:?}");
    let (_, rec) = Ledger::open(&dir.path().join("state"), Some(&out), 10).unwrap();
    assert_eq!(rec.out_len, fs::metadata(&out).unwrap().len());
    assert_eq!(rec.truncated_bytes, 0);
}

#[test]
fn move_keeps_both_files_on_name_clash() {
    let dir = tempfile::tempdir().unwrap();
    let done = dir.path().join("done");
    for body in ["one", "two"] {
        let p = dir.path().join("a.txt");
        fs::write(&p, body).unwrap();
        move_into(&p, &done).unwrap();
        assert!(!p.exists());
    }
    assert_eq!(fs::read_to_string(done.join("a.txt")).unwrap(), "one");
    assert_eq!(fs::read_to_string(done.join("a.txt.1")).unwrap(), "two");
}

#[test]
fn failed_files_go_to_failed_dir_even_with_delete() {
    let dir = tempfile::tempdir().unwrap();
    let policy = DonePolicy {
        action: DoneAction::Delete,
        done_dir: dir.path().join("done"),
        failed_dir: dir.path().join("failed"),
    };
    let p = dir.path().join("bad.bin");
    fs::write(&p, b"\0").unwrap();
    apply_done(&policy, &p, true).unwrap();
    assert!(dir.path().join("failed/bad.bin").exists());
}
