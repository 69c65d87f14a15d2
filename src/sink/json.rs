//! Writes a document's output line: the bytes of `serde_json::to_writer` of its [`Line`], with
//! the long strings (text, title, entities) escaped a word of eight bytes at a time instead of
//! through serde_json's byte-by-byte escape, and the rarer nested values (source, boilerplate,
//! dedup) left to serde_json.

use crate::model::{Document, Entity, Line};
use serde::Serialize;

/// Appends the JSON of `line` to `out`, as `serde_json::to_writer` writes it.
pub fn write_doc_line(out: &mut Vec<u8>, line: &Line<'_, Document>) -> serde_json::Result<()> {
    // Every field of `Document` is named here, so a new one cannot be missed.
    let Document {
        kind,
        id,
        source,
        title,
        text,
        boilerplate,
        dedup,
        entities,
        strip_memory: _,
    } = line.record;
    key(out, '{', "schema");
    string(out, line.schema);
    key(out, ',', "line_id");
    string(out, &line.line_id);
    key(out, ',', "processed_at");
    string(out, line.processed_at);
    key(out, ',', "type");
    string(out, kind);
    key(out, ',', "id");
    string(out, id);
    key(out, ',', "source");
    nested(out, source)?;
    key(out, ',', "title");
    string(out, title);
    key(out, ',', "text");
    string(out, text);
    if let Some(b) = boilerplate {
        key(out, ',', "boilerplate");
        nested(out, b)?;
    }
    if let Some(d) = dedup {
        key(out, ',', "dedup");
        nested(out, d)?;
    }
    if let Some(es) = entities {
        key(out, ',', "entities");
        out.push(b'[');
        for (i, e) in es.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            entity(out, e);
        }
        out.push(b']');
    }
    out.push(b'}');
    Ok(())
}

fn entity(out: &mut Vec<u8>, e: &Entity) {
    let Entity {
        text,
        label,
        start,
        end,
        canonical,
    } = e;
    key(out, '{', "text");
    string(out, text);
    key(out, ',', "label");
    string(out, label);
    key(out, ',', "start");
    uint(out, *start as u64);
    key(out, ',', "end");
    uint(out, *end as u64);
    key(out, ',', "canonical");
    string(out, canonical);
    out.push(b'}');
}

/// Writes `sep`, then the key `k` (no escape needed: the keys are written here) and a colon.
fn key(out: &mut Vec<u8>, sep: char, k: &str) {
    out.push(sep as u8);
    out.push(b'"');
    out.extend_from_slice(k.as_bytes());
    out.extend_from_slice(b"\":");
}

fn nested<T: Serialize + ?Sized>(out: &mut Vec<u8>, v: &T) -> serde_json::Result<()> {
    serde_json::to_writer(&mut *out, v)
}

fn uint(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// Whether any of the eight bytes of `w` is below 0x20, a quote or a backslash (exact for
/// the word as a whole: a borrow only flags a byte above one that is flagged already).
fn needs_escape(w: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero_byte = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let control = w.wrapping_sub(ONES * 0x20) & !w & HIGH;
    control | zero_byte(w ^ (ONES * u64::from(b'"'))) | zero_byte(w ^ (ONES * u64::from(b'\\')))
        != 0
}

/// Writes `s` as a JSON string, escaped as serde_json escapes it.
fn string(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    // `bytes[done..i]` needs no escape and is not yet written.
    let (mut done, mut i) = (0, 0);
    while i < bytes.len() {
        if let Some(chunk) = bytes.get(i..i + 8) {
            let mut w = [0u8; 8];
            w.copy_from_slice(chunk);
            if !needs_escape(u64::from_le_bytes(w)) {
                i += 8;
                continue;
            }
        }
        let end = (i + 8).min(bytes.len());
        for (j, &b) in bytes.iter().enumerate().take(end).skip(i) {
            let short = match b {
                b'"' => b'"',
                b'\\' => b'\\',
                b'\n' => b'n',
                b'\t' => b't',
                b'\r' => b'r',
                0x08 => b'b',
                0x0c => b'f',
                0x00..=0x1f => b'u',
                _ => continue,
            };
            out.extend_from_slice(&bytes[done..j]);
            done = j + 1;
            out.push(b'\\');
            out.push(short);
            if short == b'u' {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 15)]);
            }
        }
        i = end;
    }
    out.extend_from_slice(&bytes[done..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{DedupInfo, DedupStatus, Format, RemovedLine, Reuse, SourceInfo};

    fn doc(text: &str, full: bool) -> Document {
        Document {
            kind: "document".into(),
            id: "0123456789abcdef0123456789abcdef".into(),
            source: SourceInfo {
                format: full.then_some(Format::Html),
                compression: full.then(|| "gzip".into()),
                path_bytes: full.then(|| "AAE=".into()),
                encoding: full.then(|| "windows-1252".into()),
                ..SourceInfo::named(format!("in/{text}.txt"), 2048)
            },
            title: text.chars().rev().collect(),
            text: text.into(),
            boilerplate: full.then(|| {
                vec![RemovedLine {
                    kind: "nav".into(),
                    text: text.into(),
                }]
            }),
            dedup: full.then(|| DedupInfo {
                status: DedupStatus::Rewrite,
                duplicate_of: Some("ab".into()),
                similarity: Some(0.8125),
                story: Some("cd".into()),
                reuse: vec![Reuse {
                    of: "ef".into(),
                    shared: 0.1,
                }],
            }),
            entities: full.then(|| {
                vec![
                    Entity {
                        text: text.into(),
                        label: "PER".into(),
                        start: 0,
                        end: usize::MAX,
                        canonical: "x\"y".into(),
                    },
                    Entity {
                        text: "Geneva".into(),
                        label: "LOC".into(),
                        start: 12,
                        end: 18,
                        canonical: String::new(),
                    },
                ]
            }),
            strip_memory: None,
        }
    }

    #[test]
    fn doc_lines_are_the_serde_json_ones() {
        let mut texts: Vec<String> = (0u8..0x80).map(|b| char::from(b).to_string()).collect();
        texts.extend(
            [
                "",
                "plain words of a news article, long enough for a few words",
                "quote \" backslash \\ tab\tnew\nline\r\u{8}\u{c}\u{1}\u{1f}\u{7f} end",
                "ünïcödé “quotes” — and 東京 with a \"quote\" at byte nine or so",
                "\"\"\"\"\"\"\"\"\\\\\\\\\\\\\\\\\n\n\n\n\n\n\n\n12345678",
            ]
            .map(String::from),
        );
        // Escapes at every offset within and across the eight-byte words.
        for n in 0..20 {
            texts.push(format!("{}\"{}\u{3}", "a".repeat(n), "é".repeat(n % 7)));
        }
        let mut escaped = 0;
        for t in &texts {
            for full in [false, true] {
                let d = doc(t, full);
                let file = crate::model::ReadyFile {
                    seq: 1,
                    path: format!("in/{t}").into(),
                    key: crate::model::FileKey::default(),
                    ready_at: std::time::Instant::now(),
                };
                let line = Line::new(&file, Some(&d.id), "2026-01-01T00:00:00.000Z", &d);
                let mut ours = Vec::new();
                write_doc_line(&mut ours, &line).unwrap();
                let theirs = serde_json::to_vec(&line).unwrap();
                assert_eq!(
                    String::from_utf8_lossy(&ours),
                    String::from_utf8_lossy(&theirs)
                );
                escaped += usize::from(ours.contains(&b'\\'));
            }
        }
        assert!(escaped > 60, "{escaped}");
    }
}
