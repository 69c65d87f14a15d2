//! Owns the HTML side: main-content extraction with a maintained extractor, page titles, visible text.

use dom_query::{Document, NodeRef};

/// A parsed page: its metadata title, all visible text, and the extractor's main content.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Page {
    /// `og:title`, else `<title>`.
    pub title: String,
    /// All visible text, one block per line.
    pub visible: String,
    /// The main content found by the extractor (dom_smoothie, a Readability port), one block per
    /// line; `None` when it found none.
    pub main: Option<String>,
}

/// Parses `html` once, reads its title and visible text, then runs the main-content extractor on the same DOM.
pub fn parse_page(html: &str) -> Page {
    let html = &*super::markup::guard(html);
    if nesting_exceeds(html, MAX_NESTING) {
        return Page {
            title: String::new(),
            visible: flat_text(html),
            main: None,
        };
    }
    let doc = Document::from(html);
    let (title, visible) = title_and_visible(&doc);
    let cfg = dom_smoothie::Config {
        text_mode: dom_smoothie::TextMode::Formatted,
        ..Default::default()
    };
    let main = dom_smoothie::Readability::with_document(doc, None, Some(cfg))
        .ok()
        .and_then(|mut r| r.parse().ok())
        .map(|a| a.text_content.to_string())
        .filter(|t| !t.trim().is_empty());
    Page {
        title,
        visible,
        main,
    }
}

/// Parses `html` once and measures its blocks for the block model (the readability candidate
/// runs on the same DOM); `None` when the page nests too deep to hand to a parser.
pub fn measure(html: &str) -> Option<super::block_model::Measured> {
    let html = &*super::markup::guard(html);
    if nesting_exceeds(html, MAX_NESTING) {
        return None;
    }
    let page = super::blocks::cut(Document::from(html), true);
    Some(super::block_model::measure_page(page))
}

/// Runs the extractor alone, without the visible-text walk: the baseline the whole HTML path is timed against.
pub fn extract_only(html: &str) -> String {
    let html = &*super::markup::guard(html);
    let cfg = dom_smoothie::Config {
        text_mode: dom_smoothie::TextMode::Formatted,
        ..Default::default()
    };
    dom_smoothie::Readability::new(html, None, Some(cfg))
        .ok()
        .and_then(|mut r| r.parse().ok())
        .map(|a| a.text_content.to_string())
        .unwrap_or_default()
}

