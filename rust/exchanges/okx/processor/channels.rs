//! Non-book channels of the OKX processor: trades (`trades`, `trades-all`), `tickers`,
//! `funding-rate` and `mark-price` (channel `funding`), `open-interest`, `liquidation-orders`,
//! each size converted with its instrument's contract size (exchanges.md §4.4, §4.6).

use super::{ms_to_ns, opt_num, wire_price, wire_size, OkxProcessor};
use crate::exchanges::okx::messages::{
    OkxFundingRate, OkxLiquidation, OkxMarkPrice, OkxOpenInterest, OkxTicker, OkxTrade,
};
use crate::exchanges::Action;
use crate::model::{Event, Funding, Liquidation, OpenInterest, Side, Ticker, Trade};

impl OkxProcessor {
    pub(super) fn on_trades(
        &mut self,
        data: &str,
        frame: &str,
        ts: i64,
        out: &mut Vec<Event>,
        actions: &mut Vec<Action>,
    ) {
        let list: Vec<OkxTrade> = match sonic_rs::from_str(data) {
            Ok(l) => l,
            Err(e) => return self.malformed(frame, e.offset(), ts, out),
        };
        for t in &list {
            let Some(meta) = self.resolve(t.inst_id, ts, out, actions) else {
                continue;
            };
            let side = match t.side {
                "buy" => Side::Buy,
                "sell" => Side::Sell,
                _ => return self.malformed(frame, 0, ts, out),
            };
            let (Some(price), Some(sz), Some(ts_ex), Ok(id)) = (
                wire_price(t.px),
                // a trade of nothing is not a trade
                wire_size(t.sz).filter(|s| *s > 0.0),
                ms_to_ns(t.ts),
                t.trade_id.parse::<u64>(),
            ) else {
                return self.malformed(frame, 0, ts, out);
            };
            self.counters.trades += 1;
            let size = sz * meta.contract_size();
            out.push(Event::Trade(Trade {
                sym: meta,
                ts_exchange: ts_ex,
                ts_recv: ts,
                price,
                size,
                side,
                trade_id: id,
            }));
        }
    }

    pub(super) fn on_tickers(
        &mut self,
        data: &str,
        frame: &str,
        ts: i64,
        out: &mut Vec<Event>,
        actions: &mut Vec<Action>,
    ) {
        let list: Vec<OkxTicker> = match sonic_rs::from_str(data) {
            Ok(l) => l,
            Err(e) => return self.malformed(frame, e.offset(), ts, out),
        };
        for t in &list {
            let Some(meta) = self.resolve(t.inst_id, ts, out, actions) else {
                continue;
            };
            let (Some(last), Some(ts_ex)) = (wire_price(t.last), ms_to_ns(t.ts)) else {
                return self.malformed(frame, 0, ts, out);
            };
            let mult = meta.contract_size();
            let derivative = t.inst_type.is_some_and(|k| k != "SPOT") || mult != 1.0;
            let inverse = meta.instrument.as_ref().is_some_and(|i| i.inverse);
            let (vol, vol_ccy) = (opt_num(t.vol_24h), opt_num(t.vol_ccy_24h));
            // spot: vol24h is base, volCcy24h quote; derivatives: vol24h contracts, volCcy24h base
            let (volume, quote_volume) = if derivative {
                (vol_ccy, if inverse { vol.map(|v| v * mult) } else { None })
            } else {
                (vol, vol_ccy)
            };
            self.counters.tickers += 1;
            out.push(Event::Ticker(Box::new(Ticker {
                sym: meta,
                ts_exchange: ts_ex,
                ts_recv: ts,
                last_price: last,
                last_size: opt_num(t.last_sz).map(|v| v * mult),
                bid_price: opt_num(t.bid_px),
                bid_size: opt_num(t.bid_sz).map(|v| v * mult),
                ask_price: opt_num(t.ask_px),
                ask_size: opt_num(t.ask_sz).map(|v| v * mult),
                open_24h: opt_num(t.open_24h),
                high_24h: opt_num(t.high_24h),
                low_24h: opt_num(t.low_24h),
                volume_24h: volume,
                quote_volume_24h: quote_volume,
            })));
        }
    }

