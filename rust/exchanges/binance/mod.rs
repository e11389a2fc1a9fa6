//! Binance spot and Binance.US (and the futures sequence rules), see shared/docs/exchanges.md
//! §2 (spot) and §3 (futures). Market variants are data ([`Market`]), not copied modules.

pub mod book;
pub mod connector;
pub mod messages;
pub mod processor;

pub use book::{Market, SyncRules};
pub use connector::{BinanceConnector, TradeStream};
pub use processor::{instruments_from_exchange_info, BinanceProcessor};
