//! Whole-file replacement that a crash cannot tear: the new contents go to a temporary file
//! beside the target, are synced, and are renamed over the target, so a reader (or a restart)
//! sees the old file or the new one, never a mix or an empty file.
//!
//! Whether the rename itself must be on disk when [`replace`] returns is the caller's choice
//! ([`Rename`]): a file whose older version is still correct after a power loss (a position that
//! only makes a sink re-read what it already has, a compaction of a log whose longer form means
//! the same) can skip the folder's fsync, which costs a second disk flush on every call.

use anyhow::{Context, Result};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// Whether [`replace`] syncs the folder after the rename.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rename {
    /// The folder is synced: the new file survives a power loss once `replace` returns.
    Durable,
    /// The folder is not synced: after a power loss the old file may be back (never a torn one).
    Atomic,
}

/// Replaces `path` with `bytes` through `path` + `.tmp` (in the same folder), synced before
/// the rename; with [`Rename::Durable`] the folder is synced after it.
pub fn replace(path: &Path, bytes: &[u8], rename: Rename) -> Result<()> {
    replace_with(path, rename, |w| Ok(w.write_all(bytes)?))
}

/// As [`replace`], with the new contents written by `write` through a buffer, so that a large
/// file is never held in memory whole. An error from `write` leaves the old file.
pub fn replace_with(
    path: &Path,
    rename: Rename,
    write: impl FnOnce(&mut BufWriter<&File>) -> Result<()>,
) -> Result<()> {
    let tmp = temporary(path);
    let f = File::create(&tmp).with_context(|| format!("cannot write {}", tmp.display()))?;
    let mut w = BufWriter::with_capacity(1 << 16, &f);
    write(&mut w)
        .and_then(|()| Ok(w.flush()?))
        .and_then(|()| Ok(f.sync_all()?))
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    drop(w);
    drop(f);
    std::fs::rename(&tmp, path).with_context(|| format!("cannot replace {}", path.display()))?;
    if rename == Rename::Durable {
        sync_folder(path)?;
    }
    Ok(())
}

/// Syncs the folder holding `path`, so that a rename into it survives a power loss.
pub fn sync_folder(path: &Path) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("cannot sync the folder {}", dir.display()))
}

/// The temporary file [`replace`] writes before its rename: the target's name plus `.tmp`.
pub fn temporary(path: &Path) -> PathBuf {
    beside(path, ".tmp")
}

/// The file beside `path` whose name is `path`'s plus `suffix`.
pub fn beside(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_contents_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.jsonl");
        std::fs::write(&path, b"old contents, longer than the new\n").unwrap();
        for rename in [Rename::Durable, Rename::Atomic] {
            replace(&path, b"new\n", rename).unwrap();
            assert_eq!(std::fs::read(&path).unwrap(), b"new\n");
            assert!(!temporary(&path).exists());
        }
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "only the target is left in the folder");
    }

    #[test]
    fn a_stale_temporary_file_is_overwritten_not_appended_to() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.id");
        std::fs::write(
            temporary(&path),
            b"left by a crash mid-write, before the rename",
        )
        .unwrap();
        replace(&path, b"abc\n", Rename::Durable).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"abc\n");
    }

    #[test]
    fn a_failed_write_keeps_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pos");
        std::fs::write(&path, b"1 2 3 4\n").unwrap();
        // The temporary file cannot be created where a folder of its name stands.
        std::fs::create_dir(temporary(&path)).unwrap();
        let err = replace(&path, b"5 6 7 8\n", Rename::Atomic).unwrap_err();
        assert!(format!("{err:#}").contains("pos.tmp"), "{err:#}");
        assert_eq!(std::fs::read(&path).unwrap(), b"1 2 3 4\n");
    }

    #[test]
    fn the_temporary_file_keeps_the_whole_name() {
        let p = Path::new("/s/published.jsonl");
        assert_eq!(temporary(p), Path::new("/s/published.jsonl.tmp"));
        assert_eq!(temporary(Path::new("out.pos")), Path::new("out.pos.tmp"));
    }
}
