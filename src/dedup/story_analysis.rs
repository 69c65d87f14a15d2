//! Error analysis of story joins on training folds (run by hand: `DROPLINE_STORY_ANALYSIS=DIR
//! cargo test --release --lib story_join_analysis -- --ignored --nocapture`; without the
//! variable it does nothing). For sorted and shuffle seeds 1-3, each of the five topic folds is
//! run alone with the prior of three others (as `eval dedup --cv` scores a threshold on the
//! training folds of the fifth), and every document that joined a story by centroid is
//! described: whether the story's founding document is of another gold story (a wrong join),
//! whether the story was pure until then (a merge event), the centroid cosine, its margin over
//! the second story, the cosine to the best, founding and average member, name-only cosines,
//! the cosine to the founder's 32 heaviest terms, and year/number clashes; then how many wrong
//! and right joins a guard on each would block.

use super::super::{load, Doc, Rng};
use super::StoryGroup;
use crate::dedup::prepared::prepare;
use crate::dedup::story::Term;
use crate::dedup::{DedupConfig, Deduper, Tier};
use std::collections::{HashMap, HashSet};

fn cos(a: &[(u32, f32)], b: &[(u32, f32)], names: Option<(&[Term], &[Term])>) -> f32 {
    let (mut i, mut j, mut dot) = (0, 0, 0.0f32);
    let keep_a = |k: usize| names.is_none_or(|(ta, _)| ta[k].name_like);
    let keep_b = |k: usize| names.is_none_or(|(_, tb)| tb[k].name_like);
    let norm = |v: &[(u32, f32)], keep: &dyn Fn(usize) -> bool| -> f32 {
        (0..v.len())
            .filter(|&k| keep(k))
            .map(|k| v[k].1 * v[k].1)
            .sum()
    };
    let (na, nb) = (norm(a, &keep_a), norm(b, &keep_b));
    while i < a.len() && j < b.len() {
        match a[i].0.cmp(&b[j].0) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                if keep_a(i) && keep_b(j) {
                    dot += a[i].1 * b[j].1;
                }
                i += 1;
                j += 1;
            }
        }
    }
    if na > 0.0 && nb > 0.0 {
        dot / (na * nb).sqrt()
    } else {
        0.0
    }
}

/// The cosine of a unit vector to the founder's 32 heaviest terms, scaled to unit length (the
/// anchor guard tried at 726432b).
fn anchor_similarity(v: &[(u32, f32)], founder: &[(u32, f32)]) -> f32 {
    let mut top = founder.to_vec();
    top.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    top.truncate(32);
    top.sort_by_key(|x| x.0);
    let norm = top
        .iter()
        .map(|x| x.1 * x.1)
        .sum::<f32>()
        .sqrt()
        .max(f32::MIN_POSITIVE);
    let unit: Vec<(u32, f32)> = top.iter().map(|&(t, w)| (t, w / norm)).collect();
    let at: HashMap<u32, f32> = unit.into_iter().collect();
    v.iter().filter_map(|(t, w)| at.get(t).map(|a| a * w)).sum()
}

fn numbers(text: &str) -> (HashSet<String>, HashSet<String>) {
    let mut years = HashSet::new();
    let mut nums = HashSet::new();
    for w in text.split(|c: char| !c.is_ascii_alphanumeric()) {
        if w.chars().all(|c| c.is_ascii_digit()) && !w.is_empty() {
            if w.len() == 4 && (w.starts_with("19") || w.starts_with("20")) {
                years.insert(w.to_string());
            } else if w.len() >= 2 {
                nums.insert(w.to_string());
            }
        }
    }
    (years, nums)
}

#[derive(Default, Debug)]
struct Row {
    wrong: bool,
    sim: f32,
    margin: f32,
    best_member: f32,
    founder: f32,
    mean_member: f32,
    name_best_member: f32,
    name_centroid: f32,
    year_clash: bool,
    num_clash: bool,
    size: usize,
    /// The story was pure (one gold story) and the document is of another: a merge event.
    merge: bool,
    /// Cosine to the founder's 32 heaviest terms (the anchor), founder vector under today's IDF.
    anchor: f32,
}

