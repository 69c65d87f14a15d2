//! Owns the decider's synchronous core: one prepared message in, one output line out, with
//! no servers involved, so its cost per document can be measured on its own
//! (`tests/cluster_decider.rs`).
//!
//! Per document: the small JSON metadata of the prepared message is parsed, the dedup work is
//! read back ([`Prepared::from_bytes`]), the index is queried and updated, and the line the
//! worker rendered is completed ([`super::line::complete`]) with the time and the verdict.
//! The document itself is never parsed nor encoded again.

use super::line;
use super::wire::{self, PreparedMeta};
use crate::config::Config;
use crate::dedup::{Deduper, IndexEntry, Prepared};
use crate::telemetry;
use anyhow::{Context, Result};
use async_nats::HeaderMap;
use metrics::{Counter, Histogram};

/// The ordered decision: the dedup index and where the output stream stands.
pub struct Core {
    deduper: Option<Deduper>,
    /// `<name>.out.`: a line goes to this plus its status.
    subject_prefix: String,
    /// The output stream's last sequence, counting lines made and not yet acknowledged.
    pub out_last: u64,
    metrics: Metrics,
}

/// The metric handles the core updates per document, resolved once.
struct Metrics {
    /// By [`telemetry::DEDUP_STATUSES`], then `unknown` (dedup off).
    emitted: Vec<Counter>,
    failed: Vec<Counter>,
    processed: Counter,
    latency: Histogram,
}

impl Metrics {
    fn new() -> Self {
        let statuses = telemetry::DEDUP_STATUSES.iter().chain(&["unknown"]);
        Self {
            emitted: statuses
                .map(|s| metrics::counter!(telemetry::DOCUMENTS_EMITTED, "status" => *s))
                .collect(),
            failed: telemetry::FAILED_STAGES
                .iter()
                .map(|s| metrics::counter!(telemetry::FILES_FAILED, "stage" => *s))
                .collect(),
            processed: metrics::counter!(telemetry::FILES_PROCESSED),
            latency: metrics::histogram!(telemetry::END_TO_END_SECONDS),
        }
    }
}

/// One decided document: its line, where it goes and the headers that make the output stream
/// the decider's ledger.
pub struct Decided {
    pub work_seq: u64,
    pub subject: String,
    pub headers: HeaderMap,
    pub line: Vec<u8>,
    /// The dedup index entry (JSON), also in the headers; kept for the checkpoint.
    pub entry: Option<String>,
}

impl Core {
    /// A core with an empty index whose output stream ends at `out_last`.
    pub fn new(config: &Config, out_prefix: &str, out_last: u64) -> Self {
        Self {
            deduper: config.dedup.enabled.then(|| Deduper::new(&config.dedup)),
            subject_prefix: format!("{out_prefix}."),
            out_last,
            metrics: Metrics::new(),
        }
    }

    /// Re-adds the index entry of a committed line (replay of the stream or a checkpoint).
    pub fn restore(&mut self, entry: &IndexEntry) {
        if let Some(d) = self.deduper.as_mut() {
            d.restore(entry);
        }
    }

    /// Documents in the index.
    pub fn indexed(&self) -> usize {
        self.deduper.as_ref().map_or(0, Deduper::len)
    }

    /// Makes the lost-work marker of `work_seq` ([`wire::LOST`]): fenced and numbered like a
    /// line, with the same ledger header (no index entry), and no payload.
    pub fn lost(&mut self, work_seq: u64, floor: u64) -> Decided {
        let headers = wire::line_headers(work_seq, self.out_last, 0, None, floor);
        self.out_last += 1;
        Decided {
            work_seq,
            subject: format!("{}{}", self.subject_prefix, wire::LOST),
            headers,
            line: Vec::new(),
            entry: None,
        }
    }

    /// Decides the prepared message (`meta` and the `body` after it) and makes its line,
    /// stamped `now`; `floor` is the lowest prepared sequence still needed after it. A file
    /// whose object was gone ([`PreparedMeta::object_lost`]) gets a lost-work marker instead.
    pub fn decide(
        &mut self,
        meta: &PreparedMeta,
        body: &[u8],
        floor: u64,
        now: &str,
    ) -> Result<Decided> {
        if meta.object_lost {
            return Ok(self.lost(meta.work_seq, floor));
        }
        let (dedup_work, parts) = body
            .split_at_checked(meta.dedup_len)
            .context("a prepared message shorter than its dedup work")?;
        let verdict = match (&meta.id, self.deduper.as_mut()) {
            (Some(id), Some(d)) => Some(match Prepared::from_bytes(dedup_work) {
                Some(p) => d.observe_prepared(p),
                // The worker leaves the work out only for an empty text.
                None => {
                    if !dedup_work.is_empty() {
                        // Work of a layout this decider does not read (a newer worker):
                        // decided as an empty text, as before, but said.
                        tracing::warn!(
                            work_seq = meta.work_seq,
                            version = dedup_work[0],
                            "prepared dedup work of an unknown layout, decided as an empty \
                             text: upgrade workers and deciders together"
                        );
                    }
                    d.observe(id, "")
                }
            }),
            _ => None,
        };
        let is_doc = meta.id.is_some();
        let line = line::complete(
            &meta.line,
            parts,
            now,
            is_doc,
            verdict.as_ref().map(|v| &v.0),
        )?;
        let status = match (&verdict, is_doc) {
            (Some((info, _)), _) => info.status.as_str(),
            (None, true) => "document",
            (None, false) => "error",
        };
        let m = &self.metrics;
        if is_doc {
            let i = telemetry::DEDUP_STATUSES
                .iter()
                .position(|s| *s == status)
                .unwrap_or(telemetry::DEDUP_STATUSES.len());
            m.emitted[i].increment(1);
        } else {
            let stage = meta.stage.as_deref().unwrap_or("internal");
            let i = telemetry::FAILED_STAGES.iter().position(|s| *s == stage);
            m.failed[i.unwrap_or(telemetry::FAILED_STAGES.len() - 1)].increment(1);
        }
        m.processed.increment(1);
        let waited = wire::now_ms().saturating_sub(meta.ready_ms);
        m.latency.record(waited as f64 / 1000.0);
        let entry = match &verdict {
            Some((_, e)) => Some(e.to_json()?),
            None => None,
        };
        let headers = wire::line_headers(
            meta.work_seq,
            self.out_last,
            meta.ready_ms,
            entry.as_deref(),
            floor,
        );
        self.out_last += 1;
        let mut subject = String::with_capacity(self.subject_prefix.len() + status.len());
        subject.push_str(&self.subject_prefix);
        subject.push_str(status);
        Ok(Decided {
            work_seq: meta.work_seq,
            subject,
            headers,
            line,
            entry,
        })
    }
}
