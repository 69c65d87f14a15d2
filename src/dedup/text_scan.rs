//! Owns the one pass over a document that dedup preparation makes: words, sentence cuts and
//! normal form together (see [`Scan`]).

use super::{is_cut, nfkc, push_word, sentences, Word};
use unicode_normalization::{is_nfkc_quick, IsNormalized};

/// One pass over a document: its words, where its sentences end among them and its normal
/// form, as [`super::words`], [`sentences`] with [`super::words_into`] each, and
/// [`crate::dedup::normalize`] find them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scan {
    pub words: Vec<Word>,
    /// The number of words before each cut of [`sentences`]; the last sentence runs to the end.
    pub cuts: Vec<u32>,
    /// The normal form: the words joined by single spaces. `None` when some character is a
    /// letter or digit and a piece of its lowercase is not (or the other way round), where
    /// `normalize`, which classifies the lowercase, cuts otherwise than the words.
    pub normal: Option<Vec<u8>>,
}

impl Scan {
    /// Returns the words of each of the text's [`sentences`], in order.
    pub fn sentences(&self) -> impl Iterator<Item = &[Word]> + '_ {
        let ends = self.cuts.iter().map(|&c| c as usize);
        let mut start = 0;
        ends.chain([self.words.len()]).map(move |end| {
            let s = &self.words[start..end];
            start = end;
            s
        })
    }
}

/// Returns the [`Scan`] of `text`.
///
/// A text that is in NFKC (most news text) is read in one pass, its cuts found on the way;
/// any other is normalised a sentence at a time (NFKC of the whole is that of its sentences
/// put together, each cut being before an ASCII character or after a line break, neither of
/// which composes or reorders) and read a sentence at a time. Runs of ASCII letters and digits
/// are lowercased a run at a time; as in [`super::words`], only characters at or above U+0080
/// are decoded and classified as Unicode.
pub fn scan(text: &str) -> Scan {
    let mut s = Scanner {
        scan: Scan {
            words: Vec::with_capacity(text.len() / 6 + 1),
            cuts: Vec::new(),
            normal: None,
        },
        normal: Vec::with_capacity(text.len() + 8),
        simple: true,
        sentence_start: true,
        open: None,
    };
    if text.is_ascii() || is_nfkc_quick(text.chars()) == IsNormalized::Yes {
        s.read(text, true);
    } else {
        for sentence in sentences(text) {
            s.read(&nfkc(sentence), false);
            // A sentence ends at a mark or at the end of the text: no word runs on.
            s.close();
            s.scan.cuts.push(s.scan.words.len() as u32);
        }
    }
    s.close();
    let Scanner {
        mut scan,
        normal,
        simple,
        ..
    } = s;
    scan.normal = simple.then_some(normal);
    scan
}

/// The state of [`scan`] between pieces of a text.
struct Scanner {
    scan: Scan,
    /// The words so far, joined by single spaces.
    normal: Vec<u8>,
    /// Whether `normal` is still the normal form (see [`Scan::normal`]).
    simple: bool,
    sentence_start: bool,
    /// Where the open word starts in `normal`, and whether its first character is uppercase.
    open: Option<(usize, bool)>,
}

impl Scanner {
    /// Reads `nf` (in NFKC), noting the cuts of [`sentences`] when `cuts`.
    fn read(&mut self, nf: &str, cuts: bool) {
        let bytes = nf.as_bytes();
        let mut i = 0;
        while let Some(&b) = bytes.get(i) {
            if b < 0x80 {
                if b.is_ascii_alphanumeric() {
                    let run = bytes[i..]
                        .iter()
                        .position(|b| !b.is_ascii_alphanumeric())
                        .unwrap_or(bytes.len() - i);
                    self.begin(b.is_ascii_uppercase());
                    let word = &bytes[i..i + run];
                    self.normal.extend(word.iter().map(u8::to_ascii_lowercase));
                    i += run;
                    continue;
                }
                i += 1;
                self.close();
                if matches!(b, b'.' | b'!' | b'?' | b'\n' | b':' | b'"') {
                    self.sentence_start = true;
                }
                if cuts && is_cut(b, bytes.get(i)) {
                    self.scan.cuts.push(self.scan.words.len() as u32);
                }
                continue;
            }
            // `i` is always at a character boundary: it moves by whole characters.
            let Some(c) = nf.get(i..).and_then(|rest| rest.chars().next()) else {
                break;
            };
            i += c.len_utf8();
            let alnum = c.is_alphanumeric();
            if alnum {
                self.begin(c.is_uppercase());
            }
            for l in c.to_lowercase() {
                self.simple &= l.is_alphanumeric() == alnum;
                if alnum {
                    let mut utf8 = [0u8; 4];
                    self.normal
                        .extend_from_slice(l.encode_utf8(&mut utf8).as_bytes());
                }
            }
            if !alnum {
                self.close();
                if matches!(c, '“' | '”') {
                    self.sentence_start = true;
                }
            }
        }
    }

    /// Starts a word unless one is open (a space after the one before in `normal`).
    fn begin(&mut self, upper: bool) {
        if self.open.is_none() {
            if !self.normal.is_empty() {
                self.normal.push(b' ');
            }
            self.open = Some((self.normal.len(), upper));
        }
    }

    /// Ends the open word, if any.
    fn close(&mut self) {
        if let Some((start, upper)) = self.open.take() {
            let name_like = upper && !self.sentence_start;
            push_word(&mut self.scan.words, &self.normal[start..], name_like);
            self.sentence_start = false;
        }
    }
}
