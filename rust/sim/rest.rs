//! REST answers: `GET /api/v3/depth` and `GET /api/v3/exchangeInfo` (exchanges.md 2.7).
//!
//! Owns the response bodies, the Binance error objects (-1100, -1102, -1121, forced 500s from
//! `fail_snapshots`) and the `X-MBX-USED-WEIGHT-1M` accounting. Synthetic snapshots are taken
//! under the market lock so `lastUpdateId` names exactly the returned book; capture snapshots
//! come from `capture.rs`. Routing and the websocket handshake live in `server.rs`.

use std::sync::atomic::Ordering;

use http_body_util::Full;
use hyper::{header, Response, StatusCode};
use tokio_tungstenite::tungstenite::Bytes;

use super::feed::now_ms;
use super::frames::{push_book_side, push_quoted_e8, push_u64};
use super::market::{Market, SymbolSpec};
use super::{bump, Shared, Source};

/// Body type of every HTTP answer of the sim.
pub(crate) type Body = Full<Bytes>;

const INVALID_SYMBOL: &str = r#"{"code":-1121,"msg":"Invalid symbol."}"#;
const MISSING_SYMBOL: &str = r#"{"code":-1102,"msg":"Mandatory parameter 'symbol' was not sent, was empty/null, or malformed."}"#;
const BAD_LIMIT: &str = r#"{"code":-1100,"msg":"Illegal characters found in parameter 'limit'; legal range is '^[0-9]{1,20}$'."}"#;
const BAD_SYMBOLS: &str = r#"{"code":-1100,"msg":"Illegal characters found in parameter 'symbols'; legal range is a JSON array of symbols."}"#;
const SERVER_ERROR: &str =
    r#"{"code":-1000,"msg":"An unknown error occurred while processing the request."}"#;
const NOT_FOUND: &str = r#"{"code":-1,"msg":"Not found."}"#;
const EXCHANGE_INFO_WEIGHT: u64 = 20;
const MAX_DEPTH_LIMIT: usize = 5000;

