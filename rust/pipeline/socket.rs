//! One socket of a feed: connect, subscribe (paced under the venue's message rate), read,
//! stamp `ts_recv`, hand frames to the processor, publish; request the snapshots the
//! processor asks for through the venue's REST scheduler (resyncs of live books first);
//! detect silence; reconnect with backoff.
//!
//! Connection lifetime: a venue that closes connections after a fixed time (Binance: 24 h)
//! gets a rollover before that: a second connection is opened and subscribed while the first
//! still runs, both feed the same processor (which drops what arrives twice and parks what
//! arrives early), and once the new one has caught up the old one is closed. No book
//! resyncs, no event is lost or duplicated. If the old connection dies during the overlap,
//! the new one simply takes over.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{FutureExt, SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_util::sync::CancellationToken;

use super::feed::{rest_key, status, FeedSpec};
use crate::exchanges::{Action, ExchangeConnector, ExchangeProcessor, Keepalive, SocketPlan};
use crate::metrics::hist::{LocalHistogram, Stage};
use crate::metrics::{frame_channel, FeedShared, FRAME_CHANNELS};
use crate::model::{BookState, Event, SharedInstruments, StatusKind, StatusReason, SymbolMeta};
use crate::net::breaker::{Permit, Transition};
use crate::net::budget::{Priority, RestAnswer, RestRequest, RestScheduler};
use crate::net::{backoff, now_ns};
use crate::pipeline::bus::EventBus;
use crate::pipeline::raw::{Kind, RawWriter};

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest websocket frame or message accepted; a bigger one drops the connection with a
/// `frame_too_large` status (the largest legitimate frames, full OKX books, are ~100 KiB).
pub const MAX_FRAME_BYTES: usize = 16 << 20;
const TICK: Duration = Duration::from_millis(250);
/// After a frame's events go to the bus, frames already read from the socket are handled in
/// the same turn of the read loop, their events going to the bus together: at most this many
/// frames per turn in all...
const DRAIN_MAX_FRAMES: usize = 32;
/// ...and for at most this long after the first one's receive stamp (ns): the first of them
/// waits for the rest, so the run is kept short.
const DRAIN_MAX_NS: i64 = 10_000;
/// Longest lead a rollover takes before the venue's deadline (24 h: starts 10 min early).
const MAX_ROLLOVER_MARGIN: Duration = Duration::from_secs(600);
/// After the new socket's first frame, how long both run before the old may close: frames
/// the venue sent the old one just before the new subscription must have arrived.
const MAX_SETTLE: Duration = Duration::from_secs(1);
/// Pause before retrying a rollover connection that failed.
const ROLLOVER_RETRY: Duration = Duration::from_secs(1);
/// Added to a venue's guaranteed data cadence before a silent socket counts as dead.
const DATA_GRACE: Duration = Duration::from_secs(15);
/// A snapshot request refused by a full scheduler queue is offered again after this.
const REQUEUE_DELAY: Duration = Duration::from_millis(100);

/// Restarts of one socket after panics before it is left stopped (reported each time).
const MAX_SOCKET_RESTARTS: u32 = 10;

/// What one socket task needs.
#[derive(Clone)]
pub(super) struct SocketEnv {
    pub id: usize,
    pub spec: FeedSpec,
    pub conn: Arc<dyn ExchangeConnector>,
    pub plan: SocketPlan,
    pub shared: Arc<FeedShared>,
    pub bus: Arc<EventBus>,
    pub rest: Arc<RestScheduler>,
    pub cancel: CancellationToken,
    /// REST owner id of this socket (its queued requests are cancelled on reconnect).
    pub owner: u64,
    /// The feed's bounded instrument cache (instruments met in the stream are added).
    pub cache: SharedInstruments,
}

/// Tag bit of an instrument lookup answer (snapshot tags carry a generation below it).
const INSTRUMENT_TAG: u64 = 1 << 63;

