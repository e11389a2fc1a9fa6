//! The metrics and health HTTP server (hyper, inside the tokio runtime): `/metrics`,
//! `/health`, `/ready`. Bounded: at most `MAX_CONNECTIONS` at once (extra ones are closed at
//! accept), a deadline per connection, and graceful shutdown on cancellation.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::hist::StageLatency;
use super::{all_books_live, render, FeedShared, SinkCounters};
use crate::pipeline::bus::EventBus;

/// Concurrent connections served; more are refused at accept. High enough that idle or slow
/// clients cannot starve a scraper; each costs a task and a socket (a few KiB).
pub const MAX_CONNECTIONS: usize = 4096;
/// Longest a connection may live (slow clients cannot hold a slot).
pub const CONNECTION_DEADLINE: Duration = Duration::from_secs(10);

/// What the server reads.
#[derive(Debug, Clone)]
pub struct MetricsSource {
    /// Feeds.
    pub feeds: Arc<parking_lot::RwLock<Vec<Arc<FeedShared>>>>,
    /// The bus.
    pub bus: Arc<EventBus>,
    /// Stage latency histograms.
    pub stages: Arc<StageLatency>,
    /// Rows and errors reported by the Python sinks.
    pub sinks: Arc<SinkCounters>,
    /// JetStream sink counters (`bus_*`), when a sink runs.
    pub js_sink: Option<Arc<crate::pipeline::nats::sink::SinkCounters>>,
    /// JetStream source counters (`bus_*`), when a source runs.
    pub js_source: Option<Arc<crate::pipeline::nats::source::SourceCounters>>,
    /// Symbols rebuilt from a JetStream source (their books count for `/ready` and
    /// `xtrader_book_state`).
    pub bus_symbols: Option<Arc<parking_lot::RwLock<Vec<Arc<crate::model::SymbolMeta>>>>>,
}

fn respond(src: &MetricsSource, path: &str) -> Response<Full<Bytes>> {
    let feeds = src.feeds.read().clone();
    let (status, ctype, body) = match path {
        "/metrics" => (
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            render(&feeds, src),
        ),
        "/health" => (StatusCode::OK, "text/plain", "ok\n".to_string()),
        "/ready" => {
            if all_books_live(&feeds, src) {
                (StatusCode::OK, "text/plain", "ready\n".to_string())
            } else {
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "text/plain",
                    "not ready\n".to_string(),
                )
            }
        }
        _ => (
            StatusCode::NOT_FOUND,
            "text/plain",
            "not found\n".to_string(),
        ),
    };
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    if let Ok(v) = hyper::header::HeaderValue::from_str(ctype) {
        resp.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    resp
}

/// Bind `addr` and serve until `cancel` fires; returns the bound address.
///
/// # Errors
/// The bind error.
pub async fn serve(
    addr: &str,
    src: MetricsSource,
    cancel: CancellationToken,
) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    tokio::runtime::Handle::current().spawn(async move {
        loop {
            let accepted = tokio::select! {
                () = cancel.cancelled() => break,
                a = listener.accept() => a,
            };
            let Ok((stream, _)) = accepted else {
                // accept errors (EMFILE...) are transient: back off briefly
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            };
            let Ok(permit) = slots.clone().try_acquire_owned() else {
                drop(stream); // over the bound: refuse
                continue;
            };
            let src = src.clone();
            let cancel = cancel.clone();
            tokio::runtime::Handle::current().spawn(async move {
                let svc = service_fn(move |req: Request<hyper::body::Incoming>| {
                    let r = respond(&src, req.uri().path());
                    async move { Ok::<_, Infallible>(r) }
                });
                let conn = http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(Duration::from_secs(2))
                    .serve_connection(TokioIo::new(stream), svc);
                tokio::select! {
                    _ = tokio::time::timeout(CONNECTION_DEADLINE, conn) => {}
                    () = cancel.cancelled() => {}
                }
                drop(permit);
            });
        }
    });
    Ok(local)
}
