//! Binance `aggTrade` and `bookTicker`: parse + normalize per message on the real captures
//! (shared/data/captures/BINANCE.*, BINANCE_FUTURES.*, BINANCE_DELIVERY.*), beside the bare
//! sonic-rs parse of the same bytes (envelope + wire struct: the limit the normalization is
//! measured against).
//!
//! `cargo bench --bench binance_trades_bbo`

// A benchmark over fixed fixtures: a missing capture should stop it loudly with a message.
#![allow(clippy::expect_used)]

mod common;

use std::hint::black_box;

use _core::exchanges::binance::messages::{BinanceAggTrade, BinanceBookTicker, BinanceEnvelope};
use _core::exchanges::binance::Market;
use _core::model::{Event, Venue};
use criterion::{criterion_group, criterion_main, Criterion};

/// The bare parse of an `aggTrade` frame: the envelope, then the payload's wire struct.
fn bare_agg_trade(frame: &str) {
    let env: BinanceEnvelope = sonic_rs::from_str(frame).expect("valid frame");
    let data = env.data.expect("data");
    let t: BinanceAggTrade = sonic_rs::from_str(data.as_raw_str()).expect("aggTrade");
    black_box(t);
}

/// The bare parse of a `bookTicker` frame.
fn bare_book_ticker(frame: &str) {
    let env: BinanceEnvelope = sonic_rs::from_str(frame).expect("valid frame");
    let data = env.data.expect("data");
    let t: BinanceBookTicker = sonic_rs::from_str(data.as_raw_str()).expect("bookTicker");
    black_box(t);
}

fn bench_kind(
    c: &mut Criterion,
    group: &str,
    fx: &common::BinanceFixture,
    needle: &str,
    bare: fn(&str),
    is_event: fn(&Event) -> bool,
) {
    let frames: Vec<String> = fx
        .frames
        .iter()
        .filter(|f| f.contains(needle))
        .cloned()
        .collect();
    let n = frames.len() as u64;
    assert!(n > 0, "{group}: no {needle} frames");
    // correctness once, outside the timing: one normalized event per frame
    let mut p = fx.primed();
    let events = common::count_events(&mut p, &frames, is_event);
    assert_eq!(events, n, "{group}: one event per frame");
    common::bare_beside_processor(c, group, &frames, &mut p, bare);
    eprintln!("{group}: {n} frames, {} bytes", common::bytes(&frames));
}

fn bench(c: &mut Criterion) {
    let spot = common::binance("BINANCE", Venue::Binance, Market::Spot);
    let usdm = common::binance("BINANCE_FUTURES", Venue::BinanceUsdm, Market::Futures);
    let coinm = common::binance("BINANCE_DELIVERY", Venue::BinanceCoinm, Market::Futures);
    let trade = |e: &Event| matches!(e, Event::Trade(_));
    let bbo = |e: &Event| matches!(e, Event::Bbo(_));
    bench_kind(
        c,
        "binance_spot_aggtrade",
        &spot,
        "@aggTrade",
        bare_agg_trade,
        trade,
    );
    bench_kind(
        c,
        "binance_spot_bookticker",
        &spot,
        "@bookTicker",
        bare_book_ticker,
        bbo,
    );
    bench_kind(
        c,
        "binance_usdm_aggtrade",
        &usdm,
        "@aggTrade",
        bare_agg_trade,
        trade,
    );
    bench_kind(
        c,
        "binance_usdm_bookticker",
        &usdm,
        "@bookTicker",
        bare_book_ticker,
        bbo,
    );
    bench_kind(
        c,
        "binance_coinm_aggtrade",
        &coinm,
        "@aggTrade",
        bare_agg_trade,
        trade,
    );
    bench_kind(
        c,
        "binance_coinm_bookticker",
        &coinm,
        "@bookTicker",
        bare_book_ticker,
        bbo,
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
