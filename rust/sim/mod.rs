//! Exchange simulator: one local port serving the REST endpoints and websocket market streams
//! a market-data client uses, for Binance spot and, in `okx/`, OKX v5 (exchanges.md sections
//! 2, 4 and 8).
//!
//! This module owns the public API (`SimConfig`, `start`, `SimHandle`, `SimStats`, `SimError`)
//! and the state shared by the tasks; the work itself lives in the submodules:
//! `market` (synthetic books), `frames` (wire text), `feed` (pacing the synthetic market),
//! `capture` (replaying recorded traffic), `server` (accept loop, HTTP and the websocket
//! handshake), `rest` (REST answers), `ws` and `control` (websocket sessions and their
//! control messages). It is pure Rust and depends on no other module of the crate, so the
//! Python binding and the connector tests can both drive it.

mod capture;
mod control;
mod faults;
mod feed;
mod frames;
mod futures;
mod market;
pub mod okx;
mod profile;
mod rest;
mod server;
mod symbols;
mod topics;
mod ws;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_capture;
#[cfg(test)]
mod tests_futures;
#[cfg(test)]
mod tests_ws;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use self::capture::CaptureData;
use self::faults::Faults;
use self::frames::Frame;
use self::market::{Market, MarketState, SymbolSpec};
use self::okx::OkxSim;
pub use self::okx::{OkxFault, OkxSimConfig};
pub use self::profile::Profile;
pub(crate) use self::topics::Topics;

/// Frames queued per connection before a slow reader is dropped (the venue disconnects
/// clients that cannot keep up; a bound keeps the sim's memory flat).
const BROADCAST_CAPACITY: usize = 65_536;
/// How long `shutdown` waits for each task before aborting it.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(5);

/// Settings of one simulator instance.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Interface to bind, default "127.0.0.1".
    pub host: String,
    /// Port to bind, default 0 (ephemeral; read it back with [`SimHandle::local_addr`]).
    pub port: u16,
    /// Native Binance symbols of the synthetic market, default `["BTCUSDT", "ETHUSDT"]`.
    pub symbols: Vec<String>,
    /// Data messages per second over all symbols and streams (default 1000); `<= 0` generates
    /// as fast as the slowest connected client drains them.
    pub rate: f64,
    /// Pace the synthetic market one generator step at a time, each at its own instant
    /// (messages `1/rate` apart on average), on a thread of its own, instead of in 1 ms ticks
    /// (bursts of `rate/1000` messages). A step is one market event: a trade with its top and
    /// depth diff, so its 1 to 3 messages still go out together.
    pub paced: bool,
    /// Seed of the synthetic market: the same seed gives the same books and trades.
    pub seed: u64,
    /// Interval of the server's websocket pings (Binance spot: 20 s).
    pub ping_interval: Duration,
    /// A client that leaves a ping unanswered this long is closed (Binance spot: 60 s).
    pub pong_timeout: Duration,
    /// Incoming messages per second allowed per connection (Binance spot: 5); `None` disables.
    pub max_client_msgs_per_s: Option<u32>,
    /// Levels per side kept in each synthetic book.
    pub depth_levels: usize,
    /// Serve a recorded capture instead of the synthetic market (an OKX capture is served
    /// by the OKX profile, beside the synthetic Binance market).
    pub capture: Option<CaptureSource>,
    /// The OKX profile: synthetic instruments, checksums, idle timeout.
    pub okx: OkxSimConfig,
    /// Venue protocol: Binance spot (default), USD-M or COIN-M futures.
    pub profile: Profile,
    /// Close every websocket this long after it opened (the venue: 24 h); `None`: never.
    pub connection_lifetime: Option<Duration>,
    /// `REQUEST_WEIGHT` per `weight_window`; over it REST answers 429. `None`: the
    /// profile's documented limit (spot 6000, futures 2400 per minute).
    pub weight_limit: Option<u32>,
    /// Window of the weight limit (default 60 s; published in `exchangeInfo`).
    pub weight_window: Duration,
    /// Futures `markPrice@1s` interval (`markPrice` pushes every third one).
    pub mark_interval: Duration,
    /// Futures: probability per symbol and mark interval of a `forceOrder` event.
    pub liquidation_prob: f64,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            host: "127.0.0.1".to_string(),
            port: 0,
            symbols: vec!["BTCUSDT".to_string(), "ETHUSDT".to_string()],
            rate: 1000.0,
            paced: false,
            seed: 1,
            ping_interval: Duration::from_secs(20),
            pong_timeout: Duration::from_secs(60),
            max_client_msgs_per_s: Some(5),
            depth_levels: 200,
            capture: None,
            okx: OkxSimConfig::default(),
            profile: Profile::Spot,
            connection_lifetime: None,
            weight_limit: None,
            weight_window: Duration::from_secs(60),
            mark_interval: Duration::from_secs(1),
            liquidation_prob: 0.2,
        }
    }
}

