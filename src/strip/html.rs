//! Owns the HTML side: main-content extraction with a maintained extractor, page titles, visible text.

use super::line_dom::LineDom;
use super::marks::{is_author_box, is_caption, is_disclaimer, is_footer};
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
    /// The page's blocks for the block model (when asked for): recorded by the visible-text
    /// walk, or cut by the block walk when the two walks split the page differently
    /// ([`super::line_dom`]).
    pub blocks: Option<PageBlocks>,
}

/// A page's blocks for the edge pruner.
#[derive(Debug, Clone, PartialEq)]
pub enum PageBlocks {
    /// Cut by the block walk ([`super::blocks::cut_blocks_with`]), readability candidate unset.
    Cut(super::blocks::BlockPage),
    /// Recorded by the visible-text walk, one per line of [`Page::visible`].
    Lines(super::line_dom::LineDom),
}

/// Parses `html` once, reads its title and visible text (and its structured sources when
/// `structured` is set, and its blocks for the block model when `blocks` is set), then runs the
/// main-content extractor on the same DOM.
pub fn parse_page(html: &str, structured: bool, blocks: bool) -> Page {
    let html = &*super::markup::guard(html);
    let doc = Document::from(html);
    let (title, visible, cut, lines) = title_and_visible(&doc, true, blocks);
    // The structured sources' walk reads the JSON-LD the block model needs too.
    let mut ld = lines.as_ref().map(|_| String::new());
    let structured = if structured {
        super::structured::collect_with(&doc, ld.as_mut())
    } else {
        if let Some(ld) = &mut ld {
            super::blocks::collect_json_ld(&doc, ld);
        }
        Vec::new()
    };
    let blocks = lines.map(|mut lines| {
        if lines.odd {
            PageBlocks::Cut(super::blocks::cut_blocks_with(&doc, ld))
        } else {
            lines.json_ld = ld.unwrap_or_default();
            PageBlocks::Lines(lines)
        }
    });
    let main = readability(doc);
    Page {
        title,
        visible,
        cut,
        main,
        structured,
        blocks,
    }
}

/// Returns the page's blocks as the block walk cuts them after the visible-text walk (which takes
/// the captions out of the DOM), with the JSON-LD bodies and the readability candidate: the blocks
/// [`parse_page`] gave before the visible-text walk recorded them.
#[cfg(test)]
pub(super) fn cut_blocks_after_walk(html: &str) -> super::blocks::BlockPage {
    let html = &*super::markup::guard(html);
    let doc = Document::from(html);
    title_and_visible(&doc, true, false);
    let mut ld = String::new();
    super::structured::collect_with(&doc, Some(&mut ld));
    let mut b = super::blocks::cut_blocks_with(&doc, Some(ld));
    b.readability = readability(doc);
    b
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
    let (title, text, _, _) = title_and_visible(&Document::from(html), false, false);
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
/// of `<figcaption>` text are in the gold, 6,293 are not). With `blocks` (and `prune`) it records
/// the markup context of each line for the block model ([`super::line_dom`]).
#[allow(clippy::type_complexity)]
fn title_and_visible(
    doc: &Document,
    prune: bool,
    blocks: bool,
) -> (String, String, Vec<(usize, usize, bool)>, Option<LineDom>) {
    let title = page_title(doc);
    let mut out = TextOut {
        prune,
        dom: (prune && blocks).then(|| LineDom::new(doc.tree.len())),
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
    (title, text, out.cut, out.dom)
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
    /// Records the markup context of each line for the block model.
    dom: Option<LineDom>,
}

impl TextOut {
    fn push_text(&mut self, t: &str) {
        self.space |= t.starts_with(|c: char| c.is_whitespace());
        for (i, word) in t.split_whitespace().enumerate() {
            let open = !self.text.is_empty() && !self.text.ends_with('\n');
            if (i > 0 || self.space) && open {
                self.text.push(' ');
            }
            if let Some(d) = &mut self.dom {
                d.word(!open, self.text.len(), word);
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
        /// Leaves an inline element whose context is recorded ([`TextOut::dom`]).
        Pop,
    }
    let mut stack = vec![Step::Enter(*root)];
    while let Some(step) = stack.pop() {
        match step {
            Step::Leave => {
                out.break_line();
                if let Some(d) = &mut out.dom {
                    d.leave();
                }
            }
            Step::LeaveCut(start, footer) => {
                out.break_line();
                out.cut.push((start, out.text.len(), footer));
                out.in_comments = false;
                if let Some(d) = &mut out.dom {
                    d.leave();
                }
            }
            Step::Pop => {
                if let Some(d) = &mut out.dom {
                    d.leave();
                }
            }
            Step::Enter(node) => {
                // One look at the node, borrowing its text and name rather than copying them.
                let visit = node.query(|n| match &n.data {
                    NodeData::Text { contents } => {
                        out.push_text(contents);
                        Visit::Skip
                    }
                    NodeData::Document => {
                        if let Some(d) = &mut out.dom {
                            d.enter_document();
                        }
                        Visit::Inline
                    }
                    // html5ever lower-cases HTML element names while parsing.
                    NodeData::Element(e) => {
                        let name: &str = &e.name.local;
                        let visit = if is_invisible(name)
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
                        };
                        if let Some(d) = &mut out.dom {
                            match visit {
                                Visit::Block | Visit::Inline => d.enter(name, e),
                                Visit::Cut(_) => {
                                    d.odd |= !is_block(name);
                                    d.enter(name, e);
                                }
                                Visit::Skip | Visit::Caption | Visit::Br => {}
                            }
                        }
                        visit
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
                    Visit::Inline => {
                        if out.dom.is_some() {
                            stack.push(Step::Pop);
                        }
                    }
                }
                // Children in reverse, so the first child is popped first.
                stack.extend(node.children_it(true).map(Step::Enter));
            }
        }
    }
    captions
}

/// Elements whose text a reader never sees.
pub(super) fn is_invisible(name: &str) -> bool {
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
