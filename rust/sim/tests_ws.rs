//! End-to-end tests of the websocket protocol rules: raw mode and properties, control-message
//! errors, keepalive, the client rate limit, injection and shutdown, bad URLs and configs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use sonic_rs::JsonValueTrait;
use tokio::time::{timeout, timeout_at, Instant};
use tokio_tungstenite::tungstenite::Message;

use super::tests::{
    connect, http_get, next_text, send_text, test_config, Client, MAX_FRAMES, WAIT,
};
use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_sim_raw_ws_mode_and_properties() {
    let sim = start(test_config()).await.unwrap();
    let mut ws = connect(sim.local_addr(), "/ws/ethusdt@trade").await;
    let text = next_text(&mut ws, WAIT).await.unwrap();
    assert!(text.starts_with(r#"{"e":"trade","E":"#), "{text}");
    assert!(text.contains(r#""s":"ETHUSDT""#));
    send_text(
        &mut ws,
        r#"{"method":"GET_PROPERTY","params":["combined"],"id":2}"#,
    )
    .await;
    send_text(
        &mut ws,
        r#"{"method":"SET_PROPERTY","params":["combined",true],"id":5}"#,
    )
    .await;
    let mut replies = Vec::new();
    let mut combined_seen = false;
    for _ in 0..MAX_FRAMES {
        let t = next_text(&mut ws, WAIT).await.unwrap();
        if t.starts_with(r#"{"result""#) {
            replies.push(t);
        } else if replies.len() == 2 {
            assert!(
                t.starts_with(r#"{"stream":"ethusdt@trade","data":{"e":"trade""#),
                "{t}"
            );
            combined_seen = true;
            break;
        }
    }
    assert_eq!(
        replies,
        [r#"{"result":false,"id":2}"#, r#"{"result":null,"id":5}"#]
    );
    assert!(combined_seen);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_sim_pings_and_pong_timeout() {
    let cfg = SimConfig {
        ping_interval: Duration::from_millis(100),
        // 1 s: a live client whose reads run late on a loaded machine still answers in time
        pong_timeout: Duration::from_millis(1000),
        ..test_config()
    };
    let sim = start(cfg).await.unwrap();
    let mut live = connect(sim.local_addr(), "/ws").await;
    let mut silent = connect(sim.local_addr(), "/ws").await;
    // The live client keeps reading, so tungstenite answers each ping with a pong.
    let mut pings = 0;
    let deadline = Instant::now() + Duration::from_millis(1200);
    for _ in 0..1000 {
        match timeout_at(deadline, live.next()).await {
            Ok(Some(Ok(Message::Ping(p)))) => {
                assert!(!p.is_empty());
                pings += 1;
            }
            Ok(Some(Ok(_))) => {}
            Ok(other) => panic!("live client lost its connection: {other:?}"),
            Err(_) => break,
        }
    }
    assert!(pings >= 5, "only {pings} pings");
    send_text(&mut live, r#"{"method":"LIST_SUBSCRIPTIONS","id":1}"#).await;
    assert_eq!(
        next_text(&mut live, WAIT).await.unwrap(),
        r#"{"result":[],"id":1}"#
    );
    // The silent client never read, so it never ponged and must have been closed.
    let mut closed = false;
    for _ in 0..1000 {
        match timeout(WAIT, silent.next()).await.unwrap() {
            Some(Ok(Message::Close(frame))) => {
                if let Some(f) = frame {
                    assert_eq!(u16::from(f.code), 1008);
                }
                closed = true;
                break;
            }
            Some(Ok(_)) => {}
            Some(Err(_)) | None => {
                closed = true;
                break;
            }
        }
    }
    assert!(closed);
    let stats = sim.stats();
    assert!(stats.pong_timeouts >= 1);
    assert!(stats.pongs_received >= 3);
    sim.shutdown().await;
}

async fn expect_error(ws: &mut Client, request: &str, code: i64, id: &str) -> String {
    send_text(ws, request).await;
    let reply = next_text(ws, WAIT).await.unwrap();
    let v: sonic_rs::Value = sonic_rs::from_str(&reply).unwrap();
    assert_eq!(
        v.get("code").unwrap().as_i64(),
        Some(code),
        "{request} -> {reply}"
    );
    assert!(v.get("msg").unwrap().is_str());
    assert_eq!(
        sonic_rs::to_string(v.get("id").unwrap()).unwrap(),
        id,
        "{reply}"
    );
    reply
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_sim_control_message_errors() {
    let sim = start(test_config()).await.unwrap();
    let mut ws = connect(sim.local_addr(), "/stream").await;
    let r = expect_error(&mut ws, r#"{"method":"SUBSCRIBE","#, 3, "null").await;
    assert!(r.contains("Invalid JSON"));
    let r = expect_error(
        &mut ws,
        r#"{"method":"SUBSCRIBEX","params":[],"id":4}"#,
        2,
        "4",
    )
    .await;
    assert!(r.contains("unknown variant"));
    expect_error(
        &mut ws,
        r#"{"method":"SUBSCRIBE","params":["BTCUSDT@nope"],"id":"a1"}"#,
        2,
        "\"a1\"",
    )
    .await;
    expect_error(&mut ws, r#"{"params":[],"id":6}"#, 2, "6").await;
    expect_error(
        &mut ws,
        r#"{"method":"LIST_SUBSCRIPTIONS","id":1.5}"#,
        2,
        "null",
    )
    .await;
    expect_error(
        &mut ws,
        r#"{"method":"SET_PROPERTY","params":["fast",true],"id":7}"#,
        0,
        "7",
    )
    .await;
    expect_error(
        &mut ws,
        r#"{"method":"SET_PROPERTY","params":["combined","yes"],"id":8}"#,
        1,
        "8",
    )
    .await;
    expect_error(
        &mut ws,
        r#"{"method":"GET_PROPERTY","params":[1],"id":9}"#,
        2,
        "9",
    )
    .await;
    // A well-formed name for a symbol the sim does not list is accepted and stays silent.
    send_text(
        &mut ws,
        r#"{"method":"SUBSCRIBE","params":["xrpusdt@trade"],"id":10}"#,
    )
    .await;
    assert_eq!(
        next_text(&mut ws, WAIT).await.unwrap(),
        r#"{"result":null,"id":10}"#
    );
    assert!(next_text(&mut ws, Duration::from_millis(300))
        .await
        .is_none());
    let many: Vec<String> = (0..1025).map(|i| format!("\"s{i}usdt@trade\"")).collect();
    let req = format!(
        r#"{{"method":"SUBSCRIBE","params":[{}],"id":11}}"#,
        many.join(",")
    );
    expect_error(&mut ws, &req, 2, "11").await;
    assert!(sim.stats().control_errors >= 9);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_sim_client_rate_limit_closes() {
    let cfg = SimConfig {
        max_client_msgs_per_s: Some(5),
        ..test_config()
    };
    let sim = start(cfg).await.unwrap();
    let mut ws = connect(sim.local_addr(), "/ws").await;
    for i in 0..8 {
        let req = format!(r#"{{"method":"LIST_SUBSCRIPTIONS","id":{i}}}"#);
        if ws.send(Message::Text(req.into())).await.is_err() {
            break;
        }
    }
    let mut replies = 0;
    let mut close_code = None;
    for _ in 0..100 {
        match timeout(WAIT, ws.next()).await.unwrap() {
            Some(Ok(Message::Text(_))) => replies += 1,
            Some(Ok(Message::Close(f))) => {
                close_code = f.map(|f| u16::from(f.code));
                break;
            }
            Some(Ok(_)) => {}
            Some(Err(_)) | None => break,
        }
    }
    assert_eq!(replies, 5);
    assert_eq!(close_code, Some(1008));
    assert_eq!(sim.stats().rate_limit_closes, 1);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_sim_inject_raw_and_shutdown_notice() {
    let sim = start(test_config()).await.unwrap();
    let mut raw = connect(sim.local_addr(), "/ws").await;
    let mut comb = connect(sim.local_addr(), "/stream").await;
    // Wait until both sessions are registered with the broadcast.
    for _ in 0..200 {
        if sim.stats().ws_open == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    sim.inject_raw("{\"hello\":1}".to_string());
    assert_eq!(next_text(&mut raw, WAIT).await.unwrap(), "{\"hello\":1}");
    assert_eq!(next_text(&mut comb, WAIT).await.unwrap(), "{\"hello\":1}");
    let started = Instant::now();
    let stop = tokio::runtime::Handle::current().spawn(sim.shutdown());
    let notice = next_text(&mut comb, WAIT).await.unwrap();
    assert!(notice.starts_with(r#"{"stream":"!serverShutdown","data":{"e":"serverShutdown""#));
    let notice = next_text(&mut raw, WAIT).await.unwrap();
    assert!(notice.starts_with(r#"{"e":"serverShutdown""#));
    assert!(next_text(&mut raw, WAIT).await.is_none());
    timeout(WAIT, stop).await.unwrap().unwrap();
    assert!(started.elapsed() < WAIT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_sim_bad_config_and_urls() {
    let bad = SimConfig {
        symbols: vec!["FOOBAR".into()],
        ..test_config()
    };
    assert!(matches!(
        start(bad).await,
        Err(SimError::InvalidConfig { .. })
    ));
    let sim = start(test_config()).await.unwrap();
    let addr = sim.local_addr();
    let url = format!("ws://{addr}/ws/BTCUSDT@trade");
    assert!(tokio_tungstenite::connect_async(url).await.is_err());
    let (status, _, _) = http_get(addr, "/ws").await;
    assert_eq!(status, 400);
    let stats = sim.stats();
    assert!(stats
        .to_pairs()
        .iter()
        .any(|(k, v)| *k == "http_requests" && *v >= 2));
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_sim_inject_frame_binary_oversized_and_refused_subscription() {
    use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
    let sim = start(test_config()).await.unwrap();
    let addr = sim.local_addr();
    let big = WebSocketConfig::default()
        .max_message_size(Some(64 << 20))
        .max_frame_size(Some(64 << 20));
    let url = format!("ws://{addr}/stream");
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(url, Some(big), false)
        .await
        .unwrap();
    for _ in 0..200 {
        if sim.stats().ws_open == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // refused: the ETHUSDT stream of the request; the BTCUSDT one is still subscribed
    sim.refuse_subscriptions("ETHUSDT", 1);
    send_text(
        &mut ws,
        r#"{"method":"SUBSCRIBE","params":["btcusdt@trade","ethusdt@trade"],"id":7}"#,
    )
    .await;
    let reply = next_text(&mut ws, WAIT).await.unwrap();
    assert!(reply.starts_with(r#"{"code":2,"msg":"#), "{reply}");
    assert!(
        reply.contains("ethusdt") && reply.ends_with(r#""id":7}"#),
        "{reply}"
    );
    assert!(sim.inject_frame(vec![0xff, 0xfe, 0x80], true).is_ok());
    assert!(sim.inject_frame(vec![0xff], false).is_err());
    assert!(sim.inject_frame(vec![b' '; (64 << 20) + 1], true).is_err());
    let oversized = format!(r#"{{"pad":"{}"}}"#, "x".repeat(20 << 20));
    assert!(sim.inject_frame(oversized.into_bytes(), false).is_ok());
    let (mut binary, mut large, mut trades) = (false, false, 0);
    let deadline = Instant::now() + WAIT;
    for _ in 0..MAX_FRAMES {
        match timeout_at(deadline, ws.next()).await {
            Ok(Some(Ok(Message::Binary(b)))) => binary = b.as_ref() == [0xff, 0xfe, 0x80],
            Ok(Some(Ok(Message::Text(t)))) if t.len() > 20 << 20 => large = true,
            Ok(Some(Ok(Message::Text(t)))) => {
                assert!(
                    !t.contains("ethusdt@trade"),
                    "refused stream delivered: {t}"
                );
                trades += usize::from(t.contains("btcusdt@trade"));
            }
            Ok(Some(Ok(_))) => {}
            other => panic!("connection lost: {other:?}"),
        }
        if binary && large && trades > 3 {
            break;
        }
    }
    assert!(binary && large && trades > 3, "{binary} {large} {trades}");
    // the refusal was used once: a second request subscribes
    send_text(
        &mut ws,
        r#"{"method":"SUBSCRIBE","params":["ethusdt@trade"],"id":8}"#,
    )
    .await;
    sim.shutdown().await;
}
