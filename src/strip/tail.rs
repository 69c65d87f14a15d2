//! Owns the tail trim of the readability path: the trailing run of output lines that lie outside
//! the element holding most of the output is dropped.
//!
//! The readability candidate (or the fallback over the page) often ends with what follows the
//! article in the page: a call to action in its own section, a row of teaser cards with their
//! summaries, an author box placed after the article's container. The lines of the article sit
//! in one element (the story's container); what follows it is elsewhere. Each output line is
//! placed at the element its first word is in, as the visible-text walk recorded it
//! ([`super::line_dom`]); the deepest element holding at least [`TAIL_SHARE`] of the output's
//! words is the container, and the lines at the end of the output whose elements are outside
//! it go. A line the walk has no line for (the extractor broke it differently) ends the run.

use super::line_dom::LineDom;
use super::text_index::{collapse, TextIndex};
use std::borrow::Cow;

/// Share of the output's words the container must hold. Chosen by 5-fold site-grouped
/// cross-validation on wcxb-train (`scripts/strip_cv.py`) among 0.6, 0.7, 0.8 and 0.9.
pub const TAIL_SHARE: f32 = 0.7;

/// Returns which non-empty lines of `text` (the output of the readability path for the page whose
/// visible text is `visible`, walked into `dom`) the trim drops, one flag per non-empty line.
/// `share` 0 turns the trim off.
pub fn drops(dom: &LineDom, visible: &str, text: &str, share: f32) -> Vec<bool> {
    let lines: Vec<&str> = text.split('\n').filter(|l| !l.is_empty()).collect();
    let mut drop = vec![false; lines.len()];
    if share <= 0.0 || lines.len() < 2 {
        return drop;
    }
    let collapsed: Vec<Cow<str>> = lines.iter().map(|l| collapse(l)).collect();
    let elements = place(dom, visible, &collapsed);
    // Words: the collapsed line's spaces, plus one.
    let words: Vec<u32> = collapsed
        .iter()
        .map(|l| match l.is_empty() {
            true => 0,
            false => memchr::memchr_iter(b' ', l.as_bytes()).count() as u32 + 1,
        })
        .collect();
    let total: u32 = words.iter().sum();
    // Words under each element, from the lines placed in it or below it.
    let mut under = vec![0u32; dom.frame_count()];
    for (e, &w) in elements.iter().zip(&words) {
        let mut f = *e;
        while let Some((parent, _)) = dom.parent_and_depth(f) {
            under[f as usize] += w;
            f = parent;
        }
    }
    let bar = share * total as f32;
    let mut container = None;
    let mut deepest = 0;
    for (f, &w) in under.iter().enumerate() {
        if w > 0 && w as f32 >= bar {
            let depth = dom.parent_and_depth(f as u32).map_or(0, |(_, d)| d);
            if depth > deepest {
                deepest = depth;
                container = Some(f as u32);
            }
        }
    }
    let Some(container) = container else {
        return drop;
    };
    for k in (0..lines.len()).rev() {
        let e = elements[k];
        if e == u32::MAX || inside(dom, e, container) {
            break;
        }
        drop[k] = true;
    }
    drop
}

/// Returns, per line of `lines` (whitespace collapsed), the element the walk's line with the same words starts in
/// (`u32::MAX` when no line of the walk has them). Lines are matched in order: each takes the
/// first walk line with its words after the previous match, else the first one before it. The
/// walk's lines are indexed by text, so a page of thousands of equal lines is not quadratic.
fn place(dom: &LineDom, visible: &str, lines: &[Cow<str>]) -> Vec<u32> {
    let bytes = visible.as_bytes();
    let text = |j: u32| {
        let (s, e) = dom.line_range(j as usize, visible);
        &bytes[s..e]
    };
    let index = TextIndex::new((0..dom.line_count() as u32).map(text));
    let mut next = 0u32;
    lines
        .iter()
        .map(|want| {
            let run = index.candidates(want.as_bytes());
            let equal = |&&(_, j): &&(u64, u32)| text(j) == want.as_bytes();
            let after = run.partition_point(|&(_, j)| j < next);
            let hit = run[after..]
                .iter()
                .find(equal)
                .or_else(|| run.iter().find(equal));
            match hit {
                Some(&(_, j)) => {
                    next = j + 1;
                    dom.line_element(j as usize)
                }
                None => u32::MAX,
            }
        })
        .collect()
}

/// Whether element `e` is `container` or inside it.
fn inside(dom: &LineDom, mut e: u32, container: u32) -> bool {
    while e != container {
        match dom.parent_and_depth(e) {
            Some((parent, _)) => e = parent,
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn walk(html: &str) -> (LineDom, String) {
        let page = super::super::html::parse_page(html, false, true);
        match page.blocks {
            Some(super::super::html::PageBlocks::Lines(dom)) => (dom, page.visible),
            other => panic!("no recorded lines: {other:?}"),
        }
    }

    const PAGE: &str = r#"<html><body><main><article><div class="story">
        <p>The council met on Tuesday and agreed on a budget for the schools of the town after a long debate.</p>
        <p>Teachers said the money would pay for new books, and parents welcomed the decision on the same night.</p>
        <p>The mayor said the town would review the plan next spring, when the first results are known to all.</p>
        </div></article>
        <section class="cta"><p>Plan your next event with us: our team of planners has helped a thousand towns.</p></section>
        </main></body></html>"#;

    #[test]
    fn drops_the_trailing_lines_outside_the_container() {
        let (dom, visible) = walk(PAGE);
        let body: Vec<&str> = visible.lines().take(3).collect();
        let cta = "Plan your next event with us: our team of planners has helped a thousand towns.";
        let text = format!("{}\n\n{cta}", body.join("\n"));
        assert_eq!(
            drops(&dom, &visible, &text, TAIL_SHARE),
            [false, false, false, true]
        );
        // Off: nothing goes.
        assert!(!drops(&dom, &visible, &text, 0.0).contains(&true));
        // A line the walk does not have ends the run.
        let text = format!("{}\n{cta}\nA line of another break.", body.join("\n"));
        assert!(!drops(&dom, &visible, &text, TAIL_SHARE).contains(&true));
        // Lines inside the container at the end stay, and so do lines outside it elsewhere.
        let text = format!("{cta}\n{}", body.join("\n"));
        assert!(!drops(&dom, &visible, &text, TAIL_SHARE).contains(&true));
    }

    #[test]
    fn keeps_a_tail_when_the_container_holds_too_little() {
        let (dom, visible) = walk(PAGE);
        let lines: Vec<&str> = visible.lines().collect();
        // One body paragraph and the call to action: no element below <main> holds 70 % of the
        // words, so the container is <main>, and the call to action is inside it.
        let text = format!("{}\n{}", lines[0], lines[3]);
        assert!(!drops(&dom, &visible, &text, TAIL_SHARE).contains(&true));
    }
}
