//! Owns `dropline cluster status` (nodes, roles, consumer lag, the decider, the intake, stream
//! sizes) and `dropline cluster tail` (the output stream as JSON Lines from its start).

use super::decider::{LeaseValue, LEASE_KEY};
use super::lease::INTAKE_KEY;
use super::reset::not_found;
use super::{connect, ordered, ClusterConfig, Names, NodeInfo};
use anyhow::{Context, Result};
use async_nats::jetstream::consumer::{pull, DeliverPolicy};
use async_nats::jetstream::context::{
    ConsumerInfoError, ConsumerInfoErrorKind, GetStreamError, GetStreamErrorKind,
};
use async_nats::jetstream::{self, kv, Context as Js};
use futures_util::StreamExt;
use std::fmt::Write as _;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// Returns the status report of the cluster `c` names, as text.
pub async fn status(c: &ClusterConfig) -> Result<String> {
    let js = jetstream::new(connect(c).await?);
    let ask = Ask {
        js: &js,
        gave_up: AtomicBool::new(false),
    };
    let names = Names::of(c);
    let mut out = String::new();
    writeln!(out, "cluster {} at {}", c.name, c.url)?;
    writeln!(out, "streams:")?;
    // Each stream is asked for once; the consumer, the lost-work markers and the decider's lag
    // read the same answer, so they say "no answer" when it did not come instead of 0 or nothing.
    let work = stream_line(&mut out, &names.work, ask.stream(&names.work).await)?;
    stream_line(&mut out, &names.prepared, ask.stream(&names.prepared).await)?;
    let output = stream_line(&mut out, &names.out, ask.stream(&names.out).await)?;
    let mut decided = None;
    if let Some(output) = &output {
        let lost = super::output::lost_markers(output, &names.out_prefix).await;
        out.push_str(&lost_line(&names.out, lost));
        decided = last_decided(output).await;
    }
    writeln!(out, "consumers:")?;
    if let Some(stream) = &work {
        let name = format!("{}/{}", names.work, super::worker::CONSUMER);
        // Its leader may have died with a server: ask again while a new one is elected.
        let info = asked_again(
            || stream.consumer_info(super::worker::CONSUMER),
            |e: &ConsumerInfoError| {
                matches!(
                    e.kind(),
                    ConsumerInfoErrorKind::TimedOut | ConsumerInfoErrorKind::Request
                )
            },
        );
        match info.await {
            Ok(i) => writeln!(
                out,
                "  {name:<30} waiting {:>9}  in progress {:>6}  redelivered {:>6}",
                i.num_pending, i.num_ack_pending, i.num_redelivered
            )?,
            // No worker has started yet.
            Err(e) if e.kind() == ConsumerInfoErrorKind::NotFound => {}
            Err(e) => writeln!(out, "  {name:<30} (no answer: {e})")?,
        }
    }
    let work_last = work.as_ref().map(|s| s.cached_info().state.last_sequence);
    out.push_str(&decider_line(lease(&ask, &names).await, work_last, decided));
    match live_value(&ask, &names.intake, INTAKE_KEY).await {
        Ok(Some(holder)) => writeln!(out, "intake: {}", super::sole::describe(&holder))?,
        Ok(None) => writeln!(out, "intake: none (no node holds the intake lease)")?,
        Err(e) => writeln!(out, "intake: (no answer: {e:#})")?,
    }
    writeln!(out, "nodes:")?;
    match nodes(&ask, &names).await {
        Ok(nodes) => {
            for n in nodes {
                let ago = super::wire::now_ms().saturating_sub(n.seen_ms) as f64 / 1000.0;
                writeln!(
                    out,
                    "  {:<32} role {:<6}  host {}  pid {}  seen {ago:.1}s ago",
                    n.node, n.role, n.host, n.pid
                )?;
            }
        }
        Err(e) => writeln!(out, "  (cannot list them: {e:#})")?,
    }
    Ok(out)
}

