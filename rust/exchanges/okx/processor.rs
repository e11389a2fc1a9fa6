//! OKX frame processing: one socket's frames to normalized events. Control replies (acks,
//! `event:error`, notices, the text `pong`) become statuses and counters; trades, tickers,
//! funding, mark price, open interest and liquidations are normalized with each instrument's
//! contract size; book channels go through `books.rs` (sequence chain, checksum, resync of
//! only the symbol that broke). exchanges.md §4.
//!
//! Instruments met in the stream but not subscribed on this socket (liquidations arrive by
//! instrument type) are looked up in the feed's bounded cache, and fetched once when missing.

mod books;
mod channels;
#[cfg(test)]
mod fuzz;
#[cfg(test)]
mod tests;

use std::collections::{HashSet, VecDeque};
use std::num::NonZeroUsize;
use std::sync::Arc;

use lru::LruCache;
use parking_lot::{Mutex, RwLock};

use super::book::WireBook;
use super::connector::BookChannel;
use super::instruments::parse_instruments;
use super::messages::{OkxArg, OkxBookFrame, OkxEnvelope};
use super::scan;
use crate::exchanges::{Action, Channels, ExchangeProcessor, StatusBudget};
use crate::model::hash::FastMap;
use crate::model::{
    BookState, Event, InstrumentCache, OrderBook, Rung, SharedInstruments, Status, StatusKind,
    StatusReason, SymbolMeta, Venue,
};

const MS: i64 = 1_000_000;
/// How OKX starts `books*` and `bbo-tbt` frames: worth a one-pass parse (other key orders
/// take the generic path and are read all the same).
const BOOK_FRAME_PREFIX: &[u8] = br#"{"arg":{"channel":"b"#;
/// Interned symbols of instruments met in the stream but not subscribed on this socket.
const EXTRAS_CAPACITY: usize = 4096;
/// Instruments the venue said it does not know (not asked again until evicted).
const UNKNOWN_CAPACITY: usize = 4096;
/// Instrument requests in flight at once; further unknown ids wait for a later frame.
const MAX_PENDING_FETCHES: usize = 64;
/// The venue sends a book message at least this often, an empty heartbeat when nothing
/// changed (exchanges.md 5).
const BOOK_HEARTBEAT: std::time::Duration = std::time::Duration::from_secs(60);
/// Slack past the heartbeat before a silent book counts as dead.
const BOOK_SILENCE_GRACE: std::time::Duration = std::time::Duration::from_secs(15);
/// Cache used until the feed attaches its own (tests, a processor on its own).
const OWN_CACHE_CAPACITY: usize = 1024;

pub(crate) use crate::exchanges::wire::{num, wire_price, wire_size};

#[inline]
fn opt_num(s: Option<&str>) -> Option<f64> {
    s.filter(|s| !s.is_empty()).and_then(num)
}

/// Millisecond string to nanoseconds (digits only, in range; anything else is `None`).
#[inline]
pub(crate) fn ms_to_ns(s: &str) -> Option<i64> {
    if s.is_empty() || s.len() > 15 {
        return None;
    }
    let mut v: i64 = 0;
    for b in s.bytes() {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v * 10 + i64::from(b - b'0');
    }
    // 15 digits fit an i64 of milliseconds but not always of nanoseconds (found by fuzzing)
    v.checked_mul(MS)
}

