//! Owns the decider's rule for a work sequence lost with its stream: a file whose work message
//! was in `<NAME>_WORK`, or whose prepared document was in `<NAME>_PREPARED` and not yet
//! decided, when that stream was deleted (or lost in a JetStream reset).
//!
//! The decider decides in work-sequence order, so without this it would wait for such a
//! sequence for ever, and every later file with it. Only the decider can declare a sequence
//! lost, through its ordered ledger: a worker holding the message may still publish its
//! prepared document. A sequence `s` is declared lost when, continuously for `lost_after`
//! (`cluster.lost_after`, longer than a worker keeps a file in flight):
//! - `s` is the next to decide and below the work stream's first sequence: its work message
//!   is gone from it (acked once its prepared document was stored, or lost with the stream);
//! - it is not in the reorder buffer, and the decider has read the prepared stream past the
//!   last sequence it held when the gap was first seen.
//!
//! Every sequence from `s` up to the first one waiting (or the work stream's first) is then
//! declared in one go: the decider appends a lost-work marker for each to the output stream
//! ([`super::wire::LOST`], fenced like every line, replayed and checkpointed like one), moves
//! on, and drops a prepared document that still comes for it. The intake, following the
//! output stream, publishes that file again under a new work sequence ([`super::settle`]).

use super::Cluster;
use std::ops::Range;
use std::time::{Duration, Instant};

/// How often the decider looks at the work and prepared streams for a gap.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// A gap in front of the decider, as first seen.
#[derive(Debug, Clone, Copy)]
struct Seen {
    next_work: u64,
    /// Where the sequences that can be declared end: the work stream's first sequence, or the
    /// first document waiting, whichever is lower.
    end: u64,
    /// The prepared stream's last sequence then.
    prepared_last: u64,
    at: Instant,
}

/// Watches for work sequences lost with their streams.
pub struct Gaps {
    lost_after: Duration,
    seen: Option<Seen>,
    checked: Option<Instant>,
}

impl Gaps {
    pub fn new(lost_after: Duration) -> Self {
        Self {
            lost_after,
            seen: None,
            checked: None,
        }
    }

    /// Returns the work sequences to declare lost now (starting at `next_work`), if any.
    /// `first_waiting` is the lowest work sequence in the reorder buffer, `read_from` the next
    /// prepared sequence the decider will read.
    pub async fn due(
        &mut self,
        cluster: &Cluster,
        next_work: u64,
        first_waiting: Option<u64>,
        read_from: u64,
    ) -> Option<Range<u64>> {
        if self.checked.is_some_and(|t| t.elapsed() < CHECK_EVERY) {
            return None;
        }
        self.checked = Some(Instant::now());
        let Some(work_first) = work_first(cluster).await else {
            // Not known (the stream gone, being made again, the servers silent): wait.
            self.seen = None;
            return None;
        };
        let prepared_last = prepared_last(cluster).await?;
        let end = work_first.min(first_waiting.unwrap_or(u64::MAX));
        self.step(next_work, end, prepared_last, read_from, Instant::now())
    }

    /// The rule itself, on what the streams said at `now`.
    fn step(
        &mut self,
        next_work: u64,
        end: u64,
        prepared_last: u64,
        read_from: u64,
        now: Instant,
    ) -> Option<Range<u64>> {
        if next_work >= end {
            self.seen = None;
            return None;
        }
        let seen = match self.seen {
            Some(s) if s.next_work == next_work => s,
            _ => {
                self.seen = Some(Seen {
                    next_work,
                    end,
                    prepared_last,
                    at: now,
                });
                return None;
            }
        };
        let end = end.min(seen.end);
        if now.duration_since(seen.at) < self.lost_after || read_from <= seen.prepared_last {
            self.seen = Some(Seen { end, ..seen });
            return None;
        }
        self.seen = None;
        Some(next_work..end)
    }
}

/// The work stream's first sequence, when the stream is there and open (not on the private
/// subject a remake puts it on until its sequence is moved on).
async fn work_first(cluster: &Cluster) -> Option<u64> {
    let mut stream = cluster.js.get_stream(&cluster.names.work).await.ok()?;
    let info = stream.info().await.ok()?;
    (info.config.subjects == [cluster.names.work_subject.clone()])
        .then_some(info.state.first_sequence)
}

/// The prepared stream's last sequence.
async fn prepared_last(cluster: &Cluster) -> Option<u64> {
    let mut stream = cluster.js.get_stream(&cluster.names.prepared).await.ok()?;
    Some(stream.info().await.ok()?.state.last_sequence)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gap_is_declared_only_after_the_grace_and_the_prepared_stream_read() {
        let grace = Duration::from_secs(30);
        let mut g = Gaps::new(grace);
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        // No gap: the next sequence is still in the work stream.
        assert_eq!(g.step(5, 5, 100, 101, at(0)), None);
        // A gap from 5 to 9 (the work stream starts at 10): seen, not declared yet.
        assert_eq!(g.step(5, 10, 100, 90, at(1)), None);
        assert_eq!(
            g.step(5, 10, 120, 95, at(40)),
            None,
            "prepared not read to 100"
        );
        // A document for 7 arrived meanwhile: only 5 and 6 are declared.
        assert_eq!(g.step(5, 7, 130, 101, at(41)), Some(5..7));
        // Declared: the next gap starts its own grace.
        assert_eq!(g.step(7, 8, 130, 131, at(42)), None);
        assert_eq!(g.step(7, 8, 130, 131, at(71)), None);
        assert_eq!(g.step(7, 8, 130, 131, at(72)), Some(7..8));
        // The sequence came after all: the gap is forgotten, and a new one waits again.
        assert_eq!(g.step(9, 12, 130, 131, at(73)), None);
        assert_eq!(g.step(10, 12, 130, 131, at(74)), None);
        assert_eq!(g.step(9, 12, 130, 131, at(110)), None);
        assert_eq!(g.step(9, 12, 130, 131, at(140)), Some(9..12));
    }
}
