//! Owns the nesting cap of the markup guard: an estimate of the HTML parser's stack of open
//! elements, from the tags alone, that errs on the deep side.
//!
//! The parser and the readability extractor both do work per element proportional to its depth
//! (scope checks walk the stack of open elements; text and link density are recounted for every
//! ancestor of a text), so markup nested `n` deep costs `n` times its size. The guard drops start
//! tags (and the end tags that close them) that would open deeper than [`MAX_DEPTH`]: their text
//! stays, in the deepest kept element, and every later step sees at most that depth.
//!
//! The estimate follows the tree builder's rules for end tags (an end tag pops only what the
//! parser pops: a special element stops a non-special end tag, a scope boundary stops a
//! special one) and counts `<x/>` as open outside SVG and MathML, as the parser does. Elements
//! that close themselves implicitly (`p`, `li`, `td`, `tr`, `option`, ...) are not counted, so a
//! page that nests them between counted elements can be up to a few times deeper than the
//! estimate; the bound stays a constant.

/// Elements open at once, beyond which start tags are dropped. Real pages nest well under a
/// hundred (the deepest of the 704 wcxb pages estimates at 90 with a looser count).
pub const MAX_DEPTH: usize = 256;

/// What the guard does with a tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Act {
    Keep,
    Drop,
}

#[derive(Debug, Clone, Copy)]
struct Open {
    name: u64,
    special: bool,
    boundary: bool,
    foreign: bool,
}

/// The estimated stack of open elements while the guard walks the tags in order.
#[derive(Debug)]
pub struct Nesting {
    stack: Vec<Open>,
    /// Start tags dropped and not yet closed.
    dropped: usize,
    /// Open `svg`/`math` elements: inside them `<x/>` closes itself.
    foreign: usize,
    limit: usize,
    /// Stack entries visited, for the linear-work test.
    pub steps: u64,
}

impl Default for Nesting {
    fn default() -> Self {
        Self::new(MAX_DEPTH)
    }
}

impl Nesting {
    pub fn new(limit: usize) -> Self {
        Self {
            stack: Vec::new(),
            dropped: 0,
            foreign: 0,
            limit,
            steps: 0,
        }
    }

    /// Estimated depth now.
    pub fn depth(&self) -> usize {
        self.stack.len()
    }

    /// Whether an `svg` or `math` element is open (foreign content: `<script>` and `<style>`
    /// hold markup there, not raw text).
    pub fn in_foreign(&self) -> bool {
        self.foreign > 0
    }

    /// A start tag `<name ...>` (`self_closing` when it ends with `/>`).
    pub fn start(&mut self, name: &[u8], self_closing: bool) -> Act {
        let lower = Lower::new(name);
        let n = lower.as_bytes();
        if is_void(n) || is_raw_text(n) || is_unnested(n) {
            return Act::Keep;
        }
        if self_closing && self.foreign > 0 {
            return Act::Keep;
        }
        if self.dropped > 0 || self.stack.len() >= self.limit {
            self.dropped += 1;
            return Act::Drop;
        }
        let key = lower.key();
        if matches!(n, b"a" | b"nobr" | b"button") {
            // A second `a` (`nobr`, `button`) closes the open one when nothing special is between.
            self.pop_to(key, false);
        }
        let foreign = matches!(n, b"svg" | b"math");
        self.foreign += usize::from(foreign);
        self.stack.push(Open {
            name: key,
            special: is_special(n),
            boundary: is_boundary(n),
            foreign,
        });
        Act::Keep
    }

    /// An end tag `</name>`.
    pub fn end(&mut self, name: &[u8]) -> Act {
        let lower = Lower::new(name);
        let n = lower.as_bytes();
        if is_void(n) || is_raw_text(n) || is_unnested(n) {
            return Act::Keep;
        }
        if self.dropped > 0 {
            self.dropped -= 1;
            return Act::Drop;
        }
        // The parser keeps these open (`body`, `html`) or removes only the one element (`form`).
        if matches!(n, b"body" | b"html" | b"form" | b"template") {
            return Act::Keep;
        }
        self.pop_to(lower.key(), is_special(n));
        Act::Keep
    }

    /// Pops through the topmost open `key` when the tree builder would: a special end tag
    /// (`special_end`) looks through everything but scope boundaries, any other end tag only
    /// through non-special elements.
    fn pop_to(&mut self, key: u64, special_end: bool) {
        for k in (0..self.stack.len()).rev() {
            self.steps += 1;
            let e = self.stack[k];
            if e.name == key {
                for gone in self.stack.drain(k..) {
                    self.foreign -= usize::from(gone.foreign);
                }
                return;
            }
            if (special_end && e.boundary) || (!special_end && e.special) {
                return;
            }
        }
    }
}

/// A tag name lower-cased: short names inline, for matching; every name as a hash key.
struct Lower {
    buf: [u8; 16],
    len: usize,
    key: u64,
}

