use super::*;
use std::sync::Arc;
use std::time::Duration;

fn key(ino: u64) -> FileKey {
    FileKey {
        dev: 1,
        ino,
        size: 1,
        mtime_ns: 1,
        fp: 7,
    }
}

/// A file admitted without a fingerprint (the read stage fills it in) is found under
/// the fingerprint it commits with, and needs one only when its metadata collides.
#[tokio::test]
async fn a_fingerprint_filled_in_after_admission_commits_and_releases() {
    let a = Admission::new(1, HashMap::new())
        .with_byte_budget(100, 100)
        .with_fingerprint_on_read();
    let unknown = key(5).without_fp();
    assert!(
        !a.needs_fingerprint(&unknown),
        "nothing to be told apart from"
    );
    assert_eq!(a.admit(unknown, 60).await, Some(0));
    assert!(
        a.needs_fingerprint(&unknown),
        "a version of it is in flight"
    );
    let read = FileKey { fp: 42, ..unknown };
    a.resize(&read, 10);
    assert_eq!(a.in_flight_bytes(), 10);
    a.committed(read, false, true);
    assert_eq!((a.in_flight(), a.in_flight_bytes()), (0, 0));
    assert_eq!(
        a.skip_reason(&read),
        Some(Skip::Committed { failed: false })
    );
    // Another version with the same metadata is told apart by its fingerprint.
    assert_eq!(a.skip_reason(&FileKey { fp: 43, ..unknown }), None);
    // The slot came back: a second file is admitted.
    assert_eq!(a.admit(key(6), 10).await, Some(1));
    assert!(Admission::new(1, HashMap::new()).needs_fingerprint(&unknown));
}

#[tokio::test]
async fn files_in_flight_or_committed_are_not_waiting() {
    let a = Admission::new(4, HashMap::from([(key(1), false)]));
    let present: KeySet = (1..=3).map(key).collect();
    assert_eq!(a.count_waiting(&present), 2);
    assert_eq!(a.admit(key(2), 1).await, Some(0));
    assert_eq!(a.count_waiting(&present), 1, "in flight is not waiting");
    a.committed(key(2), false, true);
    assert_eq!(a.count_waiting(&present), 1, "committed is not waiting");
}

#[tokio::test(start_paused = true)]
async fn full_pipeline_blocks_admission_until_a_commit() {
    let a = Arc::new(Admission::new(1, HashMap::new()));
    assert_eq!(a.admit(key(1), 1).await, Some(0));
    assert!(
        a.take_busy_since().is_some(),
        "the first admission starts a burst"
    );
    assert!(
        a.take_busy_since().is_none(),
        "and the summary takes it once"
    );
    let a2 = a.clone();
    let waiting = tokio::spawn(async move { a2.admit(key(2), 1).await });
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!waiting.is_finished(), "second file admitted past the cap");
    a.committed(key(1), false, true);
    assert_eq!(waiting.await.unwrap(), Some(1));
    assert_eq!(
        a.skip_reason(&key(1)),
        Some(Skip::Committed { failed: false })
    );
    assert_eq!(a.skip_reason(&key(2)), Some(Skip::InFlight));
}

#[tokio::test(start_paused = true)]
async fn byte_budget_blocks_but_a_huge_file_passes_alone() {
    let a = Arc::new(Admission::new(100, HashMap::new()).with_byte_budget(100, 1000));
    assert_eq!(a.admit(key(1), 60).await, Some(0));
    let a2 = a.clone();
    let second = tokio::spawn(async move { a2.admit(key(2), 60).await });
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        !second.is_finished(),
        "120 bytes admitted into a 100-byte budget"
    );
    // Reading showed the first file smaller than feared: room for the second.
    a.resize(&key(1), 30);
    assert_eq!(second.await.unwrap(), Some(1));
    assert_eq!(a.in_flight_bytes(), 90);
    a.committed(key(1), false, false);
    a.committed(key(2), false, false);
    assert_eq!(a.in_flight_bytes(), 0);
    assert_eq!(
        a.admit(key(3), 10_000).await,
        Some(2),
        "alone, past the budget"
    );
    assert_eq!(a.in_flight_bytes(), 100);
}

