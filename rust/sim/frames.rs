//! Serialisation of synthetic Binance frames into reusable `String`s.
//!
//! Owns the wire text of the synthetic events (exchanges.md 2.5 and 3.3: `trade`,
//! `aggTrade`, `depthUpdate`, `bookTicker` in their spot and futures shapes; mark price and
//! liquidations live in `futures.rs`) and the fixed-decimal number format Binance uses
//! ("27123.45000000"). It must not decide *what* happens in the market (that is `market.rs`)
//! nor who receives a frame (that is `feed.rs` and `ws.rs`). Numbers are written by hand
//! because `format!` per field is the dominant cost at high message rates.

use bytes::Bytes;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use super::market::{Level, StepOut};

/// Binance spot prints every price and quantity with eight decimals.
pub(crate) const DECIMALS: u32 = 8;
const SCALE: i64 = 100_000_000;

/// One pre-serialised data frame, shared by every connection through the broadcast channel
/// (a clone shares the bytes).
#[derive(Debug, Clone)]
pub(crate) struct Frame {
    /// Topic index (see `Topics`), or [`TOPIC_ALL`] for frames every client receives.
    pub topic: u32,
    /// Bare event object, sent on raw (`/ws`) connections.
    pub raw: Utf8Bytes,
    /// `{"stream":..,"data":..}` wrapper, sent on combined connections.
    pub combined: Utf8Bytes,
}

/// Topic value of frames sent to every connection whatever its subscriptions.
pub(crate) const TOPIC_ALL: u32 = u32::MAX;

impl Frame {
    /// Frame delivered verbatim to every client (injection, server notices).
    pub(crate) fn to_all(raw: String, combined: String) -> Frame {
        Frame {
            topic: TOPIC_ALL,
            raw: raw.into(),
            combined: combined.into(),
        }
    }

    /// Text sent unchanged to every client whatever its mode (`inject_raw`).
    pub(crate) fn verbatim(text: String) -> Frame {
        let text = Utf8Bytes::from(text);
        Frame {
            topic: TOPIC_ALL,
            raw: text.clone(),
            combined: text,
        }
    }

    /// Wraps a bare event for `stream`; the raw text is kept as is.
    ///
    /// One buffer holds both texts: the raw one is a slice of the wrapper, and the wrapper is
    /// sized exactly, so it becomes shared bytes without another allocation or copy.
    pub(crate) fn wrap(topic: u32, stream: &str, raw: &str) -> Frame {
        let mut buf = String::with_capacity(HEAD.len() + stream.len() + MID.len() + raw.len() + 1);
        let mark = Mark::write(&mut buf, topic, stream, raw);
        mark.cut(&Bytes::from(buf))
    }
}

const HEAD: &str = "{\"stream\":\"";
const MID: &str = "\",\"data\":";

/// Where one frame's texts lie in the buffer they were written to.
#[derive(Debug, Clone, Copy)]
struct Mark {
    topic: u32,
    /// Start of the `{"stream":..,"data":..}` wrapper.
    start: usize,
    /// Start of the raw event inside it.
    raw_start: usize,
    /// End of the wrapper (the raw event ends one byte before, at its closing `}`).
    end: usize,
}

impl Mark {
    /// Appends `raw` and its wrapper for `stream` to `buf`.
    fn write(buf: &mut String, topic: u32, stream: &str, raw: &str) -> Mark {
        let start = buf.len();
        buf.push_str(HEAD);
        buf.push_str(stream);
        buf.push_str(MID);
        let raw_start = buf.len();
        buf.push_str(raw);
        buf.push('}');
        Mark {
            topic,
            start,
            raw_start,
            end: buf.len(),
        }
    }

    /// The frame, as two slices of `all` (the buffer this mark was written to).
    fn cut(self, all: &Bytes) -> Frame {
        // SAFETY: every offset was the buffer's length between two `push_str`/`push` calls on
        // a `String`, so each is a char boundary and each range is valid UTF-8.
        let (combined, raw) = unsafe {
            (
                Utf8Bytes::from_bytes_unchecked(all.slice(self.start..self.end)),
                Utf8Bytes::from_bytes_unchecked(all.slice(self.raw_start..self.end - 1)),
            )
        };
        Frame {
            topic: self.topic,
            raw,
            combined,
        }
    }
}

/// The frames of one generation batch, written into one buffer: a batch costs one allocation
/// instead of three per frame, and each frame's two texts are slices of it.
#[derive(Debug, Default)]
pub(crate) struct FrameBatch {
    buf: String,
    marks: Vec<Mark>,
}

