//! Hand-written reading of OKX book frames: the level arrays (`[["px","sz","0","n"],...]`)
//! and, on the hot path, a whole book frame in one pass (exchanges.md §4.4).
//!
//! A books update is mostly level arrays of short strings. Through serde, sonic-rs first
//! skips each array to capture it and the levels are then read again; this reader walks the
//! frame once, in the compact form the venue writes. Anything it does not expect (whitespace,
//! another key, an escape) makes it give up, and the caller parses the frame with sonic-rs:
//! the fast path never decides what a frame means, it only reads the common form faster.

use super::messages::{OkxArg, OkxBookData, OkxBookFrame, OkxLevel, OkxLevels};

/// Index of the closing quote of a string whose text starts at `from`. Escapes are not
/// interpreted: OKX numbers have none, and a string with a backslash never parses as a
/// number, so such a level ends up malformed either way.
#[inline]
pub(crate) fn quote_end(b: &[u8], from: usize) -> Option<usize> {
    b.get(from..)?
        .iter()
        .position(|&c| c == b'"')
        .map(|n| from + n)
}

/// Iterator over a raw level array (see [`OkxLevels`]).
#[derive(Debug)]
pub struct LevelIter<'s> {
    s: &'s str,
    i: usize,
    done: bool,
}

impl<'s> LevelIter<'s> {
    pub(crate) fn new(s: &'s str) -> Self {
        let mut it = Self {
            s,
            i: 0,
            done: false,
        };
        it.ws();
        if it.peek() == Some(b'[') {
            it.i += 1;
            it.ws();
            if it.peek() == Some(b']') {
                it.i += 1;
                it.done = true;
            }
        } else {
            // `null` (an absent side): no levels; anything else reads as one malformed item
            it.done = it.s.trim() == "null";
            it.i = it.s.len();
        }
        it
    }

    #[inline]
    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.i).copied()
    }

    #[inline]
    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\n' | b'\r' | b'\t')) {
            self.i += 1;
        }
    }

    #[inline]
    fn eat(&mut self, c: u8) -> Option<()> {
        self.ws();
        (self.peek()? == c).then(|| self.i += 1)
    }

    #[inline]
    fn string(&mut self) -> Option<&'s str> {
        self.eat(b'"')?;
        let start = self.i;
        let rest = self.s.as_bytes().get(start..)?;
        let len = rest.iter().position(|&b| b == b'"' || b == b'\\')?;
        if rest.get(len) != Some(&b'"') {
            return None; // an escape: not a number OKX would send
        }
        self.i = start + len + 1;
        self.s.get(start..start + len)
    }

    /// Skips one scalar after the size (`"0"`, `"13"`, or a bare number).
    fn skip_scalar(&mut self) -> Option<()> {
        self.ws();
        if self.peek()? == b'"' {
            return self.string().map(|_| ());
        }
        let start = self.i;
        while matches!(self.peek(), Some(b) if b != b',' && b != b']' && !b.is_ascii_whitespace()) {
            self.i += 1;
        }
        (self.i > start).then_some(())
    }

    fn level(&mut self) -> Option<OkxLevel<'s>> {
        let start = self.i;
        if let Some(l) = self.level_compact() {
            return Some(l);
        }
        self.i = start;
        self.level_spaced()
    }

    /// The venue's own compact form `["px","sz","0","n"]` followed by `,` or `]`, read
    /// without whitespace handling; anything else falls back to [`Self::level_spaced`].
    #[inline]
    fn level_compact(&mut self) -> Option<OkxLevel<'s>> {
        let b = self.s.as_bytes();
        let mut i = self.i;
        if b.get(i..i + 2)? != b"[\"" {
            return None;
        }
        let px_end = quote_end(b, i + 2)?;
        if b.get(px_end + 1..px_end + 3)? != b",\"" {
            return None;
        }
        let sz_end = quote_end(b, px_end + 3)?;
        let (px, sz) = (self.s.get(i + 2..px_end)?, self.s.get(px_end + 3..sz_end)?);
        i = sz_end + 1;
        loop {
            match *b.get(i)? {
                b']' => break,
                b',' if b.get(i + 1) == Some(&b'"') => i = quote_end(b, i + 2)? + 1,
                _ => return None,
            }
        }
        match *b.get(i + 1)? {
            b',' => {}
            b']' => self.done = true,
            _ => return None,
        }
        self.i = i + 2;
        Some(OkxLevel { px, sz })
    }

    fn level_spaced(&mut self) -> Option<OkxLevel<'s>> {
        self.eat(b'[')?;
        let px = self.string()?;
        self.eat(b',')?;
        let sz = self.string()?;
        loop {
            self.ws();
            match self.peek()? {
                b']' => {
                    self.i += 1;
                    break;
                }
                b',' => {
                    self.i += 1;
                    self.skip_scalar()?;
                }
                _ => return None,
            }
        }
        self.ws();
        match self.peek()? {
            b',' => self.i += 1,
            b']' => {
                self.i += 1;
                self.done = true;
            }
            _ => return None,
        }
        Some(OkxLevel { px, sz })
    }
}

