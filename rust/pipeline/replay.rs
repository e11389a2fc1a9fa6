//! Offline, deterministic replay of a recorded capture through the same processors as live
//! feeds. Reads cryptofeed's raw capture format (shared/data/README.md): a websocket file
//! (`URL <-> TS` header, `TS: TEXT` received frames, `URL <- TS: TEXT` sent frames) and REST
//! files (`URL -> TS: BODY`). Recorded REST answers are served in place of live calls: when
//! the processor asks for a snapshot, the next recorded snapshot for that symbol is delivered
//! at its recorded time. The venue comes from the capture URL: Binance subscriptions are read
//! from the combined-stream URL, OKX ones from the `subscribe` frames the client sent.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use crate::exchanges::binance::{instruments_from_exchange_info, BinanceProcessor, Market};
use crate::exchanges::okx::{self, BookChannel, OkxProcessor};
use crate::exchanges::{Action, Channels, ExchangeProcessor};
use crate::model::{Event, InstrumentCache, OrderBook, SharedInstruments, SymbolMeta, Venue};
use crate::pipeline::feed::INSTRUMENT_CACHE_CAPACITY;

/// Replay failures (the capture itself is unusable; bad frames inside it are statuses).
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The first line is not a `URL <-> TS` header.
    #[error("{path}: line 1 is not a capture header 'URL <-> TS'")]
    Header {
        /// File.
        path: PathBuf,
    },
    /// The venue could not be inferred or is not supported yet.
    #[error("{path}: cannot replay venue of URL '{url}' (supported: Binance spot, Binance.US, USD-M fstream, COIN-M dstream, okx.com, okex.com)")]
    Venue {
        /// File.
        path: PathBuf,
        /// The capture URL.
        url: String,
    },
    /// Unknown exchange id given explicitly.
    #[error("unknown exchange id '{0}'")]
    Exchange(String),
}

/// What a replay produced.
#[derive(Debug)]
pub struct ReplayOutput {
    /// Venue.
    pub venue: Venue,
    /// Every event, in order.
    pub events: Vec<Event>,
    /// Symbols seen.
    pub symbols: Vec<Arc<SymbolMeta>>,
    /// Processor and replay counters.
    pub counters: Vec<(&'static str, u64)>,
}

/// Seconds as a decimal string (`1633998512.0633569`) to integer nanoseconds, exactly.
#[must_use]
pub fn parse_ts_ns(s: &str) -> Option<i64> {
    let s = s.trim();
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let secs: i64 = int.parse().ok()?;
    let mut nanos: i64 = 0;
    let mut digits = 0;
    for c in frac.chars().take(9) {
        nanos = nanos * 10 + i64::from(c.to_digit(10)?);
        digits += 1;
    }
    for _ in digits..9 {
        nanos *= 10;
    }
    secs.checked_mul(1_000_000_000)?.checked_add(nanos)
}

fn read(path: &Path) -> Result<String, ReplayError> {
    std::fs::read_to_string(path).map_err(|source| ReplayError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn venue_of(url: &str) -> Option<Venue> {
    let host = url
        .split("://")
        .nth(1)
        .unwrap_or(url)
        .split(['/', ':'])
        .next()
        .unwrap_or("");
    if host.ends_with("binance.us") {
        Some(Venue::BinanceUs)
    } else if host.starts_with("fstream") && host.ends_with("binance.com") {
        Some(Venue::BinanceUsdm)
    } else if host.starts_with("dstream") && host.ends_with("binance.com") {
        Some(Venue::BinanceCoinm)
    } else if host.ends_with("binance.com") || host.ends_with("binance.vision") {
        Some(Venue::Binance)
    } else if host.ends_with("okx.com") || host.ends_with("okex.com") {
        Some(Venue::Okx)
    } else {
        None
    }
}

/// Symbols (uppercase native) and channels named in a combined-stream URL.
fn streams_in_url(url: &str) -> (Vec<String>, Channels) {
    let mut syms: Vec<String> = Vec::new();
    let mut ch = Channels::NONE;
    let list = url.split_once("streams=").map_or("", |(_, r)| r);
    for name in list.split('/') {
        let Some((sym, kind)) = name.split_once('@') else {
            continue;
        };
        match kind.split('@').next().unwrap_or("") {
            "depth" => ch.book = true,
            "bookTicker" => ch.bbo = true,
            "trade" | "aggTrade" => ch.trades = true,
            "markPrice" => ch.funding = true,
            "forceOrder" => ch.liquidations = true,
            _ => continue,
        }
        let up = sym.to_ascii_uppercase();
        if !syms.contains(&up) {
            syms.push(up);
        }
    }
    (syms, ch)
}

/// One recorded REST answer.
struct RestLine<'a> {
    url: &'a str,
    ts: i64,
    body: &'a str,
}

fn rest_lines(text: &str) -> impl Iterator<Item = RestLine<'_>> {
    text.lines().filter_map(|line| {
        let (url, rest) = line.split_once(" -> ")?;
        let (ts, body) = rest.split_once(": ")?;
        Some(RestLine {
            url,
            ts: parse_ts_ns(ts)?,
            body,
        })
    })
}

fn query_param<'a>(url: &'a str, key: &str) -> Option<&'a str> {
    let q = url.split_once('?')?.1;
    q.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == key).then_some(v)
    })
}

