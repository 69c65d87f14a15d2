//! Owns the story tier's view of a document: its terms (content-word hashes with counts and a
//! name flag), the stop words, and the IDF and TF weights story vectors are built from.

use super::TermTable;
use crate::dedup::text::{IdMap, IdSet, Word};

const TERM_BITS: u32 = 24;
const TF_MAX: u32 = 127;
/// Distinct terms kept per document (the most frequent, ties by term id).
pub const MAX_TERMS: usize = 400;

/// One term of a document: a 24-bit word hash, its count and whether it looked like a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Term {
    pub id: u32,
    pub tf: u8,
    pub name_like: bool,
}

impl Term {
    /// Returns the term packed as `id << 8 | name_like << 7 | tf`.
    pub fn pack(self) -> u32 {
        (self.id << 8) | (u32::from(self.name_like) << 7) | u32::from(self.tf)
    }

    /// Unpacks what [`Term::pack`] wrote.
    pub fn unpack(v: u32) -> Self {
        Self {
            id: v >> 8,
            tf: (v & 0x7f) as u8,
            name_like: v & 0x80 != 0,
        }
    }
}

/// Returns the story terms of a document: words of three or more bytes that are not stop words.
pub fn terms(words: &[Word]) -> Vec<Term> {
    let mut counts: IdMap<u32, (u32, u32)> = IdMap::default();
    for w in words {
        if w.len < 3 || is_stop(w.hash) {
            continue;
        }
        let id = (w.hash >> (64 - TERM_BITS)) as u32;
        let e = counts.entry(id).or_insert((0, 0));
        e.0 += 1;
        e.1 += u32::from(w.name_like);
    }
    let mut out: Vec<Term> = counts
        .into_iter()
        .map(|(id, (tf, names))| Term {
            id,
            tf: tf.min(TF_MAX) as u8,
            name_like: names * 2 >= tf,
        })
        .collect();
    out.sort_unstable_by(|a, b| b.tf.cmp(&a.tf).then(a.id.cmp(&b.id)));
    out.truncate(MAX_TERMS);
    out.sort_unstable();
    out
}

/// One story centroid entry in 6 bytes instead of 8: the key (`term id << 2 | listed << 1 |
/// name-like`, 26 bits) and the mass, an `f32` without its sign (masses are positive) and its 9
/// lowest mantissa bits, rounded to nearest (relative error below 3e-5): 22 mass bits, the top
/// 6 of them below the key in [`Cell::order`] and the low 16 beside it. `order` is then one
/// unaligned 4-byte load that orders cells as their terms do, with no mask or shift: a
/// centroid scan compares it with [`order_of`] its term. Packed (a copy of a field is read,
/// never a reference), so a cell stays 6 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C, packed)]
pub(super) struct Cell {
    /// `key << 6 | mass bits >> 16`.
    order: u32,
    /// The mass bits' low 16.
    mass_low: u16,
}

/// The [`Cell::order`] bound of term `t` (24 bits): a cell's term is below `t` exactly when
/// its order is below this, and is `t` when its order shifted right by 8 is.
#[inline(always)]
pub(super) fn order_of(t: u32) -> u32 {
    debug_assert!(t < 1 << 24);
    t << 8
}

impl Cell {
    const KEY_BITS: u32 = 26;
    const MASS_BITS: u32 = 22;

    pub(super) fn new(key: u32, mass: f32) -> Self {
        Self::from_parts(key, Self::mass_bits(mass))
    }

    /// The 22 bits `mass` is kept in.
    #[inline(always)]
    fn mass_bits(mass: f32) -> u32 {
        let bits = mass.max(0.0).to_bits();
        (bits.saturating_add(1 << 8) >> 9).min((1 << Self::MASS_BITS) - 1)
    }

    /// The cell of `key` and the mass bits `m`.
    #[inline(always)]
    fn from_parts(key: u32, m: u32) -> Self {
        Self {
            order: (key & ((1 << Self::KEY_BITS) - 1)) << 6 | m >> 16,
            mass_low: m as u16,
        }
    }

