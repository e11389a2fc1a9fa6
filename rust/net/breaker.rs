//! A circuit breaker per venue, shared by every socket of that venue.
//!
//! Closed: connections are attempted freely (the socket's own backoff paces them). After
//! [`FAILURES_TO_OPEN`] consecutive failures (a connect that failed, or a connection that
//! ended before delivering any frame) it opens: nobody connects for a cool-down that doubles
//! with each consecutive opening (with jitter, capped). Then it is half-open: one socket
//! gets to probe while the others keep waiting; a probe that delivers a frame closes the
//! breaker, a failed one opens it again. A venue that is down thus costs one attempt per
//! cool-down instead of one per socket per backoff step.
//!
//! Transitions are returned to the caller, which reports them as status events; nothing
//! here formats text or touches the bus.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// Consecutive failures that open the breaker.
pub const FAILURES_TO_OPEN: u32 = 5;
/// First cool-down; doubles per consecutive opening up to [`MAX_COOLDOWN`].
pub const BASE_COOLDOWN: Duration = Duration::from_millis(1000);
/// Longest cool-down.
pub const MAX_COOLDOWN: Duration = Duration::from_secs(30);
/// How long a socket that is not the probe waits before asking again.
const PROBE_WAIT: Duration = Duration::from_millis(100);

/// The breaker's state (gauge values in `/metrics`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Connections allowed.
    Closed = 0,
    /// Nobody connects until the cool-down ends.
    Open = 1,
    /// One probe connection is allowed.
    HalfOpen = 2,
}

impl BreakerState {
    /// `closed`, `open`, `half_open`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open => "open",
            Self::HalfOpen => "half_open",
        }
    }

    fn from_code(c: u8) -> Self {
        match c {
            1 => Self::Open,
            2 => Self::HalfOpen,
            _ => Self::Closed,
        }
    }
}

/// What a socket may do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permit {
    /// Connect (closed breaker).
    Go,
    /// Connect as the half-open probe; the transition to half-open is reported by this
    /// socket.
    Probe,
    /// Wait this long and ask again.
    Wait(Duration),
}

/// A state change to report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// Opened after `failures` consecutive failures, for `cooldown`.
    Opened {
        /// Consecutive failures.
        failures: u32,
        /// Cool-down before the probe.
        cooldown: Duration,
    },
    /// The cool-down ended: a probe connects.
    HalfOpen,
    /// A connection delivered data again.
    Closed,
}

#[derive(Debug)]
struct Inner {
    state: BreakerState,
    failures: u32,
    /// Consecutive openings (the cool-down exponent).
    openings: u32,
    open_until: Instant,
    probing: bool,
}

/// A venue's circuit breaker.
#[derive(Debug)]
pub struct CircuitBreaker {
    inner: Mutex<Inner>,
    state: AtomicU8,
    /// Times the breaker opened.
    pub opened: AtomicU64,
    /// Connection attempts refused while open.
    pub refused: AtomicU64,
    failures_to_open: u32,
    base_cooldown: Duration,
}

impl Default for CircuitBreaker {
    fn default() -> Self {
        Self::new(FAILURES_TO_OPEN, BASE_COOLDOWN)
    }
}

impl CircuitBreaker {
    /// A closed breaker opening after `failures_to_open` failures for `base_cooldown`
    /// (doubling per consecutive opening).
    #[must_use]
    pub fn new(failures_to_open: u32, base_cooldown: Duration) -> Self {
        Self {
            inner: Mutex::new(Inner {
                state: BreakerState::Closed,
                failures: 0,
                openings: 0,
                open_until: Instant::now(),
                probing: false,
            }),
            state: AtomicU8::new(BreakerState::Closed as u8),
            opened: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            failures_to_open: failures_to_open.max(1),
            base_cooldown,
        }
    }

    /// Current state.
    #[must_use]
    pub fn state(&self) -> BreakerState {
        BreakerState::from_code(self.state.load(Ordering::Relaxed))
    }

    fn set(&self, inner: &mut Inner, state: BreakerState) {
        inner.state = state;
        self.state.store(state as u8, Ordering::Relaxed);
    }

    /// May a socket connect now?
    pub fn permit(&self) -> Permit {
        self.permit_at(Instant::now())
    }

    fn permit_at(&self, now: Instant) -> Permit {
        let mut g = self.inner.lock();
        match g.state {
            BreakerState::Closed => Permit::Go,
            BreakerState::Open if now >= g.open_until => {
                self.set(&mut g, BreakerState::HalfOpen);
                g.probing = true;
                Permit::Probe
            }
            BreakerState::Open => {
                self.refused.fetch_add(1, Ordering::Relaxed);
                Permit::Wait(g.open_until - now)
            }
            BreakerState::HalfOpen if !g.probing => {
                g.probing = true;
                Permit::Probe
            }
            BreakerState::HalfOpen => {
                self.refused.fetch_add(1, Ordering::Relaxed);
                Permit::Wait(PROBE_WAIT)
            }
        }
    }

