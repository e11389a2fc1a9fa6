//! The engine: one multi-thread tokio runtime (built here, in one place), the feeds running on
//! it, the bus they publish into, and the metrics server. Feed tasks are wrapped so that a
//! panic becomes a status event and a restart, never an abort.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use parking_lot::RwLock;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::bus::{EventBus, KindPolicies, OverflowPolicy};
use super::feed::{run_feed, FeedSpec};
use super::nats::sink::{JetStreamSink, SinkConfig};
use super::nats::source::{JetStreamSource, SourceConfig};
use super::nats::NatsError;
use super::raw::{RawConfig, RawWriter};
use super::spill::SpillConfig;
use crate::exchanges::connector_for;
use crate::metrics::hist::{Stage, StageLatency};
use crate::metrics::server::{serve, MetricsSource};
use crate::metrics::{render, FeedShared, SinkCounters};
use crate::model::{Event, Status, StatusKind, StatusReason, SymbolMeta, Venue};
use crate::net::breaker::CircuitBreaker;
use crate::net::budget::{LimitNotice, RestScheduler, WeightLimit};
use crate::net::{backoff, http_client, now_ns};

/// Restarts allowed per feed after panics before it is left stopped.
const MAX_PANIC_RESTARTS: u32 = 10;

/// Engine errors (rendered at the boundary).
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The tokio runtime could not be built.
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Http(String),
    /// The metrics address could not be bound.
    #[error("cannot bind the metrics server to {addr}: {source}")]
    MetricsBind {
        /// Address.
        addr: String,
        /// Cause.
        source: std::io::Error,
    },
    /// Operation needs a started engine / a stopped engine.
    #[error("{0}")]
    State(&'static str),
    /// The JetStream sink or source could not start.
    #[error("{0}")]
    Nats(#[from] NatsError),
}

/// Engine settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Bus bound.
    pub queue_capacity: usize,
    /// Bus overflow policy (kinds without a policy of their own).
    pub overflow: OverflowPolicy,
    /// Per-kind full-bus policies.
    pub kinds: KindPolicies,
    /// Where trades spill (`TradePolicy::Spill`).
    pub spill: Option<SpillConfig>,
    /// How long the consumer spins on an empty bus before sleeping (0 = off).
    pub busy_poll: Duration,
    /// Tokio worker threads; 0 = inline: no I/O threads, the sockets are read by the thread
    /// that waits in [`Engine::next_batch`] (the strategy thread), while it waits.
    pub worker_threads: usize,
    /// Metrics listen address (`None` = no server).
    pub metrics_addr: Option<String>,
}

/// The running core.
pub struct Engine {
    cfg: EngineConfig,
    /// Shared only with inline waiters (`worker_threads = 0`), which drive it.
    rt: Option<Arc<tokio::runtime::Runtime>>,
    bus: Arc<EventBus>,
    specs: Vec<FeedSpec>,
    feeds: Arc<RwLock<Vec<Arc<FeedShared>>>>,
    /// One REST scheduler (weight budget) per venue, shared by that venue's feeds.
    schedulers: Vec<(Venue, Arc<RestScheduler>)>,
    tasks: Vec<JoinHandle<()>>,
    cancel: CancellationToken,
    metrics_bound: Option<SocketAddr>,
    raw: Option<RawConfig>,
    raw_writers: Vec<Arc<RawWriter>>,
    stages: Arc<StageLatency>,
    sinks: Arc<SinkCounters>,
    /// JetStream sink settings, started with the engine.
    js_sink_cfg: Option<SinkConfig>,
    js_sink: Option<Arc<JetStreamSink>>,
    /// JetStream source settings (replaces feeds), started with the engine.
    js_source_cfg: Option<SourceConfig>,
    js_source: Option<Arc<JetStreamSource>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("feeds", &self.specs.len())
            .field("running", &self.is_running())
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// A stopped engine.
    #[must_use]
    pub fn new(cfg: EngineConfig) -> Self {
        let bus = Arc::new(EventBus::with_policies(
            cfg.queue_capacity,
            cfg.overflow,
            cfg.kinds,
            cfg.spill.clone(),
        ));
        bus.set_busy_poll(cfg.busy_poll);
        Self {
            cfg,
            rt: None,
            bus,
            specs: Vec::new(),
            feeds: Arc::new(RwLock::new(Vec::new())),
            schedulers: Vec::new(),
            tasks: Vec::new(),
            cancel: CancellationToken::new(),
            metrics_bound: None,
            raw: None,
            raw_writers: Vec::new(),
            stages: Arc::new(StageLatency::new()),
            sinks: Arc::new(SinkCounters::default()),
            js_sink_cfg: None,
            js_sink: None,
            js_source_cfg: None,
            js_source: None,
        }
    }

