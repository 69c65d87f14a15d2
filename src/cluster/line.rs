//! Owns the output line's two halves: what a worker renders once (the JSON of everything but
//! `processed_at` and `dedup`), and how the decider completes it, so the decider neither
//! parses nor re-encodes the document.
//!
//! The completed line has the bytes the single-node sink writes for the same document
//! (`Line` of the document after the dedup step): `{"schema", "line_id", "processed_at",
//! "type", "id", "source", "title", "text", ["boilerplate"], ["dedup"], ["entities"]}`. The
//! worker renders the line of the document with an empty title and text and no boilerplate,
//! dedup or entities (the *base*), the title-and-text part on its own, and the entities array;
//! the decider splices in the time, the title and text (empty for an exact copy, as the
//! dedup step clears them), the verdict and the entities (none for an exact copy).

use crate::model::{DedupInfo, Document, ErrorRecord, Line, ReadyFile, RemovedLine};
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

/// How the base of a document line ends: its title and text left empty.
const EMPTY_TAIL: &[u8] = br#""title":"","text":""}"#;
/// Where the time goes: just after this.
const TS_KEY: &[u8] = br#""processed_at":""#;

/// Where a rendered line's parts sit in the prepared message's body, after the dedup work.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Layout {
    /// Bytes of the base; for an error record, the whole line but its time.
    pub base: usize,
    /// Bytes of the title-and-text part (0 for an error record).
    pub text: usize,
    /// Offset in the base where the value of `processed_at` goes.
    pub ts_at: usize,
    /// Whether the entities array follows (it runs to the end of the body).
    pub entities: bool,
}

/// A line as a worker renders it.
#[derive(Debug, Clone, Default)]
pub struct Rendered {
    pub layout: Layout,
    /// Base, then title and text, then the entities array.
    pub bytes: Vec<u8>,
}

#[derive(Serialize)]
struct TitleText<'a> {
    title: &'a str,
    text: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    boilerplate: Option<&'a Vec<RemovedLine>>,
}

/// Renders the line of a document that has not been through the dedup step.
pub fn render_doc(file: &ReadyFile, doc: &Document) -> Result<Rendered> {
    let bare = Document {
        kind: doc.kind.clone(),
        id: doc.id.clone(),
        source: doc.source.clone(),
        title: String::new(),
        text: String::new(),
        boilerplate: None,
        dedup: None,
        entities: None,
        strip_memory: None,
    };
    let mut bytes = serde_json::to_vec(&Line::new(file, Some(&doc.id), "", &bare))?;
    if !bytes.ends_with(EMPTY_TAIL) {
        bail!("unexpected document line layout");
    }
    let ts_at = ts_at(&bytes)?;
    let base = bytes.len();
    let tt = serde_json::to_vec(&TitleText {
        title: &doc.title,
        text: &doc.text,
        boilerplate: doc.boilerplate.as_ref(),
    })?;
    bytes.extend_from_slice(&tt[1..tt.len() - 1]);
    let text = bytes.len() - base;
    if let Some(e) = &doc.entities {
        serde_json::to_writer(&mut bytes, e)?;
    }
    Ok(Rendered {
        layout: Layout {
            base,
            text,
            ts_at,
            entities: doc.entities.is_some(),
        },
        bytes,
    })
}

/// Renders the line of an error record: complete but for its time.
pub fn render_error(file: &ReadyFile, rec: &ErrorRecord) -> Result<Rendered> {
    let bytes = serde_json::to_vec(&Line::new(file, None, "", rec))?;
    let ts_at = ts_at(&bytes)?;
    Ok(Rendered {
        layout: Layout {
            base: bytes.len(),
            text: 0,
            ts_at,
            entities: false,
        },
        bytes,
    })
}

fn ts_at(line: &[u8]) -> Result<usize> {
    match line.windows(TS_KEY.len()).position(|w| w == TS_KEY) {
        Some(i) => Ok(i + TS_KEY.len()),
        None => bail!("a line without processed_at"),
    }
}

