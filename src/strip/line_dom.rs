//! Owns the blocks of the visible-text walk: the markup context of each line of a page's visible
//! text (tag path, class/id tokens, structural flags, depth, link characters), recorded by the walk
//! that writes the text ([`super::html`]), so that the edge pruner ([`super::edge_score`]) reads
//! the page's blocks without a second walk of the DOM and a second copy of its text
//! ([`super::blocks::cut_blocks_with`]).
//!
//! The walk keeps what each open element contributes (its tag, its class and id values, its
//! flags); the class/id tokens are hashed only for the blocks the pruner scores. A page's lines
//! are its blocks, with the same text, bit for bit the blocks [`super::blocks::cut_blocks_with`]
//! cuts from the same DOM: both walks break lines at the same elements, except a footer or
//! comment section that is not a block element (`role=contentinfo` on a `<span>`), where the
//! visible-text walk breaks a line and the block walk does not; such a page is marked
//! [`LineDom::odd`] and its blocks are cut by the block walk.

use super::blocks::{
    own_flags, push_block_tokens, push_class_tokens, tag_hash, Block, BlockPage, IN_A,
    IN_ARTICLE_BODY,
};
use dom_query::{local_name, Element, LocalName};

/// No element: the parent of the outermost frame.
const NONE: u32 = u32::MAX;

/// One element the walk went into.
#[derive(Debug, Clone, PartialEq)]
struct Frame {
    parent: u32,
    name: LocalName,
    /// Byte ranges of the element's `class` and `id` values in [`LineDom::attrs`].
    class: (u32, u32),
    id: (u32, u32),
    flags: u32,
    /// Elements from the walk's root down to this one, both included.
    depth: u32,
}

/// One line of the visible text: where it starts in the text, the element its first word is in,
/// and its characters in links.
#[derive(Debug, Clone, Copy, PartialEq)]
struct LineRec {
    start: usize,
    frame: u32,
    link_chars: u32,
}

/// The markup context of every line of a page's visible text, as the visible-text walk met it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LineDom {
    frames: Vec<Frame>,
    /// The class and id values of the frames, back to back.
    attrs: String,
    lines: Vec<LineRec>,
    /// The innermost open element ([`NONE`] before the root).
    cur: u32,
    /// Whether the innermost open element is in a link.
    in_a: bool,
    /// Whether the walk broke a line where the block walk does not (a footer or comment section
    /// on an element that is not a block): then the lines are not the page's blocks.
    pub odd: bool,
    /// Text of every JSON-LD `articleBody` on the page (set by the page's parse).
    pub json_ld: String,
}

impl LineDom {
    /// Starts the record of a walk over at most `nodes` nodes.
    pub fn new(nodes: usize) -> Self {
        Self {
            frames: Vec::with_capacity(nodes),
            lines: Vec::with_capacity(nodes / 4),
            attrs: String::with_capacity(nodes * 8),
            cur: NONE,
            ..Self::default()
        }
    }

    /// The walk goes into the document node (a page without a body is walked from there).
    pub fn enter_document(&mut self) {
        self.push(local_name!(""), (0, 0), (0, 0), 0);
    }

    /// The walk goes into element `e` (`name` its local name): one it reads the text of, not an
    /// invisible one, a caption or a `<br>`.
    pub fn enter(&mut self, name: &str, e: &Element) {
        let (mut class, mut id, mut article_body) = (None, None, None);
        for a in &e.attrs {
            let (key, v): (&LocalName, &str) = (&a.name.local, &a.value);
            if *key == local_name!("class") {
                if class.is_none() {
                    class = Some(self.keep(v));
                }
            } else if *key == local_name!("id") {
                if id.is_none() {
                    id = Some(self.keep(v));
                }
            } else if *key == local_name!("itemprop") && article_body.is_none() {
                article_body = Some(v.eq_ignore_ascii_case("articleBody"));
            }
        }
        let mut flags = own_flags(name);
        if article_body == Some(true) {
            flags |= IN_ARTICLE_BODY;
        }
        self.push(
            e.name.local.clone(),
            class.unwrap_or((0, 0)),
            id.unwrap_or((0, 0)),
            flags,
        );
    }

    /// Copies an attribute value into [`LineDom::attrs`] and returns its range.
    fn keep(&mut self, v: &str) -> (u32, u32) {
        let start = self.attrs.len() as u32;
        self.attrs.push_str(v);
        (start, self.attrs.len() as u32)
    }

    fn push(&mut self, name: LocalName, class: (u32, u32), id: (u32, u32), own: u32) {
        let parent = self.frames.get(self.cur as usize);
        let (flags, depth) = parent.map_or((own, 1), |p| (p.flags | own, p.depth + 1));
        self.frames.push(Frame {
            parent: self.cur,
            name,
            class,
            id,
            flags,
            depth,
        });
        self.cur = (self.frames.len() - 1) as u32;
        self.in_a = flags & IN_A != 0;
    }

