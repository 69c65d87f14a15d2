//! Owns `dropline eval strip --prune-grid`: the analysis of the block pruner ([`super::prune`]).
//! Every page's output is pruned under a grid of rules and scored, and every output line is
//! written with its block's score and how much of it is gold text.

use super::block_model::BlockModel;
use super::metric::{shingle_match, shingles, tokens, Match};
use super::prune::{dropped, without, BlockScores, Rule};
use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::Path;

const BARS: [f32; 7] = [0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5];

/// The grid's rules with their names.
fn rules() -> Vec<(String, Rule)> {
    let base = Rule {
        bar: 0.0,
        max_words: 0,
        min_link: 0.0,
        edges: false,
        decoded_out: false,
    };
    let variants = [
        ("all", base),
        (
            "w8",
            Rule {
                max_words: 8,
                ..base
            },
        ),
        (
            "link",
            Rule {
                min_link: 0.5,
                ..base
            },
        ),
        (
            "edge",
            Rule {
                edges: true,
                ..base
            },
        ),
        (
            "edgeout",
            Rule {
                edges: true,
                decoded_out: true,
                ..base
            },
        ),
        (
            "out",
            Rule {
                decoded_out: true,
                ..base
            },
        ),
        (
            "edgew8",
            Rule {
                edges: true,
                max_words: 8,
                ..base
            },
        ),
        (
            "edgew4",
            Rule {
                edges: true,
                max_words: 4,
                ..base
            },
        ),
        (
            "edgew12",
            Rule {
                edges: true,
                max_words: 12,
                ..base
            },
        ),
        (
            "edgew16",
            Rule {
                edges: true,
                max_words: 16,
                ..base
            },
        ),
        (
            "edgelink",
            Rule {
                edges: true,
                min_link: 0.5,
                ..base
            },
        ),
    ];
    let mut out = Vec::new();
    for (name, v) in variants {
        for bar in BARS {
            out.push((format!("{name}_{bar}"), Rule { bar, ..v }));
        }
    }
    out
}

pub struct Grid {
    rules: Vec<(String, Rule)>,
    matches: Vec<Vec<Match>>,
    lines: String,
}

impl Grid {
    pub fn new() -> Self {
        let rules = rules();
        Self {
            matches: vec![Vec::new(); rules.len()],
            rules,
            lines: String::from("id\tline\tn\twords\tprob\tkept\tlink\tgold\tmatched\n"),
        }
    }

    pub fn add(&mut self, id: &str, html: &str, text: &str, gold: &str, model: &BlockModel) {
        let scores = super::html::measure(html)
            .map(|m| BlockScores::new(model, &m))
            .unwrap_or_default();
        for ((_, rule), out) in self.rules.iter().zip(&mut self.matches) {
            let d = dropped(text, &scores, rule);
            out.push(shingle_match(gold, &without(text, &d)));
        }
        let gtoks: Vec<&str> = tokens(gold).collect();
        let gset: HashSet<u64> = shingles(&gtoks, 4).into_iter().collect();
        let lines: Vec<&str> = text.split('\n').filter(|l| !l.trim().is_empty()).collect();
        for (i, l) in lines.iter().enumerate() {
            let toks: Vec<&str> = tokens(l).collect();
            let sh = shingles(&toks, 4);
            let g = if sh.is_empty() {
                0.0
            } else {
                sh.iter().filter(|s| gset.contains(s)).count() as f32 / sh.len() as f32
            };
            let s = scores.get(l);
            let _ = writeln!(
                self.lines,
                "{id}\t{i}\t{}\t{}\t{:.4}\t{}\t{:.3}\t{g:.3}\t{}",
                lines.len(),
                toks.len(),
                s.map_or(-1.0, |s| s.prob),
                s.is_some_and(|s| s.kept) as u8,
                s.map_or(-1.0, |s| s.link),
                s.is_some() as u8
            );
        }
    }

    pub fn write(
        &self,
        dir: &Path,
        ids: &[String],
        per_doc: fn(&Path, &[String], &[Match]) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir)?;
        for ((name, _), m) in self.rules.iter().zip(&self.matches) {
            per_doc(&dir.join(format!("{name}.tsv")), ids, m)?;
        }
        std::fs::write(dir.join("lines.tsv"), &self.lines)?;
        Ok(())
    }
}
