//! The bus encoding: one normalized event per NATS message, in a compact little-endian binary
//! layout (version 1), on subject `<prefix>.<channel>.<exchange>.<symbol>`.
//!
//! ```text
//! header   u8 version (1) | u8 kind | u64 epoch | u64 pseq | i64 ts_exchange | i64 ts_recv
//!          | u8 venue | str8 symbol | str8 native
//! kind 1 trade         f64 price | f64 size | u8 side (0 buy, 1 sell) | u64 trade_id
//! kind 2 bbo           f64 bid_price | f64 bid_size | f64 ask_price | f64 ask_size
//! kind 3 book          u64 seq | u8 is_snapshot | u32 n_bids | u32 n_asks | (f64 price, f64 size) × n
//! kind 9 book refresh  laid out as kind 3: a periodic full snapshot of a live book
//! kind 4 status        u8 status kind | u8 book state (255 none) | str8 reason code | str16 text
//! kind 5 ticker        f64 last_price | u16 mask | f64 × popcount(mask): last_size, bid_price,
//!                      bid_size, ask_price, ask_size, open_24h, high_24h, low_24h, volume_24h,
//!                      quote_volume_24h (bit i set = field i present)
//! kind 6 funding       u8 mask | f64 mark, f64 index, f64 rate, i64 funding_time,
//!                      i64 next_funding_time (present ones, bit order)
//! kind 7 liquidation   u8 side | f64 price | f64 size
//! kind 8 open_interest f64 open_interest | u8 has_value | f64 value (when has_value)
//! str8 = u8 length + UTF-8 bytes; str16 = u16 length + UTF-8 bytes
//! ```
//!
//! `epoch` identifies one publishing run (a collector process) and `pseq` numbers that run's
//! messages per subject from 1, so a consumer can put reordered retries back in order, drop
//! duplicates and see a loss. The venue is the index in [`Venue::ALL`]. A status without a
//! symbol has an empty symbol and goes to subject token `_`.

use std::sync::Arc;

use crate::model::{
    Bbo, BookDelta, BookState, Event, Funding, Liquidation, OpenInterest, Side, Status, StatusKind,
    StatusReason, SymbolMeta, Ticker, Trade, Venue,
};

/// Encoding version written in every message.
pub const VERSION: u8 = 1;

/// Why a message could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// Shorter than its fields say.
    #[error("bus message truncated at byte {0}")]
    Truncated(usize),
    /// Another encoding version.
    #[error("bus message version {0} is not supported (expected 1)")]
    Version(u8),
    /// An unknown kind, venue, side or status code.
    #[error("bus message has an invalid {what} ({value})")]
    Invalid {
        /// Field.
        what: &'static str,
        /// Value found.
        value: u64,
    },
    /// A string field is not UTF-8.
    #[error("bus message has a non-UTF-8 {0}")]
    Utf8(&'static str),
}

/// Message kind codes.
mod kind {
    pub const TRADE: u8 = 1;
    pub const BBO: u8 = 2;
    pub const BOOK: u8 = 3;
    pub const STATUS: u8 = 4;
    pub const TICKER: u8 = 5;
    pub const FUNDING: u8 = 6;
    pub const LIQUIDATION: u8 = 7;
    pub const OPEN_INTEREST: u8 = 8;
    pub const BOOK_REFRESH: u8 = 9;
}

/// Kind code of a periodic full-book refresh (laid out as a book snapshot).
pub const KIND_BOOK_REFRESH: u8 = kind::BOOK_REFRESH;

/// Encode a book snapshot event as a periodic refresh (kind 9): a consumer with a whole book
/// ignores it, one waiting for a base (joined or resumed mid-stream, or after a bus gap)
/// rebuilds from it.
pub fn encode_refresh(ev: &Event, epoch: u64, pseq: u64, out: &mut Vec<u8>) {
    encode(ev, epoch, pseq, out);
    if matches!(ev, Event::Book(_)) {
        out[1] = kind::BOOK_REFRESH;
    }
}

