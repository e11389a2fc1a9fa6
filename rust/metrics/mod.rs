//! Metrics: per-feed counters published by connection tasks, the bus counters, book states;
//! rendered in the Prometheus text format and served by [`server`].

pub mod hist;
pub mod server;

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use crate::model::{Event, SymbolMeta, Venue};
use crate::net::breaker::CircuitBreaker;
use hist::StageLatency;

/// Channels counted per frame: the normalized channels, `status` (frames that only changed
/// a state or reported an error) and `control` (acks, pongs: frames that produced nothing).
pub const FRAME_CHANNELS: [&str; 9] = {
    let n = crate::exchanges::Channels::NAMES;
    [
        n[0], n[1], n[2], n[3], n[4], n[5], n[6], "status", "control",
    ]
};

/// Index into [`FRAME_CHANNELS`] of the channel a frame produced (its first event), in the
/// order of `Channels::NAMES` (checked by a test).
#[must_use]
pub fn frame_channel(first: Option<&Event>) -> usize {
    match first {
        Some(Event::Trade(_)) => 0,
        Some(Event::Book(_)) => 1,
        Some(Event::Bbo(_)) => 2,
        Some(Event::Ticker(_)) => 3,
        Some(Event::Funding(_)) => 4,
        Some(Event::Liquidation(_)) => 5,
        Some(Event::OpenInterest(_)) => 6,
        Some(Event::Status(_)) => 7,
        None => 8,
    }
}

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
    /// The venue's circuit breaker (shared by the venue's feeds).
    pub breaker: Arc<CircuitBreaker>,
    /// Stage latency histograms (shared by the whole engine).
    pub stages: Arc<StageLatency>,
    /// Frames received per channel of [`FRAME_CHANNELS`].
    pub channel_frames: [AtomicU64; FRAME_CHANNELS.len()],
    /// Payload bytes received per channel of [`FRAME_CHANNELS`].
    pub channel_bytes: [AtomicU64; FRAME_CHANNELS.len()],
    /// Test hook: the next tick of one of the feed's sockets panics.
    pub panic_probe: std::sync::atomic::AtomicBool,
}

impl FeedShared {
    /// Empty state for a venue (its own breaker and histograms: tests and tools).
    #[must_use]
    pub fn new(venue: Venue) -> Self {
        Self::with(
            venue,
            Arc::new(CircuitBreaker::default()),
            Arc::new(StageLatency::new()),
        )
    }

