//! OKX connection facts: the `/ws/v5/public` and `/ws/v5/business` sockets, `subscribe` /
//! `unsubscribe` ops, the text `ping` keepalive, which wire channel carries each normalized
//! channel, how subscriptions are spread over sockets, and the REST URLs (exchanges.md §4.1–4.3,
//! §4.6).

use std::sync::Arc;
use std::time::Duration;

use super::instruments::{family_of, inst_type_of, parse_instruments, to_native};
use super::processor::OkxProcessor;
use crate::exchanges::{Channels, ExchangeConnector, ExchangeProcessor, Keepalive, SocketPlan};
use crate::model::{Instrument, SymbolMeta, Venue};
use crate::net::budget::WeightLimit;
use crate::pipeline::feed::FeedSpec;

/// REST weight per window for the venue: the public books limit, 40 requests per 2 s
/// (exchanges.md 4.6); an instruments request weighs 2 (20 per 2 s).
const OKX_REST_WEIGHT_PER_WINDOW: u32 = 40;
/// The REST rate-limit window.
const OKX_REST_WINDOW: Duration = Duration::from_secs(2);

/// Deep-book channels per socket: OKX recommends fewer than 30 per connection.
pub const MAX_DEEP_BOOKS_PER_SOCKET: usize = 25;
/// Subscription args per socket. The hard per-connection limits (close codes 4008/4009) are
/// undocumented, so stay well clear of anything observed.
pub const MAX_ARGS_PER_SOCKET: usize = 240;
/// Args per subscribe request; with ~50-byte args this stays far below the 64 KB limit.
pub const MAX_ARGS_PER_REQUEST: usize = 100;
/// Idle time before the text `ping` (the venue closes a connection silent for 30 s).
pub const KEEPALIVE_AFTER: Duration = Duration::from_secs(20);
/// Levels of a REST bootstrap snapshot (`sz` of `/api/v5/market/books`, at most 400).
pub const MAX_REST_DEPTH: u32 = 400;

/// Which wire channel maintains the `book` channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BookChannel {
    /// `books`: 400 levels, snapshot then updates every 100 ms (everyone).
    Books,
    /// `books5`: full top-5 snapshot every 100 ms (everyone).
    Books5,
    /// `books-l2-tbt`: 400 levels, updates every 10 ms (login, VIP tiers).
    BooksL2Tbt,
    /// `books50-l2-tbt`: 50 levels, updates every 10 ms (login, VIP tiers).
    Books50L2Tbt,
}

impl BookChannel {
    /// The wire name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Books => "books",
            Self::Books5 => "books5",
            Self::BooksL2Tbt => "books-l2-tbt",
            Self::Books50L2Tbt => "books50-l2-tbt",
        }
    }

    /// Snapshot then incremental updates chained by `prevSeqId`.
    #[must_use]
    pub fn incremental(self) -> bool {
        self != Self::Books5
    }
}

/// Which wire channel carries `trades`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TradeChannel {
    /// `trades` on /public: one message per taker order and fill price.
    Trades,
    /// `trades-all` on /business: one message per fill.
    TradesAll,
}

/// Venue-channel choices of an OKX feed (`venue_channels` in the feed config).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OkxChannelChoice {
    /// Book channel.
    pub book: BookChannel,
    /// Trade channel.
    pub trades: TradeChannel,
}

impl Default for OkxChannelChoice {
    fn default() -> Self {
        Self {
            book: BookChannel::Books,
            trades: TradeChannel::Trades,
        }
    }
}

/// Wire channels a feed may pick with `venue_channels`.
pub const VENUE_CHANNELS: [&str; 6] = [
    "books",
    "books5",
    "books-l2-tbt",
    "books50-l2-tbt",
    "trades",
    "trades-all",
];

