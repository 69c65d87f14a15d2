//! Owns the prepared messages a worker makes without a document: error records (a file that
//! failed, ran past its time budget or came in an unreadable work message) and the notice that
//! a large file's object is gone ([`object_lost`]), which the decider turns into a lost-work
//! marker.

use super::line::{self, Rendered};
use super::wire::{self, PreparedMeta, WorkMeta};
use crate::model::ReadyFile;
use anyhow::Result;
use async_nats::jetstream::Message;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Returns the prepared message that tells the decider the file of `work_seq` cannot be
/// prepared because its object is gone: no line, and [`PreparedMeta::object_lost`] set.
pub fn object_lost(work_seq: u64, ready_ms: u64) -> (PreparedMeta, Vec<u8>) {
    let (mut meta, body) = assemble(
        work_seq,
        ready_ms,
        None,
        None,
        Vec::new(),
        Rendered::default(),
    );
    meta.object_lost = true;
    (meta, body)
}

/// Returns the error record of a file whose preparation ran past the time budget.
pub fn timed_out(
    work_seq: u64,
    msg: &Message,
    timeout: Duration,
) -> Result<(PreparedMeta, Vec<u8>)> {
    let error = format!("took longer than {}", crate::driver::format_budget(timeout));
    failed_work(work_seq, msg, "strip", error)
}

/// Returns the error record of the file of work message `msg`.
pub fn failed_work(
    work_seq: u64,
    msg: &Message,
    stage: &str,
    error: String,
) -> Result<(PreparedMeta, Vec<u8>)> {
    let (m, _): (WorkMeta, &[u8]) = wire::decode(&msg.payload)?;
    let (path, key, ready_ms, source) = (m.path, m.key, m.ready_ms, m.source);
    Ok(failed_meta(
        work_seq, path, key, ready_ms, source, stage, error,
    ))
}

/// Puts the dedup work and the rendered line together into a prepared message's parts.
pub fn assemble(
    work_seq: u64,
    ready_ms: u64,
    id: Option<String>,
    stage: Option<String>,
    mut body: Vec<u8>,
    r: Rendered,
) -> (PreparedMeta, Vec<u8>) {
    let meta = PreparedMeta {
        work_seq,
        ready_ms,
        id,
        stage,
        dedup_len: body.len(),
        line: r.layout,
        object_lost: false,
    };
    body.extend_from_slice(&r.bytes);
    (meta, body)
}

/// Returns the prepared message of an error record.
pub fn failed_meta(
    work_seq: u64,
    path: String,
    key: crate::model::FileKey,
    ready_ms: u64,
    source: crate::model::SourceInfo,
    stage: &str,
    error: String,
) -> (PreparedMeta, Vec<u8>) {
    let file = ReadyFile {
        seq: work_seq,
        path: PathBuf::from(path),
        key,
        ready_at: Instant::now(),
    };
    let rec = crate::model::ErrorRecord {
        kind: "error".into(),
        source,
        stage: stage.into(),
        error,
    };
    // An error record always serialises: its fields are strings and numbers.
    let r = line::render_error(&file, &rec).unwrap_or_default();
    assemble(work_seq, ready_ms, None, Some(stage.into()), Vec::new(), r)
}

/// Returns the error record of a work message no worker can read.
pub fn unreadable(msg: &Message, work_seq: u64, error: &str) -> (PreparedMeta, Vec<u8>) {
    let path = format!("work-message-{work_seq}");
    let source = crate::model::SourceInfo {
        path: path.clone(),
        bytes: msg.payload.len() as u64,
        format: None,
        compression: None,
        path_bytes: None,
        encoding: None,
    };
    let error = format!("unreadable work message: {error}");
    let now = wire::now_ms();
    failed_meta(
        work_seq,
        path,
        Default::default(),
        now,
        source,
        "internal",
        error,
    )
}
