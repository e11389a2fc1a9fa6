//! OKX book integrity rules (exchanges.md §4.5): the `prevSeqId`/`seqId` chain, the REST
//! bootstrap alignment, and the CRC32 checksum of the top 25 levels over the exact wire
//! strings, kept in a [`WireBook`] beside the f64 book that readers see.
//!
//! The checksum must be computed from the strings as sent (`"30316"` stays `30316`; through
//! f64 it would become `30316.0` and every check would fail), so each level keeps its price
//! and size text. Strings up to 22 bytes live inline (every price and size seen so far), so a
//! level costs no heap allocation.

use crate::model::{Ladder, Rung};

/// A wire number kept verbatim: inline up to [`WireStr::INLINE`] bytes, boxed beyond.
/// Two are equal when their texts are (bytes past an inline text's length do not count).
#[derive(Debug, Clone)]
pub enum WireStr {
    /// Short text (the normal case): length and bytes.
    Inline(u8, [u8; WireStr::INLINE]),
    /// Longer text.
    Heap(Box<str>),
}

impl WireStr {
    /// Bytes stored inline.
    pub const INLINE: usize = 22;

    /// Keep `s` verbatim.
    #[must_use]
    pub fn new(s: &str) -> Self {
        let b = s.as_bytes();
        match u8::try_from(b.len()) {
            Ok(n) if b.len() <= Self::INLINE => {
                let mut buf = [0u8; Self::INLINE];
                if let Some(dst) = buf.get_mut(..b.len()) {
                    dst.copy_from_slice(b);
                }
                Self::Inline(n, buf)
            }
            _ => Self::Heap(s.into()),
        }
    }

    /// Replace the text with `s`, in place when both are inline: copying into the slot
    /// directly, instead of building a new value and moving it in, avoids reading back
    /// bytes just written (a store-forwarding stall that profiling showed in the update path).
    pub fn assign(&mut self, s: &str) {
        let b = s.as_bytes();
        if let Self::Inline(n, buf) = self {
            if let (Ok(len), Some(dst)) = (u8::try_from(b.len()), buf.get_mut(..b.len())) {
                dst.copy_from_slice(b);
                *n = len;
                return;
            }
        }
        *self = Self::new(s);
    }

    /// The text as bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Self::Inline(n, buf) => buf.get(..usize::from(*n)).unwrap_or_default(),
            Self::Heap(s) => s.as_bytes(),
        }
    }
}

impl PartialEq for WireStr {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for WireStr {}

/// A level's wire strings (price and size, as sent).
#[derive(Debug, Clone, PartialEq)]
pub struct WireLevel {
    /// Price as sent.
    pub px_s: WireStr,
    /// Size as sent (contracts for derivatives).
    pub sz_s: WireStr,
}

/// A sorted entry: the parsed price (the key) and where its strings live.
#[derive(Debug, Clone, Copy)]
struct Key {
    px: f64,
    slot: u32,
}

/// One side: keys sorted so that the best level is the last element, strings in a slab.
///
/// Deep books (400 levels) change anywhere, so inserts and removals shift the sorted part:
/// keeping it at 16 bytes an entry (the strings stay put in the slab), in the same chunked
/// [`Ladder`] as the f64 book's, keeps those shifts as short as the f64 book's own, and the
/// positions the same.
#[derive(Debug, Default, Clone)]
struct Side {
    keys: Ladder<Key>,
    slab: Vec<WireLevel>,
    free: Vec<u32>,
}

impl Side {
    fn clear(&mut self) {
        self.keys.clear();
        self.slab.clear();
        self.free.clear();
    }

    #[inline]
    fn set(&mut self, pos: Result<Rung, Rung>, px: f64, px_s: &str, sz_s: &str, remove: bool) {
        match pos {
            Ok(i) if remove => {
                if let Some(k) = self.keys.remove(i) {
                    self.free.push(k.slot);
                }
            }
            Ok(i) => {
                let slot = self.keys.get(i).map_or(usize::MAX, |k| k.slot as usize);
                if let Some(l) = self.slab.get_mut(slot) {
                    l.sz_s.assign(sz_s);
                }
            }
            Err(i) if !remove => {
                let slot = match self.free.pop() {
                    Some(s) => {
                        if let Some(l) = self.slab.get_mut(s as usize) {
                            l.px_s.assign(px_s);
                            l.sz_s.assign(sz_s);
                        }
                        s
                    }
                    None => {
                        self.slab.push(WireLevel {
                            px_s: WireStr::new(px_s),
                            sz_s: WireStr::new(sz_s),
                        });
                        u32::try_from(self.slab.len() - 1).unwrap_or(u32::MAX)
                    }
                };
                self.keys.insert(i, Key { px, slot });
            }
            Err(_) => {}
        }
    }

