//! Owns the live reload: on a hangup (SIGHUP), re-reads the config file, applies what can
//! change safely (log level, `source.include`/`exclude`) and names every other changed key in
//! a warning: those take effect at the next start.

use crate::config::Config;
use crate::filter::SharedFilter;
use anyhow::Result;
use std::path::PathBuf;

/// Keys a reload puts in force without a restart.
pub const LIVE_KEYS: &[&str] = &["log.level", "source.include", "source.exclude"];

/// Where the running config came from, to read it again.
#[derive(Debug, Clone, Default)]
pub struct Source {
    pub path: Option<PathBuf>,
    pub overrides: Vec<String>,
}

/// The handles a reload changes.
#[derive(Debug, Clone)]
pub struct Live {
    pub filter: SharedFilter,
}

impl Live {
    pub fn new(config: &Config) -> Result<Self> {
        Ok(Self {
            filter: SharedFilter::new(config.file_filter()?),
        })
    }
}

/// What one reload did.
#[derive(Debug, Clone)]
pub struct ReloadPlan {
    /// Changed keys now in force.
    pub applied: Vec<String>,
    /// Changed keys that need a restart; the running values stay.
    pub restart_needed: Vec<String>,
    /// The config now in force: the running one with the applied keys taken from the file.
    pub effective: Config,
}

/// Re-reads the config from `source`, compares it with `current` and applies the live keys.
/// An invalid config is an error and changes nothing.
pub fn reload(source: &Source, current: &Config, live: &Live) -> Result<ReloadPlan> {
    let new = Config::load(source.path.as_deref(), &source.overrides)?;
    let filter = new.file_filter()?;
    let (before, after) = (leaves(current)?, leaves(&new)?);
    let mut changed: Vec<String> = after
        .iter()
        .filter(|(k, v)| before.get(*k) != Some(*v))
        .map(|(k, _)| k.clone())
        .chain(before.keys().filter(|k| !after.contains_key(*k)).cloned())
        .collect();
    changed.sort();
    changed.dedup();
    let (applied, restart_needed): (Vec<String>, Vec<String>) = changed
        .into_iter()
        .partition(|k| LIVE_KEYS.contains(&k.as_str()));
    let mut effective = current.clone();
    if applied.iter().any(|k| k == "log.level") {
        crate::logging::set_level(&new.log.level)?;
        effective.log.level = new.log.level.clone();
    }
    if applied.iter().any(|k| k.starts_with("source.")) {
        live.filter.replace(filter);
        effective.source.include = new.source.include.clone();
        effective.source.exclude = new.source.exclude.clone();
    }
    Ok(ReloadPlan {
        applied,
        restart_needed,
        effective,
    })
}

/// Flattens a config into dotted keys and their values.
fn leaves(config: &Config) -> Result<std::collections::BTreeMap<String, toml::Value>> {
    fn walk(
        prefix: &str,
        v: toml::Value,
        out: &mut std::collections::BTreeMap<String, toml::Value>,
    ) {
        match v {
            toml::Value::Table(t) => {
                for (k, v) in t {
                    let key = if prefix.is_empty() {
                        k
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&key, v, out);
                }
            }
            v => {
                out.insert(prefix.to_string(), v);
            }
        }
    }
    let mut out = std::collections::BTreeMap::new();
    walk("", toml::Value::try_from(config)?, &mut out);
    Ok(out)
}

/// Reloads on every `hangup` notification until the task is dropped; logs what changed.
pub async fn on_hangup(
    source: Source,
    mut current: Config,
    live: Live,
    mut hangup: tokio::sync::watch::Receiver<u64>,
) {
    while hangup.changed().await.is_ok() {
        let path = source
            .path
            .as_ref()
            .map_or_else(|| "(defaults)".into(), |p| p.display().to_string());
        match reload(&source, &current, &live) {
            Ok(plan) => {
                tracing::info!(config = %path, applied = ?plan.applied, "config reloaded");
                if !plan.restart_needed.is_empty() {
                    tracing::warn!(
                        keys = ?plan.restart_needed,
                        "changed config keys need a restart to take effect"
                    );
                }
                current = plan.effective;
            }
            Err(error) => {
                tracing::warn!(config = %path, error = %format!("{error:#}"), "config reload failed, keeping the running config");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn write(path: &Path, extra: &str) {
        std::fs::write(
            path,
            format!("[source]\ndir = \"drop\"\n{extra}\n[metrics]\nenabled = false\n"),
        )
        .unwrap();
    }

    #[test]
    fn live_keys_apply_and_the_rest_are_named() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("pipeline.toml");
        write(&path, "");
        let source = Source {
            path: Some(path.clone()),
            overrides: vec![],
        };
        let current = Config::load(Some(&path), &[]).unwrap();
        let live = Live::new(&current).unwrap();
        assert!(!live.filter.get().reads(Path::new("a.csv")));
        write(
            &path,
            "include = [\"*.txt\", \"*.csv\"]\nrescan_interval = \"5s\"\n[pipeline]\nread_workers = 7",
        );
        let plan = reload(&source, &current, &live).unwrap();
        assert_eq!(plan.applied, vec!["source.include".to_string()]);
        assert_eq!(
            plan.restart_needed,
            vec![
                "pipeline.read_workers".to_string(),
                "source.rescan_interval".to_string()
            ]
        );
        assert!(live.filter.get().reads(Path::new("a.csv")));
        assert_eq!(
            plan.effective.pipeline.read_workers,
            current.pipeline.read_workers
        );
        assert_eq!(plan.effective.source.include, vec!["*.txt", "*.csv"]);
        // Reloading the same file again changes nothing further but still names the restart keys.
        let again = reload(&source, &plan.effective, &live).unwrap();
        assert!(again.applied.is_empty());
        assert_eq!(again.restart_needed.len(), 2);
    }

    #[test]
    fn an_invalid_config_changes_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("pipeline.toml");
        write(&path, "");
        let source = Source {
            path: Some(path.clone()),
            overrides: vec![],
        };
        let current = Config::load(Some(&path), &[]).unwrap();
        let live = Live::new(&current).unwrap();
        write(&path, "include = [\"*\"]\n[log]\nlevel = \"infoo\"");
        let err = format!("{:#}", reload(&source, &current, &live).unwrap_err());
        assert!(err.contains("log.level"), "{err}");
        assert!(
            !live.filter.get().reads(Path::new("a.csv")),
            "filter untouched"
        );
    }
}