/// Snapshot requests of one socket: tags carry a connection generation so an answer for a
/// connection that is gone is recognised and dropped.
struct Snapshots {
    urls: Vec<String>,
    metas: Vec<Arc<SymbolMeta>>,
    weight: u32,
    owner: u64,
    generation: u64,
    attempts: HashMap<usize, u32>,
    /// (due, symbol) of retries and requeues; at most one per symbol.
    delayed: Vec<(Instant, usize)>,
    tx: mpsc::Sender<RestAnswer>,
    stale_answers: u64,
    /// Instrument lookups in flight, by tag; asked again on the next connection if lost.
    lookups: HashMap<u64, (Box<str>, String)>,
    next_lookup: u64,
}

impl Snapshots {
    fn tag(&self, idx: usize) -> u64 {
        (self.generation << 32) | (idx as u64 & 0xffff_ffff)
    }

    fn untag(&self, tag: u64) -> Option<usize> {
        (tag & INSTRUMENT_TAG == 0 && tag >> 32 == self.generation)
            .then_some((tag & 0xffff_ffff) as usize)
    }

    /// Ask for the reference data of one instrument met in the stream (lowest priority
    /// among book requests: no book waits on it).
    fn lookup(&mut self, env: &SocketEnv, native: Box<str>) {
        let Some(url) = env.conn.instrument_url(&native) else {
            return;
        };
        self.next_lookup += 1;
        let tag = INSTRUMENT_TAG | self.next_lookup;
        let queued = env.rest.submit(RestRequest {
            url: url.clone(),
            weight: env.conn.instruments_weight(),
            priority: Priority::Sync,
            key: rest_key(
                self.owner,
                (1 << 23) | (self.next_lookup as usize & 0x7f_ffff),
            ),
            owner: self.owner,
            tag,
            reply: self.tx.clone(),
        });
        if queued {
            self.lookups.insert(tag, (native, url));
        }
    }

    fn submit(&mut self, env: &SocketEnv, idx: usize) {
        let Some(url) = self.urls.get(idx).cloned() else {
            return;
        };
        // a book that was live (now resyncing or stale) goes before one syncing for the
        // first time: users are already relying on it
        let priority = match self.metas.get(idx).and_then(|m| m.book.as_ref()) {
            Some(b) if matches!(b.read().state, BookState::Resyncing | BookState::Stale) => {
                Priority::Resync
            }
            _ => Priority::Sync,
        };
        env.shared.snapshot_requests.fetch_add(1, Ordering::Relaxed);
        let queued = env.rest.submit(RestRequest {
            url,
            weight: self.weight,
            priority,
            key: rest_key(self.owner, idx),
            owner: self.owner,
            tag: self.tag(idx),
            reply: self.tx.clone(),
        });
        if !queued {
            self.later(idx, REQUEUE_DELAY);
        }
    }

    fn later(&mut self, idx: usize, delay: Duration) {
        let due = Instant::now() + delay;
        match self.delayed.iter_mut().find(|(_, i)| *i == idx) {
            Some(entry) => entry.0 = entry.0.min(due),
            None => self.delayed.push((due, idx)),
        }
    }

    fn submit_due(&mut self, env: &SocketEnv) {
        let now = Instant::now();
        let due: Vec<usize> = self
            .delayed
            .iter()
            .filter(|(t, _)| *t <= now)
            .map(|(_, i)| *i)
            .collect();
        self.delayed.retain(|(t, _)| *t > now);
        for idx in due {
            self.submit(env, idx);
        }
    }

    /// A new connection: forget the old one's requests.
    fn reset(&mut self, rest: &RestScheduler) {
        self.generation += 1;
        self.attempts.clear();
        self.delayed.clear();
        // the processor forgets its pending lookups on disconnect and asks again
        self.lookups.clear();
        rest.cancel_owner(self.owner);
    }
}

