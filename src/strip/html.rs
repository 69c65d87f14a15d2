//! Owns the HTML side: main-content extraction with a maintained extractor, page titles, visible text.

use dom_query::{Document, NodeData, NodeRef};

/// A parsed page: its metadata title, all visible text, and the extractor's main content.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Page {
    /// `og:title`, else `<title>`.
    pub title: String,
    /// All visible text, one block per line.
    pub visible: String,
    /// Byte ranges of `visible` that are the page's comment section ([`super::comments`]) or a
    /// footer (`true`), in order, each from a line start to a line start.
    pub cut: Vec<(usize, usize, bool)>,
    /// The main content found by the extractor (dom_smoothie, a Readability port), one block per
    /// line; `None` when it found none.
    pub main: Option<String>,
    /// The page's structured sources of its article body, in cascade order (when asked for).
    pub structured: Vec<super::structured::Candidate>,
    /// The page cut into blocks for the block model (when asked for), its readability
    /// candidate set to [`Page::main`].
    pub blocks: Option<super::blocks::BlockPage>,
}

/// Parses `html` once, reads its title and visible text (and its structured sources when
/// `structured` is set, and its blocks for the block model when `blocks` is set), then runs the
/// main-content extractor on the same DOM.
pub fn parse_page(html: &str, structured: bool, blocks: bool) -> Page {
    let html = &*super::markup::guard(html);
    let doc = Document::from(html);
    let (title, visible, cut) = title_and_visible(&doc, true);
    // The structured sources' walk reads the JSON-LD the block model needs too.
    let mut ld = blocks.then(String::new);
    let structured = if structured {
        super::structured::collect_with(&doc, ld.as_mut())
    } else {
        ld = None;
        Vec::new()
    };
    let mut blocks = blocks.then(|| super::blocks::cut_blocks_with(&doc, ld));
    let main = readability(doc);
    if let Some(b) = &mut blocks {
        b.readability.clone_from(&main);
    }
    Page {
        title,
        visible,
        cut,
        main,
        structured,
        blocks,
    }
}

impl Page {
    /// Returns the visible text without the page's comment section, and with `footers` without
    /// its footers too.
    pub fn without_comments(&self, footers: bool) -> std::borrow::Cow<'_, str> {
        let mut cut = self.cut.iter().filter(|c| footers || !c.2).peekable();
        if cut.peek().is_none() {
            return std::borrow::Cow::Borrowed(&self.visible);
        }
        let text = &self.visible;
        let mut kept = String::with_capacity(text.len());
        let mut at = 0;
        for &(a, b, _) in cut {
            let a = a.min(text.len());
            kept.push_str(&text[at.min(a)..a]);
            at = at.max(b);
        }
        kept.push_str(&text[at.min(text.len())..]);
        kept.truncate(kept.trim_end().len());
        std::borrow::Cow::Owned(kept)
    }
}

/// Parses `html` once and measures its blocks for the block model (the readability candidate
/// runs on the same DOM).
pub fn measure(html: &str) -> Option<super::block_model::Measured> {
    let html = &*super::markup::guard(html);
    let page = super::blocks::cut(Document::from(html), true);
    Some(super::block_model::measure_page(page))
}

/// Returns the readability extractor's article text of `doc`, when it finds one that is not
/// blank.
pub(super) fn readability(doc: Document) -> Option<String> {
    let cfg = dom_smoothie::Config {
        text_mode: dom_smoothie::TextMode::Formatted,
        ..Default::default()
    };
    dom_smoothie::Readability::with_document(doc, None, Some(cfg))
        .ok()
        .and_then(|mut r| r.parse().ok())
        .map(|a| a.text_content.to_string())
        .filter(|t| !t.trim().is_empty())
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
    let (title, text, _) = title_and_visible(&Document::from(html), false);
    (title, text)
}

/// Returns the visible text under `node`, one block per line.
///
/// Footers are left out: a `<footer>` holds its section's or page's facts (author, tags,
/// copyright, links to related documents), not its body, and a structured source's text is
/// weighed against a readability candidate that dropped them (on wcxb-train, text inside a
/// `<footer>` nested in an article or section: 191 words of gold against 7,003 that are not).
pub(crate) fn node_visible_text(node: &NodeRef<'_>) -> String {
    let mut out = TextOut {
        no_footers: true,
        ..TextOut::default()
    };
    walk(node, &mut out);
    let mut text = out.text;
    text.truncate(text.trim_end().len());
    text
}

