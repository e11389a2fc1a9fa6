//! One OKX websocket session (`/ws/v5/public` or `/ws/v5/business`) after the upgrade.
//!
//! Owns the OKX control grammar (`subscribe` / `unsubscribe` with one ack per arg, `event:error`
//! replies with codes 60012, 60013, 60014, 60018, 60019, 64001, 64002), the text `ping` /
//! `pong`, the 30 s rule (a connection nothing was sent to for `idle_timeout` is closed with
//! 4004), the pushed snapshot of an incremental book on subscribe, the per-connection request
//! budget (480 per hour), and the `notice` 64008 before a shutdown. An invalid arg is answered
//! with an error and the other args of the request are still subscribed (how the venue treats
//! mixed requests is UNVERIFIED; per arg is what a sharded client needs).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use sonic_rs::{JsonContainerTrait, JsonValueTrait, Value};
use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use super::super::control::push_json_str;
use super::super::faults::MAX_INJECTED;
use super::super::feed::now_ms;
use super::super::frames::TOPIC_ALL;
use super::super::{bump, Shared};
use super::frames::{self, BookSeq, Grid};
use super::{liq_topic, take, topic, OkxFrame, OkxSim, OkxSource, INCREMENTAL, KINDS, LIQ_TYPES};

/// Control messages are small; refuse anything bigger (the venue allows 64 KB of args).
const MAX_INCOMING: usize = 64 * 1024;
/// Room for one injected frame of `MAX_INJECTED` bytes beside the stream.
const MAX_WRITE_BUFFER: usize = MAX_INJECTED + 16 * 1024 * 1024;
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
const CLOSE_WAIT: Duration = Duration::from_secs(1);
/// Subscribe + unsubscribe requests per connection and hour.
const REQUESTS_PER_HOUR: u32 = 480;

type Ws = WebSocketStream<TokioIo<Upgraded>>;

static CONN_IDS: AtomicU64 = AtomicU64::new(0x5a17_0000);

struct Session {
    ws: Ws,
    shared: Arc<Shared>,
    okx: Arc<OkxSim>,
    business: bool,
    conn_id: String,
    wanted: Vec<bool>,
    /// Incremental book topics: skip updates already contained in the pushed snapshot.
    min_seq: HashMap<u32, i64>,
    last_sent: Instant,
    window: (Instant, u32),
}

enum Flow {
    Continue,
    Stop,
}

/// Runs a session until the client leaves, goes idle, or the sim shuts down.
pub(crate) async fn run(upgraded: Upgraded, business: bool, shared: Arc<Shared>, okx: Arc<OkxSim>) {
    bump(&shared.stats.okx_sessions);
    let cfg = WebSocketConfig::default()
        .max_message_size(Some(MAX_INCOMING))
        .max_frame_size(Some(MAX_INCOMING))
        .max_write_buffer_size(MAX_WRITE_BUFFER);
    let ws =
        WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(cfg)).await;
    let rx = okx.tx.subscribe();
    let mut conn_id = String::with_capacity(8);
    let id = CONN_IDS.fetch_add(0x9e37, Ordering::Relaxed);
    for shift in (0..32).step_by(4).rev() {
        let d = u32::try_from((id >> shift) & 0xf).unwrap_or(0);
        conn_id.push(char::from_digit(d, 16).unwrap_or('0'));
    }
    let n = okx.topics.count();
    let mut s = Session {
        ws,
        shared,
        okx,
        business,
        conn_id,
        wanted: vec![false; n],
        min_seq: HashMap::new(),
        last_sent: Instant::now(),
        window: (Instant::now(), 0),
    };
    s.run(rx).await;
    for (t, w) in s.wanted.iter().enumerate() {
        if *w {
            if let Ok(t) = u32::try_from(t) {
                s.okx.topics.remove(t);
            }
        }
    }
}

