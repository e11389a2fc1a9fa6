//! Binance frame processing: combined-stream frames to normalized events, and per-symbol book
//! synchronisation (buffer diffs, apply the REST snapshot, check the chain on every diff, and
//! resync only the symbol that broke). exchanges.md §2.6 and §3.4.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use parking_lot::RwLock;

use super::book::{Market, SyncRules, Verdict};
use super::messages::{
    BinanceAggTrade, BinanceBookTicker, BinanceDepthSnapshot, BinanceDepthUpdate, BinanceEnvelope,
    BinanceExchangeInfo, BinanceTrade,
};
use crate::exchanges::{Action, Channels, ExchangeProcessor};
use crate::model::{
    Bbo, BookDelta, BookState, Event, Instrument, OrderBook, Side, Status, StatusKind,
    StatusReason, SymbolMeta, Trade, Venue,
};

const MS: i64 = 1_000_000;

/// Diffs buffered per symbol while waiting for a snapshot; past it the oldest are dropped
/// (safe: a snapshot newer than them makes them droppable anyway; an older one is refetched).
pub const DEFAULT_BUFFER_CAP: usize = 4096;

/// Error statuses per second a processor may emit; the rest are counted, not sent.
const STATUS_BUDGET_PER_S: u32 = 20;

#[inline]
fn num(s: &str) -> Option<f64> {
    fast_float2::parse::<f64, _>(s).ok()
}

/// Venue milliseconds to nanoseconds; `None` when out of range (a malformed frame).
#[inline]
fn ms_to_ns(ms: i64) -> Option<i64> {
    ms.checked_mul(MS)
}

/// A price from the wire: finite and positive, else the frame is malformed.
#[inline]
fn wire_price(s: &str) -> Option<f64> {
    num(s).filter(|v| v.is_finite() && *v > 0.0)
}

/// A size from the wire: finite and not negative (0 removes a level), else malformed.
#[inline]
fn wire_size(s: &str) -> Option<f64> {
    num(s).filter(|v| v.is_finite() && *v >= 0.0)
}

/// A depth diff with its levels parsed, kept while a symbol waits for its snapshot.
#[derive(Debug, Clone)]
struct Diff {
    first_id: u64,
    last_id: u64,
    prev_last_id: Option<u64>,
    ts_exchange: i64,
    ts_recv: i64,
    bids: Vec<(f64, f64)>,
    asks: Vec<(f64, f64)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Buffering diffs until a snapshot arrives.
    AwaitSnapshot,
    /// Snapshot applied; the next diff must satisfy the first-event rule.
    AwaitFirst,
    /// Chained.
    Live,
}

#[derive(Debug)]
struct SymState {
    phase: Phase,
    buffer: VecDeque<Diff>,
    snapshot_pending: bool,
    ever_live: bool,
    last_id: u64,
}

/// Counters kept by the processor (exported as metrics and `stats`).
#[derive(Debug, Default, Clone)]
pub struct Counters {
    /// Frames handled.
    pub messages: u64,
    /// Frame bytes handled.
    pub bytes: u64,
    /// Trades emitted.
    pub trades: u64,
    /// BBO events emitted.
    pub bbo: u64,
    /// Book updates emitted (snapshots included).
    pub book_updates: u64,
    /// Diffs dropped as already contained in a snapshot.
    pub diffs_dropped: u64,
    /// Diffs dropped because the sync buffer was full.
    pub buffer_dropped: u64,
    /// Sequence gaps detected.
    pub gaps: u64,
    /// Resyncs started (gaps, too-old snapshots, disconnects).
    pub resyncs: u64,
    /// Snapshots applied.
    pub snapshots: u64,
    /// Snapshot requests that failed.
    pub snapshot_failures: u64,
    /// Malformed frames.
    pub parse_errors: u64,
    /// Frames of unknown event types or streams.
    pub unknown_events: u64,
    /// Frames for symbols not subscribed.
    pub unknown_symbols: u64,
    /// Venue error replies.
    pub venue_errors: u64,
    /// Frames of streams the venue offers but xtrader does not normalize (klines, tickers).
    pub ignored_streams: u64,
    /// Error statuses not emitted because of the per-second budget.
    pub statuses_suppressed: u64,
}

