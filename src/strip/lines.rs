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
    memchr::memchr(b'\n', &bytes[from..]).map_or(bytes.len(), |p| from + p)
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
///
/// ASCII bytes take a table-driven fast path; other characters are decoded and classified with
/// the Unicode tables, so any script is measured (words, case, digits) without stop-word bias.
pub fn measure(line: &str) -> Line {
    let mut m = Line {
        shape: FNV_OFFSET,
        ..Line::default()
    };
    let table = word_table();
    let bytes = line.as_bytes();
    let mut in_word = false;
    // Hash of the current word when it is plain lower-cased ASCII letters; `plain` says whether it still is.
    let mut word_hash = FNV_OFFSET;
    let mut plain = true;
    let mut last_digit = false;
    let mut last_sig = ' ';
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let (class, lc, c) = if b < 0x80 {
            i += 1;
            (
                ASCII_CLASS[b as usize],
                u32::from(b.to_ascii_lowercase()),
                b as char,
            )
        } else {
            let c = line[i..].chars().next().unwrap_or(' ');
            i += c.len_utf8();
            (
                unicode_class(c),
                c.to_lowercase().next().map_or(c as u32, |l| l as u32),
                c,
            )
        };
        m.chars += 1;
        if class >= LOWER {
            if !in_word {
                if (b == b'h' && bytes[i - 1..].starts_with(b"http"))
                    || (b == b'w' && bytes[i - 1..].starts_with(b"www."))
                {
                    m.url_like = true;
                }
                in_word = true;
                word_hash = FNV_OFFSET;
                plain = true;
                m.words += 1;
                m.caps += u32::from(class == UPPER);
            }
            if class == DIGIT {
                m.digits += 1;
                plain = false;
                if !last_digit {
                    m.shape = (m.shape ^ u64::from(b'0')).wrapping_mul(FNV_PRIME);
                }
                last_digit = true;
            } else {
                m.letters += 1;
                last_digit = false;
                m.shape = (m.shape ^ u64::from(lc)).wrapping_mul(FNV_PRIME);
                plain &= b < 0x80;
                word_hash = (word_hash ^ u64::from(lc)).wrapping_mul(FNV_PRIME);
            }
        } else {
            if in_word {
                if plain {
                    let flags = table.get(word_hash);
                    m.stops += u32::from(flags & STOP != 0);
                    m.chrome += u32::from(flags & CHROME != 0);
                }
                in_word = false;
            }
            last_digit = false;
            if class == SEPARATOR {
                m.separators += 1;
            } else if b == b'@'
                || (b == b'.' && (bytes[i..].starts_with(b"com") || bytes[i..].starts_with(b"org")))
            {
                m.url_like = true;
            }
        }
        if class != SPACE {
            last_sig = c;
        }
    }
    if in_word && plain {
        let flags = table.get(word_hash);
        m.stops += u32::from(flags & STOP != 0);
        m.chrome += u32::from(flags & CHROME != 0);
    }
    m.terminal = is_terminal(line, last_sig);
    m.ends_colon = last_sig == ':';
    m
}

const SPACE: u8 = 0;
const OTHER: u8 = 1;
const SEPARATOR: u8 = 2;
const LOWER: u8 = 3;
const UPPER: u8 = 4;
const DIGIT: u8 = 5;

const ASCII_CLASS: [u8; 128] = {
    let mut t = [OTHER; 128];
    let mut i = 0;
    while i < 128 {
        let b = i as u8;
        t[i] = if b.is_ascii_whitespace() {
            SPACE
        } else if b.is_ascii_lowercase() || b == b'_' {
            LOWER
        } else if b.is_ascii_uppercase() {
            UPPER
        } else if b.is_ascii_digit() {
            DIGIT
        } else if b == b'|' {
            SEPARATOR
        } else {
            OTHER
        };
        i += 1;
    }
    t
};

fn unicode_class(c: char) -> u8 {
    if c.is_numeric() {
        DIGIT
    } else if c.is_alphabetic() || crate::strip::metric::is_word_char(c) {
        if c.is_uppercase() {
            UPPER
        } else {
            LOWER
        }
    } else if c.is_whitespace() {
        SPACE
    } else if matches!(c, '»' | '›' | '•' | '©' | '·') {
        SEPARATOR
    } else {
        OTHER
    }
}

const STOP: u8 = 1;
const CHROME: u8 = 2;

