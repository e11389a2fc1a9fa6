//! End-to-end tests of the synthetic market (streams, REST, book sync, gaps, pacing) and the
//! shared test helpers: tokio-tungstenite's client and a minimal HTTP/1.1 client over loopback
//! (port 0 only). Every wait is bounded in time and every loop in iterations.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use sonic_rs::JsonValueTrait;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout, timeout_at, Instant};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::*;

pub(super) type Client = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub(super) const WAIT: Duration = Duration::from_secs(10);
/// Upper bound on frames any single read loop looks at.
pub(super) const MAX_FRAMES: usize = 200_000;

pub(super) fn test_config() -> SimConfig {
    SimConfig {
        rate: 3000.0,
        depth_levels: 50,
        seed: 11,
        max_client_msgs_per_s: None,
        ..SimConfig::default()
    }
}

pub(super) async fn connect(addr: SocketAddr, path: &str) -> Client {
    let url = format!("ws://{addr}{path}");
    let (ws, resp) = timeout(WAIT, tokio_tungstenite::connect_async(url))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 101);
    ws
}

/// Next text frame, skipping control frames; `None` on close, error or timeout.
pub(super) async fn next_text(ws: &mut Client, within: Duration) -> Option<String> {
    let deadline = Instant::now() + within;
    for _ in 0..MAX_FRAMES {
        match timeout_at(deadline, ws.next()).await.ok()?? {
            Ok(Message::Text(t)) => return Some(t.to_string()),
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => {}
        }
    }
    None
}

pub(super) async fn send_text(ws: &mut Client, text: &str) {
    ws.send(Message::Text(text.into())).await.unwrap();
}

