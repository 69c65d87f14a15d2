//! Tests of the intake's ledger of published files ([`super::PublishedLedger`]).

use super::*;
use crate::config::DoneAction;

fn policy(root: &Path) -> DonePolicy {
    DonePolicy {
        action: DoneAction::Move,
        done_dir: root.join("done"),
        failed_dir: root.join("failed"),
    }
}

/// The key of the file at `path` as the watcher makes it.
fn key_of(path: &Path) -> FileKey {
    crate::read::file_key(&std::fs::symlink_metadata(path).unwrap())
}

#[test]
fn files_wait_for_their_line_and_a_restart_settles_what_is_left() {
    let dir = tempfile::tempdir().unwrap();
    let (root, p) = (dir.path(), policy(dir.path()));
    for name in ["a", "b", "c"] {
        std::fs::write(root.join(name), name).unwrap();
    }
    let mut l = PublishedLedger::open(Some(root)).unwrap();
    let k = |n: &str| key_of(&root.join(n));
    l.published(k("a"), 10, &root.join("a"), None, Some(&p))
        .unwrap();
    // c's line arrives before its ack; b's never arrives before the restart.
    l.line(12, Verdict::Line { failed: true }, &p).unwrap();
    l.published(k("b"), 11, &root.join("b"), None, Some(&p))
        .unwrap();
    l.published(k("c"), 12, &root.join("c"), None, Some(&p))
        .unwrap();
    assert!(root.join("a").exists(), "no line yet: the file stays");
    assert!(root.join("failed/c").exists());
    l.line(10, Verdict::Line { failed: false }, &p).unwrap();
    assert!(root.join("done/a").exists());
    l.line(99, Verdict::Line { failed: false }, &p).unwrap(); // another intake's file
    drop(l);
    // A crash mid-append leaves a torn line; what follows it still counts.
    let ledger = root.join(PUBLISHED_FILE);
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&ledger)
        .unwrap();
    f.write_all("{\"key\":{\"dev\":1,\"ino\":\"\u{e9}".as_bytes())
        .unwrap();
    drop(f);
    let mut l = PublishedLedger::open(Some(root)).unwrap();
    assert_eq!(l.published.len(), 3);
    assert_eq!(l.unsettled.keys().collect::<Vec<_>>(), [&11]);
    l.line(11, Verdict::Line { failed: true }, &p).unwrap();
    assert!(root.join("failed/b").exists());
    let l = PublishedLedger::open(Some(root)).unwrap();
    assert!(l.unsettled.is_empty());
}

#[test]
fn without_a_done_action_nothing_waits() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = PublishedLedger::open(Some(dir.path())).unwrap();
    l.published(FileKey::default(), 1, &dir.path().join("a"), None, None)
        .unwrap();
    assert!(l.unsettled.is_empty());
    let l = PublishedLedger::open(Some(dir.path())).unwrap();
    assert!(l.unsettled.is_empty() && l.published.len() == 1);
}

#[test]
fn a_file_replaced_after_its_publish_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let (root, p) = (dir.path(), policy(dir.path()));
    let path = root.join("feed.txt");
    std::fs::write(&path, "first").unwrap();
    let mut l = PublishedLedger::open(Some(root)).unwrap();
    l.published(key_of(&path), 7, &path, None, Some(&p))
        .unwrap();
    // A producer renames a new version over it before the first one's line comes.
    let tmp = root.join(".feed.tmp");
    std::fs::write(&tmp, "second, longer").unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    l.line(7, Verdict::Line { failed: false }, &p).unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "second, longer");
    assert!(!root.join("done").exists());
    assert!(l.unsettled.is_empty());
}

#[test]
fn a_done_action_that_fails_is_tried_again() {
    let dir = tempfile::tempdir().unwrap();
    let (root, p) = (dir.path(), policy(dir.path()));
    let path = root.join("a.txt");
    std::fs::write(&path, "a").unwrap();
    // A file where the done folder should be: the move fails until it is cleared.
    std::fs::write(root.join("done"), "in the way").unwrap();
    let mut l = PublishedLedger::open(Some(root)).unwrap();
    l.published(key_of(&path), 3, &path, None, Some(&p))
        .unwrap();
    l.line(3, Verdict::Line { failed: false }, &p).unwrap();
    assert!(path.exists());
    std::fs::remove_file(root.join("done")).unwrap();
    l.retry(&p).unwrap();
    assert!(root.join("done/a.txt").exists() && !path.exists());
    assert!(l.unsettled.is_empty() && l.retry.is_empty());
}

#[test]
fn a_lost_sequence_gives_its_file_back_until_it_is_published_again() {
    let dir = tempfile::tempdir().unwrap();
    let (root, p) = (dir.path(), policy(dir.path()));
    for name in ["a", "b"] {
        std::fs::write(root.join(name), name).unwrap();
    }
    let (a, b) = (root.join("a"), root.join("b"));
    let mut l = PublishedLedger::open(Some(root)).unwrap();
    // Both went through the files bucket (large files).
    l.published(key_of(&a), 5, &a, Some("oa"), Some(&p))
        .unwrap();
    let again = l.line(5, Verdict::Lost, &p).unwrap();
    let want = |lost, path: &Path| Republish {
        lost,
        key: key_of(path),
        path: path.to_path_buf(),
    };
    assert_eq!(again, Some(want(5, &a)));
    assert!(a.exists() && !root.join("done").exists(), "no done-action");
    assert!(
        l.orphans.is_empty(),
        "the object stays until the new publish"
    );
    // Published again as 9 under a new object; 5 is forgotten, and its object with it.
    let new = l.published(key_of(&a), 9, &a, Some("oa-l5"), Some(&p));
    assert_eq!(new.unwrap(), None);
    l.forget(5).unwrap();
    assert_eq!(std::mem::take(&mut l.orphans), ["oa"]);
    // b's marker comes before its publish ack.
    assert_eq!(l.line(7, Verdict::Lost, &p).unwrap(), None);
    let again = l
        .published(key_of(&b), 7, &b, Some("ob"), Some(&p))
        .unwrap();
    assert_eq!(again, Some(want(7, &b)));
    // A restart before b's new publish: b still waits on 7, a on 9, and the highest
    // sequence survives the compaction.
    drop(l);
    let mut l = PublishedLedger::open(Some(root)).unwrap();
    assert_eq!(l.unsettled.keys().collect::<Vec<_>>(), [&7, &9]);
    assert_eq!(l.high, 9);
    let l2 = PublishedLedger::open(Some(root)).unwrap();
    assert_eq!(l2.high, 9, "kept across two compactions");
    drop(l2);
    // A file gone by the time its marker comes is not published again; its object, known
    // from the ledger after the restart, is left for deletion.
    std::fs::remove_file(&b).unwrap();
    assert_eq!(l.line(7, Verdict::Lost, &p).unwrap(), None);
    assert_eq!(l.unsettled.keys().collect::<Vec<_>>(), [&9]);
    assert_eq!(std::mem::take(&mut l.orphans), ["ob"]);
    // A committed line's object is the worker's to delete.
    l.line(9, Verdict::Line { failed: false }, &p).unwrap();
    assert!(root.join("done/a").exists());
    assert!(l.orphans.is_empty());
}