    /// Publish every event taken off the bus to JetStream (before `start`).
    ///
    /// # Errors
    /// After `start`, or with a JetStream source (a runtime does not republish its source).
    pub fn add_jetstream_sink(&mut self, cfg: SinkConfig) -> Result<(), EngineError> {
        if self.rt.is_some() {
            return Err(EngineError::State("add the JetStream sink before start()"));
        }
        if self.js_source_cfg.is_some() {
            return Err(EngineError::State(
                "a runtime fed by a JetStream source cannot also publish to JetStream",
            ));
        }
        self.js_sink_cfg = Some(cfg);
        Ok(())
    }

    /// Feed the bus from a JetStream stream instead of exchanges (before `start`, no feeds).
    /// Every bus policy becomes `block`: the stream holds what the consumer has not taken.
    ///
    /// # Errors
    /// After `start`, with feeds, or with a JetStream sink.
    pub fn set_jetstream_source(&mut self, cfg: SourceConfig) -> Result<(), EngineError> {
        if self.rt.is_some() {
            return Err(EngineError::State(
                "set the JetStream source before start()",
            ));
        }
        if !self.specs.is_empty() {
            return Err(EngineError::State(
                "a JetStream source replaces exchange feeds: subscribe to none",
            ));
        }
        if self.js_sink_cfg.is_some() {
            return Err(EngineError::State(
                "a runtime fed by a JetStream source cannot also publish to JetStream",
            ));
        }
        self.bus = Arc::new(EventBus::with_policies(
            self.cfg.queue_capacity,
            OverflowPolicy::Block,
            KindPolicies::all_block(),
            None,
        ));
        self.bus.set_busy_poll(self.cfg.busy_poll);
        self.js_source_cfg = Some(cfg);
        Ok(())
    }

    /// The JetStream sink, once started.
    #[must_use]
    pub fn jetstream_sink(&self) -> Option<Arc<JetStreamSink>> {
        self.js_sink.clone()
    }

    /// The consumer delivered everything it popped so far (callbacks returned): the
    /// JetStream source may acknowledge the messages behind it.
    pub fn bus_delivered(&self) {
        if let Some(src) = &self.js_source {
            src.delivered(
                self.bus
                    .counters
                    .popped
                    .load(std::sync::atomic::Ordering::Relaxed),
            );
        }
    }

    /// After the drain: publish what the sink holds and wait for its acks, acknowledge
    /// what the source delivered; bounded by `timeout` each. Returns messages the sink gave
    /// up on.
    pub fn close_bus(&mut self, timeout: Duration) -> u64 {
        self.bus_delivered();
        if let Some(src) = &self.js_source {
            src.close(timeout);
        }
        self.js_sink.as_ref().map_or(0, |sink| sink.close(timeout))
    }

    /// What the metrics server and `metrics_text` read.
    fn metrics_source(&self) -> MetricsSource {
        MetricsSource {
            feeds: self.feeds.clone(),
            bus: self.bus.clone(),
            stages: self.stages.clone(),
            sinks: self.sinks.clone(),
            js_sink: self.js_sink.as_ref().map(|s| s.counters.clone()),
            js_source: self.js_source.as_ref().map(|s| s.counters.clone()),
            bus_symbols: self.js_source.as_ref().map(|s| s.symbols.clone()),
        }
    }

    /// Stage latency histograms.
    #[must_use]
    pub fn stages(&self) -> &Arc<StageLatency> {
        &self.stages
    }

    /// Record `now - ts_recv` of each event for `stage` (the Python side's stamps: handed
    /// over, callbacks returned).
    pub fn record_stage(&self, stage: Stage, events: &[(crate::model::Venue, i64)], now: i64) {
        self.stages.record_batch(stage, events, now);
    }

    /// Test hook: make a socket task of every feed of `venue` panic on its next tick.
    /// Returns how many feeds were armed.
    pub fn inject_panic(&self, venue: Venue) -> usize {
        let mut n = 0;
        for f in self.feeds.read().iter().filter(|f| f.venue == venue) {
            f.panic_probe
                .store(true, std::sync::atomic::Ordering::Relaxed);
            n += 1;
        }
        n
    }

    /// Add rows written and errors of a Python sink.
    pub fn add_sink_counts(&self, name: &str, rows: u64, errors: u64) {
        self.sinks.add(name, rows, errors);
    }

