//! Normalized events. Errors and status reasons are enums carrying numbers and ids; they are
//! rendered to text only when reported (never with `format!` on the hot path).

use std::sync::Arc;

use super::book::BookState;
use super::instrument::{SymbolMeta, Venue};

/// Aggressor side of a trade.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The buyer took liquidity.
    Buy,
    /// The seller took liquidity.
    Sell,
}

impl Side {
    /// `"buy"` or `"sell"`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Buy => "buy",
            Self::Sell => "sell",
        }
    }
}

/// A trade (channel `trades`).
#[derive(Debug, Clone)]
pub struct Trade {
    /// Interned symbol.
    pub sym: Arc<SymbolMeta>,
    /// Exchange time, ns.
    pub ts_exchange: i64,
    /// Local receive time, ns.
    pub ts_recv: i64,
    /// Price.
    pub price: f64,
    /// Size (normalized units).
    pub size: f64,
    /// Aggressor side.
    pub side: Side,
    /// Venue trade id.
    pub trade_id: u64,
}

/// Best bid and offer (channel `bbo`).
#[derive(Debug, Clone)]
pub struct Bbo {
    /// Interned symbol.
    pub sym: Arc<SymbolMeta>,
    /// Exchange time, ns (0 when the venue sends none: Binance spot bookTicker).
    pub ts_exchange: i64,
    /// Local receive time, ns.
    pub ts_recv: i64,
    /// Best bid price.
    pub bid_price: f64,
    /// Best bid size.
    pub bid_size: f64,
    /// Best ask price.
    pub ask_price: f64,
    /// Best ask size.
    pub ask_size: f64,
}

/// One depth message applied to a maintained book (channel `book`): the levels it set.
#[derive(Debug, Clone)]
pub struct BookDelta {
    /// Interned symbol (its `book` is the maintained book).
    pub sym: Arc<SymbolMeta>,
    /// Exchange time, ns.
    pub ts_exchange: i64,
    /// Local receive time, ns.
    pub ts_recv: i64,
    /// Venue sequence after this update (`u`, `lastUpdateId`, `seqId`).
    pub seq: u64,
    /// True when this is a snapshot that replaced the whole book.
    pub is_snapshot: bool,
    /// Bid levels set (size 0 = removed).
    pub bids: Vec<(f64, f64)>,
    /// Ask levels set (size 0 = removed).
    pub asks: Vec<(f64, f64)>,
}

/// A venue ticker: last trade, best quotes and 24 h statistics (channel `ticker`).
#[derive(Debug, Clone)]
pub struct Ticker {
    /// Interned symbol.
    pub sym: Arc<SymbolMeta>,
    /// Exchange time, ns.
    pub ts_exchange: i64,
    /// Local receive time, ns.
    pub ts_recv: i64,
    /// Last trade price.
    pub last_price: f64,
    /// Last trade size (normalized units).
    pub last_size: Option<f64>,
    /// Best bid price.
    pub bid_price: Option<f64>,
    /// Best bid size.
    pub bid_size: Option<f64>,
    /// Best ask price.
    pub ask_price: Option<f64>,
    /// Best ask size.
    pub ask_size: Option<f64>,
    /// Open price 24 h ago.
    pub open_24h: Option<f64>,
    /// 24 h high.
    pub high_24h: Option<f64>,
    /// 24 h low.
    pub low_24h: Option<f64>,
    /// 24 h volume in base-asset units.
    pub volume_24h: Option<f64>,
    /// 24 h volume in quote currency.
    pub quote_volume_24h: Option<f64>,
}

