//! State kept by the Binance processor: per-symbol sync and rollover bookkeeping, the
//! duplicate filters used while two sockets overlap, and the counters. Data only; the logic
//! lives in `processor.rs`, `sync.rs` and `futures.rs`.

use std::collections::VecDeque;

use super::sync::{Diff, Phase};

/// Per-symbol state: book sync, rollover bookkeeping, duplicate high-water marks and the
/// silent-stream watchdog.
#[derive(Debug)]
pub(super) struct SymState {
    pub phase: Phase,
    pub buffer: VecDeque<Diff>,
    pub snapshot_pending: bool,
    pub ever_live: bool,
    pub last_id: u64,
    /// Rollover: diffs that arrived ahead of the book from one of two overlapping sockets.
    pub ahead: VecDeque<Diff>,
    /// Rollover: the new socket's depth stream has caught up with the book.
    pub next_in_sync: bool,
    /// Duplicate filters by trade id, bookTicker `u`, markPrice `E`, forceOrder `E`.
    pub dedupe: [Dedupe; 4],
    /// Last frame time per watched channel (book, bbo, funding), ns; 0 = not watched.
    pub last_seen: [i64; 3],
    pub silent_reported: [bool; 3],
}

/// Slots of `SymState::dedupe`.
pub(super) const D_TRADE: usize = 0;
pub(super) const D_BBO: usize = 1;
pub(super) const D_MARK: usize = 2;
pub(super) const D_LIQ: usize = 3;

/// Ids remembered per stream and symbol during a rollover overlap.
const RECENT_CAP: usize = 4096;

/// Duplicate filter for one stream of one symbol. Ids rise per symbol on one socket, but
/// two overlapping sockets interleave: the faster one may deliver id 52 before the slower
/// one delivers 51. So during an overlap an id is new when it is above what was emitted
/// before the overlap and not among the ids emitted since (bounded), never by `<= max`.
#[derive(Debug, Default)]
pub(super) struct Dedupe {
    max: u64,
    floor: u64,
    recent: VecDeque<u64>,
}

impl Dedupe {
    /// True when `id` has not been emitted (and records it).
    #[inline]
    pub(super) fn fresh(&mut self, id: u64, overlap: bool) -> bool {
        if !overlap {
            self.max = self.max.max(id);
            return true;
        }
        if id <= self.floor || self.recent.iter().rev().any(|r| *r == id) {
            return false;
        }
        if self.recent.len() >= RECENT_CAP {
            if let Some(oldest) = self.recent.pop_front() {
                self.floor = self.floor.max(oldest);
            }
        }
        self.recent.push_back(id);
        self.max = self.max.max(id);
        true
    }

    /// An overlap starts: everything up to the highest id emitted so far is known.
    pub(super) fn begin(&mut self) {
        self.floor = self.max;
        self.recent.clear();
    }

    /// The overlap ended: forget the ids (one socket again).
    pub(super) fn end(&mut self) {
        self.recent = VecDeque::new();
    }
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
    /// Funding (mark price) events emitted.
    pub funding: u64,
    /// Liquidation events emitted.
    pub liquidations: u64,
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
    /// Rollovers: overlaps of an old and a new connection started.
    pub overlaps: u64,
    /// Frames received twice during a rollover overlap and dropped.
    pub overlap_duplicates: u64,
    /// Diffs parked during an overlap because the other socket was behind.
    pub overlap_parked: u64,
    /// Subscribed streams reported silent.
    pub silent_streams: u64,
}