/// Binance processor for one connection's symbols.
#[derive(Debug)]
pub struct BinanceProcessor {
    venue: Venue,
    rules: SyncRules,
    channels: Channels,
    metas: Vec<Arc<SymbolMeta>>,
    states: Vec<SymState>,
    by_native: HashMap<Box<str>, usize>,
    buffer_cap: usize,
    budget_window: i64,
    budget_used: u32,
    /// Counters.
    pub counters: Counters,
}

/// Instruments listed in an `exchangeInfo` body.
///
/// # Errors
/// The parser's byte offset when the body is not a valid `exchangeInfo`.
pub fn instruments_from_exchange_info(body: &str) -> Result<Vec<Instrument>, usize> {
    let info: BinanceExchangeInfo = sonic_rs::from_str(body).map_err(|e| e.offset())?;
    Ok(info
        .symbols
        .iter()
        .map(|s| {
            let mut tick = 0.0;
            let mut step = 0.0;
            for f in &s.filters {
                match f.filter_type {
                    "PRICE_FILTER" => tick = f.tick_size.and_then(num).unwrap_or(0.0),
                    "LOT_SIZE" => step = f.step_size.and_then(num).unwrap_or(0.0),
                    _ => {}
                }
            }
            let mut inst = Instrument::spot(s.symbol, s.base_asset, s.quote_asset);
            inst.tick_size = tick;
            inst.step_size = step;
            inst.status = s.status.unwrap_or("").to_string();
            inst
        })
        .collect())
}

impl BinanceProcessor {
    /// A processor for these (native, normalized) symbols and channels.
    #[must_use]
    pub fn new(
        venue: Venue,
        market: Market,
        symbols: &[(String, String)],
        channels: Channels,
    ) -> Self {
        let mut p = Self {
            venue,
            rules: SyncRules::new(market),
            channels,
            metas: Vec::new(),
            states: Vec::new(),
            by_native: HashMap::new(),
            buffer_cap: DEFAULT_BUFFER_CAP,
            budget_window: 0,
            budget_used: 0,
            counters: Counters::default(),
        };
        for (native, symbol) in symbols {
            p.add_symbol(native, symbol);
        }
        p
    }

    /// A processor over symbols interned by the caller (the feed shares them between sockets).
    #[must_use]
    pub fn from_metas(
        venue: Venue,
        market: Market,
        metas: &[Arc<SymbolMeta>],
        channels: Channels,
    ) -> Self {
        let mut p = Self::new(venue, market, &[], channels);
        for m in metas {
            p.add_meta(m.clone());
        }
        p
    }

    /// Register a symbol (replay registers what the capture contains); returns its index.
    pub fn add_symbol(&mut self, native: &str, symbol: &str) -> usize {
        if let Some(&i) = self.by_native.get(native) {
            return i;
        }
        let book = self
            .channels
            .book
            .then(|| Arc::new(RwLock::new(OrderBook::new())));
        self.add_meta(SymbolMeta::new(self.venue, native, symbol, book))
    }

    /// Register an interned symbol; returns its index.
    pub fn add_meta(&mut self, meta: Arc<SymbolMeta>) -> usize {
        if let Some(&i) = self.by_native.get(&*meta.native) {
            return i;
        }
        let native: Box<str> = meta.native.clone();
        let idx = self.metas.len();
        self.metas.push(meta);
        self.states.push(SymState {
            phase: Phase::AwaitSnapshot,
            buffer: VecDeque::new(),
            snapshot_pending: false,
            ever_live: false,
            last_id: 0,
        });
        self.by_native.insert(native, idx);
        idx
    }

    /// Index of a native symbol.
    #[must_use]
    pub fn index_of(&self, native: &str) -> Option<usize> {
        self.by_native.get(native).copied()
    }

    /// Bound on buffered diffs per symbol.
    pub fn set_buffer_cap(&mut self, cap: usize) {
        self.buffer_cap = cap.max(1);
    }

    fn status(&self, sym: Option<usize>, kind: StatusKind, reason: StatusReason, ts: i64) -> Event {
        let meta = sym.and_then(|i| self.metas.get(i).cloned());
        let state = meta
            .as_ref()
            .and_then(|m| m.book.as_ref().map(|b| b.read().state));
        Event::Status(Status {
            venue: self.venue,
            sym: meta,
            kind,
            reason,
            state,
            ts,
        })
    }

