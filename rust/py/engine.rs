//! `xtrader._core.Engine`: builds feeds from Python arguments, runs them, and hands batches of
//! events to the Python dispatcher with the GIL released while it waits.

use std::time::Duration;

use parking_lot::Mutex;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use super::events::{to_py, PyBook};
use super::frames::tables;
use super::EngineError;
use crate::exchanges::binance::TradeStream;
use crate::exchanges::okx::connector::VENUE_CHANNELS as OKX_VENUE_CHANNELS;
use crate::exchanges::okx::OkxChannelChoice;
use crate::exchanges::Channels;
use crate::metrics::hist::Stage;
use crate::model::Event;
use crate::model::Venue;
use crate::model::Venue as V;
use crate::net::now_ns;
use crate::pipeline::bus::{KindPolicies, OverflowPolicy};
use crate::pipeline::engine::{wait_batch, Engine, EngineConfig};
use crate::pipeline::feed::FeedSpec;
use crate::pipeline::raw::RawConfig;
use crate::pipeline::spill::SpillConfig;

/// Longest single GIL-free wait; between slices Python gets to handle signals (Ctrl-C).
const WAIT_SLICE: Duration = Duration::from_millis(100);

/// The runtime core (see `_core.pyi`).
#[pyclass(frozen, module = "xtrader._core", name = "Engine")]
pub struct PyEngine {
    inner: Mutex<Engine>,
    /// (venue, `ts_recv`) of the last batch handed to Python, for the callback stage stamp.
    last_batch: Mutex<Vec<(V, i64)>>,
}

/// At least one NATS server given.
fn check_servers(servers: &[String]) -> PyResult<()> {
    if servers.is_empty() {
        return Err(PyValueError::new_err(
            "servers: give at least one nats://host:port",
        ));
    }
    Ok(())
}

/// A JetStream stream or consumer name: letters, digits, `-` and `_`.
fn check_name(key: &str, name: &str, what: &str) -> PyResult<()> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(PyValueError::new_err(format!(
            "{key}: '{name}' is not a valid {what} name (letters, digits, '-' and '_')"
        )));
    }
    Ok(())
}

impl PyEngine {
    /// Wait (GIL released, in slices so Ctrl-C gets through) for up to `max_events` events.
    fn wait(&self, py: Python<'_>, max_events: usize, timeout_ms: u64) -> PyResult<Vec<Event>> {
        let (bus, driver) = {
            let engine = self.inner.lock();
            (engine.bus().clone(), engine.inline_driver())
        };
        let mut events = Vec::with_capacity(max_events.min(65536));
        let deadline = std::time::Instant::now() + Duration::from_millis(timeout_ms);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let slice = left.min(WAIT_SLICE);
            let n = py.detach(|| {
                wait_batch(
                    &bus,
                    driver.as_deref(),
                    &mut events,
                    max_events.max(1),
                    slice,
                )
            });
            if n > 0 || left <= WAIT_SLICE {
                break;
            }
            py.check_signals()?;
        }
        // one buffer for the life of the engine: no allocation per batch
        let mut stamps = self.last_batch.lock();
        stamps.clear();
        stamps.extend(
            events
                .iter()
                .filter(|e| !matches!(e, Event::Status(_)))
                .filter_map(|e| e.venue().map(|v| (v, e.ts_recv()))),
        );
        let sink = {
            let engine = self.inner.lock();
            engine.record_stage(Stage::ToPython, &stamps, now_ns());
            engine.jetstream_sink()
        };
        drop(stamps);
        if let Some(sink) = sink {
            if !events.is_empty() {
                // waits (GIL released) while the publisher is a full queue behind
                py.detach(|| sink.submit(&events));
            }
        }
        Ok(events)
    }
}

