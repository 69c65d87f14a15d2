//! Owns reading bytes like a browser: binary sniffing, charset choice (BOM, the WHATWG `<meta>`
//! prescan, `chardetng`) and decoding to UTF-8 with `encoding_rs`.
//!
//! The order follows the HTML standard's encoding sniffing with one deliberate exception: bytes
//! that are valid UTF-8 and not pure ASCII are read as UTF-8 even when the markup declares a
//! legacy charset. Scrapers re-encode pages to UTF-8 and leave the old `<meta>` behind, and
//! Firefox sniffs UTF-8 for local files the same way; a real legacy page is almost never valid
//! UTF-8 once it has a non-ASCII byte.

use chardetng::{EncodingDetector, Iso2022JpDetection, Utf8Detection};
use encoding_rs::{Encoding, UTF_16BE, UTF_16LE, UTF_8, WINDOWS_1252};

/// How many leading bytes the `<meta>` prescan looks at (the HTML standard's figure).
const PRESCAN_BYTES: usize = 1024;
/// How many leading bytes the control-byte share is measured on.
const SNIFF_BYTES: usize = 64 * 1024;
/// Share of control bytes above which a file is binary: text and markup have next to none.
const MAX_CONTROL_SHARE: f64 = 0.05;

/// File signatures that are never text: (magic bytes, offset, what the file is).
const MAGIC: &[(&[u8], usize, &str)] = &[
    (b"%PDF-", 0, "pdf"),
    (b"\x89PNG\r\n\x1a\n", 0, "png"),
    (b"\xff\xd8\xff", 0, "jpeg"),
    (b"GIF87a", 0, "gif"),
    (b"GIF89a", 0, "gif"),
    (b"WEBP", 8, "webp"),
    (b"PK\x03\x04", 0, "zip"),
    (b"PK\x05\x06", 0, "zip"),
    (b"\x7fELF", 0, "elf"),
    (b"\xcf\xfa\xed\xfe", 0, "mach-o"),
    (b"\xfe\xed\xfa\xcf", 0, "mach-o"),
    (b"\xca\xfe\xba\xbe", 0, "mach-o"),
    (b"\x00asm", 0, "wasm"),
    (b"7z\xbc\xaf\x27\x1c", 0, "7z"),
    (b"Rar!\x1a\x07", 0, "rar"),
    (b"\xfd7zXZ\x00", 0, "xz"),
    (b"\x28\xb5\x2f\xfd", 0, "zstd"),
    (b"BZh", 0, "bzip2"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", 0, "ole"),
    (b"SQLite format 3\x00", 0, "sqlite"),
    (b"OggS", 0, "ogg"),
    (b"ID3", 0, "mp3"),
    (b"ftyp", 4, "mp4"),
];

/// Why bytes are not text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Binary {
    /// The bytes start with a known file signature.
    Magic(&'static str),
    /// Too many control bytes; `offset` is the first one.
    Control { offset: usize },
}

impl std::fmt::Display for Binary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Binary::Magic(kind) => write!(f, "{kind} file"),
            Binary::Control { offset } => write!(f, "control bytes from offset {offset}"),
        }
    }
}

/// Text decoded from bytes, with the encoding that was used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// UTF-8 text; NUL became U+FFFD and every line ends in `\n`.
    pub text: String,
    pub encoding: &'static Encoding,
}

/// Returns why `bytes` are binary, or `None` for text in any charset.
pub fn sniff_binary(bytes: &[u8]) -> Option<Binary> {
    if bom(bytes).is_some() {
        return None;
    }
    for (magic, at, kind) in MAGIC {
        if bytes.get(*at..*at + magic.len()) == Some(magic) {
            // `BZh` and `ID3` are also the start of words: demand what follows them in a real file.
            let sure = match *kind {
                "bzip2" => bytes.get(3).is_some_and(|b| (b'1'..=b'9').contains(b)),
                "mp3" => bytes.get(3).is_some_and(|&b| b < 0x10),
                "webp" => bytes.starts_with(b"RIFF"),
                _ => true,
            };
            if sure {
                return Some(Binary::Magic(kind));
            }
        }
    }
    let head = &bytes[..bytes.len().min(SNIFF_BYTES)];
    // Count first, and text (nearly every file) has no control byte.
    let count = count_control(head);
    if count as f64 <= MAX_CONTROL_SHARE * head.len() as f64 {
        return None;
    }
    let first = head.iter().position(|&b| is_control(b) != 0)?;
    Some(Binary::Control { offset: first })
}