impl LevelIter<'_> {
    /// Bytes read so far: after the last level, the whole array.
    pub(crate) fn consumed(&self) -> usize {
        self.i
    }
}

impl<'s> Iterator for LevelIter<'s> {
    /// A level, or `None` once where the text is malformed (iteration then ends).
    type Item = Option<OkxLevel<'s>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let level = self.level();
        if level.is_none() {
            self.done = true;
        }
        Some(level)
    }
}

/// A cursor over a frame in the compact form (no whitespace).
struct Cur<'s> {
    s: &'s str,
    i: usize,
}

impl<'s> Cur<'s> {
    #[inline]
    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.i).copied()
    }

    #[inline]
    fn eat(&mut self, c: u8) -> Option<()> {
        (self.peek()? == c).then(|| self.i += 1)
    }

    #[inline]
    fn string(&mut self) -> Option<&'s str> {
        self.eat(b'"')?;
        let end = quote_end(self.s.as_bytes(), self.i)?;
        let v = self.s.get(self.i..end)?;
        self.i = end + 1;
        Some(v)
    }

    /// `"key":`
    #[inline]
    fn key(&mut self) -> Option<&'s str> {
        let k = self.string()?;
        self.eat(b':')?;
        Some(k)
    }

    fn int(&mut self) -> Option<i64> {
        let neg = self.eat(b'-').is_some();
        let start = self.i;
        let mut v: i64 = 0;
        while let Some(d) = self.peek().filter(u8::is_ascii_digit) {
            v = v.checked_mul(10)?.checked_add(i64::from(d - b'0'))?;
            self.i += 1;
        }
        (self.i > start).then_some(if neg { -v } else { v })
    }

    /// `,` before another member, or the closing `c` (true).
    #[inline]
    fn next_or_close(&mut self, c: u8) -> Option<bool> {
        match self.peek()? {
            b',' => {
                self.i += 1;
                Some(false)
            }
            x if x == c => {
                self.i += 1;
                Some(true)
            }
            _ => None,
        }
    }

    /// A level array, read into [`OkxLevels`] so that nobody reads it twice.
    fn levels(&mut self) -> Option<OkxLevels<'s>> {
        let rest = self.s.get(self.i..)?;
        let mut it = LevelIter::new(rest);
        let mut read = Vec::with_capacity(8);
        for level in it.by_ref() {
            read.push(level?);
        }
        self.i += it.consumed();
        Some(OkxLevels::from_read(read))
    }

    fn arg(&mut self) -> Option<OkxArg<'s>> {
        self.eat(b'{')?;
        let mut arg = OkxArg {
            channel: "",
            inst_id: None,
            inst_type: None,
        };
        loop {
            match self.key()? {
                "channel" => arg.channel = self.string()?,
                "instId" => arg.inst_id = Some(self.string()?),
                "instType" => arg.inst_type = Some(self.string()?),
                _ => return None,
            }
            if self.next_or_close(b'}')? {
                return Some(arg);
            }
        }
    }

    fn data(&mut self) -> Option<OkxBookData<'s>> {
        self.eat(b'{')?;
        let mut d = OkxBookData {
            asks: OkxLevels::default(),
            bids: OkxLevels::default(),
            ts: None,
            checksum: None,
            seq_id: None,
            prev_seq_id: None,
        };
        loop {
            match self.key()? {
                "asks" => d.asks = self.levels()?,
                "bids" => d.bids = self.levels()?,
                "ts" => d.ts = Some(self.string()?),
                "checksum" => d.checksum = Some(self.int()?),
                "seqId" => d.seq_id = Some(self.int()?),
                "prevSeqId" => d.prev_seq_id = Some(self.int()?),
                "instId" => {
                    self.string()?;
                }
                _ => return None,
            }
            if self.next_or_close(b'}')? {
                return Some(d);
            }
        }
    }
}

