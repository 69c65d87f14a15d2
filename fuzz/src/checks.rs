//! The property each fuzz target checks, one function per target. Shared by the cargo-fuzz
//! targets (which time the work under the per-input budget) and by the main crate's
//! `tests/fuzz_seeds.rs` (which replays the saved inputs through the same functions under
//! `cargo test`, so a target cannot rot while nobody fuzzes). Depends on `dropline` and its
//! dependencies only, never on libFuzzer.
//!
//! `timed(what, len, work)` runs `work`, the part of a check that a per-input time budget
//! covers: the fuzz targets pass [`crate::within_budget`], the replay test a plain call.

use dropline::config::Config;
use dropline::ledger::{identity, Ledger, LEDGER_FILE};
use dropline::model::{Format, RawDoc, SourceInfo};
use dropline::read::{decode, ReadLimits};
use dropline::strip::{html_visible_text, plain_text, StripConfig, Stripper};
use std::path::{Path, PathBuf};

/// Runs the timed part of a check: `(target name, input length, work)`.
pub type Timed<'a> = &'a dyn Fn(&str, usize, &mut dyn FnMut());

/// The names `read_decode` gives an input, picked by its first byte.
const NAMES: [&str; 6] = ["a.txt", "a.html", "a.htm", "a.txt.gz", "a.html.gz", "noext"];

/// Small caps so inflation limits are reached by small inputs too.
const LIMITS: ReadLimits = ReadLimits {
    max_file_bytes: 1 << 20,
    max_inflated_bytes: 4 << 20,
};

/// Raw file bytes (gzip or not, any charset) under a name chosen by the first byte, through
/// the same `read::decode` the reader calls: a document always has text and a 128-bit id.
pub fn read_decode(data: &[u8], timed: Timed) {
    let Some((&pick, raw)) = data.split_first() else {
        return;
    };
    let name = NAMES[usize::from(pick) % NAMES.len()];
    let mut info = SourceInfo::named(name.into(), raw.len() as u64);
    let mut got = None;
    timed("read_decode", raw.len(), &mut || {
        got = Some(decode(Path::new(name), raw, LIMITS, &mut info));
    });
    if let Some(Ok(doc)) = got {
        assert!(!doc.body.trim().is_empty(), "a document with no text");
        assert_eq!(doc.id.len(), 32);
    }
}

/// The plain-text strip path: the stage's `Stripper` (line model, rules, per-source memory) on
/// the same text twice, so the second pass meets remembered lines, and the stage-off path.
pub fn strip_text(data: &[u8], timed: Timed) {
    let Ok(body) = std::str::from_utf8(data) else {
        return;
    };
    timed("strip_text", data.len(), &mut || {
        // A fresh stripper per input keeps every run reproducible (the memory starts empty).
        let config = StripConfig {
            keep_removed: true,
            ..StripConfig::default()
        };
        let stripper = Stripper::new(&config, None).expect("the shipped line model parses");
        let doc = RawDoc {
            id: String::new(),
            format: Format::Text,
            body: body.to_string(),
            source_key: "fuzz".into(),
        };
        for _ in 0..2 {
            let out = stripper.strip(&doc);
            assert!(out.text.len() <= body.len() + body.len() / 2 + 16);
        }
        let (_title, text) = plain_text(body);
        assert!(text.len() <= body.len());
    });
}

/// The HTML strip path: main-content extraction and its post-pass through the stage's
/// `Stripper`, and the stage-off path (`html_visible_text`).
pub fn strip_html(data: &[u8], timed: Timed) {
    let Ok(html) = std::str::from_utf8(data) else {
        return;
    };
    timed("strip_html", data.len(), &mut || {
        let config = StripConfig {
            keep_removed: true,
            html_classify: data.len() % 2 == 0,
            ..StripConfig::default()
        };
        let stripper = Stripper::new(&config, None).expect("the shipped line model parses");
        let doc = RawDoc {
            id: String::new(),
            format: Format::Html,
            body: html.to_string(),
            source_key: "fuzz".into(),
        };
        stripper.strip(&doc);
        html_visible_text(html);
    });
}

