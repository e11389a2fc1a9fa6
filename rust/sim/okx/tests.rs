//! End-to-end tests of the OKX profile over loopback: subscriptions, pushed snapshots and
//! updates checked by the real OKX processor (chain and CRC32), REST, errors, the text ping
//! and the 4004 idle close, injected faults, and serving the recorded capture. Every wait is
//! bounded in time and every loop in iterations.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::Duration;

use futures_util::StreamExt;
use sonic_rs::{JsonContainerTrait, JsonValueTrait};
use tokio::time::{timeout_at, Instant};
use tokio_tungstenite::tungstenite::Message;

use super::super::tests::{
    connect, http_get, next_text, send_text, test_config, Client, MAX_FRAMES, WAIT,
};
use super::super::{start, CaptureSource, SimConfig};
use super::{OkxFault, OkxSimConfig};
use crate::exchanges::okx::{BookChannel, OkxProcessor};
use crate::exchanges::{Channels, ExchangeProcessor};
use crate::model::{BookState, Event, SymbolMeta, Venue};

const INSTS: [&str; 4] = [
    "BTC-USDT",
    "BTC-USDT-SWAP",
    "BTC-USD-250926",
    "BTC-USD-250926-60000-C",
];

fn okx_config(checksum: bool) -> SimConfig {
    SimConfig {
        symbols: Vec::new(),
        okx: OkxSimConfig {
            symbols: INSTS.iter().map(|s| (*s).to_string()).collect(),
            checksum,
            ..OkxSimConfig::default()
        },
        ..test_config()
    }
}

fn processor() -> OkxProcessor {
    let metas: Vec<_> = INSTS
        .iter()
        .map(|n| SymbolMeta::new(Venue::Okx, n, n, None))
        .collect();
    OkxProcessor::from_metas(&metas, Channels::ALL, BookChannel::Books)
}