/// Status, headers (lower-case names) and body of a GET.
pub(super) async fn http_get(addr: SocketAddr, path: &str) -> (u16, Vec<(String, String)>, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    timeout(WAIT, s.read_to_end(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8(buf).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers, body.to_string())
}

#[derive(Debug, Deserialize)]
struct Snapshot {
    #[serde(rename = "lastUpdateId")]
    last_update_id: u64,
    bids: Vec<(String, String)>,
    asks: Vec<(String, String)>,
}

#[derive(Debug, Deserialize)]
struct Diff {
    #[serde(rename = "U")]
    first: u64,
    #[serde(rename = "u")]
    last: u64,
    b: Vec<(String, String)>,
    a: Vec<(String, String)>,
}

/// Local book kept by the spot rules of exchanges.md 2.6.
#[derive(Debug, Default, PartialEq)]
struct LocalBook {
    last: u64,
    bids: BTreeMap<String, String>,
    asks: BTreeMap<String, String>,
}

fn side(levels: &[(String, String)]) -> BTreeMap<String, String> {
    levels.iter().cloned().collect()
}

impl LocalBook {
    fn from_snapshot(s: &Snapshot) -> LocalBook {
        LocalBook {
            last: s.last_update_id,
            bids: side(&s.bids),
            asks: side(&s.asks),
        }
    }

    /// Ok(true) applied, Ok(false) dropped as old, Err(()) gap.
    fn apply(&mut self, d: &Diff, first_event: bool) -> Result<bool, ()> {
        if d.last <= self.last {
            return Ok(false);
        }
        let ok = if first_event {
            d.first <= self.last + 1 && self.last < d.last
        } else {
            d.first == self.last + 1
        };
        if !ok {
            return Err(());
        }
        for (book, levels) in [(&mut self.bids, &d.b), (&mut self.asks, &d.a)] {
            for (p, q) in levels {
                if q.parse::<f64>().unwrap() == 0.0 {
                    book.remove(p);
                } else {
                    book.insert(p.clone(), q.clone());
                }
            }
        }
        self.last = d.last;
        Ok(true)
    }

    fn best(map: &BTreeMap<String, String>, max: bool) -> f64 {
        let prices = map.keys().map(|p| p.parse::<f64>().unwrap());
        if max {
            prices.fold(f64::MIN, f64::max)
        } else {
            prices.fold(f64::MAX, f64::min)
        }
    }
}

async fn snapshot(addr: SocketAddr, symbol: &str) -> Snapshot {
    let (status, _, body) =
        http_get(addr, &format!("/api/v3/depth?symbol={symbol}&limit=1000")).await;
    assert_eq!(status, 200, "{body}");
    sonic_rs::from_str(&body).unwrap()
}

/// Next depth diff on a combined connection.
async fn next_diff(ws: &mut Client) -> Diff {
    for _ in 0..MAX_FRAMES {
        let text = next_text(ws, WAIT).await.expect("depth stream ended");
        let is_depth = sonic_rs::get(&text, ["data", "e"])
            .ok()
            .is_some_and(|e| e.as_str() == Some("depthUpdate"));
        if is_depth {
            let data = sonic_rs::get(&text, ["data"]).unwrap();
            return sonic_rs::from_str(data.as_raw_str()).unwrap();
        }
    }
    panic!("no depth diff");
}

/// Steps 1-6 of exchanges.md 2.6, starting from already buffered `buffer`.
async fn sync(ws: &mut Client, addr: SocketAddr, mut buffer: Vec<Diff>) -> LocalBook {
    if buffer.is_empty() {
        buffer.push(next_diff(ws).await);
    }
    let mut snap = snapshot(addr, "BTCUSDT").await;
    for _ in 0..5 {
        if snap.last_update_id >= buffer[0].first {
            break;
        }
        snap = snapshot(addr, "BTCUSDT").await;
    }
    let mut book = LocalBook::from_snapshot(&snap);
    let mut first = true;
    for d in &buffer {
        if book.apply(d, first).expect("gap while syncing") {
            first = false;
        }
    }
    for _ in 0..10_000 {
        if !first {
            break;
        }
        let d = next_diff(ws).await;
        if book.apply(&d, true).expect("gap on first event") {
            first = false;
        }
    }
    assert!(!first, "never found the first applicable event");
    book
}

/// Fetches a fresh snapshot and applies diffs until the local id reaches it, then compares.
async fn assert_matches_sim(ws: &mut Client, addr: SocketAddr, book: &mut LocalBook) {
    let fresh = snapshot(addr, "BTCUSDT").await;
    assert!(book.last <= fresh.last_update_id);
    for _ in 0..100_000 {
        if book.last >= fresh.last_update_id {
            break;
        }
        let d = next_diff(ws).await;
        book.apply(&d, false).expect("unexpected gap");
    }
    assert_eq!(
        book.last, fresh.last_update_id,
        "ids stop exactly at the snapshot"
    );
    assert_eq!(*book, LocalBook::from_snapshot(&fresh));
    assert_eq!(book.bids.len(), 50);
    assert_eq!(book.asks.len(), 50);
    assert!(LocalBook::best(&book.bids, true) < LocalBook::best(&book.asks, false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_sim_subscribe_ack_and_combined_data() {
    let sim = start(test_config()).await.unwrap();
    let mut ws = connect(sim.local_addr(), "/stream").await;
    let names = [
        "btcusdt@trade",
        "btcusdt@aggTrade",
        "btcusdt@bookTicker",
        "btcusdt@depth",
    ];
    send_text(
        &mut ws,
        r#"{"method":"SUBSCRIBE","params":["btcusdt@trade","btcusdt@aggTrade","btcusdt@bookTicker","btcusdt@depth"],"id":1}"#,
    )
    .await;
    assert_eq!(
        next_text(&mut ws, WAIT).await.unwrap(),
        r#"{"result":null,"id":1}"#
    );
    let mut seen = HashSet::new();
    let mut top: Option<(String, String)> = None;
    let mut checked_trades = 0;
    for _ in 0..MAX_FRAMES {
        if seen.len() == names.len() && checked_trades >= 20 {
            break;
        }
        let text = next_text(&mut ws, WAIT).await.unwrap();
        let stream = sonic_rs::get(&text, ["stream"])
            .unwrap()
            .as_str()
            .unwrap()
            .to_string();
        assert!(names.contains(&stream.as_str()), "{stream}");
        let data = sonic_rs::get(&text, ["data"]).unwrap();
        let data: sonic_rs::Value = sonic_rs::from_str(data.as_raw_str()).unwrap();
        assert_eq!(data.get("s").unwrap().as_str(), Some("BTCUSDT"));
        match stream.as_str() {
            "btcusdt@bookTicker" => {
                let b = data.get("b").unwrap().as_str().unwrap().to_string();
                let a = data.get("a").unwrap().as_str().unwrap().to_string();
                assert!(b.parse::<f64>().unwrap() < a.parse::<f64>().unwrap());
                top = Some((b, a));
            }
            "btcusdt@trade" => {
                assert_eq!(data.get("e").unwrap().as_str(), Some("trade"));
                // A trade prints at the best level of the side it hits, as last announced.
                if let Some((b, a)) = &top {
                    let p = data.get("p").unwrap().as_str().unwrap();
                    let maker_buyer = data.get("m").unwrap().as_bool().unwrap();
                    assert_eq!(p, if maker_buyer { b } else { a });
                    checked_trades += 1;
                }
            }
            "btcusdt@aggTrade" => {
                let f = data.get("f").unwrap().as_u64().unwrap();
                let l = data.get("l").unwrap().as_u64().unwrap();
                assert!(f <= l);
            }
            _ => assert_eq!(data.get("e").unwrap().as_str(), Some("depthUpdate")),
        }
        seen.insert(stream);
    }
    assert_eq!(seen.len(), names.len());
    send_text(
        &mut ws,
        r#"{"method":"UNSUBSCRIBE","params":["btcusdt@depth"],"id":"x9"}"#,
    )
    .await;
    send_text(&mut ws, r#"{"method":"LIST_SUBSCRIPTIONS","id":3}"#).await;
    let mut replies = Vec::new();
    for _ in 0..MAX_FRAMES {
        let t = next_text(&mut ws, WAIT).await.unwrap();
        if t.contains("\"id\":") && !t.contains("\"stream\"") {
            replies.push(t);
            if replies.len() == 2 {
                break;
            }
        }
    }
    assert_eq!(replies[0], r#"{"result":null,"id":"x9"}"#);
    assert_eq!(
        replies[1],
        r#"{"result":["btcusdt@trade","btcusdt@aggTrade","btcusdt@bookTicker"],"id":3}"#
    );
    assert!(sim.stats().frames_sent > 0);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_sim_exchange_info_and_errors() {
    let sim = start(test_config()).await.unwrap();
    let addr = sim.local_addr();
    let (status, headers, body) = http_get(addr, "/api/v3/exchangeInfo").await;
    assert_eq!(status, 200);
    assert!(headers.iter().any(|(k, _)| k == "x-mbx-used-weight-1m"));
    let v: sonic_rs::Value = sonic_rs::from_str(&body).unwrap();
    let symbols = v.get("symbols").unwrap();
    let btc = symbols.get(0).unwrap();
    assert_eq!(btc.get("symbol").unwrap().as_str(), Some("BTCUSDT"));
    assert_eq!(btc.get("status").unwrap().as_str(), Some("TRADING"));
    assert_eq!(btc.get("baseAsset").unwrap().as_str(), Some("BTC"));
    assert_eq!(btc.get("quoteAsset").unwrap().as_str(), Some("USDT"));
    assert!(body.contains(r#""filterType":"PRICE_FILTER","minPrice":"0.01000000""#));
    assert!(body.contains(r#""stepSize":"0.00001000""#));
    let (status, _, body) = http_get(addr, "/api/v3/exchangeInfo?symbol=ETHUSDT").await;
    assert_eq!(status, 200);
    assert!(body.contains("ETHUSDT") && !body.contains("BTCUSDT"));
    let (status, _, body) = http_get(
        addr,
        "/api/v3/exchangeInfo?symbols=%5B%22BTCUSDT%22,%22ETHUSDT%22%5D",
    )
    .await;
    assert_eq!(status, 200);
    assert!(body.contains("ETHUSDT") && body.contains("BTCUSDT"));
    for path in [
        "/api/v3/exchangeInfo?symbol=FOOBAR",
        "/api/v3/depth?symbol=FOOBAR",
    ] {
        let (status, _, body) = http_get(addr, path).await;
        assert_eq!(status, 400);
        assert_eq!(body, r#"{"code":-1121,"msg":"Invalid symbol."}"#);
    }
    let (status, _, body) = http_get(addr, "/api/v3/ping-nothing").await;
    assert_eq!(status, 404);
    assert!(body.starts_with('{'));
    let (status, _, _) = http_get(addr, "/api/v3/depth?symbol=BTCUSDT&limit=abc").await;
    assert_eq!(status, 400);
    let (status, _, body) = http_get(addr, "/api/v3/depth?symbol=BTCUSDT&limit=5").await;
    assert_eq!(status, 200);
    let snap: Snapshot = sonic_rs::from_str(&body).unwrap();
    assert_eq!((snap.bids.len(), snap.asks.len()), (5, 5));
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_sim_snapshot_plus_diffs_equals_sim_book() {
    let sim = start(test_config()).await.unwrap();
    let addr = sim.local_addr();
    let mut ws = connect(addr, "/stream?streams=btcusdt@depth@100ms").await;
    let mut book = sync(&mut ws, addr, Vec::new()).await;
    for _ in 0..300 {
        let d = next_diff(&mut ws).await;
        assert!(d.last >= d.first);
        book.apply(&d, false).expect("gap in a clean stream");
    }
    assert_matches_sim(&mut ws, addr, &mut book).await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_sim_inject_gap_then_resync() {
    let sim = start(test_config()).await.unwrap();
    let addr = sim.local_addr();
    let mut ws = connect(addr, "/stream?streams=btcusdt@depth@100ms").await;
    let mut book = sync(&mut ws, addr, Vec::new()).await;
    for _ in 0..20 {
        book.apply(&next_diff(&mut ws).await, false).unwrap();
    }
    assert!(sim.inject_gap("BTCUSDT"));
    assert!(!sim.inject_gap("NOPEUSDT"));
    let mut gap_event = None;
    for _ in 0..10_000 {
        let d = next_diff(&mut ws).await;
        if d.first > book.last + 1 {
            gap_event = Some(d);
            break;
        }
        book.apply(&d, false).unwrap();
    }
    let gap_event = gap_event.expect("the gap never showed on the wire");
    assert!(gap_event.first > book.last + 1);
    assert_eq!(sim.stats().gaps_injected, 1);
    let mut book = sync(&mut ws, addr, vec![gap_event]).await;
    assert_matches_sim(&mut ws, addr, &mut book).await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_sim_fail_snapshots_then_recover() {
    let sim = start(test_config()).await.unwrap();
    let addr = sim.local_addr();
    sim.fail_snapshots("BTCUSDT", 2);
    sim.fail_snapshots("NOPEUSDT", 2);
    for _ in 0..2 {
        let (status, _, body) = http_get(addr, "/api/v3/depth?symbol=BTCUSDT").await;
        assert_eq!(status, 500);
        assert!(body.contains("\"code\":-1000"));
    }
    let (status, _, body) = http_get(addr, "/api/v3/depth?symbol=BTCUSDT").await;
    assert_eq!(status, 200);
    let snap: Snapshot = sonic_rs::from_str(&body).unwrap();
    assert_eq!(snap.bids.len(), 50);
    let (status, _, _) = http_get(addr, "/api/v3/depth?symbol=ETHUSDT").await;
    assert_eq!(status, 200);
    let stats = sim.stats();
    assert_eq!((stats.snapshots_failed, stats.snapshots_served), (2, 2));
    sim.shutdown().await;
}

/// A simulator at 2,000 messages/s that made 70 % to 130 % of that over a timed window of
/// about one second (timed, so a late wake-up of this task does not count against it).
async fn started_at_rate_2000(paced: bool) -> SimHandle {
    let sim = start(SimConfig {
        rate: 2000.0,
        paced,
        ..test_config()
    })
    .await
    .unwrap();
    let before = sim.stats().messages_generated;
    let t0 = std::time::Instant::now();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let made = sim.stats().messages_generated - before;
    let secs = t0.elapsed().as_secs_f64();
    let rate = made as f64 / secs;
    assert!(
        (1400.0..=2600.0).contains(&rate),
        "{made} messages in {secs:.3} s at rate 2000 (paced: {paced})"
    );
    sim
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_sim_rate_paces_messages() {
    started_at_rate_2000(false).await.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_sim_paced_keeps_the_rate_the_books_and_stops_promptly() {
    let sim = started_at_rate_2000(true).await;
    // the paced thread drives the same market: snapshot + diffs still equal the sim's book
    let addr = sim.local_addr();
    let mut ws = connect(addr, "/stream?streams=btcusdt@depth@100ms").await;
    let mut book = sync(&mut ws, addr, Vec::new()).await;
    for _ in 0..100 {
        book.apply(&next_diff(&mut ws).await, false)
            .expect("gap in a clean paced stream");
    }
    assert_matches_sim(&mut ws, addr, &mut book).await;
    // the unread client costs the close handshake's 1 s wait; a paced thread that did not
    // stop would hold the shutdown for good
    let t0 = std::time::Instant::now();
    sim.shutdown().await;
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_sim_paced_survives_extreme_rates() {
    // an infinite rate generates without pause; at a vanishing one only the first step (at
    // time 0, at most 3 messages) is ever due
    for (rate, flows) in [(f64::INFINITY, true), (1e-300, false)] {
        let sim = start(SimConfig {
            rate,
            paced: true,
            ..test_config()
        })
        .await
        .unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let made = sim.stats().messages_generated;
        assert_eq!(made > 3, flows, "rate {rate}: {made} messages");
        let t0 = std::time::Instant::now();
        sim.shutdown().await;
        assert!(t0.elapsed() < Duration::from_secs(2), "rate {rate}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_sim_unbounded_rate_follows_the_client() {
    let sim = start(SimConfig {
        rate: 0.0,
        ..test_config()
    })
    .await
    .unwrap();
    let mut ws = connect(
        sim.local_addr(),
        "/stream?streams=btcusdt@depth/ethusdt@trade",
    )
    .await;
    let mut n = 0;
    for _ in 0..20_000 {
        if next_text(&mut ws, WAIT).await.is_none() {
            break;
        }
        n += 1;
    }
    assert_eq!(n, 20_000);
    assert_eq!(sim.stats().lagged_disconnects, 0);
    sim.shutdown().await;
}
