//! The JetStream sink: every event the consumer takes off the bus is encoded
//! ([`super::codec`]) and published to a stream, with a bound on publishes awaiting their ack,
//! retries in order after a failed ack, a message id per message (the server drops a retried
//! message it already stored) and periodic full-book snapshots, so that a consumer joining or
//! resuming mid-stream can rebuild every book.
//!
//! The publisher runs on its own thread and runtime: it outlives the engine's intake, so what
//! the consumer drains after `stop` is still published before `close` returns.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use bytes::Bytes;
use futures_util::stream::{FuturesOrdered, StreamExt};
use parking_lot::Mutex;

use super::codec;
use super::{connect, NatsError};
use crate::model::{
    BookDelta, BookState, Event, Status, StatusKind, StatusReason, SymbolMeta, Venue,
};
use crate::net::now_ns;
use crate::pipeline::bus::EventBus;

/// Sink settings (see `Engine.add_jetstream_sink`).
#[derive(Debug, Clone)]
pub struct SinkConfig {
    /// `nats://host:port` seeds.
    pub servers: Vec<String>,
    /// Stream name.
    pub stream: String,
    /// First subject token.
    pub prefix: String,
    /// Stream replicas.
    pub replicas: usize,
    /// Age limit (zero = none).
    pub max_age: Duration,
    /// Byte limit (-1 = none).
    pub max_bytes: i64,
    /// Message limit (-1 = none).
    pub max_msgs: i64,
    /// Window in which the server drops a message id it has already stored.
    pub duplicate_window: Duration,
    /// Publishes awaiting their ack at most.
    pub max_inflight: usize,
    /// Full book snapshots are republished this often.
    pub snapshot_interval: Duration,
    /// Channels published (`None` = all).
    pub channels: Option<Vec<String>>,
}

/// Sink counters (`bus_*` in stats and metrics).
#[derive(Debug, Default)]
pub struct SinkCounters {
    /// Messages handed to the publisher.
    pub queued: AtomicU64,
    /// Publishes acknowledged by the stream.
    pub acked: AtomicU64,
    /// Acks that said the stream already held the message (a retry that had landed).
    pub duplicates: AtomicU64,
    /// Publishes or acks that failed (each is retried).
    pub failures: AtomicU64,
    /// Messages republished after a failure.
    pub retries: AtomicU64,
    /// Publishes awaiting their ack now.
    pub inflight: AtomicU64,
    /// Full-book refresh snapshots published.
    pub refreshes: AtomicU64,
    /// Messages given up on at close (the servers were unreachable until the deadline).
    pub lost: AtomicU64,
}

