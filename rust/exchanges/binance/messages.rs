//! Binance wire structs (spot, USD-M, COIN-M), borrowing `&str` from the frame.
//!
//! See shared/docs/exchanges.md §2.2–2.7 (spot) and §3.3–3.6 (futures). Prices and sizes stay
//! strings here, and the processor parses them with fast_float, except in book levels
//! ([`Levels`]), which are parsed as the list is read.

use std::cell::Cell;
use std::fmt;

use serde::de::{Deserializer, Error as _, SeqAccess, Visitor};
use serde::Deserialize;
use sonic_rs::LazyValue;

use crate::exchanges::wire::{wire_price, wire_size};

/// One side's `[price, qty]` book levels, parsed to numbers as the list is read: one pass,
/// no list of strings in between. A price that is not a finite number above 0, or a
/// quantity that is not a finite number of at least 0, fails the whole parse with an error
/// naming the level, so a frame with one bad level changes no book.
///
/// The levels are gathered in a per-thread scratch list and copied out at their exact
/// length: the list travels with the book event to the Python thread, which frees it, so it
/// is kept as small as the levels it holds.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Levels(pub Vec<(f64, f64)>);

/// Scratch lists up to this many levels are kept for the thread's next parse.
const SCRATCH_KEEP: usize = 1024;

thread_local! {
    static SCRATCH: Cell<Vec<(f64, f64)>> = const { Cell::new(Vec::new()) };
}

impl Levels {
    /// The levels with every quantity multiplied by `mult` (COIN-M contract size; 1 keeps
    /// them as they are).
    #[must_use]
    pub fn scaled(mut self, mult: f64) -> Vec<(f64, f64)> {
        if mult != 1.0 {
            self.0.iter_mut().for_each(|l| l.1 *= mult);
        }
        self.0
    }
}

impl<'de> Deserialize<'de> for Levels {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct List;
        impl<'de> Visitor<'de> for List {
            type Value = Levels;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of [price, quantity] string pairs")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Levels, A::Error> {
                let mut buf = SCRATCH.take();
                buf.clear();
                let levels = read_levels(&mut seq, &mut buf).map(|()| Levels(buf.to_vec()));
                if buf.capacity() <= SCRATCH_KEEP {
                    SCRATCH.set(buf);
                }
                levels
            }
        }
        d.deserialize_seq(List)
    }
}

fn read_levels<'de, A: SeqAccess<'de>>(
    seq: &mut A,
    buf: &mut Vec<(f64, f64)>,
) -> Result<(), A::Error> {
    while let Some([p, q]) = seq.next_element::<[&'de str; 2]>()? {
        let (Some(price), Some(qty)) = (wire_price(p), wire_size(q)) else {
            return Err(A::Error::custom(format_args!(
                "bad book level [{p:?}, {q:?}]: the price must be a finite number above 0 \
                 and the quantity a finite number of at least 0"
            )));
        };
        buf.push((price, qty));
    }
    Ok(())
}

/// Combined-stream envelope or control reply.
///
/// `{"stream":"nknusdt@aggTrade","data":{...}}`, `{"result":null,"id":1}`,
/// `{"code":2,"msg":"Invalid request","id":1}`.
#[derive(Debug, Deserialize)]
pub struct BinanceEnvelope<'a> {
    /// Stream name, e.g. `nknusdt@depth@100ms`.
    #[serde(borrow, default)]
    pub stream: Option<&'a str>,
    /// The event payload, parsed later by stream kind.
    #[serde(borrow, default)]
    pub data: Option<LazyValue<'a>>,
    /// Request id echoed by replies.
    #[serde(borrow, default)]
    pub id: Option<LazyValue<'a>>,
    /// Error code of an error reply.
    #[serde(default)]
    pub code: Option<i64>,
    /// Error message of an error reply.
    #[serde(borrow, default)]
    pub msg: Option<std::borrow::Cow<'a, str>>,
    /// Event type when the frame is a raw (unwrapped) event such as `serverShutdown`.
    #[serde(borrow, default)]
    pub e: Option<&'a str>,
}

