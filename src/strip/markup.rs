//! Owns the markup guard: a linear pre-pass over the markup before any HTML parser sees it.
//!
//! html5ever checks each new attribute against the tag's earlier ones, so one element with a
//! million attributes costs minutes. The guard drops attributes past a per-tag and a per-page
//! cap; real pages stay far below both. It drops elements nested deeper than
//! [`super::nesting::MAX_DEPTH`] (their text stays), so later steps never see deeper markup.
//! It also shows what a browser shows once the page's scripts ran: React streams
//! server-rendered segments as `<div hidden id="S:n">` and swaps them in with a script, so the
//! article of such a page sits in a hidden div. Script and style text (not JSON scripts) is
//! blanked: nothing later reads it, and tokenizing it cost the parser 13% of its work. So are
//! drawings (`<svg>` icons) without text elements. Attributes that neither the parser's tree
//! builder, the extractor nor our walks read (`data-*`, event handlers, `srcset` outside
//! images, framework bindings, ...) are dropped ([`is_read`]): a quarter of a page's bytes.

use super::nesting::{Act, Nesting};
use std::borrow::Cow;

/// Attributes kept per tag; real elements carry a few dozen at most.
pub const MAX_ATTRS_PER_TAG: usize = 64;
/// Attributes kept per page, all tags together.
pub const MAX_ATTRS_PER_PAGE: usize = 500_000;

