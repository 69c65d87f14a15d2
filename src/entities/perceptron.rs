//! Owns the linear-chain model: BILOU tags, the hashed weight table, Viterbi decoding, the
//! averaged-perceptron update and the compact model file.

use super::features::N_FEATURES;
use std::io::{Read, Write};

/// Entity types the statistical model tags.
pub const TYPES: [&str; 4] = ["PER", "ORG", "LOC", "MISC"];
/// Number of BILOU tags: O plus B, I, L, U for each type.
pub const N_TAGS: usize = 1 + 4 * TYPES.len();
const START: usize = N_TAGS;
const MAGIC: &[u8; 8] = b"DLENT\x00\x02\x00";
/// Weights per row of the in-memory tagging table: tag O's weight is subtracted from every
/// tag's (a per-token constant, which Viterbi ignores), so O scores 0 and a row is 16 `i16`,
/// 32 bytes, half a cache line. The file keeps all 17 columns, which compress better.
const ROW: usize = N_TAGS - 1;

/// Position of a tag inside its entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Out,
    Begin,
    Inside,
    Last,
    Unit,
}

/// Returns the tag index of `part` for entity type `ty`.
pub fn tag(part: Part, ty: usize) -> usize {
    match part {
        Part::Out => 0,
        Part::Begin => 1 + 4 * ty,
        Part::Inside => 2 + 4 * ty,
        Part::Last => 3 + 4 * ty,
        Part::Unit => 4 + 4 * ty,
    }
}

/// Returns the part and type of a tag index.
pub fn part_of(tag: usize) -> (Part, usize) {
    if tag == 0 || tag >= N_TAGS {
        return (Part::Out, 0);
    }
    let ty = (tag - 1) / 4;
    let part = match (tag - 1) % 4 {
        0 => Part::Begin,
        1 => Part::Inside,
        2 => Part::Last,
        _ => Part::Unit,
    };
    (part, ty)
}

/// Transition admissibility, computed once: `ALLOWED[prev][cur]`, `prev == START` first.
static ALLOWED: std::sync::LazyLock<[[bool; N_TAGS]; N_TAGS + 1]> =
    std::sync::LazyLock::new(|| {
        let mut a = [[false; N_TAGS]; N_TAGS + 1];
        for (p, row) in a.iter_mut().enumerate() {
            for (c, v) in row.iter_mut().enumerate() {
                *v = allowed_slow(p, c);
            }
        }
        a
    });

/// Returns whether `cur` may follow `prev` (`START` for the first token).
#[inline]
pub fn allowed(prev: usize, cur: usize) -> bool {
    ALLOWED[prev][cur]
}

fn allowed_slow(prev: usize, cur: usize) -> bool {
    let (pp, pt) = part_of(prev);
    let (cp, ct) = part_of(cur);
    let prev_open = prev != START && matches!(pp, Part::Begin | Part::Inside);
    if prev_open {
        matches!(cp, Part::Inside | Part::Last) && ct == pt
    } else {
        matches!(cp, Part::Out | Part::Begin | Part::Unit)
    }
}

fn ends_ok(tag: usize) -> bool {
    matches!(part_of(tag).0, Part::Out | Part::Last | Part::Unit)
}

/// Returns the best tag sequence for emission scores `em` (n x N_TAGS) and transition scores
/// `trans` ((N_TAGS + 1) x N_TAGS, last row from the start state).
pub fn viterbi(em: &[f32], trans: &[f32], out: &mut Vec<u8>) {
    let n = em.len() / N_TAGS;
    out.clear();
    if n == 0 {
        return;
    }
    // Transitions by target tag, forbidden ones at minus infinity: the inner loop is branch-free.
    let mut by_cur = [[f32::NEG_INFINITY; N_TAGS]; N_TAGS];
    for (c, row) in by_cur.iter_mut().enumerate() {
        for (p, v) in row.iter_mut().enumerate() {
            if allowed(p, c) {
                *v = trans[p * N_TAGS + c];
            }
        }
    }
    let mut score = [f32::NEG_INFINITY; N_TAGS];
    for (c, s) in score.iter_mut().enumerate() {
        if allowed(START, c) {
            *s = em[c] + trans[START * N_TAGS + c];
        }
    }
    let mut back = vec![0u8; n * N_TAGS];
    for i in 1..n {
        let mut next = [f32::NEG_INFINITY; N_TAGS];
        for c in 0..N_TAGS {
            let row = &by_cur[c];
            let mut best = f32::NEG_INFINITY;
            let mut arg = 0;
            for p in 0..N_TAGS {
                let v = score[p] + row[p];
                if v > best {
                    best = v;
                    arg = p;
                }
            }
            next[c] = best + em[i * N_TAGS + c];
            back[i * N_TAGS + c] = arg as u8;
        }
        score = next;
    }
    let mut cur = (0..N_TAGS)
        .filter(|&c| ends_ok(c))
        .max_by(|&a, &b| score[a].total_cmp(&score[b]))
        .unwrap_or(0);
    out.resize(n, 0);
    for i in (0..n).rev() {
        out[i] = cur as u8;
        cur = back[i * N_TAGS + cur] as usize;
    }
}

