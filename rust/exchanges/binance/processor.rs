//! Binance frame processing: combined-stream frames to normalized events for spot, USD-M and
//! COIN-M. This file owns the processor, frame dispatch and control replies; trades and bbo
//! live in `streams.rs`, book synchronisation in `sync.rs` (exchanges.md 2.6 and 3.4), the
//! futures streams (mark price, liquidations, open interest) and the silent-stream watchdog
//! in `futures.rs`, the per-symbol state and counters in `state.rs`. COIN-M sizes arrive in contracts and are multiplied by the symbol's contract
//! size (exchanges.md 3.6) wherever a size appears.

use std::collections::VecDeque;
use std::sync::Arc;

use parking_lot::RwLock;

use super::book::{Market, SyncRules};
use super::messages::BinanceEnvelope;
use super::streams::parse_trade;
#[cfg(test)]
pub(super) use crate::exchanges::STATUS_BUDGET_PER_S;
use crate::exchanges::{Action, Channels, ExchangeProcessor, StatusBudget};
use crate::model::hash::FastMap;
use crate::model::{
    BookState, Event, OrderBook, Status, StatusKind, StatusReason, SymbolMeta, Venue,
};

pub use super::instruments::instruments_from_exchange_info;
pub use super::state::Counters;
pub(super) use super::state::{Dedupe, SymState, D_BBO, D_LIQ, D_MARK, D_TRADE};
pub(super) use super::sync::Phase;

pub(super) const MS: i64 = 1_000_000;

/// Diffs buffered per symbol while waiting for a snapshot; past it the oldest are dropped
/// (safe: a snapshot newer than them makes them droppable anyway; an older one is refetched).
pub const DEFAULT_BUFFER_CAP: usize = 4096;

/// Venue milliseconds to nanoseconds; `None` when out of range (a malformed frame).
#[inline]
pub(super) fn ms_to_ns(ms: i64) -> Option<i64> {
    ms.checked_mul(MS)
}

pub(super) use crate::exchanges::wire::{num, wire_price, wire_size};