/// The subject of `ev`: `<prefix>.<channel>.<exchange>.<symbol>` (see [`subject_into`]).
pub fn subject_of(ev: &Event, prefix: &str, out: &mut String) {
    let symbol = ev.sym().map_or("", |m| &*m.symbol);
    let venue = ev.venue().unwrap_or(Venue::Binance);
    subject_into(out, prefix, ev.channel(), venue, symbol);
}

/// Write `ev` into `out` (cleared first); its subject is [`subject_of`].
pub fn encode(ev: &Event, epoch: u64, pseq: u64, out: &mut Vec<u8>) {
    out.clear();
    let k = match ev {
        Event::Trade(_) => kind::TRADE,
        Event::Bbo(_) => kind::BBO,
        Event::Book(_) => kind::BOOK,
        Event::Ticker(_) => kind::TICKER,
        Event::Funding(_) => kind::FUNDING,
        Event::Liquidation(_) => kind::LIQUIDATION,
        Event::OpenInterest(_) => kind::OPEN_INTEREST,
        Event::Status(_) => kind::STATUS,
    };
    let venue = ev.venue().unwrap_or(Venue::Binance);
    let (symbol, native) = ev.sym().map_or(("", ""), |m| (&*m.symbol, &*m.native));
    out.push(VERSION);
    out.push(k);
    put(out, epoch.to_le_bytes());
    put(out, pseq.to_le_bytes());
    put(out, ev.ts_exchange().to_le_bytes());
    put(out, ev.ts_recv().to_le_bytes());
    out.push(venue_code(venue));
    put_str8(out, symbol);
    put_str8(out, native);
    match ev {
        Event::Trade(e) => {
            put(out, e.price.to_le_bytes());
            put(out, e.size.to_le_bytes());
            out.push(u8::from(e.side == Side::Sell));
            put(out, e.trade_id.to_le_bytes());
        }
        Event::Bbo(e) => {
            for v in [e.bid_price, e.bid_size, e.ask_price, e.ask_size] {
                put(out, v.to_le_bytes());
            }
        }
        Event::Book(e) => {
            put(out, e.seq.to_le_bytes());
            out.push(u8::from(e.is_snapshot));
            put(out, len_u32(e.bids.len()).to_le_bytes());
            put(out, len_u32(e.asks.len()).to_le_bytes());
            for (p, s) in e.bids.iter().chain(&e.asks) {
                put(out, p.to_le_bytes());
                put(out, s.to_le_bytes());
            }
        }
        Event::Status(s) => {
            let kind_code = StatusKind::ALL
                .iter()
                .position(|k| *k == s.kind)
                .unwrap_or(0);
            out.push(u8::try_from(kind_code).unwrap_or(0));
            out.push(s.state.map_or(255, BookState::code));
            put_str8(out, s.reason.code().unwrap_or(""));
            let text = s.reason.render();
            let cut = floor_char_boundary(&text, usize::from(u16::MAX));
            put_str16(out, &text[..cut]);
        }
        Event::Ticker(e) => {
            put(out, e.last_price.to_le_bytes());
            let opts = [
                e.last_size,
                e.bid_price,
                e.bid_size,
                e.ask_price,
                e.ask_size,
                e.open_24h,
                e.high_24h,
                e.low_24h,
                e.volume_24h,
                e.quote_volume_24h,
            ];
            put_opts16(out, &opts);
        }
        Event::Funding(e) => {
            let mut mask = 0u8;
            for (i, present) in [
                e.mark_price.is_some(),
                e.index_price.is_some(),
                e.funding_rate.is_some(),
                e.funding_time.is_some(),
                e.next_funding_time.is_some(),
            ]
            .into_iter()
            .enumerate()
            {
                if present {
                    mask |= 1 << i;
                }
            }
            out.push(mask);
            for v in [e.mark_price, e.index_price, e.funding_rate]
                .into_iter()
                .flatten()
            {
                put(out, v.to_le_bytes());
            }
            for v in [e.funding_time, e.next_funding_time].into_iter().flatten() {
                put(out, v.to_le_bytes());
            }
        }
        Event::Liquidation(e) => {
            out.push(u8::from(e.side == Side::Sell));
            put(out, e.price.to_le_bytes());
            put(out, e.size.to_le_bytes());
        }
        Event::OpenInterest(e) => {
            put(out, e.open_interest.to_le_bytes());
            out.push(u8::from(e.open_interest_value.is_some()));
            if let Some(v) = e.open_interest_value {
                put(out, v.to_le_bytes());
            }
        }
    }
}