/// Diff depth event (`<symbol>@depth[@100ms]`); futures add `T` and `pu`.
///
/// `{"e":"depthUpdate","E":1633998512068,"s":"NKNUSDT","U":499869750,"u":499869752,
///   "b":[["0.35130000","6195.00000000"]],"a":[]}`
///
/// `L` is how a side's levels are read: [`Levels`] (numbers) for the processor; the bare
/// parse benchmarks read them as `Vec<[&str; 2]>`, the JSON alone.
#[derive(Debug, Deserialize)]
pub struct BinanceDepthUpdate<'a, L = Levels> {
    /// Event time, ms.
    #[serde(rename = "E")]
    pub event_time: i64,
    /// Transaction (matching) time, ms (futures only).
    #[serde(rename = "T", default)]
    pub tx_time: Option<i64>,
    /// Symbol (uppercase).
    #[serde(rename = "s")]
    pub symbol: &'a str,
    /// First update id in the event.
    #[serde(rename = "U")]
    pub first_id: u64,
    /// Final update id in the event.
    #[serde(rename = "u")]
    pub last_id: u64,
    /// Previous event's final update id (futures only).
    #[serde(rename = "pu", default)]
    pub prev_last_id: Option<u64>,
    /// Bid changes `[price, qty]`, absolute quantities.
    #[serde(rename = "b")]
    pub bids: L,
    /// Ask changes.
    #[serde(rename = "a")]
    pub asks: L,
}

/// Raw trade (`<symbol>@trade`).
///
/// `{"e":"trade","E":1,"s":"BNBBTC","t":12345,"p":"0.001","q":"100","T":1,"m":true,"M":true}`
#[derive(Debug, Deserialize)]
pub struct BinanceTrade<'a> {
    /// Trade time, ms.
    #[serde(rename = "T")]
    pub trade_time: i64,
    /// Symbol.
    #[serde(rename = "s")]
    pub symbol: &'a str,
    /// Trade id.
    #[serde(rename = "t")]
    pub id: u64,
    /// Price.
    #[serde(rename = "p")]
    pub price: &'a str,
    /// Quantity.
    #[serde(rename = "q")]
    pub qty: &'a str,
    /// Buyer is maker (aggressor = sell).
    #[serde(rename = "m")]
    pub buyer_is_maker: bool,
}

/// Aggregate trade (`<symbol>@aggTrade`).
///
/// `{"e":"aggTrade","E":1633998523963,"s":"NKNUSDT","a":15683430,"p":"0.35280000",
///   "q":"58.00000000","f":19862790,"l":19862790,"T":1633998523963,"m":false,"M":true}`
#[derive(Debug, Deserialize)]
pub struct BinanceAggTrade<'a> {
    /// Trade time, ms.
    #[serde(rename = "T")]
    pub trade_time: i64,
    /// Symbol.
    #[serde(rename = "s")]
    pub symbol: &'a str,
    /// Aggregate trade id.
    #[serde(rename = "a")]
    pub id: u64,
    /// Price.
    #[serde(rename = "p")]
    pub price: &'a str,
    /// Quantity.
    #[serde(rename = "q")]
    pub qty: &'a str,
    /// Buyer is maker (aggressor = sell).
    #[serde(rename = "m")]
    pub buyer_is_maker: bool,
}

/// Best bid/ask (`<symbol>@bookTicker`). Spot has no times; futures add `E`, `T`.
///
/// `{"u":499869768,"s":"NKNUSDT","b":"0.35210000","B":"672.00000000","a":"0.35260000","A":"3199.00000000"}`
#[derive(Debug, Deserialize)]
pub struct BinanceBookTicker<'a> {
    /// Order book update id.
    #[serde(rename = "u")]
    pub update_id: u64,
    /// Symbol.
    #[serde(rename = "s")]
    pub symbol: &'a str,
    /// Best bid price.
    #[serde(rename = "b")]
    pub bid_price: &'a str,
    /// Best bid quantity.
    #[serde(rename = "B")]
    pub bid_qty: &'a str,
    /// Best ask price.
    #[serde(rename = "a")]
    pub ask_price: &'a str,
    /// Best ask quantity.
    #[serde(rename = "A")]
    pub ask_qty: &'a str,
    /// Transaction time, ms (futures).
    #[serde(rename = "T", default)]
    pub tx_time: Option<i64>,
    /// Event time, ms (futures).
    #[serde(rename = "E", default)]
    pub event_time: Option<i64>,
}

