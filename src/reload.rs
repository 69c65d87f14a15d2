//! Owns the live reload: on a hangup (SIGHUP), re-reads the config file, applies what can
//! change safely ([`LIVE_KEYS`]: log level, `source.include`/`exclude`, `source.settle`,
//! `source.rescan_interval`) and names every other changed key in a warning: those take effect
//! at the next start. A new config is validated whole (`Config::load`, the same checks as
//! `run`) before anything changes.
//!
//! Thresholds stay restart-only on purpose. The output must be the same bytes for the same
//! input and arrival order whatever the worker counts, and a SIGHUP lands at a wall-clock
//! moment, not at a sequence number: the strip probabilities are applied by parallel workers,
//! so which documents saw the new values would depend on scheduling; the dedup thresholds
//! (`dedup.near_threshold`, `dedup.story_threshold`) are read by the ordered stage, but how far
//! it has got when the signal lands depends on the worker counts, and its memory (near-duplicate
//! index, open stories) holds decisions made under the old values that a new threshold would
//! not revisit. A restart gives a clean boundary (the ledger says where it is).

use crate::config::Config;
use crate::filter::SharedFilter;
use anyhow::Result;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// Keys a reload puts in force without a restart.
pub const LIVE_KEYS: &[&str] = &[
    "log.level",
    "source.include",
    "source.exclude",
    "source.rescan_interval",
    "source.settle",
];

/// The watcher's `source.settle` and `source.rescan_interval`, read on every tick and swapped
/// whole by a reload.
#[derive(Debug, Clone)]
pub struct Timing(Arc<RwLock<(Duration, Duration)>>);

impl Timing {
    pub fn new(settle: Duration, rescan_interval: Duration) -> Self {
        Self(Arc::new(RwLock::new((settle, rescan_interval))))
    }

    /// Returns `(settle, rescan_interval)` in force now.
    pub fn get(&self) -> (Duration, Duration) {
        // The lock guards a plain copy; a poisoned lock still holds valid values.
        *self.0.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Puts new values in force from the watcher's next tick.
    pub fn set(&self, settle: Duration, rescan_interval: Duration) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = (settle, rescan_interval);
    }
}

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
    pub timing: Timing,
}

impl Live {
    pub fn new(config: &Config) -> Result<Self> {
        Ok(Self {
            filter: SharedFilter::new(config.file_filter()?),
            timing: Timing::new(config.source.settle, config.source.rescan_interval),
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
    if applied
        .iter()
        .any(|k| k == "source.settle" || k == "source.rescan_interval")
    {
        live.timing
            .set(new.source.settle, new.source.rescan_interval);
        effective.source.settle = new.source.settle;
        effective.source.rescan_interval = new.source.rescan_interval;
    }
    if applied
        .iter()
        .any(|k| k == "source.include" || k == "source.exclude")
    {
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

    /// A config file holding `extra`, the source that reads it again, and the running state.
    struct Running {
        _tmp: tempfile::TempDir,
        path: std::path::PathBuf,
        source: Source,
        current: Config,
        live: Live,
    }

    fn running(extra: &str) -> Running {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("pipeline.toml");
        write(&path, extra);
        let source = Source {
            path: Some(path.clone()),
            overrides: vec![],
        };
        let current = Config::load(Some(&path), &[]).unwrap();
        let live = Live::new(&current).unwrap();
        Running {
            _tmp: tmp,
            path,
            source,
            current,
            live,
        }
    }

    #[test]
    fn live_keys_apply_and_the_rest_are_named() {
        let Running {
            _tmp,
            path,
            source,
            current,
            live,
        } = running("");
        assert!(!live.filter.get().reads(Path::new("a.csv")));
        write(
            &path,
            "include = [\"*.txt\", \"*.csv\"]\nrescan_interval = \"5s\"\n\
             [pipeline]\nread_workers = 7\n[dedup]\nnear_threshold = 0.8",
        );
        let plan = reload(&source, &current, &live).unwrap();
        assert_eq!(
            plan.applied,
            vec![
                "source.include".to_string(),
                "source.rescan_interval".to_string()
            ]
        );
        assert_eq!(
            plan.restart_needed,
            vec![
                "dedup.near_threshold".to_string(),
                "pipeline.read_workers".to_string()
            ]
        );
        assert!(live.filter.get().reads(Path::new("a.csv")));
        assert_eq!(
            live.timing.get(),
            (current.source.settle, Duration::from_secs(5))
        );
        assert_eq!(
            plan.effective.source.rescan_interval,
            Duration::from_secs(5)
        );
        assert_eq!(
            plan.effective.dedup.near_threshold,
            current.dedup.near_threshold
        );
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
    fn settle_and_rescan_interval_apply_and_go_back() {
        let Running {
            _tmp,
            path,
            source,
            current,
            live,
        } = running("settle = \"1h\"\nrescan_interval = \"1h\"");
        let hour = Duration::from_secs(3600);
        assert_eq!(live.timing.get(), (hour, hour));
        write(&path, "settle = \"300ms\"\nrescan_interval = \"200ms\"");
        let plan = reload(&source, &current, &live).unwrap();
        assert_eq!(
            plan.applied,
            vec!["source.rescan_interval", "source.settle"]
        );
        assert!(plan.restart_needed.is_empty(), "{:?}", plan.restart_needed);
        let fast = (Duration::from_millis(300), Duration::from_millis(200));
        assert_eq!(live.timing.get(), fast);
        assert_eq!(
            (
                plan.effective.source.settle,
                plan.effective.source.rescan_interval
            ),
            fast
        );
        // Taking the keys out of the file puts the defaults back.
        write(&path, "");
        let back = reload(&source, &plan.effective, &live).unwrap();
        assert_eq!(
            back.applied,
            vec!["source.rescan_interval", "source.settle"]
        );
        let defaults = Config::default().source;
        assert_eq!(
            live.timing.get(),
            (defaults.settle, defaults.rescan_interval)
        );
    }

    #[test]
    fn a_rescan_interval_below_the_minimum_is_refused() {
        let Running {
            _tmp,
            path,
            source,
            current,
            live,
        } = running("");
        let before = live.timing.get();
        write(&path, "settle = \"100ms\"\nrescan_interval = \"50ms\"");
        let err = format!("{:#}", reload(&source, &current, &live).unwrap_err());
        assert!(err.contains("source.rescan_interval"), "{err}");
        assert_eq!(live.timing.get(), before, "timing untouched");
    }

    #[test]
    fn an_invalid_config_changes_nothing() {
        let Running {
            _tmp,
            path,
            source,
            current,
            live,
        } = running("");
        write(&path, "include = [\"*\"]\n[log]\nlevel = \"infoo\"");
        let err = format!("{:#}", reload(&source, &current, &live).unwrap_err());
        assert!(err.contains("log.level"), "{err}");
        assert!(
            !live.filter.get().reads(Path::new("a.csv")),
            "filter untouched"
        );
    }
}