/// Returns the title and visible text of `doc`, and with `prune` the byte ranges of the text
/// that are the page's comment section or a footer (`<footer>`, `role=contentinfo`: on
/// wcxb-train, text in a page-level footer is 157 words of gold against 42,671 that are not),
/// which the HTML path's fallback leaves out. With `prune` the walk also leaves out figure captions
/// and removes them from `doc`, so that the extractor and the structured sources do not see
/// them either: wcxb's gold bodies leave captions out (on wcxb-train 509 four-word shingles
/// of `<figcaption>` text are in the gold, 6,293 are not).
fn title_and_visible(doc: &Document, prune: bool) -> (String, String, Vec<(usize, usize, bool)>) {
    let title = page_title(doc);
    let mut out = TextOut {
        prune,
        ..TextOut::default()
    };
    let captions = match doc.body() {
        Some(body) => walk(&body, &mut out),
        None => walk(&doc.root(), &mut out),
    };
    for caption in captions {
        caption.remove_from_parent();
    }
    let mut text = out.text;
    text.truncate(text.trim_end().len());
    (title, text, out.cut)
}

/// Visible text under construction: whitespace collapsed to one space, blocks on their own lines.
#[derive(Default)]
struct TextOut {
    text: String,
    space: bool,
    /// Marks the page's comment section ([`super::comments`]) and footers in `cut` as the walk meets them.
    prune: bool,
    /// Byte ranges of `text` written inside comment sections or footers (`true`), outermost
    /// only, in order; each starts and ends at a line start.
    cut: Vec<(usize, usize, bool)>,
    /// Whether the walk is inside a comment section or footer.
    in_comments: bool,
    /// Leaves footers out altogether (a structured source's text).
    no_footers: bool,
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

/// What the walk does with a node.
#[derive(Clone, Copy)]
enum Visit {
    /// Text (already written), an invisible element, or not an element.
    Skip,
    Block,
    /// A block that is (part of) the page's comment section.
    /// A block that is (part of) the page's comment section, or a footer (`true`).
    Cut(bool),
    /// A figure caption or an author box, left out when pruning.
    Caption,
    Br,
    Inline,
}

/// Writes the visible text under `root` into `out`; when pruning, returns the figure captions
/// it left out.
fn walk<'a>(root: &NodeRef<'a>, out: &mut TextOut) -> Vec<NodeRef<'a>> {
    let mut captions = Vec::new();
    // Explicit stack: deeply nested markup must not overflow the thread's stack.
    enum Step<'a> {
        Enter(NodeRef<'a>),
        Leave,
        /// Leaves a comment section or footer (`true`) whose text started at this byte.
        LeaveCut(usize, bool),
    }
    let mut stack = vec![Step::Enter(*root)];
    while let Some(step) = stack.pop() {
        match step {
            Step::Leave => out.break_line(),
            Step::LeaveCut(start, footer) => {
                out.break_line();
                out.cut.push((start, out.text.len(), footer));
                out.in_comments = false;
            }
            Step::Enter(node) => {
                // One look at the node, borrowing its text and name rather than copying them.
                let visit = node.query(|n| match &n.data {
                    NodeData::Text { contents } => {
                        out.push_text(contents);
                        Visit::Skip
                    }
                    NodeData::Document => Visit::Inline,
                    // html5ever lower-cases HTML element names while parsing.
                    NodeData::Element(e) => {
                        let name: &str = &e.name.local;
                        if is_invisible(name)
                            || e.has_attr("hidden")
                            || (out.no_footers && is_footer(name, e))
                        {
                            Visit::Skip
                        } else if out.prune
                            && (name == "figcaption"
                                || is_caption(name, e)
                                || is_author_box(name, e)
                                || is_disclaimer(name, e))
                        {
                            Visit::Caption
                        } else if out.prune && !out.in_comments && is_footer(name, e) {
                            Visit::Cut(true)
                        } else if out.prune
                            && !out.in_comments
                            && super::comments::is_comment_section(name, e)
                        {
                            Visit::Cut(false)
                        } else if is_block(name) {
                            Visit::Block
                        } else if name == "br" {
                            Visit::Br
                        } else {
                            Visit::Inline
                        }
                    }
                    _ => Visit::Skip,
                });
                match visit.unwrap_or(Visit::Skip) {
                    Visit::Skip => continue,
                    Visit::Caption => {
                        captions.push(node);
                        continue;
                    }
                    Visit::Block => {
                        out.break_line();
                        stack.push(Step::Leave);
                    }
                    Visit::Cut(footer) => {
                        out.break_line();
                        out.in_comments = true;
                        stack.push(Step::LeaveCut(out.text.len(), footer));
                    }
                    Visit::Br => out.break_line(),
                    Visit::Inline => {}
                }
                // Children in reverse, so the first child is popped first.
                stack.extend(node.children_it(true).map(Step::Enter));
            }
        }
    }
    captions
}

