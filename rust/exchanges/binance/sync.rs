//! Per-symbol book synchronisation of the Binance processor (exchanges.md 2.6 and 3.4):
//! buffer diffs until the REST snapshot arrives, apply it, check every diff against the
//! chain for as long as the feed runs, and resync only the symbol that broke.
//!
//! Also the rollover overlap: while an old and a new connection both deliver the same depth
//! streams, a diff that repeats what the book already holds is dropped, and a diff that is
//! ahead of the book (the other socket is behind) is parked until the chain reaches it, so
//! the race between two sockets never looks like a gap. Parked diffs that never chain are
//! a real gap once the overlap ends.

use std::collections::VecDeque;

use super::book::Verdict;
use super::messages::{BinanceDepthSnapshot, BinanceDepthUpdate};
use super::processor::{ms_to_ns, BinanceProcessor, Dedupe};
use crate::exchanges::Action;
use crate::model::{BookDelta, BookState, Event, StatusKind, StatusReason};

/// Diffs parked per symbol during a rollover overlap; past it the symbol resyncs.
pub const AHEAD_CAP: usize = 256;
/// How long after an overlap the duplicate filters stay on (ns): the new socket, if it was
/// the slower one, may still deliver copies of what the old one delivered before closing.
pub const DEDUPE_TAIL_NS: i64 = 2_000_000_000;

/// A depth diff with its levels parsed (and sizes normalized).
#[derive(Debug, Clone)]
pub struct Diff {
    pub(super) first_id: u64,
    pub(super) last_id: u64,
    pub(super) prev_last_id: Option<u64>,
    pub(super) ts_exchange: i64,
    pub(super) ts_recv: i64,
    pub(super) bids: Vec<(f64, f64)>,
    pub(super) asks: Vec<(f64, f64)>,
}

/// Where a symbol's book is in its sync cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Buffering diffs until a snapshot arrives.
    AwaitSnapshot,
    /// Snapshot applied; the next diff must satisfy the first-event rule.
    AwaitFirst,
    /// Chained.
    Live,
}