    /// A connection delivered data: the venue is reachable.
    pub fn on_success(&self) -> Option<Transition> {
        let mut g = self.inner.lock();
        g.failures = 0;
        g.probing = false;
        if g.state == BreakerState::Closed {
            return None;
        }
        g.openings = 0;
        self.set(&mut g, BreakerState::Closed);
        Some(Transition::Closed)
    }

    /// A connection attempt failed (or ended before any data).
    pub fn on_failure(&self) -> Option<Transition> {
        self.on_failure_at(Instant::now())
    }

    fn on_failure_at(&self, now: Instant) -> Option<Transition> {
        let mut g = self.inner.lock();
        g.failures = g.failures.saturating_add(1);
        let trip = match g.state {
            BreakerState::Closed => g.failures >= self.failures_to_open,
            // a failed probe reopens at once
            BreakerState::HalfOpen => true,
            BreakerState::Open => false,
        };
        if !trip {
            return None;
        }
        let factor = 1u32 << g.openings.min(5);
        let base = (self.base_cooldown * factor).min(MAX_COOLDOWN);
        // jitter in the upper quarter so breakers of several processes do not probe together
        let jitter_ms = fastrand::u64(0..=u64::try_from(base.as_millis() / 4).unwrap_or(0));
        let cooldown = base - base / 4 + Duration::from_millis(jitter_ms);
        g.openings = g.openings.saturating_add(1);
        g.open_until = now + cooldown;
        g.probing = false;
        self.set(&mut g, BreakerState::Open);
        self.opened.fetch_add(1, Ordering::Relaxed);
        Some(Transition::Opened {
            failures: g.failures,
            cooldown,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_repeated_failures_and_probes_once() {
        let b = CircuitBreaker::new(3, Duration::from_millis(1000));
        let t0 = Instant::now();
        assert_eq!(b.permit_at(t0), Permit::Go);
        assert_eq!(b.on_failure_at(t0), None);
        assert_eq!(b.on_failure_at(t0), None);
        let Some(Transition::Opened { failures, cooldown }) = b.on_failure_at(t0) else {
            panic!("third failure must open the breaker");
        };
        assert_eq!(failures, 3);
        assert!(cooldown >= Duration::from_millis(750) && cooldown <= Duration::from_millis(1000));
        assert_eq!(b.state(), BreakerState::Open);
        assert!(matches!(b.permit_at(t0), Permit::Wait(_)));
        assert_eq!(b.refused.load(Ordering::Relaxed), 1);
        // after the cool-down one socket probes, the others wait
        let later = t0 + cooldown;
        assert_eq!(b.permit_at(later), Permit::Probe);
        assert_eq!(b.state(), BreakerState::HalfOpen);
        assert!(matches!(b.permit_at(later), Permit::Wait(_)));
        // the probe delivers: closed again
        assert_eq!(b.on_success(), Some(Transition::Closed));
        assert_eq!(b.state(), BreakerState::Closed);
        assert_eq!(b.permit_at(later), Permit::Go);
        assert_eq!(b.on_success(), None);
    }

    #[test]
    fn failed_probe_reopens_with_a_longer_cooldown() {
        let b = CircuitBreaker::new(1, Duration::from_millis(1000));
        let t0 = Instant::now();
        let Some(Transition::Opened {
            cooldown: first, ..
        }) = b.on_failure_at(t0)
        else {
            panic!("must open");
        };
        let t1 = t0 + first;
        assert_eq!(b.permit_at(t1), Permit::Probe);
        let Some(Transition::Opened {
            cooldown: second, ..
        }) = b.on_failure_at(t1)
        else {
            panic!("a failed probe must reopen");
        };
        assert!(second >= Duration::from_millis(1500), "{second:?}");
        assert_eq!(b.opened.load(Ordering::Relaxed), 2);
        // capped
        let mut t = t1 + second;
        for _ in 0..10 {
            assert_eq!(b.permit_at(t), Permit::Probe);
            let Some(Transition::Opened { cooldown, .. }) = b.on_failure_at(t) else {
                panic!("must reopen");
            };
            assert!(cooldown <= MAX_COOLDOWN);
            t += cooldown;
        }
    }

    #[test]
    fn a_success_resets_the_failure_count() {
        let b = CircuitBreaker::new(3, Duration::from_millis(10));
        let t0 = Instant::now();
        b.on_failure_at(t0);
        b.on_failure_at(t0);
        b.on_success();
        assert_eq!(b.on_failure_at(t0), None);
        assert_eq!(b.state(), BreakerState::Closed);
    }
}
