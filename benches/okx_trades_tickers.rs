//! OKX `trades` and `tickers`: parse + normalize per message on the real capture
//! (shared/data/captures/OKX.*), beside the bare sonic-rs parse of the same bytes (envelope +
//! data elements as wire structs: the limit the normalization is measured against).
//!
//! `cargo bench --bench okx_trades_tickers`

// A benchmark over fixed fixtures: a missing capture should stop it loudly with a message.
#![allow(clippy::expect_used)]

mod common;

use std::hint::black_box;

use _core::exchanges::okx::messages::{OkxEnvelope, OkxTicker, OkxTrade};
use _core::model::Event;
use criterion::{criterion_group, criterion_main, Criterion};

/// The bare parse of a `trades` frame: the envelope, then its data elements.
fn bare_trades(frame: &str) {
    let env: OkxEnvelope = sonic_rs::from_str(frame).expect("valid frame");
    let data = env.data.expect("data");
    let list: Vec<OkxTrade> = sonic_rs::from_str(data.as_raw_str()).expect("trades");
    black_box((env.arg, list));
}

/// The bare parse of a `tickers` frame.
fn bare_tickers(frame: &str) {
    let env: OkxEnvelope = sonic_rs::from_str(frame).expect("valid frame");
    let data = env.data.expect("data");
    let list: Vec<OkxTicker> = sonic_rs::from_str(data.as_raw_str()).expect("tickers");
    black_box((env.arg, list));
}

fn bench_channel(
    c: &mut Criterion,
    fx: &common::OkxFixture,
    channel: &str,
    bare: fn(&str),
    is_event: fn(&Event) -> bool,
) {
    let frames = fx.channel(channel);
    let n = frames.len() as u64;
    assert!(n > 0, "no {channel} frames");
    // correctness once, outside the timing: at least one normalized event per frame
    let mut p = fx.primed();
    let events = common::count_events(&mut p, &frames, is_event);
    assert!(events >= n, "{channel}: {events} events for {n} frames");
    let group = format!("okx_{channel}");
    common::bare_beside_processor(c, &group, &frames, &mut p, bare);
    eprintln!(
        "{group}: {n} frames, {events} events, {} bytes",
        common::bytes(&frames)
    );
}

fn bench(c: &mut Criterion) {
    let fx = common::okx();
    bench_channel(c, &fx, "trades", bare_trades, |e| {
        matches!(e, Event::Trade(_))
    });
    bench_channel(c, &fx, "tickers", bare_tickers, |e| {
        matches!(e, Event::Ticker(_))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
