//! Owns what marks the parts of a page the visible-text walk ([`super::html`]) sets apart by
//! their markup: footers, figure captions, author boxes and disclaimers.
//!
//! These run on every element of the page, so each first looks for its word in the element's
//! class (and id) with [`holds`], a vectorised search that rejects nearly every element before
//! the exact test splits a value into tokens.

use dom_query::{local_name, Element};

/// Returns whether an element named `name` is a footer: `<footer>` (a section's or the
/// page's) or the page's `role=contentinfo` landmark.
pub(super) fn is_footer(name: &str, e: &Element) -> bool {
    name == "footer"
        || e.attrs.iter().any(|a| {
            a.name.local == local_name!("role")
                && a.value.trim().eq_ignore_ascii_case("contentinfo")
        })
}

/// Returns whether an element is a caption by its class (`wp-caption-text`, `photo-caption`,
/// `caption`): captions written before `<figcaption>`, or without it. The page's wrappers
/// (`body`, `main`, `article`) never are, nor state flags (`has-caption`). On wcxb-train such
/// elements hold 384 words of gold text against 20,798 that are not.
pub(super) fn is_caption(name: &str, e: &Element) -> bool {
    if is_wrapper(name) {
        return false;
    }
    e.attrs.iter().any(|a| {
        a.name.local == local_name!("class")
            && holds(a.value.as_bytes(), b"caption")
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
pub(super) fn is_author_box(name: &str, e: &Element) -> bool {
    if is_wrapper(name) {
        return false;
    }
    // No allocation: this runs on every element of the page.
    let names = || {
        e.attrs
            .iter()
            .filter(|a| is_class_or_id(&a.name.local))
            .map(|a| a.value.as_bytes())
    };
    names().any(|v| holds(v, b"author"))
        && names().any(|v| {
            [&b"bio"[..], b"box", b"about", b"desc", b"profile", b"card"]
                .iter()
                .any(|w| holds(v, w))
        })
}

/// Returns whether an element is a disclaimer by its class or id (`disclaimer`,
/// `post-disclaimer`, `affiliate_disclaimer`: a word of a token split at `-` and `_`). The page's
/// wrappers (`body`, `main`, `article`) never are. A disclaimer is the publisher's legal notice,
/// not the article: on wcxb-train 13 four-word shingles of the text of such elements that the
/// extractor kept are in the gold, 785 are not (8 sites against 1).
pub(super) fn is_disclaimer(name: &str, e: &Element) -> bool {
    if is_wrapper(name) {
        return false;
    }
    e.attrs.iter().any(|a| {
        is_class_or_id(&a.name.local)
            && holds(a.value.as_bytes(), b"disclaimer")
            && a.value.split_ascii_whitespace().any(|t| {
                !is_state_flag(t)
                    && t.split(['-', '_'])
                        .any(|part| part.eq_ignore_ascii_case("disclaimer"))
            })
    })
}

/// Returns whether an attribute is `class` or `id` (atoms: an integer comparison each).
fn is_class_or_id(name: &dom_query::LocalName) -> bool {
    *name == local_name!("class") || *name == local_name!("id")
}

/// Returns whether an element named `name` is one of the page's wrappers, which the marks above
/// never set apart.
fn is_wrapper(name: &str) -> bool {
    matches!(name, "body" | "html" | "main" | "article")
}

/// Returns whether `hay` holds `word` (ASCII, lower case) as a substring, ignoring ASCII case: a
/// vectorised search for its first letter, then a comparison of the rest where it is found.
pub(super) fn holds(hay: &[u8], word: &[u8]) -> bool {
    let Some((&first, rest)) = word.split_first() else {
        return true;
    };
    let mut from = 0;
    while let Some(p) = memchr::memchr2(first, first.to_ascii_uppercase(), &hay[from..]) {
        let at = from + p + 1;
        match hay.get(at..at + rest.len()) {
            Some(next) if next.eq_ignore_ascii_case(rest) => return true,
            Some(_) => from = at,
            None => return false,
        }
    }
    false
}

/// Returns whether a class token is a state flag (`has-caption`, `no-disclaimer`), which names
/// what an element holds or lacks rather than what it is.
fn is_state_flag(t: &str) -> bool {
    ["has-", "no-", "with-", "is-"]
        .iter()
        .any(|p| t.len() >= p.len() && t.as_bytes()[..p.len()].eq_ignore_ascii_case(p.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_finds_a_word_in_any_case_anywhere() {
        for (hay, word, want) in [
            ("wp-caption-text", "caption", true),
            ("Photo-CAPTION", "caption", true),
            ("caption", "caption", true),
            ("xcaptio", "caption", false),
            ("capcaption", "caption", true),
            ("ccccaption", "caption", true),
            ("captio", "caption", false),
            ("", "caption", false),
            ("post_Disclaimer", "disclaimer", true),
            ("authorbox", "box", true),
            ("author vcard", "card", true),
            ("Cárd", "card", false),
            ("écaption", "caption", true),
            ("x", "", true),
        ] {
            assert_eq!(holds(hay.as_bytes(), word.as_bytes()), want, "{hay} {word}");
            // The same answer as a comparison at every position.
            let slow = hay
                .as_bytes()
                .windows(word.len().max(1))
                .any(|w| word.is_empty() || w.eq_ignore_ascii_case(word.as_bytes()));
            assert_eq!(want, slow || word.is_empty(), "{hay} {word}");
        }
    }
}