impl OkxChannelChoice {
    /// Parse venue channel names (the rest use the defaults `books`, `trades`, `bbo-tbt`).
    ///
    /// # Errors
    /// The first name that is not one of [`VENUE_CHANNELS`].
    pub fn parse<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Self, &'a str> {
        let mut c = Self::default();
        for n in names {
            match n {
                "books" => c.book = BookChannel::Books,
                "books5" => c.book = BookChannel::Books5,
                "books-l2-tbt" => c.book = BookChannel::BooksL2Tbt,
                "books50-l2-tbt" => c.book = BookChannel::Books50L2Tbt,
                "trades" => c.trades = TradeChannel::Trades,
                "trades-all" => c.trades = TradeChannel::TradesAll,
                other => return Err(other),
            }
        }
        Ok(c)
    }
}

/// `{"channel":"<channel>","instId":"<inst_id>"}`
#[must_use]
pub fn inst_arg(channel: &str, inst_id: &str) -> String {
    let mut s = String::with_capacity(32 + channel.len() + inst_id.len());
    s.push_str(r#"{"channel":""#);
    s.push_str(channel);
    s.push_str(r#"","instId":""#);
    s.push_str(inst_id);
    s.push_str(r#""}"#);
    s
}

/// `{"channel":"<channel>","instType":"<inst_type>"}`
#[must_use]
pub fn type_arg(channel: &str, inst_type: &str) -> String {
    let mut s = String::with_capacity(34 + channel.len() + inst_type.len());
    s.push_str(r#"{"channel":""#);
    s.push_str(channel);
    s.push_str(r#"","instType":""#);
    s.push_str(inst_type);
    s.push_str(r#""}"#);
    s
}

/// `{"id":"<id>","op":"<op>","args":[<args>]}` (args already JSON objects).
#[must_use]
pub fn op_frame(op: &str, args: &[String], id: u64) -> String {
    let len: usize = args.iter().map(|a| a.len() + 1).sum();
    let mut s = String::with_capacity(40 + len);
    s.push_str(r#"{"id":""#);
    s.push_str(&id.to_string());
    s.push_str(r#"","op":""#);
    s.push_str(op);
    s.push_str(r#"","args":["#);
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(a);
    }
    s.push_str("]}");
    s
}

/// OKX v5 public market data connector.
#[derive(Debug, Clone)]
pub struct OkxConnector {
    ws_base: String,
    rest_base: String,
    choice: OkxChannelChoice,
    depth_limit: u32,
    keepalive_after: Duration,
}

impl OkxConnector {
    /// A connector; `ws_url`/`rest_url` override the venue hosts (simulator, demo trading).
    #[must_use]
    pub fn new(
        ws_url: Option<&str>,
        rest_url: Option<&str>,
        choice: OkxChannelChoice,
        depth_limit: u32,
        stale_after: Duration,
    ) -> Self {
        let ws = ws_url
            .unwrap_or("wss://ws.okx.com:8443")
            .trim_end_matches('/');
        // an override may name the socket path itself
        let ws = ws
            .strip_suffix("/ws/v5/public")
            .or_else(|| ws.strip_suffix("/ws/v5/business"))
            .unwrap_or(ws);
        Self {
            ws_base: ws.to_string(),
            rest_base: rest_url
                .unwrap_or("https://www.okx.com")
                .trim_end_matches('/')
                .to_string(),
            choice,
            depth_limit: depth_limit.clamp(1, MAX_REST_DEPTH),
            // ping well before the venue's 30 s, and before our own stale timer fires
            keepalive_after: KEEPALIVE_AFTER
                .min(stale_after / 3)
                .max(Duration::from_millis(100)),
        }
    }

    /// A connector for a feed spec.
    ///
    /// # Errors
    /// The first unknown name in `venue_channels`.
    pub fn from_spec(spec: &FeedSpec) -> Result<Self, String> {
        let choice = OkxChannelChoice::parse(spec.venue_channels.iter().map(String::as_str))
            .map_err(str::to_string)?;
        Ok(Self::new(
            spec.ws_url.as_deref(),
            spec.rest_url.as_deref(),
            choice,
            spec.depth_limit,
            spec.stale_after,
        ))
    }

    /// The public socket URL.
    #[must_use]
    pub fn public_url(&self) -> String {
        format!("{}/ws/v5/public", self.ws_base)
    }

    /// The business socket URL (`trades-all`).
    #[must_use]
    pub fn business_url(&self) -> String {
        format!("{}/ws/v5/business", self.ws_base)
    }

    /// The channel choice.
    #[must_use]
    pub fn choice(&self) -> OkxChannelChoice {
        self.choice
    }

    /// Public-socket args of one instrument for the requested channels.
    #[must_use]
    pub fn public_args(&self, inst_id: &str, channels: Channels) -> Vec<String> {
        let ty = inst_type_of(inst_id);
        let derivative = ty != "SPOT";
        let mut v = Vec::with_capacity(6);
        if channels.book {
            v.push(inst_arg(self.choice.book.name(), inst_id));
        }
        if channels.bbo {
            v.push(inst_arg("bbo-tbt", inst_id));
        }
        if channels.trades && self.choice.trades == TradeChannel::Trades {
            v.push(inst_arg("trades", inst_id));
        }
        if channels.ticker {
            v.push(inst_arg("tickers", inst_id));
        }
        if channels.funding && ty == "SWAP" {
            v.push(inst_arg("funding-rate", inst_id));
        }
        if channels.funding && derivative {
            v.push(inst_arg("mark-price", inst_id));
        }
        if channels.open_interest && derivative {
            v.push(inst_arg("open-interest", inst_id));
        }
        v
    }

    fn public_plans(&self, symbols: &[Arc<SymbolMeta>], channels: Channels) -> Vec<SocketPlan> {
        let deep = channels.book && self.choice.book != BookChannel::Books5;
        let per_symbol = self.public_args("X-Y-SWAP", channels).len().max(1);
        let mut per_socket = (MAX_ARGS_PER_SOCKET / per_symbol).max(1);
        if deep {
            per_socket = per_socket.min(MAX_DEEP_BOOKS_PER_SOCKET);
        }
        let mut ch = channels;
        ch.trades = channels.trades && self.choice.trades == TradeChannel::Trades;
        let mut plans: Vec<SocketPlan> = symbols
            .chunks(per_socket)
            .map(|chunk| SocketPlan {
                url: self.public_url(),
                streams: chunk
                    .iter()
                    .flat_map(|m| self.public_args(&m.native, ch))
                    .collect(),
                symbols: chunk.to_vec(),
                channels: Channels {
                    liquidations: false,
                    ..ch
                },
            })
            .collect();
        if channels.liquidations {
            // by instrument type, once per feed: the first public socket carries them
            let mut types: Vec<&'static str> = Vec::new();
            for m in symbols {
                let t = inst_type_of(&m.native);
                if t != "SPOT" && !types.contains(&t) {
                    types.push(t);
                }
            }
            if let Some(first) = plans.first_mut() {
                first
                    .streams
                    .extend(types.iter().map(|t| type_arg("liquidation-orders", t)));
                first.channels.liquidations = true;
            }
        }
        plans.retain(|p| !p.streams.is_empty());
        plans
    }
}

impl ExchangeConnector for OkxConnector {
    fn venue(&self) -> Venue {
        Venue::Okx
    }

    fn to_native(&self, symbol: &str) -> String {
        to_native(symbol)
    }

    fn instruments_urls(&self, natives: &[String]) -> Vec<String> {
        let base = format!("{}/api/v5/public/instruments?instType=", self.rest_base);
        let mut urls: Vec<String> = Vec::new();
        for n in natives {
            let t = inst_type_of(n);
            let url = if t == "OPTION" {
                format!("{base}OPTION&instFamily={}", family_of(n))
            } else {
                format!("{base}{t}")
            };
            if !urls.contains(&url) {
                urls.push(url);
            }
        }
        urls
    }

    fn instruments_merge(&self) -> bool {
        true
    }

    fn instrument_url(&self, native: &str) -> Option<String> {
        let t = inst_type_of(native);
        let family = if t == "OPTION" {
            format!("&instFamily={}", family_of(native))
        } else {
            String::new()
        };
        Some(format!(
            "{}/api/v5/public/instruments?instType={t}&instId={native}{family}",
            self.rest_base
        ))
    }

    fn parse_instruments(&self, body: &str) -> Result<Vec<Instrument>, usize> {
        parse_instruments(body)
    }

    fn plan(&self, symbols: &[Arc<SymbolMeta>], channels: Channels) -> Vec<SocketPlan> {
        let mut plans = self.public_plans(symbols, channels);
        if channels.trades && self.choice.trades == TradeChannel::TradesAll {
            for chunk in symbols.chunks(MAX_ARGS_PER_SOCKET) {
                plans.push(SocketPlan {
                    url: self.business_url(),
                    streams: chunk
                        .iter()
                        .map(|m| inst_arg("trades-all", &m.native))
                        .collect(),
                    symbols: chunk.to_vec(),
                    channels: Channels {
                        trades: true,
                        ..Channels::NONE
                    },
                });
            }
        }
        plans
    }

    fn subscribe_frames(&self, plan: &SocketPlan, first_id: u64) -> Vec<String> {
        plan.streams
            .chunks(MAX_ARGS_PER_REQUEST)
            .enumerate()
            .map(|(i, chunk)| op_frame("subscribe", chunk, first_id + i as u64))
            .collect()
    }

    fn snapshot_url(&self, native: &str) -> String {
        format!(
            "{}/api/v5/market/books?instId={native}&sz={}",
            self.rest_base, self.depth_limit
        )
    }

    fn keepalive(&self) -> Keepalive {
        Keepalive::IdleText {
            after: self.keepalive_after,
            frame: "ping",
        }
    }

    fn max_client_msgs_per_s(&self) -> u32 {
        // no per-second figure is documented for public sockets; subscriptions are few
        10
    }

    fn snapshot_weight(&self) -> u32 {
        // one budget for the venue: books allow 40 requests per 2 s (exchanges.md 4.6)
        1
    }

    fn instruments_weight(&self) -> u32 {
        // instruments allow 20 requests per 2 s: twice a book request's share
        2
    }

    fn weight_limit(&self) -> WeightLimit {
        WeightLimit {
            limit: OKX_REST_WEIGHT_PER_WINDOW,
            window: OKX_REST_WINDOW,
        }
    }

    fn processor(&self, plan: &SocketPlan) -> Box<dyn ExchangeProcessor> {
        Box::new(OkxProcessor::from_metas(
            &plan.symbols,
            plan.channels,
            self.choice.book,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metas(names: &[&str]) -> Vec<Arc<SymbolMeta>> {
        names
            .iter()
            .map(|n| SymbolMeta::new(Venue::Okx, n, n, None))
            .collect()
    }

    #[test]
    fn urls_args_and_frames() {
        let c = OkxConnector::new(
            Some("ws://127.0.0.1:9/ws/v5/public"),
            Some("http://127.0.0.1:9/"),
            OkxChannelChoice::default(),
            1000,
            Duration::from_secs(30),
        );
        assert_eq!(c.public_url(), "ws://127.0.0.1:9/ws/v5/public");
        assert_eq!(c.business_url(), "ws://127.0.0.1:9/ws/v5/business");
        assert_eq!(
            c.snapshot_url("BTC-USDT"),
            "http://127.0.0.1:9/api/v5/market/books?instId=BTC-USDT&sz=400"
        );
        assert_eq!(
            c.keepalive(),
            Keepalive::IdleText {
                after: Duration::from_secs(10),
                frame: "ping"
            }
        );
        let all = Channels {
            ticker: true,
            funding: true,
            open_interest: true,
            ..Channels::ALL
        };
        assert_eq!(
            c.public_args("BTC-USDT-SWAP", all),
            vec![
                r#"{"channel":"books","instId":"BTC-USDT-SWAP"}"#,
                r#"{"channel":"bbo-tbt","instId":"BTC-USDT-SWAP"}"#,
                r#"{"channel":"trades","instId":"BTC-USDT-SWAP"}"#,
                r#"{"channel":"tickers","instId":"BTC-USDT-SWAP"}"#,
                r#"{"channel":"funding-rate","instId":"BTC-USDT-SWAP"}"#,
                r#"{"channel":"mark-price","instId":"BTC-USDT-SWAP"}"#,
                r#"{"channel":"open-interest","instId":"BTC-USDT-SWAP"}"#,
            ]
        );
        assert_eq!(c.public_args("BTC-USDT", all).len(), 4); // spot: no funding, mark, oi
        assert_eq!(
            op_frame("subscribe", &[inst_arg("books", "A-B")], 7),
            r#"{"id":"7","op":"subscribe","args":[{"channel":"books","instId":"A-B"}]}"#
        );
        let urls = c.instruments_urls(&[
            "BTC-USDT".into(),
            "ETH-USDT".into(),
            "BTC-USD-SWAP".into(),
            "BTC-USD-221230-4000-C".into(),
        ]);
        assert_eq!(
            urls,
            vec![
                "http://127.0.0.1:9/api/v5/public/instruments?instType=SPOT",
                "http://127.0.0.1:9/api/v5/public/instruments?instType=SWAP",
                "http://127.0.0.1:9/api/v5/public/instruments?instType=OPTION&instFamily=BTC-USD",
            ]
        );
        assert_eq!(
            c.instrument_url("ETH-USD-221230-4000-P").unwrap(),
            "http://127.0.0.1:9/api/v5/public/instruments?instType=OPTION&instId=ETH-USD-221230-4000-P&instFamily=ETH-USD"
        );
    }

    #[test]
    fn plans_respect_deep_book_and_arg_limits() {
        let c = OkxConnector::new(
            None,
            None,
            OkxChannelChoice::default(),
            400,
            Duration::from_secs(30),
        );
        let names: Vec<String> = (0..60).map(|i| format!("C{i}-USDT-SWAP")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let m = metas(&refs);
        let ch = Channels {
            liquidations: true,
            ..Channels::ALL
        };
        let plans = c.plan(&m, ch);
        assert_eq!(plans.len(), 3); // 25 + 25 + 10 deep books
        assert!(plans
            .iter()
            .all(|p| p.symbols.len() <= MAX_DEEP_BOOKS_PER_SOCKET));
        assert!(plans[0].channels.liquidations && !plans[1].channels.liquidations);
        assert_eq!(
            plans[0].streams.last().unwrap(),
            r#"{"channel":"liquidation-orders","instType":"SWAP"}"#
        );
        assert_eq!(plans.iter().map(|p| p.symbols.len()).sum::<usize>(), 60);
        assert_eq!(c.subscribe_frames(&plans[0], 1).len(), 1); // 76 args in one request
                                                               // trades-all moves trades to the business socket; books5 lifts the deep-book cap
        let choice = OkxChannelChoice::parse(["books5", "trades-all"]).unwrap();
        let c = OkxConnector::new(None, None, choice, 400, Duration::from_secs(30));
        let plans = c.plan(&m, Channels::ALL);
        assert_eq!(plans.len(), 2);
        assert_eq!(plans[1].url, "wss://ws.okx.com:8443/ws/v5/business");
        assert!(plans[1].channels.trades && !plans[0].channels.trades);
        assert!(plans[0].streams[0].contains("books5"));
        assert_eq!(OkxChannelChoice::parse(["books", "nope"]), Err("nope"));
    }
}
