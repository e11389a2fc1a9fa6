//! REST answers: `depth` and `exchangeInfo` under the profile's prefix (`/api/v3`,
//! `/fapi/v1`, `/dapi/v1`), and futures `openInterest` (exchanges.md 2.7, 3.5, 3.6).
//!
//! Owns the response bodies, the Binance error objects (-1100, -1102, -1121, forced 500s from
//! `fail_snapshots`), the request-weight accounting per window with its
//! `X-MBX-USED-WEIGHT-<n><unit>` header and the 429 (`Retry-After`) answer past the limit,
//! and the forced 429/418/500 answers of `rest_errors`. Synthetic snapshots are taken under
//! the market lock so `lastUpdateId` names exactly the returned book; capture snapshots come
//! from `capture.rs`. Routing and the websocket handshake live in `server.rs`.

use std::sync::atomic::Ordering;

use http_body_util::Full;
use hyper::{header, Response, StatusCode};
use tokio_tungstenite::tungstenite::Bytes;

use super::feed::now_ms;
use super::frames::{push_book_side, push_quoted_e8, push_u64};
use super::futures;
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
const TOO_MANY: &str = r#"{"code":-1003,"msg":"Too many requests; current request weight limit exceeded. Please use the websocket for live updates to avoid polling the API."}"#;
const BANNED: &str = r#"{"code":-1003,"msg":"Way too many requests; IP banned. Please use the websocket for live updates to avoid bans."}"#;
const OPEN_INTEREST_WEIGHT: u64 = 1;
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

/// The request's weight against the window: `Ok(used)` with the window's total, or
/// `Err(retry_after_s)` when it would exceed the limit (the request is not counted).
fn use_weight(shared: &Shared, weight: u64) -> Result<u64, u64> {
    let now = now_ms();
    let window = shared.weight_window_ms.max(1);
    let n = now / window;
    let mut w = shared.weight.lock();
    if w.0 != n {
        *w = (n, 0);
    }
    if w.1.saturating_add(weight) > u64::from(shared.weight_limit) {
        bump(&shared.stats.weight_limit_hits);
        let left_ms = (n + 1) * window - now;
        return Err(left_ms.div_ceil(1000).max(1));
    }
    w.1 = w.1.saturating_add(weight);
    shared
        .stats
        .weight_max_used
        .fetch_max(w.1, Ordering::Relaxed);
    Ok(w.1)
}

/// `X-MBX-USED-WEIGHT-<intervalNum><unit>` of the window (`1M` for a minute).
fn weight_header(shared: &Shared) -> String {
    let secs = (shared.weight_window_ms / 1000).max(1);
    let mut h = String::from("X-MBX-USED-WEIGHT-");
    if secs % 60 == 0 {
        push_u64(&mut h, secs / 60);
        h.push('M');
    } else {
        push_u64(&mut h, secs);
        h.push('S');
    }
    h
}

/// A JSON response; `used_weight` adds the Binance weight header.
pub(crate) fn json(status: StatusCode, body: String, used_weight: Option<u64>) -> Response<Body> {
    json_with(
        status,
        body,
        used_weight.map(|w| ("X-MBX-USED-WEIGHT-1M".to_string(), w)),
        None,
    )
}

