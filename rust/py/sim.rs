//! `xtrader._core.Simulator`: the loopback exchange simulator on its own small tokio runtime,
//! so a test or the CLI can run it beside an `Engine` in one process.

use std::path::PathBuf;
use std::time::Duration;

use parking_lot::Mutex;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::SimulatorError;
use crate::sim::{start, CaptureSource, OkxFault, OkxSimConfig, SimConfig, SimHandle};

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
    #[pyo3(signature = (symbols=vec!["BTCUSDT".to_string(), "ETHUSDT".to_string()], rate=1000.0, seed=1, host="127.0.0.1".to_string(), port=0, capture=None, rest=None, ping_interval_ms=20000, depth_levels=200, speed=1.0, max_client_msgs_per_s=Some(5), worker_threads=1, okx_symbols=Vec::new(), okx_checksum=true, okx_push_snapshot=true, okx_idle_timeout_ms=30000))]
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
        okx_symbols: Vec<String>,
        okx_checksum: bool,
        okx_push_snapshot: bool,
        okx_idle_timeout_ms: u64,
    ) -> PyResult<Self> {
        if symbols.is_empty() && okx_symbols.is_empty() && capture.is_none() {
            return Err(PyValueError::new_err(
                "symbols: at least one symbol is required",
            ));
        }
        if !rate.is_finite() {
            return Err(PyValueError::new_err("rate: must be a finite number"));
        }
        let cfg = SimConfig {
            host,
            port,
            symbols: symbols
                .into_iter()
                .map(|s| s.replace('-', "").to_ascii_uppercase())
                .collect(),
            rate,
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

    fn inject_gap(&self, symbol: &str) -> PyResult<()> {
        let native = symbol.replace('-', "").to_ascii_uppercase();
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
        self.with(|h| {
            let native = if h.is_okx_symbol(symbol) {
                symbol.to_string()
            } else {
                symbol.replace('-', "").to_ascii_uppercase()
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
            other => {
                return Err(PyValueError::new_err(format!(
                    "kind: unknown fault '{other}' (expected checksum, seq_break, stall, subscribe_error)"
                )))
            }
        };
        let result = self.with(|h| {
            // a Binance symbol's sequence break is the existing gap injection
            if let (OkxFault::SeqBreak, Some(s)) = (fault, symbol) {
                if !h.is_okx_symbol(s) {
                    let native = s.replace('-', "").to_ascii_uppercase();
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

    fn __exit__(
        &self,
        py: Python<'_>,
        _t: Option<Bound<'_, PyAny>>,
        _v: Option<Bound<'_, PyAny>>,
        _tb: Option<Bound<'_, PyAny>>,
    ) -> bool {
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
