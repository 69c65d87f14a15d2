//! The `dropline` binary: parses the command line and maps the outcome to an exit code.

use clap::Parser;

fn main() -> std::process::ExitCode {
    limit_malloc_arenas();
    let cli = dropline::cli::Cli::parse();
    dropline::cli::main(cli)
}

/// Caps glibc's malloc arenas at two before any thread starts. Documents are allocated on one
/// stage thread and freed on another; with the default (8 per core) each thread's arena kept
/// its freed buffers: a 100,000-file burst peaked at 111 MB RSS, 76 MB with two arenas
/// (benches/e2e.rs). mimalloc measured 115 MB on the same run. On the 100,000-file `run --once`
/// (docs/measurements.md, mem17) neither one arena (`M_ARENA_MAX` 1), nor `malloc_trim` every
/// second, nor jemalloc 5.3 with its decay times at 0 lowered the peak (jemalloc raised it 6 MB).
///
/// It also fixes the mmap threshold. By default glibc raises that threshold each time a large
/// block is freed (up to 32 MiB), after which the growing hash tables of admission, discovery
/// and dedup are carved from the heap, and the tables they outgrew stay resident as holes: a
/// spine-only `run --once` over 100,000 files left in place peaked at 60-73 MB RSS for a 35 MB
/// heap, 48 MB with the threshold fixed at glibc's initial 128 KiB.
///
/// The fixed threshold is 1 MiB, not 128 KiB: an HTML page's parse (its DOM, the readability
/// extractor's copy of it, the text buffers) allocates blocks above 128 KiB, and each one was
/// mapped fresh and faulted in page by page. On wcxb-train's 504 pages 1,965 of the 1,986
/// blocks above 128 KiB are at most 1 MiB. `process` over wcxb-dev's 200 pages: 42,800 -> 20,500
/// minor faults, CPU x0.84; the 100,000-file `run --once` peaked +1.2 ± 2.0 MiB higher over 6
/// pairs (docs/measurements.md, malloc32). Tables above 1 MiB are still mapped on their own.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1024 * 1024);
    }
}