fn hex(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

/// Percent-decodes a URL component (`+` means space in query strings).
pub(crate) fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'%' => {
                let hi = bytes.get(i + 1).copied().and_then(hex)?;
                let lo = bytes.get(i + 2).copied().and_then(hex)?;
                out.push(hi * 16 + lo);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// First value of `key` in a query string, percent-decoded.
pub(crate) fn query_param(query: &str, key: &str) -> Option<String> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
        .find(|(k, _)| *k == key)
        .and_then(|(_, v)| percent_decode(v))
}

/// Adds `weight` to the current minute and returns the minute's total.
fn use_weight(shared: &Shared, weight: u64) -> u64 {
    let minute = now_ms() / 60_000;
    let mut w = shared.weight.lock();
    if w.0 != minute {
        *w = (minute, 0);
    }
    w.1 = w.1.saturating_add(weight);
    w.1
}

/// A JSON response; `used_weight` adds the Binance weight header.
pub(crate) fn json(status: StatusCode, body: String, used_weight: Option<u64>) -> Response<Body> {
    let mut b = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json;charset=UTF-8");
    if let Some(w) = used_weight {
        let mut v = String::with_capacity(8);
        push_u64(&mut v, w);
        b = b.header("X-MBX-USED-WEIGHT-1M", v);
    }
    b.body(Full::new(Bytes::from(body)))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

/// 404 with a JSON body.
pub(crate) fn not_found() -> Response<Body> {
    json(StatusCode::NOT_FOUND, NOT_FOUND.to_string(), None)
}

/// Answers a GET on a REST path, or 404.
pub(crate) fn handle(path: &str, query: &str, shared: &Shared) -> Response<Body> {
    match path {
        "/api/v3/depth" => depth(query, shared),
        "/api/v3/exchangeInfo" => exchange_info(query, shared),
        _ => not_found(),
    }
}

fn depth_weight(limit: usize) -> u64 {
    match limit {
        0..=100 => 5,
        101..=500 => 25,
        501..=1000 => 50,
        _ => 250,
    }
}

fn take_failure(shared: &Shared, symbol: &str) -> bool {
    shared.fail_snapshots.get(symbol).is_some_and(|c| {
        c.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| v.checked_sub(1))
            .is_ok()
    })
}

fn depth(query: &str, shared: &Shared) -> Response<Body> {
    let limit = match query_param(query, "limit") {
        None => 100,
        Some(l) => match l.parse::<usize>() {
            Ok(l) => l.clamp(1, MAX_DEPTH_LIMIT),
            Err(_) => return json(StatusCode::BAD_REQUEST, BAD_LIMIT.into(), None),
        },
    };
    let used = Some(use_weight(shared, depth_weight(limit)));
    let Some(symbol) = query_param(query, "symbol").filter(|s| !s.is_empty()) else {
        return json(StatusCode::BAD_REQUEST, MISSING_SYMBOL.into(), used);
    };
    let body = match &shared.source {
        Source::Synthetic(m) => m.index(&symbol).map(|i| synthetic_depth(m, i, limit)),
        Source::Capture(c) => c.snapshot(&symbol).map(str::to_string),
    };
    let Some(body) = body else {
        return json(StatusCode::BAD_REQUEST, INVALID_SYMBOL.into(), used);
    };
    if take_failure(shared, &symbol) {
        bump(&shared.stats.snapshots_failed);
        return json(StatusCode::INTERNAL_SERVER_ERROR, SERVER_ERROR.into(), used);
    }
    bump(&shared.stats.snapshots_served);
    json(StatusCode::OK, body, used)
}

fn synthetic_depth(market: &Market, sym: usize, limit: usize) -> String {
    // Copy under the lock, format after releasing it.
    let snap = market.state.lock().snapshot(sym, limit);
    let (Some((last_id, bids, asks)), Some(spec)) = (snap, market.specs.get(sym)) else {
        return String::from(r#"{"lastUpdateId":0,"bids":[],"asks":[]}"#);
    };
    let mut out = String::with_capacity(64 + (bids.len() + asks.len()) * 36);
    out.push_str("{\"lastUpdateId\":");
    push_u64(&mut out, last_id);
    out.push_str(",\"bids\":");
    push_book_side(&mut out, &bids, spec.tick_e8, spec.step_e8);
    out.push_str(",\"asks\":");
    push_book_side(&mut out, &asks, spec.tick_e8, spec.step_e8);
    out.push('}');
    out
}

/// `symbol=X` or `symbols=["X","Y"]`; `Err` when `symbols` is not a JSON array of strings.
fn requested_symbols(query: &str) -> Result<Option<Vec<String>>, ()> {
    if let Some(s) = query_param(query, "symbol") {
        return Ok(Some(vec![s]));
    }
    match query_param(query, "symbols") {
        None => Ok(None),
        Some(list) => sonic_rs::from_str::<Vec<String>>(&list)
            .map(Some)
            .map_err(|_| ()),
    }
}

fn exchange_info(query: &str, shared: &Shared) -> Response<Body> {
    let used = Some(use_weight(shared, EXCHANGE_INFO_WEIGHT));
    let Ok(wanted) = requested_symbols(query) else {
        return json(StatusCode::BAD_REQUEST, BAD_SYMBOLS.into(), used);
    };
    let body = match &shared.source {
        Source::Synthetic(m) => synthetic_exchange_info(m, wanted.as_deref()),
        Source::Capture(c) => match c.exchange_info(wanted.as_deref()) {
            Some(r) => r,
            None => return not_found(),
        },
    };
    match body {
        Ok(b) => json(StatusCode::OK, b, used),
        Err(()) => json(StatusCode::BAD_REQUEST, INVALID_SYMBOL.into(), used),
    }
}

fn push_symbol(out: &mut String, s: &SymbolSpec) {
    out.push_str("{\"symbol\":\"");
    out.push_str(&s.symbol);
    out.push_str("\",\"status\":\"TRADING\",\"baseAsset\":\"");
    out.push_str(&s.base);
    out.push_str("\",\"baseAssetPrecision\":8,\"quoteAsset\":\"");
    out.push_str(&s.quote);
    out.push_str(
        "\",\"quotePrecision\":8,\"quoteAssetPrecision\":8,\
         \"orderTypes\":[\"LIMIT\",\"LIMIT_MAKER\",\"MARKET\"],\
         \"isSpotTradingAllowed\":true,\"isMarginTradingAllowed\":false,\
         \"filters\":[{\"filterType\":\"PRICE_FILTER\",\"minPrice\":",
    );
    push_quoted_e8(out, s.tick_e8);
    out.push_str(",\"maxPrice\":\"1000000.00000000\",\"tickSize\":");
    push_quoted_e8(out, s.tick_e8);
    out.push_str("},{\"filterType\":\"LOT_SIZE\",\"minQty\":");
    push_quoted_e8(out, s.step_e8);
    out.push_str(",\"maxQty\":\"9000000.00000000\",\"stepSize\":");
    push_quoted_e8(out, s.step_e8);
    out.push_str("}],\"permissions\":[\"SPOT\"]}");
}

fn synthetic_exchange_info(m: &Market, wanted: Option<&[String]>) -> Result<String, ()> {
    let chosen: Vec<&SymbolSpec> = match wanted {
        None => m.specs.iter().collect(),
        Some(list) => list
            .iter()
            .map(|w| m.specs.iter().find(|s| &s.symbol == w).ok_or(()))
            .collect::<Result<_, _>>()?,
    };
    let mut out = String::with_capacity(256 + chosen.len() * 600);
    out.push_str("{\"timezone\":\"UTC\",\"serverTime\":");
    push_u64(&mut out, now_ms());
    out.push_str(
        ",\"rateLimits\":[{\"rateLimitType\":\"REQUEST_WEIGHT\",\"interval\":\"MINUTE\",\
         \"intervalNum\":1,\"limit\":6000},{\"rateLimitType\":\"RAW_REQUESTS\",\
         \"interval\":\"MINUTE\",\"intervalNum\":5,\"limit\":61000}],\
         \"exchangeFilters\":[],\"symbols\":[",
    );
    for (i, s) in chosen.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_symbol(&mut out, s);
    }
    out.push_str("]}");
    Ok(out)
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn test_rest_query_decoding() {
        let q = "symbols=%5B%22BTCUSDT%22,%22ETHUSDT%22%5D&limit=5";
        assert_eq!(
            query_param(q, "symbols").as_deref(),
            Some(r#"["BTCUSDT","ETHUSDT"]"#)
        );
        assert_eq!(query_param(q, "limit").as_deref(), Some("5"));
        assert_eq!(query_param(q, "nope"), None);
        assert_eq!(percent_decode("%zz"), None);
    }
}
