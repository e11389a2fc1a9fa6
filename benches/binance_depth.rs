//! Binance spot depth: parse + normalize + book update per message on the real capture
//! (shared/data/captures/BINANCE.*), beside the bare JSON parse of the same bytes.
//!
//! `cargo bench --bench binance_depth`

// A benchmark over fixed fixtures: a missing capture should stop it loudly with a message.
#![allow(clippy::expect_used)]

mod common;

use std::hint::black_box;

use _core::exchanges::binance::Market;
use _core::exchanges::ExchangeProcessor;
use _core::model::Venue;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

fn bench(c: &mut Criterion) {
    let fx = common::binance("BINANCE", Venue::Binance, Market::Spot);
    let n = fx.depth.len() as u64;
    let bytes = common::bytes(&fx.depth);
    let mut g = c.benchmark_group("binance_spot_depth");
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
    eprintln!("fixture: {n} depth frames, {bytes} bytes");
}

criterion_group!(benches, bench);
criterion_main!(benches);