/// Mark price, index and funding of a perpetual (channel `funding`).
#[derive(Debug, Clone)]
pub struct Funding {
    /// Interned symbol.
    pub sym: Arc<SymbolMeta>,
    /// Exchange time, ns.
    pub ts_exchange: i64,
    /// Local receive time, ns.
    pub ts_recv: i64,
    /// Mark price.
    pub mark_price: Option<f64>,
    /// Index price.
    pub index_price: Option<f64>,
    /// Funding rate of the current period.
    pub funding_rate: Option<f64>,
    /// Settlement time of the current period, ns.
    pub funding_time: Option<i64>,
    /// Next funding time, ns.
    pub next_funding_time: Option<i64>,
}

/// A liquidation order (channel `liquidations`).
#[derive(Debug, Clone)]
pub struct Liquidation {
    /// Interned symbol.
    pub sym: Arc<SymbolMeta>,
    /// Exchange time, ns.
    pub ts_exchange: i64,
    /// Local receive time, ns.
    pub ts_recv: i64,
    /// Side of the liquidation order (`sell` = a long was liquidated).
    pub side: Side,
    /// Price.
    pub price: f64,
    /// Size (normalized units).
    pub size: f64,
}

/// Open interest (channel `open_interest`).
#[derive(Debug, Clone)]
pub struct OpenInterest {
    /// Interned symbol.
    pub sym: Arc<SymbolMeta>,
    /// Exchange time, ns.
    pub ts_exchange: i64,
    /// Local receive time, ns.
    pub ts_recv: i64,
    /// Open interest in normalized units (base asset; quote currency for inverse).
    pub open_interest: f64,
    /// Open interest value in quote currency, when the venue gives it.
    pub open_interest_value: Option<f64>,
}

/// What a status event reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusKind {
    /// Socket open.
    Connected,
    /// Socket closed or failed.
    Disconnected,
    /// The venue acknowledged a subscription.
    Subscribed,
    /// A book started synchronising.
    Syncing,
    /// A book became live for the first time.
    Live,
    /// A book lost integrity and is being rebuilt.
    Resync,
    /// A book is live again after a resync or stale period.
    Recovered,
    /// A book or connection stopped receiving data.
    Stale,
    /// A problem that did not change a book's state (bad frame, failed request...).
    Error,
}

impl StatusKind {
    /// Every kind, in a stable order (their index is the bus encoding's code).
    pub const ALL: [StatusKind; 9] = [
        Self::Connected,
        Self::Disconnected,
        Self::Subscribed,
        Self::Syncing,
        Self::Live,
        Self::Resync,
        Self::Recovered,
        Self::Stale,
        Self::Error,
    ];

    /// Name used in Python and metrics.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connected => "connected",
            Self::Disconnected => "disconnected",
            Self::Subscribed => "subscribed",
            Self::Syncing => "syncing",
            Self::Live => "live",
            Self::Resync => "resync",
            Self::Recovered => "recovered",
            Self::Stale => "stale",
            Self::Error => "error",
        }
    }
}

