//! Owns the cluster's leases: the decider's, the key `decider` in the KV bucket `<NAME>_leader`,
//! and the intake's, the key `intake` in `<NAME>_intake` ([`super::sole`]), each in a bucket
//! of its own (max age [`LEASE_TTL`]), taken, renewed and released so that at most one node
//! believes it holds it.
//!
//! Why not the crate's `kv.create` / `kv.update`: they guard a write with
//! `Nats-Expected-Last-Subject-Sequence`, which nats-server 2.9 checks on a clustered stream
//! only before proposing the write, not in order with the writes already proposed
//! (nats-io/nats-server#4320, fixed after 2.9.20). Several `create`s at once after a release
//! all read the same delete marker, all expect its revision, and all succeed (reproduced in
//! `tests/cluster_lease.rs`: 25 of 40 rounds of four at once had more than one winner).
//! Every write here instead expects the bucket stream's last sequence
//! (`Nats-Expected-Last-Sequence`), which the stream leader checks against the sequences it
//! has proposed, in order: of several writes expecting the same sequence, one is stored. A
//! lease's bucket holds its one key, so its stream's last sequence is the lease's revision.
//!
//! A holder also believes in its lease only until [`BELIEF`] after it sent its last stored
//! write: the servers drop the lease [`LEASE_TTL`] after they stored it, later than that, so a
//! holder whose renewals are late (a starved runtime) stops deciding before anyone else can
//! take the lease over.

use super::{Cluster, LEASE_TTL};
use anyhow::{Context, Result};
use async_nats::header::NATS_EXPECTED_LAST_SEQUENCE;
use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::stream::LastRawMessageErrorKind;
use async_nats::jetstream::{self, kv};
use async_nats::HeaderMap;
use bytes::Bytes;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The key of the decider lease in the leader bucket.
pub const LEASE_KEY: &str = "decider";
/// The key of the intake lease in the intake bucket.
pub const INTAKE_KEY: &str = "intake";
/// How often a holder renews its lease.
pub const RENEW_EVERY: Duration = Duration::from_secs(1);
/// How long after sending its last stored write a holder believes in its lease: a quarter of
/// [`LEASE_TTL`] short of the servers' expiry, so two late renewals in a row are survived.
pub const BELIEF: Duration = Duration::from_secs(3);
const _: () = assert!(BELIEF.as_millis() < LEASE_TTL.as_millis());

/// A lease's bucket and key, opened (and the bucket created if missing) by [`Leases::open`]
/// (the decider's) or [`Leases::open_intake`].
#[derive(Clone)]
pub struct Leases {
    js: jetstream::Context,
    store: kv::Store,
    key: &'static str,
}

impl Leases {
    /// Opens the decider lease: [`LEASE_KEY`] in `<NAME>_leader`.
    pub async fn open(cluster: &Cluster) -> Result<Leases> {
        Self::open_in(cluster, &cluster.names.leader, LEASE_KEY).await
    }

    /// Opens the intake lease: [`INTAKE_KEY`] in `<NAME>_intake`.
    pub async fn open_intake(cluster: &Cluster) -> Result<Leases> {
        Self::open_in(cluster, &cluster.names.intake, INTAKE_KEY).await
    }

    /// Opens lease `key` in `bucket`, which must hold no other key.
    async fn open_in(cluster: &Cluster, bucket: &str, key: &'static str) -> Result<Leases> {
        let store = cluster.kv(bucket, LEASE_TTL).await?;
        Ok(Leases {
            js: cluster.js.clone(),
            store,
            key,
        })
    }

    /// The subject the lease key is stored under.
    fn subject(&self) -> String {
        format!("$KV.{}.{}", self.store.name, self.key)
    }
}

/// Writes `value` (or, when `None`, a delete marker) to the lease key if the bucket stream's
/// last sequence is still `expected`; returns the new revision, `None` if it moved on.
///
/// Only the stream-wide expectation is sent: the key may have aged out (no last message on
/// its subject) while the stream's last sequence is still the lease's revision.
async fn write(leases: &Leases, expected: u64, value: Option<Bytes>) -> Result<Option<u64>> {
    let subject = leases.subject();
    let mut headers = HeaderMap::new();
    headers.insert(NATS_EXPECTED_LAST_SEQUENCE, expected.to_string().as_str());
    let payload = match value {
        Some(v) => v,
        None => {
            headers.insert("KV-Operation", "DEL");
            Bytes::new()
        }
    };
    let js = &leases.js;
    let sent = async {
        js.publish_with_headers(subject, headers, payload)
            .await?
            .await
    };
    match sent.await {
        Ok(ack) => Ok(Some(ack.sequence)),
        Err(error) if error.kind() == PublishErrorKind::WrongLastSequence => Ok(None),
        Err(error) => Err(error).with_context(|| format!("cannot write the {} lease", leases.key)),
    }
}

