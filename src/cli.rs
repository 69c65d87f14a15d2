//! Owns the command line: subcommands, global flags and exit codes.

use crate::config::Config;
use crate::{dedup, entities, strip};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// The version `--version` prints: the crate version and the git commit it was built from.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("DROPLINE_COMMIT"),
    ")"
);

/// Streaming ingest daemon for news text.
#[derive(Debug, Parser)]
#[command(name = "dropline", version = VERSION, about)]
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
    /// Validates the config as strictly as `run` does (folders, metrics port, log level) and
    /// prints the effective config; exit 2 on any problem.
    Check {
        #[command(flatten)]
        config: ConfigArgs,
        /// Prints a key's meaning, default and current value instead (a section lists its keys).
        #[arg(long, value_name = "KEY")]
        explain: Option<String>,
    },
    /// Prints a shell completion script to stdout.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Prints the man page (roff) to stdout.
    Man,
    /// Inspects a cluster of dropline nodes on NATS JetStream (`[cluster]` in the config).
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// Scores a stage against a labelled data set.
    #[command(subcommand)]
    Eval(EvalCommand),
    /// Trains a stage's model.
    #[command(subcommand)]
    Train(TrainCommand),
}

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Prints the nodes and their roles, consumer lag, the decider and stream sizes.
    Status {
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Prints the output stream as JSON Lines from its start.
    Tail {
        #[command(flatten)]
        config: ConfigArgs,
        /// Exits once the lines the stream held at start are printed.
        #[arg(long)]
        once: bool,
    },
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
    /// Fits the strip stage's DOM-block model on a training folder (e.g. wcxb-train).
    Strip(strip::block_train::TrainStripArgs),
    /// Counts the story tier's background document frequencies (`dedup.story_prior`) from
    /// earlier articles.
    StoryPrior(dedup::story_prior::TrainStoryPriorArgs),
}

/// Exit code for usage and config errors.
const EXIT_USAGE: u8 = 2;

/// Runs the parsed command and returns the process exit code.
pub fn main(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Run { config, once } => {
            let Some((cfg, path)) = load(&config) else {
                return ExitCode::from(EXIT_USAGE);
            };
            if !environment_ok(&cfg, path.as_deref()) {
                return ExitCode::from(EXIT_USAGE);
            }
            crate::logging::init(&cfg.log);
            log_startup(&cfg, path.as_deref());
            let format = cfg.log.format;
            let source = crate::reload::Source {
                path,
                overrides: config.set.clone(),
            };
            let ran = if cfg.cluster.enabled() {
                crate::cluster::run_daemon(cfg)
            } else {
                crate::pipeline::run_daemon(cfg, once, Some(source))
            };
            match ran {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    crate::logging::fatal(format, &e);
                    failure_code(&e)
                }
            }
        }
        Command::Process { config, paths } => {
            let Some(cfg) = load_from(config.config.as_deref(), &config.set) else {
                return ExitCode::from(EXIT_USAGE);
            };
            crate::logging::init(&cfg.log);
            let format = cfg.log.format;
            match crate::pipeline::run_process(cfg, &paths) {
                Ok(summary) if summary.failed == 0 => ExitCode::SUCCESS,
                Ok(_) => ExitCode::from(1),
                Err(e) => {
                    crate::logging::fatal(format, &e);
                    ExitCode::from(EXIT_USAGE)
                }
            }
        }
        Command::Check { config, explain } => {
            let Some((cfg, path)) = load(&config) else {
                return ExitCode::from(EXIT_USAGE);
            };
            if let Some(key) = explain {
                return match crate::check::explain(&key, &cfg) {
                    Ok(text) => {
                        print!("{text}");
                        ExitCode::SUCCESS
                    }
                    Err(e) => {
                        eprintln!("dropline: {e:#}");
                        ExitCode::from(EXIT_USAGE)
                    }
                };
            }
            if !environment_ok(&cfg, path.as_deref()) {
                return ExitCode::from(EXIT_USAGE);
            }
            match cfg.to_toml() {
                Ok(s) => {
                    print!("{s}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("dropline: {e:#}");
                    ExitCode::from(EXIT_USAGE)
                }
            }
        }
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "dropline", &mut std::io::stdout());
            ExitCode::SUCCESS
        }
        Command::Man => {
            let cmd = <Cli as clap::CommandFactory>::command();
            match clap_mangen::Man::new(cmd).render(&mut std::io::stdout()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("dropline: cannot write the man page: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Cluster(cmd) => {
            let (args, command) = match cmd {
                ClusterCommand::Status { config } => (config, crate::cluster::Command::Status),
                ClusterCommand::Tail { config, once } => {
                    (config, crate::cluster::Command::Tail { once })
                }
            };
            let Some((cfg, _)) = load(&args) else {
                return ExitCode::from(EXIT_USAGE);
            };
            // Warnings (a reader asked for again while a server is down) go to stderr.
            crate::logging::init(&cfg.log);
            exit(crate::cluster::run_command(&cfg.cluster, command))
        }
        Command::Eval(cmd) => exit(match cmd {
            EvalCommand::Strip(a) => strip::eval::run(&a),
            EvalCommand::Dedup(a) => dedup::eval::run(&a),
            EvalCommand::Entities(a) => entities::eval::run(&a),
        }),
        Command::Train(TrainCommand::Entities(a)) => exit(entities::train::run(&a)),
        Command::Train(TrainCommand::Strip(a)) => exit(strip::block_train::run(&a)),
        Command::Train(TrainCommand::StoryPrior(a)) => exit(dedup::story_prior::run(&a)),
    }
}

