//! Network helpers shared by venues: clock, backoff with jitter, the REST client, and the
//! venue-wide REST scheduler with its weight budget ([`budget`]), the per-venue circuit
//! breaker ([`breaker`]).

pub mod breaker;
pub mod budget;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Wall-clock time in integer nanoseconds since the epoch (the `ts_recv` stamp).
#[must_use]
pub fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// Exponential backoff with jitter: attempt 0 waits 25–50 ms, doubling to a 5 s ceiling.
#[must_use]
pub fn backoff(attempt: u32) -> Duration {
    let base = 50u64.saturating_mul(1u64 << attempt.min(7)).min(5_000);
    // full jitter in the upper half keeps retries from synchronising across feeds
    let jitter = fastrand::u64(0..=base / 2);
    Duration::from_millis(base / 2 + jitter)
}

/// A REST answer: HTTP status (0 = transport error) and body.
#[derive(Debug)]
pub struct RestReply {
    /// HTTP status, 0 when the request failed before a response.
    pub status: u16,
    /// Response body (empty on transport errors).
    pub body: String,
}

/// The REST client used for snapshots and reference data.
///
/// # Errors
/// When the TLS backend cannot be initialised.
pub fn http_client() -> Result<reqwest::Client, reqwest::Error> {
    // ring as the process-wide rustls provider (no aws-lc build dependency)
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .connect_timeout(Duration::from_secs(5))
        .pool_max_idle_per_host(4)
        .user_agent("xtrader/0.1")
        .build()
}

/// GET a URL; never fails: transport errors come back as status 0.
pub async fn get(client: &reqwest::Client, url: &str) -> RestReply {
    match client.get(url).send().await {
        Ok(resp) => {
            let status = resp.status().as_u16();
            match resp.text().await {
                Ok(body) => RestReply { status, body },
                Err(_) => RestReply {
                    status: 0,
                    body: String::new(),
                },
            }
        }
        Err(_) => RestReply {
            status: 0,
            body: String::new(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_starts_fast_and_is_capped() {
        for _ in 0..100 {
            assert!(backoff(0) < Duration::from_millis(100));
            assert!(backoff(30) <= Duration::from_millis(5_000));
        }
        assert!(now_ns() > 1_600_000_000_000_000_000);
    }
}
