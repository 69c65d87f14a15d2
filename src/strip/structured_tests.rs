use super::*;

const PARA: &str = "The council met on Tuesday and agreed on a new budget for the schools of the town, after a long debate that lasted well into the night.";
const PARA2: &str = "Members said the plan would take effect next year and that more money would go to teachers and to the repair of old buildings.";

fn page(head: &str, body: &str) -> Document {
    Document::from(format!(
        "<html><head><title>T</title>{head}</head><body>{body}</body></html>"
    ))
}

fn kinds(c: &[Candidate]) -> Vec<SourceKind> {
    c.iter().map(|c| c.kind).collect()
}

#[test]
fn json_ld_article_body_is_read_from_typed_objects_and_graphs() {
    let direct = format!(
        r#"<script type="application/ld+json">{{"@type":"NewsArticle","headline":"H","articleBody":"{PARA}\n{PARA2}"}}</script>"#
    );
    let c = collect(&page(&direct, "<p>x</p>"));
    assert_eq!(kinds(&c), [SourceKind::JsonLd]);
    assert_eq!(c[0].text, format!("{PARA}\n{PARA2}"));

    let graph = format!(
        r#"<script type="application/ld+json">{{"@context":"https://schema.org","@graph":[{{"@type":"WebPage","articleBody":"not this"}},{{"@type":["BlogPosting"],"articleBody":"<p>{PARA}</p><p>Tom &amp; Jerry.</p>"}}]}}</script>"#
    );
    let c = collect(&page(&graph, ""));
    assert_eq!(kinds(&c), [SourceKind::JsonLd]);
    assert_eq!(c[0].text, format!("{PARA}\nTom & Jerry."));

    // Untyped objects, other types, broken JSON and other script types give nothing.
    let none = r#"<script type="application/ld+json">{"@type":"Product","articleBody":"a"}</script>
            <script type="application/ld+json">{"articleBody": broken</script>
            <script>var articleBody = "no";</script>"#;
    assert!(collect(&page(none, "")).is_empty());
}

#[test]
fn itemprop_and_a_single_article_element_are_candidates() {
    let body = format!(
        r#"<nav><a href="/">Home</a></nav><article><h1>Head</h1><div itemprop="articleBody"><p>{PARA}</p><script>no()</script><p>{PARA2}</p></div><div class="share">Share</div></article><footer>(c)</footer>"#
    );
    let c = collect(&page("", &body));
    assert_eq!(kinds(&c), [SourceKind::ItemProp, SourceKind::Article]);
    assert_eq!(c[0].text, format!("{PARA}\n{PARA2}"));
    assert_eq!(c[1].text, format!("Head\n{PARA}\n{PARA2}\nShare"));
    // Two `<article>`s are a teaser list: no candidate.
    let list = format!("<article><p>{PARA}</p></article><article><p>{PARA2}</p></article>");
    assert!(collect(&page("", &list)).is_empty());
}

#[test]
fn the_walk_reads_script_types_and_itemprops_in_any_case_and_skips_opaque_elements() {
    let ld = format!(r#"{{"@type":"NewsArticle","articleBody":"{PARA}"}}"#);
    // A JSON-LD script whose type is in upper case, and an itemprop among other tokens.
    let body = format!(
        r#"<script type="Application/LD+JSON">{ld}</script><div itemprop="text ARTICLEBODY"><p>{PARA2}</p></div>"#
    );
    let c = collect(&page("", &body));
    assert_eq!(kinds(&c), [SourceKind::JsonLd, SourceKind::ItemProp]);
    assert_eq!(c[0].text, PARA);
    assert_eq!(c[1].text, PARA2);
    // Nothing inside a template, a style or a drawing counts, nor another script type.
    let hidden = format!(
        r#"<template><article><p>{PARA}</p></article></template><svg><g itemprop="articleBody"><text>{PARA2}</text></g></svg><script type="text/json">{ld}</script>"#
    );
    assert!(collect(&page("", &hidden)).is_empty());
}

#[test]
fn agreement_takes_the_tighter_body_and_refuses_teasers_and_wrappers() {
    let rule = Agreement {
        agree: 0.9,
        min_share: 0.5,
    };
    let readability = format!("{PARA}\n{PARA2}\nShare this on Facebook\nRelated: schools");
    let body = Candidate {
        kind: SourceKind::JsonLd,
        text: format!("{PARA}\n{PARA2}"),
    };
    let teaser = Candidate {
        kind: SourceKind::JsonLd,
        text: "The council met on Tuesday.".into(),
    };
    let wrapper = Candidate {
        kind: SourceKind::Article,
        text: format!("{readability}\nComments (3)\nLog in to reply to this story now"),
    };
    let other = Candidate {
        kind: SourceKind::Article,
        text: "A different story about the weather, which was fine and sunny all week long.".into(),
    };
    let found = |cs: &[Candidate]| agreeing(cs, &readability, &rule).map(|c| c.text.clone());
    assert_eq!(found(std::slice::from_ref(&body)), Some(body.text.clone()));
    assert_eq!(found(std::slice::from_ref(&teaser)), None);
    assert_eq!(found(std::slice::from_ref(&wrapper)), None);
    assert_eq!(found(&[other]), None);
    // The cascade goes on past a teaser to the next source.
    assert_eq!(found(&[teaser, wrapper, body.clone()]), Some(body.text));
}

/// A news page whose readability candidate holds a credit line and a related-story line
/// inside the article's container; `ld` goes into the head.
fn news_page(ld: &str) -> String {
    let paras: String = [PARA, PARA2, PARA, PARA2]
        .iter()
        .enumerate()
        .map(|(i, p)| format!("<p>{i}. {p}</p>"))
        .collect();
    format!(
        r#"<html><head><title>Budget passes</title>{ld}</head><body><nav><a href="/">Home</a> <a href="/n">News</a></nav>
            <div class="content"><h1>Budget passes</h1>{paras}<p>Pictures by the Town News photo desk, all rights reserved for this edition.</p><p>You may also like our story on the new swimming pool of the town.</p></div>
            <footer>Copyright 2026 Town News</footer></body></html>"#
    )
}

fn strip(html: &str, structured: bool) -> String {
    let config = super::super::StripConfig {
        html_structured: structured,
        ..Default::default()
    };
    let stripper = super::super::Stripper::new(&config, None).unwrap();
    let doc = crate::model::RawDoc {
        id: "x".into(),
        format: crate::model::Format::Html,
        body: html.into(),
        source_key: "town.example".into(),
    };
    stripper.strip(&doc).text
}

fn body_json() -> String {
    [PARA, PARA2, PARA, PARA2]
        .iter()
        .enumerate()
        .map(|(i, p)| format!("{i}. {p}"))
        .collect::<Vec<_>>()
        .join("\\n")
}

#[test]
fn stripper_takes_the_json_ld_body_when_it_agrees() {
    let ld = format!(
        r#"<script type="application/ld+json">{{"@type":"NewsArticle","articleBody":"{}"}}</script>"#,
        body_json()
    );
    let off = strip(&news_page(&ld), false);
    assert!(
        off.contains("photo desk"),
        "readability keeps the credit: {off}"
    );
    let on = strip(&news_page(&ld), true);
    assert_eq!(on, body_json().replace("\\n", "\n"));
}

#[test]
fn stripper_takes_the_body_from_a_json_ld_graph() {
    let ld = format!(
        r#"<script type="application/ld+json">{{"@context":"https://schema.org","@graph":[{{"@type":"Organization","name":"Town News"}},{{"@type":"WebPage","name":"Budget passes"}},{{"@type":"Article","headline":"Budget passes","articleBody":"{}"}}]}}</script>"#,
        body_json()
    );
    let on = strip(&news_page(&ld), true);
    assert_eq!(on, body_json().replace("\\n", "\n"));
}

/// A JSON-LD block whose `articleBody` is the first paragraph alone.
fn teaser_json_ld() -> String {
    format!(
        r#"<script type="application/ld+json">{{"@type":"NewsArticle","articleBody":"0. {PARA}"}}</script>"#
    )
}

#[test]
fn stripper_keeps_readability_when_the_json_ld_body_is_a_teaser() {
    let page = news_page(&teaser_json_ld());
    let on = strip(&page, true);
    assert_eq!(on, strip(&page, false));
    assert!(on.contains(PARA2), "{on}");
}

/// A page whose paragraphs sit in separate tables between ads: readability's candidate is
/// the first paragraph alone, a quarter of the article.
fn split_page(ld: &str) -> String {
    let tables: String = [PARA, PARA2, PARA, PARA2]
        .iter()
        .enumerate()
        .map(|(i, p)| {
            format!(
                "<table><tr><td>{i}. {p}</td></tr></table><div class=ad><a href=/x>Ad</a></div>"
            )
        })
        .collect();
    format!(
        r#"<html><head><title>Budget passes</title>{ld}</head><body><nav><a href="/">Home</a> <a href="/n">News</a></nav>{tables}<footer>Copyright 2026 Town News</footer></body></html>"#
    )
}

#[test]
fn a_long_json_ld_body_replaces_a_poor_readability_candidate() {
    let ld = format!(
        r#"<script type="application/ld+json">{{"@type":"NewsArticle","articleBody":"{}"}}</script>"#,
        body_json()
    );
    let page = split_page(&ld);
    let main = super::super::html::parse_page(&page, true, false)
        .main
        .unwrap();
    assert_eq!(
        main,
        format!("0. {PARA}"),
        "readability's candidate is poor"
    );
    // Without the cascade the plain-text pass decides, and the ad links stay.
    let off = strip(&page, false);
    assert!(off.contains(PARA2) && off.contains("\nAd\n"), "{off}");
    assert_eq!(strip(&page, true), body_json().replace("\\n", "\n"));
}

#[test]
fn a_teaser_json_ld_body_leaves_a_poor_candidate_to_the_plain_text_pass() {
    let page = split_page(&teaser_json_ld());
    let on = strip(&page, true);
    assert_eq!(on, strip(&page, false));
    assert!(on.contains(PARA2), "{on}");
}
