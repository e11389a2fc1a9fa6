//! OKX REST answers: `GET /api/v5/public/instruments` and `GET /api/v5/market/books`
//! (exchanges.md §4.6), in the `{"code":"0","msg":"","data":[...]}` envelope, with the venue's
//! parameter errors. Synthetic books are copied under the market lock, so the `seqId` names
//! exactly the returned book; forced failures come from `fail_snapshots` and `rest_errors`.

use hyper::{Response, StatusCode};

use super::super::feed::now_ms;
use super::super::rest::{forced_okx, json, query_param, Body};
use super::super::{bump, Shared};
use super::frames::{self, BookSeq, Grid};
use super::specs::InstType;
use super::{take, OkxSim, OkxSource};

/// Levels per side of a REST book (`sz`, at most 400; the venue's default is 1).
const MAX_BOOK_SZ: usize = 400;

fn error(status: StatusCode, code: &str, msg: &str) -> Response<Body> {
    let body = format!(r#"{{"code":"{code}","msg":"{msg}","data":[]}}"#);
    json(status, body, None)
}

/// Answers a GET on an `/api/v5/` path, or `None` when the path is not OKX's.
pub(crate) fn handle(
    path: &str,
    query: &str,
    shared: &Shared,
    okx: &OkxSim,
) -> Option<Response<Body>> {
    match path {
        "/api/v5/public/instruments" => Some(instruments(query, okx)),
        "/api/v5/market/books" => Some(books(query, shared, okx)),
        p if p.starts_with("/api/v5/") => Some(error(StatusCode::NOT_FOUND, "50000", "Not found")),
        _ => None,
    }
}

fn instruments(query: &str, okx: &OkxSim) -> Response<Body> {
    let Some(t) = query_param(query, "instType").filter(|t| !t.is_empty()) else {
        return error(
            StatusCode::BAD_REQUEST,
            "50014",
            "Parameter instType can not be empty.",
        );
    };
    let family = query_param(query, "instFamily")
        .or_else(|| query_param(query, "uly"))
        .unwrap_or_default();
    let inst_id = query_param(query, "instId");
    let ty = match t.as_str() {
        "SPOT" => InstType::Spot,
        "SWAP" => InstType::Swap,
        "FUTURES" => InstType::Futures,
        "OPTION" => InstType::Option,
        "MARGIN" => {
            return json(
                StatusCode::OK,
                r#"{"code":"0","msg":"","data":[]}"#.into(),
                None,
            );
        }
        _ => return error(StatusCode::BAD_REQUEST, "51000", "Parameter instType error"),
    };
    if ty == InstType::Option && family.is_empty() {
        return error(
            StatusCode::BAD_REQUEST,
            "51000",
            "Parameter instFamily error",
        );
    }
    if let OkxSource::Capture(c) = &okx.source {
        let body = c.instruments(&t, &family, inst_id.as_deref());
        return json(
            StatusCode::OK,
            body.unwrap_or_else(|| r#"{"code":"0","msg":"","data":[]}"#.into()),
            None,
        );
    }
    let mut out = String::from(r#"{"code":"0","msg":"","data":["#);
    let mut first = true;
    for (_, s) in okx.of_type(ty) {
        if (!family.is_empty() && s.family != family)
            || inst_id.as_deref().is_some_and(|id| id != s.inst_id)
        {
            continue;
        }
        if !first {
            out.push(',');
        }
        first = false;
        s.push_instrument(&mut out);
    }
    out.push_str("]}");
    json(StatusCode::OK, out, None)
}

fn books(query: &str, shared: &Shared, okx: &OkxSim) -> Response<Body> {
    let Some(inst_id) = query_param(query, "instId").filter(|i| !i.is_empty()) else {
        return error(
            StatusCode::BAD_REQUEST,
            "50014",
            "Parameter instId can not be empty.",
        );
    };
    if let Some(resp) = forced_okx(shared) {
        return resp;
    }
    let sz = match query_param(query, "sz") {
        None => 1,
        Some(v) => match v.parse::<usize>() {
            Ok(n) => n.clamp(1, MAX_BOOK_SZ),
            Err(_) => return error(StatusCode::BAD_REQUEST, "51000", "Parameter sz error"),
        },
    };
    let body = match &okx.source {
        OkxSource::Capture(c) => c.book(&inst_id).map(str::to_string),
        OkxSource::Synthetic(m) => okx.index(&inst_id).and_then(|i| {
            let spec = okx.specs.get(i)?;
            let (last, bids, asks) = m.state.lock().snapshot(i, sz)?;
            let g = Grid {
                tick_e8: spec.market.tick_e8,
                step_e8: spec.market.step_e8,
            };
            let seq = BookSeq {
                prev: 0,
                seq: i64::try_from(last).unwrap_or(i64::MAX),
                checksum: 0,
            };
            // the data element of a book message: reuse the frame writer and cut it out
            let mut frame = String::with_capacity(64 + (bids.len() + asks.len()) * 32);
            frames::book(
                &mut frame,
                "books",
                &inst_id,
                None,
                &bids,
                &asks,
                g,
                seq,
                now_ms(),
            );
            let start = frame.find("\"data\":")? + 7;
            let data = frame.get(start..frame.len() - 1)?;
            Some(format!(r#"{{"code":"0","msg":"","data":{data}}}"#))
        }),
    };
    let Some(body) = body else {
        return error(StatusCode::OK, "51001", "Instrument ID does not exist");
    };
    if take(shared.fail_snapshots.get(&inst_id)) {
        bump(&shared.stats.snapshots_failed);
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "50001",
            "Service temporarily unavailable",
        );
    }
    bump(&shared.stats.snapshots_served);
    json(StatusCode::OK, body, None)
}
