//! Owns the daemon's signals: SIGINT/SIGTERM start the drain (a second one exits at once) and
//! SIGHUP is counted for the sink's reopen and the config reload.

use tokio::sync::watch;

/// Listens for SIGHUP for the life of the process, so it never kills the daemon, and counts the
/// hangups: the sink reopens its output on the next commit after one, and the config reload
/// (`reload::on_hangup`) re-reads the config on the same channel.
pub fn hangups() -> watch::Receiver<u64> {
    use tokio::signal::unix::{signal, SignalKind};
    let (tx, rx) = watch::channel(0u64);
    match signal(SignalKind::hangup()) {
        Ok(mut hup) => {
            tokio::spawn(async move {
                while hup.recv().await.is_some() {
                    tracing::info!("hangup: reopening the output before the next commit");
                    tx.send_modify(|n| *n += 1);
                }
            });
        }
        Err(error) => tracing::warn!(%error, "cannot listen for SIGHUP"),
    }
    rx
}

/// Resolves on the first SIGINT or SIGTERM; a second one exits the process at once (the
/// ledger keeps the state consistent whatever instant that is).
pub async fn shutdown_signal() {
    wait_for_signal().await;
    crate::status::mark_stopping();
    tracing::info!("shutting down: no new files, draining the pipeline");
    tokio::spawn(async {
        wait_for_signal().await;
        tracing::warn!("second signal, exiting now");
        std::process::exit(130);
    });
}

/// Resolves on the next SIGINT or SIGTERM.
pub async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(error) => {
            tracing::warn!(%error, "cannot listen for SIGTERM, only SIGINT stops the daemon");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