/// Returns whether an element named `name` is a footer: `<footer>` (a section's or the
/// page's) or the page's `role=contentinfo` landmark.
fn is_footer(name: &str, e: &dom_query::Element) -> bool {
    name == "footer"
        || e.attrs
            .iter()
            .any(|a| &*a.name.local == "role" && a.value.trim().eq_ignore_ascii_case("contentinfo"))
}

/// Returns whether an element is a caption by its class (`wp-caption-text`, `photo-caption`,
/// `caption`): captions written before `<figcaption>`, or without it. The page's wrappers
/// (`body`, `main`, `article`) never are, nor state flags (`has-caption`). On wcxb-train such
/// elements hold 384 words of gold text against 20,798 that are not.
fn is_caption(name: &str, e: &dom_query::Element) -> bool {
    if matches!(name, "body" | "html" | "main" | "article") {
        return false;
    }
    e.attrs.iter().any(|a| {
        &*a.name.local == "class"
            && a.value.split_ascii_whitespace().any(|t| {
                // No allocation: this runs on every element of the page.
                !is_state_flag(t)
                    && t.split(['-', '_'])
                        .any(|part| part.eq_ignore_ascii_case("caption"))
            })
    })
}

/// Returns whether an element is an author box by its class or id: one that names the author
/// together with a bio, box, about, description, profile or card (`author-bio`, `about-author`,
/// `authorbox`, `author vcard`). The page's wrappers (`body`, `main`, `article`) never are. Such
/// boxes present the writer, not the article: wcxb's gold bodies leave them out (on wcxb-train
/// 94 four-word shingles of their text are in the gold, 5,838 are not).
fn is_author_box(name: &str, e: &dom_query::Element) -> bool {
    if matches!(name, "body" | "html" | "main" | "article") {
        return false;
    }
    // No allocation: this runs on every element of the page.
    let names = || {
        e.attrs
            .iter()
            .filter(|a| matches!(&*a.name.local, "class" | "id"))
            .map(|a| a.value.as_bytes())
    };
    let has = |v: &[u8], w: &[u8]| v.windows(w.len()).any(|x| x.eq_ignore_ascii_case(w));
    names().any(|v| has(v, b"author"))
        && names().any(|v| {
            [&b"bio"[..], b"box", b"about", b"desc", b"profile", b"card"]
                .iter()
                .any(|w| has(v, w))
        })
}

/// Returns whether an element is a disclaimer by its class or id (`disclaimer`,
/// `post-disclaimer`, `affiliate_disclaimer`: a word of a token split at `-` and `_`). The page's
/// wrappers (`body`, `main`, `article`) never are. A disclaimer is the publisher's legal notice,
/// not the article: on wcxb-train 13 four-word shingles of the text of such elements that the
/// extractor kept are in the gold, 785 are not (8 sites against 1).
fn is_disclaimer(name: &str, e: &dom_query::Element) -> bool {
    if matches!(name, "body" | "html" | "main" | "article") {
        return false;
    }
    e.attrs.iter().any(|a| {
        matches!(&*a.name.local, "class" | "id")
            && a.value.split_ascii_whitespace().any(|t| {
                !is_state_flag(t)
                    && t.split(['-', '_'])
                        .any(|part| part.eq_ignore_ascii_case("disclaimer"))
            })
    })
}

/// Returns whether a class token is a state flag (`has-caption`, `no-disclaimer`), which names
/// what an element holds or lacks rather than what it is.
fn is_state_flag(t: &str) -> bool {
    ["has-", "no-", "with-", "is-"]
        .iter()
        .any(|p| t.len() >= p.len() && t.as_bytes()[..p.len()].eq_ignore_ascii_case(p.as_bytes()))
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
#[path = "html_tests.rs"]
mod tests;
