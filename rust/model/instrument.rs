//! Venues, instrument metadata, interned symbols and the bounded instrument cache.

use std::num::NonZeroUsize;
use std::sync::Arc;

use lru::LruCache;

use super::book::SharedBook;

/// The venues xtrader speaks to (ids fixed by ARCHITECTURE.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Venue {
    /// Binance spot (binance.com).
    Binance,
    /// Binance.US spot: same protocol, other hosts.
    BinanceUs,
    /// Binance USD-M futures.
    BinanceUsdm,
    /// Binance COIN-M futures.
    BinanceCoinm,
    /// OKX v5.
    Okx,
}

impl Venue {
    /// Every venue, in a stable order.
    pub const ALL: [Venue; 5] = [
        Venue::Binance,
        Venue::BinanceUs,
        Venue::BinanceUsdm,
        Venue::BinanceCoinm,
        Venue::Okx,
    ];

    /// The exchange id used in config, events and metrics.
    #[must_use]
    pub fn id(self) -> &'static str {
        match self {
            Self::Binance => "binance",
            Self::BinanceUs => "binance_us",
            Self::BinanceUsdm => "binance_usdm",
            Self::BinanceCoinm => "binance_coinm",
            Self::Okx => "okx",
        }
    }

    /// Parse an exchange id.
    #[must_use]
    pub fn from_id(id: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.id() == id)
    }
}

/// What kind of instrument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstrumentKind {
    /// Spot pair.
    Spot,
    /// Perpetual swap.
    Perpetual,
    /// Dated future.
    Future,
    /// Option.
    Option,
}

/// Call or put.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptionType {
    /// The right to buy.
    Call,
    /// The right to sell.
    Put,
}

/// Instrument metadata from the venue's REST reference data.
#[derive(Debug, Clone, PartialEq)]
pub struct Instrument {
    /// Kind.
    pub kind: InstrumentKind,
    /// Contract value (1 for spot); sizes in contracts are multiplied by it to normalize
    /// (OKX: `ctVal × ctMult`, giving base units for linear contracts and options, quote
    /// currency for inverse ones).
    pub contract_size: f64,
    /// Inverse contract: normalized sizes are in quote currency.
    pub inverse: bool,
    /// Expiry, ms since the epoch (dated futures and options).
    pub expiry_ms: Option<i64>,
    /// Venue symbol, e.g. `BTCUSDT`.
    pub native: String,
    /// Normalized symbol, e.g. `BTC-USDT`.
    pub symbol: String,
    /// Base asset.
    pub base: String,
    /// Quote asset.
    pub quote: String,
    /// Price increment (0 when the venue disables the rule).
    pub tick_size: f64,
    /// Size increment.
    pub step_size: f64,
    /// Venue trading status, e.g. `TRADING`.
    pub status: String,
    /// Strike price (options).
    pub strike: Option<f64>,
    /// Call or put (options).
    pub option_type: Option<OptionType>,
}

/// An interned symbol: created once per (venue, symbol) and shared by every event.
#[derive(Debug)]
pub struct SymbolMeta {
    /// Venue.
    pub venue: Venue,
    /// Venue symbol (`BTCUSDT`).
    pub native: Box<str>,
    /// Normalized symbol (`BTC-USDT`).
    pub symbol: Box<str>,
    /// The maintained book, when the book channel is subscribed.
    pub book: Option<SharedBook>,
    /// Multiplier from wire sizes to normalized sizes: 1 for spot and linear contracts
    /// quoted in base units, the contract value for venues that quote sizes in contracts
    /// (Binance COIN-M: USD per contract, exchanges.md 3.6; OKX: `ctVal × ctMult`).
    pub contract_size: f64,
    /// Reference data, when the feed loaded it.
    pub instrument: Option<Arc<Instrument>>,
}

impl Instrument {
    /// A spot instrument with unit contract size.
    #[must_use]
    pub fn spot(native: &str, base: &str, quote: &str) -> Self {
        Self {
            kind: InstrumentKind::Spot,
            contract_size: 1.0,
            inverse: false,
            expiry_ms: None,
            native: native.to_string(),
            symbol: format!("{base}-{quote}"),
            base: base.to_string(),
            quote: quote.to_string(),
            tick_size: 0.0,
            step_size: 0.0,
            status: String::new(),
            strike: None,
            option_type: None,
        }
    }
}

