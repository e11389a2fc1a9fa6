//! The venue-wide REST scheduler: every REST request of a venue (depth snapshots, open
//! interest polls, reference data) waits in one priority queue and leaves only when the
//! venue's request-weight budget has room (Binance: `REQUEST_WEIGHT` 2400/min futures,
//! 6000/min spot, exchanges.md 2.7 and 3.5; exceeding it gets the IP banned).
//!
//! Owns: the sliding-window weight log, the three priority queues (a live book that broke
//! resyncs before a new book syncs, which goes before polling), the bound on requests in
//! flight, and the venue's answers to overload: HTTP 429 pauses the whole queue for
//! `Retry-After` and puts the request back in front of its queue (never fails it), HTTP 418
//! (ban) pauses it hard. Everything is bounded and counted. It never parses bodies: answers
//! go back, tagged, to whoever asked.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::{mpsc, Notify};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Requests queued at once over all priorities; past it `submit` refuses (and counts).
pub const MAX_QUEUED: usize = 65_536;
/// Requests in flight at once per venue (the REST client keeps a few connections per host).
pub const MAX_IN_FLIGHT: usize = 8;
/// Share of the published limit this process spends: the rest absorbs clock skew between
/// our sliding window and the venue's fixed one, and other clients on the same IP.
const SAFETY_NUM: u32 = 9;
const SAFETY_DEN: u32 = 10;
/// Pause after a 429 without `Retry-After`, doubled per consecutive 429, capped.
const THROTTLE_PAUSE: Duration = Duration::from_secs(1);
const MAX_THROTTLE_PAUSE: Duration = Duration::from_secs(60);
/// Pause after a 418 without `Retry-After` (Binance bans start at 2 minutes).
const BAN_PAUSE: Duration = Duration::from_secs(120);
/// Longest pause honoured from a `Retry-After` header (a ban can last days: we retry and
/// let the venue tell us again rather than sleep unobservably).
const MAX_PAUSE: Duration = Duration::from_secs(3600);

/// Which queue a request waits in; lower runs first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Priority {
    /// A book that was live lost integrity: every moment it is stale costs users.
    Resync = 0,
    /// A book syncing for the first time.
    Sync = 1,
    /// Periodic polls (open interest): can always wait.
    Poll = 2,
}

/// A request-weight limit: at most `limit` weight per `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WeightLimit {
    /// Weight allowed per window.
    pub limit: u32,
    /// Window length.
    pub window: Duration,
}

impl WeightLimit {
    /// No practical limit (venues that publish none).
    pub const UNLIMITED: WeightLimit = WeightLimit {
        limit: u32::MAX,
        window: Duration::from_secs(60),
    };
}

/// One REST GET waiting for budget.
#[derive(Debug)]
pub struct RestRequest {
    /// URL.
    pub url: String,
    /// Weight the venue charges for it.
    pub weight: u32,
    /// Queue.
    pub priority: Priority,
    /// Duplicate key: a queued request with the same key absorbs this one.
    pub key: u64,
    /// Who asked (one socket); [`RestScheduler::cancel_owner`] drops its queued requests.
    pub owner: u64,
    /// Opaque tag returned with the answer.
    pub tag: u64,
    /// Where the answer goes.
    pub reply: mpsc::Sender<RestAnswer>,
}

/// A REST answer delivered to the requester (never a 429/418: those are retried here).
#[derive(Debug)]
pub struct RestAnswer {
    /// The request's tag.
    pub tag: u64,
    /// HTTP status, 0 = transport error.
    pub status: u16,
    /// Body.
    pub body: String,
    /// Local receive time, ns.
    pub ts_recv: i64,
}

/// A rate-limit answer from the venue, for the feed to report as a status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitNotice {
    /// 429 or 418.
    pub http_status: u16,
    /// Pause applied, ms.
    pub retry_ms: u64,
}

#[derive(Debug, Default)]
struct Counters {
    submitted: AtomicU64,
    deduped: AtomicU64,
    rejected: AtomicU64,
    sent: AtomicU64,
    weight_spent: AtomicU64,
    throttled: AtomicU64,
    banned: AtomicU64,
    cancelled: AtomicU64,
    queue_high_water: AtomicU64,
    budget_waits: AtomicU64,
    notices_dropped: AtomicU64,
}

