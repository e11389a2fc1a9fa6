//! OKX v5 wire structs, borrowing `&str` from the frame (exchanges.md §4.2–4.6).
//!
//! Prices and sizes stay strings here: the book keeps the exact wire strings for the CRC32
//! checksum and the processor parses numbers with fast_float. Timestamps are millisecond
//! strings. Nothing here allocates beyond the `Vec`s of levels and data elements.

use std::borrow::Cow;

use serde::Deserialize;
use sonic_rs::LazyValue;

pub use super::scan::LevelIter;

/// Subscription argument echoed in acks and data frames.
///
/// `{"channel":"books","instId":"BTC-USDT"}`, `{"channel":"liquidation-orders","instType":"SWAP"}`
#[derive(Debug, Deserialize)]
pub struct OkxArg<'a> {
    /// Channel name.
    #[serde(borrow)]
    pub channel: &'a str,
    /// Instrument id (instrument channels).
    #[serde(rename = "instId", borrow, default)]
    pub inst_id: Option<&'a str>,
    /// Instrument type (`liquidation-orders`).
    #[serde(rename = "instType", borrow, default)]
    pub inst_type: Option<&'a str>,
}

/// Any frame on the public socket: data, acks, errors and notices.
///
/// Data `{"arg":{...},"action":"update","data":[...]}`; ack
/// `{"event":"subscribe","arg":{...},"connId":"accb8e21"}`; error
/// `{"event":"error","code":"60012","msg":"Invalid request: ...","connId":"a4d3ae55"}`;
/// notice `{"event":"notice","code":"64008","msg":"The connection will soon be closed..."}`.
#[derive(Debug, Deserialize)]
pub struct OkxEnvelope<'a> {
    /// `subscribe`, `unsubscribe`, `error`, `notice` (absent on data frames).
    #[serde(borrow, default)]
    pub event: Option<&'a str>,
    /// The subscription concerned.
    #[serde(borrow, default)]
    pub arg: Option<OkxArg<'a>>,
    /// Book channels: `snapshot` or `update`.
    #[serde(borrow, default)]
    pub action: Option<&'a str>,
    /// Data elements, parsed later by channel.
    #[serde(borrow, default)]
    pub data: Option<LazyValue<'a>>,
    /// Error or notice code (a string on the wire).
    #[serde(borrow, default)]
    pub code: Option<&'a str>,
    /// Error or notice message.
    #[serde(borrow, default)]
    pub msg: Option<Cow<'a, str>>,
    /// Request id echoed by replies.
    #[serde(borrow, default)]
    pub id: Option<&'a str>,
}

/// One book level: `[price, size, "0", numOrders]`; only price and size are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OkxLevel<'a> {
    /// Price, as on the wire.
    pub px: &'a str,
    /// Size (contracts for derivatives, base currency for spot), as on the wire.
    pub sz: &'a str,
}

/// The level array of a book side: already read by the one-pass frame reader (`scan.rs`,
/// the hot path), or kept as raw JSON by serde and read by [`LevelIter`] when iterated.
///
/// Book messages are mostly arrays of four short strings; walking them by hand instead of
/// through serde's visitor machinery keeps a book update cheap.
#[derive(Debug, Default)]
pub struct OkxLevels<'a> {
    lazy: Option<LazyValue<'a>>,
    /// Levels already read by the one-pass frame reader.
    read: Vec<OkxLevel<'a>>,
}

impl<'de: 'a, 'a> Deserialize<'de> for OkxLevels<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Self {
            lazy: Option::<LazyValue<'a>>::deserialize(d)?,
            read: Vec::new(),
        })
    }
}

/// Iterator over [`OkxLevels`]: levels already read, or read from the raw text now.
#[derive(Debug)]
pub enum Levels<'s> {
    /// Read by the one-pass frame reader.
    Read(std::slice::Iter<'s, OkxLevel<'s>>),
    /// Read from the text.
    Text(LevelIter<'s>),
}

impl<'s> Iterator for Levels<'s> {
    /// A level, or `None` once where the text is malformed (iteration then ends).
    type Item = Option<OkxLevel<'s>>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Self::Read(it) => it.next().map(|l| Some(*l)),
            Self::Text(it) => it.next(),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match self {
            Self::Read(it) => it.size_hint(),
            Self::Text(_) => (0, None),
        }
    }
}