/// Replay a cryptofeed raw capture with its recorded REST files.
///
/// # Errors
/// Unreadable files, a missing header, or a venue that cannot be replayed.
pub fn replay_cryptofeed(
    ws: &Path,
    rest: &[PathBuf],
    exchange: Option<&str>,
) -> Result<ReplayOutput, ReplayError> {
    let text = read(ws)?;
    let mut lines = text.lines();
    let header = lines.next().unwrap_or("");
    let Some((url, _)) = header.split_once(" <-> ") else {
        return Err(ReplayError::Header {
            path: ws.to_path_buf(),
        });
    };
    let venue = match exchange {
        Some(id) => Venue::from_id(id).ok_or_else(|| ReplayError::Exchange(id.to_string()))?,
        None => venue_of(url).ok_or_else(|| ReplayError::Venue {
            path: ws.to_path_buf(),
            url: url.to_string(),
        })?,
    };
    let rest_texts: Vec<String> = rest.iter().map(|p| read(p)).collect::<Result<_, _>>()?;
    let Setup {
        proc,
        mut snapshots,
    } = match venue {
        Venue::Okx => setup_okx(&text, &rest_texts),
        _ => setup_binance(venue, url, &rest_texts),
    };
    Ok(drive(venue, proc, &mut snapshots, lines))
}

/// A processor ready to replay and the recorded snapshots it may ask for, per native symbol.
struct Setup {
    proc: Box<dyn ExchangeProcessor>,
    snapshots: HashMap<String, VecDeque<(i64, String)>>,
}

fn sort_snapshots(snapshots: &mut HashMap<String, VecDeque<(i64, String)>>) {
    for q in snapshots.values_mut() {
        q.make_contiguous().sort_by_key(|(ts, _)| *ts);
    }
}

fn setup_binance(venue: Venue, url: &str, rest_texts: &[String]) -> Setup {
    let market = match venue {
        Venue::BinanceUsdm | Venue::BinanceCoinm => Market::Futures,
        _ => Market::Spot,
    };
    let (natives, channels) = streams_in_url(url);
    // native -> (normalized name, contract size: COIN-M sizes are contracts)
    let mut normalized: HashMap<String, (String, f64)> = HashMap::new();
    let mut snapshots: HashMap<String, VecDeque<(i64, String)>> = HashMap::new();
    for t in rest_texts {
        for r in rest_lines(t) {
            if r.url.contains("/exchangeInfo") {
                if let Ok(list) = instruments_from_exchange_info(venue, r.body) {
                    for i in list {
                        normalized.insert(i.native, (i.symbol, i.contract_size));
                    }
                }
            } else if r.url.contains("/depth") {
                if let Some(sym) = query_param(r.url, "symbol") {
                    snapshots
                        .entry(sym.to_string())
                        .or_default()
                        .push_back((r.ts, r.body.to_string()));
                }
            }
        }
    }
    sort_snapshots(&mut snapshots);
    let mut proc = BinanceProcessor::new(venue, market, &[], channels);
    for n in &natives {
        let (symbol, size) = normalized
            .get(n)
            .cloned()
            .unwrap_or_else(|| (n.clone(), 1.0));
        proc.add_symbol_sized(n, &symbol, size);
    }
    Setup {
        proc: Box::new(proc),
        snapshots,
    }
}