/// The subject of an event: `<prefix>.<channel>.<exchange>.<symbol>` (`_` without a symbol;
/// characters NATS reserves, `.`, `*`, `>` and whitespace, become `_`).
pub fn subject_into(out: &mut String, prefix: &str, channel: &str, venue: Venue, symbol: &str) {
    out.clear();
    out.push_str(prefix);
    out.push('.');
    out.push_str(channel);
    out.push('.');
    out.push_str(venue.id());
    out.push('.');
    if symbol.is_empty() {
        out.push('_');
    }
    for c in symbol.chars() {
        out.push(if matches!(c, '.' | '*' | '>') || c.is_whitespace() {
            '_'
        } else {
            c
        });
    }
}

/// The header fields of a decoded message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Publishing run.
    pub epoch: u64,
    /// Publisher sequence within the subject.
    pub pseq: u64,
    /// Message kind code.
    pub kind: u8,
}

/// Decode one message. `resolve(venue, symbol, native, is_book)` returns the interned symbol
/// (`None` for a status without a symbol is handled here).
///
/// # Errors
/// A truncated or invalid message.
pub fn decode<F>(bytes: &[u8], mut resolve: F) -> Result<(Header, Event), CodecError>
where
    F: FnMut(Venue, &str, &str, bool) -> Arc<SymbolMeta>,
{
    let mut r = Reader { b: bytes, at: 0 };
    let version = r.u8()?;
    if version != VERSION {
        return Err(CodecError::Version(version));
    }
    let k = r.u8()?;
    let epoch = r.u64()?;
    let pseq = r.u64()?;
    let ts_exchange = r.i64()?;
    let ts_recv = r.i64()?;
    let vcode = r.u8()?;
    let venue = *Venue::ALL
        .get(usize::from(vcode))
        .ok_or(CodecError::Invalid {
            what: "venue",
            value: u64::from(vcode),
        })?;
    let symbol = r.str8("symbol")?;
    let native = r.str8("native symbol")?;
    let header = Header {
        epoch,
        pseq,
        kind: k,
    };
    let ev = match k {
        kind::TRADE => Event::Trade(Trade {
            sym: resolve(venue, symbol, native, false),
            ts_exchange,
            ts_recv,
            price: r.f64()?,
            size: r.f64()?,
            side: r.side()?,
            trade_id: r.u64()?,
        }),
        kind::BBO => Event::Bbo(Bbo {
            sym: resolve(venue, symbol, native, false),
            ts_exchange,
            ts_recv,
            bid_price: r.f64()?,
            bid_size: r.f64()?,
            ask_price: r.f64()?,
            ask_size: r.f64()?,
        }),
        kind::BOOK | kind::BOOK_REFRESH => {
            let seq = r.u64()?;
            let is_snapshot = r.u8()? != 0;
            let nb = r.u32()? as usize;
            let na = r.u32()? as usize;
            // each level is 16 bytes: refuse counts the message cannot hold before allocating
            let need = nb.saturating_add(na).saturating_mul(16);
            if need > r.left() {
                return Err(CodecError::Truncated(bytes.len()));
            }
            let mut bids = Vec::with_capacity(nb);
            for _ in 0..nb {
                bids.push((r.f64()?, r.f64()?));
            }
            let mut asks = Vec::with_capacity(na);
            for _ in 0..na {
                asks.push((r.f64()?, r.f64()?));
            }
            Event::Book(BookDelta {
                sym: resolve(venue, symbol, native, true),
                ts_exchange,
                ts_recv,
                seq,
                is_snapshot,
                bids,
                asks,
            })
        }
        kind::STATUS => {
            let kc = r.u8()?;
            let kind = *StatusKind::ALL
                .get(usize::from(kc))
                .ok_or(CodecError::Invalid {
                    what: "status kind",
                    value: u64::from(kc),
                })?;
            let sc = r.u8()?;
            let state = if sc == 255 {
                None
            } else {
                Some(BookState::from_code(sc).ok_or(CodecError::Invalid {
                    what: "book state",
                    value: u64::from(sc),
                })?)
            };
            let code = r.str8("reason code")?;
            let text = r.str16("status text")?;
            let reason = if code.is_empty() {
                StatusReason::None
            } else {
                StatusReason::Relayed {
                    code: StatusReason::static_code(code),
                    message: text.into(),
                }
            };
            let sym = (!symbol.is_empty()).then(|| resolve(venue, symbol, native, false));
            Event::Status(Status {
                venue,
                sym,
                kind,
                reason,
                state,
                ts: ts_recv,
            })
        }
        kind::TICKER => {
            let last_price = r.f64()?;
            let o = r.opts16::<10>()?;
            Event::Ticker(Box::new(Ticker {
                sym: resolve(venue, symbol, native, false),
                ts_exchange,
                ts_recv,
                last_price,
                last_size: o[0],
                bid_price: o[1],
                bid_size: o[2],
                ask_price: o[3],
                ask_size: o[4],
                open_24h: o[5],
                high_24h: o[6],
                low_24h: o[7],
                volume_24h: o[8],
                quote_volume_24h: o[9],
            }))
        }
        kind::FUNDING => {
            let mask = r.u8()?;
            let mut f = [None; 3];
            for (i, slot) in f.iter_mut().enumerate() {
                if mask & (1 << i) != 0 {
                    *slot = Some(r.f64()?);
                }
            }
            let mut t = [None; 2];
            for (i, slot) in t.iter_mut().enumerate() {
                if mask & (1 << (i + 3)) != 0 {
                    *slot = Some(r.i64()?);
                }
            }
            Event::Funding(Box::new(Funding {
                sym: resolve(venue, symbol, native, false),
                ts_exchange,
                ts_recv,
                mark_price: f[0],
                index_price: f[1],
                funding_rate: f[2],
                funding_time: t[0],
                next_funding_time: t[1],
            }))
        }
        kind::LIQUIDATION => Event::Liquidation(Liquidation {
            sym: resolve(venue, symbol, native, false),
            ts_exchange,
            ts_recv,
            side: r.side()?,
            price: r.f64()?,
            size: r.f64()?,
        }),
        kind::OPEN_INTEREST => {
            let open_interest = r.f64()?;
            let has = r.u8()? != 0;
            let open_interest_value = if has { Some(r.f64()?) } else { None };
            Event::OpenInterest(OpenInterest {
                sym: resolve(venue, symbol, native, false),
                ts_exchange,
                ts_recv,
                open_interest,
                open_interest_value,
            })
        }
        other => {
            return Err(CodecError::Invalid {
                what: "kind",
                value: u64::from(other),
            })
        }
    };
    Ok((header, ev))
}

