//! Owns what the time budget counts: a file's wall time on its stage thread minus the time
//! that thread sat runnable on a run queue waiting for a CPU (Linux schedstat). On a loaded
//! machine a file that is being worked on slowly is not a runaway; a thread that computes or
//! blocks (a stalled read) uses up its budget as before.

use std::time::Duration;

/// Returns the CPU time the calling thread has used (zero where the clock is unavailable).
pub fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec it is given and nothing else.
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) } != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Returns the kernel id of the calling thread.
pub fn current_tid() -> i32 {
    // SAFETY: gettid has no preconditions and touches no memory.
    unsafe { libc::gettid() }
}

/// Returns the total time thread `tid` of this process has waited on a run queue, or `None`
/// where the kernel does not keep schedstat (then the budget counts wall time).
pub fn run_queue_wait(tid: i32) -> Option<Duration> {
    let text = std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat")).ok()?;
    parse_schedstat(&text)
}

/// Parses `/proc/.../schedstat`: time on a CPU, time waiting on a run queue (both in ns), and
/// the number of time slices.
fn parse_schedstat(text: &str) -> Option<Duration> {
    let waited = text.split_ascii_whitespace().nth(1)?.parse().ok()?;
    Some(Duration::from_nanos(waited))
}

/// Returns the budgeted time of a file that has run `wall` on its thread, of which the thread
/// waited `queued` for a CPU.
pub fn worked(wall: Duration, queued: Duration) -> Duration {
    wall.saturating_sub(queued)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_run_queue_wait_is_the_second_field() {
        assert_eq!(
            parse_schedstat("123456 7890 12\n"),
            Some(Duration::from_nanos(7890))
        );
        assert_eq!(parse_schedstat("garbage"), None);
        assert_eq!(parse_schedstat(""), None);
    }

    #[test]
    fn the_calling_thread_reads_its_own_wait_on_linux() {
        if std::path::Path::new("/proc/self/schedstat").exists() {
            let first = run_queue_wait(current_tid()).expect("schedstat of this thread");
            let again = run_queue_wait(current_tid()).unwrap();
            assert!(again >= first, "the wait only grows");
        }
    }

    #[test]
    fn waiting_for_a_cpu_is_not_work() {
        let s = Duration::from_secs;
        assert_eq!(worked(s(12), s(5)), s(7));
        assert_eq!(worked(s(3), s(5)), Duration::ZERO);
    }
}
