//! Wire text of the synthetic OKX frames (exchanges.md §4.2–4.5) written into reusable
//! `String`s, and the CRC32 book checksum computed over exactly the strings written.
//!
//! OKX prints numbers without trailing zeros (`"30316"`, `"0.5"`); the checksum is defined
//! over those strings, so levels are always formatted by [`push_num`] here and nowhere else.
//! It must not decide what happens in the market (`market.rs`) or who receives a frame.

use super::super::frames::push_u64;
use super::super::market::Level;

const SCALE: i64 = 100_000_000;

/// Appends a non-negative amount in units of 1e-8 with no trailing zeros (`"27123.45"`).
pub(crate) fn push_num(out: &mut String, v: i64) {
    let v = v.max(0);
    push_u64(out, v.unsigned_abs() / SCALE.unsigned_abs());
    let mut frac = v % SCALE;
    if frac == 0 {
        return;
    }
    let mut digits = [b'0'; 8];
    for d in digits.iter_mut().rev() {
        // the remainder of a division by 10 always fits in a byte
        *d = b'0' + (frac % 10) as u8;
        frac /= 10;
    }
    let used = digits.iter().rposition(|&d| d != b'0').map_or(0, |i| i + 1);
    out.push('.');
    for &b in digits.iter().take(used) {
        out.push(char::from(b));
    }
}

fn push_quoted(out: &mut String, v: i64) {
    out.push('"');
    push_num(out, v);
    out.push('"');
}

fn push_ms(out: &mut String, ms: u64) {
    out.push('"');
    push_u64(out, ms);
    out.push('"');
}

fn push_i64(out: &mut String, v: i64) {
    if v < 0 {
        out.push('-');
    }
    push_u64(out, v.unsigned_abs());
}

/// Price grid of one instrument: ticks and lots back to decimal strings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Grid {
    pub tick_e8: i64,
    pub step_e8: i64,
}

fn push_levels(out: &mut String, levels: &[Level], g: Grid) {
    out.push('[');
    for (i, &(px, lots)) in levels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('[');
        push_quoted(out, px * g.tick_e8);
        out.push(',');
        push_quoted(out, lots * g.step_e8);
        // deprecated "0" and the order count (the sim does not model orders: 1, 0 if deleted)
        out.push_str(if lots > 0 {
            ",\"0\",\"1\"]"
        } else {
            ",\"0\",\"0\"]"
        });
    }
    out.push(']');
}

/// The checksum of a book given its best 25 levels per side (bids best first, asks best
/// first): CRC32 of `bid1px:bid1sz:ask1px:ask1sz:...` as a signed 32-bit integer.
pub(crate) fn checksum(bids: &[Level], asks: &[Level], g: Grid, scratch: &mut String) -> i32 {
    scratch.clear();
    for i in 0..25 {
        for side in [bids, asks] {
            if let Some(&(px, lots)) = side.get(i) {
                push_num(scratch, px * g.tick_e8);
                scratch.push(':');
                push_num(scratch, lots * g.step_e8);
                scratch.push(':');
            }
        }
    }
    scratch.pop();
    i32::from_ne_bytes(crc32fast::hash(scratch.as_bytes()).to_ne_bytes())
}

fn push_arg(out: &mut String, channel: &str, inst_id: &str) {
    out.push_str("{\"arg\":{\"channel\":\"");
    out.push_str(channel);
    out.push_str("\",\"instId\":\"");
    out.push_str(inst_id);
    out.push_str("\"},");
}

/// A book message's sequence fields and checksum.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BookSeq {
    pub prev: i64,
    pub seq: i64,
    pub checksum: i32,
}

