//! The bounded event bus between connection tasks (async producers) and the dispatcher (a
//! Python thread that waits with the GIL released).
//!
//! Every kind of event has a named policy for a full bus, each counted:
//! - bbo and ticker **conflate**: a newer quote replaces the one of the same symbol still
//!   queued (a slow strategy sees the latest value, never a backlog of stale ones);
//! - book updates are **never dropped**: when one does not fit, that symbol is marked
//!   overflowed, its later deltas are held back and the producer is told to resync the symbol
//!   from a fresh snapshot (announced with a `resync`/`slow_consumer` status); the snapshot
//!   is always accepted and clears the mark, so the consumer's view is whole again;
//! - trades **block** (the socket stops being read and TCP flow control slows the venue) or
//!   **spill** to a bounded file read back in order ([`super::spill`]);
//! - everything else blocks.
//!
//! The overall `OverflowPolicy::DropOldest` remains for monitors that prefer the newest data
//! over completeness: it discards the oldest queued event and counts it.
//!
//! Bounds: the queue holds `capacity` events, plus at most one conflated quote per
//! (kind, symbol) and one snapshot per overflowed symbol; the conflation index holds one
//! entry per (kind, symbol).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use tokio::sync::Notify;

use super::spill::{Spill, SpillConfig};
use crate::model::hash::{FastMap, FastSet};
use crate::model::{Event, SymbolMeta};

/// What happens when the bus is full, for kinds without a policy of their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverflowPolicy {
    /// Producers wait for space (nothing lost).
    Block,
    /// The oldest queued event is dropped and counted.
    DropOldest,
}

impl OverflowPolicy {
    /// Parse `"block"` / `"drop_oldest"`.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "block" => Some(Self::Block),
            "drop_oldest" => Some(Self::DropOldest),
            _ => None,
        }
    }

    /// The policy's name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Block => "block",
            Self::DropOldest => "drop_oldest",
        }
    }
}

/// Full-bus policy of bbo and ticker events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotePolicy {
    /// Keep only the latest queued quote per symbol.
    Conflate,
    /// Wait like everything else.
    Block,
}

/// Full-bus policy of book updates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BookPolicy {
    /// Hold the symbol's deltas back and resync it from a fresh snapshot.
    Resync,
    /// Wait (back-pressure to the socket).
    Block,
}

/// Full-bus policy of trades.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TradePolicy {
    /// Wait (back-pressure to the socket).
    Block,
    /// Append to the spill file, read back in order.
    Spill,
}

/// Per-kind policies (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KindPolicies {
    /// bbo and ticker.
    pub quotes: QuotePolicy,
    /// Book updates.
    pub book: BookPolicy,
    /// Trades.
    pub trades: TradePolicy,
}

impl Default for KindPolicies {
    fn default() -> Self {
        Self {
            quotes: QuotePolicy::Conflate,
            book: BookPolicy::Resync,
            trades: TradePolicy::Block,
        }
    }
}

impl KindPolicies {
    /// Every kind waits for room (nothing conflated, resynced or spilled).
    #[must_use]
    pub fn all_block() -> Self {
        Self {
            quotes: QuotePolicy::Block,
            book: BookPolicy::Block,
            trades: TradePolicy::Block,
        }
    }

    /// Parse the three policy names (`conflate|block`, `resync|block`, `block|spill`); the
    /// error names the one that is wrong.
    ///
    /// # Errors
    /// `(kind, name)` of the first unknown policy.
    pub fn parse<'a>(
        quotes: &'a str,
        book: &'a str,
        trades: &'a str,
    ) -> Result<Self, (&'static str, &'a str)> {
        Ok(Self {
            quotes: match quotes {
                "conflate" => QuotePolicy::Conflate,
                "block" => QuotePolicy::Block,
                other => return Err(("quotes", other)),
            },
            book: match book {
                "resync" => BookPolicy::Resync,
                "block" => BookPolicy::Block,
                other => return Err(("book", other)),
            },
            trades: match trades {
                "block" => TradePolicy::Block,
                "spill" => TradePolicy::Spill,
                other => return Err(("trades", other)),
            },
        })
    }
}

