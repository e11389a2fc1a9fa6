//! The synthetic spot market: per-symbol L2 books on an integer tick grid, driven by one
//! seeded random generator.
//!
//! Owns the book state, the update-id / trade-id sequences and the rules that keep them
//! venue-like (exchanges.md 2.5, 2.6 and 3.3): books never cross, each side keeps exactly
//! `depth_levels` levels, every step is one depth diff with `U = previous u + 1` and
//! `u = U + k - 1` on spot (futures: ids skip between diffs and only `pu` chains), trades
//! take liquidity from the level they print at. It never reads the
//! clock and never touches sockets, so the same seed always yields the same sequence of books
//! whatever the pacing or the set of listening clients.

use std::collections::BTreeMap;

use parking_lot::Mutex;

pub(crate) use super::symbols::SymbolSpec;

/// A book level as (price in ticks, quantity in lots).
pub(crate) type Level = (i64, i64);

/// The taker order of a trade step.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TradeHead {
    pub price: i64,
    /// `m`: the buyer was the maker, so a seller hit the bid.
    pub buyer_maker: bool,
    pub agg_id: u64,
}

/// The new top of book after a step, when it changed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TopOut {
    pub update_id: u64,
    pub bid: Level,
    pub ask: Level,
}

/// Everything one generator step produced; reused between steps to avoid allocation.
#[derive(Debug, Default)]
pub(crate) struct StepOut {
    pub sym: usize,
    pub trade: Option<TradeHead>,
    /// (trade id, lots) of each fill of the taker order, all at `trade.price`.
    pub fills: Vec<(u64, i64)>,
    pub top: Option<TopOut>,
    pub first_id: u64,
    pub last_id: u64,
    /// `u` of the previous diff of the symbol (futures `pu`).
    pub prev_last_id: u64,
    /// Changed bid levels, best first, absolute lots (0 = deleted).
    pub bids: Vec<Level>,
    /// Changed ask levels, best first.
    pub asks: Vec<Level>,
    /// The diff was applied but must not be sent (`inject_gap`).
    pub suppressed: bool,
}

impl StepOut {
    /// Data messages this step counts towards the configured rate.
    pub(crate) fn message_count(&self) -> u32 {
        let trades = if self.trade.is_some() {
            u32::try_from(self.fills.len())
                .unwrap_or(u32::MAX)
                .saturating_add(1)
        } else {
            0
        };
        trades + u32::from(self.top.is_some()) + 1
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Bid,
    Ask,
}

#[derive(Debug)]
struct SymState {
    bids: BTreeMap<i64, i64>,
    asks: BTreeMap<i64, i64>,
    last_id: u64,
    next_trade_id: u64,
    next_agg_id: u64,
    top: (Level, Level),
    gap_pending: bool,
    diff_bids: BTreeMap<i64, i64>,
    diff_asks: BTreeMap<i64, i64>,
    unit: i64,
}

impl SymState {
    fn side(&mut self, side: Side) -> &mut BTreeMap<i64, i64> {
        match side {
            Side::Bid => &mut self.bids,
            Side::Ask => &mut self.asks,
        }
    }

    fn best(&self, side: Side) -> Option<Level> {
        match side {
            Side::Bid => self.bids.iter().next_back().map(|(p, q)| (*p, *q)),
            Side::Ask => self.asks.iter().next().map(|(p, q)| (*p, *q)),
        }
    }

    fn nth(&self, side: Side, d: usize) -> Option<Level> {
        match side {
            Side::Bid => self.bids.iter().rev().nth(d).map(|(p, q)| (*p, *q)),
            Side::Ask => self.asks.iter().nth(d).map(|(p, q)| (*p, *q)),
        }
    }

    /// Sets a level to an absolute size and records it in the pending diff.
    fn set(&mut self, side: Side, px: i64, lots: i64) {
        let book = self.side(side);
        if lots > 0 {
            book.insert(px, lots);
        } else {
            book.remove(&px);
        }
        let diff = match side {
            Side::Bid => &mut self.diff_bids,
            Side::Ask => &mut self.diff_asks,
        };
        diff.insert(px, lots.max(0));
    }

    fn rand_size(&self, rng: &mut fastrand::Rng) -> i64 {
        let mut lots = self.unit.saturating_mul(rng.i64(1..=40));
        if rng.u8(0..100) < 5 {
            lots = lots.saturating_mul(rng.i64(10..=50));
        }
        lots
    }

