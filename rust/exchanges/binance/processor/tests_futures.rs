//! Futures behaviour of the processor: the `pu` chain, COIN-M contract sizes, mark price,
//! liquidations, open interest, the silent-stream watchdog and the rollover overlap.

use std::time::Duration;

use super::*;
use crate::exchanges::binance::open_interest_event;
use crate::model::{Side, StatusKind, StatusReason};

fn fut(venue: Venue, natives: &[(&str, f64)], channels: Channels) -> BinanceProcessor {
    let mut p = BinanceProcessor::new(venue, Market::Futures, &[], channels);
    for (n, size) in natives {
        p.add_symbol_sized(n, n, *size);
    }
    p
}

fn all() -> Channels {
    Channels {
        funding: true,
        liquidations: true,
        ..Channels::ALL
    }
}

fn diff(sym: &str, first: u64, last: u64, pu: u64, bids: &str) -> String {
    format!(
        r#"{{"stream":"{}@depth@100ms","data":{{"e":"depthUpdate","E":2000,"T":1990,"s":"{sym}","U":{first},"u":{last},"pu":{pu},"b":[{bids}],"a":[]}}}}"#,
        sym.to_ascii_lowercase()
    )
}

fn trade(sym: &str, id: u64) -> String {
    format!(
        r#"{{"stream":"{}@aggTrade","data":{{"e":"aggTrade","E":5,"a":{id},"s":"{sym}","p":"100.5","q":"3","f":1,"l":1,"T":4,"m":false}}}}"#,
        sym.to_ascii_lowercase()
    )
}

fn books(out: &[Event]) -> Vec<u64> {
    out.iter()
        .filter_map(|e| match e {
            Event::Book(b) if !b.is_snapshot => Some(b.seq),
            _ => None,
        })
        .collect()
}

fn trades(out: &[Event]) -> Vec<u64> {
    out.iter()
        .filter_map(|e| match e {
            Event::Trade(t) => Some(t.trade_id),
            _ => None,
        })
        .collect()
}

fn sync(p: &mut BinanceProcessor, sym: &str, idx: usize, last: u64) -> Vec<Event> {
    let (mut out, mut act) = (Vec::new(), Vec::new());
    p.on_frame(
        &diff(sym, last - 5, last + 10, last - 6, ""),
        1,
        &mut out,
        &mut act,
    );
    p.on_snapshot(
        idx,
        &format!(
            r#"{{"lastUpdateId":{last},"E":1,"T":1,"bids":[["10","2"]],"asks":[["11","3"]]}}"#
        ),
        2,
        &mut out,
        &mut act,
    );
    out
}

