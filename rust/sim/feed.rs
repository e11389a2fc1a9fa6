//! Paces the synthetic market and publishes its frames.
//!
//! Owns the generator task: a 1 ms ticker with a fractional message budget (`rate` messages per
//! second over all symbols and streams), or, with `rate <= 0`, generation limited only by the
//! slowest client's queue. With `paced`, a thread of its own generates one step at a time, each
//! at its own instant, so a fixed rate has no 1 ms bursts. It serialises only the topics somebody listens to, but advances the
//! market identically either way so that books depend on the seed alone. It must not hold the
//! market lock while sending or sleeping.
//!
//! Unlike the venue, depth diffs are paced by `rate`, not by 100 ms / 1000 ms timers: every
//! generator step is one diff (k = 1..3 merged updates), published under both `<sym>@depth`
//! and `<sym>@depth@100ms`, so a load test controls the diff volume directly.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::time::MissedTickBehavior;

use super::frames::{self, Frame, FrameBatch, Grid};
use super::futures::{force_order, mark_price};
use super::market::{Market, StepOut};
use super::profile::Profile;
use super::{bump, Shared, BROADCAST_CAPACITY};

/// First topic of symbol `sym`.
fn topic_base(sym: usize) -> u32 {
    u32::try_from(sym)
        .unwrap_or(u32::MAX / 16)
        .saturating_mul(KINDS.len() as u32)
}

/// Stream kinds of every synthetic symbol, in topic order (`topic = symbol * 8 + kind`);
/// the last three exist on futures only.
pub(crate) const KINDS: [&str; 8] = [
    "depth@100ms",
    "depth",
    "trade",
    "aggTrade",
    "bookTicker",
    "markPrice",
    "markPrice@1s",
    "forceOrder",
];
const K_DEPTH100: u32 = 0;
const K_DEPTH: u32 = 1;
const K_TRADE: u32 = 2;
const K_AGG: u32 = 3;
const K_BOOK: u32 = 4;
const K_MARK: u32 = 5;
const K_MARK1S: u32 = 6;
const K_LIQ: u32 = 7;
/// `markPrice` (no suffix) pushes every third `markPrice@1s` tick (3 s vs 1 s on the venue).
const MARK_SLOW_EVERY: u64 = 3;

const TICK: Duration = Duration::from_millis(1);
/// Steps per lock hold: keeps REST snapshots from waiting behind a long burst.
const STEPS_PER_LOCK: usize = 64;
/// Budget carried over a stall is capped so a paused process does not flood clients after.
const MAX_CATCH_UP_S: f64 = 0.1;
/// Unbounded mode stops filling once the slowest receiver has this many frames queued.
const HIGH_WATER: usize = BROADCAST_CAPACITY / 2;
/// Lock batches per tick in unbounded mode, bounding the time between cancellation checks.
const MAX_BATCHES_PER_TICK: usize = 256;

/// Wall-clock milliseconds for `E`/`T` fields.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

struct Scratch {
    out: StepOut,
    text: String,
    /// The frames being written (one buffer per batch).
    batch: FrameBatch,
    /// The frames of the last batch, to publish.
    frames: Vec<Frame>,
}

impl Scratch {
    fn new() -> Self {
        Self {
            out: StepOut::default(),
            text: String::with_capacity(4096),
            batch: FrameBatch::default(),
            frames: Vec::with_capacity(STEPS_PER_LOCK * 4),
        }
    }
}