/// Returns 1 for a control byte that text does not hold: ESC is part of ISO-2022-JP text; tab,
/// line feed, form feed and carriage return are layout. Branch-free, so counting vectorizes.
#[inline(always)]
fn is_control(b: u8) -> u8 {
    (b < 0x20) as u8
        & (b != b'\t') as u8
        & (b != b'\n') as u8
        & (b != 0x0c) as u8
        & (b != b'\r') as u8
        & (b != 0x1b) as u8
}

/// Returns the number of control bytes in `head`, counted in chunks whose count fits a byte.
fn count_control(head: &[u8]) -> usize {
    head.chunks(255)
        .map(|c| c.iter().fold(0u8, |n, &b| n + is_control(b)) as usize)
        .sum()
}

/// Decodes text bytes: BOM, then valid UTF-8, then (for markup) the `<meta>` prescan, then
/// `chardetng`. `markup` is whether the bytes are HTML (by name or by look).
pub fn decode(bytes: &[u8], markup: bool) -> Decoded {
    let (encoding, body) = match bom(bytes) {
        Some((enc, len)) => (enc, &bytes[len..]),
        None => match std::str::from_utf8(bytes) {
            // Valid UTF-8 (nearly every file): validated once, not again by the decoder.
            Ok(text) => {
                return Decoded {
                    text: normalize(text),
                    encoding: UTF_8,
                }
            }
            Err(_) => (choose(bytes, markup), bytes),
        },
    };
    let (text, _) = encoding.decode_without_bom_handling(body);
    Decoded {
        text: normalize(&text),
        encoding,
    }
}

/// Chooses the encoding of bytes that are not valid UTF-8 and have no BOM.
fn choose(bytes: &[u8], markup: bool) -> &'static Encoding {
    if markup {
        if let Some(enc) = prescan(&bytes[..bytes.len().min(PRESCAN_BYTES)]) {
            return enc;
        }
    }
    let mut detector = EncodingDetector::new(Iso2022JpDetection::Allow);
    detector.feed(bytes, true);
    detector.guess(None, Utf8Detection::Deny)
}

/// Returns the encoding a byte-order mark names, and the mark's length.
fn bom(bytes: &[u8]) -> Option<(&'static Encoding, usize)> {
    Encoding::for_bom(bytes)
}

/// Replaces NUL with U+FFFD (as HTML parsers do) and CR or CRLF line ends with `\n`.
fn normalize(text: &str) -> String {
    if memchr::memchr2(0, b'\r', text.as_bytes()).is_none() {
        return text.to_string();
    }
    // NUL and CR are ASCII, so every cut below falls on a character boundary: the text between
    // them is copied whole, not a character at a time.
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut from = 0;
    for at in memchr::memchr2_iter(0, b'\r', bytes) {
        out.push_str(&text[from..at]);
        if bytes[at] == 0 {
            out.push('\u{fffd}');
            from = at + 1;
        } else {
            out.push('\n');
            from = at + 1 + usize::from(bytes.get(at + 1) == Some(&b'\n'));
        }
    }
    out.push_str(&text[from..]);
    out
}

/// The HTML standard's prescan for a `<meta charset>` or `http-equiv` declaration.
pub fn prescan(head: &[u8]) -> Option<&'static Encoding> {
    let mut i = 0;
    while i < head.len() {
        let rest = &head[i..];
        if rest.starts_with(b"<!--") {
            i += 4 + find(&rest[4..], b"-->").map_or(rest.len(), |p| p + 3);
        } else if starts_with_ci(rest, b"<meta")
            && rest
                .get(5)
                .is_some_and(|&b| b == b'/' || b.is_ascii_whitespace())
        {
            i += 5;
            let (enc, next) = meta(head, i);
            if enc.is_some() {
                return enc;
            }
            i = next;
        } else if rest.len() > 1
            && rest[0] == b'<'
            && (rest[1].is_ascii_alphabetic()
                || (rest[1] == b'/' && rest.get(2).is_some_and(u8::is_ascii_alphabetic)))
        {
            i += 1;
            while i < head.len() && !head[i].is_ascii_whitespace() && head[i] != b'>' {
                i += 1;
            }
            while let Some((_, _, next)) = attribute(head, i) {
                i = next;
            }
            i += 1;
        } else if rest.starts_with(b"<!") || rest.starts_with(b"</") || rest.starts_with(b"<?") {
            i += find(rest, b">").map_or(rest.len(), |p| p + 1);
        } else {
            i += 1;
        }
    }
    None
}

