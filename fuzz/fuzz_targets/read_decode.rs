//! Fuzzes the read stage's decode path: raw file bytes (gzip or not, any charset) under a
//! name chosen by the first byte, through the same `read::decode` the reader calls.
//!
//! The check itself is `dropline_fuzz::checks::read_decode`, which `tests/fuzz_seeds.rs` replays on
//! the saved inputs under `cargo test`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    dropline_fuzz::checks::read_decode(data, &dropline_fuzz::timed);
});
