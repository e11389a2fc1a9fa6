//! xtrader core: websocket ingestion, parsing, normalization, integrity-checked L2 books, the
//! event bus, replay, the exchange simulator and metrics. This file holds module declarations
//! and, behind the `python` feature, the PyO3 boundary (in `py/`). Every other module is pure
//! Rust and testable with plain `cargo test`.

pub mod exchanges;
pub mod metrics;
pub mod model;
pub mod net;
pub mod pipeline;
pub mod sim;

#[cfg(feature = "python")]
mod py;
