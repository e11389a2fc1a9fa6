//! Numbers read from venue wire strings, shared by every venue: fast_float parsing plus the
//! range rules that make an out-of-range value a malformed frame (never a book level or a
//! trade). Non-finite values, negative or zero prices and negative sizes are refused here so
//! a venue module cannot forget one of the checks.

/// Any decimal number (funding rates, statistics may be negative).
#[inline]
#[must_use]
pub fn num(s: &str) -> Option<f64> {
    fast_float2::parse::<f64, _>(s)
        .ok()
        .filter(|v| v.is_finite())
}

/// A price: finite and positive.
#[inline]
#[must_use]
pub fn wire_price(s: &str) -> Option<f64> {
    num(s).filter(|v| *v > 0.0)
}

/// A size or amount: finite and not negative (0 removes a book level).
#[inline]
#[must_use]
pub fn wire_size(s: &str) -> Option<f64> {
    num(s).filter(|v| *v >= 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_rules() {
        assert_eq!(num("-0.0001"), Some(-0.0001));
        assert_eq!(num("1e400"), None);
        assert_eq!(num("nan"), None);
        assert_eq!(num("inf"), None);
        assert_eq!(num(""), None);
        assert_eq!(wire_price("0.35"), Some(0.35));
        assert_eq!(wire_price("0"), None);
        assert_eq!(wire_price("-1"), None);
        assert_eq!(wire_size("0"), Some(0.0));
        assert_eq!(wire_size("-1"), None);
        assert_eq!(wire_size("1e309"), None);
    }
}
