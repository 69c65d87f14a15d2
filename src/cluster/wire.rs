//! Owns what travels on the cluster's streams: the work message an intake publishes, the
//! prepared document a worker publishes, and the headers the decider puts on output lines.
//!
//! Work and prepared payloads are a little-endian u32 length, that many bytes of JSON metadata,
//! then the body (the file's bytes, or the [`crate::dedup::Prepared`] bytes).

use super::line::Layout;
use crate::dedup::IndexEntry;
use crate::model::{FileKey, SourceInfo};
use anyhow::{bail, Context, Result};
use async_nats::header::{HeaderName, NATS_EXPECTED_LAST_SEQUENCE, NATS_MESSAGE_ID};
use async_nats::HeaderMap;
use serde::{Deserialize, Serialize};

/// Header with the ledger fields of an output line in one value (the current layout, version
/// 2): `2 <work seq> <ready ms> <prepared floor>`, then, when the line has a dedup index entry,
/// a space and the entry's JSON. One header instead of four saves the decider three header-map
/// inserts and number formattings a document.
pub const LINE: &str = "Dropline-Line";
/// The version that starts a [`LINE`] value.
const LINE_VERSION: &str = "2";

/// Version 1 headers (before [`LINE`]), still read from output streams written by older
/// deciders: the work stream sequence of the file an output line is for,
pub const WORK_SEQ: &str = "Dropline-Work-Seq";
/// the lowest prepared-stream sequence the decider still needed after this line,
pub const PREPARED_FLOOR: &str = "Dropline-Prepared-Floor";
/// the dedup index entry of the line (JSON), so a new decider rebuilds the index,
pub const INDEX_ENTRY: &str = "Dropline-Index";
/// and the wall-clock time (Unix ms) the file became ready at the intake.
pub const READY_MS: &str = "Dropline-Ready-Ms";

/// The status of a lost-work marker: the output entry (`<name>.out.lost`, headers only, no
/// payload) by which the decider declares a work sequence lost with its stream, so it stops
/// waiting for it and the intake publishes that file again. Not a line: the file sink,
/// `cluster tail` and `cluster status` leave it out.
pub const LOST: &str = "lost";

/// Whether `subject` is a lost-work marker's, under the output prefix `out_prefix`.
pub fn is_lost(subject: &str, out_prefix: &str) -> bool {
    subject
        .strip_prefix(out_prefix)
        .and_then(|s| s.strip_prefix('.'))
        == Some(LOST)
}

/// [`LINE`] as a [`HeaderName`], built without an allocation each time.
const LINE_NAME: HeaderName = HeaderName::from_static(LINE);

/// Appends `v` in decimal (as `v.to_string()` writes it), without a formatter.
fn push_u64(out: &mut String, v: u64) {
    out.push_str(itoa::Buffer::new().format(v));
}

/// Returns `prefix` followed by `v` in decimal.
fn numbered(prefix: &str, v: u64) -> String {
    let mut out = String::with_capacity(prefix.len() + 20);
    out.push_str(prefix);
    push_u64(&mut out, v);
    out
}

/// Returns the headers of the output line for work sequence `work_seq`, which make the output
/// stream the decider's ledger: its message id (`o` and the work sequence), the stream's last
/// sequence it expects (`out_last`), and [`LINE`]: the work sequence, the ready time, the
/// lowest prepared sequence still needed after it (`floor`) and the dedup index `entry` (JSON).
pub fn line_headers(
    work_seq: u64,
    out_last: u64,
    ready_ms: u64,
    entry: Option<&str>,
    floor: u64,
) -> HeaderMap {
    let mut line = String::with_capacity(64 + entry.map_or(0, str::len));
    line.push_str(LINE_VERSION);
    for v in [work_seq, ready_ms, floor] {
        line.push(' ');
        push_u64(&mut line, v);
    }
    if let Some(e) = entry {
        line.push(' ');
        line.push_str(e);
    }
    let mut headers = HeaderMap::new();
    headers.insert(NATS_MESSAGE_ID, numbered("o", work_seq));
    headers.insert(NATS_EXPECTED_LAST_SEQUENCE, numbered("", out_last));
    headers.insert(LINE_NAME, line);
    headers
}

/// The ledger fields of an output line, as [`line_headers`] wrote them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineFields<'a> {
    pub work_seq: u64,
    /// `None` only for a version 1 line without [`READY_MS`].
    pub ready_ms: Option<u64>,
    pub floor: u64,
    /// The dedup index entry (JSON), for a line that has one.
    pub entry: Option<&'a str>,
}

