//! Intake faults (issue 8): a runaway file, a permission fixed later, a reused inode, a symlink
//! swapped in mid-read, a recreated drop folder, non-UTF-8 names, a sparse huge file.

mod util;

use base64::Engine as _;
use serde_json::Value;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use util::{bin, signal, spawn_watching, stdout_records, wait_exit, Workspace};

const ARTICLE: &str = "Headline of the day\nThe council approved the new budget on Tuesday.";

fn name_of(r: &Value) -> String {
    let p = r["source"]["path"].as_str().unwrap_or_default();
    p.rsplit('/').next().unwrap_or_default().to_string()
}

/// A config for quick spine tests: stripping and dedup off unless `extra` says otherwise.
fn quick_config(ws: &Workspace, extra: &str) -> std::path::PathBuf {
    ws.config(&format!(
        "[strip]\nenabled = false\n[dedup]\nenabled = false\n{extra}"
    ))
}

#[test]
fn a_runaway_file_becomes_a_timeout_record_while_later_files_flow() {
    let ws = Workspace::new();
    let cfg = quick_config(&ws, "[pipeline]\nfile_timeout = \"1s\"\nread_workers = 1\n");
    let mut cmd = Command::new(bin());
    cmd.args(["run", "--config"])
        .arg(&cfg)
        .env("DROPLINE_TEST_STALL_READ", "stall");
    let mut d = spawn_watching(cmd);
    ws.drop_file("a-stall.txt", ARTICLE.as_bytes());
    let started = Instant::now();
    // Dropped after the stalled one: with one read worker they queue behind it.
    ws.drop_file("b.txt", format!("{ARTICLE} Second.").as_bytes());
    ws.drop_file("c.txt", format!("{ARTICLE} Third.").as_bytes());
    let recs = ws.wait_for(3, Duration::from_secs(15));
    let waited = started.elapsed();
    assert_eq!(recs.len(), 3, "{recs:#?}");
    let stalled = recs.iter().find(|r| name_of(r) == "a-stall.txt").unwrap();
    assert_eq!(stalled["type"], "error");
    assert_eq!(stalled["stage"], "read");
    assert_eq!(stalled["error"], "took longer than 1s");
    for n in ["b.txt", "c.txt"] {
        let r = recs.iter().find(|r| name_of(r) == n).unwrap();
        assert_eq!(r["type"], "document", "{r}");
    }
    // The stalled thread sleeps 20 s; neither later files nor shutdown wait for it.
    assert!(waited < Duration::from_secs(15));
    signal(&d, "TERM");
    let status = wait_exit(&mut d, Duration::from_secs(10));
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
}

