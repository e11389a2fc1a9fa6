//! Wire text of the futures-only parts of the simulator (exchanges.md 3.3, 3.5, 3.6):
//! `markPriceUpdate` and `forceOrder` events, and the REST bodies of `/fapi/v1` and
//! `/dapi/v1` (`exchangeInfo` with contract fields and the published weight limit, depth
//! snapshots with `E`/`T`, `openInterest`). Numbers are written by hand like `frames.rs`.

use std::time::Duration;

use super::frames::{push_book_side, push_e8, push_quoted_e8, push_u64, tx_ms};
use super::market::Level;
use super::profile::Profile;
use super::symbols::SymbolSpec;

/// Funding periods are 8 hours on Binance perpetuals.
const FUNDING_PERIOD_MS: u64 = 8 * 3600 * 1000;
/// Synthetic funding rate of every perpetual.
const FUNDING_RATE: &str = "0.00010000";

fn push_str_field(out: &mut String, key: &str, value: &str) {
    out.push_str(",\"");
    out.push_str(key);
    out.push_str("\":\"");
    out.push_str(value);
    out.push('"');
}

fn push_pair(out: &mut String, profile: Profile, spec: &SymbolSpec) {
    if profile == Profile::CoinM {
        push_str_field(out, "ps", &spec.pair);
    }
}

/// `markPriceUpdate` of `spec` with best bid/ask `top` (price in ticks); delivery contracts
/// send `"r":""` and `"T":0` like the venue.
pub(crate) fn mark_price(out: &mut String, spec: &SymbolSpec, top: (Level, Level), now_ms: u64) {
    let (bid, ask) = (top.0 .0, top.1 .0);
    let mark = (bid + ask) * spec.tick_e8 / 2;
    let index = mark - spec.tick_e8;
    out.clear();
    out.push_str("{\"e\":\"markPriceUpdate\",\"E\":");
    push_u64(out, now_ms);
    out.push_str(",\"s\":\"");
    out.push_str(&spec.symbol);
    out.push_str("\",\"p\":");
    push_quoted_e8(out, mark);
    out.push_str(",\"i\":");
    push_quoted_e8(out, index);
    out.push_str(",\"P\":");
    push_quoted_e8(out, index);
    if spec.is_perpetual() {
        out.push_str(",\"r\":\"");
        out.push_str(FUNDING_RATE);
        out.push_str("\",\"T\":");
        push_u64(out, (now_ms / FUNDING_PERIOD_MS + 1) * FUNDING_PERIOD_MS);
    } else {
        out.push_str(",\"r\":\"\",\"T\":0");
    }
    out.push('}');
}

/// `forceOrder` of a filled liquidation of `lots` at `price` ticks (`sell`: a long was
/// liquidated).
#[allow(clippy::too_many_arguments)]
pub(crate) fn force_order(
    out: &mut String,
    profile: Profile,
    spec: &SymbolSpec,
    sell: bool,
    price: i64,
    lots: i64,
    now_ms: u64,
) {
    out.clear();
    out.push_str("{\"e\":\"forceOrder\",\"E\":");
    push_u64(out, now_ms);
    out.push_str(",\"o\":{\"s\":\"");
    out.push_str(&spec.symbol);
    out.push('"');
    push_pair(out, profile, spec);
    out.push_str(if sell {
        ",\"S\":\"SELL\""
    } else {
        ",\"S\":\"BUY\""
    });
    out.push_str(",\"o\":\"LIMIT\",\"f\":\"IOC\",\"q\":");
    push_quoted_e8(out, lots * spec.step_e8);
    out.push_str(",\"p\":");
    push_quoted_e8(out, price * spec.tick_e8);
    out.push_str(",\"ap\":");
    push_quoted_e8(out, price * spec.tick_e8);
    out.push_str(",\"X\":\"FILLED\",\"l\":");
    push_quoted_e8(out, lots * spec.step_e8);
    out.push_str(",\"z\":");
    push_quoted_e8(out, lots * spec.step_e8);
    out.push_str(",\"T\":");
    push_u64(out, tx_ms(now_ms, now_ms));
    out.push_str("}}");
}

/// Futures depth snapshot: `lastUpdateId`, `E`, `T` (COIN-M adds `symbol` and `pair`).
pub(crate) fn depth(
    profile: Profile,
    spec: &SymbolSpec,
    last_id: u64,
    bids: &[Level],
    asks: &[Level],
    now_ms: u64,
) -> String {
    let mut out = String::with_capacity(96 + (bids.len() + asks.len()) * 36);
    out.push_str("{\"lastUpdateId\":");
    push_u64(&mut out, last_id);
    out.push_str(",\"E\":");
    push_u64(&mut out, now_ms);
    out.push_str(",\"T\":");
    push_u64(&mut out, tx_ms(now_ms, last_id));
    if profile == Profile::CoinM {
        push_str_field(&mut out, "symbol", &spec.symbol);
        push_str_field(&mut out, "pair", &spec.pair);
    }
    out.push_str(",\"bids\":");
    push_book_side(&mut out, bids, spec.tick_e8, spec.step_e8);
    out.push_str(",\"asks\":");
    push_book_side(&mut out, asks, spec.tick_e8, spec.step_e8);
    out.push('}');
    out
}

fn contract_type(spec: &SymbolSpec) -> &'static str {
    if spec.is_perpetual() {
        "PERPETUAL"
    } else {
        "CURRENT_QUARTER"
    }
}

