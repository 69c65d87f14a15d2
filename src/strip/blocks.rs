//! Owns the DOM side of the block model: a page's visible text cut into blocks (one per line),
//! each with its markup context: tag path, class/id tokens, link share and structural flags,
//! plus the page's structured sources (JSON-LD `articleBody`, the readability candidate).

use super::html::is_invisible;
use dom_query::{Document, NodeData, NodeRef};
use xxhash_rust::xxh3::xxh3_64_with_seed;

/// Structural flags a block inherits from its ancestors (bit positions in [`Block::flags`]).
pub const FLAG_NAMES: &[&str] = &[
    "in_a",
    "in_article",
    "in_main",
    "in_article_body",
    "in_nav",
    "in_header",
    "in_footer",
    "in_aside",
    "in_form",
    "in_li",
    "in_heading",
    "in_p",
    "in_table",
    "in_quote",
    "in_figure",
    "in_button",
];
pub const N_FLAGS: usize = 16;
pub(super) const IN_A: u32 = 1;
/// Bit of [`FLAG_NAMES`]' `in_article_body`: an element with `itemprop=articleBody`.
pub(super) const IN_ARTICLE_BODY: u32 = 1 << 3;

/// One visible text block: a line of the page's visible text and where it sits in the markup.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Block {
    /// Byte range of the block in [`BlockPage::text`].
    pub start: usize,
    pub end: usize,
    /// Characters of text, and of those inside links.
    pub chars: u32,
    pub link_chars: u32,
    /// Element depth of the block's first text.
    pub depth: u32,
    pub flags: u32,
    /// Range of the block's context-token hashes in [`BlockPage::tokens`].
    pub tok_start: usize,
    pub tok_end: usize,
}

/// A page cut into blocks.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BlockPage {
    pub title: String,
    /// All visible text, one block per line.
    pub text: String,
    pub blocks: Vec<Block>,
    /// Context-token hashes of all blocks (tag path and class/id tokens, prefixed by their role).
    pub tokens: Vec<u64>,
    /// Text of every JSON-LD `articleBody` on the page.
    pub json_ld: String,
    /// The readability candidate (dom_smoothie) when it found one.
    pub readability: Option<String>,
}

/// One open element on the walk's stack.
struct Frame {
    /// Hash of the tag name.
    tag: u64,
    /// Range of the element's class/id token hashes in the walk's token arena.
    cls: (usize, usize),
    flags: u32,
}

/// Cuts `doc` into blocks; runs the readability extractor on the same DOM afterwards when `readability` is set.
pub fn cut(doc: Document, readability: bool) -> BlockPage {
    let mut page = cut_blocks(&doc);
    if readability {
        page.readability = super::html::readability(doc);
    }
    page
}

/// Cuts `doc` into blocks, without the readability candidate.
pub fn cut_blocks(doc: &Document) -> BlockPage {
    cut_blocks_with(doc, None)
}

/// [`cut_blocks`], with the page's JSON-LD `articleBody` strings when the caller has them
/// already ([`super::structured::collect_with`]).
pub fn cut_blocks_with(doc: &Document, json_ld: Option<String>) -> BlockPage {
    let mut page = BlockPage {
        title: super::html::page_title(doc),
        ..BlockPage::default()
    };
    {
        let root = doc.body().unwrap_or_else(|| doc.root());
        let mut walk = Walk {
            page: &mut page,
            frames: Vec::new(),
            arena: Vec::new(),
            open: None,
            space: false,
            lower: Vec::new(),
        };
        walk.run(&root);
        walk.close_block();
        match json_ld {
            Some(ld) => page.json_ld = ld,
            None => collect_json_ld(doc, &mut page.json_ld),
        }
    }
    page
}

struct Walk<'p> {
    page: &'p mut BlockPage,
    frames: Vec<Frame>,
    arena: Vec<u64>,
    /// The block being filled, if any text arrived since the last break.
    open: Option<Block>,
    space: bool,
    /// Scratch buffer for a lower-cased class/id token.
    lower: Vec<u8>,
}

