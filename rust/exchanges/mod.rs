//! Venue adapters. A venue is an [`ExchangeConnector`] (URLs, subscribe frames, limits, REST
//! calls) plus an [`ExchangeProcessor`] (frame to normalized events, book maintenance and its
//! integrity rules). Processors are pure: they take `ts_recv` as input and never read a clock,
//! so the same code serves live feeds and deterministic replay.

pub mod binance;
pub mod okx;
pub mod wire;

#[cfg(test)]
pub(crate) mod fuzz_support;

/// The connector for a feed's venue, or `None` when the venue is not implemented yet.
#[must_use]
pub fn connector_for(spec: &crate::pipeline::feed::FeedSpec) -> Option<Box<dyn ExchangeConnector>> {
    match spec.venue {
        Venue::Binance | Venue::BinanceUs | Venue::BinanceUsdm | Venue::BinanceCoinm => {
            Some(Box::new(binance::BinanceConnector::new(
                spec.venue,
                spec.ws_url.as_deref(),
                spec.rest_url.as_deref(),
                spec.depth_limit,
                spec.trade_stream,
            )))
        }
        Venue::Okx => okx::OkxConnector::from_spec(spec)
            .ok()
            .map(|c| Box::new(c) as Box<dyn ExchangeConnector>),
    }
}

use std::sync::Arc;
use std::time::Duration;

use crate::model::{Event, Instrument, SharedInstruments, StatusReason, SymbolMeta, Venue};
use crate::net::budget::WeightLimit;

/// Which channels a feed subscribes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Channels {
    /// Trades.
    pub trades: bool,
    /// Maintained L2 book.
    pub book: bool,
    /// Best bid/offer.
    pub bbo: bool,
    /// Venue tickers (24 h statistics).
    pub ticker: bool,
    /// Mark price, index and funding.
    pub funding: bool,
    /// Liquidations.
    pub liquidations: bool,
    /// Open interest.
    pub open_interest: bool,
}

impl Channels {
    /// No channel.
    pub const NONE: Channels = Channels {
        trades: false,
        book: false,
        bbo: false,
        ticker: false,
        funding: false,
        liquidations: false,
        open_interest: false,
    };

    /// Trades, book and bbo: what every venue offers.
    pub const ALL: Channels = Channels {
        trades: true,
        book: true,
        bbo: true,
        ..Channels::NONE
    };

    /// Channel names, in a stable order.
    pub const NAMES: [&'static str; 7] = [
        "trades",
        "book",
        "bbo",
        "ticker",
        "funding",
        "liquidations",
        "open_interest",
    ];

    /// Parse channel names; returns the first unknown name as the error.
    ///
    /// # Errors
    /// The unknown channel name.
    pub fn parse<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Self, &'a str> {
        let mut c = Channels::NONE;
        for n in names {
            match n {
                "trades" => c.trades = true,
                "book" => c.book = true,
                "bbo" => c.bbo = true,
                "ticker" => c.ticker = true,
                "funding" => c.funding = true,
                "liquidations" => c.liquidations = true,
                "open_interest" => c.open_interest = true,
                other => return Err(other),
            }
        }
        Ok(c)
    }
}

/// Error statuses per second a processor may emit; the rest are counted, not sent.
pub const STATUS_BUDGET_PER_S: u32 = 20;

/// The per-second budget of error statuses, keyed on the frame's `ts_recv` (input time, so
/// replay is deterministic): a flood of bad frames cannot flood the strategies.
#[derive(Debug, Default, Clone, Copy)]
pub struct StatusBudget {
    window: i64,
    used: u32,
}

impl StatusBudget {
    /// True when one more error status may be sent in the second of `ts` (ns).
    pub fn allow(&mut self, ts: i64) -> bool {
        let window = ts / 1_000_000_000;
        if window != self.window {
            self.window = window;
            self.used = 0;
        }
        if self.used < STATUS_BUDGET_PER_S {
            self.used += 1;
            true
        } else {
            false
        }
    }
}

/// Something a processor needs the connection task to do (it does no I/O itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Fetch a REST depth snapshot for the symbol at this index.
    FetchSnapshot(usize),
    /// Fetch the reference data of one instrument met in the stream (answered through
    /// [`ExchangeProcessor::on_instrument`]); processors ask once per instrument.
    FetchInstrument(Box<str>),
    /// Send this text frame on the socket (OKX: unsubscribe + resubscribe one book).
    Send(String),
    /// Close the socket and reconnect (a venue notice, a spent request budget).
    Reconnect,
}

