//! Owns the structured sources of the HTML path: the article body a page states in its own
//! markup (JSON-LD `articleBody`, an `itemprop=articleBody` element, a single `<article>`), and
//! the rule that weighs one of them against the readability candidate.
//!
//! Publishers write these sources for search engines and feed readers, so when one of them holds
//! the text readability found, it is usually that text without the share bars, captions and
//! related links readability kept. It can also be a teaser (a JSON-LD body cut after a
//! paragraph) or a wrapper that holds comments and footers (an `<article>` around the whole
//! page); the agreement rule below tells these apart from the article.
//!
//! When the readability candidate is poor (it keeps less than `html_fallback_ratio` of what the
//! plain-text pass keeps), the first structured source at least that large replaces the
//! plain-text pass as the fallback ([`super::Stripper`]'s HTML path).

use dom_query::{local_name, Document, NodeData};
use xxhash_rust::xxh3::xxh3_64;

/// Where a structured candidate came from, in the order the cascade tries them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    JsonLd,
    ItemProp,
    Article,
}

/// One structured candidate: its text, one block per line.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub kind: SourceKind,
    pub text: String,
}

/// The thresholds of the agreement rule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Agreement {
    /// Share of the candidate's words the readability candidate must also hold.
    pub agree: f32,
    /// Smallest size of the candidate, in words, as a share of the readability candidate's
    /// (below it the candidate is a teaser or a fragment).
    pub min_share: f32,
}

/// JSON-LD `@type`s whose `articleBody` is the article (schema.org's Article and its subtypes).
fn is_article_type(t: &str) -> bool {
    t.ends_with("Article") || t.ends_with("BlogPosting") || t == "Report"
}

/// Returns the page's structured candidates in cascade order (JSON-LD, itemprop, `<article>`),
/// each only when the page has one that is not empty.
pub fn collect(doc: &Document) -> Vec<Candidate> {
    collect_with(doc, None)
}

/// What the walk of [`collect_with`] makes of a node.
enum Seen {
    /// A `<script>`, and whether it is JSON-LD; the walk does not go into it.
    Script(bool),
    /// A `<style>`, `<template>` or `<svg>`, which the walk does not go into.
    Opaque,
    /// Another element: whether it is an `<article>`, and whether its `itemprop` names the
    /// article body.
    Element { article: bool, body: bool },
    /// Not an element.
    Other,
}

/// [`collect`]; with `ld_bodies`, also appends every `articleBody` string of the page's JSON-LD
/// scripts (whatever the object's type) to it, one per line, as the block model reads them.
pub fn collect_with(doc: &Document, mut ld_bodies: Option<&mut String>) -> Vec<Candidate> {
    let mut scripts = Vec::new();
    let mut itemprops = Vec::new();
    let mut articles = Vec::new();
    // One walk over the whole tree; elements cannot nest deeper than the guard's cap, but the
    // stack is explicit all the same.
    let mut stack = vec![doc.root()];
    while let Some(node) = stack.pop() {
        // One look at the node, borrowing its name and attributes rather than copying them.
        let seen = node.query(|n| match &n.data {
            NodeData::Element(e) => {
                let name = &e.name.local;
                if *name == local_name!("script") {
                    Seen::Script(
                        e.attr_ref(local_name!("type"))
                            .is_some_and(|t| t.to_ascii_lowercase().contains("ld+json")),
                    )
                } else if *name == local_name!("style")
                    || *name == local_name!("template")
                    || *name == local_name!("svg")
                {
                    Seen::Opaque
                } else {
                    Seen::Element {
                        article: *name == local_name!("article"),
                        body: e.attr_ref(local_name!("itemprop")).is_some_and(|v| {
                            v.split_ascii_whitespace()
                                .any(|t| t.eq_ignore_ascii_case("articleBody"))
                        }),
                    }
                }
            }
            _ => Seen::Other,
        });
        match seen.unwrap_or(Seen::Other) {
            Seen::Script(json_ld) => {
                if json_ld {
                    scripts.push(node);
                }
                continue;
            }
            Seen::Opaque => continue,
            Seen::Element { article, body } => {
                if article {
                    articles.push(node);
                }
                if body {
                    itemprops.push(node);
                }
            }
            Seen::Other => {}
        }
        stack.extend(node.children_it(true));
    }
    let mut out = Vec::new();
    let json_ld = scripts
        .iter()
        .filter_map(|s| {
            let v: serde_json::Value = serde_json::from_str(s.text().trim()).ok()?;
            if let Some(out) = ld_bodies.as_deref_mut() {
                push_article_bodies(&v, out);
            }
            json_ld_value_body(&v)
        })
        .max_by_key(|t| t.len());
    if let Some(text) = json_ld {
        out.push(Candidate {
            kind: SourceKind::JsonLd,
            text,
        });
    }
    // Several itemprop bodies are pieces of one article (pagination, live blogs): the largest
    // stands for them; several `<article>`s are a list of teasers, not one article.
    let itemprop = itemprops
        .iter()
        .map(|n| super::html::node_visible_text(n))
        .max_by_key(String::len);
    if let Some(text) = itemprop.filter(|t| !t.is_empty()) {
        out.push(Candidate {
            kind: SourceKind::ItemProp,
            text,
        });
    }
    if let [article] = articles[..] {
        let text = super::html::node_visible_text(&article);
        if !text.is_empty() {
            out.push(Candidate {
                kind: SourceKind::Article,
                text,
            });
        }
    }
    out
}

