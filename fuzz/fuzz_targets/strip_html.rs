//! Fuzzes the HTML strip path: main-content extraction and its post-pass through the stage's
//! `Stripper`, and the stage-off path (`html_visible_text`).
//!
//! The check itself is `dropline_fuzz::checks::strip_html`, which `tests/fuzz_seeds.rs` replays on
//! the saved inputs under `cargo test`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    dropline_fuzz::checks::strip_html(data, &dropline_fuzz::timed);
});
