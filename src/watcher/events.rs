//! Owns the notify side of discovery: the callback, on notify's own thread, only records what
//! each event says about a path in a bounded map (past its cap it asks for a rescan instead).

use super::{PathMap, WatchConfig};
use notify::event::{AccessKind, AccessMode, ModifyKind, RenameMode};
use notify::{Event, EventKind, RecursiveMode, Watcher as _};
use std::fs;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// What an event said about a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Hint {
    /// Renamed into the folder, or closed after writing: ready now.
    Complete,
    /// Created or written: ready once it settles.
    Changed,
    Removed,
}

/// Paths reported by notify and not yet looked at; bounded by `cap`.
///
/// Path-keyed maps here and in the tracker hash with foldhash: SipHash over a path cost more
/// than the rest of a file's bookkeeping on the watcher thread.
#[derive(Debug, Default)]
pub(super) struct Pending {
    pub(super) paths: PathMap<Hint>,
    pub(super) overflow: bool,
    /// The watched folder itself was removed: its watch is gone.
    pub(super) watch_lost: bool,
}

/// Starts watching `config.dir`; events land in `pending` and wake the watcher loop.
pub(super) fn start_notify(
    config: &WatchConfig,
    pending: Arc<Mutex<Pending>>,
    wake: Arc<Notify>,
) -> notify::Result<notify::RecommendedWatcher> {
    let cap = config.max_pending;
    // notify reports absolute paths under what it watches; records keep the folder as configured.
    let abs = fs::canonicalize(&config.dir)?;
    let (watched, dir) = (abs.clone(), config.dir.clone());
    let root = abs.clone();
    let relative = move |p: &PathBuf| match p.strip_prefix(&watched) {
        Ok(rest) => dir.join(rest),
        Err(_) => p.clone(),
    };
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<Event>| {
        let mut p = lock(&pending);
        match res {
            Ok(event) => {
                if event.need_rescan() {
                    p.overflow = true;
                }
                if matches!(event.kind, EventKind::Remove(_)) && event.paths.contains(&root) {
                    p.watch_lost = true;
                }
                let (hint, path) = match event.kind {
                    EventKind::Modify(ModifyKind::Name(RenameMode::To)) => {
                        (Hint::Complete, event.paths.first())
                    }
                    EventKind::Modify(ModifyKind::Name(RenameMode::Both)) => {
                        (Hint::Complete, event.paths.last())
                    }
                    EventKind::Modify(ModifyKind::Name(RenameMode::From))
                    | EventKind::Remove(_) => (Hint::Removed, event.paths.first()),
                    EventKind::Access(AccessKind::Close(AccessMode::Write)) => {
                        (Hint::Complete, event.paths.first())
                    }
                    EventKind::Create(_) | EventKind::Modify(_) => {
                        (Hint::Changed, event.paths.first())
                    }
                    _ => return,
                };
                let Some(path) = path.map(&relative) else {
                    return;
                };
                if p.paths.len() >= cap && !p.paths.contains_key(&path) {
                    p.overflow = true;
                } else {
                    let entry = p.paths.entry(path).or_insert(hint);
                    // A completion is never downgraded by a later change event of the same batch.
                    if !(*entry == Hint::Complete && hint == Hint::Changed) {
                        *entry = hint;
                    }
                }
            }
            Err(error) => {
                tracing::warn!(%error, "filesystem watch error, rescanning");
                p.overflow = true;
            }
        }
        drop(p);
        wake.notify_one();
    })?;
    let mode = if config.recursive {
        RecursiveMode::Recursive
    } else {
        RecursiveMode::NonRecursive
    };
    watcher.watch(&abs, mode)?;
    Ok(watcher)
}

pub(super) fn lock(p: &Mutex<Pending>) -> std::sync::MutexGuard<'_, Pending> {
    // The map stays valid if the notify thread panicked while holding it.
    p.lock().unwrap_or_else(|e| e.into_inner())
}
