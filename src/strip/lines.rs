//! Owns line analysis: splits a text into lines and measures each one in a single allocation-free pass.
//!
//! The measures are the general signals of published line classifiers: word counts (boilerpipe),
//! stop-word density (jusText), terminal punctuation (C4), title-case and digit share, and a
//! digit-normalised hash so that "09.Jan.2026" and "14.Jan.2026" count as the same line (CCNet).

/// Measures of one non-blank line; `start..end` is its trimmed byte range in the text.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Line {
    pub start: usize,
    pub end: usize,
    /// `\w+` tokens, as the benchmark metric counts them.
    pub words: u32,
    /// Alphabetic words that are English stop words.
    pub stops: u32,
    /// Words starting with an upper-case letter.
    pub caps: u32,
    /// Words that are typical of navigation, sharing and sign-up chrome.
    pub chrome: u32,
    pub chars: u32,
    pub digits: u32,
    pub letters: u32,
    /// Ends with sentence punctuation (possibly followed by a closing quote or bracket).
    pub terminal: bool,
    /// Separators typical of menus and breadcrumbs: `|`, `»`, `›`, `•`, `©`.
    pub separators: u32,
    /// Holds a URL, a domain or an e-mail address (`http`, `www.`, `.com`, `@`).
    pub url_like: bool,
    /// Ends with a colon: a label ("Share:") or the lead-in of a list.
    pub ends_colon: bool,
    /// A blank line came right before this line in the source.
    pub blank_before: bool,
    /// Hash of the lower-cased letters with every digit run mapped to one `0`.
    pub shape: u64,
}

impl Line {
    /// Returns the line's text within `text`.
    pub fn text<'a>(&self, text: &'a str) -> &'a str {
        &text[self.start..self.end]
    }
}

/// Splits `text` into its non-blank lines and measures each; `out` is cleared first and reused.
pub fn analyse(text: &str, out: &mut Vec<Line>) {
    out.clear();
    let bytes = text.as_bytes();
    let mut pos = 0;
    let mut blank_before = false;
    while pos < bytes.len() {
        let end = memchr_newline(bytes, pos);
        let (s, e) = trim(bytes, pos, end);
        if s < e {
            let mut line = measure(&text[s..e]);
            line.start = s;
            line.end = e;
            line.blank_before = blank_before;
            match out.last_mut() {
                Some(prev) if !blank_before && continues(prev, &text[s..e]) => prev.absorb(&line),
                _ => out.push(line),
            }
            blank_before = false;
        } else {
            blank_before = true;
        }
        pos = end + 1;
    }
}

/// Returns whether `next` continues a hard-wrapped sentence of `prev`: it starts in lower case
/// right after a wordy line that did not end a sentence.
fn continues(prev: &Line, next: &str) -> bool {
    prev.words >= 6
        && !prev.terminal
        && !prev.ends_colon
        && next.chars().next().is_some_and(char::is_lowercase)
}

impl Line {
    /// Merges the measures of the following wrapped line into this one.
    fn absorb(&mut self, next: &Line) {
        self.end = next.end;
        self.words += next.words;
        self.stops += next.stops;
        self.caps += next.caps;
        self.chrome += next.chrome;
        self.chars += next.chars + 1;
        self.digits += next.digits;
        self.letters += next.letters;
        self.separators += next.separators;
        self.terminal = next.terminal;
        self.ends_colon = next.ends_colon;
        self.url_like |= next.url_like;
        self.shape = (self.shape ^ next.shape).wrapping_mul(FNV_PRIME);
    }
}