    /// Emit an error status unless this second's budget is spent (then only count it).
    fn error_status(
        &mut self,
        sym: Option<usize>,
        reason: StatusReason,
        ts: i64,
        out: &mut Vec<Event>,
    ) {
        let window = ts / 1_000_000_000;
        if window != self.budget_window {
            self.budget_window = window;
            self.budget_used = 0;
        }
        if self.budget_used < STATUS_BUDGET_PER_S {
            self.budget_used += 1;
            out.push(self.status(sym, StatusKind::Error, reason, ts));
        } else {
            self.counters.statuses_suppressed += 1;
        }
    }

    fn set_state(&self, idx: usize, state: BookState) {
        if let Some(book) = self.metas.get(idx).and_then(|m| m.book.as_ref()) {
            book.write().state = state;
        }
    }

    fn malformed(&mut self, frame: &str, offset: usize, ts: i64, out: &mut Vec<Event>) {
        self.counters.parse_errors += 1;
        self.error_status(
            None,
            StatusReason::MalformedFrame {
                len: frame.len(),
                offset,
            },
            ts,
            out,
        );
    }

    fn lookup(&mut self, native: &str, ts: i64, out: &mut Vec<Event>) -> Option<usize> {
        let idx = self.by_native.get(native).copied();
        if idx.is_none() {
            self.counters.unknown_symbols += 1;
            self.error_status(
                None,
                StatusReason::UnknownSymbol {
                    symbol: native.into(),
                },
                ts,
                out,
            );
        }
        idx
    }

    fn on_depth(
        &mut self,
        data: &str,
        frame: &str,
        ts_recv: i64,
        out: &mut Vec<Event>,
        actions: &mut Vec<Action>,
    ) {
        let d: BinanceDepthUpdate = match sonic_rs::from_str(data) {
            Ok(d) => d,
            Err(e) => return self.malformed(frame, e.offset(), ts_recv, out),
        };
        let Some(idx) = self.lookup(d.symbol, ts_recv, out) else {
            return;
        };
        let (Some(bids), Some(asks), Some(ts_exchange)) = (
            parse_levels(&d.bids),
            parse_levels(&d.asks),
            ms_to_ns(d.tx_time.unwrap_or(d.event_time)),
        ) else {
            return self.malformed(frame, 0, ts_recv, out);
        };
        let diff = Diff {
            first_id: d.first_id,
            last_id: d.last_id,
            prev_last_id: d.prev_last_id,
            ts_exchange,
            ts_recv,
            bids,
            asks,
        };
        self.on_diff(idx, diff, out, actions);
    }

    fn on_diff(&mut self, idx: usize, diff: Diff, out: &mut Vec<Event>, actions: &mut Vec<Action>) {
        let Some(st) = self.states.get_mut(idx) else {
            return;
        };
        match st.phase {
            Phase::AwaitSnapshot => {
                if st.buffer.len() >= self.buffer_cap {
                    st.buffer.pop_front();
                    self.counters.buffer_dropped += 1;
                }
                st.buffer.push_back(diff);
                if !st.snapshot_pending {
                    st.snapshot_pending = true;
                    actions.push(Action::FetchSnapshot(idx));
                }
            }
            Phase::AwaitFirst | Phase::Live => self.apply_chained(idx, diff, out, actions),
        }
    }

    /// Check one diff against the chain and apply it, or start a resync.
    fn apply_chained(
        &mut self,
        idx: usize,
        diff: Diff,
        out: &mut Vec<Event>,
        actions: &mut Vec<Action>,
    ) {
        let Some(st) = self.states.get(idx) else {
            return;
        };
        let verdict = if st.phase == Phase::AwaitFirst {
            self.rules.first(st.last_id, diff.first_id, diff.last_id)
        } else {
            self.rules
                .next(st.last_id, diff.first_id, diff.last_id, diff.prev_last_id)
        };
        match verdict {
            Verdict::Drop => self.counters.diffs_dropped += 1,
            Verdict::Apply => {
                let was = st.phase;
                let ever_live = st.ever_live;
                self.apply_diff(idx, &diff);
                if was == Phase::AwaitFirst {
                    if let Some(st) = self.states.get_mut(idx) {
                        st.phase = Phase::Live;
                        st.ever_live = true;
                    }
                    self.set_state(idx, BookState::Live);
                    let kind = if ever_live {
                        StatusKind::Recovered
                    } else {
                        StatusKind::Live
                    };
                    out.push(self.status(Some(idx), kind, StatusReason::None, diff.ts_recv));
                }
                self.counters.book_updates += 1;
                out.push(Event::Book(BookDelta {
                    sym: self.metas[idx].clone(),
                    ts_exchange: diff.ts_exchange,
                    ts_recv: diff.ts_recv,
                    seq: diff.last_id,
                    is_snapshot: false,
                    bids: diff.bids,
                    asks: diff.asks,
                }));
            }
            Verdict::Gap(expected, got) => {
                self.counters.gaps += 1;
                self.start_resync(
                    idx,
                    StatusReason::Gap { expected, got },
                    diff.ts_recv,
                    out,
                    actions,
                );
                if let Some(st) = self.states.get_mut(idx) {
                    // the diff that revealed the gap is the first of the new buffer
                    st.buffer.push_back(diff);
                }
            }
        }
    }

