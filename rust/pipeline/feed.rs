//! Feeds and their connection tasks. A feed loads instrument metadata into a bounded cache,
//! interns its symbols once, asks the venue's connector how to spread them over sockets, and
//! runs one task per socket: read, stamp `ts_recv`, parse, normalize, apply to the book,
//! publish. A socket task also fetches the snapshots its processor asks for (with retries),
//! sends keepalives, detects silence and reconnects with backoff, resubscribing and resyncing
//! its books.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use parking_lot::RwLock;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use crate::exchanges::binance::TradeStream;
use crate::exchanges::{
    connector_for, Action, Channels, ExchangeConnector, ExchangeProcessor, Keepalive, SocketPlan,
};
use crate::metrics::FeedShared;
use crate::model::{
    Event, InstrumentCache, OrderBook, SharedInstruments, Status, StatusKind, StatusReason,
    SymbolMeta, Venue,
};
use crate::net::{backoff, get, now_ns};
use crate::pipeline::bus::EventBus;

/// Instruments kept per feed; more are evicted least-recently-used and counted.
pub const INSTRUMENT_CACHE_CAPACITY: usize = 8192;

/// What one feed subscribes to and where.
#[derive(Debug, Clone)]
pub struct FeedSpec {
    /// Venue.
    pub venue: Venue,
    /// Symbols as configured (native or normalized).
    pub symbols: Vec<String>,
    /// Channels.
    pub channels: Channels,
    /// Websocket base URL override.
    pub ws_url: Option<String>,
    /// REST base URL override.
    pub rest_url: Option<String>,
    /// Depth snapshot levels.
    pub depth_limit: u32,
    /// Trade stream flavour.
    pub trade_stream: TradeStream,
    /// Venue wire channels chosen instead of the defaults (OKX: `books5`, `trades-all`...).
    pub venue_channels: Vec<String>,
    /// Reconnect when nothing (not even a ping) arrives for this long.
    pub stale_after: Duration,
}

fn status(venue: Venue, kind: StatusKind, reason: StatusReason) -> Event {
    Event::Status(Status {
        venue,
        sym: None,
        kind,
        reason,
        state: None,
        ts: now_ns(),
    })
}

/// Fetch instrument metadata into a bounded cache, retrying with backoff until a URL answers
/// (or, for venues that list each instrument type apart, every URL answers) or `cancel` fires.
async fn load_instruments(
    conn: &dyn ExchangeConnector,
    natives: &[String],
    http: &reqwest::Client,
    bus: &EventBus,
    cancel: &CancellationToken,
) -> Option<InstrumentCache> {
    let mut attempt = 0u32;
    let merge = conn.instruments_merge();
    loop {
        let mut list = Vec::new();
        let urls = conn.instruments_urls(natives);
        // URLs settled this round: answered, or (merging) refused for good
        let mut answered = 0usize;
        for url in &urls {
            let reply = get(http, url).await;
            let parsed = (reply.status == 200)
                .then(|| conn.parse_instruments(&reply.body).ok())
                .flatten();
            if let Some(part) = parsed {
                list.extend(part);
                answered += 1;
                if merge {
                    continue;
                }
                break;
            }
            let retry = reply.status == 0 || reply.status >= 500;
            if retry || merge {
                let mut ev = vec![status(
                    conn.venue(),
                    StatusKind::Error,
                    StatusReason::InstrumentsFailed {
                        http_status: reply.status,
                    },
                )];
                bus.publish(&mut ev).await;
            }
            if retry {
                break;
            }
            // refused for good (4xx, an unreadable body): asking again will not help; merging
            // goes on without this list, the others try their next URL
            if merge {
                answered += 1;
            }
        }
        if answered > 0 && (!merge || answered == urls.len()) {
            let mut cache = InstrumentCache::new(INSTRUMENT_CACHE_CAPACITY);
            // subscribed symbols last, so the bound never evicts them
            let (mine, rest): (Vec<_>, Vec<_>) =
                list.into_iter().partition(|i| natives.contains(&i.native));
            for inst in rest.into_iter().chain(mine) {
                cache.insert(inst);
            }
            return Some(cache);
        }
        attempt += 1;
        tokio::select! {
            () = cancel.cancelled() => return None,
            () = tokio::time::sleep(backoff(attempt)) => {}
        }
    }
}

