//! Binance connection facts for spot, Binance.US, USD-M and COIN-M: hosts, the USD-M route
//! split, stream names, SUBSCRIBE frames, REST paths and weights, limits (exchanges.md
//! 2.1–2.4, 2.7, 3.1–3.2, 3.5–3.6).
//!
//! Since 2026 USD-M serves depth and bookTicker on `/public` and trades, mark price and
//! liquidations on `/market`; the unrouted URL accepts market subscriptions and then sends
//! nothing. So a USD-M feed plans one socket group per route; COIN-M and spot are unrouted.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use super::book::Market;
use super::futures::open_interest_event;
use super::instruments::{instruments_from_exchange_info, weight_limit_from_exchange_info};
use super::processor::BinanceProcessor;
use crate::exchanges::{Channels, ExchangeConnector, ExchangeProcessor, Keepalive, SocketPlan};
use crate::model::{Event, Instrument, SymbolMeta, Venue};
use crate::net::budget::WeightLimit;

/// Every Binance connection is closed by the venue after 24 hours (exchanges.md 2.4, 3.2).
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// Snapshot depths the futures REST API accepts (exchanges.md 3.5).
const FUTURES_DEPTH_LIMITS: [u32; 7] = [5, 10, 20, 50, 100, 500, 1000];

/// Which trade stream to subscribe to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TradeStream {
    /// `<symbol>@trade`: one event per trade (undocumented on futures, served on `/public`).
    Trade,
    /// `<symbol>@aggTrade`: fills of one taker order aggregated.
    AggTrade,
}

/// A websocket route of the venue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `/stream` (spot, COIN-M).
    Unrouted,
    /// USD-M `/public/stream`: depth, bookTicker (and the undocumented `@trade`).
    Public,
    /// USD-M `/market/stream`: aggTrade, markPrice, forceOrder.
    Market,
}

impl Route {
    fn path(self) -> &'static str {
        match self {
            Self::Unrouted => "/stream",
            Self::Public => "/public/stream",
            Self::Market => "/market/stream",
        }
    }
}

/// Binance connector (spot, Binance.US, USD-M, COIN-M).
#[derive(Debug, Clone)]
pub struct BinanceConnector {
    venue: Venue,
    market: Market,
    ws_base: String,
    rest_base: String,
    depth_limit: u32,
    trade_stream: TradeStream,
}

impl BinanceConnector {
    /// A connector; `ws_url`/`rest_url` override the venue hosts (simulator, testnets). For
    /// USD-M the websocket override is the base the routes are appended to.
    #[must_use]
    pub fn new(
        venue: Venue,
        ws_url: Option<&str>,
        rest_url: Option<&str>,
        depth_limit: u32,
        trade_stream: TradeStream,
    ) -> Self {
        let (ws, rest, market) = match venue {
            Venue::BinanceUs => (
                "wss://stream.binance.us:9443",
                "https://api.binance.us",
                Market::Spot,
            ),
            Venue::BinanceUsdm => (
                "wss://fstream.binance.com",
                "https://fapi.binance.com",
                Market::Futures,
            ),
            Venue::BinanceCoinm => (
                "wss://dstream.binance.com",
                "https://dapi.binance.com",
                Market::Futures,
            ),
            _ => (
                "wss://stream.binance.com:9443",
                "https://api.binance.com",
                Market::Spot,
            ),
        };
        let depth_limit = match market {
            Market::Spot => depth_limit.clamp(1, 5000),
            // the futures API takes only fixed depths: the smallest one that covers the request
            Market::Futures => FUTURES_DEPTH_LIMITS
                .into_iter()
                .find(|l| *l >= depth_limit)
                .unwrap_or(1000),
        };
        Self {
            venue,
            market,
            ws_base: ws_url.unwrap_or(ws).trim_end_matches('/').to_string(),
            rest_base: rest_url.unwrap_or(rest).trim_end_matches('/').to_string(),
            depth_limit,
            trade_stream,
        }
    }

    /// The market rules this connector's venue follows.
    #[must_use]
    pub fn market(&self) -> Market {
        self.market
    }