#[derive(Debug)]
struct State {
    queues: [VecDeque<RestRequest>; 3],
    queued: HashMap<u64, Priority>,
    /// (sent at, weight) of requests inside the current window.
    spent: VecDeque<(Instant, u32)>,
    used: u64,
    limit: WeightLimit,
    paused_until: Option<Instant>,
    consecutive_throttles: u32,
    in_flight: usize,
    /// Response header carrying the venue's count of weight used in its window.
    used_header: Option<Arc<str>>,
}

impl State {
    fn len(&self) -> usize {
        self.queues.iter().map(VecDeque::len).sum()
    }

    fn effective_limit(&self) -> u64 {
        u64::from(self.limit.limit) * u64::from(SAFETY_NUM) / u64::from(SAFETY_DEN)
    }

    fn expire(&mut self, now: Instant) {
        while let Some(&(t, w)) = self.spent.front() {
            if now.duration_since(t) < self.limit.window {
                break;
            }
            self.spent.pop_front();
            self.used = self.used.saturating_sub(u64::from(w));
        }
    }
}

/// What the dispatcher does next.
enum Next {
    Send(RestRequest, Option<Arc<str>>),
    WaitUntil(Instant),
    Idle,
}

/// The scheduler of one venue (shared by all its feeds and sockets).
#[derive(Debug)]
pub struct RestScheduler {
    state: Mutex<State>,
    wake: Notify,
    counters: Counters,
    notices: mpsc::Sender<LimitNotice>,
}

impl RestScheduler {
    /// A scheduler with `limit`; rate-limit answers are reported on the returned receiver
    /// (bounded; extra notices are counted and dropped).
    #[must_use]
    pub fn new(limit: WeightLimit) -> (Arc<Self>, mpsc::Receiver<LimitNotice>) {
        let (tx, rx) = mpsc::channel(64);
        let s = Arc::new(Self {
            state: Mutex::new(State {
                queues: [VecDeque::new(), VecDeque::new(), VecDeque::new()],
                queued: HashMap::new(),
                spent: VecDeque::new(),
                used: 0,
                limit,
                paused_until: None,
                consecutive_throttles: 0,
                in_flight: 0,
                used_header: None,
            }),
            wake: Notify::new(),
            counters: Counters::default(),
            notices: tx,
        });
        (s, rx)
    }

    /// Replace the limit (learned from the venue's reference data) and name the response
    /// header that reports the venue's own count for it.
    pub fn set_limit(&self, limit: WeightLimit, used_header: Option<&str>) {
        let limit = WeightLimit {
            limit: limit.limit.max(1),
            window: limit.window.max(Duration::from_millis(1)),
        };
        let mut st = self.state.lock();
        st.limit = limit;
        st.used_header = used_header.map(|h| Arc::from(h.to_ascii_lowercase()));
        drop(st);
        self.wake.notify_one();
    }

    /// The current limit.
    #[must_use]
    pub fn limit(&self) -> WeightLimit {
        self.state.lock().limit
    }

