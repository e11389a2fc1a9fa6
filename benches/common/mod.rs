//! Capture fixtures shared by the criterion benches: where the recorded traffic lives and how
//! its lines split into frames, REST bodies and processors primed with the recorded snapshots.
//! Each bench includes this with `mod common;` and uses part of it.

// Every bench uses a different subset of these helpers.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;

use _core::exchanges::binance::messages::{BinanceDepthUpdate, BinanceEnvelope};
use _core::exchanges::binance::{instruments_from_exchange_info, BinanceProcessor, Market};
use _core::exchanges::okx::{parse_instruments, BookChannel, OkxProcessor};
use std::hint::black_box;

use _core::exchanges::{Channels, ExchangeProcessor};
use _core::model::{Event, SymbolMeta, Venue};
use criterion::{Criterion, Throughput};

/// `XTRADER_CAPTURES`, else `../shared/data/captures` beside the project.
pub fn captures() -> PathBuf {
    std::env::var_os("XTRADER_CAPTURES").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data/captures"),
        PathBuf::from,
    )
}

/// One capture file; a missing capture stops the bench loudly.
pub fn read(name: &str) -> String {
    std::fs::read_to_string(captures().join(name))
        .unwrap_or_else(|e| panic!("{name}: {e} (set XTRADER_CAPTURES)"))
}

/// The frames received in a `*.ws.N.0` capture, in order (the opening line and the frames the
/// client sent are left out).
pub fn received(name: &str) -> Vec<String> {
    read(name)
        .lines()
        .skip(1)
        .filter(|l| !l.contains(" <- "))
        .filter_map(|l| l.split_once(": ").map(|(_, f)| f.to_string()))
        .collect()
}

/// Received frames of `name` whose text contains `needle`.
pub fn frames_with(name: &str, needle: &str) -> Vec<String> {
    received(name)
        .into_iter()
        .filter(|f| f.contains(needle))
        .collect()
}

/// Total bytes of a frame list.
pub fn bytes(frames: &[String]) -> u64 {
    frames.iter().map(|f| f.len() as u64).sum()
}

/// A Binance capture: the depth snapshots by symbol and the symbols' metadata.
pub struct BinanceFixture {
    pub venue: Venue,
    pub market: Market,
    /// (native, normalized, contract size)
    pub symbols: Vec<(String, String, f64)>,
    /// (native, snapshot body) as recorded
    pub snapshots: Vec<(String, String)>,
    /// depth frames in capture order
    pub depth: Vec<String>,
    /// every received frame in capture order
    pub frames: Vec<String>,
}

/// Load `{prefix}.ws.1.0`, `{prefix}.http.0.0` and `{prefix}.0` (exchangeInfo).
pub fn binance(prefix: &str, venue: Venue, market: Market) -> BinanceFixture {
    let frames = received(&format!("{prefix}.ws.1.0"));
    let depth = frames
        .iter()
        .filter(|f| f.contains("@depth"))
        .cloned()
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
    BinanceFixture {
        venue,
        market,
        symbols,
        snapshots,
        depth,
        frames,
    }
}

impl BinanceFixture {
    /// A processor whose books hold the recorded snapshots (diffs then chain or drop as
    /// recorded): one recorded diff per symbol puts it in the buffering phase, then the
    /// snapshot lands.
    pub fn primed(&self) -> BinanceProcessor {
        let mut p = BinanceProcessor::new(self.venue, self.market, &[], Channels::ALL);
        for (native, symbol, size) in &self.symbols {
            p.add_symbol_sized(native, symbol, *size);
        }
        let (mut out, mut act) = (Vec::new(), Vec::new());
        for (i, (sym, body)) in self.snapshots.iter().enumerate() {
            let first = self
                .depth
                .iter()
                .find(|f| f.contains(&format!("\"s\":\"{sym}\"")))
                .expect("a diff per symbol");
            p.on_frame(first, 0, &mut out, &mut act);
            p.on_snapshot(i, body, 0, &mut out, &mut act);
        }
        p
    }
}

