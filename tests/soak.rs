//! Soak: at least 100 `kill -9` at random instants across a 20,000-file run with
//! `done = "move"`, half the files waiting at start-up and half dropped while the daemon is
//! being killed; then one clean run, and every file must be in the output exactly once with
//! no torn line. Ignored by default (minutes of work):
//! `cargo test --release --test soak -- --ignored soak --nocapture`.

mod util;

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use util::{bin, run_once_with, Workspace};

const FILES: usize = 20_000;
const KILLS: usize = 100;

/// xorshift64*: a reproducible source of kill instants without a dependency.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

fn body(i: usize) -> String {
    format!(
        "Report {i} from the wire\nCorrespondent {i} filed this account of event {} in town {}, \
         with {} witnesses quoted at length about what happened on day {}.\n",
        i * 7919 % 10007,
        i % 97,
        i % 13,
        i % 31
    )
}

/// Counts whole records by source path, and lines that are not whole JSON records.
fn tally(text: &str) -> (HashMap<String, usize>, usize) {
    let mut seen = HashMap::new();
    let mut torn = 0;
    for line in text.split_inclusive('\n') {
        match serde_json::from_str::<serde_json::Value>(line) {
            Ok(v) if line.ends_with('\n') => {
                let p = v["source"]["path"].as_str().unwrap_or_default();
                let name = p.rsplit('/').next().unwrap_or_default().to_string();
                *seen.entry(name).or_default() += 1;
            }
            _ => torn += 1,
        }
    }
    (seen, torn)
}

#[test]
#[ignore = "minutes of work; run with --release --ignored"]
fn soak_kill_9_at_random_instants_done_move() {
    let ws = Workspace::new();
    let cfg = ws.config("[pipeline]\nmax_in_flight = 256\n");
    util::edit_config(&cfg, |t| {
        t.replace("[output]\n", "[output]\nbatch_max = 16\n")
            .replace("[source]\n", "[source]\ndone = \"move\"\n")
            .replace("settle = \"200ms\"", "settle = \"50ms\"")
    });
    for i in 0..FILES / 2 {
        std::fs::write(ws.drop_dir().join(format!("{i:05}.txt")), body(i)).unwrap();
    }
    // The other half arrives while the daemon is being killed, renamed in like a scraper does.
    let drop = ws.drop_dir();
    let writer = std::thread::spawn(move || {
        for i in FILES / 2..FILES {
            let tmp = drop.join(format!(".{i:05}.tmp"));
            std::fs::write(&tmp, body(i)).unwrap();
            std::fs::rename(&tmp, drop.join(format!("{i:05}.txt"))).unwrap();
            if i % 50 == 0 {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    });
    let seed = 0x5eed_d20b_u64;
    let mut rng = Rng(seed);
    let lines = || {
        std::fs::read(ws.out())
            .map(|b| b.iter().filter(|&&c| c == b'\n').count())
            .unwrap_or(0)
    };
    let size = || std::fs::metadata(ws.out()).map_or(0, |m| m.len());
    let started = Instant::now();
    // `during`: kills before every file was in; of those, `mid_run` after new lines appeared
    // in that life and `in_startup` before any.
    let (mut kills, mut during, mut mid_run, mut in_startup) = (0, 0, 0, 0);
    // Three lives in four are killed at a random instant after their first commit (`hi`
    // adapts so that each commits a hundred or two files); every fourth at a random instant
    // of its start-up (ledger replay, compaction, the first scan).
    let mut hi = 40u64;
    let mut startup = Duration::from_millis(100);
    while during < KILLS && lines() < FILES && kills < 10 * KILLS {
        let before = lines();
        let grown_from = size();
        let spawned = Instant::now();
        let mut d = Command::new(bin())
            .args(["run", "--config"])
            .arg(&cfg)
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        if kills % 4 == 3 {
            std::thread::sleep(Duration::from_millis(
                rng.below(startup.as_millis() as u64 + 1),
            ));
        } else {
            // Longer than before this life (recovery may first cut an uncommitted tail back).
            while size() <= grown_from && spawned.elapsed() < Duration::from_secs(30) {
                std::thread::sleep(Duration::from_millis(1));
            }
            startup = spawned.elapsed();
            std::thread::sleep(Duration::from_millis(rng.below(hi)));
        }
        d.kill().unwrap();
        d.wait().unwrap();
        kills += 1;
        let after = lines();
        if after < FILES {
            during += 1;
            if after > before {
                mid_run += 1;
            } else {
                in_startup += 1;
            }
        }
        let progress = after.saturating_sub(before);
        if progress > 150 {
            hi = (hi * 3 / 4).max(2);
        } else if progress < 50 {
            hi = (hi * 5 / 4 + 1).min(2000);
        }
    }
    writer.join().unwrap();
    let by_killed_lives = lines();
    let out = run_once_with(&cfg, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (seen, torn) = tally(&std::fs::read_to_string(ws.out()).unwrap());
    let lost = (0..FILES)
        .filter(|i| !seen.contains_key(&format!("{i:05}.txt")))
        .count();
    let twice = seen.values().filter(|&&n| n > 1).count();
    let left = std::fs::read_dir(ws.drop_dir())
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().is_file())
        .count();
    eprintln!(
        "soak: seed {seed:#x}, {FILES} files, {kills} kills survived ({during} before the run was \
         over: {mid_run} after that life's first new line, {in_startup} before any), lost {lost}, \
         duplicated {twice}, torn {torn}, left in the drop folder {left}; {by_killed_lives} lines \
         committed by the killed lives, the rest by a final clean run; {:.0} s",
        started.elapsed().as_secs_f64()
    );
    assert!(
        during >= KILLS,
        "only {during} kills landed before the run was over"
    );
    assert_eq!((lost, twice, torn, left), (0, 0, 0, 0));
    assert_eq!(seen.len(), FILES);
}