    /// Keeps exactly `depth` levels per side: trims the far end or extends it with a gap of
    /// a few ticks, so the ladder looks like a real one rather than a dense block.
    fn maintain(&mut self, rng: &mut fastrand::Rng, depth: usize) {
        for side in [Side::Bid, Side::Ask] {
            while self.side(side).len() > depth {
                let worst = match side {
                    Side::Bid => self.bids.keys().next().copied(),
                    Side::Ask => self.asks.keys().next_back().copied(),
                };
                let Some(px) = worst else { break };
                self.set(side, px, 0);
            }
            while self.side(side).len() < depth {
                let gap = if rng.u8(0..100) < 20 {
                    rng.i64(2..=4)
                } else {
                    1
                };
                let far = match side {
                    Side::Bid => self.bids.keys().next().map(|p| p - gap),
                    Side::Ask => self.asks.keys().next_back().map(|p| p + gap),
                };
                let Some(px) = far.filter(|p| *p >= 1) else {
                    break;
                };
                let lots = self.rand_size(rng);
                self.set(side, px, lots);
            }
        }
    }

    /// One internal book update: a size change, a cancel, a new level or a one-tick move.
    fn book_update(&mut self, rng: &mut fastrand::Rng, depth: usize) {
        let side = if rng.bool() { Side::Bid } else { Side::Ask };
        let len = self.side(side).len();
        // Most activity sits near the top of the book.
        let d = if rng.u8(0..100) < 70 {
            rng.usize(0..len.clamp(1, 10))
        } else {
            rng.usize(0..len.max(1))
        };
        let (Some(bb), Some(ba)) = (self.best(Side::Bid), self.best(Side::Ask)) else {
            return;
        };
        match rng.u8(0..100) {
            0..=54 => {
                if let Some((px, _)) = self.nth(side, d) {
                    let lots = self.rand_size(rng);
                    self.set(side, px, lots);
                }
            }
            55..=69 if len > 1 => {
                if let Some((px, _)) = self.nth(side, d) {
                    self.set(side, px, 0);
                }
            }
            70..=84 => {
                let off = rng.i64(1..=(2 * len as i64).max(2));
                let px = match side {
                    Side::Bid if ba.0 - bb.0 > 1 && rng.bool() => bb.0 + 1,
                    Side::Ask if ba.0 - bb.0 > 1 && rng.bool() => ba.0 - 1,
                    Side::Bid => bb.0 - off,
                    Side::Ask => ba.0 + off,
                };
                if px >= 1 && !self.side(side).contains_key(&px) {
                    let lots = self.rand_size(rng);
                    self.set(side, px, lots);
                }
            }
            _ => {
                // Random walk of the mid: clear the opposite top and step in by one tick.
                let floor = (depth as i64).saturating_mul(4) + 10;
                let up = rng.bool() || bb.0 <= floor;
                let (gone, grow) = if up {
                    (Side::Ask, Side::Bid)
                } else {
                    (Side::Bid, Side::Ask)
                };
                if self.side(gone).len() > 1 {
                    if let Some((px, _)) = self.best(gone) {
                        self.set(gone, px, 0);
                    }
                }
                if let (Some(bb), Some(ba)) = (self.best(Side::Bid), self.best(Side::Ask)) {
                    if ba.0 - bb.0 > 1 {
                        let px = if grow == Side::Bid {
                            bb.0 + 1
                        } else {
                            ba.0 - 1
                        };
                        let lots = self.rand_size(rng);
                        self.set(grow, px, lots);
                    }
                }
            }
        }
        self.maintain(rng, depth);
    }

    /// A taker order that sweeps part or all of the best level on one side.
    fn trade(&mut self, rng: &mut fastrand::Rng, depth: usize, out: &mut StepOut) {
        let buyer_maker = rng.bool();
        let side = if buyer_maker { Side::Bid } else { Side::Ask };
        let Some((px, lots)) = self.best(side) else {
            return;
        };
        let total = if rng.u8(0..100) < 30 || lots <= 1 {
            lots
        } else {
            rng.i64(1..=lots)
        };
        let n = rng.i64(1..=3).min(total);
        let mut rem = total;
        for i in 0..n {
            let left_after = n - 1 - i;
            let q = if left_after == 0 {
                rem
            } else {
                rng.i64(1..=rem - left_after)
            };
            rem -= q;
            out.fills.push((self.next_trade_id, q));
            self.next_trade_id += 1;
        }
        out.trade = Some(TradeHead {
            price: px,
            buyer_maker,
            agg_id: self.next_agg_id,
        });
        self.next_agg_id += 1;
        self.set(side, px, lots - total);
        self.maintain(rng, depth);
    }
}

/// All symbols' books plus the random source; guarded by one lock in [`Market`].
#[derive(Debug)]
pub(crate) struct MarketState {
    syms: Vec<SymState>,
    rng: fastrand::Rng,
    depth: usize,
    /// Futures ids: each diff skips a few ids (exchanges.md 3.3), so only `pu` chains.
    futures: bool,
}

impl MarketState {
    /// Builds the initial books from the seed (spot ids).
    #[cfg(test)]
    pub(crate) fn new(specs: &[SymbolSpec], seed: u64, depth: usize) -> MarketState {
        Self::with_ids(specs, seed, depth, false)
    }