/// The trained model: one or two passes (the second reads the first's document-level
/// evidence) and the resources both were trained with.
#[derive(Debug, Clone)]
pub struct Model {
    pub stages: Vec<Stage>,
    /// The resource text the model was trained with.
    pub resources: String,
}

/// One pass's quantised weights.
#[derive(Debug, Clone)]
pub struct Stage {
    pub bits: u32,
    /// `2^bits` rows of `N_TAGS` quantised weights, as stored in the file; emptied once the
    /// tagging table is built from a loaded file.
    weights: Vec<i16>,
    scale: f32,
    trans: Vec<f32>,
    /// The tagging table: `2^bits` rows of `ROW` weights relative to tag O, at `fast_scale`.
    fast: Vec<i16>,
    fast_scale: f32,
}

impl Stage {
    /// Quantises float weights into a stage.
    pub fn from_floats(bits: u32, w: &[f32], trans: Vec<f32>) -> Self {
        let max = w.iter().fold(0f32, |m, x| m.max(x.abs())).max(1e-9);
        let scale = max / 32767.0;
        let weights = w.iter().map(|x| (x / scale).round() as i16).collect();
        Self::with_weights(bits, weights, scale, trans)
    }

    /// Returns a stage over quantised weights, its tagging table built.
    fn with_weights(bits: u32, weights: Vec<i16>, scale: f32, trans: Vec<f32>) -> Self {
        let mut stage = Self {
            bits,
            weights,
            scale,
            trans,
            fast: Vec::new(),
            fast_scale: 0.0,
        };
        stage.build_fast();
        stage
    }

    /// Builds the tagging table from the stored weights (differences halved to fit `i16`).
    fn build_fast(&mut self) {
        self.fast = self
            .weights
            .chunks_exact(N_TAGS)
            .flat_map(|r| {
                let o = i32::from(r[0]);
                r[1..].iter().map(move |&x| ((i32::from(x) - o) / 2) as i16)
            })
            .collect();
        self.fast_scale = self.scale * 2.0;
    }

    /// Zeroes weights smaller than `frac` of the largest (a smaller model file); returns how
    /// many non-zero weights remain.
    pub fn prune(&mut self, frac: f32) -> usize {
        let cut = (frac * 32767.0) as i16;
        for w in &mut self.weights {
            if w.abs() < cut {
                *w = 0;
            }
        }
        self.build_fast();
        self.weights.iter().filter(|w| **w != 0).count()
    }

    /// Writes emission scores for a sentence's features (`N_FEATURES` buckets per token).
    pub fn emissions(&self, feats: &[u32], em: &mut Vec<f32>) {
        em.clear();
        for tok in feats.chunks_exact(N_FEATURES) {
            let mut acc = [0i32; ROW];
            for &b in tok {
                let Some(row) = self.fast.get(b as usize * ROW..(b as usize + 1) * ROW) else {
                    continue;
                };
                for (a, &w) in acc.iter_mut().zip(row) {
                    *a += i32::from(w);
                }
            }
            em.push(0.0);
            em.extend(acc.iter().map(|&a| a as f32 * self.fast_scale));
        }
    }

    /// Decodes a sentence's features into tags.
    pub fn decode(&self, feats: &[u32], em: &mut Vec<f32>, out: &mut Vec<u8>) {
        self.emissions(feats, em);
        viterbi(em, &self.trans, out);
    }

    fn write_to(&self, z: &mut impl Write) -> std::io::Result<()> {
        if self.weights.len() != (1usize << self.bits) * N_TAGS {
            return Err(std::io::Error::other(
                "a stage loaded from a file keeps only its tagging table and cannot be written",
            ));
        }
        z.write_all(&self.bits.to_le_bytes())?;
        z.write_all(&self.scale.to_le_bytes())?;
        for t in &self.trans {
            z.write_all(&t.to_le_bytes())?;
        }
        // Weights are written tag-major so runs of zeros compress well.
        let rows = 1usize << self.bits;
        let mut buf = Vec::with_capacity(rows * 2);
        for t in 0..N_TAGS {
            buf.clear();
            for r in 0..rows {
                buf.extend_from_slice(&self.weights[r * N_TAGS + t].to_le_bytes());
            }
            z.write_all(&buf)?;
        }
        Ok(())
    }

