//! Binance futures depth (USD-M and COIN-M): parse + normalize (COIN-M contracts to USD) +
//! `pu` chain check + book update per message on the real captures
//! (shared/data/captures/BINANCE_FUTURES.*, BINANCE_DELIVERY.*), beside the bare JSON parse of
//! the same bytes.
//!
//! `cargo bench --bench binance_futures_depth`

// A benchmark over fixed fixtures: a missing capture should stop it loudly with a message.
#![allow(clippy::expect_used)]

use std::hint::black_box;
use std::path::PathBuf;

use _core::exchanges::binance::messages::{BinanceDepthUpdate, BinanceEnvelope};
use _core::exchanges::binance::{instruments_from_exchange_info, BinanceProcessor, Market};
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
    venue: Venue,
    /// (native, normalized, contract size)
    symbols: Vec<(String, String, f64)>,
    /// (native, snapshot body) as recorded
    snapshots: Vec<(String, String)>,
    /// depth frames in capture order
    frames: Vec<String>,
}

fn read(name: &str) -> String {
    std::fs::read_to_string(captures().join(name))
        .unwrap_or_else(|e| panic!("{name}: {e} (set XTRADER_CAPTURES)"))
}

fn load(prefix: &str, venue: Venue) -> Fixture {
    let frames: Vec<String> = read(&format!("{prefix}.ws.1.0"))
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(": ").map(|(_, f)| f.to_string()))
        .filter(|f| f.contains("@depth"))
        .collect();
    let snapshots: Vec<(String, String)> = read(&format!("{prefix}.http.0.0"))
        .lines()
        .filter_map(|l| {
            let (url, rest) = l.split_once(" -> ")?;
            let sym = url.split("symbol=").nth(1)?.split('&').next()?.to_string();
            Some((sym, rest.split_once(": ")?.1.to_string()))
        })
        .collect();
    let info = read(&format!("{prefix}.0"));
    let body = info
        .lines()
        .find_map(|l| l.split_once("/exchangeInfo -> ")?.1.split_once(": "))
        .expect("exchangeInfo line")
        .1;
    let insts = instruments_from_exchange_info(venue, body).expect("exchangeInfo");
    let symbols = snapshots
        .iter()
        .map(|(s, _)| {
            let inst = insts.iter().find(|i| &i.native == s).expect("instrument");
            (s.clone(), inst.symbol.clone(), inst.contract_size)
        })
        .collect();
    Fixture {
        venue,
        symbols,
        snapshots,
        frames,
    }
}

/// A processor whose books hold the recorded snapshots (diffs then chain or drop as recorded).
fn primed(fx: &Fixture) -> BinanceProcessor {
    let mut p = BinanceProcessor::new(fx.venue, Market::Futures, &[], Channels::ALL);
    for (native, symbol, size) in &fx.symbols {
        p.add_symbol_sized(native, symbol, *size);
    }
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

fn bench_venue(c: &mut Criterion, group: &str, fx: &Fixture) {
    let n = fx.frames.len() as u64;
    let bytes: u64 = fx.frames.iter().map(|f| f.len() as u64).sum();
    let mut g = c.benchmark_group(group);
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
            || (primed(fx), Vec::with_capacity(16), Vec::new()),
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
    eprintln!("{group}: {n} depth frames, {bytes} bytes");
}

fn bench(c: &mut Criterion) {
    bench_venue(
        c,
        "binance_usdm_depth",
        &load("BINANCE_FUTURES", Venue::BinanceUsdm),
    );
    bench_venue(
        c,
        "binance_coinm_depth",
        &load("BINANCE_DELIVERY", Venue::BinanceCoinm),
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
