//! Owns file selection: which names under the drop folder are read (`source.include`) and which
//! are never touched (`source.exclude`), as globs over the path relative to the drop folder.
//!
//! A pattern without a `/` matches the file name at any depth (like `.gitignore`); a pattern
//! with one matches the whole relative path. Matching ignores case. Exclusion wins. Directories are only checked
//! against `exclude`, so `.*` keeps the scan out of `.git/` and friends.

use anyhow::{Context, Result};
use globset::{Candidate, GlobBuilder, GlobSet, GlobSetBuilder};
use std::path::Path;
use std::sync::{Arc, RwLock};

/// Article files read by default: plain text, HTML, and any of them gzipped.
pub const DEFAULT_INCLUDE: &[&str] = &["*.txt", "*.text", "*.htm", "*.html", "*.xhtml", "*.gz"];

/// Names never read by default: partial uploads (WinSCP, browsers, rsync, curl), editor swap
/// and backup files, and dot files (hidden, or a scraper's temp name before its rename).
pub const DEFAULT_EXCLUDE: &[&str] = &[
    ".*",
    "*~",
    "*.tmp",
    "*.part",
    "*.partial",
    "*.filepart",
    "*.crdownload",
    "*.download",
    "*.swp",
    "*.swx",
];

/// One compiled side of the filter: patterns on the file name and on the relative path.
#[derive(Debug, Clone)]
struct Patterns {
    names: GlobSet,
    paths: GlobSet,
}

impl Patterns {
    fn new(key: &str, globs: &[String]) -> Result<Self> {
        let (mut names, mut paths) = (GlobSetBuilder::new(), GlobSetBuilder::new());
        for g in globs {
            let glob = GlobBuilder::new(g)
                .case_insensitive(true)
                .build()
                .with_context(|| format!("{key}: invalid glob `{g}`"))?;
            if g.contains('/') {
                paths.add(glob);
            } else {
                names.add(glob);
            }
        }
        Ok(Self {
            names: names
                .build()
                .with_context(|| format!("{key}: invalid globs"))?,
            paths: paths
                .build()
                .with_context(|| format!("{key}: invalid globs"))?,
        })
    }

    fn matches(&self, rel: &Rel) -> bool {
        rel.name
            .as_ref()
            .is_some_and(|n| self.names.is_match_candidate(n))
            || rel
                .path
                .as_ref()
                .is_some_and(|p| self.paths.is_match_candidate(p))
    }
}

/// A relative path prepared once for every glob set it is matched against (globset's own
/// `is_match` prepares it again per set, most of a match's cost).
struct Rel<'a> {
    name: Option<Candidate<'a>>,
    /// Only when some pattern has a `/`.
    path: Option<Candidate<'a>>,
}

/// The compiled include and exclude rules.
#[derive(Debug, Clone)]
pub struct FileFilter {
    include: Patterns,
    exclude: Patterns,
}

impl FileFilter {
    /// Compiles the rules; the error names the key and the bad glob.
    pub fn new(include: &[String], exclude: &[String]) -> Result<Self> {
        Ok(Self {
            include: Patterns::new("source.include", include)?,
            exclude: Patterns::new("source.exclude", exclude)?,
        })
    }

    /// Returns the rules of the shipped defaults.
    pub fn defaults() -> Self {
        let own = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        Self::new(&own(DEFAULT_INCLUDE), &own(DEFAULT_EXCLUDE)).expect("the default globs compile")
        // invariant: constants tested below
    }

    /// Prepares `rel` for matching: its name always, the whole path when a pattern needs it.
    fn rel<'a>(&self, rel: &'a Path) -> Rel<'a> {
        let by_path = !self.include.paths.is_empty() || !self.exclude.paths.is_empty();
        Rel {
            name: rel.file_name().map(Candidate::new),
            path: by_path.then(|| Candidate::new(rel)),
        }
    }

    /// Returns whether the file at `rel` (relative to the drop folder) is to be read.
    pub fn reads(&self, rel: &Path) -> bool {
        let rel = self.rel(rel);
        !self.exclude.matches(&rel) && self.include.matches(&rel)
    }

    /// Returns whether the scan descends into (or reports) the directory at `rel`.
    pub fn enters(&self, rel: &Path) -> bool {
        !self.exclude.matches(&self.rel(rel))
    }

    /// Returns whether `path` under `root` is skipped; `is_dir` picks the rule. Names the
    /// product contract says are never read (dot files, `*.tmp`, `*.part`, `*~`) are skipped
    /// whatever `exclude` says.
    pub fn skips(&self, root: &Path, path: &Path, is_dir: bool) -> bool {
        let rel = path.strip_prefix(root).unwrap_or(path);
        let name = rel.file_name().unwrap_or_default().to_string_lossy();
        if crate::read::is_ignored_name(&name) {
            return true;
        }
        if is_dir {
            !self.enters(rel)
        } else {
            !self.reads(rel)
        }
    }
}

