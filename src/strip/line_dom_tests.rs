//! The blocks the visible-text walk records are the blocks the block walk cuts, bit for bit.

use super::super::block_model::BlockModel;
use super::super::blocks::BlockPage;
use super::super::edge_score::{drops, Recorded};
use super::super::html::{cut_blocks_after_walk, parse_page, PageBlocks};
use super::*;

/// Pages with what the block walk reads: tag paths deeper than eight, class and id tokens (digits,
/// case, punctuation), links split across words, `itemprop=articleBody`, line breaks, hidden and
/// invisible elements, captions, author boxes, comment sections and footers (the walk marks
/// them), custom elements, text outside any block, and whitespace at element edges.
fn pages() -> Vec<String> {
    let body = "The council met on Tuesday and agreed on a budget for the schools of the town.";
    let more = "Teachers said the money would pay for new books, and parents welcomed it.";
    let ld = r#"<script type="application/ld+json">{"@type":"NewsArticle","articleBody":"The council met on Tuesday.\nShort one"}</script>"#;
    vec![
        format!(
            r#"<html><head><title>T</title><meta property="og:title" content="Budget passes">{ld}</head><body class="home page-2024 X_y">
            <nav id="Main-Menu" class="menu 123 a"><ul><li><a href="/">Home</a></li><li><a href="/w">World&nbsp;news</a></li></ul></nav>
            <article itemprop="articleBody"><h1>Budget   passes</h1><p>{body}</p><p>Read <a href="/w">world <b>news</b></a>, then more.</p>
            <figure><img src="a.jpg"><figcaption>The chamber. Photo: Jane Roe</figcaption></figure><p>{more}<br>Second<br><br>line.</p>
            <div class="author-bio">Jane Roe writes about schools.</div><p class="wp-caption-text">A caption by class.</p>
            <div class="post-disclaimer">Not advice.</div></article>
            <div id="comments"><ol class="commentlist"><li>Great piece!</li><li><span>Agreed</span> <a href="/u">Bob</a></li></ol></div>
            <aside class="related"><h3>Related</h3><ul><li><a href="/a">Ten best	schools</a></li></ul></aside>
            <div hidden>secret</div><noscript>no</noscript><template><p>tpl</p></template>
            <footer class="site-footer"><p>(c) Town News</p><div role="contentinfo">Contact us</div></footer>
            <div role="contentinfo"><a href="/about">About</a> us</div></body></html>"#
        ),
        format!(
            "<body>Loose text <b>bold</b><div><div><div><div><div><div><div><div><div class=deep-9>\
             <section id=s10><span class=inner>{body}</span></section></div></div></div></div></div>\
             </div></div></div></div> tail <my-widget class=\"w-1 Widget\">custom <i>text</i></my-widget>\
             <p> spaced <a href=/x> link </a> words </p><p>a<a href=/y>b</a>c d</p><table><tr><td>1</td>\
             <td><label>L</label><button>B</button></td></tr></table></body>"
        ),
        "<p>One</p>".to_string(),
        String::new(),
    ]
}

/// The blocks the visible-text walk recorded, with every block's tokens and the readability
/// candidate, or the block walk's when the page took it.
fn recorded(html: &str) -> (BlockPage, bool) {
    let page = parse_page(html, true, true);
    match page.blocks.expect("blocks are asked for") {
        PageBlocks::Lines(d) => (
            d.full_page(&page.title, &page.visible, page.main.as_deref()),
            false,
        ),
        PageBlocks::Cut(mut b) => {
            b.readability = page.main;
            (b, true)
        }
    }
}

#[test]
fn the_walk_records_the_blocks_the_block_walk_cuts() {
    for html in pages() {
        let (got, cut) = recorded(&html);
        assert!(!cut, "{html}");
        assert_eq!(got, cut_blocks_after_walk(&html), "{html}");
    }
    // The fixtures reach what the blocks carry.
    let (p, _) = recorded(&pages()[0]);
    assert!(p
        .blocks
        .iter()
        .any(|b| b.link_chars > 0 && b.link_chars < b.chars));
    assert!(p.blocks.iter().any(|b| b.flags & IN_ARTICLE_BODY != 0));
    assert!(!p.json_ld.is_empty() && p.readability.is_some());
    assert!(p.text.contains("Great piece!") && !p.text.contains("Jane Roe"));
    let (p, _) = recorded(&pages()[1]);
    assert!(p.blocks.iter().any(|b| b.depth > 10));
}

#[test]
fn a_footer_on_an_inline_element_takes_the_block_walk() {
    // The visible-text walk breaks lines around the `role=contentinfo` span, the block walk does
    // not: the page's blocks come from the block walk.
    let html =
        "<body><p>Written by <span role=contentinfo>Town <a href=/>News</a></span> staff.</p>\
                <p>The council met on Tuesday.</p></body>";
    let page = parse_page(html, true, true);
    assert_eq!(page.visible.lines().next(), Some("Written by"));
    let (got, cut) = recorded(html);
    assert!(cut);
    assert_eq!(got, cut_blocks_after_walk(html));
    assert_eq!(
        &got.text[got.blocks[0].start..got.blocks[0].end],
        "Written by Town News staff."
    );
    // A page without such an element keeps the walk's record.
    let plain = parse_page("<body><p>x</p></body>", true, true);
    let Some(PageBlocks::Lines(d)) = plain.blocks else {
        panic!("a plain page is recorded");
    };
    assert!(!d.odd);
}

#[test]
fn tokens_of_some_blocks_are_those_of_the_full_page() {
    for html in pages() {
        let page = parse_page(&html, true, true);
        let Some(PageBlocks::Lines(d)) = &page.blocks else {
            panic!("recorded");
        };
        let full = d.full_page(&page.title, &page.visible, page.main.as_deref());
        let n = full.blocks.len();
        let mut some = d.page(&page.title, &page.visible, page.main.as_deref());
        let which: Vec<usize> = (0..n).rev().step_by(2).collect();
        d.fill_tokens(&mut some, &which);
        d.fill_tokens(&mut some, &which);
        for i in 0..n {
            let (a, b) = (&full.blocks[i], &some.blocks[i]);
            let toks = |p: &BlockPage, b: &super::super::blocks::Block| {
                p.tokens[b.tok_start..b.tok_end].to_vec()
            };
            if which.contains(&i) {
                assert_eq!(toks(&some, b), toks(&full, a), "block {i} of {html}");
            } else {
                assert_eq!(b.tok_start, b.tok_end);
            }
        }
    }
}

#[test]
fn the_edge_rule_drops_the_same_lines_from_recorded_blocks() {
    let model = BlockModel::shipped().unwrap();
    let mut dropping = 0;
    for html in pages() {
        let page = parse_page(&html, true, true);
        let Some(PageBlocks::Lines(d)) = &page.blocks else {
            panic!("recorded");
        };
        let old = cut_blocks_after_walk(&html);
        let lines: Vec<&str> = old.text.lines().collect();
        for a in 0..lines.len() {
            for b in a + 1..=lines.len() {
                let text = lines[a..b].join("\n");
                let want = drops(&model, &mut old.clone(), &text);
                let mut rec = Recorded::new(d, &page.title, &page.visible, page.main.as_deref());
                assert_eq!(drops(&model, &mut rec, &text), want, "{text}");
                dropping += usize::from(want.contains(&true));
            }
        }
    }
    assert!(dropping > 0, "no output of the fixtures loses a line");
}
