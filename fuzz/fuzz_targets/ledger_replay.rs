//! Fuzzes ledger replay: arbitrary ledger bytes and output bytes (split at the first NUL)
//! through `Ledger::open`, the start-up recovery (parse, reconcile the output, compact).
//!
//! So that the fuzzer can reach the paths past the binding check, `@OUT@`, `@DEV@` and `@INO@`
//! in the ledger become the output's path, device and inode, and a line ending in a tab and
//! `@CRC@` gets its correct checksum. A recovery that succeeded must succeed again on its own
//! compacted ledger and find the same committed files and lengths.
#![no_main]

use dropline::ledger::{identity, Ledger, LEDGER_FILE};
use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;

fn scratch() -> PathBuf {
    let base = if std::path::Path::new("/dev/shm").is_dir() {
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

fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    let (ledger, output) = (&data[..split], data.get(split + 1..).unwrap_or_default());
    let dir = scratch();
    let _ = std::fs::remove_dir_all(&dir);
    let state = dir.join("state");
    std::fs::create_dir_all(&state).expect("scratch dir");
    let out = dir.join("out.jsonl");
    std::fs::write(&out, output).expect("write output");
    let (dev, ino) = identity(&out).expect("output exists");
    let ledger = fill_in(ledger, &out.to_string_lossy(), dev, ino);
    std::fs::write(state.join(LEDGER_FILE), &ledger).expect("write ledger");
    dropline_fuzz::within_budget("ledger_replay", data.len(), || {
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
        let (_again, rec2) = Ledger::open(&state, Some(&out), 1000)
            .expect("a ledger that recovered once recovers again");
        assert_eq!(rec2.out_len, rec.out_len);
        assert_eq!(rec2.committed, rec.committed);
        assert_eq!(rec2.damaged, 0, "compaction wrote a damaged line");
    });
});
