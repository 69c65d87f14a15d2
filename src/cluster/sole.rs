//! Owns the intake lease: one intake per cluster (issue 13). The intake is the one publisher
//! of work: work sequences, `published.jsonl`'s `{"high": N}`, lost-work markers and the
//! opening of a work stream made anew all rely on there being one.
//!
//! A node whose role intakes takes the key `intake` in the KV bucket `<NAME>_intake` (the
//! lease of [`super::lease`], 4 s TTL, renewed every second) before it publishes anything, and
//! exits with [`Refused`] naming the holder when another node holds it. Its value names the
//! holder ([`IntakeHolder`]); host and state folder are the node's identity, so a restart of
//! the same node after a kill -9 takes its own lease over at once (the state-dir lock, taken
//! first, proves the old process gone). Another node waits for the TTL.
//!
//! Every work publish first checks the lease ([`IntakeLease::check`]): while the holder does
//! not believe in it (renewals late or failing: the servers unreachable), publishing waits and
//! the lease is taken again, which works while it is still this node's or free; once another
//! node holds it, the intake stops with an error.

use super::lease::{self, Lease, Leases, Taken};
use super::Cluster;
use crate::config::{Config, Refused};
use anyhow::Result;
use bytes::Bytes;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// What the intake lease holds: who the intake is, for the refusal and `cluster status`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IntakeHolder {
    /// The node id of the nodes bucket and `cluster status` (host and pid).
    pub node: String,
    pub host: String,
    pub pid: u32,
    /// The drop folder it watches.
    pub drop: String,
    /// Its state folder: with the host, the node's identity across restarts.
    pub state: Option<String>,
}

impl IntakeHolder {
    /// This process, running `config`.
    pub fn of(config: &Config) -> IntakeHolder {
        let full = |p: &Path| {
            std::fs::canonicalize(p)
                .unwrap_or_else(|_| p.to_path_buf())
                .display()
                .to_string()
        };
        IntakeHolder {
            node: super::node_id(),
            host: super::host_name(),
            pid: std::process::id(),
            drop: full(&config.source.dir),
            state: config.state.dir.as_deref().map(full),
        }
    }

    /// Whether `other` is this node, restarted: the same host and state folder.
    pub fn same_node(&self, other: &IntakeHolder) -> bool {
        self.state.is_some() && self.host == other.host && self.state == other.state
    }

    /// The holder in words: node, host, pid and folders.
    pub fn describe(&self) -> String {
        format!(
            "node {} (host {}, pid {}, drop folder {}, state folder {})",
            self.node,
            self.host,
            self.pid,
            self.drop,
            self.state.as_deref().unwrap_or("none")
        )
    }
}

/// Describes the raw value of an intake lease (held by someone else, or for `cluster status`).
pub fn describe(value: &[u8]) -> String {
    match serde_json::from_slice::<IntakeHolder>(value) {
        Ok(h) => h.describe(),
        Err(_) => format!("`{}`", String::from_utf8_lossy(value)),
    }
}

/// The intake lease this node holds.
pub struct IntakeLease {
    cluster: Cluster,
    me: IntakeHolder,
    value: Bytes,
    held: Mutex<(Leases, Option<Lease>)>,
}

impl IntakeLease {
    /// Takes the lease for this node before its intake publishes anything; fails with
    /// [`Refused`] naming the holder when another node holds it. Retries while the servers
    /// do not answer.
    pub async fn take(cluster: &Cluster, config: &Config) -> Result<IntakeLease> {
        let me = IntakeHolder::of(config);
        let value = Bytes::from(serde_json::to_vec(&me)?);
        let leases = Leases::open_intake(cluster).await?;
        let lease = IntakeLease {
            cluster: cluster.clone(),
            me,
            value,
            held: Mutex::new((leases, None)),
        };
        let mut held = lease.held.lock().await;
        match lease.take_again(&mut held).await {
            Ok(false) => tracing::info!(node = %lease.me.node, "took the intake lease"),
            Ok(true) => tracing::info!(
                node = %lease.me.node,
                "took over this node's own intake lease, left by its previous process"
            ),
            Err(holder) => {
                return Err(Refused(format!(
                    "another intake holds cluster `{}`'s intake lease: {holder}. One intake per \
                     cluster: stop it, or give this node `cluster.role = \"worker\"`, or another \
                     `cluster.name`",
                    config.cluster.name
                ))
                .into())
            }
        }
        drop(held);
        Ok(lease)
    }