impl Walk<'_> {
    fn run(&mut self, root: &NodeRef<'_>) {
        // Explicit stack: deeply nested markup must not overflow the thread's stack.
        enum Step<'a> {
            Enter(NodeRef<'a>),
            Leave(bool),
        }
        let mut stack = vec![Step::Enter(*root)];
        while let Some(step) = stack.pop() {
            match step {
                Step::Leave(block) => {
                    if block {
                        self.close_block();
                    }
                    if let Some(f) = self.frames.pop() {
                        self.arena.truncate(f.cls.0);
                    }
                }
                Step::Enter(node) => {
                    // One look at the node, borrowing its text, name and attributes.
                    let went_in = node.query(|n| match &n.data {
                        NodeData::Text { contents } => {
                            self.push_text(contents);
                            None
                        }
                        NodeData::Document => {
                            self.enter("", None, None, false);
                            Some(false)
                        }
                        NodeData::Element(e) => {
                            let name: &str = &e.name.local;
                            if is_invisible(name) || e.has_attr("hidden") {
                                return None;
                            }
                            if name == "br" {
                                self.close_block();
                                return None;
                            }
                            let block = super::html::is_block(name);
                            if block {
                                self.close_block();
                            }
                            let attr = |key: &str| {
                                e.attrs
                                    .iter()
                                    .find(|a| &*a.name.local == key)
                                    .map(|a| &*a.value)
                            };
                            let article_body = attr("itemprop")
                                .is_some_and(|v| v.eq_ignore_ascii_case("articleBody"));
                            self.enter(name, attr("class"), attr("id"), article_body);
                            Some(block)
                        }
                        _ => None,
                    });
                    if let Some(Some(block)) = went_in {
                        stack.push(Step::Leave(block));
                        stack.extend(node.children_it(true).map(Step::Enter));
                    }
                }
            }
        }
    }

    fn enter(&mut self, name: &str, class: Option<&str>, id: Option<&str>, article_body: bool) {
        let parent = self.frames.last().map_or(0, |f| f.flags);
        let mut flags = parent | own_flags(name);
        let start = self.arena.len();
        for v in [class, id].into_iter().flatten() {
            push_class_tokens(v, &mut self.lower, &mut self.arena);
        }
        if article_body {
            flags |= IN_ARTICLE_BODY;
        }
        self.frames.push(Frame {
            tag: tag_hash(name),
            cls: (start, self.arena.len()),
            flags,
        });
    }

    fn push_text(&mut self, t: &str) {
        self.space |= t.starts_with(char::is_whitespace);
        for word in t.split_whitespace() {
            if self.open.is_none() {
                self.open_block();
            } else if self.space {
                self.page.text.push(' ');
                // A separating space is never link text, whichever element the next word is in.
                if let Some(b) = &mut self.open {
                    b.chars += 1;
                }
            }
            self.page.text.push_str(word);
            self.count(word.chars().count() as u32);
            self.space = true;
        }
        self.space = t.ends_with(char::is_whitespace);
    }

    fn count(&mut self, n: u32) {
        let in_a = self.frames.last().is_some_and(|f| f.flags & IN_A != 0);
        if let Some(b) = &mut self.open {
            b.chars += n;
            if in_a {
                b.link_chars += n;
            }
        }
    }

    /// Starts a block at the current element: snapshots its tag path and nearby class/id tokens.
    fn open_block(&mut self) {
        let tok_start = self.page.tokens.len();
        let n = self.frames.len();
        let arena = &self.arena;
        let frames = self
            .frames
            .iter()
            .rev()
            .map(|f| (f.tag, &arena[f.cls.0..f.cls.1]));
        push_block_tokens(frames, &mut self.page.tokens);
        let flags = self.frames.last().map_or(0, |f| f.flags);
        if !self.page.text.is_empty() {
            self.page.text.push('\n');
        }
        self.open = Some(Block {
            start: self.page.text.len(),
            end: self.page.text.len(),
            depth: n as u32,
            flags,
            tok_start,
            tok_end: self.page.tokens.len(),
            ..Block::default()
        });
    }

    fn close_block(&mut self) {
        if let Some(mut b) = self.open.take() {
            b.end = self.page.text.len();
            self.page.blocks.push(b);
        }
        self.space = false;
    }
}

/// Appends the context tokens of a block to `toks`, given the open elements it starts in, innermost
/// first, each as its tag hash ([`tag_hash`]) and class/id token hashes ([`push_class_tokens`]):
/// the tag path of the three innermost, the tags of the two above the innermost, and the class/id
/// tokens of the eight innermost (those of the two innermost twice, under a second role).
pub(super) fn push_block_tokens<'c>(
    frames: impl Iterator<Item = (u64, &'c [u64])> + Clone,
    toks: &mut Vec<u64>,
) {
    let mut tags = frames.clone().map(|f| f.0);
    let t0 = tags.next().unwrap_or(0);
    let t1 = tags.next().unwrap_or(0);
    let t2 = tags.next().unwrap_or(0);
    toks.push(mix(1, t0));
    toks.push(mix(2, mix(t0, t1)));
    toks.push(mix(3, mix(mix(t0, t1), t2)));
    for (d, (tag, cls)) in frames.take(8).enumerate() {
        if d < 3 && d > 0 {
            toks.push(mix(4, tag));
        }
        for &c in cls {
            toks.push(mix(5, c));
            if d < 2 {
                toks.push(mix(6, c));
            }
        }
    }
}

