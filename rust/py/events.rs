//! Python views of normalized events and of maintained books.

use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use pyo3::IntoPyObjectExt;

use crate::model::hash::FastMap;
use crate::model::{
    Bbo, BookDelta, BookState, Event, Funding, Liquidation, OpenInterest, Status, SymbolMeta,
    Ticker, Trade,
};

/// Define a frozen Python class over a flat event struct: symbol fields, times, then the
/// listed fields; `to_dict`, equality (field by field, floats bit-exact) and a readable repr.
macro_rules! py_event {
    ($(#[$doc:meta])* $py:ident($inner:ty), $name:literal, { $($field:ident : $ty:ty => |$e:ident| $get:expr),* $(,)? }) => {
        $(#[$doc])*
        #[pyclass(frozen, module = "xtrader._core", name = $name)]
        pub struct $py(pub $inner);

        #[pymethods]
        impl $py {
            #[getter]
            fn exchange(&self) -> &'static str {
                self.0.sym.venue.id()
            }
            #[getter]
            fn symbol(&self) -> &str {
                &self.0.sym.symbol
            }
            #[getter]
            fn native_symbol(&self) -> &str {
                &self.0.sym.native
            }
            #[getter]
            fn ts_exchange(&self) -> i64 {
                self.0.ts_exchange
            }
            #[getter]
            fn ts_recv(&self) -> i64 {
                self.0.ts_recv
            }
            $(
                #[getter]
                fn $field(&self) -> $ty {
                    let $e = &self.0;
                    $get
                }
            )*
            fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
                let d = PyDict::new(py);
                d.set_item("exchange", self.exchange())?;
                d.set_item("symbol", self.symbol())?;
                d.set_item("native_symbol", self.native_symbol())?;
                d.set_item("ts_exchange", self.0.ts_exchange)?;
                d.set_item("ts_recv", self.0.ts_recv)?;
                $(d.set_item(stringify!($field), self.$field())?;)*
                Ok(d)
            }
            fn __eq__(&self, other: &Bound<'_, PyAny>) -> PyResult<bool> {
                match other.cast::<$py>() {
                    Ok(o) => self.to_dict(other.py())?.eq(o.get().to_dict(other.py())?),
                    Err(_) => Ok(false),
                }
            }
            fn __repr__(&self) -> String {
                let mut s = format!("{}({} {} ts={}", $name, self.exchange(), self.symbol(), self.0.ts_exchange);
                $(s.push_str(&format!(" {}={:?}", stringify!($field), self.$field()));)*
                s.push(')');
                s
            }
        }
    };
}

py_event!(
    /// A trade.
    PyTrade(Trade), "Trade", {
    price: f64 => |e| e.price,
    size: f64 => |e| e.size,
    side: &'static str => |e| e.side.as_str(),
    trade_id: u64 => |e| e.trade_id,
});

py_event!(
    /// Best bid and offer.
    PyQuote(Bbo), "Quote", {
    bid_price: f64 => |e| e.bid_price,
    bid_size: f64 => |e| e.bid_size,
    ask_price: f64 => |e| e.ask_price,
    ask_size: f64 => |e| e.ask_size,
});

py_event!(
    /// A venue ticker: last trade, best quotes and 24 h statistics.
    PyTicker(Ticker), "Ticker", {
    last_price: f64 => |e| e.last_price,
    last_size: Option<f64> => |e| e.last_size,
    bid_price: Option<f64> => |e| e.bid_price,
    bid_size: Option<f64> => |e| e.bid_size,
    ask_price: Option<f64> => |e| e.ask_price,
    ask_size: Option<f64> => |e| e.ask_size,
    open_24h: Option<f64> => |e| e.open_24h,
    high_24h: Option<f64> => |e| e.high_24h,
    low_24h: Option<f64> => |e| e.low_24h,
    volume_24h: Option<f64> => |e| e.volume_24h,
    quote_volume_24h: Option<f64> => |e| e.quote_volume_24h,
});

py_event!(
    /// Mark price, index price and funding of a perpetual.
    PyFunding(Funding), "Funding", {
    mark_price: Option<f64> => |e| e.mark_price,
    index_price: Option<f64> => |e| e.index_price,
    funding_rate: Option<f64> => |e| e.funding_rate,
    funding_time: Option<i64> => |e| e.funding_time,
    next_funding_time: Option<i64> => |e| e.next_funding_time,
});

