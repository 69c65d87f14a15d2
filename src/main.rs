//! The `dropline` binary: parses the command line and maps the outcome to an exit code.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = dropline::cli::Cli::parse();
    dropline::cli::main(cli)
}