/// `books` (and the l2-tbt aliases): `action` `snapshot` or `update`; `books5` / `bbo-tbt`
/// pass `action` None and `prev` is not written.
#[allow(clippy::too_many_arguments)]
pub(crate) fn book(
    out: &mut String,
    channel: &str,
    inst_id: &str,
    action: Option<&str>,
    bids: &[Level],
    asks: &[Level],
    g: Grid,
    s: BookSeq,
    ts_ms: u64,
) {
    out.clear();
    push_arg(out, channel, inst_id);
    if let Some(a) = action {
        out.push_str("\"action\":\"");
        out.push_str(a);
        out.push_str("\",");
    }
    out.push_str("\"data\":[{\"asks\":");
    push_levels(out, asks, g);
    out.push_str(",\"bids\":");
    push_levels(out, bids, g);
    out.push_str(",\"ts\":");
    push_ms(out, ts_ms);
    if action.is_some() {
        out.push_str(",\"checksum\":");
        push_i64(out, i64::from(s.checksum));
        out.push_str(",\"prevSeqId\":");
        push_i64(out, s.prev);
    }
    out.push_str(",\"seqId\":");
    push_i64(out, s.seq);
    out.push_str("}]}");
}

/// One trade message (`trades`: the taker order aggregated; `trades-all`: one fill).
#[allow(clippy::too_many_arguments)]
pub(crate) fn trade(
    out: &mut String,
    channel: &str,
    inst_id: &str,
    trade_id: u64,
    px_e8: i64,
    sz_e8: i64,
    taker_buys: bool,
    ts_ms: u64,
) {
    out.clear();
    push_arg(out, channel, inst_id);
    out.push_str("\"data\":[{\"instId\":\"");
    out.push_str(inst_id);
    out.push_str("\",\"tradeId\":\"");
    push_u64(out, trade_id);
    out.push_str("\",\"px\":");
    push_quoted(out, px_e8);
    out.push_str(",\"sz\":");
    push_quoted(out, sz_e8);
    out.push_str(if taker_buys {
        ",\"side\":\"buy\""
    } else {
        ",\"side\":\"sell\""
    });
    out.push_str(",\"ts\":");
    push_ms(out, ts_ms);
    out.push_str("}]}");
}

/// Numbers of a ticker, in units of 1e-8.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TickerNums {
    pub last: i64,
    pub last_sz: i64,
    pub bid: (i64, i64),
    pub ask: (i64, i64),
    pub vol: i64,
    pub vol_ccy: i64,
}

/// A `tickers` message.
pub(crate) fn ticker(out: &mut String, inst_type: &str, inst_id: &str, n: TickerNums, ts_ms: u64) {
    out.clear();
    push_arg(out, "tickers", inst_id);
    out.push_str("\"data\":[{\"instType\":\"");
    out.push_str(inst_type);
    out.push_str("\",\"instId\":\"");
    out.push_str(inst_id);
    for (k, v) in [
        ("last", n.last),
        ("lastSz", n.last_sz),
        ("askPx", n.ask.0),
        ("askSz", n.ask.1),
        ("bidPx", n.bid.0),
        ("bidSz", n.bid.1),
        ("open24h", n.last),
        ("high24h", n.last),
        ("low24h", n.last),
        ("volCcy24h", n.vol_ccy),
        ("vol24h", n.vol),
    ] {
        out.push_str("\",\"");
        out.push_str(k);
        out.push_str("\":\"");
        push_num(out, v);
    }
    out.push_str("\",\"ts\":");
    push_ms(out, ts_ms);
    out.push_str("}]}");
}

/// A `funding-rate` message (rate in units of 1e-8; 8 h periods).
pub(crate) fn funding_rate(out: &mut String, inst_id: &str, rate_e8: i64, ts_ms: u64) {
    const PERIOD: u64 = 8 * 3_600_000;
    let funding_time = (ts_ms / PERIOD + 1) * PERIOD;
    out.clear();
    push_arg(out, "funding-rate", inst_id);
    out.push_str("\"data\":[{\"instType\":\"SWAP\",\"instId\":\"");
    out.push_str(inst_id);
    out.push_str("\",\"method\":\"current_period\",\"fundingRate\":\"");
    if rate_e8 < 0 {
        out.push('-');
    }
    push_num(out, rate_e8.abs());
    out.push_str("\",\"fundingTime\":");
    push_ms(out, funding_time);
    out.push_str(",\"nextFundingTime\":");
    push_ms(out, funding_time + PERIOD);
    out.push_str(",\"ts\":");
    push_ms(out, ts_ms);
    out.push_str("}]}");
}