/// Reads the ledger fields of an output line's headers: the [`LINE`] header, or the version 1
/// headers of a line an older decider wrote.
pub fn line_fields(headers: &HeaderMap) -> Result<LineFields<'_>> {
    let num = |v: &str, what: &str| -> Result<u64> {
        v.parse()
            .with_context(|| format!("bad {what} in an output line's headers: {v:?}"))
    };
    if let Some(v) = headers.get(LINE) {
        let mut parts = v.as_str().splitn(5, ' ');
        let mut next = |what: &str| {
            parts
                .next()
                .with_context(|| format!("no {what} in the {LINE} header"))
        };
        let version = next("version")?;
        if version != LINE_VERSION {
            bail!("{LINE} header of version {version:?}, not {LINE_VERSION}: upgrade this node");
        }
        let work_seq = num(next("work sequence")?, "work sequence")?;
        let ready_ms = num(next("ready time")?, "ready time")?;
        let floor = num(next("prepared floor")?, "prepared floor")?;
        return Ok(LineFields {
            work_seq,
            ready_ms: Some(ready_ms),
            floor,
            entry: parts.next(),
        });
    }
    let field = |name: &str| {
        headers
            .get(name)
            .map(|v| v.as_str())
            .with_context(|| format!("an output line with neither {LINE} nor {name}"))
    };
    Ok(LineFields {
        work_seq: num(field(WORK_SEQ)?, WORK_SEQ)?,
        ready_ms: match headers.get(READY_MS) {
            Some(v) => Some(num(v.as_str(), READY_MS)?),
            None => None,
        },
        floor: num(field(PREPARED_FLOOR)?, PREPARED_FLOOR)?,
        entry: headers.get(INDEX_ENTRY).map(|v| v.as_str()),
    })
}

/// What an intake says about one ready file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkMeta {
    /// The path as the intake saw it (lossy UTF-8), for the line id of files without identity.
    pub path: String,
    pub key: FileKey,
    pub source: SourceInfo,
    /// Unix ms when the file became ready.
    pub ready_ms: u64,
    /// The folder the file came from, relative to the drop folder: the strip stage's source.
    #[serde(default)]
    pub source_key: String,
    /// The object-store object holding the bytes, when they were too large to go inline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
    /// Why the intake could not read the file; the worker turns it into an error record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What a worker publishes for one work message. The body is the prepared dedup work
/// (`dedup_len` bytes, [`crate::dedup::Prepared::to_bytes`]) followed by the rendered line
/// ([`super::line`]), so the decider parses neither the document nor its JSON.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PreparedMeta {
    /// The work stream sequence: the order the decider decides in.
    pub work_seq: u64,
    pub ready_ms: u64,
    /// The content id of a document; `None` for an error record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The stage of an error record, for the metrics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    /// Bytes of prepared dedup work at the start of the body (0: none, the text is empty).
    pub dedup_len: usize,
    /// Where the rendered line's parts sit after it.
    pub line: Layout,
    /// The file's object was gone from the files bucket: no line, the decider marks the work
    /// lost ([`LOST`]) and the intake publishes the file again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub object_lost: bool,
}

/// Returns `meta` as JSON followed by `body`, length-prefixed.
pub fn encode<T: Serialize>(meta: &T, body: &[u8]) -> Result<Vec<u8>> {
    let json = serde_json::to_vec(meta)?;
    let mut out = Vec::with_capacity(4 + json.len() + body.len());
    out.extend_from_slice(&u32::try_from(json.len())?.to_le_bytes());
    out.extend_from_slice(&json);
    out.extend_from_slice(body);
    Ok(out)
}

/// Splits what [`encode`] wrote into the metadata and the body.
pub fn decode<'a, T: Deserialize<'a>>(payload: &'a [u8]) -> Result<(T, &'a [u8])> {
    if payload.len() < 4 {
        bail!("message too short");
    }
    let n = u32::from_le_bytes([payload[0], payload[1], payload[2], payload[3]]) as usize;
    let Some(json) = payload.get(4..4 + n) else {
        bail!("message shorter than its metadata length");
    };
    let meta = serde_json::from_slice(json).context("bad message metadata")?;
    Ok((meta, &payload[4 + n..]))
}

/// Returns the `Nats-Msg-Id` of a file version: its identity, fingerprint included.
pub fn work_msg_id(key: &FileKey, path: &str) -> String {
    if *key == FileKey::default() {
        // No identity: the path is all there is (such files become error records anyway).
        return format!("path-{:032x}", crate::dedup::hash128(path.as_bytes()));
    }
    format!(
        "{:x}-{:x}-{:x}-{:x}-{:x}",
        key.dev, key.ino, key.size, key.mtime_ns, key.fp
    )
}

