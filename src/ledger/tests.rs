use super::*;
use crate::config::Refused;

fn key(ino: u64) -> FileKey {
    FileKey {
        dev: 1,
        ino,
        size: 10,
        mtime_ns: 5,
        fp: 0,
    }
}

/// The ids of the dedup entries `rec` reads back, in order.
fn ids(rec: &Recovered) -> Vec<String> {
    let mut out = Vec::new();
    rec.dedup.for_each(|e| out.push(e.id)).unwrap();
    assert_eq!(out.len(), rec.dedup.len());
    out
}

/// Replaces the first `from` in the ledger in `dir` with `to`, leaving its checksum as it was.
fn damage(dir: &Path, from: &str, to: &str) {
    let path = dir.join(LEDGER_FILE);
    let text = fs::read_to_string(&path).unwrap();
    let damaged = text.replacen(from, to, 1);
    assert_ne!(damaged, text);
    fs::write(&path, damaged).unwrap();
}

/// An entry of file `i` whose dedup entry has id `i`.
fn with_dedup(i: u64) -> LedgerEntry {
    LedgerEntry {
        key: key(i),
        path: format!("/nonexistent/{i}"),
        id: Some(format!("{i:032x}")),
        failed: false,
        out: i,
        err: 0,
        tail: None,
        dedup: Some(IndexEntry {
            id: format!("{i:032x}"),
            text_hash: format!("{i:032x}"),
            duplicate_of: None,
            story: Some(format!("{:032x}", i / 2)),
            sig: None,
            terms: Some("AAEC".repeat(i as usize)),
            sent: None,
        }),
    }
}

#[test]
fn torn_tail_and_uncommitted_output_are_cut_back() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.jsonl");
    let live = dir.path().join("a.txt");
    fs::write(&live, "x").unwrap();
    {
        let (mut l, _) = Ledger::open(dir.path(), Some(&out), 10).unwrap();
        fs::write(&out, "line1\n").unwrap();
        l.commit(&[LedgerEntry {
            key: key(1),
            path: live.display().to_string(),
            id: Some("ab".into()),
            failed: false,
            out: 6,
            err: 0,
            tail: None,
            dedup: None,
        }])
        .unwrap();
    }
    // A second line written but never committed (its file is still there), a torn third,
    // and a torn ledger line.
    let uncommitted = format!(
        "{{\"source\":{{\"path\":{:?}}}}}\n",
        live.display().to_string()
    );
    fs::write(&out, format!("line1\n{uncommitted}{{\"sou")).unwrap();
    let mut f = OpenOptions::new()
        .append(true)
        .open(dir.path().join(LEDGER_FILE))
        .unwrap();
    f.write_all(b"{\"key\":").unwrap();
    let (_, rec) = Ledger::open(dir.path(), Some(&out), 10).unwrap();
    assert_eq!(fs::read_to_string(&out).unwrap(), "line1\n");
    assert_eq!(rec.out_len, 6);
    assert!(rec.committed.contains_key(&key(1)));
    assert_eq!(rec.committed.len(), 1);
    // A line nobody can explain past the committed length is refused, not cut.
    fs::write(&out, "line1\nappended by hand\n").unwrap();
    let err = Ledger::open(dir.path(), Some(&out), 10).unwrap_err();
    assert!(err.downcast_ref::<Refused>().is_some(), "{err:#}");
    assert_eq!(
        fs::read_to_string(&out).unwrap(),
        "line1\nappended by hand\n"
    );
}

