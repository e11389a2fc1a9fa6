//! The bounded event bus between connection tasks (async producers) and the dispatcher (a
//! Python thread that waits with the GIL released).
//!
//! Overflow policies have names and counters. `Block` applies back-pressure: a producer
//! awaits space, so its socket stops being read and TCP flow control slows the venue; nothing
//! is dropped. `DropOldest` discards the oldest queued event and counts it.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use tokio::sync::Notify;

use crate::model::Event;

/// What happens when the bus is full.
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
}

/// A bounded multi-producer, single-consumer event queue.
#[derive(Debug)]
pub struct EventBus {
    queue: Mutex<VecDeque<Event>>,
    capacity: usize,
    policy: OverflowPolicy,
    not_empty: Condvar,
    not_full: Notify,
    /// Counters.
    pub counters: BusCounters,
}

impl EventBus {
    /// A bus of at most `capacity` events (at least 16).
    #[must_use]
    pub fn new(capacity: usize, policy: OverflowPolicy) -> Self {
        let capacity = capacity.max(16);
        Self {
            queue: Mutex::new(VecDeque::with_capacity(capacity.min(1 << 16))),
            capacity,
            policy,
            not_empty: Condvar::new(),
            not_full: Notify::new(),
            counters: BusCounters::default(),
        }
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

    /// Current depth.
    #[must_use]
    pub fn len(&self) -> usize {
        self.queue.lock().len()
    }

    /// True when nothing is queued.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Push every event of `events` (drained), waiting for space under `Block`.
    pub async fn publish(&self, events: &mut Vec<Event>) {
        let mut it = events.drain(..).peekable();
        while it.peek().is_some() {
            // register interest before looking, so a pop between the check and the await
            // cannot be missed
            let waiter = self.not_full.notified();
            tokio::pin!(waiter);
            waiter.as_mut().enable();
            let full = {
                let mut q = self.queue.lock();
                while let Some(ev) = it.next_if(|_| {
                    q.len() < self.capacity || self.policy == OverflowPolicy::DropOldest
                }) {
                    if q.len() >= self.capacity {
                        q.pop_front();
                        self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                    }
                    q.push_back(ev);
                    self.counters.pushed.fetch_add(1, Ordering::Relaxed);
                }
                let depth = q.len() as u64;
                self.counters.high_water.fetch_max(depth, Ordering::Relaxed);
                it.peek().is_some()
            };
            self.not_empty.notify_one();
            if full {
                self.counters.full_waits.fetch_add(1, Ordering::Relaxed);
                waiter.await;
            }
        }
    }

    /// Push from synchronous code (replay, tests); never waits: under `Block` it may exceed
    /// the bound only by what one caller pushes, so callers must drain between pushes.
    pub fn publish_now(&self, events: &mut Vec<Event>) {
        {
            let mut q = self.queue.lock();
            for ev in events.drain(..) {
                if q.len() >= self.capacity && self.policy == OverflowPolicy::DropOldest {
                    q.pop_front();
                    self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                }
                q.push_back(ev);
                self.counters.pushed.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.not_empty.notify_one();
    }

    /// Wait up to `timeout` for events and move at most `max` into `out`; returns how many.
    pub fn pop_batch(&self, out: &mut Vec<Event>, max: usize, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        let mut q = self.queue.lock();
        while q.is_empty() {
            if self.not_empty.wait_until(&mut q, deadline).timed_out() {
                break;
            }
        }
        let n = q.len().min(max);
        out.extend(q.drain(..n));
        drop(q);
        if n > 0 {
            self.counters.popped.fetch_add(n as u64, Ordering::Relaxed);
            self.not_full.notify_waiters();
        }
        n
    }

    /// Wake a waiting consumer (used at shutdown).
    pub fn wake(&self) {
        self.not_empty.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Status, StatusKind, StatusReason, Venue};

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

    #[test]
    fn block_waits_for_the_consumer_and_loses_nothing() {
        let bus = std::sync::Arc::new(EventBus::new(16, OverflowPolicy::Block));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
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
}
