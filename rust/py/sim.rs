//! `xtrader._core.Simulator`: the loopback exchange simulator on its own small tokio runtime,
//! so a test or the CLI can run it beside an `Engine` in one process.

use std::path::PathBuf;
use std::time::Duration;

use parking_lot::Mutex;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString};

use super::SimulatorError;
use crate::sim::{start, CaptureSource, OkxFault, OkxSimConfig, Profile, SimConfig, SimHandle};

/// A symbol as the simulator of `profile` names it (spot `BTC-USDT` → `BTCUSDT`; futures
/// natives keep their `_`: `BTCUSD_PERP`).
fn native(profile: Profile, symbol: &str) -> String {
    let s = symbol.to_ascii_uppercase();
    if profile == Profile::Spot {
        s.replace(['-', '_'], "")
    } else {
        s.replace('-', "")
    }
}

/// Longest injected snapshot delay: a test must not outlive its own timeout.
const MAX_DELAY_MS: u64 = 60_000;

struct Running {
    rt: tokio::runtime::Runtime,
    handle: SimHandle,
}

/// The simulator (see `_core.pyi`).
#[pyclass(frozen, module = "xtrader._core", name = "Simulator")]
pub struct PySimulator {
    cfg: SimConfig,
    worker_threads: usize,
    running: Mutex<Option<Running>>,
}

impl PySimulator {
    fn with<T>(&self, f: impl FnOnce(&SimHandle) -> T) -> PyResult<T> {
        match &*self.running.lock() {
            Some(r) => Ok(f(&r.handle)),
            None => Err(SimulatorError::new_err(
                "simulator is not running: call start() first",
            )),
        }
    }
}

