//! The decider's checkpoint seen from the tests: its manifest, and what a restart resumed from.

use super::{with_js, Node};
use serde_json::Value;
use std::time::{Duration, Instant};

/// The checkpoint manifest of cluster `t`, once written.
pub fn manifest(url: &str) -> Option<Value> {
    with_js(url, |js| async move {
        let bytes = dropline::cluster::objects::read(&js, "T_checkpoint", "manifest")
            .await
            .ok()??;
        serde_json::from_slice(&bytes).ok()
    })
}

/// Waits up to 30 s for cluster `t`'s checkpoint to cover `lines` output lines, failing with
/// the node's log.
pub fn wait_for_checkpoint(url: &str, lines: u64, node: &Node) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while manifest(url).is_none_or(|m| m["out_seq"] != lines) {
        assert!(
            Instant::now() < deadline,
            "a checkpoint of {lines} lines within 30s; node log:\n{}",
            node.log()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Asserts that the last decider rebuild in `log` resumed from a checkpoint of `lines` lines
/// and replayed nothing of the output stream.
pub fn assert_resumed_from_checkpoint(log: &str, lines: u64) {
    let rebuilt = log
        .lines()
        .rfind(|l| l.contains("decider state rebuilt"))
        .expect("the restarted decider logs its rebuild");
    assert!(
        rebuilt.contains(&format!("checkpoint_lines={lines}")) && rebuilt.contains("replayed=0"),
        "the restart resumed from the checkpoint, replaying nothing: {rebuilt}"
    );
}
