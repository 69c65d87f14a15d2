//! Owns the raw-text tokenizer: whitespace chunks split at punctuation, with code-point offsets.
//!
//! The tokenizer reproduces CoNLL-2003 tokens on text whose tokens are already separated by
//! spaces (so evaluation scores exactly what the stage produces), and splits running news text
//! the way CoNLL was tokenised: quotes, brackets and sentence punctuation apart, `'s` apart,
//! abbreviations such as `U.S.` and `Inc.` kept whole.

use std::ops::Range;

/// One token of a text, with byte and code-point offsets (`end` exclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token {
    pub start: usize,
    pub end: usize,
    pub cp_start: usize,
    pub cp_end: usize,
    /// Whether a line break separates this token from the previous one.
    pub line_start: bool,
}

impl Token {
    /// Returns the token's text.
    pub fn text<'a>(&self, text: &'a str) -> &'a str {
        &text[self.start..self.end]
    }
}

const ABBREVIATIONS: &[&str] = &[
    "mr", "mrs", "ms", "dr", "prof", "inc", "corp", "ltd", "co", "jr", "sr", "st", "gen", "col",
    "lt", "sgt", "gov", "sen", "rep", "rev", "vs", "etc", "no", "jan", "feb", "mar", "apr", "jun",
    "jul", "aug", "sep", "sept", "oct", "nov", "dec", "mt", "ft", "capt", "cmdr", "adm", "maj",
    "bros", "messrs", "plc", "a.m", "p.m", "u.s", "u.k", "u.n",
];

fn is_leading_punct(c: char) -> bool {
    matches!(
        c,
        '"' | '\'' | '(' | '[' | '{' | '<' | '“' | '‘' | '«' | '„' | '¿' | '¡' | '`'
    )
}

fn is_trailing_punct(c: char) -> bool {
    matches!(
        c,
        '"' | '\''
            | ')'
            | ']'
            | '}'
            | '>'
            | ','
            | ';'
            | ':'
            | '!'
            | '?'
            | '.'
            | '”'
            | '’'
            | '»'
            | '…'
    )
}

fn is_apostrophe(c: char) -> bool {
    c == '\'' || c == '’'
}

/// Returns whether a trailing period belongs to `core` (an abbreviation or initial).
fn keeps_period(core: &str) -> bool {
    if core.contains('.') {
        return true;
    }
    let mut chars = core.chars();
    if let (Some(c), None) = (chars.next(), chars.next()) {
        return c.is_alphabetic();
    }
    if core.len() > 6 {
        return false;
    }
    let mut buf = [0u8; 8];
    let mut n = 0;
    for c in core.chars() {
        if !c.is_ascii() {
            return false;
        }
        buf[n] = c.to_ascii_lowercase() as u8;
        n += 1;
    }
    let lower = std::str::from_utf8(&buf[..n]).unwrap_or("");
    ABBREVIATIONS.contains(&lower)
}