impl SinkCounters {
    /// Name/value pairs.
    #[must_use]
    pub fn pairs(&self) -> [(&'static str, u64); 8] {
        [
            ("bus_published", self.queued.load(Relaxed)),
            ("bus_acked", self.acked.load(Relaxed)),
            ("bus_publish_duplicates", self.duplicates.load(Relaxed)),
            ("bus_publish_failures", self.failures.load(Relaxed)),
            ("bus_publish_retries", self.retries.load(Relaxed)),
            ("bus_inflight", self.inflight.load(Relaxed)),
            ("bus_refresh_snapshots", self.refreshes.load(Relaxed)),
            ("bus_publish_lost", self.lost.load(Relaxed)),
        ]
    }
}

/// One encoded message.
struct Outgoing {
    subject: String,
    payload: Bytes,
    id: String,
    /// The event's venue (named by the status a failed publish raises).
    venue: Venue,
}

/// Per-run encoder state (the consumer thread's).
struct Encoder {
    epoch: u64,
    /// Messages of the run (message ids).
    count: u64,
    /// Publisher sequence per subject.
    pseq: HashMap<String, u64>,
    buf: Vec<u8>,
    /// Symbols with a maintained book, for the periodic refresh.
    books: HashMap<usize, Arc<SymbolMeta>>,
    last_refresh: Instant,
}

impl Encoder {
    fn push(&mut self, ev: &Event, refresh: bool, prefix: &str, out: &mut Vec<Outgoing>) {
        let mut subject = String::with_capacity(64);
        codec::subject_of(ev, prefix, &mut subject);
        let pseq = match self.pseq.get_mut(subject.as_str()) {
            Some(p) => {
                *p += 1;
                *p
            }
            None => {
                self.pseq.insert(subject.clone(), 1);
                1
            }
        };
        if refresh {
            codec::encode_refresh(ev, self.epoch, pseq, &mut self.buf);
        } else {
            codec::encode(ev, self.epoch, pseq, &mut self.buf);
        }
        self.count += 1;
        out.push(Outgoing {
            subject,
            payload: Bytes::copy_from_slice(&self.buf),
            id: msg_id(self.epoch, self.count),
            venue: ev.venue().unwrap_or(Venue::Binance),
        });
    }
}

fn msg_id(epoch: u64, n: u64) -> String {
    let mut s = String::with_capacity(33);
    use std::fmt::Write;
    let _ = write!(s, "{epoch:016x}-{n:x}");
    s
}

/// How long stream creation is retried while the servers time out.
const STREAM_SETUP_BOUND: Duration = Duration::from_secs(30);

/// The sink: encoder on the consumer side, publisher on its own thread.
pub struct JetStreamSink {
    cfg: SinkConfig,
    enc: Mutex<Encoder>,
    tx: Mutex<Option<tokio::sync::mpsc::Sender<Vec<Outgoing>>>>,
    done: Mutex<Option<std::sync::mpsc::Receiver<()>>>,
    abandon: Arc<AtomicBool>,
    /// Counters.
    pub counters: Arc<SinkCounters>,
}

impl std::fmt::Debug for JetStreamSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JetStreamSink")
            .field("stream", &self.cfg.stream)
            .finish_non_exhaustive()
    }
}

impl JetStreamSink {
    /// Connect, create (or find) the stream and start the publisher thread. Statuses about
    /// failed publishes go to `bus`.
    ///
    /// # Errors
    /// The servers cannot be reached or the stream cannot be created.
    pub fn start(cfg: SinkConfig, bus: Arc<EventBus>) -> Result<Arc<Self>, NatsError> {
        let (tx, rx) = tokio::sync::mpsc::channel::<Vec<Outgoing>>(64);
        let counters = Arc::new(SinkCounters::default());
        let abandon = Arc::new(AtomicBool::new(false));
        let run_cfg = cfg.clone();
        let run_counters = counters.clone();
        let run_abandon = abandon.clone();
        let wait = super::CONNECT_TIMEOUT + STREAM_SETUP_BOUND + Duration::from_secs(10);
        let done_rx = super::spawn_worker(
            "xtrader-nats-pub",
            &cfg.servers,
            wait,
            move |ready| async move {
                match open_stream(&run_cfg).await {
                    Ok(js) => {
                        let _ = ready.send(Ok(()));
                        publish_loop(js, rx, &run_cfg, &run_counters, &bus, &run_abandon).await;
                    }
                    Err(e) => {
                        let _ = ready.send(Err(e));
                    }
                }
            },
        )
        .inspect_err(|_| abandon.store(true, Relaxed))?;
        let epoch = (now_ns() as u64) ^ (u64::from(std::process::id()) << 48);
        Ok(Arc::new(Self {
            cfg,
            enc: Mutex::new(Encoder {
                epoch,
                count: 0,
                pseq: HashMap::new(),
                buf: Vec::with_capacity(512),
                books: HashMap::new(),
                last_refresh: Instant::now(),
            }),
            tx: Mutex::new(Some(tx)),
            done: Mutex::new(Some(done_rx)),
            abandon,
            counters,
        }))
    }

