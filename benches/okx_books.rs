//! OKX `books`: parse + normalize + book update + CRC32 checksum per message on the real
//! capture (shared/data/captures/OKX.*), beside the bare parse of the same bytes (the
//! one-pass reader and sonic-rs) and the same processing with the checksum field zeroed (the
//! post-2026 live case: the chain is the proof).
//!
//! `cargo bench --bench okx_books`

// A benchmark over fixed fixtures: a missing capture should stop it loudly with a message.
#![allow(clippy::expect_used)]

use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;

use _core::exchanges::okx::messages::OkxBookFrame;
use _core::exchanges::okx::scan;
use _core::exchanges::okx::{parse_instruments, BookChannel, OkxProcessor};
use _core::exchanges::{Channels, ExchangeProcessor};
use _core::model::{SymbolMeta, Venue};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

fn captures() -> PathBuf {
    std::env::var_os("XTRADER_CAPTURES").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data/captures"),
        PathBuf::from,
    )
}

struct Fixture {
    metas: Vec<Arc<SymbolMeta>>,
    /// the three pushed snapshots
    snapshots: Vec<String>,
    /// the 287 updates in capture order
    updates: Vec<String>,
}

fn load() -> Fixture {
    let dir = captures();
    let ws =
        std::fs::read_to_string(dir.join("OKX.ws.1.0")).expect("OKX.ws.1.0 (set XTRADER_CAPTURES)");
    let rest = std::fs::read_to_string(dir.join("OKX.0")).expect("OKX.0");
    let frames: Vec<String> = ws
        .lines()
        .skip(1)
        .filter(|l| !l.contains(" <- "))
        .filter_map(|l| l.split_once(": ").map(|(_, f)| f.to_string()))
        .filter(|f| f.contains(r#""channel":"books""#) && f.contains(r#""data""#))
        .collect();
    let (snapshots, updates) = frames
        .into_iter()
        .partition(|f| f.contains(r#""action":"snapshot""#));
    let mut insts = Vec::new();
    for line in rest.lines().filter(|l| l.contains(" -> ")) {
        let body = line.split_once(": ").map_or("", |(_, b)| b);
        insts.extend(parse_instruments(body).expect("instruments"));
    }
    let metas = ["BTC-USD-220527", "UNI-USD-SWAP", "BTC-USDT"]
        .iter()
        .map(|n| {
            let inst = insts
                .iter()
                .find(|i| i.native == *n)
                .expect("instrument")
                .clone();
            SymbolMeta::with_instrument(Venue::Okx, Arc::new(inst), None)
        })
        .collect();
    Fixture {
        metas,
        snapshots,
        updates,
    }
}

/// A processor whose books hold the recorded snapshots, so every update chains and checks.
fn primed(fx: &Fixture) -> OkxProcessor {
    let mut p = OkxProcessor::from_metas(&fx.metas, Channels::ALL, BookChannel::Books);
    let (mut out, mut act) = (Vec::new(), Vec::new());
    for s in &fx.snapshots {
        p.on_frame(s, 0, &mut out, &mut act);
    }
    p
}

fn bench(c: &mut Criterion) {
    let fx = load();
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
            || (primed(&fx), Vec::with_capacity(16), Vec::new()),
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
            || (primed(&fx), Vec::with_capacity(16), Vec::new()),
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
                || (primed(&fx), Vec::with_capacity(16), Vec::new()),
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
