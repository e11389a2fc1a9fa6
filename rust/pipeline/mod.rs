//! The pipeline: the event bus, connection tasks (feeds), the engine that runs them on a
//! tokio runtime, and the replay driver.

pub mod bus;
pub mod columns;
pub mod engine;
pub mod feed;
pub mod nats;
pub mod raw;
pub mod replay;
mod socket;
pub mod spill;
