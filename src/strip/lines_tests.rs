//! Tests of line splitting and the per-line features: word counts, URLs, shapes, terminals,
//! hard-wrap joins.

use super::*;

fn one(s: &str) -> Line {
    measure(s)
}

#[test]
fn counts_words_like_the_benchmark_tokeniser() {
    let l = one("The cat's hat, 2026 — ok_go!");
    // \w+ gives: The, cat, s, hat, 2026, ok_go
    assert_eq!(l.words, 6);
    assert!(l.terminal);
    assert_eq!(l.stops, 2); // the, s
}

#[test]
fn notices_urls_and_addresses() {
    assert!(one("Visit www.example.net today").url_like);
    assert!(one("see https://x.y").url_like);
    assert!(one("Mail me@host").url_like);
    assert!(one("example.com").url_like);
    assert!(!one("The White House said the common view held.").url_like);
}

#[test]
fn digit_runs_share_a_shape() {
    assert_eq!(one("09.Jan.2026").shape, one("14.jan.2025").shape);
    assert_ne!(one("09.Jan.2026").shape, one("09.Feb.2026").shape);
}

#[test]
fn closing_quote_after_period_is_terminal() {
    assert!(one("He said \"yes.\"").terminal);
    assert!(!one("Latest news").terminal);
    assert!(!one("A title (2026)").terminal);
}

#[test]
fn splits_lines_and_notes_blank_gaps() {
    let mut v = Vec::new();
    analyse("a b\n\n  c d e \r\nf", &mut v);
    assert_eq!(v.len(), 3);
    assert_eq!(v[1].text("a b\n\n  c d e \r\nf"), "c d e");
    assert!(v[1].blank_before);
    assert!(!v[2].blank_before);
}

#[test]
fn joins_hard_wrapped_lines() {
    let t = "Gym equipment refers to the various machines, tools, and\naccessories used in a gym.\nNext Para";
    let mut v = Vec::new();
    analyse(t, &mut v);
    assert_eq!(v.len(), 2);
    assert_eq!(v[0].words, 14);
    assert!(v[0].terminal);
}

#[test]
fn handles_other_scripts_without_panicking() {
    let l = one("\u{a0}Президент Казахстана обратился к ОДКБ.\u{3000}");
    assert_eq!(l.words, 5);
    assert_eq!(l.stops, 0);
    let mut v = Vec::new();
    analyse("\u{a0}\u{3000}\n日本語のテキスト。", &mut v);
    assert_eq!(v.len(), 1);
}
