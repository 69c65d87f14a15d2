//! Owns the state-dir lock: one process per `state.dir`, held for the process's life.
//!
//! `state.dir/lock` is locked exclusively (`flock(2)`, non-blocking) and holds the
//! holder's pid, so a second daemon (or `process` with the same state dir) can name it. The
//! kernel releases the lock when the process ends, however it ends, so a stale file after
//! `kill -9` never blocks a restart.

use crate::config::Refused;
use anyhow::{Context, Result};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// File name of the lock inside `state.dir`.
pub const LOCK_FILE: &str = "lock";

/// The held lock; dropping it releases the state dir.
#[derive(Debug)]
pub struct StateLock {
    _file: File,
    path: PathBuf,
}

impl StateLock {
    /// Takes the lock on `dir` (creating it), or fails with [`Refused`] naming the holder's pid.
    pub fn acquire(dir: &Path) -> Result<StateLock> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create state dir {}", dir.display()))?;
        let path = dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("cannot open lock file {}", path.display()))?;
        // SAFETY: flock on a descriptor this function owns; no memory is involved.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        let err = std::io::Error::last_os_error();
        match rc {
            0 => {}
            _ if err.raw_os_error() == Some(libc::EWOULDBLOCK) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                let holder = if holder.is_empty() { "unknown" } else { holder };
                return Err(Refused(format!(
                    "state.dir {} is in use by another dropline process (pid {holder}); \
                     stop it, or give this one its own state.dir",
                    dir.display()
                ))
                .into());
            }
            _ => return Err(err).with_context(|| format!("cannot lock {}", path.display())),
        }
        file.set_len(0)?;
        file.seek(SeekFrom::Start(0))?;
        writeln!(file, "{}", std::process::id())?;
        file.sync_data()?;
        tracing::debug!(path = %path.display(), pid = std::process::id(), "state dir locked");
        Ok(StateLock { _file: file, path })
    }

    /// Path of the lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_is_refused_naming_the_holder_and_released_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let held = StateLock::acquire(dir.path()).unwrap();
        let err = StateLock::acquire(dir.path()).unwrap_err();
        assert!(err.downcast_ref::<Refused>().is_some());
        let msg = format!("{err:#}");
        assert!(
            msg.contains(&format!("pid {}", std::process::id())),
            "{msg}"
        );
        drop(held);
        StateLock::acquire(dir.path()).unwrap();
    }
}