/// Binance processor for one connection's symbols.
#[derive(Debug)]
pub struct BinanceProcessor {
    pub(super) venue: Venue,
    pub(super) rules: SyncRules,
    pub(super) channels: Channels,
    pub(super) metas: Vec<Arc<SymbolMeta>>,
    pub(super) states: Vec<SymState>,
    by_native: FastMap<Box<str>, usize>,
    pub(super) buffer_cap: usize,
    budget: StatusBudget,
    /// A rollover overlap is in progress: two sockets feed this processor.
    pub(super) overlap: bool,
    /// Duplicate filtering stays on until this time (ns) after an overlap ended: a slower
    /// new socket may still repeat what the old one delivered last. 0 = off.
    pub(super) dedupe_until: i64,
    /// The frame being handled came from the overlap's new socket.
    pub(super) from_next: bool,
    /// Frames received from the overlap's new socket.
    pub(super) next_frames: u64,
    /// Silent-stream deadline for book and bbo streams, ns (0 = watchdog off).
    pub(super) silent_after_ns: i64,
    /// When the last frame's parse finished (a metrics stamp, never part of an event).
    pub(super) parsed_at: i64,
    /// Counters.
    pub counters: Counters,
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
            by_native: FastMap::default(),
            buffer_cap: DEFAULT_BUFFER_CAP,
            budget: StatusBudget::default(),
            overlap: false,
            dedupe_until: 0,
            from_next: false,
            next_frames: 0,
            silent_after_ns: 0,
            parsed_at: 0,
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
        self.add_symbol_sized(native, symbol, 1.0)
    }

    /// Register a symbol whose wire sizes are multiplied by `contract_size`.
    pub fn add_symbol_sized(&mut self, native: &str, symbol: &str, contract_size: f64) -> usize {
        if let Some(&i) = self.by_native.get(native) {
            return i;
        }
        let book = self
            .channels
            .book
            .then(|| Arc::new(RwLock::new(OrderBook::new())));
        self.add_meta(SymbolMeta::with_contract_size(
            self.venue,
            native,
            symbol,
            book,
            contract_size,
        ))
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
            ahead: VecDeque::new(),
            next_in_sync: false,
            dedupe: Default::default(),
            last_seen: [0; 3],
            silent_reported: [false; 3],
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

    /// Whether frames received at `ts` go through the duplicate filters.
    #[inline]
    pub(super) fn dedupe_on(&self, ts: i64) -> bool {
        self.overlap || ts < self.dedupe_until
    }

    /// Wire-size multiplier of a symbol (1 unless COIN-M).
    #[inline]
    pub(super) fn size_mult(&self, idx: usize) -> f64 {
        self.metas.get(idx).map_or(1.0, |m| m.contract_size)
    }

    pub(super) fn status(
        &self,
        sym: Option<usize>,
        kind: StatusKind,
        reason: StatusReason,
        ts: i64,
    ) -> Event {
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

    /// Emit a status of `kind` unless this second's error budget is spent (then only count it).
    pub(super) fn budgeted_status(
        &mut self,
        sym: Option<usize>,
        kind: StatusKind,
        reason: StatusReason,
        ts: i64,
        out: &mut Vec<Event>,
    ) {
        if self.budget.allow(ts) {
            out.push(self.status(sym, kind, reason, ts));
        } else {
            self.counters.statuses_suppressed += 1;
        }
    }

    pub(super) fn error_status(
        &mut self,
        sym: Option<usize>,
        reason: StatusReason,
        ts: i64,
        out: &mut Vec<Event>,
    ) {
        self.budgeted_status(sym, StatusKind::Error, reason, ts, out);
    }

    pub(super) fn set_state(&self, idx: usize, state: BookState) {
        if let Some(book) = self.metas.get(idx).and_then(|m| m.book.as_ref()) {
            book.write().state = state;
        }
    }

    pub(super) fn malformed(&mut self, frame: &str, offset: usize, ts: i64, out: &mut Vec<Event>) {
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

    pub(super) fn lookup(&mut self, native: &str, ts: i64, out: &mut Vec<Event>) -> Option<usize> {
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

    fn handle_frame(
        &mut self,
        frame: &str,
        ts_recv: i64,
        out: &mut Vec<Event>,
        actions: &mut Vec<Action>,
    ) {
        self.counters.messages += 1;
        self.counters.bytes += frame.len() as u64;
        // One pass for the usual `{"stream":"…","data":{…}}`: the payload is parsed straight
        // from its slice. Anything else, or a payload that does not parse on its own (a frame
        // with fields after `data`, or a broken one), takes the full envelope parse below.
        if let Some((stream, data)) = split_envelope(frame) {
            let kind = stream_kind(stream);
            if NORMALIZED_STREAMS.contains(&kind) {
                self.parsed_at = crate::net::now_ns();
                if self
                    .on_stream(kind, data, frame, ts_recv, out, actions)
                    .is_ok()
                {
                    return;
                }
            }
        }
        let env: BinanceEnvelope = match sonic_rs::from_str(frame) {
            Ok(e) => e,
            Err(e) => return self.malformed(frame, e.offset(), ts_recv, out),
        };
        self.parsed_at = crate::net::now_ns();
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
            k if NORMALIZED_STREAMS.contains(&k) => {
                if let Err(e) = self.on_stream(k, data, frame, ts_recv, out, actions) {
                    // the error's offset is in the payload; the status gives it in the frame
                    let at = start_in(frame, data).saturating_add(e.offset());
                    self.malformed(frame, at, ts_recv, out);
                }
            }
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
}

/// Stream kinds this processor normalizes (see `BinanceProcessor::on_stream`).
const NORMALIZED_STREAMS: [&str; 6] = [
    "depth",
    "trade",
    "aggTrade",
    "bookTicker",
    "markPrice",
    "forceOrder",
];

/// `{"stream":"S","data":D}` split by position: `(S, D)` when the frame starts exactly so,
/// `S` holds no escape, and it ends with the `}` closing the envelope right after `D`. Whether
/// `D` is one JSON value is not checked here: the payload parser refuses trailing text, and
/// the caller falls back to the full parse when it does.
fn split_envelope(frame: &str) -> Option<(&str, &str)> {
    let rest = frame.strip_prefix("{\"stream\":\"")?;
    // one byte scan to the closing quote; an escape in the name leaves it to the full parse
    let end = rest.bytes().position(|b| b == b'"' || b == b'\\')?;
    let (stream, tail) = rest.split_at_checked(end)?;
    let data = tail.strip_prefix("\",\"data\":")?;
    let data = data.strip_suffix('}')?;
    data.starts_with('{').then_some((stream, data))
}

/// Where `part` starts in `whole`, when it is a slice of it (0 when it is not).
fn start_in(whole: &str, part: &str) -> usize {
    let (w, p) = (whole.as_ptr() as usize, part.as_ptr() as usize);
    if p >= w && p + part.len() <= w + whole.len() {
        p - w
    } else {
        0
    }
}

/// Binance streams that are valid but not normalized by this processor.
const IGNORED_STREAMS: [&str; 6] = [
    "ticker",
    "miniTicker",
    "avgPrice",
    "rollingWindowTicker",
    "continuousKline",
    "rpiDepth",
];

/// Stream kind from a stream name's suffix (`nknusdt@depth@100ms` to `depth`).
impl BinanceProcessor {
    /// Parse the payload `data` of a normalized stream `kind` and apply it. Errs (having
    /// changed nothing) only when the payload does not parse.
    fn on_stream(
        &mut self,
        kind: &str,
        data: &str,
        frame: &str,
        ts_recv: i64,
        out: &mut Vec<Event>,
        actions: &mut Vec<Action>,
    ) -> Result<(), sonic_rs::Error> {
        match kind {
            "depth" => self.on_depth(sonic_rs::from_str(data)?, frame, ts_recv, out, actions),
            "trade" => self.on_trade(parse_trade(data, false)?, frame, ts_recv, out),
            "aggTrade" => self.on_trade(parse_trade(data, true)?, frame, ts_recv, out),
            "bookTicker" => self.on_book_ticker(sonic_rs::from_str(data)?, frame, ts_recv, out),
            "markPrice" => self.on_mark_price(sonic_rs::from_str(data)?, frame, ts_recv, out),
            _ => self.on_force_order(sonic_rs::from_str(data)?, frame, ts_recv, out),
        }
        Ok(())
    }
}

fn stream_kind(stream: &str) -> &str {
    // byte scans: `@` is ASCII, so each cut is at a char boundary
    let at = |s: &str| s.bytes().position(|b| b == b'@');
    let rest = at(stream).and_then(|i| stream.get(i + 1..)).unwrap_or("");
    at(rest).and_then(|i| rest.get(..i)).unwrap_or(rest)
}

impl ExchangeProcessor for BinanceProcessor {
    fn on_frame(
        &mut self,
        frame: &str,
        ts_recv: i64,
        out: &mut Vec<Event>,
        actions: &mut Vec<Action>,
    ) {
        self.from_next = false;
        self.handle_frame(frame, ts_recv, out, actions);
    }

    fn on_snapshot(
        &mut self,
        idx: usize,
        body: &str,
        ts_recv: i64,
        out: &mut Vec<Event>,
        actions: &mut Vec<Action>,
    ) {
        self.apply_snapshot(idx, body, ts_recv, out, actions);
    }

    fn resync_book(
        &mut self,
        idx: usize,
        reason: StatusReason,
        ts: i64,
        out: &mut Vec<Event>,
        actions: &mut Vec<Action>,
    ) {
        self.start_resync(idx, reason, ts, out, actions);
    }

    fn parsed_at(&self) -> i64 {
        self.parsed_at
    }

    fn data_cadence(&self) -> Option<std::time::Duration> {
        // futures markPrice@1s pushes every second whatever the market does
        self.channels
            .funding
            .then_some(std::time::Duration::from_secs(1))
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
        self.reset_overlap();
        if !self.channels.book {
            // a socket without depth streams (USD-M /market) owns no book state
            return;
        }
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
            ("funding", c.funding),
            ("liquidations", c.liquidations),
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
            ("overlaps", c.overlaps),
            ("overlap_duplicates", c.overlap_duplicates),
            ("overlap_parked", c.overlap_parked),
            ("silent_streams", c.silent_streams),
        ]
    }

    fn on_subscribed(&mut self, ts: i64, silent_after: std::time::Duration) {
        self.arm_watchdog(ts, silent_after);
    }

    fn on_tick(&mut self, ts: i64, out: &mut Vec<Event>, _actions: &mut Vec<Action>) {
        self.check_silence(ts, out);
        self.expire_dedupe(ts);
    }

    fn begin_overlap(&mut self, ts: i64) {
        self.start_overlap(ts);
    }

    fn on_overlap_frame(
        &mut self,
        frame: &str,
        ts_recv: i64,
        out: &mut Vec<Event>,
        actions: &mut Vec<Action>,
    ) {
        self.from_next = true;
        self.next_frames += 1;
        self.handle_frame(frame, ts_recv, out, actions);
        self.from_next = false;
    }

    fn overlap_ready(&self) -> bool {
        self.overlap_caught_up()
    }

    fn end_overlap(&mut self, ts: i64, out: &mut Vec<Event>, actions: &mut Vec<Action>) {
        self.finish_overlap(ts, out, actions);
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod fuzz;
#[cfg(test)]
mod tests_futures;
