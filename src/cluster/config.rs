//! Owns the `[cluster]` config section: where the NATS servers are and what this node does.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

/// What one cluster node does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Watches the drop folder and publishes ready files to the work stream.
    Intake,
    /// Pulls files from the work stream and prepares them; stands for the decider lease.
    Worker,
    /// Both, in one process.
    All,
}

impl Role {
    /// Returns the role as written in the config and in `cluster status`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Intake => "intake",
            Role::Worker => "worker",
            Role::All => "all",
        }
    }

    /// Returns whether this role watches the drop folder.
    pub fn intakes(self) -> bool {
        matches!(self, Role::Intake | Role::All)
    }

    /// Returns whether this role prepares files and stands for the decider lease.
    pub fn works(self) -> bool {
        matches!(self, Role::Worker | Role::All)
    }
}

/// The `[cluster]` section. With `url` empty (the default) dropline runs as one node and
/// nothing of the cluster code runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    /// NATS server URLs, comma-separated (`nats://10.0.0.1:4222,nats://10.0.0.2:4222`).
    pub url: String,
    pub role: Role,
    /// Prefix of the streams and buckets (`<NAME>_WORK`, ...) and of subjects (`<name>.out.*`).
    pub name: String,
    /// A NATS credentials file (JWT and NKey seed); none when the servers need no auth.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credentials: Option<PathBuf>,
    /// How long the decider waits before it declares a work sequence lost with its stream
    /// (deleted, or a JetStream reset): longer than a worker keeps a file in flight.
    #[serde(with = "humantime_serde")]
    pub lost_after: Duration,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            role: Role::All,
            name: "dropline".into(),
            credentials: None,
            lost_after: Duration::from_secs(30),
        }
    }
}

impl ClusterConfig {
    /// Returns whether the cluster mode is on.
    pub fn enabled(&self) -> bool {
        !self.url.trim().is_empty()
    }

    /// Returns the server URLs.
    pub fn urls(&self) -> Vec<String> {
        self.url
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(String::from)
            .collect()
    }

    /// Checks what the types cannot: a name usable in stream and subject names.
    pub fn validate(&self) -> anyhow::Result<()> {
        let ok = !self.name.is_empty()
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !ok {
            anyhow::bail!(
                "cluster.name `{}` must be letters, digits, `_` or `-` (it names streams and subjects)",
                self.name
            );
        }
        Ok(())
    }

    /// Returns the upper-case stream prefix (`DROPLINE`).
    pub fn stream_prefix(&self) -> String {
        self.name.to_ascii_uppercase().replace('-', "_")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_url_is_the_single_node_mode_and_names_are_checked() {
        let mut c = ClusterConfig::default();
        assert!(!c.enabled());
        c.url = " nats://a:4222, nats://b:4222 ,".into();
        assert!(c.enabled());
        assert_eq!(c.urls(), ["nats://a:4222", "nats://b:4222"]);
        c.name = "news-eu".into();
        assert!(c.validate().is_ok());
        assert_eq!(c.stream_prefix(), "NEWS_EU");
        assert_eq!(c.lost_after, Duration::from_secs(30));
        let set: ClusterConfig = toml::from_str("lost_after = \"5s\"").unwrap();
        assert_eq!(set.lost_after, Duration::from_secs(5));
        for bad in ["", "a.b", "a b", "a>"] {
            c.name = bad.into();
            assert!(c.validate().is_err(), "{bad:?}");
        }
    }
}
