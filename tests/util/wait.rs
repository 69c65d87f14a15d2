//! Polling with a deadline: the one loop the tests wait with, so that each waits the same way
//! and a failure shows the last state it saw.

use std::time::{Duration, Instant};

/// Calls `probe` every `every` until `done` holds for what it returns, or `limit` has passed;
/// returns the last value either way, for the caller to assert on (so that its message can show
/// the state that did not turn). `probe` runs at least once.
pub fn poll<T>(
    limit: Duration,
    every: Duration,
    mut probe: impl FnMut() -> T,
    done: impl Fn(&T) -> bool,
) -> T {
    let deadline = Instant::now() + limit;
    loop {
        let value = probe();
        if done(&value) || Instant::now() >= deadline {
            return value;
        }
        std::thread::sleep(every);
    }
}

/// Waits until `ok` holds, checking every `every`; past `limit`, panics with `what` and what
/// `context` returns then (a node's log, say).
pub fn wait_until(
    limit: Duration,
    every: Duration,
    what: &str,
    ok: impl FnMut() -> bool,
    context: impl FnOnce() -> String,
) {
    if !poll(limit, every, ok, |&b| b) {
        panic!("{what}: not within {limit:?}\n{}", context());
    }
}
