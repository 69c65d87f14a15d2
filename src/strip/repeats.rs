//! Owns the removal of layout copies: a run of kept lines that repeats an earlier run verbatim.
//!
//! Responsive pages carry the same block twice or more (a desktop and a mobile copy, a
//! tab strip and its panels, a sticky table of contents), and the copy a browser hides
//! is still in the markup: the article came out two or three times. A run of several
//! consecutive lines repeated in the same order is such a copy; a single line repeated
//! (a refrain, a caption under every photo, "Warm up: 10 minutes" in every week of a
//! training plan) is content and stays.

use super::lines::Line;
use std::collections::HashMap;
use xxhash_rust::xxh3::xxh3_64;

/// Shortest repeated run, in lines, that counts as a copy, and the fewest `\w+` words it must
/// hold: chosen by 5-fold cross-validation on wcxb-train grouped by site among 2, 3, 4, 6
/// lines and 10, 30, 60 words (every setting gained on every fold; this one on all pages).
pub const MIN_LINES: usize = 4;
pub const MIN_WORDS: u32 = 30;
/// Earlier occurrences of a line that are tried as the start of the original run.
const TRIES: usize = 4;

/// Clears `keep` for every kept line that belongs to a copy of an earlier run of kept lines,
/// and returns those lines' indices. `dup` tells which lines share their shape with another
/// line (a superset of the lines whose text repeats): without two runs of such lines there is
/// nothing to compare. Compares the lines' exact text; linear in the lines.
pub fn drop_copies(text: &str, lines: &[Line], dup: &[bool], keep: &mut [bool]) -> Vec<usize> {
    let mut dropped = Vec::new();
    if dup
        .iter()
        .zip(keep.iter())
        .filter(|(&d, &k)| d && k)
        .count()
        < 2 * MIN_LINES
    {
        return dropped;
    }
    let kept: Vec<usize> = (0..lines.len()).filter(|&i| keep[i]).collect();
    let hashes: Vec<u64> = kept
        .iter()
        .map(|&i| xxh3_64(lines[i].text(text).as_bytes()))
        .collect();
    // Earlier positions (in `kept`) of each line text, most recent last.
    let mut seen: HashMap<u64, Vec<usize>> = HashMap::with_capacity(kept.len());
    let mut i = 0;
    while i < kept.len() {
        let mut best = 0;
        if let Some(starts) = seen.get(&hashes[i]) {
            for &j in starts.iter().rev().take(TRIES) {
                // The copy may not overlap its original.
                let k = (0..)
                    .take_while(|&k| i + k < kept.len() && j + k < i)
                    .take_while(|&k| {
                        hashes[j + k] == hashes[i + k]
                            && lines[kept[j + k]].text(text) == lines[kept[i + k]].text(text)
                    })
                    .count();
                best = best.max(k);
            }
        }
        let run = i..i + best.max(1);
        let words: u32 = run.clone().map(|k| lines[kept[k]].words).sum();
        let copy = best >= MIN_LINES && words >= MIN_WORDS;
        // A match of MIN_LINES or more lines (a copy, or too few words for one) is skipped
        // whole: its scan paid for its length, which keeps the pass linear (a copy of another
        // run starting inside a short-worded match is not looked for). A shorter match may
        // end inside the start of a copy of another earlier run (a heading seen elsewhere
        // before the copy's first line), so the next line is tried too, at a cost bounded by
        // TRIES * MIN_LINES comparisons.
        let next = if best >= MIN_LINES { run.end } else { i + 1 };
        for k in i..next {
            seen.entry(hashes[k]).or_default().push(k);
            if copy {
                keep[kept[k]] = false;
                dropped.push(kept[k]);
            }
        }
        i = next;
    }
    dropped
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strip::lines::kept_after;

    fn run(text: &str) -> String {
        kept_after(text, |lines, keep| {
            drop_copies(text, lines, &vec![true; lines.len()], keep);
        })
    }

    const BLOCK: &str = "How much does a remodel cost?\n\
        Costs vary widely with the type of renovation and the city you live in.\n\
        A kitchen costs between twenty and sixty thousand dollars in most places.\n\
        A bathroom costs less, and a full home remodel costs much more than both.";

    #[test]
    fn a_block_repeated_in_order_is_kept_once() {
        let page = format!("Intro line of the page.\n{BLOCK}\nMiddle.\n{BLOCK}\n{BLOCK}\nEnd.");
        assert_eq!(
            run(&page),
            format!("Intro line of the page.\n{BLOCK}\nMiddle.\nEnd.")
        );
    }

    #[test]
    fn a_copy_whose_first_line_ends_a_shorter_match_is_still_found() {
        // "Summary." was first seen right before the block's first line, elsewhere: the copy's
        // first two lines match that pair, and the copy itself starts one line later.
        let first = BLOCK.lines().next().unwrap();
        let page = format!(
            "Summary.\n{first}\nAnother line of the page.\n{BLOCK}\nMiddle.\nSummary.\n{BLOCK}\nEnd."
        );
        assert_eq!(
            run(&page),
            format!(
                "Summary.\n{first}\nAnother line of the page.\n{BLOCK}\nMiddle.\nSummary.\nEnd."
            )
        );
    }

    #[test]
    fn repeated_single_lines_and_short_runs_stay() {
        let plan = "Week one.\nWarm up: ten minutes of easy jogging in zone two.\nIntervals.\n\
            Week two.\nWarm up: ten minutes of easy jogging in zone two.\nTempo run.\n\
            Week three.\nWarm up: ten minutes of easy jogging in zone two.\nLong run.";
        assert_eq!(run(plan), plan);
        // Four short lines repeated: fewer words than a copy holds.
        let menu =
            "Home\nNews\nSports\nWeather\nThe council met on Tuesday.\nHome\nNews\nSports\nWeather";
        assert_eq!(run(menu), menu);
    }

    #[test]
    fn many_identical_lines_stay_linear_and_are_copies_only_past_the_bar() {
        let line = "The same sentence of eight words comes again.";
        let page = vec![line; 20_000].join("\n");
        let out = run(&page);
        // The first four are the original; every later run of four is a copy of an earlier one.
        assert_eq!(out, [line; 4].join("\n"));
    }
}
