#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use super::*;
use crate::exchanges::okx::connector::BookChannel;
use crate::model::{Instrument, InstrumentKind, Side};

fn captures() -> Option<PathBuf> {
    let dir = std::env::var_os("XTRADER_CAPTURES").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data/captures"),
        PathBuf::from,
    );
    if dir.join("OKX.ws.1.0").is_file() {
        return Some(dir);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "captures missing at {dir:?} in CI"
    );
    None
}

fn swap(native: &str, ct_val: f64, inverse: bool) -> Arc<Instrument> {
    let mut i = Instrument::spot(native, "BTC", if inverse { "USD" } else { "USDT" });
    i.kind = InstrumentKind::Perpetual;
    i.symbol = format!("{}-{}-PERP", i.base, i.quote);
    i.contract_size = ct_val;
    i.inverse = inverse;
    Arc::new(i)
}

fn proc_with(names: &[&str], channels: Channels) -> OkxProcessor {
    let metas: Vec<_> = names
        .iter()
        .map(|n| SymbolMeta::new(Venue::Okx, n, n, None))
        .collect();
    OkxProcessor::from_metas(&metas, channels, BookChannel::Books)
}

fn statuses(out: &[Event]) -> Vec<(StatusKind, Option<&'static str>, Option<String>)> {
    out.iter()
        .filter_map(|e| match e {
            Event::Status(s) => Some((
                s.kind,
                s.reason.code(),
                s.sym.as_ref().map(|m| m.native.to_string()),
            )),
            _ => None,
        })
        .collect()
}

fn book_frame(
    inst: &str,
    action: &str,
    prev: i64,
    seq: i64,
    bids: &str,
    asks: &str,
    cks: i64,
) -> String {
    format!(
        r#"{{"arg":{{"channel":"books","instId":"{inst}"}},"action":"{action}","data":[{{"asks":[{asks}],"bids":[{bids}],"ts":"1700000000000","checksum":{cks},"prevSeqId":{prev},"seqId":{seq}}}]}}"#
    )
}

#[test]
fn every_checksum_of_the_capture_validates() {
    let Some(dir) = captures() else { return };
    let text = std::fs::read_to_string(dir.join("OKX.ws.1.0")).unwrap();
    let mut p = proc_with(
        &["BTC-USD-220527", "UNI-USD-SWAP", "BTC-USDT"],
        Channels {
            ticker: true,
            ..Channels::ALL
        },
    );
    let (mut out, mut act) = (Vec::new(), Vec::new());
    for line in text.lines().skip(1).filter(|l| !l.contains(" <- ")) {
        let (_, frame) = line.split_once(": ").unwrap();
        p.on_frame(frame, 1, &mut out, &mut act);
    }
    let c = &p.counters;
    assert_eq!((c.checksum_ok, c.checksum_failed), (290, 0));
    assert_eq!(
        (c.snapshots, c.gaps, c.resyncs, c.parse_errors),
        (3, 0, 0, 0)
    );
    assert_eq!((c.trades, c.tickers, c.acks), (74, 28, 18));
    assert!(act.is_empty());
    for m in p.symbols() {
        let b = m.book.as_ref().unwrap().read();
        assert_eq!(b.state, BookState::Live, "{}", m.native);
        assert!(!b.is_crossed());
    }
}