/// Returns `html` with attributes beyond the caps removed and streamed segments shown
/// (borrowed when nothing changed).
/// The tokenizing follows the HTML standard's attribute states: quoted values may hold `>`.
pub fn guard(html: &str) -> Cow<'_, str> {
    let b = html.as_bytes();
    let len = b.len();
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut total = 0usize;
    let mut i = 0;
    let ws = |c: u8| matches!(c, b' ' | b'\t' | b'\n' | b'\r' | b'\x0c');
    let mut nesting = Nesting::default();
    // Spans of the current tag's attributes to drop, in source order.
    let mut unread: Vec<(usize, usize)> = Vec::new();
    while let Some(p) = memchr::memchr(b'<', &b[i..]) {
        i += p + 1;
        if b[i..].starts_with(b"!--") {
            i = memchr::memmem::find(&b[i + 3..], b"-->").map_or(len, |e| i + 3 + e + 3);
            continue;
        }
        if b.get(i) == Some(&b'/') && b.get(i + 1).is_some_and(u8::is_ascii_alphabetic) {
            let name_start = i + 1;
            let mut name_end = name_start;
            while name_end < len && !ws(b[name_end]) && b[name_end] != b'/' && b[name_end] != b'>' {
                name_end += 1;
            }
            let gt = memchr::memchr(b'>', &b[name_end..]).map_or(len, |e| name_end + e);
            if nesting.end(&b[name_start..name_end]) == Act::Drop {
                let o = out.get_or_insert_with(|| String::with_capacity(html.len()));
                o.push_str(&html[copied..i - 1]);
                copied = (gt + 1).min(len);
            }
            i = gt.min(len);
            continue;
        }
        if !b.get(i).is_some_and(u8::is_ascii_alphabetic) {
            continue;
        }
        let name_start = i;
        while i < len && !ws(b[i]) && b[i] != b'/' && b[i] != b'>' {
            i += 1;
        }
        let name_end = i;
        let is_div = b[name_start..name_end].eq_ignore_ascii_case(b"div");
        let is_script = b[name_start..name_end].eq_ignore_ascii_case(b"script");
        let keep_all = keeps_all_attributes(&b[name_start..name_end]);
        unread.clear();
        let mut count = 0usize;
        let (mut hidden, mut segment, mut cut) = (None, false, None::<(usize, usize)>);
        // A script that states a JSON type (JSON-LD, JSON data) is read later: never blanked.
        let mut json = false;
        loop {
            // A dropped attribute takes the space before it along.
            let lead = i;
            while i < len && (ws(b[i]) || b[i] == b'/') {
                i += 1;
            }
            if i >= len || b[i] == b'>' {
                break;
            }
            let name_at = i;
            // The first character of a name may be anything but space, `/` and `>`, even `=`.
            i += utf8_len(b[i]);
            while i < len && !ws(b[i]) && !matches!(b[i], b'/' | b'>' | b'=') {
                i += 1;
            }
            let name = &b[name_at..i];
            let mut j = i;
            while j < len && ws(b[j]) {
                j += 1;
            }
            if j < len && b[j] == b'=' {
                j += 1;
                while j < len && ws(b[j]) {
                    j += 1;
                }
                let value_at = j + usize::from(matches!(b.get(j), Some(b'"' | b'\'')));
                if is_div && name.eq_ignore_ascii_case(b"id") {
                    segment = b[value_at..].starts_with(b"S:");
                }
                let value_start = j;
                match b.get(j) {
                    Some(&q) if q == b'"' || q == b'\'' => {
                        j = memchr::memchr(q, &b[j + 1..]).map_or(len, |e| j + 1 + e + 1);
                    }
                    _ => {
                        while j < len && !ws(b[j]) && b[j] != b'>' {
                            j += 1;
                        }
                    }
                }
                if is_script && name.eq_ignore_ascii_case(b"type") {
                    json = memchr::memmem::find(&b[value_start..j].to_ascii_lowercase(), b"json")
                        .is_some();
                }
                i = j;
            }
            count += 1;
            total += 1;
            if count > MAX_ATTRS_PER_TAG || total > MAX_ATTRS_PER_PAGE {
                cut = Some((cut.map_or(lead, |c| c.0), i));
            } else if is_div && name.eq_ignore_ascii_case(b"hidden") {
                hidden = Some((lead, i));
            } else if !keep_all && !is_read(name) {
                // The space before it stays: it may be all that separates its neighbours.
                unread.push((name_at, i));
            }
        }
        let mut remove = |from: usize, to: usize| {
            let o = out.get_or_insert_with(|| String::with_capacity(html.len()));
            o.push_str(&html[copied..from]);
            copied = to;
        };
        let self_closing = i < len && b[i - 1] == b'/';
        if nesting.start(&b[name_start..name_end], self_closing) == Act::Drop {
            // Too deep: the whole tag goes, its text stays in the deepest kept element.
            remove(name_start - 1, (i + 1).min(len));
            continue;
        }
        // In source order: unread attributes come before the cut, and none is `hidden`.
        if let Some(h) = hidden.filter(|_| segment) {
            let at = unread.partition_point(|u| u.0 < h.0);
            unread.insert(at, h);
        }
        unread.extend(cut);
        for &(from, to) in &unread {
            remove(from, to);
        }
        // Raw-text elements end only at their end tag, as in the tokenizer: markup-like text
        // inside them must not shift what the guard takes for tags.
        let name = &b[name_start..name_end];
        let blank = ((is_script && !json) || name.eq_ignore_ascii_case(b"style"))
            && !self_closing
            && !nesting.in_foreign();
        if blank && i < len {
            // Script and style text is never shown and every later step drops it (the
            // extractor removes both elements first): the parser need not tokenize it.
            if let Some(end) = raw_text_end(b, i + 1, name) {
                if end > i + 1 {
                    remove(i + 1, end);
                }
                i = end;
                continue;
            }
        }
        if name.eq_ignore_ascii_case(b"svg") && !self_closing && i < len {
            // An icon's paths are not text: a drawing without text elements is emptied.
            if let Some(end) = drawing_end(b, i + 1) {
                if end > i + 1 {
                    remove(i + 1, end);
                }
                i = end;
                continue;
            }
        }
        if RAW_TEXT.iter().any(|r| r.eq_ignore_ascii_case(name)) {
            i = end_tag(b, i, name);
        }
    }
    match out {
        None => Cow::Borrowed(html),
        Some(mut o) => {
            o.push_str(&html[copied..]);
            Cow::Owned(o)
        }
    }
}

/// Returns whether an attribute is read after the guard: by the HTML parser's tree builder
/// (`type` of `input`, `color`/`face`/`size` of `font`, `encoding` of `annotation-xml`,
/// declarative shadow roots), by the extractor (dom_smoothie: visibility, class and id
/// weights, roles, bylines, link density, tables, direction, metadata) or by our own walks
/// (titles, structured sources, the block model). Every other attribute of a page is dropped
/// before parsing: tokenizing, interning and copying them was a quarter of the parser's input.
fn is_read(name: &[u8]) -> bool {
    const READ: &[&[u8]] = &[
        b"id",
        b"class",
        b"style",
        b"hidden",
        b"aria-hidden",
        b"aria-modal",
        b"role",
        b"itemprop",
        b"rel",
        b"href",
        b"type",
        b"name",
        b"property",
        b"content",
        b"lang",
        b"dir",
        b"colspan",
        b"summary",
        b"datatable",
        b"encoding",
        b"color",
        b"face",
        b"size",
        b"charset",
        b"http-equiv",
    ];
    const PREFIXES: &[&[u8]] = &[b"data-readability", b"shadowroot", b"xmlns"];
    READ.iter().any(|r| r.eq_ignore_ascii_case(name))
        || PREFIXES
            .iter()
            .any(|p| name.len() >= p.len() && name[..p.len()].eq_ignore_ascii_case(p))
}

