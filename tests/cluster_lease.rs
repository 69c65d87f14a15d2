//! The decider lease on a real 3-server cluster (issue 13: two deciders ran at once).
//!
//! The cause, shown by the ignored diagnostic below: the crate's `kv.create` from several
//! clients at once after a delete lets more than one win on nats-server 2.9 (its per-key
//! expected-sequence check is not ordered with writes in flight). [`lease::acquire`] expects
//! the bucket stream's last sequence instead, and a holder stops believing in its lease before
//! the servers can let anyone else take it.

mod cluster_util;
mod util;

use async_nats::jetstream::kv;
use cluster_util::*;
use dropline::cluster::lease::{self, Lease, Leases};
use dropline::cluster::{Cluster, ClusterConfig, Names, LEASE_TTL};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Barrier;

/// Contenders per round, rounds per test.
const CONTENDERS: usize = 4;
const ROUNDS: usize = 40;

async fn open(url: &str) -> (Cluster, kv::Store) {
    let (cluster, store, _) = open_leases(url).await;
    (cluster, store)
}

async fn open_leases(url: &str) -> (Cluster, kv::Store, Leases) {
    let c = ClusterConfig {
        url: url.into(),
        name: "t".into(),
        ..Default::default()
    };
    let cluster = Cluster::open(&c).await.unwrap();
    let store = cluster.kv(&cluster.names.leader, LEASE_TTL).await.unwrap();
    let leases = Leases::open(&cluster).await.unwrap();
    (cluster, store, leases)
}

/// Renews nothing new: the value the tests' holders write.
fn value(i: usize) -> impl Fn() -> Option<bytes::Bytes> + Send + 'static {
    move || Some(format!(r#"{{"node":"c{i}","committed":0,"indexed":0}}"#).into())
}

#[test]
fn concurrent_takes_after_a_release_have_one_winner() {
    let bed = Bed::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut all = Vec::new();
        for _ in 0..CONTENDERS {
            all.push(open_leases(&bed.url).await.2);
        }
        let mut taken = 0;
        for round in 0..ROUNDS {
            let barrier = Arc::new(Barrier::new(CONTENDERS));
            let tasks: Vec<_> = all
                .iter()
                .enumerate()
                .map(|(i, l)| {
                    let (l, b) = (l.clone(), Arc::clone(&barrier));
                    tokio::spawn(async move {
                        b.wait().await;
                        let v = value(i)().unwrap();
                        lease::acquire(&l, v).await.ok().flatten().map(|r| (i, r))
                    })
                })
                .collect();
            let mut won = Vec::new();
            for t in tasks {
                won.extend(t.await.unwrap());
            }
            assert!(
                won.len() <= 1,
                "round {round}: several took the lease: {won:?}"
            );
            // The winner releases, as a decider does, so the next round starts from a delete.
            if let Some((i, r)) = won.first().copied() {
                taken += 1;
                Lease::hold(all[i].clone(), r, Instant::now(), value(i))
                    .release()
                    .await;
            }
        }
        // Not vacuous: a free lease is taken by someone in most rounds.
        assert!(
            taken * 2 >= ROUNDS,
            "only {taken} of {ROUNDS} rounds took the lease"
        );
    });
}

/// A holder whose runtime is starved past the lease's age limit: by the time another node
/// takes the lease over, the starved one no longer believes it holds it, and when it wakes its
/// renewal is refused.
#[test]
fn a_starved_holder_stops_believing_before_another_takes_over() {
    let bed = Bed::start();
    let url = bed.url.clone();
    let (tx, rx) = std::sync::mpsc::channel::<Arc<Lease>>();
    let holder = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let (_, _, leases) = open_leases(&url).await;
            let sent = Instant::now();
            let r = lease::acquire(&leases, value(0)().unwrap())
                .await
                .unwrap()
                .expect("a free lease is taken");
            let held = Arc::new(Lease::hold(leases, r, sent, value(0)));
            assert!(held.held());
            tx.send(Arc::clone(&held)).unwrap();
            // Starve the runtime (its renewer included), well past the lease's max age.
            std::thread::sleep(LEASE_TTL * 4);
            // Awake: the renewals are refused since another node took the lease, so the
            // belief never comes back.
            for _ in 0..30 {
                tokio::time::sleep(Duration::from_millis(100)).await;
                assert!(
                    !held.held(),
                    "the starved holder believes again after waking"
                );
            }
        });
    });
    let held = rx.recv().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let (_, _, leases) = open_leases(&bed.url).await;
        let deadline = Instant::now() + LEASE_TTL * 4;
        loop {
            assert!(
                Instant::now() < deadline,
                "nobody took the lease while its holder starved"
            );
            if let Ok(Some(_)) = lease::acquire(&leases, value(1)().unwrap()).await {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert!(
            !held.held(),
            "the starved holder believes it holds the lease another node just took"
        );
    });
    holder.join().unwrap();
}

