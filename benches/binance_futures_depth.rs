//! Binance futures depth (USD-M and COIN-M): parse + normalize (COIN-M contracts to USD) +
//! `pu` chain check + book update per message on the real captures
//! (shared/data/captures/BINANCE_FUTURES.*, BINANCE_DELIVERY.*), beside the bare JSON parse of
//! the same bytes.
//!
//! `cargo bench --bench binance_futures_depth`

// A benchmark over fixed fixtures: a missing capture should stop it loudly with a message.
#![allow(clippy::expect_used)]

mod common;

use std::hint::black_box;

use _core::exchanges::binance::Market;
use _core::exchanges::ExchangeProcessor;
use _core::model::Venue;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

fn bench_venue(c: &mut Criterion, group: &str, fx: &common::BinanceFixture) {
    let n = fx.depth.len() as u64;
    let bytes = common::bytes(&fx.depth);
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Elements(n));

    g.bench_function("bare_parse", |b| {
        b.iter(|| {
            for f in &fx.depth {
                common::bare_depth(black_box(f));
            }
        });
    });

    g.bench_function("parse_normalize_book_update", |b| {
        b.iter_batched(
            || (fx.primed(), Vec::with_capacity(16), Vec::new()),
            |(mut p, mut out, mut act)| {
                for f in &fx.depth {
                    p.on_frame(black_box(f), 1, &mut out, &mut act);
                    out.clear();
                }
                assert_eq!(p.counters.gaps, 0);
                p
            },
            BatchSize::LargeInput,
        );
    });
    g.finish();
    eprintln!("{group}: {n} depth frames, {bytes} bytes");
}

fn bench(c: &mut Criterion) {
    bench_venue(
        c,
        "binance_usdm_depth",
        &common::binance("BINANCE_FUTURES", Venue::BinanceUsdm, Market::Futures),
    );
    bench_venue(
        c,
        "binance_coinm_depth",
        &common::binance("BINANCE_DELIVERY", Venue::BinanceCoinm, Market::Futures),
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