py_event!(
    /// A liquidation order (`side` is the liquidation order's side: `sell` = a long was liquidated).
    PyLiquidation(Liquidation), "Liquidation", {
    side: &'static str => |e| e.side.as_str(),
    price: f64 => |e| e.price,
    size: f64 => |e| e.size,
});

py_event!(
    /// Open interest in normalized units.
    PyOpenInterest(OpenInterest), "OpenInterest", {
    open_interest: f64 => |e| e.open_interest,
    open_interest_value: Option<f64> => |e| e.open_interest_value,
});

/// One depth message applied to a maintained book.
#[pyclass(frozen, module = "xtrader._core", name = "BookUpdate")]
pub struct PyBookUpdate(pub BookDelta);

#[pymethods]
impl PyBookUpdate {
    #[getter]
    fn exchange(&self) -> &'static str {
        self.0.sym.venue.id()
    }
    #[getter]
    fn symbol(&self) -> &str {
        &self.0.sym.symbol
    }
    #[getter]
    fn native_symbol(&self) -> &str {
        &self.0.sym.native
    }
    #[getter]
    fn ts_exchange(&self) -> i64 {
        self.0.ts_exchange
    }
    #[getter]
    fn ts_recv(&self) -> i64 {
        self.0.ts_recv
    }
    #[getter]
    fn seq(&self) -> u64 {
        self.0.seq
    }
    #[getter]
    fn is_snapshot(&self) -> bool {
        self.0.is_snapshot
    }
    #[getter]
    fn bids(&self) -> Vec<(f64, f64)> {
        self.0.bids.clone()
    }
    #[getter]
    fn asks(&self) -> Vec<(f64, f64)> {
        self.0.asks.clone()
    }
    #[getter]
    fn book(&self) -> PyBook {
        PyBook(self.0.sym.clone())
    }
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("exchange", self.exchange())?;
        d.set_item("symbol", self.symbol())?;
        d.set_item("native_symbol", self.native_symbol())?;
        d.set_item("ts_exchange", self.0.ts_exchange)?;
        d.set_item("ts_recv", self.0.ts_recv)?;
        d.set_item("seq", self.0.seq)?;
        d.set_item("is_snapshot", self.0.is_snapshot)?;
        d.set_item("bids", self.bids())?;
        d.set_item("asks", self.asks())?;
        Ok(d)
    }
    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other.cast::<PyBookUpdate>().is_ok_and(|o| {
            let (a, b) = (&self.0, &o.get().0);
            a.sym.native == b.sym.native
                && (a.ts_exchange, a.ts_recv, a.seq, a.is_snapshot)
                    == (b.ts_exchange, b.ts_recv, b.seq, b.is_snapshot)
                && a.bids == b.bids
                && a.asks == b.asks
        })
    }
    fn __repr__(&self) -> String {
        format!(
            "BookUpdate({} {} seq={} {}bids={} asks={})",
            self.exchange(),
            self.symbol(),
            self.0.seq,
            if self.0.is_snapshot { "snapshot " } else { "" },
            self.0.bids.len(),
            self.0.asks.len()
        )
    }
}

/// A feed or book health event.
#[pyclass(frozen, module = "xtrader._core", name = "Status")]
pub struct PyStatus(pub Status);

#[pymethods]
impl PyStatus {
    #[getter]
    fn exchange(&self) -> &'static str {
        self.0.venue.id()
    }
    #[getter]
    fn symbol(&self) -> Option<&str> {
        self.0.sym.as_ref().map(|m| &*m.symbol)
    }
    #[getter]
    fn kind(&self) -> &'static str {
        self.0.kind.as_str()
    }
    #[getter]
    fn reason(&self) -> Option<&'static str> {
        self.0.reason.code()
    }
    #[getter]
    fn state(&self) -> Option<&'static str> {
        self.0.state.map(BookState::as_str)
    }
    #[getter]
    fn message(&self) -> String {
        let detail = self.0.reason.render();
        match (&self.0.sym, detail.is_empty()) {
            (Some(m), true) => format!(
                "{} {}: {}",
                self.0.venue.id(),
                m.symbol,
                self.0.kind.as_str()
            ),
            (Some(m), false) => format!(
                "{} {}: {}: {detail}",
                self.0.venue.id(),
                m.symbol,
                self.0.kind.as_str()
            ),
            (None, true) => format!("{}: {}", self.0.venue.id(), self.0.kind.as_str()),
            (None, false) => format!("{}: {}: {detail}", self.0.venue.id(), self.0.kind.as_str()),
        }
    }
    #[getter]
    fn ts(&self) -> i64 {
        self.0.ts
    }
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("exchange", self.exchange())?;
        d.set_item("symbol", self.symbol())?;
        d.set_item("kind", self.kind())?;
        d.set_item("reason", self.reason())?;
        d.set_item("state", self.state())?;
        d.set_item("message", self.message())?;
        d.set_item("ts", self.0.ts)?;
        Ok(d)
    }
    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other.cast::<PyStatus>().is_ok_and(|o| {
            let (a, b) = (&self.0, &o.get().0);
            a.venue == b.venue
                && a.kind == b.kind
                && a.reason == b.reason
                && a.ts == b.ts
                && a.sym.as_ref().map(|m| &m.native) == b.sym.as_ref().map(|m| &m.native)
        })
    }
    fn __repr__(&self) -> String {
        format!("Status({})", self.message())
    }
}

