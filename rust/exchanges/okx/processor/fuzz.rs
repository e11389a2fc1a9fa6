//! Property tests: no input makes the OKX processor panic, every frame is accounted for
//! (handled, or counted as an error), and the maintained book keeps its invariants whatever
//! arrives. A bounded run executes with `cargo test`.

use proptest::prelude::*;

use super::*;
use crate::exchanges::okx::connector::BookChannel;

/// Real frames (shared/data/captures/OKX.ws.1.0, books trimmed) plus control replies and a
/// chained update, as mutation seeds.
const SEEDS: [&str; 7] = [
    r#"{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"snapshot","data":[{"asks":[["30249.4","1","0","1"],["30261","4","0","1"]],"bids":[["30182.6","452","0","1"],["30180","3","0","2"]],"ts":"1652459225464","checksum":0,"prevSeqId":-1,"seqId":10}]}"#,
    r#"{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"update","data":[{"asks":[["30249.4","0","0","0"],["30310.3","19","0","1"]],"bids":[["30182.6","450","0","1"]],"ts":"1652459225564","checksum":0,"prevSeqId":10,"seqId":11}]}"#,
    r#"{"arg":{"channel":"trades","instId":"BTC-USDT"},"data":[{"instId":"BTC-USDT","tradeId":"338476307","px":"30236","sz":"0.0002","side":"buy","ts":"1652459224818"}]}"#,
    r#"{"arg":{"channel":"tickers","instId":"BTC-USDT"},"data":[{"instType":"SPOT","instId":"BTC-USDT","last":"30236","lastSz":"0.0002","askPx":"30228.7","askSz":"1.55896972","bidPx":"30228.6","bidSz":"0.23393","open24h":"29700.4","high24h":"31073","low24h":"28020.3","volCcy24h":"525802090.62716611","vol24h":"17602.13085371","ts":"1652459224956"}]}"#,
    r#"{"event":"subscribe","arg":{"channel":"books","instId":"BTC-USDT"}}"#,
    r#"{"event":"error","code":"60018","msg":"Wrong URL or channel:books,instId:XXX doesn't exist.","arg":{"channel":"books","instId":"XXX"}}"#,
    "pong",
];

fn fresh() -> OkxProcessor {
    let metas = vec![SymbolMeta::new(Venue::Okx, "BTC-USDT", "BTC-USDT", None)];
    let mut p = OkxProcessor::from_metas(
        &metas,
        Channels {
            ticker: true,
            ..Channels::ALL
        },
        BookChannel::Books,
    );
    // a live book, so updates exercise the chained path too
    let (mut out, mut act) = (Vec::new(), Vec::new());
    p.on_frame(SEEDS[0], 0, &mut out, &mut act);
    p
}

/// A mutation of one seed: truncate, overwrite a byte, insert bytes, or swap in digits.
fn mutated() -> impl Strategy<Value = Vec<u8>> {
    (
        0..SEEDS.len(),
        any::<u8>(),
        any::<usize>(),
        any::<usize>(),
        proptest::collection::vec(any::<u8>(), 0..8),
    )
        .prop_map(|(seed, op, at, len, bytes)| {
            let mut v = SEEDS[seed].as_bytes().to_vec();
            let at = at % (v.len() + 1);
            match op % 4 {
                0 => v.truncate(at),
                1 => {
                    if let Some(b) = v.get_mut(at) {
                        *b = bytes.first().copied().unwrap_or(b'9');
                    }
                }
                2 => {
                    let tail = v.split_off(at);
                    v.extend_from_slice(&bytes);
                    v.extend_from_slice(&tail);
                }
                _ => {
                    // numbers out of range, signs and exponents where numbers live
                    let digits = b"99999999999999999999999-1e400.";
                    for (i, b) in v.iter_mut().skip(at).take(len % 12).enumerate() {
                        if b.is_ascii_digit() {
                            *b = digits[i % digits.len()];
                        }
                    }
                }
            }
            v
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_frames_never_panic_and_are_accounted(frames in proptest::collection::vec(mutated(), 1..16)) {
        let mut p = fresh();
        let before = p.counters.messages;
        let (mut out, mut act) = (Vec::new(), Vec::new());
        for f in &frames {
            let text = String::from_utf8_lossy(f);
            p.on_frame(&text, 1, &mut out, &mut act);
        }
        prop_assert_eq!(p.counters.messages - before, frames.len() as u64);
        if let Some(book) = p.symbols()[0].book.as_ref() {
            prop_assert!(book.read().check_invariants().is_ok(), "{:?}", book.read().check_invariants());
        }
        // numbers out of range never reach an event
        for ev in &out {
            match ev {
                Event::Trade(t) => prop_assert!(t.price.is_finite() && t.price > 0.0 && t.size.is_finite() && t.size >= 0.0),
                Event::Book(d) => prop_assert!(d.bids.iter().chain(&d.asks).all(|(p, s)| p.is_finite() && *p > 0.0 && s.is_finite() && *s >= 0.0)),
                _ => {}
            }
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let mut p = fresh();
        let (mut out, mut act) = (Vec::new(), Vec::new());
        p.on_frame(&String::from_utf8_lossy(&bytes), 1, &mut out, &mut act);
        p.on_snapshot(0, &String::from_utf8_lossy(&bytes), 2, &mut out, &mut act);
        prop_assert!(p.counters.messages >= 1);
    }
}
