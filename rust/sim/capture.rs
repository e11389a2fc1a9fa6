//! Replay of recorded Binance traffic in the cryptofeed raw format (shared/data/README.md).
//!
//! Owns parsing of `*.ws.N.0` files (`URL <-> TS` header, `TS: TEXT` received frames,
//! `URL <- TS: TEXT` sent frames, which are skipped) and REST files (`URL -> TS: BODY`, blank
//! and `configuration:` lines skipped), and the player task that broadcasts the recorded frames
//! with their recorded spacing divided by `speed`. One playback timeline serves every client:
//! it starts when the first client subscribes and restarts on the next subscription after it
//! has reached the end. REST depth answers follow the playback position. Frames are replayed
//! byte for byte; nothing is re-serialised.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sonic_rs::{JsonValueMutTrait, JsonValueTrait, Value};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use super::frames::Frame;
use super::rest::query_param;
use super::{bump, CaptureSource, Shared, SimError, BROADCAST_CAPACITY};

/// As-fast-as-possible playback pauses while the slowest client has this many frames queued.
const HIGH_WATER: usize = BROADCAST_CAPACITY / 2;
/// Frames between cooperative yields in as-fast-as-possible playback.
const YIELD_EVERY: usize = 256;

#[derive(Debug)]
struct CapFrame {
    ts_us: i64,
    frame: Frame,
}

/// A loaded capture plus the playback state shared with REST handlers.
#[derive(Debug)]
pub(crate) struct CaptureData {
    /// Distinct stream names in first-seen order; index = topic.
    pub stream_names: Vec<String>,
    frames: Vec<CapFrame>,
    open_ts_us: i64,
    /// Recorded depth snapshots per native symbol, sorted by time.
    snapshots: HashMap<String, Vec<(i64, String)>>,
    exchange_info: Option<String>,
    speed: f64,
    /// Recorded time (µs) of the last frame played; the REST snapshot choice follows it.
    position_us: AtomicI64,
    running: AtomicBool,
    start: Notify,
}

fn parse_ts(s: &str) -> Option<i64> {
    let v: f64 = s.trim().parse().ok()?;
    (v.is_finite() && v >= 0.0).then(|| (v * 1e6).round() as i64)
}

fn read(path: &Path) -> Result<String, SimError> {
    std::fs::read_to_string(path).map_err(|source| SimError::CaptureIo {
        path: path.to_path_buf(),
        source,
    })
}

/// Stream of a `/ws/<name>` URL: raw captures carry no `stream` field.
fn single_raw_stream(url: &str) -> Option<String> {
    let path = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path = path.split_once('/').map(|(_, p)| p)?;
    let path = path.split('?').next()?;
    let name = path.strip_prefix("ws/")?;
    (!name.is_empty() && !name.contains('/')).then(|| name.to_string())
}

