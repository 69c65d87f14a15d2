//! Owns the HTML side: main-content extraction with a maintained extractor, page titles, visible text.

use dom_query::{Document, NodeRef};

/// Which main-content extractor the HTML path runs.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    serde::Serialize,
    serde::Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "snake_case")]
pub enum Extractor {
    /// rs-trafilatura: a port of trafilatura's main-content heuristics.
    #[default]
    Trafilatura,
    /// dom_smoothie: a port of Mozilla Readability.
    Readability,
}

/// Main content of a page: its title and the body text with one block per line.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MainContent {
    pub title: String,
    pub text: String,
}

/// Extracts the main content of `html`; `None` when the extractor finds none.
pub fn extract(html: &str, extractor: Extractor) -> Option<MainContent> {
    match extractor {
        Extractor::Trafilatura => {
            let opts = rs_trafilatura::Options {
                include_comments: false,
                ..Default::default()
            };
            let r = rs_trafilatura::extract_with_options(html, &opts).ok()?;
            Some(MainContent {
                title: r.metadata.title.unwrap_or_default(),
                text: r.content_text,
            })
        }
        Extractor::Readability => {
            let cfg = dom_smoothie::Config {
                text_mode: dom_smoothie::TextMode::Formatted,
                ..Default::default()
            };
            let mut r = dom_smoothie::Readability::new(html, None, Some(cfg)).ok()?;
            let a = r.parse().ok()?;
            Some(MainContent {
                title: a.title,
                text: a.text_content.to_string(),
            })
        }
    }
}

/// Returns the page title: `og:title` when present, else `<title>`, whitespace collapsed.
pub fn page_title(doc: &Document) -> String {
    let og = doc.select("meta[property='og:title']").attr("content");
    let raw = match og {
        Some(t) if !t.trim().is_empty() => t.to_string(),
        _ => doc.select("title").text().to_string(),
    };
    raw.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Returns (title, visible text) of a page: all text outside invisible elements, one block per line.
pub fn visible_text(html: &str) -> (String, String) {
    let doc = Document::from(html);
    let title = page_title(&doc);
    let mut out = String::with_capacity(html.len() / 4);
    if let Some(body) = doc.body() {
        walk(&body, &mut out);
    } else {
        walk(&doc.root(), &mut out);
    }
    let mut text = String::with_capacity(out.len());
    for line in out.lines() {
        let line = line.split_whitespace().collect::<Vec<_>>().join(" ");
        if !line.is_empty() {
            if !text.is_empty() {
                text.push('\n');
            }
            text.push_str(&line);
        }
    }
    (title, text)
}

fn walk(root: &NodeRef<'_>, out: &mut String) {
    // Explicit stack: deeply nested markup must not overflow the thread's stack.
    enum Step<'a> {
        Enter(NodeRef<'a>),
        Leave,
    }
    let mut stack = vec![Step::Enter(root.clone())];
    while let Some(step) = stack.pop() {
        match step {
            Step::Leave => out.push('\n'),
            Step::Enter(node) => {
                if node.is_text() {
                    out.push_str(&node.text());
                    continue;
                }
                if !node.is_element() && !node.is_document() {
                    continue;
                }
                let name = node
                    .node_name()
                    .map(|n| n.to_ascii_lowercase())
                    .unwrap_or_default();
                if is_invisible(&name) || node.has_attr("hidden") {
                    continue;
                }
                let block = is_block(&name);
                if block {
                    out.push('\n');
                    stack.push(Step::Leave);
                } else if name == "br" {
                    out.push('\n');
                }
                let children: Vec<_> = node.children_it(true).collect();
                stack.extend(children.into_iter().map(Step::Enter));
            }
        }
    }
}

fn is_invisible(name: &str) -> bool {
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

fn is_block(name: &str) -> bool {
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
mod tests {
    use super::*;

    const PAGE: &str = r#"<html><head><title>Fallback</title><meta property="og:title" content="Real  title">
        <style>p{}</style><script>var x = "<p>no</p>";</script></head>
        <body><nav><a href="/">Home</a><a href="/n">News</a></nav>
        <article><h1>Head</h1><p>First <b>bold</b> sentence.</p><p>Second<br>line.</p></article>
        <div hidden>secret</div></body></html>"#;

    #[test]
    fn visible_text_has_blocks_on_lines_and_no_scripts() {
        let (title, text) = visible_text(PAGE);
        assert_eq!(title, "Real title");
        assert_eq!(text, "HomeNews\nHead\nFirst bold sentence.\nSecond\nline.");
    }

    #[test]
    fn falls_back_to_the_title_element() {
        let doc = Document::from("<title> A  b </title><p>x</p>");
        assert_eq!(page_title(&doc), "A b");
    }

    #[test]
    fn survives_garbage() {
        let (_, text) = visible_text("<<<>>><p>ok</p></div></div>\u{0}");
        assert!(text.contains("ok"));
        assert_eq!(visible_text(""), (String::new(), String::new()));
    }
}