/// Counters kept by the processor (exported as metrics and `stats`).
#[derive(Debug, Default, Clone)]
pub struct Counters {
    /// Books resynced because their stream went silent past the venue's heartbeat.
    pub silent_streams: u64,
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
    /// Tickers emitted.
    pub tickers: u64,
    /// Funding and mark-price events emitted.
    pub funding: u64,
    /// Liquidations emitted.
    pub liquidations: u64,
    /// Open-interest events emitted.
    pub open_interest: u64,
    /// Book snapshots applied (pushed or REST).
    pub snapshots: u64,
    /// REST bootstrap snapshots applied.
    pub rest_snapshots: u64,
    /// Empty no-change book updates (the ~60 s heartbeat).
    pub heartbeats: u64,
    /// Checksums that matched the local book.
    pub checksum_ok: u64,
    /// Checksums that did not (each starts a resync).
    pub checksum_failed: u64,
    /// Book messages with `checksum` 0 or absent (the chain is then the proof).
    pub checksum_absent: u64,
    /// Sequence breaks detected.
    pub gaps: u64,
    /// Resyncs started.
    pub resyncs: u64,
    /// Unsubscribe + subscribe pairs sent for resyncs.
    pub resubscribes: u64,
    /// Book updates dropped while waiting for a resubscription or a bootstrap.
    pub updates_dropped: u64,
    /// Updates dropped because the bootstrap buffer was full.
    pub buffer_dropped: u64,
    /// REST snapshots older than the buffered updates (fetched again).
    pub snapshots_too_old: u64,
    /// REST snapshot requests that failed or answered something unusable.
    pub snapshot_failures: u64,
    /// Malformed frames.
    pub parse_errors: u64,
    /// Frames of unknown channels or events.
    pub unknown_events: u64,
    /// Frames for instruments this socket cannot resolve.
    pub unknown_symbols: u64,
    /// `event:error` replies.
    pub venue_errors: u64,
    /// Subscribe / unsubscribe acknowledgements.
    pub acks: u64,
    /// Text `pong` replies to our keepalive.
    pub pongs: u64,
    /// Instrument lookups sent for ids met in the stream.
    pub instrument_fetches: u64,
    /// Reconnects asked because the hourly request budget was spent.
    pub budget_reconnects: u64,
    /// Error statuses not emitted because of the per-second budget.
    pub statuses_suppressed: u64,
}

/// Where a symbol's book stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Subscribed; the first book message decides: a snapshot, or an update (REST bootstrap).
    AwaitFirst,
    /// Resubscribing after a break: updates of the old subscription are dropped until the ack.
    AwaitSubscribe,
    /// Updates buffered while the REST snapshot is fetched.
    Bootstrap,
    /// Chained and checked.
    Live,
}

/// An update kept during a REST bootstrap: its frame, re-parsed when applied.
#[derive(Debug)]
pub(crate) struct Buffered {
    pub ts_recv: i64,
    pub prev: Option<i64>,
    /// The whole frame and the element of its `data` array this update is.
    pub frame: Box<str>,
    pub elem: usize,
}

#[derive(Debug)]
pub(crate) struct SymState {
    pub phase: Phase,
    pub mult: f64,
    pub wire: WireBook,
    pub last_seq: Option<i64>,
    pub ever_live: bool,
    pub buffer: VecDeque<Buffered>,
    pub snapshot_pending: bool,
    pub resub_since: i64,
    /// When the last book message of this symbol arrived, ns (0: watchdog not armed).
    pub last_book: i64,
    /// `seqId` of the REST snapshot the book was built from, until the first update that
    /// follows it (`prevSeqId <= seqId < next seqId`) has been applied; older updates still
    /// in flight are dropped meanwhile.
    pub rest_anchor: Option<i64>,
}

/// OKX processor for one socket's symbols.
#[derive(Debug)]
pub struct OkxProcessor {
    /// When the last frame's parse finished (a metrics stamp, never part of an event).
    parsed_at: i64,
    /// A book silent this long (ns) is stale and resynced; 0 = watchdog off.
    book_silent_after_ns: i64,
    channels: Channels,
    book_channel: BookChannel,
    metas: Vec<Arc<SymbolMeta>>,
    states: Vec<SymState>,
    by_native: FastMap<Box<str>, usize>,
    extras: LruCache<Box<str>, Arc<SymbolMeta>>,
    instruments: SharedInstruments,
    pending: HashSet<Box<str>>,
    unknown: LruCache<Box<str>, ()>,
    scratch: Vec<u8>,
    /// Positions of the levels just applied to the wire book, per side (bids, asks): where
    /// they sit in the f64 book too, which is kept in step.
    hints: (Vec<Rung>, Vec<Rung>),
    budget: StatusBudget,
    requests_window: i64,
    requests_used: u32,
    next_request_id: u64,
    buffer_cap: usize,
    /// Counters.
    pub counters: Counters,
}

fn cap(n: usize) -> NonZeroUsize {
    NonZeroUsize::new(n).unwrap_or(NonZeroUsize::MIN)
}