/// Why a status was raised. Variants carry numbers and ids only; `render` makes the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusReason {
    /// No particular reason (plain state change).
    None,
    /// A sequence gap: the update id expected and the one received.
    Gap {
        /// Id the chain required.
        expected: u64,
        /// Id that arrived.
        got: u64,
    },
    /// A book checksum (OKX CRC32 of the top 25 levels) did not match the local book.
    Checksum {
        /// The venue's value (signed 32-bit, as sent).
        expected: i64,
        /// The value computed over the local book.
        computed: i64,
    },
    /// The snapshot was older than the buffered diffs; fetched again.
    SnapshotTooOld {
        /// Snapshot `lastUpdateId`.
        snapshot: u64,
        /// First buffered `U`.
        first_buffered: u64,
    },
    /// The diff buffer hit its bound while waiting for a snapshot.
    BufferOverflow {
        /// The bound.
        capacity: usize,
    },
    /// A frame was not valid JSON or lacked required fields.
    MalformedFrame {
        /// Frame length in bytes.
        len: usize,
        /// Parser error position (byte offset) where known.
        offset: usize,
    },
    /// A frame of an event type xtrader does not handle.
    UnknownEvent {
        /// The stream or event name.
        name: Box<str>,
    },
    /// A symbol that is not subscribed or not listed by the venue.
    UnknownSymbol {
        /// The symbol as given.
        symbol: Box<str>,
    },
    /// A REST snapshot request failed.
    SnapshotFailed {
        /// HTTP status (0 = transport error).
        http_status: u16,
        /// Attempts so far.
        attempt: u32,
    },
    /// A REST reference-data request failed.
    InstrumentsFailed {
        /// HTTP status (0 = transport error).
        http_status: u16,
    },
    /// The venue rejected a control request.
    SubscribeError {
        /// Venue error code.
        code: i64,
        /// Venue message.
        msg: Box<str>,
    },
    /// The venue rejected a request on a channel (OKX `event:error`), naming what it concerned.
    VenueRejected {
        /// Venue error code (e.g. 60018).
        code: i64,
        /// Channel concerned, when known (empty otherwise).
        channel: Box<str>,
        /// Instrument (or instrument type) concerned, when known (empty otherwise).
        inst: Box<str>,
        /// Venue message.
        msg: Box<str>,
    },
    /// The socket closed (close code when one was sent, 0 otherwise).
    Closed {
        /// Websocket close code.
        code: u16,
    },
    /// Connecting failed; retrying after the given delay.
    ConnectFailed {
        /// Attempt number.
        attempt: u32,
        /// Next retry delay, ms.
        retry_ms: u64,
    },
    /// Nothing received for this long.
    Silent {
        /// Milliseconds of silence.
        ms: u64,
    },
    /// The venue announced a shutdown of this server.
    ServerShutdown,
    /// A task panicked; the connection is restarted.
    Panic,
    /// The runtime was stopped on purpose.
    Stopped,
    /// A subscribed stream sent nothing for longer than its expected cadence allows (a
    /// wrong route, a muted stream): reported, never waited on silently.
    StreamSilent {
        /// The channel whose stream is silent (`book`, `bbo`, `funding`).
        channel: &'static str,
        /// Milliseconds since the subscription or the stream's last frame.
        ms: u64,
    },
    /// A connection reached its planned lifetime and was replaced by a fresh one.
    Rollover {
        /// Rollovers of this socket so far.
        count: u32,
    },
    /// The venue's REST rate limit answered (429 = throttled, 418 = banned); requests wait.
    RateLimited {
        /// HTTP status.
        http_status: u16,
        /// Pause before the next request, ms.
        retry_ms: u64,
    },
    /// A websocket frame over the size bound: the connection is dropped and reopened.
    FrameTooLarge {
        /// The bound, bytes.
        limit: usize,
    },
    /// The consumer fell behind on book updates: rather than drop any, the book resyncs
    /// from a fresh snapshot.
    SlowConsumer {
        /// Bus bound (events).
        capacity: usize,
    },
    /// The venue's circuit breaker opened after repeated connection failures.
    CircuitOpen {
        /// Consecutive failures.
        failures: u32,
        /// Cool-down before a probe, ms.
        cooldown_ms: u64,
    },
    /// The cool-down ended: one probe connection is tried.
    CircuitHalfOpen,
    /// The venue answered again: the circuit breaker closed.
    CircuitClosed,
    /// A status received from the message bus (published by a collector): its reason code
    /// and text as the collector rendered them.
    Relayed {
        /// Reason code (one of the codes above; `relayed` when the collector sent an unknown one).
        code: &'static str,
        /// Text as rendered by the collector.
        message: Box<str>,
    },
    /// Messages of a bus subject never arrived (publisher sequence numbers skipped).
    BusGap {
        /// Publisher sequence expected.
        expected: u64,
        /// Publisher sequence received.
        got: u64,
    },
    /// Publishing to the message bus failed; messages are retried until stored (reported
    /// at failure 1, 2, 4, 8... of a streak).
    BusPublishFailed {
        /// Failures in a row so far.
        attempt: u32,
    },
}

