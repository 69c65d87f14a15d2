//! Replays the fuzz targets' saved inputs through the very checks the targets run
//! (`fuzz/src/checks.rs`), under plain `cargo test`: CI has no time for a fuzzing step, and
//! this keeps the targets compiling against the library and their inputs passing.
//!
//! Inputs per target: `fuzz/seeds/TARGET/`, any crash inputs kept in `fuzz/regressions/TARGET/`,
//! and the extra seeds `scripts/fuzz.sh` adds (the sample articles, the shipped config).

#[path = "../fuzz/src/checks.rs"]
#[allow(dead_code)] // `scratch_dir` is for the fuzz targets; the replay uses a temp dir
mod checks;

use std::path::{Path, PathBuf};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Returns the saved inputs of `target`, sorted; `extra` are files or folders added as
/// `scripts/fuzz.sh` adds them.
fn inputs(target: &str, extra: &[&str]) -> Vec<(PathBuf, Vec<u8>)> {
    let mut paths = Vec::new();
    let mut dirs = vec![
        root().join("fuzz/seeds").join(target),
        root().join("fuzz/regressions").join(target),
    ];
    for e in extra {
        let p = root().join(e);
        if p.is_dir() {
            dirs.push(p);
        } else {
            paths.push(p);
        }
    }
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        paths.extend(entries.map(|e| e.unwrap().path()));
    }
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect()
}

fn untimed(_what: &str, _len: usize, work: &mut dyn FnMut()) {
    work();
}

/// Runs `check` on every input of `target`, naming the input that failed.
fn replay(target: &str, extra: &[&str], min_inputs: usize, check: impl Fn(&[u8])) {
    let all = inputs(target, extra);
    assert!(
        all.len() >= min_inputs,
        "{target}: {} saved inputs, expected at least {min_inputs}",
        all.len()
    );
    for (path, bytes) in &all {
        let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(bytes)));
        assert!(ok.is_ok(), "{target} fails on {}", path.display());
    }
}

#[test]
fn read_decode_inputs_pass() {
    replay("read_decode", &["seeds"], 16, |d| {
        checks::read_decode(d, &untimed)
    });
}

#[test]
fn strip_text_inputs_pass() {
    replay("strip_text", &["seeds"], 8, |d| {
        checks::strip_text(d, &untimed)
    });
}

#[test]
fn strip_html_inputs_pass() {
    replay("strip_html", &[], 4, |d| checks::strip_html(d, &untimed));
}

#[test]
fn config_parse_inputs_pass() {
    replay("config_parse", &["pipeline.toml"], 4, |d| {
        checks::config_parse(d, &untimed)
    });
}

#[test]
fn ledger_replay_inputs_pass() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("ledger");
    replay("ledger_replay", &[], 5, |d| {
        checks::ledger_replay(d, &dir, &untimed)
    });
}

/// The replay is not vacuous: the work of a check runs once per input, and an input a check
/// rejects fails the test and names the input.
#[test]
fn replay_runs_every_input_and_reports_a_failure() {
    let ran = std::cell::Cell::new(0);
    let counting = |_: &str, _: usize, work: &mut dyn FnMut()| {
        ran.set(ran.get() + 1);
        work();
    };
    let all = inputs("config_parse", &["pipeline.toml"]);
    for (_, bytes) in &all {
        checks::config_parse(bytes, &counting);
    }
    assert_eq!(ran.get(), all.len());
    let failed = std::panic::catch_unwind(|| {
        replay("strip_html", &[], 1, |d| assert!(d.len() > usize::MAX / 2))
    });
    let message = failed.expect_err("a failing check fails the replay");
    let text = message
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert!(text.contains("strip_html fails on"), "{text}");
}
