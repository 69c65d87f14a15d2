//! Owns the rules for numeric and time entities: DATE, TIME, MONEY, PERCENT, QUANTITY,
//! CARDINAL and ORDINAL, matched over tokens the statistical model left outside names.

use std::ops::Range;

/// A rule match over token indices with its label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleSpan {
    pub start: usize,
    pub end: usize,
    pub label: &'static str,
}

use super::lexicon::*;

fn is(list: &[&str], w: &str) -> bool {
    list.iter().any(|x| x.eq_ignore_ascii_case(w))
}

/// The long word lists, as bits of [`lists`]' answer.
const MONTH: u8 = 1;
const NUMBER: u8 = 2;
const CURRENCY: u8 = 4;
const UNIT: u8 = 8;
const DURATION: u8 = 16;

/// Each long list and its bit.
const LIST_BITS: [(&[&str], u8); 6] = [
    (MONTHS, MONTH),
    (MONTH_ABBR, MONTH),
    (NUMBER_WORDS, NUMBER),
    (CURRENCY_WORDS, CURRENCY),
    (UNITS, UNIT),
    (DURATIONS, DURATION),
];

/// Per ASCII-lower-cased word, the long lists holding it (what `is` would say of each).
static LISTS: std::sync::LazyLock<foldhash::HashMap<Vec<u8>, u8>> =
    std::sync::LazyLock::new(|| {
        let mut map = foldhash::HashMap::<Vec<u8>, u8>::default();
        for (list, bit) in LIST_BITS {
            for w in list {
                *map.entry(w.to_ascii_lowercase().into_bytes()).or_default() |= bit;
            }
        }
        map
    });

/// Bytes of the longest word in [`LISTS`] or more: a longer word is in none of them.
const LONGEST_LISTED: usize = 16;

/// Returns the bits of the long lists `w` is in, matched ignoring ASCII case as [`is`] does:
/// one table lookup instead of a scan of each list.
fn lists(w: &str) -> u8 {
    let mut buf = [0u8; LONGEST_LISTED];
    let Some(b) = buf.get_mut(..w.len()) else {
        return 0;
    };
    b.copy_from_slice(w.as_bytes());
    b.make_ascii_lowercase();
    LISTS.get(&b[..]).copied().unwrap_or(0)
}

/// Returns whether `w` is a written number: digits with `,` or `.` separators.
fn is_numeral(w: &str) -> bool {
    let mut digits = 0;
    for c in w.chars() {
        if c.is_ascii_digit() {
            digits += 1;
        } else if c != ',' && c != '.' {
            return false;
        }
    }
    digits > 0 && w.starts_with(|c: char| c.is_ascii_digit())
}

fn is_month(w: &str) -> bool {
    lists(w) & MONTH != 0
}

fn is_number_word(w: &str) -> bool {
    if lists(w) & NUMBER != 0 {
        return true;
    }
    // "twenty-five"
    match before_hyphen(w) {
        Some(a) => lists(a) & NUMBER != 0 && lists(&w[a.len() + 1..]) & NUMBER != 0,
        None => false,
    }
}

fn is_ordinal(w: &str) -> bool {
    if is(ORDINALS, w) {
        return true;
    }
    let lower = w.to_ascii_lowercase();
    for suf in ["st", "nd", "rd", "th"] {
        if let Some(num) = lower.strip_suffix(suf) {
            if !num.is_empty() && num.chars().all(|c| c.is_ascii_digit()) {
                return true;
            }
        }
    }
    false
}

fn is_year(w: &str) -> bool {
    w.len() == 4
        && w.chars().all(|c| c.is_ascii_digit())
        && matches!(w.parse::<u32>(), Ok(1800..=2099))
}

fn is_day(w: &str) -> bool {
    let d = w.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    !d.is_empty() && d.len() <= 2 && matches!(d.parse::<u32>(), Ok(1..=31))
}

/// Returns whether `w` is a date written in digits: `1996-08-30`, `30/08/1996`, `08/30/96`,
/// or with a month name in the middle: `09.Jan.2026`, `14-Jan-2026`.
fn is_numeric_date(w: &str) -> bool {
    for sep in ['-', '/', '.'] {
        // Exactly three parts, split without collecting.
        let mut split = w.split(sep);
        let parts: [&str; 3] = match [split.next(), split.next(), split.next(), split.next()] {
            [Some(a), Some(b), Some(c), None] => [a, b, c],
            _ => continue,
        };
        if is_month(parts[1])
            && is_day(parts[0])
            && parts[2].len() >= 2
            && parts[2].chars().all(|c| c.is_ascii_digit())
        {
            return true;
        }
        if parts
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 4 && p.chars().all(|c| c.is_ascii_digit()))
            && (parts[0].len() == 4 || parts[2].len() >= 2)
        {
            return true;
        }
    }
    false
}

