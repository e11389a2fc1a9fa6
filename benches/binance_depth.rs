//! Binance spot depth: parse + normalize + book update per message on the real capture
//! (shared/data/captures/BINANCE.*), beside the bare JSON parse of the same bytes.
//!
//! `cargo bench --bench binance_depth`

// A benchmark over fixed fixtures: a missing capture should stop it loudly with a message.
#![allow(clippy::expect_used)]

use std::hint::black_box;
use std::path::PathBuf;

use _core::exchanges::binance::messages::{BinanceDepthUpdate, BinanceEnvelope};
use _core::exchanges::binance::{BinanceProcessor, Market};
use _core::exchanges::{Channels, ExchangeProcessor};
use _core::model::Venue;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

fn captures() -> PathBuf {
    std::env::var_os("XTRADER_CAPTURES").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data/captures"),
        PathBuf::from,
    )
}

struct Fixture {
    symbols: Vec<(String, String)>,
    /// (symbol, snapshot body) as recorded
    snapshots: Vec<(String, String)>,
    /// depth frames in capture order
    frames: Vec<String>,
}

fn load() -> Fixture {
    let dir = captures();
    let ws = std::fs::read_to_string(dir.join("BINANCE.ws.1.0"))
        .expect("BINANCE.ws.1.0 (set XTRADER_CAPTURES)");
    let http = std::fs::read_to_string(dir.join("BINANCE.http.0.0")).expect("BINANCE.http.0.0");
    let frames: Vec<String> = ws
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(": ").map(|(_, f)| f.to_string()))
        .filter(|f| f.contains("@depth"))
        .collect();
    let snapshots: Vec<(String, String)> = http
        .lines()
        .filter_map(|l| {
            let (url, rest) = l.split_once(" -> ")?;
            let sym = url.split("symbol=").nth(1)?.split('&').next()?.to_string();
            Some((sym, rest.split_once(": ")?.1.to_string()))
        })
        .collect();
    let symbols = snapshots
        .iter()
        .map(|(s, _)| (s.clone(), s.clone()))
        .collect();
    Fixture {
        symbols,
        snapshots,
        frames,
    }
}

/// A processor whose books hold the recorded snapshots (diffs then chain or drop as recorded).
fn primed(fx: &Fixture) -> BinanceProcessor {
    let mut p = BinanceProcessor::new(Venue::Binance, Market::Spot, &fx.symbols, Channels::ALL);
    let (mut out, mut act) = (Vec::new(), Vec::new());
    // one recorded diff per symbol puts it in the buffering phase, then the snapshot lands
    for (i, (sym, body)) in fx.snapshots.iter().enumerate() {
        let first = fx
            .frames
            .iter()
            .find(|f| f.contains(&format!("\"s\":\"{sym}\"")))
            .expect("a diff per symbol");
        p.on_frame(first, 0, &mut out, &mut act);
        p.on_snapshot(i, body, 0, &mut out, &mut act);
    }
    p
}

fn bench(c: &mut Criterion) {
    let fx = load();
    let n = fx.frames.len() as u64;
    let bytes: u64 = fx.frames.iter().map(|f| f.len() as u64).sum();
    let mut g = c.benchmark_group("binance_spot_depth");
    g.throughput(Throughput::Elements(n));

    g.bench_function("bare_parse", |b| {
        b.iter(|| {
            for f in &fx.frames {
                let env: BinanceEnvelope = sonic_rs::from_str(black_box(f)).expect("valid frame");
                let data = env.data.expect("data");
                let d: BinanceDepthUpdate = sonic_rs::from_str(data.as_raw_str()).expect("depth");
                black_box(d);
            }
        });
    });

    g.bench_function("parse_normalize_book_update", |b| {
        b.iter_batched(
            || (primed(&fx), Vec::with_capacity(16), Vec::new()),
            |(mut p, mut out, mut act)| {
                for f in &fx.frames {
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
