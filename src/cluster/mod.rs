//! Owns the scale-out mode: several dropline processes sharing one drop folder's work through
//! NATS JetStream. Off unless `cluster.url` is set; the single-node pipeline is untouched.
//!
//! # Design
//!
//! ```text
//! intake --WORK (work queue, Nats-Msg-Id = file version)--> workers (read, strip, dedup
//!   preparation, entities) --PREPARED--> one decider (ordered dedup, leader by KV lease)
//!   --OUT (<name>.out.<status>, Nats-Msg-Id = line id)--> tail, file sinks, consumers
//! ```
//!
//! - [`intake`]: the watcher and admission of the single-node mode; each ready file goes to
//!   `<NAME>_WORK` (bytes inline up to [`INLINE_MAX`], larger ones through the object store
//!   `<NAME>_files`). The done-action runs once the file's line is committed
//!   ([`settle`]); `published.jsonl` in `state.dir` remembers what was published so a restart
//!   does not publish it again.
//! - [`worker`]: a durable pull consumer on the work stream; each file runs read, strip, the
//!   index-free dedup work and entities on parallel threads and goes to `<NAME>_PREPARED`
//!   tagged with its work sequence. The work message is acked once the prepared document is
//!   stored (R3): from there the decider owns it, so a worker killed at any instant loses
//!   nothing (unacked work is redelivered) and repeats nothing (the decider takes one prepared
//!   document per work sequence).
//! - [`decider`]: one per cluster, elected through a lease in the KV bucket `<NAME>_leader`.
//!   It decides in work-sequence order (a reorder buffer over the prepared stream) with the
//!   same ordered dedup step as the single-node mode, so decisions match it for the same
//!   order. The output stream is its ledger: each line carries its dedup index entry, its work
//!   sequence and the prepared-stream floor in headers, and every publish expects the stream's
//!   last sequence to be the previous line's, so a deposed decider can never append. A new
//!   leader replays the output stream's headers to rebuild the index and resumes at the next
//!   work sequence.
//! - [`lease`]: the decider lease itself: taken, renewed and released with writes that expect
//!   the bucket stream's last sequence (the servers' per-key check lets several concurrent
//!   `create`s win), believed only until shortly before the servers would let it expire.
//! - [`sole`]: the intake lease, `<NAME>_intake`: one intake per cluster; a second is refused
//!   at start, and an intake that lost its lease to another node stops publishing.
//! - [`output`]: the optional local file sink: follows the output stream; line N of the file
//!   is stream sequence N, so a restart continues after the last complete line (exactly once).
//! - `nodes`: each node's heartbeat in the nodes bucket, which `cluster status` lists.
//! - [`status`]: `dropline cluster status` and `dropline cluster tail`.
//! - [`reset`]: a stream or bucket deleted under a running node: reported once, made again
//!   ([`Cluster::ensure`]), the work and prepared streams continuing their sequences; a lost
//!   output stream is refused with what to do.
//! - [`gap`]: a work sequence lost with its stream is declared lost by the decider (a marker
//!   on `<name>.out.lost`) after `cluster.lost_after`; [`republish`]: the intake publishes
//!   that file again, and alone opens a work stream made anew, past every sequence it gave.
//! - [`append`]: the decider's pipelined, fenced appends to the output stream.
//! - [`ordered`]: the ordered consumers that read a stream from a sequence, asked for again
//!   when a request times out (older servers may place one on a server that is down).

pub mod append;
pub mod checkpoint;
pub mod config;
pub mod decide;
pub mod decider;
pub mod gap;
pub mod intake;
pub mod lease;
pub mod line;
mod nodes;
pub mod objects;
pub mod ordered;
pub mod output;
pub mod records;
pub mod republish;
pub mod reset;
pub mod settle;
pub mod sole;
pub mod status;
mod throttle;
pub mod wire;
pub mod worker;

pub use config::{ClusterConfig, Role};
use nodes::{heartbeat, host_name, NODE_TTL};
pub use nodes::{node_id, NodeInfo};

use crate::config::{Config, OutputKind};
use anyhow::{Context, Result};
use async_nats::jetstream::{self, kv, object_store, stream};
use std::future::Future;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

