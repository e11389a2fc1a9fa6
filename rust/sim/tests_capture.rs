//! Capture-replay tests against the real Binance recording in shared/data/captures.
//!
//! The captures are found through `XTRADER_CAPTURES`, else `../shared/data/captures` from the
//! crate root; a missing folder skips with a printed reason, except under `CI=true` where it
//! fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::Duration;

use sonic_rs::{JsonContainerTrait, JsonValueTrait};
use tokio::time::Instant;

use super::tests::{connect, http_get, next_text, send_text};
use super::*;

fn captures_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("XTRADER_CAPTURES").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data/captures"),
        PathBuf::from,
    );
    if dir.join("BINANCE.ws.1.0").is_file() {
        return Some(dir);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "captures not found at {} (CI=true: not skipping)",
        dir.display()
    );
    eprintln!("skipping: captures not found at {}", dir.display());
    None
}

fn capture_config(dir: &std::path::Path, speed: f64) -> SimConfig {
    SimConfig {
        max_client_msgs_per_s: None,
        capture: Some(CaptureSource {
            ws: dir.join("BINANCE.ws.1.0"),
            rest: vec![dir.join("BINANCE.http.0.0"), dir.join("BINANCE.0")],
            speed,
        }),
        ..SimConfig::default()
    }
}

/// (recorded time, full frame text) of every received frame of `stream`, in file order.
fn recorded(dir: &std::path::Path, stream: &str) -> Vec<(f64, String)> {
    let text = std::fs::read_to_string(dir.join("BINANCE.ws.1.0")).unwrap();
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let (ts, body) = l.split_once(": ")?;
            let ts: f64 = ts.parse().ok()?;
            let s = sonic_rs::get(body, ["stream"]).ok()?;
            (s.as_str() == Some(stream)).then(|| (ts, body.to_string()))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_sim_capture_replays_subscribed_stream_at_pace() {
    let Some(dir) = captures_dir() else { return };
    let expected = recorded(&dir, "nknusdt@depth@100ms");
    assert_eq!(expected.len(), 150);
    let speed = 20.0;
    let sim = start(capture_config(&dir, speed)).await.unwrap();
    let addr = sim.local_addr();
    // Before playback the position is the connection time, so the recorded snapshot comes back.
    let (status, _, body) = http_get(addr, "/api/v3/depth?symbol=NKNUSDT&limit=1000").await;
    assert_eq!(status, 200);
    assert!(body.starts_with(r#"{"lastUpdateId":499869752,"#));
    // timed from before the connection, where the playback starts: a late first frame on a
    // loaded machine (the rest then catch up) cannot shorten the measured span
    let t0 = Instant::now();
    let mut ws = connect(addr, "/stream?streams=nknusdt@depth@100ms").await;
    let mut got = Vec::new();
    for _ in 0..expected.len() {
        let t = next_text(&mut ws, Duration::from_secs(10))
            .await
            .expect("replay stopped early");
        got.push(t);
    }
    let elapsed = t0.elapsed().as_secs_f64();
    let recorded_span = (expected[expected.len() - 1].0 - expected[0].0) / speed;
    assert!(
        elapsed > recorded_span * 0.8 && elapsed < recorded_span * 2.0 + 0.5,
        "replayed in {elapsed:.2} s, recorded span {recorded_span:.2} s"
    );
    for (g, (_, e)) in got.iter().zip(&expected) {
        assert_eq!(g, e);
    }
    // Nothing from streams this client did not name.
    assert!(next_text(&mut ws, Duration::from_millis(300))
        .await
        .is_none());
    assert_eq!(sim.stats().capture_playbacks, 1);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_sim_capture_raw_subscribe_and_rest() {
    let Some(dir) = captures_dir() else { return };
    let expected: Vec<String> = recorded(&dir, "nknusdt@bookTicker")
        .into_iter()
        .map(|(_, body)| {
            sonic_rs::get(&body, ["data"])
                .unwrap()
                .as_raw_str()
                .to_string()
        })
        .collect();
    assert!(!expected.is_empty());
    let sim = start(capture_config(&dir, 0.0)).await.unwrap();
    let addr = sim.local_addr();
    let mut ws = connect(addr, "/ws").await;
    send_text(
        &mut ws,
        r#"{"method":"SUBSCRIBE","params":["nknusdt@bookTicker"],"id":1}"#,
    )
    .await;
    assert_eq!(
        next_text(&mut ws, Duration::from_secs(10)).await.unwrap(),
        r#"{"result":null,"id":1}"#
    );
    for e in &expected {
        assert_eq!(
            &next_text(&mut ws, Duration::from_secs(10)).await.unwrap(),
            e
        );
    }
    let (status, _, body) = http_get(addr, "/api/v3/depth?symbol=LRCBTC").await;
    assert_eq!(status, 200);
    assert!(body.starts_with(r#"{"lastUpdateId":259345543,"#));
    let (status, _, body) = http_get(addr, "/api/v3/depth?symbol=BTCUSDT").await;
    assert_eq!(
        (status, body.as_str()),
        (400, r#"{"code":-1121,"msg":"Invalid symbol."}"#)
    );
    let (status, _, body) = http_get(addr, "/api/v3/exchangeInfo?symbol=NKNUSDT").await;
    assert_eq!(status, 200);
    let v: sonic_rs::Value = sonic_rs::from_str(&body).unwrap();
    let symbols = v.get("symbols").unwrap().as_array().unwrap();
    assert_eq!(symbols.len(), 1);
    assert_eq!(symbols[0].get("baseAsset").unwrap().as_str(), Some("NKN"));
    let (status, _, body) = http_get(addr, "/api/v3/exchangeInfo").await;
    assert_eq!(status, 200);
    assert!(body.len() > 1_000_000);
    sim.fail_snapshots("NKNUSDT", 1);
    let (status, _, _) = http_get(addr, "/api/v3/depth?symbol=NKNUSDT").await;
    assert_eq!(status, 500);
    assert!(!sim.inject_gap("NKNUSDT"));
    sim.shutdown().await;
}

#[test]
fn test_sim_capture_parse_errors_name_the_line() {
    let dir = std::env::temp_dir().join(format!("xtrader-sim-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ws = dir.join("bad.ws.1.0");
    std::fs::write(
        &ws,
        "wss://x/stream <-> 1.5\n1.6: {\"stream\":\"a@trade\",\"data\":{}}\ngarbage\n",
    )
    .unwrap();
    let src = CaptureSource {
        ws,
        rest: Vec::new(),
        speed: 1.0,
    };
    match capture::CaptureData::load(&src) {
        Err(SimError::Capture { line, .. }) => assert_eq!(line, 3),
        other => panic!("expected a capture error, got {other:?}"),
    }
    let _ = std::fs::remove_dir_all(&dir);
}