    fn read_from(r: &mut Reader<'_>) -> anyhow::Result<Self> {
        let bits = r.u32()?;
        anyhow::ensure!(
            (8..=26).contains(&bits),
            "entity model has a bad table size"
        );
        let scale = f32::from_le_bytes(r.take(4)?.try_into()?);
        let trans = r
            .take((N_TAGS + 1) * N_TAGS * 4)?
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let rows = 1usize << bits;
        let body = r.take(rows * N_TAGS * 2)?;
        let mut weights = vec![0i16; rows * N_TAGS];
        for t in 0..N_TAGS {
            let col = &body[t * rows * 2..(t + 1) * rows * 2];
            for (w, c) in weights[t..]
                .iter_mut()
                .step_by(N_TAGS)
                .zip(col.chunks_exact(2))
            {
                *w = i16::from_le_bytes([c[0], c[1]]);
            }
        }
        let mut stage = Self::with_weights(bits, weights, scale, trans);
        // Tagging reads only the fast table.
        stage.weights = Vec::new();
        Ok(stage)
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> anyhow::Result<&'a [u8]> {
        anyhow::ensure!(self.0.len() >= n, "entity model file is truncated");
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn u32(&mut self) -> anyhow::Result<u32> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into()?))
    }
}

impl Model {
    /// Serialises the model, zlib-compressed.
    pub fn write(&self, out: impl Write) -> std::io::Result<()> {
        let mut z = flate2::write::ZlibEncoder::new(out, flate2::Compression::best());
        z.write_all(MAGIC)?;
        z.write_all(&(N_TAGS as u32).to_le_bytes())?;
        z.write_all(&(N_FEATURES as u32).to_le_bytes())?;
        z.write_all(&(self.resources.len() as u64).to_le_bytes())?;
        z.write_all(self.resources.as_bytes())?;
        z.write_all(&(self.stages.len() as u32).to_le_bytes())?;
        for s in &self.stages {
            s.write_to(&mut z)?;
        }
        z.finish()?;
        Ok(())
    }

    /// Reads a model written by [`Model::write`].
    pub fn read(bytes: &[u8]) -> anyhow::Result<Self> {
        use anyhow::{bail, Context};
        let mut raw = Vec::new();
        flate2::read::ZlibDecoder::new(bytes)
            .read_to_end(&mut raw)
            .context("entity model is not a valid compressed model file")?;
        let mut r = Reader(&raw);
        if r.take(8)? != MAGIC {
            bail!("not a dropline entity model (bad magic or version)");
        }
        let tags = r.u32()? as usize;
        let feats = r.u32()? as usize;
        if tags != N_TAGS || feats != N_FEATURES {
            bail!("entity model was built for other features (tags {tags}, templates {feats})");
        }
        let res_len = u64::from_le_bytes(r.take(8)?.try_into()?) as usize;
        let resources = String::from_utf8(r.take(res_len)?.to_vec())
            .context("entity model resources are not UTF-8")?;
        let n = r.u32()?;
        anyhow::ensure!((1..=4).contains(&n), "entity model has {n} stages");
        let stages = (0..n)
            .map(|_| Stage::read_from(&mut r))
            .collect::<anyhow::Result<_>>()?;
        Ok(Self { stages, resources })
    }
}

/// Averaged-perceptron training state over the same table layout as [`Model`].
pub struct Trainer {
    pub bits: u32,
    w: Vec<i32>,
    /// Sum of `step * update`, so the average is `w - u / step`.
    u: Vec<i64>,
    tw: Vec<i32>,
    tu: Vec<i64>,
    step: i64,
    em: Vec<f32>,
}

impl Trainer {
    /// Returns a zeroed trainer with `2^bits` rows.
    pub fn new(bits: u32) -> Self {
        let rows = 1usize << bits;
        Self {
            bits,
            w: vec![0; rows * N_TAGS],
            u: vec![0; rows * N_TAGS],
            tw: vec![0; (N_TAGS + 1) * N_TAGS],
            tu: vec![0; (N_TAGS + 1) * N_TAGS],
            step: 1,
            em: Vec::new(),
        }
    }