impl<'a> OkxLevels<'a> {
    /// Levels the frame reader has already read.
    #[must_use]
    pub fn from_read(read: Vec<OkxLevel<'a>>) -> Self {
        Self { lazy: None, read }
    }

    /// The levels in wire order; an item is `None` where the text stops being a level list.
    #[must_use]
    pub fn iter(&self) -> Levels<'_> {
        match &self.lazy {
            Some(lazy) => Levels::Text(LevelIter::new(lazy.as_raw_str())),
            None => Levels::Read(self.read.iter()),
        }
    }

    /// The first level, if the side has one and it reads.
    #[must_use]
    pub fn first(&self) -> Option<OkxLevel<'_>> {
        self.iter().next().flatten()
    }

    /// True when the side has no level.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }
}

/// A data element of `books`, `books5`, `bbo-tbt`, `books-l2-tbt`, `books50-l2-tbt`, and of
/// the REST `GET /api/v5/market/books` answer.
///
/// `{"asks":[["30261","4","0","1"]],"bids":[["30182.6","452","0","1"]],"ts":"1652459225464",
///   "checksum":-914047754,"prevSeqId":123456,"seqId":123457}` (the 2022 capture has no
/// sequence ids; since 2026 `checksum` is 0).
#[derive(Debug, Deserialize)]
pub struct OkxBookData<'a> {
    /// Ask levels, best first.
    #[serde(borrow, default)]
    pub asks: OkxLevels<'a>,
    /// Bid levels, best first.
    #[serde(borrow, default)]
    pub bids: OkxLevels<'a>,
    /// Book generation time, ms.
    #[serde(borrow, default)]
    pub ts: Option<&'a str>,
    /// CRC32 of the top 25 levels as a signed 32-bit integer; 0 = not sent.
    #[serde(default)]
    pub checksum: Option<i64>,
    /// Sequence id of this message.
    #[serde(rename = "seqId", default)]
    pub seq_id: Option<i64>,
    /// Sequence id of the previous message on the channel (-1 on snapshots).
    #[serde(rename = "prevSeqId", default)]
    pub prev_seq_id: Option<i64>,
}

/// A trade of `trades` (aggregated per taker order and price) or `trades-all` (one fill).
///
/// `{"instId":"BTC-USD-220527","tradeId":"7849","px":"30218.8","sz":"1","side":"buy",
///   "ts":"1652459199958"}`
#[derive(Debug, Deserialize)]
pub struct OkxTrade<'a> {
    /// Instrument id.
    #[serde(rename = "instId", borrow)]
    pub inst_id: &'a str,
    /// Trade id (the last one of an aggregation).
    #[serde(rename = "tradeId", borrow)]
    pub trade_id: &'a str,
    /// Price.
    #[serde(borrow)]
    pub px: &'a str,
    /// Size (contracts for derivatives).
    #[serde(borrow)]
    pub sz: &'a str,
    /// Taker side, `buy` or `sell`.
    #[serde(borrow)]
    pub side: &'a str,
    /// Fill time, ms.
    #[serde(borrow)]
    pub ts: &'a str,
}

/// A `tickers` element (fields trimmed to what the normalized ticker uses).
///
/// `{"instType":"FUTURES","instId":"BTC-USD-220527","last":"30218.8","lastSz":"1",
///   "askPx":"30220.1","askSz":"3","bidPx":"30210.4","bidSz":"4","open24h":"29571.4",
///   "high24h":"31003.3","low24h":"27930.8","volCcy24h":"2620.289","vol24h":"779573",
///   "ts":"1652459223003"}`
#[derive(Debug, Deserialize)]
pub struct OkxTicker<'a> {
    /// Instrument type.
    #[serde(rename = "instType", borrow, default)]
    pub inst_type: Option<&'a str>,
    /// Instrument id.
    #[serde(rename = "instId", borrow)]
    pub inst_id: &'a str,
    /// Last trade price.
    #[serde(borrow)]
    pub last: &'a str,
    /// Last trade size.
    #[serde(rename = "lastSz", borrow, default)]
    pub last_sz: Option<&'a str>,
    /// Best ask price.
    #[serde(rename = "askPx", borrow, default)]
    pub ask_px: Option<&'a str>,
    /// Best ask size.
    #[serde(rename = "askSz", borrow, default)]
    pub ask_sz: Option<&'a str>,
    /// Best bid price.
    #[serde(rename = "bidPx", borrow, default)]
    pub bid_px: Option<&'a str>,
    /// Best bid size.
    #[serde(rename = "bidSz", borrow, default)]
    pub bid_sz: Option<&'a str>,
    /// Open price 24 h ago.
    #[serde(rename = "open24h", borrow, default)]
    pub open_24h: Option<&'a str>,
    /// 24 h high.
    #[serde(rename = "high24h", borrow, default)]
    pub high_24h: Option<&'a str>,
    /// 24 h low.
    #[serde(rename = "low24h", borrow, default)]
    pub low_24h: Option<&'a str>,
    /// 24 h volume: derivatives in base currency, spot in quote currency.
    #[serde(rename = "volCcy24h", borrow, default)]
    pub vol_ccy_24h: Option<&'a str>,
    /// 24 h volume: derivatives in contracts, spot in base currency.
    #[serde(rename = "vol24h", borrow, default)]
    pub vol_24h: Option<&'a str>,
    /// Ticker time, ms.
    #[serde(borrow)]
    pub ts: &'a str,
}