    fn apply_diff(&mut self, idx: usize, diff: &Diff) {
        if let Some(st) = self.states.get_mut(idx) {
            st.last_id = diff.last_id;
        }
        if let Some(book) = self.metas.get(idx).and_then(|m| m.book.as_ref()) {
            let mut b = book.write();
            for &(p, s) in &diff.bids {
                b.set_bid(p, s);
            }
            for &(p, s) in &diff.asks {
                b.set_ask(p, s);
            }
            b.seq = diff.last_id;
            b.ts_exchange = diff.ts_exchange;
            b.ts_recv = diff.ts_recv;
        }
    }

    fn start_resync(
        &mut self,
        idx: usize,
        reason: StatusReason,
        ts: i64,
        out: &mut Vec<Event>,
        actions: &mut Vec<Action>,
    ) {
        self.counters.resyncs += 1;
        let Some(st) = self.states.get_mut(idx) else {
            return;
        };
        st.phase = Phase::AwaitSnapshot;
        st.buffer.clear();
        let request = !st.snapshot_pending;
        st.snapshot_pending = true;
        let state = if st.ever_live {
            BookState::Resyncing
        } else {
            BookState::Syncing
        };
        self.set_state(idx, state);
        out.push(self.status(Some(idx), StatusKind::Resync, reason, ts));
        if request {
            actions.push(Action::FetchSnapshot(idx));
        }
    }

    fn on_trade(&mut self, data: &str, frame: &str, agg: bool, ts_recv: i64, out: &mut Vec<Event>) {
        let parsed = if agg {
            sonic_rs::from_str::<BinanceAggTrade>(data).map(|t| {
                (
                    t.symbol,
                    t.id,
                    t.price,
                    t.qty,
                    t.trade_time,
                    t.buyer_is_maker,
                )
            })
        } else {
            sonic_rs::from_str::<BinanceTrade>(data).map(|t| {
                (
                    t.symbol,
                    t.id,
                    t.price,
                    t.qty,
                    t.trade_time,
                    t.buyer_is_maker,
                )
            })
        };
        let (symbol, id, price, qty, time, buyer_is_maker) = match parsed {
            Ok(t) => t,
            Err(e) => return self.malformed(frame, e.offset(), ts_recv, out),
        };
        let Some(idx) = self.lookup(symbol, ts_recv, out) else {
            return;
        };
        let (Some(price), Some(size), Some(ts_exchange)) =
            (wire_price(price), wire_size(qty), ms_to_ns(time))
        else {
            return self.malformed(frame, 0, ts_recv, out);
        };
        self.counters.trades += 1;
        out.push(Event::Trade(Trade {
            sym: self.metas[idx].clone(),
            ts_exchange,
            ts_recv,
            price,
            size,
            // the buyer was the maker, so the seller took liquidity
            side: if buyer_is_maker {
                Side::Sell
            } else {
                Side::Buy
            },
            trade_id: id,
        }));
    }

    fn on_book_ticker(&mut self, data: &str, frame: &str, ts_recv: i64, out: &mut Vec<Event>) {
        let t: BinanceBookTicker = match sonic_rs::from_str(data) {
            Ok(t) => t,
            Err(e) => return self.malformed(frame, e.offset(), ts_recv, out),
        };
        let Some(idx) = self.lookup(t.symbol, ts_recv, out) else {
            return;
        };
        let (Some(bp), Some(bs), Some(ap), Some(az), Some(ts_exchange)) = (
            wire_price(t.bid_price),
            wire_size(t.bid_qty),
            wire_price(t.ask_price),
            wire_size(t.ask_qty),
            ms_to_ns(t.tx_time.or(t.event_time).unwrap_or(0)),
        ) else {
            return self.malformed(frame, 0, ts_recv, out);
        };
        self.counters.bbo += 1;
        out.push(Event::Bbo(Bbo {
            sym: self.metas[idx].clone(),
            ts_exchange,
            ts_recv,
            bid_price: bp,
            bid_size: bs,
            ask_price: ap,
            ask_size: az,
        }));
    }

