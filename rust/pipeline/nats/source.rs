//! The JetStream source: a durable pull consumer feeding a runtime's bus instead of exchange
//! connections.
//!
//! - **Resumable, no duplicates.** Messages are acknowledged (ack-all) only once the events
//!   made from them have been through the strategies (`Engine::bus_delivered`), and the last
//!   delivered stream sequence is kept in memory and, when configured, in a checkpoint file;
//!   a redelivered message at or below it is dropped. A restarted consumer resumes from the
//!   durable's ack floor (or its checkpoint, when further): the durable is bound afresh there,
//!   so messages a previous run was handed but never acknowledged come first and in order
//!   (left to `ack_wait`, they would come after newer ones, which ack-all would have
//!   acknowledged unseen).
//! - **In order.** Each subject carries a publisher sequence per publishing run (`pseq`):
//!   a message ahead of its turn (a publisher retry) waits in a bounded buffer for the
//!   missing ones; a duplicate is dropped; a hole that does not fill within `gap_timeout` is
//!   reported as a `bus_gap` status (and the book waits for a fresh base); a trade, quote or
//!   status of it arriving after all is delivered late rather than dropped (as are retries
//!   stored after the first message a resumed consumer sees), a book message never is.
//! - **Books rebuilt with the same integrity rules.** A book needs a base (the venue
//!   snapshot the collector applied, or a periodic refresh snapshot) before deltas apply;
//!   deltas at or below the base's sequence are already in it; the collector's book states
//!   are mirrored from its relayed statuses.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy};
use futures_util::{FutureExt, StreamExt};
use parking_lot::{Mutex, RwLock};

use super::codec::{self, Header, KIND_BOOK_REFRESH};
use super::{connect, NatsError};
use crate::model::{
    BookDelta, BookState, Event, OrderBook, Status, StatusKind, StatusReason, SymbolMeta, Venue,
};
use crate::net::now_ns;
use crate::pipeline::bus::EventBus;

/// Messages one subject may hold back waiting for a missing predecessor.
const REORDER_BOUND: usize = 4096;
/// Publishing runs × subjects tracked before idle ones are forgotten.
const TRACKED_BOUND: usize = 200_000;
/// Messages already received that are taken before the consumer is woken.
const READY_BATCH: usize = 255;
/// Acks and gap checks run this often.
const TICK: Duration = Duration::from_millis(20);

/// Source settings (see `Engine.set_jetstream_source`).
#[derive(Debug, Clone)]
pub struct SourceConfig {
    /// `nats://host:port` seeds.
    pub servers: Vec<String>,
    /// Stream name.
    pub stream: String,
    /// Subject filter.
    pub subject: String,
    /// Durable consumer name.
    pub durable: String,
    /// File keeping the last delivered stream sequence.
    pub checkpoint: Option<PathBuf>,
    /// Messages per pull.
    pub batch: usize,
    /// How long a hole in a subject's publisher sequence may stay open.
    pub gap_timeout: Duration,
}

/// Source counters (`bus_*` in stats).
#[derive(Debug, Default)]
pub struct SourceCounters {
    /// Messages received.
    pub received: AtomicU64,
    /// Redelivered messages at or below the delivered stream sequence, dropped.
    pub redelivered: AtomicU64,
    /// Messages with a publisher sequence already seen, dropped.
    pub duplicates: AtomicU64,
    /// Messages that arrived ahead of their turn and were put back in order.
    pub reordered: AtomicU64,
    /// Holes in a publisher sequence that never filled (in time).
    pub gaps: AtomicU64,
    /// Messages delivered out of publisher order: stored after newer ones (a retry) and
    /// arriving after their hole was given up on, or below the first one seen.
    pub late: AtomicU64,
    /// Late book messages, dropped (their book is built from in-order messages only).
    pub late_book: AtomicU64,
    /// Messages that could not be decoded.
    pub decode_errors: AtomicU64,
    /// Book deltas dropped while the book waited for a base.
    pub book_waiting: AtomicU64,
    /// Refresh snapshots used as a base.
    pub refreshes_used: AtomicU64,
    /// Highest stream sequence acknowledged.
    pub acked_seq: AtomicU64,
    /// Events pushed to the bus.
    pub pushed: AtomicU64,
    /// Times the durable was bound again mid-run (its message stream ended, or a delivery
    /// was missed).
    pub rebinds: AtomicU64,
    /// Deliveries missed (the consumer sequence jumped).
    pub holes: AtomicU64,
    /// Stream sequence after which the durable was last bound.
    pub bound_at: AtomicU64,
}

