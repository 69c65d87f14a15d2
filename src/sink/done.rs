//! Owns the done-action: what happens to a file once its line is committed (left in place,
//! moved into `done_dir`, or deleted; files whose line is an error record go to `failed_dir`).

use crate::config::DoneAction;
use std::fs;
use std::path::{Path, PathBuf};

/// What happens to files after commit; `None` of the dirs in `process` mode.
#[derive(Debug, Clone)]
pub struct DonePolicy {
    pub action: DoneAction,
    pub done_dir: PathBuf,
    pub failed_dir: PathBuf,
}

impl DonePolicy {
    /// Returns the done-action `config` asks for; `None` when files are left in place.
    pub fn from_config(config: &crate::config::Config) -> Option<Self> {
        (config.source.done != DoneAction::Leave).then(|| Self {
            action: config.source.done,
            done_dir: config.in_source(&config.source.done_dir),
            failed_dir: config.in_source(&config.source.failed_dir),
        })
    }
}

/// Runs the done-action on one committed file.
pub fn apply_done(policy: &DonePolicy, path: &Path, failed: bool) -> std::io::Result<()> {
    match (policy.action, failed) {
        (DoneAction::Leave, _) => Ok(()),
        (DoneAction::Delete, false) => match fs::remove_file(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            r => r,
        },
        (DoneAction::Move, _) | (DoneAction::Delete, true) => {
            let dir = if failed {
                &policy.failed_dir
            } else {
                &policy.done_dir
            };
            move_into(path, dir)
        }
    }
}

/// Moves `path` into `dir` under its own name, adding `.1`, `.2`, ... when the name is taken.
pub(super) fn move_into(path: &Path, dir: &Path) -> std::io::Result<()> {
    if fs::symlink_metadata(path).is_err() {
        return Ok(()); // vanished files have nothing left to move
    }
    fs::create_dir_all(dir)?;
    let name = path.file_name().unwrap_or_default();
    let mut target = dir.join(name);
    let mut n = 0;
    while fs::symlink_metadata(&target).is_ok() {
        n += 1;
        let mut alt = name.to_os_string();
        alt.push(format!(".{n}"));
        target = dir.join(alt);
    }
    fs::rename(path, target)
}
