//! A price-level (L2) order book with sorted sides and its health state.
//!
//! Each side is a [`Ladder`] sorted so that the best level sits at the end: a sorted
//! sequence in chunks of at most 64 levels, so an insert or removal anywhere in a deep side
//! shifts one chunk, not the whole side. The book knows nothing about sequence rules: the
//! venue processors own those.

use std::sync::Arc;

use parking_lot::RwLock;

use super::ladder::{Ladder, Rung};

/// One price level: price and size (size > 0 while the level exists).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Level {
    /// Price in quote currency.
    pub price: f64,
    /// Size in normalized units (base asset, or quote currency for inverse contracts).
    pub size: f64,
}

/// Health of a maintained book; a book that is not `Live` must not be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BookState {
    /// Waiting for the first snapshot and the first event that chains to it.
    Syncing,
    /// Every update so far chained to its predecessor.
    Live,
    /// An integrity check failed; a fresh snapshot is being fetched, diffs are buffered.
    Resyncing,
    /// The connection went silent or dropped; the content may be out of date.
    Stale,
}

impl BookState {
    /// The name used in status events, metrics and Python (`book.state`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Syncing => "syncing",
            Self::Live => "live",
            Self::Resyncing => "resyncing",
            Self::Stale => "stale",
        }
    }

    /// Numeric code for the metrics gauge (0 syncing, 1 live, 2 resyncing, 3 stale).
    #[must_use]
    pub fn code(self) -> u8 {
        match self {
            Self::Syncing => 0,
            Self::Live => 1,
            Self::Resyncing => 2,
            Self::Stale => 3,
        }
    }

    /// The state of a [`BookState::code`].
    #[must_use]
    pub fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0 => Self::Syncing,
            1 => Self::Live,
            2 => Self::Resyncing,
            3 => Self::Stale,
            _ => return None,
        })
    }
}

/// An L2 book: bids and asks, the last applied update id and times.
#[derive(Debug, Clone)]
pub struct OrderBook {
    /// Bids in ascending price order: the best bid is the last element.
    bids: Ladder<Level>,
    /// Asks in descending price order: the best ask is the last element.
    asks: Ladder<Level>,
    /// Last applied venue update id (`lastUpdateId`/`u`, `seqId`).
    pub seq: u64,
    /// Exchange time of the last applied update, ns (0 when the venue gives none).
    pub ts_exchange: i64,
    /// Local receive time of the last applied update, ns.
    pub ts_recv: i64,
    /// Health state.
    pub state: BookState,
}

impl Default for OrderBook {
    fn default() -> Self {
        Self::new()
    }
}

impl OrderBook {
    /// An empty book in the `Syncing` state.
    #[must_use]
    pub fn new() -> Self {
        Self {
            bids: Ladder::new(),
            asks: Ladder::new(),
            seq: 0,
            ts_exchange: 0,
            ts_recv: 0,
            state: BookState::Syncing,
        }
    }

    /// Remove every level (the state and sequence are left to the caller).
    pub fn clear(&mut self) {
        self.bids.clear();
        self.asks.clear();
    }

    /// Set a bid level to an absolute size; size 0 removes it (removing an absent level is normal).
    pub fn set_bid(&mut self, price: f64, size: f64) {
        self.set_level(true, None, price, size);
    }

    /// Set an ask level to an absolute size; size 0 removes it.
    pub fn set_ask(&mut self, price: f64, size: f64) {
        self.set_level(false, None, price, size);
    }

    /// [`OrderBook::set_bid`] (`bid`) or [`OrderBook::set_ask`] for levels given best first,
    /// as venues send them: `from` is what this call returned for the level before on the
    /// same side (`None` for the first), and the search walks back from there instead of
    /// over the whole side. Levels in another order cost a full search each, never a wrong
    /// book.
    pub fn set_level(&mut self, bid: bool, from: Option<Rung>, price: f64, size: f64) -> Rung {
        // bids ascend and asks descend in storage, so the asks compare reversed
        let (side, pos) = if bid {
            let pos = self.bids.search_back(from, |l| l.price.total_cmp(&price));
            (&mut self.bids, pos)
        } else {
            let pos = self.asks.search_back(from, |l| price.total_cmp(&l.price));
            (&mut self.asks, pos)
        };
        Self::set_at(side, pos, price, size);
        pos.unwrap_or_else(|i| i)
    }

