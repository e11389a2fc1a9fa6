//! Feeds. A feed loads instrument metadata into a bounded cache, interns its symbols once
//! (with their contract sizes), asks the venue's connector how to spread them over sockets
//! and routes, runs one task per socket (`socket.rs`: read, stamp `ts_recv`, parse,
//! normalize, apply to the book, publish; reconnect and roll over), and polls open interest
//! when asked. Every REST request goes through the venue's [`RestScheduler`], so snapshots,
//! polls and reference data share one weight budget.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::socket::{run_socket_supervised, SocketEnv};
use crate::exchanges::binance::TradeStream;
use crate::exchanges::{connector_for, Channels, ExchangeConnector};
use crate::metrics::FeedShared;
use crate::model::{
    Event, InstrumentCache, OrderBook, SharedInstruments, Status, StatusKind, StatusReason,
    SymbolMeta, Venue,
};
use crate::net::budget::{Priority, RestAnswer, RestRequest, RestScheduler};
use crate::net::{backoff, now_ns};
use crate::pipeline::bus::EventBus;
use crate::pipeline::raw::{Kind, RawWriter};

/// Instruments kept per feed; more are evicted least-recently-used and counted.
pub const INSTRUMENT_CACHE_CAPACITY: usize = 8192;
/// Share of the venue's weight budget open-interest polling may use: snapshots come first.
const POLL_BUDGET_SHARE: u32 = 4;
/// Shortest open-interest polling interval honoured.
const MIN_POLL_INTERVAL: Duration = Duration::from_millis(100);

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
    /// Reconnect when nothing (not even a ping) arrives for this long; also the deadline
    /// after which a silent subscribed stream is reported.
    pub stale_after: Duration,
    /// Open-interest polling interval (stretched to stay within the weight budget).
    pub open_interest_interval: Duration,
    /// Connection lifetime override (the venue's by default, 24 h on Binance): the socket
    /// rolls over to a fresh connection before it ends.
    pub connection_lifetime: Option<Duration>,
    /// Reconnect when no data frame (pings, pongs and acks do not count) arrives for this
    /// long. `None`: the venue's guaranteed cadence for what the socket carries plus a grace
    /// (OKX books: a heartbeat at least every 60 s), and no limit for sockets whose streams
    /// may be legitimately quiet (a quiet market is not a dead socket).
    pub max_data_silence: Option<Duration>,
}

/// Unique ids of REST requesters (sockets, pollers) across the process.
static NEXT_OWNER: AtomicU64 = AtomicU64::new(1);

/// A fresh REST owner id.
pub(super) fn next_owner() -> u64 {
    NEXT_OWNER.fetch_add(1, Ordering::Relaxed)
}

/// Dedupe key of request `idx` of `owner` (owners are unique, indexes below 2^24).
pub(super) fn rest_key(owner: u64, idx: usize) -> u64 {
    (owner << 24) | (idx as u64 & 0xff_ffff)
}

pub(super) fn status(venue: Venue, kind: StatusKind, reason: StatusReason) -> Event {
    Event::Status(Status {
        venue,
        sym: None,
        kind,
        reason,
        state: None,
        ts: now_ns(),
    })
}

