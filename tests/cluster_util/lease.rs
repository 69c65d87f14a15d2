//! The decider lease seen from the tests: who holds it, and a hold from outside.

use super::{cluster_cmd, with_js};
use std::path::Path;
use std::time::{Duration, Instant};

/// The pid of the node holding the decider lease, from `cluster status`.
pub fn decider_pid(config: &Path) -> Option<u32> {
    let status = cluster_cmd(config, &["status"]);
    let line = status.lines().find(|l| l.starts_with("decider: "))?;
    let node = line.strip_prefix("decider: ")?.split_whitespace().next()?;
    node.rsplit('-').next()?.parse().ok()
}

/// Holds (or releases) the decider lease of cluster `name` from outside, so no node decides
/// while workers fill the prepared stream.
///
/// Releasing deletes the harness's own lease only, expecting its revision: a blind delete,
/// retried after an error whose write had in fact been stored, could delete a lease a decider
/// took meanwhile, and another decider would take it while the first still decides.
pub fn hold_lease(url: &str, name: &str, hold: bool) {
    const HARNESS: &str = "test-harness";
    let bucket = format!("{}_leader", name.to_uppercase());
    with_js(url, |js| async move {
        // The intake has just created the bucket's R3 stream: until its replicas have elected
        // a leader, a write may be refused as "stream not found". Try again for a while.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let done = match js.get_key_value(&bucket).await {
                Ok(kv) if hold => {
                    let v = format!(r#"{{"node":"{HARNESS}","committed":0,"indexed":0}}"#);
                    kv.put("decider", v.into_bytes().into())
                        .await
                        .map(drop)
                        .map_err(|e| e.to_string())
                }
                Ok(kv) => match kv.entry("decider").await {
                    Ok(Some(e))
                        if e.operation == async_nats::jetstream::kv::Operation::Put
                            && String::from_utf8_lossy(&e.value).contains(HARNESS) =>
                    {
                        // Refused when anyone wrote since: then it is not ours to delete.
                        match kv.delete_expect_revision("decider", Some(e.revision)).await {
                            Err(e) if !e.to_string().contains("wrong last sequence") => {
                                Err(e.to_string())
                            }
                            _ => Ok(()),
                        }
                    }
                    Ok(_) => Ok(()),
                    Err(e) => Err(e.to_string()),
                },
                Err(e) => Err(e.to_string()),
            };
            match done {
                Ok(()) => return,
                Err(e) if Instant::now() > deadline => panic!("cannot set the lease: {e}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    })
}

/// Holds the decider lease of cluster `name` from outside for as long as it lives, written
/// again every second (the bucket keeps an entry 4 s (the daemon's lease TTL), so a single
/// write lets a node take the lease 4 s later); released when dropped.
pub struct Hold {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    url: String,
    name: String,
}

impl Hold {
    pub fn start(url: &str, name: &str) -> Hold {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (s, u, n) = (stop.clone(), url.to_string(), name.to_string());
        // Written once before returning, so the caller's next step already finds it held.
        hold_lease(&u, &n, true);
        let thread = std::thread::spawn(move || {
            while !s.load(std::sync::atomic::Ordering::Relaxed) {
                std::thread::sleep(Duration::from_secs(1));
                hold_lease(&u, &n, true);
            }
        });
        Hold {
            stop,
            thread: Some(thread),
            url: url.to_string(),
            name: name.to_string(),
        }
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        hold_lease(&self.url, &self.name, false);
    }
}
