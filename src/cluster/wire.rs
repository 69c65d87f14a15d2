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

/// Header with the work stream sequence of the file an output line is for.
pub const WORK_SEQ: &str = "Dropline-Work-Seq";
/// Header with the lowest prepared-stream sequence the decider still needed after this line.
pub const PREPARED_FLOOR: &str = "Dropline-Prepared-Floor";
/// Header with the dedup index entry of the line (JSON), so a new decider rebuilds the index.
pub const INDEX_ENTRY: &str = "Dropline-Index";
/// Header with the wall-clock time (Unix ms) the file became ready at the intake.
pub const READY_MS: &str = "Dropline-Ready-Ms";

/// The header names above as [`HeaderName`]s, built without an allocation each time.
const WORK_SEQ_NAME: HeaderName = HeaderName::from_static(WORK_SEQ);
const PREPARED_FLOOR_NAME: HeaderName = HeaderName::from_static(PREPARED_FLOOR);
const INDEX_ENTRY_NAME: HeaderName = HeaderName::from_static(INDEX_ENTRY);
const READY_MS_NAME: HeaderName = HeaderName::from_static(READY_MS);

/// Returns the headers of the output line for work sequence `work_seq`, which makes the output
/// stream the decider's ledger: its message id (`o` and the work sequence), the stream's last
/// sequence it expects (`out_last`), the work sequence, the ready time, the dedup index entry
/// (JSON) and the lowest prepared sequence still needed after it (`floor`).
pub fn line_headers(
    work_seq: u64,
    out_last: u64,
    ready_ms: u64,
    entry: Option<String>,
    floor: u64,
) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(NATS_MESSAGE_ID, format!("o{work_seq}"));
    headers.insert(NATS_EXPECTED_LAST_SEQUENCE, out_last.to_string());
    headers.insert(WORK_SEQ_NAME, work_seq.to_string());
    headers.insert(READY_MS_NAME, ready_ms.to_string());
    if let Some(e) = entry {
        headers.insert(INDEX_ENTRY_NAME, e);
    }
    headers.insert(PREPARED_FLOOR_NAME, floor.to_string());
    headers
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

    #[test]
    fn line_headers_are_the_formatted_ones() {
        for (seq, last, ready, floor) in [(0, 0, 0, 0), (7, 123, 1_733_300_000_123, 5)] {
            for entry in [None, Some(r#"{"id":"ab"}"#.to_string())] {
                let mut want = HeaderMap::new();
                want.insert(NATS_MESSAGE_ID, format!("o{seq}"));
                want.insert(NATS_EXPECTED_LAST_SEQUENCE, last.to_string());
                want.insert(WORK_SEQ, seq.to_string());
                want.insert(READY_MS, ready.to_string());
                if let Some(e) = &entry {
                    want.insert(INDEX_ENTRY, e.as_str());
                }
                want.insert(PREPARED_FLOOR, floor.to_string());
                let got = line_headers(seq, last, ready, entry.clone(), floor);
                assert_eq!(got, want);
                assert_eq!(
                    got.get(WORK_SEQ).map(|v| v.as_str()),
                    Some(&*seq.to_string())
                );
            }
        }
    }
}