/// Run a socket task; a panic inside it (a bug: inputs never panic) becomes a `panic`
/// status and a restart with a fresh processor, a bounded number of times. The panic never
/// leaves the task, so Python and the other sockets go on.
pub(super) async fn run_socket_supervised(env: SocketEnv) {
    use futures_util::FutureExt;
    for restart in 0..=MAX_SOCKET_RESTARTS {
        let run = std::panic::AssertUnwindSafe(run_socket(env.clone())).catch_unwind();
        if run.await.is_ok() {
            return;
        }
        // the connection it held is gone with it
        let _ = env
            .shared
            .connected
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |c| c.checked_sub(1));
        let mut ev = vec![status(
            env.spec.venue,
            StatusKind::Error,
            StatusReason::Panic,
        )];
        env.bus.publish(&mut ev).await;
        tokio::select! {
            () = env.cancel.cancelled() => return,
            () = tokio::time::sleep(backoff(restart)) => {}
        }
    }
}

/// One socket, reconnected until `cancel` fires.
async fn run_socket(env: SocketEnv) {
    let mut proc = env.conn.processor(&env.plan);
    proc.attach_instruments(env.cache.clone());
    let metas = proc.symbols().to_vec();
    let (tx, mut rx) = mpsc::channel::<RestAnswer>(metas.len() * 2 + 16);
    let mut snaps = Snapshots {
        urls: metas
            .iter()
            .map(|m| env.conn.snapshot_url(&m.native))
            .collect(),
        metas,
        weight: env.conn.snapshot_weight(),
        owner: env.owner,
        generation: 0,
        attempts: HashMap::new(),
        delayed: Vec::new(),
        tx,
        stale_answers: 0,
        lookups: HashMap::new(),
        next_lookup: 0,
    };
    let venue = env.spec.venue;
    let mut attempt = 0u32;
    while !env.cancel.is_cancelled() {
        if !breaker_permit(&env).await {
            break;
        }
        let mut healthy = false;
        let outcome = run_connection(&env, proc.as_mut(), &mut rx, &mut snaps, &mut healthy).await;
        snaps.reset(&env.rest);
        publish_counters(&env, proc.as_ref(), &snaps);
        let mut out = Vec::new();
        if env.cancel.is_cancelled() {
            // a deliberate stop: books keep their last state, one status says why
            out.push(status(
                venue,
                StatusKind::Disconnected,
                StatusReason::Stopped,
            ));
            env.bus.publish(&mut out).await;
            break;
        }
        let ts = now_ns();
        if let Some(raw) = env.shared.raw.read().as_ref() {
            raw.disconnect(env.id, ts);
        }
        proc.on_disconnect(ts, &mut out);
        if let Ok(reason) = outcome {
            out.push(status(venue, StatusKind::Disconnected, reason));
        }
        if healthy {
            attempt = 0;
        } else {
            // no connection, or one that ended before delivering anything: a failure
            attempt += 1;
            if let Some(t) = env.shared.breaker.on_failure() {
                out.push(breaker_status(venue, t));
            }
        }
        env.bus.publish(&mut out).await;
        let wait = backoff(attempt);
        if attempt > 0 {
            let retry_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
            let mut ev = vec![status(
                venue,
                StatusKind::Disconnected,
                StatusReason::ConnectFailed { attempt, retry_ms },
            )];
            env.bus.publish(&mut ev).await;
        }
        tokio::select! {
            () = env.cancel.cancelled() => break,
            () = tokio::time::sleep(wait) => {}
        }
        // the next attempt is a reconnect (counting it here, not one loop later)
        env.shared.reconnects.fetch_add(1, Ordering::Relaxed);
    }
}

/// The status announcing a breaker transition.
fn breaker_status(venue: crate::model::Venue, t: Transition) -> Event {
    match t {
        Transition::Opened { failures, cooldown } => status(
            venue,
            StatusKind::Error,
            StatusReason::CircuitOpen {
                failures,
                cooldown_ms: u64::try_from(cooldown.as_millis()).unwrap_or(u64::MAX),
            },
        ),
        Transition::HalfOpen => status(venue, StatusKind::Error, StatusReason::CircuitHalfOpen),
        Transition::Closed => status(venue, StatusKind::Recovered, StatusReason::CircuitClosed),
    }
}