/// OKX subscriptions named by the `subscribe` frames the client sent (`URL <- TS: {...}`):
/// instruments in first-seen order, the normalized channels, and the wire book channel.
fn okx_subscriptions(ws_text: &str) -> (Vec<String>, Channels, BookChannel) {
    let mut insts: Vec<String> = Vec::new();
    let mut ch = Channels::NONE;
    let mut book = BookChannel::Books;
    for line in ws_text.lines().filter(|l| l.contains(" <- ")) {
        let Some((_, frame)) = line.split_once(": ") else {
            continue;
        };
        let Ok(req) = sonic_rs::from_str::<OkxRequest>(frame) else {
            continue;
        };
        if req.op != "subscribe" {
            continue;
        }
        for a in &req.args {
            match a.channel.as_str() {
                "books" | "books-l2-tbt" | "books50-l2-tbt" | "books5" => {
                    ch.book = true;
                    if let Ok(c) = okx::OkxChannelChoice::parse([a.channel.as_str()]) {
                        book = c.book;
                    }
                }
                "bbo-tbt" => ch.bbo = true,
                "trades" | "trades-all" => ch.trades = true,
                "tickers" => ch.ticker = true,
                "funding-rate" | "mark-price" => ch.funding = true,
                "open-interest" => ch.open_interest = true,
                "liquidation-orders" => ch.liquidations = true,
                _ => continue,
            }
            if let Some(id) = &a.inst_id {
                if !insts.contains(id) {
                    insts.push(id.clone());
                }
            }
        }
    }
    (insts, ch, book)
}

/// A sent OKX request (`{"op":"subscribe","args":[...]}`).
#[derive(serde::Deserialize)]
struct OkxRequest {
    op: String,
    #[serde(default)]
    args: Vec<OkxRequestArg>,
}

#[derive(serde::Deserialize)]
struct OkxRequestArg {
    channel: String,
    #[serde(rename = "instId", default)]
    inst_id: Option<String>,
}

fn setup_okx(ws_text: &str, rest_texts: &[String]) -> Setup {
    let (insts, channels, book) = okx_subscriptions(ws_text);
    let mut cache = InstrumentCache::new(INSTRUMENT_CACHE_CAPACITY);
    let mut snapshots: HashMap<String, VecDeque<(i64, String)>> = HashMap::new();
    for t in rest_texts {
        for r in rest_lines(t) {
            if r.url.contains("/api/v5/public/instruments") {
                for i in okx::parse_instruments(r.body).unwrap_or_default() {
                    cache.insert(i);
                }
            } else if r.url.contains("/api/v5/market/books") {
                if let Some(id) = query_param(r.url, "instId") {
                    snapshots
                        .entry(id.to_string())
                        .or_default()
                        .push_back((r.ts, r.body.to_string()));
                }
            }
        }
    }
    sort_snapshots(&mut snapshots);
    let metas: Vec<Arc<SymbolMeta>> = insts
        .iter()
        .map(|id| {
            let b = channels
                .book
                .then(|| Arc::new(RwLock::new(OrderBook::new())));
            match cache.get(id) {
                Some(inst) => SymbolMeta::with_instrument(Venue::Okx, inst, b),
                None => SymbolMeta::new(Venue::Okx, id, id, b),
            }
        })
        .collect();
    let mut proc = OkxProcessor::from_metas(&metas, channels, book);
    let shared: SharedInstruments = Arc::new(Mutex::new(cache));
    proc.attach_instruments(shared);
    Setup {
        proc: Box::new(proc),
        snapshots,
    }
}

