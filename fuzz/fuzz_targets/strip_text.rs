//! Fuzzes the plain-text strip path: the stage's `Stripper` (line model, rules, per-source
//! memory) on the same text twice, so the second pass meets remembered lines, and the
//! stage-off path (`plain_text`).
#![no_main]

use dropline::model::{Format, RawDoc};
use dropline::strip::{plain_text, StripConfig, Stripper};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(body) = std::str::from_utf8(data) else {
        return;
    };
    dropline_fuzz::within_budget("strip_text", data.len(), || {
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
});