/// Reads a book frame written in the venue's compact form, or `None` (then parse it with
/// sonic-rs, which accepts every valid form and reports what is wrong).
#[must_use]
pub fn book_frame(frame: &str) -> Option<OkxBookFrame<'_>> {
    let mut c = Cur { s: frame, i: 0 };
    c.eat(b'{')?;
    let (mut arg, mut action, mut data) = (None, None, None);
    loop {
        match c.key()? {
            "arg" => arg = Some(c.arg()?),
            "action" => action = Some(c.string()?),
            "data" => {
                c.eat(b'[')?;
                let mut list = Vec::with_capacity(1);
                if c.eat(b']').is_none() {
                    loop {
                        list.push(c.data()?);
                        if c.next_or_close(b']')? {
                            break;
                        }
                    }
                }
                data = Some(list);
            }
            _ => return None,
        }
        if c.next_or_close(b'}')? {
            break;
        }
    }
    if c.i != frame.len() {
        return None;
    }
    Some(OkxBookFrame {
        arg: arg?,
        action,
        data: data?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn same(a: &OkxBookFrame<'_>, b: &OkxBookFrame<'_>) -> bool {
        fn lv(l: &OkxLevels<'_>) -> Vec<Option<(String, String)>> {
            l.iter()
                .map(|l| l.map(|l| (l.px.to_string(), l.sz.to_string())))
                .collect()
        }
        a.arg.channel == b.arg.channel
            && a.arg.inst_id == b.arg.inst_id
            && a.action == b.action
            && a.data.len() == b.data.len()
            && a.data.iter().zip(&b.data).all(|(x, y)| {
                lv(&x.asks) == lv(&y.asks)
                    && lv(&x.bids) == lv(&y.bids)
                    && (x.ts, x.checksum, x.seq_id, x.prev_seq_id)
                        == (y.ts, y.checksum, y.seq_id, y.prev_seq_id)
            })
    }

    #[test]
    fn every_book_frame_of_the_capture_reads_in_one_pass() {
        let dir = std::env::var_os("XTRADER_CAPTURES").map_or_else(
            || std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data/captures"),
            std::path::PathBuf::from,
        );
        let Ok(text) = std::fs::read_to_string(dir.join("OKX.ws.1.0")) else {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "captures missing in CI"
            );
            return;
        };
        let mut n = 0;
        for line in text
            .lines()
            .filter(|l| l.contains(r#""channel":"books""#) && l.contains("data"))
        {
            let f = line.split_once(": ").unwrap().1;
            let fast = book_frame(f).unwrap_or_else(|| panic!("fast path refused {f}"));
            assert!(same(&fast, &sonic_rs::from_str(f).unwrap()));
            n += 1;
        }
        assert_eq!(n, 290);
    }

    #[test]
    fn one_pass_reading_equals_sonic_on_every_form() {
        for f in [
            r#"{"arg":{"channel":"books","instId":"BTC-USD-220527"},"action":"update","data":[{"asks":[["30249.4","0","0","0"],["30261","4","0","1"]],"bids":[["30182.6","452","0","1"]],"ts":"1652459225464","checksum":-914047754}]}"#,
            r#"{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"snapshot","data":[{"asks":[],"bids":[],"ts":"1","checksum":0,"prevSeqId":-1,"seqId":123456}]}"#,
            r#"{"arg":{"channel":"bbo-tbt","instId":"BCH-USDT-SWAP"},"data":[{"asks":[["111.06","55154","0","2"]],"bids":[["111.05","57745","0","2"]],"ts":"1670324386802","seqId":363996337}]}"#,
            r#"{"arg":{"channel":"books5","instId":"A-B"},"data":[{"asks":[["2","1","0","1"]],"bids":[["1","1","0","1"]],"instId":"A-B","ts":"1","seqId":5}]}"#,
        ] {
            let fast = book_frame(f).unwrap_or_else(|| panic!("fast path refused {f}"));
            let slow: OkxBookFrame = sonic_rs::from_str(f).unwrap();
            assert!(same(&fast, &slow), "{f}");
        }
        // other forms are left to sonic-rs
        for f in [
            r#"{ "arg":{"channel":"books","instId":"A"},"data":[]}"#,
            r#"{"action":"update","data":[],"arg":{"channel":"books","instId":"A"},"x":1}"#,
            r#"{"arg":{"channel":"books","instId":"A"},"data":[{"asks":[["1","2"]]}]}x"#,
            r#"{"arg":{"channel":"books","instId":"A"},"data":[{"checksum":99999999999999999999}]}"#,
            r#"{"arg":{"channel":"books","instId":"A"},"data":[{"asks":[["1","2"]"#,
        ] {
            assert!(book_frame(f).is_none(), "{f}");
        }
        let reordered = r#"{"data":[{"bids":[["1","2","0","1"]],"seqId":3,"asks":[]}],"arg":{"instId":"A","channel":"books"},"action":"update"}"#;
        assert!(same(
            &book_frame(reordered).unwrap(),
            &sonic_rs::from_str(reordered).unwrap()
        ));
    }
}