/// The harness's release deletes its own hold only, never a lease a decider took since.
#[test]
fn releasing_the_harness_hold_leaves_a_deciders_lease() {
    let bed = Bed::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (store, r) = rt.block_on(async {
        let (_, store, leases) = open_leases(&bed.url).await;
        let r = lease::acquire(&leases, value(0)().unwrap())
            .await
            .unwrap()
            .expect("a free lease is taken");
        (store, r)
    });
    hold_lease(&bed.url, "t", false);
    rt.block_on(async {
        let e = store
            .entry("decider")
            .await
            .unwrap()
            .expect("the lease is there");
        assert_eq!(e.operation, kv::Operation::Put);
        assert_eq!(e.revision, r, "the decider's lease is untouched");
    });
}

/// Diagnostic: the crate's `kv.create` from several clients at once after a delete.
#[test]
#[ignore]
fn diagnostic_stock_create_after_a_delete() {
    let bed = Bed::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut stores = Vec::new();
        for _ in 0..CONTENDERS {
            stores.push(open(&bed.url).await.1);
        }
        let mut doubles = 0;
        for round in 0..ROUNDS {
            stores[0].put("decider", "x".into()).await.unwrap();
            stores[0].delete("decider").await.unwrap();
            let barrier = Arc::new(Barrier::new(CONTENDERS));
            let tasks: Vec<_> = stores
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    let (s, b) = (s.clone(), Arc::clone(&barrier));
                    tokio::spawn(async move {
                        b.wait().await;
                        s.create("decider", format!("{i}").into_bytes().into())
                            .await
                            .ok()
                    })
                })
                .collect();
            let mut won = Vec::new();
            for t in tasks {
                if let Some(rev) = t.await.unwrap() {
                    won.push(rev);
                }
            }
            if won.len() > 1 {
                doubles += 1;
            }
            println!("round {round}: winners' revisions {won:?}");
        }
        println!("DIAG rounds with more than one winner: {doubles} of {ROUNDS}");
    });
}

/// A lease bucket deleted under a running decider (by hand, or a stream reset) is made again
/// and the lease taken anew: the cluster carries on, where the decider used to retry a read of
/// the missing bucket, silently, for ever.
#[test]
fn a_deleted_lease_bucket_is_made_again_and_the_cluster_carries_on() {
    let bed = Bed::start();
    let mut names = drop_files(&bed.drop, 10, 0);
    let (node, c) = bed.node("node", "all", None, NO_ENTITIES);
    wait_for_lines(&c, 10, Duration::from_secs(120), &[&node]);
    let config = ClusterConfig {
        name: "t".into(),
        ..Default::default()
    };
    let bucket = format!("KV_{}", Names::of(&config).leader);
    with_js(&bed.url, |js| async move {
        js.delete_stream(&bucket).await.unwrap();
    });
    // Past the holder's belief: the next files wait for a new take of the lease.
    std::thread::sleep(lease::BELIEF + Duration::from_secs(2));
    names.extend(drop_files(&bed.drop, 10, 10));
    let lines = wait_for_lines(&c, 20, Duration::from_secs(120), &[&node]);
    assert_exactly_once(&lines, &names);
    let log = node.log();
    assert!(
        log.contains("cannot take the decider lease"),
        "the failed takes are reported:\n{log}"
    );
}
