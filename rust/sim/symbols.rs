//! Static description of the synthetic symbols: base/quote split and the price/lot grid.
//!
//! Owns the known-quote suffix list and the rough price scale used to pick Binance-like
//! `tickSize`/`stepSize` values for any configured symbol, and the futures forms of native
//! symbols (USD-M `BTCUSDT`, `BTCUSDT_260327`; COIN-M `BTCUSD_PERP`, `BTCUSD_260327` with
//! sizes in contracts of 100 USD for BTC, 10 USD otherwise, exchanges.md 3.6). It holds no
//! market state.

use super::profile::Profile;
use super::SimError;

/// `deliveryDate` Binance gives perpetuals (2100-12-25).
pub(crate) const PERPETUAL_DELIVERY_MS: i64 = 4_133_404_800_000;

/// Quote assets recognised at the end of a native symbol, longest first so that
/// `FDUSD` wins over `USD`.
const QUOTES: [&str; 16] = [
    "FDUSD", "USDT", "USDC", "BUSD", "TUSD", "USDP", "DAI", "BTC", "ETH", "BNB", "EUR", "TRY",
    "BRL", "GBP", "JPY", "USD",
];

/// Rough USD value of common assets: only used to pick a plausible price scale and grid.
fn usd_value(asset: &str) -> f64 {
    match asset {
        "BTC" => 60_000.0,
        "ETH" => 3_000.0,
        "BNB" => 600.0,
        "SOL" => 150.0,
        "LTC" => 80.0,
        "AVAX" => 30.0,
        "LINK" => 15.0,
        "DOT" => 6.0,
        "XRP" => 0.5,
        "ADA" => 0.4,
        "NKN" => 0.35,
        "TRX" => 0.12,
        "DOGE" => 0.1,
        "EUR" => 1.1,
        "GBP" => 1.3,
        "BRL" => 0.2,
        "TRY" => 0.03,
        "JPY" => 0.007,
        "USDT" | "USDC" | "BUSD" | "TUSD" | "USDP" | "FDUSD" | "DAI" | "USD" => 1.0,
        _ => 10.0,
    }
}

