//! Book maintenance on synthetic deep books and the OKX checksum alone.
//!
//! - `deep_book_per_level`: random level changes (set, insert, remove) on a 5,000-level per
//!   side book: the model book readers see (`OrderBook`) and OKX's wire-string book
//!   (`WireBook`); throughput is level changes.
//! - `binance_deep_depth`: synthetic Binance depth frames (10 changes each) against a
//!   5,000-level snapshot, through the full processor, beside the bare sonic-rs parse of the
//!   same bytes.
//! - `binance_deep_snapshot`: that 5,000-level snapshot applied through the processor (parse
//!   and book fill, best level first as the venue sends it).
//! - `okx_checksum`: the CRC32 checksum (best 25 levels per side, over the wire strings) of
//!   the three recorded OKX books and of a synthetic 5,000-level one, and the bare CRC32 of the
//!   checksum string.
//!
//! `cargo bench --bench book_levels`

// A benchmark over fixed fixtures: a missing capture should stop it loudly with a message.
#![allow(clippy::expect_used)]

mod common;

use std::fmt::Write as _;
use std::hint::black_box;

use _core::exchanges::binance::{BinanceProcessor, Market};
use _core::exchanges::okx::WireBook;
use _core::exchanges::{Channels, ExchangeProcessor};
use _core::model::{OrderBook, Venue};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

/// Levels per side of the synthetic books.
const DEPTH: u32 = 5_000;
/// Random level changes per timed pass.
const CHANGES: usize = 10_000;
/// Synthetic depth frames per pass, and level changes per frame.
const FRAMES: usize = 1_000;
const PER_FRAME: usize = 10;
const TICK: f64 = 0.01;
const MID: u32 = 5_000_000; // in ticks: 50,000.00

/// A level change: side, price in ticks, size (0 removes).
#[derive(Clone, Copy)]
struct Change {
    bid: bool,
    ticks: u32,
    size: f64,
}

/// Changes spread over the whole depth (deep levels change too), a fifth of them removals,
/// so the book keeps about its depth: removed levels come back as inserts later.
fn changes(n: usize, seed: u64) -> Vec<Change> {
    let mut rng = fastrand::Rng::with_seed(seed);
    (0..n)
        .map(|_| {
            let bid = rng.bool();
            let off = rng.u32(0..DEPTH);
            let ticks = if bid { MID - off } else { MID + 1 + off };
            let size = if rng.u8(0..5) == 0 {
                0.0
            } else {
                f64::from(rng.u32(1..100_000)) / 1000.0
            };
            Change { bid, ticks, size }
        })
        .collect()
}

fn px(ticks: u32) -> f64 {
    f64::from(ticks) * TICK
}

/// Wire strings of a change, as a venue would write them.
fn strings(c: &Change) -> (String, String) {
    (format!("{:.2}", px(c.ticks)), format!("{:.3}", c.size))
}

fn full_book() -> OrderBook {
    let mut b = OrderBook::new();
    for i in 0..DEPTH {
        b.set_bid(px(MID - i), 1.0);
        b.set_ask(px(MID + 1 + i), 1.0);
    }
    b
}

fn full_wire_book() -> WireBook {
    let mut b = WireBook::default();
    for i in 0..DEPTH {
        b.set_bid(px(MID - i), &format!("{:.2}", px(MID - i)), "1.000", false);
        b.set_ask(
            px(MID + 1 + i),
            &format!("{:.2}", px(MID + 1 + i)),
            "1.000",
            false,
        );
    }
    b
}

fn bench_per_level(c: &mut Criterion) {
    let ch = changes(CHANGES, 7);
    let wire: Vec<(String, String)> = ch.iter().map(strings).collect();
    let mut g = c.benchmark_group("deep_book_per_level");
    g.throughput(Throughput::Elements(CHANGES as u64));
    g.bench_function("order_book_5000", |b| {
        b.iter_batched_ref(
            full_book,
            |book| {
                for c in &ch {
                    let p = px(c.ticks);
                    if c.bid {
                        book.set_bid(black_box(p), c.size);
                    } else {
                        book.set_ask(black_box(p), c.size);
                    }
                }
            },
            BatchSize::LargeInput,
        );
    });
    g.bench_function("wire_book_5000", |b| {
        b.iter_batched_ref(
            full_wire_book,
            |book| {
                for (c, (p_s, s_s)) in ch.iter().zip(&wire) {
                    let p = px(c.ticks);
                    if c.bid {
                        book.set_bid(black_box(p), p_s, s_s, c.size == 0.0);
                    } else {
                        book.set_ask(black_box(p), p_s, s_s, c.size == 0.0);
                    }
                }
            },
            BatchSize::LargeInput,
        );
    });
    g.finish();
}

