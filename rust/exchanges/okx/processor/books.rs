//! Book channels of the OKX processor: the snapshot-or-bootstrap choice, the chain check on
//! every update, the checksum whenever one is sent, `books5` and `bbo-tbt`, and the resync of
//! only the symbol that broke (unsubscribe + subscribe its book channel, exchanges.md §4.5).

use super::{Buffered, OkxProcessor, Phase};
use crate::exchanges::okx::book::{self, BootVerdict, SeqVerdict};
use crate::exchanges::okx::connector::{inst_arg, op_frame};
use crate::exchanges::okx::messages::{OkxBookData, OkxLevel, OkxRest};
use crate::exchanges::Action;
use crate::model::{Bbo, BookDelta, BookState, Event, StatusKind, StatusReason};

use super::{ms_to_ns, num};

/// Updates buffered per symbol while a REST bootstrap snapshot is fetched.
pub(super) const DEFAULT_BUFFER_CAP: usize = 1024;
/// After a resubscribe, updates of the old subscription are dropped until the ack; if the ack
/// never comes within this time (ns), the next update is taken as the new subscription's.
const RESUBSCRIBE_WAIT_NS: i64 = 5_000_000_000;

/// Levels of one side parsed to (price, size in venue units).
fn parse_side(levels: &[OkxLevel<'_>]) -> Option<Vec<(f64, f64)>> {
    let mut v = Vec::with_capacity(levels.len());
    for l in levels {
        v.push((num(l.px)?, num(l.sz)?));
    }
    Some(v)
}

/// Normalized bid and ask levels of a message, and its checksum outcome.
type Outcome = (Vec<(f64, f64)>, Vec<(f64, f64)>, Applied);

/// What applying a message to a book did.
enum Applied {
    /// Applied and, when a checksum was sent, verified.
    Ok,
    /// Applied but the checksum disagrees: (sent, computed).
    ChecksumFailed(i64, i64),
}

impl OkxProcessor {
    /// A `books` / `books-l2-tbt` / `books50-l2-tbt` frame.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn on_books(
        &mut self,
        inst_id: Option<&str>,
        action: Option<&str>,
        data: &str,
        frame: &str,
        ts: i64,
        out: &mut Vec<Event>,
        actions: &mut Vec<Action>,
    ) {
        let Some(idx) = self.book_index(inst_id, ts, out) else {
            return;
        };
        let list: Vec<OkxBookData> = match sonic_rs::from_str(data) {
            Ok(l) => l,
            Err(e) => return self.malformed(frame, e.offset(), ts, out),
        };
        for (elem, d) in list.iter().enumerate() {
            let snapshot = action == Some("snapshot") || d.prev_seq_id == Some(-1);
            if snapshot {
                self.on_ws_snapshot(idx, d, frame, ts, out, actions);
            } else {
                self.on_update(idx, d, (data, elem), frame, ts, out, actions);
            }
        }
    }

    fn book_index(
        &mut self,
        inst_id: Option<&str>,
        ts: i64,
        out: &mut Vec<Event>,
    ) -> Option<usize> {
        let idx = inst_id.and_then(|i| self.index_of(i));
        let has_book = idx
            .and_then(|i| self.metas.get(i))
            .is_some_and(|m| m.book.is_some());
        if has_book {
            return idx;
        }
        // a book this socket does not maintain: nothing to apply it to
        self.counters.unknown_symbols += 1;
        let reason = StatusReason::UnknownSymbol {
            symbol: inst_id.unwrap_or("").into(),
        };
        self.error_status(None, reason, ts, out);
        None
    }

    /// Replace the book with `d`'s levels (a pushed snapshot, a REST snapshot, a `books5`).
    fn replace_book(&mut self, idx: usize, d: &OkxBookData<'_>, ts: i64) -> Option<Outcome> {
        let (mut bids, mut asks) = (parse_side(&d.bids)?, parse_side(&d.asks)?);
        let st = self.states.get_mut(idx)?;
        st.wire.clear();
        for (l, &(px, sz)) in d.bids.iter().zip(&bids) {
            st.wire.set_bid(px, l.px, l.sz, sz == 0.0);
        }
        for (l, &(px, sz)) in d.asks.iter().zip(&asks) {
            st.wire.set_ask(px, l.px, l.sz, sz == 0.0);
        }
        let mult = st.mult;
        for side in [&mut bids, &mut asks] {
            for lv in side.iter_mut() {
                lv.1 *= mult;
            }
        }
        st.last_seq = d.seq_id;
        st.rest_anchor = None;
        let ts_ex = d.ts.and_then(ms_to_ns).unwrap_or(0);
        if let Some(b) = self.metas.get(idx).and_then(|m| m.book.as_ref()) {
            let mut b = b.write();
            b.clear();
            for &(p, s) in &bids {
                b.set_bid(p, s);
            }
            for &(p, s) in &asks {
                b.set_ask(p, s);
            }
            b.seq = seq_u64(d.seq_id);
            b.ts_exchange = ts_ex;
            b.ts_recv = ts;
        }
        let applied = self.verify(idx, d.checksum);
        Some((bids, asks, applied))
    }

    /// Apply an update's levels; returns the normalized levels and the checksum outcome.
    fn apply_levels(&mut self, idx: usize, d: &OkxBookData<'_>, ts: i64) -> Option<Outcome> {
        let (mut bids, mut asks) = (parse_side(&d.bids)?, parse_side(&d.asks)?);
        let st = self.states.get_mut(idx)?;
        for (l, &(px, sz)) in d.bids.iter().zip(&bids) {
            st.wire.set_bid(px, l.px, l.sz, sz == 0.0);
        }
        for (l, &(px, sz)) in d.asks.iter().zip(&asks) {
            st.wire.set_ask(px, l.px, l.sz, sz == 0.0);
        }
        let mult = st.mult;
        if d.seq_id.is_some() {
            st.last_seq = d.seq_id;
        }
        for side in [&mut bids, &mut asks] {
            for lv in side.iter_mut() {
                lv.1 *= mult;
            }
        }
        if let Some(b) = self.metas.get(idx).and_then(|m| m.book.as_ref()) {
            let mut b = b.write();
            for &(p, s) in &bids {
                b.set_bid(p, s);
            }
            for &(p, s) in &asks {
                b.set_ask(p, s);
            }
            if let Some(s) = d.seq_id {
                b.seq = seq_u64(Some(s));
            }
            b.ts_exchange = d.ts.and_then(ms_to_ns).unwrap_or(b.ts_exchange);
            b.ts_recv = ts;
        }
        let applied = self.verify(idx, d.checksum);
        Some((bids, asks, applied))
    }

    /// Check a sent checksum against the local book (0 or absent: not sent, nothing to check).
    fn verify(&mut self, idx: usize, checksum: Option<i64>) -> Applied {
        let Some(sent) = checksum.filter(|c| *c != 0) else {
            self.counters.checksum_absent += 1;
            return Applied::Ok;
        };
        let Some(st) = self.states.get(idx) else {
            return Applied::Ok;
        };
        let computed = i64::from(st.wire.checksum(&mut self.scratch));
        if computed == sent {
            self.counters.checksum_ok += 1;
            Applied::Ok
        } else {
            self.counters.checksum_failed += 1;
            Applied::ChecksumFailed(sent, computed)
        }
    }

    fn on_ws_snapshot(
        &mut self,
        idx: usize,
        d: &OkxBookData<'_>,
        frame: &str,
        ts: i64,
        out: &mut Vec<Event>,
        actions: &mut Vec<Action>,
    ) {
        let Some((bids, asks, applied)) = self.replace_book(idx, d, ts) else {
            self.malformed(frame, 0, ts, out);
            return self.resync(
                idx,
                StatusReason::MalformedFrame {
                    len: frame.len(),
                    offset: 0,
                },
                ts,
                out,
                actions,
            );
        };
        self.counters.snapshots += 1;
        if let Applied::ChecksumFailed(expected, computed) = applied {
            return self.resync(
                idx,
                StatusReason::Checksum { expected, computed },
                ts,
                out,
                actions,
            );
        }
        self.go_live(idx, ts, out);
        self.emit(idx, d, bids, asks, true, ts, out);
    }

    fn go_live(&mut self, idx: usize, ts: i64, out: &mut Vec<Event>) {
        let Some(st) = self.states.get_mut(idx) else {
            return;
        };
        let was = st.phase;
        st.phase = Phase::Live;
        st.buffer.clear();
        st.snapshot_pending = false;
        let ever = std::mem::replace(&mut st.ever_live, true);
        let meta = self.metas.get(idx).cloned();
        if let Some(b) = meta.as_ref().and_then(|m| m.book.as_ref()) {
            b.write().state = BookState::Live;
        }
        if was != Phase::Live {
            let kind = if ever {
                StatusKind::Recovered
            } else {
                StatusKind::Live
            };
            out.push(self.status(meta.as_ref(), kind, StatusReason::None, ts));
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn emit(
        &mut self,
        idx: usize,
        d: &OkxBookData<'_>,
        bids: Vec<(f64, f64)>,
        asks: Vec<(f64, f64)>,
        is_snapshot: bool,
        ts: i64,
        out: &mut Vec<Event>,
    ) {
        if !is_snapshot && bids.is_empty() && asks.is_empty() {
            self.counters.heartbeats += 1; // the no-change heartbeat: nothing to publish
            return;
        }
        let Some(meta) = self.metas.get(idx) else {
            return;
        };
        self.counters.book_updates += 1;
        out.push(Event::Book(BookDelta {
            sym: meta.clone(),
            ts_exchange: d.ts.and_then(ms_to_ns).unwrap_or(0),
            ts_recv: ts,
            seq: seq_u64(d.seq_id),
            is_snapshot,
            bids,
            asks,
        }));
    }

    #[allow(clippy::too_many_arguments)]
    fn on_update(
        &mut self,
        idx: usize,
        d: &OkxBookData<'_>,
        (data, elem): (&str, usize),
        frame: &str,
        ts: i64,
        out: &mut Vec<Event>,
        actions: &mut Vec<Action>,
    ) {
        let Some(st) = self.states.get_mut(idx) else {
            return;
        };
        if st.phase == Phase::AwaitSubscribe {
            if ts - st.resub_since < RESUBSCRIBE_WAIT_NS {
                self.counters.updates_dropped += 1; // still the old subscription's stream
                return;
            }
            st.phase = Phase::AwaitFirst; // no ack came: take this as the new stream
        }
        match st.phase {
            Phase::Live => self.on_live_update(idx, d, frame, ts, out, actions),
            Phase::AwaitFirst | Phase::Bootstrap => {
                // no snapshot was pushed: buffer and bootstrap from REST (exchanges.md §4.5)
                st.phase = Phase::Bootstrap;
                if st.buffer.len() >= self.buffer_cap {
                    st.buffer.pop_front();
                    self.counters.buffer_dropped += 1;
                }
                st.buffer.push_back(Buffered {
                    ts_recv: ts,
                    prev: d.prev_seq_id,
                    data: data.into(),
                    elem,
                });
                if !st.snapshot_pending {
                    st.snapshot_pending = true;
                    actions.push(Action::FetchSnapshot(idx));
                }
            }
            Phase::AwaitSubscribe => {}
        }
    }

    /// An update for a live book: right after a REST snapshot the bootstrap rule places it
    /// (drop what the snapshot contains, apply the first one after it); then the chain rule.
    fn on_live_update(
        &mut self,
        idx: usize,
        d: &OkxBookData<'_>,
        frame: &str,
        ts: i64,
        out: &mut Vec<Event>,
        actions: &mut Vec<Action>,
    ) {
        let Some(st) = self.states.get_mut(idx) else {
            return;
        };
        let Some(snap) = st.rest_anchor else {
            return self.apply_update(idx, d, true, frame, ts, out, actions);
        };
        let verdict = match (d.prev_seq_id, d.seq_id) {
            (Some(prev), Some(seq)) => book::bootstrap_first(snap, prev, seq),
            _ => BootVerdict::Apply,
        };
        match verdict {
            BootVerdict::Drop => self.counters.updates_dropped += 1,
            BootVerdict::Apply => {
                st.rest_anchor = None;
                self.apply_update(idx, d, false, frame, ts, out, actions);
            }
            BootVerdict::Gap(expected, got) => {
                self.counters.gaps += 1;
                let reason = StatusReason::Gap {
                    expected: seq_u64(Some(expected)),
                    got: seq_u64(Some(got)),
                };
                self.resync(idx, reason, ts, out, actions);
            }
        }
    }

    /// Check the chain (unless this is the first update after a REST snapshot), apply, verify.
    #[allow(clippy::too_many_arguments)]
    fn apply_update(
        &mut self,
        idx: usize,
        d: &OkxBookData<'_>,
        chained: bool,
        frame: &str,
        ts: i64,
        out: &mut Vec<Event>,
        actions: &mut Vec<Action>,
    ) {
        if chained {
            let last = self.states.get(idx).and_then(|s| s.last_seq);
            if let SeqVerdict::Gap(expected, got) = book::next(last, d.prev_seq_id) {
                self.counters.gaps += 1;
                let reason = StatusReason::Gap {
                    expected: seq_u64(Some(expected)),
                    got: seq_u64(Some(got)),
                };
                return self.resync(idx, reason, ts, out, actions);
            }
        }
        let Some((bids, asks, applied)) = self.apply_levels(idx, d, ts) else {
            // a level we cannot read: the book missed an update
            self.malformed(frame, 0, ts, out);
            return self.resync(
                idx,
                StatusReason::MalformedFrame {
                    len: frame.len(),
                    offset: 0,
                },
                ts,
                out,
                actions,
            );
        };
        if let Applied::ChecksumFailed(expected, computed) = applied {
            return self.resync(
                idx,
                StatusReason::Checksum { expected, computed },
                ts,
                out,
                actions,
            );
        }
        self.emit(idx, d, bids, asks, false, ts, out);
    }

    /// Only this symbol: drop its book, say why, and resubscribe its book channel for a fresh
    /// snapshot (or a REST bootstrap if the venue no longer pushes one).
    pub(super) fn resync(
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
        st.phase = Phase::AwaitSubscribe;
        st.resub_since = ts;
        st.buffer.clear();
        st.snapshot_pending = false;
        st.last_seq = None;
        st.rest_anchor = None;
        st.wire.clear();
        let state = if st.ever_live {
            BookState::Resyncing
        } else {
            BookState::Syncing
        };
        let meta = self.metas.get(idx).cloned();
        if let Some(b) = meta.as_ref().and_then(|m| m.book.as_ref()) {
            b.write().state = state;
        }
        out.push(self.status(meta.as_ref(), StatusKind::Resync, reason, ts));
        let Some(meta) = meta else { return };
        if !self.take_requests(2, ts) {
            // 480 requests per hour per connection: a new connection starts a new budget
            self.counters.budget_reconnects += 1;
            actions.push(Action::Reconnect);
            return;
        }
        self.counters.resubscribes += 1;
        let arg = inst_arg(self.book_channel.name(), &meta.native);
        let (a, b) = (self.request_id(), self.request_id());
        actions.push(Action::Send(op_frame(
            "unsubscribe",
            std::slice::from_ref(&arg),
            a,
        )));
        actions.push(Action::Send(op_frame("subscribe", &[arg], b)));
    }

    /// The venue acknowledged a subscription: a resyncing book now waits for its first message.
    pub(super) fn on_subscribed(&mut self, idx: usize, channel: &str, _ts: i64) {
        if channel != self.book_channel.name() {
            return;
        }
        if let Some(st) = self.states.get_mut(idx) {
            if st.phase == Phase::AwaitSubscribe {
                st.phase = Phase::AwaitFirst;
            }
        }
    }

    /// The REST answer of a bootstrap (`GET /api/v5/market/books`).
    pub(super) fn on_rest_snapshot(
        &mut self,
        idx: usize,
        body: &str,
        ts: i64,
        out: &mut Vec<Event>,
        actions: &mut Vec<Action>,
    ) {
        let Some(st) = self.states.get_mut(idx) else {
            return;
        };
        if st.phase != Phase::Bootstrap {
            return; // a late answer: the book synced from a pushed snapshot meanwhile
        }
        st.snapshot_pending = false;
        let first_prev = st.buffer.front().and_then(|b| b.prev);
        let rest: Result<OkxRest, _> = sonic_rs::from_str(body);
        let list: Option<Vec<OkxBookData>> = match &rest {
            Ok(r) if r.code == "0" => r
                .data
                .as_ref()
                .and_then(|d| sonic_rs::from_str(d.as_raw_str()).ok()),
            _ => None,
        };
        let Some(d) = list.as_ref().and_then(|l| l.first()) else {
            return self.unusable_snapshot(idx, ts, out, actions);
        };
        // without a seqId the snapshot cannot be placed in the stream (UNVERIFIED field)
        let Some(snap) = d.seq_id else {
            return self.unusable_snapshot(idx, ts, out, actions);
        };
        if let Some(p) = first_prev.filter(|p| book::snapshot_too_old(snap, *p)) {
            self.counters.snapshots_too_old += 1;
            if let Some(st) = self.states.get_mut(idx) {
                st.snapshot_pending = true;
            }
            let sym = self.metas.get(idx).cloned();
            let reason = StatusReason::SnapshotTooOld {
                snapshot: seq_u64(Some(snap)),
                first_buffered: seq_u64(Some(p)),
            };
            out.push(self.status(sym.as_ref(), StatusKind::Resync, reason, ts));
            actions.push(Action::FetchSnapshot(idx));
            return;
        }
        let Some((bids, asks, applied)) = self.replace_book(idx, d, ts) else {
            return self.unusable_snapshot(idx, ts, out, actions);
        };
        self.counters.snapshots += 1;
        self.counters.rest_snapshots += 1;
        if let Applied::ChecksumFailed(expected, computed) = applied {
            return self.resync(
                idx,
                StatusReason::Checksum { expected, computed },
                ts,
                out,
                actions,
            );
        }
        let buffered = self
            .states
            .get_mut(idx)
            .map(|s| std::mem::take(&mut s.buffer))
            .unwrap_or_default();
        self.go_live(idx, ts, out);
        if let Some(st) = self.states.get_mut(idx) {
            st.rest_anchor = Some(snap);
        }
        self.emit(idx, d, bids, asks, true, ts, out);
        self.replay_buffer(idx, buffered, ts, out, actions);
    }

    fn replay_buffer(
        &mut self,
        idx: usize,
        buffered: std::collections::VecDeque<Buffered>,
        ts: i64,
        out: &mut Vec<Event>,
        actions: &mut Vec<Action>,
    ) {
        for b in buffered {
            if self.states.get(idx).map(|s| s.phase) != Some(Phase::Live) {
                return; // a break inside the buffer started a resync
            }
            let list: Vec<OkxBookData> = match sonic_rs::from_str(&b.data) {
                Ok(l) => l,
                Err(e) => return self.malformed(&b.data, e.offset(), ts, out),
            };
            if let Some(d) = list.get(b.elem) {
                self.on_live_update(idx, d, &b.data, b.ts_recv, out, actions);
            }
        }
    }

    fn unusable_snapshot(
        &mut self,
        idx: usize,
        ts: i64,
        out: &mut Vec<Event>,
        actions: &mut Vec<Action>,
    ) {
        self.counters.snapshot_failures += 1;
        let sym = self.metas.get(idx).cloned();
        let reason = StatusReason::SnapshotFailed {
            http_status: 200,
            attempt: 1,
        };
        self.error_status(sym.as_ref(), reason, ts, out);
        // fall back to a fresh subscription: it may push a snapshot
        self.resync(
            idx,
            StatusReason::SnapshotFailed {
                http_status: 200,
                attempt: 1,
            },
            ts,
            out,
            actions,
        );
    }

    /// `books5`: a full top-5 book each time; each message replaces the book.
    pub(super) fn on_books5(
        &mut self,
        inst_id: Option<&str>,
        data: &str,
        frame: &str,
        ts: i64,
        out: &mut Vec<Event>,
        actions: &mut Vec<Action>,
    ) {
        let Some(idx) = self.book_index(inst_id, ts, out) else {
            return;
        };
        let list: Vec<OkxBookData> = match sonic_rs::from_str(data) {
            Ok(l) => l,
            Err(e) => return self.malformed(frame, e.offset(), ts, out),
        };
        for d in &list {
            let Some((bids, asks, applied)) = self.replace_book(idx, d, ts) else {
                return self.malformed(frame, 0, ts, out);
            };
            self.counters.snapshots += 1;
            if let Applied::ChecksumFailed(expected, computed) = applied {
                return self.resync(
                    idx,
                    StatusReason::Checksum { expected, computed },
                    ts,
                    out,
                    actions,
                );
            }
            self.go_live(idx, ts, out);
            self.emit(idx, d, bids, asks, true, ts, out);
        }
    }

    /// `bbo-tbt`: the top of the book, one level per side.
    pub(super) fn on_bbo(
        &mut self,
        inst_id: Option<&str>,
        data: &str,
        frame: &str,
        ts: i64,
        out: &mut Vec<Event>,
        actions: &mut Vec<Action>,
    ) {
        let list: Vec<OkxBookData> = match sonic_rs::from_str(data) {
            Ok(l) => l,
            Err(e) => return self.malformed(frame, e.offset(), ts, out),
        };
        let Some(inst_id) = inst_id else {
            return self.malformed(frame, 0, ts, out);
        };
        let Some(meta) = self.resolve(inst_id, ts, out, actions) else {
            return;
        };
        let mult = meta.contract_size();
        for d in &list {
            let (Some(b), Some(a)) = (d.bids.first(), d.asks.first()) else {
                continue; // one side empty: no quote to publish
            };
            let (Some(bp), Some(bs), Some(ap), Some(az)) =
                (num(b.px), num(b.sz), num(a.px), num(a.sz))
            else {
                return self.malformed(frame, 0, ts, out);
            };
            self.counters.bbo += 1;
            out.push(Event::Bbo(Bbo {
                sym: meta.clone(),
                ts_exchange: d.ts.and_then(ms_to_ns).unwrap_or(0),
                ts_recv: ts,
                bid_price: bp,
                bid_size: bs * mult,
                ask_price: ap,
                ask_size: az * mult,
            }));
        }
    }
}

/// A sequence id as the model's unsigned `seq` (absent or negative: 0).
fn seq_u64(s: Option<i64>) -> u64 {
    s.and_then(|v| u64::try_from(v).ok()).unwrap_or(0)
}
