//! The metrics listener seen from a test: raw responses, scrapes, a config with the listener on,
//! and waits on readiness and on a series' value.

use super::{bin, http_get, metric, seeds, Workspace};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(60);

/// Returns the HTTP status code of a raw response.
pub fn status_code(resp: &str) -> Option<u16> {
    resp.split_whitespace().nth(1)?.parse().ok()
}

/// Returns the body of a raw response.
pub fn body(resp: &str) -> &str {
    resp.split_once("\r\n\r\n").map_or("", |(_, b)| b)
}

pub fn scrape(port: u16) -> String {
    let resp = http_get(port, "/metrics").expect("metrics endpoint answers");
    assert_eq!(status_code(&resp), Some(200), "{resp}");
    body(&resp).to_string()
}

/// A config with the listener on `port`; `entities` loads the (slow in debug) entity model.
pub fn config_with_metrics(ws: &Workspace, port: u16, entities: bool, extra: &str) -> PathBuf {
    let entities = if entities {
        "[entities]\nenabled = true\n"
    } else {
        ""
    };
    let cfg = ws.config(&format!("{entities}{extra}"));
    let text = std::fs::read_to_string(&cfg).unwrap().replace(
        "[metrics]\nenabled = false",
        &format!("[metrics]\nenabled = true\nlisten = \"127.0.0.1:{port}\""),
    );
    std::fs::write(&cfg, text).unwrap();
    cfg
}

/// Starts `dropline run` without waiting for anything; stderr is discarded.
pub fn spawn_quiet(cfg: &Path) -> Child {
    spawn_quiet_with(cfg, &[])
}

/// [`spawn_quiet`] with extra environment variables.
pub fn spawn_quiet_with(cfg: &Path, env: &[(&str, &str)]) -> Child {
    Command::new(bin())
        .args(["run", "--config"])
        .arg(cfg)
        .env("RUST_LOG", "warn")
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn dropline")
}

/// Polls `/health/ready` until it answers 200; returns every status seen before, and whether
/// `/health/live` answered 200 while not ready.
pub fn wait_ready(port: u16) -> (Vec<u16>, bool) {
    let deadline = Instant::now() + WAIT;
    let mut seen = Vec::new();
    let mut live_while_unready = false;
    while Instant::now() < deadline {
        if let Some(code) = http_get(port, "/health/ready").and_then(|r| status_code(&r)) {
            if code == 200 {
                return (seen, live_while_unready);
            }
            seen.push(code);
            let live = http_get(port, "/health/live").and_then(|r| status_code(&r));
            live_while_unready |= live == Some(200);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("never ready; saw {seen:?}");
}

/// Waits until the scraped `name` equals `want`; returns the last scrape.
pub fn wait_metric(port: u16, name: &str, want: f64) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let text = scrape(port);
        if metric(&text, name) == Some(want) || Instant::now() > deadline {
            return text;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn seed_files() -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(seeds())
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect();
    files.sort();
    files
}
