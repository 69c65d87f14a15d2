//! Reads whole objects from a JetStream object store without the client's `AsyncRead`.
//!
//! async-nats 0.46's `Object::poll_read` unwraps the result of creating its chunk consumer,
//! so a read that starts while a server is down or a leader election is under way panics
//! the task (`Error { kind: TimedOut }`), and with it the node. This reader asks for the
//! object's info, then reads its chunks (`$O.<bucket>.C.<nuid>`) through an ordered consumer
//! of its own, so every failure is an error the caller can retry.

use anyhow::{bail, Context, Result};
use async_nats::jetstream::consumer::pull;
use async_nats::jetstream::object_store::InfoErrorKind;
use async_nats::jetstream::Context as JetStream;
use futures_util::StreamExt;
use std::time::Duration;

/// How long one chunk may take to arrive before the read gives up.
const CHUNK_WAIT: Duration = Duration::from_secs(10);

/// Returns the bytes of object `name` in bucket `bucket`, or `None` when it does not exist
/// (or was deleted).
pub async fn read(js: &JetStream, bucket: &str, name: &str) -> Result<Option<Vec<u8>>> {
    let store = js
        .get_object_store(bucket)
        .await
        .map_err(|e| anyhow::anyhow!("cannot open object store {bucket}: {e}"))?;
    let info = match store.info(name).await {
        Ok(info) if info.deleted => return Ok(None),
        Ok(info) => info,
        Err(e) if e.kind() == InfoErrorKind::NotFound => return Ok(None),
        Err(e) => bail!("cannot read object {name} of {bucket}: {e}"),
    };
    let mut bytes = Vec::with_capacity(info.size);
    if info.chunks > 0 {
        let stream = js
            .get_stream(format!("OBJ_{bucket}"))
            .await
            .map_err(|e| anyhow::anyhow!("cannot open the stream of object store {bucket}: {e}"))?;
        let mut messages = super::ordered::ordered(
            &stream,
            pull::OrderedConfig {
                filter_subject: format!("$O.{bucket}.C.{}", info.nuid),
                ..Default::default()
            },
        )
        .await
        .with_context(|| format!("cannot read the chunks of object {name}"))?;
        for _ in 0..info.chunks {
            let msg = tokio::time::timeout(CHUNK_WAIT, messages.next())
                .await
                .with_context(|| format!("a chunk of object {name} did not arrive"))?
                .with_context(|| format!("object {name} ended before its last chunk"))?
                .map_err(|e| anyhow::anyhow!("cannot read a chunk of object {name}: {e}"))?;
            bytes.extend_from_slice(&msg.payload);
        }
    }
    if bytes.len() != info.size {
        bail!(
            "object {name} of {bucket} has {} bytes, its info says {}",
            bytes.len(),
            info.size
        );
    }
    Ok(Some(bytes))
}
