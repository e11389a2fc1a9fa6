//! Accept loop, HTTP/1 serving and the websocket handshake on the single sim port.
//!
//! Owns connection admission (at most `MAX_CONNECTIONS` open, extra ones are closed and
//! counted), the per-connection task (hyper first; after a `101 Switching Protocols` the same
//! task runs the websocket session from `ws.rs`), URL routing (`/ws`, `/ws/<names>`,
//! `/stream`, `/stream?streams=..`, USD-M `/public/...` and `/market/...`, OKX `/ws/v5/public`
//! and `/ws/v5/business`, REST paths) and the bounded join on shutdown. Response bodies are
//! built in `rest.rs` and `okx/rest.rs`.

use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::upgrade::OnUpgrade;
use hyper::{header, Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use parking_lot::Mutex;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

use super::control::valid_stream_name;
use super::profile::Profile;
use super::rest::{self, json, percent_decode, query_param, Body};
use super::ws::{self, WsParams};
use super::{bump, Shared};

/// Open TCP connections allowed at once; further ones are closed on accept.
const MAX_CONNECTIONS: usize = 1024;
/// An idle HTTP connection that sends no request head within this time is dropped.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// How long shutdown waits for connections to finish before aborting them.
const DRAIN_WAIT: Duration = Duration::from_secs(3);
/// Pause after a failed accept (e.g. out of file descriptors) to avoid a hot loop.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(10);

/// Which protocol a websocket speaks.
enum WsKind {
    /// Binance streams of the URL.
    Binance(WsParams),
    /// OKX v5, on the business socket or the public one.
    Okx { business: bool },
}

/// A websocket handshake answered with 101, waiting for hyper to release the socket.
struct PendingWs {
    upgrade: OnUpgrade,
    kind: WsKind,
}

type Slot = Arc<Mutex<Option<PendingWs>>>;

/// Accepts connections until the sim is cancelled, then drains them within a bound.
pub(crate) async fn run_accept(
    listener: TcpListener,
    shared: Arc<Shared>,
    rt: tokio::runtime::Handle,
) {
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            () = shared.cancel.cancelled() => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let Ok(permit) = permits.clone().try_acquire_owned() else {
                        bump(&shared.stats.connections_rejected);
                        drop(stream);
                        continue;
                    };
                    bump(&shared.stats.connections_accepted);
                    let _ = stream.set_nodelay(true);
                    conns.spawn_on(serve(stream, shared.clone(), permit), &rt);
                }
                Err(_) => tokio::time::sleep(ACCEPT_BACKOFF).await,
            },
        }
    }
    drop(listener);
    let drained = tokio::time::timeout(DRAIN_WAIT, async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        conns.shutdown().await;
    }
}

/// One TCP connection: HTTP requests, then possibly a websocket session.
async fn serve(stream: TcpStream, shared: Arc<Shared>, _permit: OwnedSemaphorePermit) {
    bump(&shared.stats.connections_open);
    let slot: Slot = Arc::new(Mutex::new(None));
    let svc = {
        let shared = shared.clone();
        let slot = slot.clone();
        service_fn(move |req| {
            let delay = snapshot_delay(&req, &shared);
            // built now, sent late: a slow venue answers with a book as old as the request
            let resp = route(req, &shared, &slot);
            async move {
                if let Some(d) = delay {
                    tokio::time::sleep(d).await;
                }
                Ok::<_, Infallible>(resp)
            }
        })
    };
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let conn = builder
        .serve_connection(TokioIo::new(stream), svc)
        .with_upgrades();
    tokio::pin!(conn);
    let served = tokio::select! {
        r = conn.as_mut() => r.is_ok(),
        () = shared.cancel.cancelled() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(Duration::from_secs(1), conn.as_mut()).await;
            false
        }
    };
    let pending = slot.lock().take();
    if let (true, Some(p)) = (served, pending) {
        let upgraded = tokio::select! {
            () = shared.cancel.cancelled() => None,
            r = p.upgrade => r.ok(),
        };
        match (upgraded, p.kind, &shared.okx) {
            (Some(io), WsKind::Binance(params), _) => ws::run(io, params, shared.clone()).await,
            (Some(io), WsKind::Okx { business }, Some(okx)) => {
                super::okx::ws::run(io, business, shared.clone(), okx.clone()).await;
            }
            _ => {}
        }
    }
    let _ = shared
        .stats
        .connections_open
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| v.checked_sub(1));
}

