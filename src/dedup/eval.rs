//! Owns `dropline eval dedup`: near-duplicate, rewrite and story scores on a labelled folder.
//!
//! Scores are computed as `shared/tools/score_dedup.py` computes them: near-duplicate gold is
//! word 5-gram Jaccard >= 0.7 after normalisation, closed transitively, and predicted groups are
//! documents linked to their `duplicate_of`; stories are scored pairwise and by adjusted Rand
//! index. Synthetic rewrites replace a share of an article's words with words drawn from the
//! other articles and are checked against the index of the real ones.

use super::{hash128, normalize, DedupConfig, Deduper, Tier};
use crate::model::DedupInfo;
use anyhow::Context as _;
use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;

/// Arrival order of the documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Order {
    /// Sorted by file name.
    Sorted,
    /// Shuffled with `--seed`.
    Shuffle,
}

/// Arguments of `dropline eval dedup`.
#[derive(Debug, clap::Args)]
pub struct EvalDedupArgs {
    /// Folder with `docs/` and `labels.csv`.
    pub data_dir: PathBuf,
    /// Arrival order.
    #[arg(long, value_enum, default_value = "sorted")]
    pub order: Order,
    /// Seed of the shuffle and of the synthetic rewrites.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Writes one JSON line per document (`id`, `source.path`, `dedup`) for score_dedup.py.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Shares of words replaced in the synthetic rewrites (empty: none).
    #[arg(long, value_delimiter = ',', default_value = "0.1,0.2,0.3")]
    pub rewrite_rates: Vec<f64>,
    /// Overrides `dedup.near_threshold`.
    #[arg(long)]
    pub near_threshold: Option<f32>,
    /// Overrides `dedup.rewrite_threshold`.
    #[arg(long)]
    pub rewrite_threshold: Option<f32>,
    /// Overrides `dedup.rewrite_min_alignment`.
    #[arg(long)]
    pub rewrite_min_alignment: Option<f32>,
    /// Overrides `dedup.story_threshold`.
    #[arg(long)]
    pub story_threshold: Option<f32>,
    /// Overrides `dedup.story_name_boost`.
    #[arg(long)]
    pub name_boost: Option<f32>,
    /// Overrides `dedup.story_idf_power`.
    #[arg(long)]
    pub idf_power: Option<f32>,
    /// Overrides `dedup.story_name_weight`.
    #[arg(long)]
    pub name_weight: Option<f32>,
    /// Prints every predicted near-duplicate pair that is not in the gold.
    #[arg(long)]
    pub verbose: bool,
}

struct Doc {
    name: String,
    id: String,
    text: String,
    story: String,
}

/// Runs the evaluation and prints the scores.
pub fn run(args: &EvalDedupArgs) -> anyhow::Result<()> {
    let report = evaluate(args)?;
    // A closed pipe (`| head`) ends the command with an error rather than a panic.
    std::io::stdout()
        .write_all(report.as_bytes())
        .context("writing the report")
}

/// Appends one line to the report.
macro_rules! say {
    ($report:ident, $($arg:tt)*) => {
        let _ = writeln!($report, $($arg)*);
    };
}

