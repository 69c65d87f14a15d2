//! Resource faults (issue 8): the daemon out of file descriptors, and SIGTERM while the sink
//! waits for disk space.

mod util;

use serde_json::Value;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use util::{bin, signal, wait_exit, wait_log, Workspace};

const ARTICLE: &str = "Headline of the day\nThe council approved the new budget on Tuesday.";

/// Starts `dropline run` and keeps every stderr line, returning once it watches the folder.
fn spawn_logged(config: &Path) -> (Child, Arc<Mutex<Vec<String>>>) {
    let mut cmd = Command::new(bin());
    cmd.args(["run", "--config"]).arg(config);
    util::spawn_logged(cmd)
}

/// Returns the open-file limit of process `pid` (soft, hard).
fn nofile(pid: u32) -> (u64, u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: prlimit writes the struct this function owns and reads nothing (null new limit).
    let rc = unsafe {
        libc::prlimit(
            pid as libc::pid_t,
            libc::RLIMIT_NOFILE,
            std::ptr::null(),
            &mut lim,
        )
    };
    assert_eq!(rc, 0, "prlimit: {}", std::io::Error::last_os_error());
    (lim.rlim_cur, lim.rlim_max)
}

/// Sets the soft open-file limit of process `pid` (the hard limit stays, so no privilege is
/// needed to raise it again).
fn set_soft_nofile(pid: u32, soft: u64) {
    let lim = libc::rlimit {
        rlim_cur: soft,
        rlim_max: nofile(pid).1,
    };
    // SAFETY: prlimit reads the struct this function owns and writes nothing (null old limit).
    let rc = unsafe {
        libc::prlimit(
            pid as libc::pid_t,
            libc::RLIMIT_NOFILE,
            &lim,
            std::ptr::null_mut(),
        )
    };
    assert_eq!(rc, 0, "prlimit: {}", std::io::Error::last_os_error());
}

fn open_fds(pid: u32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count() as u64
}

#[test]
fn out_of_descriptors_every_file_still_commits_as_a_document() {
    let ws = Workspace::new();
    let cfg = ws.config("[strip]\nenabled = false\n[dedup]\nenabled = false\n");
    let (mut d, log) = spawn_logged(&cfg);
    let pid = d.id();
    // Not one descriptor to spare: every open fails with EMFILE until the test raises the
    // limit again from outside.
    let (soft, _) = nofile(pid);
    // Below what it holds: a descriptor it closes meanwhile does not make room either.
    set_soft_nofile(pid, open_fds(pid) - 3);
    let n = 12;
    for i in 0..n {
        ws.drop_file(
            &format!("f{i:02}.txt"),
            format!("{ARTICLE} Number {i}.").as_bytes(),
        );
    }
    assert!(
        wait_log(&log, "Too many open files", Duration::from_secs(20)),
        "no read failed with EMFILE: {:#?}",
        log.lock().unwrap()
    );
    std::thread::sleep(Duration::from_millis(500));
    set_soft_nofile(pid, soft);
    // Retries come 2 s, 4 s, 8 s, 16 s after the first try.
    let recs = ws.wait_for(n, Duration::from_secs(40));
    signal(&d, "TERM");
    let status = wait_exit(&mut d, Duration::from_secs(10));
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
    assert_eq!(recs.len(), n, "{recs:#?}");
    let mut names: Vec<&str> = recs
        .iter()
        .map(|r: &Value| {
            assert_eq!(r["type"], "document", "{r}");
            r["source"]["path"]
                .as_str()
                .unwrap()
                .rsplit('/')
                .next()
                .unwrap()
        })
        .collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), n);
    let errors = std::fs::read_to_string(ws.state_dir().join("errors.jsonl")).unwrap_or_default();
    assert!(errors.is_empty(), "{errors}");
}

/// A 1 MB tmpfs, unmounted when dropped.
struct TinyDisk(std::path::PathBuf);

impl TinyDisk {
    /// Mounts a 1 MB tmpfs at `dir`; `None` without the privilege to mount.
    fn mount(dir: &Path) -> Option<TinyDisk> {
        std::fs::create_dir_all(dir).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
            .arg(dir)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| TinyDisk(dir.to_path_buf()))
    }
}

impl Drop for TinyDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn sigterm_while_the_disk_is_full_exits_and_the_restart_writes_the_line_once() {
    let ws = Workspace::new();
    let Some(disk) = TinyDisk::mount(&ws.tmp.path().join("disk")) else {
        // The sink's own unit test covers the give-up with a fault hook.
        eprintln!("skipped: cannot mount a tmpfs (needs root)");
        return;
    };
    let out = disk.0.join("out.jsonl");
    let text =
        std::fs::read_to_string(ws.config("[strip]\nenabled = false\n[dedup]\nenabled = false\n"))
            .unwrap()
            .replace(&ws.out().display().to_string(), &out.display().to_string());
    let cfg = ws.tmp.path().join("full.toml");
    std::fs::write(&cfg, text).unwrap();
    // Fill the disk, leaving no room for a line.
    let filler = disk.0.join("filler");
    let _ = std::fs::write(&filler, vec![b'x'; 2 << 20]);
    let (mut d, log) = spawn_logged(&cfg);
    ws.drop_file("a.txt", ARTICLE.as_bytes());
    assert!(
        wait_log(
            &log,
            "disk full, sink waiting for space",
            Duration::from_secs(20)
        ),
        "{:#?}",
        log.lock().unwrap()
    );
    let asked = Instant::now();
    signal(&d, "TERM");
    let status = wait_exit(&mut d, Duration::from_secs(10));
    assert!(
        status.is_some_and(|s| s.success()),
        "{status:?}: {:#?}",
        log.lock().unwrap()
    );
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "{:?}",
        asked.elapsed()
    );
    assert_eq!(std::fs::read_to_string(&out).unwrap_or_default(), "");
    // Space back: the restart writes the line, once.
    std::fs::remove_file(&filler).unwrap();
    let (mut d, _log) = spawn_logged(&cfg);
    let every = Duration::from_millis(50);
    let first = || util::read_records(&out);
    util::wait::poll(Duration::from_secs(20), every, first, |recs| {
        !recs.is_empty()
    });
    std::thread::sleep(Duration::from_millis(500));
    signal(&d, "TERM");
    assert!(wait_exit(&mut d, Duration::from_secs(10)).is_some_and(|s| s.success()));
    let recs = util::read_records(&out);
    assert_eq!(recs.len(), 1, "{recs:#?}");
    assert_eq!(recs[0]["type"], "document");
}