fn venue_code(v: Venue) -> u8 {
    let i = Venue::ALL.iter().position(|x| *x == v).unwrap_or(0);
    u8::try_from(i).unwrap_or(0)
}

fn len_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn floor_char_boundary(s: &str, max: usize) -> usize {
    if s.len() <= max {
        return s.len();
    }
    let mut i = max;
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Append a fixed-width little-endian value (`x.to_le_bytes()`).
fn put<const N: usize>(out: &mut Vec<u8>, bytes: [u8; N]) {
    out.extend_from_slice(&bytes);
}

fn put_str8(out: &mut Vec<u8>, s: &str) {
    let cut = floor_char_boundary(s, 255);
    out.push(u8::try_from(cut).unwrap_or(u8::MAX));
    out.extend_from_slice(&s.as_bytes()[..cut]);
}

fn put_str16(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&u16::try_from(s.len()).unwrap_or(0).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn put_opts16(out: &mut Vec<u8>, opts: &[Option<f64>]) {
    let mut mask = 0u16;
    for (i, o) in opts.iter().enumerate() {
        if o.is_some() {
            mask |= 1 << i;
        }
    }
    out.extend_from_slice(&mask.to_le_bytes());
    for v in opts.iter().flatten() {
        put(out, v.to_le_bytes());
    }
}

/// A bounds-checked little-endian reader.
struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], CodecError> {
        let end = self
            .at
            .checked_add(n)
            .ok_or(CodecError::Truncated(self.at))?;
        let s = self
            .b
            .get(self.at..end)
            .ok_or(CodecError::Truncated(self.at))?;
        self.at = end;
        Ok(s)
    }

    fn left(&self) -> usize {
        self.b.len().saturating_sub(self.at)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], CodecError> {
        let s = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    fn u8(&mut self) -> Result<u8, CodecError> {
        Ok(self.array::<1>()?[0])
    }

    fn u32(&mut self) -> Result<u32, CodecError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, CodecError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    fn i64(&mut self) -> Result<i64, CodecError> {
        Ok(i64::from_le_bytes(self.array()?))
    }

    fn f64(&mut self) -> Result<f64, CodecError> {
        Ok(f64::from_le_bytes(self.array()?))
    }

    fn side(&mut self) -> Result<Side, CodecError> {
        match self.u8()? {
            0 => Ok(Side::Buy),
            1 => Ok(Side::Sell),
            v => Err(CodecError::Invalid {
                what: "side",
                value: u64::from(v),
            }),
        }
    }

    fn str8(&mut self, what: &'static str) -> Result<&'a str, CodecError> {
        let n = usize::from(self.u8()?);
        std::str::from_utf8(self.take(n)?).map_err(|_| CodecError::Utf8(what))
    }

    fn str16(&mut self, what: &'static str) -> Result<&'a str, CodecError> {
        let n = usize::from(u16::from_le_bytes(self.array()?));
        std::str::from_utf8(self.take(n)?).map_err(|_| CodecError::Utf8(what))
    }

    fn opts16<const N: usize>(&mut self) -> Result<[Option<f64>; N], CodecError> {
        let mask = u16::from_le_bytes(self.array()?);
        let mut o = [None; N];
        for (i, slot) in o.iter_mut().enumerate() {
            if mask & (1 << i) != 0 {
                *slot = Some(self.f64()?);
            }
        }
        Ok(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sym(book: bool) -> Arc<SymbolMeta> {
        let b = book.then(|| Arc::new(parking_lot::RwLock::new(crate::model::OrderBook::new())));
        SymbolMeta::new(Venue::Okx, "BTC-USDT-SWAP", "BTC-USDT-PERP", b)
    }

    fn round_trip(ev: &Event) -> (Header, Event, String) {
        let mut out = Vec::new();
        let mut subject = String::new();
        encode(ev, 7, 42, &mut out);
        subject_of(ev, "xt", &mut subject);
        let (h, back) = decode(&out, |v, s, n, is_book| {
            assert_eq!(v, Venue::Okx);
            let m = sym(is_book);
            assert_eq!(s, &*m.symbol);
            assert_eq!(n, &*m.native);
            m
        })
        .expect("decodes");
        // every strict prefix is refused as truncated, never a panic or a wrong event
        for cut in 0..out.len() {
            assert!(
                decode(&out[..cut], |_, _, _, b| sym(b)).is_err(),
                "prefix {cut}"
            );
        }
        (h, back, subject)
    }

    #[test]
    fn every_kind_round_trips() {
        let s = sym(false);
        let events = vec![
            Event::Trade(Trade {
                sym: s.clone(),
                ts_exchange: 1,
                ts_recv: 2,
                price: 101.5,
                size: 0.25,
                side: Side::Sell,
                trade_id: 99,
            }),
            Event::Bbo(Bbo {
                sym: s.clone(),
                ts_exchange: 3,
                ts_recv: 4,
                bid_price: 1.0,
                bid_size: 2.0,
                ask_price: 3.0,
                ask_size: 4.0,
            }),
            Event::Book(BookDelta {
                sym: sym(true),
                ts_exchange: 5,
                ts_recv: 6,
                seq: 1234,
                is_snapshot: true,
                bids: vec![(100.0, 1.0), (99.5, 0.0)],
                asks: vec![(101.0, 3.0)],
            }),
            Event::Ticker(Box::new(Ticker {
                sym: s.clone(),
                ts_exchange: 7,
                ts_recv: 8,
                last_price: 10.0,
                last_size: None,
                bid_price: Some(9.0),
                bid_size: None,
                ask_price: Some(11.0),
                ask_size: None,
                open_24h: None,
                high_24h: Some(12.0),
                low_24h: None,
                volume_24h: None,
                quote_volume_24h: Some(1e9),
            })),
            Event::Funding(Box::new(Funding {
                sym: s.clone(),
                ts_exchange: 9,
                ts_recv: 10,
                mark_price: Some(1.0),
                index_price: None,
                funding_rate: Some(0.0001),
                funding_time: None,
                next_funding_time: Some(1_700_000_000_000_000_000),
            })),
            Event::Liquidation(Liquidation {
                sym: s.clone(),
                ts_exchange: 11,
                ts_recv: 12,
                side: Side::Buy,
                price: 5.0,
                size: 6.0,
            }),
            Event::OpenInterest(OpenInterest {
                sym: s.clone(),
                ts_exchange: 13,
                ts_recv: 14,
                open_interest: 15.0,
                open_interest_value: None,
            }),
        ];
        for ev in &events {
            let (h, back, subject) = round_trip(ev);
            assert_eq!((h.epoch, h.pseq), (7, 42));
            assert_eq!(format!("{ev:?}"), format!("{back:?}"), "{}", ev.channel());
            assert_eq!(subject, format!("xt.{}.okx.BTC-USDT-PERP", ev.channel()));
        }
    }

    #[test]
    fn statuses_relay_code_text_and_state() {
        let ev = Event::Status(Status {
            venue: Venue::Okx,
            sym: Some(sym(false)),
            kind: StatusKind::Resync,
            reason: StatusReason::Gap {
                expected: 5,
                got: 9,
            },
            state: Some(BookState::Resyncing),
            ts: 77,
        });
        let (_, back, subject) = round_trip(&ev);
        assert_eq!(subject, "xt.status.okx.BTC-USDT-PERP");
        let Event::Status(s) = back else {
            panic!("not a status")
        };
        assert_eq!(s.kind, StatusKind::Resync);
        assert_eq!(s.state, Some(BookState::Resyncing));
        assert_eq!(s.ts, 77);
        assert_eq!(s.reason.code(), Some("gap"));
        assert_eq!(
            s.reason.render(),
            "sequence gap: expected update id 5, got 9"
        );
        let feed_level = Event::Status(Status {
            venue: Venue::Binance,
            sym: None,
            kind: StatusKind::Connected,
            reason: StatusReason::None,
            state: None,
            ts: 1,
        });
        let mut out = Vec::new();
        let mut subject = String::new();
        encode(&feed_level, 1, 1, &mut out);
        subject_of(&feed_level, "xt", &mut subject);
        assert_eq!(subject, "xt.status.binance._");
        let (_, back) = decode(&out, |_, _, _, b| sym(b)).expect("decodes");
        let Event::Status(s) = back else {
            panic!("not a status")
        };
        assert!(s.sym.is_none());
        assert_eq!(s.reason, StatusReason::None);
    }

    #[test]
    fn bad_messages_name_the_problem() {
        assert_eq!(
            decode(&[2, 1], |_, _, _, b| sym(b)).err(),
            Some(CodecError::Version(2))
        );
        let mut out = Vec::new();
        let ev = Event::Book(BookDelta {
            sym: sym(true),
            ts_exchange: 0,
            ts_recv: 0,
            seq: 1,
            is_snapshot: false,
            bids: vec![],
            asks: vec![],
        });
        encode(&ev, 1, 1, &mut out);
        // claim 2^32-1 bid levels in a message that holds none: refused before allocating
        let n = out.len();
        out[n - 8..n - 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            decode(&out, |_, _, _, b| sym(b)),
            Err(CodecError::Truncated(_))
        ));
        out[1] = 200;
        assert_eq!(
            decode(&out, |_, _, _, b| sym(b)).err(),
            Some(CodecError::Invalid {
                what: "kind",
                value: 200
            })
        );
    }

    #[test]
    fn subjects_escape_reserved_characters() {
        let mut s = String::new();
        subject_into(&mut s, "xt", "trades", Venue::Binance, "A.B*C>D E");
        assert_eq!(s, "xt.trades.binance.A_B_C_D_E");
    }
}
