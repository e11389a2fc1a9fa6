//! Static description of the synthetic OKX instruments: type, family, contract terms, expiry
//! and strike read from the instrument id, and the price/lot grid handed to the shared
//! synthetic market (`market.rs`). Also writes the `GET /api/v5/public/instruments` entries.
//! It holds no market state.

use super::super::frames::push_u64;
use super::super::market::SymbolSpec;
use super::super::SimError;
use super::frames::push_num;

/// OKX instrument types the simulator lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InstType {
    Spot,
    Swap,
    Futures,
    Option,
}

impl InstType {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Spot => "SPOT",
            Self::Swap => "SWAP",
            Self::Futures => "FUTURES",
            Self::Option => "OPTION",
        }
    }
}

/// One synthetic OKX instrument.
#[derive(Debug, Clone)]
pub(crate) struct OkxSpec {
    pub inst_id: String,
    pub inst_type: InstType,
    /// `BTC-USD` (the family; spot: the pair).
    pub family: String,
    pub base: String,
    pub quote: String,
    /// Contract face value and multiplier (1 and 1 for spot).
    pub ct_val: &'static str,
    pub ct_mult: &'static str,
    /// `linear`, `inverse`, or "" (spot, options).
    pub ct_type: &'static str,
    /// Expiry, ms (futures and options; 08:00 UTC of the date in the id).
    pub exp_ms: Option<u64>,
    /// Strike and `C`/`P` (options).
    pub strike: Option<String>,
    pub opt_type: Option<String>,
    /// The grid the market runs on.
    pub market: SymbolSpec,
}