/// A `funding-rate` element.
///
/// `{"instType":"SWAP","instId":"BTC-USD-SWAP","fundingRate":"0.0001","fundingTime":
///   "1703088000000","nextFundingTime":"1703116800000","ts":"1703070685309"}`
#[derive(Debug, Deserialize)]
pub struct OkxFundingRate<'a> {
    /// Instrument id.
    #[serde(rename = "instId", borrow)]
    pub inst_id: &'a str,
    /// Rate of the current period.
    #[serde(rename = "fundingRate", borrow, default)]
    pub funding_rate: Option<&'a str>,
    /// Settlement time of the current period, ms.
    #[serde(rename = "fundingTime", borrow, default)]
    pub funding_time: Option<&'a str>,
    /// Next settlement time, ms.
    #[serde(rename = "nextFundingTime", borrow, default)]
    pub next_funding_time: Option<&'a str>,
    /// Push time, ms (absent on old frames).
    #[serde(borrow, default)]
    pub ts: Option<&'a str>,
}

/// A `mark-price` element: `{"instType":"SWAP","instId":"BTC-USDT-SWAP","markPx":"42310.6",
/// "ts":"1630049139746"}`.
#[derive(Debug, Deserialize)]
pub struct OkxMarkPrice<'a> {
    /// Instrument id.
    #[serde(rename = "instId", borrow)]
    pub inst_id: &'a str,
    /// Mark price.
    #[serde(rename = "markPx", borrow)]
    pub mark_px: &'a str,
    /// Time, ms.
    #[serde(borrow)]
    pub ts: &'a str,
}

/// An `open-interest` element: `{"instType":"SWAP","instId":"BTC-USDT-SWAP","oi":"2216113",
/// "oiCcy":"22161.13","oiUsd":"937000000","ts":"1630049139746"}`.
#[derive(Debug, Deserialize)]
pub struct OkxOpenInterest<'a> {
    /// Instrument id.
    #[serde(rename = "instId", borrow)]
    pub inst_id: &'a str,
    /// Open interest in contracts.
    #[serde(borrow)]
    pub oi: &'a str,
    /// Open interest value in USD (newer frames).
    #[serde(rename = "oiUsd", borrow, default)]
    pub oi_usd: Option<&'a str>,
    /// Time, ms.
    #[serde(borrow)]
    pub ts: &'a str,
}

/// A `liquidation-orders` element (subscribed by `instType`).
///
/// `{"details":[{"bkLoss":"0","bkPx":"0.007831","ccy":"","posSide":"short","side":"buy",
///   "sz":"13","ts":"1692266434010"}],"instFamily":"IOST-USDT","instId":"IOST-USDT-SWAP",
///   "instType":"SWAP","uly":"IOST-USDT"}`
#[derive(Debug, Deserialize)]
pub struct OkxLiquidation<'a> {
    /// Instrument id.
    #[serde(rename = "instId", borrow)]
    pub inst_id: &'a str,
    /// Instrument type.
    #[serde(rename = "instType", borrow, default)]
    pub inst_type: Option<&'a str>,
    /// The liquidation orders.
    #[serde(borrow, default)]
    pub details: Vec<OkxLiquidationDetail<'a>>,
}