/// Calls `visit` on every object of a JSON-LD value (`@graph` and nested objects included), in
/// a bounded walk: JSON-LD graphs nest a few levels, never deeply on real pages.
pub fn json_ld_objects<'a>(
    v: &'a serde_json::Value,
    mut visit: impl FnMut(&'a serde_json::Map<String, serde_json::Value>),
) {
    let mut stack = vec![v];
    let mut budget = 10_000;
    while let Some(v) = stack.pop() {
        budget -= 1;
        if budget == 0 {
            break;
        }
        match v {
            serde_json::Value::Object(m) => {
                visit(m);
                stack.extend(m.values());
            }
            serde_json::Value::Array(a) => stack.extend(a.iter()),
            _ => {}
        }
    }
}

/// Returns the longest `articleBody` of an article-typed object in one JSON-LD script
/// (`@graph` and nested objects included), as plain text.
pub fn json_ld_body(script: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(script.trim()).ok()?;
    json_ld_value_body(&v)
}

/// Appends every `articleBody` string of a parsed JSON-LD script (whatever the object's type,
/// `@graph` and nested objects included) to `out`, one per line, as the block model reads them.
pub fn push_article_bodies(v: &serde_json::Value, out: &mut String) {
    json_ld_objects(v, |m| {
        if let Some(serde_json::Value::String(s)) = m.get("articleBody") {
            out.push_str(s);
            out.push('\n');
        }
    });
}

/// [`json_ld_body`] of a parsed script.
fn json_ld_value_body(v: &serde_json::Value) -> Option<String> {
    let mut best: Option<&str> = None;
    json_ld_objects(v, |m| {
        let typed = match m.get("@type") {
            Some(serde_json::Value::String(t)) => is_article_type(t),
            Some(serde_json::Value::Array(ts)) => {
                ts.iter().filter_map(|t| t.as_str()).any(is_article_type)
            }
            _ => false,
        };
        if let (true, Some(serde_json::Value::String(body))) = (typed, m.get("articleBody")) {
            if best.is_none_or(|b| body.len() > b.len()) {
                best = Some(body);
            }
        }
    });
    let body = best?;
    // Some publishers put markup or entities into the string: read it as a fragment then.
    let text = if body.contains(['<', '&']) {
        let doc = Document::from(body);
        let root = doc.body().unwrap_or_else(|| doc.root());
        super::html::node_visible_text(&root)
    } else {
        body.lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("\n")
    };
    (!text.is_empty()).then_some(text)
}

/// Word counts keyed by a word's hash (already a hash: foldhash, not SipHash, over it).
type Counts = foldhash::HashMap<u64, u32>;

/// Lower-cased word counts of a text (`\w+` runs, the benchmark's tokens), keyed by hash:
/// a collision only merges two words' counts, never more than that.
fn word_counts(text: &str) -> (Counts, u32) {
    let mut counts = Counts::default();
    let mut total = 0;
    for w in text
        .split(|c: char| !c.is_alphanumeric() && c != '_')
        .filter(|w| !w.is_empty())
    {
        let key = if w.chars().any(char::is_uppercase) {
            xxh3_64(w.to_lowercase().as_bytes())
        } else {
            xxh3_64(w.as_bytes())
        };
        *counts.entry(key).or_insert(0) += 1;
        total += 1;
    }
    (counts, total)
}

/// How a structured candidate relates to the readability candidate, in words.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Overlap {
    /// Share of the candidate's words also in the readability candidate (multiset).
    pub covered: f32,
    /// The candidate's size as a share of the readability candidate's.
    pub size: f32,
}

/// Measures `candidate` against the readability candidate's word counts.
fn overlap_with(candidate: &str, (r, nr): &(Counts, u32)) -> Overlap {
    let (c, nc) = word_counts(candidate);
    let shared: u32 = c
        .iter()
        .map(|(w, &n)| n.min(r.get(w).copied().unwrap_or(0)))
        .sum();
    Overlap {
        covered: if nc == 0 {
            0.0
        } else {
            shared as f32 / nc as f32
        },
        size: nc as f32 / (*nr).max(1) as f32,
    }
}

/// Measures `candidate` against `readability`.
pub fn overlap(candidate: &str, readability: &str) -> Overlap {
    overlap_with(candidate, &word_counts(readability))
}

/// Returns the first candidate, in cascade order, that agrees with the readability candidate:
/// nearly all of its words are readability's, and it is not a teaser of them. It is then the
/// article with less around it. A candidate larger than readability's adds text readability
/// judged to be boilerplate, so it must be the smaller or equal one.
pub fn agreeing<'c>(
    candidates: &'c [Candidate],
    readability: &str,
    rule: &Agreement,
) -> Option<&'c Candidate> {
    if candidates.is_empty() {
        return None;
    }
    let r = word_counts(readability);
    candidates.iter().find(|c| {
        let o = overlap_with(&c.text, &r);
        o.covered >= rule.agree && o.size >= rule.min_share && o.size <= 1.0
    })
}

#[cfg(test)]
#[path = "structured_tests.rs"]
mod tests;