    /// Sets `flags` in the key and adds `mass` to the mass; returns the key and the mass
    /// before (the mass as [`Cell::mass`] read it, so the sum is the one a new cell of
    /// `mass() + mass` would hold).
    #[inline(always)]
    pub(super) fn add(&mut self, flags: u32, mass: f32) -> (u32, f32) {
        let (key, before) = (self.key(), self.mass());
        *self = Self::from_parts(key | flags, Self::mass_bits(before + mass));
        (key, before)
    }

    /// `key << 6 | the mass bits' top 6`: ordered as the terms are (see [`order_of`]).
    #[inline(always)]
    pub(super) fn order(self) -> u32 {
        self.order
    }

    #[inline]
    pub(super) fn key(self) -> u32 {
        self.order() >> 6
    }

    /// The term id, `key() >> 2`.
    #[inline]
    pub(super) fn term(self) -> u32 {
        self.order() >> 8
    }

    #[inline]
    pub(super) fn mass(self) -> f32 {
        let m = (self.order & 0x3f) << 16 | u32::from(self.mass_low);
        f32::from_bits(m << 9)
    }
}

/// Returns whether the word with this hash is a stop word.
pub(in crate::dedup) fn is_stop(hash: u64) -> bool {
    static STOP: std::sync::OnceLock<IdSet<u64>> = std::sync::OnceLock::new();
    STOP.get_or_init(|| {
        STOP_WORDS
            .split_whitespace()
            .map(|w| xxhash_rust::xxh3::xxh3_64(w.as_bytes()))
            .collect()
    })
    .contains(&hash)
}

const STOP_WORDS: &str = "the and for are but not you all any can had her was one our out has \
    him his how its may new now old see two who did get she too use that with have this will \
    your from they know want been good much some time very when come here just like long make \
    many more only over such take than them well were what said says also into after before \
    about would could should their there these those which while where other being does most \
    last first year years week since then because between during under again further once \
    both each few own same yet per via its it's mr mrs ms according told reported report \
    reports news";

/// Returns the IDF of a term with document frequency `df` after `n` documents. `power` 1.0
/// skips `powf` (which returns its base unchanged there).
fn idf_value(n: f32, df: u32, power: f32) -> f32 {
    let x = ((n + 1.0) / (df as f32 + 1.0)).ln() + 1.0;
    if power == 1.0 {
        x
    } else {
        x.powf(power)
    }
}

/// Background document frequencies that an early stream's IDF is blended with: `docs`
/// documents seen elsewhere (on other topics) and the number of them holding each term. The
/// IDF of a term is then that of `df + prior df` in `n + prior docs` documents: the first
/// documents of a stream get the contrast between common and rare words that stream counts
/// alone only give after many documents, and as the stream grows its own counts dominate.
#[derive(Debug, Default)]
pub struct DfPrior {
    docs: u64,
    df: IdMap<u32, u32>,
}

impl DfPrior {
    /// Counts the documents (each given as its [`terms`]) holding each term.
    pub fn from_docs<'a>(docs: impl IntoIterator<Item = &'a [Term]>) -> Self {
        let mut p = Self::default();
        for terms in docs {
            p.docs += 1;
            for t in terms {
                *p.df.entry(t.id).or_insert(0) += 1;
            }
        }
        p
    }

    /// Builds a prior from `docs` documents and each term's document frequency.
    pub fn from_counts(docs: u64, df: impl IntoIterator<Item = (u32, u32)>) -> Self {
        Self {
            docs,
            df: df.into_iter().collect(),
        }
    }

    /// Background documents counted.
    pub fn docs(&self) -> u64 {
        self.docs
    }

    /// Each term with its document frequency, in term id order.
    pub fn counts(&self) -> Vec<(u32, u32)> {
        let mut v: Vec<(u32, u32)> = self.df.iter().map(|(&t, &n)| (t, n)).collect();
        v.sort_unstable();
        v
    }

    fn df(&self, term: u32) -> u32 {
        self.df.get(&term).copied().unwrap_or(0)
    }
}

/// Document frequencies below this get their IDF cached per call.
const SMALL_DF: usize = 64;

