use super::super::block_model::{measure_page, probabilities};
use super::super::prune::{dropped, BlockScores, EDGE_RULE};
use super::*;

/// Pages with what the features read: menus and link lists, repeated lines and shapes,
/// short and long blocks, no-break spaces and tabs, a JSON-LD body, nested markup.
fn pages() -> Vec<String> {
    let body = "The council met on Tuesday and agreed on a budget for the schools of the town.";
    let more = "Teachers said the money would pay for new books, and parents welcomed it.";
    let ld = r#"<script type="application/ld+json">{"@type":"NewsArticle","articleBody":"The council met on Tuesday and agreed on a budget for the schools of the town.\nShort one"}</script>"#;
    vec![
            format!(
                r#"<html><head><title>T</title>{ld}</head><body><nav class="menu"><ul><li><a href="/">Home</a></li><li><a href="/w">World&nbsp;news</a></li></ul></nav>
                <article><h1>Budget   passes</h1><p>{body}</p><p><a href="/w">World news</a></p><p>{more}</p>
                <p>Short one</p><p>{body} {more}</p><p>Read 12 comments</p><p>Read 7 comments</p></article>
                <aside class="related"><h3>Related</h3><ul><li><a href="/a">Ten best	schools</a></li><li><a href="/b">A budget, explained</a></li></ul></aside>
                <div class="share"><a href="/s">Share on social media</a></div><footer>(c) Town News</footer></body></html>"#
            ),
            format!("<body><p>{body}</p><div><span>Home</span> <a href=/>News</a><br>Sport</div><p>{more}</p><p>Home</p></body>"),
            "<p>One</p>".to_string(),
            format!("<div class=story-body><div><div><p>{body}</p></div></div></div><ul><li>a</li><li>b</li><li>c</li><li>d</li><li>e</li></ul>"),
        ]
}

fn cut(html: &str) -> BlockPage {
    super::super::blocks::cut(dom_query::Document::from(html), true)
}

#[test]
fn each_block_scores_as_in_the_full_page_scoring() {
    let model = BlockModel::shipped().unwrap();
    for html in pages() {
        let page = cut(&html);
        let full = probabilities(&model, &measure_page(page.clone()));
        let all: Vec<usize> = (0..page.blocks.len()).collect();
        let mut scorer = Scorer::new(&page, &all);
        let cheap: Vec<u32> = all
            .iter()
            .map(|&i| scorer.probability(&model, i).to_bits())
            .collect();
        let full: Vec<u32> = full.iter().map(|p| p.to_bits()).collect();
        assert_eq!(cheap, full, "{html}");
        // Prepared for one block only, the block scores the same.
        for i in all {
            let p = Scorer::new(&page, &[i]).probability(&model, i);
            assert_eq!(p.to_bits(), full[i], "block {i} of {html}");
        }
    }
}

#[test]
fn drops_what_the_rule_drops_over_the_full_page_scores() {
    let model = BlockModel::shipped().unwrap();
    let mut dropping = 0;
    for html in pages() {
        let page = cut(&html);
        let scores = BlockScores::new(&model, &measure_page(page.clone()));
        let lines: Vec<&str> = page.text.lines().collect();
        // Every run of the page's lines as an output, with blank lines and respaced lines.
        for a in 0..lines.len() {
            for b in a + 1..=lines.len() {
                let text = lines[a..b].join("\n\n").replace(' ', "  ");
                let want = dropped(&text, &scores, &EDGE_RULE);
                assert_eq!(drops(&model, &mut page.clone(), &text), want, "{text}");
                dropping += usize::from(want.contains(&true));
            }
        }
    }
    assert!(dropping > 0, "no output of the fixtures loses a line");
}

/// A page of thousands of copies of one short line: every copy's line names one group of
/// blocks, so the edge rule's work stays linear in the page (before, each line listed the
/// blocks of every copy: a page of 20,000 copies took 15 s and 3 GB in `process`, until the
/// strip budget gave up on it), and its flags are still the full scoring's.
#[test]
fn copies_of_one_short_line_make_one_group() {
    let n = 3000;
    let html = format!(
        "<html><body><article>{}</article><p>Other</p></body></html>",
        "<p>Same line here.</p>".repeat(n)
    );
    let page = cut(&html);
    let lines: Vec<&str> = page.text.lines().collect();
    let mut groups = BlockGroups::new(&page);
    let ids: Vec<Option<usize>> = lines.iter().map(|l| groups.of(l)).collect();
    assert_eq!(ids.iter().filter(|g| **g == Some(0)).count(), n);
    assert_eq!(
        groups.used[0].len(),
        n,
        "one group holds every copy's block"
    );
    assert_eq!(groups.used.len(), 2, "{:?}", &lines[n - 1..]);
    let model = BlockModel::shipped().unwrap();
    let scores = BlockScores::new(&model, &measure_page(page.clone()));
    let text = lines.join("\n");
    let want = dropped(&text, &scores, &EDGE_RULE);
    assert_eq!(drops(&model, &mut page.clone(), &text), want);
}

/// Many distinct short lines: past [`SCANS`] of them the blocks are indexed, and each line
/// still names exactly the blocks with its words, as a pass over the page finds them.
#[test]
fn many_distinct_short_lines_find_their_blocks_through_the_index() {
    let items: String = (0..200)
        .map(|i| format!("<p>Item {}</p>", i % 150))
        .collect();
    let page = cut(&format!("<html><body><ul>{items}</ul></body></html>"));
    let lines: Vec<&str> = page.text.lines().collect();
    let mut groups = BlockGroups::new(&page);
    for line in &lines {
        let g = groups.of(line).unwrap();
        let scan: Vec<usize> = (0..page.blocks.len())
            .filter(|&i| &page.text[page.blocks[i].start..page.blocks[i].end] == *line)
            .collect();
        assert_eq!(groups.used[g], scan, "{line}");
    }
    assert!(groups.index.is_some() && groups.used.len() == 150);
}