#[test]
fn compaction_keeps_recent_dedup_entries_and_lengths() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut l, _) = Ledger::open(dir.path(), None, 10).unwrap();
        let entries: Vec<LedgerEntry> = (0..5)
            .map(|i| LedgerEntry {
                key: key(i),
                path: format!("/nonexistent/{i}"),
                id: Some(format!("{i:032x}")),
                failed: false,
                out: 0,
                err: i * 3,
                tail: None,
                dedup: Some(IndexEntry {
                    id: format!("{i:032x}"),
                    text_hash: format!("{i:032x}"),
                    duplicate_of: None,
                    story: None,
                    sig: None,
                    terms: None,
                    sent: None,
                }),
            })
            .collect();
        l.commit(&entries).unwrap();
    }
    fs::write(dir.path().join(ERRORS_FILE), vec![b'x'; 12]).unwrap();
    let (_, rec) = Ledger::open(dir.path(), None, 2).unwrap();
    assert_eq!(ids(&rec), [3, 4].map(|i| format!("{i:032x}")));
    let (_, again) = Ledger::open(dir.path(), None, 2).unwrap();
    assert_eq!(ids(&again), [3, 4].map(|i| format!("{i:032x}")));
    assert_eq!(again.err_len, 12);
    assert!(again.committed.is_empty());
}

#[test]
fn failed_flag_survives_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("bad.bin");
    fs::write(&live, b"\0").unwrap();
    {
        let (mut l, _) = Ledger::open(dir.path(), None, 10).unwrap();
        l.commit(&[LedgerEntry {
            key: key(7),
            path: live.display().to_string(),
            id: None,
            failed: true,
            out: 0,
            err: 0,
            tail: None,
            dedup: None,
        }])
        .unwrap();
    }
    // The first reopen compacts; the second reads what compaction wrote.
    Ledger::open(dir.path(), None, 10).unwrap();
    let (_, rec) = Ledger::open(dir.path(), None, 10).unwrap();
    assert_eq!(rec.committed.get(&key(7)).map(|c| c.failed), Some(true));
}

#[test]
fn a_damaged_line_is_skipped_and_its_neighbours_kept() {
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<PathBuf> = (0..3)
        .map(|i| dir.path().join(format!("{i}.txt")))
        .collect();
    for f in &files {
        fs::write(f, "x").unwrap();
    }
    {
        let (mut l, _) = Ledger::open(dir.path(), None, 10).unwrap();
        for (i, f) in files.iter().enumerate() {
            l.commit(&[LedgerEntry {
                key: key(i as u64),
                path: f.display().to_string(),
                id: None,
                failed: false,
                out: 0,
                err: 0,
                tail: None,
                dedup: None,
            }])
            .unwrap();
        }
    }
    // Flip one character of the middle entry: valid JSON still, but not what was written.
    damage(dir.path(), "\"ino\":1,", "\"ino\":7,");
    let (_, rec) = Ledger::open(dir.path(), None, 10).unwrap();
    assert_eq!(rec.damaged, 1);
    assert!(rec.committed.contains_key(&key(0)));
    assert!(!rec.committed.contains_key(&key(1)) && !rec.committed.contains_key(&key(7)));
    assert!(
        rec.committed.contains_key(&key(2)),
        "the line after the damage was lost"
    );
}

/// Entries committed since the last compaction (each on its file's line) and the ones it kept
/// (lines of their own) come back in commit order, whole, past a damaged line, and trimmed to
/// the newest `keep_dedup` across both kinds.
#[test]
fn dedup_entries_come_back_in_commit_order_from_both_kinds_of_line() {
    let dir = tempfile::tempdir().unwrap();
    let (mut l, rec) = Ledger::open(dir.path(), None, 100).unwrap();
    assert!(rec.dedup.is_empty() && ids(&rec).is_empty());
    l.commit(&(0..4).map(with_dedup).collect::<Vec<_>>())
        .unwrap();
    drop(l);
    let (mut l, rec) = Ledger::open(dir.path(), None, 100).unwrap();
    assert_eq!(
        ids(&rec),
        (0..4).map(|i| format!("{i:032x}")).collect::<Vec<_>>()
    );
    for i in 4..8 {
        l.commit(&[with_dedup(i)]).unwrap();
    }
    drop(l);
    damage(dir.path(), "\"ino\":5,", "\"ino\":9,");
    let (_, rec) = Ledger::open(dir.path(), None, 5).unwrap();
    assert_eq!(rec.damaged, 1);
    let want: Vec<String> = [2, 3, 4, 6, 7].map(|i| format!("{i:032x}")).into();
    assert_eq!(ids(&rec), want);
    let mut whole = Vec::new();
    rec.dedup.for_each(|e| whole.push(e)).unwrap();
    assert_eq!(whole[3].terms.as_deref(), Some("AAEC".repeat(6).as_str()));
    assert_eq!(whole[3].story, Some(format!("{:032x}", 3)));
    let (_, again) = Ledger::open(dir.path(), None, 5).unwrap();
    assert_eq!(ids(&again), want, "a second compaction keeps them");
}