/// The filter in force, shared by the watcher and swapped whole by a reload.
#[derive(Debug, Clone)]
pub struct SharedFilter(Arc<RwLock<Arc<FileFilter>>>);

impl SharedFilter {
    pub fn new(filter: FileFilter) -> Self {
        Self(Arc::new(RwLock::new(Arc::new(filter))))
    }

    /// Returns the rules in force now.
    pub fn get(&self) -> Arc<FileFilter> {
        // The lock guards a pointer swap only; a poisoned lock still holds a valid filter.
        Arc::clone(&self.0.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Puts `filter` in force for every later decision.
    pub fn replace(&self, filter: FileFilter) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(filter);
    }
}

impl Default for SharedFilter {
    fn default() -> Self {
        Self::new(FileFilter::defaults())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn own(l: &[&str]) -> Vec<String> {
        l.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn defaults_read_articles_and_skip_partials_and_data_files() {
        let f = FileFilter::defaults();
        for n in ["a.txt", "b.HTML", "sub/c.html.gz", "d.htm", "e.text"] {
            assert!(f.reads(Path::new(n)), "{n}");
        }
        for n in [
            "a.txt.filepart",
            "a.crdownload",
            "a.partial",
            ".a.txt.swp",
            "a.swp",
            "a.tmp",
            "a.part",
            "a.txt~",
            ".hidden.txt",
            "sub/.hidden.txt",
            "table.csv",
            "data.json",
            "notes.md",
            "noext",
        ] {
            assert!(!f.reads(Path::new(n)), "{n}");
        }
        assert!(!f.enters(Path::new(".git")));
        assert!(f.enters(Path::new("sub")));
    }

    #[test]
    fn include_opts_in_and_exclude_wins() {
        let f = FileFilter::new(
            &own(&["*.txt", "*.csv", "feeds/*.json"]),
            &own(&["*.filepart", "drafts/**"]),
        )
        .unwrap();
        assert!(f.reads(Path::new("table.csv")));
        assert!(f.reads(Path::new("feeds/a.json")));
        assert!(
            !f.reads(Path::new("other/a.json")),
            "path globs are anchored"
        );
        assert!(!f.reads(Path::new("drafts/a.txt")));
        assert!(!f.reads(Path::new("a.csv.filepart")));
        let anything = FileFilter::new(&own(&["*"]), &[]).unwrap();
        assert!(
            anything.reads(Path::new("a.tmp")),
            "the rules alone allow it"
        );
        assert!(
            anything.skips(Path::new("/d"), Path::new("/d/a.tmp"), false),
            "the contract's never-read names hold whatever exclude says"
        );
        assert!(f.skips(Path::new("/d"), Path::new("/d/drafts/a.txt"), false));
        assert!(!f.skips(Path::new("/d"), Path::new("/d/a.txt"), false));
    }

    #[test]
    fn a_bad_glob_names_its_key() {
        let err = FileFilter::new(&own(&["*.txt"]), &own(&["a[b"])).unwrap_err();
        let msg = format!("{err:#}");
        assert!(
            msg.contains("source.exclude") && msg.contains("a[b"),
            "{msg}"
        );
    }

    #[test]
    fn replacing_the_shared_filter_changes_later_decisions() {
        let shared = SharedFilter::default();
        let before = shared.get();
        assert!(!before.reads(Path::new("a.csv")));
        shared.replace(FileFilter::new(&own(&["*"]), &[]).unwrap());
        assert!(shared.get().reads(Path::new("a.csv")));
        assert!(
            !before.reads(Path::new("a.csv")),
            "a taken snapshot stays as it was"
        );
    }
}