#[test]
fn chain_heartbeat_reset_then_gap_resyncs_only_that_symbol() {
    let mut p = proc_with(&["AAA-USDT", "BBB-USDT"], Channels::ALL);
    let (mut out, mut act) = (Vec::new(), Vec::new());
    for inst in ["AAA-USDT", "BBB-USDT"] {
        p.on_frame(
            &book_frame(
                inst,
                "snapshot",
                -1,
                10,
                r#"["1.0","5","0","1"]"#,
                r#"["2.0","5","0","1"]"#,
                0,
            ),
            1,
            &mut out,
            &mut act,
        );
    }
    // 10 -> 15, heartbeat 15 -> 15, reset 15 -> 3, 3 -> 5
    for (prev, seq, bids) in [
        (10, 15, r#"["1.5","1","0","1"]"#),
        (15, 15, ""),
        (15, 3, ""),
        (3, 5, r#"["1.5","0","0","0"]"#),
    ] {
        p.on_frame(
            &book_frame("AAA-USDT", "update", prev, seq, bids, "", 0),
            2,
            &mut out,
            &mut act,
        );
    }
    assert_eq!((p.counters.gaps, p.counters.heartbeats), (0, 2));
    assert_eq!(p.counters.checksum_absent, 6);
    let a = p.symbols()[0].book.clone().unwrap();
    assert_eq!(a.read().best_bid().unwrap().price, 1.0);
    assert_eq!(a.read().seq, 5);
    out.clear();
    // a lost message: prevSeqId 9 while the book is at 5
    p.on_frame(
        &book_frame("AAA-USDT", "update", 9, 12, "", "", 0),
        3,
        &mut out,
        &mut act,
    );
    assert_eq!(
        statuses(&out),
        vec![(StatusKind::Resync, Some("gap"), Some("AAA-USDT".into()))]
    );
    assert_eq!(a.read().state, BookState::Resyncing);
    assert_eq!(act.len(), 2);
    assert_eq!(
        act[0],
        Action::Send(
            r#"{"id":"1001","op":"unsubscribe","args":[{"channel":"books","instId":"AAA-USDT"}]}"#
                .into()
        )
    );
    assert!(matches!(&act[1], Action::Send(f) if f.contains(r#""op":"subscribe""#)));
    act.clear();
    out.clear();
    // the other symbol goes on
    p.on_frame(
        &book_frame(
            "BBB-USDT",
            "update",
            10,
            11,
            r#"["1.1","2","0","1"]"#,
            "",
            0,
        ),
        4,
        &mut out,
        &mut act,
    );
    assert_eq!(
        p.symbols()[1].book.as_ref().unwrap().read().state,
        BookState::Live
    );
    assert!(matches!(out.last(), Some(Event::Book(d)) if d.seq == 11));
    // updates of the old subscription before the ack are dropped, then a fresh snapshot
    p.on_frame(
        &book_frame("AAA-USDT", "update", 12, 13, "", "", 0),
        5,
        &mut out,
        &mut act,
    );
    assert_eq!(p.counters.updates_dropped, 1);
    p.on_frame(
        r#"{"event":"subscribe","arg":{"channel":"books","instId":"AAA-USDT"}}"#,
        6,
        &mut out,
        &mut act,
    );
    out.clear();
    p.on_frame(
        &book_frame(
            "AAA-USDT",
            "snapshot",
            -1,
            20,
            r#"["1.2","3","0","1"]"#,
            r#"["2.0","5","0","1"]"#,
            0,
        ),
        7,
        &mut out,
        &mut act,
    );
    assert_eq!(
        statuses(&out),
        vec![(StatusKind::Recovered, None, Some("AAA-USDT".into()))]
    );
    assert_eq!(a.read().state, BookState::Live);
    assert_eq!(a.read().best_bid().unwrap().price, 1.2);
    assert!(act.is_empty());
}

#[test]
fn checksum_mismatch_resyncs_and_a_true_checksum_passes() {
    let mut p = proc_with(&["AAA-USDT"], Channels::ALL);
    let (mut out, mut act) = (Vec::new(), Vec::new());
    // "3366.1:7:3366.8:9:3366:6:3368:8" has checksum -1881014294 (exchanges.md test vector)
    let bids = r#"["3366.1","7","0","1"],["3366","6","0","1"]"#;
    let asks = r#"["3366.8","9","0","1"],["3368","8","0","1"]"#;
    p.on_frame(
        &book_frame("AAA-USDT", "snapshot", -1, 1, bids, asks, -1_881_014_294),
        1,
        &mut out,
        &mut act,
    );
    assert_eq!(p.counters.checksum_ok, 1);
    out.clear();
    p.on_frame(
        &book_frame(
            "AAA-USDT",
            "update",
            1,
            2,
            r#"["3366","0","0","0"]"#,
            "",
            12345,
        ),
        2,
        &mut out,
        &mut act,
    );
    assert_eq!(p.counters.checksum_failed, 1);
    assert_eq!(
        statuses(&out),
        vec![(
            StatusKind::Resync,
            Some("checksum"),
            Some("AAA-USDT".into())
        )]
    );
    assert!(
        !out.iter().any(|e| matches!(e, Event::Book(_))),
        "a failed update is not published"
    );
    match &out[0] {
        Event::Status(s) => assert!(matches!(
            s.reason,
            StatusReason::Checksum {
                expected: 12345,
                ..
            }
        )),
        _ => unreachable!(),
    }
    assert_eq!(act.len(), 2);
}

#[test]
fn rest_bootstrap_when_no_snapshot_is_pushed() {
    let mut p = proc_with(&["AAA-USDT"], Channels::ALL);
    let (mut out, mut act) = (Vec::new(), Vec::new());
    // updates first: buffer them and fetch the REST snapshot once
    p.on_frame(
        &book_frame(
            "AAA-USDT",
            "update",
            100,
            107,
            r#"["1.0","1","0","1"]"#,
            "",
            0,
        ),
        1,
        &mut out,
        &mut act,
    );
    p.on_frame(
        &book_frame(
            "AAA-USDT",
            "update",
            107,
            110,
            r#"["1.1","2","0","1"]"#,
            "",
            0,
        ),
        2,
        &mut out,
        &mut act,
    );
    assert_eq!(act, vec![Action::FetchSnapshot(0)]);
    act.clear();
    // too old (seqId 99 < first prevSeqId 100): fetched again
    let rest = |seq: i64| {
        format!(
            r#"{{"code":"0","msg":"","data":[{{"asks":[["2.0","5","0","1"]],"bids":[["0.9","5","0","1"]],"ts":"1700000000000","seqId":{seq}}}]}}"#
        )
    };
    p.on_snapshot(0, &rest(99), 3, &mut out, &mut act);
    assert_eq!(act, vec![Action::FetchSnapshot(0)]);
    assert_eq!(p.counters.snapshots_too_old, 1);
    act.clear();
    out.clear();
    // 105: drop nothing (107 > 105), first update satisfies prev 100 <= 105 < 107, then chain
    p.on_snapshot(0, &rest(105), 4, &mut out, &mut act);
    let b = p.symbols()[0].book.clone().unwrap();
    assert_eq!(b.read().state, BookState::Live);
    assert_eq!(b.read().seq, 110);
    assert_eq!(b.read().best_bid().unwrap().price, 1.1);
    let books: Vec<(bool, u64)> = out
        .iter()
        .filter_map(|e| match e {
            Event::Book(d) => Some((d.is_snapshot, d.seq)),
            _ => None,
        })
        .collect();
    assert_eq!(books, vec![(true, 105), (false, 107), (false, 110)]);
    assert_eq!(p.counters.rest_snapshots, 1);
    // a snapshot newer than everything buffered: updates still in flight that it contains
    // are dropped, the first one after it applies, then the chain holds
    let mut p = proc_with(&["AAA-USDT"], Channels::ALL);
    let f =
        |p: &mut OkxProcessor, prev: i64, seq: i64, out: &mut Vec<Event>, act: &mut Vec<Action>| {
            p.on_frame(
                &book_frame(
                    "AAA-USDT",
                    "update",
                    prev,
                    seq,
                    r#"["1.3","1","0","1"]"#,
                    "",
                    0,
                ),
                1,
                out,
                act,
            );
        };
    f(&mut p, 100, 107, &mut out, &mut act);
    p.on_snapshot(0, &rest(120), 2, &mut out, &mut act);
    for (prev, seq) in [(107, 115), (115, 125), (125, 130)] {
        f(&mut p, prev, seq, &mut out, &mut act);
    }
    assert_eq!((p.counters.gaps, p.counters.updates_dropped), (0, 2));
    assert_eq!(p.symbols()[0].book.as_ref().unwrap().read().seq, 130);
    act.clear();
    // without a seqId the REST book cannot be placed: resubscribe instead
    let mut p = proc_with(&["AAA-USDT"], Channels::ALL);
    p.on_frame(
        &book_frame("AAA-USDT", "update", 1, 2, "", "", 0),
        1,
        &mut out,
        &mut act,
    );
    act.clear();
    p.on_snapshot(
        0,
        r#"{"code":"0","msg":"","data":[{"asks":[],"bids":[],"ts":"1"}]}"#,
        2,
        &mut out,
        &mut act,
    );
    assert_eq!(act.len(), 2);
    assert_eq!(p.counters.snapshot_failures, 1);
}

#[test]
fn contract_sizes_are_normalized() {
    let linear = SymbolMeta::with_instrument(Venue::Okx, swap("BTC-USDT-SWAP", 0.01, false), None);
    let inverse = SymbolMeta::with_instrument(Venue::Okx, swap("BTC-USD-SWAP", 100.0, true), None);
    let ch = Channels {
        ticker: true,
        open_interest: true,
        ..Channels::ALL
    };
    let mut p = OkxProcessor::from_metas(&[linear, inverse], ch, BookChannel::Books);
    let (mut out, mut act) = (Vec::new(), Vec::new());
    p.on_frame(r#"{"arg":{"channel":"trades","instId":"BTC-USDT-SWAP"},"data":[{"instId":"BTC-USDT-SWAP","tradeId":"9","px":"30000","sz":"3","side":"sell","ts":"1652459199958"}]}"#, 1, &mut out, &mut act);
    p.on_frame(r#"{"arg":{"channel":"trades","instId":"BTC-USD-SWAP"},"data":[{"instId":"BTC-USD-SWAP","tradeId":"10","px":"30000","sz":"3","side":"buy","ts":"1652459199958"}]}"#, 1, &mut out, &mut act);
    p.on_frame(
        &book_frame(
            "BTC-USD-SWAP",
            "snapshot",
            -1,
            1,
            r#"["29999","7","0","1"]"#,
            r#"["30001","2","0","1"]"#,
            0,
        ),
        1,
        &mut out,
        &mut act,
    );
    p.on_frame(r#"{"arg":{"channel":"open-interest","instId":"BTC-USDT-SWAP"},"data":[{"instType":"SWAP","instId":"BTC-USDT-SWAP","oi":"2000","oiCcy":"20","oiUsd":"600000","ts":"1630049139746"}]}"#, 1, &mut out, &mut act);
    let sizes: Vec<f64> = out
        .iter()
        .filter_map(|e| match e {
            Event::Trade(t) => Some(t.size),
            Event::Book(d) => Some(d.bids[0].1),
            Event::OpenInterest(o) => Some(o.open_interest),
            _ => None,
        })
        .collect();
    assert_eq!(sizes, vec![0.03, 300.0, 700.0, 20.0]);
    assert_eq!(
        p.symbols()[1]
            .book
            .as_ref()
            .unwrap()
            .read()
            .best_ask()
            .unwrap()
            .size,
        200.0
    );
    assert!(
        matches!(&out[0], Event::Trade(t) if t.side == Side::Sell && t.trade_id == 9 && t.ts_exchange == 1_652_459_199_958_000_000)
    );
}

#[test]
fn books5_and_bbo_tbt() {
    let metas = vec![SymbolMeta::new(Venue::Okx, "AAA-USDT", "AAA-USDT", None)];
    let mut p = OkxProcessor::from_metas(&metas, Channels::ALL, BookChannel::Books5);
    let (mut out, mut act) = (Vec::new(), Vec::new());
    for px in ["1.0", "1.1"] {
        let f = format!(
            r#"{{"arg":{{"channel":"books5","instId":"AAA-USDT"}},"data":[{{"asks":[["2.0","1","0","1"]],"bids":[["{px}","1","0","1"]],"instId":"AAA-USDT","ts":"1","seqId":5}}]}}"#
        );
        p.on_frame(&f, 1, &mut out, &mut act);
    }
    let b = p.symbols()[0].book.clone().unwrap();
    assert_eq!(b.read().depth(), (1, 1));
    assert_eq!(b.read().best_bid().unwrap().price, 1.1);
    p.on_frame(r#"{"arg":{"channel":"bbo-tbt","instId":"AAA-USDT"},"data":[{"asks":[["111.06","55154","0","2"]],"bids":[["111.05","57745","0","2"]],"ts":"1670324386802","seqId":363996337}]}"#, 1, &mut out, &mut act);
    assert!(
        matches!(out.last(), Some(Event::Bbo(q)) if q.bid_price == 111.05 && q.ask_size == 55154.0)
    );
    assert_eq!(
        statuses(&out),
        vec![(StatusKind::Live, None, Some("AAA-USDT".into()))]
    );
}

#[test]
fn bad_input_is_reported_and_the_stream_goes_on() {
    let mut p = proc_with(&["AAA-USDT"], Channels::ALL);
    let (mut out, mut act) = (Vec::new(), Vec::new());
    for bad in [
        "{not json",
        r#"{"arg":{"channel":"candle1m","instId":"AAA-USDT"},"data":[["1","2"]]}"#,
        r#"{"arg":{"channel":"trades","instId":"AAA-USDT"},"data":{"oops":1}}"#,
        r#"{"event":"error","code":"60018","msg":"Wrong URL or channel:books,instId:ZZZ-USDT doesn't exist. Please use the correct URL, channel and parameters referring to API document.","connId":"a4d3ae55"}"#,
        r#"{"arg":{"channel":"trades","instId":"AAA-USDT"},"data":[{"instId":"AAA-USDT","tradeId":"1","px":"abc","sz":"1","side":"buy","ts":"1"}]}"#,
    ] {
        p.on_frame(bad, 1, &mut out, &mut act);
    }
    // an unknown instrument is looked up once, however many frames name it
    let unknown = r#"{"arg":{"channel":"trades","instId":"NEW-USDT"},"data":[{"instId":"NEW-USDT","tradeId":"1","px":"1","sz":"1","side":"buy","ts":"1"}]}"#;
    for _ in 0..5 {
        p.on_frame(unknown, 1, &mut out, &mut act);
    }
    assert_eq!(act, vec![Action::FetchInstrument("NEW-USDT".into())]);
    p.on_frame("pong", 1, &mut out, &mut act);
    p.on_frame(r#"{"arg":{"channel":"trades","instId":"AAA-USDT"},"data":[{"instId":"AAA-USDT","tradeId":"7","px":"1.5","sz":"2","side":"buy","ts":"1000"}]}"#, 2, &mut out, &mut act);
    let reasons: Vec<_> = statuses(&out).into_iter().map(|s| s.1).collect();
    assert_eq!(
        reasons,
        vec![
            Some("malformed_frame"),
            Some("unknown_event"),
            Some("malformed_frame"),
            Some("subscribe_error"),
            Some("malformed_frame"),
            Some("unknown_symbol"),
        ]
    );
    let msg = match &out[3] {
        Event::Status(s) => s.reason.render(),
        _ => unreachable!(),
    };
    assert!(
        msg.contains("code 60018 (channel books, ZZZ-USDT)"),
        "{msg}"
    );
    assert_eq!(
        (
            p.counters.unknown_symbols,
            p.counters.instrument_fetches,
            p.counters.pongs
        ),
        (5, 1, 1)
    );
    assert!(matches!(out.last(), Some(Event::Trade(t)) if t.trade_id == 7));
    // the answer lists it: the next frame is normalized
    let body = r#"{"code":"0","msg":"","data":[{"instType":"SPOT","instId":"NEW-USDT","baseCcy":"NEW","quoteCcy":"USDT","tickSz":"0.1","lotSz":"1"}]}"#;
    p.on_instrument("NEW-USDT", 200, body, 3, &mut out);
    p.on_frame(unknown, 4, &mut out, &mut act);
    assert!(matches!(out.last(), Some(Event::Trade(t)) if &*t.sym.symbol == "NEW-USDT"));
    // not listed: never asked again
    act.clear();
    p.on_instrument(
        "GONE-USDT",
        200,
        r#"{"code":"0","msg":"","data":[]}"#,
        5,
        &mut out,
    );
    p.on_frame(
        &unknown.replace("NEW-USDT", "GONE-USDT"),
        6,
        &mut out,
        &mut act,
    );
    assert!(act.is_empty());
}

#[test]
fn notice_and_request_budget_ask_for_a_reconnect() {
    let mut p = proc_with(&["AAA-USDT"], Channels::ALL);
    let (mut out, mut act) = (Vec::new(), Vec::new());
    p.on_frame(r#"{"event":"notice","code":"64008","msg":"The connection will soon be closed for a service upgrade. Please reconnect.","connId":"a4d3ae55"}"#, 1, &mut out, &mut act);
    assert_eq!(act, vec![Action::Reconnect]);
    assert_eq!(statuses(&out)[0].1, Some("server_shutdown"));
    act.clear();
    // 200 resyncs fit in the hour (2 requests each), the next one asks for a new connection
    for i in 0..201 {
        p.on_frame(
            &book_frame("AAA-USDT", "snapshot", -1, 1, "", "", 0),
            i,
            &mut out,
            &mut act,
        );
        p.on_frame(
            &book_frame("AAA-USDT", "update", 7, 8, "", "", 0),
            i,
            &mut out,
            &mut act,
        );
    }
    assert_eq!(
        act.iter().filter(|a| matches!(a, Action::Send(_))).count(),
        400
    );
    assert_eq!(act.last(), Some(&Action::Reconnect));
    assert_eq!(p.counters.budget_reconnects, 1);
    out.clear();
    p.on_disconnect(1, &mut out);
    assert_eq!(
        statuses(&out),
        vec![(StatusKind::Stale, Some("closed"), Some("AAA-USDT".into()))]
    );
}

#[test]
fn a_book_silent_past_the_heartbeat_resyncs_only_that_symbol() {
    let mut p = proc_with(&["AAA-USDT", "BBB-USDT"], Channels::ALL);
    let (mut out, mut act) = (Vec::new(), Vec::new());
    for inst in ["AAA-USDT", "BBB-USDT"] {
        let snap = book_frame(
            inst,
            "snapshot",
            -1,
            10,
            r#"["10","1","0","1"]"#,
            r#"["11","1","0","1"]"#,
            0,
        );
        p.on_frame(&snap, 1, &mut out, &mut act);
    }
    let s = 1_000_000_000i64;
    ExchangeProcessor::on_subscribed(&mut p, s, std::time::Duration::from_secs(30));
    // BBB keeps talking (a heartbeat at 60 s), AAA says nothing
    let beat = book_frame("BBB-USDT", "update", 10, 10, "", "", 0);
    p.on_frame(&beat, 60 * s, &mut out, &mut act);
    out.clear();
    p.on_tick(70 * s, &mut out, &mut act);
    assert!(out.is_empty() && act.is_empty(), "within heartbeat + grace");
    p.on_tick(77 * s, &mut out, &mut act);
    assert_eq!(
        statuses(&out),
        vec![(
            StatusKind::Resync,
            Some("stream_silent"),
            Some("AAA-USDT".to_string())
        )]
    );
    assert!(!act.is_empty(), "AAA is resubscribed");
    assert_eq!(p.counters.silent_streams, 1);
    out.clear();
    act.clear();
    p.on_tick(78 * s, &mut out, &mut act);
    assert!(out.is_empty(), "one resync per silent period");
}

#[test]
fn test_okx_num_rejects_out_of_range() {
    assert_eq!(num("27123.5"), Some(27123.5));
    assert_eq!(num("-0.0001"), Some(-0.0001));
    for bad in ["1e400", "-1e400", "inf", "nan", ""] {
        assert_eq!(num(bad), None, "{bad}");
    }
}