/// Reads a `<meta>` tag's attributes from `i`; returns the encoding it declares and where it ends.
fn meta(head: &[u8], mut i: usize) -> (Option<&'static Encoding>, usize) {
    let (mut http_equiv, mut charset, mut content) = (false, None, None);
    while let Some((name, value, next)) = attribute(head, i) {
        i = next;
        match name.as_slice() {
            b"http-equiv" => http_equiv |= value.eq_ignore_ascii_case(b"content-type"),
            b"charset" if charset.is_none() => charset = Some(value),
            b"content" if content.is_none() => content = Some(value),
            _ => {}
        }
    }
    let label = charset.or_else(|| {
        content
            .filter(|_| http_equiv)
            .and_then(|c| charset_in_content(&c))
    });
    let enc = label.and_then(|l| Encoding::for_label(&l)).map(|e| {
        // A page that could be read as ASCII cannot declare UTF-16; x-user-defined is 1252.
        if e == UTF_16LE || e == UTF_16BE {
            UTF_8
        } else if e.name() == "x-user-defined" {
            WINDOWS_1252
        } else {
            e
        }
    });
    (enc, i)
}

/// Reads one attribute at `i` (lowercased name, raw value, next index); `None` at `>` or the end.
fn attribute(head: &[u8], mut i: usize) -> Option<(Vec<u8>, Vec<u8>, usize)> {
    while i < head.len() && (head[i].is_ascii_whitespace() || head[i] == b'/') {
        i += 1;
    }
    if i >= head.len() || head[i] == b'>' {
        return None;
    }
    let mut name = Vec::new();
    while i < head.len() {
        let b = head[i];
        if (b == b'=' && !name.is_empty()) || b.is_ascii_whitespace() || b == b'/' || b == b'>' {
            break;
        }
        name.push(b.to_ascii_lowercase());
        i += 1;
    }
    while i < head.len() && head[i].is_ascii_whitespace() {
        i += 1;
    }
    if head.get(i) != Some(&b'=') {
        return Some((name, Vec::new(), i));
    }
    i += 1;
    while i < head.len() && head[i].is_ascii_whitespace() {
        i += 1;
    }
    let mut value = Vec::new();
    match head.get(i) {
        Some(&q) if q == b'"' || q == b'\'' => {
            i += 1;
            while i < head.len() && head[i] != q {
                value.push(head[i].to_ascii_lowercase());
                i += 1;
            }
            i += 1;
        }
        _ => {
            while i < head.len() && !head[i].is_ascii_whitespace() && head[i] != b'>' {
                value.push(head[i].to_ascii_lowercase());
                i += 1;
            }
        }
    }
    Some((name, value, i))
}

