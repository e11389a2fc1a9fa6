//! End-to-end tests of the futures profiles: USD-M routes (market streams silently absent on
//! the wrong route), `pu` chaining with non-contiguous ids, futures REST (depth with `E`/`T`,
//! exchangeInfo contract fields and weight limit, openInterest), mark price and liquidation
//! pushes, COIN-M contract sizes, and the faults: connection lifetime, forced disconnect,
//! stall, weight-limit 429 and forced 429/418.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use futures_util::StreamExt;
use sonic_rs::{JsonContainerTrait, JsonValueTrait};
use tokio::time::{timeout, Instant};
use tokio_tungstenite::tungstenite::Message;

use super::tests::{connect, http_get, next_text, send_text, WAIT};
use super::*;

fn futures_config(profile: Profile, symbols: &[&str]) -> SimConfig {
    SimConfig {
        profile,
        symbols: symbols.iter().map(|s| (*s).to_string()).collect(),
        rate: 2000.0,
        depth_levels: 50,
        seed: 5,
        max_client_msgs_per_s: None,
        mark_interval: Duration::from_millis(100),
        liquidation_prob: 0.5,
        ..SimConfig::default()
    }
}

/// Stream names of the data frames received within `within` (at most `max` frames).
async fn streams_seen(ws: &mut super::tests::Client, within: Duration, max: usize) -> Vec<String> {
    let deadline = Instant::now() + within;
    let mut seen = Vec::new();
    while seen.len() < max {
        let left = deadline.saturating_duration_since(Instant::now());
        let Some(t) = next_text(ws, left).await else {
            break;
        };
        if let Ok(s) = sonic_rs::get(&t, ["stream"]) {
            seen.push(s.as_str().unwrap_or("").to_string());
        }
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_sim_usdm_routes_withhold_market_streams_on_the_wrong_route() {
    let sim = start(futures_config(Profile::UsdM, &["BTCUSDT"]))
        .await
        .unwrap();
    let subscribe = r#"{"method":"SUBSCRIBE","params":["btcusdt@depth@100ms","btcusdt@markPrice@1s","btcusdt@aggTrade"],"id":1}"#;
    let mut public = connect(sim.local_addr(), "/public/stream").await;
    let mut market = connect(sim.local_addr(), "/market/stream").await;
    let mut legacy = connect(sim.local_addr(), "/stream").await;
    for ws in [&mut public, &mut market, &mut legacy] {
        send_text(ws, subscribe).await;
        // every route acknowledges the whole subscription
        assert_eq!(
            next_text(ws, WAIT).await.unwrap(),
            r#"{"result":null,"id":1}"#
        );
    }
    let window = Duration::from_millis(800);
    let p = streams_seen(&mut public, window, 400).await;
    let m = streams_seen(&mut market, window, 400).await;
    let l = streams_seen(&mut legacy, window, 400).await;
    assert!(p.iter().any(|s| s == "btcusdt@depth@100ms"));
    assert!(p.iter().all(|s| s == "btcusdt@depth@100ms"), "{p:?}");
    assert!(m.iter().any(|s| s == "btcusdt@markPrice@1s"));
    assert!(m.iter().any(|s| s == "btcusdt@aggTrade"));
    assert!(!m.iter().any(|s| s.contains("depth")), "{m:?}");
    assert!(l.iter().all(|s| s == "btcusdt@depth@100ms"), "{l:?}");
    // COIN-M has no routes
    let coinm = start(futures_config(Profile::CoinM, &["BTCUSD_PERP"]))
        .await
        .unwrap();
    let (status, _, _) = http_get(coinm.local_addr(), "/public/stream").await;
    assert_eq!(status, 404);
    sim.shutdown().await;
    coinm.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_sim_futures_depth_chains_by_pu_from_the_snapshot() {
    let sim = start(futures_config(Profile::UsdM, &["BTCUSDT"]))
        .await
        .unwrap();
    let addr = sim.local_addr();
    let mut ws = connect(addr, "/public/ws/btcusdt@depth@100ms").await;
    let first = next_text(&mut ws, WAIT).await.unwrap();
    let (status, headers, body) = http_get(addr, "/fapi/v1/depth?symbol=BTCUSDT&limit=1000").await;
    assert_eq!(status, 200, "{body}");
    assert!(headers
        .iter()
        .any(|(k, v)| k == "x-mbx-used-weight-1m" && v == "20"));
    let snap: sonic_rs::Value = sonic_rs::from_str(&body).unwrap();
    let last = snap["lastUpdateId"].as_u64().unwrap();
    assert!(snap["E"].as_u64().is_some() && snap["T"].as_u64().is_some());
    // futures rules (exchanges.md 3.4): drop u < L, first has U <= L <= u, then pu == prev u
    let mut frames = vec![first];
    let mut book_last: Option<u64> = None;
    let mut applied = 0;
    let mut skipped_ids = 0;
    for _ in 0..2000 {
        if applied >= 50 {
            break;
        }
        let t = match frames.pop() {
            Some(t) => t,
            None => next_text(&mut ws, WAIT).await.unwrap(),
        };
        let v: sonic_rs::Value = sonic_rs::from_str(&t).unwrap();
        let (u0, u, pu) = (
            v["U"].as_u64().unwrap(),
            v["u"].as_u64().unwrap(),
            v["pu"].as_u64().unwrap(),
        );
        assert!(v["T"].as_u64().unwrap() <= v["E"].as_u64().unwrap());
        match book_last {
            None if u < last => continue,
            None => {
                assert!(u0 <= last && last <= u, "first event {u0}..{u} vs {last}");
                book_last = Some(u);
            }
            Some(prev) => {
                assert_eq!(pu, prev, "pu chains");
                skipped_ids += u32::from(u0 != prev + 1);
                book_last = Some(u);
            }
        }
        applied += 1;
    }
    assert_eq!(applied, 50);
    assert!(skipped_ids > 10, "futures ids are not contiguous");
    let (status, _, _) = http_get(addr, "/fapi/v1/depth?symbol=BTCUSDT&limit=200").await;
    assert_eq!(status, 400, "200 is not a futures depth limit");
    let (status, _, _) = http_get(addr, "/api/v3/depth?symbol=BTCUSDT").await;
    assert_eq!(status, 404, "spot path on a futures profile");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_sim_coinm_rest_marks_and_liquidations() {
    let sim = start(futures_config(
        Profile::CoinM,
        &["BTCUSD_PERP", "ETHUSD_211231"],
    ))
    .await
    .unwrap();
    let addr = sim.local_addr();
    let (status, _, body) = http_get(addr, "/dapi/v1/exchangeInfo").await;
    assert_eq!(status, 200);
    let info: sonic_rs::Value = sonic_rs::from_str(&body).unwrap();
    let syms = info["symbols"].as_array().unwrap();
    assert_eq!(syms[0]["contractSize"].as_u64(), Some(100));
    assert_eq!(syms[1]["contractType"].as_str(), Some("CURRENT_QUARTER"));
    assert_eq!(syms[1]["deliveryDate"].as_u64(), Some(1_640_937_600_000));
    assert_eq!(
        info["rateLimits"][0]["limit"].as_u64(),
        Some(2400),
        "futures REQUEST_WEIGHT"
    );
    let (status, _, body) = http_get(addr, "/dapi/v1/openInterest?symbol=BTCUSD_PERP").await;
    assert_eq!(status, 200, "{body}");
    let oi: sonic_rs::Value = sonic_rs::from_str(&body).unwrap();
    assert_eq!(oi["pair"].as_str(), Some("BTCUSD"));
    assert!(oi["openInterest"].as_str().unwrap().parse::<f64>().unwrap() > 0.0);
    let mut ws = connect(
        addr,
        "/stream?streams=btcusd_perp@markPrice@1s/ethusd_211231@markPrice@1s/btcusd_perp@forceOrder/btcusd_perp@bookTicker",
    )
    .await;
    let (mut perp_mark, mut dated_mark, mut liq, mut bbo) = (false, false, false, false);
    let deadline = Instant::now() + WAIT;
    while !(perp_mark && dated_mark && liq && bbo) && Instant::now() < deadline {
        let t = next_text(&mut ws, WAIT).await.unwrap();
        let v: sonic_rs::Value = sonic_rs::from_str(&t).unwrap();
        let d = &v["data"];
        match (d["e"].as_str(), d["s"].as_str()) {
            (Some("markPriceUpdate"), Some("BTCUSD_PERP")) => {
                assert!(!d["r"].as_str().unwrap().is_empty());
                assert!(d["T"].as_u64().unwrap() > 0);
                perp_mark = true;
            }
            (Some("markPriceUpdate"), Some("ETHUSD_211231")) => {
                assert_eq!((d["r"].as_str(), d["T"].as_u64()), (Some(""), Some(0)));
                dated_mark = true;
            }
            (Some("forceOrder"), _) => {
                assert_eq!(d["o"]["ps"].as_str(), Some("BTCUSD"));
                let q = d["o"]["q"].as_str().unwrap();
                assert!(q.ends_with(".00000000"), "whole contracts: {q}");
                liq = true;
            }
            (Some("bookTicker"), _) => {
                assert_eq!(d["ps"].as_str(), Some("BTCUSD"));
                assert!(d["T"].as_u64().is_some());
                bbo = true;
            }
            _ => {}
        }
    }
    assert!(perp_mark && dated_mark && liq && bbo);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_sim_faults_lifetime_disconnect_stall_and_rest_limits() {
    let cfg = SimConfig {
        connection_lifetime: Some(Duration::from_millis(600)),
        weight_limit: Some(30),
        weight_window: Duration::from_secs(2),
        ..futures_config(Profile::UsdM, &["BTCUSDT"])
    };
    let sim = start(cfg).await.unwrap();
    let addr = sim.local_addr();
    // lifetime: the venue closes the connection on its own
    // timed from before the connection: the venue's clock starts at its accept, after this
    let t0 = Instant::now();
    let mut ws = connect(addr, "/public/ws/btcusdt@depth@100ms").await;
    let closed = timeout(WAIT, async {
        while let Some(Ok(m)) = ws.next().await {
            if matches!(m, Message::Close(_)) {
                return true;
            }
        }
        true
    })
    .await
    .unwrap();
    assert!(closed && t0.elapsed() >= Duration::from_millis(500));
    assert_eq!(sim.stats().lifetime_closes, 1);
    // forced disconnect drops every socket without a close frame
    let mut a = connect(addr, "/public/ws/btcusdt@depth@100ms").await;
    assert!(next_text(&mut a, WAIT).await.is_some());
    sim.disconnect_all();
    let ended = timeout(WAIT, async {
        loop {
            match a.next().await {
                Some(Ok(Message::Close(_))) => return false,
                Some(Ok(_)) => {}
                _ => return true,
            }
        }
    })
    .await
    .unwrap();
    assert!(ended);
    assert_eq!(sim.stats().forced_disconnects, 1);
    // stall of one stream kind: depth flows, bookTicker withheld. The stall starts before the
    // connection, so no bookTicker frame sent just before it can be read in the window, and
    // outlasts the window by far
    sim.stall(Duration::from_millis(1500), Some("bookTicker".into()));
    let mut s = connect(
        addr,
        "/public/stream?streams=btcusdt@depth@100ms/btcusdt@bookTicker",
    )
    .await;
    let seen = streams_seen(&mut s, Duration::from_millis(250), 200).await;
    assert!(seen.iter().all(|n| n == "btcusdt@depth@100ms"), "{seen:?}");
    assert!(sim.stats().stalled_frames > 0);
    // forced 429 and 418 carry Retry-After
    sim.rest_errors(429, 1, 3);
    let (status, headers, _) = http_get(addr, "/fapi/v1/depth?symbol=BTCUSDT&limit=5").await;
    assert_eq!(status, 429);
    assert!(headers.iter().any(|(k, v)| k == "retry-after" && v == "3"));
    sim.rest_errors(418, 1, 7);
    let (status, _, _) = http_get(addr, "/fapi/v1/openInterest?symbol=BTCUSDT").await;
    assert_eq!(status, 418);
    // weight limit of 30 per 2 s: depth limit 1000 weighs 20, so the second is refused. The
    // windows are aligned to the clock: start just after a boundary, so all three requests
    // fall in one window however slow they are on a loaded machine
    let into = crate::sim::feed::now_ms() % 2000;
    tokio::time::sleep(Duration::from_millis(2000 - into + 20)).await;
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let (status, headers, _) = http_get(addr, "/fapi/v1/depth?symbol=BTCUSDT&limit=1000").await;
        if status == 200 {
            assert!(headers.iter().any(|(k, _)| k == "x-mbx-used-weight-2s"));
        }
        statuses.push(status);
    }
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 2);
    let stats = sim.stats();
    assert_eq!(stats.weight_limit_hits, 2);
    assert!(stats.weight_max_used <= 30);
    sim.shutdown().await;
}
