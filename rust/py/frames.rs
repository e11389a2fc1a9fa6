//! Record batches to Python: each channel's batch leaves as an Arrow table object (Arrow
//! PyCapsule stream interface), which `polars.DataFrame(obj)` reads without copying per row.

use arrow_array::RecordBatch;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use pyo3::IntoPyObjectExt;
use pyo3_arrow::PyTable;

use crate::model::Event;
use crate::pipeline::columns::ColumnBatcher;

/// One Arrow table object for a record batch.
pub fn table(py: Python<'_>, batch: RecordBatch) -> PyResult<Py<PyAny>> {
    let schema = batch.schema();
    PyTable::try_new(vec![batch], schema)?.into_py_any(py)
}

/// Columnar tables, keyed by channel, for these events (every channel when `include_empty`).
pub fn tables<'py>(
    py: Python<'py>,
    events: &[Event],
    include_empty: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let mut b = ColumnBatcher::new();
    for ev in events {
        b.add(ev);
    }
    let out = PyDict::new(py);
    let batches = b
        .finish(include_empty)
        .map_err(|e| pyo3::exceptions::PyRuntimeError::new_err(e.to_string()))?;
    for (name, batch) in batches {
        out.set_item(name, table(py, batch)?)?;
    }
    Ok(out)
}