impl FrameBatch {
    /// Appends `raw` and its `{"stream":..,"data":..}` wrapper for `stream`.
    pub(crate) fn wrap(&mut self, topic: u32, stream: &str, raw: &str) {
        self.marks
            .push(Mark::write(&mut self.buf, topic, stream, raw));
    }

    /// Moves the frames written so far into `out`, in order, and starts an empty batch.
    pub(crate) fn finish(&mut self, out: &mut Vec<Frame>) {
        if self.marks.is_empty() {
            return;
        }
        let capacity = self.buf.capacity();
        let all = Bytes::from(std::mem::replace(
            &mut self.buf,
            String::with_capacity(capacity),
        ));
        out.extend(self.marks.drain(..).map(|m| m.cut(&all)));
    }
}

/// "00" to "99": two decimal digits per table lookup.
const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

/// Writes the digits of `v` at the end of `buf`, two at a time; returns where they start.
fn digits_into(buf: &mut [u8], mut v: u64) -> usize {
    let mut i = buf.len();
    while v >= 100 {
        // below 100, so the index is below 200 and the narrowing loses nothing
        let pair = (v % 100) as usize * 2;
        v /= 100;
        i -= 2;
        buf[i..i + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    }
    if v >= 10 {
        let pair = v as usize * 2;
        i -= 2;
        buf[i..i + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    } else {
        i -= 1;
        // a single digit
        buf[i] = b'0' + v as u8;
    }
    i
}

/// Appends ASCII digits (and '.') held in `bytes` with one copy and no UTF-8 check (the
/// check was 2.8 % of the simulator's flat-out profile).
fn push_ascii(out: &mut String, bytes: &[u8]) {
    debug_assert!(bytes.iter().all(|b| b.is_ascii_digit() || *b == b'.'));
    // SAFETY: callers pass only bytes from `PAIRS`, `b'0' + digit` and `b'.'`: ASCII, so
    // the string stays valid UTF-8.
    unsafe { out.as_mut_vec() }.extend_from_slice(bytes);
}

/// Appends the decimal digits of `v` without going through `core::fmt`.
pub(crate) fn push_u64(out: &mut String, v: u64) {
    let mut buf = [0u8; 20];
    let at = digits_into(&mut buf, v);
    push_ascii(out, &buf[at..]);
}

/// Appends a non-negative amount given in units of 1e-8 as "I.FFFFFFFF".
pub(crate) fn push_e8(out: &mut String, v: i64) {
    let v = v.max(0).unsigned_abs();
    let scale = SCALE.unsigned_abs();
    // 20 integer digits at most, the point, 8 decimals
    let mut buf = [b'0'; 29];
    let frac_at = buf.len() - DECIMALS as usize;
    // the fraction is padded to its 8 places: digits_into writes from the right, the
    // zeros it leaves to the left of a short fraction are the padding
    digits_into(&mut buf, v % scale);
    buf[frac_at - 1] = b'.';
    let at = digits_into(&mut buf[..frac_at - 1], v / scale);
    push_ascii(out, &buf[at..]);
}

/// Quoted fixed-decimal string, as every Binance price and quantity is a JSON string.
pub(crate) fn push_quoted_e8(out: &mut String, v: i64) {
    out.push('"');
    push_e8(out, v);
    out.push('"');
}

fn push_levels(out: &mut String, levels: &[Level], tick_e8: i64, step_e8: i64) {
    out.push('[');
    for (i, &(px, qty)) in levels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('[');
        push_quoted_e8(out, px * tick_e8);
        out.push(',');
        push_quoted_e8(out, qty * step_e8);
        out.push(']');
    }
    out.push(']');
}

/// Book side list for REST snapshots (same shape as diff levels).
pub(crate) fn push_book_side(out: &mut String, levels: &[Level], tick_e8: i64, step_e8: i64) {
    push_levels(out, levels, tick_e8, step_e8);
}

/// Grid of one symbol, needed to turn ticks and lots back into decimal strings, and the
/// wire flavour: futures frames carry `e`/`E`/`T` everywhere and `pu` on diffs, COIN-M adds
/// the pair `ps` (exchanges.md 3.3 and 3.6).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Grid<'a> {
    pub symbol: &'a str,
    pub tick_e8: i64,
    pub step_e8: i64,
    pub futures: bool,
    /// COIN-M pair (`ps`), `None` elsewhere.
    pub pair: Option<&'a str>,
}

impl Grid<'_> {
    fn push_pair(&self, out: &mut String) {
        if let Some(p) = self.pair {
            out.push_str(",\"ps\":\"");
            out.push_str(p);
            out.push('"');
        }
    }
}

