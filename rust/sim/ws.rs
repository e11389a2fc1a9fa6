//! One websocket client session after the HTTP upgrade.
//!
//! Owns the per-connection loop: forwarding broadcast frames the client subscribed to (raw or
//! combined form), answering control messages through `control.rs`, the keepalive rules of
//! exchanges.md 2.4 (server ping every `ping_interval`, close after `pong_timeout` without the
//! matching pong), the incoming-message rate limit and the lagging-client policy. Every write
//! is bounded by a timeout and by the sim's cancellation, so a stuck client cannot pin a task.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::broadcast::Receiver;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Bytes, Message};
use tokio_tungstenite::WebSocketStream;

use super::control::{self, Subs};
use super::faults::MAX_INJECTED;
use super::feed::now_ms;
use super::frames::{push_u64, server_shutdown, Frame, TOPIC_ALL};
use super::profile::Route;
use super::{bump, Shared, Source};

/// Control messages are tiny; refuse anything bigger than this from a client.
const MAX_INCOMING: usize = 64 * 1024;
/// Bytes buffered towards one client before writes wait for the socket (room for one
/// injected frame of `MAX_INJECTED` bytes).
const MAX_WRITE_BUFFER: usize = MAX_INJECTED + 16 * 1024 * 1024;
/// Frames forwarded before one flush; amortises syscalls at high rates.
const BATCH: usize = 256;
/// How long a closing handshake may take before the socket is simply dropped.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

type Ws = WebSocketStream<TokioIo<Upgraded>>;

/// What the URL asked for: route, mode and pre-subscribed streams.
#[derive(Debug)]
pub(crate) struct WsParams {
    pub combined: bool,
    pub streams: Vec<String>,
    pub route: Route,
}

/// Sliding one-second window over incoming frames (pings, pongs and text all count).
struct RateLimit {
    limit: usize,
    seen: VecDeque<Instant>,
}

impl RateLimit {
    fn allow(&mut self, now: Instant) -> bool {
        while self
            .seen
            .front()
            .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(1))
        {
            self.seen.pop_front();
        }
        if self.seen.len() >= self.limit {
            return false;
        }
        self.seen.push_back(now);
        true
    }
}

struct Session {
    ws: Ws,
    subs: Subs,
    shared: Arc<Shared>,
    limit: Option<RateLimit>,
    last_ping: Bytes,
    unanswered_since: Option<Instant>,
}

enum Flow {
    Continue,
    Stop,
}

/// Runs a session until the client leaves, breaks a rule, or the sim shuts down.
pub(crate) async fn run(upgraded: Upgraded, params: WsParams, shared: Arc<Shared>) {
    bump(&shared.stats.ws_sessions);
    let cfg = WebSocketConfig::default()
        .max_message_size(Some(MAX_INCOMING))
        .max_frame_size(Some(MAX_INCOMING))
        .max_write_buffer_size(MAX_WRITE_BUFFER);
    let ws =
        WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(cfg)).await;
    // Subscribe to the broadcast before registering streams so no frame falls in between.
    let rx = shared.tx.subscribe();
    // open = receiving the broadcast: a caller that waits for it can inject at once
    bump(&shared.stats.ws_open);
    let mut subs = Subs::new(
        &shared.topics,
        params.combined,
        shared.profile,
        params.route,
    );
    for name in &params.streams {
        subs.add(&shared.topics, name);
    }
    if !params.streams.is_empty() {
        start_capture(&shared);
    }
    let limit = shared.max_client_msgs_per_s.map(|l| RateLimit {
        limit: l as usize,
        seen: VecDeque::with_capacity(l as usize),
    });
    let mut session = Session {
        ws,
        subs,
        shared: shared.clone(),
        limit,
        last_ping: Bytes::new(),
        unanswered_since: None,
    };
    session.run(rx).await;
    session.subs.release(&shared.topics);
    let _ = shared
        .stats
        .ws_open
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| v.checked_sub(1));
}