impl SourceCounters {
    /// Name/value pairs.
    #[must_use]
    pub fn pairs(&self) -> [(&'static str, u64); 15] {
        [
            ("bus_received", self.received.load(Relaxed)),
            ("bus_redelivered", self.redelivered.load(Relaxed)),
            ("bus_duplicates", self.duplicates.load(Relaxed)),
            ("bus_reordered", self.reordered.load(Relaxed)),
            ("bus_gaps", self.gaps.load(Relaxed)),
            ("bus_late", self.late.load(Relaxed)),
            ("bus_late_book_dropped", self.late_book.load(Relaxed)),
            ("bus_decode_errors", self.decode_errors.load(Relaxed)),
            ("bus_book_waiting", self.book_waiting.load(Relaxed)),
            ("bus_refreshes_used", self.refreshes_used.load(Relaxed)),
            ("bus_acked_seq", self.acked_seq.load(Relaxed)),
            ("bus_events", self.pushed.load(Relaxed)),
            ("bus_rebinds", self.rebinds.load(Relaxed)),
            ("bus_delivery_holes", self.holes.load(Relaxed)),
            ("bus_bound_at", self.bound_at.load(Relaxed)),
        ]
    }
}

/// A running source.
pub struct JetStreamSource {
    /// Bus events the consumer has delivered (popped, callbacks returned).
    delivered: Arc<AtomicU64>,
    /// Symbols seen on the bus (for `find_symbol` and books).
    pub symbols: Arc<RwLock<Vec<Arc<SymbolMeta>>>>,
    /// Counters.
    pub counters: Arc<SourceCounters>,
    intake: tokio_util::sync::CancellationToken,
    close_tx: Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
    done: Mutex<Option<std::sync::mpsc::Receiver<()>>>,
}

impl std::fmt::Debug for JetStreamSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JetStreamSource").finish_non_exhaustive()
    }
}

impl JetStreamSource {
    /// Connect, find the stream, create or bind the durable consumer and start pulling into
    /// `bus` (the source must be the bus's only producer: its acks count the bus's pops).
    ///
    /// # Errors
    /// Unreachable servers, a missing stream, a consumer the server refuses, a bad checkpoint.
    pub fn start(cfg: SourceConfig, bus: Arc<EventBus>) -> Result<Arc<Self>, NatsError> {
        let last = match &cfg.checkpoint {
            Some(p) => read_checkpoint(p)?,
            None => 0,
        };
        let (close_tx, close_rx) = tokio::sync::oneshot::channel::<()>();
        let src = Arc::new(Self {
            delivered: Arc::new(AtomicU64::new(0)),
            symbols: Arc::new(RwLock::new(Vec::new())),
            counters: Arc::new(SourceCounters::default()),
            intake: tokio_util::sync::CancellationToken::new(),
            close_tx: Mutex::new(Some(close_tx)),
            done: Mutex::new(None),
        });
        let mut state = State::new(
            cfg.clone(),
            bus,
            src.counters.clone(),
            src.delivered.clone(),
            src.symbols.clone(),
            last,
        );
        let intake = src.intake.clone();
        let wait = super::CONNECT_TIMEOUT + Duration::from_secs(60);
        let done = super::spawn_worker(
            "xtrader-nats-src",
            &cfg.servers,
            wait,
            move |ready| async move {
                match open_consumer(&state.cfg, state.last_seq).await {
                    Ok((client, stream, consumer, after)) => {
                        let _ = ready.send(Ok(()));
                        state.last_seq = after;
                        state.counters.acked_seq.store(after, Relaxed);
                        state.counters.bound_at.store(after, Relaxed);
                        state
                            .run(&client, &stream, consumer, intake, close_rx)
                            .await;
                    }
                    Err(e) => {
                        let _ = ready.send(Err(e));
                    }
                }
            },
        )
        .inspect_err(|_| src.intake.cancel())?;
        *src.done.lock() = Some(done);
        Ok(src)
    }

    /// The consumer has delivered `popped` bus events in all (callbacks returned): messages
    /// wholly delivered are acknowledged on the next tick.
    pub fn delivered(&self, popped: u64) {
        self.delivered.fetch_max(popped, Relaxed);
    }

    /// Stop pulling (the engine's intake stopped); acks go on until `close`.
    pub fn stop_intake(&self) {
        self.intake.cancel();
    }

    /// Acknowledge what was delivered, write the checkpoint and disconnect (bounded).
    pub fn close(&self, timeout: Duration) {
        self.intake.cancel();
        if let Some(tx) = self.close_tx.lock().take() {
            let _ = tx.send(());
        }
        if let Some(done) = self.done.lock().take() {
            let _ = done.recv_timeout(timeout);
        }
    }
}

impl Drop for JetStreamSource {
    fn drop(&mut self) {
        self.close(Duration::from_secs(3));
    }
}