impl StatusReason {
    /// Short machine-readable reason (`gap`, `malformed_frame`, ...), `None` for no reason.
    #[must_use]
    pub fn code(&self) -> Option<&'static str> {
        Some(match self {
            Self::None => return None,
            Self::Gap { .. } => "gap",
            Self::Checksum { .. } => "checksum",
            Self::SnapshotTooOld { .. } => "snapshot_too_old",
            Self::BufferOverflow { .. } => "buffer_overflow",
            Self::MalformedFrame { .. } => "malformed_frame",
            Self::UnknownEvent { .. } => "unknown_event",
            Self::UnknownSymbol { .. } => "unknown_symbol",
            Self::SnapshotFailed { .. } => "snapshot_failed",
            Self::InstrumentsFailed { .. } => "instruments_failed",
            Self::SubscribeError { .. } | Self::VenueRejected { .. } => "subscribe_error",
            Self::Closed { .. } => "closed",
            Self::ConnectFailed { .. } => "connect_failed",
            Self::Silent { .. } => "stale",
            Self::ServerShutdown => "server_shutdown",
            Self::Panic => "panic",
            Self::Stopped => "stopped",
            Self::StreamSilent { .. } => "stream_silent",
            Self::Rollover { .. } => "rollover",
            Self::RateLimited { .. } => "rate_limited",
            Self::FrameTooLarge { .. } => "frame_too_large",
            Self::SlowConsumer { .. } => "slow_consumer",
            Self::CircuitOpen { .. } => "circuit_open",
            Self::CircuitHalfOpen => "circuit_half_open",
            Self::CircuitClosed => "circuit_closed",
            Self::Relayed { code, .. } => code,
            Self::BusGap { .. } => "bus_gap",
            Self::BusPublishFailed { .. } => "bus_publish_failed",
        })
    }

    /// Every reason code `code` can return (a relayed status maps its code back onto these).
    pub const CODES: [&'static str; 25] = [
        "gap",
        "checksum",
        "snapshot_too_old",
        "buffer_overflow",
        "malformed_frame",
        "unknown_event",
        "unknown_symbol",
        "snapshot_failed",
        "instruments_failed",
        "subscribe_error",
        "closed",
        "connect_failed",
        "stale",
        "server_shutdown",
        "panic",
        "stopped",
        "stream_silent",
        "rollover",
        "rate_limited",
        "frame_too_large",
        "slow_consumer",
        "circuit_open",
        "circuit_half_open",
        "circuit_closed",
        "bus_gap",
    ];

    /// The static code equal to `code` (`relayed` for a code this build does not know).
    #[must_use]
    pub fn static_code(code: &str) -> &'static str {
        if code == "bus_publish_failed" {
            return "bus_publish_failed";
        }
        Self::CODES
            .iter()
            .find(|c| **c == code)
            .copied()
            .unwrap_or("relayed")
    }

    /// Human-readable detail (called only when a status is reported).
    #[must_use]
    pub fn render(&self) -> String {
        match self {
            Self::None => String::new(),
            Self::Gap { expected, got } => {
                format!("sequence gap: expected update id {expected}, got {got}")
            }
            Self::Checksum { expected, computed } => format!(
                "book checksum mismatch: venue sent {expected}, local book gives {computed}"
            ),
            Self::SnapshotTooOld {
                snapshot,
                first_buffered,
            } => format!(
                "snapshot lastUpdateId {snapshot} older than first buffered diff U={first_buffered}; refetching"
            ),
            Self::BufferOverflow { capacity } => {
                format!("diff buffer full ({capacity} diffs) while waiting for a snapshot; restarting sync")
            }
            Self::MalformedFrame { len, offset } => {
                format!("malformed frame ({len} bytes): invalid JSON, a missing field or a bad number near byte {offset}")
            }
            Self::UnknownEvent { name } => format!("unknown event type or stream '{name}'"),
            Self::UnknownSymbol { symbol } => format!("unknown symbol '{symbol}'"),
            Self::SnapshotFailed {
                http_status,
                attempt,
            } => {
                if *http_status == 0 {
                    format!("depth snapshot request failed (transport error), attempt {attempt}")
                } else {
                    format!("depth snapshot request failed with HTTP {http_status}, attempt {attempt}")
                }
            }
            Self::InstrumentsFailed { http_status } => {
                format!("instrument request failed (HTTP {http_status})")
            }
            Self::SubscribeError { code, msg } => {
                format!("venue rejected request: code {code}: {msg}")
            }
            Self::VenueRejected {
                code,
                channel,
                inst,
                msg,
            } => match (channel.is_empty(), inst.is_empty()) {
                (true, true) => format!("venue rejected request: code {code}: {msg}"),
                (false, true) => {
                    format!("venue rejected request: code {code} (channel {channel}): {msg}")
                }
                (true, false) => format!("venue rejected request: code {code} ({inst}): {msg}"),
                (false, false) => format!(
                    "venue rejected request: code {code} (channel {channel}, {inst}): {msg}"
                ),
            },
            Self::Closed { code } => format!("connection closed (code {code})"),
            Self::ConnectFailed { attempt, retry_ms } => {
                format!("connect failed (attempt {attempt}); retrying in {retry_ms} ms")
            }
            Self::Silent { ms } => format!("no data for {ms} ms"),
            Self::ServerShutdown => "venue announced server shutdown".to_string(),
            Self::Panic => "internal panic in connection task; restarting".to_string(),
            Self::Stopped => "stopped on request".to_string(),
            Self::StreamSilent { channel, ms } => {
                format!("subscribed {channel} stream sent nothing for {ms} ms")
            }
            Self::Rollover { count } => {
                format!("connection lifetime reached: switched to a fresh connection (rollover {count})")
            }
            Self::RateLimited {
                http_status,
                retry_ms,
            } => format!("REST rate limit hit (HTTP {http_status}); requests paused for {retry_ms} ms"),
            Self::FrameTooLarge { limit } => {
                format!("frame too large (over {limit} bytes); connection dropped and reopened")
            }
            Self::SlowConsumer { capacity } => format!(
                "consumer too slow for book updates (bus full at {capacity} events); resyncing from a fresh snapshot"
            ),
            Self::CircuitOpen {
                failures,
                cooldown_ms,
            } => format!(
                "circuit breaker open after {failures} consecutive connection failures; next probe in {cooldown_ms} ms"
            ),
            Self::CircuitHalfOpen => "circuit breaker half-open: probing the venue".to_string(),
            Self::CircuitClosed => "circuit breaker closed: the venue answers again".to_string(),
            Self::Relayed { message, .. } => message.to_string(),
            Self::BusGap { expected, got } => format!(
                "bus messages lost: publisher sequence {expected} expected, {got} received"
            ),
            Self::BusPublishFailed { attempt } => {
                format!("publish to the bus failed ({attempt} failures in a row); retrying until stored")
            }
        }
    }
}