/// Read-only view of a maintained book; every read sees the current state.
#[pyclass(frozen, module = "xtrader._core", name = "Book")]
pub struct PyBook(pub Arc<SymbolMeta>);

impl PyBook {
    fn read<T>(&self, f: impl FnOnce(&crate::model::OrderBook) -> T, default: T) -> T {
        match &self.0.book {
            Some(b) => f(&b.read()),
            None => default,
        }
    }
}

#[pymethods]
impl PyBook {
    #[getter]
    fn exchange(&self) -> &'static str {
        self.0.venue.id()
    }
    #[getter]
    fn symbol(&self) -> &str {
        &self.0.symbol
    }
    #[getter]
    fn native_symbol(&self) -> &str {
        &self.0.native
    }
    #[getter]
    fn state(&self) -> &'static str {
        self.read(|b| b.state.as_str(), BookState::Syncing.as_str())
    }
    #[getter]
    fn seq(&self) -> u64 {
        self.read(|b| b.seq, 0)
    }
    #[getter]
    fn ts_exchange(&self) -> i64 {
        self.read(|b| b.ts_exchange, 0)
    }
    #[getter]
    fn ts_recv(&self) -> i64 {
        self.read(|b| b.ts_recv, 0)
    }
    #[getter]
    fn best_bid(&self) -> Option<(f64, f64)> {
        self.read(|b| b.best_bid().map(|l| (l.price, l.size)), None)
    }
    #[getter]
    fn best_ask(&self) -> Option<(f64, f64)> {
        self.read(|b| b.best_ask().map(|l| (l.price, l.size)), None)
    }
    #[getter]
    fn mid(&self) -> Option<f64> {
        self.read(crate::model::OrderBook::mid, None)
    }
    #[getter]
    fn spread(&self) -> Option<f64> {
        self.read(crate::model::OrderBook::spread, None)
    }
    #[pyo3(signature = (n=None))]
    fn bids(&self, n: Option<usize>) -> Vec<(f64, f64)> {
        self.read(
            |b| b.bids(n).map(|l| (l.price, l.size)).collect(),
            Vec::new(),
        )
    }
    #[pyo3(signature = (n=None))]
    fn asks(&self, n: Option<usize>) -> Vec<(f64, f64)> {
        self.read(
            |b| b.asks(n).map(|l| (l.price, l.size)).collect(),
            Vec::new(),
        )
    }
    fn depth(&self) -> (usize, usize) {
        self.read(crate::model::OrderBook::depth, (0, 0))
    }
    /// Levels as a polars DataFrame: side, level (0 = best), price, size.
    #[pyo3(signature = (depth=None))]
    fn to_polars<'py>(&self, py: Python<'py>, depth: Option<usize>) -> PyResult<Bound<'py, PyAny>> {
        let (bids, asks) = self.read(
            |b| {
                (
                    b.bids(depth).map(|l| (l.price, l.size)).collect::<Vec<_>>(),
                    b.asks(depth).map(|l| (l.price, l.size)).collect::<Vec<_>>(),
                )
            },
            (Vec::new(), Vec::new()),
        );
        let n = bids.len() + asks.len();
        let mut side = Vec::with_capacity(n);
        let mut level = Vec::with_capacity(n);
        let mut price = Vec::with_capacity(n);
        let mut size = Vec::with_capacity(n);
        for (name, levels) in [("bid", &bids), ("ask", &asks)] {
            for (i, (p, s)) in levels.iter().enumerate() {
                side.push(name);
                level.push(i as u32);
                price.push(*p);
                size.push(*s);
            }
        }
        let cols = PyDict::new(py);
        cols.set_item(
            "exchange",
            PyList::new(py, std::iter::repeat_n(self.exchange(), n))?,
        )?;
        cols.set_item(
            "symbol",
            PyList::new(py, std::iter::repeat_n(self.symbol(), n))?,
        )?;
        cols.set_item("side", side)?;
        cols.set_item("level", level)?;
        cols.set_item("price", price)?;
        cols.set_item("size", size)?;
        let pl = py.import("polars")?;
        let schema = PyDict::new(py);
        for (k, t) in [
            ("exchange", "Utf8"),
            ("symbol", "Utf8"),
            ("side", "Utf8"),
            ("level", "UInt32"),
            ("price", "Float64"),
            ("size", "Float64"),
        ] {
            schema.set_item(k, pl.getattr(t)?)?;
        }
        let kwargs = PyDict::new(py);
        kwargs.set_item("schema", schema)?;
        pl.getattr("DataFrame")?.call((cols,), Some(&kwargs))
    }
    fn __repr__(&self) -> String {
        let fmt = |l: Option<(f64, f64)>| l.map_or("-".to_string(), |(p, s)| format!("{s}@{p}"));
        format!(
            "Book({} {} {} bid={} ask={} seq={})",
            self.exchange(),
            self.symbol(),
            self.state(),
            fmt(self.best_bid()),
            fmt(self.best_ask()),
            self.seq()
        )
    }
}

