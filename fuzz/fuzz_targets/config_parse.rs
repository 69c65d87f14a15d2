//! Fuzzes config loading: TOML text, then `--set KEY=VALUE` overrides (one per line after a
//! NUL byte), through parsing, typing and validation; an accepted config must render back to
//! TOML that loads to the same rendering (what `check` prints is loadable).
//!
//! The check itself is `dropline_fuzz::checks::config_parse`, which `tests/fuzz_seeds.rs` replays on
//! the saved inputs under `cargo test`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    dropline_fuzz::checks::config_parse(data, &dropline_fuzz::timed);
});