/// Run a feed until `cancel` fires.
pub async fn run_feed(
    spec: FeedSpec,
    shared: Arc<FeedShared>,
    bus: Arc<EventBus>,
    http: reqwest::Client,
    cancel: CancellationToken,
) {
    let Some(conn) = connector_for(&spec) else {
        let mut ev = vec![status(
            spec.venue,
            StatusKind::Error,
            StatusReason::UnknownEvent {
                name: spec.venue.id().into(),
            },
        )];
        bus.publish(&mut ev).await;
        return;
    };
    let conn: Arc<dyn ExchangeConnector> = Arc::from(conn);
    let mut natives: Vec<String> = Vec::new();
    let mut configured: Vec<&str> = Vec::new();
    for s in &spec.symbols {
        let n = conn.to_native(s);
        if !natives.contains(&n) {
            natives.push(n);
            configured.push(s);
        }
    }
    let Some(mut cache) = load_instruments(conn.as_ref(), &natives, &http, &bus, &cancel).await
    else {
        return;
    };
    let mut metas: Vec<Arc<SymbolMeta>> = Vec::new();
    let mut events = Vec::new();
    for (symbol, native) in configured.iter().zip(&natives) {
        match cache.get(native) {
            Some(inst) => {
                let book = spec
                    .channels
                    .book
                    .then(|| Arc::new(RwLock::new(OrderBook::new())));
                metas.push(SymbolMeta::with_instrument(spec.venue, inst, book));
            }
            None => events.push(status(
                spec.venue,
                StatusKind::Error,
                StatusReason::UnknownSymbol {
                    symbol: (*symbol).into(),
                },
            )),
        }
    }
    shared
        .instruments
        .store(cache.len() as u64, Ordering::Relaxed);
    shared
        .instrument_evictions
        .store(cache.evictions(), Ordering::Relaxed);
    bus.publish(&mut events).await;
    if metas.is_empty() {
        return;
    }
    let cache: SharedInstruments = Arc::new(parking_lot::Mutex::new(cache));
    *shared.symbols.write() = metas.clone();
    let plans = conn.plan(&metas, spec.channels);
    shared.set_sockets(plans.len());
    let mut sockets = JoinSet::new();
    for (id, plan) in plans.into_iter().enumerate() {
        let task = run_socket(
            id,
            spec.clone(),
            conn.clone(),
            plan,
            Sockets {
                shared: shared.clone(),
                bus: bus.clone(),
                http: http.clone(),
                cache: cache.clone(),
            },
            cancel.clone(),
        );
        sockets.spawn_on(task, &tokio::runtime::Handle::current());
    }
    while sockets.join_next().await.is_some() {}
}

/// What every socket task of a feed shares.
#[derive(Clone)]
struct Sockets {
    shared: Arc<FeedShared>,
    bus: Arc<EventBus>,
    http: reqwest::Client,
    cache: SharedInstruments,
}