#[pymethods]
impl PySimulator {
    #[new]
    #[pyo3(signature = (symbols=vec!["BTCUSDT".to_string(), "ETHUSDT".to_string()], rate=1000.0, seed=1, host="127.0.0.1".to_string(), port=0, capture=None, rest=None, ping_interval_ms=20000, depth_levels=200, speed=1.0, max_client_msgs_per_s=Some(5), worker_threads=1, profile="spot", connection_lifetime_ms=None, weight_limit=None, weight_window_ms=60000, mark_interval_ms=1000, liquidation_prob=0.2, okx_symbols=Vec::new(), okx_checksum=true, okx_push_snapshot=true, okx_idle_timeout_ms=30000, paced=false))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        symbols: Vec<String>,
        rate: f64,
        seed: u64,
        host: String,
        port: u16,
        capture: Option<PathBuf>,
        rest: Option<Vec<PathBuf>>,
        ping_interval_ms: u64,
        depth_levels: usize,
        speed: f64,
        max_client_msgs_per_s: Option<u32>,
        worker_threads: usize,
        profile: &str,
        connection_lifetime_ms: Option<u64>,
        weight_limit: Option<u32>,
        weight_window_ms: u64,
        mark_interval_ms: u64,
        liquidation_prob: f64,
        okx_symbols: Vec<String>,
        okx_checksum: bool,
        okx_push_snapshot: bool,
        okx_idle_timeout_ms: u64,
        paced: bool,
    ) -> PyResult<Self> {
        if symbols.is_empty() && okx_symbols.is_empty() && capture.is_none() {
            return Err(PyValueError::new_err(
                "symbols: at least one symbol is required",
            ));
        }
        if !rate.is_finite() {
            return Err(PyValueError::new_err("rate: must be a finite number"));
        }
        let profile = Profile::from_name(profile).ok_or_else(|| {
            PyValueError::new_err(format!(
                "profile: unknown profile '{profile}' (expected 'spot', 'usdm' or 'coinm')"
            ))
        })?;
        if weight_limit == Some(0) {
            return Err(PyValueError::new_err("weight_limit: must be positive"));
        }
        if weight_window_ms < 1000 {
            return Err(PyValueError::new_err(
                "weight_window_ms: must be at least 1000",
            ));
        }
        if !(0.0..=1.0).contains(&liquidation_prob) {
            return Err(PyValueError::new_err(
                "liquidation_prob: must be between 0 and 1",
            ));
        }
        let cfg = SimConfig {
            host,
            port,
            symbols: symbols.into_iter().map(|s| native(profile, &s)).collect(),
            rate,
            paced,
            seed,
            ping_interval: Duration::from_millis(ping_interval_ms.max(10)),
            pong_timeout: Duration::from_millis(ping_interval_ms.max(10).saturating_mul(3)),
            max_client_msgs_per_s,
            depth_levels: depth_levels.max(1),
            capture: capture.map(|ws| CaptureSource {
                ws,
                rest: rest.unwrap_or_default(),
                speed,
            }),
            okx: OkxSimConfig {
                symbols: okx_symbols
                    .iter()
                    .map(|s| s.trim().to_ascii_uppercase())
                    .collect(),
                checksum: okx_checksum,
                push_snapshot: okx_push_snapshot,
                idle_timeout: Duration::from_millis(okx_idle_timeout_ms.max(50)),
            },
            profile,
            connection_lifetime: connection_lifetime_ms.map(|ms| Duration::from_millis(ms.max(1))),
            weight_limit,
            weight_window: Duration::from_millis(weight_window_ms),
            mark_interval: Duration::from_millis(mark_interval_ms.max(1)),
            liquidation_prob,
        };
        Ok(Self {
            cfg,
            worker_threads: worker_threads.max(1),
            running: Mutex::new(None),
        })
    }

    fn start(&self, py: Python<'_>) -> PyResult<()> {
        let mut guard = self.running.lock();
        if guard.is_some() {
            return Ok(());
        }
        let cfg = self.cfg.clone();
        let threads = self.worker_threads;
        let running = py.detach(move || -> Result<Running, String> {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(threads)
                .thread_name("xtrader-sim")
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            let handle = rt.block_on(start(cfg)).map_err(|e| e.to_string())?;
            Ok(Running { rt, handle })
        });
        *guard = Some(running.map_err(SimulatorError::new_err)?);
        Ok(())
    }

    fn stop(&self, py: Python<'_>) {
        let taken = self.running.lock().take();
        if let Some(r) = taken {
            py.detach(move || {
                r.rt.block_on(r.handle.shutdown());
                r.rt.shutdown_timeout(Duration::from_secs(1));
            });
        }
    }

    #[getter]
    fn port(&self) -> PyResult<u16> {
        self.with(|h| h.local_addr().port())
    }

    #[getter]
    fn ws_url(&self) -> PyResult<String> {
        self.with(|h| format!("ws://{}", h.local_addr()))
    }

    #[getter]
    fn rest_url(&self) -> PyResult<String> {
        self.with(|h| format!("http://{}", h.local_addr()))
    }

    #[getter]
    fn profile(&self) -> &'static str {
        match self.cfg.profile {
            Profile::Spot => "spot",
            Profile::UsdM => "usdm",
            Profile::CoinM => "coinm",
        }
    }

    fn inject_gap(&self, symbol: &str) -> PyResult<()> {
        let native = native(self.cfg.profile, symbol);
        if self.with(|h| h.inject_gap(&native))? {
            Ok(())
        } else {
            Err(PyValueError::new_err(format!(
                "symbol: '{symbol}' is not served by this simulator"
            )))
        }
    }

    fn inject_raw(&self, text: String) -> PyResult<()> {
        self.with(|h| h.inject_raw(text))
    }

    #[pyo3(signature = (symbol, count=1))]
    fn fail_snapshots(&self, symbol: &str, count: u32) -> PyResult<()> {
        let profile = self.cfg.profile;
        self.with(|h| {
            let native = if h.is_okx_symbol(symbol) {
                symbol.to_string()
            } else {
                native(profile, symbol)
            };
            h.fail_snapshots(&native, count);
        })
    }

    #[pyo3(signature = (kind, symbol=None, count=1, duration_ms=1000))]
    fn inject_fault(
        &self,
        kind: &str,
        symbol: Option<&str>,
        count: u32,
        duration_ms: u64,
    ) -> PyResult<()> {
        let fault = match kind {
            "checksum" => OkxFault::BadChecksum,
            "seq_break" => OkxFault::SeqBreak,
            "stall" => OkxFault::Stall,
            "subscribe_error" => OkxFault::SubscribeError,
            "slow_snapshot" => {
                let profile = self.cfg.profile;
                return self.with(|h| {
                    let native = symbol.map(|s| {
                        if h.is_okx_symbol(s) {
                            s.to_string()
                        } else {
                            native(profile, s)
                        }
                    });
                    h.slow_snapshots(
                        native.as_deref(),
                        count,
                        Duration::from_millis(duration_ms.min(MAX_DELAY_MS)),
                    );
                });
            }
            other => {
                return Err(PyValueError::new_err(format!(
                    "kind: unknown fault '{other}' (expected checksum, seq_break, stall, subscribe_error, slow_snapshot)"
                )))
            }
        };
        let profile = self.cfg.profile;
        let result = self.with(|h| {
            // a Binance symbol's refused subscription is answered by the Binance protocol
            if let (OkxFault::SubscribeError, Some(s)) = (fault, symbol) {
                if !h.is_okx_symbol(s) {
                    h.refuse_subscriptions(&native(profile, s), count);
                    return Ok(());
                }
            }
            // a Binance symbol's sequence break is the existing gap injection
            if let (OkxFault::SeqBreak, Some(s)) = (fault, symbol) {
                if !h.is_okx_symbol(s) {
                    let native = native(profile, s);
                    return if h.inject_gap(&native) {
                        Ok(())
                    } else {
                        Err("symbol is not served by this simulator")
                    };
                }
            }
            h.inject_okx_fault(fault, symbol, count, Duration::from_millis(duration_ms))
        })?;
        result.map_err(|why| PyValueError::new_err(format!("inject_fault({kind}): {why}")))
    }

    fn inject_frame(&self, data: &Bound<'_, PyAny>) -> PyResult<()> {
        let (bytes, binary) = if let Ok(b) = data.cast::<PyBytes>() {
            (b.as_bytes().to_vec(), true)
        } else if let Ok(s) = data.cast::<PyString>() {
            (s.to_str()?.as_bytes().to_vec(), false)
        } else {
            return Err(PyTypeError::new_err("data: expected bytes or str"));
        };
        self.with(|h| h.inject_frame(bytes, binary))?
            .map_err(|why| PyValueError::new_err(format!("data: {why}")))
    }

    #[pyo3(signature = (duration_ms, stream=None, keepalive=true))]
    fn stall(&self, duration_ms: u64, stream: Option<String>, keepalive: bool) -> PyResult<()> {
        let d = Duration::from_millis(duration_ms);
        self.with(|h| {
            if !keepalive {
                h.mute_keepalives(d);
            }
            h.stall(d, stream);
        })
    }

    fn disconnect(&self) -> PyResult<()> {
        self.with(SimHandle::disconnect_all)
    }

    #[pyo3(signature = (status=429, count=1, retry_after_s=1))]
    fn rest_errors(&self, status: u16, count: u32, retry_after_s: u64) -> PyResult<()> {
        if !matches!(status, 418 | 429 | 500 | 503) {
            return Err(PyValueError::new_err(format!(
                "status: {status} is not injectable (expected 418, 429, 500 or 503)"
            )));
        }
        self.with(|h| h.rest_errors(status, count, retry_after_s))
    }

    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let pairs = self.with(|h| h.stats().to_pairs())?;
        let d = PyDict::new(py);
        for (k, v) in pairs {
            d.set_item(k, v)?;
        }
        Ok(d)
    }

    fn __enter__(slf: Bound<'_, Self>) -> PyResult<Bound<'_, Self>> {
        slf.get().start(slf.py())?;
        Ok(slf)
    }

    #[pyo3(signature = (exc_type, exc_value, traceback))]
    fn __exit__(
        &self,
        py: Python<'_>,
        exc_type: Option<Bound<'_, PyAny>>,
        exc_value: Option<Bound<'_, PyAny>>,
        traceback: Option<Bound<'_, PyAny>>,
    ) -> bool {
        // exceptions propagate: stopping is all the context manager does
        let _ = (exc_type, exc_value, traceback);
        self.stop(py);
        false
    }
}

impl Drop for PySimulator {
    fn drop(&mut self) {
        if let Some(r) = self.running.get_mut().take() {
            r.rt.block_on(r.handle.shutdown());
            r.rt.shutdown_timeout(Duration::from_secs(1));
        }
    }
}
