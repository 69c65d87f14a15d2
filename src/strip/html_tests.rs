//! Tests of the HTML page walk: visible text, titles, the parts it leaves out (comments, captions,
//! author boxes, disclaimers, footers), and linear work on hostile markup.

use super::*;

const PAGE: &str = r#"<html><head><title>Fallback</title><meta property="og:title" content="Real  title">
    <style>p{}</style><script>var x = "<p>no</p>";</script></head>
    <body><nav><a href="/">Home</a><a href="/n">News</a></nav>
    <article><h1>Head</h1><p>First <b>bold</b> sentence.</p><p>Second<br>line.</p></article>
    <div hidden>secret</div></body></html>"#;

#[test]
fn visible_text_has_blocks_on_lines_and_no_scripts() {
    let (title, text) = visible_text(PAGE);
    assert_eq!(title, "Real title");
    assert_eq!(text, "HomeNews\nHead\nFirst bold sentence.\nSecond\nline.");
}

#[test]
fn the_page_without_comments_leaves_out_its_comment_sections() {
    let body = "<p>The council met on Tuesday and agreed on a budget.</p>";
    let page = format!(
        "<body><article>{body}{body}</article><div id=comments><p>Great piece!</p>\
         <div class=comment-body>Agreed.</div></div><p>Tail.</p>\
         <ol class=commentlist><li>Nice</li></ol><footer>(c) Town News</footer>\
         <div role=contentinfo>Contact us</div><p>Last.</p></body>"
    );
    let parsed = parse_page(&page, false, false);
    assert_eq!(
        parsed.without_comments(false),
        "The council met on Tuesday and agreed on a budget.\n\
         The council met on Tuesday and agreed on a budget.\nTail.\n(c) Town News\n\
         Contact us\nLast."
    );
    // Footers can be left out with the comment sections.
    assert_eq!(
        parsed.without_comments(true),
        "The council met on Tuesday and agreed on a budget.\n\
         The council met on Tuesday and agreed on a budget.\nTail.\nLast."
    );
    // The visible text, and the unstripped text (stage off), keep everything but captions.
    assert!(parsed.visible.contains("Great piece") && parsed.visible.contains("Nice"));
    assert!(parsed.visible.contains("(c) Town News") && parsed.visible.contains("Contact us"));
    assert_eq!(visible_text(&page).1, parsed.visible);
}

#[test]
fn figure_captions_are_left_out_of_the_page_and_its_extraction() {
    let para = "<p>The council met on Tuesday and agreed on a new budget for the schools of the town, after a long debate that lasted well into the night and ended in a vote.</p>";
    let page = format!(
        "<body><article><h1>Budget passes</h1>{para}<figure><img src=a.jpg>\
         <figcaption>The council chamber on Tuesday. Photo: Jane Roe</figcaption></figure>\
         {para}{para}</article></body>"
    );
    let parsed = parse_page(&page, true, false);
    assert!(!parsed.visible.contains("Jane Roe"));
    assert!(parsed.visible.contains("new budget"));
    let main = parsed.main.expect("readability finds the article");
    assert!(
        main.contains("new budget") && !main.contains("Jane Roe"),
        "{main}"
    );
    assert!(visible_text(&page).1.contains("Jane Roe"));
}

#[test]
fn captions_by_class_are_left_out_but_not_wrappers_or_state_flags() {
    let para = "<p>The council met on Tuesday and agreed on a new budget for the schools of the town, after a long debate that lasted well into the night and ended in a vote.</p>";
    let page = format!(
        "<body><article class='post image_caption_style'><h1>Budget passes</h1>{para}\
         <div class=wp-caption><img src=a.jpg><p class=wp-caption-text>The chamber. Photo: \
         Jane Roe</p></div><div class='has-caption'><p>Kept words.</p></div>\
         <span class=photo_Caption>Credit: John Doe</span>{para}{para}</article></body>"
    );
    let parsed = parse_page(&page, true, false);
    let visible = &parsed.visible;
    assert!(
        !visible.contains("Jane Roe") && !visible.contains("John Doe"),
        "{visible}"
    );
    assert!(visible.contains("new budget") && visible.contains("Kept words"));
    let main = parsed.main.expect("readability finds the article");
    assert!(
        !main.contains("Jane Roe") && main.contains("new budget"),
        "{main}"
    );
}

#[test]
fn author_boxes_are_left_out_but_not_bylines_or_wrappers() {
    let para = "<p>The council met on Tuesday and agreed on a new budget for the schools of the town, after a long debate that lasted well into the night and ended in a vote.</p>";
    let page = format!(
        "<body class='single author-profile'><article class='post author-card-style'>\
         <h1>Budget passes</h1><p class=byline>By <span class=author>Jane Roe</span></p>\
         {para}{para}{para}<div class='post-author-bio'><p>Jane Roe is a reporter who \
         covers the town council.</p></div><section id=aboutAuthor><p>Follow Jane on \
         social media.</p></section></article></body>"
    );
    let parsed = parse_page(&page, true, false);
    let visible = &parsed.visible;
    assert!(
        !visible.contains("is a reporter") && !visible.contains("Follow Jane"),
        "{visible}"
    );
    // The byline names the author without a box; the wrappers carry the words in their classes.
    assert!(
        visible.contains("By Jane Roe") && visible.contains("new budget"),
        "{visible}"
    );
    let main = parsed.main.expect("readability finds the article");
    assert!(
        !main.contains("is a reporter") && main.contains("new budget"),
        "{main}"
    );
    // The unpruned visible text keeps the box.
    assert!(visible_text(&page).1.contains("is a reporter"));
}