/// Bus counters.
#[derive(Debug, Default)]
pub struct BusCounters {
    /// Events accepted.
    pub pushed: AtomicU64,
    /// Events handed to the consumer.
    pub popped: AtomicU64,
    /// Events dropped by `DropOldest`.
    pub dropped: AtomicU64,
    /// Times a producer had to wait for space (`Block`).
    pub full_waits: AtomicU64,
    /// Highest queue depth seen.
    pub high_water: AtomicU64,
    /// Quotes replaced in place by a newer one of the same symbol.
    pub conflated: AtomicU64,
    /// Book resyncs forced by a full bus.
    pub book_overflows: AtomicU64,
    /// Book deltas held back while their symbol waited for its fresh snapshot.
    pub book_held_back: AtomicU64,
    /// Trades written to the spill file.
    pub spilled: AtomicU64,
    /// Trades read back from the spill file.
    pub unspilled: AtomicU64,
    /// Spill file errors (the trade then waits for space instead).
    pub spill_errors: AtomicU64,
    /// Bytes in the spill file now.
    pub spill_bytes: AtomicU64,
}

/// Conflation key: (kind, symbol identity).
type QuoteKey = (u8, usize);

fn quote_key(ev: &Event) -> Option<QuoteKey> {
    match ev {
        Event::Bbo(b) => Some((0, Arc::as_ptr(&b.sym) as usize)),
        Event::Ticker(t) => Some((1, Arc::as_ptr(&t.sym) as usize)),
        _ => None,
    }
}

#[derive(Debug)]
struct Inner {
    q: VecDeque<Event>,
    /// Absolute position of `q[0]` (events ever popped or dropped from the front).
    head: u64,
    /// Absolute position of the queued quote of each key (checked before use).
    latest: FastMap<QuoteKey, u64>,
    /// Symbols whose book deltas are held back until their fresh snapshot.
    overflowed: FastSet<usize>,
    spill: Option<Spill>,
}

impl Inner {
    fn push(&mut self, ev: Event) {
        if let Some(k) = quote_key(&ev) {
            self.latest.insert(k, self.head + self.q.len() as u64);
        }
        self.q.push_back(ev);
    }

    /// Replace the queued quote with the same key, if one is still queued.
    fn conflate(&mut self, key: QuoteKey, ev: &mut Option<Event>) -> bool {
        let Some(&abs) = self.latest.get(&key) else {
            return false;
        };
        let Some(slot) = abs
            .checked_sub(self.head)
            .and_then(|i| usize::try_from(i).ok())
            .and_then(|i| self.q.get_mut(i))
        else {
            return false;
        };
        if quote_key(slot) != Some(key) {
            return false;
        }
        if let Some(new) = ev.take() {
            *slot = new;
        }
        true
    }

    fn pop_front(&mut self) -> Option<Event> {
        let ev = self.q.pop_front();
        if ev.is_some() {
            self.head += 1;
        }
        ev
    }
}

/// What [`EventBus::offer`] did with an event.
enum Offer {
    Taken,
    /// No room under the policy: wait and offer it again.
    Wait(Event),
}

/// A bounded multi-producer, single-consumer event queue.
#[derive(Debug)]
pub struct EventBus {
    inner: Mutex<Inner>,
    capacity: usize,
    policy: OverflowPolicy,
    kinds: KindPolicies,
    spill_cfg: Option<SpillConfig>,
    not_empty: Condvar,
    /// Async twin of `not_empty`, for a consumer that waits by driving an inline runtime.
    ready: Notify,
    not_full: Notify,
    /// Set by [`EventBus::close_intake`]: producers no longer wait for room.
    closing: AtomicBool,
    /// How long an empty `pop_batch` spins before it sleeps, ns (0: sleeps at once).
    busy_poll_ns: AtomicU64,
    /// Counters.
    pub counters: BusCounters,
}

static NEXT_BUS: AtomicU64 = AtomicU64::new(1);

impl EventBus {
    /// A bus of at most `capacity` events (at least 16) with the default per-kind policies.
    #[must_use]
    pub fn new(capacity: usize, policy: OverflowPolicy) -> Self {
        Self::with_policies(capacity, policy, KindPolicies::default(), None)
    }

    /// A bus with explicit per-kind policies; `spill` is required for `TradePolicy::Spill`
    /// (without it trades block).
    #[must_use]
    pub fn with_policies(
        capacity: usize,
        policy: OverflowPolicy,
        kinds: KindPolicies,
        spill: Option<SpillConfig>,
    ) -> Self {
        let capacity = capacity.max(16);
        Self {
            inner: Mutex::new(Inner {
                q: VecDeque::with_capacity(capacity.min(1 << 16)),
                head: 0,
                latest: FastMap::default(),
                overflowed: FastSet::default(),
                spill: None,
            }),
            capacity,
            policy,
            kinds,
            spill_cfg: spill,
            not_empty: Condvar::new(),
            ready: Notify::new(),
            not_full: Notify::new(),
            closing: AtomicBool::new(false),
            busy_poll_ns: AtomicU64::new(0),
            counters: BusCounters::default(),
        }
    }