/// REST depth snapshot (`GET /api/v3/depth`, `/fapi/v1/depth`, `/dapi/v1/depth`).
///
/// `{"lastUpdateId":499869752,"bids":[["0.35210000","672.00000000"]],"asks":[...]}`
#[derive(Debug, Deserialize)]
pub struct BinanceDepthSnapshot {
    /// Update id the snapshot reflects.
    #[serde(rename = "lastUpdateId")]
    pub last_update_id: u64,
    /// Transaction time, ms (futures).
    #[serde(rename = "T", default)]
    pub tx_time: Option<i64>,
    /// Bids, best first.
    pub bids: Levels,
    /// Asks, best first.
    pub asks: Levels,
}

/// REST `exchangeInfo` (only what a market-data client needs).
#[derive(Debug, Deserialize)]
pub struct BinanceExchangeInfo<'a> {
    /// Published limits (`REQUEST_WEIGHT` sizes the REST budget).
    #[serde(rename = "rateLimits", borrow, default)]
    pub rate_limits: Vec<BinanceRateLimit<'a>>,
    /// Listed symbols.
    #[serde(borrow)]
    pub symbols: Vec<BinanceSymbolInfo<'a>>,
}

/// One `exchangeInfo` rate limit.
///
/// `{"rateLimitType":"REQUEST_WEIGHT","interval":"MINUTE","intervalNum":1,"limit":2400}`
#[derive(Debug, Deserialize)]
pub struct BinanceRateLimit<'a> {
    /// `REQUEST_WEIGHT`, `ORDERS`, `RAW_REQUESTS`.
    #[serde(rename = "rateLimitType")]
    pub rate_limit_type: &'a str,
    /// `SECOND`, `MINUTE`, `HOUR`, `DAY`.
    pub interval: &'a str,
    /// Intervals per window.
    #[serde(rename = "intervalNum", default)]
    pub interval_num: u32,
    /// Limit per window.
    pub limit: u32,
}

/// One `exchangeInfo` symbol entry.
#[derive(Debug, Deserialize)]
pub struct BinanceSymbolInfo<'a> {
    /// Native symbol.
    pub symbol: &'a str,
    /// Trading status (spot, USD-M).
    #[serde(default)]
    pub status: Option<&'a str>,
    /// Trading status (COIN-M names it differently).
    #[serde(rename = "contractStatus", default)]
    pub contract_status: Option<&'a str>,
    /// Futures: `PERPETUAL`, `CURRENT_QUARTER`, `NEXT_QUARTER`, empty while pending.
    #[serde(rename = "contractType", default)]
    pub contract_type: Option<&'a str>,
    /// Futures delivery time, ms (perpetuals: 4133404800000).
    #[serde(rename = "deliveryDate", default)]
    pub delivery_date: Option<i64>,
    /// COIN-M contract value in USD (BTC 100, others 10).
    #[serde(rename = "contractSize", default)]
    pub contract_size: Option<f64>,
    /// Futures margin (settle) asset.
    #[serde(rename = "marginAsset", default)]
    pub margin_asset: Option<&'a str>,
    /// Base asset.
    #[serde(rename = "baseAsset")]
    pub base_asset: &'a str,
    /// Quote asset.
    #[serde(rename = "quoteAsset")]
    pub quote_asset: &'a str,
    /// Filters (`PRICE_FILTER`, `LOT_SIZE`, ...).
    #[serde(borrow, default)]
    pub filters: Vec<BinanceFilter<'a>>,
}