    /// The walk leaves the innermost open element.
    pub fn leave(&mut self) {
        if let Some(f) = self.frames.get(self.cur as usize) {
            self.cur = f.parent;
            self.in_a = self
                .frames
                .get(self.cur as usize)
                .is_some_and(|p| p.flags & IN_A != 0);
        }
    }

    /// The walk writes `word` at byte `at` of the text, into the innermost open element;
    /// `new_line` when it starts a line.
    #[inline]
    pub fn word(&mut self, new_line: bool, at: usize, word: &str) {
        if new_line {
            self.lines.push(LineRec {
                start: at,
                frame: self.cur,
                link_chars: 0,
            });
        }
        if self.in_a {
            if let Some(l) = self.lines.last_mut() {
                l.link_chars += word.chars().count() as u32;
            }
        }
    }

    /// Number of lines (blocks) the walk recorded.
    pub fn line_count(&self) -> usize {
        self.lines.len()
    }

    /// Byte range in `text` (the visible text the walk wrote) of line `k`, its line break left out.
    pub fn line_range(&self, k: usize, text: &str) -> (usize, usize) {
        let end = self.lines.get(k + 1).map_or(text.len(), |n| n.start - 1);
        (self.lines[k].start, end)
    }

    /// The element line `k`'s first word is in: an index below [`LineDom::frame_count`], or
    /// `u32::MAX` for none.
    pub fn line_element(&self, k: usize) -> u32 {
        self.lines[k].frame
    }

    /// Number of elements the walk went into.
    pub fn frame_count(&self) -> usize {
        self.frames.len()
    }

    /// The parent of element `f` (`u32::MAX` for the outermost), and its depth (1 outermost).
    pub fn parent_and_depth(&self, f: u32) -> Option<(u32, u32)> {
        self.frames.get(f as usize).map(|fr| (fr.parent, fr.depth))
    }

    /// Returns the page's blocks, one per line of `text` (the visible text the walk wrote), without
    /// their context tokens ([`LineDom::fill_tokens`] adds those of the blocks read), with
    /// `title`, the JSON-LD bodies and the readability candidate `readability`.
    pub fn page(&self, title: &str, text: &str, readability: Option<&str>) -> BlockPage {
        let mut blocks = Vec::with_capacity(self.lines.len());
        for (k, rec) in self.lines.iter().enumerate() {
            // A line ends where the next starts, less its line break.
            let end = self.lines.get(k + 1).map_or(text.len(), |n| n.start - 1);
            let f = self.frames.get(rec.frame as usize);
            blocks.push(Block {
                start: rec.start,
                end,
                chars: text[rec.start..end].chars().count() as u32,
                link_chars: rec.link_chars,
                depth: f.map_or(0, |f| f.depth),
                flags: f.map_or(0, |f| f.flags),
                tok_start: 0,
                tok_end: 0,
            });
        }
        BlockPage {
            title: title.to_string(),
            text: text.to_string(),
            blocks,
            tokens: Vec::new(),
            json_ld: self.json_ld.clone(),
            readability: readability.map(str::to_string),
        }
    }

    /// Adds the context tokens of blocks `which` of `page` (made by [`LineDom::page`]), as
    /// [`super::blocks::cut_blocks_with`] gives them; a block that has them already keeps them.
    pub fn fill_tokens(&self, page: &mut BlockPage, which: &[usize]) {
        let mut lower = Vec::new();
        let mut cls: Vec<Vec<u64>> = Vec::new();
        for &i in which {
            let b = &page.blocks[i];
            if b.tok_end > b.tok_start {
                continue;
            }
            // The eight innermost open elements, innermost first, with their class/id tokens.
            let mut chain = Vec::with_capacity(8);
            let mut f = self.lines[i].frame;
            while let Some(fr) = self.frames.get(f as usize) {
                if chain.len() == 8 {
                    break;
                }
                chain.push(fr);
                f = fr.parent;
            }
            cls.resize_with(chain.len(), Vec::new);
            for (fr, out) in chain.iter().zip(&mut cls) {
                out.clear();
                for (a, b) in [fr.class, fr.id] {
                    push_class_tokens(&self.attrs[a as usize..b as usize], &mut lower, out);
                }
            }
            let tok_start = page.tokens.len();
            let frames = chain
                .iter()
                .zip(&cls)
                .map(|(fr, c)| (tag_hash(&fr.name), c.as_slice()));
            push_block_tokens(frames, &mut page.tokens);
            let b = &mut page.blocks[i];
            b.tok_start = tok_start;
            b.tok_end = page.tokens.len();
        }
    }

    /// Returns the page's blocks with the context tokens of every block.
    #[cfg(test)]
    pub fn full_page(&self, title: &str, text: &str, readability: Option<&str>) -> BlockPage {
        let mut page = self.page(title, text, readability);
        let all: Vec<usize> = (0..page.blocks.len()).collect();
        self.fill_tokens(&mut page, &all);
        page
    }
}

#[cfg(test)]
#[path = "line_dom_tests.rs"]
mod tests;
