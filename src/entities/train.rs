//! Owns `dropline train entities`: fits the entity model on CoNLL data.

/// Arguments of `dropline train entities`.
#[derive(Debug, clap::Args)]
pub struct TrainEntitiesArgs {
    #[arg(long)]
    pub train: std::path::PathBuf,
    #[arg(long)]
    pub dev: std::path::PathBuf,
    #[arg(long)]
    pub out: std::path::PathBuf,
}

/// Trains and writes the model.
pub fn run(_args: &TrainEntitiesArgs) -> anyhow::Result<()> {
    anyhow::bail!("train entities is not built yet")
}