/// Convert one event to its Python object.
pub fn to_py(py: Python<'_>, ev: Event) -> PyResult<Py<PyAny>> {
    let obj = match ev {
        Event::Trade(t) => PyTrade(t).into_py_any(py),
        Event::Bbo(b) => PyQuote(b).into_py_any(py),
        Event::Book(d) => PyBookUpdate(d).into_py_any(py),
        Event::Status(s) => PyStatus(s).into_py_any(py),
        Event::Ticker(t) => PyTicker(*t).into_py_any(py),
        Event::Funding(f) => PyFunding(*f).into_py_any(py),
        Event::Liquidation(l) => PyLiquidation(l).into_py_any(py),
        Event::OpenInterest(o) => PyOpenInterest(o).into_py_any(py),
    }?;
    // Event objects hold no Python references (their fields are Rust values, the classes are
    // frozen and final), so they cannot be part of a reference cycle. Untracked, the cyclic
    // collector never visits them: the young-generation collections that allocating a batch
    // of events triggers have nothing to traverse. The interpreter does the same for tuples
    // of atomic values. Deallocation is unchanged (untracking twice is a no-op).
    // SAFETY: `obj` is a live object of a GC type, owned here, and the GIL is held.
    unsafe { pyo3::ffi::PyObject_GC_UnTrack(obj.as_ptr().cast()) };
    Ok(obj)
}

/// The last update of each book in `updates`, in the order the books first appear: what a
/// live ``on_book`` is called with, once per book per batch. The dispatcher collects a batch's
/// book updates with a C-level ``list.append`` and keeps no Python frame per update; this
/// picks the survivors without building an (exchange, symbol) key object per update.
///
/// Raises `TypeError` (naming the type) for an item that is not a `BookUpdate`.
#[pyfunction]
pub fn last_book_updates<'py>(
    py: Python<'py>,
    updates: &Bound<'py, PyList>,
) -> PyResult<Bound<'py, PyList>> {
    let mut kept: Vec<Bound<'py, PyBookUpdate>> = Vec::new();
    // the interned symbol's address finds a book already seen; two metas for one book (the
    // same symbol interned again after a feed restart) fall back to comparing names
    let mut by_meta: FastMap<usize, usize> = FastMap::default();
    for item in updates.iter() {
        let update = item.cast_into::<PyBookUpdate>().map_err(|e| {
            pyo3::exceptions::PyTypeError::new_err(format!(
                "last_book_updates takes BookUpdate objects, got {}",
                e.into_inner()
                    .get_type()
                    .name()
                    .map_or_else(|_| "?".into(), |n| n.to_string())
            ))
        })?;
        let sym = &update.get().0.sym;
        let address = Arc::as_ptr(sym) as usize;
        let slot = by_meta.get(&address).copied().or_else(|| {
            kept.iter().position(|k| {
                let other = &k.get().0.sym;
                other.venue == sym.venue && other.symbol == sym.symbol
            })
        });
        match slot {
            Some(i) => {
                by_meta.insert(address, i);
                kept[i] = update;
            }
            None => {
                by_meta.insert(address, kept.len());
                kept.push(update);
            }
        }
    }
    PyList::new(py, kept)
}
