//! Paces the synthetic OKX market and publishes its frames.
//!
//! Owns the OKX generator task: `rate` market steps per second (one step = one book update
//! of one instrument, with or without a trade), each serialised for the channels somebody
//! listens to, with `seqId`/`prevSeqId` from the market's update ids and the checksum of the
//! book after the step; every 250 ms the slow channels (funding, mark price, open interest)
//! and every second a liquidation per subscribed instrument type. Injected faults act here:
//! a wrong checksum, an update withheld (`prevSeqId` breaks), a stall. It never holds the
//! market lock while sending or sleeping.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::{Instant, MissedTickBehavior};

use super::super::feed::now_ms;
use super::super::market::{Market, MarketState, StepOut};
use super::super::{Shared, BROADCAST_CAPACITY};
use super::frames::{self, BookSeq, Grid, TickerNums};
use super::specs::InstType;
use super::{liq_topic, take, topic, OkxFrame, OkxSim, INCREMENTAL, LIQ_TYPES};

const TICK: Duration = Duration::from_millis(1);
/// Steps per lock hold: keeps REST snapshots and subscriptions from waiting behind a burst.
const STEPS_PER_LOCK: u64 = 64;
/// Budget carried over a stall is capped so a paused process does not flood clients after.
const MAX_CATCH_UP_S: f64 = 0.1;
const SLOW_EVERY: Duration = Duration::from_millis(250);
const LIQ_EVERY: Duration = Duration::from_secs(1);

struct Scratch {
    out: StepOut,
    text: String,
    cks: String,
    frames: Vec<Arc<OkxFrame>>,
    liq_turn: usize,
}

/// Runs the generator until the sim is cancelled.
pub(crate) async fn run(shared: Arc<Shared>, okx: Arc<OkxSim>, market: Arc<Market>) {
    let mut ticker = tokio::time::interval(TICK);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut s = Scratch {
        out: StepOut::default(),
        text: String::with_capacity(4096),
        cks: String::with_capacity(1024),
        frames: Vec::with_capacity(256),
        liq_turn: 0,
    };
    // a rate of 0 (as fast as possible) is paced at a high fixed rate here: OKX is the side
    // profile and must not starve the Binance generator on a shared runtime
    let rate = if shared.rate > 0.0 {
        shared.rate
    } else {
        50_000.0
    };
    let max_budget = (rate * MAX_CATCH_UP_S).min((BROADCAST_CAPACITY / 4) as f64) + 8.0;
    let mut budget = 0.0f64;
    let mut last = Instant::now();
    let (mut next_slow, mut next_liq) = (last + SLOW_EVERY, last + LIQ_EVERY);
    loop {
        tokio::select! {
            () = shared.cancel.cancelled() => break,
            _ = ticker.tick() => {}
        }
        let now = Instant::now();
        budget = (budget + rate * now.duration_since(last).as_secs_f64()).min(max_budget);
        last = now;
        if okx.stalled(None, now) {
            budget = 0.0; // the venue is silent: the market does not move either
            continue;
        }
        while budget >= 1.0 {
            let want = (budget.floor() as u64).min(STEPS_PER_LOCK);
            generate(&shared, &okx, &market, &mut s, want, now);
            budget -= want as f64;
            publish(&okx, &mut s.frames);
        }
        if now >= next_slow {
            next_slow = now + SLOW_EVERY;
            slow_channels(&okx, &market, &mut s, now);
            publish(&okx, &mut s.frames);
        }
        if now >= next_liq {
            next_liq = now + LIQ_EVERY;
            liquidations(&okx, &market, &mut s, now);
            publish(&okx, &mut s.frames);
        }
    }
}

fn publish(okx: &OkxSim, frames: &mut Vec<Arc<OkxFrame>>) {
    for f in frames.drain(..) {
        // an error only means no receiver exists right now
        let _ = okx.tx.send(f);
    }
}

fn frame(topic: u32, seq: Option<i64>, text: &str) -> Arc<OkxFrame> {
    Arc::new(OkxFrame {
        topic,
        seq,
        text: text.into(),
    })
}