/// Common English function words (lower case): the stop-word density signal of jusText.
pub const STOP_WORDS: &[&str] = &[
    "a", "about", "after", "all", "also", "an", "and", "any", "are", "as", "at", "be", "because",
    "been", "before", "being", "between", "both", "but", "by", "can", "could", "did", "do", "does",
    "during", "each", "even", "for", "from", "had", "has", "have", "he", "her", "here", "him",
    "his", "how", "i", "if", "in", "into", "is", "it", "its", "just", "like", "may", "me", "might",
    "more", "most", "much", "must", "my", "no", "not", "now", "of", "on", "one", "only", "or",
    "other", "our", "out", "over", "same", "she", "should", "so", "some", "such", "than", "that",
    "the", "their", "them", "then", "there", "these", "they", "this", "those", "through", "to",
    "too", "under", "up", "very", "was", "we", "were", "what", "when", "where", "which", "while",
    "who", "why", "will", "with", "would", "you", "your", "said", "says", "s", "t", "many", "well",
    "against", "however", "although",
];

/// Words typical of site chrome: menus, sharing, sign-up, legal and consent banners.
pub const CHROME_WORDS: &[&str] = &[
    "share",
    "shares",
    "tweet",
    "login",
    "logout",
    "subscribe",
    "subscription",
    "newsletter",
    "cookie",
    "cookies",
    "privacy",
    "copyright",
    "reserved",
    "menu",
    "search",
    "skip",
    "comment",
    "comments",
    "reply",
    "follow",
    "facebook",
    "twitter",
    "instagram",
    "linkedin",
    "pinterest",
    "youtube",
    "whatsapp",
    "tiktok",
    "reddit",
    "email",
    "signup",
    "advertisement",
    "sponsored",
    "related",
    "tags",
    "tagged",
    "categories",
    "category",
    "posted",
    "published",
    "updated",
    "author",
    "previous",
    "next",
    "home",
    "contact",
    "terms",
    "views",
    "likes",
    "print",
    "download",
    "cart",
    "account",
    "register",
    "loading",
    "sitemap",
    "faq",
    "careers",
    "read",
    "min",
    "ago",
    "photo",
    "image",
    "credit",
    "getty",
    "shutterstock",
    "advertise",
    "accept",
    "unsubscribe",
    "rss",
];

/// Open-addressing set of word hashes with their flags, built once.
struct WordTable {
    slots: Vec<(u64, u8)>,
}

const TABLE_SIZE: usize = 1024;

impl WordTable {
    fn build() -> Self {
        let mut t = WordTable {
            slots: vec![(0, 0); TABLE_SIZE],
        };
        for (list, flag) in [(STOP_WORDS, STOP), (CHROME_WORDS, CHROME)] {
            for w in list {
                let h = w.bytes().fold(FNV_OFFSET, |h, b| {
                    (h ^ u64::from(b)).wrapping_mul(FNV_PRIME)
                });
                let mut i = h as usize % TABLE_SIZE;
                while t.slots[i].0 != 0 && t.slots[i].0 != h {
                    i = (i + 1) % TABLE_SIZE;
                }
                t.slots[i].0 = h;
                t.slots[i].1 |= flag;
            }
        }
        t
    }

    #[inline]
    fn get(&self, h: u64) -> u8 {
        let mut i = h as usize % TABLE_SIZE;
        loop {
            let (k, f) = self.slots[i];
            if k == h {
                return f;
            }
            if k == 0 {
                return 0;
            }
            i = (i + 1) % TABLE_SIZE;
        }
    }
}

fn word_table() -> &'static WordTable {
    static TABLE: std::sync::OnceLock<WordTable> = std::sync::OnceLock::new();
    TABLE.get_or_init(WordTable::build)
}

/// Returns whether a lower-case word is a common English function word.
pub fn is_stop_word(w: &str) -> bool {
    STOP_WORDS.contains(&w)
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

/// Runs a line filter over `text`'s lines and returns the kept lines joined by newlines: the
/// common harness of the filters' unit tests.
#[cfg(test)]
pub fn kept_after(text: &str, filter: impl FnOnce(&[Line], &mut [bool])) -> String {
    let mut lines = Vec::new();
    analyse(text, &mut lines);
    let mut keep = vec![true; lines.len()];
    filter(&lines, &mut keep);
    lines
        .iter()
        .zip(&keep)
        .filter(|(_, &k)| k)
        .map(|(l, _)| l.text(text))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
#[path = "lines_tests.rs"]
mod tests;