/// Files up to this size travel inside the work message; larger ones through the object store.
pub const INLINE_MAX: usize = 512 * 1024;
/// Replicas asked for every stream and bucket; fewer when the cluster has fewer servers.
const REPLICAS: usize = 3;
/// How long the work and output streams drop a re-published message id.
pub(crate) const DUPLICATE_WINDOW: Duration = Duration::from_secs(600);
/// How long a decider lease lasts without renewal.
pub const LEASE_TTL: Duration = Duration::from_secs(4);

/// The names of one cluster's streams, buckets and subjects.
#[derive(Debug, Clone)]
pub struct Names {
    pub work: String,
    pub work_subject: String,
    pub prepared: String,
    pub prepared_subject: String,
    pub out: String,
    /// `<name>.out`; lines go to `<name>.out.<status>`.
    pub out_prefix: String,
    pub leader: String,
    /// The intake lease's bucket ([`sole`]).
    pub intake: String,
    pub nodes: String,
    pub files: String,
    pub checkpoint: String,
}

impl Names {
    pub fn of(c: &ClusterConfig) -> Self {
        let p = c.stream_prefix();
        let n = &c.name;
        Self {
            work: format!("{p}_WORK"),
            work_subject: format!("{n}.work"),
            prepared: format!("{p}_PREPARED"),
            prepared_subject: format!("{n}.prepared"),
            out: format!("{p}_OUT"),
            out_prefix: format!("{n}.out"),
            leader: format!("{p}_leader"),
            intake: format!("{p}_intake"),
            nodes: format!("{p}_nodes"),
            files: format!("{p}_files"),
            checkpoint: format!("{p}_checkpoint"),
        }
    }
}

/// A connection to the cluster with its streams and buckets in place.
#[derive(Clone)]
pub struct Cluster {
    pub js: jetstream::Context,
    pub names: Names,
    pub replicas: usize,
    /// The work sequence a work stream made anew starts at, past every one this process's
    /// intake was given; 0 where no intake runs, which then leaves such a stream to it.
    pub work_floor: Arc<AtomicU64>,
}

/// Connects to the servers of `c` (retrying while none answers).
pub async fn connect(c: &ClusterConfig) -> Result<async_nats::Client> {
    let mut opts = async_nats::ConnectOptions::new()
        .name(format!("dropline-{}", std::process::id()))
        .retry_on_initial_connect()
        .max_reconnects(None);
    if let Some(path) = &c.credentials {
        opts = opts
            .credentials_file(path)
            .await
            .with_context(|| format!("cannot read cluster.credentials {}", path.display()))?;
    }
    let urls = c.urls();
    opts.connect(urls.as_slice())
        .await
        .with_context(|| format!("cannot connect to {}", c.url))
}

impl Cluster {
    /// Connects and creates what is missing: streams, the lease and nodes buckets, the object
    /// store. Replicas are [`REPLICAS`], or one when the servers cannot place three.
    pub async fn open(c: &ClusterConfig) -> Result<Cluster> {
        let client = connect(c).await?;
        let js = jetstream::new(client);
        let names = Names::of(c);
        let mut cluster = Cluster {
            js,
            names,
            replicas: REPLICAS,
            work_floor: Arc::default(),
        };
        // A cluster that is still electing its JetStream leader refuses for a while: retry.
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            match cluster.ensure().await {
                Ok(()) => return Ok(cluster),
                Err(error) => {
                    let text = format!("{error:#}");
                    // A cluster too small for 3 says "insufficient resources"; a single
                    // server without clustering refuses any replicas above 1.
                    let too_few = text.contains("insufficient resources")
                        || text.contains("replicas > 1 not supported");
                    if too_few && cluster.replicas > 1 {
                        tracing::warn!(error = %text, "the servers cannot place 3 replicas, using 1");
                        cluster.replicas = 1;
                    } else if std::time::Instant::now() > deadline {
                        return Err(error);
                    } else {
                        tracing::info!(error = %text, "waiting for JetStream");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                }
            }
        }
    }