impl BinanceProcessor {
    pub(super) fn on_depth(
        &mut self,
        d: BinanceDepthUpdate<'_>,
        frame: &str,
        ts_recv: i64,
        out: &mut Vec<Event>,
        actions: &mut Vec<Action>,
    ) {
        let Some(idx) = self.lookup(d.symbol, ts_recv, out) else {
            return;
        };
        // futures: T (matching time) is preferred over E (exchanges.md 7)
        let Some(ts_exchange) = ms_to_ns(d.tx_time.unwrap_or(d.event_time)) else {
            return self.malformed(frame, 0, ts_recv, out);
        };
        let mult = self.size_mult(idx);
        let (bids, asks) = (d.bids.scaled(mult), d.asks.scaled(mult));
        self.parsed_at = crate::net::now_ns();
        if let Some(st) = self.states.get_mut(idx) {
            st.last_seen[super::futures::W_BOOK] = ts_recv;
            st.silent_reported[super::futures::W_BOOK] = false;
        }
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
                // two sockets during a rollover buffer the same diffs: keep one copy
                if st.buffer.back().is_some_and(|b| b.last_id >= diff.last_id) {
                    self.counters.overlap_duplicates += 1;
                    return;
                }
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

    /// Check one diff against the chain and apply it, or park it (overlap), or resync.
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
            Verdict::Drop => {
                if self.overlap {
                    self.counters.overlap_duplicates += 1;
                    if self.from_next {
                        // the new socket repeats what the book holds: it has caught up
                        if let Some(st) = self.states.get_mut(idx) {
                            st.next_in_sync = true;
                        }
                    }
                } else {
                    self.counters.diffs_dropped += 1;
                }
            }
            Verdict::Apply => {
                if self.overlap && self.from_next {
                    if let Some(st) = self.states.get_mut(idx) {
                        st.next_in_sync = true;
                    }
                }
                self.apply_now(idx, diff, out);
                if self.overlap {
                    self.drain_ahead(idx, out);
                }
            }
            Verdict::Gap(expected, got) => {
                if self.overlap {
                    return self.park(idx, diff, out, actions);
                }
                self.gap(idx, expected, got, diff, out, actions);
            }
        }
    }

    fn gap(
        &mut self,
        idx: usize,
        expected: u64,
        got: u64,
        diff: Diff,
        out: &mut Vec<Event>,
        actions: &mut Vec<Action>,
    ) {
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

    /// Overlap: the diff is ahead of the book because the other socket lags; keep it.
    fn park(&mut self, idx: usize, diff: Diff, out: &mut Vec<Event>, actions: &mut Vec<Action>) {
        let Some(st) = self.states.get_mut(idx) else {
            return;
        };
        if st.ahead.iter().any(|a| a.last_id == diff.last_id) {
            self.counters.overlap_duplicates += 1;
            return;
        }
        if st.ahead.len() >= AHEAD_CAP {
            let expected = st.last_id;
            let got = diff.prev_last_id.unwrap_or(diff.first_id);
            st.ahead.clear();
            return self.gap(idx, expected, got, diff, out, actions);
        }
        self.counters.overlap_parked += 1;
        st.ahead.push_back(diff);
    }

    /// Apply parked diffs that now chain; drop the ones the book already holds.
    fn drain_ahead(&mut self, idx: usize, out: &mut Vec<Event>) {
        for _ in 0..AHEAD_CAP {
            let Some(st) = self.states.get_mut(idx) else {
                return;
            };
            if st.phase != Phase::Live {
                return; // before the first applied diff only the first-event rule may start a book
            }
            let last = st.last_id;
            st.ahead.retain(|d| d.last_id > last);
            let rules = self.rules;
            let pos = st.ahead.iter().position(|d| {
                rules.next(last, d.first_id, d.last_id, d.prev_last_id) == Verdict::Apply
            });
            let Some(diff) = pos.and_then(|p| st.ahead.remove(p)) else {
                return;
            };
            self.apply_now(idx, diff, out);
        }
    }

    /// Apply a chained diff to the book and emit it (and the live/recovered status).
    fn apply_now(&mut self, idx: usize, diff: Diff, out: &mut Vec<Event>) {
        let Some(st) = self.states.get_mut(idx) else {
            return;
        };
        let was = st.phase;
        let ever_live = st.ever_live;
        st.last_id = diff.last_id;
        if was == Phase::AwaitFirst {
            st.phase = Phase::Live;
            st.ever_live = true;
        }
        let mut back_from_stale = false;
        if let Some(book) = self.metas.get(idx).and_then(|m| m.book.as_ref()) {
            let mut b = book.write();
            // a silent depth stream marked the book stale; the chain held, so it is live again
            if was == Phase::Live && b.state == BookState::Stale {
                b.state = BookState::Live;
                back_from_stale = true;
            }
            b.set_levels(true, &diff.bids);
            b.set_levels(false, &diff.asks);
            b.seq = diff.last_id;
            b.ts_exchange = diff.ts_exchange;
            b.ts_recv = diff.ts_recv;
            if was == Phase::AwaitFirst {
                b.state = BookState::Live;
            }
        }
        if was == Phase::AwaitFirst || back_from_stale {
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

    pub(super) fn start_resync(
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
        st.ahead.clear();
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

    /// A REST snapshot body for symbol `idx` (spot and futures share the shape).
    pub(super) fn apply_snapshot(
        &mut self,
        idx: usize,
        body: &str,
        ts_recv: i64,
        out: &mut Vec<Event>,
        actions: &mut Vec<Action>,
    ) {
        use crate::exchanges::ExchangeProcessor as _;
        let snap: BinanceDepthSnapshot = match sonic_rs::from_str(body) {
            Ok(s) => s,
            Err(e) => {
                self.malformed(body, e.offset(), ts_recv, out);
                return self.on_snapshot_failed(idx, 200, 0, ts_recv, out);
            }
        };
        let mult = self.size_mult(idx);
        let (bids, asks) = (snap.bids.scaled(mult), snap.asks.scaled(mult));
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
        let buffered: VecDeque<Diff> = std::mem::take(&mut st.buffer);
        // an out-of-range time in a snapshot is not worth rejecting the book over
        let ts_exchange = ms_to_ns(snap.tx_time.unwrap_or(0)).unwrap_or(0);
        if let Some(book) = self.metas.get(idx).and_then(|m| m.book.as_ref()) {
            let mut b = book.write();
            b.clear();
            b.set_levels(true, &bids);
            b.set_levels(false, &asks);
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

    pub(super) fn start_overlap(&mut self, ts: i64) {
        // consecutive rollovers inside the tail keep the ids remembered so far
        let filtering = ts < self.dedupe_until;
        self.end_parking();
        self.overlap = true;
        self.counters.overlaps += 1;
        if !filtering {
            for st in &mut self.states {
                st.dedupe.iter_mut().for_each(Dedupe::begin);
            }
        }
    }

    fn end_parking(&mut self) {
        self.overlap = false;
        self.from_next = false;
        self.next_frames = 0;
        for st in &mut self.states {
            st.ahead.clear();
            st.next_in_sync = false;
        }
    }

    /// The socket is gone: no overlap, no filtering (a reconnect resyncs anyway).
    pub(super) fn reset_overlap(&mut self) {
        self.end_parking();
        self.dedupe_until = 0;
        for st in &mut self.states {
            st.dedupe.iter_mut().for_each(Dedupe::end);
        }
    }

    /// Stop the duplicate filters once the tail after an overlap has passed.
    pub(super) fn expire_dedupe(&mut self, ts: i64) {
        if self.dedupe_until != 0 && !self.overlap && ts >= self.dedupe_until {
            self.dedupe_until = 0;
            for st in &mut self.states {
                st.dedupe.iter_mut().for_each(Dedupe::end);
            }
        }
    }

    /// The new socket delivers data, every live book has seen it catch up, and nothing it
    /// sent early still waits for the old one.
    pub(super) fn overlap_caught_up(&self) -> bool {
        if !self.overlap || self.next_frames == 0 {
            return false;
        }
        !self.channels.book
            || self
                .states
                .iter()
                .all(|s| s.ahead.is_empty() && (s.phase != Phase::Live || s.next_in_sync))
    }

    /// End the overlap: the old socket is gone; what is still parked never chained.
    pub(super) fn finish_overlap(
        &mut self,
        ts: i64,
        out: &mut Vec<Event>,
        actions: &mut Vec<Action>,
    ) {
        for idx in 0..self.states.len() {
            self.drain_ahead(idx, out);
            let Some(st) = self.states.get_mut(idx) else {
                continue;
            };
            if st.ahead.is_empty() {
                continue;
            }
            let mut parked: Vec<Diff> = st.ahead.drain(..).collect();
            parked.sort_by_key(|d| d.last_id);
            let mut parked = parked.into_iter();
            if let Some(mut first) = parked.next() {
                let expected = st.last_id;
                let got = first.prev_last_id.unwrap_or(first.first_id);
                first.ts_recv = ts;
                self.gap(idx, expected, got, first, out, actions);
                // the rest follow the first in the new buffer, waiting for the snapshot
                if let Some(st) = self.states.get_mut(idx) {
                    st.buffer.extend(parked);
                }
            }
        }
        self.end_parking();
        self.dedupe_until = ts.saturating_add(DEDUPE_TAIL_NS);
    }
}