fn is_clock(w: &str) -> bool {
    let core = w.trim_end_matches(|c: char| c.is_ascii_alphabetic() || c == '.');
    match core.split_once(':') {
        Some((h, m)) => {
            !h.is_empty()
                && h.len() <= 2
                && h.chars().all(|c| c.is_ascii_digit())
                && m.len() == 2
                && m.chars().all(|c| c.is_ascii_digit())
        }
        None => false,
    }
}

/// Returns the number of tokens of a number phrase at `i` ("2.5 million", "five hundred").
fn number_len(words: &[&str], i: usize, end: usize) -> usize {
    let mut j = i;
    while j < end {
        let w = words[j];
        let ok = if j == i {
            is_numeral(w) || is_number_word(w)
        } else {
            is(SCALES, w) || (is_number_word(w) && !is_numeral(words[j - 1]))
        };
        if !ok {
            break;
        }
        j += 1;
    }
    j - i
}

/// Finds numeric and time entities in `sentence`, skipping tokens where `taken` is set.
pub fn find(words: &[&str], sentence: Range<usize>, taken: &[bool]) -> Vec<RuleSpan> {
    let mut out = Vec::new();
    find_into(words, sentence, taken, &mut out);
    out
}

/// Appends the numeric and time entities of `sentence` to `out` (see [`find`]).
pub fn find_into(words: &[&str], sentence: Range<usize>, taken: &[bool], out: &mut Vec<RuleSpan>) {
    let end = sentence.end;
    let mut i = sentence.start;
    while i < end {
        if taken[i] || !may_start(words[i]) {
            i += 1;
            continue;
        }
        // The free stretch: matches never cross a name.
        let free_end = (i..end).find(|&k| taken[k]).unwrap_or(end);
        match match_at(words, i, free_end) {
            Some((len, label)) if len > 0 => {
                out.push(RuleSpan {
                    start: i,
                    end: i + len,
                    label,
                });
                i += len;
            }
            _ => i += 1,
        }
    }
}

/// Lower-case words that can start a match without a digit or currency sign (looked up for
/// every alphabetic token, so with a fast hasher; membership does not depend on it).
static STARTERS: std::sync::LazyLock<foldhash::HashSet<&'static [u8]>> =
    std::sync::LazyLock::new(|| {
        let mut set = foldhash::HashSet::default();
        for list in [
            MONTHS,
            MONTH_ABBR,
            WEEKDAYS,
            NUMBER_WORDS,
            ORDINALS,
            CURRENCY_PREFIXES,
            RELATIVE,
        ] {
            set.extend(list.iter().map(|w| w.as_bytes()));
        }
        set.extend(
            [
                "today",
                "yesterday",
                "tomorrow",
                "tonight",
                "noon",
                "midnight",
            ]
            .map(str::as_bytes),
        );
        set
    });

/// Per first byte, the lengths of the [`STARTERS`] that begin with it (bit `n` for length
/// `n`): a word whose first byte and length fit none is not one, without hashing it.
static STARTER_SHAPES: std::sync::LazyLock<[u32; 256]> = std::sync::LazyLock::new(|| {
    let mut shapes = [0u32; 256];
    for s in STARTERS.iter() {
        if let (Some(&b), true) = (s.first(), s.len() < 32) {
            shapes[usize::from(b)] |= 1 << s.len();
        }
    }
    shapes
});

/// Returns whether a match can start at `w`: a cheap filter run on every token.
fn may_start(w: &str) -> bool {
    let Some(c) = w.chars().next() else {
        return false;
    };
    // The signs other than `$` are not ASCII: an ASCII word without `$` has none of them.
    let may_have_sign = w.bytes().any(|b| b == b'$' || !b.is_ascii());
    if c.is_ascii_digit() || (may_have_sign && w.contains(['$', '€', '£', '¥'])) {
        return true;
    }
    if w.len() > 12 || !c.is_alphabetic() {
        return false;
    }
    let mut buf = [0u8; 12];
    for (b, x) in buf.iter_mut().zip(w.bytes()) {
        *b = x.to_ascii_lowercase();
    }
    let shape_fits = STARTER_SHAPES[usize::from(buf[0])] & (1 << w.len()) != 0;
    // Keyed by bytes: the lower-cased word needs no UTF-8 check to be looked up.
    (shape_fits && STARTERS.contains(&buf[..w.len()]))
        || before_hyphen(w).is_some_and(|a| is(NUMBER_WORDS, a))
}

/// Returns the part of `w` before its first `-`, as `split_once('-')` would, by a plain byte
/// scan (a word is too short to repay a character searcher's set-up).
fn before_hyphen(w: &str) -> Option<&str> {
    let at = w.bytes().position(|b| b == b'-')?;
    w.get(..at)
}