#[test]
fn disclaimers_are_left_out_but_not_other_words_or_wrappers() {
    let para = "<p>The council met on Tuesday and agreed on a new budget for the schools of the town, after a long debate that lasted well into the night and ended in a vote.</p>";
    let page = format!(
        "<body><article><h1>Budget passes</h1><div class=has-disclaimer>{para}{para}</div>\
         <div class='post_disclaimer'><p>This article is for information only and is not \
         legal advice.</p></div><p class=disclaimers-note>Kept words.</p>{para}\
         <p id=Disclaimer>Views are the writer's own.</p></article></body>"
    );
    let parsed = parse_page(&page, true, false);
    let visible = &parsed.visible;
    assert!(
        !visible.contains("legal advice") && !visible.contains("writer's own"),
        "{visible}"
    );
    assert!(
        visible.contains("Kept words") && visible.contains("new budget"),
        "{visible}"
    );
    let main = parsed.main.expect("readability finds the article");
    assert!(
        !main.contains("legal advice") && main.contains("new budget"),
        "{main}"
    );
}

#[test]
fn a_nodes_visible_text_leaves_out_its_footers() {
    let doc = Document::from(
        "<body><article><p>The council met on Tuesday.</p>\
         <footer><p>By A. Writer. Tags: council, budget</p></footer>\
         <p>It agreed on a budget.</p></article></body>",
    );
    let article = doc.select("article");
    let node = article.nodes().first().expect("article");
    assert_eq!(
        node_visible_text(node),
        "The council met on Tuesday.\nIt agreed on a budget."
    );
}

#[test]
fn falls_back_to_the_title_element() {
    let doc = Document::from("<title> A  b </title><p>x</p>");
    assert_eq!(page_title(&doc), "A b");
}

/// The work a page's DOM costs the parser and the extractor, counted, not timed: each node
/// is visited once per ancestor (scope checks, text and link density recounted for every
/// ancestor), each text byte once per ancestor, each attribute once per earlier attribute of
/// its element (the parser's duplicate check).
fn dom_work(html: &str) -> u64 {
    let doc = Document::from(&*super::super::markup::guard(html));
    let mut work = 0u64;
    let mut stack = vec![(doc.root(), 0u64)];
    while let Some((node, depth)) = stack.pop() {
        work += depth;
        if node.is_text() {
            work += depth * node.text().len() as u64;
        }
        let attrs = node.attrs().len() as u64;
        work += attrs * attrs;
        stack.extend(node.children_it(false).map(|c| (c, depth + 1)));
    }
    work
}

/// Asserts that 4x the input costs at most 4.5x the work (a quadratic path costs 16x).
fn assert_linear(make: impl Fn(usize) -> String, n: usize) {
    let (small, large) = (dom_work(&make(n)), dom_work(&make(4 * n)));
    assert!(
        large as f64 <= 4.5 * small as f64,
        "work {small} at {n}, {large} at {}",
        4 * n
    );
}

#[test]
fn work_is_linear_in_nesting_siblings_and_attributes() {
    let words = "The council met on Tuesday and agreed on a budget. ";
    // Nesting with text at every level, and with all text at the bottom.
    assert_linear(|n| format!("<div>{words}").repeat(n), 2000);
    assert_linear(|n| "<div>".repeat(n) + &words.repeat(50), 2000);
    // Misnested markup the parser does not close: `</span>` cannot close past a `div`,
    // `<div/>` opens a div, unclosed inline elements nest.
    assert_linear(|n| format!("<span><div>{words}</span>").repeat(n), 2000);
    assert_linear(|n| format!("<div/>{words}").repeat(n), 2000);
    assert_linear(|n| format!("<b class=x{n}>{words}").repeat(n), 2000);
    // Siblings and attributes.
    assert_linear(
        |n| format!("<div class=a><p>{words}</p></div>").repeat(n),
        2000,
    );
    assert_linear(
        |n| format!("<div{}>{words}</div>", " a=1".repeat(n)).repeat(50),
        500,
    );
}

#[test]
fn deep_nesting_keeps_its_text_and_is_still_extracted() {
    let para = "<p>The council met on Tuesday and agreed on a new budget for the schools of the town, after a long debate that lasted well into the night.</p>";
    let deep = "<div>".repeat(5000) + &para.repeat(5) + &"</div>".repeat(5000);
    let page = parse_page(&deep, true, false);
    assert_eq!(page.visible.matches("new budget").count(), 5);
    assert!(page.main.is_some_and(|m| m.contains("new budget")));
    let flat = "<p>a<p>b<br><img src=x/>".repeat(5000);
    assert!(matches!(
        super::super::markup::guard(&flat),
        std::borrow::Cow::Borrowed(_)
    ));
}

#[test]
fn survives_garbage() {
    let (_, text) = visible_text("<<<>>><p>ok</p></div></div>\u{0}");
    assert!(text.contains("ok"));
    assert_eq!(visible_text(""), (String::new(), String::new()));
}