/// The IDF of every term at one moment (a fixed document count). Most terms are rare, so the
/// values are cached by document frequency and a handful of `ln` calls serve a whole document.
pub(super) struct Idf<'a> {
    df: &'a TermTable,
    prior: Option<&'a DfPrior>,
    n: f32,
    power: f32,
    /// IDF by document frequency, NaN until computed.
    small: [f32; SMALL_DF],
}

impl<'a> Idf<'a> {
    pub(super) fn new(
        df: &'a TermTable,
        prior: Option<&'a DfPrior>,
        docs_seen: u64,
        power: f32,
    ) -> Self {
        Self {
            df,
            prior,
            n: (docs_seen + prior.map_or(0, DfPrior::docs)) as f32,
            power,
            small: [f32::NAN; SMALL_DF],
        }
    }

    #[inline(always)]
    pub(super) fn of(&mut self, term: u32) -> f32 {
        let df = self.df.df(term) + self.prior.map_or(0, |p| p.df(term));
        match self.small.get(df as usize) {
            Some(&v) if !v.is_nan() => v,
            _ => self.compute(df),
        }
    }

    /// [`Idf::of`] for a document frequency whose value is not cached yet (or never is).
    #[inline(never)]
    fn compute(&mut self, df: u32) -> f32 {
        let v = idf_value(self.n, df, self.power);
        if let Some(slot) = self.small.get_mut(df as usize) {
            *slot = v;
        }
        v
    }
}

/// Returns `1 + ln(tf)` (tf at least 1) for every count a term can carry.
pub(super) fn tf_weights() -> &'static [f32; 256] {
    static TABLE: std::sync::OnceLock<[f32; 256]> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        let mut t = [0.0f32; 256];
        for (tf, w) in t.iter_mut().enumerate() {
            // Computed at run time as the per-term formula was, so the values are the same.
            let tf = std::hint::black_box(tf.max(1) as u8);
            *w = 1.0 + f32::from(tf).ln();
        }
        t
    })
}

#[cfg(test)]
mod tests {
    use super::{order_of, Cell};

    #[test]
    fn cell_keeps_the_key_and_the_mass_to_3e_5() {
        for (key, mass) in [
            (0u32, 0.0f32),
            (0x03ff_ffff, 1.0),
            (12345 << 2 | 3, 0.123_456_7),
        ] {
            let c = Cell::new(key, mass);
            assert_eq!(c.key(), key);
            assert_eq!(c.term(), key >> 2);
            assert!(
                (c.mass() - mass).abs() <= mass * 3e-5,
                "{mass} -> {}",
                c.mass()
            );
        }
        assert_eq!(std::mem::size_of::<Cell>(), 6);
    }

    #[test]
    fn adding_to_a_cell_is_making_the_summed_one() {
        let mut rng = crate::dedup::eval::Rng(9);
        for _ in 0..20_000 {
            let key = rng.below(1 << 26) as u32;
            let mass = rng.below(1 << 24) as f32 / 65536.0;
            let more = rng.below(1 << 20) as f32 / 1e6;
            let flags = rng.below(4) as u32;
            let mut c = Cell::new(key, mass);
            let want = Cell::new(key | flags, c.mass() + more);
            assert_eq!(c.add(flags, more), (key, Cell::new(key, mass).mass()));
            assert_eq!(c, want);
        }
    }

    #[test]
    fn a_cells_order_compares_as_its_term_does() {
        let mut rng = crate::dedup::eval::Rng(5);
        for i in 0..20_000u32 {
            let key = match i {
                0 => 0,
                1 => (1 << 26) - 1,
                _ => rng.below(1 << 26) as u32,
            };
            let mass = match i % 4 {
                0 => f32::MAX,
                1 => 0.0,
                _ => rng.below(1 << 24) as f32 / 4096.0,
            };
            let c = Cell::new(key, mass);
            let term = key >> 2;
            let near = [term.saturating_sub(1), term, (term + 1).min((1 << 24) - 1)];
            for t in near.into_iter().chain([rng.below(1 << 24) as u32]) {
                assert_eq!(
                    c.order() < order_of(t),
                    term < t,
                    "key {key} mass {mass} t {t}"
                );
                assert_eq!(c.order() >> 8 == t, term == t);
            }
        }
    }
}