    /// Capture every feed's raw frames and REST answers (before `start`); see
    /// [`crate::pipeline::raw`].
    ///
    /// # Errors
    /// When the engine was already started.
    pub fn record_raw(&mut self, cfg: RawConfig) -> Result<(), EngineError> {
        if self.rt.is_some() {
            return Err(EngineError::State("enable raw capture before start()"));
        }
        self.raw = Some(cfg);
        Ok(())
    }

    /// Add a feed (before `start`).
    ///
    /// # Errors
    /// When the engine was already started.
    pub fn add_feed(&mut self, spec: FeedSpec) -> Result<(), EngineError> {
        if self.rt.is_some() {
            return Err(EngineError::State("add feeds before start()"));
        }
        if self.js_source_cfg.is_some() {
            return Err(EngineError::State(
                "this runtime is fed by a JetStream source: it cannot subscribe to exchanges",
            ));
        }
        self.specs.push(spec);
        Ok(())
    }

    /// True between `start` and `stop`.
    #[must_use]
    pub fn is_running(&self) -> bool {
        self.rt.is_some() && !self.cancel.is_cancelled()
    }

    /// The bus.
    #[must_use]
    pub fn bus(&self) -> &Arc<EventBus> {
        &self.bus
    }

    /// Bound metrics address, once started.
    #[must_use]
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_bound
    }

    /// Build the runtime, start the metrics server and every feed.
    ///
    /// # Errors
    /// Runtime, HTTP client or metrics bind failures.
    pub fn start(&mut self) -> Result<(), EngineError> {
        if self.rt.is_some() {
            return Err(EngineError::State("engine already started"));
        }
        let rt = if self.cfg.worker_threads == 0 {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
        } else {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(self.cfg.worker_threads)
                .thread_name("xtrader-io")
                .enable_all()
                .build()
        }
        .map_err(EngineError::Runtime)?;
        self.bus.open_intake();
        let http = rt
            .block_on(async { http_client() })
            .map_err(|e| EngineError::Http(e.to_string()))?;
        if let Some(cfg) = self.js_sink_cfg.clone() {
            self.js_sink = Some(JetStreamSink::start(cfg, self.bus.clone())?);
        }
        if let Some(cfg) = self.js_source_cfg.clone() {
            self.js_source = Some(JetStreamSource::start(cfg, self.bus.clone())?);
        }
        if let Some(addr) = self.cfg.metrics_addr.clone() {
            let src = self.metrics_source();
            let bound = rt
                .block_on(serve(&addr, src, self.cancel.clone()))
                .map_err(|source| EngineError::MetricsBind { addr, source })?;
            self.metrics_bound = Some(bound);
        }
        let mut schedulers: HashMap<Venue, Arc<RestScheduler>> = HashMap::new();
        let mut breakers: HashMap<Venue, Arc<CircuitBreaker>> = HashMap::new();
        let mut tasks = Vec::new();
        for (i, spec) in self.specs.iter().enumerate() {
            let rest = match schedulers.get(&spec.venue) {
                Some(r) => r.clone(),
                None => {
                    let rest = self.start_scheduler(&rt, spec, &http, &mut tasks);
                    schedulers.insert(spec.venue, rest.clone());
                    rest
                }
            };
            let breaker = breakers.entry(spec.venue).or_default().clone();
            let shared = Arc::new(FeedShared::with(spec.venue, breaker, self.stages.clone()));
            if let Some(cfg) = &self.raw {
                let writer = Arc::new(RawWriter::new(cfg.clone(), spec, i));
                *shared.raw.write() = Some(writer.clone());
                self.raw_writers.push(writer);
            }
            self.feeds.write().push(shared.clone());
            let task = supervise(
                spec.clone(),
                shared,
                self.bus.clone(),
                rest,
                self.cancel.clone(),
            );
            tasks.push(rt.spawn(task));
        }
        self.tasks.extend(tasks);
        self.schedulers = schedulers.into_iter().collect();
        self.rt = Some(Arc::new(rt));
        Ok(())
    }

    /// The runtime a waiting consumer must drive: `Some` only while an inline engine
    /// (`worker_threads = 0`) runs. Nothing reads the sockets unless someone waits in it.
    #[must_use]
    pub fn inline_driver(&self) -> Option<Arc<tokio::runtime::Runtime>> {
        if self.cfg.worker_threads == 0 {
            self.rt.clone()
        } else {
            None
        }
    }

    /// The REST scheduler of a venue (its dispatcher and the task that reports its
    /// rate-limit answers as statuses run on `rt`).
    fn start_scheduler(
        &self,
        rt: &tokio::runtime::Runtime,
        spec: &FeedSpec,
        http: &reqwest::Client,
        tasks: &mut Vec<JoinHandle<()>>,
    ) -> Arc<RestScheduler> {
        let (rest, notices) = RestScheduler::new(WeightLimit::UNLIMITED);
        // the venue's documented limit until its reference data publishes the current one
        if let Some(c) = connector_for(spec) {
            let limit = c.weight_limit();
            rest.set_limit(limit, c.used_weight_header(limit).as_deref());
        }
        tasks.push(rt.spawn(rest.clone().run(http.clone(), self.cancel.clone())));
        tasks.push(rt.spawn(report_limits(
            spec.venue,
            notices,
            self.bus.clone(),
            self.cancel.clone(),
        )));
        rest
    }

    /// Stop intake: cancel every task, close sockets, join with a bound. Queued events stay
    /// readable with [`Engine::next_batch`].
    pub fn stop(&mut self, timeout: Duration) {
        // first, so a producer blocked on a full bus finishes instead of waiting for the
        // consumer, which drains only after this returns
        self.bus.close_intake();
        self.cancel.cancel();
        if let Some(src) = &self.js_source {
            src.stop_intake();
        }
        if let Some(rt) = self.rt.take() {
            let tasks = std::mem::take(&mut self.tasks);
            rt.block_on(async {
                let _ = tokio::time::timeout(timeout, futures_util::future::join_all(tasks)).await;
            });
            // an inline waiter may still hold the runtime: the last holder drops it
            if let Ok(rt) = Arc::try_unwrap(rt) {
                rt.shutdown_timeout(Duration::from_millis(500));
            }
        }
        for w in &self.raw_writers {
            w.close();
        }
        self.bus.wake();
    }

    /// Wait up to `timeout` and move at most `max` events into `out`. An inline engine
    /// reads its sockets during the wait.
    pub fn next_batch(&self, out: &mut Vec<Event>, max: usize, timeout: Duration) -> usize {
        wait_batch(
            &self.bus,
            self.inline_driver().as_deref(),
            out,
            max,
            timeout,
        )
    }

    /// Find a maintained book's symbol by exchange id and normalized or native symbol.
    #[must_use]
    pub fn find_symbol(&self, exchange: &str, symbol: &str) -> Option<Arc<SymbolMeta>> {
        self.symbols()
            .into_iter()
            .find(|m| m.venue.id() == exchange && (&*m.symbol == symbol || &*m.native == symbol))
    }

    /// Every subscribed symbol of every feed.
    #[must_use]
    pub fn symbols(&self) -> Vec<Arc<SymbolMeta>> {
        let mut all: Vec<Arc<SymbolMeta>> = self
            .feeds
            .read()
            .iter()
            .flat_map(|f| f.symbols.read().clone())
            .collect();
        if let Some(src) = &self.js_source {
            all.extend(src.symbols.read().iter().cloned());
        }
        all
    }

    /// Counters: per-feed sums plus bus counters.
    #[must_use]
    pub fn stats(&self) -> Vec<(String, u64)> {
        use std::sync::atomic::Ordering::Relaxed;
        let mut totals: Vec<(String, u64)> = Vec::new();
        for f in self.feeds.read().iter() {
            let extra = [
                ("reconnects", f.reconnects.load(Relaxed)),
                ("snapshot_requests", f.snapshot_requests.load(Relaxed)),
                ("sockets", f.sockets.load(Relaxed)),
                ("connected", f.connected.load(Relaxed)),
                ("instruments", f.instruments.load(Relaxed)),
                ("instrument_evictions", f.instrument_evictions.load(Relaxed)),
            ];
            for (k, v) in f.totals().into_iter().chain(extra) {
                match totals.iter_mut().find(|(n, _)| n == k) {
                    Some((_, t)) => *t += v,
                    None => totals.push((k.to_string(), v)),
                }
            }
        }
        for (_, rest) in &self.schedulers {
            for (k, v) in rest.counters() {
                match totals.iter_mut().find(|(n, _)| n == k) {
                    Some((_, t)) => *t += v,
                    None => totals.push((k.to_string(), v)),
                }
            }
        }
        for w in &self.raw_writers {
            for (k, v) in w.stats() {
                match totals.iter_mut().find(|(n, _)| n == k) {
                    Some((_, t)) => *t += v,
                    None => totals.push((k.to_string(), v)),
                }
            }
        }
        let c = &self.bus.counters;
        totals.extend([
            ("queue_depth".to_string(), self.bus.len() as u64),
            ("queue_capacity".to_string(), self.bus.capacity() as u64),
            ("queue_pushed".to_string(), c.pushed.load(Relaxed)),
            ("queue_popped".to_string(), c.popped.load(Relaxed)),
            ("queue_dropped".to_string(), c.dropped.load(Relaxed)),
            ("queue_full_waits".to_string(), c.full_waits.load(Relaxed)),
            ("queue_high_water".to_string(), c.high_water.load(Relaxed)),
            ("queue_conflated".to_string(), c.conflated.load(Relaxed)),
            (
                "queue_book_overflows".to_string(),
                c.book_overflows.load(Relaxed),
            ),
            (
                "queue_book_held_back".to_string(),
                c.book_held_back.load(Relaxed),
            ),
            ("queue_spilled".to_string(), c.spilled.load(Relaxed)),
            ("queue_unspilled".to_string(), c.unspilled.load(Relaxed)),
            (
                "queue_spill_errors".to_string(),
                c.spill_errors.load(Relaxed),
            ),
        ]);
        let mut opened = 0;
        let mut seen: Vec<Venue> = Vec::new();
        for f in self.feeds.read().iter() {
            if !seen.contains(&f.venue) {
                seen.push(f.venue);
                opened += f.breaker.opened.load(Relaxed);
            }
        }
        totals.push(("circuit_opened".to_string(), opened));
        let bus = super::nats::counter_pairs(
            self.js_sink.as_ref().map(|s| &*s.counters),
            self.js_source.as_ref().map(|s| &*s.counters),
        );
        totals.extend(bus.into_iter().map(|(k, v)| (k.to_string(), v)));
        totals
    }

    /// Prometheus text of the current metrics.
    #[must_use]
    pub fn metrics_text(&self) -> String {
        let feeds = self.feeds.read().clone();
        render(&feeds, &self.metrics_source())
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.stop(Duration::from_millis(500));
        self.close_bus(Duration::from_secs(5));
    }
}