/// `GET /fapi/v1/openInterest` / `/dapi/v1/openInterest` body (COIN-M counts contracts).
pub(crate) fn open_interest(profile: Profile, spec: &SymbolSpec, lots: i64, now_ms: u64) -> String {
    let mut out = String::with_capacity(128);
    out.push_str("{\"symbol\":\"");
    out.push_str(&spec.symbol);
    out.push('"');
    if profile == Profile::CoinM {
        push_str_field(&mut out, "pair", &spec.pair);
        push_str_field(&mut out, "contractType", contract_type(spec));
    }
    out.push_str(",\"openInterest\":\"");
    push_e8(&mut out, lots * spec.step_e8);
    out.push_str("\",\"time\":");
    push_u64(&mut out, now_ms);
    out.push('}');
    out
}

/// The `rateLimits` entry of a weight limit per `window` (seconds or whole minutes).
pub(crate) fn push_rate_limits(out: &mut String, limit: u32, window: Duration) {
    let secs = window.as_secs().max(1);
    let (interval, num) = if secs % 60 == 0 {
        ("MINUTE", secs / 60)
    } else {
        ("SECOND", secs)
    };
    out.push_str("\"rateLimits\":[{\"rateLimitType\":\"REQUEST_WEIGHT\",\"interval\":\"");
    out.push_str(interval);
    out.push_str("\",\"intervalNum\":");
    push_u64(out, num);
    out.push_str(",\"limit\":");
    push_u64(out, u64::from(limit));
    out.push_str(
        "},{\"rateLimitType\":\"ORDERS\",\"interval\":\"MINUTE\",\"intervalNum\":1,\
         \"limit\":1200},{\"rateLimitType\":\"RAW_REQUESTS\",\"interval\":\"MINUTE\",\
         \"intervalNum\":5,\"limit\":61000}]",
    );
}

fn push_symbol(out: &mut String, profile: Profile, s: &SymbolSpec) {
    out.push_str("{\"symbol\":\"");
    out.push_str(&s.symbol);
    out.push('"');
    push_str_field(out, "pair", &s.pair);
    push_str_field(out, "contractType", contract_type(s));
    out.push_str(",\"deliveryDate\":");
    push_u64(out, u64::try_from(s.delivery_ms).unwrap_or(0));
    out.push_str(",\"onboardDate\":1569398400000");
    if profile == Profile::CoinM {
        push_str_field(out, "contractStatus", "TRADING");
        out.push_str(",\"contractSize\":");
        push_u64(out, u64::try_from(s.contract_size).unwrap_or(0));
        push_str_field(out, "marginAsset", &s.base);
    } else {
        push_str_field(out, "status", "TRADING");
        push_str_field(out, "marginAsset", &s.quote);
    }
    push_str_field(out, "baseAsset", &s.base);
    push_str_field(out, "quoteAsset", &s.quote);
    out.push_str(",\"filters\":[{\"filterType\":\"PRICE_FILTER\",\"minPrice\":");
    push_quoted_e8(out, s.tick_e8);
    out.push_str(",\"maxPrice\":\"1000000.00000000\",\"tickSize\":");
    push_quoted_e8(out, s.tick_e8);
    out.push_str("},{\"filterType\":\"LOT_SIZE\",\"minQty\":");
    push_quoted_e8(out, s.step_e8);
    out.push_str(",\"maxQty\":\"9000000.00000000\",\"stepSize\":");
    push_quoted_e8(out, s.step_e8);
    out.push_str("}],\"orderTypes\":[\"LIMIT\",\"MARKET\"],\"timeInForce\":[\"GTC\",\"IOC\"]}");
}

/// Futures `exchangeInfo` of every synthetic symbol (the futures endpoint takes no filter).
pub(crate) fn exchange_info(
    profile: Profile,
    specs: &[SymbolSpec],
    limit: u32,
    window: Duration,
    now_ms: u64,
) -> String {
    let mut out = String::with_capacity(512 + specs.len() * 700);
    out.push_str("{\"timezone\":\"UTC\",\"serverTime\":");
    push_u64(&mut out, now_ms);
    out.push(',');
    push_rate_limits(&mut out, limit, window);
    out.push_str(",\"exchangeFilters\":[],\"symbols\":[");
    for (i, s) in specs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_symbol(&mut out, profile, s);
    }
    out.push_str("]}");
    out
}

#[cfg(test)]
mod unit {
    use sonic_rs::JsonValueTrait;

    use super::*;

    #[test]
    fn test_futures_bodies_parse() {
        let spec = SymbolSpec::infer_for(Profile::CoinM, "BTCUSD_211231", 10).unwrap();
        let mut s = String::new();
        mark_price(&mut s, &spec, ((1000, 5), (1002, 7)), 1_000);
        let v: sonic_rs::Value = sonic_rs::from_str(&s).unwrap();
        assert_eq!(sonic_rs::to_string(&v["r"]).unwrap(), "\"\"");
        assert_eq!(v["T"].as_u64(), Some(0));
        force_order(&mut s, Profile::CoinM, &spec, true, 1000, 3, 5_000);
        let v: sonic_rs::Value = sonic_rs::from_str(&s).unwrap();
        assert_eq!(v["o"]["ps"].as_str(), Some("BTCUSD"));
        assert_eq!(v["o"]["z"].as_str(), Some("3.00000000"));
        let info = exchange_info(Profile::CoinM, &[spec], 600, Duration::from_secs(5), 1);
        let v: sonic_rs::Value = sonic_rs::from_str(&info).unwrap();
        assert_eq!(v["rateLimits"][0]["interval"].as_str(), Some("SECOND"));
        assert_eq!(v["symbols"][0]["contractSize"].as_u64(), Some(100));
    }
}
