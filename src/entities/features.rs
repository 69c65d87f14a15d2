//! Owns hashed feature extraction: token-derived u64 hashes combined per template into buckets.
//!
//! Nothing here builds a `String` per feature: words, lower-case forms, shapes and affixes are
//! hashed character by character once per token, and each feature is a mix of (template id,
//! value) reduced to a bucket of the weight table.

use super::resources::{IdMap, ResourcesView, GAZ_TYPES};

/// Number of feature templates; every token emits exactly one bucket per template.
pub const N_FEATURES: usize = 55;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
/// Stands in for a missing neighbour (before the first or after the last token).
const PAD: u64 = 0x5eed_0f0f_dead_beef;

/// Returns a well-mixed 64-bit value (the splitmix64 finaliser).
#[inline]
pub fn mix(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Combines two hashes, order-sensitively.
#[inline]
pub fn combine(a: u64, b: u64) -> u64 {
    mix(a.rotate_left(23) ^ b.wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

#[inline]
fn feed(h: u64, c: u32) -> u64 {
    (h ^ u64::from(c)).wrapping_mul(FNV_PRIME)
}

/// Returns the hash of the lower-case form of `word` (the key of clusters and gazetteer).
pub fn lower_hash(word: &str) -> u64 {
    let mut h = FNV_OFFSET;
    for c in word.chars() {
        h = feed_lower(h, c);
    }
    mix(h)
}

/// Feeds the lower-case form of `c` (one character for ASCII, possibly more otherwise).
#[inline]
fn feed_lower(mut h: u64, c: char) -> u64 {
    if c.is_ascii() {
        return feed(h, c.to_ascii_lowercase() as u32);
    }
    for l in c.to_lowercase() {
        h = feed(h, l as u32);
    }
    h
}

/// Bit flags describing a token's form.
pub mod flag {
    pub const TITLE: u32 = 1;
    pub const ALL_CAPS: u32 = 2;
    pub const LOWER: u32 = 4;
    pub const DIGIT: u32 = 8;
    pub const ALNUM: u32 = 16;
    pub const SENT_START: u32 = 32;
}

/// What features need to know about one token; computed once per token.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokInfo {
    pub word: u64,
    pub lower: u64,
    pub shape: u64,
    pub short: u64,
    pub pre: [u64; 4],
    pub suf: [u64; 4],
    pub flags: u32,
    pub clusters: [u16; 3],
    /// Per gazetteer type, the token's position in a match: 0 none, 1 B, 2 I, 3 L, 4 U.
    pub gaz: [u8; GAZ_TYPES],
    /// Document-level evidence: bit 0 the word occurs in lower case elsewhere in the document,
    /// bit 1 it occurs capitalised elsewhere away from a sentence start.
    pub doc: u8,
    /// Whether the token's sentence is mostly upper case (a headline).
    pub caps_line: bool,
    /// Position in a run of capitalised tokens (1 B, 2 I, 3 L, 4 U) times 8 plus the run's
    /// length (at most 5); 0 outside runs.
    pub run: u8,
    /// Second pass only: 1 + the entity type the first pass gave most often to other
    /// occurrences of this word in the document (0 none).
    pub prior: u8,
    /// Second pass only: bit set of types the first pass gave other occurrences.
    pub prior_mask: u8,
    /// Second pass only: the first pass's own tag for this token.
    pub first: u8,
    /// Second pass only: bit set of types of first-pass entities elsewhere in the document that
    /// hold this word followed by the next one (`pair_next`) or preceded by the previous one.
    pub pair_next: u8,
    pub pair_prev: u8,
    /// Whether the word is only lower-case letters and ASCII punctuation other than `@` and `#`
    /// (no capital, digit, caseless letter or other symbol): a token [`super::gate`] may fix to
    /// O far from any other.
    pub plain: bool,
}

impl TokInfo {
    /// Returns whether the word is capitalised: title case or all capitals.
    #[inline]
    pub fn capitalised(&self) -> bool {
        self.flags & (flag::TITLE | flag::ALL_CAPS) != 0
    }
}

/// Fills the second-pass fields from first-pass BILOU `tags` over the whole document
/// (non-local evidence: how the same word was tagged elsewhere).
pub fn set_priors(infos: &mut [TokInfo], tags: &[u8]) {
    let type_of = |t: u8| -> Option<usize> { (t > 0).then(|| (usize::from(t) - 1) / 4) };
    // Sized once for every tagged token (at most that many words or pairs): no map grows
    // and rehashes while the document is counted.
    let tagged = tags.iter().take(infos.len()).filter(|&&t| t > 0).count();
    let mut counts: IdMap<[u32; 4]> = IdMap::with_capacity_and_hasher(tagged, Default::default());
    // Most words are never tagged: a clear bit here spares their lookups below.
    let mut words = HashFilter::default();
    for (t, &tag) in infos.iter().zip(tags) {
        if let Some(ty) = type_of(tag) {
            counts.entry(t.lower).or_default()[ty] += 1;
            words.insert(t.lower);
        }
    }
    // Adjacent word pairs inside one first-pass entity, by type.
    let inside = |a: u8, b: u8| -> Option<usize> {
        let (ta, tb) = (type_of(a)?, type_of(b)?);
        // a is B or I, b is I or L of the same type.
        (ta == tb && matches!((a - 1) % 4, 0 | 1) && matches!((b - 1) % 4, 1 | 2)).then_some(ta)
    };
    let mut pairs: IdMap<[u32; 4]> = IdMap::with_capacity_and_hasher(tagged, Default::default());
    let pair_key = |i: usize, infos: &[TokInfo]| combine(infos[i].lower, infos[i + 1].lower);
    for i in 0..infos.len().saturating_sub(1) {
        if let Some(ty) = inside(tags[i], tags[i + 1]) {
            pairs.entry(pair_key(i, infos)).or_default()[ty] += 1;
        }
    }
    for i in 0..infos.len().saturating_sub(1) {
        // A counted pair was tagged inside one entity, so both its words were tagged.
        let counted = words.may_hold(infos[i].lower) && words.may_hold(infos[i + 1].lower);
        let mut c = if counted {
            pairs.get(&pair_key(i, infos)).copied().unwrap_or_default()
        } else {
            [0; 4]
        };
        if let Some(ty) = inside(tags[i], tags[i + 1]) {
            c[ty] -= 1;
        }
        let mask = c
            .iter()
            .enumerate()
            .fold(0, |m, (k, &n)| m | (u8::from(n > 0) << k));
        infos[i].pair_next = mask;
        infos[i + 1].pair_prev = mask;
    }
    for (t, &tag) in infos.iter_mut().zip(tags) {
        t.first = tag;
        let mut c = if words.may_hold(t.lower) {
            counts.get(&t.lower).copied().unwrap_or_default()
        } else {
            [0; 4]
        };
        if let Some(ty) = type_of(tag) {
            c[ty] -= 1;
        }
        t.prior_mask = c
            .iter()
            .enumerate()
            .fold(0, |m, (i, &n)| m | (u8::from(n > 0) << i));
        t.prior = match (0..4).max_by_key(|&i| c[i]) {
            Some(i) if c[i] > 0 => i as u8 + 1,
            _ => 0,
        };
    }
}

/// A set of well-mixed hashes that may answer "maybe" for one it does not hold, never "no"
/// for one it holds: 1,024 bits, one per value of a hash's top ten bits.
#[derive(Default)]
struct HashFilter([u64; 16]);

impl HashFilter {
    fn insert(&mut self, h: u64) {
        let b = (h >> 54) as usize;
        self.0[b >> 6 & 15] |= 1 << (b & 63);
    }

    fn may_hold(&self, h: u64) -> bool {
        let b = (h >> 54) as usize;
        self.0[b >> 6 & 15] & (1 << (b & 63)) != 0
    }
}

#[inline]
fn shape_code(c: char) -> u32 {
    if c.is_ascii() {
        return match c {
            'A'..='Z' => 'X' as u32,
            'a'..='z' => 'x' as u32,
            '0'..='9' => 'd' as u32,
            _ => c as u32,
        };
    }
    if c.is_uppercase() {
        'X' as u32
    } else if c.is_lowercase() {
        'x' as u32
    } else if c.is_numeric() {
        'd' as u32
    } else {
        c as u32
    }
}

/// Computes the form-only part of a token's information (clusters are looked up later, all
/// together, so that their cache misses overlap).
fn token_form(word: &str, sent_start: bool) -> TokInfo {
    if word.is_ascii() {
        // Most tokens are ASCII: their characters are their bytes, with no UTF-8 decoding.
        form_of(word.bytes().map(char::from), sent_start)
    } else {
        form_of(word.chars(), sent_start)
    }
}

/// [`token_form`] over the characters of the word.
#[inline(always)]
fn form_of<I>(chars: I, sent_start: bool) -> TokInfo
where
    I: DoubleEndedIterator<Item = char> + Clone,
{
    let mut info = TokInfo::default();
    let mut h_word = FNV_OFFSET;
    let mut h_lower = FNV_OFFSET;
    let mut h_shape = FNV_OFFSET;
    let mut h_short = FNV_OFFSET;
    let mut last_code = 0u32;
    let (mut upper, mut lower, mut digit, mut n) = (0usize, 0usize, 0usize, 0usize);
    // Characters that are neither letters with case, digits nor ASCII punctuation.
    let mut other = 0usize;
    let mut first_upper = false;
    for (i, c) in chars.clone().enumerate() {
        h_word = feed(h_word, c as u32);
        h_lower = feed_lower(h_lower, c);
        if i < 4 {
            info.pre[i] = mix(h_lower);
        }
        let code = shape_code(c);
        if i < 6 {
            h_shape = feed(h_shape, code);
        }
        if code != last_code {
            h_short = feed(h_short, code);
            last_code = code;
        }
        // The shape code already classifies the character.
        if code == 'X' as u32 {
            upper += 1;
            if i == 0 {
                first_upper = true;
            }
        } else if code == 'x' as u32 {
            lower += 1;
        } else if code == 'd' as u32 {
            digit += 1;
        } else if !c.is_ascii_punctuation() || c == '@' || c == '#' {
            // `@` and `#` start a user name or a hashtag (split off by the tokenizer): in
            // social text, names.
            other += 1;
        }
        n += 1;
    }
    let mut h_suf = FNV_OFFSET;
    for (i, c) in chars.rev().take(4).enumerate() {
        h_suf = feed_lower(h_suf, c);
        info.suf[i] = mix(h_suf ^ 0x5f);
    }
    for i in n.min(4)..4 {
        info.pre[i] = PAD;
        info.suf[i] = PAD;
    }
    info.word = mix(h_word);
    info.lower = mix(h_lower);
    info.shape = mix(h_shape ^ (n.min(8) as u64) << 56);
    info.short = mix(h_short);
    if first_upper && upper < n {
        info.flags |= flag::TITLE;
    }
    if upper > 0 && lower == 0 {
        info.flags |= flag::ALL_CAPS;
    }
    if lower > 0 && upper == 0 {
        info.flags |= flag::LOWER;
    }
    if digit > 0 {
        info.flags |= flag::DIGIT;
    }
    if upper + lower + digit > 0 {
        info.flags |= flag::ALNUM;
    }
    if sent_start {
        info.flags |= flag::SENT_START;
    }
    info.plain = n > 0 && upper == 0 && digit == 0 && other == 0;
    info
}

/// Computes token information for a whole document: `words[i]` with `sent_start[i]` marking
/// sentence starts and `sentences` the token ranges of the sentences.
pub fn doc_infos(
    words: &[&str],
    sentences: &[std::ops::Range<usize>],
    res: &ResourcesView<'_>,
) -> Vec<TokInfo> {
    let mut infos = Vec::with_capacity(words.len());
    doc_infos_into(words, sentences, res, &mut infos);
    infos
}

/// [`doc_infos`] into a reused buffer (cleared first).
pub fn doc_infos_into(
    words: &[&str],
    sentences: &[std::ops::Range<usize>],
    res: &ResourcesView<'_>,
    infos: &mut Vec<TokInfo>,
) {
    infos.clear();
    infos.reserve(words.len());
    for s in sentences {
        // Through this thread's cache of recent word forms (see [`forms`]).
        let sent = words[s.clone()].iter().enumerate();
        forms::push_forms(sent.map(|(k, w)| (*w, k == 0)), infos);
        let alpha = infos[s.clone()]
            .iter()
            .filter(|t| t.flags & (flag::TITLE | flag::ALL_CAPS | flag::LOWER) != 0)
            .count();
        let caps = infos[s.clone()]
            .iter()
            .filter(|t| t.flags & flag::ALL_CAPS != 0)
            .count();
        let caps_line = alpha >= 2 && caps * 10 >= alpha * 7;
        for t in &mut infos[s.clone()] {
            t.caps_line = caps_line;
        }
    }
    // The lookups below read only the forms, so their table lines are asked for first.
    res.prefetch(infos);
    for s in sentences {
        res.mark_gazetteer(&mut infos[s.clone()]);
        mark_runs(&mut infos[s.clone()]);
    }
    for t in infos.iter_mut() {
        t.clusters = res.clusters(t.lower);
    }
    // Document-level casing evidence: how the same word is written elsewhere.
    // Sized once for every token (at most that many words): the map never grows and rehashes.
    let mut seen: IdMap<(u32, u32)> =
        IdMap::with_capacity_and_hasher(infos.len(), Default::default());
    for t in infos.iter() {
        let e = seen.entry(t.lower).or_default();
        if t.flags & flag::LOWER != 0 {
            e.0 += 1;
        }
        if t.flags & flag::TITLE != 0 && t.flags & flag::SENT_START == 0 && !t.caps_line {
            e.1 += 1;
        }
    }
    for t in infos.iter_mut() {
        let (lo, ti) = seen.get(&t.lower).copied().unwrap_or_default();
        let own_lo = u32::from(t.flags & flag::LOWER != 0);
        let own_ti = u32::from(
            t.flags & flag::TITLE != 0 && t.flags & flag::SENT_START == 0 && !t.caps_line,
        );
        t.doc = u8::from(lo > own_lo) | (u8::from(ti > own_ti) << 1);
    }
}

/// Marks runs of capitalised tokens in one sentence.
fn mark_runs(sent: &mut [TokInfo]) {
    let cap = TokInfo::capitalised;
    let mut i = 0;
    while i < sent.len() {
        if !cap(&sent[i]) {
            i += 1;
            continue;
        }
        let mut j = i;
        while j < sent.len() && cap(&sent[j]) {
            j += 1;
        }
        let len = (j - i).min(5) as u8;
        for (k, t) in sent.iter_mut().enumerate().take(j).skip(i) {
            let pos = if j - i == 1 {
                4
            } else if k == i {
                1
            } else if k + 1 == j {
                3
            } else {
                2
            };
            t.run = pos * 8 + len;
        }
        i = j;
    }
}

mod forms;
mod templates;
pub use templates::{
    refresh_kept, refresh_second_pass, sentence_features, write_features, write_kept, FIRST_PASS,
    ORDER, SECOND_PASS,
};

#[cfg(test)]
#[path = "features_tests.rs"]
mod tests;
