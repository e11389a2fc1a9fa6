//! Connector tests: URLs, routes, stream names, frames, weights, symbol forms.
use super::*;

fn metas(venue: Venue, n: usize, fmt: &str) -> Vec<Arc<SymbolMeta>> {
    (0..n)
        .map(|i| SymbolMeta::new(venue, &fmt.replace("{}", &i.to_string()), "x", None))
        .collect()
}

#[test]
fn builds_urls_streams_and_frames() {
    let c = BinanceConnector::new(
        Venue::Binance,
        Some("ws://127.0.0.1:9/"),
        None,
        1000,
        TradeStream::Trade,
    );
    assert_eq!(c.ws_url(Route::Unrouted), "ws://127.0.0.1:9/stream");
    assert_eq!(c.to_native("btc-usdt"), "BTCUSDT");
    let s = c.stream_names("BTCUSDT", Channels::ALL);
    assert_eq!(
        s,
        vec!["btcusdt@depth@100ms", "btcusdt@bookTicker", "btcusdt@trade"]
    );
    let f = c.subscribe_streams(&s, 1);
    assert_eq!(
        f,
        vec![
            r#"{"method":"SUBSCRIBE","params":["btcusdt@depth@100ms","btcusdt@bookTicker","btcusdt@trade"],"id":1}"#
        ]
    );
    assert_eq!(
        c.snapshot_url("BTCUSDT"),
        "https://api.binance.com/api/v3/depth?symbol=BTCUSDT&limit=1000"
    );
    assert_eq!(c.snapshot_weight(), 50);
    let urls = c.instruments_urls(&["A".into(), "B".into()]);
    assert!(urls[0].ends_with("symbols=%5B%22A%22%2C%22B%22%5D"));
    assert_eq!(urls[1], "https://api.binance.com/api/v3/exchangeInfo");
    let us = BinanceConnector::new(Venue::BinanceUs, None, None, 100, TradeStream::AggTrade);
    assert_eq!(
        us.ws_url(Route::Unrouted),
        "wss://stream.binance.us:9443/stream"
    );
    let many: Vec<String> = (0..450).map(|i| format!("s{i}@trade")).collect();
    assert_eq!(us.subscribe_streams(&many, 10).len(), 3);
    // 500 symbols x 3 streams: 341 symbols fit under 1024 streams, so two sockets
    let plans = c.plan(&metas(Venue::Binance, 500, "S{}USDT"), Channels::ALL);
    assert_eq!(plans.len(), 2);
    assert!(plans.iter().all(|p| p.streams.len() <= 1024));
    assert_eq!(plans.iter().map(|p| p.symbols.len()).sum::<usize>(), 500);
    assert!(c.open_interest_url("BTCUSDT").is_none());
}

#[test]
fn usdm_splits_routes_and_caps_streams_per_socket() {
    let c = BinanceConnector::new(
        Venue::BinanceUsdm,
        Some("ws://127.0.0.1:9"),
        Some("http://127.0.0.1:9"),
        1000,
        TradeStream::AggTrade,
    );
    let all = Channels {
        funding: true,
        liquidations: true,
        open_interest: true,
        ..Channels::ALL
    };
    let plans = c.plan(&metas(Venue::BinanceUsdm, 150, "S{}USDT"), all);
    // public: 2 streams/symbol, 100 symbols per socket; market: 3/symbol, 66 per socket
    let public: Vec<_> = plans
        .iter()
        .filter(|p| p.url == "ws://127.0.0.1:9/public/stream")
        .collect();
    let market: Vec<_> = plans
        .iter()
        .filter(|p| p.url == "ws://127.0.0.1:9/market/stream")
        .collect();
    assert_eq!((public.len(), market.len()), (2, 3));
    assert!(plans.iter().all(|p| p.streams.len() <= 200));
    assert!(public.iter().all(|p| p.channels.book && !p.channels.trades));
    assert!(market
        .iter()
        .all(|p| !p.channels.book && p.channels.funding && p.channels.liquidations));
    assert_eq!(
        market[0].streams[..3],
        [
            "s0usdt@aggTrade",
            "s0usdt@markPrice@1s",
            "s0usdt@forceOrder"
        ]
    );
    assert_eq!(
        c.snapshot_url("BTCUSDT"),
        "http://127.0.0.1:9/fapi/v1/depth?symbol=BTCUSDT&limit=1000"
    );
    assert_eq!(c.snapshot_weight(), 20);
    assert_eq!(
        c.open_interest_url("BTCUSDT").as_deref(),
        Some("http://127.0.0.1:9/fapi/v1/openInterest?symbol=BTCUSDT")
    );
    assert_eq!(c.to_native("BTC-USDT-PERP"), "BTCUSDT");
    assert_eq!(c.to_native("BTC-USDT-20210924"), "BTCUSDT_210924");
    assert_eq!(c.to_native("btcusdt_210924"), "BTCUSDT_210924");
    assert_eq!(c.weight_limit().limit, 2400);
    assert_eq!(
        c.used_weight_header(c.weight_limit()).as_deref(),
        Some("x-mbx-used-weight-1m")
    );
    let five_s = WeightLimit {
        limit: 600,
        window: Duration::from_secs(5),
    };
    assert_eq!(
        c.used_weight_header(five_s).as_deref(),
        Some("x-mbx-used-weight-5s")
    );
    // only open interest: nothing to stream
    let oi_only = Channels {
        open_interest: true,
        ..Channels::NONE
    };
    assert!(c
        .plan(&metas(Venue::BinanceUsdm, 3, "S{}USDT"), oi_only)
        .is_empty());
    // `trade` (undocumented on futures) rides the public route
    let t = BinanceConnector::new(Venue::BinanceUsdm, None, None, 200, TradeStream::Trade);
    assert!(t.route_channels(Route::Public, all).trades);
    assert!(!t.route_channels(Route::Market, all).trades);
    assert_eq!(t.snapshot_weight(), 10); // 200 is not a futures depth: 500 is used
}

#[test]
fn coinm_is_unrouted_with_its_own_paths() {
    let c = BinanceConnector::new(Venue::BinanceCoinm, None, None, 100, TradeStream::AggTrade);
    let all = Channels {
        funding: true,
        liquidations: true,
        ..Channels::ALL
    };
    let plans = c.plan(&metas(Venue::BinanceCoinm, 50, "S{}USD_PERP"), all);
    assert_eq!(plans.len(), 2); // 5 streams per symbol, 40 symbols per socket
    assert!(plans
        .iter()
        .all(|p| p.url == "wss://dstream.binance.com/stream"));
    assert_eq!(plans[0].streams[0], "s0usd_perp@depth@100ms");
    assert_eq!(
        c.snapshot_url("BTCUSD_PERP"),
        "https://dapi.binance.com/dapi/v1/depth?symbol=BTCUSD_PERP&limit=100"
    );
    assert_eq!(c.to_native("BTC-USD-PERP"), "BTCUSD_PERP");
    assert_eq!(c.to_native("BTC-USD-20211231"), "BTCUSD_211231");
    assert_eq!(c.to_native("ethusd_210924"), "ETHUSD_210924");
    assert_eq!(
        c.instruments_urls(&["BTCUSD_PERP".into()]),
        vec!["https://dapi.binance.com/dapi/v1/exchangeInfo"]
    );
}
