//! Fuzzes ledger replay: arbitrary ledger bytes and output bytes (split at the first NUL)
//! through `Ledger::open`, the start-up recovery (parse, reconcile the output, compact).
//!
//! The check itself is `dropline_fuzz::checks::ledger_replay`, which `tests/fuzz_seeds.rs` replays on
//! the saved inputs under `cargo test`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let scratch = dropline_fuzz::checks::scratch_dir();
    dropline_fuzz::checks::ledger_replay(data, &scratch, &dropline_fuzz::timed);
});