impl Lower {
    fn new(name: &[u8]) -> Self {
        let mut buf = [0u8; 16];
        let mut key = 0xcbf2_9ce4_8422_2325u64;
        for (i, c) in name.iter().enumerate() {
            let c = c.to_ascii_lowercase();
            if i < buf.len() {
                buf[i] = c;
            }
            key = (key ^ u64::from(c)).wrapping_mul(0x0100_0000_01b3);
        }
        Self {
            buf,
            // Names longer than the buffer match none of the lists below.
            len: if name.len() <= buf.len() {
                name.len()
            } else {
                0
            },
            key,
        }
    }

    fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    fn key(&self) -> u64 {
        self.key
    }
}

fn is_void(n: &[u8]) -> bool {
    matches!(
        n,
        b"area"
            | b"base"
            | b"basefont"
            | b"bgsound"
            | b"br"
            | b"col"
            | b"embed"
            | b"frame"
            | b"hr"
            | b"image"
            | b"img"
            | b"input"
            | b"keygen"
            | b"link"
            | b"meta"
            | b"param"
            | b"source"
            | b"track"
            | b"wbr"
    )
}

/// Elements whose content the tokenizer reads as text: the guard skips to their end tag.
fn is_raw_text(n: &[u8]) -> bool {
    matches!(
        n,
        b"script"
            | b"style"
            | b"title"
            | b"textarea"
            | b"xmp"
            | b"iframe"
            | b"noembed"
            | b"noframes"
            | b"plaintext"
    )
}

/// Elements the parser closes implicitly when the next of their kind (or a block) starts.
fn is_unnested(n: &[u8]) -> bool {
    matches!(
        n,
        b"p" | b"li"
            | b"dt"
            | b"dd"
            | b"td"
            | b"th"
            | b"tr"
            | b"tbody"
            | b"thead"
            | b"tfoot"
            | b"colgroup"
            | b"caption"
            | b"option"
            | b"optgroup"
            | b"rp"
            | b"rt"
            | b"head"
    )
}

/// The HTML standard's special category (those this estimate counts).
fn is_special(n: &[u8]) -> bool {
    is_boundary(n)
        || matches!(
            n,
            b"address"
                | b"article"
                | b"aside"
                | b"blockquote"
                | b"body"
                | b"button"
                | b"center"
                | b"details"
                | b"dir"
                | b"div"
                | b"dl"
                | b"fieldset"
                | b"figcaption"
                | b"figure"
                | b"footer"
                | b"form"
                | b"frameset"
                | b"h1"
                | b"h2"
                | b"h3"
                | b"h4"
                | b"h5"
                | b"h6"
                | b"header"
                | b"hgroup"
                | b"listing"
                | b"main"
                | b"menu"
                | b"nav"
                | b"noscript"
                | b"ol"
                | b"pre"
                | b"search"
                | b"section"
                | b"select"
                | b"summary"
                | b"ul"
        )
}

/// Elements that bound the default scope: a special end tag does not look past them.
fn is_boundary(n: &[u8]) -> bool {
    matches!(
        n,
        b"applet"
            | b"html"
            | b"table"
            | b"marquee"
            | b"object"
            | b"template"
            | b"mi"
            | b"mo"
            | b"mn"
            | b"ms"
            | b"mtext"
            | b"annotation-xml"
            | b"foreignobject"
            | b"desc"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs tags written `div`, `/div` (end) and `path/` (self-closing).
    fn run(tags: &[&str], limit: usize) -> (Vec<Act>, usize) {
        let mut n = Nesting::new(limit);
        let acts = tags
            .iter()
            .map(|t| match t.strip_prefix('/') {
                Some(name) => n.end(name.as_bytes()),
                None => n.start(t.trim_end_matches('/').as_bytes(), t.ends_with('/')),
            })
            .collect();
        (acts, n.depth())
    }

    #[test]
    fn balanced_markup_returns_to_zero() {
        let tags = ["div", "SPAN", "/span", "/DIV"];
        assert_eq!(run(&tags, 10).1, 0);
    }

    #[test]
    fn starts_past_the_limit_and_their_ends_are_dropped() {
        let mut tags = vec!["div"; 5];
        tags.extend(vec!["/div"; 5]);
        let (acts, depth) = run(&tags, 3);
        assert_eq!(
            acts,
            [
                Act::Keep,
                Act::Keep,
                Act::Keep,
                Act::Drop,
                Act::Drop,
                Act::Drop,
                Act::Drop,
                Act::Keep,
                Act::Keep,
                Act::Keep
            ]
        );
        assert_eq!(depth, 0);
    }

    #[test]
    fn end_tags_the_parser_ignores_pop_nothing() {
        // `</span>` cannot close past the special `div`; `</body>` keeps body open; `<div/>`
        // opens a div in HTML.
        let tags = [
            "body", "span", "div", "/span", "div/", "/body", "table", "/div",
        ];
        assert_eq!(run(&tags, 100).1, 5);
        // In SVG, `<path/>` closes itself, and `</svg>` pops what the parser pops.
        let svg = ["svg", "path/", "g", "/svg"];
        assert_eq!(run(&svg, 100).1, 0);
    }

    #[test]
    fn repeated_anchors_do_not_accumulate() {
        let tags = vec!["a"; 50];
        assert_eq!(run(&tags, 100).1, 1);
        let para = ["p", "li", "td", "br", "/p", "/li"];
        assert_eq!(run(&para.repeat(100), 10).1, 0);
    }
}