    /// Builds the initial books; `futures` makes update ids non-contiguous between diffs.
    pub(crate) fn with_ids(
        specs: &[SymbolSpec],
        seed: u64,
        depth: usize,
        futures: bool,
    ) -> MarketState {
        let mut rng = fastrand::Rng::with_seed(seed);
        let depth = depth.max(1);
        let syms = specs
            .iter()
            .map(|spec| {
                let mut s = SymState {
                    bids: BTreeMap::new(),
                    asks: BTreeMap::new(),
                    last_id: rng.u64(1_000_000_000..2_000_000_000),
                    next_trade_id: rng.u64(10_000_000..20_000_000),
                    next_agg_id: rng.u64(1_000_000..2_000_000),
                    top: ((0, 0), (0, 0)),
                    gap_pending: false,
                    diff_bids: BTreeMap::new(),
                    diff_asks: BTreeMap::new(),
                    unit: spec.unit_lots,
                };
                let (bid, ask) = (s.rand_size(&mut rng), s.rand_size(&mut rng));
                s.set(Side::Bid, spec.mid0, bid);
                s.set(Side::Ask, spec.mid0 + 1, ask);
                s.maintain(&mut rng, depth);
                s.diff_bids.clear();
                s.diff_asks.clear();
                s.top = (
                    s.best(Side::Bid).unwrap_or_default(),
                    s.best(Side::Ask).unwrap_or_default(),
                );
                s
            })
            .collect();
        MarketState {
            syms,
            rng,
            depth,
            futures,
        }
    }

    /// Advances one randomly chosen symbol by one diff's worth of updates.
    pub(crate) fn step(&mut self, out: &mut StepOut) {
        out.trade = None;
        out.fills.clear();
        out.top = None;
        out.bids.clear();
        out.asks.clear();
        let n = self.syms.len();
        if n == 0 {
            return;
        }
        let si = self.rng.usize(0..n);
        let depth = self.depth;
        let rng = &mut self.rng;
        let Some(s) = self.syms.get_mut(si) else {
            return;
        };
        let k = if rng.u8(0..100) < 25 {
            s.trade(rng, depth, out);
            1
        } else {
            let k = rng.u64(1..=3);
            for _ in 0..k {
                s.book_update(rng, depth);
            }
            k
        };
        out.sym = si;
        out.prev_last_id = s.last_id;
        if self.futures {
            // ids of other internal events fall between diffs: U is not previous u + 1
            let skip = rng.u64(0..=40);
            out.first_id = s.last_id + 1 + skip;
            s.last_id = out.first_id + k - 1 + rng.u64(0..=20);
        } else {
            out.first_id = s.last_id + 1;
            s.last_id += k;
        }
        out.last_id = s.last_id;
        out.bids
            .extend(s.diff_bids.iter().rev().map(|(p, q)| (*p, *q)));
        out.asks.extend(s.diff_asks.iter().map(|(p, q)| (*p, *q)));
        s.diff_bids.clear();
        s.diff_asks.clear();
        out.suppressed = std::mem::take(&mut s.gap_pending);
        let top = (
            s.best(Side::Bid).unwrap_or_default(),
            s.best(Side::Ask).unwrap_or_default(),
        );
        if top != s.top {
            s.top = top;
            out.top = Some(TopOut {
                update_id: s.last_id,
                bid: top.0,
                ask: top.1,
            });
        }
    }

    /// Top `limit` levels per side and the id of exactly this book state.
    pub(crate) fn snapshot(
        &self,
        sym: usize,
        limit: usize,
    ) -> Option<(u64, Vec<Level>, Vec<Level>)> {
        let s = self.syms.get(sym)?;
        let bids = s
            .bids
            .iter()
            .rev()
            .take(limit)
            .map(|(p, q)| (*p, *q))
            .collect();
        let asks = s.asks.iter().take(limit).map(|(p, q)| (*p, *q)).collect();
        Some((s.last_id, bids, asks))
    }

    /// Best bid and ask of `sym` as (price ticks, lots).
    pub(crate) fn top(&self, sym: usize) -> Option<(Level, Level)> {
        self.syms.get(sym).map(|s| s.top)
    }