/// Recorded traffic to replay (cryptofeed raw format, see shared/data/README.md).
#[derive(Debug, Clone)]
pub struct CaptureSource {
    /// Websocket capture (`*.ws.N.0`).
    pub ws: PathBuf,
    /// REST captures (`*.http.N.0` depth snapshots, `*.0` exchangeInfo).
    pub rest: Vec<PathBuf>,
    /// 1.0 replays at the recorded pace, 2.0 twice as fast; 0 as fast as clients read.
    pub speed: f64,
}

/// Why the simulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The listening socket could not be bound.
    #[error("cannot bind the simulator socket: {0}")]
    Bind(#[source] std::io::Error),
    /// `start` was called outside a tokio runtime.
    #[error("sim::start must be called inside a tokio runtime")]
    NoRuntime,
    /// A configuration value is out of range.
    #[error("invalid simulator config `{field}`: {reason}")]
    InvalidConfig {
        /// Name of the `SimConfig` field.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A capture file could not be read.
    #[error("cannot read capture {path:?}: {source}")]
    CaptureIo {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A capture line is not in the expected format.
    #[error("capture {path:?} line {line}: {reason}")]
    Capture {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What was expected.
        reason: &'static str,
    },
}

macro_rules! counters {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {
        /// Live counters of the simulator (atomics, updated by every task).
        #[derive(Debug, Default)]
        pub(crate) struct Counters { $(pub $name: AtomicU64,)* }

        /// A copy of the simulator counters at one moment.
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        pub struct SimStats { $($(#[$doc])* pub $name: u64,)* }

        impl Counters {
            fn snapshot(&self) -> SimStats {
                SimStats { $($name: self.$name.load(Ordering::Relaxed),)* }
            }
        }

        impl SimStats {
            /// (name, value) pairs in declaration order, for dict-like export.
            pub fn to_pairs(&self) -> Vec<(&'static str, u64)> {
                vec![$((stringify!($name), self.$name),)*]
            }
        }
    };
}

counters! {
    /// TCP connections accepted.
    connections_accepted,
    /// TCP connections refused because the connection bound was reached.
    connections_rejected,
    /// TCP connections open now.
    connections_open,
    /// HTTP requests received (REST and websocket handshakes).
    http_requests,
    /// Websocket sessions started.
    ws_sessions,
    /// Websocket sessions open now.
    ws_open,
    /// Text control messages received from clients.
    control_messages,
    /// Control messages answered with an error object.
    control_errors,
    /// Data messages produced by the synthetic market or the capture player.
    messages_generated,
    /// Data frames written to clients.
    frames_sent,
    /// Server pings sent.
    pings_sent,
    /// Client pongs received.
    pongs_received,
    /// Client pings received (answered with pongs).
    client_pings,
    /// Clients closed for not answering a ping in time.
    pong_timeouts,
    /// Clients closed for exceeding `max_client_msgs_per_s`.
    rate_limit_closes,
    /// Clients closed because they fell behind the broadcast queue.
    lagged_disconnects,
    /// Clients closed because a write could not complete within `pong_timeout`.
    slow_write_closes,
    /// SUBSCRIBE requests refused for exceeding the streams-per-connection cap.
    stream_limit_rejects,
    /// Depth diffs withheld by `inject_gap`.
    gaps_injected,
    /// Depth snapshots served.
    snapshots_served,
    /// Depth snapshots answered with HTTP 500 by `fail_snapshots`.
    snapshots_failed,
    /// Frames injected with `inject_raw`.
    raw_injected,
    /// Times a capture playback was started.
    capture_playbacks,
    /// OKX websocket sessions started.
    okx_sessions,
    /// OKX subscriptions registered.
    okx_subscriptions,
    /// OKX text `ping`s answered with `pong`.
    okx_pings,
    /// OKX connections closed (4004) after `idle_timeout` with nothing sent.
    okx_idle_closes,
    /// Injected OKX faults that took effect (bad checksum sent, subscription refused).
    okx_faults_applied,
    /// Websockets closed because they reached `connection_lifetime`.
    lifetime_closes,
    /// Websockets dropped by `disconnect`.
    forced_disconnects,
    /// Data frames withheld by `stall`.
    stalled_frames,
    /// REST requests answered 429 because the weight limit was exceeded.
    weight_limit_hits,
    /// Highest weight used inside one window (accepted requests only).
    weight_max_used,
    /// REST requests answered with a forced status by `rest_errors`.
    rest_faults,
    /// Open-interest requests served.
    open_interest_served,
    /// Futures markPrice events generated.
    marks_generated,
    /// Futures forceOrder events generated.
    liquidations_generated,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// Where the data comes from.
#[derive(Debug)]
pub(crate) enum Source {
    Synthetic(Arc<Market>),
    Capture(Arc<CaptureData>),
}

/// State shared by the accept loop, the sessions, the REST handlers and the feed.
#[derive(Debug)]
pub(crate) struct Shared {
    pub profile: Profile,
    pub connection_lifetime: Option<Duration>,
    /// Weight allowed per window and the window length, ms.
    pub weight_limit: u32,
    pub weight_window_ms: u64,
    pub faults: Faults,
    pub ping_interval: Duration,
    pub pong_timeout: Duration,
    pub max_client_msgs_per_s: Option<u32>,
    pub rate: f64,
    pub paced: bool,
    pub stats: Counters,
    pub tx: broadcast::Sender<Frame>,
    pub topics: Topics,
    pub source: Source,
    /// Remaining forced HTTP 500 answers per native symbol.
    pub fail_snapshots: HashMap<String, AtomicU32>,
    /// (window number, weight used in it) for `X-MBX-USED-WEIGHT-*` and the limit.
    pub weight: Mutex<(u64, u64)>,
    /// The OKX profile, when configured.
    pub okx: Option<Arc<OkxSim>>,
    pub cancel: CancellationToken,
}

/// A running simulator. Dropping it stops the tasks without waiting; prefer `shutdown`.
#[derive(Debug)]
pub struct SimHandle {
    addr: SocketAddr,
    shared: Arc<Shared>,
    tasks: Vec<JoinHandle<()>>,
}

impl SimHandle {
    /// Address the simulator listens on (REST and websocket share it).
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Applies the next depth diff of `native_symbol` to the sim's book without sending it,
    /// so clients see `U > L + 1`. Returns false for an unknown symbol or in capture mode.
    pub fn inject_gap(&self, native_symbol: &str) -> bool {
        let Source::Synthetic(market) = &self.shared.source else {
            return false;
        };
        let Some(i) = market.index(native_symbol) else {
            return false;
        };
        market.state.lock().mark_gap(i)
    }

    /// Sends `text` as one text frame, unchanged, to every connected websocket client (both
    /// profiles).
    pub fn inject_raw(&self, text: String) {
        bump(&self.shared.stats.raw_injected);
        if let Some(okx) = &self.shared.okx {
            let _ = okx.tx.send(Arc::new(okx::OkxFrame {
                topic: frames::TOPIC_ALL,
                seq: None,
                text: text.clone().into(),
            }));
        }
        let _ = self.shared.tx.send(Frame::verbatim(text));
    }

    /// Injects a fault into the OKX stream of `inst_id` (or of everything, for a stall).
    ///
    /// # Errors
    /// No OKX profile, an unknown instrument, or a fault that needs a symbol.
    pub fn inject_okx_fault(
        &self,
        fault: OkxFault,
        inst_id: Option<&str>,
        count: u32,
        duration: Duration,
    ) -> Result<(), &'static str> {
        let okx = self
            .shared
            .okx
            .as_ref()
            .ok_or("the simulator has no OKX profile")?;
        okx.inject(fault, inst_id, count, duration)
    }

    /// True when `inst_id` is an instrument of the OKX profile.
    #[must_use]
    pub fn is_okx_symbol(&self, inst_id: &str) -> bool {
        self.shared
            .okx
            .as_ref()
            .is_some_and(|o| o.index(inst_id).is_some())
    }

    /// Withholds data frames for `duration` (only those of stream kind `kind`, e.g.
    /// `markPrice@1s`, when given) while pings and replies go on. Without a kind the OKX
    /// profile goes silent too.
    pub fn stall(&self, duration: Duration, kind: Option<String>) {
        if let (Some(okx), None) = (&self.shared.okx, &kind) {
            let _ = okx.inject(OkxFault::Stall, None, 1, duration);
        }
        self.shared.faults.stall(duration, kind);
    }

    /// Withholds keepalives as well for `duration` (no server pings, no answers to OKX
    /// `ping`): with `stall`, a half-open socket where nothing at all arrives.
    pub fn mute_keepalives(&self, duration: Duration) {
        self.shared.faults.mute(duration);
    }

    /// Sends `data` to every open websocket of both venues as one frame, unchanged: a binary
    /// frame, or a text frame when `data` is UTF-8 and `binary` is false. Oversized frames
    /// (up to 64 MiB) go this way too.
    ///
    /// # Errors
    /// `data` is over 64 MiB, or `binary` is false and `data` is not UTF-8.
    pub fn inject_frame(&self, data: Vec<u8>, binary: bool) -> Result<(), &'static str> {
        use tokio_tungstenite::tungstenite::Message;
        if data.len() > faults::MAX_INJECTED {
            return Err("frame larger than 64 MiB");
        }
        let msg = if binary {
            Message::Binary(data.into())
        } else {
            let text = String::from_utf8(data).map_err(|_| "text frame is not UTF-8")?;
            Message::Text(text.into())
        };
        bump(&self.shared.stats.raw_injected);
        self.shared.faults.inject(msg);
        Ok(())
    }

    /// Answers the next `count` depth / books snapshot requests (of `symbol`, native name or
    /// OKX instId, or of any symbol) `delay` late, with the book as it was when asked.
    pub fn slow_snapshots(&self, symbol: Option<&str>, count: u32, delay: Duration) {
        self.shared.faults.slow_snapshots(symbol, count, delay);
    }

    /// Refuses the next `count` Binance SUBSCRIBE requests naming streams of `native_symbol`
    /// with error code 2 (the request's other streams are subscribed).
    pub fn refuse_subscriptions(&self, native_symbol: &str, count: u32) {
        self.shared
            .faults
            .refuse_subscriptions(native_symbol, count);
    }

    /// Drops every open websocket connection at once (no close handshake).
    pub fn disconnect_all(&self) {
        self.shared.faults.kick_all();
    }

    /// Answers the next `count` depth, open-interest and OKX books requests with HTTP
    /// `status` (429 and 418 carry `Retry-After: retry_after_s`).
    pub fn rest_errors(&self, status: u16, count: u32, retry_after_s: u64) {
        self.shared.faults.set_rest(status, count, retry_after_s);
    }

    /// Makes the next `count` `GET /api/v3/depth` requests for `native_symbol` answer HTTP 500
    /// (a later call replaces the remaining count; unknown symbols are ignored).
    pub fn fail_snapshots(&self, native_symbol: &str, count: u32) {
        if let Some(c) = self.shared.fail_snapshots.get(native_symbol) {
            c.store(count, Ordering::Relaxed);
        }
    }

    /// Current counters.
    #[must_use]
    pub fn stats(&self) -> SimStats {
        self.shared.stats.snapshot()
    }

    /// Stops accepting, closes every client (after a `serverShutdown` event) and joins the
    /// tasks, aborting any that take longer than a few seconds.
    pub async fn shutdown(mut self) {
        self.shared.cancel.cancel();
        for mut task in std::mem::take(&mut self.tasks) {
            if tokio::time::timeout(SHUTDOWN_WAIT, &mut task)
                .await
                .is_err()
            {
                task.abort();
            }
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        self.shared.cancel.cancel();
    }
}

fn validate(cfg: &SimConfig) -> Result<(), SimError> {
    let bad = |field, reason| Err(SimError::InvalidConfig { field, reason });
    if cfg.rate.is_nan() {
        return bad("rate", "must be a number");
    }
    if cfg.ping_interval.is_zero() {
        return bad("ping_interval", "must be positive");
    }
    if cfg.pong_timeout.is_zero() {
        return bad("pong_timeout", "must be positive");
    }
    if cfg.max_client_msgs_per_s == Some(0) {
        return bad("max_client_msgs_per_s", "must be positive or None");
    }
    if cfg.depth_levels == 0 || cfg.depth_levels > 5000 {
        return bad("depth_levels", "must be between 1 and 5000");
    }
    if cfg.weight_limit == Some(0) {
        return bad("weight_limit", "must be positive or None");
    }
    if cfg.weight_window < Duration::from_secs(1) {
        return bad("weight_window", "must be at least one second");
    }
    if cfg.mark_interval.is_zero() {
        return bad("mark_interval", "must be positive");
    }
    if cfg.connection_lifetime.is_some_and(|l| l.is_zero()) {
        return bad("connection_lifetime", "must be positive or None");
    }
    if !(0.0..=1.0).contains(&cfg.liquidation_prob) {
        return bad("liquidation_prob", "must be between 0 and 1");
    }
    match &cfg.capture {
        Some(c) if !(c.speed >= 0.0 && c.speed.is_finite()) => {
            bad("capture.speed", "must be a finite number >= 0")
        }
        None if cfg.symbols.is_empty() && cfg.okx.symbols.is_empty() => {
            bad("symbols", "must not be empty")
        }
        None if cfg.symbols.len() > 1000 => bad("symbols", "at most 1000 symbols"),
        _ => Ok(()),
    }
}

/// Synthetic topics: `feed::KINDS.len()` per symbol, in the order `feed` indexes them.
fn synthetic_topics(specs: &[SymbolSpec]) -> Vec<String> {
    specs
        .iter()
        .flat_map(|s| {
            feed::KINDS
                .iter()
                .map(move |k| format!("{}@{}", s.lower, k))
        })
        .collect()
}

/// Starts a simulator on the current tokio runtime.
///
/// # Errors
///
/// [`SimError::NoRuntime`] outside a tokio runtime, [`SimError::InvalidConfig`] for out-of-range
/// settings or a symbol without a known quote asset, [`SimError::Capture`] /
/// [`SimError::CaptureIo`] for unreadable captures, [`SimError::Bind`] when the port is taken.
pub async fn start(cfg: SimConfig) -> Result<SimHandle, SimError> {
    let rt = tokio::runtime::Handle::try_current().map_err(|_| SimError::NoRuntime)?;
    validate(&cfg)?;
    let okx_capture = cfg.capture.clone().filter(|c| okx::capture::is_okx(&c.ws));
    let binance_capture = if okx_capture.is_some() {
        None
    } else {
        cfg.capture.clone()
    };
    let (source, topic_names, mut symbols) = match binance_capture {
        Some(src) => {
            let data = rt
                .spawn_blocking(move || CaptureData::load(&src))
                .await
                .map_err(|_| SimError::InvalidConfig {
                    field: "capture",
                    reason: "capture loader stopped",
                })??;
            let names = data.stream_names.clone();
            let symbols = data.snapshot_symbols();
            (Source::Capture(Arc::new(data)), names, symbols)
        }
        None => {
            let specs = cfg
                .symbols
                .iter()
                .map(|s| SymbolSpec::infer_for(cfg.profile, s, cfg.depth_levels))
                .collect::<Result<Vec<_>, _>>()?;
            let names = synthetic_topics(&specs);
            let symbols = specs.iter().map(|s| s.symbol.clone()).collect();
            let state =
                MarketState::with_ids(&specs, cfg.seed, cfg.depth_levels, cfg.profile.is_futures());
            let market = Market {
                specs,
                state: Mutex::new(state),
            };
            (Source::Synthetic(Arc::new(market)), names, symbols)
        }
    };
    let okx = match okx_capture {
        Some(src) => {
            let data = rt
                .spawn_blocking(move || okx::capture::OkxCapture::load(&src))
                .await
                .map_err(|_| SimError::InvalidConfig {
                    field: "capture",
                    reason: "capture loader stopped",
                })??;
            Some(Arc::new(OkxSim::recorded(cfg.okx.clone(), data)))
        }
        None if !cfg.okx.symbols.is_empty() => Some(Arc::new(OkxSim::synthetic(
            cfg.okx.clone(),
            cfg.seed,
            cfg.depth_levels,
        )?)),
        None => None,
    };
    if let Some(o) = &okx {
        symbols.extend(o.specs.iter().map(|s| s.inst_id.clone()));
    }
    let listener = TcpListener::bind((cfg.host.as_str(), cfg.port))
        .await
        .map_err(SimError::Bind)?;
    let addr = listener.local_addr().map_err(SimError::Bind)?;
    let (tx, _) = broadcast::channel(BROADCAST_CAPACITY);
    let shared = Arc::new(Shared {
        profile: cfg.profile,
        connection_lifetime: cfg.connection_lifetime,
        weight_limit: cfg.weight_limit.unwrap_or(cfg.profile.weight_limit()),
        weight_window_ms: u64::try_from(cfg.weight_window.as_millis()).unwrap_or(60_000),
        faults: Faults::new(),
        ping_interval: cfg.ping_interval,
        pong_timeout: cfg.pong_timeout,
        max_client_msgs_per_s: cfg.max_client_msgs_per_s,
        rate: cfg.rate,
        paced: cfg.paced,
        stats: Counters::default(),
        tx,
        topics: Topics::new(topic_names),
        source,
        fail_snapshots: symbols
            .into_iter()
            .map(|s: String| (s, AtomicU32::new(0)))
            .collect(),
        weight: Mutex::new((0, 0)),
        okx,
        cancel: CancellationToken::new(),
    });
    let mut tasks = vec![rt.spawn(server::run_accept(listener, shared.clone(), rt.clone()))];
    match &shared.source {
        Source::Synthetic(m) => {
            tasks.push(rt.spawn(feed::run(shared.clone(), m.clone())));
            if cfg.profile.is_futures() {
                let marks = feed::run_marks(
                    shared.clone(),
                    m.clone(),
                    cfg.mark_interval,
                    cfg.liquidation_prob,
                    cfg.seed,
                );
                tasks.push(rt.spawn(marks));
            }
        }
        Source::Capture(c) => tasks.push(rt.spawn(capture::run_player(shared.clone(), c.clone()))),
    }
    if let Some(o) = &shared.okx {
        match &o.source {
            okx::OkxSource::Synthetic(m) => {
                tasks.push(rt.spawn(okx::feed::run(shared.clone(), o.clone(), m.clone())));
            }
            okx::OkxSource::Capture(c) => {
                let player = okx::capture::run_player(shared.clone(), o.clone(), c.clone());
                tasks.push(rt.spawn(player));
            }
        }
    }
    Ok(SimHandle {
        addr,
        shared,
        tasks,
    })
}