    /// Creates what is missing. A work or prepared stream made anew continues the lost one's
    /// sequence ([`reset::continue_sequences`]); a new cluster's start at 1.
    pub async fn ensure(&self) -> Result<()> {
        let n = &self.names;
        let r = self.replicas;
        let work = stream::Config {
            name: n.work.clone(),
            subjects: vec![n.work_subject.clone()],
            retention: stream::RetentionPolicy::WorkQueue,
            num_replicas: r,
            duplicate_window: DUPLICATE_WINDOW,
            ..Default::default()
        };
        let prepared = stream::Config {
            name: n.prepared.clone(),
            subjects: vec![n.prepared_subject.clone()],
            num_replicas: r,
            duplicate_window: Duration::from_secs(120),
            ..Default::default()
        };
        let work_missing = reset::stream_missing(&self.js, &n.work).await == Some(true);
        let prepared_missing = reset::stream_missing(&self.js, &n.prepared).await == Some(true);
        if !work_missing && reset::stream_missing(&self.js, &n.out).await == Some(true) {
            reset::refuse_lost_output(self).await?;
        }
        self.js
            .get_or_create_stream(stream::Config {
                name: n.out.clone(),
                subjects: vec![format!("{}.>", n.out_prefix)],
                num_replicas: r,
                duplicate_window: DUPLICATE_WINDOW,
                ..Default::default()
            })
            .await
            .with_context(|| format!("cannot create stream {}", n.out))?;
        // A missing stream is made on a subject nobody publishes to until its sequence is
        // moved on, so no file lands below the new start.
        let making = |c: &stream::Config| stream::Config {
            subjects: vec![format!("{}.making", c.subjects[0])],
            ..c.clone()
        };
        let mut remade = [work_missing, prepared_missing];
        for (missing, config) in remade.iter_mut().zip([&work, &prepared]) {
            let name = config.name.clone();
            let made = self
                .js
                .get_or_create_stream(if *missing {
                    making(config)
                } else {
                    config.clone()
                })
                .await
                .with_context(|| format!("cannot create stream {name}"))?;
            // Still on its private subject: a remake cut short (a timeout, the node stopped)
            // before the stream was opened again; finish it.
            *missing |= made.cached_info().config.subjects != config.subjects;
        }
        let [work_missing, prepared_missing] = remade;
        // Only the intake, the one publisher of work, knows the work sequences given before.
        let work_missing = work_missing && reset::may_open_work(self);
        if work_missing || prepared_missing {
            reset::continue_sequences(self, work_missing, prepared_missing).await?;
            for (missing, config) in [(work_missing, work), (prepared_missing, prepared)] {
                if missing {
                    let name = config.name.clone();
                    self.js
                        .update_stream(config)
                        .await
                        .with_context(|| format!("cannot open stream {name} again"))?;
                }
            }
        }
        self.kv(&n.leader, LEASE_TTL).await?;
        self.kv(&n.nodes, NODE_TTL).await?;
        self.files().await?;
        Ok(())
    }

    /// Returns the object store of large files, creating it when it is missing.
    pub async fn files(&self) -> Result<object_store::ObjectStore> {
        self.object_store(&self.names.files).await
    }

    /// Returns object store `name`, creating it (with the cluster's replicas) when missing.
    pub async fn object_store(&self, name: &str) -> Result<object_store::ObjectStore> {
        if let Ok(store) = self.js.get_object_store(name).await {
            return Ok(store);
        }
        self.js
            .create_object_store(object_store::Config {
                bucket: name.to_string(),
                num_replicas: self.replicas,
                ..Default::default()
            })
            .await
            .with_context(|| format!("cannot create object store {name}"))
    }

