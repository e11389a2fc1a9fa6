//! Property tests: no input makes the OKX processor panic, every frame is accounted for
//! (handled, or counted as an error), and the maintained book keeps its invariants whatever
//! arrives. A bounded run executes with `cargo test`.

use proptest::prelude::*;

use super::*;
use crate::exchanges::fuzz_support::{check_frames, mutated_from};
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

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_frames_never_panic_and_are_accounted(frames in proptest::collection::vec(mutated_from(&SEEDS), 1..16)) {
        check_frames(&mut fresh(), &frames)?;
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