/// A spot snapshot body of DEPTH levels per side with `lastUpdateId` 1000.
fn snapshot_body() -> String {
    let mut s = String::from(r#"{"lastUpdateId":1000,"bids":["#);
    for i in 0..DEPTH {
        let sep = if i == 0 { "" } else { "," };
        let _ = write!(s, r#"{sep}["{:.2}","1.000"]"#, px(MID - i));
    }
    s.push_str(r#"],"asks":["#);
    for i in 0..DEPTH {
        let sep = if i == 0 { "" } else { "," };
        let _ = write!(s, r#"{sep}["{:.2}","1.000"]"#, px(MID + 1 + i));
    }
    s.push_str("]}");
    s
}

/// Chained depth frames (`U` = previous `u` + 1) from id 1001, PER_FRAME changes each.
fn depth_frames() -> Vec<String> {
    let ch = changes(FRAMES * PER_FRAME, 11);
    ch.chunks(PER_FRAME)
        .enumerate()
        .map(|(k, part)| {
            let (bids, asks): (Vec<&Change>, Vec<&Change>) = part.iter().partition(|c| c.bid);
            let list = |v: &[&Change]| {
                v.iter()
                    .map(|c| {
                        let (p, s) = strings(c);
                        format!(r#"["{p}","{s}"]"#)
                    })
                    .collect::<Vec<_>>()
                    .join(",")
            };
            let id = 1001 + k;
            format!(
                r#"{{"stream":"btcusdt@depth@100ms","data":{{"e":"depthUpdate","E":1633998512068,"s":"BTCUSDT","U":{id},"u":{id},"b":[{}],"a":[{}]}}}}"#,
                list(&bids),
                list(&asks)
            )
        })
        .collect()
}

fn deep_processor(snapshot: &str) -> BinanceProcessor {
    let syms = [("BTCUSDT".to_string(), "BTC-USDT".to_string())];
    let mut p = BinanceProcessor::new(Venue::Binance, Market::Spot, &syms, Channels::ALL);
    let (mut out, mut act) = (Vec::new(), Vec::new());
    // an old diff puts the symbol in the buffering phase; the snapshot then lands
    let old = r#"{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":999,"u":1000,"b":[],"a":[]}}"#;
    p.on_frame(old, 0, &mut out, &mut act);
    p.on_snapshot(0, snapshot, 0, &mut out, &mut act);
    p
}

fn bench_deep_depth(c: &mut Criterion) {
    let snap = snapshot_body();
    let frames = depth_frames();
    let n = frames.len() as u64;
    let mut g = c.benchmark_group("binance_deep_depth");
    g.throughput(Throughput::Elements(n));
    g.bench_function("bare_parse", |b| {
        b.iter(|| {
            for f in &frames {
                common::bare_depth(black_box(f));
            }
        });
    });
    g.bench_function("parse_normalize_book_update", |b| {
        b.iter_batched(
            || (deep_processor(&snap), Vec::with_capacity(16), Vec::new()),
            |(mut p, mut out, mut act)| {
                for f in &frames {
                    p.on_frame(black_box(f), 1, &mut out, &mut act);
                    out.clear();
                }
                // the snapshot counts as one book update
                assert_eq!((p.counters.gaps, p.counters.book_updates), (0, n + 1));
                p
            },
            BatchSize::LargeInput,
        );
    });
    g.finish();
    // the snapshot itself: 5,000 levels per side arrive best first, each one worse than the
    // one before, so in a side stored best last each lands in front of the previous one
    let mut g = c.benchmark_group("binance_deep_snapshot");
    g.throughput(Throughput::Elements(u64::from(2 * DEPTH)));
    g.bench_function("apply_5000_levels_per_side", |b| {
        b.iter(|| {
            let p = deep_processor(black_box(&snap));
            assert_eq!(p.counters.book_updates, 1);
            p
        });
    });
    g.finish();
    eprintln!(
        "binance_deep_depth: {n} frames of {PER_FRAME} changes on {DEPTH} levels per side, {} bytes",
        common::bytes(&frames)
    );
}

/// Wire books holding the three recorded OKX snapshots.
fn recorded_wire_books() -> Vec<(String, WireBook, i64)> {
    let fx = common::okx();
    fx.snapshots
        .iter()
        .map(|s| {
            let frame = sonic_rs::from_str::<_core::exchanges::okx::messages::OkxBookFrame>(s)
                .expect("snapshot frame");
            let d = frame.data.first().expect("one book");
            let mut book = WireBook::default();
            for l in d.bids.iter().map(|l| l.expect("level")) {
                let p: f64 = l.px.parse().expect("price");
                book.set_bid(p, l.px, l.sz, false);
            }
            for l in d.asks.iter().map(|l| l.expect("level")) {
                let p: f64 = l.px.parse().expect("price");
                book.set_ask(p, l.px, l.sz, false);
            }
            let inst = frame.arg.inst_id.unwrap_or("?").to_string();
            (inst, book, d.checksum.unwrap_or_default())
        })
        .collect()
}

fn bench_checksum(c: &mut Criterion) {
    let mut g = c.benchmark_group("okx_checksum");
    g.throughput(Throughput::Elements(1));
    let mut buf = Vec::with_capacity(2048);
    for (inst, book, expected) in recorded_wire_books() {
        assert_eq!(
            i64::from(book.checksum(&mut buf)),
            expected,
            "{inst}: recorded checksum"
        );
        g.bench_function(format!("checksum_{inst}"), |b| {
            b.iter(|| black_box(book.checksum(&mut buf)));
        });
        book.checksum_string(&mut buf);
        let text = buf.clone();
        g.bench_function(format!("crc32_only_{inst}"), |b| {
            b.iter(|| black_box(crc32fast::hash(black_box(&text))));
        });
    }
    let deep = full_wire_book();
    g.bench_function("checksum_synthetic_5000", |b| {
        b.iter(|| black_box(deep.checksum(&mut buf)));
    });
    g.finish();
}

fn bench(c: &mut Criterion) {
    bench_per_level(c);
    bench_deep_depth(c);
    bench_checksum(c);
}

criterion_group!(benches, bench);
criterion_main!(benches);