/// Wait up to `timeout` for events on `bus` and move at most `max` into `out`. With a
/// `driver` (an inline engine's runtime) the wait runs that runtime's tasks (sockets,
/// timers) on this thread until something is queued: the hand-off from the socket task to
/// the consumer is then a function return, not a thread wake-up.
pub fn wait_batch(
    bus: &EventBus,
    driver: Option<&tokio::runtime::Runtime>,
    out: &mut Vec<Event>,
    max: usize,
    timeout: Duration,
) -> usize {
    match driver {
        Some(rt) => {
            rt.block_on(bus.ready(timeout));
            bus.pop_batch(out, max, Duration::ZERO)
        }
        None => bus.pop_batch(out, max, timeout),
    }
}

/// Publish the REST scheduler's rate-limit answers (429/418) as statuses.
async fn report_limits(
    venue: Venue,
    mut notices: tokio::sync::mpsc::Receiver<LimitNotice>,
    bus: Arc<EventBus>,
    cancel: CancellationToken,
) {
    loop {
        let notice = tokio::select! {
            () = cancel.cancelled() => return,
            n = notices.recv() => n,
        };
        let Some(n) = notice else { return };
        let mut ev = vec![Event::Status(Status {
            venue,
            sym: None,
            kind: StatusKind::Error,
            reason: StatusReason::RateLimited {
                http_status: n.http_status,
                retry_ms: n.retry_ms,
            },
            state: None,
            ts: now_ns(),
        })];
        bus.publish(&mut ev).await;
    }
}

/// Run a feed; a panic inside it is reported as a status and the feed restarted (bounded).
async fn supervise(
    spec: FeedSpec,
    shared: Arc<FeedShared>,
    bus: Arc<EventBus>,
    rest: Arc<RestScheduler>,
    cancel: CancellationToken,
) {
    for restart in 0..=MAX_PANIC_RESTARTS {
        let run = run_feed(
            spec.clone(),
            shared.clone(),
            bus.clone(),
            rest.clone(),
            cancel.clone(),
        );
        if AssertUnwindSafe(run).catch_unwind().await.is_ok() {
            return;
        }
        let mut ev = vec![Event::Status(Status {
            venue: spec.venue,
            sym: None,
            kind: StatusKind::Error,
            reason: StatusReason::Panic,
            state: None,
            ts: now_ns(),
        })];
        bus.publish(&mut ev).await;
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(backoff(restart)) => {}
        }
    }
}