/// Wait until the venue's circuit breaker lets this socket connect; false when cancelled.
async fn breaker_permit(env: &SocketEnv) -> bool {
    loop {
        match env.shared.breaker.permit() {
            Permit::Go => return true,
            Permit::Probe => {
                let mut ev = vec![breaker_status(env.spec.venue, Transition::HalfOpen)];
                env.bus.publish(&mut ev).await;
                return true;
            }
            Permit::Wait(d) => {
                tokio::select! {
                    () = env.cancel.cancelled() => return false,
                    () = tokio::time::sleep(d) => {}
                }
            }
        }
    }
}

fn publish_counters(env: &SocketEnv, proc: &dyn ExchangeProcessor, snaps: &Snapshots) {
    let mut c = proc.counters();
    c.push(("snapshot_answers_stale", snaps.stale_answers));
    env.shared.set_counters(env.id, c);
}

async fn connect(url: &str) -> Option<Ws> {
    let cfg = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .max_message_size(Some(MAX_FRAME_BYTES))
        .max_frame_size(Some(MAX_FRAME_BYTES));
    let fut = tokio_tungstenite::connect_async_with_config(url, Some(cfg), true);
    match tokio::time::timeout(CONNECT_TIMEOUT, fut).await {
        Ok(Ok((ws, _))) => Some(ws),
        _ => None,
    }
}

/// Send the subscribe frames, paced under the venue's per-connection message rate.
async fn subscribe(ws: &mut Ws, frames: Vec<String>, max_msgs_per_s: u32) -> bool {
    let gap = Duration::from_millis(1000 / u64::from(max_msgs_per_s.max(1)) + 10);
    for (i, frame) in frames.into_iter().enumerate() {
        if i > 0 {
            tokio::time::sleep(gap).await;
        }
        if ws.send(Message::text(frame)).await.is_err() {
            return false;
        }
    }
    true
}

/// One connection's life (rollovers included). `Ok(reason)` after it was up and then
/// closed; `Err` if connecting failed. `healthy` is set once a frame arrived.
async fn run_connection(
    env: &SocketEnv,
    proc: &mut dyn ExchangeProcessor,
    rx: &mut mpsc::Receiver<RestAnswer>,
    snaps: &mut Snapshots,
    healthy: &mut bool,
) -> Result<StatusReason, ()> {
    let Some(mut ws) = connect(&env.plan.url).await else {
        return Err(());
    };
    env.shared.connected.fetch_add(1, Ordering::Relaxed);
    let mut out = vec![status(
        env.spec.venue,
        StatusKind::Connected,
        StatusReason::None,
    )];
    env.bus.publish(&mut out).await;
    let frames = env.conn.subscribe_frames(&env.plan, 1);
    let reason = if subscribe(&mut ws, frames, env.conn.max_client_msgs_per_s()).await {
        proc.on_subscribed(now_ns(), env.spec.stale_after);
        serve(env, proc, ws, rx, snaps, &mut out, healthy).await
    } else {
        StatusReason::Closed { code: 0 }
    };
    env.shared.connected.fetch_sub(1, Ordering::Relaxed);
    if !out.is_empty() {
        env.bus.publish(&mut out).await;
    }
    Ok(reason)
}

/// Rollover bookkeeping of one connection.
struct Rollover {
    /// When the next rollover starts (None: the venue sets no lifetime).
    start_at: Option<Instant>,
    margin: Duration,
    settle: Duration,
    connecting: JoinSet<Option<Ws>>,
    next: Option<Ws>,
    overlap_since: Option<Instant>,
    next_first_frame: Option<Instant>,
    count: u32,
    closers: JoinSet<()>,
}

impl Rollover {
    fn new(lifetime: Option<Duration>) -> Self {
        let margin = lifetime.map_or(Duration::ZERO, |l| (l / 4).min(MAX_ROLLOVER_MARGIN));
        let mut r = Self {
            start_at: None,
            margin,
            settle: (margin / 5).min(MAX_SETTLE),
            connecting: JoinSet::new(),
            next: None,
            overlap_since: None,
            next_first_frame: None,
            count: 0,
            closers: JoinSet::new(),
        };
        r.plan(lifetime, Instant::now());
        r
    }

    fn plan(&mut self, lifetime: Option<Duration>, connected_at: Instant) {
        self.start_at = lifetime.map(|l| connected_at + l.saturating_sub(self.margin));
    }

