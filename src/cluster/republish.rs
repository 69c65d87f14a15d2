//! Owns the intake's side of the output stream and of the work stream's sequence: it follows
//! the output stream's headers (each committed line settles its file, [`super::settle`]; a
//! lost-work marker, [`super::gap`], has its file published again under a new work sequence
//! and a new `Nats-Msg-Id`), and it opens a work stream made anew past every work sequence
//! it was given ([`super::Cluster::work_floor`]), so no sequence is given twice and the
//! decider can tell those lost with the old stream.

use super::settle::Verdict;
use super::sole::IntakeLease;
use super::{wire, Cluster};
use anyhow::{Context, Result};
use async_nats::jetstream::consumer::{pull, DeliverPolicy};
use futures_util::StreamExt;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedSender;

/// How often the intake looks for a work stream deleted or left on its private subject.
const WORK_CHECK: Duration = Duration::from_secs(2);

/// The `Nats-Msg-Id` of a file published again after its work sequence `lost` was declared
/// lost: the first publish's id is still in the servers' duplicate window, and a repeat of
/// this one (the intake restarted before its ack) is dropped like any other.
pub fn msg_id(first: &str, lost: u64) -> String {
    format!("{first}-l{lost}")
}

/// Keeps the work stream open for as long as it runs: one made anew by another node (or
/// deleted and not made again) is opened past the intake's last work sequence. Opening one
/// moves the work sequence on, which only the intake may do: it first checks the intake lease
/// (waiting while it is being taken again) and stops once another node holds it.
pub async fn keep_work_open(cluster: Cluster, lease: Arc<IntakeLease>) {
    let mut tick = tokio::time::interval(WORK_CHECK);
    loop {
        tick.tick().await;
        let open = match cluster.js.get_stream(&cluster.names.work).await {
            Ok(s) => {
                let info = s.cached_info();
                let open = info.config.subjects == [cluster.names.work_subject.clone()];
                if open {
                    // Only the intake publishes work: what the open stream gave counts too
                    // (a ledger of an older version, or none, does not hold the highest).
                    let next = info.state.last_sequence + 1;
                    cluster.work_floor.fetch_max(next, Ordering::Relaxed);
                }
                open
            }
            // Gone, or the servers silent: ensure tells them apart.
            Err(_) => false,
        };
        if !open {
            if let Err(error) = lease.check().await {
                tracing::debug!(error = %format!("{error:#}"), "not opening the work stream");
                return;
            }
            if let Err(error) = cluster.ensure().await {
                tracing::debug!(error = %format!("{error:#}"), "cannot open the work stream yet");
            }
        }
    }
}

/// Follows the output stream's headers from `from`, sending each entry's work sequence and
/// [`Verdict`] to `tx` until it closes. A consumer that fails or ends is made again after the
/// last line it delivered; a tick keeps polling it in a quiet stream, so a missed heartbeat
/// is noticed.
pub async fn follow(
    cluster: Cluster,
    from: DeliverPolicy,
    tx: UnboundedSender<(u64, Verdict)>,
) -> Result<()> {
    let prefix = &cluster.names.out_prefix;
    let error_subject = format!("{prefix}.error");
    let mut policy = from;
    loop {
        match open_follow(&cluster, policy).await {
            Err(error) => {
                tracing::warn!(error = %format!("{error:#}"), "cannot follow the output stream, trying again")
            }
            Ok(mut messages) => {
                let mut tick = tokio::time::interval(Duration::from_secs(1));
                loop {
                    let m = tokio::select! {
                        m = messages.next() => m,
                        _ = tick.tick() => {
                            if tx.is_closed() {
                                return Ok(());
                            }
                            continue;
                        }
                    };
                    let m = match m {
                        Some(Ok(m)) => m,
                        Some(Err(error)) => {
                            tracing::warn!(%error, "following the output stream failed, following again");
                            break;
                        }
                        None => break,
                    };
                    if let Ok(info) = m.info() {
                        policy = DeliverPolicy::ByStartSequence {
                            start_sequence: info.stream_sequence + 1,
                        };
                    }
                    let seq = m
                        .headers
                        .as_ref()
                        .and_then(|h| wire::line_fields(h).ok())
                        .map(|f| f.work_seq);
                    if let Some(seq) = seq {
                        let verdict = if wire::is_lost(&m.subject, prefix) {
                            Verdict::Lost
                        } else {
                            Verdict::Line {
                                failed: m.subject.as_str() == error_subject,
                            }
                        };
                        if tx.send((seq, verdict)).is_err() {
                            return Ok(());
                        }
                    }
                }
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn open_follow(cluster: &Cluster, policy: DeliverPolicy) -> Result<pull::Ordered> {
    let out = cluster.js.get_stream(&cluster.names.out).await?;
    super::ordered::ordered(
        &out,
        pull::OrderedConfig {
            deliver_policy: policy,
            headers_only: true,
            ..Default::default()
        },
    )
    .await
    .context("cannot follow the output stream")
}