/// Takes the lease if nobody holds it: returns its revision, or `None` when it is held or
/// another node took it at the same moment.
pub async fn acquire(leases: &Leases, value: Bytes) -> Result<Option<u64>> {
    Ok(match take(leases, value, |_| false).await? {
        Taken::Won(revision) => Some(revision),
        Taken::Held(_) => None,
    })
}

/// What [`take`] found.
#[derive(Debug)]
pub enum Taken {
    /// The lease is ours, at this revision.
    Won(u64),
    /// Someone else holds it: its value, or `None` when the read was not the latest state or
    /// another node wrote at the same moment (read again).
    Held(Option<Bytes>),
}

/// Takes the lease if nobody holds it, or if `mine` says its live value is this node's own
/// (a restart of the holder, whose old process is known to be gone).
///
/// Reads the stream's last sequence, then the key's last message, both from the stream
/// leader, and writes expecting that sequence: a write by anyone after the read refuses ours.
pub async fn take(leases: &Leases, value: Bytes, mine: impl Fn(&[u8]) -> bool) -> Result<Taken> {
    let stream = &leases.store.stream;
    let last = stream
        .get_info()
        .await
        .context("cannot read the lease bucket")?
        .state
        .last_sequence;
    let subject = leases.subject();
    match stream.get_last_raw_message_by_subject(&subject).await {
        Ok(msg) => {
            let op = msg.headers.get("KV-Operation").map(|v| v.as_str());
            let removed = matches!(op, Some("DEL" | "PURGE"));
            // A read that is not the state at `last`: read again.
            if msg.sequence != last {
                return Ok(Taken::Held(None));
            }
            // A live lease, not ours: leave it.
            if !removed && !mine(&msg.payload) {
                return Ok(Taken::Held(Some(msg.payload)));
            }
        }
        // Never written, or aged out: free.
        Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot read the {} lease", leases.key)),
    }
    Ok(match write(leases, last, Some(value)).await? {
        Some(revision) => Taken::Won(revision),
        None => Taken::Held(None),
    })
}

/// A held lease, renewed in the background every [`RENEW_EVERY`].
pub struct Lease {
    /// Turns true when a renewal was refused or the lease was released.
    lost: Arc<AtomicBool>,
    /// The revision last written and when that write was sent.
    last: Arc<Mutex<(u64, Instant)>>,
    renewer: tokio::task::JoinHandle<()>,
    leases: Leases,
}

impl Lease {
    /// Starts renewing the lease taken at `revision` (its write sent at `sent`); `value`
    /// gives what each renewal writes.
    pub fn hold<F>(leases: Leases, revision: u64, sent: Instant, value: F) -> Lease
    where
        F: Fn() -> Option<Bytes> + Send + 'static,
    {
        let lost = Arc::new(AtomicBool::new(false));
        let last = Arc::new(Mutex::new((revision, sent)));
        let (l, t, s) = (Arc::clone(&lost), Arc::clone(&last), leases.clone());
        let renewer = tokio::spawn(async move {
            let mut tick = tokio::time::interval(RENEW_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(bytes) = value() else { continue };
                let revision = t.lock().map(|g| g.0).unwrap_or(0);
                let sent = Instant::now();
                match write(&s, revision, Some(bytes)).await {
                    Ok(Some(r)) => {
                        if let Ok(mut g) = t.lock() {
                            *g = (r, sent);
                        }
                    }
                    Ok(None) => {
                        tracing::warn!("the {} lease was taken over", s.key);
                        l.store(true, Ordering::SeqCst);
                        return;
                    }
                    // The servers may be electing: try again, belief runs out meanwhile.
                    Err(error) => {
                        tracing::warn!(error = %format!("{error:#}"), "cannot renew the {} lease", s.key)
                    }
                }
            }
        });
        Lease {
            lost,
            last,
            renewer,
            leases,
        }
    }

    /// Whether this node may act as the holder now: no renewal was refused, and the last
    /// stored write was sent less than [`BELIEF`] ago.
    pub fn held(&self) -> bool {
        if self.lost.load(Ordering::SeqCst) {
            return false;
        }
        let sent = self.last.lock().map(|g| g.1).ok();
        sent.is_some_and(|s| s.elapsed() < BELIEF)
    }

    /// Stops renewing and deletes the lease if no one wrote it since our last write, so a
    /// successor need not wait for it to expire.
    pub async fn release(self) {
        let Lease {
            lost,
            last,
            renewer,
            leases,
        } = self;
        renewer.abort();
        let _ = renewer.await;
        if lost.swap(true, Ordering::SeqCst) {
            return;
        }
        let revision = last.lock().map(|g| g.0).unwrap_or(0);
        if let Err(error) = write(&leases, revision, None).await {
            tracing::debug!(error = %format!("{error:#}"), "cannot release the {} lease", leases.key);
        }
    }

    /// Stops renewing without deleting the lease (it ages out, or is taken again).
    pub async fn abandon(self) {
        self.renewer.abort();
        let _ = self.renewer.await;
        self.lost.store(true, Ordering::SeqCst);
    }
}