    /// Returns once this node may publish work: at once while it believes in its lease, else
    /// after taking it again (waiting while the servers do not answer); fails when another
    /// node holds it, and the intake must stop.
    pub async fn check(&self) -> Result<()> {
        let mut held = self.held.lock().await;
        if held.1.as_ref().is_some_and(Lease::held) {
            return Ok(());
        }
        let since = Instant::now();
        if let Some(old) = held.1.take() {
            old.abandon().await;
        }
        tracing::warn!(
            "the intake lease is not renewed in time: publishing waits until it is taken again"
        );
        match self.take_again(&mut held).await {
            Ok(_) => {
                let waited = since.elapsed().as_secs_f64();
                tracing::info!(waited_s = waited, "took the intake lease again");
                Ok(())
            }
            Err(holder) => anyhow::bail!(
                "lost the intake lease to {holder}: this intake stops publishing (one intake per \
                 cluster; start this node again once the other is stopped)"
            ),
        }
    }

    /// Takes the lease (free, or this node's own) and starts renewing it: `Ok(true)` when it
    /// was this node's own and live; `Err` names another holder. Retries while the read is not
    /// the latest or the servers do not answer.
    async fn take_again(&self, held: &mut (Leases, Option<Lease>)) -> Result<bool, String> {
        let mut warned: Option<Instant> = None;
        loop {
            let sent = Instant::now();
            let own = AtomicBool::new(false);
            let mine = |v: &[u8]| {
                let same =
                    serde_json::from_slice::<IntakeHolder>(v).is_ok_and(|h| self.me.same_node(&h));
                own.store(same, Ordering::Relaxed);
                same
            };
            let error = match lease::take(&held.0, self.value.clone(), mine).await {
                Ok(Taken::Won(revision)) => {
                    let value = self.value.clone();
                    let renew = move || Some(value.clone());
                    held.1 = Some(Lease::hold(held.0.clone(), revision, sent, renew));
                    return Ok(own.load(Ordering::Relaxed));
                }
                Ok(Taken::Held(Some(other))) => return Err(describe(&other)),
                Ok(Taken::Held(None)) => None,
                Err(error) => Some(error),
            };
            if let Some(error) = error {
                if warned.is_none_or(|t| t.elapsed() >= Duration::from_secs(30)) {
                    tracing::warn!(error = %format!("{error:#}"), "cannot take the intake lease; retrying");
                    warned = Some(Instant::now());
                }
                // The bucket may be gone: opening it makes it anew.
                if let Ok(again) = Leases::open_intake(&self.cluster).await {
                    held.0 = again;
                }
                tokio::time::sleep(lease::RENEW_EVERY).await;
            } else {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }

    /// Stops renewing and deletes the lease, so another node may be the intake at once.
    pub async fn release(&self) {
        if let Some(lease) = self.held.lock().await.1.take() {
            lease.release().await;
            tracing::info!("released the intake lease");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holder(host: &str, pid: u32, state: Option<&str>) -> IntakeHolder {
        IntakeHolder {
            node: format!("{host}-{pid}"),
            host: host.into(),
            pid,
            drop: "/srv/drop".into(),
            state: state.map(String::from),
        }
    }

    #[test]
    fn the_same_node_is_its_host_and_state_folder() {
        let me = holder("a", 1, Some("/var/lib/dropline"));
        assert!(me.same_node(&holder("a", 2, Some("/var/lib/dropline"))));
        assert!(!me.same_node(&holder("b", 2, Some("/var/lib/dropline"))));
        assert!(!me.same_node(&holder("a", 2, Some("/var/lib/other"))));
        // Without a state folder a node has no identity across restarts.
        assert!(!holder("a", 1, None).same_node(&holder("a", 2, None)));
        let v = serde_json::to_vec(&me).unwrap();
        assert_eq!(
            describe(&v),
            "node a-1 (host a, pid 1, drop folder /srv/drop, state folder /var/lib/dropline)"
        );
    }
}
