//! Owns the command line: subcommands, global flags and exit codes.

use crate::config::Config;
use crate::{dedup, entities, strip};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// Streaming ingest daemon for news text.
#[derive(Debug, Parser)]
#[command(name = "dropline", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command that loads a config takes.
#[derive(Debug, Clone, Args)]
pub struct ConfigArgs {
    /// The pipeline config (TOML). Without it, `run` and `check` use `./pipeline.toml` when
    /// present; `process` uses the defaults (so no state survives unless asked for).
    #[arg(long, short = 'c', global = true)]
    pub config: Option<PathBuf>,
    /// Overrides one config key, e.g. `--set strip.enabled=false`; repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE", global = true)]
    pub set: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Watches the drop folder until SIGINT/SIGTERM, then drains and exits.
    Run {
        #[command(flatten)]
        config: ConfigArgs,
        /// Processes what is ready at start-up, drains and exits (like Filebeat's `--once`).
        #[arg(long)]
        once: bool,
    },
    /// Runs the stages once over files and folders and writes JSON Lines to stdout.
    Process {
        #[command(flatten)]
        config: ConfigArgs,
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Validates the config and prints the effective config.
    Check {
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Scores a stage against a labelled data set.
    #[command(subcommand)]
    Eval(EvalCommand),
    /// Trains a stage's model.
    #[command(subcommand)]
    Train(TrainCommand),
}

#[derive(Debug, Subcommand)]
pub enum EvalCommand {
    /// Boilerplate stripping against gold bodies.
    Strip(strip::eval::EvalStripArgs),
    /// Near-duplicates and stories against `labels.csv`.
    Dedup(dedup::eval::EvalDedupArgs),
    /// Entities against a CoNLL file.
    Entities(entities::eval::EvalEntitiesArgs),
}

#[derive(Debug, Subcommand)]
pub enum TrainCommand {
    /// Fits the entity model on CoNLL data.
    Entities(entities::train::TrainEntitiesArgs),
}

/// Exit code for usage and config errors.
const EXIT_USAGE: u8 = 2;

/// Runs the parsed command and returns the process exit code.
pub fn main(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Run { config, once } => {
            let Some(cfg) = load(&config) else {
                return ExitCode::from(EXIT_USAGE);
            };
            crate::telemetry::init_tracing(&cfg.log);
            exit(crate::pipeline::run_daemon(cfg, once))
        }
        Command::Process { config, paths } => {
            let Some(cfg) = load_explicit(&config) else {
                return ExitCode::from(EXIT_USAGE);
            };
            crate::telemetry::init_tracing(&cfg.log);
            match crate::pipeline::run_process(cfg, &paths) {
                Ok(summary) if summary.failed == 0 => ExitCode::SUCCESS,
                Ok(_) => ExitCode::from(1),
                Err(e) => {
                    eprintln!("dropline: {e:#}");
                    ExitCode::from(EXIT_USAGE)
                }
            }
        }
        Command::Check { config } => match load(&config) {
            Some(cfg) => match cfg.to_toml() {
                Ok(s) => {
                    print!("{s}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("dropline: {e:#}");
                    ExitCode::from(EXIT_USAGE)
                }
            },
            None => ExitCode::from(EXIT_USAGE),
        },
        Command::Eval(cmd) => exit(match cmd {
            EvalCommand::Strip(a) => strip::eval::run(&a),
            EvalCommand::Dedup(a) => dedup::eval::run(&a),
            EvalCommand::Entities(a) => entities::eval::run(&a),
        }),
        Command::Train(TrainCommand::Entities(a)) => exit(entities::train::run(&a)),
    }
}

/// The config file used when `--config` is not given and it exists.
const DEFAULT_CONFIG: &str = "pipeline.toml";

fn load(args: &ConfigArgs) -> Option<Config> {
    let default = std::path::Path::new(DEFAULT_CONFIG);
    let path = args
        .config
        .as_deref()
        .or_else(|| default.is_file().then_some(default));
    load_from(path, &args.set)
}

/// Loads only the config named on the command line, else the defaults.
fn load_explicit(args: &ConfigArgs) -> Option<Config> {
    load_from(args.config.as_deref(), &args.set)
}

fn load_from(path: Option<&std::path::Path>, set: &[String]) -> Option<Config> {
    match Config::load(path, set) {
        Ok(c) => Some(c),
        Err(e) => {
            eprintln!("dropline: {e:#}");
            None
        }
    }
}

/// Maps a command's outcome to its exit code: 2 for a refusal the user must act on (config,
/// state dir in use, output not ours), 1 for anything else.
fn exit(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dropline: {e:#}");
            if e.chain().any(|c| c.is::<crate::config::Refused>()) {
                ExitCode::from(EXIT_USAGE)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
