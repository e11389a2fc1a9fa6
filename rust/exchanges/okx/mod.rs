//! OKX v5 public market data: spot, perpetual swaps, dated futures and options, see
//! shared/docs/exchanges.md §4 (protocol), §4.5 (book sequencing and the CRC32 checksum) and
//! §6 (symbols). Instrument types are data (contract sizes, normalized names), not modules.

pub mod book;
pub mod connector;
pub mod instruments;
pub mod messages;
pub mod processor;
pub mod scan;

pub use book::{WireBook, WireStr};
pub use connector::{BookChannel, OkxChannelChoice, OkxConnector, TradeChannel};
pub use instruments::{parse_instruments, to_native};
pub use processor::OkxProcessor;