/// One websocket a feed opens: where, which streams, for which symbols and channels.
#[derive(Debug, Clone)]
pub struct SocketPlan {
    /// Websocket URL.
    pub url: String,
    /// Venue stream names (or subscription args) carried by this socket.
    pub streams: Vec<String>,
    /// Symbols whose data arrives on this socket.
    pub symbols: Vec<Arc<SymbolMeta>>,
    /// Channels this socket carries.
    pub channels: Channels,
}

/// How a connection is kept alive beyond answering the server's pings (done automatically).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keepalive {
    /// The venue pings; answering is enough.
    ServerPings,
    /// Send this text frame when nothing arrived for `after` (OKX: `ping` under 30 s).
    IdleText {
        /// Idle time before the frame is sent.
        after: std::time::Duration,
        /// The frame.
        frame: &'static str,
    },
}

/// The network side of a venue: where to connect and what to send.
pub trait ExchangeConnector: Send + Sync {
    /// The venue.
    fn venue(&self) -> Venue;
    /// Venue symbol for a configured symbol (`BTC-USDT` or `BTCUSDT` to `BTCUSDT`).
    fn to_native(&self, symbol: &str) -> String;
    /// Instrument metadata URLs, tried in order until one answers 200 (or, when
    /// [`ExchangeConnector::instruments_merge`] is true, all fetched and merged).
    fn instruments_urls(&self, natives: &[String]) -> Vec<String>;
    /// True when every URL of `instruments_urls` must answer and the lists are merged (OKX
    /// lists each instrument type at its own URL); false: the first answer wins.
    fn instruments_merge(&self) -> bool {
        false
    }
    /// REST URL listing one instrument met in the stream, when the venue has one.
    fn instrument_url(&self, _native: &str) -> Option<String> {
        None
    }
    /// Parse an instrument metadata body; the error is the parser's byte offset.
    ///
    /// # Errors
    /// The byte offset where the body stopped making sense.
    fn parse_instruments(&self, body: &str) -> Result<Vec<Instrument>, usize>;
    /// Split subscriptions over sockets, within the venue's per-connection limits and routes.
    fn plan(&self, symbols: &[Arc<SymbolMeta>], channels: Channels) -> Vec<SocketPlan>;
    /// Subscribe frames for one socket, split to respect per-message limits.
    fn subscribe_frames(&self, plan: &SocketPlan, first_id: u64) -> Vec<String>;
    /// REST URL of a depth snapshot.
    fn snapshot_url(&self, native: &str) -> String;
    /// Keepalive the venue requires.
    fn keepalive(&self) -> Keepalive;
    /// Client messages per second the venue tolerates on one socket.
    fn max_client_msgs_per_s(&self) -> u32;
    /// A processor for one socket's frames.
    fn processor(&self, plan: &SocketPlan) -> Box<dyn ExchangeProcessor>;

    /// REST weight of one depth snapshot request.
    fn snapshot_weight(&self) -> u32 {
        1
    }
    /// REST weight of one instrument metadata request.
    fn instruments_weight(&self) -> u32 {
        1
    }
    /// The REST weight limit assumed until the venue publishes one.
    fn weight_limit(&self) -> WeightLimit {
        WeightLimit::UNLIMITED
    }
    /// The REST weight limit an instrument metadata body publishes, if any.
    fn parse_weight_limit(&self, _body: &str) -> Option<WeightLimit> {
        None
    }
    /// Response header carrying the weight the venue counted in its window for `limit`.
    fn used_weight_header(&self, _limit: WeightLimit) -> Option<String> {
        None
    }
    /// How long the venue keeps a connection open; the feed rolls over to a fresh socket
    /// before it ends.
    fn connection_lifetime(&self) -> Option<Duration> {
        None
    }
    /// REST URL polled for a symbol's open interest, when the venue offers it.
    fn open_interest_url(&self, _native: &str) -> Option<String> {
        None
    }
    /// REST weight of one open-interest request.
    fn open_interest_weight(&self) -> u32 {
        1
    }
    /// Parse an open-interest answer for `sym` received at `ts_recv`.
    ///
    /// # Errors
    /// The byte offset where the body stopped making sense.
    fn parse_open_interest(
        &self,
        _sym: &Arc<SymbolMeta>,
        _body: &str,
        _ts_recv: i64,
    ) -> Result<Event, usize> {
        Err(0)
    }
}

