//! One connection task per socket: read, stamp `ts_recv`, parse, normalize, apply to the book,
//! publish. It also fetches snapshots the processor asks for (with retries), detects a silent
//! socket and reconnects with backoff, resubscribing and resyncing every book.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use crate::exchanges::binance::{
    instruments_from_exchange_info, BinanceConnector, BinanceProcessor, TradeStream,
};
use crate::exchanges::{Action, Channels, ExchangeConnector, ExchangeProcessor};
use crate::metrics::FeedShared;
use crate::model::{Event, Instrument, Status, StatusKind, StatusReason, Venue};
use crate::net::{backoff, get, now_ns};
use crate::pipeline::bus::EventBus;

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
    /// Reconnect when nothing (not even a ping) arrives for this long.
    pub stale_after: Duration,
}

struct SnapshotReply {
    idx: usize,
    status: u16,
    body: String,
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

/// Fetch instrument metadata, retrying with backoff until it answers or `cancel` fires.
async fn load_instruments(
    conn: &BinanceConnector,
    natives: &[String],
    http: &reqwest::Client,
    bus: &EventBus,
    cancel: &CancellationToken,
) -> Option<HashMap<String, Instrument>> {
    let mut attempt = 0u32;
    loop {
        // the venue rejects the whole request when one symbol is unknown: then ask for all
        for url in [conn.instruments_url(natives), conn.instruments_url(&[])] {
            let reply = get(http, &url).await;
            if reply.status == 200 {
                if let Ok(list) = instruments_from_exchange_info(&reply.body) {
                    return Some(list.into_iter().map(|i| (i.native.clone(), i)).collect());
                }
            }
            if reply.status == 0 || reply.status >= 500 {
                let mut ev = vec![status(
                    conn.venue(),
                    StatusKind::Error,
                    StatusReason::InstrumentsFailed {
                        http_status: reply.status,
                    },
                )];
                bus.publish(&mut ev).await;
                break;
            }
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
    let conn = BinanceConnector::new(
        spec.venue,
        spec.ws_url.as_deref(),
        spec.rest_url.as_deref(),
        spec.depth_limit,
        spec.trade_stream,
    );
    let mut natives: Vec<String> = spec.symbols.iter().map(|s| conn.to_native(s)).collect();
    natives.dedup();
    let Some(instruments) = load_instruments(&conn, &natives, &http, &bus, &cancel).await else {
        return;
    };
    let mut known = Vec::new();
    let mut events = Vec::new();
    for (configured, native) in spec.symbols.iter().zip(&natives) {
        match instruments.get(native) {
            Some(inst) => known.push((native.clone(), inst.symbol.clone())),
            None => events.push(status(
                spec.venue,
                StatusKind::Error,
                StatusReason::UnknownSymbol {
                    symbol: configured.as_str().into(),
                },
            )),
        }
    }
    bus.publish(&mut events).await;
    if known.is_empty() {
        return;
    }
    let mut proc = BinanceProcessor::new(spec.venue, conn.market(), &known, spec.channels);
    *shared.symbols.write() = proc.symbols().to_vec();
    let streams: Vec<String> = known
        .iter()
        .flat_map(|(n, _)| conn.stream_names(n, spec.channels))
        .collect();

    let mut attempt = 0u32;
    let mut first = true;
    while !cancel.is_cancelled() {
        let outcome = run_connection(
            &spec, &conn, &streams, &mut proc, &shared, &bus, &http, &cancel,
        )
        .await;
        shared.connected.store(false, Ordering::Relaxed);
        *shared.counters.lock() = proc.counters();
        let mut out = Vec::new();
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
        if !first {
            shared.reconnects.fetch_add(1, Ordering::Relaxed);
        }
        first = false;
    }
}

/// One socket's life. `Ok(reason)` after it was up and then closed; `Err` if connecting failed.
#[allow(clippy::too_many_arguments, clippy::too_many_lines)]
async fn run_connection(
    spec: &FeedSpec,
    conn: &BinanceConnector,
    streams: &[String],
    proc: &mut BinanceProcessor,
    shared: &FeedShared,
    bus: &EventBus,
    http: &reqwest::Client,
    cancel: &CancellationToken,
) -> Result<StatusReason, ()> {
    let url = conn.ws_url();
    let connect = tokio::time::timeout(
        Duration::from_secs(10),
        tokio_tungstenite::connect_async(url.as_str()),
    );
    let mut ws = match connect.await {
        Ok(Ok((ws, _))) => ws,
        _ => return Err(()),
    };
    shared.connected.store(true, Ordering::Relaxed);
    let mut out = vec![status(
        spec.venue,
        StatusKind::Connected,
        StatusReason::None,
    )];
    bus.publish(&mut out).await;

    // pace SUBSCRIBE frames under the venue's per-connection message rate
    let gap = Duration::from_millis(1000 / u64::from(conn.max_client_msgs_per_s().max(1)) + 10);
    for (i, frame) in conn.subscribe_frames(streams, 1).into_iter().enumerate() {
        if i > 0 {
            tokio::time::sleep(gap).await;
        }
        if ws.send(Message::text(frame)).await.is_err() {
            return Ok(StatusReason::Closed { code: 0 });
        }
    }

    let (tx, mut rx) = mpsc::channel::<SnapshotReply>(proc.symbols().len() + 16);
    let mut fetches: JoinSet<()> = JoinSet::new();
    let mut attempts: HashMap<usize, u32> = HashMap::new();
    let mut actions = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let mut last_rx = Instant::now();
    let urls: Vec<String> = proc
        .symbols()
        .iter()
        .map(|m| conn.snapshot_url(&m.native))
        .collect();
    let spawn_fetch = |fetches: &mut JoinSet<()>, idx: usize, delay: Duration| {
        let Some(url) = urls.get(idx).cloned() else {
            return;
        };
        let http = http.clone();
        let tx = tx.clone();
        shared.snapshot_requests.fetch_add(1, Ordering::Relaxed);
        fetches.spawn(async move {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            let r = get(&http, &url).await;
            let _ = tx
                .send(SnapshotReply {
                    idx,
                    status: r.status,
                    body: r.body,
                })
                .await;
        });
    };

    let reason = loop {
        tokio::select! {
            () = cancel.cancelled() => {
                let _ = tokio::time::timeout(Duration::from_millis(500), ws.close(None)).await;
                break StatusReason::Closed { code: 1000 };
            }
            msg = ws.next() => {
                last_rx = Instant::now();
                let ts_recv = now_ns();
                match msg {
                    Some(Ok(Message::Text(t))) => proc.on_frame(t.as_str(), ts_recv, &mut out, &mut actions),
                    Some(Ok(Message::Binary(b))) => match std::str::from_utf8(&b) {
                        Ok(t) => proc.on_frame(t, ts_recv, &mut out, &mut actions),
                        // not UTF-8: malformed; the processor reports it
                        Err(e) => proc.on_frame(&String::from_utf8_lossy(&b[..e.valid_up_to()]), ts_recv, &mut out, &mut actions),
                    },
                    // tungstenite queues the pong itself and flushes it with the next read
                    Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                    Some(Ok(Message::Close(frame))) => {
                        break StatusReason::Closed { code: frame.map_or(0, |f| u16::from(f.code)) };
                    }
                    Some(Err(_)) | None => break StatusReason::Closed { code: 0 },
                }
            }
            Some(reply) = rx.recv() => {
                let ts = now_ns();
                if reply.status == 200 {
                    attempts.remove(&reply.idx);
                    proc.on_snapshot(reply.idx, &reply.body, ts, &mut out, &mut actions);
                } else {
                    let n = attempts.entry(reply.idx).or_insert(0);
                    *n += 1;
                    proc.on_snapshot_failed(reply.idx, reply.status, *n, ts, &mut out);
                    let delay = backoff(*n);
                    spawn_fetch(&mut fetches, reply.idx, delay);
                }
            }
            _ = tick.tick() => {
                *shared.counters.lock() = proc.counters();
                let silent = last_rx.elapsed();
                if silent > spec.stale_after {
                    let ms = u64::try_from(silent.as_millis()).unwrap_or(u64::MAX);
                    break StatusReason::Silent { ms };
                }
                while fetches.try_join_next().is_some() {}
            }
        }
        for a in actions.drain(..) {
            let Action::FetchSnapshot(idx) = a;
            spawn_fetch(&mut fetches, idx, Duration::ZERO);
        }
        if !out.is_empty() {
            bus.publish(&mut out).await;
        }
    };
    fetches.abort_all();
    if !out.is_empty() {
        bus.publish(&mut out).await;
    }
    Ok(reason)
}