#[tokio::test(start_paused = true)]
async fn two_sixty_mb_files_never_share_the_default_budget() {
    for entities in [false, true] {
        let a = Arc::new(
            Admission::new(4, HashMap::new())
                .with_byte_budget(256 << 20, 64 << 20)
                .with_working_set(working_set_factor(entities)),
        );
        // A 10 MB gzip file whose trailer says 60 MB: charged for 60 MB decoded.
        let big = FileKey {
            size: 10_000_000,
            ..key(1)
        };
        let want = a.estimate(&big, Some(60_000_000));
        assert_eq!(want, 60_000_000 * working_set_factor(entities));
        assert_eq!(a.admit(big, want).await, Some(0), "alone, it goes");
        let a2 = a.clone();
        let second = tokio::spawn(async move {
            let k = FileKey {
                size: 10_000_000,
                ..key(2)
            };
            let want = a2.estimate(&k, Some(60_000_000));
            a2.admit(k, want).await
        });
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(!second.is_finished(), "two 60 MB files in flight at once");
        // Reading found 60 MB: the charge follows the decoded size, times the factor.
        a.resize(&big, 60_000_000);
        assert_eq!(
            a.in_flight_bytes(),
            60_000_000 * working_set_factor(entities)
        );
        a.committed(big, false, false);
        assert_eq!(second.await.unwrap(), Some(1));
    }
    // Small files still share it: 1 MB each with entities on.
    let a = Admission::new(8, HashMap::new())
        .with_byte_budget(256 << 20, 64 << 20)
        .with_working_set(working_set_factor(true));
    for i in 1..=3 {
        let k = FileKey {
            size: 1_000_000,
            ..key(i)
        };
        let want = a.estimate(&k, None);
        assert_eq!(a.admit(k, want).await, Some(i - 1));
    }
}

#[tokio::test(start_paused = true)]
async fn a_file_over_the_budget_waits_for_runaways_to_end() {
    let a = Arc::new(Admission::new(4, HashMap::new()).with_byte_budget(100, 1000));
    assert_eq!(a.admit(key(1), 80).await, Some(0));
    // Its stage thread ran past the time budget: committed as an error, still in memory.
    let pinned = a.pin(&key(1));
    assert_eq!(pinned, 80);
    a.committed(key(1), true, false);
    assert_eq!(a.in_flight(), 0);
    let small = a.admit(key(2), 20).await;
    assert_eq!(small, Some(1), "fits beside the runaway");
    a.committed(key(2), false, false);
    let a2 = a.clone();
    let huge = tokio::spawn(async move { a2.admit(key(3), 500).await });
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        !huge.is_finished(),
        "a file over the budget went beside a runaway"
    );
    a.unpin(pinned);
    assert_eq!(huge.await.unwrap(), Some(2), "alone once the runaway ended");
}

#[test]
fn gzip_hints_count_up_to_the_inflate_cap() {
    let a = Admission::new(1, HashMap::new()).with_byte_budget(1 << 30, 500);
    assert_eq!(a.estimate(&key(1), Some(400)), 400);
    assert_eq!(a.estimate(&key(1), Some(4_000_000_000)), 500);
    assert_eq!(a.estimate(&key(1), None), 1);
}

#[test]
fn fingerprints_tell_versions_apart_and_unknown_matches_any() {
    let legacy = FileKey { fp: 0, ..key(1) };
    let a = Admission::new(4, HashMap::from([(key(1), false)]));
    let reused = FileKey { fp: 8, ..key(1) };
    assert_eq!(
        a.skip_reason(&reused),
        None,
        "same inode, size, mtime; new content"
    );
    assert!(a.skip_reason(&key(1)).is_some());
    assert!(a.skip_reason(&legacy).is_some());
    let b = Admission::new(4, HashMap::from([(legacy, true)]));
    assert_eq!(
        b.skip_reason(&reused),
        Some(Skip::Committed { failed: true })
    );
    b.prune(&KeySet::from_iter([reused]));
    assert!(
        b.skip_reason(&reused).is_some(),
        "unknown matches any: kept"
    );
    b.prune(&KeySet::default());
    assert_eq!(b.skip_reason(&reused), None);
}

