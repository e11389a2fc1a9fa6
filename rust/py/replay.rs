//! `xtrader._core.replay_capture`: run a capture through the processors (GIL released) and
//! return columns, final books, stats and statuses.

use std::path::PathBuf;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use super::events::{to_py, PyBook, PyStatus};
use super::ReplayError;
use crate::model::Event;
use crate::pipeline::replay::{replay_cryptofeed, ReplayOutput};

/// The outcome of a replay (columns as lists; `xtrader.replay` makes polars frames of them).
#[pyclass(frozen, module = "xtrader._core", name = "ReplayResult")]
pub struct PyReplayResult {
    #[pyo3(get)]
    exchange: String,
    #[pyo3(get)]
    trades: Py<PyDict>,
    #[pyo3(get)]
    book_updates: Py<PyDict>,
    #[pyo3(get)]
    bbo: Py<PyDict>,
    #[pyo3(get)]
    books: Py<PyDict>,
    #[pyo3(get)]
    stats: Py<PyDict>,
    #[pyo3(get)]
    statuses: Py<PyList>,
    #[pyo3(get)]
    events: Py<PyList>,
}

#[derive(Default)]
struct Columns {
    t_ex: Vec<&'static str>,
    t_sym: Vec<String>,
    t_nat: Vec<String>,
    t_tse: Vec<i64>,
    t_tsr: Vec<i64>,
    t_px: Vec<f64>,
    t_sz: Vec<f64>,
    t_side: Vec<&'static str>,
    t_id: Vec<u64>,
    b_ex: Vec<&'static str>,
    b_sym: Vec<String>,
    b_tse: Vec<i64>,
    b_tsr: Vec<i64>,
    b_side: Vec<&'static str>,
    b_px: Vec<f64>,
    b_sz: Vec<f64>,
    b_snap: Vec<bool>,
    b_seq: Vec<u64>,
    q_ex: Vec<&'static str>,
    q_sym: Vec<String>,
    q_tse: Vec<i64>,
    q_tsr: Vec<i64>,
    q_bp: Vec<f64>,
    q_bs: Vec<f64>,
    q_ap: Vec<f64>,
    q_as: Vec<f64>,
}

impl Columns {
    fn add(&mut self, ev: &Event) {
        match ev {
            Event::Trade(t) => {
                self.t_ex.push(t.sym.venue.id());
                self.t_sym.push(t.sym.symbol.to_string());
                self.t_nat.push(t.sym.native.to_string());
                self.t_tse.push(t.ts_exchange);
                self.t_tsr.push(t.ts_recv);
                self.t_px.push(t.price);
                self.t_sz.push(t.size);
                self.t_side.push(t.side.as_str());
                self.t_id.push(t.trade_id);
            }
            Event::Book(d) => {
                for (side, levels) in [("bid", &d.bids), ("ask", &d.asks)] {
                    for &(p, s) in levels {
                        self.b_ex.push(d.sym.venue.id());
                        self.b_sym.push(d.sym.symbol.to_string());
                        self.b_tse.push(d.ts_exchange);
                        self.b_tsr.push(d.ts_recv);
                        self.b_side.push(side);
                        self.b_px.push(p);
                        self.b_sz.push(s);
                        self.b_snap.push(d.is_snapshot);
                        self.b_seq.push(d.seq);
                    }
                }
            }
            Event::Bbo(q) => {
                self.q_ex.push(q.sym.venue.id());
                self.q_sym.push(q.sym.symbol.to_string());
                self.q_tse.push(q.ts_exchange);
                self.q_tsr.push(q.ts_recv);
                self.q_bp.push(q.bid_price);
                self.q_bs.push(q.bid_size);
                self.q_ap.push(q.ask_price);
                self.q_as.push(q.ask_size);
            }
            // not columns of a replay result yet (venues that emit them add frames with them)
            Event::Status(_)
            | Event::Ticker(_)
            | Event::Funding(_)
            | Event::Liquidation(_)
            | Event::OpenInterest(_) => {}
        }
    }
}

macro_rules! dict {
    ($py:expr, $($k:literal => $v:expr),* $(,)?) => {{
        let d = PyDict::new($py);
        $(d.set_item($k, $v)?;)*
        d.unbind()
    }};
}

/// Replay a recorded capture (cryptofeed raw format) with its recorded REST answers.
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
        .detach(|| replay_cryptofeed(&capture, &rest, exchange.as_deref()))
        .map_err(|e| ReplayError::new_err(e.to_string()))?;
    let mut c = Columns::default();
    for ev in &out.events {
        c.add(ev);
    }
    let trades = dict!(py,
        "exchange" => c.t_ex, "symbol" => c.t_sym, "native_symbol" => c.t_nat,
        "ts_exchange" => c.t_tse, "ts_recv" => c.t_tsr, "price" => c.t_px, "size" => c.t_sz,
        "side" => c.t_side, "trade_id" => c.t_id,
    );
    let book_updates = dict!(py,
        "exchange" => c.b_ex, "symbol" => c.b_sym, "ts_exchange" => c.b_tse, "ts_recv" => c.b_tsr,
        "side" => c.b_side, "price" => c.b_px, "size" => c.b_sz, "is_snapshot" => c.b_snap,
        "seq" => c.b_seq,
    );
    let bbo = dict!(py,
        "exchange" => c.q_ex, "symbol" => c.q_sym, "ts_exchange" => c.q_tse, "ts_recv" => c.q_tsr,
        "bid_price" => c.q_bp, "bid_size" => c.q_bs, "ask_price" => c.q_ap, "ask_size" => c.q_as,
    );
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
            statuses.append(PyStatus(s.clone()))?;
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
        books: books.unbind(),
        stats: stats.unbind(),
        statuses: statuses.unbind(),
        events: events.unbind(),
    })
}
