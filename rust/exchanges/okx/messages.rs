//! OKX v5 wire structs, borrowing `&str` from the frame (exchanges.md §4.2–4.6).
//!
//! Prices and sizes stay strings here: the book keeps the exact wire strings for the CRC32
//! checksum and the processor parses numbers with fast_float. Timestamps are millisecond
//! strings. Nothing here allocates beyond the `Vec`s of levels and data elements.

use std::borrow::Cow;
use std::fmt;

use serde::de::{IgnoredAny, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use sonic_rs::LazyValue;

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

impl<'de: 'a, 'a> Deserialize<'de> for OkxLevel<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = OkxLevel<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("[price, size, ...] as strings")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let px: &'de str = seq
                    .next_element()?
                    .ok_or_else(|| serde::de::Error::invalid_length(0, &self))?;
                let sz: &'de str = seq
                    .next_element()?
                    .ok_or_else(|| serde::de::Error::invalid_length(1, &self))?;
                // the deprecated "0" and the order count: not needed (bounded by the frame)
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(OkxLevel { px, sz })
            }
        }
        d.deserialize_seq(V(std::marker::PhantomData))
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
    pub asks: Vec<OkxLevel<'a>>,
    /// Bid levels, best first.
    #[serde(borrow, default)]
    pub bids: Vec<OkxLevel<'a>>,
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
        assert_eq!(
            d[0].asks[1],
            OkxLevel {
                px: "30261",
                sz: "4"
            }
        );
        assert_eq!(d[0].bids.len(), 1);
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
        // a level with only two elements still parses; one element does not
        let two: Vec<OkxLevel> = sonic_rs::from_str(r#"[["1","2"]]"#).unwrap();
        assert_eq!(two[0].sz, "2");
        assert!(sonic_rs::from_str::<Vec<OkxLevel>>(r#"[["1"]]"#).is_err());
        assert!(sonic_rs::from_str::<Vec<OkxLevel>>(r#"[[1,2]]"#).is_err());
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
        assert!(b[0].asks.is_empty());
    }
}