#[test]
fn coinm_sizes_are_contracts_times_contract_size() {
    let mut p = fut(Venue::BinanceCoinm, &[("BTCUSD_PERP", 100.0)], all());
    let out = sync(&mut p, "BTCUSD_PERP", 0, 1000);
    let book = p.symbols()[0].book.clone().unwrap();
    assert_eq!(book.read().state, BookState::Live);
    // snapshot 2 contracts = 200 USD; bbo, trade, liquidation scale the same way
    assert_eq!(book.read().best_bid().unwrap().size, 200.0);
    assert!(books(&out).contains(&1010));
    let (mut out, mut act) = (Vec::new(), Vec::new());
    p.on_frame(
        r#"{"stream":"btcusd_perp@bookTicker","data":{"u":1,"e":"bookTicker","s":"BTCUSD_PERP","ps":"BTCUSD","b":"10","B":"24","a":"11","A":"5","T":1626916403864,"E":1626916403871}}"#,
        3,
        &mut out,
        &mut act,
    );
    p.on_frame(&trade("BTCUSD_PERP", 9), 3, &mut out, &mut act);
    p.on_frame(
        r#"{"stream":"btcusd_perp@forceOrder","data":{"e":"forceOrder","E":7,"o":{"s":"BTCUSD_PERP","ps":"BTCUSD","S":"SELL","o":"LIMIT","f":"IOC","q":"1","p":"9425.5","ap":"9496.5","X":"FILLED","l":"1","z":"1","T":6}}}"#,
        3,
        &mut out,
        &mut act,
    );
    let mut seen = 0;
    for e in &out {
        match e {
            Event::Bbo(q) => {
                assert_eq!((q.bid_size, q.ask_size), (2400.0, 500.0));
                assert_eq!(q.ts_exchange, 1_626_916_403_864_000_000); // T, not E
                seen += 1;
            }
            Event::Trade(t) => {
                assert_eq!((t.size, t.ts_exchange), (300.0, 4_000_000));
                seen += 1;
            }
            Event::Liquidation(l) => {
                assert_eq!((l.side, l.price, l.size), (Side::Sell, 9496.5, 100.0));
                assert_eq!(l.ts_exchange, 6_000_000);
                seen += 1;
            }
            _ => {}
        }
    }
    assert_eq!(seen, 3);
    let sym = p.symbols()[0].clone();
    let oi = open_interest_event(
        &sym,
        r#"{"symbol":"BTCUSD_PERP","pair":"BTCUSD","openInterest":"517655","contractType":"PERPETUAL","time":1591261042378}"#,
        9,
    )
    .unwrap();
    let Event::OpenInterest(oi) = oi else {
        panic!("expected open interest")
    };
    assert_eq!(oi.open_interest, 51_765_500.0);
    assert!(open_interest_event(&sym, r#"{"symbol":"X","openInterest":"1","time":1}"#, 9).is_err());
}

#[test]
fn mark_price_maps_to_funding_with_delivery_contracts_empty() {
    let mut p = fut(
        Venue::BinanceCoinm,
        &[("BTCUSD_PERP", 100.0), ("BTCUSD_211231", 100.0)],
        all(),
    );
    let (mut out, mut act) = (Vec::new(), Vec::new());
    p.on_frame(
        r#"{"stream":"btcusd_perp@markPrice@1s","data":{"e":"markPriceUpdate","E":1562305380000,"s":"BTCUSD_PERP","p":"11794.15","i":"11784.62","P":"11784.25","r":"0.00038167","T":1562306400000}}"#,
        1,
        &mut out,
        &mut act,
    );
    p.on_frame(
        r#"{"stream":"btcusd_211231@markPrice@1s","data":{"e":"markPriceUpdate","E":1562305380000,"s":"BTCUSD_211231","p":"11800.5","i":"11784.62","P":"11790","r":"","T":0}}"#,
        1,
        &mut out,
        &mut act,
    );
    let f: Vec<_> = out
        .iter()
        .filter_map(|e| match e {
            Event::Funding(f) => Some(f),
            _ => None,
        })
        .collect();
    assert_eq!(f.len(), 2);
    assert_eq!(f[0].mark_price, Some(11794.15));
    assert_eq!(f[0].index_price, Some(11784.62));
    assert_eq!(f[0].funding_rate, Some(0.00038167));
    assert_eq!(f[0].next_funding_time, Some(1_562_306_400_000_000_000));
    assert_eq!(f[0].ts_exchange, 1_562_305_380_000_000_000);
    assert_eq!((f[1].funding_rate, f[1].next_funding_time), (None, None));
    assert_eq!(p.counters.funding, 2);
}

#[test]
fn futures_chain_is_checked_for_as_long_as_the_feed_runs() {
    let mut p = fut(
        Venue::BinanceUsdm,
        &[("AAAUSDT", 1.0), ("BBBUSDT", 1.0)],
        all(),
    );
    sync(&mut p, "AAAUSDT", 0, 1000);
    sync(&mut p, "BBBUSDT", 1, 500);
    let (mut out, mut act) = (Vec::new(), Vec::new());
    // non-contiguous ids chain through pu
    for (u, pu) in [(1020, 1010), (1100, 1020), (1340, 1100)] {
        p.on_frame(
            &diff("AAAUSDT", pu + 37, u, pu, r#"["10","1"]"#),
            3,
            &mut out,
            &mut act,
        );
    }
    assert_eq!(books(&out), vec![1020, 1100, 1340]);
    assert_eq!(p.counters.gaps, 0);
    // a broken pu, long after sync, resyncs that symbol only
    p.on_frame(
        &diff("AAAUSDT", 1400, 1450, 1399, ""),
        4,
        &mut out,
        &mut act,
    );
    assert_eq!(act, vec![Action::FetchSnapshot(0)]);
    assert_eq!(p.counters.gaps, 1);
    let b = p.symbols()[1].book.clone().unwrap();
    assert_eq!(b.read().state, BookState::Live);
}

#[test]
fn silent_streams_are_reported_once_and_rearmed_by_data() {
    let mut p = fut(Venue::BinanceUsdm, &[("AAAUSDT", 1.0)], all());
    let s = 1_000_000_000i64;
    p.on_subscribed(s, Duration::from_secs(2));
    let mut out = Vec::new();
    p.on_tick(2 * s, &mut out, &mut Vec::new());
    assert!(out.is_empty());
    // book and bbo after 2 s; funding only after its 4 s cadence allowance
    p.on_tick(3 * s + 1, &mut out, &mut Vec::new());
    let silent = |out: &[Event]| -> Vec<&'static str> {
        out.iter()
            .filter_map(|e| match e {
                Event::Status(st) if st.kind == StatusKind::Stale => match st.reason {
                    StatusReason::StreamSilent { channel, .. } => Some(channel),
                    _ => None,
                },
                _ => None,
            })
            .collect()
    };
    assert_eq!(silent(&out), vec!["book", "bbo"]);
    out.clear();
    p.on_tick(4 * s, &mut out, &mut Vec::new());
    assert!(out.is_empty(), "reported once");
    p.on_tick(6 * s, &mut out, &mut Vec::new());
    assert_eq!(silent(&out), vec!["funding"]);
    out.clear();
    let mut act = Vec::new();
    p.on_frame(&diff("AAAUSDT", 1, 2, 0, ""), 6 * s, &mut out, &mut act);
    out.clear();
    p.on_tick(9 * s, &mut out, &mut Vec::new());
    assert_eq!(silent(&out), vec!["book"], "data re-arms the watchdog");
    assert_eq!(p.counters.silent_streams, 4);
}

#[test]
fn a_silent_depth_stream_marks_the_live_book_stale_until_data_returns() {
    let mut p = fut(Venue::BinanceUsdm, &[("AAAUSDT", 1.0)], all());
    sync(&mut p, "AAAUSDT", 0, 1000);
    let state = |p: &BinanceProcessor| p.metas[0].book.as_ref().unwrap().read().state;
    assert_eq!(state(&p), BookState::Live);
    let s = 1_000_000_000i64;
    p.on_subscribed(s, Duration::from_secs(2));
    let (mut out, mut act) = (Vec::new(), Vec::new());
    p.on_tick(4 * s, &mut out, &mut Vec::new());
    assert_eq!(
        state(&p),
        BookState::Stale,
        "a silent depth stream is not a live book"
    );
    let stale = out.iter().find_map(|e| match e {
        Event::Status(st) if st.kind == StatusKind::Stale => Some(st.state),
        _ => None,
    });
    assert_eq!(stale, Some(Some(BookState::Stale)));
    out.clear();
    // the next diff chains: live again, announced
    p.on_frame(
        &diff("AAAUSDT", 1011, 1020, 1010, r#"["10","1"]"#),
        5 * s,
        &mut out,
        &mut act,
    );
    assert_eq!(state(&p), BookState::Live);
    assert!(out
        .iter()
        .any(|e| matches!(e, Event::Status(st) if st.kind == StatusKind::Recovered)));
}

#[test]
fn overlap_drops_duplicates_parks_the_faster_socket_and_loses_nothing() {
    let mut p = fut(Venue::BinanceUsdm, &[("AAAUSDT", 1.0)], all());
    sync(&mut p, "AAAUSDT", 0, 1000);
    let (mut out, mut act) = (Vec::new(), Vec::new());
    let chain: Vec<(u64, u64)> = (0..6)
        .map(|i| (1010 + i * 10 + 10, 1010 + i * 10))
        .collect();
    let d = |i: usize| {
        let (u, pu) = chain[i];
        diff("AAAUSDT", pu + 3, u, pu, r#"["10","1"]"#)
    };
    p.on_frame(&d(0), 3, &mut out, &mut act);
    p.on_frame(&trade("AAAUSDT", 50), 3, &mut out, &mut act);
    p.begin_overlap(3);
    assert!(!p.overlap_ready());
    // the new socket is ahead: d(2) is parked until the old one delivers d(1)
    p.on_overlap_frame(&d(2), 4, &mut out, &mut act);
    p.on_overlap_frame(&trade("AAAUSDT", 52), 4, &mut out, &mut act);
    p.on_frame(&d(1), 4, &mut out, &mut act);
    p.on_frame(&trade("AAAUSDT", 51), 4, &mut out, &mut act);
    p.on_frame(&d(2), 5, &mut out, &mut act);
    p.on_frame(&trade("AAAUSDT", 52), 5, &mut out, &mut act);
    p.on_overlap_frame(&d(3), 5, &mut out, &mut act);
    p.on_frame(&d(3), 5, &mut out, &mut act);
    assert!(p.overlap_ready());
    p.end_overlap(6, &mut out, &mut act);
    p.on_frame(&d(4), 6, &mut out, &mut act);
    p.on_frame(&trade("AAAUSDT", 53), 6, &mut out, &mut act);
    assert_eq!(books(&out), vec![1020, 1030, 1040, 1050, 1060]);
    // trade 51 came after 52 from the other socket: a rollover may reorder ids across
    // sockets, never duplicate or lose one
    let mut t = trades(&out);
    t.sort_unstable();
    assert_eq!(t, vec![50, 51, 52, 53]);
    assert!(act.is_empty());
    assert_eq!(p.counters.gaps, 0);
    assert_eq!(p.counters.overlap_parked, 1);
    assert!(p.counters.overlap_duplicates >= 3);
}

#[test]
fn overlap_leftovers_that_never_chain_become_a_gap() {
    let mut p = fut(Venue::BinanceUsdm, &[("AAAUSDT", 1.0)], all());
    sync(&mut p, "AAAUSDT", 0, 1000);
    let (mut out, mut act) = (Vec::new(), Vec::new());
    p.begin_overlap(3);
    p.on_overlap_frame(
        &diff("AAAUSDT", 1100, 1200, 1090, ""),
        4,
        &mut out,
        &mut act,
    );
    assert_eq!(p.counters.gaps, 0);
    p.end_overlap(5, &mut out, &mut act);
    assert_eq!(p.counters.gaps, 1);
    assert_eq!(act, vec![Action::FetchSnapshot(0)]);
}

#[test]
fn duplicates_from_a_slower_new_socket_are_dropped_for_a_tail_after_the_switch() {
    let mut p = fut(Venue::BinanceUsdm, &[("AAAUSDT", 1.0)], all());
    let s = 1_000_000_000i64;
    let (mut out, mut act) = (Vec::new(), Vec::new());
    p.on_frame(&trade("AAAUSDT", 10), s, &mut out, &mut act);
    p.begin_overlap(s);
    p.on_frame(&trade("AAAUSDT", 11), s, &mut out, &mut act);
    p.on_frame(&trade("AAAUSDT", 12), s, &mut out, &mut act);
    p.on_overlap_frame(&trade("AAAUSDT", 11), s, &mut out, &mut act);
    p.end_overlap(2 * s, &mut out, &mut act);
    // the new socket was behind: its copy of 12 arrives after the old one closed
    p.on_frame(&trade("AAAUSDT", 12), 2 * s + 1, &mut out, &mut act);
    p.on_frame(&trade("AAAUSDT", 13), 2 * s + 2, &mut out, &mut act);
    assert_eq!(trades(&out), vec![10, 11, 12, 13]);
    // after the tail the filters are off (and forget the ids)
    p.on_tick(5 * s, &mut out, &mut Vec::new());
    assert!(!p.dedupe_on(5 * s));
    p.on_frame(&trade("AAAUSDT", 14), 5 * s, &mut out, &mut act);
    assert_eq!(trades(&out), vec![10, 11, 12, 13, 14]);
}