/// A compaction while running keeps every committed file, those committed while it was written
/// among them, and the newest `keep_dedup` dedup entries in order; files gone are dropped.
#[test]
fn a_compaction_while_running_keeps_what_was_committed_meanwhile() {
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<PathBuf> = (0..40)
        .map(|i| dir.path().join(format!("{i}.txt")))
        .collect();
    for f in &files[..30] {
        fs::write(f, "x").unwrap();
    }
    let state = dir.path().join("state");
    let (l, _) = Ledger::open(&state, None, 5).unwrap();
    let mut l = l.compact_every(1);
    let mut sizes = Vec::new();
    for i in 0..40u64 {
        let e = LedgerEntry {
            path: files[i as usize].display().to_string(),
            ..with_dedup(i)
        };
        l.commit(&[e]).unwrap();
        sizes.push(fs::metadata(state.join(LEDGER_FILE)).unwrap().len());
        // Every other commit goes in while the compaction it started is still written.
        if i % 2 == 1 {
            let done = eventually(|| l.compaction_state().0);
            assert!(done, "the compaction did not finish");
        }
    }
    let (_, swaps) = l.compaction_state();
    assert!(
        swaps >= 3,
        "{swaps} compactions swapped in; sizes {sizes:?}"
    );
    assert!(
        sizes.windows(2).any(|w| w[1] < w[0]),
        "the ledger never shrank: {sizes:?}"
    );
    // The compactions while running dropped the oldest dedup entries already.
    let text = fs::read_to_string(state.join(LEDGER_FILE)).unwrap();
    for i in 0..20 {
        let id = format!("\"dedup\":{{\"id\":\"{i:032x}\"");
        assert!(
            !text.contains(&id),
            "dedup entry {i} is still in the ledger"
        );
    }
    drop(l);
    let (_, rec) = Ledger::open(&state, None, 5).unwrap();
    assert_eq!(rec.damaged, 0);
    let mut committed: Vec<u64> = rec.committed.keys().map(|k| k.ino).collect();
    committed.sort_unstable();
    assert_eq!(committed, (0..30).collect::<Vec<_>>());
    let want: Vec<String> = (35..40).map(|i| format!("{i:032x}")).collect();
    assert_eq!(ids(&rec), want);
}

/// Polls `done` for up to 10 s.
fn eventually(mut done: impl FnMut() -> bool) -> bool {
    for _ in 0..1000 {
        if done() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    false
}

/// While running, a compaction waits for the ledger to grow by its size (at least
/// `COMPACT_ABOVE`), and, when files stay in the drop folder, for more dedup entries than it
/// keeps: otherwise it would rewrite the ledger at about its size.
#[test]
fn a_compaction_while_running_waits_until_it_would_shrink_the_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let (l, _) = Ledger::open(dir.path(), None, 10).unwrap();
    let mut l = l.files_stay(true);
    let big = 3 * COMPACT_ABOVE;
    l.compacted = 0;
    l.len = big;
    l.dedup_entries = 10;
    assert!(!l.compaction_due(), "every entry is kept: nothing to gain");
    l.dedup_entries = 11;
    assert!(l.compaction_due());
    l.compacted = 2 * COMPACT_ABOVE;
    assert!(!l.compaction_due(), "not yet grown by its size");
    l.len = 4 * COMPACT_ABOVE;
    assert!(l.compaction_due());
    let mut l = l.files_stay(false);
    l.dedup_entries = 0;
    assert!(l.compaction_due(), "files leave: their entries go");
    l.compacted = 0;
    l.len = COMPACT_ABOVE - 1;
    assert!(!l.compaction_due(), "below the least growth");
}