    /// Synthetic open interest of `sym` in lots: moves with the trade count, no randomness
    /// (so it never disturbs the seeded market).
    pub(crate) fn open_interest(&self, sym: usize) -> Option<i64> {
        let s = self.syms.get(sym)?;
        let drift = i64::try_from(s.next_agg_id % 5000).unwrap_or(0);
        Some(s.unit.saturating_mul(50_000 + drift))
    }

    /// Marks the next diff of `sym` to be applied but not sent.
    pub(crate) fn mark_gap(&mut self, sym: usize) -> bool {
        match self.syms.get_mut(sym) {
            Some(s) => {
                s.gap_pending = true;
                true
            }
            None => false,
        }
    }
}

/// Symbol specs plus the locked market; REST snapshots take the same lock as the generator,
/// which is what makes `lastUpdateId` name exactly the returned book.
#[derive(Debug)]
pub(crate) struct Market {
    pub specs: Vec<SymbolSpec>,
    pub state: Mutex<MarketState>,
}

impl Market {
    /// Index of a native (upper-case) symbol.
    pub(crate) fn index(&self, symbol: &str) -> Option<usize> {
        self.specs.iter().position(|s| s.symbol == symbol)
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    fn apply(book: &mut BTreeMap<i64, i64>, levels: &[Level]) {
        for &(p, q) in levels {
            if q == 0 {
                book.remove(&p);
            } else {
                book.insert(p, q);
            }
        }
    }

    #[test]
    fn test_market_invariants_hold_over_many_steps() {
        let specs = vec![
            SymbolSpec::infer("BTCUSDT", 50).unwrap(),
            SymbolSpec::infer("NKNUSDT", 50).unwrap(),
        ];
        assert_eq!(specs[0].tick_e8, 1_000_000);
        assert_eq!(specs[0].step_e8, 1_000);
        let mut st = MarketState::new(&specs, 7, 50);
        let mut mirror: Vec<_> = (0..2)
            .map(|i| {
                let (l, b, a) = st.snapshot(i, 5000).unwrap();
                (
                    l,
                    b.into_iter().collect::<BTreeMap<_, _>>(),
                    a.into_iter().collect::<BTreeMap<_, _>>(),
                )
            })
            .collect();
        let mut out = StepOut::default();
        for _ in 0..20_000 {
            st.step(&mut out);
            let m = &mut mirror[out.sym];
            assert_eq!(out.first_id, m.0 + 1);
            assert!(out.last_id >= out.first_id && out.last_id - out.first_id < 3);
            m.0 = out.last_id;
            apply(&mut m.1, &out.bids);
            apply(&mut m.2, &out.asks);
            let s = &st.syms[out.sym];
            assert_eq!(s.bids.len(), 50);
            assert_eq!(s.asks.len(), 50);
            assert!(s.best(Side::Bid).unwrap().0 < s.best(Side::Ask).unwrap().0);
            if let Some(t) = out.trade {
                assert!(out.fills.iter().all(|f| f.1 > 0));
                let _ = t;
            }
        }
        for (i, m) in mirror.iter().enumerate() {
            let (l, b, a) = st.snapshot(i, 5000).unwrap();
            assert_eq!(l, m.0);
            assert_eq!(b.into_iter().collect::<BTreeMap<_, _>>(), m.1);
            assert_eq!(a.into_iter().collect::<BTreeMap<_, _>>(), m.2);
        }
    }

    #[test]
    fn test_market_futures_ids_chain_by_pu_only() {
        let specs = vec![SymbolSpec::infer("BTCUSDT", 20).unwrap()];
        let mut st = MarketState::with_ids(&specs, 3, 20, true);
        let (mut last, _, _) = st.snapshot(0, 10).unwrap();
        let mut out = StepOut::default();
        let mut skipped = 0;
        for _ in 0..500 {
            st.step(&mut out);
            assert_eq!(out.prev_last_id, last);
            assert!(out.first_id > last && out.last_id >= out.first_id);
            skipped += u32::from(out.first_id != last + 1);
            last = out.last_id;
        }
        assert!(skipped > 100, "futures ids must not be contiguous");
        assert_eq!(st.snapshot(0, 10).unwrap().0, last);
    }

    #[test]
    fn test_market_same_seed_same_books() {
        let specs = vec![SymbolSpec::infer("ETHUSDT", 20).unwrap()];
        let mut a = MarketState::new(&specs, 42, 20);
        let mut b = MarketState::new(&specs, 42, 20);
        let mut out = StepOut::default();
        for _ in 0..1000 {
            a.step(&mut out);
            b.step(&mut out);
        }
        assert_eq!(a.snapshot(0, 100), b.snapshot(0, 100));
    }
}