#[pymethods]
impl PyEngine {
    #[new]
    #[pyo3(signature = (queue_capacity=65536, overflow="block", worker_threads=2, metrics_addr=None, quote_policy="conflate", book_policy="resync", trade_policy="block", spill_dir=None, spill_max_bytes=1 << 30, busy_poll_us=0))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        queue_capacity: usize,
        overflow: &str,
        worker_threads: usize,
        metrics_addr: Option<String>,
        quote_policy: &str,
        book_policy: &str,
        trade_policy: &str,
        spill_dir: Option<std::path::PathBuf>,
        spill_max_bytes: u64,
        busy_poll_us: u64,
    ) -> PyResult<Self> {
        let kinds = KindPolicies::parse(quote_policy, book_policy, trade_policy).map_err(
            |(kind, name)| {
                let expected = match kind {
                    "quotes" => "'conflate' or 'block'",
                    "book" => "'resync' or 'block'",
                    _ => "'block' or 'spill'",
                };
                let key = match kind {
                    "quotes" => "quote_policy",
                    "book" => "book_policy",
                    _ => "trade_policy",
                };
                PyValueError::new_err(format!(
                    "{key}: unknown policy '{name}' (expected {expected})"
                ))
            },
        )?;
        let spill =
            (kinds.trades == crate::pipeline::bus::TradePolicy::Spill).then(|| SpillConfig {
                dir: spill_dir.unwrap_or_else(|| std::env::temp_dir().join("xtrader-spill")),
                max_bytes: spill_max_bytes,
            });
        let overflow = OverflowPolicy::from_name(overflow).ok_or_else(|| {
            PyValueError::new_err(format!(
                "overflow: unknown policy '{overflow}' (expected 'block' or 'drop_oldest')"
            ))
        })?;
        if queue_capacity == 0 {
            return Err(PyValueError::new_err("queue_capacity: must be positive"));
        }
        Ok(Self {
            inner: Mutex::new(Engine::new(EngineConfig {
                queue_capacity,
                overflow,
                kinds,
                spill,
                busy_poll: Duration::from_micros(busy_poll_us.min(100_000)),
                worker_threads,
                metrics_addr: metrics_addr.filter(|a| !a.is_empty()),
            })),
            last_batch: Mutex::new(Vec::new()),
        })
    }

    #[pyo3(signature = (exchange, symbols, channels=vec!["trades".to_string(), "book".to_string(), "bbo".to_string()], ws_url=None, rest_url=None, depth_limit=1000, trade_stream=None, stale_after_ms=30000, open_interest_interval_ms=10000, connection_lifetime_ms=None, venue_channels=Vec::new(), max_data_silence_ms=None))]
    #[allow(clippy::too_many_arguments)]
    fn add_feed(
        &self,
        exchange: &str,
        symbols: Vec<String>,
        channels: Vec<String>,
        ws_url: Option<String>,
        rest_url: Option<String>,
        depth_limit: u32,
        trade_stream: Option<&str>,
        stale_after_ms: u64,
        open_interest_interval_ms: u64,
        connection_lifetime_ms: Option<u64>,
        venue_channels: Vec<String>,
        max_data_silence_ms: Option<u64>,
    ) -> PyResult<()> {
        let venue = Venue::from_id(exchange).ok_or_else(|| {
            PyValueError::new_err(format!("exchange: unknown exchange id '{exchange}'"))
        })?;
        if !matches!(
            venue,
            Venue::Binance
                | Venue::BinanceUs
                | Venue::BinanceUsdm
                | Venue::BinanceCoinm
                | Venue::Okx
        ) {
            return Err(PyValueError::new_err(format!(
                "exchange: '{exchange}' is not supported yet (supported: binance, binance_us, binance_usdm, binance_coinm, okx)"
            )));
        }
        if venue == Venue::Okx {
            OkxChannelChoice::parse(venue_channels.iter().map(String::as_str)).map_err(|c| {
                PyValueError::new_err(format!(
                    "venue_channels: unknown OKX channel '{c}' (expected one of {})",
                    OKX_VENUE_CHANNELS.join(", ")
                ))
            })?;
        } else if let Some(c) = venue_channels.first() {
            return Err(PyValueError::new_err(format!(
                "venue_channels: '{exchange}' has no venue channel choice (got '{c}')"
            )));
        }
        let futures = matches!(venue, Venue::BinanceUsdm | Venue::BinanceCoinm);
        if symbols.is_empty() {
            return Err(PyValueError::new_err(
                "symbols: at least one symbol is required",
            ));
        }
        let channels = Channels::parse(channels.iter().map(String::as_str)).map_err(|c| {
            PyValueError::new_err(format!(
                "channels: unknown channel '{c}' (expected {})",
                Channels::NAMES.join(", ")
            ))
        })?;
        let trade_stream = match trade_stream {
            Some("trade") => TradeStream::Trade,
            Some("aggTrade") => TradeStream::AggTrade,
            // futures document only aggTrade (`trade` is served but undocumented)
            None if futures => TradeStream::AggTrade,
            None => TradeStream::Trade,
            Some(other) => {
                return Err(PyValueError::new_err(format!(
                    "trade_stream: unknown stream '{other}' (expected 'trade' or 'aggTrade')"
                )))
            }
        };
        self.inner
            .lock()
            .add_feed(FeedSpec {
                venue,
                symbols,
                channels,
                ws_url,
                rest_url,
                depth_limit,
                trade_stream,
                venue_channels,
                stale_after: Duration::from_millis(stale_after_ms.max(1000)),
                open_interest_interval: Duration::from_millis(open_interest_interval_ms.max(100)),
                connection_lifetime: connection_lifetime_ms
                    .map(|ms| Duration::from_millis(ms.max(1000))),
                max_data_silence: max_data_silence_ms.map(|ms| Duration::from_millis(ms.max(500))),
            })
            .map_err(|e| EngineError::new_err(e.to_string()))
    }

    /// Capture raw frames and REST answers of every feed into `dir` (before `start`).
    #[pyo3(signature = (dir, rotate_bytes=256 * 1024 * 1024, rotate_interval_s=3600.0))]
    fn record_raw(
        &self,
        dir: std::path::PathBuf,
        rotate_bytes: u64,
        rotate_interval_s: f64,
    ) -> PyResult<()> {
        if !(rotate_interval_s.is_finite() && rotate_interval_s > 0.0) {
            return Err(PyValueError::new_err("rotate_interval_s: must be > 0"));
        }
        self.inner
            .lock()
            .record_raw(RawConfig {
                dir,
                rotate_bytes: rotate_bytes.max(1),
                rotate_interval: Duration::from_secs_f64(rotate_interval_s),
            })
            .map_err(|e| EngineError::new_err(e.to_string()))
    }

    fn start(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| self.inner.lock().start())
            .map_err(|e| EngineError::new_err(e.to_string()))
    }

    #[pyo3(signature = (max_events=4096, timeout_ms=100))]
    fn next_batch<'py>(
        &self,
        py: Python<'py>,
        max_events: usize,
        timeout_ms: u64,
    ) -> PyResult<Bound<'py, PyList>> {
        let events = self.wait(py, max_events, timeout_ms)?;
        let objs: Vec<Py<PyAny>> = events
            .into_iter()
            .map(|e| to_py(py, e))
            .collect::<PyResult<_>>()?;
        PyList::new(py, objs)
    }

    /// Wait like `next_batch`, then return `(events, frames)`: status events (and every event
    /// as an object when `objects`) plus one Arrow table per channel that had rows.
    #[pyo3(signature = (max_events=65536, timeout_ms=100, objects=false))]
    fn next_frames<'py>(
        &self,
        py: Python<'py>,
        max_events: usize,
        timeout_ms: u64,
        objects: bool,
    ) -> PyResult<(Bound<'py, PyList>, Bound<'py, PyDict>)> {
        let events = self.wait(py, max_events, timeout_ms)?;
        let frames = tables(py, &events, false)?;
        let list = PyList::empty(py);
        for ev in events {
            if objects || matches!(ev, Event::Status(_)) {
                list.append(to_py(py, ev)?)?;
            }
        }
        Ok((list, frames))
    }

    fn book(&self, exchange: &str, symbol: &str) -> Option<PyBook> {
        self.inner
            .lock()
            .find_symbol(exchange, symbol)
            .filter(|m| m.book.is_some())
            .map(PyBook)
    }

    fn books(&self) -> Vec<PyBook> {
        self.inner
            .lock()
            .symbols()
            .into_iter()
            .filter(|m| m.book.is_some())
            .map(PyBook)
            .collect()
    }

    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for (k, v) in self.inner.lock().stats() {
            d.set_item(k, v)?;
        }
        Ok(d)
    }

    #[pyo3(signature = (timeout_ms=3000))]
    fn stop(&self, py: Python<'_>, timeout_ms: u64) {
        py.detach(|| self.inner.lock().stop(Duration::from_millis(timeout_ms)));
    }

    #[getter]
    fn running(&self) -> bool {
        self.inner.lock().is_running()
    }

    #[getter]
    fn metrics_addr(&self) -> Option<String> {
        self.inner.lock().metrics_addr().map(|a| a.to_string())
    }

    fn metrics_text(&self) -> String {
        self.inner.lock().metrics_text()
    }

    /// Test hook: a socket task of each feed of `exchange` panics on its next tick (it is
    /// reported as a `panic` status and restarted). Returns the number of feeds armed.
    fn inject_panic(&self, exchange: &str) -> PyResult<usize> {
        let venue = V::from_id(exchange).ok_or_else(|| {
            PyValueError::new_err(format!("exchange: unknown exchange id '{exchange}'"))
        })?;
        Ok(self.inner.lock().inject_panic(venue))
    }

    /// Stamp the `callback_done` stage for every event of the last batch handed over.
    fn mark_callbacks_done(&self) {
        let mut batch = self.last_batch.lock();
        let engine = self.inner.lock();
        engine.record_stage(Stage::CallbackDone, &batch, now_ns());
        engine.bus_delivered();
        batch.clear();
    }

    #[pyo3(signature = (servers, stream="XT".to_string(), subject_prefix="xt".to_string(), replicas=1, max_age_ms=0, max_bytes=-1, max_msgs=-1, duplicate_window_ms=120_000, max_inflight=1024, snapshot_interval_ms=30_000, channels=None))]
    #[allow(clippy::too_many_arguments)]
    fn add_jetstream_sink(
        &self,
        servers: Vec<String>,
        stream: String,
        subject_prefix: String,
        replicas: usize,
        max_age_ms: u64,
        max_bytes: i64,
        max_msgs: i64,
        duplicate_window_ms: u64,
        max_inflight: usize,
        snapshot_interval_ms: u64,
        channels: Option<Vec<String>>,
    ) -> PyResult<()> {
        check_servers(&servers)?;
        check_name("stream", &stream, "stream")?;
        if subject_prefix.is_empty()
            || subject_prefix
                .chars()
                .any(|c| matches!(c, '.' | '*' | '>') || c.is_whitespace())
        {
            return Err(PyValueError::new_err(format!(
                "subject_prefix: '{subject_prefix}' must be one subject token (no '.', '*', '>' or spaces)"
            )));
        }
        if !(1..=5).contains(&replicas) {
            return Err(PyValueError::new_err(format!(
                "replicas: must be 1 to 5, got {replicas}"
            )));
        }
        if max_inflight == 0 {
            return Err(PyValueError::new_err("max_inflight: must be positive"));
        }
        if snapshot_interval_ms == 0 || duplicate_window_ms == 0 {
            return Err(PyValueError::new_err(
                "snapshot_interval_ms and duplicate_window_ms: must be positive",
            ));
        }
        self.inner
            .lock()
            .add_jetstream_sink(crate::pipeline::nats::sink::SinkConfig {
                servers,
                stream,
                prefix: subject_prefix,
                replicas,
                max_age: Duration::from_millis(max_age_ms),
                max_bytes,
                max_msgs,
                duplicate_window: Duration::from_millis(duplicate_window_ms),
                max_inflight,
                snapshot_interval: Duration::from_millis(snapshot_interval_ms),
                channels,
            })
            .map_err(|e| EngineError::new_err(e.to_string()))
    }

    #[pyo3(signature = (servers, stream="XT".to_string(), subject="xt.>".to_string(), durable="xtrader".to_string(), checkpoint=None, batch=512, gap_timeout_ms=2000))]
    #[allow(clippy::too_many_arguments)]
    fn set_jetstream_source(
        &self,
        servers: Vec<String>,
        stream: String,
        subject: String,
        durable: String,
        checkpoint: Option<std::path::PathBuf>,
        batch: usize,
        gap_timeout_ms: u64,
    ) -> PyResult<()> {
        check_servers(&servers)?;
        check_name("durable", &durable, "consumer")?;
        if batch == 0 || gap_timeout_ms == 0 {
            return Err(PyValueError::new_err(
                "batch and gap_timeout_ms: must be positive",
            ));
        }
        self.inner
            .lock()
            .set_jetstream_source(crate::pipeline::nats::source::SourceConfig {
                servers,
                stream,
                subject,
                durable,
                checkpoint,
                batch,
                gap_timeout: Duration::from_millis(gap_timeout_ms),
            })
            .map_err(|e| EngineError::new_err(e.to_string()))
    }

    /// Publish what the JetStream sink still holds and acknowledge what the source
    /// delivered (after the drain); returns the messages the sink gave up on.
    #[pyo3(signature = (timeout_ms=10_000))]
    fn close_bus(&self, py: Python<'_>, timeout_ms: u64) -> u64 {
        py.detach(|| {
            self.inner
                .lock()
                .close_bus(Duration::from_millis(timeout_ms))
        })
    }

    /// A sink wrote rows: count them (and its errors) and stamp the `sink_written` stage
    /// for the sampled `(exchange, ts_recv)` pairs.
    #[pyo3(signature = (sink, rows, errors=0, exchanges=Vec::new(), ts_recv=Vec::new()))]
    fn record_sink(
        &self,
        sink: &str,
        rows: u64,
        errors: u64,
        exchanges: Vec<String>,
        ts_recv: Vec<i64>,
    ) {
        let stamps: Vec<(V, i64)> = exchanges
            .iter()
            .zip(ts_recv)
            .filter_map(|(e, ts)| V::from_id(e).map(|v| (v, ts)))
            .collect();
        let eng = self.inner.lock();
        eng.add_sink_counts(sink, rows, errors);
        eng.record_stage(Stage::SinkWritten, &stamps, now_ns());
    }

    /// Stage latency quantiles: `{(exchange, stage): {count, p50_ns, p90_ns, p99_ns,
    /// p999_ns, max_ns, mean_ns}}` for every stage with samples.
    fn latency<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        let eng = self.inner.lock();
        let stages = eng.stages();
        for v in V::ALL {
            for st in Stage::ALL {
                let h = stages.get(v, st);
                let n = h.count();
                if n == 0 {
                    continue;
                }
                let row = PyDict::new(py);
                row.set_item("count", n)?;
                row.set_item("p50_ns", h.quantile(0.5))?;
                row.set_item("p90_ns", h.quantile(0.9))?;
                row.set_item("p99_ns", h.quantile(0.99))?;
                row.set_item("p999_ns", h.quantile(0.999))?;
                row.set_item("max_ns", h.max_ns())?;
                row.set_item("mean_ns", h.sum_ns() / n)?;
                d.set_item((v.id(), st.as_str()), row)?;
            }
        }
        Ok(d)
    }
}