    /// Returns the KV bucket `name`, creating it with entries that live `ttl`.
    ///
    /// The bucket's stream is created here with the settings `async-nats` gives KV streams:
    /// its own `create_key_value` first reads the account info, whose 2.9 form it cannot parse.
    pub async fn kv(&self, name: &str, ttl: Duration) -> Result<kv::Store> {
        if let Ok(store) = self.js.get_key_value(name).await {
            return Ok(store);
        }
        self.js
            .get_or_create_stream(stream::Config {
                name: format!("KV_{name}"),
                subjects: vec![format!("$KV.{name}.>")],
                max_messages_per_subject: 1,
                max_age: ttl,
                allow_rollup: true,
                deny_delete: true,
                allow_direct: true,
                discard: stream::DiscardPolicy::New,
                num_replicas: self.replicas,
                ..Default::default()
            })
            .await
            .with_context(|| format!("cannot create KV bucket {name}"))?;
        self.js
            .get_key_value(name)
            .await
            .with_context(|| format!("cannot open KV bucket {name}"))
    }
}

/// Runs this node's roles until `shutdown` resolves: the cluster counterpart of the daemon.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let c = &config.cluster;
    let _lock = config
        .state
        .dir
        .as_deref()
        .map(crate::lock::StateLock::acquire)
        .transpose()?;
    let cluster = Cluster::open(c).await?;
    tracing::info!(url = %c.url, role = c.role.as_str(), name = %c.name, replicas = cluster.replicas, "joined the cluster");
    // The one intake of the cluster holds its lease before it publishes anything.
    let sole = match c.role.intakes() {
        true => Some(Arc::new(sole::IntakeLease::take(&cluster, &config).await?)),
        false => None,
    };
    let beat = tokio::spawn(heartbeat(cluster.clone(), c.role));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let mut tasks = tokio::task::JoinSet::new();
    if let Some(lease) = &sole {
        let (cl, cfg, stop, l) = (
            cluster.clone(),
            config.clone(),
            stop_rx.clone(),
            lease.clone(),
        );
        tasks.spawn(async move { intake::run(cl, cfg, l, stopped(stop)).await });
    }
    if c.role.works() {
        let (cl, cfg, stop) = (cluster.clone(), config.clone(), stop_rx.clone());
        tasks.spawn(async move { worker::run(cl, cfg, stop).await });
        let (cl, cfg, stop) = (cluster.clone(), config.clone(), stop_rx.clone());
        tasks.spawn(async move { decider::run(cl, cfg, stop).await });
    }
    if config.output.kind == OutputKind::File {
        let sink = output::FileSink {
            path: config
                .output
                .path
                .clone()
                .context("output.path is required")?,
            state_dir: config.state.dir.clone(),
            on_duplicate: config.dedup.on_duplicate,
        };
        let (cl, stop) = (cluster.clone(), stop_rx.clone());
        tasks.spawn(async move { output::run(cl, sink, stop).await });
    }
    let mut result = Ok(());
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                result = Err(e);
                tasks.abort_all();
            }
            Err(e) if e.is_cancelled() => {}
            Err(e) => {
                result = Err(anyhow::anyhow!("cluster task ended abnormally: {e}"));
                tasks.abort_all();
            }
        }
    }
    beat.abort();
    if let Some(lease) = sole {
        lease.release().await;
    }
    cluster.js.client().flush().await.ok();
    result
}

/// Resolves once `stop` turns true.
pub async fn stopped(mut stop: tokio::sync::watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Runs the cluster node of `config` until SIGINT/SIGTERM (the cluster's `dropline run`).
pub fn run_daemon(config: Config) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = rt.block_on(async {
        crate::status::start(&config.metrics).await?;
        run(config, signal()).await
    });
    rt.shutdown_timeout(Duration::from_secs(1));
    result
}

/// Resolves on the first SIGINT or SIGTERM.
async fn signal() {
    crate::signals::wait_for_signal().await;
    tracing::info!("shutting down: no new files, finishing the files taken");
}

/// Runs `dropline cluster status` or `tail` on a runtime of their own.
pub fn run_command(config: &ClusterConfig, command: Command) -> Result<()> {
    if !config.enabled() {
        anyhow::bail!("cluster.url is empty: set it in the config or with --set cluster.url=...");
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        match command {
            Command::Status => {
                print!("{}", status::status(config).await?);
                Ok(())
            }
            Command::Tail { once } => status::tail(config, once).await,
        }
    })
}

/// The `dropline cluster` commands.
#[derive(Debug, Clone, Copy)]
pub enum Command {
    Status,
    Tail { once: bool },
}
