//! Owns the one HTTP listener (`metrics.listen`): `/metrics`, `/health/live`, `/health/ready`,
//! `/` (the status page) and `/api/status`. hyper 1, HTTP/1.1 only, GET only.
//!
//! Connections are bounded: at most `MAX_CONNECTIONS` are served at once, one accepted past
//! that is closed at once (so idle clients can never run the daemon out of descriptors, and the
//! accept queue never holds a scrape behind them), and a connection that sends no request head
//! within `HEADER_TIMEOUT` (idle keep-alive included) is closed.

use super::live;
use crate::config::MetricsConfig;
use anyhow::Context;
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use metrics_exporter_prometheus::PrometheusHandle;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// Connections served at once.
const MAX_CONNECTIONS: usize = 128;
/// Longest wait for a request head, including between requests on a kept-alive connection.
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the recorder's histograms are drained when nobody scrapes.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// The status page, embedded in the binary.
const PAGE: &str = include_str!("page.html");

/// Starts what a daemon exposes: the recorder and the listener when `metrics.enabled`, and the
/// systemd watchdog pings when `WATCHDOG_USEC` is set. Must run inside the tokio runtime.
pub async fn start(config: &MetricsConfig) -> anyhow::Result<()> {
    spawn_watchdog();
    if !config.enabled {
        return Ok(());
    }
    let handle = crate::telemetry::install_recorder()?;
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot serve metrics on {}", config.listen))?;
    tracing::info!(listen = %config.listen, "serving metrics, health and status page");
    tokio::spawn(serve(listener, handle));
    Ok(())
}

/// Serves the listener forever.
pub async fn serve(listener: TcpListener, handle: PrometheusHandle) {
    let app = Arc::new(App {
        handle,
        process: metrics_process::Collector::default(),
    });
    app.process.describe();
    let upkeep = app.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(UPKEEP_EVERY).await;
            upkeep.handle.run_upkeep();
        }
    });
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                // Out of descriptors, typically: back off rather than spin.
                tracing::warn!(%error, "cannot accept a metrics connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::debug!("too many metrics connections, closing a new one");
            drop(stream);
            continue;
        };
        let app = app.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let app = app.clone();
                async move { Ok::<_, Infallible>(app.route(&req)) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            if let Err(error) = conn.await {
                tracing::debug!(%error, "metrics connection ended");
            }
            drop(slot);
        });
    }
}

struct App {
    handle: PrometheusHandle,
    process: metrics_process::Collector,
}

impl App {
    fn route<B>(&self, req: &Request<B>) -> Response<Full<Bytes>> {
        if req.method() != Method::GET && req.method() != Method::HEAD {
            return text(StatusCode::METHOD_NOT_ALLOWED, "GET only\n");
        }
        match req.uri().path() {
            "/metrics" => {
                self.process.collect();
                respond(
                    StatusCode::OK,
                    "text/plain; version=0.0.4; charset=utf-8",
                    self.handle.render(),
                )
            }
            "/health/live" => text(StatusCode::OK, "live\n"),
            "/health/ready" if live().is_ready() => text(StatusCode::OK, "ready\n"),
            "/health/ready" => text(
                StatusCode::SERVICE_UNAVAILABLE,
                "not ready: recovering the ledger or starting the watcher\n",
            ),
            "/api/status" => respond(
                StatusCode::OK,
                "application/json",
                live().snapshot().to_string(),
            ),
            "/" | "/index.html" => respond(StatusCode::OK, "text/html; charset=utf-8", PAGE),
            _ => text(StatusCode::NOT_FOUND, "not found\n"),
        }
    }
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    respond(status, "text/plain; charset=utf-8", body)
}

fn respond(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut res = Response::new(Full::new(body.into()));
    *res.status_mut() = status;
    res.headers_mut()
        .insert(CONTENT_TYPE, content_type.parse().expect("static header"));
    res.headers_mut()
        .insert(CACHE_CONTROL, "no-store".parse().expect("static header"));
    res
}

/// Pings systemd's watchdog at half its period while the runtime runs; a no-op without
/// `WATCHDOG_USEC`. A stuck reactor stops the pings and systemd restarts the daemon.
fn spawn_watchdog() {
    let mut usec = 0;
    if !sd_notify::watchdog_enabled(false, &mut usec) || usec == 0 {
        return;
    }
    let every = Duration::from_micros(usec) / 2;
    tracing::info!(
        every_ms = every.as_millis() as u64,
        "pinging the systemd watchdog"
    );
    tokio::spawn(async move {
        loop {
            if let Err(error) = sd_notify::notify(false, &[sd_notify::NotifyState::Watchdog]) {
                tracing::warn!(%error, "cannot ping the systemd watchdog");
            }
            tokio::time::sleep(every).await;
        }
    });
}
