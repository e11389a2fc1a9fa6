//! Metrics: per-feed counters published by connection tasks, the bus counters, book states;
//! rendered in the Prometheus text format and served by [`server`].

pub mod server;

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use crate::model::{SymbolMeta, Venue};
use crate::pipeline::bus::EventBus;

/// State a feed shares with readers (Python, metrics). Written by its connection task.
#[derive(Debug)]
pub struct FeedShared {
    /// Venue.
    pub venue: Venue,
    /// Subscribed symbols (set once instruments are known).
    pub symbols: RwLock<Vec<Arc<SymbolMeta>>>,
    /// Latest copy of each socket's processor counters.
    pub counters: Mutex<Vec<Vec<(&'static str, u64)>>>,
    /// Successful reconnects after the first connection.
    pub reconnects: AtomicU64,
    /// Sockets currently open.
    pub connected: AtomicU64,
    /// Sockets planned.
    pub sockets: AtomicU64,
    /// Instruments in the feed's bounded cache.
    pub instruments: AtomicU64,
    /// Instruments evicted by the cache bound.
    pub instrument_evictions: AtomicU64,
    /// Snapshot requests sent.
    pub snapshot_requests: AtomicU64,
    /// Raw capture of this feed's frames and REST answers, when enabled.
    pub raw: crate::pipeline::raw::RawSlot,
}

impl FeedShared {
    /// Empty state for a venue.
    #[must_use]
    pub fn new(venue: Venue) -> Self {
        Self {
            venue,
            symbols: RwLock::new(Vec::new()),
            counters: Mutex::new(Vec::new()),
            reconnects: AtomicU64::new(0),
            connected: AtomicU64::new(0),
            sockets: AtomicU64::new(0),
            instruments: AtomicU64::new(0),
            instrument_evictions: AtomicU64::new(0),
            snapshot_requests: AtomicU64::new(0),
            raw: parking_lot::RwLock::new(None),
        }
    }

    /// Declare how many sockets the feed runs.
    pub fn set_sockets(&self, n: usize) {
        self.sockets.store(n as u64, Ordering::Relaxed);
        self.counters.lock().resize(n, Vec::new());
    }

