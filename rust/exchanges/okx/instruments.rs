//! OKX reference data (`GET /api/v5/public/instruments`, exchanges.md §4.6) and symbol
//! normalization (§6): native `BTC-USDT`, `BTC-USDT-SWAP`, `BTC-USD-220527`,
//! `BTC-USD-221230-4000-C` to `BTC-USDT`, `BTC-USDT-PERP`, `BTC-USD-20220527`,
//! `BTC-USD-20221230-4000-C`, with the contract size that turns contracts into normalized
//! units (linear: base = sz × ctVal × ctMult; inverse: quote = sz × ctVal × ctMult).

use super::messages::{OkxInstrument, OkxRest};
use crate::model::{Instrument, InstrumentKind, OptionType};

#[inline]
fn num(s: Option<&str>) -> Option<f64> {
    s.filter(|s| !s.is_empty())
        .and_then(|s| fast_float2::parse::<f64, _>(s).ok())
}

/// Civil date (year, month, day) of a day count since 1970-01-01 (proleptic Gregorian).
#[must_use]
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    // Howard Hinnant's days-from-civil inverse: exact for the whole i64 day range we use
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        y,
        u32::try_from(m).unwrap_or(1),
        u32::try_from(d).unwrap_or(1),
    )
}

/// `YYYYMMDD` of a millisecond timestamp (UTC).
#[must_use]
pub fn yyyymmdd(ms: i64) -> String {
    let (y, m, d) = civil_from_days(ms.div_euclid(86_400_000));
    format!("{y:04}{m:02}{d:02}")
}

/// The instrument type an instrument id names: `SPOT`, `SWAP`, `FUTURES` or `OPTION`.
#[must_use]
pub fn inst_type_of(inst_id: &str) -> &'static str {
    let parts: Vec<&str> = inst_id.split('-').collect();
    match parts.as_slice() {
        [_, _, "SWAP"] => "SWAP",
        [_, _, _] => "FUTURES",
        [_, _, _, _, _] => "OPTION",
        _ => "SPOT",
    }
}

/// The instrument family (`BTC-USD`) of a derivative id.
#[must_use]
pub fn family_of(inst_id: &str) -> &str {
    let mut it = inst_id.match_indices('-');
    match (it.next(), it.next()) {
        (Some(_), Some((i, _))) => inst_id.get(..i).unwrap_or(inst_id),
        _ => inst_id,
    }
}

fn nonempty(s: Option<&str>) -> Option<&str> {
    s.filter(|s| !s.is_empty())
}

fn is_digits(s: &str, n: usize) -> bool {
    s.len() == n && s.bytes().all(|b| b.is_ascii_digit())
}

/// Native OKX id for a configured symbol, native or normalized (`BTC-USDT-PERP`,
/// `btc/usdt`, `BTC-USD-20220527`, `BTC-USD-20221230-4000-C`).
#[must_use]
pub fn to_native(symbol: &str) -> String {
    let up = symbol.trim().replace(['/', '_'], "-").to_ascii_uppercase();
    let parts: Vec<&str> = up.split('-').collect();
    match parts.as_slice() {
        [b, q, "PERP"] => format!("{b}-{q}-SWAP"),
        [b, q, date] if is_digits(date, 8) => format!("{b}-{q}-{}", date.get(2..).unwrap_or(date)),
        [b, q, date, k, cp] if is_digits(date, 8) => {
            format!("{b}-{q}-{}-{k}-{cp}", date.get(2..).unwrap_or(date))
        }
        _ => up,
    }
}

/// One normalized instrument from an OKX entry; `None` for types xtrader does not normalize
/// (MARGIN, EVENTS) or entries missing what the symbol needs.
#[must_use]
pub fn normalize(i: &OkxInstrument<'_>) -> Option<Instrument> {
    let family = nonempty(i.inst_family)
        .or(nonempty(i.uly))
        .unwrap_or_else(|| family_of(i.inst_id));
    let (fam_base, fam_quote) = family.split_once('-').unwrap_or((family, ""));
    let expiry = nonempty(i.exp_time).and_then(|s| s.parse::<i64>().ok());
    let (kind, base, quote, symbol) = match i.inst_type {
        "SPOT" => {
            let base = nonempty(i.base_ccy)?;
            let quote = nonempty(i.quote_ccy)?;
            (InstrumentKind::Spot, base, quote, format!("{base}-{quote}"))
        }
        "SWAP" => (
            InstrumentKind::Perpetual,
            fam_base,
            fam_quote,
            format!("{family}-PERP"),
        ),
        "FUTURES" => {
            let date = yyyymmdd(expiry?);
            (
                InstrumentKind::Future,
                fam_base,
                fam_quote,
                format!("{family}-{date}"),
            )
        }
        "OPTION" => {
            let date = yyyymmdd(expiry?);
            let stk = nonempty(i.stk)?;
            let cp = nonempty(i.opt_type)?;
            let symbol = format!("{family}-{date}-{stk}-{cp}");
            (InstrumentKind::Option, fam_base, fam_quote, symbol)
        }
        _ => return None,
    };
    let contract_size = if kind == InstrumentKind::Spot {
        1.0
    } else {
        // `ctMult` is "1" for every swap and future seen so far; multiply anyway
        num(i.ct_val).unwrap_or(1.0) * num(i.ct_mult).unwrap_or(1.0)
    };
    let mut inst = Instrument::spot(i.inst_id, base, quote);
    inst.kind = kind;
    inst.symbol = symbol;
    inst.contract_size = contract_size;
    inst.inverse = i.ct_type == Some("inverse");
    inst.expiry_ms = expiry.filter(|_| kind != InstrumentKind::Spot);
    inst.tick_size = num(i.tick_sz).unwrap_or(0.0);
    inst.step_size = num(i.lot_sz).unwrap_or(0.0);
    inst.status = i.state.unwrap_or("").to_string();
    inst.strike = num(i.stk);
    inst.option_type = match i.opt_type {
        Some("C") => Some(OptionType::Call),
        Some("P") => Some(OptionType::Put),
        _ => None,
    };
    Some(inst)
}