fn memchr_newline(bytes: &[u8], from: usize) -> usize {
    bytes[from..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(bytes.len(), |p| from + p)
}

fn trim(bytes: &[u8], mut s: usize, mut e: usize) -> (usize, usize) {
    while s < e && bytes[s].is_ascii_whitespace() {
        s += 1;
    }
    while e > s && bytes[e - 1].is_ascii_whitespace() {
        e -= 1;
    }
    // Non-ASCII spaces (NBSP, ideographic space) are rare; trim them through the str API.
    if s < e && (bytes[s] >= 0x80 || bytes[e - 1] >= 0x80) {
        // SAFETY-free: the slice bounds are char boundaries because only ASCII was skipped.
        let text = std::str::from_utf8(&bytes[s..e]).unwrap_or("");
        let t = text.trim();
        if t.is_empty() {
            return (s, s);
        }
        let lead = text.len() - text.trim_start().len();
        return (s + lead, s + lead + t.len());
    }
    (s, e)
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// Measures one trimmed line.
pub fn measure(line: &str) -> Line {
    let mut m = Line {
        chars: 0,
        shape: FNV_OFFSET,
        ..Line::default()
    };
    let mut word = [0u8; 16];
    let mut wlen = 0usize;
    let mut in_word = false;
    let mut word_ascii = true;
    let mut word_alpha = true;
    let mut last_digit = false;
    let mut last_sig = ' ';
    for c in line.chars() {
        m.chars += 1;
        let is_w = c.is_alphanumeric() || c == '_';
        if is_w {
            if !in_word {
                in_word = true;
                wlen = 0;
                word_ascii = true;
                word_alpha = true;
                m.words += 1;
                if c.is_uppercase() {
                    m.caps += 1;
                }
            }
            if c.is_ascii_digit() || c.is_numeric() {
                m.digits += 1;
                word_alpha = false;
                if !last_digit {
                    m.shape = (m.shape ^ u64::from(b'0')).wrapping_mul(FNV_PRIME);
                }
                last_digit = true;
            } else {
                m.letters += 1;
                last_digit = false;
                let lc = if c.is_ascii() {
                    c.to_ascii_lowercase() as u32
                } else {
                    c.to_lowercase().next().map_or(c as u32, |l| l as u32)
                };
                m.shape = (m.shape ^ u64::from(lc)).wrapping_mul(FNV_PRIME);
                if c.is_ascii() && wlen < word.len() {
                    word[wlen] = lc as u8;
                } else {
                    word_ascii = false;
                }
                wlen += 1;
            }
        } else {
            if in_word {
                finish_word(&mut m, &word, wlen, word_ascii && word_alpha);
                in_word = false;
            }
            last_digit = false;
            if matches!(c, '|' | '»' | '›' | '•' | '©' | '·') {
                m.separators += 1;
            }
        }
        if !c.is_whitespace() {
            last_sig = c;
        }
    }
    if in_word {
        finish_word(&mut m, &word, wlen, word_ascii && word_alpha);
    }
    m.terminal = is_terminal(line, last_sig);
    m.ends_colon = last_sig == ':';
    m.url_like = has_url(line.as_bytes());
    m
}

fn has_url(b: &[u8]) -> bool {
    memchr_any(b, b'@')
        || b.windows(4)
            .any(|w| w == b"http" || w == b"www." || w == b".com" || w == b".org")
}

fn memchr_any(b: &[u8], c: u8) -> bool {
    b.contains(&c)
}

#[inline]
fn finish_word(m: &mut Line, word: &[u8; 16], wlen: usize, plain: bool) {
    if !plain || wlen > word.len() {
        return;
    }
    let w = &word[..wlen];
    if is_stop_word(w) {
        m.stops += 1;
    }
    if is_chrome_word(w) {
        m.chrome += 1;
    }
}

fn is_terminal(line: &str, last: char) -> bool {
    match last {
        '.' | '!' | '?' | '…' | ';' => true,
        '"' | '”' | '’' | '\'' | ')' | '»' => {
            // A closing quote or bracket counts when a sentence mark precedes it.
            let mut it = line.trim_end().chars().rev().skip(1);
            matches!(it.next(), Some('.' | '!' | '?' | '…'))
        }
        _ => false,
    }
}

/// Returns whether a lower-case ASCII word is a common English function word.
#[inline]
pub fn is_stop_word(w: &[u8]) -> bool {
    matches!(
        w,
        b"a" | b"about"
            | b"after"
            | b"all"
            | b"also"
            | b"an"
            | b"and"
            | b"any"
            | b"are"
            | b"as"
            | b"at"
            | b"be"
            | b"because"
            | b"been"
            | b"before"
            | b"being"
            | b"between"
            | b"both"
            | b"but"
            | b"by"
            | b"can"
            | b"could"
            | b"did"
            | b"do"
            | b"does"
            | b"during"
            | b"each"
            | b"even"
            | b"for"
            | b"from"
            | b"had"
            | b"has"
            | b"have"
            | b"he"
            | b"her"
            | b"here"
            | b"him"
            | b"his"
            | b"how"
            | b"i"
            | b"if"
            | b"in"
            | b"into"
            | b"is"
            | b"it"
            | b"its"
            | b"just"
            | b"like"
            | b"may"
            | b"me"
            | b"might"
            | b"more"
            | b"most"
            | b"much"
            | b"must"
            | b"my"
            | b"no"
            | b"not"
            | b"now"
            | b"of"
            | b"on"
            | b"one"
            | b"only"
            | b"or"
            | b"other"
            | b"our"
            | b"out"
            | b"over"
            | b"same"
            | b"she"
            | b"should"
            | b"so"
            | b"some"
            | b"such"
            | b"than"
            | b"that"
            | b"the"
            | b"their"
            | b"them"
            | b"then"
            | b"there"
            | b"these"
            | b"they"
            | b"this"
            | b"those"
            | b"through"
            | b"to"
            | b"too"
            | b"under"
            | b"up"
            | b"very"
            | b"was"
            | b"we"
            | b"were"
            | b"what"
            | b"when"
            | b"where"
            | b"which"
            | b"while"
            | b"who"
            | b"why"
            | b"will"
            | b"with"
            | b"would"
            | b"you"
            | b"your"
            | b"said"
            | b"says"
            | b"s"
            | b"t"
            | b"many"
            | b"well"
            | b"against"
            | b"however"
            | b"although"
    )
}

/// Returns whether a lower-case ASCII word is typical of site chrome (menus, sharing, sign-up, legal).
#[inline]
pub fn is_chrome_word(w: &[u8]) -> bool {
    matches!(
        w,
        b"share"
            | b"shares"
            | b"tweet"
            | b"login"
            | b"logout"
            | b"subscribe"
            | b"subscription"
            | b"newsletter"
            | b"cookie"
            | b"cookies"
            | b"privacy"
            | b"copyright"
            | b"reserved"
            | b"menu"
            | b"search"
            | b"skip"
            | b"comment"
            | b"comments"
            | b"reply"
            | b"follow"
            | b"facebook"
            | b"twitter"
            | b"instagram"
            | b"linkedin"
            | b"pinterest"
            | b"youtube"
            | b"whatsapp"
            | b"tiktok"
            | b"reddit"
            | b"email"
            | b"signup"
            | b"advertisement"
            | b"sponsored"
            | b"related"
            | b"tags"
            | b"tagged"
            | b"categories"
            | b"category"
            | b"posted"
            | b"published"
            | b"updated"
            | b"author"
            | b"previous"
            | b"next"
            | b"home"
            | b"contact"
            | b"terms"
            | b"views"
            | b"likes"
            | b"print"
            | b"download"
            | b"cart"
            | b"account"
            | b"register"
            | b"loading"
            | b"sitemap"
            | b"faq"
            | b"careers"
            | b"read"
            | b"min"
            | b"ago"
            | b"photo"
            | b"image"
            | b"credit"
            | b"getty"
            | b"shutterstock"
            | b"advertise"
            | b"accept"
            | b"unsubscribe"
            | b"rss"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(s: &str) -> Line {
        measure(s)
    }

    #[test]
    fn counts_words_like_the_benchmark_tokeniser() {
        let l = one("The cat's hat, 2026 — ok_go!");
        // \w+ gives: The, cat, s, hat, 2026, ok_go
        assert_eq!(l.words, 6);
        assert!(l.terminal);
        assert_eq!(l.stops, 2); // the, s
    }

    #[test]
    fn digit_runs_share_a_shape() {
        assert_eq!(one("09.Jan.2026").shape, one("14.jan.2025").shape);
        assert_ne!(one("09.Jan.2026").shape, one("09.Feb.2026").shape);
    }

    #[test]
    fn closing_quote_after_period_is_terminal() {
        assert!(one("He said \"yes.\"").terminal);
        assert!(!one("Latest news").terminal);
        assert!(!one("A title (2026)").terminal);
    }

    #[test]
    fn splits_lines_and_notes_blank_gaps() {
        let mut v = Vec::new();
        analyse("a b\n\n  c d e \r\nf", &mut v);
        assert_eq!(v.len(), 3);
        assert_eq!(v[1].text("a b\n\n  c d e \r\nf"), "c d e");
        assert!(v[1].blank_before);
        assert!(!v[2].blank_before);
    }

    #[test]
    fn joins_hard_wrapped_lines() {
        let t = "Gym equipment refers to the various machines, tools, and\naccessories used in a gym.\nNext Para";
        let mut v = Vec::new();
        analyse(t, &mut v);
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].words, 14);
        assert!(v[0].terminal);
    }

    #[test]
    fn handles_other_scripts_without_panicking() {
        let l = one("\u{a0}Президент Казахстана обратился к ОДКБ.\u{3000}");
        assert_eq!(l.words, 5);
        assert_eq!(l.stops, 0);
        let mut v = Vec::new();
        analyse("\u{a0}\u{3000}\n日本語のテキスト。", &mut v);
        assert_eq!(v.len(), 1);
    }
}
