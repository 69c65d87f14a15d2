//! placeholder
use crate::config::Config;
use std::path::PathBuf;
pub struct ProcessSummary { pub failed: u64 }
pub fn run_daemon(_c: Config, _once: bool) -> anyhow::Result<()> { todo!() }
pub fn run_process(_c: Config, _p: &[PathBuf]) -> anyhow::Result<ProcessSummary> { todo!() }
