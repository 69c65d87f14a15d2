//! Owns `dropline eval dedup`: near-duplicate and story scores on a labelled folder.

/// Arguments of `dropline eval dedup`.
#[derive(Debug, clap::Args)]
pub struct EvalDedupArgs {
    /// Folder with `docs/` and `labels.csv`.
    pub data_dir: std::path::PathBuf,
}

/// Runs the evaluation and prints the scores.
pub fn run(_args: &EvalDedupArgs) -> anyhow::Result<()> {
    anyhow::bail!("eval dedup is not built yet")
}
