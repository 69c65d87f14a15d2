use super::*;

fn nothing_committed() -> Admission {
    Admission::new(8, Default::default())
}

fn config(dir: &Path) -> WatchConfig {
    WatchConfig {
        dir: dir.to_path_buf(),
        recursive: false,
        poll_only: true,
        timing: crate::reload::Timing::new(Duration::from_secs(3600), Duration::from_secs(3600)),
        max_pending: 10,
        skip_dirs: vec![dir.join("done")],
        done: None,
        filter: Default::default(),
    }
}

#[test]
fn fresh_files_wait_for_settle_unless_complete() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    fs::write(dir.path().join("a.txt"), "x").unwrap();
    fs::write(dir.path().join("b.txt"), "y").unwrap();
    fs::write(dir.path().join("c.part"), "z").unwrap();
    let mut tracker = Tracker::new();
    let (present, truncated) = scan(
        &cfg,
        &nothing_committed(),
        &mut tracker,
        &mut KeyCache::default(),
        0,
    );
    assert_eq!(present.len(), 2, "ignored names are not files to us");
    assert!(!truncated);
    assert!(check(
        &cfg,
        &nothing_committed(),
        &mut tracker,
        PathMap::default(),
        &mut KeyCache::default()
    )
    .is_empty());
    let events = PathMap::from_iter([(dir.path().join("b.txt"), Hint::Complete)]);
    let ready = check(
        &cfg,
        &nothing_committed(),
        &mut tracker,
        events,
        &mut KeyCache::default(),
    );
    assert_eq!(ready.len(), 1);
    assert_eq!(ready[0].0, dir.path().join("b.txt"));
}

#[test]
fn a_shorter_settle_set_live_makes_tracked_files_ready() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let shared = cfg.timing.clone();
    fs::write(dir.path().join("a.txt"), "x").unwrap();
    let mut tracker = Tracker::new();
    let mut keys = KeyCache::default();
    scan(&cfg, &nothing_committed(), &mut tracker, &mut keys, 0);
    assert!(check(
        &cfg,
        &nothing_committed(),
        &mut tracker,
        PathMap::default(),
        &mut keys
    )
    .is_empty());
    // What a reload does: the same cell, new values, read by the next check.
    shared.set(Duration::ZERO, Duration::from_secs(3600));
    let ready = check(
        &cfg,
        &nothing_committed(),
        &mut tracker,
        PathMap::default(),
        &mut keys,
    );
    assert_eq!(ready.len(), 1);
}

#[test]
fn a_full_tracker_reports_a_truncated_scan() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.max_pending = 2;
    for i in 0..3 {
        fs::write(dir.path().join(format!("{i}.txt")), "x").unwrap();
    }
    let mut tracker = Tracker::new();
    let (present, truncated) = scan(
        &cfg,
        &nothing_committed(),
        &mut tracker,
        &mut KeyCache::default(),
        1,
    );
    assert_eq!((present.len(), tracker.len(), truncated), (3, 2, true));
}

#[test]
fn old_files_are_ready_at_startup_and_subdirs_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.timing = crate::reload::Timing::new(Duration::ZERO, Duration::from_secs(3600));
    cfg.recursive = true;
    fs::create_dir(dir.path().join("done")).unwrap();
    fs::write(dir.path().join("done/old.txt"), "x").unwrap();
    fs::create_dir(dir.path().join("sub")).unwrap();
    fs::write(dir.path().join("sub/new.txt"), "x").unwrap();
    let mut tracker = Tracker::new();
    scan(
        &cfg,
        &nothing_committed(),
        &mut tracker,
        &mut KeyCache::default(),
        0,
    );
    let ready = check(
        &cfg,
        &nothing_committed(),
        &mut tracker,
        PathMap::default(),
        &mut KeyCache::default(),
    );
    let names: Vec<_> = ready.iter().map(|(p, ..)| p.clone()).collect();
    assert_eq!(names, vec![dir.path().join("sub/new.txt")]);
}
