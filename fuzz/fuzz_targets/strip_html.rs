//! Fuzzes the HTML strip path: main-content extraction and its post-pass through the stage's
//! `Stripper`, and the stage-off path (`html_visible_text`).
#![no_main]

use dropline::model::{Format, RawDoc};
use dropline::strip::{html_visible_text, StripConfig, Stripper};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(html) = std::str::from_utf8(data) else {
        return;
    };
    dropline_fuzz::within_budget("strip_html", data.len(), || {
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
});
