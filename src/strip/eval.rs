//! Owns `dropline eval strip`: scores stripping against gold bodies.

/// Arguments of `dropline eval strip`.
#[derive(Debug, clap::Args)]
pub struct EvalStripArgs {
    /// Folder with `html/` or `text/` pages and `gold/` bodies.
    pub gold_dir: std::path::PathBuf,
}

/// Runs the evaluation and prints F1, P, R and docs/s.
pub fn run(_args: &EvalStripArgs) -> anyhow::Result<()> {
    anyhow::bail!("eval strip is not built yet")
}