/// One socket, reconnected until `cancel` fires.
async fn run_socket(
    id: usize,
    spec: FeedSpec,
    conn: Arc<dyn ExchangeConnector>,
    plan: SocketPlan,
    ctx: Sockets,
    cancel: CancellationToken,
) {
    let (shared, bus) = (ctx.shared.clone(), ctx.bus.clone());
    let mut proc = conn.processor(&plan);
    proc.attach_instruments(ctx.cache.clone());
    let mut attempt = 0u32;
    let mut connected_before = false;
    while !cancel.is_cancelled() {
        let outcome = run_connection(
            &spec,
            conn.as_ref(),
            &plan,
            proc.as_mut(),
            (id, connected_before),
            &ctx,
            &cancel,
        )
        .await;
        connected_before |= outcome.is_ok();
        shared.set_counters(id, proc.counters());
        let mut out = Vec::new();
        if cancel.is_cancelled() {
            // a deliberate stop: books keep their last state, one status says why
            out.push(status(
                spec.venue,
                StatusKind::Disconnected,
                StatusReason::Stopped,
            ));
            bus.publish(&mut out).await;
            break;
        }
        proc.on_disconnect(now_ns(), &mut out);
        match outcome {
            Ok(reason) => {
                out.push(status(spec.venue, StatusKind::Disconnected, reason));
                attempt = 0;
            }
            Err(()) => attempt += 1,
        }
        bus.publish(&mut out).await;
        if cancel.is_cancelled() {
            break;
        }
        let wait = backoff(attempt);
        if attempt > 0 {
            let retry_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
            let mut ev = vec![status(
                spec.venue,
                StatusKind::Disconnected,
                StatusReason::ConnectFailed { attempt, retry_ms },
            )];
            bus.publish(&mut ev).await;
        }
        tokio::select! {
            () = cancel.cancelled() => break,
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// One socket's life. `Ok(reason)` after it was up and then closed; `Err` if connecting failed.
async fn run_connection(
    spec: &FeedSpec,
    conn: &dyn ExchangeConnector,
    plan: &SocketPlan,
    proc: &mut dyn ExchangeProcessor,
    (id, reconnect): (usize, bool),
    ctx: &Sockets,
    cancel: &CancellationToken,
) -> Result<StatusReason, ()> {
    let (shared, bus) = (&*ctx.shared, &*ctx.bus);
    let connect = tokio::time::timeout(
        Duration::from_secs(10),
        tokio_tungstenite::connect_async(plan.url.as_str()),
    );
    let mut ws = match connect.await {
        Ok(Ok((ws, _))) => ws,
        _ => return Err(()),
    };
    shared.connected.fetch_add(1, Ordering::Relaxed);
    if reconnect {
        // a connection replacing a lost one is up
        shared.reconnects.fetch_add(1, Ordering::Relaxed);
    }
    let mut out = vec![status(
        spec.venue,
        StatusKind::Connected,
        StatusReason::None,
    )];
    bus.publish(&mut out).await;
    let reason = serve_socket(spec, conn, plan, proc, id, ctx, cancel, &mut ws, &mut out).await;
    shared.connected.fetch_sub(1, Ordering::Relaxed);
    if !out.is_empty() {
        bus.publish(&mut out).await;
    }
    Ok(reason)
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A REST request a socket task makes for its processor.
#[derive(Debug)]
enum RestJob {
    /// Depth snapshot of the symbol at this index.
    Snapshot(usize),
    /// Reference data of one instrument met in the stream.
    Instrument(Box<str>),
}

/// REST answers in flight per socket beyond one per symbol (instrument lookups, retries).
const REST_QUEUE_SLACK: usize = 64;

#[allow(clippy::too_many_arguments, clippy::too_many_lines)]
async fn serve_socket(
    spec: &FeedSpec,
    conn: &dyn ExchangeConnector,
    plan: &SocketPlan,
    proc: &mut dyn ExchangeProcessor,
    id: usize,
    ctx: &Sockets,
    cancel: &CancellationToken,
    ws: &mut Ws,
    out: &mut Vec<Event>,
) -> StatusReason {
    let (shared, bus) = (&*ctx.shared, &*ctx.bus);
    // pace subscribe frames under the venue's per-connection message rate
    let gap = Duration::from_millis(1000 / u64::from(conn.max_client_msgs_per_s().max(1)) + 10);
    for (i, frame) in conn.subscribe_frames(plan, 1).into_iter().enumerate() {
        if i > 0 {
            tokio::time::sleep(gap).await;
        }
        if ws.send(Message::text(frame)).await.is_err() {
            return StatusReason::Closed { code: 0 };
        }
    }

    let (tx, mut rx) =
        mpsc::channel::<(RestJob, u16, String)>(proc.symbols().len() + REST_QUEUE_SLACK);
    let mut fetches: JoinSet<()> = JoinSet::new();
    let mut attempts: HashMap<usize, u32> = HashMap::new();
    let mut actions = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let mut last_rx = Instant::now();
    let mut keepalive_sent = false;
    let urls: Vec<String> = proc
        .symbols()
        .iter()
        .map(|m| conn.snapshot_url(&m.native))
        .collect();
    let spawn_fetch = |fetches: &mut JoinSet<()>, job: RestJob, delay: Duration| {
        let url = match &job {
            RestJob::Snapshot(idx) => urls.get(*idx).cloned(),
            RestJob::Instrument(native) => conn.instrument_url(native),
        };
        let Some(url) = url else {
            return;
        };
        let http = ctx.http.clone();
        let tx = tx.clone();
        if matches!(job, RestJob::Snapshot(_)) {
            shared.snapshot_requests.fetch_add(1, Ordering::Relaxed);
        }
        fetches.spawn(async move {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            let r = get(&http, &url).await;
            let _ = tx.send((job, r.status, r.body)).await;
        });
    };

    let reason = loop {
        let mut closing = None;
        tokio::select! {
            () = cancel.cancelled() => {
                let _ = tokio::time::timeout(Duration::from_millis(500), ws.close(None)).await;
                break StatusReason::Closed { code: 1000 };
            }
            msg = ws.next() => {
                last_rx = Instant::now();
                keepalive_sent = false;
                let ts_recv = now_ns();
                match msg {
                    Some(Ok(Message::Text(t))) => proc.on_frame(t.as_str(), ts_recv, out, &mut actions),
                    Some(Ok(Message::Binary(b))) => match std::str::from_utf8(&b) {
                        Ok(t) => proc.on_frame(t, ts_recv, out, &mut actions),
                        // not UTF-8: hand over the valid prefix so the processor reports it
                        Err(e) => {
                            let valid = b.get(..e.valid_up_to()).unwrap_or_default();
                            proc.on_frame(&String::from_utf8_lossy(valid), ts_recv, out, &mut actions);
                        }
                    },
                    // tungstenite queues the pong itself and flushes it with the next read
                    Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                    Some(Ok(Message::Close(frame))) => {
                        break StatusReason::Closed { code: frame.map_or(0, |f| u16::from(f.code)) };
                    }
                    Some(Err(_)) | None => break StatusReason::Closed { code: 0 },
                }
            }
            Some((job, http_status, body)) = rx.recv() => {
                let ts = now_ns();
                match job {
                    RestJob::Snapshot(idx) if http_status == 200 => {
                        attempts.remove(&idx);
                        proc.on_snapshot(idx, &body, ts, out, &mut actions);
                    }
                    RestJob::Snapshot(idx) => {
                        let n = attempts.entry(idx).or_insert(0);
                        *n += 1;
                        proc.on_snapshot_failed(idx, http_status, *n, ts, out);
                        let delay = backoff(*n);
                        spawn_fetch(&mut fetches, RestJob::Snapshot(idx), delay);
                    }
                    RestJob::Instrument(native) => {
                        proc.on_instrument(&native, http_status, &body, ts, out);
                        let cache = ctx.cache.lock();
                        shared.instruments.store(cache.len() as u64, Ordering::Relaxed);
                        shared.instrument_evictions.store(cache.evictions(), Ordering::Relaxed);
                    }
                }
            }
            _ = tick.tick() => {
                shared.set_counters(id, proc.counters());
                let silent = last_rx.elapsed();
                if silent > spec.stale_after {
                    let ms = u64::try_from(silent.as_millis()).unwrap_or(u64::MAX);
                    break StatusReason::Silent { ms };
                }
                if let Keepalive::IdleText { after, frame } = conn.keepalive() {
                    if silent > after && !keepalive_sent {
                        keepalive_sent = true;
                        if ws.send(Message::text(frame)).await.is_err() {
                            break StatusReason::Closed { code: 0 };
                        }
                    }
                }
                while fetches.try_join_next().is_some() {}
            }
        }
        for a in actions.drain(..) {
            match a {
                Action::FetchSnapshot(idx) => {
                    spawn_fetch(&mut fetches, RestJob::Snapshot(idx), Duration::ZERO);
                }
                Action::FetchInstrument(native) => {
                    spawn_fetch(&mut fetches, RestJob::Instrument(native), Duration::ZERO);
                }
                Action::Send(text) => {
                    if closing.is_none() && ws.send(Message::text(text)).await.is_err() {
                        closing = Some(StatusReason::Closed { code: 0 });
                    }
                }
                Action::Reconnect => {
                    closing.get_or_insert(StatusReason::ServerShutdown);
                }
            }
        }
        if !out.is_empty() {
            bus.publish(out).await;
        }
        if let Some(reason) = closing {
            let _ = tokio::time::timeout(Duration::from_millis(500), ws.close(None)).await;
            break reason;
        }
    };
    fetches.abort_all();
    reason
}