    /// Overlap timeout: past it the new socket takes over whether or not it caught up.
    fn overlap_timeout(&self) -> Duration {
        self.margin * 3 / 4
    }
}

/// Why a read that returned no data message ended the socket.
fn close_reason(msg: Option<Result<Message, WsError>>) -> StatusReason {
    match msg {
        Some(Ok(Message::Close(frame))) => StatusReason::Closed {
            code: frame.map_or(0, |f| u16::from(f.code)),
        },
        Some(Err(WsError::Capacity(_))) => StatusReason::FrameTooLarge {
            limit: MAX_FRAME_BYTES,
        },
        _ => StatusReason::Closed { code: 0 },
    }
}

/// Hand a data frame to the processor (`overlap`: it came from the rollover's new socket);
/// count it per channel and stamp the parse and book stages. Returns the frame's receive
/// stamp (ns), 0 for a control frame.
fn deliver(
    tally: &mut FrameTally,
    proc: &mut dyn ExchangeProcessor,
    msg: &Message,
    overlap: bool,
    raw: Option<(&RawWriter, usize)>,
    out: &mut Vec<Event>,
    actions: &mut Vec<Action>,
) -> i64 {
    let ts_recv = now_ns();
    let before = out.len();
    let text: std::borrow::Cow<'_, str> = match msg {
        Message::Text(t) => t.as_str().into(),
        Message::Binary(b) => match std::str::from_utf8(b) {
            Ok(t) => t.into(),
            // not UTF-8: hand over the valid prefix so the processor reports it
            Err(e) => String::from_utf8_lossy(b.get(..e.valid_up_to()).unwrap_or_default()),
        },
        // tungstenite queues the pong itself and flushes it with the next read
        Message::Ping(_) | Message::Pong(_) | Message::Frame(_) | Message::Close(_) => return 0,
    };
    if overlap {
        // the rollover's new socket repeats what the old one carries: replay of a raw
        // capture sees the old socket's frames only
        proc.on_overlap_frame(&text, ts_recv, out, actions);
    } else {
        if let Some((raw, id)) = raw {
            raw.frame(id, ts_recv, &text);
        }
        proc.on_frame(&text, ts_recv, out, actions);
    }
    tally.stamp(
        proc,
        ts_recv,
        text.len(),
        out.get(before..).unwrap_or_default(),
    );
    ts_recv
}

/// One socket's per-frame accounting: frames and bytes per channel, the stage histograms
/// (parse done as stamped by the processor, book applied = now) and venue-to-socket latency.
/// Kept in plain counters and merged into the feed's shared ones on every tick and when the
/// connection ends, so a frame costs no atomic read-modify-write (it cost 14).
#[derive(Default)]
struct FrameTally {
    parsed: LocalHistogram,
    applied: LocalHistogram,
    exchange: LocalHistogram,
    frames: [u64; FRAME_CHANNELS.len()],
    bytes: [u64; FRAME_CHANNELS.len()],
}

impl FrameTally {
    fn stamp(&mut self, proc: &dyn ExchangeProcessor, ts_recv: i64, bytes: usize, new: &[Event]) {
        let first = new.first();
        let idx = frame_channel(first);
        if let (Some(f), Some(b)) = (self.frames.get_mut(idx), self.bytes.get_mut(idx)) {
            *f += 1;
            *b += bytes as u64;
        }
        let Some(first) = first else { return };
        let parsed = proc.parsed_at();
        if parsed >= ts_recv {
            self.parsed.record(parsed - ts_recv);
        }
        self.applied.record(now_ns() - ts_recv);
        let ts_exchange = first.ts_exchange();
        if ts_exchange > 0 {
            self.exchange.record(ts_recv - ts_exchange);
        }
    }