fn run_group(c: &DedupConfig, docs: &[&Doc], rows: &mut Vec<Row>, missed: &mut usize) {
    let mut d = Deduper::new(c);
    // Per story: members (doc index, terms).
    let mut members: HashMap<u128, Vec<usize>> = HashMap::new();
    let mut all_terms: Vec<Vec<Term>> = Vec::new();
    for (i, doc) in docs.iter().enumerate() {
        let p = prepare(&doc.id, &doc.text);
        let terms = p.terms.clone();
        let (_, tier) = d.check(&doc.id, &doc.text);
        let idfs = d.stories.idfs(&terms);
        let v = d.stories.vector_with(&terms, &idfs);
        let ranked = d.stories.rank_with(&v, &terms, &idfs);
        let (info, _) = d.observe(&doc.id, &doc.text);
        let story = u128::from_str_radix(info.story.as_deref().unwrap_or("0"), 16).unwrap_or(0);
        let chosen = d.stories.choose(&ranked);
        if tier == Tier::Unique && chosen == Some(story) {
            if let Some(ms) = members.get(&story) {
                let mv: Vec<(Vec<(u32, f32)>, usize)> = ms
                    .iter()
                    .map(|&m| (d.stories.vector(&all_terms[m]), m))
                    .collect();
                let sims: Vec<f32> = mv.iter().map(|(x, _)| cos(&v, x, None)).collect();
                let nsims: Vec<f32> = mv
                    .iter()
                    .map(|(x, m)| cos(&v, x, Some((&terms, &all_terms[*m]))))
                    .collect();
                let founder = ms[0];
                let (y, n) = numbers(&doc.text);
                let (mut sy, mut sn) = (HashSet::new(), HashSet::new());
                for &m in ms {
                    let (a, b) = numbers(&docs[m].text);
                    sy.extend(a);
                    sn.extend(b);
                }
                // Centroid name cosine: sum of member vectors.
                let mut cent: HashMap<u32, (f32, bool)> = HashMap::new();
                for (x, m) in &mv {
                    for (k, &(t, w)) in x.iter().enumerate() {
                        let e = cent.entry(t).or_insert((0.0, false));
                        e.0 += w;
                        e.1 |= all_terms[*m][k].name_like;
                    }
                }
                let mut cv: Vec<(u32, f32)> = cent.iter().map(|(&t, &(w, _))| (t, w)).collect();
                cv.sort_by_key(|x| x.0);
                let ct: Vec<Term> = cv
                    .iter()
                    .map(|&(t, _)| Term {
                        id: t,
                        tf: 1,
                        name_like: cent[&t].1,
                    })
                    .collect();
                if ms.iter().all(|&m| docs[m].story == docs[founder].story)
                    && docs[founder].story != doc.story
                {
                    println!(
                        "MERGE {} into {} (size {}, sim {:.3})",
                        doc.name,
                        docs[founder].name,
                        ms.len(),
                        ranked[0].similarity
                    );
                }
                rows.push(Row {
                    wrong: docs[founder].story != doc.story,
                    sim: ranked[0].similarity,
                    margin: ranked[0].similarity - ranked.get(1).map_or(0.0, |m| m.similarity),
                    best_member: sims.iter().copied().fold(0.0, f32::max),
                    founder: sims[0],
                    mean_member: sims.iter().sum::<f32>() / sims.len() as f32,
                    name_best_member: nsims.iter().copied().fold(0.0, f32::max),
                    name_centroid: cos(&v, &cv, Some((&terms, &ct))),
                    year_clash: !y.is_empty() && !sy.is_empty() && y.is_disjoint(&sy),
                    num_clash: !n.is_empty() && !sn.is_empty() && n.is_disjoint(&sn),
                    size: ms.len(),
                    merge: ms.iter().all(|&m| docs[m].story == docs[founder].story)
                        && docs[founder].story != doc.story,
                    anchor: anchor_similarity(&v, &mv[0].0),
                });
            }
        }
        if tier == Tier::Unique && chosen.is_none() {
            // Started a story (or joined by reuse) although its gold story was open.
            if docs[..i].iter().any(|d| d.story == doc.story) {
                *missed += 1;
            }
        }
        members.entry(story).or_default().push(i);
        all_terms.push(terms);
    }
}

fn quant(v: &mut [f32]) -> String {
    v.sort_by(f32::total_cmp);
    if v.is_empty() {
        return "-".into();
    }
    let q = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
    format!(
        "n {:4} p10 {:.3} p25 {:.3} p50 {:.3} p75 {:.3} p90 {:.3}",
        v.len(),
        q(0.1),
        q(0.25),
        q(0.5),
        q(0.75),
        q(0.9)
    )
}

