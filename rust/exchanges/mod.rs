//! Venue adapters. A venue is an [`ExchangeConnector`] (URLs, subscribe frames, limits, REST
//! calls) plus an [`ExchangeProcessor`] (frame to normalized events, book maintenance and its
//! integrity rules). Processors are pure: they take `ts_recv` as input and never read a clock,
//! so the same code serves live feeds and deterministic replay.

pub mod binance;

use std::sync::Arc;

use crate::model::{Event, SymbolMeta, Venue};

/// Which channels a feed subscribes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Channels {
    /// Trades.
    pub trades: bool,
    /// Maintained L2 book.
    pub book: bool,
    /// Best bid/offer.
    pub bbo: bool,
}

impl Channels {
    /// Every channel.
    pub const ALL: Channels = Channels {
        trades: true,
        book: true,
        bbo: true,
    };

    /// Parse channel names; returns the first unknown name as the error.
    ///
    /// # Errors
    /// The unknown channel name.
    pub fn parse<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Self, &'a str> {
        let mut c = Channels {
            trades: false,
            book: false,
            bbo: false,
        };
        for n in names {
            match n {
                "trades" => c.trades = true,
                "book" => c.book = true,
                "bbo" => c.bbo = true,
                other => return Err(other),
            }
        }
        Ok(c)
    }
}

/// Something a processor needs the connection task to do (it does no I/O itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Fetch a REST depth snapshot for the symbol at this index.
    FetchSnapshot(usize),
}

/// The network side of a venue: where to connect and what to send.
pub trait ExchangeConnector: Send + Sync {
    /// The venue.
    fn venue(&self) -> Venue;
    /// Websocket URL to connect to.
    fn ws_url(&self) -> String;
    /// Stream names for one symbol and the requested channels.
    fn stream_names(&self, native: &str, channels: Channels) -> Vec<String>;
    /// Subscribe frames for these streams, split to respect per-message limits.
    fn subscribe_frames(&self, streams: &[String], first_id: u64) -> Vec<String>;
    /// REST URL of a depth snapshot.
    fn snapshot_url(&self, native: &str) -> String;
    /// REST URL of instrument metadata for these symbols.
    fn instruments_url(&self, natives: &[String]) -> String;
    /// Venue symbol for a configured symbol (`BTC-USDT` or `BTCUSDT` to `BTCUSDT`).
    fn to_native(&self, symbol: &str) -> String;
    /// Streams one socket may carry.
    fn max_streams_per_connection(&self) -> usize;
    /// Client messages per second the venue tolerates on one socket.
    fn max_client_msgs_per_s(&self) -> u32;
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
    /// The subscribed symbols, by index.
    fn symbols(&self) -> &[Arc<SymbolMeta>];
    /// Processor counters as (name, value) pairs.
    fn counters(&self) -> Vec<(&'static str, u64)>;
}