fn evaluate(args: &EvalDedupArgs) -> anyhow::Result<String> {
    let mut report = String::new();
    let mut config = DedupConfig::default();
    if let Some(v) = args.near_threshold {
        config.near_threshold = v;
    }
    if let Some(v) = args.rewrite_threshold {
        config.rewrite_threshold = v;
    }
    if let Some(v) = args.rewrite_min_alignment {
        config.rewrite_min_alignment = v;
    }
    if let Some(v) = args.story_threshold {
        config.story_threshold = v;
    }
    if let Some(v) = args.name_boost {
        config.story_name_boost = v;
    }
    if let Some(v) = args.idf_power {
        config.story_idf_power = v;
    }
    if let Some(v) = args.name_weight {
        config.story_name_weight = v;
    }
    let mut docs = load(&args.data_dir)?;
    docs.sort_by(|a, b| a.name.cmp(&b.name));
    let gold_near = near_gold(&docs);
    if args.order == Order::Shuffle {
        let mut rng = Rng(args.seed);
        for i in (1..docs.len()).rev() {
            let j = rng.below(i + 1);
            docs.swap(i, j);
        }
    }
    let mut dedup = Deduper::new(&config);
    let mut infos: Vec<(DedupInfo, Tier)> = Vec::with_capacity(docs.len());
    let (mut entry_bytes, mut sig_bytes) = (Vec::new(), Vec::new());
    let mut out = match &args.out {
        Some(p) => Some(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?,
        )),
        None => None,
    };
    for d in &docs {
        let (_, tier) = dedup.check(&d.id, &d.text);
        let (info, entry) = dedup.observe(&d.id, &d.text);
        entry_bytes.push(serde_json::to_string(&entry)?.len());
        sig_bytes.push(entry.sig.as_deref().map_or(0, str::len));
        if let Some(w) = out.as_mut() {
            let rec = serde_json::json!({
                "type": "document",
                "id": d.id,
                "source": {"path": format!("docs/{}.txt", d.name)},
                "dedup": info,
            });
            writeln!(w, "{rec}")?;
        }
        infos.push((info, tier));
    }
    if let Some(mut w) = out {
        w.flush()?;
    }

    let index: HashMap<&str, usize> = docs
        .iter()
        .enumerate()
        .map(|(i, d)| (d.id.as_str(), i))
        .collect();
    let mut pred = UnionFind::new(docs.len());
    let mut pred_copies = UnionFind::new(docs.len());
    let mut flagged_by: HashMap<Tier, (usize, usize)> = HashMap::new();
    for (i, (info, tier)) in infos.iter().enumerate() {
        if let Some(j) = info.duplicate_of.as_deref().and_then(|o| index.get(o)) {
            pred.union(i, *j);
            if matches!(tier, Tier::Exact | Tier::NearCopy) {
                pred_copies.union(i, *j);
            }
            let wrong = gold_near.get(&docs[i].name) != gold_near.get(&docs[*j].name);
            let e = flagged_by.entry(*tier).or_default();
            e.0 += 1;
            e.1 += usize::from(wrong);
            if wrong && args.verbose {
                say!(
                    report,
                    "not in gold: {} -> {} ({:?}, similarity {:.3}, 5-gram Jaccard {:.3})",
                    docs[i].name,
                    docs[*j].name,
                    tier,
                    info.similarity.unwrap_or(0.0),
                    jaccard5(&docs[i].text, &docs[*j].text)
                );
            }
        }
    }
    let gold_groups: Vec<String> = docs.iter().map(|d| gold_near[&d.name].clone()).collect();
    let pred_groups: Vec<String> = (0..docs.len()).map(|i| pred.find(i).to_string()).collect();
    let (np, nr, nf) = pair_prf(&gold_groups, &pred_groups);
    say!(
        report,
        "documents {}, order {:?} (seed {})",
        docs.len(),
        args.order,
        args.seed
    );
    say!(
        report,
        "near-duplicate pairs (J>=0.7): gold {} predicted {}: P {np:.4} R {nr:.4} F1 {nf:.4}",
        pairs(&gold_groups),
        pairs(&pred_groups)
    );
    let copy_groups: Vec<String> = (0..docs.len())
        .map(|i| pred_copies.find(i).to_string())
        .collect();
    let (cp, cr, cf) = pair_prf(&gold_groups, &copy_groups);
    say!(
        report,
        "  exact and near-copy tiers only: P {cp:.4} R {cr:.4} F1 {cf:.4}"
    );
    for tier in [Tier::Exact, Tier::NearCopy, Tier::Rewrite] {
        let (n, wrong) = flagged_by.get(&tier).copied().unwrap_or_default();
        say!(report, "  flagged by {tier:?}: {n}, not in gold {wrong}");
    }
    let gold_story: Vec<String> = docs.iter().map(|d| d.story.clone()).collect();
    let pred_story: Vec<String> = infos
        .iter()
        .enumerate()
        .map(|(i, (info, _))| info.story.clone().unwrap_or_else(|| format!("none:{i}")))
        .collect();
    let (sp, sr, sf) = pair_prf(&gold_story, &pred_story);
    let ari = adjusted_rand(&gold_story, &pred_story);
    say!(report,
        "story clusters: gold {} predicted {}: pairwise P {sp:.4} R {sr:.4} F1 {sf:.4} ARI {ari:.4}",
        distinct(&gold_story),
        distinct(&pred_story)
    );

    let vocab: Vec<&str> = docs
        .iter()
        .flat_map(|d| d.text.split_whitespace())
        .collect();
    for &rate in &args.rewrite_rates {
        let mut rng = Rng(args.seed ^ rate.to_bits());
        let (mut near, mut rewrite, mut wrong) = (0usize, 0usize, 0usize);
        for d in &docs {
            let text = rewrite_text(&d.text, rate, &vocab, &mut rng);
            let probe = format!("{:032x}", hash128(text.as_bytes()));
            let (info, tier) = dedup.check(&probe, &text);
            let hit = info
                .duplicate_of
                .as_deref()
                .and_then(|o| index.get(o))
                .map(|&j| gold_near[&docs[j].name] == gold_near[&d.name]);
            match (hit, tier) {
                (Some(true), Tier::NearCopy | Tier::Exact) => near += 1,
                (Some(true), _) => rewrite += 1,
                (Some(false), _) => wrong += 1,
                _ => {}
            }
        }
        let n = docs.len().max(1) as f64;
        say!(report,
            "rewrites {:.0}%: recall {:.4} (near-copy tier {:.4}, rewrite tier {:.4}), matched to another article {wrong}",
            rate * 100.0,
            (near + rewrite) as f64 / n,
            near as f64 / n,
            rewrite as f64 / n
        );
    }
    let mean = |v: &[usize]| v.iter().sum::<usize>() as f64 / v.len().max(1) as f64;
    say!(
        report,
        "ledger entry JSON: mean {:.0} bytes, max {} (signatures {:.0} bytes, terms and ids the rest)",
        mean(&entry_bytes),
        entry_bytes.iter().max().copied().unwrap_or(0),
        mean(&sig_bytes)
    );
    say!(report, "near F1 {nf:.4} story F1 {sf:.4} ARI {ari:.4}");
    Ok(report)
}