    /// Let an empty `pop_batch` spin this long before it sleeps on the condition variable:
    /// a consumer that is already running picks the next event up without a thread wake-up
    /// (tens of microseconds on a virtual machine), at the price of a busy core. 0 = off.
    pub fn set_busy_poll(&self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.busy_poll_ns.store(ns, Ordering::Relaxed);
    }

    /// Capacity.
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Policy.
    #[must_use]
    pub fn policy(&self) -> OverflowPolicy {
        self.policy
    }

    /// Per-kind policies.
    #[must_use]
    pub fn kinds(&self) -> KindPolicies {
        self.kinds
    }

    /// Current depth (the spill file not included).
    #[must_use]
    pub fn len(&self) -> usize {
        self.inner.lock().q.len()
    }

    /// True when nothing is queued.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Trades waiting in the spill file.
    #[must_use]
    pub fn spilled_pending(&self) -> u64 {
        self.inner.lock().spill.as_ref().map_or(0, Spill::pending)
    }

    /// Place one event under the policies (lock held). `overflowed` collects symbols whose
    /// book must be resynced; `force` accepts past the bound (synchronous callers).
    fn offer(
        &self,
        g: &mut Inner,
        ev: Event,
        overflowed: &mut Vec<Arc<SymbolMeta>>,
        force: bool,
    ) -> Offer {
        let c = &self.counters;
        let full = g.q.len() >= self.capacity;
        let lossy = self.policy == OverflowPolicy::DropOldest;
        match &ev {
            Event::Book(d) if self.kinds.book == BookPolicy::Resync && !lossy => {
                let key = Arc::as_ptr(&d.sym) as usize;
                if g.overflowed.contains(&key) {
                    if !d.is_snapshot {
                        c.book_held_back.fetch_add(1, Ordering::Relaxed);
                        return Offer::Taken;
                    }
                    g.overflowed.remove(&key);
                } else if full && !d.is_snapshot && !force {
                    g.overflowed.insert(key);
                    overflowed.push(d.sym.clone());
                    c.book_overflows.fetch_add(1, Ordering::Relaxed);
                    c.book_held_back.fetch_add(1, Ordering::Relaxed);
                    return Offer::Taken;
                }
                // a snapshot always fits: it is what makes the consumer's view whole again
                g.push(ev);
            }
            Event::Bbo(_) | Event::Ticker(_)
                if full && self.kinds.quotes == QuotePolicy::Conflate && !lossy =>
            {
                let mut slot = Some(ev);
                if let Some(key) = slot.as_ref().and_then(quote_key) {
                    if g.conflate(key, &mut slot) {
                        c.conflated.fetch_add(1, Ordering::Relaxed);
                        return Offer::Taken;
                    }
                }
                // none of this symbol queued: one quote per symbol may exceed the bound
                if let Some(ev) = slot {
                    g.push(ev);
                }
            }
            Event::Trade(t)
                if self.kinds.trades == TradePolicy::Spill
                    && !lossy
                    && (full || g.spill.as_ref().is_some_and(|s| s.pending() > 0)) =>
            {
                if g.spill.is_none() {
                    if let Some(cfg) = &self.spill_cfg {
                        match Spill::open(cfg, NEXT_BUS.fetch_add(1, Ordering::Relaxed)) {
                            Ok(s) => g.spill = Some(s),
                            Err(_) => {
                                c.spill_errors.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                }
                let written = match g.spill.as_mut() {
                    Some(s) if s.has_room() => match s.push(t) {
                        Ok(()) => {
                            c.spill_bytes.store(s.pending_bytes(), Ordering::Relaxed);
                            true
                        }
                        Err(_) => {
                            c.spill_errors.fetch_add(1, Ordering::Relaxed);
                            false
                        }
                    },
                    _ => false,
                };
                if written {
                    c.spilled.fetch_add(1, Ordering::Relaxed);
                    return Offer::Taken;
                }
                // the spill is at its bound: wait for the consumer, even with room in the
                // queue, so no trade overtakes the spilled ones
                if !force {
                    return Offer::Wait(ev);
                }
                g.push(ev);
            }
            _ if full && lossy => {
                g.pop_front();
                c.dropped.fetch_add(1, Ordering::Relaxed);
                g.push(ev);
            }
            _ if full && !force => return Offer::Wait(ev),
            _ => g.push(ev),
        }
        c.pushed.fetch_add(1, Ordering::Relaxed);
        Offer::Taken
    }

    /// Push every event of `events` (drained), waiting for space where the policy blocks.
    /// Returns the symbols whose book updates overflowed: the caller resyncs each.
    pub async fn publish(&self, events: &mut Vec<Event>) -> Vec<Arc<SymbolMeta>> {
        let mut overflowed = Vec::new();
        let mut it = events.drain(..);
        let mut pending: Option<Event> = None;
        loop {
            // the usual case has room: no waiter is registered (that costs a lock of the
            // Notify's own and its removal afterwards)
            pending = self.offer_all(pending, &mut it, &mut overflowed);
            if pending.is_none() {
                return overflowed;
            }
            // full: register interest, then look again, so a pop between the first look and
            // the registration cannot be missed
            let waiter = self.not_full.notified();
            tokio::pin!(waiter);
            waiter.as_mut().enable();
            pending = self.offer_all(pending, &mut it, &mut overflowed);
            if pending.is_none() {
                return overflowed;
            }
            self.counters.full_waits.fetch_add(1, Ordering::Relaxed);
            waiter.await;
        }
    }

    /// Offer `pending`, then the rest of `events`, until one has to wait (returned) or all are
    /// taken (`None`); wakes the consumer.
    fn offer_all(
        &self,
        mut pending: Option<Event>,
        events: &mut impl Iterator<Item = Event>,
        overflowed: &mut Vec<Arc<SymbolMeta>>,
    ) -> Option<Event> {
        let blocked = {
            let mut g = self.inner.lock();
            // once intake closes, nothing waits: what a producer holds is queued
            let force = self.closing.load(Ordering::SeqCst);
            let mut blocked = None;
            while let Some(ev) = pending.take().or_else(|| events.next()) {
                if let Offer::Wait(ev) = self.offer(&mut g, ev, overflowed, force) {
                    blocked = Some(ev);
                    break;
                }
            }
            let depth = g.q.len() as u64;
            self.counters.high_water.fetch_max(depth, Ordering::Relaxed);
            blocked
        };
        self.not_empty.notify_one();
        self.ready.notify_one();
        blocked
    }

    /// Push from synchronous code (replay, tests); never waits: where the policy would block
    /// it exceeds the bound by what one caller pushes, so callers must drain between pushes.
    pub fn publish_now(&self, events: &mut Vec<Event>) {
        let mut overflowed = Vec::new();
        {
            let mut g = self.inner.lock();
            for ev in events.drain(..) {
                let _ = self.offer(&mut g, ev, &mut overflowed, true);
            }
        }
        self.not_empty.notify_one();
        self.ready.notify_one();
    }

    /// Wait (asynchronously) up to `timeout` until there is something to pop: the wait of a
    /// consumer that drives the runtime its producers run on (`worker_threads = 0`), so the
    /// hand-off needs no thread wake-up.
    /// With a busy poll set, it first spins for that long: it yields to the runtime's other
    /// tasks and polls the sockets without sleeping, so the thread stays running (and its
    /// caches warm) between bursts.
    pub async fn ready(&self, timeout: Duration) {
        let start = tokio::time::Instant::now();
        let deadline = start + timeout;
        let spin = Duration::from_nanos(self.busy_poll_ns.load(Ordering::Relaxed)).min(timeout);
        loop {
            // register before looking, so a push between the check and the await is seen
            let waiter = self.ready.notified();
            tokio::pin!(waiter);
            waiter.as_mut().enable();
            {
                let g = self.inner.lock();
                if !g.q.is_empty() || g.spill.as_ref().is_some_and(|s| s.pending() > 0) {
                    return;
                }
            }
            if start.elapsed() < spin {
                tokio::task::yield_now().await;
                continue;
            }
            if tokio::time::timeout_at(deadline, waiter).await.is_err() {
                return;
            }
        }
    }

    /// Wait up to `timeout` for events and move at most `max` into `out`; returns how many.
    /// Spilled trades are read back as room frees up.
    pub fn pop_batch(&self, out: &mut Vec<Event>, max: usize, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        let spin = self.busy_poll_ns.load(Ordering::Relaxed);
        if spin > 0 {
            // pushed == popped: nothing queued (a hint read without the lock)
            let c = &self.counters;
            let until = Instant::now() + Duration::from_nanos(spin).min(timeout);
            while c.pushed.load(Ordering::Acquire) == c.popped.load(Ordering::Acquire)
                && Instant::now() < until
            {
                std::hint::spin_loop();
            }
        }
        let mut g = self.inner.lock();
        while g.q.is_empty() && g.spill.as_ref().is_none_or(|s| s.pending() == 0) {
            if self.not_empty.wait_until(&mut g, deadline).timed_out() {
                break;
            }
        }
        if g.q.is_empty() {
            self.unspill(&mut g, self.capacity.min(max.max(1)));
        }
        let n = g.q.len().min(max);
        out.extend(g.q.drain(..n));
        g.head += n as u64;
        if g.q.len() < self.capacity / 2 {
            let room = self.capacity / 2 - g.q.len();
            self.unspill(&mut g, room);
        }
        drop(g);
        if n > 0 {
            self.counters.popped.fetch_add(n as u64, Ordering::Relaxed);
            self.not_full.notify_waiters();
        }
        n
    }

    /// Move up to `room` spilled trades back into the queue (oldest first).
    fn unspill(&self, g: &mut Inner, room: usize) {
        let Some(spill) = g.spill.as_mut() else {
            return;
        };
        if spill.pending() == 0 || room == 0 {
            return;
        }
        let mut trades = Vec::new();
        if spill.pop(room.min(8192), &mut trades).is_err() {
            self.counters.spill_errors.fetch_add(1, Ordering::Relaxed);
        }
        self.counters
            .spill_bytes
            .store(spill.pending_bytes(), Ordering::Relaxed);
        let n = trades.len() as u64;
        for t in trades {
            g.push(Event::Trade(t));
        }
        self.counters.unspilled.fetch_add(n, Ordering::Relaxed);
        self.counters.pushed.fetch_add(n, Ordering::Relaxed);
    }

    /// Path of the spill file, once one was opened.
    #[must_use]
    pub fn spill_path(&self) -> Option<std::path::PathBuf> {
        self.inner
            .lock()
            .spill
            .as_ref()
            .map(|s| s.path().to_path_buf())
    }

    /// Intake is closing (the engine stops): producers waiting for room, and any that publish
    /// later, queue what they hold without waiting. The consumer drains only after the
    /// producers have finished, so a wait for room then would last until the stop's deadline
    /// and lose the waiting batch. Exceeds the bound by at most what the producers held.
    pub fn close_intake(&self) {
        self.closing.store(true, Ordering::SeqCst);
        self.not_full.notify_waiters();
    }

    /// Producers wait for room again (an engine that starts anew).
    pub fn open_intake(&self) {
        self.closing.store(false, Ordering::SeqCst);
    }

    /// Wake a waiting consumer (used at shutdown).
    pub fn wake(&self) {
        self.not_empty.notify_all();
        self.ready.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Bbo, BookDelta, Side, Status, StatusKind, StatusReason, Trade, Venue};

    fn ev(ts: i64) -> Event {
        Event::Status(Status {
            venue: Venue::Binance,
            sym: None,
            kind: StatusKind::Connected,
            reason: StatusReason::None,
            state: None,
            ts,
        })
    }

    fn ts_of(e: &Event) -> i64 {
        match e {
            Event::Status(s) => s.ts,
            _ => -1,
        }
    }

    #[test]
    fn drop_oldest_keeps_the_newest_and_counts() {
        let bus = EventBus::new(16, OverflowPolicy::DropOldest);
        let mut evs: Vec<Event> = (0..20).map(ev).collect();
        bus.publish_now(&mut evs);
        let mut out = Vec::new();
        assert_eq!(bus.pop_batch(&mut out, 100, Duration::from_millis(1)), 16);
        assert_eq!(ts_of(&out[0]), 4);
        assert_eq!(bus.counters.dropped.load(Ordering::Relaxed), 4);
    }

    /// A blocking bus of 16 and a current-thread runtime for its producer.
    fn small_blocking_bus() -> (Arc<EventBus>, tokio::runtime::Runtime) {
        let bus = Arc::new(EventBus::new(16, OverflowPolicy::Block));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        (bus, rt)
    }

    #[test]
    fn block_waits_for_the_consumer_and_loses_nothing() {
        let (bus, rt) = small_blocking_bus();
        let producer = {
            let bus = bus.clone();
            std::thread::spawn(move || {
                rt.block_on(async {
                    // one publish of 100 events into a bound of 16 must wait for the consumer
                    let mut evs: Vec<Event> = (0..100).map(ev).collect();
                    bus.publish(&mut evs).await;
                });
            })
        };
        // start consuming only once the bus is full, so the producer is certainly waiting
        let deadline = Instant::now() + Duration::from_secs(10);
        while bus.len() < 16 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(bus.len(), 16);
        let mut got = Vec::new();
        while got.len() < 100 && Instant::now() < deadline {
            bus.pop_batch(&mut got, 7, Duration::from_millis(50));
        }
        producer.join().unwrap();
        let ts: Vec<i64> = got.iter().map(ts_of).collect();
        assert_eq!(ts, (0..100).collect::<Vec<_>>());
        assert!(bus.counters.full_waits.load(Ordering::Relaxed) > 0);
        assert_eq!(bus.counters.dropped.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn closing_intake_releases_a_blocked_producer_with_its_whole_batch() {
        // the engine's stop: a producer waits on a full bus while the consumer waits for the
        // producers to finish before it drains. Closing intake must end the wait at once and
        // queue the held events, in order, and later publishes must not wait either.
        let (bus, rt) = small_blocking_bus();
        let producer = {
            let bus = bus.clone();
            std::thread::spawn(move || {
                rt.block_on(async {
                    // bounded: a regression fails the test instead of hanging it
                    tokio::time::timeout(Duration::from_secs(5), async {
                        let mut evs: Vec<Event> = (0..40).map(ev).collect();
                        bus.publish(&mut evs).await;
                        bus.publish(&mut vec![ev(40)]).await;
                    })
                    .await
                    .is_ok()
                })
            })
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while bus.counters.full_waits.load(Ordering::Relaxed) == 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(bus.len(), 16, "the producer waits on a full bus");
        let t0 = Instant::now();
        bus.close_intake();
        assert!(
            producer.join().unwrap(),
            "the producer still waits after close_intake"
        );
        assert!(
            t0.elapsed() < Duration::from_secs(2),
            "the producer did not wait"
        );
        let mut got = Vec::new();
        while bus.pop_batch(&mut got, 100, Duration::from_millis(1)) > 0 {}
        let ts: Vec<i64> = got.iter().map(ts_of).collect();
        assert_eq!(ts, (0..41).collect::<Vec<_>>());
        // a new start waits for room again
        bus.open_intake();
        assert!(!bus.closing.load(Ordering::SeqCst));
    }

    #[test]
    fn inline_wait_runs_the_producers_on_the_waiting_thread() {
        // worker_threads = 0: the producer is a task of a current-thread runtime that only
        // the consumer's waits drive. A blocking publish into a full bus must not deadlock,
        // nothing may be lost or reordered, and an idle wait ends at its timeout.
        let (bus, rt) = small_blocking_bus();
        let producer = {
            let bus = bus.clone();
            rt.spawn(async move {
                for chunk in 0..10 {
                    let mut evs: Vec<Event> = (chunk * 10..chunk * 10 + 10).map(ev).collect();
                    bus.publish(&mut evs).await;
                    bus.publish(&mut (0..30).map(|i| ev(1000 + i)).collect())
                        .await;
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            })
        };
        let thread = std::thread::current().id();
        let ran_here = rt.spawn(async move { std::thread::current().id() == thread });
        let mut got = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        while got.len() < 400 && Instant::now() < deadline {
            crate::pipeline::engine::wait_batch(
                &bus,
                Some(&rt),
                &mut got,
                7,
                Duration::from_millis(50),
            );
        }
        assert!(rt.block_on(producer).is_ok());
        assert!(
            rt.block_on(ran_here).unwrap(),
            "tasks run on the waiting thread"
        );
        let ts: Vec<i64> = got.iter().map(ts_of).filter(|t| *t < 1000).collect();
        assert_eq!(ts, (0..100).collect::<Vec<_>>());
        assert_eq!(got.len(), 400);
        assert!(bus.counters.full_waits.load(Ordering::Relaxed) > 0);
        // nothing queued and no producer: the wait returns empty at its timeout
        let t0 = Instant::now();
        let n = crate::pipeline::engine::wait_batch(
            &bus,
            Some(&rt),
            &mut got,
            7,
            Duration::from_millis(30),
        );
        assert_eq!(n, 0);
        assert!(t0.elapsed() >= Duration::from_millis(30));
    }

    fn sym(name: &str) -> Arc<SymbolMeta> {
        SymbolMeta::new(Venue::Binance, name, name, None)
    }

    fn bbo(sym: &Arc<SymbolMeta>, ts: i64) -> Event {
        Event::Bbo(Bbo {
            sym: sym.clone(),
            ts_exchange: ts,
            ts_recv: ts,
            bid_price: 1.0,
            bid_size: 1.0,
            ask_price: 2.0,
            ask_size: 1.0,
        })
    }

    fn delta(sym: &Arc<SymbolMeta>, seq: u64, is_snapshot: bool) -> Event {
        Event::Book(BookDelta {
            sym: sym.clone(),
            ts_exchange: 0,
            ts_recv: 0,
            seq,
            is_snapshot,
            bids: vec![(1.0, 1.0)],
            asks: vec![],
        })
    }

    fn trade(sym: &Arc<SymbolMeta>, id: u64) -> Event {
        Event::Trade(Trade {
            sym: sym.clone(),
            ts_exchange: 7,
            ts_recv: 8,
            price: 100.5,
            size: 0.25,
            side: if id % 2 == 0 { Side::Buy } else { Side::Sell },
            trade_id: id,
        })
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn quotes_conflate_to_the_latest_when_full() {
        let bus = EventBus::new(16, OverflowPolicy::Block);
        let (a, b) = (sym("A"), sym("B"));
        // fill the bus with statuses, then quotes: each symbol keeps one, the newest
        let mut evs: Vec<Event> = (0..16).map(ev).collect();
        bus.publish_now(&mut evs);
        let mut quotes: Vec<Event> = (100..200)
            .map(|ts| bbo(if ts % 2 == 0 { &a } else { &b }, ts))
            .collect();
        let overflowed = block_on(bus.publish(&mut quotes));
        assert!(overflowed.is_empty());
        assert_eq!(
            bus.len(),
            18,
            "one queued quote per symbol beyond the bound"
        );
        assert_eq!(bus.counters.conflated.load(Ordering::Relaxed), 98);
        let mut out = Vec::new();
        bus.pop_batch(&mut out, 100, Duration::from_millis(1));
        let last: Vec<(String, i64)> = out
            .iter()
            .filter_map(|e| match e {
                Event::Bbo(q) => Some((q.sym.symbol.to_string(), q.ts_recv)),
                _ => None,
            })
            .collect();
        assert_eq!(last, vec![("A".into(), 198), ("B".into(), 199)]);
    }

    #[test]
    fn book_overflow_holds_deltas_back_until_the_snapshot() {
        let bus = EventBus::new(16, OverflowPolicy::Block);
        let (a, b) = (sym("A"), sym("B"));
        let mut evs: Vec<Event> = (0..15).map(|i| delta(&a, i, false)).collect();
        assert!(block_on(bus.publish(&mut evs)).is_empty());
        // the 16th fits, the 17th of A overflows: A must resync, nothing waits
        let mut more = vec![
            delta(&a, 15, false),
            delta(&a, 16, false),
            delta(&a, 17, false),
        ];
        let over = block_on(bus.publish(&mut more));
        assert_eq!(over.len(), 1);
        assert!(Arc::ptr_eq(&over[0], &a));
        assert_eq!(bus.counters.book_overflows.load(Ordering::Relaxed), 1);
        assert_eq!(bus.counters.book_held_back.load(Ordering::Relaxed), 2);
        // B is a different symbol: it overflows on its own account
        let mut bdelta = vec![delta(&b, 1, false)];
        assert_eq!(block_on(bus.publish(&mut bdelta)).len(), 1);
        let mut out = Vec::new();
        bus.pop_batch(&mut out, 100, Duration::from_millis(1));
        assert_eq!(out.len(), 16);
        // room again, but A's deltas stay held back until its fresh snapshot
        let mut later = vec![
            delta(&a, 18, false),
            delta(&a, 30, true),
            delta(&a, 31, false),
        ];
        assert!(block_on(bus.publish(&mut later)).is_empty());
        out.clear();
        bus.pop_batch(&mut out, 100, Duration::from_millis(1));
        let seqs: Vec<(u64, bool)> = out
            .iter()
            .filter_map(|e| match e {
                Event::Book(d) => Some((d.seq, d.is_snapshot)),
                _ => None,
            })
            .collect();
        assert_eq!(seqs, vec![(30, true), (31, false)]);
        assert_eq!(bus.counters.book_held_back.load(Ordering::Relaxed), 4);
    }

    #[test]
    fn book_block_policy_waits_instead() {
        let kinds = KindPolicies {
            book: BookPolicy::Block,
            ..KindPolicies::default()
        };
        let bus = std::sync::Arc::new(EventBus::with_policies(
            16,
            OverflowPolicy::Block,
            kinds,
            None,
        ));
        let a = sym("A");
        let producer = {
            let bus = bus.clone();
            let a = a.clone();
            std::thread::spawn(move || {
                let mut evs: Vec<Event> = (0..40).map(|i| delta(&a, i, false)).collect();
                block_on(bus.publish(&mut evs))
            })
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut got = Vec::new();
        while got.len() < 40 && Instant::now() < deadline {
            bus.pop_batch(&mut got, 5, Duration::from_millis(20));
        }
        assert!(producer.join().unwrap().is_empty());
        assert_eq!(got.len(), 40);
        assert_eq!(bus.counters.book_overflows.load(Ordering::Relaxed), 0);
    }

    /// A bus of 16 whose trades spill under `dir`, bounded by `max_bytes`.
    fn spill_bus(dir: &std::path::Path, max_bytes: u64) -> EventBus {
        let kinds = KindPolicies {
            trades: TradePolicy::Spill,
            ..KindPolicies::default()
        };
        let spill = SpillConfig {
            dir: dir.to_path_buf(),
            max_bytes,
        };
        EventBus::with_policies(16, OverflowPolicy::Block, kinds, Some(spill))
    }

    fn trade_ids(events: &[Event]) -> Vec<u64> {
        events
            .iter()
            .filter_map(|e| match e {
                Event::Trade(t) => Some(t.trade_id),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn trades_spill_to_disk_and_come_back_in_order() {
        let dir = std::env::temp_dir().join(format!("xt-spill-test-{}", std::process::id()));
        let bus = spill_bus(&dir, 1 << 20);
        let a = sym("A");
        let mut evs: Vec<Event> = (0..1000).map(|i| trade(&a, i)).collect();
        // never waits: 16 queued, the rest spilled
        block_on(bus.publish(&mut evs));
        assert_eq!(bus.len(), 16);
        assert_eq!(bus.spilled_pending(), 984);
        assert!(bus.spill_path().is_some_and(|p| p.exists()));
        let mut got = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        while got.len() < 1000 && Instant::now() < deadline {
            bus.pop_batch(&mut got, 7, Duration::from_millis(5));
        }
        let ids = trade_ids(&got);
        assert_eq!(ids, (0..1000).collect::<Vec<_>>());
        let Event::Trade(t) = &got[501] else {
            panic!("trade expected")
        };
        assert_eq!(
            (t.price, t.size, t.side, t.ts_exchange, t.ts_recv),
            (100.5, 0.25, Side::Sell, 7, 8)
        );
        assert!(Arc::ptr_eq(&t.sym, &a));
        assert_eq!(bus.counters.spilled.load(Ordering::Relaxed), 984);
        assert_eq!(bus.counters.unspilled.load(Ordering::Relaxed), 984);
        assert_eq!(bus.counters.spill_bytes.load(Ordering::Relaxed), 0);
        drop(bus);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn spill_bound_falls_back_to_blocking() {
        let dir = std::env::temp_dir().join(format!("xt-spill-bound-{}", std::process::id()));
        let bus = std::sync::Arc::new(spill_bus(&dir, 45 * 10));
        let a = sym("A");
        let producer = {
            let bus = bus.clone();
            std::thread::spawn(move || {
                let mut evs: Vec<Event> = (0..200).map(|i| trade(&a, i)).collect();
                block_on(bus.publish(&mut evs));
            })
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while bus.counters.full_waits.load(Ordering::Relaxed) == 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(bus.spilled_pending() <= 10);
        let mut got = Vec::new();
        while got.len() < 200 && Instant::now() < deadline {
            bus.pop_batch(&mut got, 9, Duration::from_millis(5));
        }
        producer.join().unwrap();
        let ids = trade_ids(&got);
        assert_eq!(ids, (0..200).collect::<Vec<_>>());
        drop(bus);
        let _ = std::fs::remove_dir_all(dir);
    }
}