/// Splits one whitespace-free chunk into byte ranges relative to the chunk.
fn split_chunk(chunk: &str, out: &mut Vec<Range<usize>>) {
    if chunk.chars().all(|c| !c.is_alphanumeric()) {
        // All punctuation: runs of one character stay together ("...", "--").
        let mut start = 0;
        let mut prev: Option<char> = None;
        for (i, c) in chunk.char_indices() {
            if prev.is_some_and(|p| p != c) {
                out.push(start..i);
                start = i;
            }
            prev = Some(c);
        }
        out.push(start..chunk.len());
        return;
    }
    if chunk.len() <= 3 && chunk.chars().next().is_some_and(is_apostrophe) {
        // "'s", "'re", "'90": a clitic or year kept whole, as CoNLL writes it.
        out.push(0..chunk.len());
        return;
    }
    let mut lo = 0;
    let mut hi = chunk.len();
    while let Some(c) = chunk[lo..hi].chars().next() {
        if !is_leading_punct(c) || lo + c.len_utf8() >= hi {
            break;
        }
        out.push(lo..lo + c.len_utf8());
        lo += c.len_utf8();
    }
    let mut tail: Vec<Range<usize>> = Vec::new();
    while let Some(c) = chunk[lo..hi].chars().next_back() {
        if !is_trailing_punct(c) || hi - c.len_utf8() <= lo {
            break;
        }
        let before = &chunk[lo..hi - c.len_utf8()];
        if c == '.' {
            if before.ends_with('.') {
                // An ellipsis: take the whole run of periods.
                let run = before.len() - before.trim_end_matches('.').len() + 1;
                if hi - run <= lo {
                    break;
                }
                tail.push(hi - run..hi);
                hi -= run;
                continue;
            }
            if keeps_period(before) {
                break;
            }
        }
        if is_apostrophe(c) && before.ends_with(['s', 'S']) && tail.is_empty() {
            // "Jones'": a plural possessive, split like CoNLL.
            tail.push(hi - c.len_utf8()..hi);
            hi -= c.len_utf8();
            break;
        }
        tail.push(hi - c.len_utf8()..hi);
        hi -= c.len_utf8();
    }
    // Possessive and clitic endings: "bloc's" -> "bloc" "'s".
    let core = &chunk[lo..hi];
    let mut split_at = None;
    for suffix in ["'s", "’s", "'S", "’S", "n't", "n’t"] {
        if core.len() > suffix.len() + 1 && core.ends_with(suffix) {
            split_at = Some(hi - suffix.len());
            break;
        }
    }
    match split_at {
        Some(at) => {
            out.push(lo..at);
            out.push(at..hi);
        }
        None => out.push(lo..hi),
    }
    out.extend(tail.into_iter().rev());
}

/// Returns the tokens of `text` in order.
pub fn tokenize(text: &str) -> Vec<Token> {
    let mut tokens = Vec::with_capacity(text.len() / 5 + 1);
    let mut parts = Vec::new();
    let mut cp = 0usize;
    let mut chunk_start: Option<(usize, usize)> = None;
    let mut newline;
    let mut pending_newline = true;
    let flush = |tokens: &mut Vec<Token>,
                 parts: &mut Vec<Range<usize>>,
                 start: usize,
                 cp_start: usize,
                 end: usize,
                 line_start: &mut bool| {
        let chunk = &text[start..end];
        if chunk.bytes().all(|b| b.is_ascii_alphanumeric()) {
            // Most chunks are plain ASCII words: one token, one code point a byte (what
            // `split_chunk` gives them, without its punctuation and clitic checks).
            tokens.push(Token {
                start,
                end,
                cp_start,
                cp_end: cp_start + chunk.len(),
                line_start: *line_start,
            });
            *line_start = false;
            return;
        }
        parts.clear();
        split_chunk(chunk, parts);
        let mut cp_at = cp_start;
        let mut byte_at = 0;
        for r in parts.iter() {
            cp_at += chunk[byte_at..r.start].chars().count();
            let len = chunk[r.clone()].chars().count();
            tokens.push(Token {
                start: start + r.start,
                end: start + r.end,
                cp_start: cp_at,
                cp_end: cp_at + len,
                line_start: *line_start,
            });
            *line_start = false;
            cp_at += len;
            byte_at = r.end;
        }
    };
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        // ASCII bytes are characters of their own: no UTF-8 decoding for them.
        let (c, white) = if b.is_ascii() {
            (char::from(b), matches!(b, b'\t'..=b'\r' | b' '))
        } else {
            let Some(c) = text[i..].chars().next() else {
                break;
            };
            (c, c.is_whitespace())
        };
        if white {
            if let Some((s, cs)) = chunk_start.take() {
                newline = pending_newline;
                flush(&mut tokens, &mut parts, s, cs, i, &mut newline);
                pending_newline = false;
            }
            if c == '\n' || c == '\r' || c == '\u{2029}' {
                pending_newline = true;
            }
        } else if chunk_start.is_none() {
            chunk_start = Some((i, cp));
        }
        cp += 1;
        i += c.len_utf8();
    }
    if let Some((s, cs)) = chunk_start {
        newline = pending_newline;
        flush(&mut tokens, &mut parts, s, cs, text.len(), &mut newline);
    }
    tokens
}