    /// Levels from the best, at most `n`.
    fn best(&self, n: usize) -> impl Iterator<Item = &WireLevel> {
        self.keys
            .iter_rev()
            .take(n)
            .filter_map(|k| self.slab.get(k.slot as usize))
    }
}

/// The book as the venue wrote it, for the checksum.
#[derive(Debug, Default, Clone)]
pub struct WireBook {
    /// Ascending prices: best bid last.
    bids: Side,
    /// Descending prices: best ask last.
    asks: Side,
}

/// Levels per side covered by the OKX checksum.
pub const CHECKSUM_DEPTH: usize = 25;

impl WireBook {
    /// Remove every level.
    pub fn clear(&mut self) {
        self.bids.clear();
        self.asks.clear();
    }

    /// Set a bid level (`remove` when the size is zero; removing an absent level is normal).
    /// Returns the level's position in the sorted side, which is its position in an f64
    /// book kept in step (a hint for [`OrderBook::set_level_near`](crate::model::OrderBook)).
    pub fn set_bid(&mut self, px: f64, px_s: &str, sz_s: &str, remove: bool) -> Rung {
        self.set_level(true, None, px, px_s, sz_s, remove)
    }

    /// Set an ask level (see [`WireBook::set_bid`]).
    pub fn set_ask(&mut self, px: f64, px_s: &str, sz_s: &str, remove: bool) -> Rung {
        self.set_level(false, None, px, px_s, sz_s, remove)
    }

    /// [`WireBook::set_bid`] (`bid`) or [`WireBook::set_ask`] for levels given best first:
    /// `from` is the position returned for the level before on the same side (see
    /// [`OrderBook::set_level`](crate::model::OrderBook)).
    pub fn set_level(
        &mut self,
        bid: bool,
        from: Option<Rung>,
        px: f64,
        px_s: &str,
        sz_s: &str,
        remove: bool,
    ) -> Rung {
        // bids ascend and asks descend in storage, so the asks compare reversed
        let (side, pos) = if bid {
            let pos = self.bids.keys.search_back(from, |k| k.px.total_cmp(&px));
            (&mut self.bids, pos)
        } else {
            let pos = self.asks.keys.search_back(from, |k| px.total_cmp(&k.px));
            (&mut self.asks, pos)
        };
        side.set(pos, px, px_s, sz_s, remove);
        pos.unwrap_or_else(|i| i)
    }

    /// Number of (bid, ask) levels.
    #[must_use]
    pub fn depth(&self) -> (usize, usize) {
        (self.bids.keys.len(), self.asks.keys.len())
    }

    /// The checksum string `bid1px:bid1sz:ask1px:ask1sz:...` over the best 25 levels per
    /// side, skipping missing entries of a shorter side, written into `buf`.
    pub fn checksum_string(&self, buf: &mut Vec<u8>) {
        buf.clear();
        // room for every inline piece at full width, so `put` never reallocates mid-string
        buf.reserve(CHECKSUM_DEPTH * 4 * (WireStr::INLINE + 1));
        let mut bids = self.bids.best(CHECKSUM_DEPTH);
        let mut asks = self.asks.best(CHECKSUM_DEPTH);
        for _ in 0..CHECKSUM_DEPTH {
            let (b, a) = (bids.next(), asks.next());
            if b.is_none() && a.is_none() {
                break;
            }
            for l in [b, a].into_iter().flatten() {
                put(buf, &l.px_s);
                put(buf, &l.sz_s);
            }
        }
        buf.pop(); // the trailing separator
    }

    /// The OKX checksum of this book: CRC32 (IEEE) of the checksum string, as signed 32 bits.
    pub fn checksum(&self, buf: &mut Vec<u8>) -> i32 {
        self.checksum_string(buf);
        // the venue sends the unsigned CRC reinterpreted as a signed 32-bit integer
        i32::from_ne_bytes(crc32fast::hash(buf).to_ne_bytes())
    }
}

/// Append `s` and a `:` separator.
///
/// Inline text is copied at its full fixed width and the tail cut off: a constant-size copy
/// compiles to a few vector moves, where a copy of the exact (variable) length is a call into
/// libc's memmove per piece, which profiling showed as a third of the checksum's time.
#[inline]
fn put(buf: &mut Vec<u8>, s: &WireStr) {
    match s {
        WireStr::Inline(n, bytes) => {
            let start = buf.len();
            buf.extend_from_slice(bytes);
            buf.truncate(start + usize::from(*n));
        }
        WireStr::Heap(h) => buf.extend_from_slice(h.as_bytes()),
    }
    buf.push(b':');
}

/// Decision for one incremental update against the last applied `seqId`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqVerdict {
    /// `prevSeqId` equals the last applied `seqId` (a heartbeat or a reset passes too).
    Apply,
    /// A message was lost: (expected `prevSeqId`, received `prevSeqId`).
    Gap(i64, i64),
}

