//! The normalized model: venues, instruments and interned symbols, events, the L2 order book.
//!
//! Pure data and pure functions; nothing here touches sockets, clocks or Python.

pub mod book;
pub mod event;
pub mod hash;
pub mod instrument;
pub mod ladder;

pub use book::{BookState, Level, OrderBook, SharedBook};
pub use event::{
    Bbo, BookDelta, Event, Funding, Liquidation, OpenInterest, Side, Status, StatusKind,
    StatusReason, Ticker, Trade,
};
pub use instrument::{
    Instrument, InstrumentCache, InstrumentKind, OptionType, SharedInstruments, SymbolMeta, Venue,
};
pub use ladder::{Ladder, Rung};