fn start_capture(shared: &Shared) {
    if let Source::Capture(c) = &shared.source {
        c.request_start();
    }
}

/// Runs a write, giving up when the client stalls for `pong_timeout` or the sim stops.
///
/// A write that completes on its first poll (room in the write buffer, or a socket that takes
/// the flush at once: nearly every write) arms neither the stall timer nor a cancellation
/// waiter; both cost a clock read and waiter bookkeeping per frame at full rate.
async fn guarded<F>(shared: &Shared, fut: F) -> Flow
where
    F: Future<Output = Result<(), tokio_tungstenite::tungstenite::Error>>,
{
    let mut fut = std::pin::pin!(fut);
    match futures_util::future::poll_immediate(&mut fut).await {
        Some(Ok(())) => return Flow::Continue,
        Some(Err(_)) => return Flow::Stop,
        None => {}
    }
    tokio::select! {
        () = shared.cancel.cancelled() => Flow::Stop,
        r = tokio::time::timeout(shared.pong_timeout, fut) => match r {
            Ok(Ok(())) => Flow::Continue,
            Ok(Err(_)) => Flow::Stop,
            Err(_) => {
                bump(&shared.stats.slow_write_closes);
                Flow::Stop
            }
        },
    }
}

async fn deadline(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

impl Session {
    async fn run(&mut self, mut rx: Receiver<Frame>) {
        let period = self.shared.ping_interval;
        let mut pings = tokio::time::interval_at(Instant::now() + period, period);
        pings.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let cancel = self.shared.cancel.clone();
        let expires = self.shared.connection_lifetime.map(|l| Instant::now() + l);
        let mut kicks = self.shared.faults.kicks();
        let mut injected = self.shared.faults.injected();
        loop {
            let pong_due = self.unanswered_since.map(|t| t + self.shared.pong_timeout);
            let flow = tokio::select! {
                biased;
                () = cancel.cancelled() => {
                    let notice = server_shutdown(now_ms());
                    let text = if self.subs.combined { notice.combined.clone() } else { notice.raw.clone() };
                    let _ = tokio::time::timeout(CLOSE_WAIT, self.ws.send(Message::Text(text))).await;
                    self.close(CloseCode::Away, "server shutdown").await;
                    Flow::Stop
                }
                Ok(()) = kicks.changed() => {
                    // a network failure, not a goodbye: drop the socket without a close frame
                    bump(&self.shared.stats.forced_disconnects);
                    Flow::Stop
                }
                () = deadline(expires) => {
                    // the venue's 24-hour limit (compressed in tests)
                    bump(&self.shared.stats.lifetime_closes);
                    self.close(CloseCode::Away, "connection lifetime reached").await;
                    Flow::Stop
                }
                () = deadline(pong_due) => {
                    bump(&self.shared.stats.pong_timeouts);
                    self.close(CloseCode::Policy, "pong timeout").await;
                    Flow::Stop
                }
                msg = self.ws.next() => match msg {
                    Some(Ok(m)) => self.incoming(m).await,
                    Some(Err(_)) | None => Flow::Stop,
                },
                // the sender lives in `shared`, so this channel never closes under a session
                Ok(msg) = injected.recv() => guarded(&self.shared, self.ws.send(msg)).await,
                r = rx.recv() => match r {
                    Ok(frame) => self.deliver(frame, &mut rx).await,
                    Err(RecvError::Lagged(_)) => self.lagged().await,
                    Err(RecvError::Closed) => Flow::Stop,
                },
                _ = pings.tick() => self.ping().await,
            };
            if matches!(flow, Flow::Stop) {
                return;
            }
        }
    }

    async fn close(&mut self, code: CloseCode, reason: &'static str) {
        let frame = CloseFrame {
            code,
            reason: reason.into(),
        };
        if tokio::time::timeout(CLOSE_WAIT, self.ws.send(Message::Close(Some(frame))))
            .await
            .is_err()
        {
            return;
        }
        // Read until the client's close reply so unread input does not turn our close into a
        // TCP reset that would swallow the close frame.
        let _ = tokio::time::timeout(CLOSE_WAIT, async {
            while let Some(Ok(_)) = self.ws.next().await {}
        })
        .await;
    }

    async fn lagged(&mut self) -> Flow {
        bump(&self.shared.stats.lagged_disconnects);
        self.close(CloseCode::Policy, "client too slow").await;
        Flow::Stop
    }

    async fn ping(&mut self) -> Flow {
        if self.shared.faults.muted() {
            return Flow::Continue; // a half-open socket: nothing at all reaches the client
        }
        let mut payload = String::with_capacity(16);
        push_u64(&mut payload, now_ms());
        self.last_ping = Bytes::from(payload.into_bytes());
        if self.unanswered_since.is_none() {
            self.unanswered_since = Some(Instant::now());
        }
        bump(&self.shared.stats.pings_sent);
        let msg = Message::Ping(self.last_ping.clone());
        guarded(&self.shared, self.ws.send(msg)).await
    }

    async fn incoming(&mut self, msg: Message) -> Flow {
        if matches!(msg, Message::Close(_)) {
            // tungstenite queues the close reply; flushing sends it.
            let _ = tokio::time::timeout(CLOSE_WAIT, self.ws.flush()).await;
            return Flow::Stop;
        }
        let now = Instant::now();
        if let Some(limit) = self.limit.as_mut() {
            if !limit.allow(now) {
                bump(&self.shared.stats.rate_limit_closes);
                self.close(CloseCode::Policy, "Too many requests").await;
                return Flow::Stop;
            }
        }
        let text = match msg {
            Message::Text(t) => t,
            Message::Binary(b) => match tokio_tungstenite::tungstenite::Utf8Bytes::try_from(b) {
                Ok(t) => t,
                Err(_) => return Flow::Continue,
            },
            Message::Ping(_) => {
                bump(&self.shared.stats.client_pings);
                // The pong is queued by tungstenite; flush so it leaves now, not on next write.
                return guarded(&self.shared, self.ws.flush()).await;
            }
            Message::Pong(p) => {
                bump(&self.shared.stats.pongs_received);
                if p == self.last_ping {
                    self.unanswered_since = None;
                }
                return Flow::Continue;
            }
            Message::Close(_) | Message::Frame(_) => return Flow::Continue,
        };
        let reply = control::handle(&text, &mut self.subs, &self.shared);
        if reply.subscribed {
            start_capture(&self.shared);
        }
        guarded(&self.shared, self.ws.send(Message::Text(reply.text.into()))).await
    }

    /// Forwards `first` and whatever else is already queued, then flushes once.
    async fn deliver(&mut self, first: Frame, rx: &mut Receiver<Frame>) -> Flow {
        let mut next = Some(first);
        let mut sent = 0u64;
        let mut seen = 0usize;
        while let Some(frame) = next.take() {
            seen += 1;
            let wanted = frame.topic == TOPIC_ALL || self.subs.wants(frame.topic);
            if wanted
                && frame.topic != TOPIC_ALL
                && self
                    .shared
                    .faults
                    .stalled(self.shared.topics.name(frame.topic))
            {
                bump(&self.shared.stats.stalled_frames);
            } else if wanted {
                let text = if self.subs.combined {
                    frame.combined.clone()
                } else {
                    frame.raw.clone()
                };
                let fut = self.ws.feed(Message::Text(text));
                if let Flow::Stop = guarded(&self.shared, fut).await {
                    return Flow::Stop;
                }
                sent += 1;
            }
            if seen >= BATCH {
                break;
            }
            match rx.try_recv() {
                Ok(f) => next = Some(f),
                Err(TryRecvError::Lagged(_)) => return self.lagged().await,
                Err(TryRecvError::Empty | TryRecvError::Closed) => break,
            }
        }
        if sent == 0 {
            return Flow::Continue;
        }
        self.shared
            .stats
            .frames_sent
            .fetch_add(sent, Ordering::Relaxed);
        guarded(&self.shared, self.ws.flush()).await
    }
}