/// One liquidation order of an [`OkxLiquidation`].
#[derive(Debug, Deserialize)]
pub struct OkxLiquidationDetail<'a> {
    /// Order side of the liquidation order (`sell` = a long was liquidated).
    #[serde(borrow)]
    pub side: &'a str,
    /// Bankruptcy price.
    #[serde(rename = "bkPx", borrow)]
    pub bk_px: &'a str,
    /// Size (contracts for FUTURES/SWAP).
    #[serde(borrow)]
    pub sz: &'a str,
    /// Time, ms.
    #[serde(borrow)]
    pub ts: &'a str,
}

/// A frame of a book channel parsed in one pass (the processor's fast path: the frame is
/// walked once instead of an envelope first and its data after).
#[derive(Debug, Deserialize)]
pub struct OkxBookFrame<'a> {
    /// The subscription.
    #[serde(borrow)]
    pub arg: OkxArg<'a>,
    /// `snapshot` or `update` (absent on `books5` and `bbo-tbt`).
    #[serde(borrow, default)]
    pub action: Option<&'a str>,
    /// The book messages (one in practice).
    #[serde(borrow)]
    pub data: Vec<OkxBookData<'a>>,
}

/// REST envelope: `{"code":"0","msg":"","data":[...]}`; `code` other than "0" is an error.
#[derive(Debug, Deserialize)]
pub struct OkxRest<'a> {
    /// "0" on success.
    #[serde(borrow)]
    pub code: &'a str,
    /// Error message.
    #[serde(borrow, default)]
    pub msg: Option<Cow<'a, str>>,
    /// The payload.
    #[serde(borrow, default)]
    pub data: Option<LazyValue<'a>>,
}

/// One entry of `GET /api/v5/public/instruments` (fields a market-data client needs).
///
/// `{"instId":"BTC-USD-SWAP","instType":"SWAP","ctType":"inverse","ctVal":"100","ctMult":"1",
///   "ctValCcy":"USD","settleCcy":"BTC","tickSz":"0.1","lotSz":"1","minSz":"1","state":"live",
///   "uly":"BTC-USD","expTime":"","stk":"","optType":""}`
#[derive(Debug, Deserialize)]
pub struct OkxInstrument<'a> {
    /// `SPOT`, `MARGIN`, `SWAP`, `FUTURES`, `OPTION`.
    #[serde(rename = "instType", borrow)]
    pub inst_type: &'a str,
    /// Instrument id.
    #[serde(rename = "instId", borrow)]
    pub inst_id: &'a str,
    /// Base currency (spot).
    #[serde(rename = "baseCcy", borrow, default)]
    pub base_ccy: Option<&'a str>,
    /// Quote currency (spot).
    #[serde(rename = "quoteCcy", borrow, default)]
    pub quote_ccy: Option<&'a str>,
    /// Settlement currency (derivatives).
    #[serde(rename = "settleCcy", borrow, default)]
    pub settle_ccy: Option<&'a str>,
    /// Underlying, e.g. `BTC-USD`.
    #[serde(borrow, default)]
    pub uly: Option<&'a str>,
    /// Instrument family, e.g. `BTC-USD` (newer answers).
    #[serde(rename = "instFamily", borrow, default)]
    pub inst_family: Option<&'a str>,
    /// Price increment.
    #[serde(rename = "tickSz", borrow, default)]
    pub tick_sz: Option<&'a str>,
    /// Size increment.
    #[serde(rename = "lotSz", borrow, default)]
    pub lot_sz: Option<&'a str>,
    /// Contract face value, in `ctValCcy`.
    #[serde(rename = "ctVal", borrow, default)]
    pub ct_val: Option<&'a str>,
    /// Contract multiplier.
    #[serde(rename = "ctMult", borrow, default)]
    pub ct_mult: Option<&'a str>,
    /// Currency of `ctVal`.
    #[serde(rename = "ctValCcy", borrow, default)]
    pub ct_val_ccy: Option<&'a str>,
    /// `linear` or `inverse` (FUTURES/SWAP).
    #[serde(rename = "ctType", borrow, default)]
    pub ct_type: Option<&'a str>,
    /// Expiry (FUTURES delivery), ms.
    #[serde(rename = "expTime", borrow, default)]
    pub exp_time: Option<&'a str>,
    /// Strike (options).
    #[serde(borrow, default)]
    pub stk: Option<&'a str>,
    /// `C` or `P` (options).
    #[serde(rename = "optType", borrow, default)]
    pub opt_type: Option<&'a str>,
    /// `live`, `suspend`, `preopen`...
    #[serde(borrow, default)]
    pub state: Option<&'a str>,
}