impl Session {
    async fn run(&mut self, mut rx: tokio::sync::broadcast::Receiver<Arc<OkxFrame>>) {
        let cancel = self.shared.cancel.clone();
        let mut kicks = self.shared.faults.kicks();
        let mut injected = self.shared.faults.injected();
        loop {
            let idle_at = self.last_sent + self.okx.cfg.idle_timeout;
            let flow = tokio::select! {
                biased;
                () = cancel.cancelled() => {
                    let notice = format!(r#"{{"event":"notice","code":"64008","msg":"The connection will soon be closed for a service upgrade. Please reconnect.","connId":"{}"}}"#, self.conn_id);
                    let _ = tokio::time::timeout(CLOSE_WAIT, self.ws.send(Message::text(notice))).await;
                    self.close(CloseCode::Away, "service upgrade").await;
                    Flow::Stop
                }
                Ok(()) = kicks.changed() => {
                    // a network failure (`disconnect`): drop the socket without a close frame
                    bump(&self.shared.stats.forced_disconnects);
                    Flow::Stop
                }
                Ok(msg) = injected.recv() => {
                    self.last_sent = Instant::now();
                    match tokio::time::timeout(WRITE_TIMEOUT, self.ws.send(msg)).await {
                        Ok(Ok(())) => Flow::Continue,
                        _ => Flow::Stop,
                    }
                }
                () = tokio::time::sleep_until(idle_at) => {
                    bump(&self.shared.stats.okx_idle_closes);
                    self.close(CloseCode::Library(4004), "No data received in 30s.").await;
                    Flow::Stop
                }
                msg = self.ws.next() => match msg {
                    Some(Ok(m)) => self.incoming(m).await,
                    Some(Err(_)) | None => Flow::Stop,
                },
                r = rx.recv() => match r {
                    Ok(f) => self.deliver(&f).await,
                    Err(RecvError::Lagged(_)) => {
                        bump(&self.shared.stats.lagged_disconnects);
                        self.close(CloseCode::Library(4005), "write buffer full").await;
                        Flow::Stop
                    }
                    Err(RecvError::Closed) => Flow::Stop,
                },
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
        let _ = tokio::time::timeout(CLOSE_WAIT, async {
            while let Some(Ok(_)) = self.ws.next().await {}
        })
        .await;
    }

    async fn send(&mut self, text: String) -> Flow {
        self.last_sent = Instant::now();
        match tokio::time::timeout(WRITE_TIMEOUT, self.ws.send(Message::text(text))).await {
            Ok(Ok(())) => Flow::Continue,
            Ok(Err(_)) => Flow::Stop,
            Err(_) => {
                bump(&self.shared.stats.slow_write_closes);
                Flow::Stop
            }
        }
    }

    async fn deliver(&mut self, f: &OkxFrame) -> Flow {
        let wanted =
            f.topic == TOPIC_ALL || self.wanted.get(f.topic as usize).copied().unwrap_or(false);
        if !wanted {
            return Flow::Continue;
        }
        if let (Some(seq), Some(min)) = (f.seq, self.min_seq.get(&f.topic)) {
            if seq <= *min {
                return Flow::Continue; // already in the snapshot this client was sent
            }
        }
        self.last_sent = Instant::now();
        bump(&self.shared.stats.frames_sent);
        match tokio::time::timeout(WRITE_TIMEOUT, self.ws.send(Message::Text(f.text.clone()))).await
        {
            Ok(Ok(())) => Flow::Continue,
            _ => Flow::Stop,
        }
    }

    async fn incoming(&mut self, msg: Message) -> Flow {
        let text = match msg {
            Message::Text(t) => t,
            Message::Close(_) => {
                let _ = tokio::time::timeout(CLOSE_WAIT, self.ws.flush()).await;
                return Flow::Stop;
            }
            // protocol pings are answered by tungstenite; they are not OKX's keepalive
            _ => return Flow::Continue,
        };
        if text.as_str() == "ping" {
            if self.shared.faults.muted() {
                return Flow::Continue; // a half-open socket: the pong never arrives
            }
            bump(&self.shared.stats.okx_pings);
            return self.send("pong".to_string()).await;
        }
        bump(&self.shared.stats.control_messages);
        for reply in self.control(text.as_str()) {
            if let Flow::Stop = self.send(reply).await {
                return Flow::Stop;
            }
        }
        Flow::Continue
    }

    fn error(&self, id: Option<&str>, code: &str, msg: &str) -> String {
        bump(&self.shared.stats.control_errors);
        let mut s = String::with_capacity(msg.len() + 80);
        s.push('{');
        if let Some(id) = id {
            s.push_str("\"id\":");
            push_json_str(&mut s, id);
            s.push(',');
        }
        s.push_str("\"event\":\"error\",\"code\":\"");
        s.push_str(code);
        s.push_str("\",\"msg\":");
        push_json_str(&mut s, msg);
        s.push_str(",\"connId\":\"");
        s.push_str(&self.conn_id);
        s.push_str("\"}");
        s
    }

    /// Replies (acks, errors, pushed snapshots) to one control message, in order.
    fn control(&mut self, text: &str) -> Vec<String> {
        let v: Value = match sonic_rs::from_str(text) {
            Ok(v) => v,
            Err(_) => {
                let shown: String = text.chars().take(200).collect();
                return vec![self.error(None, "60012", &format!("Invalid request: {shown}"))];
            }
        };
        let id = v.get("id").and_then(|i| i.as_str()).map(str::to_string);
        let id = id.as_deref();
        let op = v.get("op").and_then(|o| o.as_str()).unwrap_or("");
        if op != "subscribe" && op != "unsubscribe" {
            return vec![self.error(id, "60019", &format!("Invalid op: op: {op}"))];
        }
        let Some(args) = v
            .get("args")
            .and_then(|a| a.as_array())
            .filter(|a| !a.is_empty())
        else {
            return vec![self.error(id, "60013", "Invalid args")];
        };
        let now = Instant::now();
        if now.duration_since(self.window.0) >= Duration::from_secs(3600) {
            self.window = (now, 0);
        }
        self.window.1 += 1;
        if self.window.1 > REQUESTS_PER_HOUR {
            return vec![self.error(id, "60014", "Requests too frequent.")];
        }
        let mut replies = Vec::with_capacity(args.len() * 2);
        for a in args.iter() {
            let channel = a.get("channel").and_then(|c| c.as_str()).unwrap_or("");
            let inst_id = a.get("instId").and_then(|c| c.as_str());
            let inst_type = a.get("instType").and_then(|c| c.as_str());
            match self.resolve(channel, inst_id, inst_type) {
                Ok(t) => {
                    self.ack(&mut replies, id, op, channel, inst_id, inst_type);
                    if op == "subscribe" {
                        self.subscribe(t, channel, inst_id, &mut replies);
                    } else if let Some(w) = self.wanted.get_mut(t as usize) {
                        if std::mem::replace(w, false) {
                            self.okx.topics.remove(t);
                        }
                        self.min_seq.remove(&t);
                    }
                }
                Err((code, msg)) => replies.push(self.error(id, code, &msg)),
            }
        }
        // playback starts once every arg of the request listens, so none misses a frame
        if let OkxSource::Capture(c) = &self.okx.source {
            if op == "subscribe" && self.wanted.iter().any(|w| *w) {
                c.request_start();
            }
        }
        replies
    }

    fn ack(
        &self,
        out: &mut Vec<String>,
        id: Option<&str>,
        op: &str,
        channel: &str,
        inst_id: Option<&str>,
        inst_type: Option<&str>,
    ) {
        let mut s = String::with_capacity(120);
        s.push('{');
        if let Some(id) = id {
            s.push_str("\"id\":");
            push_json_str(&mut s, id);
            s.push(',');
        }
        s.push_str("\"event\":\"");
        s.push_str(op);
        s.push_str("\",\"arg\":{\"channel\":");
        push_json_str(&mut s, channel);
        if let Some(i) = inst_id {
            s.push_str(",\"instId\":");
            push_json_str(&mut s, i);
        }
        if let Some(t) = inst_type {
            s.push_str(",\"instType\":");
            push_json_str(&mut s, t);
        }
        s.push_str("},\"connId\":\"");
        s.push_str(&self.conn_id);
        s.push_str("\"}");
        out.push(s);
    }

    /// The topic of a subscription arg, or the venue's error for it.
    fn resolve(
        &self,
        channel: &str,
        inst_id: Option<&str>,
        inst_type: Option<&str>,
    ) -> Result<u32, (&'static str, String)> {
        let business_only = channel == "trades-all" || channel.starts_with("candle");
        if self.business
            && !business_only
            && (KINDS.contains(&channel) || channel == "liquidation-orders")
        {
            return Err(("64002", format!("channel:{channel} is not supported by business URL. Please use the public URL.")));
        }
        if !self.business && business_only {
            return Err(("64001", format!("channel:{channel} has been migrated to the business URL. Please subscribe using the new URL.")));
        }
        let missing = || {
            let what = inst_id.map_or_else(
                || format!("instType:{}", inst_type.unwrap_or("")),
                |i| format!("instId:{i}"),
            );
            ("60018", format!("Wrong URL or channel:{channel},{what} doesn't exist. Please use the correct URL, channel and parameters referring to API document."))
        };
        if let OkxSource::Capture(c) = &self.okx.source {
            let key = format!("{channel}:{}", inst_id.or(inst_type).unwrap_or(""));
            return c.topic(&key).ok_or_else(missing);
        }
        if channel == "liquidation-orders" {
            let t = inst_type
                .filter(|t| LIQ_TYPES.contains(t))
                .ok_or_else(missing)?;
            return liq_topic(self.okx.specs.len(), t).ok_or_else(missing);
        }
        let i = inst_id
            .and_then(|id| self.okx.index(id))
            .ok_or_else(missing)?;
        if take(self.okx.faults.sub_errors.get(i)) {
            bump(&self.shared.stats.okx_faults_applied);
            return Err(missing());
        }
        topic(i, channel).ok_or_else(missing)
    }

    /// Registers the topic; for an incremental book, under the market lock together with the
    /// pushed snapshot, so the first update this client gets chains to it.
    fn subscribe(
        &mut self,
        t: u32,
        channel: &str,
        inst_id: Option<&str>,
        replies: &mut Vec<String>,
    ) {
        if self.wanted.get(t as usize).copied().unwrap_or(true) {
            return; // already subscribed: the venue acks again and sends nothing new
        }
        bump(&self.shared.stats.okx_subscriptions);
        let okx = self.okx.clone();
        let book = INCREMENTAL.contains(&channel);
        match (&okx.source, inst_id.and_then(|id| okx.index(id))) {
            (OkxSource::Synthetic(m), Some(i)) if book => {
                let state = m.state.lock();
                let Some((last, bids, asks)) = state.snapshot(i, 400) else {
                    return;
                };
                self.register(t);
                let seq = i64::try_from(last).unwrap_or(i64::MAX);
                self.min_seq.insert(t, seq);
                if okx.cfg.push_snapshot {
                    let Some(spec) = okx.specs.get(i) else { return };
                    let g = Grid {
                        tick_e8: spec.market.tick_e8,
                        step_e8: spec.market.step_e8,
                    };
                    let mut scratch = String::new();
                    let checksum = if okx.cfg.checksum {
                        let n25 = |v: &[(i64, i64)]| v.iter().take(25).copied().collect::<Vec<_>>();
                        frames::checksum(&n25(&bids), &n25(&asks), g, &mut scratch)
                    } else {
                        0
                    };
                    let s = BookSeq {
                        prev: -1,
                        seq,
                        checksum,
                    };
                    let mut text = String::with_capacity(64 + (bids.len() + asks.len()) * 32);
                    frames::book(
                        &mut text,
                        channel,
                        &spec.inst_id,
                        Some("snapshot"),
                        &bids,
                        &asks,
                        g,
                        s,
                        now_ms(),
                    );
                    replies.push(text);
                }
                drop(state);
            }
            _ => self.register(t),
        }
    }

    fn register(&mut self, t: u32) {
        if let Some(w) = self.wanted.get_mut(t as usize) {
            *w = true;
            self.okx.topics.add(t);
        }
    }
}