/// One `exchangeInfo` filter; only the fields xtrader reads.
#[derive(Debug, Deserialize)]
pub struct BinanceFilter<'a> {
    /// Filter type.
    #[serde(rename = "filterType")]
    pub filter_type: &'a str,
    /// `PRICE_FILTER` tick size.
    #[serde(rename = "tickSize", default)]
    pub tick_size: Option<&'a str>,
    /// `LOT_SIZE` step size.
    #[serde(rename = "stepSize", default)]
    pub step_size: Option<&'a str>,
}

/// Mark price and funding (`<symbol>@markPrice[@1s]`, USD-M and COIN-M, exchanges.md 3.3).
/// Delivery contracts send `"r":""` and `"T":0`.
///
/// `{"e":"markPriceUpdate","E":1562305380000,"s":"BTCUSDT","p":"11794.15000000",
///   "i":"11784.62659091","P":"11784.25641265","r":"0.00038167","T":1562306400000}`
#[derive(Debug, Deserialize)]
pub struct BinanceMarkPrice<'a> {
    /// Event time, ms.
    #[serde(rename = "E")]
    pub event_time: i64,
    /// Symbol.
    #[serde(rename = "s")]
    pub symbol: &'a str,
    /// Mark price.
    #[serde(rename = "p")]
    pub mark: &'a str,
    /// Index price.
    #[serde(rename = "i", default)]
    pub index: &'a str,
    /// Funding rate (empty for delivery contracts).
    #[serde(rename = "r", default)]
    pub funding_rate: &'a str,
    /// Next funding time, ms (0 for delivery contracts).
    #[serde(rename = "T", default)]
    pub next_funding_time: i64,
}

/// Liquidation order snapshot (`<symbol>@forceOrder`, exchanges.md 3.3).
///
/// `{"e":"forceOrder","E":1568014460893,"o":{"s":"BTCUSDT","S":"SELL","o":"LIMIT","f":"IOC",
///   "q":"0.014","p":"9910","ap":"9910","X":"FILLED","l":"0.014","z":"0.014","T":1568014460893}}`
#[derive(Debug, Deserialize)]
pub struct BinanceForceOrder<'a> {
    /// Event time, ms.
    #[serde(rename = "E")]
    pub event_time: i64,
    /// The liquidation order.
    #[serde(rename = "o", borrow)]
    pub order: BinanceForceOrderBody<'a>,
}

/// The order inside a `forceOrder` event.
#[derive(Debug, Deserialize)]
pub struct BinanceForceOrderBody<'a> {
    /// Symbol.
    #[serde(rename = "s")]
    pub symbol: &'a str,
    /// Side of the liquidation order (`SELL` = a long was liquidated).
    #[serde(rename = "S")]
    pub side: &'a str,
    /// Original quantity.
    #[serde(rename = "q")]
    pub qty: &'a str,
    /// Order price.
    #[serde(rename = "p")]
    pub price: &'a str,
    /// Average fill price.
    #[serde(rename = "ap", default)]
    pub avg_price: &'a str,
    /// Accumulated filled quantity.
    #[serde(rename = "z", default)]
    pub filled: &'a str,
    /// Trade time, ms.
    #[serde(rename = "T")]
    pub trade_time: i64,
}