/// Config loading: TOML text, then `--set KEY=VALUE` overrides (one per line after a NUL byte),
/// through parsing, typing and validation; an accepted config renders back to TOML that loads
/// to the same rendering (what `check` prints is loadable).
pub fn config_parse(data: &[u8], timed: Timed) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (toml, sets) = text.split_once('\0').unwrap_or((text, ""));
    let overrides: Vec<String> = sets.lines().map(str::to_string).collect();
    timed("config_parse", data.len(), &mut || {
        let Ok(config) = Config::parse(toml, &overrides) else {
            return;
        };
        let rendered = config.to_toml().expect("an accepted config renders");
        let again = Config::parse(&rendered, &[]).expect("a rendered config loads");
        assert_eq!(again.to_toml().expect("renders"), rendered);
    });
}

/// Ledger replay: ledger bytes and output bytes (split at the first NUL) through `Ledger::open`,
/// the start-up recovery (parse, reconcile the output, compact). A recovery that succeeded
/// must succeed again on its own compacted ledger and find the same committed files and
/// lengths.
///
/// So that inputs can reach the paths past the binding check, `@OUT@`, `@DEV@` and `@INO@` in
/// the ledger become the output's path, device and inode, and a line ending in a tab and
/// `@CRC@` gets its correct checksum. Works in `scratch` (created, emptied first).
pub fn ledger_replay(data: &[u8], scratch: &Path, timed: Timed) {
    let split = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    let (ledger, output) = (&data[..split], data.get(split + 1..).unwrap_or_default());
    let _ = std::fs::remove_dir_all(scratch);
    let state = scratch.join("state");
    std::fs::create_dir_all(&state).expect("scratch dir");
    let out = scratch.join("out.jsonl");
    std::fs::write(&out, output).expect("write output");
    let (dev, ino) = identity(&out).expect("output exists");
    let ledger = fill_in(ledger, &out.to_string_lossy(), dev, ino);
    std::fs::write(state.join(LEDGER_FILE), &ledger).expect("write ledger");
    timed("ledger_replay", data.len(), &mut || {
        let Ok((first, rec)) = Ledger::open(&state, Some(&out), 1000) else {
            return;
        };
        drop(first);
        let out_len = std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
        assert!(
            rec.out_len <= out_len,
            "committed {} of a {out_len}-byte output",
            rec.out_len
        );
        // The dedup entries compaction kept read back from the file it wrote.
        let ids = |r: &dropline::ledger::Recovered| {
            let mut ids = Vec::new();
            r.dedup
                .for_each(|e| ids.push(e.id))
                .expect("the kept dedup entries read back");
            ids
        };
        let kept = ids(&rec);
        let (_again, rec2) = Ledger::open(&state, Some(&out), 1000)
            .expect("a ledger that recovered once recovers again");
        assert_eq!(rec2.out_len, rec.out_len);
        assert_eq!(rec2.committed, rec.committed);
        assert_eq!(rec2.damaged, 0, "compaction wrote a damaged line");
        assert_eq!(
            ids(&rec2),
            kept,
            "a second compaction keeps the same entries"
        );
    });
}

/// A per-process scratch folder for [`ledger_replay`], in memory where `/dev/shm` exists.
pub fn scratch_dir() -> PathBuf {
    let base = if Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    base.join(format!("dropline-fuzz-ledger-{}", std::process::id()))
}

fn fill_in(ledger: &[u8], out: &str, dev: u64, ino: u64) -> Vec<u8> {
    let text = String::from_utf8_lossy(ledger)
        .replace("@OUT@", out)
        .replace("@DEV@", &dev.to_string())
        .replace("@INO@", &ino.to_string());
    let mut buf = Vec::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let (body, nl) = line.strip_suffix('\n').map_or((line, ""), |b| (b, "\n"));
        match body.strip_suffix("\t@CRC@") {
            Some(json) => {
                buf.extend_from_slice(json.as_bytes());
                buf.extend_from_slice(
                    format!("\t{:08x}", crc32fast::hash(json.as_bytes())).as_bytes(),
                );
            }
            None => buf.extend_from_slice(body.as_bytes()),
        }
        buf.extend_from_slice(nl.as_bytes());
    }
    buf
}