    fn on_reply(&mut self, env: &BinanceEnvelope<'_>, ts_recv: i64, out: &mut Vec<Event>) {
        if let Some(code) = env.code {
            self.counters.venue_errors += 1;
            let msg: Box<str> = env.msg.as_deref().unwrap_or("").into();
            self.error_status(
                None,
                StatusReason::SubscribeError { code, msg },
                ts_recv,
                out,
            );
        } else {
            out.push(self.status(None, StatusKind::Subscribed, StatusReason::None, ts_recv));
        }
    }
}

fn parse_levels(levels: &[[&str; 2]]) -> Option<Vec<(f64, f64)>> {
    let mut v = Vec::with_capacity(levels.len());
    for [p, q] in levels {
        v.push((wire_price(p)?, wire_size(q)?));
    }
    Some(v)
}

/// Binance streams that are valid but not normalized by this processor.
const IGNORED_STREAMS: [&str; 7] = [
    "ticker",
    "miniTicker",
    "avgPrice",
    "rollingWindowTicker",
    "markPrice",
    "forceOrder",
    "continuousKline",
];

/// Stream kind from a stream name's suffix (`nknusdt@depth@100ms` to `depth`).
fn stream_kind(stream: &str) -> &str {
    let rest = stream.split_once('@').map_or("", |(_, r)| r);
    rest.split_once('@').map_or(rest, |(k, _)| k)
}

impl ExchangeProcessor for BinanceProcessor {
    fn on_frame(
        &mut self,
        frame: &str,
        ts_recv: i64,
        out: &mut Vec<Event>,
        actions: &mut Vec<Action>,
    ) {
        self.counters.messages += 1;
        self.counters.bytes += frame.len() as u64;
        let env: BinanceEnvelope = match sonic_rs::from_str(frame) {
            Ok(e) => e,
            Err(e) => return self.malformed(frame, e.offset(), ts_recv, out),
        };
        let (Some(stream), Some(data)) = (env.stream, env.data.as_ref()) else {
            if env.e == Some("serverShutdown") {
                out.push(self.status(
                    None,
                    StatusKind::Error,
                    StatusReason::ServerShutdown,
                    ts_recv,
                ));
                return;
            }
            if env.id.is_some() || env.code.is_some() {
                return self.on_reply(&env, ts_recv, out);
            }
            self.counters.unknown_events += 1;
            let name: Box<str> = env.e.unwrap_or("(no stream)").into();
            return self.error_status(None, StatusReason::UnknownEvent { name }, ts_recv, out);
        };
        let data = data.as_raw_str();
        match stream_kind(stream) {
            "depth" => self.on_depth(data, frame, ts_recv, out, actions),
            "trade" => self.on_trade(data, frame, false, ts_recv, out),
            "aggTrade" => self.on_trade(data, frame, true, ts_recv, out),
            "bookTicker" => self.on_book_ticker(data, frame, ts_recv, out),
            // offered by the venue, not part of the normalized model (yet): counted, not errors
            k if IGNORED_STREAMS.contains(&k)
                || k.starts_with("kline_")
                || k.starts_with("depth") =>
            {
                self.counters.ignored_streams += 1;
            }
            _ if stream == "!serverShutdown" => {
                out.push(self.status(
                    None,
                    StatusKind::Error,
                    StatusReason::ServerShutdown,
                    ts_recv,
                ));
            }
            _ => {
                self.counters.unknown_events += 1;
                let name: Box<str> = stream.into();
                self.error_status(None, StatusReason::UnknownEvent { name }, ts_recv, out);
            }
        }
    }

