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
//! - [`decode`]: reading bytes like a browser: binary sniffing, charset choice and decoding.
//! - [`strip`]: the strip stage core: boilerplate removal from plain text and HTML.
//! - [`dedup`]: the dedup stage core: exact, near-copy, rewrite and story decisions.
//! - [`entities`]: the entities stage core: tagging and in-document linking.
//! - [`driver`]: the one generic async driver every stage runs under (bounded queues, N workers).
//! - [`filter`]: which files are read: `source.include` and `source.exclude` globs.
//! - [`check`]: what `check` (and `run` before starting) verifies, and the key docs for `--explain`.
//! - [`watcher`]: drop-folder discovery: notify events as hints, rescans as truth, readiness.
//! - [`admission`]: files in flight or committed, and the in-flight file and byte caps.
//! - [`durable`]: whole-file replacement through a synced temporary file and a rename.
//! - [`ledger`]: the commit ledger in `state.dir` that makes the file sink exactly-once.
//! - [`lock`]: the exclusive lock on `state.dir` (one process per state dir).
//! - [`sink`]: ordering, batching, writing, committing and the done-action.
//! - [`telemetry`]: metric names, their descriptions, the Prometheus recorder and the summary line.
//! - [`status`]: the HTTP listener (`/metrics`, health, status page) and the live view behind it.
//! - [`pipeline`]: wiring of the stages, top to bottom, and the `run` and `process` entry points.
//! - [`reload`]: SIGHUP reload: re-reads the config, applies the keys that can change live.
//! - [`logging`]: tracing set-up (plain or JSON, colour only on a terminal) and fatal errors.
//! - [`cluster`]: the scale-out mode on NATS JetStream (intake, workers, one ordered decider),
//!   off unless `cluster.url` is set.
//! - [`cli`]: the command line: commands, `--version`, completions, man page.

pub mod admission;
pub mod check;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod decode;
pub mod dedup;
pub mod driver;
pub mod durable;
pub mod entities;
pub mod filter;
pub mod ledger;
pub mod lock;
pub mod logging;
pub mod logistic;
pub mod model;
pub mod pipeline;
pub mod read;
pub mod reload;
pub mod signals;
pub mod sink;
pub mod status;
pub mod strip;
pub mod telemetry;
pub mod watcher;
