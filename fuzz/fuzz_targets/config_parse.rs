//! Fuzzes config loading: TOML text, then `--set KEY=VALUE` overrides (one per line after a
//! NUL byte), through parsing, typing and validation; an accepted config must render back to
//! TOML that loads to the same rendering (what `check` prints is loadable).
#![no_main]

use dropline::config::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (toml, sets) = text.split_once('\0').unwrap_or((text, ""));
    let overrides: Vec<String> = sets.lines().map(str::to_string).collect();
    dropline_fuzz::within_budget("config_parse", data.len(), || {
        let Ok(config) = Config::parse(toml, &overrides) else {
            return;
        };
        let rendered = config.to_toml().expect("an accepted config renders");
        let again = Config::parse(&rendered, &[]).expect("a rendered config loads");
        assert_eq!(again.to_toml().expect("renders"), rendered);
    });
});
