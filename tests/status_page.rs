//! The status page rendered by a real browser (headless Chromium) against a running daemon:
//! the DOM carries the daemon's own data, and a screenshot lands in `target/test-output/`.

mod util;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;
use util::{free_port, http_get, signal, wait_exit, Workspace};

const CHROMIUM: &str = "/usr/bin/chromium";
const WAIT: Duration = Duration::from_secs(60);

/// Runs headless Chromium on `url` with `extra` arguments; returns stdout.
fn chromium(url: &str, extra: &[&str]) -> String {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1280,1600",
            "--virtual-time-budget=5000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(url)
        .stderr(Stdio::null())
        .output()
        .expect("run chromium");
    assert!(out.status.success(), "chromium failed: {:?}", out.status);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Returns the text of the element with `id` in serialised HTML (no nested tags expected).
fn text_of<'a>(dom: &'a str, id: &str) -> Option<&'a str> {
    let start = dom.find(&format!("id=\"{id}\""))?;
    let rest = &dom[start..];
    let open = rest.find('>')? + 1;
    let close = rest[open..].find('<')?;
    Some(&rest[open..open + close])
}

#[test]
fn the_page_renders_the_running_daemons_data() {
    if !Path::new(CHROMIUM).exists() {
        eprintln!(
            "\n\n!!! SKIPPED: {CHROMIUM} not installed (apt-get install chromium); \
             .ci/run installs it so CI runs this test !!!\n"
        );
        return;
    }
    let ws = Workspace::new();
    let port = free_port();
    let cfg = ws.config("[entities]\nenabled = true\n");
    util::edit_config(&cfg, |t| {
        t.replace(
            "[metrics]\nenabled = false",
            &format!("[metrics]\nenabled = true\nlisten = \"127.0.0.1:{port}\""),
        )
    });
    let mut seeds: Vec<PathBuf> = std::fs::read_dir(util::seeds())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    seeds.sort();
    let mut d = ws.spawn_daemon(&cfg, &[]);
    for p in &seeds {
        let name = p.file_name().unwrap().to_string_lossy();
        ws.drop_file(&name, &std::fs::read(p).unwrap());
    }
    let recs = ws.wait_for(seeds.len(), WAIT);
    assert_eq!(recs.len(), seeds.len());
    // The page's counters come from the sink and its charts from the once-a-second samples;
    // wait until the API has both.
    util::wait::poll(
        WAIT,
        Duration::from_millis(50),
        || http_get(port, "/api/status").unwrap_or_default(),
        |api| {
            api.contains(&format!("\"processed\":{}", seeds.len()))
                && !api.contains("\"samples\":[]")
        },
    );

    let url = format!("http://127.0.0.1:{port}/");
    let dom = chromium(&url, &["--dump-dom"]);
    let out_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-output");
    std::fs::create_dir_all(&out_dir).unwrap();
    let shot = out_dir.join("status.png");
    let _ = std::fs::remove_file(&shot);
    chromium(&url, &[&format!("--screenshot={}", shot.display())]);
    signal(&d, "TERM");
    assert!(wait_exit(&mut d, WAIT).is_some_and(|s| s.success()));

    assert_eq!(text_of(&dom, "state"), Some("ready"), "readiness badge");
    assert_eq!(
        text_of(&dom, "processed"),
        Some(seeds.len().to_string().as_str()),
        "processed count"
    );
    // The latest documents and the largest story carry the seeds' own titles and entities.
    let title = recs[0]["title"].as_str().unwrap();
    assert!(!title.is_empty());
    let escaped = title
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    assert!(
        dom.contains(&escaped),
        "seed title {title:?} not on the page"
    );
    let entity = recs[0]["entities"][0]["canonical"].as_str().unwrap();
    assert!(dom.contains(entity), "entity {entity:?} not on the page");
    let story = &recs[0]["dedup"]["story"].as_str().unwrap()[..8];
    assert!(dom.contains(story), "story {story} not on the page");
    assert!(
        dom.contains("<polyline"),
        "no chart line drawn from the samples"
    );
    let png = std::fs::read(&shot).expect("screenshot written");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "screenshot"
    );
}
