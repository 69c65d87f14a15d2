//! Owns the removal of tables of contents: a run of short kept lines whose every line comes
//! back later, in the same order, as a heading of the body.
//!
//! A table of contents ("In this article", a sticky sidebar of jump links, a numbered outline)
//! is in-page navigation: its entries are the article's own headings, listed once more before
//! them. [`super::repeats`] catches runs repeated line for line; a table of contents is not one,
//! since the headings it repeats are spread over the body with paragraphs between them. On
//! wcxb-train the gold bodies leave such lists out.

use super::lines::Line;
use super::metric::tokens;
use std::collections::HashMap;
use xxhash_rust::xxh3::xxh3_64;

/// Fewest entries that make a table of contents: chosen by 5-fold cross-validation on
/// wcxb-train grouped by site among 2 to 6 (4 on four folds, 5 on one; 4 on all pages).
pub const MIN_ENTRIES: usize = 4;
/// Most `\w+` words of an entry, numbering left out.
const MAX_WORDS: usize = 12;

/// Clears `keep` for every kept line that is an entry of a table of contents, and returns those
/// lines' indices. Entries match their headings on lower-cased `\w+` words, leading all-digit
/// words ("2.", "1.3") left out on both sides.
pub fn drop_contents(text: &str, lines: &[Line], keep: &mut [bool]) -> Vec<usize> {
    let kept: Vec<usize> = (0..lines.len()).filter(|&i| keep[i]).collect();
    let mut buf = String::new();
    let keys: Vec<Option<u64>> = kept
        .iter()
        .map(|&i| entry_key(lines[i].text(text), lines[i].words, &mut buf))
        .collect();
    // For each kept line, the position (among kept lines) of the next line with its key.
    let mut next = vec![None; kept.len()];
    let mut seen: HashMap<u64, usize> = HashMap::new();
    for p in (0..kept.len()).rev() {
        if let Some(k) = keys[p] {
            next[p] = seen.insert(k, p);
        }
    }
    let mut dropped = Vec::new();
    if next.iter().all(Option::is_none) {
        return dropped;
    }
    let mut p = 0;
    while p < kept.len() {
        // The longest run from `p` whose later copies come in order.
        let (mut end, mut last) = (p, None);
        while let Some(d) = next.get(end).copied().flatten() {
            if last.is_some_and(|l| d <= l) {
                break;
            }
            last = Some(d);
            end += 1;
        }
        // Every copy must lie past the run: a list repeated inside itself is not an outline.
        let past = (p..end).all(|r| next[r].is_some_and(|d| d >= end));
        if end - p >= MIN_ENTRIES && past {
            for &i in &kept[p..end] {
                keep[i] = false;
                dropped.push(i);
            }
            p = end;
        } else {
            p += 1;
        }
    }
    dropped
}

/// Returns the hash of a line's lower-cased `\w+` words without leading all-digit words, or
/// `None` when that leaves no word or more than [`MAX_WORDS`]; `key` is the buffer it builds
/// the words in, reused across lines.
fn entry_key(line: &str, words: u32, key: &mut String) -> Option<u64> {
    if words == 0 || words as usize > MAX_WORDS + 4 {
        return None;
    }
    key.clear();
    let mut n = 0;
    for t in tokens(line).skip_while(|t| t.bytes().all(|b| b.is_ascii_digit())) {
        if n > 0 {
            key.push(' ');
        }
        key.extend(t.chars().flat_map(char::to_lowercase));
        n += 1;
    }
    (n > 0 && n <= MAX_WORDS).then(|| xxh3_64(key.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strip::lines::kept_after;

    fn run(text: &str) -> String {
        kept_after(text, |lines, keep| {
            drop_contents(text, lines, keep);
        })
    }

    const BODY: &str = "Why budgets matter\nThe council met on Tuesday to agree a budget.\n\
        How the vote went\nIt passed by seven votes to two after a long debate.\n\
        What happens next\nThe schools get their money in March.\nReactions\n\
        Parents welcomed the news.";

    #[test]
    fn an_outline_of_the_headings_before_them_is_dropped() {
        let page = format!(
            "Budget passes\nIn this article\n1. Why budgets matter\n2. How the vote went\n\
             3. What happens next\n4. Reactions\n{BODY}"
        );
        assert_eq!(
            run(&page),
            format!("Budget passes\nIn this article\n{BODY}")
        );
    }

    #[test]
    fn short_outlines_lists_out_of_order_and_single_repeats_stay() {
        // Three entries are too few.
        let three = format!("Why budgets matter\nHow the vote went\nWhat happens next\n{BODY}");
        assert_eq!(run(&three), three);
        // Entries whose headings come in another order are a list, not an outline.
        let shuffled =
            format!("How the vote went\nWhy budgets matter\nReactions\nWhat happens next\n{BODY}");
        assert_eq!(run(&shuffled), shuffled);
        // Long lines are not entries, even when a paragraph is quoted again later.
        let long = "The council met on Tuesday and agreed on a new budget for the schools of the town after a long debate.";
        let quoted =
            format!("{long}\n{long}\n{long}\n{long}\n{BODY}\n{long}\n{long}\n{long}\n{long}");
        assert_eq!(run(&quoted), quoted);
    }

    #[test]
    fn a_run_repeated_inside_itself_is_not_an_outline() {
        // "A B A B A B A B": every line comes back, but the copies fall inside the run.
        let refrain = "Left\nRight\n".repeat(4) + "Left\nRight";
        assert_eq!(run(&refrain), refrain);
    }
}