fn json_with(
    status: StatusCode,
    body: String,
    used: Option<(String, u64)>,
    retry_after_s: Option<u64>,
) -> Response<Body> {
    let mut b = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json;charset=UTF-8");
    if let Some((name, w)) = used {
        let mut v = String::with_capacity(8);
        push_u64(&mut v, w);
        b = b.header(name, v);
    }
    if let Some(s) = retry_after_s {
        let mut v = String::with_capacity(8);
        push_u64(&mut v, s);
        b = b.header(header::RETRY_AFTER, v);
    }
    b.body(Full::new(Bytes::from(body)))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

/// Charge `weight`: the weight header to send, or `Err(retry_after_s)` past the limit.
fn charge(shared: &Shared, weight: u64) -> Result<Option<(String, u64)>, u64> {
    use_weight(shared, weight).map(|used| Some((weight_header(shared), used)))
}

/// The 429 answer past the weight limit.
fn too_many(retry_after_s: u64) -> Response<Body> {
    json_with(
        StatusCode::TOO_MANY_REQUESTS,
        TOO_MANY.into(),
        None,
        Some(retry_after_s),
    )
}

/// A pending `rest_errors` answer, if any.
fn forced(shared: &Shared) -> Option<Response<Body>> {
    let f = shared.faults.take_rest()?;
    bump(&shared.stats.rest_faults);
    let status = StatusCode::from_u16(f.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let (body, retry) = match f.status {
        429 => (TOO_MANY, Some(f.retry_after_s)),
        418 => (BANNED, Some(f.retry_after_s)),
        _ => (SERVER_ERROR, None),
    };
    Some(json_with(status, body.into(), None, retry))
}

/// A pending `rest_errors` answer in OKX's envelope (429 and 418 as 50011 with
/// `Retry-After`, others as 50001), if any.
pub(crate) fn forced_okx(shared: &Shared) -> Option<Response<Body>> {
    let f = shared.faults.take_rest()?;
    bump(&shared.stats.rest_faults);
    let status = StatusCode::from_u16(f.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let limited = matches!(f.status, 429 | 418);
    let body = if limited {
        r#"{"code":"50011","msg":"Too Many Requests","data":[]}"#
    } else {
        r#"{"code":"50001","msg":"Service temporarily unavailable","data":[]}"#
    };
    Some(json_with(
        status,
        body.into(),
        None,
        limited.then_some(f.retry_after_s),
    ))
}

/// 404 with a JSON body.
pub(crate) fn not_found() -> Response<Body> {
    json(StatusCode::NOT_FOUND, NOT_FOUND.to_string(), None)
}

/// Answers a GET on a REST path, or 404.
pub(crate) fn handle(path: &str, query: &str, shared: &Shared) -> Response<Body> {
    let Some(endpoint) = path.strip_prefix(shared.profile.rest_prefix()) else {
        return not_found();
    };
    match endpoint {
        "/depth" => depth(query, shared),
        "/exchangeInfo" => exchange_info(query, shared),
        "/openInterest" if shared.profile.is_futures() => open_interest(query, shared),
        _ => not_found(),
    }
}

fn take_failure(shared: &Shared, symbol: &str) -> bool {
    shared.fail_snapshots.get(symbol).is_some_and(|c| {
        c.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| v.checked_sub(1))
            .is_ok()
    })
}

fn depth(query: &str, shared: &Shared) -> Response<Body> {
    let default = if shared.profile.is_futures() {
        500
    } else {
        100
    };
    let limit = match query_param(query, "limit") {
        None => default,
        Some(l) => match l.parse::<usize>() {
            Ok(l) => l.clamp(1, MAX_DEPTH_LIMIT),
            Err(_) => return json(StatusCode::BAD_REQUEST, BAD_LIMIT.into(), None),
        },
    };
    // futures accept only 5/10/20/50/100/500/1000
    let Some(weight) = shared.profile.depth_weight(limit) else {
        return json(StatusCode::BAD_REQUEST, BAD_LIMIT.into(), None);
    };
    let used = match charge(shared, weight) {
        Ok(u) => u,
        Err(retry) => return too_many(retry),
    };
    if let Some(resp) = forced(shared) {
        return resp;
    }
    let Some(symbol) = query_param(query, "symbol").filter(|s| !s.is_empty()) else {
        return json_with(StatusCode::BAD_REQUEST, MISSING_SYMBOL.into(), used, None);
    };
    let body = match &shared.source {
        Source::Synthetic(m) => m
            .index(&symbol)
            .map(|i| synthetic_depth(shared, m, i, limit)),
        Source::Capture(c) => c.snapshot(&symbol).map(str::to_string),
    };
    let Some(body) = body else {
        return json_with(StatusCode::BAD_REQUEST, INVALID_SYMBOL.into(), used, None);
    };
    if take_failure(shared, &symbol) {
        bump(&shared.stats.snapshots_failed);
        return json_with(
            StatusCode::INTERNAL_SERVER_ERROR,
            SERVER_ERROR.into(),
            used,
            None,
        );
    }
    bump(&shared.stats.snapshots_served);
    json_with(StatusCode::OK, body, used, None)
}

fn open_interest(query: &str, shared: &Shared) -> Response<Body> {
    let used = match charge(shared, OPEN_INTEREST_WEIGHT) {
        Ok(u) => u,
        Err(retry) => return too_many(retry),
    };
    if let Some(resp) = forced(shared) {
        return resp;
    }
    let Some(symbol) = query_param(query, "symbol").filter(|s| !s.is_empty()) else {
        return json_with(StatusCode::BAD_REQUEST, MISSING_SYMBOL.into(), used, None);
    };
    let Source::Synthetic(m) = &shared.source else {
        return not_found();
    };
    let found = m.index(&symbol).and_then(|i| {
        let lots = m.state.lock().open_interest(i)?;
        Some((m.specs.get(i)?, lots))
    });
    let Some((spec, lots)) = found else {
        return json_with(StatusCode::BAD_REQUEST, INVALID_SYMBOL.into(), used, None);
    };
    bump(&shared.stats.open_interest_served);
    let body = futures::open_interest(shared.profile, spec, lots, now_ms());
    json_with(StatusCode::OK, body, used, None)
}

fn synthetic_depth(shared: &Shared, market: &Market, sym: usize, limit: usize) -> String {
    // Copy under the lock, format after releasing it.
    let snap = market.state.lock().snapshot(sym, limit);
    let (Some((last_id, bids, asks)), Some(spec)) = (snap, market.specs.get(sym)) else {
        return String::from(r#"{"lastUpdateId":0,"bids":[],"asks":[]}"#);
    };
    if shared.profile.is_futures() {
        return futures::depth(shared.profile, spec, last_id, &bids, &asks, now_ms());
    }
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
    let used = match charge(shared, shared.profile.exchange_info_weight()) {
        Ok(u) => u,
        Err(retry) => return too_many(retry),
    };
    let Ok(wanted) = requested_symbols(query) else {
        return json_with(StatusCode::BAD_REQUEST, BAD_SYMBOLS.into(), used, None);
    };
    let body = match &shared.source {
        Source::Synthetic(m) if shared.profile.is_futures() => Ok(futures::exchange_info(
            shared.profile,
            &m.specs,
            shared.weight_limit,
            std::time::Duration::from_millis(shared.weight_window_ms),
            now_ms(),
        )),
        Source::Synthetic(m) => synthetic_exchange_info(shared, m, wanted.as_deref()),
        Source::Capture(c) => match c.exchange_info(wanted.as_deref()) {
            Some(r) => r,
            None => return not_found(),
        },
    };
    match body {
        Ok(b) => json_with(StatusCode::OK, b, used, None),
        Err(()) => json_with(StatusCode::BAD_REQUEST, INVALID_SYMBOL.into(), used, None),
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

fn synthetic_exchange_info(
    shared: &Shared,
    m: &Market,
    wanted: Option<&[String]>,
) -> Result<String, ()> {
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
    out.push(',');
    futures::push_rate_limits(
        &mut out,
        shared.weight_limit,
        std::time::Duration::from_millis(shared.weight_window_ms),
    );
    out.push_str(",\"exchangeFilters\":[],\"symbols\":[");
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