/// Returns sentences as token index ranges: at line breaks and after `.`, `!`, `?` tokens
/// followed by a token that does not start in lower case.
pub fn sentences(text: &str, tokens: &[Token]) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    for i in 0..tokens.len() {
        if i > start && tokens[i].line_start {
            out.push(start..i);
            start = i;
            continue;
        }
        if i > start && i + 1 < tokens.len() && !tokens[i + 1].line_start {
            let t = tokens[i].text(text);
            if matches!(t, "." | "!" | "?" | "...") {
                let next = tokens[i + 1].text(text);
                if !next.chars().next().is_some_and(char::is_lowercase) {
                    out.push(start..i + 1);
                    start = i + 1;
                }
            }
        }
    }
    if start < tokens.len() {
        out.push(start..tokens.len());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<&str> {
        tokenize(text).iter().map(|t| t.text(text)).collect()
    }

    #[test]
    fn byte_loop_splits_at_every_kind_of_whitespace() {
        // The ASCII test in the byte loop is `char::is_whitespace` on ASCII.
        for b in 0u8..128 {
            let c = char::from(b);
            assert_eq!(
                matches!(b, b'\t'..=b'\r' | b' '),
                c.is_whitespace(),
                "{c:?}"
            );
        }
        let text = "Zoë\u{a0}São\u{2029}Paulo\u{3000}東京\u{85}x\x0bé\x0cy";
        let toks = tokenize(text);
        let got: Vec<(&str, usize, usize, bool)> = toks
            .iter()
            .map(|t| (t.text(text), t.cp_start, t.cp_end, t.line_start))
            .collect();
        assert_eq!(
            got,
            [
                ("Zoë", 0, 3, true),
                ("São", 4, 7, false),
                ("Paulo", 8, 13, true),
                ("東京", 14, 16, false),
                ("x", 17, 18, false),
                ("é", 19, 20, false),
                ("y", 21, 22, false),
            ]
        );
    }

    #[test]
    fn plain_ascii_words_are_the_one_token_split_chunk_makes_them() {
        for w in [
            "a", "s", "nt", "Word", "IBM", "1996", "x86", "ABC123", "St", "Jones",
        ] {
            let mut parts = Vec::new();
            split_chunk(w, &mut parts);
            assert_eq!(parts, vec![0..w.len()], "{w}");
        }
        let text = "Zoë met 3 men , U.S. Inc. bloc's “x” at 10:30\nThen 5%";
        let cps: Vec<char> = text.chars().collect();
        let toks = tokenize(text);
        assert_eq!(toks.len(), 16);
        for t in &toks {
            let by_cp: String = cps[t.cp_start..t.cp_end].iter().collect();
            assert_eq!(by_cp, t.text(text));
        }
        assert!(toks[14].line_start && !toks[13].line_start);
    }

    #[test]
    fn splits_punctuation_and_possessives() {
        assert_eq!(
            words("Kazakhstan seeks Russia-led bloc's help (CSTO), \"now\"."),
            vec![
                "Kazakhstan",
                "seeks",
                "Russia-led",
                "bloc",
                "'s",
                "help",
                "(",
                "CSTO",
                ")",
                ",",
                "\"",
                "now",
                "\"",
                "."
            ]
        );
    }

    #[test]
    fn keeps_abbreviations_and_conll_tokens() {
        assert_eq!(
            words("U.S. Inc. J. Smith 's 1996-08-30 ... --"),
            vec![
                "U.S.",
                "Inc.",
                "J.",
                "Smith",
                "'s",
                "1996-08-30",
                "...",
                "--"
            ]
        );
        assert_eq!(words("He left. Then"), vec!["He", "left", ".", "Then"]);
    }

    #[test]
    fn offsets_are_code_points() {
        let text = "Café «Zürich» now";
        let toks = tokenize(text);
        let cps: Vec<char> = text.chars().collect();
        for t in &toks {
            let s: String = cps[t.cp_start..t.cp_end].iter().collect();
            assert_eq!(s, t.text(text));
        }
        assert_eq!(words(text), vec!["Café", "«", "Zürich", "»", "now"]);
    }

    #[test]
    fn sentences_split_at_lines_and_periods() {
        let text = "One here. Two there\nThree";
        let toks = tokenize(text);
        let s = sentences(text, &toks);
        assert_eq!(s, vec![0..3, 3..5, 5..6]);
        assert!(toks[5].line_start);
    }
}