/// The injected delay of a depth / books snapshot request, if one is pending for it.
fn snapshot_delay(req: &Request<Incoming>, shared: &Shared) -> Option<Duration> {
    let path = req.uri().path();
    if !(path.ends_with("/depth") || path == "/api/v5/market/books") {
        return None;
    }
    let query = req.uri().query().unwrap_or("");
    let symbol = query_param(query, "symbol").or_else(|| query_param(query, "instId"));
    shared.faults.take_snapshot_delay(symbol.as_deref())
}

fn route(req: Request<Incoming>, shared: &Shared, slot: &Slot) -> Response<Body> {
    bump(&shared.stats.http_requests);
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let business = path == "/ws/v5/business";
    if business || path == "/ws/v5/public" {
        if shared.okx.is_none() {
            return rest::not_found();
        }
        return handshake(req, WsKind::Okx { business }, slot);
    }
    if let Some(params) = ws_params(shared.profile, &path, &query) {
        return match params {
            Ok(p) => handshake(req, WsKind::Binance(p), slot),
            Err(msg) => bad_request(msg),
        };
    }
    if req.method() != Method::GET {
        return rest::not_found();
    }
    if let Some(okx) = &shared.okx {
        if let Some(resp) = super::okx::rest::handle(&path, &query, shared, okx) {
            return resp;
        }
    }
    rest::handle(&path, &query, shared)
}

fn bad_request(msg: &'static str) -> Response<Body> {
    let mut body = String::from(r#"{"code":-1100,"msg":"#);
    super::control::push_json_str(&mut body, msg);
    body.push('}');
    json(StatusCode::BAD_REQUEST, body, None)
}

/// Route, mode and streams of a websocket URL; `None` when the path is not a websocket path.
fn ws_params(profile: Profile, path: &str, query: &str) -> Option<Result<WsParams, &'static str>> {
    let (route, path) = profile.route(path)?;
    let (combined, list) = match path {
        "/ws" | "/ws/" => (false, String::new()),
        "/stream" | "/stream/" => (true, query_param(query, "streams").unwrap_or_default()),
        _ => (false, path.strip_prefix("/ws/")?.to_string()),
    };
    let Some(list) = percent_decode(&list) else {
        return Some(Err("Invalid percent-encoding in stream names."));
    };
    let mut streams: Vec<String> = Vec::new();
    for name in list.split('/').filter(|n| !n.is_empty()) {
        if !valid_stream_name(profile, name) {
            return Some(Err("Invalid stream name."));
        }
        if !streams.iter().any(|s| s == name) {
            streams.push(name.to_string());
        }
        if streams.len() > profile.max_streams() {
            return Some(Err("Too many streams for one connection."));
        }
    }
    Some(Ok(WsParams {
        combined,
        streams,
        route,
    }))
}

fn header_has(req: &Request<Incoming>, name: header::HeaderName, token: &str) -> bool {
    req.headers().get_all(name).iter().any(|v| {
        v.to_str()
            .is_ok_and(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    })
}

/// Answers 101 and parks the upgrade for the connection task.
fn handshake(mut req: Request<Incoming>, kind: WsKind, slot: &Slot) -> Response<Body> {
    let is_upgrade = req.method() == Method::GET
        && header_has(&req, header::UPGRADE, "websocket")
        && header_has(&req, header::CONNECTION, "upgrade");
    let key = req
        .headers()
        .get(header::SEC_WEBSOCKET_KEY)
        .map(|k| derive_accept_key(k.as_bytes()));
    let version_ok = req
        .headers()
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_some_and(|v| v.as_bytes() == b"13");
    let (true, Some(accept), true) = (is_upgrade, key, version_ok) else {
        return bad_request("Websocket upgrade required.");
    };
    let upgrade = hyper::upgrade::on(&mut req);
    *slot.lock() = Some(PendingWs { upgrade, kind });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "websocket")
        .header(header::SEC_WEBSOCKET_ACCEPT, accept)
        .body(Body::default())
        .unwrap_or_else(|_| Response::new(Body::default()))
}