/// The standard's "extract a character encoding from a meta element" over a `content` value.
fn charset_in_content(content: &[u8]) -> Option<Vec<u8>> {
    let mut from = 0;
    loop {
        let at = from + find(&content[from..], b"charset")? + 7;
        let mut i = at;
        while i < content.len() && content[i].is_ascii_whitespace() {
            i += 1;
        }
        if content.get(i) != Some(&b'=') {
            from = at;
            continue;
        }
        i += 1;
        while i < content.len() && content[i].is_ascii_whitespace() {
            i += 1;
        }
        let rest = &content[i..];
        return match rest.first() {
            Some(&q) if q == b'"' || q == b'\'' => {
                find(&rest[1..], &[q]).map(|end| rest[1..1 + end].to_vec())
            }
            Some(_) => {
                let end = rest
                    .iter()
                    .position(|&b| b == b';' || b.is_ascii_whitespace())
                    .unwrap_or(rest.len());
                Some(rest[..end].to_vec())
            }
            None => None,
        };
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(hay, needle)
}

fn starts_with_ci(hay: &[u8], prefix: &[u8]) -> bool {
    hay.len() >= prefix.len() && hay[..prefix.len()].eq_ignore_ascii_case(prefix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_bytes_are_counted_as_one_at_a_time() {
        let naive = |h: &[u8]| {
            h.iter()
                .filter(|&&b| b < 0x20 && !matches!(b, b'\t' | b'\n' | 0x0c | b'\r' | 0x1b))
                .count()
        };
        let every: Vec<u8> = (0..=255u8).collect();
        assert_eq!(count_control(&every), 27);
        // Longer than one 255-byte chunk, all control bytes: no count overflows.
        let mut mixed: Vec<u8> = (0..5_000u32).map(|i| (i * 7 % 256) as u8).collect();
        mixed.extend(std::iter::repeat_n(1u8, 700));
        assert_eq!(count_control(&mixed), naive(&mixed));
    }
    use encoding_rs::{SHIFT_JIS, WINDOWS_1251};

    #[test]
    fn prescan_finds_meta_charset_and_http_equiv() {
        assert_eq!(
            prescan(b"<html><head><meta charset=\"windows-1251\">"),
            Some(WINDOWS_1251)
        );
        assert_eq!(
            prescan(b"<META HTTP-EQUIV='Content-Type' CONTENT='text/html; charset=Shift_JIS'>"),
            Some(SHIFT_JIS)
        );
        assert_eq!(
            prescan(b"<!-- <meta charset=koi8-r> --><meta charset=iso-8859-1>"),
            Some(WINDOWS_1252),
            "comments are skipped and latin1 is the 1252 label"
        );
        assert_eq!(prescan(b"<meta charset=utf-16>"), Some(UTF_8));
        assert_eq!(prescan(b"<p title='<meta charset=koi8-r>'>x"), None);
        assert_eq!(prescan(b"<meta content='text/html; charset=koi8-r'>"), None);
        assert_eq!(prescan(b"<meta charset=nonsense>"), None);
    }

    #[test]
    fn byte_order_marks_win() {
        let mut le = vec![0xff, 0xfe];
        le.extend("Zoë".encode_utf16().flat_map(u16::to_le_bytes));
        let d = decode(&le, false);
        assert_eq!((d.text.as_str(), d.encoding), ("Zoë", UTF_16LE));
        let mut be = vec![0xfe, 0xff];
        be.extend("Zoë".encode_utf16().flat_map(u16::to_be_bytes));
        assert_eq!(decode(&be, true).text, "Zoë");
        assert_eq!(sniff_binary(&le), None);
        assert_eq!(decode(b"\xef\xbb\xbfhi", false).text, "hi");
    }

    #[test]
    fn undeclared_legacy_text_is_detected() {
        let d = decode(
            b"Le caf\xe9 \xe9tait ferm\xe9 et la client\xe8le \xe9tait d\xe9\xe7ue.",
            false,
        );
        assert_eq!(d.encoding, WINDOWS_1252);
        assert!(d.text.contains("café était fermé"), "{}", d.text);
    }

    #[test]
    fn nul_and_carriage_returns_are_normalized() {
        assert_eq!(decode(b"a\0b\rc\r\nd", true).text, "a\u{fffd}b\nc\nd");
    }

    #[test]
    fn normalize_matches_a_character_walk() {
        // The rule one character at a time, as `normalize` was first written.
        fn walk(text: &str) -> String {
            let mut out = String::new();
            let mut chars = text.chars().peekable();
            while let Some(c) = chars.next() {
                match c {
                    '\0' => out.push('\u{fffd}'),
                    '\r' => {
                        chars.next_if_eq(&'\n');
                        out.push('\n');
                    }
                    c => out.push(c),
                }
            }
            out
        }
        for text in [
            "",
            "\r",
            "\n",
            "\0",
            "\r\n",
            "\r\r\n",
            "\n\r",
            "é\r\nü",
            "\0é\0",
            "a\r",
            "x\r\n\r\ny",
            "\r\0\n",
            "日本\r語\r\n",
            "plain",
        ] {
            assert_eq!(normalize(text), walk(text), "{text:?}");
        }
    }

    #[test]
    fn binary_is_told_from_text() {
        assert_eq!(sniff_binary(b"%PDF-1.7\n"), Some(Binary::Magic("pdf")));
        assert_eq!(sniff_binary(b"GIF89a\0\x01"), Some(Binary::Magic("gif")));
        assert_eq!(
            sniff_binary(b"RIFF\0\0\0\0WEBPVP8 "),
            Some(Binary::Magic("webp"))
        );
        assert_eq!(sniff_binary(b"BZh is not a word"), None);
        assert_eq!(
            sniff_binary(b"ab\0\x01\x02cd"),
            Some(Binary::Control { offset: 2 })
        );
        let mut page = b"<p>".repeat(1000);
        page.push(0);
        assert_eq!(sniff_binary(&page), None, "one stray NUL is not binary");
        assert_eq!(sniff_binary(b"\x1b$B;d\x1b(B"), None, "iso-2022-jp");
    }
}