#[cfg(test)]
mod tests {
    use super::*;

    // Real frames from shared/data/captures/OKX.ws.1.0 and OKX.0, and the docs (exchanges.md §4).
    const BOOK_UPDATE: &str = r#"{"arg":{"channel":"books","instId":"BTC-USD-220527"},"action":"update","data":[{"asks":[["30249.4","0","0","0"],["30261","4","0","1"],["30310.3","19","0","1"]],"bids":[["30182.6","452","0","1"]],"ts":"1652459225464","checksum":-914047754}]}"#;
    const BOOK_DOC: &str = r#"{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"update","data":[{"asks":[["8476.98","415","0","13"]],"bids":[["8476.97","256","0","12"]],"ts":"1597026383085","checksum":0,"prevSeqId":123456,"seqId":123457}]}"#;
    const TRADE: &str = r#"{"arg":{"channel":"trades","instId":"BTC-USD-220527"},"data":[{"instId":"BTC-USD-220527","tradeId":"7849","px":"30218.8","sz":"1","side":"buy","ts":"1652459199958"}]}"#;
    const TICKER: &str = r#"{"arg":{"channel":"tickers","instId":"BTC-USD-220527"},"data":[{"instType":"FUTURES","instId":"BTC-USD-220527","last":"30218.8","lastSz":"1","askPx":"30220.1","askSz":"3","bidPx":"30210.4","bidSz":"4","open24h":"29571.4","high24h":"31003.3","low24h":"27930.8","sodUtc0":"28935.3","sodUtc8":"30320.5","volCcy24h":"2620.289","vol24h":"779573","ts":"1652459223003"}]}"#;
    const LIQ: &str = r#"{"arg":{"channel":"liquidation-orders","instType":"SWAP"},"data":[{"details":[{"bkLoss":"0","bkPx":"0.007831","ccy":"","posSide":"short","side":"buy","sz":"13","ts":"1692266434010"}],"instFamily":"IOST-USDT","instId":"IOST-USDT-SWAP","instType":"SWAP","uly":"IOST-USDT"}]}"#;
    const INST: &str = r#"{"alias":"","baseCcy":"","category":"1","ctMult":"0.1","ctType":"","ctVal":"1","ctValCcy":"BTC","expTime":"1652515200000","instId":"BTC-USD-220514-22000-C","instType":"OPTION","lever":"","listTime":"1652344257065","lotSz":"1","maxIcebergSz":"1000000","minSz":"1","optType":"C","quoteCcy":"","settleCcy":"BTC","state":"live","stk":"22000","tickSz":"0.0005","uly":"BTC-USD"}"#;

    fn data<'a>(env: &'a OkxEnvelope<'a>) -> &'a str {
        env.data.as_ref().unwrap().as_raw_str()
    }

    #[test]
    fn parses_captured_book_update() {
        let env: OkxEnvelope = sonic_rs::from_str(BOOK_UPDATE).unwrap();
        let arg = env.arg.as_ref().unwrap();
        assert_eq!(
            (arg.channel, arg.inst_id),
            ("books", Some("BTC-USD-220527"))
        );
        assert_eq!(env.action, Some("update"));
        let d: Vec<OkxBookData> = sonic_rs::from_str(data(&env)).unwrap();
        let asks: Vec<_> = d[0].asks.iter().collect();
        assert_eq!(asks.len(), 3);
        assert_eq!(
            asks[1],
            Some(OkxLevel {
                px: "30261",
                sz: "4"
            })
        );
        assert_eq!(d[0].bids.iter().count(), 1);
        let f: OkxBookFrame = sonic_rs::from_str(BOOK_UPDATE).unwrap();
        assert_eq!((f.arg.channel, f.action), ("books", Some("update")));
        assert_eq!(f.data[0].checksum, Some(-914_047_754));
        assert_eq!(d[0].checksum, Some(-914_047_754));
        assert_eq!((d[0].seq_id, d[0].prev_seq_id), (None, None));
    }