/// Decodes the index entry header of an output line.
pub fn index_entry(value: &str) -> Result<IndexEntry> {
    serde_json::from_str(value).context("bad index entry header")
}

/// Returns the current wall-clock time as Unix ms.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let meta = WorkMeta {
            path: "drop/a.txt".into(),
            key: FileKey {
                dev: 1,
                ino: 2,
                size: 3,
                mtime_ns: 4,
                fp: 5,
            },
            source: SourceInfo {
                path: "drop/a.txt".into(),
                bytes: 3,
                format: None,
                compression: None,
                path_bytes: None,
                encoding: None,
            },
            ready_ms: 7,
            source_key: String::new(),
            object: None,
            error: None,
        };
        let bytes = encode(&meta, b"abc").unwrap();
        let (back, body): (WorkMeta, &[u8]) = decode(&bytes).unwrap();
        assert_eq!((back.key, back.ready_ms, body), (meta.key, 7, &b"abc"[..]));
        assert!(decode::<WorkMeta>(&bytes[..5]).is_err());
        assert_eq!(work_msg_id(&meta.key, "x"), "1-2-3-4-5");
        assert_ne!(
            work_msg_id(&FileKey::default(), "a"),
            work_msg_id(&FileKey::default(), "b")
        );
    }

    /// The version 1 headers an older decider wrote for the same line.
    fn old_headers(seq: u64, last: u64, ready: u64, entry: Option<&str>, floor: u64) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(NATS_MESSAGE_ID, format!("o{seq}"));
        h.insert(NATS_EXPECTED_LAST_SEQUENCE, last.to_string());
        h.insert(WORK_SEQ, seq.to_string());
        h.insert(READY_MS, ready.to_string());
        if let Some(e) = entry {
            h.insert(INDEX_ENTRY, e);
        }
        h.insert(PREPARED_FLOOR, floor.to_string());
        h
    }

    #[test]
    fn line_headers_read_back_as_the_old_ones() {
        let entries = [None, Some(r#"{"id":"ab","sent":"a b"}"#)];
        for (seq, last, ready, floor) in [
            (0, 0, 0, 0),
            (7, 123, 1_733_300_000_123, 5),
            (u64::MAX, u64::MAX - 1, 10, 9),
        ] {
            for entry in entries {
                let got = line_headers(seq, last, ready, entry, floor);
                let old = old_headers(seq, last, ready, entry, floor);
                assert_eq!(got.len(), 3);
                for name in [NATS_MESSAGE_ID, NATS_EXPECTED_LAST_SEQUENCE] {
                    assert_eq!(got.get(name.clone()), old.get(name));
                }
                let want = LineFields {
                    work_seq: seq,
                    ready_ms: Some(ready),
                    floor,
                    entry,
                };
                assert_eq!(line_fields(&got).unwrap(), want);
                assert_eq!(line_fields(&old).unwrap(), want);
                let mut value = format!("2 {seq} {ready} {floor}");
                if let Some(e) = entry {
                    value = format!("{value} {e}");
                }
                assert_eq!(got.get(LINE).map(|v| v.as_str()), Some(value.as_str()));
            }
        }
    }

    #[test]
    fn only_the_lost_subject_is_a_marker() {
        assert!(is_lost("t.out.lost", "t.out"));
        for other in [
            "t.out.unique",
            "t.out.lost.x",
            "t.out.lostx",
            "u.out.lost",
            "t.outlost",
        ] {
            assert!(!is_lost(other, "t.out"), "{other}");
        }
    }

    #[test]
    fn numbers_are_the_formatted_ones() {
        let mut values = vec![0, 1, 9, 10, 99, 100, 101, 999, 1000, u64::MAX, u64::MAX - 1];
        values.extend((0..64).map(|b| 1u64 << b));
        values.extend((1..20).map(|e| 10u64.pow(e) - 1));
        for v in values {
            assert_eq!(numbered("o", v), format!("o{v}"));
        }
    }

    #[test]
    fn bad_line_headers_are_refused() {
        for value in ["3 1 2 3", "2 1 2", "2 x 2 3", "2 1 2 -3", ""] {
            let mut h = HeaderMap::new();
            h.insert(LINE, value);
            assert!(line_fields(&h).is_err(), "{value:?}");
        }
        let mut h = old_headers(1, 0, 2, None, 3);
        assert!(line_fields(&h).is_ok());
        h.insert(WORK_SEQ, "x");
        assert!(line_fields(&h).is_err());
        assert!(line_fields(&HeaderMap::new()).is_err());
    }
}