/// Returns the hash of an element's tag name, as its context tokens read it.
pub(super) fn tag_hash(name: &str) -> u64 {
    xxh3_64_with_seed(name.as_bytes(), 2)
}

/// Appends the hashes of the tokens of a class or id value to `out`: its ASCII-alphanumeric runs of
/// two or more characters that are not all digits, lower-cased (`lower` is scratch space).
pub(super) fn push_class_tokens(v: &str, lower: &mut Vec<u8>, out: &mut Vec<u64>) {
    for tok in v
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|t| t.len() >= 2 && !t.bytes().all(|b| b.is_ascii_digit()))
    {
        lower.clear();
        lower.extend(tok.bytes().map(|b| b.to_ascii_lowercase()));
        out.push(xxh3_64_with_seed(lower, 1));
    }
}

/// Combines two hashes (order matters).
fn mix(a: u64, b: u64) -> u64 {
    (a.rotate_left(23) ^ b).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

pub(super) fn own_flags(name: &str) -> u32 {
    let bit = match name {
        "a" => 0,
        "article" => 1,
        "main" => 2,
        "nav" => 4,
        "header" => 5,
        "footer" => 6,
        "aside" => 7,
        "form" | "select" | "input" => 8,
        "li" | "dt" | "dd" => 9,
        "h1" | "h2" | "h3" | "h4" | "h5" | "h6" => 10,
        "p" => 11,
        "table" => 12,
        "blockquote" | "q" => 13,
        "figure" | "figcaption" => 14,
        "button" | "label" => 15,
        _ => return 0,
    };
    1 << bit
}

/// Appends the `articleBody` strings of the page's JSON-LD scripts to `out`, one per line.
pub(super) fn collect_json_ld(doc: &Document, out: &mut String) {
    for script in doc.select("script[type]").nodes() {
        let ty = script.attr("type").unwrap_or_default();
        if !ty.to_ascii_lowercase().contains("ld+json") {
            continue;
        }
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&script.text()) else {
            continue;
        };
        super::structured::push_article_bodies(&v, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(html: &str) -> BlockPage {
        cut(Document::from(html), true)
    }

    #[test]
    fn blocks_are_lines_with_their_context() {
        let p = page(
            r#"<html><head><title>T</title><script type="application/ld+json">{"@graph":[{"@type":"NewsArticle","articleBody":"Body from JSON."}]}</script></head>
            <body><nav class="menu"><a href="/">Home</a> <a href="/n">News</a></nav>
            <article><p>First <b>bold</b> sentence with <a href="/x">a link</a>.</p><p>Second<br>line.</p></article>
            <div hidden>secret</div><script>var x;</script></body></html>"#,
        );
        assert_eq!(p.title, "T");
        assert_eq!(
            p.text,
            "Home News\nFirst bold sentence with a link.\nSecond\nline."
        );
        assert_eq!(p.blocks.len(), 4);
        let nav = &p.blocks[0];
        assert_eq!(nav.link_chars, 8);
        assert_eq!(nav.chars, 9);
        assert!(nav.flags & (1 << 4) != 0 && nav.flags & IN_A != 0);
        let first = &p.blocks[1];
        assert_eq!(
            &p.text[first.start..first.end],
            "First bold sentence with a link."
        );
        assert_eq!(first.link_chars, 5);
        assert!(first.flags & (1 << 1) != 0 && first.flags & (1 << 4) == 0);
        assert!(nav.tok_end > nav.tok_start);
        assert_eq!(p.json_ld, "Body from JSON.\n");
    }

    #[test]
    fn same_markup_gives_same_tokens() {
        let a = page(r#"<div class="story-body"><p>One two three.</p></div>"#);
        let b = page(r#"<div class="story-body"><p>Four five six.</p></div>"#);
        let c = page(r#"<div class="footer-links"><p>Four five six.</p></div>"#);
        assert_eq!(a.tokens, b.tokens);
        assert_ne!(b.tokens, c.tokens);
    }
}
