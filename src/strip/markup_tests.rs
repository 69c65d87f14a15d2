//! Tests of the markup guard.

use super::*;

fn attrs(n: usize) -> String {
    (0..n).map(|i| format!(" a{i}=\"v>{i}\"")).collect()
}

#[test]
fn pages_under_the_cap_are_untouched() {
    let html = format!(
        "<div><img{}>é<p class=x id='y' hidden>t</p><!-- <a {} --></div>",
        attrs(10),
        attrs(100)
    );
    assert!(matches!(guard(&html), Cow::Borrowed(_)));
}

#[test]
fn attributes_past_the_cap_are_dropped_and_the_rest_is_kept() {
    let html = format!(
        "<p>before</p><object{} é=1 data-ü='ü'>text ü</object><p z=1>after</p>",
        attrs(1000)
    );
    let capped = guard(&html);
    let doc = dom_query::Document::from(capped.as_ref());
    let object = doc.select("object");
    assert_eq!(object.nodes()[0].attrs().len(), MAX_ATTRS_PER_TAG);
    assert_eq!(object.attr("a0").as_deref(), Some("v>0"));
    assert_eq!(object.text().as_ref(), "text ü");
    // `z` is read by nothing: dropped, with its paragraph kept.
    assert_eq!(doc.select("p").last().text().as_ref(), "after");
    assert!(capped.ends_with("<p >after</p>"));
    assert!(capped.contains("<p>before</p>"));
}

#[test]
fn streamed_react_segments_are_shown() {
    let html = "<div hidden id=\"S:0\"><p>Article</p></div><div hidden=\"\"><p>menu</p></div><div id=S:1 hidden class=x>y</div>";
    assert_eq!(
        guard(html),
        "<div id=\"S:0\"><p>Article</p></div><div hidden=\"\"><p>menu</p></div><div id=S:1 class=x>y</div>"
    );
}

#[test]
fn markup_inside_raw_text_does_not_hide_a_wide_tag() {
    let html = format!(
        "<title><x a=\"</title><object{}>t</object>\"></x>",
        attrs(1000)
    );
    let capped = guard(&html);
    let doc = dom_query::Document::from(capped.as_ref());
    assert_eq!(
        doc.select("object").nodes()[0].attrs().len(),
        MAX_ATTRS_PER_TAG
    );
    let script = "<script>if (a<b && c > \"d\") {}</script><p>x</p>";
    assert_eq!(guard(script), "<script></script><p>x</p>");
}

#[test]
fn script_and_style_text_is_blanked_but_json_and_escaped_scripts_stay() {
    let ld = r#"<script type="application/ld+json">{"articleBody":"<p>a</p>"}</script>"#;
    let html = format!(
        "<head><STYLE>p {{ x: '</p>' }}</STYLE >{ld}<script src=a.js></script></head>\
         <body><script>var s = '</scripts>';</script/><p>Text</p>\
         <script><!-- document.write('<script>x</script>') --></script><p>More</p>\
         <svg><style>.a{{}}</style></svg><script>unclosed"
    );
    let out = guard(&html);
    assert_eq!(
        out,
        format!(
            "<head><STYLE></STYLE >{ld}<script ></script></head>\
             <body><script></script/><p>Text</p>\
             <script><!-- document.write('<script>x</script>') --></script><p>More</p>\
             <svg><style>.a{{}}</style></svg><script>unclosed"
        )
    );
    // The parser finds the same paragraphs.
    let paras = |h: &str| dom_query::Document::from(h).select("p").text().to_string();
    assert_eq!(paras(&out), paras(&html));
    assert_eq!(paras(&out), "TextMore");
}

#[test]
fn drawings_without_text_are_emptied() {
    let icon = r#"<svg viewBox="0 0 9 9"><path d="M0 0>1"/> <g><circle r=1 /></g></svg>"#;
    let titled = "<svg><title>Share</title><path d=x /></svg>";
    let nested = "<svg><svg><path/></svg></svg>";
    let stray = "<svg>text<path/></svg>";
    let html = format!("<p>a{icon}b</p>{titled}{nested}{stray}<svg/><p>c</p>");
    // The outer drawing holds another: only the inner one is emptied.
    let want = format!(
        r#"<p>a<svg ></svg>b</p><svg><title>Share</title><path  /></svg><svg><svg></svg></svg>{stray}<svg/><p>c</p>"#
    );
    assert_eq!(guard(&html), want);
    for unclosed in ["<svg><path id='>", "<svg><path", "<svg>"] {
        assert_eq!(guard(unclosed), unclosed);
    }
}

#[test]
fn unread_attributes_are_dropped_and_read_ones_kept() {
    let html = r#"<div data-x="1>"class=a onclick='f()' ID=b><img data-src=x.jpg alt=y><a href=/x target=_blank>t</a><input type=hidden title=z></div>"#;
    assert_eq!(
        guard(html),
        r#"<div class=a  ID=b><img data-src=x.jpg alt=y><a href=/x >t</a><input type=hidden ></div>"#
    );
    // The parser builds the same tree; only unread attributes are missing.
    let page = r#"<html lang=en><head><meta property="og:title" content="T"></head><body>
        <div id=a class="post lazy" style="display:none" data-track=1 aria-hidden=true role=main>
        <p itemprop=articleBody hidden data-v-1a2b>x<font color=red><b>y</b></font></p>
        <svg viewBox="0 0 9 9"><text x=1>z</text><path d=M0/></svg>
        <table summary=s datatable=0><tr><td colspan=2 width=9>w</td></tr></table>
        <template shadowrootmode=open><span>v</span></template></div></body></html>"#;
    let (before, after) = (
        dom_query::Document::from(page),
        dom_query::Document::from(guard(page).as_ref()),
    );
    assert!(before.html().contains("data-track") && !after.html().contains("data-track"));
    // The original tree with its unread attributes taken out is the guarded page's tree.
    for n in before.select("*").nodes() {
        for a in n.attrs() {
            if !is_read(a.name.local.as_bytes()) {
                n.remove_attr(&a.name.local);
            }
        }
    }
    assert_eq!(before.html(), after.html());
    assert_eq!(
        after.select("div").attr("style").as_deref(),
        Some("display:none")
    );
}

#[test]
fn unterminated_markup_does_not_panic() {
    for html in [
        "<a b=\"",
        "<a b='x",
        "<a ",
        "<a b= ",
        "<a\u{e9}=1 \u{e9}",
        "<!--",
        "<",
    ] {
        let many = format!("<x{}{html}", attrs(MAX_ATTRS_PER_TAG + 2));
        let _ = guard(&many);
        let _ = guard(html);
    }
}