    /// Set one side's levels (`bid`: the bids) from a venue's list, best first whatever
    /// order the list is in, so each search starts from the place of the level before.
    /// Binance spot lists bids from the best down; its futures markets list both sides by
    /// ascending price, so their bids come worst first. A list strictly in the worst-first
    /// order is walked backwards (its prices are distinct, so the order of application does
    /// not change the book); any other list is applied as given.
    pub fn set_levels(&mut self, bid: bool, levels: &[(f64, f64)]) {
        let better = |a: f64, than: f64| if bid { a > than } else { a < than };
        let worst_first = levels.windows(2).all(|w| better(w[1].0, w[0].0));
        let mut from = None;
        let mut put = |&(p, s): &(f64, f64)| from = Some(self.set_level(bid, from, p, s));
        if worst_first && levels.len() > 1 {
            levels.iter().rev().for_each(&mut put);
        } else {
            levels.iter().for_each(&mut put);
        }
    }

    /// [`OrderBook::set_bid`] (`bid`) or [`OrderBook::set_ask`] where a side kept in step
    /// with this one (same prices, same order of changes, so the same chunks) says the level
    /// sits at `hint`: the hint is checked against its neighbours in O(1), and a wrong one
    /// falls back to the search, so the levels are always those `set_bid`/`set_ask` give.
    pub fn set_level_near(&mut self, bid: bool, hint: Rung, price: f64, size: f64) {
        // the same comparisons as `set_level`
        let (side, pos) = if bid {
            let pos = self.bids.search_near(hint, |l| l.price.total_cmp(&price));
            (&mut self.bids, pos)
        } else {
            let pos = self.asks.search_near(hint, |l| price.total_cmp(&l.price));
            (&mut self.asks, pos)
        };
        Self::set_at(side, pos, price, size);
    }

    #[inline]
    fn set_at(side: &mut Ladder<Level>, pos: Result<Rung, Rung>, price: f64, size: f64) {
        match pos {
            Ok(i) => {
                if size == 0.0 {
                    side.remove(i);
                } else {
                    side.update(i, |l| l.size = size);
                }
            }
            Err(i) => {
                if size != 0.0 {
                    side.insert(i, Level { price, size });
                }
            }
        }
    }

    /// Best bid (highest price), if any.
    #[must_use]
    pub fn best_bid(&self) -> Option<Level> {
        self.bids.last().copied()
    }

    /// Best ask (lowest price), if any.
    #[must_use]
    pub fn best_ask(&self) -> Option<Level> {
        self.asks.last().copied()
    }

    /// Mid price when both sides exist.
    #[must_use]
    pub fn mid(&self) -> Option<f64> {
        match (self.best_bid(), self.best_ask()) {
            (Some(b), Some(a)) => Some((b.price + a.price) / 2.0),
            _ => None,
        }
    }

    /// Ask minus bid when both sides exist.
    #[must_use]
    pub fn spread(&self) -> Option<f64> {
        match (self.best_bid(), self.best_ask()) {
            (Some(b), Some(a)) => Some(a.price - b.price),
            _ => None,
        }
    }

    /// True when both sides exist and the best bid is not below the best ask.
    #[must_use]
    pub fn is_crossed(&self) -> bool {
        matches!((self.best_bid(), self.best_ask()), (Some(b), Some(a)) if b.price >= a.price)
    }

    /// Bids from the best down, at most `n` (all when `None`).
    pub fn bids(&self, n: Option<usize>) -> impl Iterator<Item = Level> + '_ {
        self.bids.iter_rev().take(n.unwrap_or(usize::MAX)).copied()
    }

    /// Asks from the best up, at most `n` (all when `None`).
    pub fn asks(&self, n: Option<usize>) -> impl Iterator<Item = Level> + '_ {
        self.asks.iter_rev().take(n.unwrap_or(usize::MAX)).copied()
    }

    /// Verify the book's structure: finite positive prices and sizes, each side strictly
    /// ordered best-last. Returns the first violation found.
    ///
    /// # Errors
    /// A description of the first broken invariant.
    pub fn check_invariants(&self) -> Result<(), &'static str> {
        for l in self.bids.iter().chain(self.asks.iter()) {
            if !(l.price.is_finite() && l.price > 0.0) {
                return Err("level price not finite and positive");
            }
            if !(l.size.is_finite() && l.size > 0.0) {
                return Err("level size not finite and positive");
            }
        }
        let ordered = |side: &Ladder<Level>, before: fn(f64, f64) -> bool| {
            side.iter()
                .zip(side.iter().skip(1))
                .all(|(a, b)| before(a.price, b.price))
        };
        if !ordered(&self.bids, |a, b| a < b) {
            return Err("bids not strictly ascending in storage");
        }
        if !ordered(&self.asks, |a, b| a > b) {
            return Err("asks not strictly descending in storage");
        }
        Ok(())
    }

    /// Number of (bid, ask) levels.
    #[must_use]
    pub fn depth(&self) -> (usize, usize) {
        (self.bids.len(), self.asks.len())
    }
}

