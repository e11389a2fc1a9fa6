use super::*;
use crate::model::{Side, StatusKind};

fn depth(sym: &str, first: u64, last: u64, bids: &str, asks: &str) -> String {
    format!(
        r#"{{"stream":"{}@depth@100ms","data":{{"e":"depthUpdate","E":1,"s":"{sym}","U":{first},"u":{last},"b":[{bids}],"a":[{asks}]}}}}"#,
        sym.to_ascii_lowercase()
    )
}

fn proc2() -> BinanceProcessor {
    BinanceProcessor::new(
        Venue::Binance,
        Market::Spot,
        &[
            ("AAAUSDT".into(), "AAA-USDT".into()),
            ("BBBUSDT".into(), "BBB-USDT".into()),
        ],
        Channels::ALL,
    )
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

#[test]
fn syncs_from_snapshot_then_resyncs_one_symbol_on_a_gap() {
    let mut p = proc2();
    let (mut out, mut act) = (Vec::new(), Vec::new());
    p.on_frame(
        &depth("AAAUSDT", 10, 12, r#"["1.0","5"]"#, r#"["2.0","5"]"#),
        1,
        &mut out,
        &mut act,
    );
    assert_eq!(act, vec![Action::FetchSnapshot(0)]);
    act.clear();
    p.on_snapshot(
        0,
        r#"{"lastUpdateId":11,"bids":[["1.0","1"],["0.9","2"]],"asks":[["2.0","1"]]}"#,
        2,
        &mut out,
        &mut act,
    );
    assert!(act.is_empty());
    let book = p.symbols()[0].book.clone().unwrap();
    assert_eq!(book.read().state, BookState::Live);
    assert_eq!(book.read().seq, 12);
    assert_eq!(book.read().best_bid().unwrap().size, 5.0);
    assert!(statuses(&out).contains(&(StatusKind::Live, None, Some("AAAUSDT".into()))));
    out.clear();
    // gap: U=15 while L=12
    p.on_frame(
        &depth("AAAUSDT", 15, 16, "", r#"["2.0","0"]"#),
        3,
        &mut out,
        &mut act,
    );
    assert_eq!(act, vec![Action::FetchSnapshot(0)]);
    assert_eq!(book.read().state, BookState::Resyncing);
    assert_eq!(
        statuses(&out),
        vec![(StatusKind::Resync, Some("gap"), Some("AAAUSDT".into()))]
    );
    assert_eq!(p.counters.gaps, 1);
    // the other symbol is unaffected
    p.on_frame(
        &depth("BBBUSDT", 1, 1, r#"["5","1"]"#, ""),
        4,
        &mut out,
        &mut act,
    );
    assert_eq!(act.len(), 2);
    act.clear();
    out.clear();
    // fresh snapshot at 15 → buffered diff (15..16) applies, book recovers
    p.on_snapshot(
        0,
        r#"{"lastUpdateId":15,"bids":[["1.0","3"]],"asks":[["2.0","4"],["2.1","1"]]}"#,
        5,
        &mut out,
        &mut act,
    );
    assert_eq!(book.read().state, BookState::Live);
    assert_eq!(book.read().seq, 16);
    assert_eq!(book.read().best_ask().unwrap().price, 2.1);
    assert!(statuses(&out).contains(&(StatusKind::Recovered, None, Some("AAAUSDT".into()))));
}

#[test]
fn snapshot_too_old_is_refetched() {
    let mut p = proc2();
    let (mut out, mut act) = (Vec::new(), Vec::new());
    p.on_frame(&depth("AAAUSDT", 100, 101, "", ""), 1, &mut out, &mut act);
    act.clear();
    p.on_snapshot(
        0,
        r#"{"lastUpdateId":50,"bids":[],"asks":[]}"#,
        2,
        &mut out,
        &mut act,
    );
    assert_eq!(act, vec![Action::FetchSnapshot(0)]);
    assert!(statuses(&out)
        .iter()
        .any(|s| s.1 == Some("snapshot_too_old")));
}

#[test]
fn bad_input_is_reported_and_the_stream_goes_on() {
    let mut p = proc2();
    let (mut out, mut act) = (Vec::new(), Vec::new());
    let good = r#"{"stream":"aaausdt@trade","data":{"e":"trade","E":1,"s":"AAAUSDT","t":7,"p":"1.5","q":"2","T":1000,"m":true,"M":true}}"#;
    for bad in [
        "{not json",
        &good[..40],
        r#"{"stream":"aaausdt@weird","data":{"e":"weird"}}"#,
        r#"{"stream":"zzzusdt@trade","data":{"e":"trade","E":1,"s":"ZZZUSDT","t":1,"p":"1","q":"1","T":1,"m":true}}"#,
        r#"{"stream":"aaausdt@trade","data":{"e":"trade","E":1,"s":"AAAUSDT","t":1,"p":"abc","q":"1","T":1,"m":true}}"#,
        r#"{"code":2,"msg":"Invalid request: unknown variant","id":3}"#,
    ] {
        p.on_frame(bad, 1, &mut out, &mut act);
    }
    p.on_frame(good, 2, &mut out, &mut act);
    let reasons: Vec<_> = statuses(&out).into_iter().map(|s| s.1).collect();
    assert_eq!(
        reasons,
        vec![
            Some("malformed_frame"),
            Some("malformed_frame"),
            Some("unknown_event"),
            Some("unknown_symbol"),
            Some("malformed_frame"),
            Some("subscribe_error")
        ]
    );
    let trades: Vec<_> = out
        .iter()
        .filter_map(|e| match e {
            Event::Trade(t) => Some((t.trade_id, t.price, t.side, t.ts_exchange)),
            _ => None,
        })
        .collect();
    assert_eq!(trades, vec![(7, 1.5, Side::Sell, 1_000_000_000)]);
    assert_eq!(p.counters.parse_errors, 3);
}

#[test]
fn a_diff_or_snapshot_with_a_bad_level_is_malformed_and_changes_no_book() {
    let mut p = proc2();
    let (mut out, mut act) = (Vec::new(), Vec::new());
    p.on_frame(
        &depth("AAAUSDT", 10, 12, r#"["1.0","5"]"#, ""),
        1,
        &mut out,
        &mut act,
    );
    act.clear();
    // a snapshot with a negative quantity is refused and fetched again
    let bad_snap = r#"{"lastUpdateId":11,"bids":[["1.0","1"],["0.9","-2"]],"asks":[]}"#;
    p.on_snapshot(0, bad_snap, 2, &mut out, &mut act);
    let book = p.symbols()[0].book.clone().unwrap();
    assert_ne!(book.read().state, BookState::Live);
    assert_eq!(p.counters.parse_errors, 1);
    p.on_snapshot(
        0,
        r#"{"lastUpdateId":11,"bids":[["1.0","1"],["0.9","2"]],"asks":[["2.0","1"]]}"#,
        3,
        &mut out,
        &mut act,
    );
    assert_eq!(book.read().state, BookState::Live);
    let before = (
        book.read().best_bid(),
        book.read().best_ask(),
        book.read().seq,
    );
    out.clear();
    // the second level's price is not a number: the whole diff is refused, the first level
    // included, and the status points at the bad level
    for bad in [
        r#"["1.0","7"],["x","1"]"#,
        r#"["1.0","7"],["0","1"]"#,
        r#"["1.0","7"],["0.5","1e400"]"#,
        r#"["1.0","7"],["0.5"]"#,
    ] {
        let frame = depth("AAAUSDT", 13, 13, bad, "");
        p.on_frame(&frame, 4, &mut out, &mut act);
        let Some(Event::Status(s)) = out.last() else {
            panic!("no status for {bad}");
        };
        let StatusReason::MalformedFrame { len, offset } = s.reason else {
            panic!("not malformed for {bad}: {:?}", s.reason);
        };
        assert_eq!(len, frame.len());
        let level = frame.find(bad).unwrap() + r#"["1.0","7"],"#.len();
        assert!(
            offset >= level && offset < frame.len(),
            "{bad}: offset {offset}"
        );
        assert_eq!(
            s.reason.render(),
            format!(
                "malformed frame ({len} bytes): invalid JSON, a missing field or a bad number \
                 near byte {offset}"
            )
        );
    }
    assert_eq!(
        (
            book.read().best_bid(),
            book.read().best_ask(),
            book.read().seq
        ),
        before
    );
    assert_eq!(p.counters.parse_errors, 5);
    // the refused diff's ids were never applied: the next one is a gap, not a silent skip
    p.on_frame(
        &depth("AAAUSDT", 14, 14, r#"["1.0","3"]"#, ""),
        5,
        &mut out,
        &mut act,
    );
    assert_eq!(p.counters.gaps, 1);
    assert_eq!(book.read().state, BookState::Resyncing);
}

#[test]
fn error_statuses_are_budgeted_per_second() {
    let mut p = proc2();
    let (mut out, mut act) = (Vec::new(), Vec::new());
    for _ in 0..100 {
        p.on_frame("{", 5, &mut out, &mut act);
    }
    assert_eq!(out.len(), STATUS_BUDGET_PER_S as usize);
    assert_eq!(
        p.counters.statuses_suppressed,
        100 - u64::from(STATUS_BUDGET_PER_S)
    );
    assert_eq!(p.counters.parse_errors, 100);
}

#[test]
fn envelope_shapes_off_the_fast_path_parse_the_same_and_garbage_stays_malformed() {
    let trade = |id: u64| {
        format!(
            r#"{{"e":"trade","E":1,"s":"AAAUSDT","t":{id},"p":"1.5","q":"2","T":1000,"m":true}}"#
        )
    };
    let good = [
        // the usual shape: the one-pass split
        format!(r#"{{"stream":"aaausdt@trade","data":{}}}"#, trade(1)),
        // a field after data: the payload slice has trailing text, the full parse takes it
        format!(
            r#"{{"stream":"aaausdt@trade","data":{},"x":[1,{{}}]}}"#,
            trade(2)
        ),
        // data first, and whitespace: no split at all
        format!(r#"{{"data":{},"stream":"aaausdt@trade"}}"#, trade(3)),
        format!(r#"{{ "stream" : "aaausdt@trade", "data" : {} }}"#, trade(4)),
    ];
    let bad = [
        format!(r#"{{"stream":"aaausdt@trade","data":{}}}}}"#, trade(6)),
        format!(r#"{{"stream":"aaausdt@trade","data":{} x}}"#, trade(7)),
        format!(r#"{{"stream":"aaausdt@trade","data":{}"#, trade(8)),
        r#"{"stream":"aaausdt@trade","data":{"e":"trade"}}"#.to_string(),
    ];
    let mut p = proc2();
    let (mut out, mut act) = (Vec::new(), Vec::new());
    for frame in good.iter().chain(&bad) {
        p.on_frame(frame, 1, &mut out, &mut act);
    }
    let ids: Vec<u64> = out
        .iter()
        .filter_map(|e| match e {
            Event::Trade(t) => Some(t.trade_id),
            _ => None,
        })
        .collect();
    assert_eq!(ids, vec![1, 2, 3, 4]);
    let reasons: Vec<_> = statuses(&out).into_iter().map(|s| s.1).collect();
    assert_eq!(reasons, vec![Some("malformed_frame"); 4]);
    assert_eq!(p.counters.parse_errors, 4, "each bad frame counted once");
    assert_eq!(p.counters.messages, 8);
}

#[test]
fn stream_names_split_by_byte_scans() {
    assert_eq!(stream_kind("btcusdt@depth@100ms"), "depth");
    assert_eq!(stream_kind("btcusdt@aggTrade"), "aggTrade");
    assert_eq!(stream_kind("!bookTicker"), "");
    assert_eq!(stream_kind("é@trade"), "trade");
    assert_eq!(stream_kind("x@"), "");
    let frame = r#"{"stream":"btcusdt@trade","data":{"e":"trade"}}"#;
    assert_eq!(
        split_envelope(frame),
        Some(("btcusdt@trade", r#"{"e":"trade"}"#))
    );
    // an escape in the name, an unterminated name, a non-object payload: the full parse
    for off in [
        r#"{"stream":"btc\"usdt@trade","data":{"e":"trade"}}"#,
        r#"{"stream":"btcusdt@trade"#,
        r#"{"stream":"btcusdt@trade","data":[1]}"#,
        r#"{"data":{"e":"trade"},"stream":"btcusdt@trade"}"#,
    ] {
        assert_eq!(split_envelope(off), None, "{off}");
    }
}