/// The parsing side of a venue: frames in, normalized events and actions out.
pub trait ExchangeProcessor: Send {
    /// Handle one websocket text frame received at `ts_recv` (ns).
    fn on_frame(
        &mut self,
        frame: &str,
        ts_recv: i64,
        out: &mut Vec<Event>,
        actions: &mut Vec<Action>,
    );
    /// Handle a REST depth snapshot body for symbol index `sym`.
    fn on_snapshot(
        &mut self,
        sym: usize,
        body: &str,
        ts_recv: i64,
        out: &mut Vec<Event>,
        actions: &mut Vec<Action>,
    );
    /// A snapshot request for `sym` failed (`http_status` 0 = transport error).
    fn on_snapshot_failed(
        &mut self,
        sym: usize,
        http_status: u16,
        attempt: u32,
        ts: i64,
        out: &mut Vec<Event>,
    );
    /// The socket dropped: every book becomes stale and will resync.
    fn on_disconnect(&mut self, ts: i64, out: &mut Vec<Event>);
    /// Share the feed's bounded instrument cache (lookups of instruments met in the stream).
    fn attach_instruments(&mut self, _cache: SharedInstruments) {}
    /// The answer to [`Action::FetchInstrument`] (`http_status` 0 = transport error).
    fn on_instrument(
        &mut self,
        _native: &str,
        _http_status: u16,
        _body: &str,
        _ts: i64,
        _out: &mut Vec<Event>,
    ) {
    }
    /// The subscribed symbols, by index.
    fn symbols(&self) -> &[Arc<SymbolMeta>];
    /// Processor counters as (name, value) pairs.
    fn counters(&self) -> Vec<(&'static str, u64)>;

    /// The subscribe frames were sent at `ts`: streams with a known cadence that stay silent
    /// longer than `silent_after` (or their cadence) are reported from `on_tick`.
    fn on_subscribed(&mut self, _ts: i64, _silent_after: Duration) {}
    /// Called about four times a second with the current time (watchdogs).
    fn on_tick(&mut self, _ts: i64, _out: &mut Vec<Event>, _actions: &mut Vec<Action>) {}
    /// Rollover: a second connection with the same streams starts; its frames arrive through
    /// [`ExchangeProcessor::on_overlap_frame`] until [`ExchangeProcessor::end_overlap`].
    fn begin_overlap(&mut self, _ts: i64) {}
    /// A frame from the rollover's new connection (duplicates of the old one are dropped).
    fn on_overlap_frame(
        &mut self,
        frame: &str,
        ts_recv: i64,
        out: &mut Vec<Event>,
        actions: &mut Vec<Action>,
    ) {
        self.on_frame(frame, ts_recv, out, actions);
    }
    /// The new connection has caught up: the old one can be closed without loss.
    fn overlap_ready(&self) -> bool {
        true
    }
    /// The old connection is gone; the new one is the only source from now on.
    fn end_overlap(&mut self, _ts: i64, _out: &mut Vec<Event>, _actions: &mut Vec<Action>) {}
    /// Resync book `idx` of [`ExchangeProcessor::symbols`] from a fresh snapshot (only that
    /// symbol), announcing it with a `resync` status carrying `reason`.
    fn resync_book(
        &mut self,
        _idx: usize,
        _reason: StatusReason,
        _ts: i64,
        _out: &mut Vec<Event>,
        _actions: &mut Vec<Action>,
    ) {
    }
    /// The consumer fell behind on `sym`'s book updates: resync that book.
    fn force_resync(
        &mut self,
        sym: &Arc<SymbolMeta>,
        reason: StatusReason,
        ts: i64,
        out: &mut Vec<Event>,
        actions: &mut Vec<Action>,
    ) {
        if let Some(idx) = self.symbols().iter().position(|m| Arc::ptr_eq(m, sym)) {
            self.resync_book(idx, reason, ts, out, actions);
        }
    }
    /// Longest a healthy socket of this processor goes without a data frame, when the venue
    /// guarantees a cadence for what it carries (OKX books: a heartbeat after 60 s without
    /// change; Binance futures `markPrice@1s`). `None`: its streams may be quiet for long.
    fn data_cadence(&self) -> Option<Duration> {
        None
    }
    /// When the last frame's parse finished (wall clock, ns), for the `parsed` stage
    /// histogram; 0 when the processor does not stamp (replay).
    fn parsed_at(&self) -> i64 {
        0
    }
}