/// The chain rule: an update applies iff `prevSeqId == last seqId`. `seqId` may stay equal
/// (the ~60 s empty heartbeat) or drop below `prevSeqId` (the reset after maintenance), so it
/// is never required to increase. Frames without sequence ids (captures before 2022-06) pass:
/// their checksum is the proof.
#[must_use]
pub fn next(last: Option<i64>, prev: Option<i64>) -> SeqVerdict {
    match (last, prev) {
        (Some(l), Some(p)) if p != l => SeqVerdict::Gap(l, p),
        _ => SeqVerdict::Apply,
    }
}

/// Decision for a buffered update when a REST snapshot with `seqId` `snap` arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootVerdict {
    /// Already contained in the snapshot (`seqId <= snap`).
    Drop,
    /// The first update after the snapshot (`prevSeqId <= snap < seqId`).
    Apply,
    /// The snapshot and the stream do not meet: (snapshot seqId, update prevSeqId).
    Gap(i64, i64),
}

/// The REST bootstrap rule of the announced no-snapshot procedure (exchanges.md §4.5).
#[must_use]
pub fn bootstrap_first(snap: i64, prev: i64, seq: i64) -> BootVerdict {
    if seq <= snap {
        BootVerdict::Drop
    } else if prev <= snap {
        BootVerdict::Apply
    } else {
        BootVerdict::Gap(snap, prev)
    }
}

/// A REST snapshot older than the first buffered update's `prevSeqId` must be fetched again.
#[must_use]
pub fn snapshot_too_old(snap: i64, first_prev: i64) -> bool {
    snap < first_prev
}

#[cfg(test)]
mod tests {
    use super::*;

    fn book(bids: &[(&str, &str)], asks: &[(&str, &str)]) -> WireBook {
        let mut b = WireBook::default();
        for (p, s) in bids {
            b.set_bid(p.parse().unwrap(), p, s, false);
        }
        for (p, s) in asks {
            b.set_ask(p.parse().unwrap(), p, s, false);
        }
        b
    }

