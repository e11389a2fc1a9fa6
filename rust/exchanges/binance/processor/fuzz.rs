//! Property tests: no input makes the Binance processor panic (spot, USD-M and COIN-M
//! frames), and every frame is accounted for (handled, or counted as an error). A bounded
//! run executes with `cargo test`.

use proptest::prelude::*;

use super::*;
use crate::exchanges::fuzz_support::{check_frames, mutated_from};

/// Real frames (shared/data/captures/BINANCE.ws.1.0) plus control replies, as mutation seeds.
const SEEDS: [&str; 5] = [
    r#"{"stream":"nknusdt@depth@100ms","data":{"e":"depthUpdate","E":1633998512068,"s":"NKNUSDT","U":499869750,"u":499869752,"b":[["0.35130000","6195.00000000"],["0.34750000","5548.00000000"]],"a":[]}}"#,
    r#"{"stream":"nknusdt@aggTrade","data":{"e":"aggTrade","E":1633998523963,"s":"NKNUSDT","a":15683430,"p":"0.35280000","q":"58.00000000","f":19862790,"l":19862790,"T":1633998523963,"m":false,"M":true}}"#,
    r#"{"stream":"nknusdt@bookTicker","data":{"u":499869768,"s":"NKNUSDT","b":"0.35210000","B":"672.00000000","a":"0.35260000","A":"3199.00000000"}}"#,
    r#"{"stream":"nknusdt@trade","data":{"e":"trade","E":1,"s":"NKNUSDT","t":12345,"p":"0.001","q":"100","T":1,"m":true,"M":true}}"#,
    r#"{"result":null,"id":1}"#,
];

/// Futures frames (BINANCE_FUTURES / BINANCE_DELIVERY captures, and the documented mark
/// price and liquidation shapes), as mutation seeds for the futures processor.
const FUTURES_SEEDS: [&str; 4] = [
    r#"{"stream":"sushiusdt@depth@100ms","data":{"e":"depthUpdate","E":1626992741037,"T":1626992741024,"s":"SUSHIUSDT","U":600859599090,"u":600859600917,"pu":600859598061,"b":[["7.5040","813"],["7.6090","0"],["7.6110","2"]],"a":[["7.6150","1563"],["7.6220","3284"]]}}"#,
    r#"{"stream":"sushiusdt@aggTrade","data":{"e":"aggTrade","E":1626916405079,"a":7297361,"s":"SUSHIUSDT","p":"7.61","q":"60","f":11380895,"l":11380895,"T":1626916405049,"m":true}}"#,
    r#"{"stream":"sushiusdt@markPrice@1s","data":{"e":"markPriceUpdate","E":1562305380000,"s":"SUSHIUSDT","p":"7.6115","i":"7.6100","P":"7.6120","r":"0.00038167","T":1562306400000}}"#,
    r#"{"stream":"sushiusdt@forceOrder","data":{"e":"forceOrder","E":7,"o":{"s":"SUSHIUSDT","S":"SELL","o":"LIMIT","f":"IOC","q":"1","p":"7.5","ap":"7.55","X":"FILLED","l":"1","z":"1","T":6}}}"#,
];

fn fresh_futures() -> BinanceProcessor {
    let mut p = BinanceProcessor::new(
        Venue::BinanceUsdm,
        Market::Futures,
        &[("SUSHIUSDT".into(), "SUSHI-USDT-PERP".into())],
        Channels {
            funding: true,
            liquidations: true,
            ..Channels::ALL
        },
    );
    let (mut out, mut act) = (Vec::new(), Vec::new());
    p.on_frame(FUTURES_SEEDS[0], 0, &mut out, &mut act);
    p.on_snapshot(
        0,
        r#"{"lastUpdateId":600859600000,"E":1,"T":1,"bids":[["7.50","1"]],"asks":[["7.62","1"]]}"#,
        0,
        &mut out,
        &mut act,
    );
    p
}

fn fresh() -> BinanceProcessor {
    let mut p = BinanceProcessor::new(
        Venue::Binance,
        Market::Spot,
        &[("NKNUSDT".into(), "NKN-USDT".into())],
        Channels::ALL,
    );
    // make the book live so diffs exercise the chained path too
    let (mut out, mut act) = (Vec::new(), Vec::new());
    p.on_frame(SEEDS[0], 0, &mut out, &mut act);
    p.on_snapshot(
        0,
        r#"{"lastUpdateId":499869751,"bids":[["0.35","1"]],"asks":[["0.36","1"]]}"#,
        0,
        &mut out,
        &mut act,
    );
    p
}

fn mutated() -> impl Strategy<Value = Vec<u8>> {
    mutated_from(&SEEDS)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_frames_never_panic_and_are_accounted(frames in proptest::collection::vec(mutated(), 1..16)) {
        check_frames(&mut fresh(), &frames)?;
    }

    #[test]
    fn mutated_futures_frames_never_panic_and_are_accounted(frames in proptest::collection::vec(mutated_from(&FUTURES_SEEDS), 1..16)) {
        check_frames(&mut fresh_futures(), &frames)?;
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