    /// Merge into the feed's shared counters and histograms; start again from zero.
    fn flush(&mut self, shared: &FeedShared) {
        let (venue, stages) = (shared.venue, &shared.stages);
        stages.get(venue, Stage::Parsed).absorb(&mut self.parsed);
        stages
            .get(venue, Stage::BookApplied)
            .absorb(&mut self.applied);
        stages
            .get(venue, Stage::ExchangeToRecv)
            .absorb(&mut self.exchange);
        for (idx, (f, b)) in self.frames.iter_mut().zip(&mut self.bytes).enumerate() {
            if *f > 0 || *b > 0 {
                shared.count_frames(idx, std::mem::take(f), std::mem::take(b));
            }
        }
    }
}

/// A depth snapshot answer (or a stale one, for a connection that is gone).
fn on_snapshot_answer(
    env: &SocketEnv,
    proc: &mut dyn ExchangeProcessor,
    snaps: &mut Snapshots,
    raw: Option<&RawWriter>,
    ans: RestAnswer,
    out: &mut Vec<Event>,
    actions: &mut Vec<Action>,
) {
    if let (Some(r), Some(idx)) = (raw, snaps.untag(ans.tag)) {
        let url = snaps.urls.get(idx).map_or("", String::as_str);
        r.answer(
            Kind::Snapshot,
            env.id,
            idx,
            ans.ts_recv,
            ans.status,
            url,
            &ans.body,
        );
    }
    match snaps.untag(ans.tag) {
        Some(idx) if ans.status == 200 => {
            snaps.attempts.remove(&idx);
            proc.on_snapshot(idx, &ans.body, ans.ts_recv, out, actions);
        }
        Some(idx) => {
            let n = snaps.attempts.entry(idx).or_insert(0);
            *n += 1;
            let n = *n;
            proc.on_snapshot_failed(idx, ans.status, n, ans.ts_recv, out);
            snaps.later(idx, backoff(n));
        }
        None => snaps.stale_answers += 1,
    }
}

/// The consumer fell behind on these symbols' book updates: each resyncs from a fresh
/// snapshot (the processor announces it; its requests go out on the next turn).
fn resync_overflowed(
    env: &SocketEnv,
    proc: &mut dyn ExchangeProcessor,
    syms: &[Arc<SymbolMeta>],
    out: &mut Vec<Event>,
    actions: &mut Vec<Action>,
) {
    let reason = StatusReason::SlowConsumer {
        capacity: env.bus.capacity(),
    };
    let ts = now_ns();
    for sym in syms {
        proc.force_resync(sym, reason.clone(), ts, out, actions);
    }
}

/// Queue what `out` holds on the bus; symbols whose book updates the bus had to hold back
/// resync (their statuses go out with the next publish).
async fn publish(
    env: &SocketEnv,
    proc: &mut dyn ExchangeProcessor,
    out: &mut Vec<Event>,
    actions: &mut Vec<Action>,
) {
    if out.is_empty() {
        return;
    }
    let overflowed = env.bus.publish(out).await;
    if !overflowed.is_empty() {
        resync_overflowed(env, proc, &overflowed, out, actions);
    }
}

async fn next_message(ws: &mut Option<Ws>) -> Option<Result<Message, WsError>> {
    match ws {
        Some(ws) => ws.next().await,
        None => std::future::pending().await,
    }
}

