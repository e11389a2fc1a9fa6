//! The columnar batcher: normalized events to Arrow record batches, one per channel, with the
//! contract columns of ARCHITECTURE.md. Python receives them through the Arrow PyCapsule
//! interface (polars reads them without per-row Python objects), for `on_batch` strategies,
//! sinks and replay results.

use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, Float64Builder, Int64Builder, StringBuilder, UInt64Builder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef};

use crate::model::Event;

/// Column names and types of one channel's batches.
fn schema(cols: &[(&str, DataType, bool)]) -> SchemaRef {
    Arc::new(Schema::new(
        cols.iter()
            .map(|(n, t, nullable)| Field::new(*n, t.clone(), *nullable))
            .collect::<Vec<_>>(),
    ))
}

/// Channels with a columnar form, in a stable order.
pub const CHANNELS: [&str; 7] = [
    "trades",
    "book",
    "bbo",
    "ticker",
    "funding",
    "liquidations",
    "open_interest",
];

/// The Arrow schema of a channel's batches (`None` for unknown names).
#[must_use]
pub fn channel_schema(channel: &str) -> Option<SchemaRef> {
    use DataType::{Boolean, Float64, Int64, UInt64, Utf8};
    let head = [("exchange", Utf8, false), ("symbol", Utf8, false)];
    let cols: Vec<(&str, DataType, bool)> = match channel {
        "trades" => vec![
            ("native_symbol", Utf8, false),
            ("ts_exchange", Int64, false),
            ("ts_recv", Int64, false),
            ("price", Float64, false),
            ("size", Float64, false),
            ("side", Utf8, false),
            ("trade_id", UInt64, false),
        ],
        "book" => vec![
            ("ts_exchange", Int64, false),
            ("ts_recv", Int64, false),
            ("side", Utf8, false),
            ("price", Float64, false),
            ("size", Float64, false),
            ("is_snapshot", Boolean, false),
            ("seq", UInt64, false),
        ],
        "bbo" => vec![
            ("ts_exchange", Int64, false),
            ("ts_recv", Int64, false),
            ("bid_price", Float64, false),
            ("bid_size", Float64, false),
            ("ask_price", Float64, false),
            ("ask_size", Float64, false),
        ],
        "ticker" => vec![
            ("ts_exchange", Int64, false),
            ("ts_recv", Int64, false),
            ("last_price", Float64, false),
            ("last_size", Float64, true),
            ("bid_price", Float64, true),
            ("bid_size", Float64, true),
            ("ask_price", Float64, true),
            ("ask_size", Float64, true),
            ("volume_24h", Float64, true),
            ("quote_volume_24h", Float64, true),
        ],
        "funding" => vec![
            ("ts_exchange", Int64, false),
            ("ts_recv", Int64, false),
            ("mark_price", Float64, true),
            ("index_price", Float64, true),
            ("funding_rate", Float64, true),
            ("funding_time", Int64, true),
            ("next_funding_time", Int64, true),
        ],
        "liquidations" => vec![
            ("ts_exchange", Int64, false),
            ("ts_recv", Int64, false),
            ("side", Utf8, false),
            ("price", Float64, false),
            ("size", Float64, false),
        ],
        "open_interest" => vec![
            ("ts_exchange", Int64, false),
            ("ts_recv", Int64, false),
            ("open_interest", Float64, false),
            ("open_interest_value", Float64, true),
        ],
        _ => return None,
    };
    Some(schema(&head.into_iter().chain(cols).collect::<Vec<_>>()))
}

/// Builders for one channel: string, integer, float and boolean columns in schema order.
#[derive(Default)]
struct Cols {
    rows: usize,
    s: Vec<StringBuilder>,
    i: Vec<Int64Builder>,
    u: Vec<UInt64Builder>,
    f: Vec<Float64Builder>,
    b: Vec<BooleanBuilder>,
}

impl Cols {
    fn with(strings: usize, ints: usize, uints: usize, floats: usize, bools: usize) -> Self {
        Self {
            rows: 0,
            s: (0..strings).map(|_| StringBuilder::new()).collect(),
            i: (0..ints).map(|_| Int64Builder::new()).collect(),
            u: (0..uints).map(|_| UInt64Builder::new()).collect(),
            f: (0..floats).map(|_| Float64Builder::new()).collect(),
            b: (0..bools).map(|_| BooleanBuilder::new()).collect(),
        }
    }
    fn s(&mut self, k: usize, v: &str) {
        if let Some(b) = self.s.get_mut(k) {
            b.append_value(v);
        }
    }
    fn i(&mut self, k: usize, v: Option<i64>) {
        if let Some(b) = self.i.get_mut(k) {
            b.append_option(v);
        }
    }
    fn u(&mut self, k: usize, v: u64) {
        if let Some(b) = self.u.get_mut(k) {
            b.append_value(v);
        }
    }
    fn f(&mut self, k: usize, v: Option<f64>) {
        if let Some(b) = self.f.get_mut(k) {
            b.append_option(v);
        }
    }
    fn b(&mut self, k: usize, v: bool) {
        if let Some(b) = self.b.get_mut(k) {
            b.append_value(v);
        }
    }
}

