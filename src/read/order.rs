//! Owns the order files are taken in when several are ready at once: sorted path order, the
//! order `Path`'s `Ord` gives, computed on the raw bytes where that gives the same answer.
//!
//! `Path` compares component by component, parsing both paths as it goes: a few thousand
//! instructions per comparison on long paths, paid `log n` times per file in a sort. For paths
//! made only of plain components (no empty, `.` or `..` component, no trailing separator), the
//! component order is the byte order in which the separator sorts below every other byte: a
//! common prefix compare and one byte look-up.

use std::cmp::Ordering;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Sorts `items` by the path `path_of` gives, in `Path` order.
pub fn sort_by_path<T>(items: &mut [T], path_of: impl Fn(&T) -> &Path) {
    if items.iter().all(|t| is_plain(path_of(t))) {
        items.sort_unstable_by(|a, b| plain_cmp(path_of(a), path_of(b)));
    } else {
        items.sort_by(|a, b| path_of(a).cmp(path_of(b)));
    }
}

/// Sorts paths in `Path` order.
pub fn sort_paths(paths: &mut [PathBuf]) {
    sort_by_path(paths, |p| p.as_path());
}

/// Returns whether every component of `path` is a plain name: no empty component (`a//b`, a
/// trailing `/`), no `.` and no `..`. An absolute path's leading `/` is fine.
fn is_plain(path: &Path) -> bool {
    let bytes = path.as_os_str().as_bytes();
    let rest = bytes.strip_prefix(b"/").unwrap_or(bytes);
    !rest.is_empty()
        && rest
            .split(|&b| b == b'/')
            .all(|c| !c.is_empty() && c != b"." && c != b"..")
}

/// Compares two plain paths the way `Path::cmp` does: bytewise, with `/` below every byte.
fn plain_cmp(a: &Path, b: &Path) -> Ordering {
    let (a, b) = (a.as_os_str().as_bytes(), b.as_os_str().as_bytes());
    let common = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    match (a.get(common), b.get(common)) {
        (Some(&x), Some(&y)) => rank(x).cmp(&rank(y)),
        _ => a.len().cmp(&b.len()),
    }
}

/// The separator ranks below every byte a name can hold (a name never holds NUL).
fn rank(b: u8) -> u8 {
    if b == b'/' {
        0
    } else {
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Names chosen where byte order and component order disagree: `-` and `.` sort below `/`
    /// as bytes, above it as components.
    const NAMES: [&str; 12] = [
        "a", "a-b", "a.txt", "a/b", "a/b/c", "a/-", "a0", "b", "-x", "A", "a/b-c", "a/b/",
    ];

    fn shuffled(paths: &[PathBuf]) -> Vec<PathBuf> {
        let mut v = paths.to_vec();
        v.reverse();
        v.rotate_left(5);
        v
    }

    #[test]
    fn plain_paths_sort_like_path_ord() {
        let mut all: Vec<PathBuf> = Vec::new();
        for prefix in ["", "/drop/", "drop/sub/"] {
            for n in NAMES.iter().filter(|n| !n.ends_with('/')) {
                all.push(format!("{prefix}{n}").into());
            }
        }
        let mut want = all.clone();
        want.sort();
        let mut got = shuffled(&all);
        sort_paths(&mut got);
        assert_eq!(got, want);
        assert!(all.iter().all(|p| is_plain(p)));
        // The byte order alone would differ: the fast path is what makes them agree.
        let mut bytes = all.clone();
        bytes.sort_by(|a, b| a.as_os_str().as_bytes().cmp(b.as_os_str().as_bytes()));
        assert_ne!(bytes, want);
    }

    #[test]
    fn paths_with_odd_components_fall_back_to_path_ord() {
        let all: Vec<PathBuf> = ["./b", "-x", "a//d", "a/b", "../a", "a/c/", "a/../b"]
            .iter()
            .map(PathBuf::from)
            .collect();
        assert!(all.iter().filter(|p| !is_plain(p)).count() == 5);
        let mut want = all.clone();
        want.sort();
        let mut got = shuffled(&all);
        sort_paths(&mut got);
        assert_eq!(got, want);
    }
}
