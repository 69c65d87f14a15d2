//! Commit latency of the file sink: one batch written, fsynced, committed to the ledger and
//! fsynced, as the daemon does it. Not a test: `cargo bench --bench commit -- [BATCHES]
//! [FILES_PER_BATCH] [DIR]` prints p50, p99 and mean per batch (DIR defaults to a temp dir
//! under the system temp folder; the disk decides the figure).

use dropline::admission::Admission;
use dropline::dedup::OnDuplicate;
use dropline::ledger::{Ledger, ERRORS_FILE};
use dropline::model::{Document, FileKey, Work};
use dropline::sink::{Output, Sink, SinkReport};
use dropline::telemetry::Totals;
use std::collections::HashMap;
use std::fs::OpenOptions;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let batches: usize = args.first().map_or(400, |a| a.parse().expect("BATCHES"));
    let per: u64 = args
        .get(1)
        .map_or(64, |a| a.parse().expect("FILES_PER_BATCH"));
    let tmp = tempfile::tempdir_in(args.get(2).map_or_else(std::env::temp_dir, PathBuf::from))
        .expect("temp dir");
    let state = tmp.path().join("state");
    let out = tmp.path().join("out.jsonl");
    let (ledger, rec) = Ledger::open(&state, Some(&out), 1000).expect("ledger");
    let errors = OpenOptions::new()
        .create(true)
        .append(true)
        .open(state.join(ERRORS_FILE))
        .expect("errors.jsonl");
    let mut sink = Sink {
        output: Output::open(Some(&out)).expect("output"),
        errors: Some((errors, rec.err_len)),
        ledger: Some(ledger),
        done: None,
        on_duplicate: OnDuplicate::Emit,
        batch_max: per as usize,
        admission: Arc::new(Admission::new(per as usize, HashMap::new())),
        totals: Arc::new(Totals::default()),
        hangup: None,
        fault: None,
        stop: None,
    };
    let text = "A sentence of an ordinary news article, repeated to its usual length. ".repeat(28);
    let mut report = SinkReport::default();
    let mut times = Vec::with_capacity(batches);
    for b in 0..batches as u64 {
        let mut batch: Vec<_> = (b * per..(b + 1) * per)
            .map(|i| {
                let key = FileKey {
                    dev: 1,
                    ino: i,
                    size: 2048,
                    mtime_ns: 1,
                    fp: 0,
                };
                let mut env =
                    dropline::watcher::envelope(i, PathBuf::from(format!("drop/{i:07}.txt")), key);
                env.work = Work::Doc(Box::new(Document {
                    kind: "document".into(),
                    id: format!("{i:032x}"),
                    source: env.source.clone(),
                    title: format!("Headline {i}"),
                    text: text.clone(),
                    boilerplate: None,
                    dedup: None,
                    entities: None,
                    strip_memory: None,
                }));
                env
            })
            .collect();
        let t = Instant::now();
        sink.commit(&mut batch, &mut report).expect("commit");
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    let pct = |p: f64| times[((times.len() - 1) as f64 * p).round() as usize];
    let mean = times.iter().sum::<f64>() / times.len() as f64;
    println!(
        "commit: {batches} batches of {per} documents (~2.1 KB each) in {}: p50 {:.2} ms, \
         p99 {:.2} ms, mean {:.2} ms",
        tmp.path().display(),
        pct(0.5),
        pct(0.99),
        mean
    );
}