/// Completes a rendered error record (`doc` false) or document line: `parts` are the body's
/// bytes after the dedup work, `dedup` the verdict when the stage runs.
pub fn complete(
    layout: &Layout,
    parts: &[u8],
    now: &str,
    doc: bool,
    dedup: Option<&DedupInfo>,
) -> Result<Vec<u8>> {
    let Layout {
        base,
        text,
        ts_at,
        entities,
    } = *layout;
    if parts.len() < base + text || ts_at > base {
        bail!("a prepared line shorter than its layout");
    }
    let mut line = Vec::with_capacity(parts.len() + now.len() + 256);
    line.extend_from_slice(&parts[..ts_at]);
    line.extend_from_slice(now.as_bytes());
    if !doc {
        line.extend_from_slice(&parts[ts_at..base]);
        return Ok(line);
    }
    if base < ts_at + EMPTY_TAIL.len() {
        bail!("a prepared document line shorter than its layout");
    }
    line.extend_from_slice(&parts[ts_at..base - EMPTY_TAIL.len()]);
    let copy = dedup.is_some_and(|d| d.status == crate::model::DedupStatus::ExactDuplicate);
    if copy {
        // The dedup step clears a copy's body: it is in the line of `duplicate_of`.
        line.extend_from_slice(&EMPTY_TAIL[..EMPTY_TAIL.len() - 1]);
    } else {
        line.extend_from_slice(&parts[base..base + text]);
    }
    if let Some(d) = dedup {
        line.extend_from_slice(br#","dedup":"#);
        write_dedup(&mut line, d)?;
    }
    if entities {
        line.extend_from_slice(br#","entities":"#);
        if copy {
            // As in the single-node mode, where entities run after dedup: a copy has none.
            line.extend_from_slice(b"[]");
        } else {
            line.extend_from_slice(&parts[base + text..]);
        }
    }
    line.push(b'}');
    Ok(line)
}

/// Writes the JSON of a dedup verdict: the bytes of `serde_json::to_writer`, written directly
/// when no string needs an escape (the decision's ids are hex); numbers go through serde_json.
fn write_dedup(out: &mut Vec<u8>, d: &DedupInfo) -> Result<()> {
    let plain = |v: &str| !v.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\');
    let strings = [d.duplicate_of.as_deref(), d.story.as_deref()];
    let reuse_plain = d.reuse.iter().all(|r| plain(&r.of));
    if !strings.iter().flatten().all(|v| plain(v)) || !reuse_plain {
        serde_json::to_writer(out, d)?;
        return Ok(());
    }
    let string = |out: &mut Vec<u8>, key: &[u8], v: &str| {
        out.extend_from_slice(key);
        out.push(b'"');
        out.extend_from_slice(v.as_bytes());
        out.push(b'"');
    };
    string(out, br#"{"status":"#, d.status.as_str());
    if let Some(v) = &d.duplicate_of {
        string(out, br#","duplicate_of":"#, v);
    }
    if let Some(v) = d.similarity {
        out.extend_from_slice(br#","similarity":"#);
        serde_json::to_writer(&mut *out, &v)?;
    }
    if let Some(v) = &d.story {
        string(out, br#","story":"#, v);
    }
    if !d.reuse.is_empty() {
        out.extend_from_slice(br#","reuse":["#);
        for (i, r) in d.reuse.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            string(out, br#"{"of":"#, &r.of);
            out.extend_from_slice(br#","shared":"#);
            serde_json::to_writer(&mut *out, &r.shared)?;
            out.push(b'}');
        }
        out.push(b']');
    }
    out.push(b'}');
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{DedupStatus, Entity, FileKey, Reuse, SourceInfo};
    use std::path::PathBuf;

    fn file() -> ReadyFile {
        ReadyFile {
            seq: 3,
            path: PathBuf::from("drop/a \"b\".txt"),
            key: FileKey {
                dev: 1,
                ino: 2,
                size: 30,
                mtime_ns: 4,
                fp: 5,
            },
            ready_at: std::time::Instant::now(),
        }
    }

    fn source() -> SourceInfo {
        SourceInfo {
            path: "drop/a \"b\".txt".into(),
            bytes: 30,
            format: Some(crate::model::Format::Text),
            compression: None,
            path_bytes: None,
            encoding: Some("utf-8".into()),
        }
    }

    fn doc(boilerplate: bool, entities: bool) -> Document {
        Document {
            kind: "document".into(),
            id: "ab".repeat(16),
            source: source(),
            title: "Bridge \"reopens\"".into(),
            text: "The bridge reopens in March.\nÜber alles — \u{1F600}.".into(),
            boilerplate: boilerplate.then(|| {
                vec![RemovedLine {
                    kind: "boilerplate".into(),
                    text: "Subscribe now".into(),
                }]
            }),
            dedup: None,
            entities: entities.then(|| {
                vec![Entity {
                    text: "March".into(),
                    label: "DATE".into(),
                    start: 22,
                    end: 27,
                    canonical: "March".into(),
                }]
            }),
            strip_memory: None,
        }
    }

    fn verdict(status: DedupStatus) -> DedupInfo {
        DedupInfo {
            status,
            duplicate_of: (status != DedupStatus::Unique).then(|| "cd".repeat(16)),
            similarity: Some(0.93),
            story: Some("ef".repeat(8)),
            reuse: vec![Reuse {
                of: "01".repeat(16),
                shared: 0.25,
            }],
        }
    }

    /// The line the single-node sink writes for `doc` after the dedup step's `info`.
    fn single_node(mut d: Document, info: Option<DedupInfo>, now: &str) -> Vec<u8> {
        if let Some(i) = &info {
            if i.status == DedupStatus::ExactDuplicate {
                d.title.clear();
                d.text.clear();
                d.boilerplate = None;
                d.entities = d.entities.map(|_| Vec::new());
            }
        }
        d.dedup = info;
        serde_json::to_vec(&Line::new(&file(), Some(&d.id.clone()), now, &d)).unwrap()
    }

    #[test]
    fn completed_document_lines_match_the_single_node_bytes() {
        let now = "2026-12-03T08:00:00.123Z";
        for (boilerplate, entities) in [(false, false), (true, true), (false, true)] {
            let d = doc(boilerplate, entities);
            let r = render_doc(&file(), &d).unwrap();
            let mut verdicts: Vec<Option<DedupInfo>> = [
                DedupStatus::Unique,
                DedupStatus::ExactDuplicate,
                DedupStatus::NearDuplicate,
                DedupStatus::Rewrite,
            ]
            .into_iter()
            .map(|s| Some(verdict(s)))
            .collect();
            verdicts.push(None);
            for v in verdicts {
                let line = complete(&r.layout, &r.bytes, now, true, v.as_ref()).unwrap();
                let want = single_node(d.clone(), v.clone(), now);
                assert_eq!(
                    String::from_utf8(line).unwrap(),
                    String::from_utf8(want).unwrap(),
                    "boilerplate {boilerplate}, entities {entities}, {v:?}"
                );
            }
        }
    }

    #[test]
    fn completed_error_lines_match_the_single_node_bytes() {
        let rec = ErrorRecord {
            kind: "error".into(),
            source: source(),
            stage: "read".into(),
            error: "binary file \"x\"".into(),
        };
        let now = "2026-12-03T08:00:00.123Z";
        let r = render_error(&file(), &rec).unwrap();
        let line = complete(&r.layout, &r.bytes, now, false, None).unwrap();
        let want = serde_json::to_vec(&Line::new(&file(), None, now, &rec)).unwrap();
        assert_eq!(line, want);
    }

    #[test]
    fn dedup_json_is_the_serde_json() {
        let reuse = |of: &str, shared| Reuse {
            of: of.into(),
            shared,
        };
        let mut infos = Vec::new();
        for status in [
            DedupStatus::Unique,
            DedupStatus::ExactDuplicate,
            DedupStatus::NearDuplicate,
            DedupStatus::Rewrite,
        ] {
            infos.push(verdict(status));
        }
        infos.push(DedupInfo {
            status: DedupStatus::NearDuplicate,
            duplicate_of: Some("0a".repeat(16)),
            similarity: Some(0.123_456_79),
            story: Some("ff".repeat(16)),
            reuse: vec![reuse("ab", 0.5), reuse("cd", 1e-7), reuse("ef", f32::NAN)],
        });
        infos.push(DedupInfo {
            status: DedupStatus::Unique,
            duplicate_of: None,
            similarity: Some(f32::INFINITY),
            story: Some("a\"b\\c\n\u{1}é".into()),
            reuse: vec![reuse("x\"", 0.25)],
        });
        infos.push(DedupInfo {
            status: DedupStatus::Unique,
            duplicate_of: None,
            similarity: None,
            story: None,
            reuse: Vec::new(),
        });
        for d in infos {
            let mut ours = Vec::new();
            write_dedup(&mut ours, &d).unwrap();
            assert_eq!(
                String::from_utf8(ours).unwrap(),
                serde_json::to_string(&d).unwrap()
            );
        }
    }

    #[test]
    fn short_parts_are_refused() {
        let r = render_doc(&file(), &doc(true, true)).unwrap();
        let short = &r.bytes[..r.layout.base];
        assert!(complete(&r.layout, short, "t", true, None).is_err());
    }
}
