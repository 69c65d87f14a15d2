//! Owns logging set-up: tracing to stderr (plain or JSON), colour only on a terminal, a level
//! that a reload can change, and fatal errors in the configured format.

use crate::config::{LogConfig, LogFormat};
use std::io::IsTerminal;
use std::sync::OnceLock;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, EnvFilter, Registry};

/// The installed filter's reload handle, and whether `RUST_LOG` chose it.
struct Installed {
    handle: reload::Handle<EnvFilter, Registry>,
    from_env: bool,
}

static INSTALLED: OnceLock<Installed> = OnceLock::new();

/// Initialises tracing to stderr; `RUST_LOG` wins over `log.level`. ANSI colour only when
/// stderr is a terminal. A second call (tests calling the library twice) keeps the first.
pub fn init(config: &LogConfig) {
    let (filter, from_env) = match EnvFilter::try_from_default_env() {
        Ok(f) => (f, true),
        // `log.level` was validated with the config; "info" is only a defensive fallback.
        Err(_) => (
            crate::check::parse_log_level(&config.level).unwrap_or_else(|_| EnvFilter::new("info")),
            false,
        ),
    };
    let (filter, handle) = reload::Layer::new(filter);
    let ansi = std::io::stderr().is_terminal();
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    let registry = tracing_subscriber::registry().with(filter);
    let installed = match config.format {
        LogFormat::Plain => registry.with(fmt).try_init(),
        LogFormat::Json => registry.with(fmt.json()).try_init(),
    };
    if installed.is_ok() {
        let _ = INSTALLED.set(Installed { handle, from_env });
    }
}

/// What a level change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LevelChange {
    Applied,
    /// `RUST_LOG` is set and keeps winning.
    KeptEnv,
    /// Logging was not initialised through [`init`] (library use, tests): nothing to change.
    NotInstalled,
}

/// Puts `level` in force; an invalid level is an error and changes nothing.
pub fn set_level(level: &str) -> anyhow::Result<LevelChange> {
    let filter = crate::check::parse_log_level(level)?;
    let Some(installed) = INSTALLED.get() else {
        return Ok(LevelChange::NotInstalled);
    };
    if installed.from_env {
        return Ok(LevelChange::KeptEnv);
    }
    installed
        .handle
        .reload(filter)
        .map_err(|e| anyhow::anyhow!("cannot change the log level: {e}"))?;
    Ok(LevelChange::Applied)
}

/// Prints a fatal error to stderr: one JSON object (the shape of tracing's JSON lines) when
/// `format` is JSON, else `dropline: ...`.
pub fn fatal(format: LogFormat, error: &anyhow::Error) {
    let message = format!("{error:#}");
    match format {
        LogFormat::Plain => eprintln!("dropline: {message}"),
        LogFormat::Json => {
            let line = serde_json::json!({
                "timestamp": crate::model::timestamp_now(),
                "level": "ERROR",
                "fields": {"message": "fatal error", "error": message},
                "target": "dropline",
            });
            eprintln!("{line}");
        }
    }
}

/// Returns the log format a config file (and `--set` overrides) ask for, even when the config
/// is otherwise invalid, so that the error about it comes out in that format.
pub fn sniff_format(path: Option<&std::path::Path>, overrides: &[String]) -> LogFormat {
    let wants_json = |v: &str| v.trim().trim_matches('"').eq_ignore_ascii_case("json");
    for kv in overrides.iter().rev() {
        if let Some((k, v)) = kv.split_once('=') {
            if k.trim() == "log.format" {
                return if wants_json(v) {
                    LogFormat::Json
                } else {
                    LogFormat::Plain
                };
            }
        }
    }
    let from_file = path
        .and_then(|p| std::fs::read_to_string(p).ok())
        .and_then(|t| t.parse::<toml::Table>().ok())
        .and_then(|t| t.get("log")?.get("format")?.as_str().map(|s| s.to_string()));
    match from_file {
        Some(f) if wants_json(&f) => LogFormat::Json,
        _ => LogFormat::Plain,
    }
}