fn read_checkpoint(p: &PathBuf) -> Result<u64, NatsError> {
    match std::fs::read_to_string(p) {
        Ok(s) => s.trim().parse::<u64>().map_err(|_| NatsError::Checkpoint {
            path: p.display().to_string(),
            reason: format!("expected a stream sequence number, found '{}'", s.trim()),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(NatsError::Checkpoint {
            path: p.display().to_string(),
            reason: e.to_string(),
        }),
    }
}

fn write_checkpoint(p: &PathBuf, seq: u64) -> std::io::Result<()> {
    let tmp = p.with_extension("tmp");
    std::fs::write(&tmp, seq.to_string())?;
    std::fs::rename(&tmp, p)
}

type PullConsumer = jetstream::consumer::Consumer<pull::Config>;

type JsStream = jetstream::stream::Stream;

/// Connect and find the stream.
async fn open_stream(cfg: &SourceConfig) -> Result<(async_nats::Client, JsStream), NatsError> {
    let client = connect(&cfg.servers, "xtrader-consumer").await?;
    let js = jetstream::ContextBuilder::new()
        .timeout(Duration::from_secs(5))
        .build(client.clone());
    // a request that times out (a cluster electing a leader) is retried within a bound; an
    // answer (no such stream) fails at once
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match js.get_stream(&cfg.stream).await {
            Ok(stream) => return Ok((client, stream)),
            Err(e) => {
                use jetstream::context::GetStreamErrorKind as K;
                if !matches!(e.kind(), K::Request) || Instant::now() >= deadline {
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

fn consumer_error(cfg: &SourceConfig, reason: String) -> NatsError {
    NatsError::Consumer {
        stream: cfg.stream.clone(),
        durable: cfg.durable.clone(),
        reason,
    }
}

/// The durable's position: the highest stream sequence it acknowledged (0 when it does not
/// exist yet). A cluster electing a leader answers with errors for a moment: retried.
async fn durable_floor(stream: &JsStream, cfg: &SourceConfig) -> Result<u64, NatsError> {
    use async_nats::jetstream::context::ConsumerInfoErrorKind;
    let mut last = String::new();
    for attempt in 0..40u32 {
        match stream.consumer_info(&cfg.durable).await {
            Ok(info) => return Ok(info.ack_floor.stream_sequence),
            Err(e) if matches!(e.kind(), ConsumerInfoErrorKind::NotFound) => return Ok(0),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(100 + 50 * u64::from(attempt))).await;
    }
    Err(consumer_error(cfg, last))
}

/// (Re)create the durable so that it delivers from `after + 1`, in order.
///
/// A pull consumer redelivers what it handed out but never had acknowledged only when
/// `ack_wait` expires, after newer messages: with ack-all, acknowledging those newer messages
/// would acknowledge the older ones unseen. Binding afresh at the position delivered so far
/// makes every message not yet acknowledged come again, first and in order.
async fn bind(
    stream: &JsStream,
    cfg: &SourceConfig,
    after: u64,
) -> Result<PullConsumer, NatsError> {
    // absent is fine; any other failure shows in the create below
    let _ = stream.delete_consumer(&cfg.durable).await;
    let deliver_policy = if after == 0 {
        DeliverPolicy::All
    } else {
        DeliverPolicy::ByStartSequence {
            start_sequence: after + 1,
        }
    };
    stream
        .create_consumer(pull::Config {
            durable_name: Some(cfg.durable.clone()),
            filter_subject: cfg.subject.clone(),
            ack_policy: AckPolicy::All,
            deliver_policy,
            ack_wait: Duration::from_secs(30),
            max_ack_pending: 100_000,
            ..Default::default()
        })
        .await
        .map_err(|e| consumer_error(cfg, e.to_string()))
}

/// Connect, find the stream and bind the durable at its position (or the checkpoint's,
/// whichever is further: what was delivered is never delivered again).
async fn open_consumer(
    cfg: &SourceConfig,
    checkpoint: u64,
) -> Result<(async_nats::Client, JsStream, PullConsumer, u64), NatsError> {
    let (client, stream) = open_stream(cfg).await?;
    let after = durable_floor(&stream, cfg).await?.max(checkpoint);
    let consumer = bind(&stream, cfg, after).await?;
    Ok((client, stream, consumer, after))
}

/// A symbol seen on the bus and its book's standing.
struct Entry {
    meta: Arc<SymbolMeta>,
    /// The book has a base (snapshot or refresh) that later deltas build on.
    has_base: bool,
    /// The base was lost to a bus gap (a `recovered` status follows the next base).
    bus_gap: bool,
}

/// Ordering state of one subject within one publishing run.
struct Track {
    expected: u64,
    held: BTreeMap<u64, (Header, Event)>,
    /// When the oldest held message arrived.
    since: Option<Instant>,
    /// The first publisher sequence seen (a consumer joining or resuming mid-stream may
    /// still receive lower ones: retries the stream stored after it).
    first: u64,
    /// Holes given up on (`[from, to)`), bounded: a message from one arriving later is late,
    /// not a duplicate.
    skipped: VecDeque<(u64, u64)>,
    /// Late messages delivered (below `first` or in a skipped hole), bounded.
    late: std::collections::BTreeSet<u64>,
}

/// Holes and late sequence numbers remembered per subject.
const LATE_BOUND: usize = 4096;
const SKIPPED_BOUND: usize = 64;

impl Track {
    fn starting_at(pseq: u64) -> Self {
        Self {
            expected: pseq,
            held: BTreeMap::new(),
            since: None,
            first: pseq,
            skipped: VecDeque::new(),
            late: std::collections::BTreeSet::new(),
        }
    }

    /// A message below `expected`: delivered already (a duplicate), or late (never delivered:
    /// below the first seen, or in a hole given up on). Late ones are remembered.
    fn is_late(&mut self, pseq: u64) -> bool {
        let missed =
            pseq < self.first || self.skipped.iter().any(|(a, b)| (*a..*b).contains(&pseq));
        if !missed || !self.late.insert(pseq) {
            return false;
        }
        if self.late.len() > LATE_BOUND {
            self.late.pop_first();
        }
        true
    }
}

struct State {
    cfg: SourceConfig,
    bus: Arc<EventBus>,
    counters: Arc<SourceCounters>,
    delivered: Arc<AtomicU64>,
    symbols: Arc<RwLock<Vec<Arc<SymbolMeta>>>>,
    registry: HashMap<(Venue, Box<str>), Entry>,
    subjects: HashMap<(String, u64), Track>,
    /// Highest stream sequence taken in (redeliveries at or below it are dropped).
    last_seq: u64,
    /// Events pushed to the bus so far.
    pushed: u64,
    /// (events pushed once this message was handled, stream sequence, reply subject).
    acks: VecDeque<(u64, u64, async_nats::Subject)>,
    out: Vec<Event>,
    /// Held messages were released since the last flush (their events go out after those of
    /// later messages: the acks waiting must cover them).
    released: bool,
    /// The consumer sequence the next delivery should carry (0 = not known yet).
    next_cseq: u64,
    /// A delivery was missed: stop taking and bind again.
    need_rebind: bool,
}

impl State {
    fn new(
        cfg: SourceConfig,
        bus: Arc<EventBus>,
        counters: Arc<SourceCounters>,
        delivered: Arc<AtomicU64>,
        symbols: Arc<RwLock<Vec<Arc<SymbolMeta>>>>,
        last_seq: u64,
    ) -> Self {
        Self {
            cfg,
            bus,
            counters,
            delivered,
            symbols,
            registry: HashMap::new(),
            subjects: HashMap::new(),
            last_seq,
            pushed: 0,
            acks: VecDeque::new(),
            out: Vec::new(),
            released: false,
            next_cseq: 0,
            need_rebind: false,
        }
    }

    /// Decode one payload and put it in order (what is due lands in `self.out`).
    fn take_payload(&mut self, subject: &str, payload: &[u8]) -> Result<(), codec::CodecError> {
        let (h, ev) = {
            let registry = &mut self.registry;
            let symbols = &self.symbols;
            codec::decode(payload, |venue, symbol, native, is_book| {
                resolve(registry, symbols, venue, symbol, native, is_book)
            })?
        };
        self.order((subject.to_string(), h.epoch), h, ev);
        Ok(())
    }

    async fn run(
        &mut self,
        client: &async_nats::Client,
        stream: &JsStream,
        mut consumer: PullConsumer,
        intake: tokio_util::sync::CancellationToken,
        mut close_rx: tokio::sync::oneshot::Receiver<()>,
    ) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut messages = None;
        let mut pulling = true;
        let mut rebind = false;
        loop {
            if pulling && rebind {
                // the message stream ended: what it had buffered is gone with it, so bind
                // again at what was acknowledged (the rest comes again; what was taken
                // already is dropped by its stream sequence)
                let after = self.counters.acked_seq.load(Relaxed);
                match bind(stream, &self.cfg, after).await {
                    Ok(c) => {
                        consumer = c;
                        rebind = false;
                        self.next_cseq = 0;
                        self.need_rebind = false;
                        self.counters.rebinds.fetch_add(1, Relaxed);
                        self.counters.bound_at.store(after, Relaxed);
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
                }
            }
            if pulling && messages.is_none() && !rebind {
                match consumer
                    .stream()
                    .max_messages_per_batch(self.cfg.batch.max(1))
                    .heartbeat(Duration::from_secs(5))
                    .expires(Duration::from_secs(30))
                    .messages()
                    .await
                {
                    Ok(m) => messages = Some(m),
                    Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
                }
            }
            tokio::select! {
                biased;
                _ = &mut close_rx => break,
                () = intake.cancelled(), if pulling => {
                    pulling = false;
                    messages = None;
                }
                () = async {}, if pulling && (messages.is_none() || rebind) => {}
                m = async {
                    match messages.as_mut() {
                        Some(s) => s.next().await,
                        None => std::future::pending().await,
                    }
                }, if pulling && messages.is_some() => match m {
                    Some(Ok(msg)) => {
                        self.take(msg);
                        // take what has already arrived, then wake the consumer once
                        if let Some(s) = messages.as_mut() {
                            for _ in 0..READY_BATCH {
                                if self.need_rebind {
                                    break;
                                }
                                match s.next().now_or_never() {
                                    Some(Some(Ok(msg))) => self.take(msg),
                                    _ => break,
                                }
                            }
                        }
                        self.flush().await;
                        if self.need_rebind {
                            messages = None;
                            rebind = true;
                        }
                    }
                    // a missed heartbeat or a node changing leader: keep reading
                    Some(Err(_)) => {}
                    None => {
                        messages = None;
                        rebind = true;
                    }
                },
                _ = tick.tick() => {
                    self.check_gaps().await;
                    self.ack(client).await;
                }
            }
        }
        self.ack(client).await;
        let _ = client.flush().await;
    }

    /// Handle one message: dedupe by stream sequence, then by publisher sequence, in order
    /// (what is due waits in `self.out` for the next flush).
    fn take(&mut self, msg: jetstream::Message) {
        self.counters.received.fetch_add(1, Relaxed);
        let Some(reply) = msg.message.reply.clone() else {
            return;
        };
        let Ok((seq, cseq)) = msg.info().map(|i| (i.stream_sequence, i.consumer_sequence)) else {
            return;
        };
        // the consumer numbers its deliveries: a jump means messages handed out on the way
        // here were lost (a node died with them in flight); acknowledging past them (ack-all)
        // would lose them for good, so bind again at the acknowledged position instead
        if self.next_cseq != 0 && cseq > self.next_cseq {
            self.counters.holes.fetch_add(1, Relaxed);
            self.need_rebind = true;
            return;
        }
        self.next_cseq = cseq + 1;
        if seq <= self.last_seq {
            self.counters.redelivered.fetch_add(1, Relaxed);
            self.acks.push_back((self.due(), seq, reply));
            return;
        }
        self.last_seq = seq;
        let subject = msg.message.subject.clone();
        if let Err(e) = self.take_payload(&subject, &msg.message.payload) {
            self.undecodable(&subject, seq, &e);
        }
        self.acks.push_back((self.due(), seq, reply));
    }

    /// Events pushed once what is due now has been flushed.
    fn due(&self) -> u64 {
        self.pushed + self.out.len() as u64
    }

    /// A message that is not in the bus encoding: counted and reported (its venue is the
    /// subject's third token when it names one), never applied.
    fn undecodable(&mut self, subject: &str, seq: u64, e: &codec::CodecError) {
        let n = self.counters.decode_errors.fetch_add(1, Relaxed) + 1;
        // one status per doubling: a publisher speaking another format must not flood
        if !n.is_power_of_two() {
            return;
        }
        let Some(venue) = subject.split('.').nth(2).and_then(Venue::from_id) else {
            return;
        };
        self.out.push(Event::Status(Status {
            venue,
            sym: None,
            kind: StatusKind::Error,
            reason: StatusReason::Relayed {
                code: "malformed_frame",
                message: format!(
                    "undecodable bus message on {subject} (stream sequence {seq}): {e}; skipped ({n} so far)"
                )
                .into(),
            },
            state: None,
            ts: now_ns(),
        }));
    }

    /// Put a message in its subject's order; what is due goes to `self.out`.
    fn order(&mut self, key: (String, u64), h: Header, ev: Event) {
        if self.subjects.len() >= TRACKED_BOUND && !self.subjects.contains_key(&key) {
            self.subjects.retain(|_, t| !t.held.is_empty());
        }
        if !self.subjects.contains_key(&key) {
            // the first message of a run seen here starts the count (joined mid-stream)
            self.subjects
                .insert(key.clone(), Track::starting_at(h.pseq));
        }
        let Some(track) = self.subjects.get_mut(&key) else {
            return;
        };
        if h.pseq < track.expected {
            if track.is_late(h.pseq) {
                // stored after newer messages (a publisher retry): delivered now rather than
                // lost, except book messages (see `apply_late`)
                self.counters.late.fetch_add(1, Relaxed);
                self.apply_late(ev);
            } else {
                self.counters.duplicates.fetch_add(1, Relaxed);
            }
            return;
        }
        if h.pseq > track.expected {
            self.counters.reordered.fetch_add(1, Relaxed);
            if track.held.insert(h.pseq, (h, ev)).is_some() {
                self.counters.duplicates.fetch_add(1, Relaxed);
            }
            track.since.get_or_insert_with(Instant::now);
            if track.held.len() > REORDER_BOUND {
                self.give_up(&key);
            }
            return;
        }
        track.expected += 1;
        self.apply(h, ev);
        self.release(&key);
    }

    /// Apply the held messages that are now due.
    fn release(&mut self, key: &(String, u64)) {
        loop {
            let Some(track) = self.subjects.get_mut(key) else {
                return;
            };
            let Some(entry) = track.held.first_entry() else {
                track.since = None;
                return;
            };
            if *entry.key() != track.expected {
                return;
            }
            let (h, ev) = entry.remove();
            self.released = true;
            track.expected += 1;
            if track.held.is_empty() {
                track.since = None;
            }
            self.apply(h, ev);
        }
    }

    /// The hole before a subject's held messages will not fill: report it, go on after it.
    fn give_up(&mut self, key: &(String, u64)) {
        let Some(track) = self.subjects.get_mut(key) else {
            return;
        };
        let Some((&first, (_, ev))) = track.held.first_key_value() else {
            return;
        };
        let expected = track.expected;
        track.expected = first;
        track.since = Some(Instant::now());
        track.skipped.push_back((expected, first));
        if track.skipped.len() > SKIPPED_BOUND {
            track.skipped.pop_front();
        }
        self.counters.gaps.fetch_add(1, Relaxed);
        let reason = StatusReason::BusGap {
            expected,
            got: first,
        };
        let (venue, sym) = (ev.venue().unwrap_or(Venue::Binance), ev.sym().cloned());
        let status = match (&ev, sym) {
            (Event::Book(b), _) => {
                let key = (b.sym.venue, b.sym.symbol.clone());
                if let Some(e) = self.registry.get_mut(&key) {
                    e.has_base = false;
                    e.bus_gap = true;
                    if let Some(book) = &e.meta.book {
                        book.write().state = BookState::Resyncing;
                    }
                }
                Status {
                    venue,
                    sym: Some(b.sym.clone()),
                    kind: StatusKind::Resync,
                    reason,
                    state: Some(BookState::Resyncing),
                    ts: now_ns(),
                }
            }
            (_, sym) => Status {
                venue,
                sym,
                kind: StatusKind::Error,
                reason,
                state: None,
                ts: now_ns(),
            },
        };
        self.out.push(Event::Status(status));
        self.release(key);
    }

    /// Holes older than the gap timeout are given up on.
    async fn check_gaps(&mut self) {
        let timeout = self.cfg.gap_timeout;
        let late: Vec<(String, u64)> = self
            .subjects
            .iter()
            .filter(|(_, t)| t.since.is_some_and(|s| s.elapsed() >= timeout))
            .map(|(k, _)| k.clone())
            .collect();
        for key in late {
            self.give_up(&key);
        }
        self.flush().await;
    }

    /// Apply one in-order event: books are maintained, statuses mirrored.
    fn apply(&mut self, h: Header, ev: Event) {
        match ev {
            Event::Book(b) => self.apply_book(h, b),
            Event::Status(s) => {
                if let (Some(sym), Some(state)) = (&s.sym, s.state) {
                    let key = (sym.venue, sym.symbol.clone());
                    if let Some(e) = self.registry.get(&key) {
                        if let (true, Some(book)) = (e.has_base, &e.meta.book) {
                            book.write().state = state;
                        }
                    }
                }
                self.out.push(Event::Status(s));
            }
            other => self.out.push(other),
        }
    }

    /// A late message (out of its subject's order). Trades and quotes are delivered; a status
    /// is delivered without changing a book's state (a newer one already did); a book message
    /// is dropped: a book is only ever built from messages in their order (a late base could
    /// miss deltas published after it and seen already, or before this consumer started).
    fn apply_late(&mut self, ev: Event) {
        match ev {
            Event::Book(_) => {
                self.counters.late_book.fetch_add(1, Relaxed);
            }
            other => self.out.push(other),
        }
    }

    fn apply_book(&mut self, h: Header, b: BookDelta) {
        let key = (b.sym.venue, b.sym.symbol.clone());
        let Some(entry) = self.registry.get_mut(&key) else {
            return;
        };
        let Some(book) = entry.meta.book.clone() else {
            return;
        };
        let refresh = h.kind == KIND_BOOK_REFRESH;
        if refresh && entry.has_base {
            return;
        }
        if b.is_snapshot {
            {
                let mut g = book.write();
                g.clear();
                set_levels(&mut g, &b);
                g.state = BookState::Live;
            }
            entry.has_base = true;
            if refresh {
                self.counters.refreshes_used.fetch_add(1, Relaxed);
            }
            let recovered = std::mem::take(&mut entry.bus_gap);
            let sym = entry.meta.clone();
            self.out.push(Event::Book(b));
            if recovered {
                self.out.push(Event::Status(Status {
                    venue: sym.venue,
                    sym: Some(sym),
                    kind: StatusKind::Recovered,
                    reason: StatusReason::None,
                    state: Some(BookState::Live),
                    ts: now_ns(),
                }));
            }
            return;
        }
        if !entry.has_base {
            self.counters.book_waiting.fetch_add(1, Relaxed);
            return;
        }
        {
            let mut g = book.write();
            if b.seq <= g.seq {
                // already in the base (a refresh taken after this delta was published)
                return;
            }
            set_levels(&mut g, &b);
        }
        self.out.push(Event::Book(b));
    }

    /// Push what is due to the bus (waits while it is full).
    async fn flush(&mut self) {
        if self.out.is_empty() {
            return;
        }
        let n = self.out.len() as u64;
        self.pushed += n;
        self.counters.pushed.fetch_add(n, Relaxed);
        if std::mem::take(&mut self.released) {
            // messages received before these events went out: acknowledged only after them
            for a in &mut self.acks {
                a.0 = self.pushed;
            }
        }
        self.bus.publish(&mut self.out).await;
    }

    /// Acknowledge (ack-all) the newest message whose events have all been delivered and
    /// that no held message precedes; keep the checkpoint.
    async fn ack(&mut self, client: &async_nats::Client) {
        let delivered = self.delivered.load(Relaxed);
        // a message held for reordering was received earlier than what follows it: do not
        // acknowledge past anything while messages are held
        if self.subjects.values().any(|t| !t.held.is_empty()) {
            return;
        }
        let mut last = None;
        while let Some((pushed, _, _)) = self.acks.front() {
            if *pushed > delivered {
                break;
            }
            last = self.acks.pop_front();
        }
        let Some((_, seq, reply)) = last else {
            return;
        };
        if client
            .publish(reply, bytes::Bytes::from_static(b"+ACK"))
            .await
            .is_ok()
        {
            self.counters.acked_seq.fetch_max(seq, Relaxed);
        }
        if let Some(p) = &self.cfg.checkpoint {
            let _ = write_checkpoint(p, seq);
        }
    }
}

fn set_levels(g: &mut OrderBook, b: &BookDelta) {
    for (p, s) in &b.bids {
        g.set_bid(*p, *s);
    }
    for (p, s) in &b.asks {
        g.set_ask(*p, *s);
    }
    g.seq = b.seq;
    g.ts_exchange = b.ts_exchange;
    g.ts_recv = b.ts_recv;
}

/// The interned symbol of `(venue, symbol)`, created on first sight; one seen first without
/// a book gets one when its first book message arrives.
fn resolve(
    registry: &mut HashMap<(Venue, Box<str>), Entry>,
    symbols: &RwLock<Vec<Arc<SymbolMeta>>>,
    venue: Venue,
    symbol: &str,
    native: &str,
    is_book: bool,
) -> Arc<SymbolMeta> {
    let key = (venue, Box::<str>::from(symbol));
    if let Some(e) = registry.get(&key) {
        if !is_book || e.meta.book.is_some() {
            return e.meta.clone();
        }
    }
    let book = is_book.then(|| Arc::new(RwLock::new(OrderBook::new())));
    let meta = SymbolMeta::new(venue, native, symbol, book);
    let mut list = symbols.write();
    if let Some(old) = registry.get(&key) {
        list.retain(|m| !Arc::ptr_eq(m, &old.meta));
    }
    list.push(meta.clone());
    registry.insert(
        key,
        Entry {
            meta: meta.clone(),
            has_base: false,
            bus_gap: false,
        },
    );
    meta
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Side, Trade};
    use crate::pipeline::nats::codec::{encode, encode_refresh, subject_of};

    fn state() -> State {
        let bus = Arc::new(EventBus::with_policies(
            1024,
            crate::pipeline::bus::OverflowPolicy::Block,
            crate::pipeline::bus::KindPolicies::all_block(),
            None,
        ));
        State::new(
            SourceConfig {
                servers: vec![],
                stream: "XT".into(),
                subject: "xt.>".into(),
                durable: "t".into(),
                checkpoint: None,
                batch: 10,
                gap_timeout: Duration::from_millis(50),
            },
            bus,
            Arc::default(),
            Arc::default(),
            Arc::default(),
            0,
        )
    }

    /// A collector-side symbol (its own interned meta, as a real collector has).
    fn pub_sym() -> Arc<SymbolMeta> {
        SymbolMeta::new(Venue::Binance, "BTCUSDT", "BTC-USDT", Some(Arc::default()))
    }

    fn trade(id: u64) -> Event {
        Event::Trade(Trade {
            sym: pub_sym(),
            ts_exchange: 1,
            ts_recv: 2,
            price: 100.0,
            size: 1.0,
            side: Side::Buy,
            trade_id: id,
        })
    }

    fn book(seq: u64, snapshot: bool, bids: Vec<(f64, f64)>) -> Event {
        Event::Book(BookDelta {
            sym: pub_sym(),
            ts_exchange: 1,
            ts_recv: 2,
            seq,
            is_snapshot: snapshot,
            bids,
            asks: vec![(101.0, 1.0)],
        })
    }

    fn feed(st: &mut State, ev: &Event, epoch: u64, pseq: u64, refresh: bool) {
        let (mut buf, mut subject) = (Vec::new(), String::new());
        if refresh {
            encode_refresh(ev, epoch, pseq, &mut buf);
        } else {
            encode(ev, epoch, pseq, &mut buf);
        }
        subject_of(ev, "xt", &mut subject);
        st.take_payload(&subject, &buf).expect("decodes");
    }

    #[test]
    fn an_undecodable_message_is_reported_and_skipped() {
        let mut st = state();
        let bad = [1u8, 99, 0, 0];
        let e = st
            .take_payload("xt.trades.okx.BTC-USDT", &bad)
            .expect_err("refused");
        st.undecodable("xt.trades.okx.BTC-USDT", 7, &e);
        let Some(Event::Status(s)) = st.out.pop() else {
            panic!("a status")
        };
        assert_eq!(s.venue, Venue::Okx);
        assert_eq!(s.reason.code(), Some("malformed_frame"));
        assert!(s.reason.render().contains("xt.trades.okx.BTC-USDT"));
        assert!(s.reason.render().contains("stream sequence 7"));
    }

    fn trade_ids(st: &mut State) -> Vec<u64> {
        st.out
            .drain(..)
            .filter_map(|e| match e {
                Event::Trade(t) => Some(t.trade_id),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn reordered_messages_are_put_back_in_order_and_duplicates_dropped() {
        let mut st = state();
        for p in [1, 3, 2, 2, 5, 4, 1] {
            feed(&mut st, &trade(100 + p), 9, p, false);
        }
        assert_eq!(trade_ids(&mut st), vec![101, 102, 103, 104, 105]);
        assert_eq!(st.counters.duplicates.load(Relaxed), 2);
        assert_eq!(st.counters.reordered.load(Relaxed), 2);
        // a second publishing run on the same subject counts on its own
        feed(&mut st, &trade(200), 10, 1, false);
        feed(&mut st, &trade(106), 9, 6, false);
        assert_eq!(trade_ids(&mut st), vec![200, 106]);
    }

    #[test]
    fn late_messages_are_delivered_not_taken_for_duplicates() {
        let mut st = state();
        // resumed mid-stream: the first one seen is pseq 5, retries 3 and 4 were stored later
        feed(&mut st, &trade(105), 9, 5, false);
        feed(&mut st, &trade(103), 9, 3, false);
        feed(&mut st, &trade(104), 9, 4, false);
        feed(&mut st, &trade(103), 9, 3, false); // the same again: a duplicate
        feed(&mut st, &trade(105), 9, 5, false); // delivered in order already
        assert_eq!(trade_ids(&mut st), vec![105, 103, 104]);
        assert_eq!(st.counters.late.load(Relaxed), 2);
        assert_eq!(st.counters.duplicates.load(Relaxed), 2);
        // a hole given up on, then filled late: delivered once
        feed(&mut st, &trade(108), 9, 8, false);
        let key = st.subjects.keys().next().cloned().expect("tracked");
        st.give_up(&key);
        feed(&mut st, &trade(106), 9, 6, false);
        feed(&mut st, &trade(106), 9, 6, false);
        feed(&mut st, &trade(107), 9, 7, false);
        let ids = trade_ids(&mut st);
        assert_eq!(ids, vec![108, 106, 107]);
    }

    #[test]
    fn a_hole_that_never_fills_is_a_reported_gap() {
        let mut st = state();
        feed(&mut st, &trade(1), 9, 1, false);
        feed(&mut st, &trade(3), 9, 3, false);
        assert_eq!(trade_ids(&mut st), vec![1]);
        std::thread::sleep(Duration::from_millis(60));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(st.check_gaps());
        // flushed to the bus: the gap status, then trade 3
        let mut got = Vec::new();
        st.bus.pop_batch(&mut got, 10, Duration::from_millis(10));
        assert_eq!(st.counters.gaps.load(Relaxed), 1);
        let Event::Status(s) = &got[0] else {
            panic!("expected the gap status first, got {:?}", got[0])
        };
        assert_eq!(s.reason.code(), Some("bus_gap"));
        assert!(s.reason.render().contains("2 expected, 3 received"));
        assert!(matches!(&got[1], Event::Trade(t) if t.trade_id == 3));
    }

    fn consumer_book(st: &State) -> (Vec<(f64, f64)>, u64, BookState) {
        let e = st
            .registry
            .get(&(Venue::Binance, Box::<str>::from("BTC-USDT")))
            .expect("symbol seen");
        let b = e.meta.book.as_ref().expect("book").read();
        (
            b.bids(None).map(|l| (l.price, l.size)).collect(),
            b.seq,
            b.state,
        )
    }

    #[test]
    fn books_need_a_base_and_skip_deltas_the_base_holds() {
        let mut st = state();
        // joined mid-stream: a delta without a base is not applied
        feed(&mut st, &book(10, false, vec![(99.0, 1.0)]), 1, 1, false);
        assert_eq!(st.counters.book_waiting.load(Relaxed), 1);
        assert!(st.out.is_empty());
        // a refresh gives the base (taken ahead of deltas still in the stream)
        feed(
            &mut st,
            &book(12, true, vec![(99.0, 2.0), (98.0, 1.0)]),
            1,
            2,
            true,
        );
        assert_eq!(consumer_book(&st).2, BookState::Live);
        // delta 11 is already in the base; delta 13 applies
        feed(&mut st, &book(11, false, vec![(99.0, 7.0)]), 1, 3, false);
        feed(&mut st, &book(13, false, vec![(98.0, 0.0)]), 1, 4, false);
        let (bids, seq, _) = consumer_book(&st);
        assert_eq!(bids, vec![(99.0, 2.0)]);
        assert_eq!(seq, 13);
        // a later refresh is ignored while the book has its base
        feed(&mut st, &book(14, true, vec![(1.0, 1.0)]), 1, 5, true);
        assert_eq!(consumer_book(&st).0, vec![(99.0, 2.0)]);
        assert_eq!(st.counters.refreshes_used.load(Relaxed), 1);
    }

    #[test]
    fn a_late_book_message_never_becomes_a_base() {
        let mut st = state();
        // resumed mid-stream at delta pseq 10; a refresh with pseq 8 was stored after it
        feed(&mut st, &book(30, false, vec![(99.0, 1.0)]), 1, 10, false);
        feed(&mut st, &book(25, true, vec![(98.0, 4.0)]), 1, 8, true);
        assert_eq!(st.counters.late_book.load(Relaxed), 1);
        assert_eq!(consumer_book(&st).2, BookState::Syncing);
        // the next in-order refresh is the base
        feed(&mut st, &book(31, true, vec![(97.0, 2.0)]), 1, 11, true);
        assert_eq!(consumer_book(&st).0, vec![(97.0, 2.0)]);
        assert_eq!(consumer_book(&st).2, BookState::Live);
    }

    #[test]
    fn a_book_gap_resyncs_until_the_next_base() {
        let mut st = state();
        feed(&mut st, &book(10, true, vec![(99.0, 1.0)]), 1, 1, false);
        feed(&mut st, &book(12, false, vec![(99.0, 3.0)]), 1, 3, false);
        let key = st.subjects.keys().next().cloned().expect("tracked");
        st.give_up(&key);
        assert_eq!(consumer_book(&st).2, BookState::Resyncing);
        // the held delta after the hole is not applied to a book without a base
        assert_eq!(consumer_book(&st).0, vec![(99.0, 1.0)]);
        feed(&mut st, &book(20, true, vec![(97.0, 5.0)]), 1, 4, true);
        let (bids, seq, state) = consumer_book(&st);
        assert_eq!((bids, seq, state), (vec![(97.0, 5.0)], 20, BookState::Live));
        let recovered = st
            .out
            .iter()
            .any(|e| matches!(e, Event::Status(s) if s.kind == StatusKind::Recovered));
        assert!(recovered, "a recovered status follows the new base");
    }
}
