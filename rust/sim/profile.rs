//! Venue profiles of the simulator: Binance spot, USD-M and COIN-M futures (exchanges.md 2,
//! 3 and 8). A profile is data: REST prefix, depth weights and accepted limits, stream caps,
//! which stream kinds exist, and for USD-M which route carries which kind (market streams
//! subscribed on the wrong route are accepted and then silently absent, like the venue).

use std::time::Duration;

/// Which venue the simulator speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Profile {
    /// Binance spot (`/api/v3`, contiguous update ids).
    #[default]
    Spot,
    /// Binance USD-M futures (`/fapi/v1`, `pu` chaining, `/public` + `/market` routes).
    UsdM,
    /// Binance COIN-M futures (`/dapi/v1`, sizes in contracts, unrouted).
    CoinM,
}

/// The websocket route a session connected to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    /// `/ws`, `/stream`: everything on spot and COIN-M; public streams only on USD-M.
    Unrouted,
    /// USD-M `/public/...`.
    Public,
    /// USD-M `/market/...`.
    Market,
}

impl Profile {
    /// Parse `spot`, `usdm`, `coinm`.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "spot" => Some(Self::Spot),
            "usdm" => Some(Self::UsdM),
            "coinm" => Some(Self::CoinM),
            _ => None,
        }
    }

    pub(crate) fn is_futures(self) -> bool {
        self != Self::Spot
    }

    pub(crate) fn rest_prefix(self) -> &'static str {
        match self {
            Self::Spot => "/api/v3",
            Self::UsdM => "/fapi/v1",
            Self::CoinM => "/dapi/v1",
        }
    }

    /// Streams one connection may hold (spot 1024, futures 200).
    pub(crate) fn max_streams(self) -> usize {
        if self.is_futures() {
            200
        } else {
            1024
        }
    }

    /// Incoming messages per second a connection may send (spot 5, futures 10).
    #[must_use]
    pub fn max_client_msgs_per_s(self) -> u32 {
        if self.is_futures() {
            10
        } else {
            5
        }
    }

    /// Documented `REQUEST_WEIGHT` per minute.
    #[must_use]
    pub fn weight_limit(self) -> u32 {
        if self.is_futures() {
            2400
        } else {
            6000
        }
    }

    /// Server ping interval (spot 20 s, futures 3 min).
    #[must_use]
    pub fn ping_interval(self) -> Duration {
        if self.is_futures() {
            Duration::from_secs(180)
        } else {
            Duration::from_secs(20)
        }
    }

    /// Weight of a depth snapshot, or `None` for a limit the venue refuses.
    pub(crate) fn depth_weight(self, limit: usize) -> Option<u64> {
        if self.is_futures() {
            return match limit {
                5 | 10 | 20 | 50 => Some(2),
                100 => Some(5),
                500 => Some(10),
                1000 => Some(20),
                _ => None,
            };
        }
        Some(match limit {
            0..=100 => 5,
            101..=500 => 25,
            501..=1000 => 50,
            _ => 250,
        })
    }

    /// Weight of `exchangeInfo`.
    pub(crate) fn exchange_info_weight(self) -> u64 {
        if self.is_futures() {
            1
        } else {
            20
        }
    }

    /// The route of a websocket path and the rest of the path, or `None` for a route this
    /// profile does not serve.
    pub(crate) fn route(self, path: &str) -> Option<(Route, &str)> {
        for (prefix, route) in [("/public", Route::Public), ("/market", Route::Market)] {
            if let Some(rest) = path.strip_prefix(prefix) {
                if rest.starts_with("/ws") || rest.starts_with("/stream") {
                    return (self == Self::UsdM).then_some((route, rest));
                }
            }
        }
        Some((Route::Unrouted, path))
    }

    /// Whether stream kind `kind` (`depth@100ms`, `aggTrade`, `markPrice@1s`) carries data
    /// on `route`. USD-M since 2026: depth, bookTicker (and the undocumented `trade`) on
    /// `/public`; aggTrade, markPrice, forceOrder on `/market`; the unrouted URL only
    /// public data (exchanges.md 3.1).
    pub(crate) fn delivers(self, route: Route, kind: &str) -> bool {
        if self != Self::UsdM {
            return true;
        }
        let market = kind.starts_with("aggTrade")
            || kind.starts_with("markPrice")
            || kind.starts_with("forceOrder")
            || kind.starts_with("kline")
            || kind.starts_with("ticker")
            || kind.starts_with("miniTicker");
        match route {
            Route::Market => market,
            Route::Public | Route::Unrouted => !market,
        }
    }

    /// Whether `kind` is a stream kind this profile knows.
    pub(crate) fn knows_kind(self, kind: &str) -> bool {
        if !self.is_futures() {
            return !kind.starts_with("markPrice") && kind != "forceOrder";
        }
        if matches!(kind, "markPrice" | "markPrice@1s" | "forceOrder") {
            return true;
        }
        // futures have no avgPrice and no rolling-window tickers
        kind != "avgPrice" && !kind.starts_with("ticker_")
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn test_profile_routes_and_weights() {
        let u = Profile::UsdM;
        assert_eq!(u.route("/public/stream"), Some((Route::Public, "/stream")));
        assert_eq!(
            u.route("/market/ws/btcusdt@aggTrade"),
            Some((Route::Market, "/ws/btcusdt@aggTrade"))
        );
        assert_eq!(u.route("/stream"), Some((Route::Unrouted, "/stream")));
        assert_eq!(Profile::CoinM.route("/public/stream"), None);
        assert!(u.delivers(Route::Public, "depth@100ms"));
        assert!(!u.delivers(Route::Public, "markPrice@1s"));
        assert!(!u.delivers(Route::Unrouted, "aggTrade"));
        assert!(u.delivers(Route::Market, "forceOrder"));
        assert!(Profile::CoinM.delivers(Route::Unrouted, "aggTrade"));
        assert_eq!(u.depth_weight(1000), Some(20));
        assert_eq!(u.depth_weight(200), None);
        assert_eq!(Profile::Spot.depth_weight(200), Some(25));
        assert!(!Profile::Spot.knows_kind("markPrice@1s"));
        assert!(u.knows_kind("markPrice@1s") && !u.knows_kind("avgPrice"));
    }
}