impl CaptureData {
    /// Reads and indexes the capture files (blocking; call from a blocking thread).
    pub(crate) fn load(src: &CaptureSource) -> Result<CaptureData, SimError> {
        let text = read(&src.ws)?;
        let err = |line: usize, reason: &'static str| SimError::Capture {
            path: src.ws.clone(),
            line,
            reason,
        };
        let mut lines = text
            .lines()
            .enumerate()
            .map(|(i, l)| (i + 1, l))
            .filter(|(_, l)| !l.trim().is_empty());
        let Some((n, header)) = lines.next() else {
            return Err(err(1, "empty capture"));
        };
        let (url, ts) = header
            .split_once(" <-> ")
            .ok_or_else(|| err(n, "first line must be `URL <-> TS`"))?;
        let open_ts_us = parse_ts(ts).ok_or_else(|| err(n, "bad timestamp in `URL <-> TS`"))?;
        let raw_stream = single_raw_stream(url);
        let mut names: Vec<String> = Vec::new();
        let mut by_name: HashMap<String, u32> = HashMap::new();
        let mut frames = Vec::new();
        for (n, line) in lines {
            let received = line
                .split_once(": ")
                .and_then(|(head, body)| Some((parse_ts(head)?, body)));
            let Some((ts_us, body)) = received else {
                if line.contains(" <- ") || line.contains(" <-> ") {
                    continue; // frames we sent, or a reconnect marker
                }
                return Err(err(n, "expected `TS: TEXT` or `URL <- TS: TEXT`"));
            };
            let stream = sonic_rs::get(body, ["stream"]).ok();
            let stream = stream.as_ref().and_then(|s| s.as_str().map(str::to_string));
            let data = sonic_rs::get(body, ["data"]).ok();
            let (name, raw) = match (stream, data, &raw_stream) {
                (Some(name), Some(data), _) => (name, data.as_raw_str().to_string()),
                (None, _, Some(name)) if sonic_rs::get(body, ["result"]).is_err() => {
                    (name.clone(), body.to_string())
                }
                // Replies to control messages and frames we cannot attribute to a stream.
                _ => continue,
            };
            let next = u32::try_from(names.len()).map_err(|_| err(n, "too many streams"))?;
            let topic = *by_name.entry(name.clone()).or_insert_with(|| {
                names.push(name.clone());
                next
            });
            let frame = if raw_stream.is_some() {
                Frame::wrap(topic, &name, &raw)
            } else {
                Frame {
                    topic,
                    raw: Utf8Bytes::from(raw),
                    combined: Utf8Bytes::from(body),
                }
            };
            frames.push(CapFrame { ts_us, frame });
        }
        let mut data = CaptureData {
            stream_names: names,
            frames,
            open_ts_us,
            snapshots: HashMap::new(),
            exchange_info: None,
            speed: src.speed,
            position_us: AtomicI64::new(open_ts_us),
            running: AtomicBool::new(false),
            start: Notify::new(),
        };
        for path in &src.rest {
            data.load_rest(path)?;
        }
        for list in data.snapshots.values_mut() {
            list.sort_by_key(|(ts, _)| *ts);
        }
        Ok(data)
    }

    fn load_rest(&mut self, path: &Path) -> Result<(), SimError> {
        let text = read(path)?;
        let err = |line: usize, reason: &'static str| SimError::Capture {
            path: path.to_path_buf(),
            line,
            reason,
        };
        for (i, line) in text.lines().enumerate() {
            let n = i + 1;
            if line.trim().is_empty() || line.starts_with("configuration:") {
                continue;
            }
            let (url, rest) = line
                .split_once(" -> ")
                .ok_or_else(|| err(n, "expected `URL -> TS: BODY`"))?;
            let (ts, body) = rest
                .split_once(": ")
                .ok_or_else(|| err(n, "expected `URL -> TS: BODY`"))?;
            let ts_us = parse_ts(ts).ok_or_else(|| err(n, "bad timestamp"))?;
            let query = url.split_once('?').map_or("", |(_, q)| q);
            // /api/v3/depth, /fapi/v1/depth, /dapi/v1/depth
            if url.contains("/depth?") {
                let symbol = query_param(query, "symbol")
                    .ok_or_else(|| err(n, "depth URL without symbol"))?;
                sonic_rs::get(body, ["lastUpdateId"])
                    .ok()
                    .and_then(|v| v.as_u64())
                    .ok_or_else(|| err(n, "depth snapshot without lastUpdateId"))?;
                self.snapshots
                    .entry(symbol)
                    .or_default()
                    .push((ts_us, body.to_string()));
            } else if url.contains("/exchangeInfo") {
                self.exchange_info = Some(body.to_string());
            }
        }
        Ok(())
    }

    /// Symbols with at least one recorded snapshot.
    pub(crate) fn snapshot_symbols(&self) -> Vec<String> {
        self.snapshots.keys().cloned().collect()
    }

    /// The recorded snapshot at or after the playback position, else the last one.
    pub(crate) fn snapshot(&self, symbol: &str) -> Option<&str> {
        let list = self.snapshots.get(symbol)?;
        let pos = self.position_us.load(Ordering::Relaxed);
        list.iter()
            .find(|(ts, _)| *ts >= pos)
            .or_else(|| list.last())
            .map(|(_, body)| body.as_str())
    }

    /// The recorded exchangeInfo, optionally reduced to `symbols`.
    /// `Err(())` when a requested symbol is not in the recording.
    pub(crate) fn exchange_info(&self, symbols: Option<&[String]>) -> Option<Result<String, ()>> {
        let body = self.exchange_info.as_ref()?;
        let Some(wanted) = symbols else {
            return Some(Ok(body.clone()));
        };
        let Ok(mut value) = sonic_rs::from_str::<Value>(body) else {
            return Some(Err(()));
        };
        let Some(list) = value.get_mut("symbols").and_then(|v| v.as_array_mut()) else {
            return Some(Err(()));
        };
        list.retain(|e| {
            e.get("symbol")
                .and_then(|s| s.as_str())
                .is_some_and(|s| wanted.iter().any(|w| w == s))
        });
        if list.len() < wanted.len() {
            return Some(Err(()));
        }
        Some(sonic_rs::to_string(&value).map_err(|_| ()))
    }

    /// Starts playback unless it is already running.
    pub(crate) fn request_start(&self) {
        if self
            .running
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            self.start.notify_one();
        }
    }
}

/// Plays the capture each time a client asks for it, until the sim stops.
pub(crate) async fn run_player(shared: Arc<Shared>, data: Arc<CaptureData>) {
    loop {
        tokio::select! {
            () = shared.cancel.cancelled() => return,
            () = data.start.notified() => {}
        }
        bump(&shared.stats.capture_playbacks);
        data.position_us.store(data.open_ts_us, Ordering::Relaxed);
        if !play(&shared, &data).await {
            return;
        }
        data.running.store(false, Ordering::Release);
    }
}

/// One pass over the frames; false when the sim was cancelled meanwhile.
async fn play(shared: &Shared, data: &CaptureData) -> bool {
    let t0 = Instant::now();
    let first_ts = data.frames.first().map_or(0, |f| f.ts_us);
    for (i, f) in data.frames.iter().enumerate() {
        if data.speed > 0.0 {
            let offset_us = (f.ts_us - first_ts).max(0) as f64 / data.speed;
            let at = t0 + Duration::from_micros(offset_us as u64);
            tokio::select! {
                () = shared.cancel.cancelled() => return false,
                () = tokio::time::sleep_until(at) => {}
            }
        } else {
            // As fast as the slowest client drains its queue.
            while shared.tx.receiver_count() > 0 && shared.tx.len() >= HIGH_WATER {
                tokio::select! {
                    () = shared.cancel.cancelled() => return false,
                    () = tokio::time::sleep(Duration::from_millis(1)) => {}
                }
            }
            if i % YIELD_EVERY == YIELD_EVERY - 1 {
                tokio::task::yield_now().await;
            }
        }
        data.position_us.store(f.ts_us, Ordering::Relaxed);
        bump(&shared.stats.messages_generated);
        if shared.topics.listened(f.frame.topic) {
            let _ = shared.tx.send(f.frame.clone());
        }
    }
    !shared.cancel.is_cancelled()
}