fn load(dir: &std::path::Path) -> anyhow::Result<Vec<Doc>> {
    let labels_path = dir.join("labels.csv");
    let labels = std::fs::read_to_string(&labels_path)
        .with_context(|| format!("reading {}", labels_path.display()))?;
    let mut docs = Vec::new();
    for (n, line) in labels.lines().enumerate().skip(1) {
        let cols: Vec<&str> = line.trim().split(',').collect();
        let [name, _topic, story] = cols[..] else {
            if line.trim().is_empty() {
                continue;
            }
            anyhow::bail!(
                "{}:{}: expected doc,topic,story",
                labels_path.display(),
                n + 1
            );
        };
        let path = dir.join("docs").join(format!("{name}.txt"));
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        docs.push(Doc {
            name: name.to_string(),
            id: format!("{:032x}", hash128(&bytes)),
            text: String::from_utf8_lossy(&bytes).into_owned(),
            story: story.to_string(),
        });
    }
    Ok(docs)
}

fn shingle_set(text: &str) -> HashSet<String> {
    let norm = normalize(text);
    let w: Vec<&str> = norm.split(' ').filter(|w| !w.is_empty()).collect();
    if w.len() < 5 {
        return std::iter::once(w.join(" ")).collect();
    }
    w.windows(5).map(|s| s.join(" ")).collect()
}

fn jaccard(a: &HashSet<String>, b: &HashSet<String>) -> f64 {
    let inter = a.intersection(b).count();
    let union = a.len() + b.len() - inter;
    if union == 0 {
        0.0
    } else {
        inter as f64 / union as f64
    }
}

fn jaccard5(a: &str, b: &str) -> f64 {
    jaccard(&shingle_set(a), &shingle_set(b))
}

/// Returns each document's gold near-duplicate group (exact 5-gram Jaccard >= 0.7, transitive).
fn near_gold(docs: &[Doc]) -> HashMap<String, String> {
    let sets: Vec<HashSet<String>> = docs.iter().map(|d| shingle_set(&d.text)).collect();
    let mut uf = UnionFind::new(docs.len());
    for i in 0..docs.len() {
        for j in i + 1..docs.len() {
            if jaccard(&sets[i], &sets[j]) >= 0.7 {
                uf.union(i, j);
            }
        }
    }
    docs.iter()
        .enumerate()
        .map(|(i, d)| (d.name.clone(), docs[uf.find(i)].name.clone()))
        .collect()
}

/// Replaces `rate` of the whitespace tokens of `text` with tokens drawn from `vocab`.
fn rewrite_text(text: &str, rate: f64, vocab: &[&str], rng: &mut Rng) -> String {
    let mut tokens: Vec<&str> = text.split_whitespace().collect();
    let k = ((tokens.len() as f64) * rate).round() as usize;
    let mut positions: Vec<usize> = (0..tokens.len()).collect();
    for i in 0..k.min(positions.len()) {
        let j = i + rng.below(positions.len() - i);
        positions.swap(i, j);
        if !vocab.is_empty() {
            tokens[positions[i]] = vocab[rng.below(vocab.len())];
        }
    }
    tokens.join(" ")
}