    pub(super) fn on_funding_rate(
        &mut self,
        data: &str,
        frame: &str,
        ts: i64,
        out: &mut Vec<Event>,
        actions: &mut Vec<Action>,
    ) {
        let list: Vec<OkxFundingRate> = match sonic_rs::from_str(data) {
            Ok(l) => l,
            Err(e) => return self.malformed(frame, e.offset(), ts, out),
        };
        for f in &list {
            let Some(meta) = self.resolve(f.inst_id, ts, out, actions) else {
                continue;
            };
            self.counters.funding += 1;
            out.push(Event::Funding(Box::new(Funding {
                sym: meta,
                ts_exchange: f.ts.and_then(ms_to_ns).unwrap_or(0),
                ts_recv: ts,
                mark_price: None,
                index_price: None,
                funding_rate: opt_num(f.funding_rate),
                funding_time: f.funding_time.and_then(ms_to_ns),
                next_funding_time: f.next_funding_time.and_then(ms_to_ns),
            })));
        }
    }

    pub(super) fn on_mark_price(
        &mut self,
        data: &str,
        frame: &str,
        ts: i64,
        out: &mut Vec<Event>,
        actions: &mut Vec<Action>,
    ) {
        let list: Vec<OkxMarkPrice> = match sonic_rs::from_str(data) {
            Ok(l) => l,
            Err(e) => return self.malformed(frame, e.offset(), ts, out),
        };
        for m in &list {
            let Some(meta) = self.resolve(m.inst_id, ts, out, actions) else {
                continue;
            };
            let (Some(px), Some(ts_ex)) = (wire_price(m.mark_px), ms_to_ns(m.ts)) else {
                return self.malformed(frame, 0, ts, out);
            };
            self.counters.funding += 1;
            out.push(Event::Funding(Box::new(Funding {
                sym: meta,
                ts_exchange: ts_ex,
                ts_recv: ts,
                mark_price: Some(px),
                index_price: None,
                funding_rate: None,
                funding_time: None,
                next_funding_time: None,
            })));
        }
    }

    pub(super) fn on_open_interest(
        &mut self,
        data: &str,
        frame: &str,
        ts: i64,
        out: &mut Vec<Event>,
        actions: &mut Vec<Action>,
    ) {
        let list: Vec<OkxOpenInterest> = match sonic_rs::from_str(data) {
            Ok(l) => l,
            Err(e) => return self.malformed(frame, e.offset(), ts, out),
        };
        for o in &list {
            let Some(meta) = self.resolve(o.inst_id, ts, out, actions) else {
                continue;
            };
            let (Some(oi), Some(ts_ex)) = (wire_size(o.oi), ms_to_ns(o.ts)) else {
                return self.malformed(frame, 0, ts, out);
            };
            self.counters.open_interest += 1;
            let open_interest = oi * meta.contract_size();
            out.push(Event::OpenInterest(OpenInterest {
                sym: meta,
                ts_exchange: ts_ex,
                ts_recv: ts,
                open_interest,
                open_interest_value: opt_num(o.oi_usd),
            }));
        }
    }

    pub(super) fn on_liquidations(
        &mut self,
        data: &str,
        frame: &str,
        ts: i64,
        out: &mut Vec<Event>,
        actions: &mut Vec<Action>,
    ) {
        let list: Vec<OkxLiquidation> = match sonic_rs::from_str(data) {
            Ok(l) => l,
            Err(e) => return self.malformed(frame, e.offset(), ts, out),
        };
        for l in &list {
            let Some(meta) = self.resolve(l.inst_id, ts, out, actions) else {
                continue;
            };
            for d in &l.details {
                let side = match d.side {
                    "buy" => Side::Buy,
                    "sell" => Side::Sell,
                    _ => return self.malformed(frame, 0, ts, out),
                };
                let (Some(price), Some(sz), Some(ts_ex)) =
                    (wire_price(d.bk_px), wire_size(d.sz), ms_to_ns(d.ts))
                else {
                    return self.malformed(frame, 0, ts, out);
                };
                self.counters.liquidations += 1;
                out.push(Event::Liquidation(Liquidation {
                    sym: meta.clone(),
                    ts_exchange: ts_ex,
                    ts_recv: ts,
                    side,
                    price,
                    size: sz * meta.contract_size(),
                }));
            }
        }
    }
}