    fn on_snapshot(
        &mut self,
        idx: usize,
        body: &str,
        ts_recv: i64,
        out: &mut Vec<Event>,
        actions: &mut Vec<Action>,
    ) {
        let snap: BinanceDepthSnapshot = match sonic_rs::from_str(body) {
            Ok(s) => s,
            Err(e) => {
                self.malformed(body, e.offset(), ts_recv, out);
                return self.on_snapshot_failed(idx, 200, 0, ts_recv, out);
            }
        };
        let (Some(bids), Some(asks)) = (parse_levels(&snap.bids), parse_levels(&snap.asks)) else {
            self.malformed(body, 0, ts_recv, out);
            return self.on_snapshot_failed(idx, 200, 0, ts_recv, out);
        };
        let Some(st) = self.states.get_mut(idx) else {
            return;
        };
        if st.phase != Phase::AwaitSnapshot {
            return; // a late answer for a book that is already synced
        }
        st.snapshot_pending = false;
        let last = snap.last_update_id;
        if let Some(first) = st.buffer.front() {
            if self.rules.snapshot_too_old(last, first.first_id) {
                let first_buffered = first.first_id;
                st.snapshot_pending = true;
                self.counters.resyncs += 1;
                out.push(self.status(
                    Some(idx),
                    StatusKind::Resync,
                    StatusReason::SnapshotTooOld {
                        snapshot: last,
                        first_buffered,
                    },
                    ts_recv,
                ));
                actions.push(Action::FetchSnapshot(idx));
                return;
            }
        }
        st.phase = Phase::AwaitFirst;
        st.last_id = last;
        let buffered = std::mem::take(&mut st.buffer);
        // an out-of-range time in a snapshot is not worth rejecting the book over
        let ts_exchange = ms_to_ns(snap.tx_time.unwrap_or(0)).unwrap_or(0);
        if let Some(book) = self.metas.get(idx).and_then(|m| m.book.as_ref()) {
            let mut b = book.write();
            b.clear();
            for &(p, s) in &bids {
                b.set_bid(p, s);
            }
            for &(p, s) in &asks {
                b.set_ask(p, s);
            }
            b.seq = last;
            b.ts_exchange = ts_exchange;
            b.ts_recv = ts_recv;
        }
        self.counters.snapshots += 1;
        self.counters.book_updates += 1;
        out.push(Event::Book(BookDelta {
            sym: self.metas[idx].clone(),
            ts_exchange,
            ts_recv,
            seq: last,
            is_snapshot: true,
            bids,
            asks,
        }));
        for diff in buffered {
            let phase = self.states.get(idx).map(|s| s.phase);
            if phase == Some(Phase::AwaitSnapshot) {
                // a gap inside the buffer: keep buffering behind the new request
                if let Some(st) = self.states.get_mut(idx) {
                    st.buffer.push_back(diff);
                }
            } else {
                self.apply_chained(idx, diff, out, actions);
            }
        }
    }

    fn on_snapshot_failed(
        &mut self,
        idx: usize,
        http_status: u16,
        attempt: u32,
        ts: i64,
        out: &mut Vec<Event>,
    ) {
        self.counters.snapshot_failures += 1;
        if let Some(st) = self.states.get_mut(idx) {
            // the feed retries; keep the pending flag so diffs don't trigger extra requests
            st.snapshot_pending = true;
        }
        self.error_status(
            Some(idx),
            StatusReason::SnapshotFailed {
                http_status,
                attempt,
            },
            ts,
            out,
        );
    }

    fn on_disconnect(&mut self, ts: i64, out: &mut Vec<Event>) {
        for idx in 0..self.states.len() {
            let Some(st) = self.states.get_mut(idx) else {
                continue;
            };
            st.phase = Phase::AwaitSnapshot;
            st.buffer.clear();
            st.snapshot_pending = false;
            if self.metas.get(idx).is_some_and(|m| m.book.is_some()) {
                self.set_state(idx, BookState::Stale);
                out.push(self.status(
                    Some(idx),
                    StatusKind::Stale,
                    StatusReason::Closed { code: 0 },
                    ts,
                ));
            }
        }
    }

    fn symbols(&self) -> &[Arc<SymbolMeta>] {
        &self.metas
    }

    fn counters(&self) -> Vec<(&'static str, u64)> {
        let c = &self.counters;
        vec![
            ("messages", c.messages),
            ("bytes", c.bytes),
            ("trades", c.trades),
            ("bbo", c.bbo),
            ("book_updates", c.book_updates),
            ("diffs_dropped", c.diffs_dropped),
            ("buffer_dropped", c.buffer_dropped),
            ("gaps", c.gaps),
            ("resyncs", c.resyncs),
            ("snapshots", c.snapshots),
            ("snapshot_failures", c.snapshot_failures),
            ("parse_errors", c.parse_errors),
            ("unknown_events", c.unknown_events),
            ("unknown_symbols", c.unknown_symbols),
            ("venue_errors", c.venue_errors),
            ("ignored_streams", c.ignored_streams),
            ("statuses_suppressed", c.statuses_suppressed),
        ]
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod fuzz;