/// Feed the capture's received frames through the processor, serving recorded REST answers.
fn drive<'a>(
    venue: Venue,
    mut proc: Box<dyn ExchangeProcessor>,
    snapshots: &mut HashMap<String, VecDeque<(i64, String)>>,
    lines: impl Iterator<Item = &'a str>,
) -> ReplayOutput {
    let mut events = Vec::new();
    let mut actions = Vec::new();
    // requested snapshots waiting for their recorded time: (ts, symbol index, body)
    let mut pending: Vec<(i64, usize, String)> = Vec::new();
    let mut skipped = 0u64;
    let mut unanswered = 0u64;
    let mut frames = 0u64;
    let mut last_ts = 0i64;

    let mut not_sent = 0u64;
    let mut instruments_unanswered = 0u64;
    let mut serve = |proc: &mut dyn ExchangeProcessor,
                     actions: &mut Vec<Action>,
                     pending: &mut Vec<(i64, usize, String)>,
                     events: &mut Vec<Event>,
                     now: i64| {
        for a in actions.drain(..) {
            let idx = match a {
                Action::FetchSnapshot(idx) => idx,
                Action::FetchInstrument(native) => {
                    // the recorded reference data is all there is
                    instruments_unanswered += 1;
                    proc.on_instrument(&native, 404, "", now, events);
                    continue;
                }
                // a recording cannot be talked to: resubscriptions and reconnects are counted
                Action::Send(_) | Action::Reconnect => {
                    not_sent += 1;
                    continue;
                }
            };
            let native = proc
                .symbols()
                .get(idx)
                .map(|m| m.native.to_string())
                .unwrap_or_default();
            let queue = snapshots.entry(native).or_default();
            // the first recorded answer at or after the request, else the oldest unused one
            let pos = queue.iter().position(|(ts, _)| *ts >= now).unwrap_or(0);
            match queue.remove(pos) {
                Some((ts, body)) => pending.push((ts.max(now), idx, body)),
                None => {
                    unanswered += 1;
                    proc.on_snapshot_failed(idx, 0, 1, now, events);
                }
            }
        }
    };

    for line in lines {
        if line.is_empty() || line.contains(" <- ") {
            continue; // sent frames (subscriptions, pings)
        }
        let Some((ts, frame)) = line.split_once(": ") else {
            skipped += 1;
            continue;
        };
        let Some(ts) = parse_ts_ns(ts) else {
            skipped += 1;
            continue;
        };
        // deliver recorded snapshots whose time has come, in time order
        loop {
            pending.sort_by_key(|(t, _, _)| std::cmp::Reverse(*t));
            match pending.last() {
                Some((t, _, _)) if *t <= ts => {
                    if let Some((t, idx, body)) = pending.pop() {
                        proc.on_snapshot(idx, &body, t, &mut events, &mut actions);
                        serve(proc.as_mut(), &mut actions, &mut pending, &mut events, t);
                    }
                }
                _ => break,
            }
        }
        frames += 1;
        last_ts = ts;
        proc.on_frame(frame, ts, &mut events, &mut actions);
        serve(proc.as_mut(), &mut actions, &mut pending, &mut events, ts);
    }
    // answers recorded after the last frame (bounded: each recorded answer is used once)
    while !pending.is_empty() {
        pending.sort_by_key(|(t, _, _)| std::cmp::Reverse(*t));
        if let Some((t, idx, body)) = pending.pop() {
            proc.on_snapshot(idx, &body, t.max(last_ts), &mut events, &mut actions);
            serve(proc.as_mut(), &mut actions, &mut pending, &mut events, t);
        }
    }
    let mut counters = proc.counters();
    counters.push(("frames", frames));
    counters.push(("lines_skipped", skipped));
    counters.push(("snapshots_unanswered", unanswered));
    counters.push(("requests_not_sent", not_sent));
    counters.push(("instruments_unanswered", instruments_unanswered));
    ReplayOutput {
        venue,
        symbols: proc.symbols().to_vec(),
        events,
        counters,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_parse_exactly() {
        assert_eq!(
            parse_ts_ns("1633998512.0633569"),
            Some(1_633_998_512_063_356_900)
        );
        assert_eq!(parse_ts_ns("1633998512"), Some(1_633_998_512_000_000_000));
        assert_eq!(parse_ts_ns("x"), None);
    }

    fn captures() -> Option<PathBuf> {
        let dir = std::env::var_os("XTRADER_CAPTURES").map_or_else(
            || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data/captures"),
            PathBuf::from,
        );
        if dir.join("BINANCE_FUTURES.ws.1.0").is_file() {
            return Some(dir);
        }
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "captures not found at {} (CI=true: not skipping)",
            dir.display()
        );
        eprintln!("skipping: captures not found at {}", dir.display());
        None
    }

    fn counter(out: &ReplayOutput, name: &str) -> u64 {
        out.counters
            .iter()
            .find(|(k, _)| *k == name)
            .map_or(0, |(_, v)| *v)
    }

    #[test]
    fn futures_captures_replay_with_the_documented_counts() {
        let Some(dir) = captures() else { return };
        // exchanges.md 3.4: USD-M 752 applied / 12 dropped, COIN-M 1788 / 259, no gaps
        for (name, venue, applied, dropped, symbols) in [
            ("BINANCE_FUTURES", Venue::BinanceUsdm, 752, 12, 4),
            ("BINANCE_DELIVERY", Venue::BinanceCoinm, 1788, 259, 10),
        ] {
            let ws = dir.join(format!("{name}.ws.1.0"));
            let rest = [
                dir.join(format!("{name}.http.0.0")),
                dir.join(format!("{name}.0")),
            ];
            let out = replay_cryptofeed(&ws, &rest, None).unwrap();
            assert_eq!(out.venue, venue);
            assert_eq!(counter(&out, "gaps"), 0, "{name}");
            assert_eq!(counter(&out, "snapshots"), symbols, "{name}");
            assert_eq!(
                counter(&out, "book_updates") - counter(&out, "snapshots"),
                applied,
                "{name}"
            );
            assert_eq!(counter(&out, "diffs_dropped"), dropped, "{name}");
            assert_eq!(counter(&out, "parse_errors"), 0, "{name}");
            let sizes: Vec<f64> = out.symbols.iter().map(|m| m.contract_size).collect();
            if venue == Venue::BinanceCoinm {
                assert!(out.symbols.iter().any(|m| &*m.symbol == "BTC-USD-20211231"));
                assert!(sizes.contains(&100.0) && sizes.contains(&10.0));
            } else {
                assert!(out.symbols.iter().any(|m| &*m.symbol == "SUSHI-USDT-PERP"));
                assert!(sizes.iter().all(|s| *s == 1.0));
            }
        }
    }

    #[test]
    fn venue_and_streams_from_url() {
        let url = "wss://stream.binance.com:9443/stream?streams=nknusdt@depth@100ms/blzeth@bookTicker/nknusdt@aggTrade/runeeur@kline_1m";
        assert_eq!(venue_of(url), Some(Venue::Binance));
        assert_eq!(
            venue_of("wss://stream.binance.us:9443/stream"),
            Some(Venue::BinanceUs)
        );
        assert_eq!(
            venue_of("wss://ws.okx.com:8443/ws/v5/public"),
            Some(Venue::Okx)
        );
        assert_eq!(
            venue_of("wss://ws.okex.com:8443/ws/v5/public"),
            Some(Venue::Okx)
        );
        assert_eq!(venue_of("wss://stream.bybit.com/v5/public/spot"), None);
        let (syms, ch) = streams_in_url(url);
        assert_eq!(syms, vec!["NKNUSDT", "BLZETH"]);
        assert_eq!(ch, Channels::ALL);
    }
}
