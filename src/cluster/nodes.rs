//! Owns the nodes bucket `<NAME>_nodes`: each node's heartbeat (its id, role, host and pid),
//! which `cluster status` lists.

use super::{reset, wire, Cluster, Role};
use std::time::Duration;

/// How long a node's entry in the nodes bucket lasts without a heartbeat.
pub(super) const NODE_TTL: Duration = Duration::from_secs(15);

/// What a node publishes about itself in the nodes bucket, for `cluster status`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct NodeInfo {
    pub node: String,
    pub role: String,
    pub host: String,
    pub pid: u32,
    /// Unix ms of the last heartbeat.
    pub seen_ms: u64,
}

/// Returns this process's node id: host name and pid.
pub fn node_id() -> String {
    format!("{}-{}", host_name(), std::process::id())
}

pub(super) fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

/// Puts this node into the nodes bucket every few seconds until the task is aborted. A bucket
/// that cannot be written (deleted, or the servers down) is opened again before the next
/// heartbeat, which makes it anew when it is gone; the first failure in a row is a warning.
pub(super) async fn heartbeat(cluster: Cluster, role: Role) {
    let name = cluster.names.nodes.clone();
    let node = node_id();
    let key = node.replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "_");
    let mut nodes = None;
    let mut outage = reset::Outage::default();
    loop {
        if nodes.is_none() {
            match cluster.kv(&name, NODE_TTL).await {
                Ok(kv) => nodes = Some(kv),
                Err(error) => {
                    tracing::debug!(error = %format!("{error:#}"), "cannot open the nodes bucket yet")
                }
            }
        }
        let info = NodeInfo {
            node: node.clone(),
            role: role.as_str().into(),
            host: host_name(),
            pid: std::process::id(),
            seen_ms: wire::now_ms(),
        };
        if let (Some(kv), Ok(v)) = (&nodes, serde_json::to_vec(&info)) {
            match kv.put(&key, v.into()).await {
                Ok(_) => outage.worked(&name),
                Err(error) => {
                    outage.failed(
                        &name,
                        &error,
                        "cannot write this node's heartbeat to the nodes bucket (deleted, or no \
                         JetStream quorum): `cluster status` does not list the node meanwhile; \
                         making the bucket again",
                    );
                    nodes = None;
                }
            }
        }
        tokio::time::sleep(NODE_TTL / 3).await;
    }
}