/// A feed or book health event (channel `status`).
#[derive(Debug, Clone)]
pub struct Status {
    /// Venue.
    pub venue: Venue,
    /// Symbol, when the status concerns one book.
    pub sym: Option<Arc<SymbolMeta>>,
    /// What happened.
    pub kind: StatusKind,
    /// Why.
    pub reason: StatusReason,
    /// Book state after the event, when it concerns a book.
    pub state: Option<BookState>,
    /// Local time, ns.
    pub ts: i64,
}

/// Every normalized event.
#[derive(Debug, Clone)]
pub enum Event {
    /// A trade.
    Trade(Trade),
    /// A best bid/offer change.
    Bbo(Bbo),
    /// A book update.
    Book(BookDelta),
    /// A status.
    Status(Status),
    /// A ticker.
    Ticker(Box<Ticker>),
    /// Funding and mark price.
    Funding(Box<Funding>),
    /// A liquidation.
    Liquidation(Liquidation),
    /// Open interest.
    OpenInterest(OpenInterest),
}

impl Event {
    /// Exchange time, ns (0 for statuses and venues that send none).
    #[must_use]
    pub fn ts_exchange(&self) -> i64 {
        match self {
            Self::Trade(e) => e.ts_exchange,
            Self::Bbo(e) => e.ts_exchange,
            Self::Book(e) => e.ts_exchange,
            Self::Ticker(e) => e.ts_exchange,
            Self::Funding(e) => e.ts_exchange,
            Self::Liquidation(e) => e.ts_exchange,
            Self::OpenInterest(e) => e.ts_exchange,
            Self::Status(_) => 0,
        }
    }

