//! Binance spot, Binance.US, USD-M and COIN-M futures, see shared/docs/exchanges.md §2 (spot)
//! and §3 (futures). Market variants are data ([`Market`], venue hosts, routes, contract
//! sizes), not copied modules.

pub mod book;
pub mod connector;
pub mod futures;
pub mod instruments;
pub mod messages;
pub mod processor;
mod state;
mod streams;
mod sync;

pub use book::{Market, SyncRules};
pub use connector::{BinanceConnector, TradeStream};
pub use futures::open_interest_event;
pub use instruments::{instruments_from_exchange_info, weight_limit_from_exchange_info};
pub use processor::BinanceProcessor;