fn match_at(words: &[&str], i: usize, end: usize) -> Option<(usize, &'static str)> {
    let w = words[i];
    let at = |k: usize| -> &str {
        if k < end {
            words[k]
        } else {
            ""
        }
    };
    // Most candidates are short ASCII words: lower-case them on the stack.
    let mut buf = [0u8; 32];
    let owned: String;
    let lower: &str = match buf.get_mut(..w.len()) {
        Some(b) if w.is_ascii() => {
            b.copy_from_slice(w.as_bytes());
            b.make_ascii_lowercase();
            std::str::from_utf8(b).unwrap_or(w)
        }
        _ => {
            owned = w.to_lowercase();
            &owned
        }
    };
    // MONEY: "$5", "US$ 2 million", "5 million dollars".
    if let Some(rest) = CURRENCY_PREFIXES
        .iter()
        .find_map(|p| lower.strip_prefix(p).filter(|_| lower.len() > p.len()))
    {
        if is_numeral(rest) {
            return Some((1 + scale_len(words, i + 1, end), "MONEY"));
        }
    }
    if is(CURRENCY_PREFIXES, w) {
        let n = number_len(words, i + 1, end);
        if n > 0 {
            return Some((1 + n, "MONEY"));
        }
    }
    let n = number_len(words, i, end);
    if n > 0 {
        let next = at(i + n);
        let next_lists = lists(next);
        if next_lists & CURRENCY != 0 {
            let extra = usize::from(lists(at(i + n + 1)) & CURRENCY != 0);
            return Some((n + 1 + extra, "MONEY"));
        }
        if next == "%" || next.eq_ignore_ascii_case("percent") || next.eq_ignore_ascii_case("pct") {
            return Some((n + 1, "PERCENT"));
        }
        if next.eq_ignore_ascii_case("per") && at(i + n + 1).eq_ignore_ascii_case("cent") {
            return Some((n + 2, "PERCENT"));
        }
        if is_numeral(w) && n == 1 && is_time_suffix(next) {
            return Some((2, "TIME"));
        }
        if next_lists & UNIT != 0 {
            let extra = usize::from(lists(at(i + n + 1)) & UNIT != 0);
            return Some((n + 1 + extra, "QUANTITY"));
        }
        if next_lists & DURATION != 0 {
            let extra = usize::from(matches!(at(i + n + 1), "ago" | "earlier" | "later" | "old"));
            return Some((n + 1 + extra, "DATE"));
        }
        if matches!(next, "hours" | "hour" | "minutes" | "minute" | "seconds") {
            return Some((n + 1, "TIME"));
        }
        if is_day(w) && n == 1 && next_lists & MONTH != 0 {
            let extra = usize::from(is_year(at(i + 2)));
            return Some((2 + extra, "DATE"));
        }
        if is_year(w) && n == 1 {
            return Some((1, "DATE"));
        }
    }
    if let Some(rest) = lower.strip_suffix('%') {
        if is_numeral(rest) {
            return Some((1, "PERCENT"));
        }
    }
    if is_numeric_date(w) {
        return Some((1, "DATE"));
    }
    if is_clock(w) {
        let extra = usize::from(is_time_suffix(at(i + 1)));
        return Some((1 + extra, "TIME"));
    }
    if is_month(w) && w.starts_with(char::is_uppercase) {
        // "May" alone is too often a verb or a name: require a day or a year.
        let mut k = i + 1;
        if is_day(at(k)) {
            k += 1;
            if at(k) == "," && is_year(at(k + 1)) {
                k += 1;
            }
        }
        if is_year(at(k)) {
            k += 1;
        }
        if k > i + 1 || !(lower.starts_with("may") || is(MONTH_ABBR, w)) {
            return Some((k - i, "DATE"));
        }
        return None;
    }
    if is(WEEKDAYS, w) && w.starts_with(char::is_uppercase) {
        return Some((1, "DATE"));
    }
    if matches!(lower, "today" | "yesterday" | "tomorrow") {
        return Some((1, "DATE"));
    }
    if matches!(lower, "tonight" | "noon" | "midnight") {
        return Some((1, "TIME"));
    }
    if is(RELATIVE, w) {
        let next = at(i + 1);
        if is(DURATIONS, next) && !matches!(lower, "same") {
            return Some((2, "DATE"));
        }
        if is(TIME_WORDS, next) && matches!(lower, "this" | "last") {
            return Some((2, "TIME"));
        }
        if is(WEEKDAYS, next) {
            return Some((2, "DATE"));
        }
    }
    if is_ordinal(w) {
        return Some((1, "ORDINAL"));
    }
    if n > 0 {
        return Some((n, "CARDINAL"));
    }
    None
}

fn is_time_suffix(w: &str) -> bool {
    matches!(
        w.to_ascii_lowercase().as_str(),
        "a.m." | "p.m." | "am" | "pm" | "gmt" | "est" | "utc" | "edt" | "cet"
    )
}

fn scale_len(words: &[&str], i: usize, end: usize) -> usize {
    usize::from(i < end && is(SCALES, words[i]))
}

#[cfg(test)]
#[path = "rules_tests.rs"]
mod tests;