/// A book shared between the connection task (writer) and readers (Python, metrics).
pub type SharedBook = Arc<RwLock<OrderBook>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn position_hints_never_change_the_result() {
        // every hint, right or wrong, must give the levels `set_bid`/`set_ask` give, on
        // sides of three chunks (prices 10 to 1,500 in steps of 10), hints on chunk edges too
        let base: Vec<(f64, f64)> = (1..=150).map(|i| (f64::from(i) * 10.0, 1.0)).collect();
        let mut start = OrderBook::new();
        for &(bp, bs) in &base {
            start.set_bid(bp, bs);
            start.set_ask(bp + 10_000.0, bs);
        }
        let changes = [
            (45.0, 2.0),
            (50.0, 0.0),
            (10.0, 3.0),
            (640.0, 0.0),
            (645.0, 1.0),
            (1_285.0, 4.0),
            (1_505.0, 1.0),
            (5.0, 0.0),
            (600.0, 7.0),
        ];
        let hints = (0..4).flat_map(|c| (0..=66).map(move |i| Rung::new(c, i)));
        for hint in hints {
            for &(p, s) in &changes {
                let (mut a, mut b) = (start.clone(), start.clone());
                a.set_bid(p, s);
                a.set_ask(p + 10_000.0, s);
                b.set_level_near(true, hint, p, s);
                b.set_level_near(false, hint, p + 10_000.0, s);
                assert_eq!(a.bids, b.bids, "bid {p} {s} hint {hint:?}");
                assert_eq!(a.asks, b.asks, "ask {p} {s} hint {hint:?}");
                assert!(b.check_invariants().is_ok());
            }
        }
    }

    #[test]
    fn a_side_list_in_any_order_gives_the_same_book() {
        // best first, worst first (Binance futures bids), shuffled, and with a repeated
        // price (applied as listed, the last one wins), against one `set_bid`/`set_ask` each
        let start = {
            let mut b = OrderBook::new();
            for i in 1..=300 {
                b.set_bid(f64::from(i), 1.0);
                b.set_ask(1_000.0 + f64::from(i), 1.0);
            }
            b
        };
        let best_first: Vec<(f64, f64)> = (0..40)
            .map(|k| (f64::from(310 - 7 * k), f64::from(k % 3)))
            .collect();
        let mut worst_first = best_first.clone();
        worst_first.reverse();
        let mut shuffled = best_first.clone();
        shuffled.swap(3, 30);
        shuffled.swap(10, 20);
        let repeated = vec![(50.0, 2.0), (40.0, 0.0), (50.0, 3.0)];
        for list in [&best_first, &worst_first, &shuffled, &repeated] {
            let asks: Vec<(f64, f64)> = list.iter().map(|&(p, s)| (1_311.0 - p, s)).collect();
            let (mut want, mut got) = (start.clone(), start.clone());
            for &(p, s) in list.iter() {
                want.set_bid(p, s);
            }
            for &(p, s) in &asks {
                want.set_ask(p, s);
            }
            got.set_levels(true, list);
            got.set_levels(false, &asks);
            assert_eq!(got.bids, want.bids);
            assert_eq!(got.asks, want.asks);
            assert!(got.check_invariants().is_ok());
        }
    }

    #[test]
    fn levels_stay_sorted_and_zero_removes() {
        let mut b = OrderBook::new();
        for (p, s) in [(10.0, 1.0), (12.0, 2.0), (11.0, 3.0)] {
            b.set_bid(p, s);
        }
        for (p, s) in [(15.0, 1.0), (13.0, 2.0), (14.0, 3.0)] {
            b.set_ask(p, s);
        }
        let bids: Vec<f64> = b.bids(None).map(|l| l.price).collect();
        let asks: Vec<f64> = b.asks(None).map(|l| l.price).collect();
        assert_eq!(bids, vec![12.0, 11.0, 10.0]);
        assert_eq!(asks, vec![13.0, 14.0, 15.0]);
        b.set_bid(12.0, 0.0);
        b.set_ask(99.0, 0.0); // absent level: no-op
        b.set_ask(13.0, 5.0);
        assert_eq!(
            b.best_bid(),
            Some(Level {
                price: 11.0,
                size: 3.0
            })
        );
        assert_eq!(
            b.best_ask(),
            Some(Level {
                price: 13.0,
                size: 5.0
            })
        );
        assert_eq!(b.spread(), Some(2.0));
        assert_eq!(b.mid(), Some(12.0));
        assert!(!b.is_crossed());
        assert_eq!(b.bids(Some(1)).count(), 1);
        assert_eq!(b.depth(), (2, 3));
    }
}