/// The read loop of one connection, with its rollovers.
#[allow(clippy::too_many_lines)]
async fn serve(
    env: &SocketEnv,
    proc: &mut dyn ExchangeProcessor,
    mut ws: Ws,
    rx: &mut mpsc::Receiver<RestAnswer>,
    snaps: &mut Snapshots,
    out: &mut Vec<Event>,
    healthy: &mut bool,
) -> StatusReason {
    let lifetime = env
        .spec
        .connection_lifetime
        .or_else(|| env.conn.connection_lifetime());
    let mut roll = Rollover::new(lifetime);
    let mut actions = Vec::new();
    // merged into the feed's counters on every tick and when the connection ends, below
    let mut tally = FrameTally::default();
    let mut tick = tokio::time::interval(TICK);
    let mut last_rx = Instant::now();
    let mut last_data = Instant::now();
    let data_deadline = env
        .spec
        .max_data_silence
        .or_else(|| proc.data_cadence().map(|c| c + DATA_GRACE));
    let mut keepalive_sent = false;
    let raw = env.shared.raw.read().clone();
    let raw_ref = raw.as_deref().map(|r| (r, env.id));
    let reason = 'serve: loop {
        let mut switch = false;
        tokio::select! {
            () = env.cancel.cancelled() => {
                let _ = tokio::time::timeout(Duration::from_millis(500), ws.close(None)).await;
                if let Some(mut next) = roll.next.take() {
                    let _ = tokio::time::timeout(Duration::from_millis(500), next.close(None)).await;
                }
                break StatusReason::Closed { code: 1000 };
            }
            msg = ws.next() => {
                // one clock read per drained run of messages serves both silence watches
                last_rx = Instant::now();
                keepalive_sent = false;
                let mut msg = msg;
                let mut drained = 0;
                let mut first_ts = None;
                loop {
                    match msg {
                        Some(Ok(m)) if !matches!(m, Message::Close(_)) => {
                            let data = match &m {
                                Message::Text(t) => t.as_str() != "pong",
                                Message::Binary(_) => true,
                                _ => false,
                            };
                            if data {
                                last_data = last_rx;
                            }
                            if !*healthy && data {
                                // the venue answers with data: the breaker may close
                                *healthy = true;
                                if let Some(t) = env.shared.breaker.on_success() {
                                    out.push(breaker_status(env.spec.venue, t));
                                }
                            }
                            let ts = deliver(&mut tally, proc, &m, false, raw_ref, out, &mut actions);
                            if ts > 0 {
                                first_ts.get_or_insert(ts);
                            }
                            drained += 1;
                            if drained == 1 {
                                // the first frame's events go out at once: a lone frame waits
                                // for nothing (not even the look for more below)
                                publish(env, proc, out, &mut actions).await;
                            }
                            let long = first_ts.is_some_and(|first| ts - first >= DRAIN_MAX_NS);
                            if drained >= DRAIN_MAX_FRAMES || long || !actions.is_empty() {
                                break;
                            }
                        }
                        other => {
                            if roll.next.is_none() {
                                break 'serve close_reason(other);
                            }
                            // the old socket died during the overlap: the new one takes over now
                            switch = true;
                            break;
                        }
                    }
                    // more frames already read from the socket: handle them before publishing,
                    // so one bus hand-off and one turn of this select serve them all
                    match ws.next().now_or_never() {
                        Some(next) => msg = next,
                        None => break,
                    }
                }
            }
            msg = next_message(&mut roll.next) => {
                match msg {
                    Some(Ok(m)) if !matches!(m, Message::Close(_)) => {
                        if matches!(m, Message::Text(_) | Message::Binary(_)) {
                            roll.next_first_frame.get_or_insert_with(Instant::now);
                        }
                        deliver(&mut tally, proc, &m, true, raw_ref, out, &mut actions);
                    }
                    _ => {
                        // the new socket failed: drop it, keep the old one, try again shortly
                        roll.next = None;
                        roll.overlap_since = None;
                        roll.next_first_frame = None;
                        proc.end_overlap(now_ns(), out, &mut actions);
                        roll.start_at = Some(Instant::now() + ROLLOVER_RETRY);
                    }
                }
            }
            Some(joined) = roll.connecting.join_next(), if !roll.connecting.is_empty() => {
                match joined.ok().flatten() {
                    Some(next) => {
                        roll.next = Some(next);
                        roll.overlap_since = Some(Instant::now());
                        roll.next_first_frame = None;
                        proc.begin_overlap(now_ns());
                    }
                    None => roll.start_at = Some(Instant::now() + ROLLOVER_RETRY),
                }
            }
            Some(ans) = rx.recv() => {
                if let Some((native, url)) = snaps.lookups.remove(&ans.tag) {
                    if let Some(r) = &raw {
                        r.answer(Kind::Instruments, env.id, 0, ans.ts_recv, ans.status, &url, &ans.body);
                    }
                    proc.on_instrument(&native, ans.status, &ans.body, ans.ts_recv, out);
                    let cache = env.cache.lock();
                    env.shared.instruments.store(cache.len() as u64, Ordering::Relaxed);
                    env.shared
                        .instrument_evictions
                        .store(cache.evictions(), Ordering::Relaxed);
                } else {
                    on_snapshot_answer(env, proc, snaps, raw.as_deref(), ans, out, &mut actions);
                }
            }
            _ = tick.tick() => {
                if env.shared.panic_probe.swap(false, Ordering::Relaxed) {
                    // test hook (Engine.inject_panic): proves a panic stays in its task
                    panic!("panic injected into a socket task");
                }
                publish_counters(env, proc, snaps);
                tally.flush(&env.shared);
                if let Some(r) = &raw {
                    r.flush();
                }
                let silent = last_rx.elapsed();
                if silent > env.spec.stale_after {
                    let ms = u64::try_from(silent.as_millis()).unwrap_or(u64::MAX);
                    break StatusReason::Silent { ms };
                }
                // connected (pings and pongs flow) but the data stopped: a half-open stall
                let quiet = last_data.elapsed();
                if data_deadline.is_some_and(|d| quiet > d) {
                    let ms = u64::try_from(quiet.as_millis()).unwrap_or(u64::MAX);
                    break StatusReason::Silent { ms };
                }
                if let Keepalive::IdleText { after, frame } = env.conn.keepalive() {
                    if silent > after && !keepalive_sent {
                        keepalive_sent = true;
                        if ws.send(Message::text(frame)).await.is_err() {
                            break StatusReason::Closed { code: 0 };
                        }
                    }
                }
                proc.on_tick(now_ns(), out, &mut actions);
                snaps.submit_due(env);
                while roll.closers.try_join_next().is_some() {}
                let now = Instant::now();
                if roll.next.is_none() && roll.connecting.is_empty() && roll.start_at.is_some_and(|t| now >= t) {
                    roll.start_at = None;
                    let url = env.plan.url.clone();
                    let frames = env.conn.subscribe_frames(&env.plan, 1);
                    let rate = env.conn.max_client_msgs_per_s();
                    roll.connecting.spawn(async move {
                        let mut ws = connect(&url).await?;
                        subscribe(&mut ws, frames, rate).await.then_some(ws)
                    });
                }
                if let Some(since) = roll.overlap_since {
                    let settled = roll.next_first_frame.is_some_and(|t| t.elapsed() >= roll.settle);
                    switch = (settled && proc.overlap_ready()) || since.elapsed() >= roll.overlap_timeout();
                }
            }
        }
        if switch {
            if let Some(next) = roll.next.take() {
                proc.end_overlap(now_ns(), out, &mut actions);
                let mut old = std::mem::replace(&mut ws, next);
                roll.closers.spawn(async move {
                    let _ = tokio::time::timeout(Duration::from_secs(1), old.close(None)).await;
                });
                roll.overlap_since = None;
                roll.next_first_frame = None;
                roll.count += 1;
                roll.plan(lifetime, Instant::now());
                last_rx = Instant::now();
                out.push(status(
                    env.spec.venue,
                    StatusKind::Connected,
                    StatusReason::Rollover { count: roll.count },
                ));
            }
        }
        let mut closing = None;
        for a in actions.drain(..) {
            match a {
                Action::FetchSnapshot(idx) => snaps.submit(env, idx),
                Action::FetchInstrument(native) => snaps.lookup(env, native),
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
        publish(env, proc, out, &mut actions).await;
        // Frames already in the read buffer never make `ws.next()` wait, so without this the
        // task could run for thousands of frames in one poll. Every 128 frames it now yields:
        // the other sockets get their turn, and an inline consumer (worker_threads = 0), which
        // runs only when this task yields, pops the bus before it fills.
        tokio::task::consume_budget().await;
        if let Some(reason) = closing {
            let _ = tokio::time::timeout(Duration::from_millis(500), ws.close(None)).await;
            if let Some(mut next) = roll.next.take() {
                let _ = tokio::time::timeout(Duration::from_millis(500), next.close(None)).await;
            }
            break reason;
        }
    };
    roll.connecting.abort_all();
    roll.closers.abort_all();
    tally.flush(&env.shared);
    reason
}