    fn as_str(b: &WireBook) -> String {
        let mut buf = Vec::new();
        b.checksum_string(&mut buf);
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn doc_test_vectors() {
        // exchanges.md §4.5 test vectors
        let b = book(
            &[("3366.1", "7"), ("3366", "6")],
            &[("3366.8", "9"), ("3368", "8")],
        );
        assert_eq!(as_str(&b), "3366.1:7:3366.8:9:3366:6:3368:8");
        assert_eq!(b.checksum(&mut Vec::new()), -1_881_014_294);
        let b = book(
            &[("3366.1", "7")],
            &[("3366.8", "9"), ("3368", "8"), ("3372", "8")],
        );
        assert_eq!(as_str(&b), "3366.1:7:3366.8:9:3368:8:3372:8");
        assert_eq!(b.checksum(&mut Vec::new()), 831_078_360);
    }

    #[test]
    fn worked_example_from_the_capture() {
        // the 25+25 check string of exchanges.md §4.5 (BTC-USD-220527, first update)
        let s = "30233.6:3:30238.8:2:30219.4:104:30249.5:50:30219.3:1520:30249.6:29:30212.3:171:30261:4:30209.8:5:30261.1:218:30205.8:50:30261.5:215:30204.1:1730:30261.7:172:30202.1:30:30264.5:11:30185.4:11:30265.9:249:30184:1537:30268.4:40:30182.6:452:30280.8:97:30181.3:18:30280.9:217:30181.2:19:30283.1:120:30180.7:249:30291.1:442:30168.9:20:30310.3:19:30165.8:3078:30316:81:30145.8:4770:30316.1:1:30145.3:120:30323.1:373:30133.2:12:30325:17:30130.3:1:30371.7:202:30130.1:236:30371.8:10:30129.9:442:30418.3:374:30117.7:81:30426.3:508:30117.6:369:30439.6:1539:30074.9:202:30449.2:29";
        let parts: Vec<&str> = s.split(':').collect();
        let mut b = WireBook::default();
        for (i, pair) in parts.chunks(2).enumerate() {
            let (p, q) = (pair[0], pair[1]);
            if i % 2 == 0 {
                b.set_bid(p.parse().unwrap(), p, q, false);
            } else {
                b.set_ask(p.parse().unwrap(), p, q, false);
            }
        }
        // deeper levels beyond 25 must not change the checksum
        b.set_bid(1.0, "1", "9", false);
        b.set_ask(99999.0, "99999", "9", false);
        assert_eq!(as_str(&b), s);
        assert_eq!(b.checksum(&mut Vec::new()), -914_047_754);
        // an update of a known price replaces the size string only
        b.set_ask(30316.0, "30316.0", "81", false);
        assert_eq!(b.checksum(&mut Vec::new()), -914_047_754);
        // strings re-formatted through f64 (`30316` -> `30316.0`) break it: keep the wire text
        let mut f = WireBook::default();
        for (i, pair) in parts.chunks(2).enumerate() {
            let (p, q): (f64, f64) = (pair[0].parse().unwrap(), pair[1].parse().unwrap());
            let (ps, qs) = (format!("{p:?}"), format!("{q:?}"));
            if i % 2 == 0 {
                f.set_bid(p, &ps, &qs, false);
            } else {
                f.set_ask(p, &ps, &qs, false);
            }
        }
        assert_ne!(f.checksum(&mut Vec::new()), -914_047_754);
    }

    #[test]
    fn levels_update_and_delete() {
        let mut b = book(&[("10", "1"), ("11", "2")], &[("12", "3")]);
        b.set_bid(11.0, "11", "5", false);
        b.set_bid(10.0, "10", "0", true);
        b.set_ask(13.0, "13", "0", true); // absent: no-op
        assert_eq!(as_str(&b), "11:5:12:3");
        assert_eq!(b.depth(), (1, 1));
        // a removed level's slot is reused by the next insert
        b.set_bid(9.0, "9", "4", false);
        b.set_ask(12.5, "12.5", "1", false);
        b.set_ask(12.0, "12", "0", true);
        b.set_ask(13.0, "13", "2", false);
        assert_eq!(as_str(&b), "11:5:12.5:1:9:4:13:2");
        assert_eq!(b.depth(), (2, 2));
        b.clear();
        assert_eq!(as_str(&b), "");
        let long = "1234567890.12345678901234";
        assert!(matches!(WireStr::new(long), WireStr::Heap(_)));
        assert_eq!(WireStr::new(long).as_bytes(), long.as_bytes());
        assert_eq!(WireStr::new("30316").as_bytes(), b"30316");
        // in-place replacement: shorter, longer, to and from the heap; equality by text
        let mut w = WireStr::new("30316.25");
        w.assign("7");
        assert_eq!(w.as_bytes(), b"7");
        assert_eq!(w, WireStr::new("7"));
        w.assign(long);
        assert!(matches!(w, WireStr::Heap(_)));
        assert_eq!(w.as_bytes(), long.as_bytes());
        w.assign("12.5");
        assert_eq!(w, WireStr::new("12.5"));
        assert_ne!(w, WireStr::new("12.50"));
    }

    #[test]
    fn chain_follows_the_documented_example() {
        // snapshot (prev -1, seq 10) -> 10->15 -> heartbeat 15->15 -> reset 15->3 -> 3->5
        assert_eq!(next(Some(10), Some(10)), SeqVerdict::Apply);
        assert_eq!(next(Some(15), Some(15)), SeqVerdict::Apply); // heartbeat 15 -> 15
        assert_eq!(next(Some(15), Some(15)), SeqVerdict::Apply); // reset 15 -> 3: prev is 15
        assert_eq!(next(Some(3), Some(3)), SeqVerdict::Apply); // then 3 -> 5
        assert_eq!(next(Some(15), Some(14)), SeqVerdict::Gap(15, 14));
        assert_eq!(next(None, None), SeqVerdict::Apply); // 2022 frames: checksum only
    }

    #[test]
    fn bootstrap_alignment() {
        assert!(snapshot_too_old(99, 100));
        assert!(!snapshot_too_old(100, 100));
        assert_eq!(bootstrap_first(100, 90, 100), BootVerdict::Drop);
        assert_eq!(bootstrap_first(100, 100, 107), BootVerdict::Apply);
        assert_eq!(bootstrap_first(100, 95, 107), BootVerdict::Apply);
        assert_eq!(bootstrap_first(100, 101, 107), BootVerdict::Gap(100, 101));
    }
}