/// Returns whether an element keeps all its attributes: the extractor reads any attribute of
/// images and embeds (lazy-image sources, image file names, video addresses).
fn keeps_all_attributes(tag: &[u8]) -> bool {
    const MEDIA: &[&[u8]] = &[
        b"img",
        b"picture",
        b"source",
        b"figure",
        b"video",
        b"audio",
        b"track",
        b"embed",
        b"object",
        b"param",
        b"iframe",
        b"noscript",
    ];
    MEDIA.iter().any(|m| m.eq_ignore_ascii_case(tag))
}

/// Elements whose content the HTML tokenizer reads as text up to their end tag.
const RAW_TEXT: &[&[u8]] = &[
    b"script",
    b"style",
    b"title",
    b"textarea",
    b"xmp",
    b"iframe",
    b"noembed",
    b"noframes",
];

/// Returns where `</name` starts at or after `from` (any case), or the end of `b`.
fn end_tag(b: &[u8], mut from: usize, name: &[u8]) -> usize {
    while let Some(p) = memchr::memmem::find(&b[from.min(b.len())..], b"</") {
        let at = from + p;
        if b.len() >= at + 2 + name.len()
            && b[at + 2..at + 2 + name.len()].eq_ignore_ascii_case(name)
        {
            return at;
        }
        from = at + 2;
    }
    b.len()
}

/// Returns where the tokenizer ends the raw text of a `name` element whose content starts at
/// `from`: the first `</name` followed by whitespace, `/` or `>`. `None` when there is none, or
/// when a script holds `<!--` before it (the tokenizer's escaped states may then read past it).
fn raw_text_end(b: &[u8], from: usize, name: &[u8]) -> Option<usize> {
    let mut at = from;
    loop {
        let p = memchr::memmem::find(&b[at..], b"</")?;
        let tag = at + p;
        let after = tag + 2 + name.len();
        if b.len() > after
            && b[tag + 2..after].eq_ignore_ascii_case(name)
            && matches!(
                b[after],
                b' ' | b'\t' | b'\n' | b'\r' | b'\x0c' | b'/' | b'>'
            )
        {
            let escaped = name.eq_ignore_ascii_case(b"script")
                && memchr::memmem::find(&b[from..tag], b"<!--").is_some();
            return (!escaped).then_some(tag);
        }
        at = tag + 2;
    }
}

/// Returns where the `</svg` closing an `svg` element whose content starts at `from` begins,
/// when that content holds no nested `svg`, no text elements (`text`, `title`, `desc`,
/// `foreignObject`), no comment or CDATA section and no character data but whitespace.
fn drawing_end(b: &[u8], from: usize) -> Option<usize> {
    let end = from + memchr::memmem::find(&b[from..], b"</svg")?;
    let content = &b[from..end];
    let mut at = 0;
    while let Some(p) = memchr::memchr(b'<', &content[at..]) {
        if !content[at..at + p].iter().all(u8::is_ascii_whitespace) {
            return None;
        }
        let tag = &content[at + p + 1..];
        let name_len = tag
            .iter()
            .position(|&c| c.is_ascii_whitespace() || matches!(c, b'/' | b'>'))
            .unwrap_or(tag.len());
        let name = if tag.first() == Some(&b'/') {
            let n = &tag[1..];
            &n[..n
                .iter()
                .position(|&c| c.is_ascii_whitespace() || c == b'>')
                .unwrap_or(n.len())]
        } else {
            &tag[..name_len]
        };
        if name.is_empty()
            || !name[0].is_ascii_alphabetic()
            || [&b"svg"[..], b"text", b"title", b"desc", b"foreignobject"]
                .iter()
                .any(|t| t.eq_ignore_ascii_case(name))
        {
            return None;
        }
        // Quoted attribute values may hold `>`.
        let mut k = at + p + 1;
        let mut quote = None;
        loop {
            let c = *content.get(k)?;
            match quote {
                Some(q) if c == q => quote = None,
                Some(_) => {}
                None if c == b'"' || c == b'\'' => quote = Some(c),
                None if c == b'>' => break,
                None => {}
            }
            k += 1;
        }
        at = k + 1;
    }
    content[at..]
        .iter()
        .all(u8::is_ascii_whitespace)
        .then_some(end)
}

/// Length of the UTF-8 sequence a lead byte starts (1 for continuation bytes, never 0).
fn utf8_len(lead: u8) -> usize {
    match lead {
        0xf0..=0xff => 4,
        0xe0..=0xef => 3,
        0xc0..=0xdf => 2,
        _ => 1,
    }
}

#[cfg(test)]
#[path = "markup_tests.rs"]
mod tests;