    /// Decodes with the current (not averaged) weights, updates towards `gold`, and returns
    /// the number of wrong tags.
    pub fn learn(&mut self, feats: &[u32], gold: &[u8], pred: &mut Vec<u8>) -> usize {
        self.em.clear();
        for tok in feats.chunks_exact(N_FEATURES) {
            let mut acc = [0i32; N_TAGS];
            for &b in tok {
                let row = &self.w[b as usize * N_TAGS..(b as usize + 1) * N_TAGS];
                for (a, &w) in acc.iter_mut().zip(row) {
                    *a += w;
                }
            }
            self.em.extend(acc.iter().map(|&a| a as f32));
        }
        let trans: Vec<f32> = self.tw.iter().map(|&t| t as f32).collect();
        viterbi(&self.em, &trans, pred);
        let mut wrong = 0;
        let step = self.step;
        for i in 0..gold.len() {
            let (g, p) = (gold[i] as usize, pred[i] as usize);
            let gp = if i == 0 { START } else { gold[i - 1] as usize };
            let pp = if i == 0 { START } else { pred[i - 1] as usize };
            if g != p {
                wrong += 1;
                for &b in &feats[i * N_FEATURES..(i + 1) * N_FEATURES] {
                    let base = b as usize * N_TAGS;
                    self.w[base + g] += 1;
                    self.u[base + g] += step;
                    self.w[base + p] -= 1;
                    self.u[base + p] -= step;
                }
            }
            if g != p || gp != pp {
                self.tw[gp * N_TAGS + g] += 1;
                self.tu[gp * N_TAGS + g] += step;
                self.tw[pp * N_TAGS + p] -= 1;
                self.tu[pp * N_TAGS + p] -= step;
            }
        }
        self.step += 1;
        wrong
    }

    /// Returns the averaged weights as a stage.
    pub fn averaged(&self) -> Stage {
        average_of(std::slice::from_ref(self))
    }
}

/// Returns the mean of several trainers' averaged weights (a bagged ensemble folded into one
/// table, so tagging costs the same as with one model).
pub fn average_of(trainers: &[Trainer]) -> Stage {
    let first = &trainers[0];
    let mut w = vec![0f32; first.w.len()];
    let mut t = vec![0f32; first.tw.len()];
    let k = trainers.len() as f64;
    for tr in trainers {
        let c = tr.step as f64;
        for ((o, &x), &u) in w.iter_mut().zip(&tr.w).zip(&tr.u) {
            *o += ((f64::from(x) - u as f64 / c) / k) as f32;
        }
        for ((o, &x), &u) in t.iter_mut().zip(&tr.tw).zip(&tr.tu) {
            *o += ((f64::from(x) - u as f64 / c) / k) as f32;
        }
    }
    Stage::from_floats(first.bits, &w, t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_round_trip_and_constraints() {
        for ty in 0..4 {
            for part in [Part::Begin, Part::Inside, Part::Last, Part::Unit] {
                assert_eq!(part_of(tag(part, ty)), (part, ty));
            }
        }
        assert!(allowed(START, tag(Part::Begin, 1)));
        assert!(!allowed(START, tag(Part::Inside, 1)));
        assert!(allowed(tag(Part::Begin, 1), tag(Part::Last, 1)));
        assert!(!allowed(tag(Part::Begin, 1), tag(Part::Last, 2)));
        assert!(!allowed(tag(Part::Begin, 1), 0));
    }

    #[test]
    fn learns_a_toy_pattern_and_round_trips() {
        // One feature per template; token 0 always a unit PER, token 1 always O.
        let mut feats = Vec::new();
        for tok in 0..2u32 {
            for f in 0..N_FEATURES as u32 {
                feats.push(tok * 100 + f);
            }
        }
        let gold = vec![tag(Part::Unit, 0) as u8, 0];
        let mut tr = Trainer::new(10);
        let mut pred = Vec::new();
        for _ in 0..5 {
            tr.learn(&feats, &gold, &mut pred);
        }
        let model = Model {
            stages: vec![tr.averaged()],
            resources: "C\tx\t1\t2\t3\n".into(),
        };
        let mut bytes = Vec::new();
        model.write(&mut bytes).unwrap();
        let back = Model::read(&bytes).unwrap();
        assert_eq!(back.resources, model.resources);
        let (mut em, mut out) = (Vec::new(), Vec::new());
        back.stages[0].decode(&feats, &mut em, &mut out);
        assert_eq!(out, gold);
        assert!(Model::read(b"garbage").is_err());
    }
}