    #[test]
    fn parses_documented_book_with_sequence_ids() {
        let env: OkxEnvelope = sonic_rs::from_str(BOOK_DOC).unwrap();
        let d: Vec<OkxBookData> = sonic_rs::from_str(data(&env)).unwrap();
        assert_eq!(
            (d[0].seq_id, d[0].prev_seq_id, d[0].checksum),
            (Some(123_457), Some(123_456), Some(0))
        );
        // the scanner: whitespace and two-element levels read; anything else ends in None
        let lv = |json: &str| -> Vec<Option<(String, String)>> {
            let text = format!(r#"{{"asks":{json}}}"#);
            let d: OkxBookData = sonic_rs::from_str(&text).unwrap();
            d.asks
                .iter()
                .map(|l| l.map(|l| (l.px.to_string(), l.sz.to_string())))
                .collect()
        };
        let ok = |a: &str, b: &str| Some((a.to_string(), b.to_string()));
        assert_eq!(
            lv(r#"[ ["1", "2"] , ["3","4","0",7] ]"#),
            vec![ok("1", "2"), ok("3", "4")]
        );
        assert_eq!(lv("[]"), vec![]);
        assert_eq!(lv("null"), vec![]);
        assert_eq!(lv(r#"[["1"]]"#), vec![None]);
        assert_eq!(lv(r#"[[1,2]]"#), vec![None]);
        // escapes are not interpreted: the text stays as sent and fails as a number later
        assert_eq!(lv(r#"[["1\u0030","2"]]"#), vec![ok("1\\u0030", "2")]);
        assert_eq!(lv(r#"{"a":1}"#), vec![None]);
        assert_eq!(lv(r#"[["1","2"],"x"]"#), vec![ok("1", "2"), None]);
    }

    #[test]
    fn parses_trade_ticker_and_liquidation() {
        let env: OkxEnvelope = sonic_rs::from_str(TRADE).unwrap();
        let t: Vec<OkxTrade> = sonic_rs::from_str(data(&env)).unwrap();
        assert_eq!(
            (t[0].trade_id, t[0].px, t[0].side),
            ("7849", "30218.8", "buy")
        );
        let env: OkxEnvelope = sonic_rs::from_str(TICKER).unwrap();
        let k: Vec<OkxTicker> = sonic_rs::from_str(data(&env)).unwrap();
        assert_eq!((k[0].last, k[0].vol_24h), ("30218.8", Some("779573")));
        let env: OkxEnvelope = sonic_rs::from_str(LIQ).unwrap();
        assert_eq!(env.arg.as_ref().unwrap().inst_type, Some("SWAP"));
        let l: Vec<OkxLiquidation> = sonic_rs::from_str(data(&env)).unwrap();
        assert_eq!(
            (l[0].inst_id, l[0].details[0].bk_px),
            ("IOST-USDT-SWAP", "0.007831")
        );
    }

    #[test]
    fn parses_acks_errors_and_notices() {
        let ack: OkxEnvelope = sonic_rs::from_str(
            r#"{"event":"subscribe","arg":{"channel":"tickers","instId":"BTC-USD-220527"}}"#,
        )
        .unwrap();
        assert_eq!(ack.event, Some("subscribe"));
        let err: OkxEnvelope = sonic_rs::from_str(
            r#"{"id":"7","event":"error","code":"60012","msg":"Invalid request: {\"op\": \"subscribe\"}","connId":"a4d3ae55"}"#,
        )
        .unwrap();
        assert_eq!((err.code, err.id), (Some("60012"), Some("7")));
        assert!(err.msg.unwrap().contains("\"op\""));
        let notice: OkxEnvelope = sonic_rs::from_str(
            r#"{"event":"notice","code":"64008","msg":"The connection will soon be closed for a service upgrade. Please reconnect.","connId":"a4d3ae55"}"#,
        )
        .unwrap();
        assert_eq!(notice.code, Some("64008"));
    }

    #[test]
    fn parses_instruments_and_rest_envelope() {
        let i: OkxInstrument = sonic_rs::from_str(INST).unwrap();
        assert_eq!(
            (i.inst_type, i.ct_mult, i.stk, i.opt_type),
            ("OPTION", Some("0.1"), Some("22000"), Some("C"))
        );
        let r: OkxRest =
            sonic_rs::from_str(r#"{"code":"0","msg":"","data":[{"asks":[],"bids":[],"ts":"1"}]}"#)
                .unwrap();
        assert_eq!(r.code, "0");
        let data = r.data.unwrap();
        let b: Vec<OkxBookData> = sonic_rs::from_str(data.as_raw_str()).unwrap();
        assert!(b[0].asks.is_empty() && b[0].bids.first().is_none());
    }
}