/// Runs the generator until the sim is cancelled.
pub(crate) async fn run(shared: Arc<Shared>, market: Arc<Market>) {
    if shared.paced && shared.rate > 0.0 {
        let (s, m) = (shared.clone(), market.clone());
        let thread = std::thread::Builder::new()
            .name("xtrader-sim-pace".to_string())
            .spawn(move || pace(&s, &m));
        // without a thread (the OS refused one) the 1 ms ticks below still pace the market
        if let Ok(t) = thread {
            shared.cancel.cancelled().await;
            // the thread sees the cancellation within one sleep (at most PACE_MAX_SLEEP)
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
            return;
        }
    }
    let mut ticker = tokio::time::interval(TICK);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut scratch = Scratch::new();
    let rate = shared.rate;
    let max_budget = (rate * MAX_CATCH_UP_S).min((BROADCAST_CAPACITY / 4) as f64) + 8.0;
    let mut budget = 0.0f64;
    let mut last = Instant::now();
    loop {
        tokio::select! {
            () = shared.cancel.cancelled() => break,
            _ = ticker.tick() => {}
        }
        if rate > 0.0 {
            let now = Instant::now();
            budget = (budget + rate * now.duration_since(last).as_secs_f64()).min(max_budget);
            last = now;
            while budget >= 1.0 {
                let want = budget.floor() as u64;
                let made = generate(&shared, &market, &mut scratch, want);
                budget -= made as f64;
                publish(&shared, &mut scratch.frames);
                if made == 0 {
                    break;
                }
            }
        } else {
            for _ in 0..MAX_BATCHES_PER_TICK {
                // Nobody wants data, or the slowest client is behind: let the tick pass.
                if !shared.topics.any_listened() || shared.tx.len() >= HIGH_WATER {
                    break;
                }
                generate(&shared, &market, &mut scratch, STEPS_PER_LOCK as u64 * 4);
                publish(&shared, &mut scratch.frames);
                tokio::task::yield_now().await;
                if shared.cancel.is_cancelled() {
                    break;
                }
            }
        }
    }
}

/// Longest single sleep of the pacing thread (bounds how late it sees the cancellation).
const PACE_MAX_SLEEP: Duration = Duration::from_millis(20);

/// The paced generator (`SimConfig::paced`): step `k` is due when the messages made before
/// it reach `rate * elapsed`; the thread sleeps until then. If it falls behind by more than
/// the catch-up cap, or nobody listens, the schedule restarts from now (no flood afterwards).
fn pace(shared: &Shared, market: &Market) {
    fine_timer_slack();
    let mut scratch = Scratch::new();
    let rate = shared.rate;
    let cap = (rate * MAX_CATCH_UP_S).clamp(1.0, (BROADCAST_CAPACITY / 4) as f64) as u64;
    let mut start = Instant::now();
    let mut made = 0u64;
    while !shared.cancel.is_cancelled() {
        let now = Instant::now();
        // `None` only for absurdly low rates (due beyond what an Instant holds): never due
        let due = Duration::try_from_secs_f64(made as f64 / rate)
            .ok()
            .and_then(|d| start.checked_add(d));
        match due {
            Some(due) if due <= now => {}
            Some(due) => {
                std::thread::sleep((due - now).min(PACE_MAX_SLEEP));
                continue;
            }
            None => {
                std::thread::sleep(PACE_MAX_SLEEP);
                continue;
            }
        }
        let owed = (now.duration_since(start).as_secs_f64() * rate) as u64;
        let owed = owed.saturating_add(1);
        let behind = owed.saturating_sub(made);
        if behind > cap {
            (start, made) = (now, 0);
        }
        let n = generate(shared, market, &mut scratch, 1);
        publish(shared, &mut scratch.frames);
        if n == 0 {
            // nobody listens: idle, and start the schedule afresh when somebody does
            std::thread::sleep(TICK);
            (start, made) = (Instant::now(), 0);
        }
        made += n;
    }
}

/// Ask the kernel for 1 µs timer slack on this thread (the default 50 µs would make every
/// paced sleep that much late). Best effort: without it the pacing is coarser, not wrong.
fn fine_timer_slack() {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_TIMERSLACK takes an integer argument and touches no memory of ours.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1_000 as libc::c_ulong, 0, 0, 0);
    }
}

fn publish(shared: &Shared, frames: &mut Vec<Frame>) {
    for f in frames.drain(..) {
        // An error only means no receiver exists right now; the frame is simply dropped.
        let _ = shared.tx.send(f);
    }
}

/// Runs steps until `want` messages are produced (or one lock batch ends); returns the count.
fn generate(shared: &Shared, market: &Market, s: &mut Scratch, want: u64) -> u64 {
    let now = now_ms();
    let mut made = 0u64;
    let mut state = market.state.lock();
    for _ in 0..STEPS_PER_LOCK {
        if made >= want {
            break;
        }
        state.step(&mut s.out);
        made += u64::from(s.out.message_count());
        serialise(shared, market, s, now);
    }
    drop(state);
    s.batch.finish(&mut s.frames);
    shared
        .stats
        .messages_generated
        .fetch_add(made, Ordering::Relaxed);
    made
}