impl OkxProcessor {
    /// A processor over symbols interned by the caller (their instruments give the contract
    /// sizes; without one a size is taken as is).
    #[must_use]
    pub fn from_metas(metas: &[Arc<SymbolMeta>], channels: Channels, book: BookChannel) -> Self {
        let mut p = Self {
            channels,
            book_channel: book,
            metas: Vec::new(),
            states: Vec::new(),
            by_native: FastMap::default(),
            extras: LruCache::new(cap(EXTRAS_CAPACITY)),
            instruments: Arc::new(Mutex::new(InstrumentCache::new(OWN_CACHE_CAPACITY))),
            pending: HashSet::new(),
            unknown: LruCache::new(cap(UNKNOWN_CAPACITY)),
            scratch: Vec::with_capacity(2048),
            hints: (Vec::with_capacity(64), Vec::with_capacity(64)),
            budget: StatusBudget::default(),
            requests_window: i64::MIN,
            requests_used: 0,
            next_request_id: 1000,
            buffer_cap: books::DEFAULT_BUFFER_CAP,
            counters: Counters::default(),
            parsed_at: 0,
            book_silent_after_ns: 0,
        };
        for m in metas {
            p.add_meta(m.clone());
        }
        p
    }

    /// Register a symbol; returns its index. Its book is created when the book channel is on
    /// and the meta has none.
    pub fn add_meta(&mut self, meta: Arc<SymbolMeta>) -> usize {
        if let Some(&i) = self.by_native.get(&*meta.native) {
            return i;
        }
        let meta = if self.channels.book && meta.book.is_none() {
            Arc::new(SymbolMeta {
                venue: meta.venue,
                native: meta.native.clone(),
                symbol: meta.symbol.clone(),
                book: Some(Arc::new(RwLock::new(OrderBook::new()))),
                contract_size: meta.contract_size,
                instrument: meta.instrument.clone(),
            })
        } else {
            meta
        };
        let idx = self.metas.len();
        self.by_native.insert(meta.native.clone(), idx);
        self.states.push(SymState {
            phase: Phase::AwaitFirst,
            mult: meta.contract_size(),
            wire: WireBook::default(),
            last_seq: None,
            ever_live: false,
            buffer: VecDeque::new(),
            snapshot_pending: false,
            resub_since: 0,
            last_book: 0,
            rest_anchor: None,
        });
        self.metas.push(meta);
        idx
    }

    /// Index of a native symbol.
    #[must_use]
    pub fn index_of(&self, native: &str) -> Option<usize> {
        self.by_native.get(native).copied()
    }

    /// Bound on updates buffered per symbol during a REST bootstrap.
    pub fn set_buffer_cap(&mut self, cap: usize) {
        self.buffer_cap = cap.max(1);
    }

    pub(crate) fn status(
        &self,
        sym: Option<&Arc<SymbolMeta>>,
        kind: StatusKind,
        reason: StatusReason,
        ts: i64,
    ) -> Event {
        let state = sym.and_then(|m| m.book.as_ref().map(|b| b.read().state));
        Event::Status(Status {
            venue: Venue::Okx,
            sym: sym.cloned(),
            kind,
            reason,
            state,
            ts,
        })
    }

    /// Emit an error status unless this second's budget is spent (then only count it).
    pub(crate) fn error_status(
        &mut self,
        sym: Option<&Arc<SymbolMeta>>,
        reason: StatusReason,
        ts: i64,
        out: &mut Vec<Event>,
    ) {
        if self.budget.allow(ts) {
            out.push(self.status(sym, StatusKind::Error, reason, ts));
        } else {
            self.counters.statuses_suppressed += 1;
        }
    }

    pub(crate) fn malformed(&mut self, frame: &str, offset: usize, ts: i64, out: &mut Vec<Event>) {
        self.counters.parse_errors += 1;
        let reason = StatusReason::MalformedFrame {
            len: frame.len(),
            offset,
        };
        self.error_status(None, reason, ts, out);
    }

    fn unknown_event(&mut self, name: &str, ts: i64, out: &mut Vec<Event>) {
        self.counters.unknown_events += 1;
        let reason = StatusReason::UnknownEvent { name: name.into() };
        self.error_status(None, reason, ts, out);
    }