#[test]
fn permission_denied_then_fixed_by_chmod_yields_the_document() {
    let ws = Workspace::new();
    let cfg = quick_config(&ws, "");
    let root = nix_uid() == 0;
    // Root reads through any mode: the daemon runs as `nobody` then, when setpriv exists.
    if root && !Path::new("/usr/bin/setpriv").exists() {
        eprintln!("skipped: running as root without setpriv");
        return;
    }
    let mut cmd = if root {
        for p in [ws.tmp.path().to_path_buf(), ws.drop_dir()] {
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o777)).unwrap();
        }
        std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o644)).unwrap();
        let mut c = Command::new("/usr/bin/setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", bin()]);
        c
    } else {
        Command::new(bin())
    };
    cmd.args(["run", "--config"]).arg(&cfg);
    let mut d = spawn_watching(cmd);
    let locked = ws.drop_dir().join(".locked.txt.tmp");
    std::fs::write(&locked, ARTICLE).unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
    std::fs::rename(&locked, ws.drop_dir().join("locked.txt")).unwrap();
    // The first try fails with EACCES; the fix lands before the retry 2 s later.
    std::thread::sleep(Duration::from_millis(800));
    std::fs::set_permissions(
        ws.drop_dir().join("locked.txt"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let recs = ws.wait_for(1, Duration::from_secs(20));
    signal(&d, "TERM");
    assert!(wait_exit(&mut d, Duration::from_secs(10)).is_some_and(|s| s.success()));
    assert_eq!(recs.len(), 1, "{recs:#?}");
    assert_eq!(recs[0]["type"], "document", "{}", recs[0]);
    assert!(recs[0]["text"].as_str().unwrap().contains("council"));
}

fn nix_uid() -> u32 {
    // SAFETY: getuid has no preconditions.
    unsafe { libc::getuid() }
}

/// Writes `body` over `path` in place (same inode, no truncation) and puts `mtime` back before
/// closing, so no instant shows the new content with a new mtime.
fn rewrite_keeping_mtime(path: &Path, body: &str, mtime: std::time::SystemTime) {
    use std::io::Write;
    let mut f = std::fs::File::options().write(true).open(path).unwrap();
    f.write_all(body.as_bytes()).unwrap();
    f.set_modified(mtime).unwrap();
}

#[test]
fn same_size_rewrite_with_mtime_restored_and_reused_inode_are_processed() {
    use std::os::unix::fs::MetadataExt;
    let ws = Workspace::new();
    let cfg = quick_config(&ws, "");
    let mut d = ws.spawn_daemon(&cfg, &[]);
    let path = ws.drop_dir().join("a.txt");
    let bodies = [
        "Story one\nThe mayor opened the canal.",
        "Story two\nThe queen closed the ferry.",
        "Story six\nThe king signed the treaty.",
    ];
    assert!(bodies.iter().all(|b| b.len() == bodies[0].len()));
    ws.drop_file("a.txt", bodies[0].as_bytes());
    let meta = std::fs::metadata(&path).unwrap();
    let (ino, mtime) = (meta.ino(), meta.modified().unwrap());
    assert_eq!(ws.wait_for(1, Duration::from_secs(10)).len(), 1);

    // Same inode, same size, mtime put back: only the content tells.
    rewrite_keeping_mtime(&path, bodies[1], mtime);
    let recs = ws.wait_for(2, Duration::from_secs(10));
    assert_eq!(recs.len(), 2, "{recs:#?}");
    assert!(recs[1]["text"].as_str().unwrap().contains("queen"));

    // `cp -p` style: delete, write anew under a temporary name (the inode is usually reused),
    // restore the mtime, rename in.
    std::fs::remove_file(&path).unwrap();
    let tmp = ws.drop_dir().join(".a.txt.tmp");
    std::fs::write(&tmp, "").unwrap();
    rewrite_keeping_mtime(&tmp, bodies[2], mtime);
    let reused = std::fs::metadata(&tmp).unwrap().ino() == ino;
    std::fs::rename(&tmp, &path).unwrap();
    let recs = ws.wait_for(3, Duration::from_secs(10));
    // Nothing more arrives: each version yields exactly one line.
    std::thread::sleep(Duration::from_millis(1500));
    let recs_after = ws.records();
    signal(&d, "TERM");
    assert!(wait_exit(&mut d, Duration::from_secs(10)).is_some_and(|s| s.success()));
    assert_eq!(recs.len(), 3, "inode reused: {reused}; {recs:#?}");
    assert!(recs[2]["text"].as_str().unwrap().contains("king"));
    assert_eq!(recs_after.len(), 3, "{recs_after:#?}");
}

#[test]
fn symlink_swapped_in_between_check_and_open_never_reads_outside() {
    let ws = Workspace::new();
    let cfg = quick_config(&ws, "[pipeline]\nread_workers = 4\n");
    let secret = ws.tmp.path().join("secret.txt");
    std::fs::write(&secret, "OUTSIDE SECRET\nnever to be read by the daemon").unwrap();
    let mut d = ws.spawn_daemon(&cfg, &[]);
    // A symlink to a file inside the folder keeps working.
    std::fs::write(ws.drop_dir().join(".inside.dat"), ARTICLE).unwrap();
    std::os::unix::fs::symlink(
        ws.drop_dir().join(".inside.dat"),
        ws.drop_dir().join("inside-link.txt"),
    )
    .unwrap();
    const SWAPS: usize = 2000;
    for i in 0..SWAPS {
        let name = ws.drop_dir().join(format!("s{i}.txt"));
        let tmp = ws.drop_dir().join(format!(".s{i}.tmp"));
        std::fs::write(&tmp, format!("Inside {i}\nan ordinary article body {i}")).unwrap();
        std::fs::rename(&tmp, &name).unwrap();
        let link = ws.drop_dir().join(format!(".l{i}.tmp"));
        std::os::unix::fs::symlink(&secret, &link).unwrap();
        std::fs::rename(&link, &name).unwrap();
    }
    // Every swapped-in link is a file version of its own: each name ends refused (its regular
    // version may have been read in time, or refused too when the swap won the race).
    let refused = |recs: &[Value]| {
        recs.iter()
            .filter(|r| r["error"].as_str().is_some_and(|e| e.contains("outside")))
            .map(name_of)
            .collect::<std::collections::HashSet<_>>()
            .len()
    };
    let recs = util::wait::poll(
        Duration::from_secs(60),
        Duration::from_millis(50),
        || ws.records(),
        |recs| refused(recs) >= SWAPS,
    );
    signal(&d, "TERM");
    assert!(wait_exit(&mut d, Duration::from_secs(20)).is_some_and(|s| s.success()));
    let leaked: Vec<&Value> = recs
        .iter()
        .filter(|r| r.to_string().contains("OUTSIDE SECRET"))
        .collect();
    assert!(leaked.is_empty(), "outside text emitted: {leaked:#?}");
    assert_eq!(refused(&recs), SWAPS, "every swapped-in link refused");
    let raced = recs.len() - recs.iter().filter(|r| r["type"] == "document").count() - SWAPS;
    eprintln!(
        "{} records, {} documents, {raced} regular versions refused because the swap won",
        recs.len(),
        recs.iter().filter(|r| r["type"] == "document").count()
    );
    let inside = recs.iter().find(|r| name_of(r) == "inside-link.txt");
    assert_eq!(inside.map(|r| r["type"].clone()), Some("document".into()));
}

#[test]
fn a_recreated_drop_folder_is_watched_again_within_seconds() {
    let ws = Workspace::new();
    let cfg = quick_config(&ws, "");
    // Rescans every minute: only a re-established watch finds the late file in time.
    util::edit_config(&cfg, |t| {
        t.replace("rescan_interval = \"1s\"", "rescan_interval = \"60s\"")
    });
    let mut d = ws.spawn_daemon(&cfg, &[]);
    ws.drop_file("a.txt", ARTICLE.as_bytes());
    assert_eq!(ws.wait_for(1, Duration::from_secs(10)).len(), 1);
    std::fs::remove_dir_all(ws.drop_dir()).unwrap();
    std::fs::create_dir(ws.drop_dir()).unwrap();
    ws.drop_file("b.txt", format!("{ARTICLE} Second.").as_bytes());
    assert_eq!(ws.wait_for(2, Duration::from_secs(5)).len(), 2);
    // Found by the new watch's events, not by the scan that re-established it.
    ws.drop_file("c.txt", format!("{ARTICLE} Third.").as_bytes());
    let recs = ws.wait_for(3, Duration::from_secs(5));
    signal(&d, "TERM");
    assert!(wait_exit(&mut d, Duration::from_secs(10)).is_some_and(|s| s.success()));
    let names: Vec<String> = recs.iter().map(name_of).collect();
    assert_eq!(names, ["a.txt", "b.txt", "c.txt"]);
}

#[test]
fn non_utf8_names_give_two_distinct_lines_with_their_raw_bytes() {
    let ws = Workspace::new();
    let raw_names: [&[u8]; 2] = [b"caf\xe9.txt", b"caf\xe8.txt"];
    for (i, n) in raw_names.iter().enumerate() {
        let p = ws.drop_dir().join(OsStr::from_bytes(n));
        std::fs::write(p, format!("{ARTICLE} Version {i}.")).unwrap();
    }
    let out = Command::new(bin())
        .args(["process", "--set", "entities.enabled=false"])
        .arg(ws.drop_dir())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let recs = stdout_records(&out);
    assert_eq!(recs.len(), 2);
    let paths: Vec<&str> = recs
        .iter()
        .map(|r| r["source"]["path"].as_str().unwrap())
        .collect();
    assert_ne!(paths[0], paths[1]);
    // Sorted by raw path: \xE8 before \xE9.
    assert!(paths[0].ends_with("caf\\xE8.txt"), "{paths:?}");
    for (r, raw) in recs.iter().zip([raw_names[1], raw_names[0]]) {
        let b64 = r["source"]["path_bytes"].as_str().expect("path_bytes");
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        assert!(bytes.ends_with(raw), "{r}");
    }
}

#[test]
fn a_sparse_terabyte_file_is_an_error_record_not_a_crash() {
    let ws = Workspace::new();
    let sparse = ws.drop_dir().join("huge.txt");
    std::fs::File::create(&sparse)
        .unwrap()
        .set_len(1 << 40)
        .unwrap();
    std::fs::write(ws.drop_dir().join("small.txt"), ARTICLE).unwrap();
    let out = Command::new(bin())
        .args([
            "process",
            "--set",
            "entities.enabled=false",
            "--set",
            "source.max_file_bytes=2000000000000",
        ])
        .arg(ws.drop_dir())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let recs = stdout_records(&out);
    assert_eq!(recs.len(), 2, "{recs:#?}");
    assert_eq!(recs[0]["type"], "error");
    assert!(
        recs[0]["error"].as_str().unwrap().contains("sparse"),
        "{}",
        recs[0]
    );
    assert_eq!(recs[1]["type"], "document");
}

/// A file that needs more memory than the whole in-flight byte budget becomes an error record
/// naming the key to raise, instead of running alone past the budget; smaller files pass.
#[test]
fn a_file_over_the_whole_byte_budget_is_refused_by_name() {
    let ws = Workspace::new();
    // Entities off: 8 bytes of budget per decoded byte, so 4 KiB holds 512 bytes of text.
    ws.drop_file("small.txt", ARTICLE.as_bytes());
    let big = format!(
        "{ARTICLE}\n{}",
        "More council news follows here. ".repeat(40)
    );
    ws.drop_file("big.txt", big.as_bytes());
    let out = util::dropline(&[
        "process",
        "--set",
        "entities.enabled=false",
        "--set",
        "pipeline.max_in_flight_bytes=4096",
        ws.drop_dir().to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "an error record means exit 1");
    let recs = stdout_records(&out);
    let by_name = |n: &str| recs.iter().find(|r| name_of(r) == n).unwrap().clone();
    assert_eq!(by_name("small.txt")["type"], "document");
    let refused = by_name("big.txt");
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(refused["stage"], "read");
    let error = refused["error"].as_str().unwrap();
    assert!(
        error.contains("over pipeline.max_in_flight_bytes"),
        "{error}"
    );
}

/// Memory under a burst of big gzip files (issue 8, failure 7): 80 files each inflating to
/// 60 MB, under both caps, processed with the default settings. With entities on such a file
/// needs ~4 GB in flight, more than the default 256 MiB byte budget, so each one is refused
/// once read: the peak RSS stays under the budget plus the fixed footprint (the same run on
/// one article), and no file fails on the time budget. Prints the figures. Not a timed test:
/// `cargo test --release --test faults_intake -- --ignored soak_memory --nocapture`
/// (`DROPLINE_SOAK_FILES=20` for a shorter run, `DROPLINE_SOAK_SET=KEY=VALUE` for one override).
#[test]
#[ignore]
fn soak_memory_eighty_gzip_files_of_sixty_mb_inflated() {
    use std::io::Write;
    let files = util::env_number("DROPLINE_SOAK_FILES", 80);
    let ws = Workspace::new();
    let words: Vec<String> = [
        "council", "budget", "river", "minister", "city", "the", "approved", "said", "on", "new",
        "bridge", "market", "report", "week", "police", "school",
    ]
    .map(String::from)
    .to_vec();
    // Article-shaped text: capitalised twelve-word sentences, five to a paragraph.
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    let mut common = String::with_capacity(60_000_000);
    common.push_str("Headline of the big file\n");
    let mut sentence = 0;
    while common.len() < 59_990_000 {
        for w in 0..12 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let word = &words[(rng % 16) as usize];
            if w == 0 {
                common.push_str(&word[..1].to_uppercase());
                common.push_str(&word[1..]);
            } else {
                common.push(' ');
                common.push_str(word);
            }
        }
        sentence += 1;
        common.push_str(if sentence % 5 == 0 { ".\n" } else { ". " });
    }
    let gz = |text: &[u8]| {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(text).unwrap();
        e.finish().unwrap()
    };
    // One shared member, compressed once, after a small member of each file's own (gzip
    // members concatenate): distinct files, and the trailer still tells the big member's size.
    let shared = gz(common.as_bytes());
    for i in 0..files {
        let mut body = gz(format!("Article {i}\nUnique opening paragraph {i}.\n").as_bytes());
        body.extend_from_slice(&shared);
        ws.drop_file(&format!("big{i:03}.txt.gz"), &body);
    }
    eprintln!("{files} files of {} bytes on disk", shared.len() + 60);
    let one = Workspace::new();
    one.drop_file("article.txt", ARTICLE.as_bytes());
    let (_, fixed, _) = process_with_peak_rss(&one, "fixed.jsonl");
    let started = Instant::now();
    let (status, peak, out_path) = process_with_peak_rss(&ws, "soak.jsonl");
    let budget = dropline::config::Config::default()
        .pipeline
        .max_in_flight_bytes;
    eprintln!(
        "exit status {status}, {:.1} s, peak RSS {} MB; byte budget {} MB, fixed footprint {} MB",
        started.elapsed().as_secs_f64(),
        peak >> 20,
        budget >> 20,
        fixed >> 20
    );
    let recs = util::read_records(&out_path);
    let mut kinds: std::collections::BTreeMap<String, usize> = Default::default();
    for r in &recs {
        let k = match r["type"].as_str() {
            Some("error") => format!("error ({}: {})", r["stage"], r["error"]),
            _ => "document".to_string(),
        };
        *kinds.entry(k).or_default() += 1;
    }
    eprintln!("records: {kinds:?}");
    assert_eq!(recs.len(), files);
    let timed_out = kinds
        .iter()
        .filter(|(k, _)| k.contains("took longer than"))
        .count();
    assert_eq!(timed_out, 0, "a file failed on the time budget");
    assert!(
        peak <= budget + fixed,
        "peak RSS over the byte budget plus the fixed footprint"
    );
}

/// Runs `dropline process` over `ws`'s drop folder with the default settings (and
/// `DROPLINE_SOAK_SET`), stdout to `out` in the workspace; returns the exit code, the peak
/// RSS in bytes and the output path.
// The child is reaped by wait4 (which also gives its peak RSS), not by Child::wait.
#[allow(clippy::zombie_processes)]
fn process_with_peak_rss(ws: &Workspace, out: &str) -> (i32, u64, std::path::PathBuf) {
    let out_path = ws.tmp.path().join(out);
    let child = Command::new(bin())
        .arg("process")
        .args(
            std::env::var("DROPLINE_SOAK_SET")
                .ok()
                .iter()
                .flat_map(|s| ["--set", s.as_str()]),
        )
        .arg(ws.drop_dir())
        .env("RUST_LOG", "warn")
        .stdout(std::fs::File::create(&out_path).unwrap())
        .spawn()
        .unwrap();
    let mut status = 0;
    // SAFETY: a zeroed rusage is a valid value for wait4 to fill.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child, writing into locals that outlive the call.
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    assert_eq!(pid, child.id() as i32);
    let peak = u64::try_from(usage.ru_maxrss).unwrap_or(0) * 1024;
    (libc::WEXITSTATUS(status), peak, out_path)
}