/// A `mark-price` message.
pub(crate) fn mark_price(out: &mut String, inst_type: &str, inst_id: &str, px_e8: i64, ts_ms: u64) {
    out.clear();
    push_arg(out, "mark-price", inst_id);
    out.push_str("\"data\":[{\"instType\":\"");
    out.push_str(inst_type);
    out.push_str("\",\"instId\":\"");
    out.push_str(inst_id);
    out.push_str("\",\"markPx\":");
    push_quoted(out, px_e8);
    out.push_str(",\"ts\":");
    push_ms(out, ts_ms);
    out.push_str("}]}");
}

/// An `open-interest` message (`oi` in contracts, `oiCcy` in base units).
pub(crate) fn open_interest(
    out: &mut String,
    inst_type: &str,
    inst_id: &str,
    oi_e8: i64,
    oi_ccy_e8: i64,
    ts_ms: u64,
) {
    out.clear();
    push_arg(out, "open-interest", inst_id);
    out.push_str("\"data\":[{\"instType\":\"");
    out.push_str(inst_type);
    out.push_str("\",\"instId\":\"");
    out.push_str(inst_id);
    out.push_str("\",\"oi\":");
    push_quoted(out, oi_e8);
    out.push_str(",\"oiCcy\":");
    push_quoted(out, oi_ccy_e8);
    out.push_str(",\"ts\":");
    push_ms(out, ts_ms);
    out.push_str("}]}");
}

/// A `liquidation-orders` message for one instrument (subscribed by instrument type).
#[allow(clippy::too_many_arguments)]
pub(crate) fn liquidation(
    out: &mut String,
    inst_type: &str,
    inst_id: &str,
    family: &str,
    sell: bool,
    bk_px_e8: i64,
    sz_e8: i64,
    ts_ms: u64,
) {
    out.clear();
    out.push_str("{\"arg\":{\"channel\":\"liquidation-orders\",\"instType\":\"");
    out.push_str(inst_type);
    out.push_str("\"},\"data\":[{\"details\":[{\"bkLoss\":\"0\",\"bkPx\":");
    push_quoted(out, bk_px_e8);
    out.push_str(",\"ccy\":\"\",\"posSide\":\"");
    out.push_str(if sell { "long" } else { "short" });
    out.push_str("\",\"side\":\"");
    out.push_str(if sell { "sell" } else { "buy" });
    out.push_str("\",\"sz\":");
    push_quoted(out, sz_e8);
    out.push_str(",\"ts\":");
    push_ms(out, ts_ms);
    out.push_str("}],\"instFamily\":\"");
    out.push_str(family);
    out.push_str("\",\"instId\":\"");
    out.push_str(inst_id);
    out.push_str("\",\"instType\":\"");
    out.push_str(inst_type);
    out.push_str("\",\"uly\":\"");
    out.push_str(family);
    out.push_str("\"}]}");
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn test_okx_frames_numbers_and_checksum() {
        let mut s = String::new();
        for (v, want) in [
            (3_031_600_000_000, "30316"),
            (50_000_000, "0.5"),
            (1, "0.00000001"),
            (0, "0"),
        ] {
            s.clear();
            push_num(&mut s, v);
            assert_eq!(s, want);
        }
        // exchanges.md §4.5 test vector: "3366.1:7:3366.8:9:3366:6:3368:8" -> -1881014294
        let g = Grid {
            tick_e8: 10_000_000,
            step_e8: 100_000_000,
        };
        let bids = [(33661, 7), (33660, 6)];
        let asks = [(33668, 9), (33680, 8)];
        assert_eq!(checksum(&bids, &asks, g, &mut s), -1_881_014_294);
        assert_eq!(s, "3366.1:7:3366.8:9:3366:6:3368:8");
        let seq = BookSeq {
            prev: 10,
            seq: 15,
            checksum: -5,
        };
        book(
            &mut s,
            "books",
            "BTC-USDT",
            Some("update"),
            &bids,
            &[],
            g,
            seq,
            7,
        );
        assert_eq!(
            s,
            r#"{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"update","data":[{"asks":[],"bids":[["3366.1","7","0","1"],["3366","6","0","1"]],"ts":"7","checksum":-5,"prevSeqId":10,"seqId":15}]}"#
        );
        assert!(sonic_rs::from_str::<sonic_rs::Value>(&s).is_ok());
    }
}
