//! `xtrader._core.replay_capture`: run a capture through the processors (GIL released) and
//! return Arrow tables per channel, final books, stats and statuses.

use std::path::PathBuf;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use super::events::{to_py, PyBook};
use super::frames::tables;
use super::ReplayError;
use crate::model::Event;
use crate::pipeline::raw::{is_raw, replay_raw};
use crate::pipeline::replay::{replay_cryptofeed, ReplayOutput};

/// The outcome of a replay (Arrow tables; `xtrader.replay` makes polars frames of them).
#[pyclass(frozen, module = "xtrader._core", name = "ReplayResult")]
pub struct PyReplayResult {
    #[pyo3(get)]
    exchange: String,
    #[pyo3(get)]
    trades: Py<PyAny>,
    #[pyo3(get)]
    book_updates: Py<PyAny>,
    #[pyo3(get)]
    bbo: Py<PyAny>,
    #[pyo3(get)]
    frames: Py<PyDict>,
    #[pyo3(get)]
    books: Py<PyDict>,
    #[pyo3(get)]
    stats: Py<PyDict>,
    #[pyo3(get)]
    statuses: Py<PyList>,
    #[pyo3(get)]
    events: Py<PyList>,
}

/// Replay a recorded capture: cryptofeed's format with its recorded REST answers, or
/// xtrader's raw capture (`*.xtraw.lz4`, which carries its REST answers itself).
#[pyfunction]
#[pyo3(signature = (capture, rest=Vec::new(), exchange=None, collect_events=false))]
pub fn replay_capture(
    py: Python<'_>,
    capture: PathBuf,
    rest: Vec<PathBuf>,
    exchange: Option<String>,
    collect_events: bool,
) -> PyResult<PyReplayResult> {
    let out: ReplayOutput = py
        .detach(|| {
            if is_raw(&capture) {
                replay_raw(&capture)
            } else {
                replay_cryptofeed(&capture, &rest, exchange.as_deref())
            }
        })
        .map_err(|e| ReplayError::new_err(e.to_string()))?;
    // every channel, empty or not, so callers always find the contract columns
    let frames = tables(py, &out.events, true)?;
    let take = |name: &str| -> PyResult<Py<PyAny>> {
        frames
            .get_item(name)?
            .map(Bound::unbind)
            .ok_or_else(|| pyo3::exceptions::PyKeyError::new_err(name.to_string()))
    };
    let trades = take("trades")?;
    let book_updates = take("book")?;
    let bbo = take("bbo")?;
    let books = PyDict::new(py);
    for m in &out.symbols {
        if m.book.is_some() {
            books.set_item(&*m.symbol, PyBook(m.clone()))?;
        }
    }
    let stats = PyDict::new(py);
    for (k, v) in &out.counters {
        stats.set_item(*k, *v)?;
    }
    let errors = out
        .events
        .iter()
        .filter(|e| matches!(e, Event::Status(s) if s.kind == crate::model::StatusKind::Error))
        .count();
    stats.set_item("errors", errors)?;
    // venues without checksums (Binance) report zero; OKX counts every one it checked
    for key in ["checksum_ok", "checksum_failed"] {
        if !stats.contains(key)? {
            stats.set_item(key, 0)?;
        }
    }
    let statuses = PyList::empty(py);
    let events = PyList::empty(py);
    for ev in out.events {
        if let Event::Status(s) = &ev {
            // through `to_py`, like every event object (it leaves the cyclic collector)
            statuses.append(to_py(py, Event::Status(s.clone()))?)?;
        }
        if collect_events {
            events.append(to_py(py, ev)?)?;
        }
    }
    Ok(PyReplayResult {
        exchange: out.venue.id().to_string(),
        trades,
        book_updates,
        bbo,
        frames: frames.unbind(),
        books: books.unbind(),
        stats: stats.unbind(),
        statuses: statuses.unbind(),
        events: events.unbind(),
    })
}