/// REST open interest (`GET /fapi/v1/openInterest`, `/dapi/v1/openInterest`; COIN-M adds
/// `pair` and `contractType`, and counts contracts).
///
/// `{"openInterest":"10659.509","symbol":"BTCUSDT","time":1589437530011}`
#[derive(Debug, Deserialize)]
pub struct BinanceOpenInterest<'a> {
    /// Symbol.
    pub symbol: &'a str,
    /// Open interest (base units on USD-M, contracts on COIN-M).
    #[serde(rename = "openInterest")]
    pub open_interest: &'a str,
    /// Time, ms.
    pub time: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    // Frames from shared/data/captures/BINANCE.ws.1.0 and the docs.
    const DEPTH: &str = r#"{"stream":"nknusdt@depth@100ms","data":{"e":"depthUpdate","E":1633998512068,"s":"NKNUSDT","U":499869750,"u":499869752,"b":[["0.35130000","6195.00000000"],["0.34750000","5548.00000000"]],"a":[]}}"#;
    const AGG: &str = r#"{"stream":"nknusdt@aggTrade","data":{"e":"aggTrade","E":1633998523963,"s":"NKNUSDT","a":15683430,"p":"0.35280000","q":"58.00000000","f":19862790,"l":19862790,"T":1633998523963,"m":false,"M":true}}"#;
    const BT: &str = r#"{"stream":"nknusdt@bookTicker","data":{"u":499869768,"s":"NKNUSDT","b":"0.35210000","B":"672.00000000","a":"0.35260000","A":"3199.00000000"}}"#;
    const FUT_DEPTH: &str = r#"{"e":"depthUpdate","E":1626992741037,"T":1626992741024,"s":"SUSHIUSDT","U":600859599090,"u":600859600917,"pu":600859598061,"b":[["7.5040","813"]],"a":[["7.6150","1563"]]}"#;

    #[test]
    fn parses_depth_envelope_and_payload() {
        let env: BinanceEnvelope = sonic_rs::from_str(DEPTH).unwrap();
        assert_eq!(env.stream, Some("nknusdt@depth@100ms"));
        let data = env.data.unwrap();
        let d: BinanceDepthUpdate = sonic_rs::from_str(data.as_raw_str()).unwrap();
        assert_eq!(
            (d.first_id, d.last_id, d.symbol),
            (499869750, 499869752, "NKNUSDT")
        );
        assert_eq!(d.bids.0, vec![(0.3513, 6195.0), (0.3475, 5548.0)]);
        // the list goes to the Python thread with the book event: no spare room
        assert_eq!(d.bids.0.capacity(), 2);
        assert!(d.asks.0.is_empty() && d.prev_last_id.is_none());
    }

    #[test]
    fn parses_futures_depth_with_pu() {
        let d: BinanceDepthUpdate = sonic_rs::from_str(FUT_DEPTH).unwrap();
        assert_eq!(d.prev_last_id, Some(600859598061));
        assert_eq!(d.tx_time, Some(1626992741024));
    }

    #[test]
    fn parses_agg_trade_and_book_ticker() {
        let env: BinanceEnvelope = sonic_rs::from_str(AGG).unwrap();
        let data = env.data.unwrap();
        let t: BinanceAggTrade = sonic_rs::from_str(data.as_raw_str()).unwrap();
        assert_eq!(
            (t.id, t.price, t.buyer_is_maker),
            (15683430, "0.35280000", false)
        );
        let env: BinanceEnvelope = sonic_rs::from_str(BT).unwrap();
        let data = env.data.unwrap();
        let b: BinanceBookTicker = sonic_rs::from_str(data.as_raw_str()).unwrap();
        assert_eq!((b.update_id, b.ask_qty), (499869768, "3199.00000000"));
        assert!(b.event_time.is_none());
    }

    #[test]
    fn parses_trade_and_control_replies() {
        let t: BinanceTrade = sonic_rs::from_str(
            r#"{"e":"trade","E":1,"s":"BNBBTC","t":12345,"p":"0.001","q":"100","T":2,"m":true,"M":true}"#,
        )
        .unwrap();
        assert_eq!((t.id, t.trade_time, t.buyer_is_maker), (12345, 2, true));
        let ack: BinanceEnvelope = sonic_rs::from_str(r#"{"result":null,"id":1}"#).unwrap();
        assert!(ack.stream.is_none() && ack.id.is_some() && ack.code.is_none());
        let err: BinanceEnvelope =
            sonic_rs::from_str(r#"{"code":2,"msg":"Invalid request","id":7}"#).unwrap();
        assert_eq!(err.code, Some(2));
        assert_eq!(err.msg.as_deref(), Some("Invalid request"));
    }

    #[test]
    fn parses_futures_mark_price_force_order_and_open_interest() {
        let m: BinanceMarkPrice = sonic_rs::from_str(
            r#"{"e":"markPriceUpdate","E":1562305380000,"s":"BTCUSDT","p":"11794.15000000","i":"11784.62659091","P":"11784.25641265","r":"0.00038167","T":1562306400000}"#,
        )
        .unwrap();
        assert_eq!(
            (m.mark, m.funding_rate, m.next_funding_time),
            ("11794.15000000", "0.00038167", 1562306400000)
        );
        let d: BinanceMarkPrice = sonic_rs::from_str(
            r#"{"e":"markPriceUpdate","E":1,"s":"BTCUSD_211231","p":"1.5","i":"1.4","P":"1.45","r":"","T":0}"#,
        )
        .unwrap();
        assert_eq!((d.funding_rate, d.next_funding_time), ("", 0));
        let f: BinanceForceOrder = sonic_rs::from_str(
            r#"{"e":"forceOrder","E":1568014460893,"o":{"s":"BTCUSDT","S":"SELL","o":"LIMIT","f":"IOC","q":"0.014","p":"9910","ap":"9910","X":"FILLED","l":"0.014","z":"0.014","T":1568014460893}}"#,
        )
        .unwrap();
        assert_eq!(
            (f.order.symbol, f.order.side, f.order.filled),
            ("BTCUSDT", "SELL", "0.014")
        );
        let o: BinanceOpenInterest = sonic_rs::from_str(
            r#"{"symbol":"BTCUSD_PERP","pair":"BTCUSD","openInterest":"517655","contractType":"PERPETUAL","time":1591261042378}"#,
        )
        .unwrap();
        assert_eq!((o.open_interest, o.time), ("517655", 1591261042378));
    }

    #[test]
    fn parses_coinm_frames_with_pair() {
        // capture BINANCE_DELIVERY.ws.1.0 (trimmed): `ps` is ignored
        let d: BinanceDepthUpdate = sonic_rs::from_str(
            r#"{"e":"depthUpdate","E":1626916403873,"T":1626916403864,"s":"BCHUSD_PERP","ps":"BCHUSD","U":167006084465,"u":167006084895,"pu":167006084238,"b":[["427.27","0"],["427.53","260"]],"a":[["427.90","669"]]}"#,
        )
        .unwrap();
        assert_eq!(
            (d.symbol, d.prev_last_id),
            ("BCHUSD_PERP", Some(167006084238))
        );
        let b: BinanceBookTicker = sonic_rs::from_str(
            r#"{"u":167006084895,"e":"bookTicker","s":"BCHUSD_PERP","ps":"BCHUSD","b":"427.84","B":"24","a":"427.90","A":"669","T":1626916403864,"E":1626916403871}"#,
        )
        .unwrap();
        assert_eq!((b.bid_qty, b.tx_time), ("24", Some(1626916403864)));
    }

    #[test]
    fn parses_snapshot_and_exchange_info() {
        let s: BinanceDepthSnapshot = sonic_rs::from_str(
            r#"{"lastUpdateId":1027024,"bids":[["4.00000000","431.00000000"]],"asks":[]}"#,
        )
        .unwrap();
        assert_eq!(s.last_update_id, 1027024);
        let info: BinanceExchangeInfo = sonic_rs::from_str(
            r#"{"timezone":"UTC","symbols":[{"symbol":"ETHBTC","status":"TRADING","baseAsset":"ETH","quoteAsset":"BTC","filters":[{"filterType":"PRICE_FILTER","minPrice":"0.00000100","tickSize":"0.00000100"},{"filterType":"LOT_SIZE","stepSize":"0.00010000"}]}]}"#,
        )
        .unwrap();
        assert_eq!(info.symbols[0].base_asset, "ETH");
        assert_eq!(info.symbols[0].filters[1].step_size, Some("0.00010000"));
    }
}
