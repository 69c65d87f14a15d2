//! Build script: records the git commit the binary is built from (`DROPLINE_COMMIT`).

use std::process::Command;

fn main() {
    let commit = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=DROPLINE_COMMIT={commit}");
    // Rebuild when HEAD moves: `logs/HEAD` changes on every commit and checkout (worktrees too).
    for what in ["HEAD", "logs/HEAD"] {
        let path = Command::new("git")
            .args(["rev-parse", "--git-path", what])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| String::from_utf8(o.stdout).ok());
        if let Some(p) = path.map(|p| p.trim().to_string()).filter(|p| !p.is_empty()) {
            println!("cargo:rerun-if-changed={p}");
        }
    }
}
