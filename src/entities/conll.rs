//! Owns CoNLL-2003 reading and conlleval-style span scoring, shared by train and eval.
//!
//! Documents are split the way the reference `conll_docs.py` splits them (at `-DOCSTART-`, else
//! every 20 sentences) so document numbers and texts match the reference scorer's.

use anyhow::Context;
use std::collections::{BTreeMap, HashSet};
use std::path::Path;

/// One sentence: words and their IOB tags.
#[derive(Debug, Clone, Default)]
pub struct Sentence {
    pub words: Vec<String>,
    pub tags: Vec<String>,
}

/// A document: its sentences in order.
pub type Doc = Vec<Sentence>;

/// An entity span over token indices (`end` exclusive) with its type.
pub type Span = (usize, usize, String);

/// Reads a CoNLL file's documents.
pub fn read_docs(path: &Path) -> anyhow::Result<Vec<Doc>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("failed to read CoNLL file {}", path.display()))?;
    Ok(parse_docs(&text))
}

/// Parses CoNLL text into documents.
pub fn parse_docs(text: &str) -> Vec<Doc> {
    let mut docs: Vec<Doc> = Vec::new();
    let mut doc: Doc = Vec::new();
    let mut cur = Sentence::default();
    let mut marked = false;
    for line in text.lines() {
        let parts: Vec<&str> = line.split_whitespace().collect();
        if parts.is_empty() {
            if !cur.words.is_empty() {
                doc.push(std::mem::take(&mut cur));
            }
            continue;
        }
        if parts[0] == "-DOCSTART-" {
            marked = true;
            if !cur.words.is_empty() {
                doc.push(std::mem::take(&mut cur));
            }
            if !doc.is_empty() {
                docs.push(std::mem::take(&mut doc));
            }
            continue;
        }
        cur.words.push(parts[0].to_string());
        cur.tags.push(parts[parts.len() - 1].to_string());
    }
    if !cur.words.is_empty() {
        doc.push(cur);
    }
    if !doc.is_empty() {
        docs.push(doc);
    }
    if !marked {
        let flat: Vec<Sentence> = docs.into_iter().flatten().collect();
        docs = flat.chunks(20).map(|c| c.to_vec()).collect();
    }
    docs
}

/// Returns a copy of `doc` with every word lower-cased and the tags unchanged: training text
/// for case robustness, and a held-out check of it.
pub fn lowercased(doc: &Doc) -> Doc {
    doc.iter()
        .map(|s| Sentence {
            words: s.words.iter().map(|w| w.to_lowercase()).collect(),
            tags: s.tags.clone(),
        })
        .collect()
}

/// Returns entity spans from IOB1/IOB2/BILOU tags, as conlleval (and `conll.py`) reads them.
pub fn spans(tags: &[String]) -> Vec<Span> {
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    let mut typ: Option<&str> = None;
    for i in 0..=tags.len() {
        let t = tags.get(i).map_or("O", String::as_str);
        let (pre, ty) = if t == "O" {
            ("O", None)
        } else {
            match t.split_once('-') {
                Some((p, y)) => (p, Some(y)),
                None => (t, None),
            }
        };
        let begins = pre == "B" || pre == "S" || (pre == "I" && ty != typ) || pre == "O";
        if let Some(s) = start {
            if begins || ty != typ {
                out.push((s, i, typ.unwrap_or("").to_string()));
                start = None;
                typ = None;
            }
        }
        if pre != "O" && start.is_none() {
            start = Some(i);
            typ = ty;
        }
        if (pre == "E" || pre == "S") && start.is_some() {
            out.push((start.unwrap_or(i), i + 1, typ.unwrap_or("").to_string()));
            start = None;
            typ = None;
        }
    }
    out
}

/// Exact-span counts: true positives, false positives, false negatives.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counts {
    pub tp: usize,
    pub fp: usize,
    pub fn_: usize,
}

impl Counts {
    /// Returns precision, recall and F1.
    pub fn prf(&self) -> (f64, f64, f64) {
        let p = if self.tp + self.fp > 0 {
            self.tp as f64 / (self.tp + self.fp) as f64
        } else {
            0.0
        };
        let r = if self.tp + self.fn_ > 0 {
            self.tp as f64 / (self.tp + self.fn_) as f64
        } else {
            0.0
        };
        let f = if p + r > 0.0 {
            2.0 * p * r / (p + r)
        } else {
            0.0
        };
        (p, r, f)
    }
}

/// Accumulates overall and per-type counts over documents.
#[derive(Debug, Default)]
pub struct Scorer {
    pub overall: Counts,
    pub per_type: BTreeMap<String, Counts>,
}

impl Scorer {
    /// Adds one document's gold and predicted spans.
    pub fn add(&mut self, gold: &HashSet<Span>, pred: &HashSet<Span>) {
        for s in gold.union(pred) {
            let c = self.per_type.entry(s.2.clone()).or_default();
            match (gold.contains(s), pred.contains(s)) {
                (true, true) => {
                    c.tp += 1;
                    self.overall.tp += 1;
                }
                (false, true) => {
                    c.fp += 1;
                    self.overall.fp += 1;
                }
                _ => {
                    c.fn_ += 1;
                    self.overall.fn_ += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn spans_follow_conlleval() {
        let tags = t(&["I-ORG", "O", "I-PER", "I-PER", "B-PER", "I-LOC", "U-MISC"]);
        let got = spans(&tags);
        assert_eq!(
            got,
            vec![
                (0, 1, "ORG".to_string()),
                (2, 4, "PER".to_string()),
                (4, 5, "PER".to_string()),
                (5, 6, "LOC".to_string()),
                (6, 7, "MISC".to_string()),
            ]
        );
    }

    #[test]
    fn lowercased_copy_keeps_tags() {
        let docs = parse_docs("AB x x I-ORG\nÉcole x x I-LOC\n");
        let low = lowercased(&docs[0]);
        assert_eq!(low[0].words, vec!["ab", "école"]);
        assert_eq!(low[0].tags, docs[0][0].tags);
    }

    #[test]
    fn documents_split_at_docstart() {
        let docs = parse_docs("-DOCSTART- -X- O O\n\nA x x I-PER\nb x x O\n\nC x x O\n\n-DOCSTART- -X- O O\n\nD x x I-LOC\n");
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].len(), 2);
        assert_eq!(docs[1][0].words, vec!["D"]);
    }
}
