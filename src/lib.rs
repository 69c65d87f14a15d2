//! dropline: a streaming ingest daemon for news text.
//!
//! Files dropped into a folder become one JSON line each: the article's clean text, whether it
//! duplicates something already seen (and which story it belongs to), and the entities it names.
//!
//! # Layout
//!
//! - [`config`]: `pipeline.toml`, `--set` overrides and validation.
//! - [`model`]: the messages that travel between stages and the output records.
//! - [`read`]: the read stage: open-then-check, bounded reads, fingerprints, size caps, gzip,
//!   format sniffing, bad-input errors, and its adapter (time budget, transient retries).
//! - [`strip`]: the strip stage core: boilerplate removal from plain text and HTML.
//! - [`dedup`]: the dedup stage core: exact, near-copy, rewrite and story decisions.
//! - [`entities`]: the entities stage core: tagging and in-document linking.
//! - [`driver`]: the one generic async driver every stage runs under (bounded queues, N workers).
//! - [`watcher`]: drop-folder discovery: notify events as hints, rescans as truth, readiness.
//! - [`admission`]: files in flight or committed, and the in-flight file and byte caps.
//! - [`ledger`]: the commit ledger in `state.dir` that makes the file sink exactly-once.
//! - [`sink`]: ordering, batching, writing, committing and the done-action.
//! - [`telemetry`]: metric names, their descriptions, the Prometheus endpoint and the summary line.
//! - [`pipeline`]: wiring of the stages, top to bottom, and the `run` and `process` entry points.
//! - [`cli`]: the command line.

pub mod admission;
pub mod cli;
pub mod config;
pub mod dedup;
pub mod driver;
pub mod entities;
pub mod ledger;
pub mod model;
pub mod pipeline;
pub mod read;
pub mod sink;
pub mod strip;
pub mod telemetry;
pub mod watcher;