/// Days from 1970-01-01 to a civil date (inverse of the usual civil-from-days).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// 08:00 UTC of `YYMMDD` (OKX deliveries), in ms.
fn expiry_ms(yymmdd: &str) -> Option<u64> {
    if yymmdd.len() != 6 || !yymmdd.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n = |r: std::ops::Range<usize>| yymmdd.get(r).and_then(|s| s.parse::<i64>().ok());
    let (y, m, d) = (2000 + n(0..2)?, n(2..4)?, n(4..6)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    u64::try_from(days_from_civil(y, m, d) * 86_400_000 + 8 * 3_600_000).ok()
}

/// Rough USD value of common assets: only used to pick a plausible price scale.
fn usd_value(asset: &str) -> f64 {
    match asset {
        "BTC" => 60_000.0,
        "ETH" => 3_000.0,
        "SOL" => 150.0,
        "LTC" => 80.0,
        "UNI" => 8.0,
        "XRP" => 0.5,
        "DOGE" => 0.1,
        "USDT" | "USDC" | "USD" => 1.0,
        _ => 10.0,
    }
}

fn pow10(exp: i32) -> i64 {
    (0..exp.max(0)).fold(1i64, |acc, _| acc.saturating_mul(10))
}

fn valid_part(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 12
        && s.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

impl OkxSpec {
    /// Reads an instrument id (`BTC-USDT`, `BTC-USDT-SWAP`, `BTC-USD-250926`,
    /// `BTC-USD-250926-60000-C`) and picks its contract terms and grid.
    pub(crate) fn infer(inst_id: &str, depth_levels: usize) -> Result<OkxSpec, SimError> {
        let bad = |reason| SimError::InvalidConfig {
            field: "okx_symbols",
            reason,
        };
        let parts: Vec<&str> = inst_id.split('-').collect();
        if parts.iter().any(|p| !valid_part(p)) {
            return Err(bad("instrument ids are upper-case parts joined by '-'"));
        }
        let (base, quote, inst_type, exp, strike, cp) = match parts.as_slice() {
            [b, q] => (*b, *q, InstType::Spot, None, None, None),
            [b, q, "SWAP"] => (*b, *q, InstType::Swap, None, None, None),
            [b, q, date] => (*b, *q, InstType::Futures, expiry_ms(date), None, None),
            [b, q, date, k, cp @ ("C" | "P")] => {
                let k_ok = k.bytes().all(|c| c.is_ascii_digit());
                (
                    *b,
                    *q,
                    InstType::Option,
                    expiry_ms(date).filter(|_| k_ok),
                    Some(*k),
                    Some(*cp),
                )
            }
            _ => return Err(bad("expected BASE-QUOTE[-SWAP|-YYMMDD[-STRIKE-C|P]]")),
        };
        if matches!(inst_type, InstType::Futures | InstType::Option) && exp.is_none() {
            return Err(bad(
                "futures and options need a YYMMDD date (and a numeric strike)",
            ));
        }
        let inverse = quote == "USD" && inst_type != InstType::Spot;
        let base_usd = usd_value(base);
        let (ct_val, ct_mult, ct_type) = match inst_type {
            InstType::Spot => ("", "", ""),
            InstType::Option => ("1", if base == "BTC" { "0.1" } else { "1" }, ""),
            _ if inverse => (if base == "BTC" { "100" } else { "10" }, "1", "inverse"),
            _ if base == "BTC" => ("0.01", "1", "linear"),
            _ if base == "ETH" => ("0.1", "1", "linear"),
            _ => ("1", "1", "linear"),
        };
        // price: quote per base; options are quoted in the base coin (a small premium)
        let mid = if inst_type == InstType::Option {
            0.05
        } else {
            base_usd / usd_value(quote)
        };
        let tick_exp = ((mid.log10().floor() as i32) - 5).clamp(-8, -1);
        let mut tick_e8 = pow10(8 + tick_exp);
        let min_ticks = (depth_levels as i64).saturating_mul(20).max(1_000);
        let mid_e8 = (mid * 1e8).round() as i64;
        while tick_e8 > 1 && mid_e8 / tick_e8 < min_ticks {
            tick_e8 /= 10;
        }
        // spot trades in base units (a Binance-like lot); derivatives in whole contracts
        let (step_e8, unit_lots) = if inst_type == InstType::Spot {
            let step_e8 = pow10(8 + (-(base_usd.log10().floor() as i32) - 1).clamp(-8, 0));
            let unit = ((20.0 / (base_usd * step_e8 as f64 / 1e8)).round() as i64).max(1);
            (step_e8, unit)
        } else {
            (100_000_000, 1)
        };
        let family = format!("{base}-{quote}");
        Ok(OkxSpec {
            inst_id: inst_id.to_string(),
            inst_type,
            base: base.to_string(),
            quote: quote.to_string(),
            ct_val,
            ct_mult,
            ct_type,
            exp_ms: exp,
            strike: strike.map(str::to_string),
            opt_type: cp.map(str::to_string),
            market: SymbolSpec {
                symbol: inst_id.to_string(),
                // the shared market generator's futures fields stay unused here (the OKX
                // profile writes its own frames)
                pair: inst_id.to_string(),
                contract_size: 0,
                delivery_ms: 0,
                lower: inst_id.to_ascii_lowercase(),
                base: base.to_string(),
                quote: quote.to_string(),
                tick_e8,
                step_e8,
                unit_lots,
                mid0: (mid_e8 / tick_e8).max(min_ticks),
            },
            family,
        })
    }

    /// Appends this instrument as an instruments-answer entry (exchanges.md §4.6 fields).
    pub(crate) fn push_instrument(&self, out: &mut String) {
        let spot = self.inst_type == InstType::Spot;
        let field = |out: &mut String, k: &str, v: &str| {
            out.push('"');
            out.push_str(k);
            out.push_str("\":\"");
            out.push_str(v);
            out.push_str("\",");
        };
        out.push('{');
        field(out, "instType", self.inst_type.name());
        field(out, "instId", &self.inst_id);
        field(out, "baseCcy", if spot { &self.base } else { "" });
        field(out, "quoteCcy", if spot { &self.quote } else { "" });
        let settle = match self.ct_type {
            "linear" => self.quote.as_str(),
            _ if spot => "",
            _ => self.base.as_str(),
        };
        field(out, "settleCcy", settle);
        field(out, "uly", if spot { "" } else { &self.family });
        field(out, "instFamily", if spot { "" } else { &self.family });
        field(out, "ctVal", self.ct_val);
        field(out, "ctMult", self.ct_mult);
        let ct_val_ccy = match self.ct_type {
            "inverse" => "USD",
            _ if spot => "",
            _ => self.base.as_str(),
        };
        field(out, "ctValCcy", ct_val_ccy);
        field(out, "ctType", self.ct_type);
        let mut exp = String::new();
        if let Some(ms) = self.exp_ms {
            push_u64(&mut exp, ms);
        }
        field(out, "expTime", &exp);
        field(out, "stk", self.strike.as_deref().unwrap_or(""));
        field(out, "optType", self.opt_type.as_deref().unwrap_or(""));
        let mut tick = String::new();
        push_num(&mut tick, self.market.tick_e8);
        field(out, "tickSz", &tick);
        let mut lot = String::new();
        push_num(&mut lot, self.market.step_e8);
        field(out, "lotSz", &lot);
        field(out, "minSz", &lot);
        out.push_str("\"state\":\"live\"}");
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn test_okx_specs_from_ids() {
        let s = OkxSpec::infer("BTC-USD-250926-60000-C", 50).unwrap();
        assert_eq!(
            (s.inst_type, s.family.as_str()),
            (InstType::Option, "BTC-USD")
        );
        assert_eq!(s.exp_ms, Some(1_758_873_600_000)); // 2025-09-26 08:00 UTC
        assert_eq!((s.ct_val, s.ct_mult), ("1", "0.1"));
        let s = OkxSpec::infer("BTC-USD-SWAP", 50).unwrap();
        assert_eq!((s.ct_type, s.ct_val), ("inverse", "100"));
        let s = OkxSpec::infer("ETH-USDT-SWAP", 50).unwrap();
        assert_eq!((s.ct_type, s.ct_val), ("linear", "0.1"));
        assert_eq!(
            OkxSpec::infer("BTC-USDT", 50).unwrap().inst_type,
            InstType::Spot
        );
        for bad in [
            "btc-usdt",
            "BTC",
            "BTC-USD-2509",
            "BTC-USD-250926-X-C",
            "BTC-USD-251345",
        ] {
            assert!(OkxSpec::infer(bad, 50).is_err(), "{bad}");
        }
        let mut out = String::new();
        OkxSpec::infer("BTC-USD-250926", 50)
            .unwrap()
            .push_instrument(&mut out);
        assert!(
            out.contains(r#""instType":"FUTURES""#) && out.contains(r#""expTime":"1758873600000""#)
        );
        assert!(sonic_rs::from_str::<sonic_rs::Value>(&out).is_ok());
    }
}
