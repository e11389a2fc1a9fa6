//! OKX `books`: parse + normalize + book update + CRC32 checksum per message on the real
//! capture (shared/data/captures/OKX.*), beside the bare parse of the same bytes (the
//! one-pass reader and sonic-rs) and the same processing with the checksum field zeroed (the
//! post-2026 live case: the chain is the proof).
//!
//! `cargo bench --bench okx_books`

// A benchmark over fixed fixtures: a missing capture should stop it loudly with a message.
#![allow(clippy::expect_used)]

mod common;

use std::hint::black_box;

use _core::exchanges::okx::messages::OkxBookFrame;
use _core::exchanges::okx::scan;
use _core::exchanges::ExchangeProcessor;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

fn bench(c: &mut Criterion) {
    let fx = common::okx();
    let n = fx.updates.len() as u64;
    let bytes: u64 = fx.updates.iter().map(|f| f.len() as u64).sum();
    let zeroed: Vec<String> = fx
        .updates
        .iter()
        .map(|f| {
            let i = f.find(r#""checksum":"#).expect("checksum field");
            let end = f[i + 11..].find(['}', ',']).expect("end of value") + i + 11;
            format!("{}\"checksum\":0{}", &f[..i], &f[end..])
        })
        .collect();
    let mut g = c.benchmark_group("okx_books");
    g.throughput(Throughput::Elements(n));

    // bare parse, two ways: the one-pass reader of the hot path, and sonic-rs through serde
    // (the fallback for frames in another form); both then walk every level's two strings
    let walk = |frame: &OkxBookFrame<'_>| {
        for d in &frame.data {
            for l in d.bids.iter().chain(d.asks.iter()) {
                black_box(l.expect("level"));
            }
        }
    };
    g.bench_function("bare_parse_scan", |b| {
        b.iter(|| {
            for f in &fx.updates {
                let frame = scan::book_frame(black_box(f)).expect("compact frame");
                walk(&frame);
                black_box(frame);
            }
        });
    });
    g.bench_function("bare_parse_sonic", |b| {
        b.iter(|| {
            for f in &fx.updates {
                let frame: OkxBookFrame = sonic_rs::from_str(black_box(f)).expect("valid frame");
                walk(&frame);
                black_box(frame);
            }
        });
    });

    g.bench_function("parse_normalize_book_update_checksum", |b| {
        b.iter_batched(
            || (fx.primed(), Vec::with_capacity(16), Vec::new()),
            |(mut p, mut out, mut act)| {
                for f in &fx.updates {
                    p.on_frame(black_box(f), 1, &mut out, &mut act);
                    out.clear();
                }
                assert_eq!(
                    (p.counters.checksum_ok, p.counters.checksum_failed),
                    (n + 3, 0)
                );
                p
            },
            BatchSize::LargeInput,
        );
    });

    g.bench_function("parse_normalize_book_update_chain_only", |b| {
        b.iter_batched(
            || (fx.primed(), Vec::with_capacity(16), Vec::new()),
            |(mut p, mut out, mut act)| {
                for f in &zeroed {
                    p.on_frame(black_box(f), 1, &mut out, &mut act);
                    out.clear();
                }
                assert_eq!(p.counters.checksum_absent, n);
                p
            },
            BatchSize::LargeInput,
        );
    });
    g.finish();

    // the same processing per instrument: small updates on a 120-level book (UNI-USD-SWAP),
    // mid-size ones on a 70-level book (BTC-USD-220527), large ones on a 400-level book
    let mut g = c.benchmark_group("okx_books_by_instrument");
    for inst in ["UNI-USD-SWAP", "BTC-USD-220527", "BTC-USDT"] {
        let tag = format!(r#""instId":"{inst}""#);
        let mine: Vec<&String> = fx.updates.iter().filter(|f| f.contains(&tag)).collect();
        g.throughput(Throughput::Elements(mine.len() as u64));
        g.bench_function(inst, |b| {
            b.iter_batched(
                || (fx.primed(), Vec::with_capacity(16), Vec::new()),
                |(mut p, mut out, mut act)| {
                    for f in &mine {
                        p.on_frame(black_box(f), 1, &mut out, &mut act);
                        out.clear();
                    }
                    assert_eq!(p.counters.checksum_failed, 0);
                    p
                },
                BatchSize::LargeInput,
            );
        });
    }
    g.finish();
    eprintln!("fixture: {n} books updates, {bytes} bytes, 3 snapshots applied in setup");
}

criterion_group!(benches, bench);
criterion_main!(benches);