/// Futures matching time: a few ms before the event time, as in the captures (E - T is
/// 2..110 ms); derived from an id so frames stay deterministic.
pub(crate) fn tx_ms(now_ms: u64, id: u64) -> u64 {
    now_ms.saturating_sub(1 + id % 20)
}

/// Writes `{"e":"trade",...}` for fill `i` of the step's taker order.
pub(crate) fn trade(out: &mut String, g: Grid<'_>, step: &StepOut, i: usize, now_ms: u64) {
    let Some(t) = step.trade.as_ref() else { return };
    let Some(&(id, qty)) = step.fills.get(i) else {
        return;
    };
    out.clear();
    out.push_str("{\"e\":\"trade\",\"E\":");
    push_u64(out, now_ms);
    out.push_str(",\"s\":\"");
    out.push_str(g.symbol);
    out.push_str("\",\"t\":");
    push_u64(out, id);
    out.push_str(",\"p\":");
    push_quoted_e8(out, t.price * g.tick_e8);
    out.push_str(",\"q\":");
    push_quoted_e8(out, qty * g.step_e8);
    out.push_str(",\"T\":");
    push_u64(out, if g.futures { tx_ms(now_ms, id) } else { now_ms });
    out.push_str(if t.buyer_maker {
        ",\"m\":true"
    } else {
        ",\"m\":false"
    });
    // futures: no `M`; an undocumented `X` (observed "MARKET", exchanges.md 3.3)
    out.push_str(if g.futures {
        ",\"X\":\"MARKET\"}"
    } else {
        ",\"M\":true}"
    });
}

/// Writes the `aggTrade` event that groups all fills of the step's taker order.
pub(crate) fn agg_trade(out: &mut String, g: Grid<'_>, step: &StepOut, now_ms: u64) {
    let Some(t) = step.trade.as_ref() else { return };
    let (Some(first), Some(last)) = (step.fills.first(), step.fills.last()) else {
        return;
    };
    let total: i64 = step.fills.iter().map(|f| f.1).sum();
    out.clear();
    out.push_str("{\"e\":\"aggTrade\",\"E\":");
    push_u64(out, now_ms);
    out.push_str(",\"s\":\"");
    out.push_str(g.symbol);
    out.push_str("\",\"a\":");
    push_u64(out, t.agg_id);
    out.push_str(",\"p\":");
    push_quoted_e8(out, t.price * g.tick_e8);
    out.push_str(",\"q\":");
    push_quoted_e8(out, total * g.step_e8);
    out.push_str(",\"f\":");
    push_u64(out, first.0);
    out.push_str(",\"l\":");
    push_u64(out, last.0);
    out.push_str(",\"T\":");
    push_u64(
        out,
        if g.futures {
            tx_ms(now_ms, t.agg_id)
        } else {
            now_ms
        },
    );
    out.push_str(if t.buyer_maker {
        ",\"m\":true"
    } else {
        ",\"m\":false"
    });
    out.push_str(if g.futures { "}" } else { ",\"M\":true}" });
}

/// Writes the `bookTicker` (no `e`/`E` on spot, exchanges.md 2.5; futures add `e`, `E`,
/// `T`, COIN-M `ps`).
pub(crate) fn book_ticker(out: &mut String, g: Grid<'_>, step: &StepOut, now_ms: u64) {
    let Some(top) = step.top.as_ref() else { return };
    out.clear();
    out.push_str(if g.futures {
        "{\"e\":\"bookTicker\",\"u\":"
    } else {
        "{\"u\":"
    });
    push_u64(out, top.update_id);
    out.push_str(",\"s\":\"");
    out.push_str(g.symbol);
    out.push('"');
    g.push_pair(out);
    out.push_str(",\"b\":");
    push_quoted_e8(out, top.bid.0 * g.tick_e8);
    out.push_str(",\"B\":");
    push_quoted_e8(out, top.bid.1 * g.step_e8);
    out.push_str(",\"a\":");
    push_quoted_e8(out, top.ask.0 * g.tick_e8);
    out.push_str(",\"A\":");
    push_quoted_e8(out, top.ask.1 * g.step_e8);
    if g.futures {
        out.push_str(",\"T\":");
        push_u64(out, tx_ms(now_ms, top.update_id));
        out.push_str(",\"E\":");
        push_u64(out, now_ms);
    }
    out.push('}');
}

