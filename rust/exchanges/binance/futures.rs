//! Futures streams of the Binance processor (exchanges.md 3.3 and 3.6): `markPrice` to the
//! `funding` channel, `forceOrder` to `liquidations`, the REST open-interest answer to
//! `open_interest`; and the watchdog that reports a subscribed stream that stays silent
//! longer than its cadence allows (the USD-M unrouted URL accepts market streams and then
//! sends nothing, exchanges.md 3.1).

use std::sync::Arc;
use std::time::Duration;

use super::messages::{BinanceForceOrder, BinanceMarkPrice, BinanceOpenInterest};
use super::processor::{ms_to_ns, num, wire_price, wire_size, BinanceProcessor, D_LIQ, D_MARK, MS};
use crate::model::{
    BookState, Event, Funding, Liquidation, OpenInterest, Side, StatusKind, StatusReason,
    SymbolMeta,
};

/// Watchdog slots in `SymState::last_seen`.
pub(super) const W_BOOK: usize = 0;
pub(super) const W_BBO: usize = 1;
pub(super) const W_FUNDING: usize = 2;
const WATCHED: [(usize, &str); 3] = [(W_BOOK, "book"), (W_BBO, "bbo"), (W_FUNDING, "funding")];

/// `markPrice@1s` pushes every second: four missed pushes are not jitter.
const MARK_SILENT_AFTER: Duration = Duration::from_secs(4);

impl BinanceProcessor {
    pub(super) fn on_mark_price(
        &mut self,
        m: BinanceMarkPrice<'_>,
        frame: &str,
        ts_recv: i64,
        out: &mut Vec<Event>,
    ) {
        let Some(idx) = self.lookup(m.symbol, ts_recv, out) else {
            return;
        };
        let (Some(mark), Some(ts_exchange)) = (wire_price(m.mark), ms_to_ns(m.event_time)) else {
            return self.malformed(frame, 0, ts_recv, out);
        };
        let overlap = self.dedupe_on(ts_recv);
        let Some(st) = self.states.get_mut(idx) else {
            return;
        };
        st.last_seen[W_FUNDING] = ts_recv;
        st.silent_reported[W_FUNDING] = false;
        let id = u64::try_from(m.event_time).unwrap_or(0);
        if !st.dedupe[D_MARK].fresh(id, overlap) {
            self.counters.overlap_duplicates += 1;
            return;
        }
        self.counters.funding += 1;
        out.push(Event::Funding(Box::new(Funding {
            sym: self.metas[idx].clone(),
            // `T` here is the next funding time, not a matching time: E stamps the event
            ts_exchange,
            ts_recv,
            mark_price: Some(mark),
            index_price: wire_price(m.index),
            // delivery contracts send "r":"" and "T":0: no funding
            funding_rate: num(m.funding_rate).filter(|r| r.is_finite()),
            funding_time: None,
            next_funding_time: (m.next_funding_time > 0)
                .then(|| ms_to_ns(m.next_funding_time))
                .flatten(),
        })));
    }

    pub(super) fn on_force_order(
        &mut self,
        f: BinanceForceOrder<'_>,
        frame: &str,
        ts_recv: i64,
        out: &mut Vec<Event>,
    ) {
        let o = &f.order;
        let Some(idx) = self.lookup(o.symbol, ts_recv, out) else {
            return;
        };
        let side = match o.side {
            "BUY" => Side::Buy,
            "SELL" => Side::Sell,
            _ => return self.malformed(frame, 0, ts_recv, out),
        };
        // the filled quantity at the average price is what was liquidated; an order not yet
        // filled reports its original quantity and limit price
        let price = wire_price(o.avg_price).or_else(|| wire_price(o.price));
        let size = wire_size(o.filled)
            .filter(|q| *q > 0.0)
            .or_else(|| wire_size(o.qty));
        let (Some(price), Some(size), Some(ts_exchange)) = (price, size, ms_to_ns(o.trade_time))
        else {
            return self.malformed(frame, 0, ts_recv, out);
        };
        let mult = self.size_mult(idx);
        let overlap = self.dedupe_on(ts_recv);
        let Some(st) = self.states.get_mut(idx) else {
            return;
        };
        let id = u64::try_from(f.event_time).unwrap_or(0);
        if !st.dedupe[D_LIQ].fresh(id, overlap) {
            self.counters.overlap_duplicates += 1;
            return;
        }
        self.counters.liquidations += 1;
        out.push(Event::Liquidation(Liquidation {
            sym: self.metas[idx].clone(),
            ts_exchange,
            ts_recv,
            side,
            price,
            size: size * mult,
        }));
    }

    /// Start watching the subscribed streams with cadences (book, bbo, funding).
    pub(super) fn arm_watchdog(&mut self, ts: i64, silent_after: Duration) {
        self.silent_after_ns = i64::try_from(silent_after.as_nanos()).unwrap_or(i64::MAX);
        let watched = [self.channels.book, self.channels.bbo, self.channels.funding];
        for st in &mut self.states {
            for (slot, on) in watched.iter().enumerate() {
                st.last_seen[slot] = if *on { ts } else { 0 };
                st.silent_reported[slot] = false;
            }
        }
    }

    /// Report each watched stream of a symbol once when it stays silent past its deadline.
    pub(super) fn check_silence(&mut self, ts: i64, out: &mut Vec<Event>) {
        if self.silent_after_ns <= 0 {
            return;
        }
        let mark = i64::try_from(MARK_SILENT_AFTER.as_nanos()).unwrap_or(i64::MAX);
        for idx in 0..self.states.len() {
            for (slot, channel) in WATCHED {
                let Some(st) = self.states.get_mut(idx) else {
                    break;
                };
                let seen = st.last_seen[slot];
                let deadline = if slot == W_FUNDING {
                    self.silent_after_ns.max(mark)
                } else {
                    self.silent_after_ns
                };
                if seen == 0 || st.silent_reported[slot] || ts - seen <= deadline {
                    continue;
                }
                st.silent_reported[slot] = true;
                self.counters.silent_streams += 1;
                if slot == W_BOOK
                    && st.phase == super::sync::Phase::Live
                    && self
                        .metas
                        .get(idx)
                        .and_then(|m| m.book.as_ref())
                        .is_some_and(|b| b.read().state == BookState::Live)
                {
                    // its depth stream is silent: the book may be behind, and says so
                    self.set_state(idx, BookState::Stale);
                }
                let ms = u64::try_from((ts - seen) / MS).unwrap_or(0);
                self.budgeted_status(
                    Some(idx),
                    StatusKind::Stale,
                    StatusReason::StreamSilent { channel, ms },
                    ts,
                    out,
                );
            }
        }
    }
}

/// Parse a REST open-interest answer for `sym` into an event (sizes normalized).
///
/// # Errors
/// The parser's byte offset when the body is not an open-interest answer for `sym`.
pub fn open_interest_event(
    sym: &Arc<SymbolMeta>,
    body: &str,
    ts_recv: i64,
) -> Result<Event, usize> {
    let oi: BinanceOpenInterest = sonic_rs::from_str(body).map_err(|e| e.offset())?;
    if oi.symbol != &*sym.native {
        return Err(0);
    }
    let value = wire_size(oi.open_interest).ok_or(0usize)?;
    let ts_exchange = ms_to_ns(oi.time).ok_or(0usize)?;
    Ok(Event::OpenInterest(OpenInterest {
        sym: sym.clone(),
        ts_exchange,
        ts_recv,
        open_interest: value * sym.contract_size,
        open_interest_value: None,
    }))
}