fn serialise(shared: &Shared, market: &Market, s: &mut Scratch, now: u64) {
    let out = &s.out;
    let Some(spec) = market.specs.get(out.sym) else {
        return;
    };
    let base = topic_base(out.sym);
    let grid = Grid {
        symbol: &spec.symbol,
        tick_e8: spec.tick_e8,
        step_e8: spec.step_e8,
        futures: shared.profile.is_futures(),
        pair: (shared.profile == Profile::CoinM).then_some(spec.pair.as_str()),
    };
    let topics = &shared.topics;
    let emit = |topic: u32, text: &str, batch: &mut FrameBatch| {
        batch.wrap(topic, topics.name(topic), text);
    };
    if out.trade.is_some() {
        if topics.listened(base + K_TRADE) {
            for i in 0..out.fills.len() {
                frames::trade(&mut s.text, grid, out, i, now);
                emit(base + K_TRADE, &s.text, &mut s.batch);
            }
        }
        if topics.listened(base + K_AGG) {
            frames::agg_trade(&mut s.text, grid, out, now);
            emit(base + K_AGG, &s.text, &mut s.batch);
        }
    }
    if out.top.is_some() && topics.listened(base + K_BOOK) {
        frames::book_ticker(&mut s.text, grid, out, now);
        emit(base + K_BOOK, &s.text, &mut s.batch);
    }
    if out.suppressed {
        shared.stats.gaps_injected.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let (fast, slow) = (
        topics.listened(base + K_DEPTH100),
        topics.listened(base + K_DEPTH),
    );
    if fast || slow {
        frames::depth_update(&mut s.text, grid, out, now);
        if fast {
            emit(base + K_DEPTH100, &s.text, &mut s.batch);
        }
        if slow {
            emit(base + K_DEPTH, &s.text, &mut s.batch);
        }
    }
}

/// Futures only: pushes `markPrice@1s` for every symbol each `interval` (`markPrice` every
/// third time) and, with probability `liquidation_prob` per symbol and interval, a
/// `forceOrder` at the touch (its own seeded generator: the market stays seed-determined).
pub(crate) async fn run_marks(
    shared: Arc<Shared>,
    market: Arc<Market>,
    interval: Duration,
    liquidation_prob: f64,
    seed: u64,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut rng = fastrand::Rng::with_seed(seed ^ 0x5eed_f00d);
    let mut text = String::with_capacity(512);
    let mut frames = Vec::with_capacity(market.specs.len() * 3);
    for round in 0u64.. {
        tokio::select! {
            () = shared.cancel.cancelled() => break,
            _ = ticker.tick() => {}
        }
        let now = now_ms();
        let tops: Vec<_> = {
            let state = market.state.lock();
            (0..market.specs.len()).map(|i| state.top(i)).collect()
        };
        let topics = &shared.topics;
        for (i, (spec, top)) in market.specs.iter().zip(tops).enumerate() {
            let Some(top) = top else { continue };
            let base = topic_base(i);
            let slow = round % MARK_SLOW_EVERY == 0;
            let (fast_on, slow_on) = (
                topics.listened(base + K_MARK1S),
                slow && topics.listened(base + K_MARK),
            );
            if fast_on || slow_on {
                mark_price(&mut text, spec, top, now);
                bump(&shared.stats.marks_generated);
                if fast_on {
                    frames.push(Frame::wrap(
                        base + K_MARK1S,
                        topics.name(base + K_MARK1S),
                        &text,
                    ));
                }
                if slow_on {
                    frames.push(Frame::wrap(
                        base + K_MARK,
                        topics.name(base + K_MARK),
                        &text,
                    ));
                }
            }
            if rng.f64() < liquidation_prob && topics.listened(base + K_LIQ) {
                // a liquidated long sells into the bid, a short buys the ask
                let sell = rng.bool();
                let (price, lots) = if sell { top.0 } else { top.1 };
                let lots = lots
                    .min(spec.unit_lots.saturating_mul(rng.i64(1..=5)))
                    .max(1);
                force_order(&mut text, shared.profile, spec, sell, price, lots, now);
                bump(&shared.stats.liquidations_generated);
                frames.push(Frame::wrap(base + K_LIQ, topics.name(base + K_LIQ), &text));
            }
        }
        publish(&shared, &mut frames);
    }
}