/// Accumulates events and cuts one record batch per non-empty channel.
pub struct ColumnBatcher {
    trades: Cols,
    book: Cols,
    bbo: Cols,
    ticker: Cols,
    funding: Cols,
    liquidations: Cols,
    open_interest: Cols,
}

impl Default for ColumnBatcher {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for ColumnBatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ColumnBatcher").finish_non_exhaustive()
    }
}

impl ColumnBatcher {
    /// Empty builders for every channel.
    #[must_use]
    pub fn new() -> Self {
        Self {
            // strings: exchange, symbol, native_symbol, side | ints: ts_exchange, ts_recv |
            // uints: trade_id | floats: price, size
            trades: Cols::with(4, 2, 1, 2, 0),
            // strings: exchange, symbol, side | ints: ts_exchange, ts_recv | uints: seq |
            // floats: price, size | bools: is_snapshot
            book: Cols::with(3, 2, 1, 2, 1),
            bbo: Cols::with(2, 2, 0, 4, 0),
            ticker: Cols::with(2, 2, 0, 8, 0),
            funding: Cols::with(2, 4, 0, 3, 0),
            liquidations: Cols::with(3, 2, 0, 2, 0),
            open_interest: Cols::with(2, 2, 0, 2, 0),
        }
    }

    /// Rows buffered over all channels.
    #[must_use]
    pub fn rows(&self) -> usize {
        [
            &self.trades,
            &self.book,
            &self.bbo,
            &self.ticker,
            &self.funding,
            &self.liquidations,
            &self.open_interest,
        ]
        .iter()
        .map(|c| c.rows)
        .sum()
    }

    /// Add one event (statuses have no columnar form and are ignored).
    pub fn add(&mut self, ev: &Event) {
        match ev {
            Event::Trade(t) => {
                let c = &mut self.trades;
                c.s(0, t.sym.venue.id());
                c.s(1, &t.sym.symbol);
                c.s(2, &t.sym.native);
                c.s(3, t.side.as_str());
                c.i(0, Some(t.ts_exchange));
                c.i(1, Some(t.ts_recv));
                c.u(0, t.trade_id);
                c.f(0, Some(t.price));
                c.f(1, Some(t.size));
                c.rows += 1;
            }
            Event::Book(d) => {
                let c = &mut self.book;
                for (side, levels) in [("bid", &d.bids), ("ask", &d.asks)] {
                    for &(p, s) in levels {
                        c.s(0, d.sym.venue.id());
                        c.s(1, &d.sym.symbol);
                        c.s(2, side);
                        c.i(0, Some(d.ts_exchange));
                        c.i(1, Some(d.ts_recv));
                        c.u(0, d.seq);
                        c.f(0, Some(p));
                        c.f(1, Some(s));
                        c.b(0, d.is_snapshot);
                        c.rows += 1;
                    }
                }
            }
            Event::Bbo(q) => {
                let c = &mut self.bbo;
                c.s(0, q.sym.venue.id());
                c.s(1, &q.sym.symbol);
                c.i(0, Some(q.ts_exchange));
                c.i(1, Some(q.ts_recv));
                for (k, v) in [q.bid_price, q.bid_size, q.ask_price, q.ask_size]
                    .into_iter()
                    .enumerate()
                {
                    c.f(k, Some(v));
                }
                c.rows += 1;
            }
            Event::Ticker(t) => {
                let c = &mut self.ticker;
                c.s(0, t.sym.venue.id());
                c.s(1, &t.sym.symbol);
                c.i(0, Some(t.ts_exchange));
                c.i(1, Some(t.ts_recv));
                let vals = [
                    Some(t.last_price),
                    t.last_size,
                    t.bid_price,
                    t.bid_size,
                    t.ask_price,
                    t.ask_size,
                    t.volume_24h,
                    t.quote_volume_24h,
                ];
                for (k, v) in vals.into_iter().enumerate() {
                    c.f(k, v);
                }
                c.rows += 1;
            }
            Event::Funding(f) => {
                let c = &mut self.funding;
                c.s(0, f.sym.venue.id());
                c.s(1, &f.sym.symbol);
                c.i(0, Some(f.ts_exchange));
                c.i(1, Some(f.ts_recv));
                c.i(2, f.funding_time);
                c.i(3, f.next_funding_time);
                c.f(0, f.mark_price);
                c.f(1, f.index_price);
                c.f(2, f.funding_rate);
                c.rows += 1;
            }
            Event::Liquidation(l) => {
                let c = &mut self.liquidations;
                c.s(0, l.sym.venue.id());
                c.s(1, &l.sym.symbol);
                c.s(2, l.side.as_str());
                c.i(0, Some(l.ts_exchange));
                c.i(1, Some(l.ts_recv));
                c.f(0, Some(l.price));
                c.f(1, Some(l.size));
                c.rows += 1;
            }
            Event::OpenInterest(o) => {
                let c = &mut self.open_interest;
                c.s(0, o.sym.venue.id());
                c.s(1, &o.sym.symbol);
                c.i(0, Some(o.ts_exchange));
                c.i(1, Some(o.ts_recv));
                c.f(0, Some(o.open_interest));
                c.f(1, o.open_interest_value);
                c.rows += 1;
            }
            Event::Status(_) => {}
        }
    }