fn i64_of(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn generate(
    shared: &Shared,
    okx: &OkxSim,
    market: &Market,
    s: &mut Scratch,
    want: u64,
    now: Instant,
) {
    let ts = now_ms();
    let mut state = market.state.lock();
    for _ in 0..want {
        state.step(&mut s.out);
        serialise(shared, okx, &state, s, ts, now);
    }
    drop(state);
    shared
        .stats
        .messages_generated
        .fetch_add(want, Ordering::Relaxed);
}

fn serialise(
    shared: &Shared,
    okx: &OkxSim,
    state: &MarketState,
    s: &mut Scratch,
    ts: u64,
    now: Instant,
) {
    let i = s.out.sym;
    let Some(spec) = okx.specs.get(i) else { return };
    if okx.stalled(Some(i), now) {
        return; // withheld: the symbol's book moves on without its subscribers
    }
    let g = Grid {
        tick_e8: spec.market.tick_e8,
        step_e8: spec.market.step_e8,
    };
    let id = spec.inst_id.as_str();
    let listened = |kind: &str| topic(i, kind).filter(|t| okx.topics.listened(*t));
    let (first, last) = (i64_of(s.out.first_id), i64_of(s.out.last_id));
    if s.out.suppressed {
        shared.stats.gaps_injected.fetch_add(1, Ordering::Relaxed);
    } else if INCREMENTAL.iter().any(|k| listened(k).is_some()) {
        let mut checksum = 0;
        if okx.cfg.checksum {
            if let Some((_, bids, asks)) = state.snapshot(i, 25) {
                checksum = frames::checksum(&bids, &asks, g, &mut s.cks);
            }
        }
        if take(okx.faults.bad_checksum.get(i)) {
            checksum ^= 0x5a5a; // nonzero and wrong, whatever the real value
            shared
                .stats
                .okx_faults_applied
                .fetch_add(1, Ordering::Relaxed);
        }
        let seq = BookSeq {
            prev: first - 1,
            seq: last,
            checksum,
        };
        for kind in INCREMENTAL {
            if let Some(t) = listened(kind) {
                frames::book(
                    &mut s.text,
                    kind,
                    id,
                    Some("update"),
                    &s.out.bids,
                    &s.out.asks,
                    g,
                    seq,
                    ts,
                );
                s.frames.push(frame(t, Some(last), &s.text));
            }
        }
    }
    let top_seq = BookSeq {
        prev: 0,
        seq: last,
        checksum: 0,
    };
    if let Some(t) = listened("books5") {
        if let Some((_, bids, asks)) = state.snapshot(i, 5) {
            frames::book(
                &mut s.text,
                "books5",
                id,
                None,
                &bids,
                &asks,
                g,
                top_seq,
                ts,
            );
            s.frames.push(frame(t, None, &s.text));
        }
    }
    if let (Some(top), Some(t)) = (s.out.top, listened("bbo-tbt")) {
        frames::book(
            &mut s.text,
            "bbo-tbt",
            id,
            None,
            &[top.bid],
            &[top.ask],
            g,
            top_seq,
            ts,
        );
        s.frames.push(frame(t, None, &s.text));
    }
    if let Some(head) = s.out.trade {
        let px = head.price * g.tick_e8;
        let taker_buys = !head.buyer_maker;
        if let Some(t) = listened("trades") {
            let lots: i64 = s.out.fills.iter().map(|f| f.1).sum();
            let last_id = s.out.fills.last().map_or(0, |f| f.0);
            frames::trade(
                &mut s.text,
                "trades",
                id,
                last_id,
                px,
                lots * g.step_e8,
                taker_buys,
                ts,
            );
            s.frames.push(frame(t, None, &s.text));
        }
        if let Some(t) = listened("trades-all") {
            for &(fill_id, lots) in &s.out.fills {
                frames::trade(
                    &mut s.text,
                    "trades-all",
                    id,
                    fill_id,
                    px,
                    lots * g.step_e8,
                    taker_buys,
                    ts,
                );
                s.frames.push(frame(t, None, &s.text));
            }
        }
    }
    if s.out.trade.is_some() || s.out.top.is_some() {
        if let (Some(t), Some((_, bids, asks))) = (listened("tickers"), state.snapshot(i, 1)) {
            let (bid, ask) = (
                bids.first().copied().unwrap_or_default(),
                asks.first().copied().unwrap_or_default(),
            );
            let last_px = s.out.trade.map_or(bid.0, |h| h.price) * g.tick_e8;
            let last_sz = s.out.fills.iter().map(|f| f.1).sum::<i64>().max(1) * g.step_e8;
            let vol = (last % 1_000_000 + 1_000) * g.step_e8;
            let n = TickerNums {
                last: last_px,
                last_sz,
                bid: (bid.0 * g.tick_e8, bid.1 * g.step_e8),
                ask: (ask.0 * g.tick_e8, ask.1 * g.step_e8),
                vol,
                vol_ccy: vol / 7,
            };
            frames::ticker(&mut s.text, spec.inst_type.name(), id, n, ts);
            s.frames.push(frame(t, None, &s.text));
        }
    }
}

/// Mid price in units of 1e-8 and the last update id of instrument `i`.
fn mid(state: &MarketState, i: usize, tick_e8: i64) -> Option<(i64, u64)> {
    let (last, bids, asks) = state.snapshot(i, 1)?;
    let (b, a) = (bids.first()?, asks.first()?);
    Some(((b.0 + a.0) * tick_e8 / 2, last))
}

fn slow_channels(okx: &OkxSim, market: &Market, s: &mut Scratch, now: Instant) {
    let ts = now_ms();
    let state = market.state.lock();
    for (i, spec) in okx.specs.iter().enumerate() {
        if spec.inst_type == InstType::Spot || okx.stalled(Some(i), now) {
            continue;
        }
        let Some((mark, seq)) = mid(&state, i, spec.market.tick_e8) else {
            continue;
        };
        let listened = |kind: &str| topic(i, kind).filter(|t| okx.topics.listened(*t));
        if let (InstType::Swap, Some(t)) = (spec.inst_type, listened("funding-rate")) {
            let rate_e8 = 10_000 + i64_of(seq % 50) * 100 - 2_500; // around 0.0001
            frames::funding_rate(&mut s.text, &spec.inst_id, rate_e8, ts);
            s.frames.push(frame(t, None, &s.text));
        }
        if let Some(t) = listened("mark-price") {
            frames::mark_price(&mut s.text, spec.inst_type.name(), &spec.inst_id, mark, ts);
            s.frames.push(frame(t, None, &s.text));
        }
        if let Some(t) = listened("open-interest") {
            let oi_lots = i64_of(seq % 100_000) + 10_000;
            let ct: f64 = spec.ct_val.parse::<f64>().unwrap_or(1.0)
                * spec.ct_mult.parse::<f64>().unwrap_or(1.0);
            // oiCcy is in the base coin: contracts x value, divided by price when inverse
            let mut ccy = oi_lots as f64 * ct;
            if spec.ct_type == "inverse" && mark > 0 {
                ccy /= mark as f64 / 1e8;
            }
            frames::open_interest(
                &mut s.text,
                spec.inst_type.name(),
                &spec.inst_id,
                oi_lots * 100_000_000,
                (ccy * 1e8) as i64,
                ts,
            );
            s.frames.push(frame(t, None, &s.text));
        }
    }
}

fn liquidations(okx: &OkxSim, market: &Market, s: &mut Scratch, now: Instant) {
    let ts = now_ms();
    let n = okx.specs.len();
    let state = market.state.lock();
    for ty in LIQ_TYPES {
        let Some(t) = liq_topic(n, ty).filter(|t| okx.topics.listened(*t)) else {
            continue;
        };
        let of_type: Vec<usize> = okx
            .specs
            .iter()
            .enumerate()
            .filter(|(i, sp)| sp.inst_type.name() == ty && !okx.stalled(Some(*i), now))
            .map(|(i, _)| i)
            .collect();
        if of_type.is_empty() {
            continue;
        }
        s.liq_turn = s.liq_turn.wrapping_add(1);
        let i = of_type[s.liq_turn % of_type.len()];
        let Some(spec) = okx.specs.get(i) else {
            continue;
        };
        let Some((mark, seq)) = mid(&state, i, spec.market.tick_e8) else {
            continue;
        };
        let sz = (i64_of(seq % 5) + 1) * spec.market.step_e8;
        frames::liquidation(
            &mut s.text,
            ty,
            &spec.inst_id,
            &spec.family,
            seq % 2 == 0,
            mark,
            sz,
            ts,
        );
        s.frames.push(frame(t, None, &s.text));
    }
}
