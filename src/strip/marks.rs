//! Owns what marks the parts of a page the visible-text walk ([`super::html`]) sets apart by
//! their markup: footers, figure captions, author boxes and disclaimers.

/// Returns whether an element named `name` is a footer: `<footer>` (a section's or the
/// page's) or the page's `role=contentinfo` landmark.
pub(super) fn is_footer(name: &str, e: &dom_query::Element) -> bool {
    name == "footer"
        || e.attrs
            .iter()
            .any(|a| &*a.name.local == "role" && a.value.trim().eq_ignore_ascii_case("contentinfo"))
}

/// Returns whether an element is a caption by its class (`wp-caption-text`, `photo-caption`,
/// `caption`): captions written before `<figcaption>`, or without it. The page's wrappers
/// (`body`, `main`, `article`) never are, nor state flags (`has-caption`). On wcxb-train such
/// elements hold 384 words of gold text against 20,798 that are not.
pub(super) fn is_caption(name: &str, e: &dom_query::Element) -> bool {
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
pub(super) fn is_author_box(name: &str, e: &dom_query::Element) -> bool {
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
pub(super) fn is_disclaimer(name: &str, e: &dom_query::Element) -> bool {
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
