//! Book channels of the OKX processor: the snapshot-or-bootstrap choice, the chain check on
//! every update, the checksum whenever one is sent, `books5` and `bbo-tbt`, and the resync of
//! only the symbol that broke (unsubscribe + subscribe its book channel, exchanges.md §4.5).
//!
//! Hot path: one pass over each level (parse, wire book, normalized level for the event),
//! then the shared f64 book under one write lock, then the checksum over the wire strings.

use super::{Buffered, OkxProcessor, Phase};
use crate::exchanges::okx::book::{self, BootVerdict, SeqVerdict, WireBook};
use crate::exchanges::okx::connector::{inst_arg, op_frame};
use crate::exchanges::okx::messages::{OkxBookData, OkxBookFrame, OkxLevels, OkxRest};
use crate::exchanges::Action;
use crate::model::{Bbo, BookDelta, BookState, Event, Rung, StatusKind, StatusReason};

use super::{ms_to_ns, wire_price, wire_size};

/// Updates buffered per symbol while a REST bootstrap snapshot is fetched.
pub(super) const DEFAULT_BUFFER_CAP: usize = 1024;
/// After a resubscribe, updates of the old subscription are dropped until the ack; if the ack
/// never comes within this time (ns), the next update is taken as the new subscription's.
const RESUBSCRIBE_WAIT_NS: i64 = 5_000_000_000;

type Levels = Vec<(f64, f64)>;

/// Applies one side's levels to the wire book; returns them normalized (size × `mult`), or
/// `None` where a level does not read (the book then missed part of an update). `hints`
/// receives each level's position in the wire book: the f64 book, changed next by the same
/// levels in the same order, has them at the same places.
fn apply_side(
    levels: &OkxLevels<'_>,
    mult: f64,
    wire: &mut WireBook,
    bid: bool,
    hints: &mut Vec<Rung>,
) -> Option<Levels> {
    let it = levels.iter();
    let mut v = Vec::with_capacity(it.size_hint().0.max(4));
    hints.clear();
    // levels come best first: each search starts from the place of the one before
    let mut from = None;
    for l in it {
        let l = l?;
        let (px, sz) = (wire_price(l.px)?, wire_size(l.sz)?);
        let at = wire.set_level(bid, from, px, l.px, l.sz, sz == 0.0);
        hints.push(at);
        from = Some(at);
        v.push((px, sz * mult));
    }
    Some(v)
}

/// Fills an emptied side from a snapshot. Levels come best first and the sorted sides keep
/// the best last, so they are inserted worst first: each lands at the end, and a 400-level
/// snapshot costs no shifting.
fn fill_side(levels: &OkxLevels<'_>, mult: f64, wire: &mut WireBook, bid: bool) -> Option<Levels> {
    let mut read = Vec::with_capacity(64);
    for l in levels.iter() {
        let l = l?;
        read.push((wire_price(l.px)?, wire_size(l.sz)?, l));
    }
    for &(px, sz, l) in read.iter().rev() {
        if bid {
            wire.set_bid(px, l.px, l.sz, sz == 0.0);
        } else {
            wire.set_ask(px, l.px, l.sz, sz == 0.0);
        }
    }
    Some(read.iter().map(|&(px, sz, _)| (px, sz * mult)).collect())
}

/// A sequence id as the model's unsigned `seq` (absent or negative: 0).
fn seq_u64(s: Option<i64>) -> u64 {
    s.and_then(|v| u64::try_from(v).ok()).unwrap_or(0)
}

fn gap(expected: i64, got: i64) -> StatusReason {
    StatusReason::Gap {
        expected: seq_u64(Some(expected)),
        got: seq_u64(Some(got)),
    }
}

/// What applying a message did.
enum Applied {
    /// Applied (and verified when a checksum was sent): the normalized levels.
    Ok(Levels, Levels),
    /// A level did not read.
    Malformed,
    /// Applied but the checksum disagrees.
    ChecksumFailed(StatusReason),
}

