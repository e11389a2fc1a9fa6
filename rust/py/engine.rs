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
use crate::model::Event;
use crate::model::Venue;
use crate::pipeline::bus::OverflowPolicy;
use crate::pipeline::engine::{Engine, EngineConfig};
use crate::pipeline::feed::FeedSpec;
use crate::pipeline::raw::RawConfig;

/// Longest single GIL-free wait; between slices Python gets to handle signals (Ctrl-C).
const WAIT_SLICE: Duration = Duration::from_millis(100);

/// The runtime core (see `_core.pyi`).
#[pyclass(frozen, module = "xtrader._core", name = "Engine")]
pub struct PyEngine {
    inner: Mutex<Engine>,
}

impl PyEngine {
    /// Wait (GIL released, in slices so Ctrl-C gets through) for up to `max_events` events.
    fn wait(&self, py: Python<'_>, max_events: usize, timeout_ms: u64) -> PyResult<Vec<Event>> {
        let bus = self.inner.lock().bus().clone();
        let mut events = Vec::with_capacity(max_events.min(65536));
        let deadline = std::time::Instant::now() + Duration::from_millis(timeout_ms);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let slice = left.min(WAIT_SLICE);
            let n = py.detach(|| bus.pop_batch(&mut events, max_events.max(1), slice));
            if n > 0 || left <= WAIT_SLICE {
                break;
            }
            py.check_signals()?;
        }
        Ok(events)
    }
}

#[pymethods]
impl PyEngine {
    #[new]
    #[pyo3(signature = (queue_capacity=65536, overflow="block", worker_threads=2, metrics_addr=None))]
    fn new(
        queue_capacity: usize,
        overflow: &str,
        worker_threads: usize,
        metrics_addr: Option<String>,
    ) -> PyResult<Self> {
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
                worker_threads,
                metrics_addr: metrics_addr.filter(|a| !a.is_empty()),
            })),
        })
    }

    #[pyo3(signature = (exchange, symbols, channels=vec!["trades".to_string(), "book".to_string(), "bbo".to_string()], ws_url=None, rest_url=None, depth_limit=1000, trade_stream=None, stale_after_ms=30000, open_interest_interval_ms=10000, connection_lifetime_ms=None, venue_channels=Vec::new()))]
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
}