    /// Cut the buffered rows into record batches (non-empty channels only, or every channel
    /// when `include_empty`), leaving the builders empty.
    ///
    /// # Errors
    /// Only if a batch violates its schema (a bug: columns are built in schema order).
    pub fn finish(
        &mut self,
        include_empty: bool,
    ) -> Result<Vec<(&'static str, RecordBatch)>, ArrowError> {
        let mut out = Vec::new();
        for name in CHANNELS {
            let cols = match name {
                "trades" => &mut self.trades,
                "book" => &mut self.book,
                "bbo" => &mut self.bbo,
                "ticker" => &mut self.ticker,
                "funding" => &mut self.funding,
                "liquidations" => &mut self.liquidations,
                _ => &mut self.open_interest,
            };
            if cols.rows == 0 && !include_empty {
                continue;
            }
            let Some(schema) = channel_schema(name) else {
                continue;
            };
            cols.rows = 0;
            let mut s = cols.s.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef);
            let mut i = cols.i.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef);
            let mut u = cols.u.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef);
            let mut f = cols.f.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef);
            let mut b = cols.b.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef);
            // pick each column from its type's builders in schema order
            let mut arrays: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
            for field in schema.fields() {
                let next = match field.data_type() {
                    DataType::Utf8 => s.next(),
                    DataType::Int64 => i.next(),
                    DataType::UInt64 => u.next(),
                    DataType::Float64 => f.next(),
                    _ => b.next(),
                };
                if let Some(a) = next {
                    arrays.push(a);
                }
            }
            out.push((name, RecordBatch::try_new(schema, arrays)?));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{BookDelta, Side, SymbolMeta, Trade, Venue};
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Float64Type, UInt64Type};

    #[test]
    fn batches_follow_the_contract_columns() {
        let sym = SymbolMeta::new(Venue::Binance, "BTCUSDT", "BTC-USDT", None);
        let mut b = ColumnBatcher::new();
        b.add(&Event::Trade(Trade {
            sym: sym.clone(),
            ts_exchange: 1,
            ts_recv: 2,
            price: 10.5,
            size: 0.25,
            side: Side::Sell,
            trade_id: 42,
        }));
        b.add(&Event::Book(BookDelta {
            sym,
            ts_exchange: 3,
            ts_recv: 4,
            seq: 9,
            is_snapshot: true,
            bids: vec![(10.0, 1.0), (9.0, 2.0)],
            asks: vec![(11.0, 0.0)],
        }));
        assert_eq!(b.rows(), 4);
        let out = b.finish(false).unwrap();
        assert_eq!(
            out.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
            vec!["trades", "book"]
        );
        let trades = &out[0].1;
        let names: Vec<_> = trades
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        assert_eq!(
            names,
            [
                "exchange",
                "symbol",
                "native_symbol",
                "ts_exchange",
                "ts_recv",
                "price",
                "size",
                "side",
                "trade_id"
            ]
        );
        assert_eq!(
            trades.column(5).as_primitive::<Float64Type>().value(0),
            10.5
        );
        assert_eq!(trades.column(7).as_string::<i32>().value(0), "sell");
        assert_eq!(trades.column(8).as_primitive::<UInt64Type>().value(0), 42);
        let book = &out[1].1;
        assert_eq!(book.num_rows(), 3);
        assert_eq!(book.column(4).as_string::<i32>().value(2), "ask");
        assert_eq!(b.rows(), 0);
        assert_eq!(b.finish(true).unwrap().len(), CHANNELS.len());
    }
}
