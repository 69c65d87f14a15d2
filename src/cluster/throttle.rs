//! Owns [`Throttled`]: repeated failures of one kind reported without flooding the log (the
//! decider's lease takes, the intake's unacknowledged publishes when the servers come back).

use std::time::{Duration, Instant};

/// How often a failure that keeps happening is reported again.
pub const WARN_EVERY: Duration = Duration::from_secs(30);

/// Failures of one kind: the first is reported at once, then at most one every [`WARN_EVERY`],
/// with how many failed since the last report.
#[derive(Debug, Default)]
pub struct Throttled {
    last: Option<Instant>,
    unreported: u64,
}

impl Throttled {
    /// Counts one failure at `now`; returns how many failed since the last report (this one
    /// included) when it is time to report, `None` to stay quiet.
    pub fn note(&mut self, now: Instant) -> Option<u64> {
        self.unreported += 1;
        if self
            .last
            .is_some_and(|t| now.saturating_duration_since(t) < WARN_EVERY)
        {
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.unreported))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_failure_is_reported_then_one_a_window_with_the_count() {
        let mut t = Throttled::default();
        let start = Instant::now();
        assert_eq!(t.note(start), Some(1));
        for i in 1..=9 {
            assert_eq!(t.note(start + Duration::from_secs(i)), None);
        }
        assert_eq!(t.note(start + WARN_EVERY), Some(10));
        assert_eq!(t.note(start + WARN_EVERY + Duration::from_secs(1)), None);
        assert_eq!(t.note(start + WARN_EVERY * 3), Some(2));
    }
}
