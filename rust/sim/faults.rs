//! Fault injection state of the simulator: stalls (data withheld while pings go on, for
//! every stream or one stream kind), forced disconnects of every websocket, and forced REST
//! answers (429 with `Retry-After`, 418 bans, 500s). The session and REST code ask it on
//! their paths; `SimHandle` methods set it. Gaps stay in `market.rs` (`mark_gap`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::watch;
use tokio::time::Instant;

/// Forced answers to the next REST requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RestFault {
    pub status: u16,
    pub remaining: u32,
    pub retry_after_s: u64,
}

#[derive(Debug)]
struct Stall {
    until: Instant,
    /// Stream kind (`markPrice@1s`, `depth@100ms`), or every data frame when `None`.
    kind: Option<String>,
}

/// Fault switches shared by every task of a simulator.
#[derive(Debug)]
pub(crate) struct Faults {
    stall_active: AtomicBool,
    stall: Mutex<Option<Stall>>,
    kick: watch::Sender<u64>,
    rest: Mutex<Option<RestFault>>,
}

impl Faults {
    pub(crate) fn new() -> Faults {
        Faults {
            stall_active: AtomicBool::new(false),
            stall: Mutex::new(None),
            kick: watch::channel(0).0,
            rest: Mutex::new(None),
        }
    }

    /// Withhold data frames (of one stream kind) for `d`; pings and replies continue.
    pub(crate) fn stall(&self, d: Duration, kind: Option<String>) {
        *self.stall.lock() = Some(Stall {
            until: Instant::now() + d,
            kind,
        });
        self.stall_active.store(true, Ordering::Release);
    }

    /// Whether a data frame of stream `name` (`btcusdt@depth@100ms`) is withheld now.
    pub(crate) fn stalled(&self, name: &str) -> bool {
        if !self.stall_active.load(Ordering::Acquire) {
            return false;
        }
        let mut guard = self.stall.lock();
        let Some(stall) = guard.as_ref() else {
            return false;
        };
        if Instant::now() >= stall.until {
            *guard = None;
            self.stall_active.store(false, Ordering::Release);
            return false;
        }
        let kind = name.split_once('@').map_or("", |(_, k)| k);
        stall.kind.as_deref().is_none_or(|k| k == kind)
    }

    /// Drop every open websocket (sessions watch this).
    pub(crate) fn kick_all(&self) {
        self.kick.send_modify(|n| *n += 1);
    }

    pub(crate) fn kicks(&self) -> watch::Receiver<u64> {
        self.kick.subscribe()
    }

    /// Answer the next `count` depth / open-interest requests with `status`.
    pub(crate) fn set_rest(&self, status: u16, count: u32, retry_after_s: u64) {
        *self.rest.lock() = (count > 0).then_some(RestFault {
            status,
            remaining: count,
            retry_after_s,
        });
    }

    /// The forced answer for this request, if one is pending.
    pub(crate) fn take_rest(&self) -> Option<RestFault> {
        let mut guard = self.rest.lock();
        let fault = guard.as_mut()?;
        fault.remaining = fault.remaining.saturating_sub(1);
        let out = *fault;
        if fault.remaining == 0 {
            *guard = None;
        }
        Some(out)
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn test_faults_stall_filter_and_rest_countdown() {
        let f = Faults::new();
        assert!(!f.stalled("btcusdt@depth@100ms"));
        f.stall(Duration::from_secs(60), Some("markPrice@1s".into()));
        assert!(f.stalled("btcusdt@markPrice@1s"));
        assert!(!f.stalled("btcusdt@depth@100ms"));
        f.set_rest(429, 2, 3);
        assert_eq!(f.take_rest().map(|r| r.status), Some(429));
        assert_eq!(f.take_rest().map(|r| r.retry_after_s), Some(3));
        assert_eq!(f.take_rest(), None);
    }
}