/// Writes stream `name`'s line (its size, or missing, or no answer) and returns the stream when
/// the servers gave it.
fn stream_line(
    out: &mut String,
    name: &str,
    got: Result<jetstream::stream::Stream, GetStreamError>,
) -> Result<Option<jetstream::stream::Stream>> {
    match got {
        Ok(s) => {
            let info = s.cached_info();
            writeln!(
                out,
                "  {:<24} messages {:>9}  bytes {:>12}  last_seq {:>9}  replicas {}{}",
                name,
                info.state.messages,
                info.state.bytes,
                info.state.last_sequence,
                info.config.num_replicas,
                if leaderless(info) { NO_LEADER } else { "" }
            )?;
            return Ok(Some(s));
        }
        Err(e) if not_found(&e) => writeln!(out, "  {name:<24} (missing)")?,
        Err(e) => writeln!(out, "  {name:<24} (no answer: {e})")?,
    }
    Ok(None)
}

/// The line on the output stream's lost-work markers ([`super::wire::LOST`]): none when it holds
/// none.
fn lost_line(out_stream: &str, lost: Result<usize>) -> String {
    match lost {
        Ok(0) => String::new(),
        Ok(n) => format!(
            "  {n} of {out_stream}'s messages are lost-work markers, not lines (their files were \
             published again)\n"
        ),
        Err(e) => format!("  lost-work markers in {out_stream}: (no answer: {e:#})\n"),
    }
}

/// The work sequence of the output stream's last line (or lost-work marker): the last one the
/// decider committed, since it commits in work-sequence order. 0 for an empty stream; `None`
/// when the line cannot be read, and without asking when the stream has no leader (the read
/// would wait out its timeout).
async fn last_decided(output: &jetstream::stream::Stream) -> Option<u64> {
    let info = output.cached_info();
    let last = info.state.last_sequence;
    if last == 0 {
        return Some(0);
    }
    if leaderless(info) {
        return None;
    }
    let msg = output.get_raw_message(last).await.ok()?;
    super::wire::line_fields(&msg.headers)
        .ok()
        .map(|f| f.work_seq)
}

/// The decider's line: who holds the lease, and its lag behind the work stream's last sequence
/// (`work_last`, `None` when the work stream is missing or did not answer: its line says which).
/// The committed sequence is the output stream's last line's (`decided`) when it could be read:
/// the lease holds what the decider wrote at its last renewal (every second), which a status
/// taken right after a burst would show as a lag. The indexed count is the renewal's.
fn decider_line(
    lease: Result<Option<LeaseValue>>,
    work_last: Option<u64>,
    decided: Option<u64>,
) -> String {
    match lease {
        Ok(Some(v)) => {
            let committed = decided.map_or(v.committed, |d| d.max(v.committed));
            let lag = work_last.map_or_else(
                || "unknown".to_string(),
                |last| last.saturating_sub(committed).to_string(),
            );
            format!(
                "decider: {} (work sequence {committed} committed, lag {lag}, {} documents \
                 indexed at its last renewal)\n",
                v.node, v.indexed
            )
        }
        Ok(None) => "decider: none (no node holds the lease)\n".to_string(),
        Err(e) => format!("decider: (no answer: {e:#})\n"),
    }
}

async fn lease(ask: &Ask<'_>, names: &Names) -> Result<Option<LeaseValue>> {
    let v = live_value(ask, &names.leader, LEASE_KEY).await?;
    Ok(v.and_then(|v| serde_json::from_slice(&v).ok()))
}

/// The value of `key` in KV bucket `bucket`: `None` when the bucket or a live value is missing
/// (a lease released or aged out), an error when the servers did not answer.
async fn live_value(ask: &Ask<'_>, bucket: &str, key: &str) -> Result<Option<bytes::Bytes>> {
    let Some(kv) = ask.bucket(bucket).await? else {
        return Ok(None);
    };
    Ok(kv.get(key).await?)
}

/// What a stream's line adds when its replicas have no leader.
const NO_LEADER: &str =
    "  NO LEADER (the servers lack a quorum; figures as this server last saw them)";