impl OkxProcessor {
    /// A frame of a book channel (`books*`, `books5`, `bbo-tbt`), parsed in one pass.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn on_book_frame(
        &mut self,
        f: &OkxBookFrame<'_>,
        frame: &str,
        ts: i64,
        out: &mut Vec<Event>,
        actions: &mut Vec<Action>,
    ) {
        match f.arg.channel {
            "bbo-tbt" => return self.on_bbo(f, frame, ts, out, actions),
            "books" | "books-l2-tbt" | "books50-l2-tbt" | "books5" => {}
            other => return self.unknown_event(other, ts, out),
        }
        let Some(idx) = self.book_index(f.arg.inst_id, ts, out) else {
            return;
        };
        if let Some(st) = self.states.get_mut(idx) {
            st.last_book = ts;
        }
        let full = f.arg.channel == "books5";
        for (elem, d) in f.data.iter().enumerate() {
            let snapshot = full || f.action == Some("snapshot") || d.prev_seq_id == Some(-1);
            if snapshot {
                self.on_snapshot_msg(idx, d, frame, ts, out, actions);
            } else {
                self.on_update(idx, d, (frame, elem), ts, out, actions);
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
        if idx
            .and_then(|i| self.metas.get(i))
            .is_some_and(|m| m.book.is_some())
        {
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

    /// Apply `d` to the book (`replace`: clear it first), the shared book included, then
    /// check the checksum if one was sent (0 or absent: the chain is the proof).
    fn apply(&mut self, idx: usize, d: &OkxBookData<'_>, replace: bool, ts: i64) -> Applied {
        let Some(st) = self.states.get_mut(idx) else {
            return Applied::Malformed;
        };
        if replace {
            st.wire.clear();
        }
        let mult = st.mult;
        let (bids, asks) = if replace {
            (
                fill_side(&d.bids, mult, &mut st.wire, true),
                fill_side(&d.asks, mult, &mut st.wire, false),
            )
        } else {
            let hints = &mut self.hints;
            (
                apply_side(&d.bids, mult, &mut st.wire, true, &mut hints.0),
                apply_side(&d.asks, mult, &mut st.wire, false, &mut hints.1),
            )
        };
        let (Some(bids), Some(asks)) = (bids, asks) else {
            return Applied::Malformed;
        };
        if replace || d.seq_id.is_some() {
            st.last_seq = d.seq_id;
        }
        if let Some(b) = self.metas.get(idx).and_then(|m| m.book.as_ref()) {
            let mut b = b.write();
            if replace {
                // worst first, like `fill_side`: appends instead of shifts
                b.clear();
                for &(p, s) in bids.iter().rev() {
                    b.set_bid(p, s);
                }
                for &(p, s) in asks.iter().rev() {
                    b.set_ask(p, s);
                }
            } else {
                // the wire book's positions (checked, so a book out of step stays right)
                for (bid, levels, hints) in
                    [(true, &bids, &self.hints.0), (false, &asks, &self.hints.1)]
                {
                    for (&(p, s), &at) in levels.iter().zip(hints) {
                        b.set_level_near(bid, at, p, s);
                    }
                }
            }
            if replace || d.seq_id.is_some() {
                b.seq = seq_u64(d.seq_id);
            }
            b.ts_exchange = d.ts.and_then(ms_to_ns).unwrap_or(b.ts_exchange);
            b.ts_recv = ts;
        }
        let Some(sent) = d.checksum.filter(|c| *c != 0) else {
            self.counters.checksum_absent += 1;
            return Applied::Ok(bids, asks);
        };
        let computed = self
            .states
            .get(idx)
            .map_or(0, |st| i64::from(st.wire.checksum(&mut self.scratch)));
        if computed == sent {
            self.counters.checksum_ok += 1;
            Applied::Ok(bids, asks)
        } else {
            self.counters.checksum_failed += 1;
            Applied::ChecksumFailed(StatusReason::Checksum {
                expected: sent,
                computed,
            })
        }
    }

    /// A pushed snapshot, a `books5` message, or (via the REST path) a REST book.
    fn on_snapshot_msg(
        &mut self,
        idx: usize,
        d: &OkxBookData<'_>,
        frame: &str,
        ts: i64,
        out: &mut Vec<Event>,
        actions: &mut Vec<Action>,
    ) {
        if let Some(st) = self.states.get_mut(idx) {
            st.rest_anchor = None;
        }
        self.counters.snapshots += 1;
        if let Some((bids, asks)) = self.applied(idx, d, true, frame, ts, out, actions) {
            self.go_live(idx, ts, out);
            self.emit(idx, d, bids, asks, true, ts, out);
        }
    }

    /// [`Self::apply`], turning a failure into this symbol's resync.
    #[allow(clippy::too_many_arguments)]
    fn applied(
        &mut self,
        idx: usize,
        d: &OkxBookData<'_>,
        replace: bool,
        frame: &str,
        ts: i64,
        out: &mut Vec<Event>,
        actions: &mut Vec<Action>,
    ) -> Option<(Levels, Levels)> {
        match self.apply(idx, d, replace, ts) {
            Applied::Ok(bids, asks) => Some((bids, asks)),
            Applied::Malformed => {
                self.malformed(frame, 0, ts, out);
                let reason = StatusReason::MalformedFrame {
                    len: frame.len(),
                    offset: 0,
                };
                self.resync(idx, reason, ts, out, actions);
                None
            }
            Applied::ChecksumFailed(reason) => {
                self.resync(idx, reason, ts, out, actions);
                None
            }
        }
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
        bids: Levels,
        asks: Levels,
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

    fn on_update(
        &mut self,
        idx: usize,
        d: &OkxBookData<'_>,
        (frame, elem): (&str, usize),
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
        if st.phase == Phase::Live {
            return self.on_live_update(idx, d, frame, ts, out, actions);
        }
        // no snapshot was pushed: buffer and bootstrap from REST (exchanges.md §4.5)
        st.phase = Phase::Bootstrap;
        if st.buffer.len() >= self.buffer_cap {
            st.buffer.pop_front();
            self.counters.buffer_dropped += 1;
        }
        st.buffer.push_back(Buffered {
            ts_recv: ts,
            prev: d.prev_seq_id,
            frame: frame.into(),
            elem,
        });
        if !st.snapshot_pending {
            st.snapshot_pending = true;
            actions.push(Action::FetchSnapshot(idx));
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
        let verdict = match (st.rest_anchor, d.prev_seq_id, d.seq_id) {
            (Some(snap), Some(prev), Some(seq)) => book::bootstrap_first(snap, prev, seq),
            (Some(_), _, _) => BootVerdict::Apply,
            (None, prev, _) => match book::next(st.last_seq, prev) {
                SeqVerdict::Apply => BootVerdict::Apply,
                SeqVerdict::Gap(expected, got) => BootVerdict::Gap(expected, got),
            },
        };
        match verdict {
            BootVerdict::Drop => self.counters.updates_dropped += 1,
            BootVerdict::Gap(expected, got) => {
                self.counters.gaps += 1;
                self.resync(idx, gap(expected, got), ts, out, actions);
            }
            BootVerdict::Apply => {
                st.rest_anchor = None;
                if let Some((bids, asks)) = self.applied(idx, d, false, frame, ts, out, actions) {
                    self.emit(idx, d, bids, asks, false, ts, out);
                }
            }
        }
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
    pub(super) fn on_subscribed(&mut self, idx: usize, channel: &str) {
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
        // without a seqId the snapshot cannot be placed in the stream (an UNVERIFIED field)
        let Some((d, snap)) = list
            .as_ref()
            .and_then(|l| l.first())
            .and_then(|d| Some((d, d.seq_id?)))
        else {
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
        let buffered = self
            .states
            .get_mut(idx)
            .map(|s| std::mem::take(&mut s.buffer))
            .unwrap_or_default();
        self.counters.snapshots += 1;
        self.counters.rest_snapshots += 1;
        let Some((bids, asks)) = self.applied(idx, d, true, body, ts, out, actions) else {
            return;
        };
        self.go_live(idx, ts, out);
        if let Some(st) = self.states.get_mut(idx) {
            st.rest_anchor = Some(snap);
        }
        self.emit(idx, d, bids, asks, true, ts, out);
        for b in buffered {
            if self.states.get(idx).map(|s| s.phase) != Some(Phase::Live) {
                return; // a break inside the buffer started a resync
            }
            match sonic_rs::from_str::<OkxBookFrame>(&b.frame) {
                Ok(f) => {
                    if let Some(d) = f.data.get(b.elem) {
                        self.on_live_update(idx, d, &b.frame, b.ts_recv, out, actions);
                    }
                }
                Err(e) => return self.malformed(&b.frame, e.offset(), ts, out),
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
        self.error_status(sym.as_ref(), reason.clone(), ts, out);
        // fall back to a fresh subscription: it may push a snapshot
        self.resync(idx, reason, ts, out, actions);
    }

    /// `bbo-tbt`: the top of the book, one level per side.
    fn on_bbo(
        &mut self,
        f: &OkxBookFrame<'_>,
        frame: &str,
        ts: i64,
        out: &mut Vec<Event>,
        actions: &mut Vec<Action>,
    ) {
        let Some(inst_id) = f.arg.inst_id else {
            return self.malformed(frame, 0, ts, out);
        };
        let Some(meta) = self.resolve(inst_id, ts, out, actions) else {
            return;
        };
        let mult = meta.contract_size();
        for d in &f.data {
            let (Some(b), Some(a)) = (d.bids.first(), d.asks.first()) else {
                continue; // one side empty: no quote to publish
            };
            let (Some(bp), Some(bs), Some(ap), Some(az)) = (
                wire_price(b.px),
                wire_size(b.sz),
                wire_price(a.px),
                wire_size(a.sz),
            ) else {
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