impl SymbolMeta {
    /// Wrap in an `Arc` for sharing.
    #[must_use]
    pub fn new(venue: Venue, native: &str, symbol: &str, book: Option<SharedBook>) -> Arc<Self> {
        Self::with_contract_size(venue, native, symbol, book, 1.0)
    }

    /// Wrap in an `Arc`, with sizes on the wire multiplied by `contract_size` to normalize
    /// (a non-finite or non-positive value means 1).
    #[must_use]
    pub fn with_contract_size(
        venue: Venue,
        native: &str,
        symbol: &str,
        book: Option<SharedBook>,
        contract_size: f64,
    ) -> Arc<Self> {
        let contract_size = if contract_size.is_finite() && contract_size > 0.0 {
            contract_size
        } else {
            1.0
        };
        Arc::new(Self {
            venue,
            native: native.into(),
            symbol: symbol.into(),
            book,
            contract_size,
            instrument: None,
        })
    }

    /// A symbol carrying its instrument (native and normalized names come from it).
    #[must_use]
    pub fn with_instrument(
        venue: Venue,
        inst: Arc<Instrument>,
        book: Option<SharedBook>,
    ) -> Arc<Self> {
        let contract_size = inst.contract_size;
        Arc::new(Self {
            venue,
            native: inst.native.as_str().into(),
            symbol: inst.symbol.as_str().into(),
            book,
            contract_size: if contract_size.is_finite() && contract_size > 0.0 {
                contract_size
            } else {
                1.0
            },
            instrument: Some(inst),
        })
    }

    /// Multiplier from venue size units to normalized units (1 without instrument data).
    #[must_use]
    pub fn contract_size(&self) -> f64 {
        self.contract_size
    }
}

/// The instrument cache shared by a feed's sockets (lookups of instruments met in the stream).
pub type SharedInstruments = Arc<parking_lot::Mutex<InstrumentCache>>;

/// A bounded LRU cache of instruments keyed by native symbol, counting its evictions.
///
/// Reference data for thousands of instruments must not grow without bound over days.
#[derive(Debug)]
pub struct InstrumentCache {
    inner: LruCache<Box<str>, Arc<Instrument>>,
    evictions: u64,
}

impl InstrumentCache {
    /// A cache holding at most `capacity` instruments (at least 1).
    #[must_use]
    pub fn new(capacity: usize) -> Self {
        let cap = NonZeroUsize::new(capacity.max(1)).unwrap_or(NonZeroUsize::MIN);
        Self {
            inner: LruCache::new(cap),
            evictions: 0,
        }
    }

    /// Insert or replace; counts an eviction when the least recently used entry is pushed out.
    pub fn insert(&mut self, inst: Instrument) {
        self.insert_arc(Arc::new(inst));
    }

    /// Insert an already shared instrument (see [`InstrumentCache::insert`]).
    pub fn insert_arc(&mut self, inst: Arc<Instrument>) {
        let key: Box<str> = inst.native.as_str().into();
        if let Some((old_key, _)) = self.inner.push(key, inst) {
            if !self.inner.contains(&old_key) {
                self.evictions += 1;
            }
        }
    }

    /// Look up by native symbol (marks it recently used).
    pub fn get(&mut self, native: &str) -> Option<Arc<Instrument>> {
        self.inner.get(native).cloned()
    }

    /// Number of cached instruments.
    #[must_use]
    pub fn len(&self) -> usize {
        self.inner.len()
    }

    /// True when empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }

    /// Entries pushed out by the bound so far.
    #[must_use]
    pub fn evictions(&self) -> u64 {
        self.evictions
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inst(n: &str) -> Instrument {
        Instrument::spot(n, n, "X")
    }

    #[test]
    fn cache_is_bounded_and_counts_evictions() {
        let mut c = InstrumentCache::new(2);
        c.insert(inst("A"));
        c.insert(inst("B"));
        c.insert(inst("A")); // replace, not an eviction
        assert_eq!(c.evictions(), 0);
        c.insert(inst("C")); // evicts B (A was used more recently)
        assert_eq!(c.len(), 2);
        assert_eq!(c.evictions(), 1);
        assert!(c.get("B").is_none());
        assert!(c.get("A").is_some());
    }

    #[test]
    fn venue_ids_round_trip() {
        for v in Venue::ALL {
            assert_eq!(Venue::from_id(v.id()), Some(v));
        }
        assert_eq!(Venue::from_id("kraken"), None);
    }
}
