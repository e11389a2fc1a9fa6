//! Binance connection facts: hosts, stream names, SUBSCRIBE frames, REST paths and limits
//! (exchanges.md §2.1–2.4, §2.7).

use std::fmt::Write as _;

use std::sync::Arc;

use super::book::Market;
use super::processor::{instruments_from_exchange_info, BinanceProcessor};
use crate::exchanges::{Channels, ExchangeConnector, ExchangeProcessor, Keepalive, SocketPlan};
use crate::model::{Instrument, SymbolMeta, Venue};

/// Which trade stream to subscribe to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TradeStream {
    /// `<symbol>@trade`: one event per trade.
    Trade,
    /// `<symbol>@aggTrade`: fills of one taker order aggregated.
    AggTrade,
}

/// Binance spot / Binance.US connector.
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
    /// A connector; `ws_url`/`rest_url` override the venue hosts (simulator, testnets).
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
        Self {
            venue,
            market,
            ws_base: ws_url.unwrap_or(ws).trim_end_matches('/').to_string(),
            rest_base: rest_url.unwrap_or(rest).trim_end_matches('/').to_string(),
            depth_limit: depth_limit.clamp(1, 5000),
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
}

impl BinanceConnector {
    /// The combined-stream websocket URL (streams are added by live SUBSCRIBE).
    #[must_use]
    pub fn ws_url(&self) -> String {
        format!("{}/stream", self.ws_base)
    }

    /// Stream names for one symbol and the requested channels.
    #[must_use]
    pub fn stream_names(&self, native: &str, channels: Channels) -> Vec<String> {
        let lower = native.to_ascii_lowercase();
        let mut v = Vec::with_capacity(3);
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
        if natives.is_empty() {
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
}

impl ExchangeConnector for BinanceConnector {
    fn venue(&self) -> Venue {
        self.venue
    }

    fn to_native(&self, symbol: &str) -> String {
        symbol.replace(['-', '/', '_'], "").to_ascii_uppercase()
    }

    fn instruments_urls(&self, natives: &[String]) -> Vec<String> {
        // the venue rejects the whole request when one symbol is unknown: then ask for all
        vec![self.exchange_info_url(natives), self.exchange_info_url(&[])]
    }

    fn parse_instruments(&self, body: &str) -> Result<Vec<Instrument>, usize> {
        instruments_from_exchange_info(body)
    }

    fn plan(&self, symbols: &[Arc<SymbolMeta>], channels: Channels) -> Vec<SocketPlan> {
        let per_symbol = self.stream_names("X", channels).len().max(1);
        let symbols_per_socket = (self.max_streams_per_connection() / per_symbol).max(1);
        symbols
            .chunks(symbols_per_socket)
            .map(|chunk| SocketPlan {
                url: self.ws_url(),
                streams: chunk
                    .iter()
                    .flat_map(|m| self.stream_names(&m.native, channels))
                    .collect(),
                symbols: chunk.to_vec(),
                channels,
            })
            .collect()
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_urls_streams_and_frames() {
        let c = BinanceConnector::new(
            Venue::Binance,
            Some("ws://127.0.0.1:9/"),
            None,
            1000,
            TradeStream::Trade,
        );
        assert_eq!(c.ws_url(), "ws://127.0.0.1:9/stream");
        assert_eq!(c.to_native("btc-usdt"), "BTCUSDT");
        let s = c.stream_names("BTCUSDT", Channels::ALL);
        assert_eq!(
            s,
            vec!["btcusdt@depth@100ms", "btcusdt@bookTicker", "btcusdt@trade"]
        );
        let f = c.subscribe_streams(&s, 1);
        assert_eq!(
            f,
            vec![
                r#"{"method":"SUBSCRIBE","params":["btcusdt@depth@100ms","btcusdt@bookTicker","btcusdt@trade"],"id":1}"#
            ]
        );
        assert_eq!(
            c.snapshot_url("BTCUSDT"),
            "https://api.binance.com/api/v3/depth?symbol=BTCUSDT&limit=1000"
        );
        let urls = c.instruments_urls(&["A".into(), "B".into()]);
        assert!(urls[0].ends_with("symbols=%5B%22A%22%2C%22B%22%5D"));
        assert_eq!(urls[1], "https://api.binance.com/api/v3/exchangeInfo");
        let us = BinanceConnector::new(Venue::BinanceUs, None, None, 100, TradeStream::AggTrade);
        assert_eq!(us.ws_url(), "wss://stream.binance.us:9443/stream");
        let many: Vec<String> = (0..450).map(|i| format!("s{i}@trade")).collect();
        assert_eq!(us.subscribe_streams(&many, 10).len(), 3);
        // 500 symbols x 3 streams: 341 symbols fit under 1024 streams, so two sockets
        let metas: Vec<_> = (0..500)
            .map(|i| SymbolMeta::new(Venue::Binance, &format!("S{i}USDT"), "x", None))
            .collect();
        let plans = c.plan(&metas, Channels::ALL);
        assert_eq!(plans.len(), 2);
        assert!(plans.iter().all(|p| p.streams.len() <= 1024));
        assert_eq!(plans.iter().map(|p| p.symbols.len()).sum::<usize>(), 500);
    }
}