fn sub(args: &[(&str, &str)]) -> String {
    let args: Vec<String> = args
        .iter()
        .map(|(c, i)| format!(r#"{{"channel":"{c}","instId":"{i}"}}"#))
        .collect();
    format!(
        r#"{{"id":"1","op":"subscribe","args":[{}]}}"#,
        args.join(",")
    )
}

/// Feeds frames to the processor until `done` holds or the time runs out.
async fn pump(
    ws: &mut Client,
    p: &mut OkxProcessor,
    within: Duration,
    done: impl Fn(&OkxProcessor) -> bool,
) -> Vec<Event> {
    let (mut out, mut act) = (Vec::new(), Vec::new());
    let deadline = Instant::now() + within;
    for _ in 0..MAX_FRAMES {
        if done(p) {
            break;
        }
        let Some(t) = next_text(ws, deadline.saturating_duration_since(Instant::now())).await
        else {
            break;
        };
        p.on_frame(&t, 1, &mut out, &mut act);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_okx_sim_books_chain_and_checksums_for_every_type() {
    let sim = start(okx_config(true)).await.unwrap();
    let mut ws = connect(sim.local_addr(), "/ws/v5/public").await;
    let args: Vec<(&str, &str)> = INSTS
        .iter()
        .flat_map(|i| [("books", *i), ("trades", *i), ("bbo-tbt", *i)])
        .collect();
    send_text(&mut ws, &sub(&args)).await;
    let mut p = processor();
    pump(&mut ws, &mut p, WAIT, |p| {
        p.counters.checksum_ok > 400 && p.counters.trades > 20
    })
    .await;
    let c = &p.counters;
    assert_eq!(c.acks, 12);
    assert_eq!(c.snapshots, 4);
    assert!(c.checksum_ok > 400, "{c:?}");
    assert_eq!(
        (c.checksum_failed, c.gaps, c.resyncs, c.parse_errors),
        (0, 0, 0, 0)
    );
    for m in p.symbols() {
        let b = m.book.as_ref().unwrap().read();
        assert_eq!(b.state, BookState::Live);
        assert!(!b.is_crossed(), "{}", m.native);
    }
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_okx_sim_faults_checksum_break_and_subscribe_error() {
    let sim = start(okx_config(true)).await.unwrap();
    let mut ws = connect(sim.local_addr(), "/ws/v5/public").await;
    let args: Vec<(&str, &str)> = INSTS.iter().map(|i| ("books", *i)).collect();
    send_text(&mut ws, &sub(&args)).await;
    let mut p = processor();
    pump(&mut ws, &mut p, WAIT, |p| p.counters.checksum_ok > 40).await;
    sim.inject_okx_fault(
        OkxFault::BadChecksum,
        Some("BTC-USDT-SWAP"),
        1,
        Duration::ZERO,
    )
    .unwrap();
    let out = pump(&mut ws, &mut p, WAIT, |p| p.counters.checksum_failed > 0).await;
    assert_eq!(p.counters.checksum_failed, 1);
    assert!(out.iter().any(|e| matches!(e, Event::Status(s) if s.reason.code() == Some("checksum") && s.sym.as_ref().is_some_and(|m| &*m.native == "BTC-USDT-SWAP"))));
    sim.inject_okx_fault(
        OkxFault::SeqBreak,
        Some("BTC-USD-250926"),
        1,
        Duration::ZERO,
    )
    .unwrap();
    pump(&mut ws, &mut p, WAIT, |p| p.counters.gaps > 0).await;
    assert_eq!(p.counters.gaps, 1);
    // an unknown or refused instrument is an error event naming channel and instId
    sim.inject_okx_fault(
        OkxFault::SubscribeError,
        Some("BTC-USDT"),
        1,
        Duration::ZERO,
    )
    .unwrap();
    send_text(
        &mut ws,
        &sub(&[
            ("tickers", "BTC-USDT"),
            ("tickers", "NOPE-USDT"),
            ("tickers", "BTC-USDT-SWAP"),
        ]),
    )
    .await;
    let out = pump(&mut ws, &mut p, WAIT, |p| p.counters.venue_errors >= 2).await;
    let msgs: Vec<String> = out
        .iter()
        .filter_map(|e| match e {
            Event::Status(s) if s.reason.code() == Some("subscribe_error") => {
                Some(s.reason.render())
            }
            _ => None,
        })
        .collect();
    assert_eq!(msgs.len(), 2, "{msgs:?}");
    assert!(
        msgs[0].contains("60018") && msgs[0].contains("channel tickers, BTC-USDT"),
        "{msgs:?}"
    );
    assert!(msgs[1].contains("NOPE-USDT"));
    assert_eq!(sim.stats().okx_faults_applied, 2);
    assert!(sim
        .inject_okx_fault(OkxFault::BadChecksum, None, 1, Duration::ZERO)
        .is_err());
    assert!(sim
        .inject_okx_fault(OkxFault::BadChecksum, Some("ETH-USDT"), 1, Duration::ZERO)
        .is_err());
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_okx_sim_control_errors_ping_and_idle_close() {
    let mut cfg = okx_config(false);
    // 1 s: a late wake-up of this task between two pings must not look like silence
    cfg.okx.idle_timeout = Duration::from_millis(1000);
    let sim = start(cfg).await.unwrap();
    let mut ws = connect(sim.local_addr(), "/ws/v5/public").await;
    for (req, code) in [
        ("{nope", "60012"),
        (r#"{"op":"subscribe"}"#, "60013"),
        (r#"{"op":"login","args":[{}]}"#, "60019"),
        (
            r#"{"op":"subscribe","args":[{"channel":"books7","instId":"BTC-USDT"}]}"#,
            "60018",
        ),
        (
            r#"{"op":"subscribe","args":[{"channel":"trades-all","instId":"BTC-USDT"}]}"#,
            "64001",
        ),
    ] {
        send_text(&mut ws, req).await;
        let reply = next_text(&mut ws, WAIT).await.unwrap();
        let v: sonic_rs::Value = sonic_rs::from_str(&reply).unwrap();
        assert_eq!(
            v.get("event").and_then(|e| e.as_str()),
            Some("error"),
            "{reply}"
        );
        assert_eq!(
            v.get("code").and_then(|e| e.as_str()),
            Some(code),
            "{reply}"
        );
    }
    // a client that pings stays connected well past the idle timeout
    let until = Instant::now() + Duration::from_millis(2500);
    let mut pongs = 0;
    while Instant::now() < until {
        send_text(&mut ws, "ping").await;
        if next_text(&mut ws, WAIT).await.as_deref() == Some("pong") {
            pongs += 1;
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    assert!(pongs >= 5);
    // then silence: closed with 4004 within a bounded time
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut code = None;
    for _ in 0..100 {
        match timeout_at(deadline, ws.next()).await {
            Ok(Some(Ok(Message::Close(f)))) => {
                code = f.map(|f| u16::from(f.code));
                break;
            }
            Ok(Some(Ok(_))) => {}
            _ => break,
        }
    }
    assert_eq!(code, Some(4004));
    assert_eq!(sim.stats().okx_idle_closes, 1);
    // business socket: public channels are refused
    let mut biz = connect(sim.local_addr(), "/ws/v5/business").await;
    send_text(
        &mut biz,
        &sub(&[("books", "BTC-USDT"), ("trades-all", "BTC-USDT")]),
    )
    .await;
    let first = next_text(&mut biz, WAIT).await.unwrap();
    assert!(first.contains("64002"), "{first}");
    let second = next_text(&mut biz, WAIT).await.unwrap();
    assert!(second.contains(r#""event":"subscribe""#), "{second}");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_okx_sim_rest_instruments_and_bootstrap_books() {
    let mut cfg = okx_config(false);
    cfg.okx.push_snapshot = false;
    let sim = start(cfg).await.unwrap();
    let addr = sim.local_addr();
    for (query, n) in [
        ("SPOT", 1),
        ("SWAP", 1),
        ("FUTURES", 1),
        ("OPTION&instFamily=BTC-USD", 1),
        ("OPTION&instFamily=ETH-USD", 0),
    ] {
        let (status, _, body) = http_get(
            addr,
            &format!("/api/v5/public/instruments?instType={query}"),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let list = crate::exchanges::okx::parse_instruments(&body).unwrap();
        assert_eq!(list.len(), n, "{query}: {body}");
    }
    let (_, _, body) = http_get(
        addr,
        "/api/v5/public/instruments?instType=SWAP&instId=BTC-USDT-SWAP",
    )
    .await;
    let inst = &crate::exchanges::okx::parse_instruments(&body).unwrap()[0];
    assert_eq!(
        (inst.symbol.as_str(), inst.contract_size),
        ("BTC-USDT-PERP", 0.01)
    );
    let (status, _, body) = http_get(addr, "/api/v5/public/instruments").await;
    assert_eq!(status, 400, "{body}");
    let (_, _, body) = http_get(addr, "/api/v5/market/books?instId=NOPE").await;
    assert!(body.contains("51001"));
    // no pushed snapshot: the processor bootstraps from REST, served by the sim with a seqId
    let mut ws = connect(addr, "/ws/v5/public").await;
    send_text(&mut ws, &sub(&[("books", "BTC-USDT-SWAP")])).await;
    let metas = vec![SymbolMeta::new(
        Venue::Okx,
        "BTC-USDT-SWAP",
        "BTC-USDT-PERP",
        None,
    )];
    let mut p = OkxProcessor::from_metas(&metas, Channels::ALL, BookChannel::Books);
    let (mut out, mut act) = (Vec::new(), Vec::new());
    let deadline = Instant::now() + WAIT;
    for _ in 0..MAX_FRAMES {
        if p.counters.book_updates > 50 || Instant::now() > deadline {
            break;
        }
        let Some(t) = next_text(&mut ws, WAIT).await else {
            break;
        };
        p.on_frame(&t, 1, &mut out, &mut act);
        for a in std::mem::take(&mut act) {
            if let crate::exchanges::Action::FetchSnapshot(0) = a {
                let (_, _, body) =
                    http_get(addr, "/api/v5/market/books?instId=BTC-USDT-SWAP&sz=400").await;
                p.on_snapshot(0, &body, 2, &mut out, &mut act);
            }
        }
    }
    assert_eq!(p.counters.rest_snapshots, 1);
    assert!(p.counters.book_updates > 50);
    assert_eq!((p.counters.gaps, p.counters.checksum_failed), (0, 0));
    assert_eq!(
        p.symbols()[0].book.as_ref().unwrap().read().state,
        BookState::Live
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_okx_sim_serves_the_recorded_capture() {
    let dir = std::env::var_os("XTRADER_CAPTURES").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data/captures"),
        PathBuf::from,
    );
    if !dir.join("OKX.ws.1.0").is_file() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "captures missing in CI"
        );
        return;
    }
    let cfg = SimConfig {
        symbols: Vec::new(),
        capture: Some(CaptureSource {
            ws: dir.join("OKX.ws.1.0"),
            rest: vec![dir.join("OKX.0")],
            speed: 0.0,
        }),
        ..test_config()
    };
    let sim = start(cfg).await.unwrap();
    let (_, _, body) = http_get(
        sim.local_addr(),
        "/api/v5/public/instruments?instType=FUTURES&instId=BTC-USD-220527",
    )
    .await;
    let v: sonic_rs::Value = sonic_rs::from_str(&body).unwrap();
    assert_eq!(
        v.get("data").and_then(|d| d.as_array()).map(|a| a.len()),
        Some(1)
    );
    let mut ws = connect(sim.local_addr(), "/ws/v5/public").await;
    let insts = ["BTC-USD-220527", "UNI-USD-SWAP", "BTC-USDT"];
    let args: Vec<(&str, &str)> = insts
        .iter()
        .flat_map(|i| [("books", *i), ("trades", *i), ("tickers", *i)])
        .collect();
    send_text(&mut ws, &sub(&args)).await;
    let metas: Vec<_> = insts
        .iter()
        .map(|n| SymbolMeta::new(Venue::Okx, n, n, None))
        .collect();
    let mut p = OkxProcessor::from_metas(&metas, Channels::ALL, BookChannel::Books);
    pump(&mut ws, &mut p, WAIT, |p| {
        p.counters.checksum_ok + p.counters.checksum_failed >= 290
    })
    .await;
    assert_eq!(
        (p.counters.checksum_ok, p.counters.checksum_failed),
        (290, 0)
    );
    assert_eq!((p.counters.trades, p.counters.acks), (74, 9));
    sim.shutdown().await;
}