    /// Queue a request. Returns false (and counts) only when the queue bound is reached; a
    /// request whose key is already queued is absorbed by it (moved up if more urgent).
    pub fn submit(&self, mut req: RestRequest) -> bool {
        self.counters.submitted.fetch_add(1, Ordering::Relaxed);
        // weightless requests would let the window log grow without bound
        req.weight = req.weight.max(1);
        let mut st = self.state.lock();
        if let Some(&queued_prio) = st.queued.get(&req.key) {
            self.counters.deduped.fetch_add(1, Ordering::Relaxed);
            if req.priority < queued_prio {
                // promote: take the queued copy out of its queue, re-insert at the new level
                let q = &mut st.queues[queued_prio as usize];
                if let Some(pos) = q.iter().position(|r| r.key == req.key) {
                    if let Some(old) = q.remove(pos) {
                        st.queued.insert(old.key, req.priority);
                        st.queues[req.priority as usize].push_back(RestRequest {
                            priority: req.priority,
                            ..old
                        });
                    }
                }
                drop(st);
                self.wake.notify_one();
            }
            return true;
        }
        if st.len() >= MAX_QUEUED {
            self.counters.rejected.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        st.queued.insert(req.key, req.priority);
        st.queues[req.priority as usize].push_back(req);
        let len = st.len() as u64;
        drop(st);
        self.counters
            .queue_high_water
            .fetch_max(len, Ordering::Relaxed);
        self.wake.notify_one();
        true
    }

    /// Drop every queued request of `owner` (its socket reconnected: answers would be stale).
    pub fn cancel_owner(&self, owner: u64) {
        let mut st = self.state.lock();
        let mut dropped = 0u64;
        let State { queues, queued, .. } = &mut *st;
        for q in queues.iter_mut() {
            q.retain(|r| {
                let keep = r.owner != owner;
                if !keep {
                    queued.remove(&r.key);
                    dropped += 1;
                }
                keep
            });
        }
        self.counters
            .cancelled
            .fetch_add(dropped, Ordering::Relaxed);
    }

    /// Requests waiting now.
    #[must_use]
    pub fn queued(&self) -> usize {
        self.state.lock().len()
    }

    /// Weight spent inside the current window.
    #[must_use]
    pub fn used(&self) -> u64 {
        let mut st = self.state.lock();
        st.expire(Instant::now());
        st.used
    }

    /// Counters as (name, value) pairs.
    #[must_use]
    pub fn counters(&self) -> Vec<(&'static str, u64)> {
        let c = &self.counters;
        let st = self.state.lock();
        vec![
            ("rest_submitted", c.submitted.load(Ordering::Relaxed)),
            ("rest_deduped", c.deduped.load(Ordering::Relaxed)),
            ("rest_rejected", c.rejected.load(Ordering::Relaxed)),
            ("rest_sent", c.sent.load(Ordering::Relaxed)),
            ("rest_weight_spent", c.weight_spent.load(Ordering::Relaxed)),
            ("rest_throttled", c.throttled.load(Ordering::Relaxed)),
            ("rest_banned", c.banned.load(Ordering::Relaxed)),
            ("rest_cancelled", c.cancelled.load(Ordering::Relaxed)),
            ("rest_budget_waits", c.budget_waits.load(Ordering::Relaxed)),
            ("rest_queue_depth", st.len() as u64),
            (
                "rest_queue_high_water",
                c.queue_high_water.load(Ordering::Relaxed),
            ),
            ("rest_weight_limit", u64::from(st.limit.limit)),
            (
                "rest_notices_dropped",
                c.notices_dropped.load(Ordering::Relaxed),
            ),
        ]
    }

    /// The venue reported `used` weight in its current window: if that is more than we
    /// spent (other clients on the IP), count the difference as spent now.
    pub fn observe_used(&self, used: u64) {
        let now = Instant::now();
        let mut st = self.state.lock();
        st.expire(now);
        if used > st.used {
            let extra = u32::try_from(used - st.used).unwrap_or(u32::MAX);
            st.spent.push_back((now, extra));
            st.used = used;
        }
    }

    fn next(&self, now: Instant) -> Next {
        let mut st = self.state.lock();
        if st.in_flight >= MAX_IN_FLIGHT {
            return Next::Idle; // woken when one finishes
        }
        if let Some(until) = st.paused_until {
            if until > now {
                return Next::WaitUntil(until);
            }
            st.paused_until = None;
        }
        st.expire(now);
        let Some(prio) = st.queues.iter().position(|q| !q.is_empty()) else {
            return Next::Idle;
        };
        let weight = st.queues[prio].front().map_or(1, |r| u64::from(r.weight));
        // a request heavier than the whole budget still runs, alone, when the window is empty
        if st.used > 0 && st.used + weight > st.effective_limit() {
            self.counters.budget_waits.fetch_add(1, Ordering::Relaxed);
            let until = st
                .spent
                .front()
                .map_or(now + Duration::from_millis(10), |&(t, _)| {
                    t + st.limit.window
                });
            return Next::WaitUntil(until);
        }
        let Some(req) = st.queues[prio].pop_front() else {
            return Next::Idle;
        };
        st.queued.remove(&req.key);
        st.spent.push_back((now, req.weight));
        st.used += u64::from(req.weight);
        st.in_flight += 1;
        self.counters.sent.fetch_add(1, Ordering::Relaxed);
        self.counters
            .weight_spent
            .fetch_add(u64::from(req.weight), Ordering::Relaxed);
        Next::Send(req, st.used_header.clone())
    }

    /// A 429 or 418: pause everything, put the request back in front of its queue.
    fn limited(&self, req: RestRequest, http_status: u16, retry_after: Option<Duration>) {
        let mut st = self.state.lock();
        let pause = if http_status == 418 {
            self.counters.banned.fetch_add(1, Ordering::Relaxed);
            retry_after.unwrap_or(BAN_PAUSE)
        } else {
            self.counters.throttled.fetch_add(1, Ordering::Relaxed);
            st.consecutive_throttles = st.consecutive_throttles.saturating_add(1);
            let doubling = 1u32 << st.consecutive_throttles.saturating_sub(1).min(6);
            retry_after.unwrap_or_else(|| (THROTTLE_PAUSE * doubling).min(MAX_THROTTLE_PAUSE))
        }
        .min(MAX_PAUSE);
        let until = Instant::now() + pause;
        st.paused_until = Some(st.paused_until.map_or(until, |u| u.max(until)));
        if let std::collections::hash_map::Entry::Vacant(e) = st.queued.entry(req.key) {
            e.insert(req.priority);
            st.queues[req.priority as usize].push_front(req);
        }
        drop(st);
        let notice = LimitNotice {
            http_status,
            retry_ms: u64::try_from(pause.as_millis()).unwrap_or(u64::MAX),
        };
        if self.notices.try_send(notice).is_err() {
            self.counters
                .notices_dropped
                .fetch_add(1, Ordering::Relaxed);
        }
    }

    fn finished(&self, ok: bool) {
        let mut st = self.state.lock();
        st.in_flight = st.in_flight.saturating_sub(1);
        if ok {
            st.consecutive_throttles = 0;
        }
        drop(st);
        self.wake.notify_one();
    }

    /// Run the dispatcher until `cancel` fires: send requests as budget allows, answer them.
    pub async fn run(self: Arc<Self>, http: reqwest::Client, cancel: CancellationToken) {
        let mut tasks: JoinSet<()> = JoinSet::new();
        loop {
            while tasks.try_join_next().is_some() {}
            let wait = match self.next(Instant::now()) {
                Next::Send(req, header) => {
                    let me = self.clone();
                    let http = http.clone();
                    tasks.spawn(async move { me.execute(&http, header.as_deref(), req).await });
                    continue;
                }
                Next::WaitUntil(t) => Some(t),
                Next::Idle => None,
            };
            tokio::select! {
                () = cancel.cancelled() => break,
                () = self.wake.notified() => {}
                () = sleep_until(wait) => {}
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            }
        }
        tasks.abort_all();
    }

    async fn execute(&self, http: &reqwest::Client, used_header: Option<&str>, req: RestRequest) {
        let reply = fetch(http, &req.url, used_header).await;
        if let Some(used) = reply.used_weight {
            self.observe_used(used);
        }
        if reply.status == 429 || reply.status == 418 {
            self.limited(req, reply.status, reply.retry_after);
            self.finished(false);
            return;
        }
        self.finished(reply.status == 200);
        let answer = RestAnswer {
            tag: req.tag,
            status: reply.status,
            body: reply.body,
            ts_recv: crate::net::now_ns(),
        };
        // the requester may have gone (socket closed): its answer is simply dropped
        let _ = req.reply.send(answer).await;
    }
}

async fn sleep_until(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t.into()).await,
        None => std::future::pending().await,
    }
}

/// A REST answer with the headers the scheduler needs.
#[derive(Debug)]
pub struct FetchReply {
    /// HTTP status, 0 = transport error.
    pub status: u16,
    /// Body (empty on transport errors).
    pub body: String,
    /// `Retry-After`, when sent.
    pub retry_after: Option<Duration>,
    /// The venue's used-weight header, when asked for and sent.
    pub used_weight: Option<u64>,
}

/// GET `url`; never fails (transport errors are status 0).
pub async fn fetch(client: &reqwest::Client, url: &str, used_header: Option<&str>) -> FetchReply {
    let Ok(resp) = client.get(url).send().await else {
        return FetchReply {
            status: 0,
            body: String::new(),
            retry_after: None,
            used_weight: None,
        };
    };
    let status = resp.status().as_u16();
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    let retry_after = header("retry-after").map(Duration::from_secs);
    let used_weight = used_header.and_then(header);
    match resp.text().await {
        Ok(body) => FetchReply {
            status,
            body,
            retry_after,
            used_weight,
        },
        Err(_) => FetchReply {
            status: 0,
            body: String::new(),
            retry_after,
            used_weight,
        },
    }
}

#[cfg(test)]
mod tests;
