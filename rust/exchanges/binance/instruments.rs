//! Binance reference data: `exchangeInfo` to instruments (spot, USD-M, COIN-M) and the
//! published `REQUEST_WEIGHT` limit (exchanges.md 2.7, 3.5, 3.6 and 6).
//!
//! Normalized names follow ARCHITECTURE.md: `BTC-USDT` spot, `BTC-USDT-PERP` / `BTC-USD-PERP`
//! perpetuals, `BTC-USDT-20210924` dated futures where the date is the UTC date of
//! `deliveryDate` (not the text of the native symbol). COIN-M instruments are inverse with
//! the contract value in USD from `contractSize`. Runs once per feed start: not hot.

use std::time::Duration;

use super::messages::{BinanceExchangeInfo, BinanceSymbolInfo};
use crate::model::{Instrument, InstrumentKind, Venue};
use crate::net::budget::WeightLimit;

/// `deliveryDate` of perpetuals: 2100-12-25, far beyond any dated contract.
const PERPETUAL_DELIVERY_MS: i64 = 4_133_404_800_000;

fn num(s: &str) -> Option<f64> {
    fast_float2::parse::<f64, _>(s).ok()
}

/// (year, month, day) of a day count since 1970-01-01 (proleptic Gregorian, H. Hinnant's
/// `civil_from_days`).
#[must_use]
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        year,
        u32::try_from(month).unwrap_or(1),
        u32::try_from(day).unwrap_or(1),
    )
}

/// `YYYYMMDD` of a UTC timestamp in ms.
#[must_use]
pub fn utc_date(ms: i64) -> String {
    let (y, m, d) = civil_from_days(ms.div_euclid(86_400_000));
    format!("{y:04}{m:02}{d:02}")
}

fn kind_of(s: &BinanceSymbolInfo<'_>) -> InstrumentKind {
    match s.contract_type {
        None => InstrumentKind::Spot,
        Some("PERPETUAL" | "PERPETUAL_DELIVERING") => InstrumentKind::Perpetual,
        // empty while pending or settling: the delivery date still tells them apart
        Some("") if s.delivery_date.is_none_or(|d| d >= PERPETUAL_DELIVERY_MS) => {
            InstrumentKind::Perpetual
        }
        Some(_) => InstrumentKind::Future,
    }
}

fn instrument(venue: Venue, s: &BinanceSymbolInfo<'_>) -> Instrument {
    let mut tick = 0.0;
    let mut step = 0.0;
    for f in &s.filters {
        match f.filter_type {
            "PRICE_FILTER" => tick = f.tick_size.and_then(num).unwrap_or(0.0),
            "LOT_SIZE" => step = f.step_size.and_then(num).unwrap_or(0.0),
            _ => {}
        }
    }
    let mut inst = Instrument::spot(s.symbol, s.base_asset, s.quote_asset);
    inst.kind = kind_of(s);
    match inst.kind {
        InstrumentKind::Perpetual => inst.symbol.push_str("-PERP"),
        InstrumentKind::Future => {
            let expiry = s.delivery_date.unwrap_or(0);
            inst.expiry_ms = Some(expiry);
            inst.symbol.push('-');
            inst.symbol.push_str(&utc_date(expiry));
        }
        InstrumentKind::Spot | InstrumentKind::Option => {}
    }
    if venue == Venue::BinanceCoinm {
        // sizes are contracts of `contractSize` USD (exchanges.md 3.6)
        inst.inverse = true;
        inst.contract_size = s.contract_size.filter(|c| *c > 0.0).unwrap_or(1.0);
    }
    inst.tick_size = tick;
    inst.step_size = step;
    inst.status = s.status.or(s.contract_status).unwrap_or("").to_string();
    inst
}

/// Instruments listed in an `exchangeInfo` body of `venue`.
///
/// # Errors
/// The parser's byte offset when the body is not a valid `exchangeInfo`.
pub fn instruments_from_exchange_info(venue: Venue, body: &str) -> Result<Vec<Instrument>, usize> {
    let info: BinanceExchangeInfo = sonic_rs::from_str(body).map_err(|e| e.offset())?;
    Ok(info.symbols.iter().map(|s| instrument(venue, s)).collect())
}