    /// The interned symbol of an instrument id: subscribed here, met before, in the shared
    /// cache, or else fetched once (`None` until it is known).
    fn resolve(
        &mut self,
        inst_id: &str,
        ts: i64,
        out: &mut Vec<Event>,
        actions: &mut Vec<Action>,
    ) -> Option<Arc<SymbolMeta>> {
        if let Some(&i) = self.by_native.get(inst_id) {
            return self.metas.get(i).cloned();
        }
        if let Some(m) = self.extras.get(inst_id) {
            return Some(m.clone());
        }
        let cached = self.instruments.lock().get(inst_id);
        if let Some(inst) = cached {
            let meta = SymbolMeta::with_instrument(Venue::Okx, inst, None);
            self.extras.put(inst_id.into(), meta.clone());
            return Some(meta);
        }
        self.counters.unknown_symbols += 1;
        if self.unknown.contains(inst_id) || self.pending.contains(inst_id) {
            return None;
        }
        if self.pending.len() < MAX_PENDING_FETCHES {
            self.pending.insert(inst_id.into());
            self.counters.instrument_fetches += 1;
            actions.push(Action::FetchInstrument(inst_id.into()));
        }
        let reason = StatusReason::UnknownSymbol {
            symbol: inst_id.into(),
        };
        self.error_status(None, reason, ts, out);
        None
    }

    /// Reserve `n` control requests of the hourly budget (480 per connection; resyncs use
    /// at most 400 so the initial subscriptions always fit). False when spent.
    pub(crate) fn take_requests(&mut self, n: u32, ts: i64) -> bool {
        const HOUR_NS: i64 = 3_600 * 1_000_000_000;
        const BUDGET: u32 = 400;
        if self.requests_window == i64::MIN || ts - self.requests_window >= HOUR_NS {
            self.requests_window = ts;
            self.requests_used = 0;
        }
        if self.requests_used + n > BUDGET {
            return false;
        }
        self.requests_used += n;
        true
    }

    pub(crate) fn request_id(&mut self) -> u64 {
        self.next_request_id += 1;
        self.next_request_id
    }

    fn on_event(
        &mut self,
        event: &str,
        env: &OkxEnvelope<'_>,
        ts: i64,
        out: &mut Vec<Event>,
        actions: &mut Vec<Action>,
    ) {
        match event {
            "subscribe" | "unsubscribe" => {
                self.counters.acks += 1;
                let Some(arg) = env.arg.as_ref() else { return };
                let idx = arg.inst_id.and_then(|i| self.index_of(i));
                if event == "subscribe" {
                    if let Some(i) = idx {
                        self.on_subscribed(i, arg.channel);
                    }
                    let sym = idx.and_then(|i| self.metas.get(i).cloned());
                    out.push(self.status(
                        sym.as_ref(),
                        StatusKind::Subscribed,
                        StatusReason::None,
                        ts,
                    ));
                }
            }
            "error" => self.on_error(env, ts, out),
            "notice" if env.code == Some("64008") => {
                // the server closes for an upgrade soon: move to a fresh connection now
                out.push(self.status(None, StatusKind::Error, StatusReason::ServerShutdown, ts));
                actions.push(Action::Reconnect);
            }
            other => self.unknown_event(other, ts, out),
        }
    }

    fn on_error(&mut self, env: &OkxEnvelope<'_>, ts: i64, out: &mut Vec<Event>) {
        self.counters.venue_errors += 1;
        let code = env.code.and_then(|c| c.parse::<i64>().ok()).unwrap_or(0);
        let msg = env.msg.as_deref().unwrap_or("");
        let (channel, inst) = match env.arg.as_ref() {
            Some(a) => (a.channel, a.inst_id.or(a.inst_type).unwrap_or("")),
            None => (named(msg, "channel:"), named(msg, "instId:")),
        };
        let sym = self.index_of(inst).and_then(|i| self.metas.get(i).cloned());
        let reason = StatusReason::VenueRejected {
            code,
            channel: channel.into(),
            inst: inst.into(),
            msg: msg.into(),
        };
        self.error_status(sym.as_ref(), reason, ts, out);
    }

