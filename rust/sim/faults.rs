//! Fault injection state of the simulator: stalls (data withheld while pings go on, for
//! every stream or one stream kind), forced disconnects of every websocket, forced REST
//! answers (429 with `Retry-After`, 418 bans, 500s), slow snapshot answers, refused Binance
//! subscriptions, and frames pushed to every websocket as they are (binary, not UTF-8, or
//! larger than any venue sends). The session and REST code ask it on their paths; `SimHandle`
//! methods set it. Gaps stay in `market.rs` (`mark_gap`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::{broadcast, watch};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

/// Injected frames queued per session; a test injects a handful, a lagging session skips.
const INJECT_CAPACITY: usize = 16;

/// Largest frame `inject` accepts (bytes): above every client limit worth testing.
pub(crate) const MAX_INJECTED: usize = 64 * 1024 * 1024;

/// Forced answers to the next REST requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RestFault {
    pub status: u16,
    pub remaining: u32,
    pub retry_after_s: u64,
}

/// A countdown of faults that apply to one symbol, or to every symbol when `symbol` is `None`.
#[derive(Debug)]
struct Countdown {
    symbol: Option<String>,
    remaining: u32,
}

impl Countdown {
    /// Consumes one application when `symbol` matches (case-insensitive).
    fn take(slot: &Mutex<Option<Countdown>>, symbol: Option<&str>) -> bool {
        let mut guard = slot.lock();
        let Some(c) = guard.as_mut() else {
            return false;
        };
        let matches = match (&c.symbol, symbol) {
            (None, _) => true,
            (Some(want), Some(got)) => want.eq_ignore_ascii_case(got),
            (Some(_), None) => false,
        };
        if !matches {
            return false;
        }
        c.remaining = c.remaining.saturating_sub(1);
        if c.remaining == 0 {
            *guard = None;
        }
        true
    }

    fn set(slot: &Mutex<Option<Countdown>>, symbol: Option<&str>, count: u32) {
        *slot.lock() = (count > 0).then(|| Countdown {
            symbol: symbol.map(str::to_string),
            remaining: count,
        });
    }
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
    inject: broadcast::Sender<Message>,
    /// Keepalives withheld until then too (server pings, OKX pongs): a half-open socket.
    mute_until: Mutex<Option<Instant>>,
    slow_snapshots: Mutex<Option<Countdown>>,
    snapshot_delay: Mutex<Duration>,
    refused_subs: Mutex<Option<Countdown>>,
}

impl Faults {
    pub(crate) fn new() -> Faults {
        Faults {
            stall_active: AtomicBool::new(false),
            stall: Mutex::new(None),
            kick: watch::channel(0).0,
            rest: Mutex::new(None),
            inject: broadcast::channel(INJECT_CAPACITY).0,
            mute_until: Mutex::new(None),
            slow_snapshots: Mutex::new(None),
            snapshot_delay: Mutex::new(Duration::ZERO),
            refused_subs: Mutex::new(None),
        }
    }

    /// Withhold keepalives too (server pings, answers to OKX `ping`) for `d`.
    pub(crate) fn mute(&self, d: Duration) {
        *self.mute_until.lock() = Some(Instant::now() + d);
    }

    /// Whether keepalives are withheld now.
    pub(crate) fn muted(&self) -> bool {
        self.mute_until.lock().is_some_and(|t| Instant::now() < t)
    }

    /// Pushes `msg` to every open websocket session of both venues, unchanged.
    pub(crate) fn inject(&self, msg: Message) {
        let _ = self.inject.send(msg);
    }

    /// Frames injected from now on (each session subscribes when it starts).
    pub(crate) fn injected(&self) -> broadcast::Receiver<Message> {
        self.inject.subscribe()
    }

    /// Answer the next `count` snapshot requests (of `symbol`, or any) `delay` late.
    pub(crate) fn slow_snapshots(&self, symbol: Option<&str>, count: u32, delay: Duration) {
        *self.snapshot_delay.lock() = delay;
        Countdown::set(&self.slow_snapshots, symbol, count);
    }

    /// The delay for a snapshot request of `symbol`, if one is pending.
    pub(crate) fn take_snapshot_delay(&self, symbol: Option<&str>) -> Option<Duration> {
        Countdown::take(&self.slow_snapshots, symbol).then(|| *self.snapshot_delay.lock())
    }

    /// Refuse the next `count` SUBSCRIBE requests naming a stream of `symbol` (Binance).
    pub(crate) fn refuse_subscriptions(&self, symbol: &str, count: u32) {
        Countdown::set(&self.refused_subs, Some(symbol), count);
    }

    /// Whether a SUBSCRIBE naming streams of `symbol` is refused now (consumes one refusal).
    pub(crate) fn take_refusal(&self, symbol: &str) -> bool {
        Countdown::take(&self.refused_subs, Some(symbol))
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

    #[test]
    fn test_faults_countdowns_match_symbols() {
        let f = Faults::new();
        f.slow_snapshots(Some("ETHUSDT"), 2, Duration::from_millis(300));
        assert_eq!(f.take_snapshot_delay(Some("BTCUSDT")), None);
        assert_eq!(f.take_snapshot_delay(None), None);
        assert_eq!(
            f.take_snapshot_delay(Some("ethusdt")),
            Some(Duration::from_millis(300))
        );
        assert!(f.take_snapshot_delay(Some("ETHUSDT")).is_some());
        assert_eq!(f.take_snapshot_delay(Some("ETHUSDT")), None);
        f.slow_snapshots(None, 1, Duration::from_millis(5));
        assert!(f.take_snapshot_delay(Some("ANY")).is_some());
        f.refuse_subscriptions("ETHUSDT", 1);
        assert!(!f.take_refusal("BTCUSDT"));
        assert!(f.take_refusal("ethusdt"));
        assert!(!f.take_refusal("ETHUSDT"));
        assert!(!f.muted());
        f.mute(Duration::from_secs(60));
        assert!(f.muted());
        let mut rx = f.injected();
        f.inject(Message::Binary(vec![0xff, 0xfe].into()));
        assert!(matches!(rx.try_recv(), Ok(Message::Binary(b)) if b.len() == 2));
    }
}
