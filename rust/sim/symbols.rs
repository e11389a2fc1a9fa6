//! Static description of the synthetic symbols: base/quote split and the price/lot grid.
//!
//! Owns the known-quote suffix list and the rough price scale used to pick Binance-like
//! `tickSize`/`stepSize` values for any configured symbol. It holds no market state.

use super::SimError;

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

/// Static description of one simulated symbol (what exchangeInfo reports).
#[derive(Debug, Clone)]
pub(crate) struct SymbolSpec {
    /// Native upper-case symbol, as in payloads (`BTCUSDT`).
    pub symbol: String,
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
    /// Infers base/quote and a price grid for `symbol` from the known-quote suffix list.
    pub(crate) fn infer(symbol: &str, depth_levels: usize) -> Result<SymbolSpec, SimError> {
        let valid = !symbol.is_empty()
            && symbol.len() <= 20
            && symbol
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
        let split = QUOTES.iter().find_map(|q| {
            let base = symbol.strip_suffix(*q)?;
            (!base.is_empty()).then_some((base, *q))
        });
        let (Some((base, quote)), true) = (split, valid) else {
            return Err(SimError::InvalidConfig {
                field: "symbols",
                reason: "symbol must be upper-case alphanumeric ending in a known quote asset",
            });
        };
        let base_usd = usd_value(base);
        let mid = base_usd / usd_value(quote);
        // Binance-like grids: about 5-6 significant digits of price, tick at most 0.01.
        let tick_exp = ((mid.log10().floor() as i32) - 5).clamp(-8, -2);
        let step_exp = (-(base_usd.log10().floor() as i32) - 1).clamp(-8, 0);
        let mut tick_e8 = pow10(8 + tick_exp);
        let step_e8 = pow10(8 + step_exp);
        let mid_e8 = (mid * 1e8).round() as i64;
        // Leave room for the whole ladder below the mid; refine the grid for cheap assets.
        let min_ticks = (depth_levels as i64).saturating_mul(20).max(1_000);
        while tick_e8 > 1 && mid_e8 / tick_e8 < min_ticks {
            tick_e8 /= 10;
        }
        let mid0 = (mid_e8 / tick_e8).max(min_ticks);
        let unit_lots = ((20.0 / (base_usd * step_e8 as f64 / 1e8)).round() as i64).max(1);
        Ok(SymbolSpec {
            symbol: symbol.to_string(),
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
    fn test_symbols_infer_grid_and_assets() {
        assert!(SymbolSpec::infer("FOOBAR", 10).is_err());
        assert!(SymbolSpec::infer("btcusdt", 10).is_err());
        let s = SymbolSpec::infer("ETHBTC", 10).unwrap();
        assert_eq!((s.base.as_str(), s.quote.as_str()), ("ETH", "BTC"));
    }
}