fn pow10(exp: i32) -> i64 {
    (0..exp.max(0)).fold(1i64, |acc, _| acc.saturating_mul(10))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Delivery time of a `YYMMDD` suffix: 08:00 UTC that day.
fn delivery_ms(yymmdd: &str) -> Option<i64> {
    if yymmdd.len() != 6 || !yymmdd.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n = |r: std::ops::Range<usize>| yymmdd.get(r).and_then(|s| s.parse::<i64>().ok());
    let (y, m, d) = (2000 + n(0..2)?, n(2..4)?, n(4..6)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    Some(days_from_civil(y, m, d) * 86_400_000 + 8 * 3_600_000)
}

/// Static description of one simulated symbol (what exchangeInfo reports).
#[derive(Debug, Clone)]
pub(crate) struct SymbolSpec {
    /// Native upper-case symbol, as in payloads (`BTCUSDT`).
    pub symbol: String,
    /// Futures pair (`BTCUSDT`, `BTCUSD`; `ps` in COIN-M payloads).
    pub pair: String,
    /// COIN-M contract value in USD (0 elsewhere).
    pub contract_size: i64,
    /// Futures delivery time, ms (`PERPETUAL_DELIVERY_MS` for perpetuals, 0 on spot).
    pub delivery_ms: i64,
    /// Lower-case form used in stream names (`btcusdt`).
    pub lower: String,
    pub base: String,
    pub quote: String,
    /// `PRICE_FILTER` `tickSize` in units of 1e-8.
    pub tick_e8: i64,
    /// `LOT_SIZE` `stepSize` in units of 1e-8.
    pub step_e8: i64,
    /// Typical order size in lots (about 20 USD).
    pub unit_lots: i64,
    /// Starting mid in ticks.
    pub mid0: i64,
}

impl SymbolSpec {
    /// True for perpetual futures.
    pub(crate) fn is_perpetual(&self) -> bool {
        self.delivery_ms == PERPETUAL_DELIVERY_MS
    }

    /// Infers base/quote and a price grid for a spot `symbol` from the known-quote suffixes.
    #[cfg(test)]
    pub(crate) fn infer(symbol: &str, depth_levels: usize) -> Result<SymbolSpec, SimError> {
        Self::infer_for(Profile::Spot, symbol, depth_levels)
    }

    /// Infers a symbol of `profile`: spot `BTCUSDT`; USD-M `BTCUSDT` or `BTCUSDT_YYMMDD`;
    /// COIN-M `BTCUSD_PERP` or `BTCUSD_YYMMDD`.
    pub(crate) fn infer_for(
        profile: Profile,
        symbol: &str,
        depth_levels: usize,
    ) -> Result<SymbolSpec, SimError> {
        let bad = |reason| {
            Err(SimError::InvalidConfig {
                field: "symbols",
                reason,
            })
        };
        let (pair, suffix) = match symbol.split_once('_') {
            Some((p, s)) if profile.is_futures() => (p, Some(s)),
            _ => (symbol, None),
        };
        let delivery = match (profile, suffix) {
            (Profile::Spot, _) => 0,
            (Profile::UsdM, None) | (Profile::CoinM, Some("PERP")) => PERPETUAL_DELIVERY_MS,
            (_, Some(s)) => match delivery_ms(s) {
                Some(ms) => ms,
                None => return bad("futures symbol suffix must be _PERP (COIN-M) or _YYMMDD"),
            },
            (Profile::CoinM, None) => return bad("COIN-M symbols end in _PERP or _YYMMDD"),
        };
        let valid = !pair.is_empty()
            && symbol.len() <= 24
            && pair
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
        let split = QUOTES.iter().find_map(|q| {
            let base = pair.strip_suffix(*q)?;
            (!base.is_empty()).then_some((base, *q))
        });
        let (Some((base, quote)), true) = (split, valid) else {
            return bad("symbol must be upper-case alphanumeric ending in a known quote asset");
        };
        if profile == Profile::CoinM && quote != "USD" {
            return bad("COIN-M symbols are quoted in USD (BTCUSD_PERP)");
        }
        let base_usd = usd_value(base);
        let mid = base_usd / usd_value(quote);
        // Binance-like grids: about 5-6 significant digits of price, tick at most 0.01.
        let tick_exp = ((mid.log10().floor() as i32) - 5).clamp(-8, -2);
        let step_exp = (-(base_usd.log10().floor() as i32) - 1).clamp(-8, 0);
        let mut tick_e8 = pow10(8 + tick_exp);
        let contract_size = match (profile, base) {
            (Profile::CoinM, "BTC") => 100,
            (Profile::CoinM, _) => 10,
            _ => 0,
        };
        // COIN-M trades whole contracts
        let step_e8 = if contract_size > 0 {
            100_000_000
        } else {
            pow10(8 + step_exp)
        };
        let mid_e8 = (mid * 1e8).round() as i64;
        // Leave room for the whole ladder below the mid; refine the grid for cheap assets.
        let min_ticks = (depth_levels as i64).saturating_mul(20).max(1_000);
        while tick_e8 > 1 && mid_e8 / tick_e8 < min_ticks {
            tick_e8 /= 10;
        }
        let mid0 = (mid_e8 / tick_e8).max(min_ticks);
        let unit_lots = if contract_size > 0 {
            1
        } else {
            ((20.0 / (base_usd * step_e8 as f64 / 1e8)).round() as i64).max(1)
        };
        Ok(SymbolSpec {
            symbol: symbol.to_string(),
            pair: pair.to_string(),
            contract_size,
            delivery_ms: delivery,
            lower: symbol.to_ascii_lowercase(),
            base: base.to_string(),
            quote: quote.to_string(),
            tick_e8,
            step_e8,
            unit_lots,
            mid0,
        })
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn test_symbols_futures_forms() {
        let p = SymbolSpec::infer_for(Profile::UsdM, "BTCUSDT", 10).unwrap();
        assert!(p.is_perpetual() && p.contract_size == 0 && p.pair == "BTCUSDT");
        let d = SymbolSpec::infer_for(Profile::UsdM, "BTCUSDT_210924", 10).unwrap();
        assert_eq!(d.delivery_ms, 1_632_470_400_000); // 2021-09-24 08:00 UTC
        let c = SymbolSpec::infer_for(Profile::CoinM, "BTCUSD_PERP", 10).unwrap();
        assert_eq!(
            (c.contract_size, c.step_e8, c.pair.as_str()),
            (100, 100_000_000, "BTCUSD")
        );
        let e = SymbolSpec::infer_for(Profile::CoinM, "ETHUSD_211231", 10).unwrap();
        assert_eq!((e.contract_size, e.delivery_ms), (10, 1_640_937_600_000));
        assert_eq!(e.lower, "ethusd_211231");
        assert!(SymbolSpec::infer_for(Profile::CoinM, "BTCUSDT", 10).is_err());
        assert!(SymbolSpec::infer_for(Profile::CoinM, "BTCUSD_X", 10).is_err());
        assert!(SymbolSpec::infer_for(Profile::Spot, "BTCUSD_PERP", 10).is_err());
    }

    #[test]
    fn test_symbols_infer_grid_and_assets() {
        assert!(SymbolSpec::infer("FOOBAR", 10).is_err());
        assert!(SymbolSpec::infer("btcusdt", 10).is_err());
        let s = SymbolSpec::infer("ETHBTC", 10).unwrap();
        assert_eq!((s.base.as_str(), s.quote.as_str()), ("ETH", "BTC"));
    }
}
