//! The start most fault tests share: files dropped, then one intake with a file sink and some
//! workers, entities off.

use super::{drop_files, Bed, Node, NO_ENTITIES};
use std::path::PathBuf;

/// What [`Bed::intake_and_workers`] started.
pub struct Started {
    /// The intake's file sink.
    pub out: PathBuf,
    /// The files dropped so far.
    pub names: Vec<String>,
    pub intake: Node,
    /// The intake's config, for `dropline cluster` commands.
    pub config: PathBuf,
    pub workers: Vec<Node>,
}

impl Started {
    /// The intake and the workers, for `wait_for_lines`.
    pub fn nodes(&self) -> Vec<&Node> {
        std::iter::once(&self.intake).chain(&self.workers).collect()
    }
}

impl Bed {
    /// Drops `files` files, then starts an intake (file sink `out.jsonl`) and `workers` workers
    /// (`worker0`, `worker1`, ...), entities off.
    pub fn intake_and_workers(&self, files: usize, workers: usize) -> Started {
        let out = self.path("out.jsonl");
        let names = drop_files(&self.drop, files, 0);
        let (intake, config) = self.node("intake", "intake", Some(&out), NO_ENTITIES);
        let workers = (0..workers)
            .map(|i| {
                self.node(&format!("worker{i}"), "worker", None, NO_ENTITIES)
                    .0
            })
            .collect();
        Started {
            out,
            names,
            intake,
            config,
            workers,
        }
    }
}