/// The OKX capture: instruments of the three recorded books, their pushed snapshots and every
/// received frame.
pub struct OkxFixture {
    pub metas: Vec<Arc<SymbolMeta>>,
    /// the three pushed `books` snapshots
    pub snapshots: Vec<String>,
    /// the `books` updates in capture order
    pub updates: Vec<String>,
    /// every received frame in capture order
    pub frames: Vec<String>,
}

/// Load `OKX.ws.1.0` and `OKX.0` (instruments).
pub fn okx() -> OkxFixture {
    let frames = received("OKX.ws.1.0");
    let (snapshots, updates) = frames
        .iter()
        .filter(|f| f.contains(r#""channel":"books""#) && f.contains(r#""data""#))
        .cloned()
        .partition(|f| f.contains(r#""action":"snapshot""#));
    let mut insts = Vec::new();
    for line in read("OKX.0").lines().filter(|l| l.contains(" -> ")) {
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
    OkxFixture {
        metas,
        snapshots,
        updates,
        frames,
    }
}

impl OkxFixture {
    /// A processor whose books hold the recorded snapshots, so every update chains and checks.
    pub fn primed(&self) -> OkxProcessor {
        let mut p = OkxProcessor::from_metas(&self.metas, Channels::ALL, BookChannel::Books);
        let (mut out, mut act) = (Vec::new(), Vec::new());
        for s in &self.snapshots {
            p.on_frame(s, 0, &mut out, &mut act);
        }
        p
    }

    /// Received frames of one channel (`trades`, `tickers`) that carry data.
    pub fn channel(&self, channel: &str) -> Vec<String> {
        let tag = format!(r#""channel":"{channel}""#);
        self.frames
            .iter()
            .filter(|f| f.contains(&tag) && f.contains(r#""data""#))
            .cloned()
            .collect()
    }
}

/// Events matching `is_event` that `p` makes from `frames` (the correctness check a bench
/// runs once, outside the timing).
pub fn count_events(
    p: &mut dyn ExchangeProcessor,
    frames: &[String],
    is_event: fn(&Event) -> bool,
) -> u64 {
    let (mut out, mut act) = (Vec::with_capacity(16), Vec::new());
    let mut events = 0u64;
    for f in frames {
        p.on_frame(f, 1, &mut out, &mut act);
        events += out.iter().filter(|e| is_event(e)).count() as u64;
        out.clear();
    }
    events
}

/// Criterion group `group`: `bare_parse` (the bare parse of each frame, the limit) beside
/// `parse_normalize` (the processor's `on_frame`) over the same frames.
pub fn bare_beside_processor(
    c: &mut Criterion,
    group: &str,
    frames: &[String],
    p: &mut dyn ExchangeProcessor,
    bare: fn(&str),
) {
    let (mut out, mut act) = (Vec::with_capacity(16), Vec::new());
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Elements(frames.len() as u64));
    g.bench_function("bare_parse", |b| {
        b.iter(|| {
            for f in frames {
                bare(black_box(f));
            }
        });
    });
    g.bench_function("parse_normalize", |b| {
        b.iter(|| {
            for f in frames {
                p.on_frame(black_box(f), 1, &mut out, &mut act);
                out.clear();
            }
        });
    });
    g.finish();
}

/// The bare parse of a Binance depth frame (spot or futures): the envelope, then the depth
/// update's fields, prices and quantities as strings; the limit the full processing is
/// measured against.
pub fn bare_depth(frame: &str) {
    let env: BinanceEnvelope = sonic_rs::from_str(frame).expect("valid frame");
    let data = env.data.expect("data");
    // the levels as strings: parsing their numbers is the processor's normalization work
    let d: BinanceDepthUpdate<'_, Vec<[&str; 2]>> =
        sonic_rs::from_str(data.as_raw_str()).expect("depth");
    black_box(d);
}
