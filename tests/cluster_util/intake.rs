//! The intake lease seen from the tests: who `cluster status` names as the intake, and a node
//! stopped cleanly or waited for.

use super::{cluster_cmd, Node};
use crate::util;
use std::path::Path;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

/// The `intake:` line of `cluster status` (the holder of the intake lease, or "none ...").
pub fn intake_line(config: &Path) -> String {
    let status = cluster_cmd(config, &["status"]);
    let line = status.lines().find(|l| l.starts_with("intake: "));
    line.unwrap_or("(no intake line)").to_string()
}

/// Waits until `cluster status` names the process `pid` as the intake; returns the last
/// `intake:` line seen (which does not name it after `limit`).
pub fn wait_intake(config: &Path, pid: u32, limit: Duration) -> String {
    let deadline = Instant::now() + limit;
    loop {
        let line = intake_line(config);
        if line.contains(&format!(", pid {pid},")) || Instant::now() > deadline {
            return line;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

impl Node {
    /// Sends SIGTERM (a clean stop) and waits for the exit; `None` if it did not exit within
    /// `limit` (it is then killed).
    pub fn stop(&mut self, limit: Duration) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        util::signal(&child, "TERM");
        util::wait_exit(&mut child, limit)
    }

    /// Waits up to `limit` for the node to exit by itself; `None` while it still runs.
    pub fn exited_within(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.as_mut()?.try_wait().unwrap() {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