/// Returns the page title: `og:title` when present, else `<title>`, whitespace collapsed.
pub fn page_title(doc: &Document) -> String {
    // Only the head's own children are read: a selector over the whole DOM costs more than the walk.
    let (mut og, mut title) = (None, None);
    if let Some(head) = doc.head() {
        for node in head.children_it(false).filter(|n| n.is_element()) {
            match node.node_name().as_deref() {
                Some("title") if title.is_none() => title = Some(node.text()),
                Some("meta")
                    if og.is_none() && node.attr("property").as_deref() == Some("og:title") =>
                {
                    og = node.attr("content").filter(|t| !t.trim().is_empty());
                }
                _ => {}
            }
        }
    }
    let raw = og.or(title).unwrap_or_default();
    raw.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Returns (title, visible text) of a page: all text outside invisible elements, one block per line.
pub fn visible_text(html: &str) -> (String, String) {
    let html = &*super::markup::guard(html);
    if nesting_exceeds(html, MAX_NESTING) {
        let text = flat_text(html);
        return (text.lines().next().unwrap_or_default().to_string(), text);
    }
    title_and_visible(&Document::from(html))
}

/// Element nesting beyond which a page is not handed to the HTML parser and extractor: their cost
/// grows with depth squared and some of their steps recurse, so hostile markup could stall or
/// overflow a worker's stack. Real pages nest well under a hundred deep.
const MAX_NESTING: usize = 1000;

/// Estimates the deepest element nesting from the tags alone (void and self-closing elements and
/// the usual unclosed `p`/`li`/`td` do not count).
fn nesting_exceeds(html: &str, limit: usize) -> bool {
    let b = html.as_bytes();
    let mut depth = 0usize;
    let mut next_gt = 0usize;
    let mut i = 0;
    while let Some(p) = memchr::memchr(b'<', &b[i..]) {
        i += p + 1;
        match b.get(i) {
            Some(b'/') => depth = depth.saturating_sub(1),
            Some(c) if c.is_ascii_alphabetic() => {
                let name_end = b[i..]
                    .iter()
                    .position(|c| !c.is_ascii_alphanumeric())
                    .map_or(b.len(), |e| i + e);
                let name = &b[i..name_end];
                if next_gt < name_end {
                    next_gt =
                        memchr::memchr(b'>', &b[name_end..]).map_or(usize::MAX, |e| name_end + e);
                }
                // Searching once per `>` keeps this linear on markup full of unclosed `<a`.
                let self_closing =
                    next_gt != usize::MAX && next_gt > name_end && b[next_gt - 1] == b'/';
                if !self_closing && !is_unnested(name) {
                    depth += 1;
                    if depth > limit {
                        return true;
                    }
                }
            }
            _ => {}
        }
    }
    false
}

fn is_unnested(name: &[u8]) -> bool {
    if name.len() > 6 {
        return false;
    }
    let mut buf = [0u8; 6];
    for (d, c) in buf.iter_mut().zip(name) {
        *d = c.to_ascii_lowercase();
    }
    matches!(
        &buf[..name.len()],
        b"br"
            | b"img"
            | b"meta"
            | b"link"
            | b"input"
            | b"hr"
            | b"area"
            | b"base"
            | b"col"
            | b"embed"
            | b"source"
            | b"track"
            | b"wbr"
            | b"param"
            | b"p"
            | b"li"
            | b"td"
            | b"th"
            | b"tr"
            | b"option"
            | b"dt"
            | b"dd"
    )
}

/// Text of markup without a DOM: tags become line breaks. Only for pages too deep to parse.
fn flat_text(html: &str) -> String {
    let mut out = TextOut::default();
    let mut rest = html;
    while let Some(open) = rest.find('<') {
        out.push_text(&rest[..open]);
        out.break_line();
        rest = rest[open..]
            .find('>')
            .map_or("", |close| &rest[open + close + 1..]);
    }
    out.push_text(rest);
    let mut text = out.text;
    text.truncate(text.trim_end().len());
    text
}

fn title_and_visible(doc: &Document) -> (String, String) {
    let title = page_title(doc);
    let mut out = TextOut::default();
    match doc.body() {
        Some(body) => walk(&body, &mut out),
        None => walk(&doc.root(), &mut out),
    }
    let mut text = out.text;
    text.truncate(text.trim_end().len());
    (title, text)
}

/// Visible text under construction: whitespace collapsed to one space, blocks on their own lines.
#[derive(Default)]
struct TextOut {
    text: String,
    space: bool,
}

impl TextOut {
    fn push_text(&mut self, t: &str) {
        self.space |= t.starts_with(|c: char| c.is_whitespace());
        for (i, word) in t.split_whitespace().enumerate() {
            if (i > 0 || self.space) && !self.text.is_empty() && !self.text.ends_with('\n') {
                self.text.push(' ');
            }
            self.text.push_str(word);
            self.space = false;
        }
        self.space |= t.ends_with(|c: char| c.is_whitespace());
    }

    fn break_line(&mut self) {
        if !self.text.is_empty() && !self.text.ends_with('\n') {
            self.text.push('\n');
        }
        self.space = false;
    }
}

fn walk(root: &NodeRef<'_>, out: &mut TextOut) {
    // Explicit stack: deeply nested markup must not overflow the thread's stack.
    enum Step<'a> {
        Enter(NodeRef<'a>),
        Leave,
    }
    let mut stack = vec![Step::Enter(*root)];
    while let Some(step) = stack.pop() {
        match step {
            Step::Leave => out.break_line(),
            Step::Enter(node) => {
                if node.is_text() {
                    out.push_text(&node.text());
                    continue;
                }
                if !node.is_element() && !node.is_document() {
                    continue;
                }
                // html5ever lower-cases HTML element names while parsing.
                let name = node.node_name().unwrap_or_default();
                let name: &str = &name;
                if is_invisible(name) || node.has_attr("hidden") {
                    continue;
                }
                if is_block(name) {
                    out.break_line();
                    stack.push(Step::Leave);
                } else if name == "br" {
                    out.break_line();
                }
                // Children in reverse, so the first child is popped first.
                stack.extend(node.children_it(true).map(Step::Enter));
            }
        }
    }
}

fn is_invisible(name: &str) -> bool {
    matches!(
        name,
        "script"
            | "style"
            | "noscript"
            | "template"
            | "head"
            | "svg"
            | "iframe"
            | "object"
            | "canvas"
    )
}

pub(crate) fn is_block(name: &str) -> bool {
    matches!(
        name,
        "p" | "div"
            | "section"
            | "article"
            | "main"
            | "header"
            | "footer"
            | "nav"
            | "aside"
            | "h1"
            | "h2"
            | "h3"
            | "h4"
            | "h5"
            | "h6"
            | "ul"
            | "ol"
            | "li"
            | "dl"
            | "dt"
            | "dd"
            | "table"
            | "tr"
            | "td"
            | "th"
            | "blockquote"
            | "pre"
            | "figure"
            | "figcaption"
            | "form"
            | "fieldset"
            | "address"
            | "hr"
            | "details"
            | "summary"
            | "body"
            | "html"
            | "caption"
            | "option"
            | "button"
            | "label"
    )
}

#[cfg(test)]
mod tests {
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
    fn falls_back_to_the_title_element() {
        let doc = Document::from("<title> A  b </title><p>x</p>");
        assert_eq!(page_title(&doc), "A b");
    }

    #[test]
    fn deep_nesting_skips_the_parser() {
        let deep = "<div>".repeat(MAX_NESTING + 1) + "deep text";
        assert!(nesting_exceeds(&deep, MAX_NESTING));
        assert_eq!(parse_page(&deep).visible, "deep text");
        let flat = "<p>a<p>b<br><img src=x/>".repeat(5000);
        assert!(!nesting_exceeds(&flat, MAX_NESTING));
        assert!(!nesting_exceeds(PAGE, 20));
    }

    #[test]
    fn survives_garbage() {
        let (_, text) = visible_text("<<<>>><p>ok</p></div></div>\u{0}");
        assert!(text.contains("ok"));
        assert_eq!(visible_text(""), (String::new(), String::new()));
    }
}
