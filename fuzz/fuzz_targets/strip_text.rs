//! Fuzzes the plain-text strip path: the stage's `Stripper` (line model, rules, per-source
//! memory) on the same text twice, so the second pass meets remembered lines, and the
//! stage-off path (`plain_text`).
//!
//! The check itself is `dropline_fuzz::checks::strip_text`, which `tests/fuzz_seeds.rs` replays on
//! the saved inputs under `cargo test`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    dropline_fuzz::checks::strip_text(data, &dropline_fuzz::timed);
});
