//! Fuzzes the read stage's decode path: raw file bytes (gzip or not, any charset) under a
//! name chosen by the first byte, through the same `read::decode` the reader calls.
#![no_main]

use dropline::model::SourceInfo;
use dropline::read::{decode, ReadLimits};
use libfuzzer_sys::fuzz_target;
use std::path::Path;

const NAMES: [&str; 6] = ["a.txt", "a.html", "a.htm", "a.txt.gz", "a.html.gz", "noext"];

// Small caps so inflation limits are reached by small inputs too.
const LIMITS: ReadLimits = ReadLimits {
    max_file_bytes: 1 << 20,
    max_inflated_bytes: 4 << 20,
};

fuzz_target!(|data: &[u8]| {
    let Some((&pick, raw)) = data.split_first() else {
        return;
    };
    let name = NAMES[usize::from(pick) % NAMES.len()];
    let mut info = SourceInfo {
        path: name.into(),
        bytes: raw.len() as u64,
        format: None,
        compression: None,
        path_bytes: None,
        encoding: None,
    };
    let got = dropline_fuzz::within_budget("read_decode", raw.len(), || {
        decode(Path::new(name), raw, LIMITS, &mut info)
    });
    if let Ok(doc) = got {
        assert!(!doc.body.trim().is_empty(), "a document with no text");
        assert_eq!(doc.id.len(), 32);
    }
});
