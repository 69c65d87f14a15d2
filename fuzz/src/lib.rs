//! Shared by the fuzz targets: what each one checks ([`checks`]) and the per-input time budget.
//!
//! libFuzzer's own `-timeout` catches hangs; this catches inputs that finish but take far
//! longer than any one file may (a quadratic path), and fails them as a crash with the time.
//! The budget counts the thread's CPU time, not wall time, so a loaded machine (CI, other
//! jobs) does not fail an input that merely waited for a core.

pub mod checks;

use dropline::driver::sched::thread_cpu;
use std::sync::Mutex;
use std::time::Duration;

/// Default per-input budget of CPU time; `DROPLINE_FUZZ_BUDGET_MS` overrides it.
const DEFAULT_BUDGET: Duration = Duration::from_secs(1);

fn budget() -> Duration {
    static BUDGET: std::sync::OnceLock<Duration> = std::sync::OnceLock::new();
    *BUDGET.get_or_init(|| {
        std::env::var("DROPLINE_FUZZ_BUDGET_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .map_or(DEFAULT_BUDGET, Duration::from_millis)
    })
}

/// Runs `f` on one input and panics (a libFuzzer crash, input saved) when it uses more CPU
/// time than the budget. Each new slowest input is reported on stderr (`slowest input: ...`), so a
/// run's last such line names its slowest input.
pub fn within_budget<T>(what: &str, len: usize, f: impl FnOnce() -> T) -> T {
    static SLOWEST: Mutex<Duration> = Mutex::new(Duration::ZERO);
    let start = thread_cpu();
    let out = f();
    let took = thread_cpu().saturating_sub(start);
    let mut slowest = SLOWEST.lock().unwrap_or_else(|e| e.into_inner());
    if took > *slowest {
        *slowest = took;
        eprintln!("slowest input: {what} {len} bytes took {took:?}");
    }
    drop(slowest);
    assert!(
        took <= budget(),
        "{what}: a {len}-byte input took {took:?} of CPU, over the {:?} budget",
        budget()
    );
    out
}

/// [`within_budget`] in the shape [`checks::Timed`] takes.
pub fn timed(what: &str, len: usize, work: &mut dyn FnMut()) {
    within_budget(what, len, work);
}