    /// Encode and queue a batch taken off the bus (the consumer thread; waits while the
    /// publisher is a full queue behind, so nothing is dropped).
    pub fn submit(&self, events: &[Event]) {
        let Some(tx) = self.tx.lock().clone() else {
            return;
        };
        let mut out = Vec::with_capacity(events.len());
        {
            let mut enc = self.enc.lock();
            for ev in events {
                if let Event::Book(b) = ev {
                    if b.sym.book.is_some() {
                        let key = Arc::as_ptr(&b.sym) as usize;
                        enc.books.entry(key).or_insert_with(|| b.sym.clone());
                    }
                }
                if self.wants(ev.channel()) {
                    enc.push(ev, false, &self.cfg.prefix, &mut out);
                }
            }
            if self.wants("book") && enc.last_refresh.elapsed() >= self.cfg.snapshot_interval {
                enc.last_refresh = Instant::now();
                let syms: Vec<Arc<SymbolMeta>> = enc.books.values().cloned().collect();
                for sym in syms {
                    if let Some(snap) = refresh_of(&sym) {
                        enc.push(&snap, true, &self.cfg.prefix, &mut out);
                        self.counters.refreshes.fetch_add(1, Relaxed);
                    }
                }
            }
        }
        if out.is_empty() {
            return;
        }
        self.counters.queued.fetch_add(out.len() as u64, Relaxed);
        let _ = tx.blocking_send(out);
    }

    fn wants(&self, channel: &str) -> bool {
        self.cfg
            .channels
            .as_ref()
            .is_none_or(|c| c.iter().any(|x| x == channel))
    }

    /// Publish what is queued and wait for its acks, up to `timeout`; what is still unsent
    /// then is counted in `bus_publish_lost`. Returns that count.
    pub fn close(&self, timeout: Duration) -> u64 {
        drop(self.tx.lock().take());
        if let Some(done) = self.done.lock().take() {
            if done.recv_timeout(timeout).is_err() {
                self.abandon.store(true, Relaxed);
                let _ = done.recv_timeout(Duration::from_secs(2));
            }
        }
        self.counters.lost.load(Relaxed)
    }
}

impl Drop for JetStreamSink {
    fn drop(&mut self) {
        self.close(Duration::from_secs(5));
    }
}

/// A full snapshot of a live book, as a book event (`None` while the book is not live).
fn refresh_of(sym: &Arc<SymbolMeta>) -> Option<Event> {
    let book = sym.book.as_ref()?.read();
    if book.state != BookState::Live {
        return None;
    }
    Some(Event::Book(BookDelta {
        sym: sym.clone(),
        ts_exchange: book.ts_exchange,
        ts_recv: book.ts_recv,
        seq: book.seq,
        is_snapshot: true,
        bids: book.bids(None).map(|l| (l.price, l.size)).collect(),
        asks: book.asks(None).map(|l| (l.price, l.size)).collect(),
    }))
}