/// Returns whether a clustered stream's replicas have no leader, for a few seconds of an
/// election or for good once the servers lost their quorum: nothing can be written to it
/// meanwhile, and a replica answers with what it last saw. (A server outside a cluster gives
/// no cluster information.)
fn leaderless(info: &jetstream::stream::Info) -> bool {
    info.cluster.as_ref().is_some_and(|c| c.leader.is_none())
}

/// How long `cluster status` waits for a stream or bucket to elect a leader: a server's death
/// leaves the streams it led leaderless for a few seconds, a lost quorum for good.
const LEADER_WAIT: Duration = Duration::from_secs(10);

/// The status report's requests. Each waits for its leader up to [`LEADER_WAIT`] from when it
/// first finds none; once one wait ran out (a lost quorum, not an election), no other waits.
struct Ask<'a> {
    js: &'a Js,
    gave_up: AtomicBool,
}

impl Ask<'_> {
    /// Stream `name` ([`open_stream`]); while its replicas have no leader it is asked for again,
    /// then given as it is (its line says so).
    async fn stream(&self, name: &str) -> Result<jetstream::stream::Stream, GetStreamError> {
        let mut until = None;
        loop {
            let got = open_stream(self.js, name).await;
            match &got {
                Ok(s) if leaderless(s.cached_info()) && !self.gave_up.load(Relaxed) => {
                    let until = *until.get_or_insert_with(|| Instant::now() + LEADER_WAIT);
                    if Instant::now() >= until {
                        self.gave_up.store(true, Relaxed);
                        return got;
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                _ => return got,
            }
        }
    }

    /// KV bucket `name`, `None` when it does not exist. Its stream is asked for first, which
    /// waits out a leader election that `get_key_value` does not. A bucket without a leader is
    /// an error, not a value: no lease or heartbeat can be renewed in it, so what a replica
    /// answers says nothing about the nodes (a probe read "none" while a node ran).
    async fn bucket(&self, name: &str) -> Result<Option<kv::Store>> {
        match self.stream(&format!("KV_{name}")).await {
            Ok(s) if leaderless(s.cached_info()) => Err(anyhow::anyhow!(
                "bucket {name} has no leader: the servers lack a quorum, so no lease or \
                 heartbeat can be written"
            )),
            Ok(_) => Ok(Some(self.js.get_key_value(name).await?)),
            Err(e) if not_found(&e) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

/// The nodes' heartbeats in the nodes bucket. Its keys come from the bucket stream's subjects
/// (one request to the stream's leader), not from `kv.keys`, whose consumer an older server
/// may place on a server that is down ([`ordered`]).
async fn nodes(ask: &Ask<'_>, names: &Names) -> Result<Vec<NodeInfo>> {
    let Some(kv) = ask.bucket(&names.nodes).await? else {
        return Ok(Vec::new());
    };
    let mut subjects = kv
        .stream
        .info_with_subjects(format!("{}>", kv.prefix))
        .await?;
    let mut out = Vec::new();
    while let Some(subject) = subjects.next().await {
        let (subject, _) = subject?;
        let Some(key) = subject.strip_prefix(kv.prefix.as_str()) else {
            continue;
        };
        // A key deleted or aged out since has no value.
        if let Some(v) = kv.get(key).await? {
            if let Ok(n) = serde_json::from_slice::<NodeInfo>(&v) {
                out.push(n);
            }
        }
    }
    out.sort_by(|a, b| a.node.cmp(&b.node));
    Ok(out)
}

/// Prints the output stream from its start as JSON Lines; with `once`, exits when it reached
/// the last line the stream held when the command started.
pub async fn tail(c: &ClusterConfig, once: bool) -> Result<()> {
    let js = jetstream::new(connect(c).await?);
    let names = Names::of(c);
    let stream = match open_stream(&js, &names.out).await {
        Ok(s) => s,
        // Nothing published yet: nothing to print.
        Err(e) if once && not_found(&e) => return Ok(()),
        Err(e) => {
            return Err(e).with_context(|| format!("cannot get the output stream {}", names.out))
        }
    };
    // The info came with the stream: no second request.
    let last = stream.cached_info().state.last_sequence;
    if once && last == 0 {
        return Ok(());
    }
    let mut messages = ordered::ordered(
        &stream,
        pull::OrderedConfig {
            deliver_policy: DeliverPolicy::All,
            ..Default::default()
        },
    )
    .await
    .with_context(|| format!("cannot read the output stream {}", names.out))?;
    let stdout = std::io::stdout();
    let mut lock = stdout.lock();
    while let Some(msg) = messages.next().await {
        let msg = msg.map_err(|e| anyhow::anyhow!("cannot read the output stream: {e}"))?;
        // A lost-work marker is not a line.
        if !super::wire::is_lost(&msg.subject, &names.out_prefix) {
            lock.write_all(&msg.payload)?;
            lock.write_all(b"\n")?;
        }
        let seq = msg
            .info()
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .stream_sequence;
        if once && seq >= last {
            break;
        }
        if messages_pending_zero(&msg) {
            lock.flush()?;
        }
    }
    lock.flush()?;
    Ok(())
}

/// Gets stream `name`, asking again while the request times out (after a server dies, its
/// streams elect a new leader and answer nothing meanwhile), up to [`ordered::TRIES`] times.
async fn open_stream(js: &Js, name: &str) -> Result<jetstream::stream::Stream, GetStreamError> {
    asked_again(
        || js.get_stream(name),
        |e: &GetStreamError| e.kind() == GetStreamErrorKind::Request,
    )
    .await
}

/// Runs `ask` again while it fails with an error `timed_out` accepts, up to [`ordered::TRIES`]
/// times in all.
async fn asked_again<T, E, Fut>(
    mut ask: impl FnMut() -> Fut,
    timed_out: impl Fn(&E) -> bool,
) -> Result<T, E>
where
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let mut tries = 1;
    loop {
        match ask().await {
            Err(e) if timed_out(&e) && tries < ordered::TRIES => tries += 1,
            got => return got,
        }
    }
}

/// Returns whether nothing more is waiting for this consumer (time to flush stdout).
fn messages_pending_zero(msg: &jetstream::Message) -> bool {
    msg.info().is_ok_and(|i| i.pending == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held() -> Result<Option<LeaseValue>> {
        Ok(Some(LeaseValue {
            node: "n1".into(),
            committed: 40,
            indexed: 38,
        }))
    }

    #[test]
    fn the_decider_lag_is_unknown_when_the_work_stream_did_not_answer() {
        assert_eq!(
            decider_line(held(), Some(45), None),
            "decider: n1 (work sequence 40 committed, lag 5, 38 documents indexed at its last \
             renewal)\n"
        );
        let line = decider_line(held(), None, Some(45));
        assert!(line.contains("lag unknown"), "{line}");
        assert!(!line.contains("lag 0"), "{line}");
        assert!(decider_line(Ok(None), Some(3), Some(3)).starts_with("decider: none"));
        let line = decider_line(Err(anyhow::anyhow!("timed out")), Some(3), Some(3));
        assert_eq!(line, "decider: (no answer: timed out)\n");
    }

    #[test]
    fn the_committed_sequence_is_the_last_lines_when_the_lease_lags() {
        // Lines up to 45 stored since the lease's last renewal (40).
        let line = decider_line(held(), Some(45), Some(45));
        assert!(line.contains("work sequence 45 committed, lag 0"), "{line}");
        // A stream read older than the lease (it cannot be, but never go back).
        let line = decider_line(held(), Some(45), Some(39));
        assert!(line.contains("work sequence 40 committed, lag 5"), "{line}");
    }

    #[test]
    fn lost_markers_say_no_answer_instead_of_none() {
        assert_eq!(lost_line("T_OUT", Ok(0)), "");
        assert!(lost_line("T_OUT", Ok(2)).starts_with("  2 of T_OUT's messages"));
        let line = lost_line("T_OUT", Err(anyhow::anyhow!("timed out")));
        assert_eq!(
            line,
            "  lost-work markers in T_OUT: (no answer: timed out)\n"
        );
    }
}
