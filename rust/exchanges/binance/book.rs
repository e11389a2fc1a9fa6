//! Binance depth sequence rules: which diff to drop, which one starts a book, which one
//! continues it. Spot and futures differ only here (exchanges.md §2.6 and §3.4).

/// Which Binance market; decides the depth sequence rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Market {
    /// Spot (binance, binance_us): contiguous ids, `U == prev u + 1`.
    Spot,
    /// USD-M or COIN-M futures: `pu == prev u`.
    Futures,
}

/// Decision for one diff against the local book id `last` (L).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Already reflected in the book: drop it.
    Drop,
    /// Apply it; afterwards L = u.
    Apply,
    /// Updates were missed: the book must be rebuilt. Carries (expected, got) ids.
    Gap(u64, u64),
}

/// The rules for one market.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncRules {
    /// The market.
    pub market: Market,
}

impl SyncRules {
    /// Rules for a market.
    #[must_use]
    pub fn new(market: Market) -> Self {
        Self { market }
    }

    /// Is the snapshot with id `snap` too old for the first buffered diff starting at `first_u`?
    #[must_use]
    pub fn snapshot_too_old(&self, snap: u64, first_u: u64) -> bool {
        match self.market {
            // the first applicable event needs U <= L + 1
            Market::Spot => snap.saturating_add(1) < first_u,
            // the first applicable event needs U <= L
            Market::Futures => snap < first_u,
        }
    }

    /// The first diff after a snapshot with id `last`.
    #[must_use]
    pub fn first(&self, last: u64, first_id: u64, last_id: u64) -> Verdict {
        match self.market {
            Market::Spot => {
                if last_id <= last {
                    Verdict::Drop
                } else if first_id <= last + 1 {
                    Verdict::Apply
                } else {
                    Verdict::Gap(last + 1, first_id)
                }
            }
            Market::Futures => {
                // drop u < L; the first event has U <= L <= u (u == L is kept: harmless)
                if last_id < last {
                    Verdict::Drop
                } else if first_id <= last {
                    Verdict::Apply
                } else {
                    Verdict::Gap(last, first_id)
                }
            }
        }
    }

    /// A diff while the book is live with id `last`.
    #[must_use]
    pub fn next(
        &self,
        last: u64,
        first_id: u64,
        last_id: u64,
        prev_last_id: Option<u64>,
    ) -> Verdict {
        match self.market {
            Market::Spot => {
                if last_id <= last {
                    Verdict::Drop
                } else if first_id > last + 1 {
                    Verdict::Gap(last + 1, first_id)
                } else {
                    Verdict::Apply
                }
            }
            Market::Futures => match prev_last_id {
                Some(pu) if pu == last => Verdict::Apply,
                _ if last_id <= last => Verdict::Drop,
                Some(pu) => Verdict::Gap(last, pu),
                // a futures diff without `pu` cannot be chained: treat as a break
                None => Verdict::Gap(last, 0),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spot_rules_follow_the_capture_worked_example() {
        // NKNUSDT: snapshot L=499869752 (exchanges.md §2.6)
        let r = SyncRules::new(Market::Spot);
        assert!(!r.snapshot_too_old(499869752, 499869750));
        assert_eq!(r.first(499869752, 499869750, 499869752), Verdict::Drop);
        assert_eq!(r.first(499869752, 499869753, 499869754), Verdict::Apply);
        assert_eq!(
            r.next(499869754, 499869755, 499869757, None),
            Verdict::Apply
        );
        assert_eq!(
            r.next(499869757, 499869760, 499869760, None),
            Verdict::Gap(499869758, 499869760)
        );
        assert_eq!(r.first(100, 103, 105), Verdict::Gap(101, 103));
        assert!(r.snapshot_too_old(100, 102));
    }

    #[test]
    fn futures_rules_follow_the_capture_worked_example() {
        // SUSHIUSDT: snapshot L=600859605926 (exchanges.md §3.4)
        let r = SyncRules::new(Market::Futures);
        let l = 600859605926;
        assert_eq!(r.first(l, 600859599090, 600859600917), Verdict::Drop);
        assert_eq!(r.first(l, 600859605926, 600859607423), Verdict::Apply);
        assert_eq!(
            r.next(600859607423, 600859607950, 600859609417, Some(600859607423)),
            Verdict::Apply
        );
        assert_eq!(
            r.next(600859607423, 600859607950, 600859609417, Some(1)),
            Verdict::Gap(600859607423, 1)
        );
        // u == L on the first event is kept (harmless, already in the snapshot)
        assert_eq!(r.first(50, 40, 50), Verdict::Apply);
    }
}