/// Instruments of an instruments answer (`{"code":"0","data":[...]}`); the error is the byte
/// offset where the body stopped making sense (a non-zero `code` counts as offset 0).
///
/// # Errors
/// A body that is not an OKX instruments answer.
pub fn parse_instruments(body: &str) -> Result<Vec<Instrument>, usize> {
    let rest: OkxRest = sonic_rs::from_str(body).map_err(|e| e.offset())?;
    if rest.code != "0" {
        return Err(0);
    }
    let Some(data) = rest.data else {
        return Ok(Vec::new());
    };
    let list: Vec<OkxInstrument> = sonic_rs::from_str(data.as_raw_str()).map_err(|e| e.offset())?;
    Ok(list.iter().filter_map(normalize).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_utc_civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        // BTC-USD-220527 delivers 2022-05-27 08:00 UTC
        assert_eq!(yyyymmdd(1_653_638_400_000), "20220527");
        assert_eq!(yyyymmdd(951_782_400_000), "20000229");
    }

    #[test]
    fn native_and_normalized_names() {
        assert_eq!(to_native("BTC-USDT"), "BTC-USDT");
        assert_eq!(to_native("btc/usdt"), "BTC-USDT");
        assert_eq!(to_native("BTC-USDT-PERP"), "BTC-USDT-SWAP");
        assert_eq!(to_native("BTC-USD-SWAP"), "BTC-USD-SWAP");
        assert_eq!(to_native("BTC-USD-20220527"), "BTC-USD-220527");
        assert_eq!(
            to_native("BTC-USD-20221230-4000-C"),
            "BTC-USD-221230-4000-C"
        );
        assert_eq!(inst_type_of("BTC-USD-221230-4000-C"), "OPTION");
        assert_eq!(inst_type_of("BTC-USD-220527"), "FUTURES");
        assert_eq!(inst_type_of("UNI-USD-SWAP"), "SWAP");
        assert_eq!(inst_type_of("BTC-USDT"), "SPOT");
        assert_eq!(family_of("BTC-USD-221230-4000-C"), "BTC-USD");
    }

    #[test]
    fn normalizes_every_instrument_type() {
        let body = r#"{"code":"0","msg":"","data":[
            {"instType":"SPOT","instId":"BTC-USDT","baseCcy":"BTC","quoteCcy":"USDT","ctVal":"","ctMult":"","ctType":"","expTime":"","tickSz":"0.1","lotSz":"0.00000001","state":"live","uly":"","stk":"","optType":""},
            {"instType":"SWAP","instId":"BTC-USDT-SWAP","ctType":"linear","ctVal":"0.01","ctMult":"1","ctValCcy":"BTC","settleCcy":"USDT","tickSz":"0.1","lotSz":"1","state":"live","uly":"BTC-USDT","expTime":""},
            {"instType":"SWAP","instId":"BTC-USD-SWAP","ctType":"inverse","ctVal":"100","ctMult":"1","ctValCcy":"USD","settleCcy":"BTC","tickSz":"0.1","lotSz":"1","state":"live","uly":"BTC-USD"},
            {"instType":"FUTURES","instId":"BTC-USD-220527","ctType":"inverse","ctVal":"100","ctMult":"1","ctValCcy":"USD","expTime":"1653638400000","settleCcy":"BTC","tickSz":"0.1","lotSz":"1","uly":"BTC-USD"},
            {"instType":"OPTION","instId":"BTC-USD-221230-4000-C","ctVal":"1","ctMult":"0.1","ctValCcy":"BTC","expTime":"1672387200000","stk":"4000","optType":"C","tickSz":"0.0005","lotSz":"1","uly":"BTC-USD","instFamily":"BTC-USD"},
            {"instType":"MARGIN","instId":"BTC-USDT","baseCcy":"BTC","quoteCcy":"USDT"}
        ]}"#;
        let list = parse_instruments(body).unwrap();
        let names: Vec<(&str, &str)> = list
            .iter()
            .map(|i| (i.native.as_str(), i.symbol.as_str()))
            .collect();
        assert_eq!(
            names,
            vec![
                ("BTC-USDT", "BTC-USDT"),
                ("BTC-USDT-SWAP", "BTC-USDT-PERP"),
                ("BTC-USD-SWAP", "BTC-USD-PERP"),
                ("BTC-USD-220527", "BTC-USD-20220527"),
                ("BTC-USD-221230-4000-C", "BTC-USD-20221230-4000-C"),
            ]
        );
        let sizes: Vec<(f64, bool)> = list.iter().map(|i| (i.contract_size, i.inverse)).collect();
        assert_eq!(
            sizes,
            vec![
                (1.0, false),
                (0.01, false),
                (100.0, true),
                (100.0, true),
                (0.1, false)
            ]
        );
        let opt = &list[4];
        assert_eq!(
            (opt.strike, opt.option_type),
            (Some(4000.0), Some(OptionType::Call))
        );
        assert_eq!(opt.expiry_ms, Some(1_672_387_200_000));
        assert_eq!(
            (list[3].base.as_str(), list[3].quote.as_str()),
            ("BTC", "USD")
        );
        assert_eq!(list[0].step_size, 0.000_000_01);
        assert_eq!(
            parse_instruments(r#"{"code":"51001","msg":"x","data":[]}"#),
            Err(0)
        );
        assert!(parse_instruments("{").is_err());
    }
}