#[test]
#[ignore]
fn story_join_analysis() {
    let Ok(dir) = std::env::var("DROPLINE_STORY_ANALYSIS") else {
        return;
    };
    let threshold: f32 = std::env::var("DROPLINE_STORY_T")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.26);
    let mut base = load(std::path::Path::new(&dir)).expect("data");
    base.sort_by(|a, b| a.name.cmp(&b.name));
    let k = 5;
    let mut rows = Vec::new();
    let mut missed = 0;
    for seed in [0u64, 1, 2, 3] {
        let mut docs: Vec<&Doc> = base.iter().collect();
        if seed > 0 {
            let mut rng = Rng(seed);
            for i in (1..docs.len()).rev() {
                docs.swap(i, rng.below(i + 1));
            }
        }
        let fold_of = super::topic_folds(docs.iter().copied(), seed.max(1) ^ 0xf01d, k);
        // Each fold run alone with the prior of the others but one held out: as the CV's
        // training groups for held-out fold (g + 1) % k.
        for g in 0..k {
            let held = (g + 1) % k;
            let train: Vec<&Doc> = docs
                .iter()
                .copied()
                .filter(|d| fold_of[d.topic.as_str()] != held)
                .collect();
            let groups = super::story_groups(&train, &fold_of, k, held, &super::PriorMode::On);
            let StoryGroup {
                docs: gd, prior, ..
            } = groups
                .into_iter()
                .find(|s| fold_of[s.docs[0].topic.as_str()] == g)
                .expect("group");
            let c = DedupConfig {
                story_threshold: threshold,
                story_df_prior: prior,
                ..DedupConfig::default()
            };
            run_group(&c, &gd, &mut rows, &mut missed);
        }
    }
    let (wrong, right): (Vec<&Row>, Vec<&Row>) = rows.iter().partition(|r| r.wrong);
    println!(
        "joins {} wrong {} right {}; missed (new story while gold story open) {}",
        rows.len(),
        wrong.len(),
        right.len(),
        missed
    );
    let merges: Vec<&Row> = rows.iter().filter(|r| r.merge).collect();
    println!(
        "merge events (pure story, other gold story joins) {}",
        merges.len()
    );
    type F = fn(&Row) -> f32;
    let feats: [(&str, F); 8] = [
        ("anchor32", |r| r.anchor),
        ("centroid sim", |r| r.sim),
        ("margin", |r| r.margin),
        ("best member", |r| r.best_member),
        ("founder", |r| r.founder),
        ("mean member", |r| r.mean_member),
        ("name best mem", |r| r.name_best_member),
        ("name centroid", |r| r.name_centroid),
    ];
    for (name, f) in feats {
        let mut a: Vec<f32> = wrong.iter().map(|r| f(r)).collect();
        let mut b: Vec<f32> = right.iter().map(|r| f(r)).collect();
        println!("{name:14} wrong {}", quant(&mut a));
        println!("{name:14} right {}", quant(&mut b));
    }
    for (name, f) in [
        ("year clash", (|r: &Row| r.year_clash) as fn(&Row) -> bool),
        ("num clash", |r: &Row| r.num_clash),
    ] {
        println!(
            "{name}: wrong {} / {}, right {} / {}",
            wrong.iter().filter(|r| f(r)).count(),
            wrong.len(),
            right.iter().filter(|r| f(r)).count(),
            right.len()
        );
    }
    let mut sizes: Vec<f32> = wrong.iter().map(|r| r.size as f32).collect();
    println!("wrong size {}", quant(&mut sizes));
    // Guards: joins blocked at each bar.
    for (name, f) in feats {
        let mut a: Vec<f32> = merges.iter().map(|r| f(r)).collect();
        println!("{name:14} merge {}", quant(&mut a));
    }
    for size in [1usize, 2, 3, 5, 10, 1000] {
        let lo = match size {
            1 => 1,
            2 => 2,
            3 => 3,
            5 => 4,
            10 => 6,
            _ => 11,
        };
        let mut m: Vec<f32> = merges
            .iter()
            .filter(|r| r.size >= lo && r.size <= size)
            .map(|r| r.sim)
            .collect();
        let mut w: Vec<f32> = wrong
            .iter()
            .filter(|r| r.size >= lo && r.size <= size)
            .map(|r| r.sim)
            .collect();
        let mut g: Vec<f32> = right
            .iter()
            .filter(|r| r.size >= lo && r.size <= size)
            .map(|r| r.sim)
            .collect();
        println!("size {lo}-{size}: merge sim {}", quant(&mut m));
        println!("size {lo}-{size}: wrong sim {}", quant(&mut w));
        println!("size {lo}-{size}: right sim {}", quant(&mut g));
    }
    for (name, f) in feats {
        for bar in [0.1f32, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4] {
            let bw = wrong.iter().filter(|r| f(r) < bar).count();
            let br = right.iter().filter(|r| f(r) < bar).count();
            let bm = merges.iter().filter(|r| f(r) < bar).count();
            println!("guard {name} < {bar:.2}: blocks wrong {bw} (merge events {bm}) right {br}");
        }
    }
}