    /// Empty state for a venue sharing the engine's breaker and histograms.
    #[must_use]
    pub fn with(venue: Venue, breaker: Arc<CircuitBreaker>, stages: Arc<StageLatency>) -> Self {
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
            breaker,
            stages,
            channel_frames: Default::default(),
            channel_bytes: Default::default(),
            panic_probe: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Count one frame of `bytes` for the channel at `idx` of [`FRAME_CHANNELS`].
    #[inline]
    pub fn count_frames(&self, idx: usize, frames: u64, bytes: u64) {
        if let (Some(f), Some(b)) = (self.channel_frames.get(idx), self.channel_bytes.get(idx)) {
            f.fetch_add(frames, Ordering::Relaxed);
            b.fetch_add(bytes, Ordering::Relaxed);
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

/// Rows written and errors of each sink (reported by the Python sink host at each flush).
#[derive(Debug, Default)]
pub struct SinkCounters {
    sinks: Mutex<Vec<(Box<str>, u64, u64)>>,
}

impl SinkCounters {
    /// Add `rows` written and `errors` to sink `name` (at most 256 sinks are tracked).
    pub fn add(&self, name: &str, rows: u64, errors: u64) {
        let mut g = self.sinks.lock();
        if let Some(e) = g.iter_mut().find(|e| &*e.0 == name) {
            e.1 += rows;
            e.2 += errors;
        } else if g.len() < 256 {
            g.push((name.into(), rows, errors));
        }
    }

    /// `(name, rows, errors)` of every sink.
    #[must_use]
    pub fn snapshot(&self) -> Vec<(Box<str>, u64, u64)> {
        self.sinks.lock().clone()
    }
}

/// Render every metric family in the Prometheus text exposition format.
#[must_use]
pub fn render(feeds: &[Arc<FeedShared>], src: &server::MetricsSource) -> String {
    let bus = &src.bus;
    let mut s = String::with_capacity(16384);
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
    for m in book_symbols(feeds, src) {
        if let Some(book) = &m.book {
            let _ = writeln!(
                s,
                "xtrader_book_state{{exchange=\"{}\",symbol=\"{}\"}} {}",
                m.venue.id(),
                label(&m.symbol),
                book.read().state.code()
            );
        }
    }
    render_frames(feeds, &mut s);
    render_breakers(feeds, &mut s);
    render_sinks(&src.sinks, &mut s);
    render_bus(src, &mut s);
    let venues: Vec<Venue> = feeds.iter().map(|f| f.venue).collect();
    src.stages.render(&venues, &mut s);
    let c = &bus.counters;
    let _ = writeln!(s, "# HELP xtrader_spill_bytes Bytes of trades waiting in the spill file\n# TYPE xtrader_spill_bytes gauge\nxtrader_spill_bytes {}", c.spill_bytes.load(Ordering::Relaxed));
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
        (
            "xtrader_queue_conflated_total",
            &c.conflated,
            "Quotes (bbo, ticker) replaced by a newer one of the same symbol on a full bus",
        ),
        (
            "xtrader_queue_book_overflows_total",
            &c.book_overflows,
            "Book resyncs forced by a consumer too slow for book updates",
        ),
        (
            "xtrader_queue_book_held_back_total",
            &c.book_held_back,
            "Book deltas held back while their symbol resynced after an overflow",
        ),
        (
            "xtrader_queue_spilled_total",
            &c.spilled,
            "Trades written to the spill file on a full bus",
        ),
        (
            "xtrader_queue_unspilled_total",
            &c.unspilled,
            "Trades read back from the spill file",
        ),
        (
            "xtrader_queue_spill_errors_total",
            &c.spill_errors,
            "Spill file errors (the trade waited instead)",
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

/// Frames and bytes per venue and channel.
fn render_frames(feeds: &[Arc<FeedShared>], s: &mut String) {
    for (metric, help, bytes) in [
        (
            "xtrader_frames_total",
            "Websocket frames by the channel they carried (control: acks, pongs)",
            false,
        ),
        (
            "xtrader_frame_bytes_total",
            "Websocket payload bytes by the channel they carried",
            true,
        ),
    ] {
        let _ = writeln!(s, "# HELP {metric} {help}\n# TYPE {metric} counter");
        for f in feeds {
            let counts = if bytes {
                &f.channel_bytes
            } else {
                &f.channel_frames
            };
            for (name, v) in FRAME_CHANNELS.iter().zip(counts.iter()) {
                let _ = writeln!(
                    s,
                    "{metric}{{exchange=\"{}\",channel=\"{name}\"}} {}",
                    f.venue.id(),
                    v.load(Ordering::Relaxed)
                );
            }
        }
    }
}

/// Circuit breaker state and counters per venue (feeds of one venue share a breaker).
fn render_breakers(feeds: &[Arc<FeedShared>], s: &mut String) {
    let mut seen: Vec<Venue> = Vec::new();
    let _ = writeln!(s, "# HELP xtrader_circuit_state Circuit breaker: 0 closed, 1 open, 2 half-open\n# TYPE xtrader_circuit_state gauge");
    let mut rows = Vec::new();
    for f in feeds {
        if seen.contains(&f.venue) {
            continue;
        }
        seen.push(f.venue);
        let b = &f.breaker;
        let _ = writeln!(
            s,
            "xtrader_circuit_state{{exchange=\"{}\"}} {}",
            f.venue.id(),
            b.state() as u8
        );
        rows.push((
            f.venue,
            b.opened.load(Ordering::Relaxed),
            b.refused.load(Ordering::Relaxed),
        ));
    }
    let _ = writeln!(s, "# HELP xtrader_circuit_opened_total Times the circuit breaker opened\n# TYPE xtrader_circuit_opened_total counter");
    for (v, opened, _) in &rows {
        let _ = writeln!(
            s,
            "xtrader_circuit_opened_total{{exchange=\"{}\"}} {opened}",
            v.id()
        );
    }
    let _ = writeln!(s, "# HELP xtrader_circuit_refused_total Connection attempts held back by an open breaker\n# TYPE xtrader_circuit_refused_total counter");
    for (v, _, refused) in &rows {
        let _ = writeln!(
            s,
            "xtrader_circuit_refused_total{{exchange=\"{}\"}} {refused}",
            v.id()
        );
    }
}

/// The JetStream sink's and source's counters (`bus_inflight`, `bus_acked_seq` and
/// `bus_bound_at` are gauges).
fn render_bus(src: &server::MetricsSource, s: &mut String) {
    let pairs =
        crate::pipeline::nats::counter_pairs(src.js_sink.as_deref(), src.js_source.as_deref());
    for (name, v) in pairs {
        let gauge = matches!(name, "bus_inflight" | "bus_acked_seq" | "bus_bound_at");
        let suffix = if gauge { "" } else { "_total" };
        let kind = if gauge { "gauge" } else { "counter" };
        let _ = writeln!(
            s,
            "# HELP xtrader_{name}{suffix} JetStream {}\n# TYPE xtrader_{name}{suffix} {kind}\nxtrader_{name}{suffix} {v}",
            name.trim_start_matches("bus_").replace('_', " ")
        );
    }
}

/// Rows and errors per sink.
fn render_sinks(sinks: &SinkCounters, s: &mut String) {
    let snap = sinks.snapshot();
    let _ = writeln!(s, "# HELP xtrader_sink_rows_total Rows written by each sink\n# TYPE xtrader_sink_rows_total counter");
    for (name, rows, _) in &snap {
        let _ = writeln!(
            s,
            "xtrader_sink_rows_total{{sink=\"{}\"}} {rows}",
            label(name)
        );
    }
    let _ = writeln!(s, "# HELP xtrader_sink_errors_total Failed writes of each sink\n# TYPE xtrader_sink_errors_total counter");
    for (name, _, errors) in &snap {
        let _ = writeln!(
            s,
            "xtrader_sink_errors_total{{sink=\"{}\"}} {errors}",
            label(name)
        );
    }
}

/// Every symbol with a maintained book: the feeds' subscribed ones, then those rebuilt from a
/// JetStream source.
fn book_symbols(feeds: &[Arc<FeedShared>], src: &server::MetricsSource) -> Vec<Arc<SymbolMeta>> {
    let mut all: Vec<Arc<SymbolMeta>> = feeds
        .iter()
        .flat_map(|f| f.symbols.read().clone())
        .collect();
    if let Some(rebuilt) = &src.bus_symbols {
        all.extend(rebuilt.read().iter().cloned());
    }
    all.retain(|m| m.book.is_some());
    all
}

/// True when there are books and every one is live (the `/ready` check).
#[must_use]
pub fn all_books_live(feeds: &[Arc<FeedShared>], src: &server::MetricsSource) -> bool {
    let books = book_symbols(feeds, src);
    !books.is_empty()
        && books.iter().all(|m| {
            m.book
                .as_ref()
                .is_some_and(|b| b.read().state == crate::model::BookState::Live)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_channels_follow_the_channel_names() {
        for (i, name) in crate::exchanges::Channels::NAMES.iter().enumerate() {
            assert_eq!(FRAME_CHANNELS[i], *name);
        }
        assert_eq!(frame_channel(None), 8);
    }
}