/// The config file used when `--config` is not given and it exists.
const DEFAULT_CONFIG: &str = "pipeline.toml";

/// Loads `--config`, else `./pipeline.toml` when it exists, else the defaults; returns the
/// config and the file it came from.
fn load(args: &ConfigArgs) -> Option<(Config, Option<PathBuf>)> {
    let default = std::path::Path::new(DEFAULT_CONFIG);
    let path = args
        .config
        .clone()
        .or_else(|| default.is_file().then(|| default.to_path_buf()));
    load_from(path.as_deref(), &args.set).map(|c| (c, path))
}

/// Loads `path` (or the defaults) with overrides; errors are printed in the format the config
/// asks for, naming the file.
fn load_from(path: Option<&std::path::Path>, set: &[String]) -> Option<Config> {
    match Config::load(path, set) {
        Ok(c) => Some(c),
        Err(e) => {
            crate::logging::fatal(crate::logging::sniff_format(path, set), &e);
            None
        }
    }
}

/// Prints every problem `run` would hit before starting, each naming the file and key.
fn environment_ok(cfg: &Config, path: Option<&std::path::Path>) -> bool {
    let problems = crate::check::environment(cfg);
    let origin = path.map_or_else(|| "defaults".into(), |p| p.display().to_string());
    for p in &problems {
        let e = anyhow::anyhow!("{origin}: {p}");
        crate::logging::fatal(cfg.log.format, &e);
    }
    problems.is_empty()
}

/// Logs what an operator needs to know the daemon started as configured.
fn log_startup(cfg: &Config, path: Option<&std::path::Path>) {
    let metrics = if cfg.metrics.enabled {
        cfg.metrics.listen.to_string()
    } else {
        "off".into()
    };
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        commit = env!("DROPLINE_COMMIT"),
        config = %path.map_or_else(|| "(defaults)".into(), |p| p.display().to_string()),
        drop_dir = %cfg.source.dir.display(),
        state_dir = %cfg.state.dir.as_ref().map_or_else(|| "(none)".into(), |p| p.display().to_string()),
        metrics = %metrics,
        "starting dropline"
    );
}

/// Returns the exit code for a failed command: 2 for a refusal the user must act on (config,
/// state dir in use, output not ours), 1 for anything else.
fn failure_code(e: &anyhow::Error) -> ExitCode {
    if e.chain().any(|c| c.is::<crate::config::Refused>()) {
        ExitCode::from(EXIT_USAGE)
    } else {
        ExitCode::FAILURE
    }
}

/// Maps an eval or train result to an exit code.
fn exit(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dropline: {e:#}");
            failure_code(&e)
        }
    }
}
