//! The PyO3 boundary: the only place that uses pyo3. Classes are frozen; waits release the GIL
//! in slices so Ctrl-C reaches Python; Rust errors map to one exception hierarchy.

mod engine;
mod events;
mod frames;
mod replay;
mod sim;

use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;

create_exception!(
    xtrader._core,
    XtraderError,
    PyException,
    "Root of xtrader's exceptions."
);
create_exception!(
    xtrader._core,
    EngineError,
    XtraderError,
    "The runtime could not start or was misused."
);
create_exception!(
    xtrader._core,
    ReplayError,
    XtraderError,
    "A capture could not be replayed."
);
create_exception!(
    xtrader._core,
    SimulatorError,
    XtraderError,
    "The simulator could not start."
);

/// The compiled core of xtrader.
#[pymodule(gil_used = true)]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("XtraderError", py.get_type::<XtraderError>())?;
    m.add("EngineError", py.get_type::<EngineError>())?;
    m.add("ReplayError", py.get_type::<ReplayError>())?;
    m.add("SimulatorError", py.get_type::<SimulatorError>())?;
    m.add_class::<events::PyTrade>()?;
    m.add_class::<events::PyQuote>()?;
    m.add_class::<events::PyBookUpdate>()?;
    m.add_class::<events::PyStatus>()?;
    m.add_class::<events::PyTicker>()?;
    m.add_class::<events::PyFunding>()?;
    m.add_class::<events::PyLiquidation>()?;
    m.add_class::<events::PyOpenInterest>()?;
    m.add_class::<events::PyBook>()?;
    m.add_class::<engine::PyEngine>()?;
    m.add_class::<sim::PySimulator>()?;
    m.add_class::<replay::PyReplayResult>()?;
    m.add_function(wrap_pyfunction!(replay::replay_capture, m)?)?;
    m.add_function(wrap_pyfunction!(events::last_book_updates, m)?)?;
    Ok(())
}