/// Writes the `depthUpdate` diff of the step (bids best first, asks best first).
pub(crate) fn depth_update(out: &mut String, g: Grid<'_>, step: &StepOut, now_ms: u64) {
    out.clear();
    out.push_str("{\"e\":\"depthUpdate\",\"E\":");
    push_u64(out, now_ms);
    if g.futures {
        out.push_str(",\"T\":");
        push_u64(out, tx_ms(now_ms, step.last_id));
    }
    out.push_str(",\"s\":\"");
    out.push_str(g.symbol);
    out.push('"');
    g.push_pair(out);
    out.push_str(",\"U\":");
    push_u64(out, step.first_id);
    out.push_str(",\"u\":");
    push_u64(out, step.last_id);
    if g.futures {
        out.push_str(",\"pu\":");
        push_u64(out, step.prev_last_id);
    }
    out.push_str(",\"b\":");
    push_levels(out, &step.bids, g.tick_e8, g.step_e8);
    out.push_str(",\"a\":");
    push_levels(out, &step.asks, g.tick_e8, g.step_e8);
    out.push('}');
}

/// `serverShutdown` notice sent before the sim closes its connections (exchanges.md 2.4).
pub(crate) fn server_shutdown(now_ms: u64) -> Frame {
    let mut raw = String::with_capacity(48);
    raw.push_str("{\"e\":\"serverShutdown\",\"E\":");
    push_u64(&mut raw, now_ms);
    raw.push('}');
    let mut combined = String::with_capacity(80);
    combined.push_str("{\"stream\":\"!serverShutdown\",\"data\":");
    combined.push_str(&raw);
    combined.push('}');
    Frame::to_all(raw, combined)
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn test_frames_fixed_decimals() {
        let mut s = String::new();
        push_e8(&mut s, 2_712_345_000_000);
        assert_eq!(s, "27123.45000000");
        s.clear();
        push_e8(&mut s, 1);
        assert_eq!(s, "0.00000001");
        s.clear();
        push_e8(&mut s, 0);
        assert_eq!(s, "0.00000000");
        s.clear();
        push_u64(&mut s, u64::MAX);
        assert_eq!(s, u64::MAX.to_string());
    }

    #[test]
    fn the_pair_table_writers_agree_with_core_fmt() {
        let mut values: Vec<u64> = (0..=1_200).collect();
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..5_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            values.push(x >> (x % 64));
        }
        values.extend([
            9,
            10,
            99,
            100,
            101,
            99_999_999,
            100_000_000,
            u64::MAX / 2,
            u64::MAX,
        ]);
        let mut s = String::new();
        for &v in &values {
            s.clear();
            push_u64(&mut s, v);
            assert_eq!(s, v.to_string());
            let e8 = i64::try_from(v).unwrap_or(i64::MAX);
            s.clear();
            push_e8(&mut s, e8);
            assert_eq!(s, format!("{}.{:08}", e8 / SCALE, e8 % SCALE), "{e8}");
        }
        s.clear();
        push_e8(&mut s, -5);
        assert_eq!(s, "0.00000000", "negative amounts are written as zero");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_cuts_each_frame_whole_from_one_buffer() {
        let frames = [
            (3u32, "btcusdt@trade", r#"{"e":"trade","p":"1.5"}"#),
            (
                7,
                "ethusdt@depth@100ms",
                r#"{"e":"depthUpdate","note":"é€😀"}"#,
            ),
            (TOPIC_ALL, "x", "{}"),
        ];
        let mut batch = FrameBatch::default();
        let mut out = Vec::new();
        batch.finish(&mut out);
        assert!(out.is_empty(), "an empty batch yields nothing");
        for (topic, stream, raw) in frames {
            batch.wrap(topic, stream, raw);
        }
        batch.finish(&mut out);
        assert_eq!(out.len(), frames.len());
        for (frame, (topic, stream, raw)) in out.iter().zip(frames) {
            assert_eq!(frame.topic, topic);
            assert_eq!(frame.raw.as_str(), raw);
            let combined = format!("{{\"stream\":\"{stream}\",\"data\":{raw}}}");
            assert_eq!(frame.combined.as_str(), combined);
            let single = Frame::wrap(topic, stream, raw);
            assert_eq!(single.combined.as_str(), combined);
            assert_eq!(single.raw.as_str(), raw);
        }
        // the next batch starts empty and the frames already cut stay intact
        batch.wrap(1, "a", "{\"b\":1}");
        let mut next = Vec::new();
        batch.finish(&mut next);
        assert_eq!(next.len(), 1);
        assert_eq!(
            next[0].combined.as_str(),
            "{\"stream\":\"a\",\"data\":{\"b\":1}}"
        );
        assert_eq!(out[0].raw.as_str(), frames[0].2);
    }
}
