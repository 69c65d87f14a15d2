//! The cluster's object reader (`dropline::cluster::objects`) against a real JetStream
//! cluster: a read whose chunk consumer cannot be created is an error the decider and the
//! workers retry, not a panic that ends the node (async-nats 0.46's `Object::poll_read`
//! unwraps that result; CI saw a decider die of it after a nats-server was killed).

mod cluster_util;
mod util;

use async_nats::jetstream::{consumer, stream};
use cluster_util::{with_js, NatsCluster};
use dropline::cluster::objects;

#[test]
fn an_object_read_that_cannot_get_a_consumer_fails_without_a_panic_and_succeeds_later() {
    let dir = tempfile::tempdir().unwrap();
    let nats = NatsCluster::start(&dir.path().join("nats"));
    with_js(&nats.url(), |js| async move {
        // The object store's own stream, made beforehand with room for one consumer only.
        js.create_stream(stream::Config {
            name: "OBJ_probe".into(),
            subjects: vec!["$O.probe.C.>".into(), "$O.probe.M.>".into()],
            max_consumers: 1,
            allow_rollup: true,
            allow_direct: true,
            discard: stream::DiscardPolicy::New,
            num_replicas: 3,
            ..Default::default()
        })
        .await
        .unwrap();
        let store = js.get_object_store("probe").await.unwrap();
        let body: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        store.put("seg-1", &mut body.as_slice()).await.unwrap();
        assert_eq!(objects::read(&js, "probe", "missing").await.unwrap(), None);

        let stream = js.get_stream("OBJ_probe").await.unwrap();
        stream
            .create_consumer(consumer::pull::Config {
                durable_name: Some("holder".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        let error = objects::read(&js, "probe", "seg-1").await.unwrap_err();
        assert!(
            format!("{error:#}").contains("cannot read the chunks of object seg-1"),
            "{error:#}"
        );

        stream.delete_consumer("holder").await.unwrap();
        let read = objects::read(&js, "probe", "seg-1").await.unwrap();
        assert_eq!(read.as_deref(), Some(body.as_slice()));
    });
}
