//! Golden outputs of the whole dedup stage and of the story tier on a deterministic corpus, so
//! that speed work provably changes no decision and no float.

use super::super::text::words;
use super::super::{hash128, DedupConfig, Deduper};
use super::*;

use crate::dedup::eval::Rng;
use base64::Engine as _;

fn seeds() -> Vec<String> {
    crate::dedup::eval::seed_texts()
}

/// An article on `topic`: Zipf-like common words, the topic's own names, years and some
/// non-ASCII words, in sentences.
fn article(rng: &mut Rng, topic: usize, len: usize) -> String {
    let mut out = String::new();
    for i in 0..len {
        match rng.below(10) {
            0..=2 => {
                out.push_str(&format!("Topic{}n{}", topic, rng.below(30)));
            }
            3 => out.push_str(&format!("event{}k{}", topic, rng.below(15))),
            4 if rng.below(8) == 0 => {
                out.push_str(["Zürich", "café", "2013", "1999", "Ｆｕｌｌ"][rng.below(5)]);
            }
            4 => out.push_str(["the", "and", "said", "with", "of"][rng.below(5)]),
            _ => {
                let r = rng.below(1_000_000) as f64 / 1_000_000.0;
                out.push_str(&format!("word{}", 5_000f64.powf(r) as u64));
            }
        }
        out.push(if i % 17 == 16 { '.' } else { ' ' });
    }
    out
}

/// Returns the corpus: seeds, fresh articles on recurring topics, exact copies, near-copies,
/// rewrites (word swaps) and edited seeds.
fn corpus(n: usize) -> Vec<String> {
    let mut rng = Rng(42);
    let seeds = seeds();
    let mut docs: Vec<String> = seeds.clone();
    while docs.len() < n {
        let kind = rng.below(20);
        let prev = docs[docs.len() - 1 - rng.below(docs.len().min(300))].clone();
        let doc = match kind {
            0..=10 => {
                let topic = rng.below(400);
                let len = 20 + rng.below(250);
                article(&mut rng, topic, len)
            }
            11 | 12 => prev.to_uppercase().replace(' ', "  "),
            13 | 14 => {
                let extra = article(&mut rng, 9999, 8);
                format!("{prev} {extra}")
            }
            15 | 16 => prev
                .split(' ')
                .enumerate()
                .map(|(i, w)| {
                    if i % 6 == 5 {
                        format!("zq{i}x")
                    } else {
                        w.to_string()
                    }
                })
                .collect::<Vec<_>>()
                .join(" "),
            17 => {
                let s = &seeds[rng.below(seeds.len())];
                let cut = s.len() / 2;
                let cut = (cut..s.len()).find(|&c| s.is_char_boundary(c)).unwrap_or(0);
                format!("{} {}", &s[..cut], article(&mut rng, 7, 30))
            }
            18 => String::new(),
            _ => "Short note.".to_string(),
        };
        docs.push(doc);
    }
    docs
}

fn configs() -> Vec<DedupConfig> {
    vec![
        DedupConfig::default(),
        DedupConfig {
            capacity: 1500,
            story_window: 600,
            story_idf_power: 1.5,
            story_name_weight: 0.3,
            story_threshold: 0.15,
            ..DedupConfig::default()
        },
    ]
}

/// Every document's index entry and verdict, as JSON lines; `DEDUP_GOLDEN_DUMP` names a
/// file to write them to for diffing.
/// The stage's output, and the same with each entry's sketch written as before its count byte
/// flagged the word order (see [`stage_decisions_match_golden`]).
fn stage_output() -> (String, String) {
    let docs = corpus(5000);
    let (mut out, mut unflagged) = (String::new(), String::new());
    for config in configs() {
        let mut d = Deduper::new(&config);
        for (i, text) in docs.iter().enumerate() {
            let id = format!("{:032x}", hash128(&(i as u64 % 4900).to_le_bytes()));
            let (info, mut entry) = d.observe(&id, text);
            let info = serde_json::to_string(&info).expect("info serialises");
            out.push_str(&serde_json::to_string(&entry).expect("entry serialises"));
            out.push('\t');
            out.push_str(&info);
            out.push('\n');
            entry.sent = entry.sent.as_deref().map(|b64| {
                let mut bytes = crate::dedup::prepared::decode_b64(b64).expect("base64");
                bytes[0] &= 0x7f;
                base64::engine::general_purpose::STANDARD_NO_PAD.encode(bytes)
            });
            unflagged.push_str(&serde_json::to_string(&entry).expect("entry serialises"));
            unflagged.push('\t');
            unflagged.push_str(&info);
            unflagged.push('\n');
        }
    }
    if let Ok(path) = std::env::var("DEDUP_GOLDEN_DUMP") {
        std::fs::write(path, &out).expect("dump is writable");
    }
    (out, unflagged)
}

