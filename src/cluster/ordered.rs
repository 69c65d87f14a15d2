//! Owns the making of the ordered consumers (ephemeral, one replica) through which the nodes
//! and `dropline cluster tail` read a stream from a sequence: a request that times out is
//! made again, a few times.
//!
//! nats-server before 2.12 may place such a consumer on a server that is down but not yet known to
//! be offline (nats-server#7165, fixed in 2.12): the request then times out. For minutes after one
//! server of three dies a quarter to a third of the requests do (6 of 22 in one probe on the Debian
//! package's 2.9.10). Each new request is placed anew, so a few tries ride it out. Once made, the
//! client re-makes a consumer it lost by itself (and retries that).

use anyhow::Result;
use async_nats::jetstream::consumer::pull;
use async_nats::jetstream::stream::{ConsumerErrorKind, Stream};

/// How many times a timed-out request is made before giving up: with a third of them placed
/// on a dead server, all of them time out about once in 6,500.
pub const TRIES: u32 = 8;

/// Makes an ordered consumer of `stream` with `config` and returns its messages.
pub async fn ordered(stream: &Stream, config: pull::OrderedConfig) -> Result<pull::Ordered> {
    let mut tries = 0;
    let consumer = loop {
        tries += 1;
        match stream.create_consumer(config.clone()).await {
            Ok(consumer) => break consumer,
            Err(e) if e.kind() == ConsumerErrorKind::TimedOut && tries < TRIES => {
                tracing::warn!(
                    stream = %stream.cached_info().config.name,
                    tries,
                    "a reader of the stream was not made in time (a server down?): asking again"
                );
            }
            Err(e) => return Err(e.into()),
        }
    };
    Ok(consumer.messages().await?)
}