    fn dispatch(
        &mut self,
        arg: &OkxArg<'_>,
        data: &str,
        frame: &str,
        ts: i64,
        out: &mut Vec<Event>,
        actions: &mut Vec<Action>,
    ) {
        match arg.channel {
            "books" | "books-l2-tbt" | "books50-l2-tbt" | "books5" | "bbo-tbt" => {
                // keys in an unusual order: read the whole frame as a book frame
                match sonic_rs::from_str::<OkxBookFrame>(frame) {
                    Ok(f) => self.on_book_frame(&f, frame, ts, out, actions),
                    Err(e) => self.malformed(frame, e.offset(), ts, out),
                }
            }
            "trades" | "trades-all" => self.on_trades(data, frame, ts, out, actions),
            "tickers" => self.on_tickers(data, frame, ts, out, actions),
            "funding-rate" => self.on_funding_rate(data, frame, ts, out, actions),
            "mark-price" => self.on_mark_price(data, frame, ts, out, actions),
            "open-interest" => self.on_open_interest(data, frame, ts, out, actions),
            "liquidation-orders" => self.on_liquidations(data, frame, ts, out, actions),
            other => self.unknown_event(other, ts, out),
        }
    }
}

/// The token after `key` in a venue message (`"...channel:books,instId:BTC-USDT doesn't..."`).
fn named<'a>(msg: &'a str, key: &str) -> &'a str {
    let Some(i) = msg.find(key) else { return "" };
    let rest = msg.get(i + key.len()..).unwrap_or("");
    let end = rest.find([',', ' ', '"', '}']).unwrap_or(rest.len());
    rest.get(..end).unwrap_or("")
}

impl ExchangeProcessor for OkxProcessor {
    fn on_frame(
        &mut self,
        frame: &str,
        ts_recv: i64,
        out: &mut Vec<Event>,
        actions: &mut Vec<Action>,
    ) {
        self.counters.messages += 1;
        self.counters.bytes += frame.len() as u64;
        if frame == "pong" {
            self.counters.pongs += 1;
            return;
        }
        // the hot path: book frames as the venue writes them are read in one pass
        if frame.as_bytes().starts_with(BOOK_FRAME_PREFIX) {
            if let Some(f) = scan::book_frame(frame) {
                self.parsed_at = crate::net::now_ns();
                return self.on_book_frame(&f, frame, ts_recv, out, actions);
            }
        }
        let env: OkxEnvelope = match sonic_rs::from_str(frame) {
            Ok(e) => e,
            Err(e) => return self.malformed(frame, e.offset(), ts_recv, out),
        };
        self.parsed_at = crate::net::now_ns();
        if let Some(event) = env.event {
            return self.on_event(event, &env, ts_recv, out, actions);
        }
        let (Some(arg), Some(data)) = (env.arg.as_ref(), env.data.as_ref()) else {
            return self.malformed(frame, 0, ts_recv, out);
        };
        self.dispatch(arg, data.as_raw_str(), frame, ts_recv, out, actions);
    }

    fn on_snapshot(
        &mut self,
        idx: usize,
        body: &str,
        ts_recv: i64,
        out: &mut Vec<Event>,
        actions: &mut Vec<Action>,
    ) {
        self.on_rest_snapshot(idx, body, ts_recv, out, actions);
    }

    fn resync_book(
        &mut self,
        idx: usize,
        reason: StatusReason,
        ts: i64,
        out: &mut Vec<Event>,
        actions: &mut Vec<Action>,
    ) {
        self.resync(idx, reason, ts, out, actions);
    }

    fn parsed_at(&self) -> i64 {
        self.parsed_at
    }

    fn data_cadence(&self) -> Option<std::time::Duration> {
        // exchanges.md 5: an empty update after ~60 s without book changes
        self.channels.book.then_some(BOOK_HEARTBEAT)
    }

    fn on_subscribed(&mut self, ts: i64, silent_after: std::time::Duration) {
        // a quiet book still gets the venue's heartbeat: silence past it (and past the
        // configured staleness) means this subscription is dead, whatever the others do
        let after = silent_after.max(BOOK_HEARTBEAT) + BOOK_SILENCE_GRACE;
        self.book_silent_after_ns = i64::try_from(after.as_nanos()).unwrap_or(i64::MAX);
        for st in &mut self.states {
            st.last_book = ts;
        }
    }