/// The story tier alone: every vector and ranking, floats as bits.
fn story_output() -> String {
    let docs = corpus(9000);
    let mut out = String::new();
    for power in [1.0f32, 1.5] {
        let mut idx = StoryIndex::new(StoryParams {
            threshold: 0.2,
            window: 500,
            name_boost: 2.0,
            idf_power: power,
            name_weight: 0.25,
        });
        for (i, text) in docs.iter().enumerate() {
            let t = terms(&words(text));
            let v = idx.vector(&t);
            for (id, w) in &v {
                out.push_str(&format!("{id:x}:{:x} ", w.to_bits()));
            }
            out.push('|');
            let ranked = idx.rank(&v, &t);
            for m in &ranked {
                out.push_str(&format!("{:x}:{:x} ", m.story, m.similarity.to_bits()));
            }
            out.push('\n');
            let story = idx.choose(&ranked).unwrap_or(i as u128 + 1);
            idx.add(story, &t);
        }
    }
    out
}

/// Changed by the b-bit near index (low 8 bits of each MinHash value, chance agreement taken
/// out of the estimate): every `similarity` of a near-copy moved by under 0.017, and 9 of the
/// 10,000 decisions changed: two documents at an estimated 0.74 became near-copies (an 8-bit band
/// matched where the 16-bit one had not), three near-copies point to another earlier version,
/// and four `reuse` lists changed. Changed again by the staggered story sweep (one term-table
/// shard every 16 documents, stories closed two slots a document, instead of everything every
/// 4,096 documents): 2 of the 10,000 decisions (both in the 600-document story window) joined
/// another story. Changed by the rewrite model (a logistic score over how the aligned sentences
/// differ instead of the coverage alone): sketches keep their words in sentence order, so every
/// entry's `sent` changed; a rewrite's `similarity` is the model's score; 189 of the 10,000
/// statuses changed (100 rewrites became unique and 46 unique documents rewrites, most of the
/// rest between near-copy and rewrite as the index they were decided against changed) and 25
/// unique documents changed their `reuse` or story. Changed by the rewrite model refitted
/// with four more features and `rewrite_min_words` 20 (was 40): 1,528 of the 10,000 are now
/// rewrites (counted from `DEDUP_GOLDEN_DUMP`). Changed by the rewrite model refitted with
/// five more features (placed and covered minimum and maximum, their product, edits in runs
/// weighted by the reworded share): 1,573 of the 10,000 are rewrites. Changed by the gates
/// `--fit-rewrite` chooses (`rewrite_min_words` 30, `rewrite_min_reworded` 0; were 20 and 0.5):
/// 56 of the 10,000 verdicts changed: 40 rewrites became unique and 12 near-copies (1,521
/// rewrites now), and 4 unique documents list one more `reuse` entry.
///
/// Changed by the word-order flag in each sketch's count byte: every entry's `sent` changed;
/// without the flag the output is byte for byte the one before (the first hash), so no
/// decision and no other field changed.
#[test]
fn stage_decisions_match_golden() {
    let (out, unflagged) = stage_output();
    assert_eq!(out.lines().count(), 10_000);
    assert_eq!(
        format!("{:032x}", hash128(unflagged.as_bytes())),
        "16c140313b0a4727896c0d6e92618ad5"
    );
    assert_eq!(
        format!("{:032x}", hash128(out.as_bytes())),
        "65295adbc1b98ea70e4ad8d27cf47eb9"
    );
}

/// Changed by the staggered story sweep: terms seen once are forgotten, and closed stories'
/// slots reused, at other arrival positions, which moves some IDF values.
#[test]
fn story_floats_match_golden() {
    let out = story_output();
    assert_eq!(
        format!("{:032x}", hash128(out.as_bytes())),
        "53a9fc66c04b6f81dfbdb2b47fbcfee3"
    );
}