    /// Local receive time, ns (a status's own time).
    #[must_use]
    pub fn ts_recv(&self) -> i64 {
        match self {
            Self::Trade(e) => e.ts_recv,
            Self::Bbo(e) => e.ts_recv,
            Self::Book(e) => e.ts_recv,
            Self::Ticker(e) => e.ts_recv,
            Self::Funding(e) => e.ts_recv,
            Self::Liquidation(e) => e.ts_recv,
            Self::OpenInterest(e) => e.ts_recv,
            Self::Status(e) => e.ts,
        }
    }

    /// The interned symbol the event concerns (`None` for a feed-level status).
    #[must_use]
    pub fn sym(&self) -> Option<&Arc<SymbolMeta>> {
        match self {
            Self::Trade(e) => Some(&e.sym),
            Self::Bbo(e) => Some(&e.sym),
            Self::Book(e) => Some(&e.sym),
            Self::Ticker(e) => Some(&e.sym),
            Self::Funding(e) => Some(&e.sym),
            Self::Liquidation(e) => Some(&e.sym),
            Self::OpenInterest(e) => Some(&e.sym),
            Self::Status(s) => s.sym.as_ref(),
        }
    }

    /// The event's venue.
    #[must_use]
    pub fn venue(&self) -> Option<crate::model::Venue> {
        match self {
            Self::Trade(e) => Some(e.sym.venue),
            Self::Bbo(e) => Some(e.sym.venue),
            Self::Book(e) => Some(e.sym.venue),
            Self::Ticker(e) => Some(e.sym.venue),
            Self::Funding(e) => Some(e.sym.venue),
            Self::Liquidation(e) => Some(e.sym.venue),
            Self::OpenInterest(e) => Some(e.sym.venue),
            Self::Status(e) => Some(e.venue),
        }
    }

    /// Channel name: `trades`, `bbo`, `book`, `status`.
    #[must_use]
    pub fn channel(&self) -> &'static str {
        match self {
            Self::Trade(_) => "trades",
            Self::Bbo(_) => "bbo",
            Self::Book(_) => "book",
            Self::Status(_) => "status",
            Self::Ticker(_) => "ticker",
            Self::Funding(_) => "funding",
            Self::Liquidation(_) => "liquidations",
            Self::OpenInterest(_) => "open_interest",
        }
    }
}
#[cfg(test)]
mod size_tests {
    use super::{Event, Funding, Ticker};

    /// Events are moved by value through the batch, the bus queue and the Python hand-off, so
    /// the enum is kept to the size of its common variants: the wide, rare ones are boxed.
    #[test]
    fn an_event_is_no_wider_than_a_book_delta_and_its_tag() {
        assert!(
            std::mem::size_of::<Event>() <= 96,
            "{}",
            std::mem::size_of::<Event>()
        );
        assert!(std::mem::size_of::<Ticker>() > 96 && std::mem::size_of::<Funding>() > 96);
    }
}