/// The `REQUEST_WEIGHT` limit an `exchangeInfo` body publishes, if any.
#[must_use]
pub fn weight_limit_from_exchange_info(body: &str) -> Option<WeightLimit> {
    let info: BinanceExchangeInfo = sonic_rs::from_str(body).ok()?;
    info.rate_limits
        .iter()
        .find(|r| r.rate_limit_type == "REQUEST_WEIGHT")
        .and_then(|r| {
            let unit = match r.interval {
                "SECOND" => 1,
                "MINUTE" => 60,
                "HOUR" => 3600,
                "DAY" => 86_400,
                _ => return None,
            };
            let window = Duration::from_secs(unit * u64::from(r.interval_num.max(1)));
            Some(WeightLimit {
                limit: r.limit.max(1),
                window,
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_utc_days() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(utc_date(1_640_937_600_000), "20211231"); // BTCUSD_211231 08:00 UTC
        assert_eq!(utc_date(1_632_470_400_000), "20210924");
        assert_eq!(utc_date(951_782_400_000), "20000229");
        assert_eq!(utc_date(-86_400_000), "19691231");
    }

    #[test]
    fn futures_symbols_kinds_and_contract_sizes() {
        // trimmed entries of the captures BINANCE_FUTURES.0 and BINANCE_DELIVERY.0
        let usdm = r#"{"timezone":"UTC","rateLimits":[{"rateLimitType":"REQUEST_WEIGHT","interval":"MINUTE","intervalNum":1,"limit":2400},{"rateLimitType":"ORDERS","interval":"MINUTE","intervalNum":1,"limit":1200}],"symbols":[
            {"symbol":"BTCUSDT","pair":"BTCUSDT","contractType":"PERPETUAL","deliveryDate":4133404800000,"status":"TRADING","baseAsset":"BTC","quoteAsset":"USDT","marginAsset":"USDT","filters":[{"minPrice":"556.72","filterType":"PRICE_FILTER","tickSize":"0.01"},{"stepSize":"0.001","filterType":"LOT_SIZE"}]},
            {"symbol":"BTCUSDT_210924","pair":"BTCUSDT","contractType":"CURRENT_QUARTER","deliveryDate":1632470400000,"status":"TRADING","baseAsset":"BTC","quoteAsset":"USDT","marginAsset":"USDT","filters":[]}]}"#;
        let list = instruments_from_exchange_info(Venue::BinanceUsdm, usdm).unwrap();
        assert_eq!(list[0].symbol, "BTC-USDT-PERP");
        assert_eq!(list[0].kind, InstrumentKind::Perpetual);
        assert_eq!((list[0].tick_size, list[0].step_size), (0.01, 0.001));
        assert_eq!(list[1].symbol, "BTC-USDT-20210924");
        assert_eq!(list[1].expiry_ms, Some(1_632_470_400_000));
        assert!(!list[1].inverse && list[1].contract_size == 1.0);
        assert_eq!(
            weight_limit_from_exchange_info(usdm),
            Some(WeightLimit {
                limit: 2400,
                window: Duration::from_secs(60)
            })
        );
        let coinm = r#"{"rateLimits":[{"rateLimitType":"REQUEST_WEIGHT","interval":"SECOND","intervalNum":5,"limit":600}],"symbols":[
            {"symbol":"BTCUSD_PERP","pair":"BTCUSD","contractType":"PERPETUAL","deliveryDate":4133404800000,"contractStatus":"TRADING","contractSize":100,"marginAsset":"BTC","baseAsset":"BTC","quoteAsset":"USD","filters":[]},
            {"symbol":"ETHUSD_210924","pair":"ETHUSD","contractType":"CURRENT_QUARTER","deliveryDate":1632470400000,"contractStatus":"TRADING","contractSize":10,"marginAsset":"ETH","baseAsset":"ETH","quoteAsset":"USD","filters":[]}]}"#;
        let list = instruments_from_exchange_info(Venue::BinanceCoinm, coinm).unwrap();
        assert_eq!(list[0].symbol, "BTC-USD-PERP");
        assert_eq!((list[0].contract_size, list[0].inverse), (100.0, true));
        assert_eq!(list[0].status, "TRADING");
        assert_eq!(list[1].symbol, "ETH-USD-20210924");
        assert_eq!(list[1].contract_size, 10.0);
        assert_eq!(
            weight_limit_from_exchange_info(coinm).map(|l| l.window),
            Some(Duration::from_secs(5))
        );
        // spot stays spot
        let spot = r#"{"symbols":[{"symbol":"ETHBTC","status":"TRADING","baseAsset":"ETH","quoteAsset":"BTC","filters":[]}]}"#;
        let list = instruments_from_exchange_info(Venue::Binance, spot).unwrap();
        assert_eq!(
            (list[0].symbol.as_str(), list[0].kind),
            ("ETH-BTC", InstrumentKind::Spot)
        );
        assert_eq!(weight_limit_from_exchange_info(spot), None);
    }
}