/// Fetch instrument metadata into a bounded cache (through the REST scheduler, which also
/// learns the venue's published weight limit), retrying with backoff until a URL answers
/// (or, for venues that list each instrument type apart, every URL answers) or `cancel`
/// fires.
async fn load_instruments(
    conn: &dyn ExchangeConnector,
    natives: &[String],
    rest: &RestScheduler,
    bus: &EventBus,
    cancel: &CancellationToken,
    raw: Option<&RawWriter>,
) -> Option<InstrumentCache> {
    let owner = next_owner();
    let (tx, mut rx) = mpsc::channel::<RestAnswer>(2);
    let mut attempt = 0u32;
    let merge = conn.instruments_merge();
    loop {
        let mut list = Vec::new();
        let urls = conn.instruments_urls(natives);
        // URLs settled this round: answered, or (merging) refused for good
        let mut answered = 0usize;
        for (i, url) in urls.iter().enumerate() {
            let queued = rest.submit(RestRequest {
                url: url.clone(),
                weight: conn.instruments_weight(),
                priority: Priority::Resync,
                key: rest_key(owner, i),
                owner,
                tag: 0,
                reply: tx.clone(),
            });
            let reply = if queued {
                tokio::select! {
                    () = cancel.cancelled() => return None,
                    r = rx.recv() => r,
                }
            } else {
                None
            };
            let (status_code, body) = reply.map_or((0, String::new()), |r| (r.status, r.body));
            if let Some(r) = raw {
                r.answer(Kind::Instruments, 0, 0, now_ns(), status_code, url, &body);
            }
            if status_code == 200 {
                if let Ok(part) = conn.parse_instruments(&body) {
                    if let Some(limit) = conn.parse_weight_limit(&body) {
                        rest.set_limit(limit, conn.used_weight_header(limit).as_deref());
                    }
                    list.extend(part);
                    answered += 1;
                    if merge {
                        continue;
                    }
                    break;
                }
                break;
            }
            // URLs settled this round: answered, or (merging) refused for good
            let retry = status_code == 0 || status_code >= 500;
            if retry || merge {
                let mut ev = vec![status(
                    conn.venue(),
                    StatusKind::Error,
                    StatusReason::InstrumentsFailed {
                        http_status: status_code,
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
            let (mine, others): (Vec<_>, Vec<_>) =
                list.into_iter().partition(|i| natives.contains(&i.native));
            for inst in others.into_iter().chain(mine) {
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
    rest: Arc<RestScheduler>,
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
    let raw = shared.raw.read().clone();
    let Some(mut cache) = load_instruments(
        conn.as_ref(),
        &natives,
        &rest,
        &bus,
        &cancel,
        raw.as_deref(),
    )
    .await
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
    let poll_slot = plans.len();
    let mut tasks = JoinSet::new();
    let handle = tokio::runtime::Handle::current();
    for (id, plan) in plans.into_iter().enumerate() {
        let env = SocketEnv {
            id,
            spec: spec.clone(),
            conn: conn.clone(),
            plan,
            shared: shared.clone(),
            bus: bus.clone(),
            rest: rest.clone(),
            cancel: cancel.clone(),
            owner: next_owner(),
            cache: cache.clone(),
        };
        tasks.spawn_on(run_socket_supervised(env), &handle);
    }
    if spec.channels.open_interest && conn.open_interest_url("").is_some() {
        let poll = poll_open_interest(
            conn.clone(),
            metas,
            spec.open_interest_interval,
            poll_slot,
            shared.clone(),
            bus.clone(),
            rest.clone(),
            cancel.clone(),
        );
        tasks.spawn_on(poll, &handle);
    }
    while tasks.join_next().await.is_some() {}
}

/// Poll open interest of every symbol each `interval`, at the lowest priority. The interval
/// is stretched when a round would use more than a quarter of the weight budget, and a
/// symbol whose previous poll still waits is not queued twice.
#[allow(clippy::too_many_arguments)]
async fn poll_open_interest(
    conn: Arc<dyn ExchangeConnector>,
    metas: Vec<Arc<SymbolMeta>>,
    interval: Duration,
    slot: usize,
    shared: Arc<FeedShared>,
    bus: Arc<EventBus>,
    rest: Arc<RestScheduler>,
    cancel: CancellationToken,
) {
    let owner = next_owner();
    let weight = conn.open_interest_weight().max(1);
    let urls: Vec<Option<String>> = metas
        .iter()
        .map(|m| conn.open_interest_url(&m.native))
        .collect();
    let (tx, mut rx) = mpsc::channel::<RestAnswer>(metas.len() + 16);
    let (mut polls, mut events, mut failures, mut stretched) = (0u64, 0u64, 0u64, 0u64);
    let mut next_round = tokio::time::Instant::now();
    let mut out = Vec::new();
    loop {
        tokio::select! {
            () = cancel.cancelled() => break,
            () = tokio::time::sleep_until(next_round) => {
                let limit = rest.limit();
                let round = u64::from(weight) * metas.len() as u64;
                let share = u64::from(limit.limit / POLL_BUDGET_SHARE).max(1);
                let min_interval = limit.window.mul_f64(round as f64 / share as f64);
                let every = interval.max(min_interval).max(MIN_POLL_INTERVAL);
                if every > interval {
                    stretched += 1;
                }
                next_round += every;
                for (idx, url) in urls.iter().enumerate() {
                    let Some(url) = url.clone() else { continue };
                    polls += 1;
                    rest.submit(RestRequest {
                        url,
                        weight,
                        priority: Priority::Poll,
                        key: rest_key(owner, idx),
                        owner,
                        tag: idx as u64,
                        reply: tx.clone(),
                    });
                }
            }
            Some(ans) = rx.recv() => {
                let parsed = usize::try_from(ans.tag)
                    .ok()
                    .and_then(|i| metas.get(i))
                    .filter(|_| ans.status == 200)
                    .map(|m| conn.parse_open_interest(m, &ans.body, ans.ts_recv));
                match parsed {
                    Some(Ok(ev)) => {
                        events += 1;
                        out.push(ev);
                        bus.publish(&mut out).await;
                    }
                    _ => failures += 1,
                }
            }
        }
        shared.set_counters(
            slot,
            vec![
                ("open_interest_polls", polls),
                ("open_interest", events),
                ("open_interest_failures", failures),
                ("open_interest_stretched", stretched),
            ],
        );
    }
}