async fn open_stream(cfg: &SinkConfig) -> Result<jetstream::Context, NatsError> {
    let client = connect(&cfg.servers, "xtrader-publisher").await?;
    let js = jetstream::ContextBuilder::new()
        .timeout(Duration::from_secs(5))
        .max_ack_inflight(cfg.max_inflight.max(1) * 2)
        .build(client);
    let subjects = vec![format!("{}.>", cfg.prefix)];
    let stream_cfg = jetstream::stream::Config {
        name: cfg.stream.clone(),
        subjects,
        max_age: cfg.max_age,
        max_bytes: cfg.max_bytes,
        max_messages: cfg.max_msgs,
        num_replicas: cfg.replicas.max(1),
        duplicate_window: cfg.duplicate_window,
        storage: jetstream::stream::StorageType::File,
        ..Default::default()
    };
    // a cluster that has just formed (or is electing a leader) times out for a while:
    // retried within a bound; a refusal (bad limits, too many replicas) fails at once
    let deadline = Instant::now() + STREAM_SETUP_BOUND;
    loop {
        match js.get_or_create_stream(stream_cfg.clone()).await {
            Ok(_) => return Ok(js),
            Err(e) => {
                use jetstream::context::CreateStreamErrorKind as K;
                let transient = matches!(e.kind(), K::TimedOut | K::JetStreamUnavailable);
                if !transient || Instant::now() >= deadline {
                    return Err(NatsError::Stream {
                        stream: cfg.stream.clone(),
                        reason: e.to_string(),
                    });
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Pause before sending again after `streak` failures in a row.
fn backoff(streak: u32) -> Duration {
    Duration::from_millis((25u64 << streak.min(7)).min(2000))
}

async fn publish_loop(
    js: jetstream::Context,
    mut rx: tokio::sync::mpsc::Receiver<Vec<Outgoing>>,
    cfg: &SinkConfig,
    counters: &SinkCounters,
    bus: &EventBus,
    abandon: &AtomicBool,
) {
    let max = cfg.max_inflight.max(1);
    // failed messages first (oldest), then what the consumer queued
    let mut retry: VecDeque<Outgoing> = VecDeque::new();
    let mut pending: VecDeque<Outgoing> = VecDeque::new();
    let mut inflight = FuturesOrdered::new();
    let mut closed = false;
    let mut streak: u32 = 0;
    let mut hold_until: Option<tokio::time::Instant> = None;
    loop {
        if abandon.load(Relaxed) {
            let left = pending.len() + retry.len() + inflight.len();
            counters.lost.fetch_add(left as u64, Relaxed);
            return;
        }
        if hold_until.is_none_or(|t| tokio::time::Instant::now() >= t) {
            hold_until = None;
            while inflight.len() < max {
                let Some(m) = retry.pop_front().or_else(|| pending.pop_front()) else {
                    break;
                };
                match send(&js, &m).await {
                    Ok(fut) => inflight.push_back(async move {
                        let r = fut.await.map_err(|e| e.to_string());
                        (m, r)
                    }),
                    Err(_) => {
                        counters.failures.fetch_add(1, Relaxed);
                        streak = streak.saturating_add(1);
                        if streak.is_power_of_two() {
                            report_failure(bus, &m, streak);
                        }
                        retry.push_front(m);
                        hold_until = Some(tokio::time::Instant::now() + backoff(streak));
                        break;
                    }
                }
            }
        }
        counters.inflight.store(inflight.len() as u64, Relaxed);
        if closed && pending.is_empty() && retry.is_empty() && inflight.is_empty() {
            return;
        }
        let wake =
            hold_until.unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            r = inflight.next(), if !inflight.is_empty() => {
                if let Some((m, r)) = r {
                    if settle(m, r, counters, &mut retry) {
                        streak = 0;
                    } else {
                        streak = streak.saturating_add(1);
                        hold_until = Some(tokio::time::Instant::now() + backoff(streak));
                        // one status per doubling of the failure streak, not per message
                        if streak.is_power_of_two() {
                            if let Some(m) = retry.back() {
                                report_failure(bus, m, streak);
                            }
                        }
                    }
                }
            }
            b = rx.recv(), if pending.is_empty() && retry.is_empty() && !closed => match b {
                Some(batch) => pending.extend(batch),
                None => closed = true,
            },
            () = tokio::time::sleep_until(wake), if hold_until.is_some() => {}
            () = tokio::time::sleep(Duration::from_millis(200)), if closed => {}
        }
    }
}

async fn send(
    js: &jetstream::Context,
    m: &Outgoing,
) -> Result<jetstream::context::PublishAckFuture, String> {
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", m.id.as_str());
    js.publish_with_headers(m.subject.clone(), headers, m.payload.clone())
        .await
        .map_err(|e| e.to_string())
}

/// Count an ack; a failed one queues the message again. True when it was acknowledged.
fn settle(
    m: Outgoing,
    r: Result<jetstream::publish::PublishAck, String>,
    counters: &SinkCounters,
    retry: &mut VecDeque<Outgoing>,
) -> bool {
    match r {
        Ok(ack) => {
            counters.acked.fetch_add(1, Relaxed);
            if ack.duplicate {
                counters.duplicates.fetch_add(1, Relaxed);
            }
            true
        }
        Err(_) => {
            counters.failures.fetch_add(1, Relaxed);
            counters.retries.fetch_add(1, Relaxed);
            // the same message id: if the first attempt was stored after all, the server
            // drops the copy; a consumer puts a subject back in order by its pseq
            retry.push_back(m);
            false
        }
    }
}

fn report_failure(bus: &EventBus, m: &Outgoing, streak: u32) {
    let mut ev = vec![Event::Status(Status {
        venue: m.venue,
        sym: None,
        kind: StatusKind::Error,
        reason: StatusReason::BusPublishFailed { attempt: streak },
        state: None,
        ts: now_ns(),
    })];
    bus.publish_now(&mut ev);
}