/// Returns the five sample articles shipped in `seeds/`, in path order (tests and benches).
pub fn seed_texts() -> Vec<String> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/seeds");
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .expect("seeds folder ships with the crate")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| std::fs::read_to_string(p).expect("seed is UTF-8"))
        .collect()
}

/// splitmix64: a small deterministic generator for shuffles, synthetic rewrites, tests and
/// benches.
#[derive(Debug, Clone)]
pub struct Rng(pub u64);

impl Rng {
    /// Returns the next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Returns a number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
}

struct UnionFind(Vec<usize>);

impl UnionFind {
    fn new(n: usize) -> Self {
        Self((0..n).collect())
    }

    fn find(&mut self, mut x: usize) -> usize {
        while self.0[x] != x {
            self.0[x] = self.0[self.0[x]];
            x = self.0[x];
        }
        x
    }

    fn union(&mut self, a: usize, b: usize) {
        let (ra, rb) = (self.find(a), self.find(b));
        self.0[ra] = rb;
    }
}

fn same_pairs(groups: &[String]) -> HashSet<(usize, usize)> {
    let mut by: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, g) in groups.iter().enumerate() {
        by.entry(g).or_default().push(i);
    }
    let mut out = HashSet::new();
    for members in by.values() {
        for (x, &i) in members.iter().enumerate() {
            for &j in &members[x + 1..] {
                out.insert((i.min(j), i.max(j)));
            }
        }
    }
    out
}

fn pairs(groups: &[String]) -> usize {
    same_pairs(groups).len()
}

fn distinct(groups: &[String]) -> usize {
    groups.iter().collect::<HashSet<_>>().len()
}

/// Returns pairwise precision, recall and F1 of `pred` against `gold` (1.0 on empty sets).
fn pair_prf(gold: &[String], pred: &[String]) -> (f64, f64, f64) {
    let (g, p) = (same_pairs(gold), same_pairs(pred));
    let tp = g.intersection(&p).count() as f64;
    let precision = if p.is_empty() {
        1.0
    } else {
        tp / p.len() as f64
    };
    let recall = if g.is_empty() {
        1.0
    } else {
        tp / g.len() as f64
    };
    let f1 = if precision + recall > 0.0 {
        2.0 * precision * recall / (precision + recall)
    } else {
        0.0
    };
    (precision, recall, f1)
}

fn adjusted_rand(a: &[String], b: &[String]) -> f64 {
    let c2 = |n: usize| (n * n.saturating_sub(1) / 2) as f64;
    let mut cont: HashMap<(&str, &str), usize> = HashMap::new();
    let mut ca: HashMap<&str, usize> = HashMap::new();
    let mut cb: HashMap<&str, usize> = HashMap::new();
    for (x, y) in a.iter().zip(b) {
        *cont.entry((x, y)).or_default() += 1;
        *ca.entry(x).or_default() += 1;
        *cb.entry(y).or_default() += 1;
    }
    let s: f64 = cont.values().map(|&v| c2(v)).sum();
    let sa: f64 = ca.values().map(|&v| c2(v)).sum();
    let sb: f64 = cb.values().map(|&v| c2(v)).sum();
    let n = c2(a.len());
    let expected = if n > 0.0 { sa * sb / n } else { 0.0 };
    let max = (sa + sb) / 2.0;
    if (max - expected).abs() < f64::EPSILON {
        1.0
    } else {
        (s - expected) / (max - expected)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn identical_clusterings_score_one() {
        let a = g(&["x", "x", "y", "z", "z"]);
        assert_eq!(pair_prf(&a, &a), (1.0, 1.0, 1.0));
        assert!((adjusted_rand(&a, &a) - 1.0).abs() < 1e-9);
    }

    #[test]
    fn split_cluster_loses_recall_not_precision() {
        let gold = g(&["x", "x", "x", "y"]);
        let pred = g(&["a", "a", "b", "c"]);
        let (p, r, _) = pair_prf(&gold, &pred);
        assert_eq!(p, 1.0);
        assert!((r - 1.0 / 3.0).abs() < 1e-9);
        assert!(adjusted_rand(&gold, &pred) < 1.0);
    }

    #[test]
    fn rewrite_replaces_the_requested_share() {
        let text = "a b c d e f g h i j";
        let mut rng = Rng(3);
        let out = rewrite_text(text, 0.3, &["Z"], &mut rng);
        assert_eq!(out.split(' ').filter(|w| *w == "Z").count(), 3);
    }
}
