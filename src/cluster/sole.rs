//! Owns the intake lease: one intake per cluster (issue 13). The intake is the one publisher
//! of work: work sequences, `published.jsonl`'s `{"high": N}`, lost-work markers and the
//! opening of a work stream made anew all rely on there being one.
//!
//! A node whose role intakes takes the key `intake` in the KV bucket `<NAME>_intake` (the
//! lease of [`super::lease`], 4 s TTL, renewed every second) before it publishes anything, and
//! exits with [`Refused`] naming the holder when another node holds it. Its value names the
//! holder ([`IntakeHolder`]); host, state folder and the random id kept in that folder
//! ([`NODE_ID_FILE`]) are the node's identity, so a restart of the same node after a kill -9
//! takes its own lease over at once (the state-dir lock, taken first, proves the old process
//! gone), while another machine that happens to share the host name and the state folder's
//! path does not. Another node waits for the TTL.
//!
//! Every work publish first checks the lease ([`IntakeLease::check`]): while the holder does
//! not believe in it (renewals late or failing: the servers unreachable), publishing waits and
//! the lease is taken again, which works while it is still this node's or free; once another
//! node holds it, the intake stops with an error.

use super::lease::{self, Lease, Leases, Taken};
use super::Cluster;
use crate::config::{Config, Refused};
use crate::durable::{self, Rename};
use anyhow::{Context, Result};
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
    /// Its state folder: with the host and `id`, the node's identity across restarts.
    pub state: Option<String>,
    /// The random id kept in the state folder ([`NODE_ID_FILE`]); absent without a state
    /// folder, and in the values of versions before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

impl IntakeHolder {
    /// This process, running `config` (whose state folder, locked, gets its id on first use).
    pub fn of(config: &Config) -> Result<IntakeHolder> {
        let full = |p: &Path| {
            std::fs::canonicalize(p)
                .unwrap_or_else(|_| p.to_path_buf())
                .display()
                .to_string()
        };
        let id = config.state.dir.as_deref().map(state_id).transpose()?;
        Ok(IntakeHolder {
            node: super::node_id(),
            host: super::host_name(),
            pid: std::process::id(),
            drop: full(&config.source.dir),
            state: config.state.dir.as_deref().map(full),
            id,
        })
    }

    /// Whether `other` is this node, restarted: the same host and state folder, and the same
    /// id in it (a holder of an older version names none: host and folder decide).
    pub fn same_node(&self, other: &IntakeHolder) -> bool {
        let same_id = match (&self.id, &other.id) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        };
        self.state.is_some() && self.host == other.host && self.state == other.state && same_id
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

/// The file in the state folder that holds the node's random id, written once.
pub const NODE_ID_FILE: &str = "node.id";

/// Returns the id kept in the state folder `dir`, drawing and storing one (temporary file,
/// fsync, rename) when it has none. Host name and folder path alone do not tell two machines
/// apart: containers started from one template share both.
fn state_id(dir: &Path) -> Result<String> {
    let path = dir.join(NODE_ID_FILE);
    let valid = |s: &str| s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit());
    match std::fs::read_to_string(&path) {
        Ok(text) if valid(text.trim()) => return Ok(text.trim().to_string()),
        Ok(_) => {
            tracing::warn!(path = %path.display(), "the node id is unreadable; drawing a new one")
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
    let id = random_id();
    durable::replace(&path, format!("{id}\n").as_bytes(), Rename::Durable)?;
    Ok(id)
}

/// Returns 128 random bits in hex: `RandomState` keys come from the operating system's
/// randomness; the time and pid are mixed in as well.
fn random_id() -> String {
    use std::hash::BuildHasher;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let seed = (nanos, std::process::id());
    let a = std::collections::hash_map::RandomState::new().hash_one(seed);
    let b = std::collections::hash_map::RandomState::new().hash_one((seed, a));
    format!("{a:016x}{b:016x}")
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
        let me = IntakeHolder::of(config)?;
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
            id: None,
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

    #[test]
    fn another_machine_with_the_same_host_and_folder_is_not_the_same_node() {
        let with = |id: &str| IntakeHolder {
            id: Some(id.into()),
            ..holder("a", 1, Some("/var/lib/dropline"))
        };
        assert!(with("x").same_node(&with("x")));
        assert!(!with("x").same_node(&with("y")));
        // A holder of a version before ids: host and folder decide, both ways.
        let old = holder("a", 2, Some("/var/lib/dropline"));
        assert!(with("x").same_node(&old) && old.same_node(&with("x")));
        // Its value still reads as a holder, and the new field is left out when absent.
        let v = serde_json::to_vec(&old).unwrap();
        assert!(!String::from_utf8_lossy(&v).contains("\"id\""));
        let read: IntakeHolder = serde_json::from_slice(&v).unwrap();
        assert_eq!(read, old);
    }

    #[test]
    fn the_state_folder_keeps_its_id_and_replaces_a_damaged_one() {
        let dir = tempfile::tempdir().unwrap();
        let first = state_id(dir.path()).unwrap();
        assert_eq!(first.len(), 32, "{first}");
        assert_eq!(state_id(dir.path()).unwrap(), first);
        let other = tempfile::tempdir().unwrap();
        assert_ne!(state_id(other.path()).unwrap(), first);
        std::fs::write(dir.path().join(NODE_ID_FILE), "garbage\n").unwrap();
        let again = state_id(dir.path()).unwrap();
        assert_ne!(again, first);
        assert_eq!(state_id(dir.path()).unwrap(), again);
    }
}
