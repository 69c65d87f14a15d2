//! Owns `dropline eval entities`: conlleval-style scores on a CoNLL file.

/// Arguments of `dropline eval entities`.
#[derive(Debug, clap::Args)]
pub struct EvalEntitiesArgs {
    /// A CoNLL-2003 file (`word POS chunk NER`).
    #[arg(long)]
    pub conll: std::path::PathBuf,
}

/// Runs the evaluation and prints P/R/F1 overall and per type, plus tokens/s.
pub fn run(_args: &EvalEntitiesArgs) -> anyhow::Result<()> {
    anyhow::bail!("eval entities is not built yet")
}