    fn on_tick(&mut self, ts: i64, out: &mut Vec<Event>, actions: &mut Vec<Action>) {
        if self.book_silent_after_ns <= 0 || !self.channels.book {
            return;
        }
        for idx in 0..self.states.len() {
            let Some(st) = self.states.get_mut(idx) else {
                break;
            };
            if st.last_book == 0 || ts - st.last_book <= self.book_silent_after_ns {
                continue;
            }
            let ms = u64::try_from((ts - st.last_book) / 1_000_000).unwrap_or(0);
            // re-armed: one resync per silent period, not one per tick
            st.last_book = ts;
            self.counters.silent_streams += 1;
            let reason = StatusReason::StreamSilent {
                channel: "book",
                ms,
            };
            self.resync(idx, reason, ts, out, actions);
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
            // the feed retries; keep the flag so updates do not trigger extra requests
            st.snapshot_pending = true;
        }
        let sym = self.metas.get(idx).cloned();
        let reason = StatusReason::SnapshotFailed {
            http_status,
            attempt,
        };
        self.error_status(sym.as_ref(), reason, ts, out);
    }

    fn on_disconnect(&mut self, ts: i64, out: &mut Vec<Event>) {
        self.requests_window = i64::MIN;
        self.pending.clear();
        if !self.channels.book {
            return; // this socket does not maintain the books it shares with others
        }
        for idx in 0..self.states.len() {
            if let Some(st) = self.states.get_mut(idx) {
                st.phase = Phase::AwaitFirst;
                st.buffer.clear();
                st.snapshot_pending = false;
                st.last_seq = None;
                st.rest_anchor = None;
                st.wire.clear();
            }
            let meta = self.metas.get(idx).cloned();
            if let Some(book) = meta.as_ref().and_then(|m| m.book.as_ref()) {
                book.write().state = BookState::Stale;
                let reason = StatusReason::Closed { code: 0 };
                out.push(self.status(meta.as_ref(), StatusKind::Stale, reason, ts));
            }
        }
    }

    fn attach_instruments(&mut self, cache: SharedInstruments) {
        self.instruments = cache;
    }

    fn on_instrument(
        &mut self,
        native: &str,
        http_status: u16,
        body: &str,
        ts: i64,
        out: &mut Vec<Event>,
    ) {
        self.pending.remove(native);
        let found = if http_status == 200 {
            match parse_instruments(body) {
                Ok(list) => {
                    let mut cache = self.instruments.lock();
                    let mut found = false;
                    for inst in list {
                        found |= inst.native == native;
                        cache.insert(inst);
                    }
                    found
                }
                Err(offset) => {
                    self.malformed(body, offset, ts, out);
                    false
                }
            }
        } else {
            let reason = StatusReason::InstrumentsFailed { http_status };
            self.error_status(None, reason, ts, out);
            false
        };
        if !found {
            // not listed (or not answerable now): not asked again until evicted
            self.unknown.put(native.into(), ());
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
            ("tickers", c.tickers),
            ("funding", c.funding),
            ("liquidations", c.liquidations),
            ("open_interest", c.open_interest),
            ("snapshots", c.snapshots),
            ("rest_snapshots", c.rest_snapshots),
            ("heartbeats", c.heartbeats),
            ("checksum_ok", c.checksum_ok),
            ("checksum_failed", c.checksum_failed),
            ("checksum_absent", c.checksum_absent),
            ("gaps", c.gaps),
            ("resyncs", c.resyncs),
            ("resubscribes", c.resubscribes),
            ("updates_dropped", c.updates_dropped),
            ("buffer_dropped", c.buffer_dropped),
            ("snapshots_too_old", c.snapshots_too_old),
            ("snapshot_failures", c.snapshot_failures),
            ("parse_errors", c.parse_errors),
            ("unknown_events", c.unknown_events),
            ("unknown_symbols", c.unknown_symbols),
            ("venue_errors", c.venue_errors),
            ("acks", c.acks),
            ("pongs", c.pongs),
            ("silent_streams", c.silent_streams),
            ("instrument_fetches", c.instrument_fetches),
            ("budget_reconnects", c.budget_reconnects),
            ("statuses_suppressed", c.statuses_suppressed),
        ]
    }
}