    fn rest_prefix(&self) -> &'static str {
        match self.venue {
            Venue::BinanceUsdm => "/fapi/v1",
            Venue::BinanceCoinm => "/dapi/v1",
            _ => "/api/v3",
        }
    }

    /// The routes this venue's streams are spread over.
    #[must_use]
    pub fn routes(&self) -> &'static [Route] {
        match self.venue {
            Venue::BinanceUsdm => &[Route::Public, Route::Market],
            _ => &[Route::Unrouted],
        }
    }

    /// The channels a route carries.
    #[must_use]
    pub fn route_channels(&self, route: Route, channels: Channels) -> Channels {
        let futures = self.market == Market::Futures;
        let trade_on_public = self.trade_stream == TradeStream::Trade;
        let (book_bbo, trades, market_streams) = match route {
            Route::Unrouted => (true, true, futures),
            Route::Public => (true, trade_on_public, false),
            Route::Market => (false, !trade_on_public, true),
        };
        Channels {
            trades: channels.trades && trades,
            book: channels.book && book_bbo,
            bbo: channels.bbo && book_bbo,
            ticker: false,
            funding: channels.funding && market_streams,
            liquidations: channels.liquidations && market_streams,
            // polled over REST by the feed, never a stream
            open_interest: false,
        }
    }

    /// The combined-stream websocket URL of a route (streams are added by live SUBSCRIBE).
    #[must_use]
    pub fn ws_url(&self, route: Route) -> String {
        format!("{}{}", self.ws_base, route.path())
    }

    /// Stream names for one symbol and the channels of one route.
    #[must_use]
    pub fn stream_names(&self, native: &str, channels: Channels) -> Vec<String> {
        let lower = native.to_ascii_lowercase();
        let mut v = Vec::with_capacity(5);
        if channels.book {
            v.push(format!("{lower}@depth@100ms"));
        }
        if channels.bbo {
            v.push(format!("{lower}@bookTicker"));
        }
        if channels.trades {
            v.push(match self.trade_stream {
                TradeStream::Trade => format!("{lower}@trade"),
                TradeStream::AggTrade => format!("{lower}@aggTrade"),
            });
        }
        if self.market == Market::Futures {
            if channels.funding {
                // the 1 s variant gives the silent-stream watchdog a tight cadence
                v.push(format!("{lower}@markPrice@1s"));
            }
            if channels.liquidations {
                v.push(format!("{lower}@forceOrder"));
            }
        }
        v
    }

    /// Streams one socket may carry.
    #[must_use]
    pub fn max_streams_per_connection(&self) -> usize {
        match self.market {
            Market::Spot => 1024,
            Market::Futures => 200,
        }
    }

    /// SUBSCRIBE frames for these stream names, at most 200 per frame.
    #[must_use]
    pub fn subscribe_streams(&self, streams: &[String], first_id: u64) -> Vec<String> {
        streams
            .chunks(200)
            .enumerate()
            .map(|(i, chunk)| {
                let mut s = String::from(r#"{"method":"SUBSCRIBE","params":["#);
                for (j, name) in chunk.iter().enumerate() {
                    if j > 0 {
                        s.push(',');
                    }
                    s.push('"');
                    s.push_str(name);
                    s.push('"');
                }
                let _ = write!(s, r#"],"id":{}}}"#, first_id + i as u64);
                s
            })
            .collect()
    }

    fn exchange_info_url(&self, natives: &[String]) -> String {
        // the futures exchangeInfo takes no symbol filter
        if natives.is_empty() || self.market == Market::Futures {
            return format!("{}{}/exchangeInfo", self.rest_base, self.rest_prefix());
        }
        // symbols=["A","B"] percent-encoded
        let mut q = String::from("%5B");
        for (i, n) in natives.iter().enumerate() {
            if i > 0 {
                q.push_str("%2C");
            }
            q.push_str("%22");
            q.push_str(n);
            q.push_str("%22");
        }
        q.push_str("%5D");
        format!(
            "{}{}/exchangeInfo?symbols={}",
            self.rest_base,
            self.rest_prefix(),
            q
        )
    }

    /// Native symbol of a normalized futures name (`BTC-USDT-PERP`, `BTC-USD-20211231`).
    fn futures_native(&self, parts: &[&str]) -> Option<String> {
        let [base, quote, tail] = parts else {
            return None;
        };
        let pair = format!("{base}{quote}").to_ascii_uppercase();
        if tail.eq_ignore_ascii_case("PERP") {
            return Some(match self.venue {
                Venue::BinanceCoinm => format!("{pair}_PERP"),
                _ => pair,
            });
        }
        // YYYYMMDD: the native suffix is YYMMDD (delivery is 08:00 UTC, the same day)
        let yymmdd = tail.get(2..).filter(|_| tail.len() == 8)?;
        yymmdd
            .bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| format!("{pair}_{yymmdd}"))
    }
}

impl ExchangeConnector for BinanceConnector {
    fn venue(&self) -> Venue {
        self.venue
    }

    fn to_native(&self, symbol: &str) -> String {
        if self.market == Market::Futures {
            let parts: Vec<&str> = symbol.split('-').collect();
            if let Some(n) = self.futures_native(&parts) {
                return n;
            }
            // futures natives keep their `_` (BTCUSD_PERP, BTCUSDT_210924)
            return symbol.replace(['-', '/'], "").to_ascii_uppercase();
        }
        symbol.replace(['-', '/', '_'], "").to_ascii_uppercase()
    }