#[test]
fn prune_keeps_the_versions_a_scan_saw_and_forgets_the_others() {
    let seven = FileKey { fp: 7, ..key(1) };
    let nine = FileKey { fp: 9, ..key(1) };
    let a = Admission::new(
        4,
        HashMap::from([(seven, false), (nine, true), (key(2), false)]),
    );
    a.prune(&KeySet::from_iter([seven, key(3)]));
    assert!(a.skip_reason(&seven).is_some(), "seen: kept");
    assert_eq!(a.skip_reason(&nine), None, "that version is gone");
    assert_eq!(a.skip_reason(&key(2)), None, "that file is gone");
    // A scan that did not probe the file (fingerprint unknown) still sees it.
    a.prune(&KeySet::from_iter([seven.without_fp()]));
    assert!(a.skip_reason(&seven).is_some());
}

/// Further versions of one file's metadata keep their commit order: the first that matches
/// decides, a version committed again moves to the end, and prune keeps the versions it saw.
#[test]
fn versions_of_one_metadata_keep_their_order_through_record_and_prune() {
    let legacy = key(1).without_fp();
    let (seven, nine) = (key(1), FileKey { fp: 9, ..key(1) });
    let a = Admission::new(4, HashMap::new()).with_fingerprint_on_read();
    a.committed(seven, false, true);
    a.committed(nine, true, true);
    a.committed(legacy, false, true);
    // Versions 7, 9, unknown: nine finds itself before the unknown one.
    assert_eq!(a.skip_reason(&nine), Some(Skip::Committed { failed: true }));
    let other = FileKey { fp: 11, ..seven };
    assert_eq!(
        a.skip_reason(&other),
        Some(Skip::Committed { failed: false })
    );
    // Committed again, nine goes last: versions 7, unknown, 9.
    a.committed(nine, true, true);
    assert_eq!(
        a.skip_reason(&nine),
        Some(Skip::Committed { failed: false })
    );
    // A scan that saw only nine keeps it and the unknown version (which matches it).
    a.prune(&KeySet::from_iter([nine]));
    assert_eq!(
        a.skip_reason(&nine),
        Some(Skip::Committed { failed: false })
    );
    assert!(a.needs_fingerprint(&legacy));
    a.prune(&KeySet::default());
    assert_eq!(a.skip_reason(&nine), None);
    assert!(!a.needs_fingerprint(&legacy), "every version forgotten");
}

/// A version committed again takes its new outcome: a retried error record that now makes a
/// document is no longer failed, and the other way round.
#[test]
fn a_version_committed_again_takes_its_new_outcome() {
    let a = Admission::new(4, HashMap::new()).with_fingerprint_on_read();
    let outcome = |a: &Admission| a.skip_reason(&key(1));
    a.committed(key(1), true, true);
    assert_eq!(outcome(&a), Some(Skip::Committed { failed: true }));
    a.committed(key(1), false, true);
    assert_eq!(outcome(&a), Some(Skip::Committed { failed: false }));
    a.committed(key(1), true, true);
    a.prune(&KeySet::from_iter([key(1)]));
    assert_eq!(outcome(&a), Some(Skip::Committed { failed: true }));
}

/// A scan's key list answers as the set it replaced: a file seen twice counts once, and
/// keys inserted in any order are found once sealed.
#[test]
fn a_sealed_key_list_counts_repeats_once_and_finds_every_key() {
    let mut present = KeySet::with_capacity(2);
    for i in [5, 3, 5, 1, 9, 3] {
        present.insert(key(i));
    }
    present.seal();
    assert_eq!(present.len(), 4);
    assert_eq!(present.iter().count(), 4);
    for i in [1, 3, 5, 9] {
        assert!(present.contains(&KeyId::of(&key(i))), "{i}");
    }
    assert!(!present.contains(&KeyId::of(&key(2))));
    assert!(!present.contains(&KeyId::of(&FileKey { fp: 77, ..key(5) })));
}
