//! Trade (`trade`, `aggTrade`) and best bid/offer (`bookTicker`) streams of the Binance
//! processor, spot and futures alike (exchanges.md 2.5, 3.3): sizes scaled by the symbol's
//! contract size (COIN-M), the matching time `T` preferred as `ts_exchange`, and the rollover
//! duplicate filters applied by trade id and bookTicker `u`.

use super::messages::{BinanceAggTrade, BinanceBookTicker, BinanceTrade};
use super::processor::{ms_to_ns, wire_price, wire_size, BinanceProcessor, D_BBO, D_TRADE};
use crate::model::{Bbo, Event, Side, Trade};

/// The fields of a `trade` or `aggTrade` payload the processor uses.
pub(super) struct TradeFields<'a> {
    symbol: &'a str,
    id: u64,
    price: &'a str,
    qty: &'a str,
    time: i64,
    buyer_is_maker: bool,
}

/// Parse a `trade` (`agg` false) or `aggTrade` payload.
pub(super) fn parse_trade(data: &str, agg: bool) -> Result<TradeFields<'_>, sonic_rs::Error> {
    // the two wire structs name these fields alike
    macro_rules! fields {
        ($wire:ty) => {{
            let t: $wire = sonic_rs::from_str(data)?;
            TradeFields {
                symbol: t.symbol,
                id: t.id,
                price: t.price,
                qty: t.qty,
                time: t.trade_time,
                buyer_is_maker: t.buyer_is_maker,
            }
        }};
    }
    Ok(if agg {
        fields!(BinanceAggTrade)
    } else {
        fields!(BinanceTrade)
    })
}

impl BinanceProcessor {
    pub(super) fn on_trade(
        &mut self,
        t: TradeFields<'_>,
        frame: &str,
        ts_recv: i64,
        out: &mut Vec<Event>,
    ) {
        let TradeFields {
            symbol,
            id,
            price,
            qty,
            time,
            buyer_is_maker,
        } = t;
        let Some(idx) = self.lookup(symbol, ts_recv, out) else {
            return;
        };
        let (Some(price), Some(size), Some(ts_exchange)) =
            (wire_price(price), wire_size(qty), ms_to_ns(time))
        else {
            return self.malformed(frame, 0, ts_recv, out);
        };
        let mult = self.size_mult(idx);
        let overlap = self.dedupe_on(ts_recv);
        let Some(st) = self.states.get_mut(idx) else {
            return;
        };
        // during a rollover both sockets deliver each trade: emit the first copy only
        if !st.dedupe[D_TRADE].fresh(id, overlap) {
            self.counters.overlap_duplicates += 1;
            return;
        }
        self.counters.trades += 1;
        out.push(Event::Trade(Trade {
            sym: self.metas[idx].clone(),
            ts_exchange,
            ts_recv,
            price,
            size: size * mult,
            // the buyer was the maker, so the seller took liquidity
            side: if buyer_is_maker {
                Side::Sell
            } else {
                Side::Buy
            },
            trade_id: id,
        }));
    }

    pub(super) fn on_book_ticker(
        &mut self,
        t: BinanceBookTicker<'_>,
        frame: &str,
        ts_recv: i64,
        out: &mut Vec<Event>,
    ) {
        let Some(idx) = self.lookup(t.symbol, ts_recv, out) else {
            return;
        };
        let (Some(bp), Some(bs), Some(ap), Some(az), Some(ts_exchange)) = (
            wire_price(t.bid_price),
            wire_size(t.bid_qty),
            wire_price(t.ask_price),
            wire_size(t.ask_qty),
            // futures send T (matching time, preferred) and E; spot sends neither
            ms_to_ns(t.tx_time.or(t.event_time).unwrap_or(0)),
        ) else {
            return self.malformed(frame, 0, ts_recv, out);
        };
        let mult = self.size_mult(idx);
        let overlap = self.dedupe_on(ts_recv);
        let Some(st) = self.states.get_mut(idx) else {
            return;
        };
        st.last_seen[super::futures::W_BBO] = ts_recv;
        st.silent_reported[super::futures::W_BBO] = false;
        if !st.dedupe[D_BBO].fresh(t.update_id, overlap) {
            self.counters.overlap_duplicates += 1;
            return;
        }
        self.counters.bbo += 1;
        out.push(Event::Bbo(Bbo {
            sym: self.metas[idx].clone(),
            ts_exchange,
            ts_recv,
            bid_price: bp,
            bid_size: bs * mult,
            ask_price: ap,
            ask_size: az * mult,
        }));
    }
}