    fn instruments_urls(&self, natives: &[String]) -> Vec<String> {
        if self.market == Market::Futures {
            return vec![self.exchange_info_url(&[])];
        }
        // the venue rejects the whole request when one symbol is unknown: then ask for all
        vec![self.exchange_info_url(natives), self.exchange_info_url(&[])]
    }

    fn parse_instruments(&self, body: &str) -> Result<Vec<Instrument>, usize> {
        instruments_from_exchange_info(self.venue, body)
    }

    fn plan(&self, symbols: &[Arc<SymbolMeta>], channels: Channels) -> Vec<SocketPlan> {
        let mut plans = Vec::new();
        for &route in self.routes() {
            let ch = self.route_channels(route, channels);
            let per_symbol = self.stream_names("x", ch).len();
            if per_symbol == 0 {
                continue;
            }
            let symbols_per_socket = (self.max_streams_per_connection() / per_symbol).max(1);
            for chunk in symbols.chunks(symbols_per_socket) {
                plans.push(SocketPlan {
                    url: self.ws_url(route),
                    streams: chunk
                        .iter()
                        .flat_map(|m| self.stream_names(&m.native, ch))
                        .collect(),
                    symbols: chunk.to_vec(),
                    channels: ch,
                });
            }
        }
        plans
    }

    fn subscribe_frames(&self, plan: &SocketPlan, first_id: u64) -> Vec<String> {
        self.subscribe_streams(&plan.streams, first_id)
    }

    fn snapshot_url(&self, native: &str) -> String {
        format!(
            "{}{}/depth?symbol={}&limit={}",
            self.rest_base,
            self.rest_prefix(),
            native,
            self.depth_limit
        )
    }

    fn keepalive(&self) -> Keepalive {
        Keepalive::ServerPings
    }

    fn max_client_msgs_per_s(&self) -> u32 {
        match self.market {
            Market::Spot => 5,
            Market::Futures => 10,
        }
    }

    fn processor(&self, plan: &SocketPlan) -> Box<dyn ExchangeProcessor> {
        Box::new(BinanceProcessor::from_metas(
            self.venue,
            self.market,
            &plan.symbols,
            plan.channels,
        ))
    }

    fn snapshot_weight(&self) -> u32 {
        let l = self.depth_limit;
        match self.market {
            Market::Spot => match l {
                0..=100 => 5,
                101..=500 => 25,
                501..=1000 => 50,
                _ => 250,
            },
            Market::Futures => match l {
                0..=50 => 2,
                51..=100 => 5,
                101..=500 => 10,
                _ => 20,
            },
        }
    }

    fn instruments_weight(&self) -> u32 {
        match self.market {
            Market::Spot => 20,
            // not documented for futures (exchanges.md 3.5): assume the spot weight
            Market::Futures => 20,
        }
    }

    fn weight_limit(&self) -> WeightLimit {
        let limit = match self.venue {
            Venue::BinanceUsdm | Venue::BinanceCoinm => 2400,
            // Binance.US publishes 1200 (2021 capture); binance.com 6000 since 2023
            Venue::BinanceUs => 1200,
            _ => 6000,
        };
        WeightLimit {
            limit,
            window: Duration::from_secs(60),
        }
    }

    fn parse_weight_limit(&self, body: &str) -> Option<WeightLimit> {
        weight_limit_from_exchange_info(body)
    }

    fn used_weight_header(&self, limit: WeightLimit) -> Option<String> {
        // X-MBX-USED-WEIGHT-(intervalNum)(intervalLetter), e.g. x-mbx-used-weight-1m
        let s = limit.window.as_secs().max(1);
        let (n, unit) = [(86_400, 'd'), (3600, 'h'), (60, 'm')]
            .into_iter()
            .find(|(u, _)| s % u == 0)
            .map_or((s, 's'), |(u, c)| (s / u, c));
        Some(format!("x-mbx-used-weight-{n}{unit}"))
    }

    fn connection_lifetime(&self) -> Option<Duration> {
        Some(CONNECTION_LIFETIME)
    }

    fn open_interest_url(&self, native: &str) -> Option<String> {
        (self.market == Market::Futures).then(|| {
            format!(
                "{}{}/openInterest?symbol={}",
                self.rest_base,
                self.rest_prefix(),
                native
            )
        })
    }

    fn parse_open_interest(
        &self,
        sym: &Arc<SymbolMeta>,
        body: &str,
        ts_recv: i64,
    ) -> Result<Event, usize> {
        open_interest_event(sym, body, ts_recv)
    }
}

#[cfg(test)]
mod tests;