    /// Store one socket's latest processor counters.
    pub fn set_counters(&self, socket: usize, values: Vec<(&'static str, u64)>) {
        let mut c = self.counters.lock();
        if c.len() <= socket {
            c.resize(socket + 1, Vec::new());
        }
        if let Some(slot) = c.get_mut(socket) {
            *slot = values;
        }
    }

    /// One counter by name, summed over sockets (0 when absent).
    #[must_use]
    pub fn counter(&self, name: &str) -> u64 {
        self.counters
            .lock()
            .iter()
            .flat_map(|s| s.iter())
            .filter(|(n, _)| *n == name)
            .map(|(_, v)| *v)
            .sum()
    }

    /// Every counter name with its sum over sockets, in first-seen order.
    #[must_use]
    pub fn totals(&self) -> Vec<(&'static str, u64)> {
        let mut out: Vec<(&'static str, u64)> = Vec::new();
        for socket in self.counters.lock().iter() {
            for &(k, v) in socket {
                match out.iter_mut().find(|(n, _)| *n == k) {
                    Some((_, t)) => *t += v,
                    None => out.push((k, v)),
                }
            }
        }
        out
    }
}

/// Escape a Prometheus label value.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Render every metric family in the Prometheus text exposition format.
#[must_use]
pub fn render(feeds: &[Arc<FeedShared>], bus: &EventBus) -> String {
    let mut s = String::with_capacity(4096);
    let per_feed: [(&str, &str, &str); 14] = [
        (
            "xtrader_messages_total",
            "messages",
            "Websocket frames received",
        ),
        (
            "xtrader_bytes_total",
            "bytes",
            "Websocket payload bytes received",
        ),
        (
            "xtrader_parse_errors_total",
            "parse_errors",
            "Malformed frames",
        ),
        (
            "xtrader_unknown_events_total",
            "unknown_events",
            "Frames of unknown event types",
        ),
        (
            "xtrader_unknown_symbols_total",
            "unknown_symbols",
            "Frames for unknown symbols",
        ),
        ("xtrader_gaps_total", "gaps", "Sequence gaps detected"),
        (
            "xtrader_checksum_ok_total",
            "checksum_ok",
            "Book checksums that matched the local book",
        ),
        (
            "xtrader_checksum_failed_total",
            "checksum_failed",
            "Book checksums that did not match (each resyncs its book)",
        ),
        ("xtrader_resyncs_total", "resyncs", "Book resyncs started"),
        (
            "xtrader_snapshots_total",
            "snapshots",
            "Book snapshots applied",
        ),
        (
            "xtrader_snapshot_failures_total",
            "snapshot_failures",
            "Failed snapshot requests",
        ),
        (
            "xtrader_diffs_dropped_total",
            "diffs_dropped",
            "Diffs already contained in a snapshot",
        ),
        (
            "xtrader_venue_errors_total",
            "venue_errors",
            "Error replies from the venue",
        ),
        (
            "xtrader_statuses_suppressed_total",
            "statuses_suppressed",
            "Error statuses over budget",
        ),
    ];
    for (metric, key, help) in per_feed {
        let _ = writeln!(s, "# HELP {metric} {help}\n# TYPE {metric} counter");
        for f in feeds {
            let _ = writeln!(
                s,
                "{metric}{{exchange=\"{}\"}} {}",
                f.venue.id(),
                f.counter(key)
            );
        }
    }
    let _ = writeln!(s, "# HELP xtrader_events_total Normalized events by channel\n# TYPE xtrader_events_total counter");
    for f in feeds {
        for (channel, key) in [
            ("trades", "trades"),
            ("bbo", "bbo"),
            ("book", "book_updates"),
        ] {
            let _ = writeln!(
                s,
                "xtrader_events_total{{exchange=\"{}\",channel=\"{channel}\"}} {}",
                f.venue.id(),
                f.counter(key)
            );
        }
    }
    let _ = writeln!(s, "# HELP xtrader_reconnects_total Reconnects after the first connection\n# TYPE xtrader_reconnects_total counter");
    for f in feeds {
        let _ = writeln!(
            s,
            "xtrader_reconnects_total{{exchange=\"{}\"}} {}",
            f.venue.id(),
            f.reconnects.load(Ordering::Relaxed)
        );
    }
    let _ = writeln!(
        s,
        "# HELP xtrader_connected Sockets open\n# TYPE xtrader_connected gauge"
    );
    for f in feeds {
        let _ = writeln!(
            s,
            "xtrader_connected{{exchange=\"{}\"}} {}",
            f.venue.id(),
            f.connected.load(Ordering::Relaxed)
        );
    }
    let _ = writeln!(s, "# HELP xtrader_instruments Instruments in the bounded cache\n# TYPE xtrader_instruments gauge");
    for f in feeds {
        let _ = writeln!(
            s,
            "xtrader_instruments{{exchange=\"{}\"}} {}",
            f.venue.id(),
            f.instruments.load(Ordering::Relaxed)
        );
    }
    let _ = writeln!(s, "# HELP xtrader_instrument_evictions_total Instruments evicted by the cache bound\n# TYPE xtrader_instrument_evictions_total counter");
    for f in feeds {
        let _ = writeln!(
            s,
            "xtrader_instrument_evictions_total{{exchange=\"{}\"}} {}",
            f.venue.id(),
            f.instrument_evictions.load(Ordering::Relaxed)
        );
    }
    let _ = writeln!(s, "# HELP xtrader_book_state Book state: 0 syncing, 1 live, 2 resyncing, 3 stale\n# TYPE xtrader_book_state gauge");
    for f in feeds {
        for m in f.symbols.read().iter() {
            if let Some(book) = &m.book {
                let _ = writeln!(
                    s,
                    "xtrader_book_state{{exchange=\"{}\",symbol=\"{}\"}} {}",
                    f.venue.id(),
                    label(&m.symbol),
                    book.read().state.code()
                );
            }
        }
    }
    let c = &bus.counters;
    let _ = writeln!(s, "# HELP xtrader_queue_depth Events waiting for the dispatcher\n# TYPE xtrader_queue_depth gauge\nxtrader_queue_depth {}", bus.len());
    let _ = writeln!(s, "# HELP xtrader_queue_capacity Bus bound\n# TYPE xtrader_queue_capacity gauge\nxtrader_queue_capacity {}", bus.capacity());
    let _ = writeln!(s, "# HELP xtrader_queue_high_water Highest queue depth seen\n# TYPE xtrader_queue_high_water gauge\nxtrader_queue_high_water {}", c.high_water.load(Ordering::Relaxed));
    for (metric, v, help) in [
        ("xtrader_queue_pushed_total", &c.pushed, "Events queued"),
        (
            "xtrader_queue_popped_total",
            &c.popped,
            "Events handed to the dispatcher",
        ),
        (
            "xtrader_queue_dropped_total",
            &c.dropped,
            "Events dropped by the drop_oldest policy",
        ),
        (
            "xtrader_queue_full_waits_total",
            &c.full_waits,
            "Producer waits on a full bus (block policy)",
        ),
    ] {
        let _ = writeln!(
            s,
            "# HELP {metric} {help}\n# TYPE {metric} counter\n{metric} {}",
            v.load(Ordering::Relaxed)
        );
    }
    s
}

/// True when every subscribed book is live (the `/ready` check).
#[must_use]
pub fn all_books_live(feeds: &[Arc<FeedShared>]) -> bool {
    let mut any = false;
    for f in feeds {
        for m in f.symbols.read().iter() {
            if let Some(b) = &m.book {
                any = true;
                if b.read().state != crate::model::BookState::Live {
                    return false;
                }
            }
        }
    }
    any
}
