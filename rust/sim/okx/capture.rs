//! Serving a recorded OKX capture (cryptofeed raw format, shared/data/README.md): received
//! data frames become topics named `<channel>:<instId>` (or `:<instType>`), replayed byte for
//! byte with their recorded spacing divided by `speed`, starting when the first client
//! subscribes (one timeline for every client, restarted by a subscription after the end).
//! Recorded instrument answers (`*.0`) are served by instrument type and family; recorded
//! `GET /api/v5/market/books` answers, if any, by instrument.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sonic_rs::{JsonValueMutTrait, JsonValueTrait, Value};
use tokio::sync::Notify;
use tokio::time::Instant;

use super::super::rest::query_param;
use super::super::{bump, CaptureSource, Shared, SimError};
use super::{OkxFrame, OkxSim};

#[derive(Debug)]
struct CapFrame {
    ts_us: i64,
    frame: Arc<OkxFrame>,
}

/// A loaded OKX capture and the playback trigger.
#[derive(Debug)]
pub(crate) struct OkxCapture {
    /// Distinct `<channel>:<id>` names in first-seen order; index = topic.
    pub topic_names: Vec<String>,
    frames: Vec<CapFrame>,
    /// (instType, family or "") -> latest recorded instruments body.
    instruments: HashMap<(String, String), String>,
    /// instId -> recorded REST book bodies.
    books: HashMap<String, String>,
    speed: f64,
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

/// True when the capture's header names an OKX host.
pub(crate) fn is_okx(path: &Path) -> bool {
    read(path).ok().is_some_and(|t| {
        t.lines().next().is_some_and(|h| {
            let url = h.split(" <-> ").next().unwrap_or("");
            url.contains("okx.com") || url.contains("okex.com")
        })
    })
}

impl OkxCapture {
    /// Reads and indexes the capture files (blocking; call from a blocking thread).
    pub(crate) fn load(src: &CaptureSource) -> Result<OkxCapture, SimError> {
        let text = read(&src.ws)?;
        let err = |line: usize, reason: &'static str| SimError::Capture {
            path: src.ws.clone(),
            line,
            reason,
        };
        let mut names: Vec<String> = Vec::new();
        let mut by_name: HashMap<String, u32> = HashMap::new();
        let mut frames = Vec::new();
        for (i, line) in text.lines().enumerate().skip(1) {
            if line.trim().is_empty() || line.contains(" <- ") || line.contains(" <-> ") {
                continue; // frames we sent, reconnect markers
            }
            let (ts, body) = line
                .split_once(": ")
                .ok_or_else(|| err(i + 1, "expected `TS: TEXT`"))?;
            let ts_us = parse_ts(ts).ok_or_else(|| err(i + 1, "bad timestamp"))?;
            let Ok(v) = sonic_rs::from_str::<Value>(body) else {
                continue;
            };
            if v.get("event").is_some() {
                continue; // acks are answered live, not replayed
            }
            let Some(arg) = v.get("arg") else { continue };
            let channel = arg.get("channel").and_then(|c| c.as_str()).unwrap_or("");
            let id = arg
                .get("instId")
                .or_else(|| arg.get("instType"))
                .and_then(|c| c.as_str())
                .unwrap_or("");
            let name = format!("{channel}:{id}");
            let next = u32::try_from(names.len()).map_err(|_| err(i + 1, "too many topics"))?;
            let topic = *by_name.entry(name.clone()).or_insert_with(|| {
                names.push(name);
                next
            });
            let frame = Arc::new(OkxFrame {
                topic,
                seq: None,
                text: body.into(),
            });
            frames.push(CapFrame { ts_us, frame });
        }
        let mut data = OkxCapture {
            topic_names: names,
            frames,
            instruments: HashMap::new(),
            books: HashMap::new(),
            speed: src.speed,
            running: AtomicBool::new(false),
            start: Notify::new(),
        };
        for path in &src.rest {
            data.load_rest(path)?;
        }
        Ok(data)
    }

    fn load_rest(&mut self, path: &Path) -> Result<(), SimError> {
        let text = read(path)?;
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() || line.starts_with("configuration:") {
                continue;
            }
            let bad = || SimError::Capture {
                path: path.to_path_buf(),
                line: i + 1,
                reason: "expected `URL -> TS: BODY`",
            };
            let (url, rest) = line.split_once(" -> ").ok_or_else(bad)?;
            let (_, body) = rest.split_once(": ").ok_or_else(bad)?;
            let query = url.split_once('?').map_or("", |(_, q)| q);
            if url.contains("/api/v5/public/instruments") {
                let t = query_param(query, "instType").unwrap_or_default();
                let fam = query_param(query, "instFamily")
                    .or_else(|| query_param(query, "uly"))
                    .unwrap_or_default();
                self.instruments.insert((t, fam), body.to_string());
            } else if url.contains("/api/v5/market/books") {
                if let Some(id) = query_param(query, "instId") {
                    self.books.insert(id, body.to_string());
                }
            }
        }
        Ok(())
    }

    /// Whether a `<channel>:<id>` topic exists in the recording.
    pub(crate) fn topic(&self, name: &str) -> Option<u32> {
        self.topic_names
            .iter()
            .position(|n| n == name)
            .and_then(|i| u32::try_from(i).ok())
    }

    /// The recorded instruments of a type (and family), optionally reduced to one instId.
    pub(crate) fn instruments(
        &self,
        inst_type: &str,
        family: &str,
        inst_id: Option<&str>,
    ) -> Option<String> {
        let body = self
            .instruments
            .get(&(inst_type.to_string(), family.to_string()))
            .or_else(|| {
                // options are recorded per family; any family answers an instId lookup
                self.instruments
                    .iter()
                    .find(|((t, _), b)| t == inst_type && inst_id.is_some_and(|id| b.contains(id)))
                    .map(|(_, b)| b)
            })?;
        let Some(id) = inst_id else {
            return Some(body.clone());
        };
        let mut v: Value = sonic_rs::from_str(body).ok()?;
        let list = v.get_mut("data")?.as_array_mut()?;
        list.retain(|e| e.get("instId").and_then(|s| s.as_str()) == Some(id));
        sonic_rs::to_string(&v).ok()
    }

    /// The recorded REST book of an instrument.
    pub(crate) fn book(&self, inst_id: &str) -> Option<&str> {
        self.books.get(inst_id).map(String::as_str)
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
pub(crate) async fn run_player(shared: Arc<Shared>, okx: Arc<OkxSim>, data: Arc<OkxCapture>) {
    loop {
        tokio::select! {
            () = shared.cancel.cancelled() => return,
            () = data.start.notified() => {}
        }
        bump(&shared.stats.capture_playbacks);
        let t0 = Instant::now();
        let first = data.frames.first().map_or(0, |f| f.ts_us);
        for f in &data.frames {
            if data.speed > 0.0 {
                let offset = (f.ts_us - first).max(0) as f64 / data.speed;
                let at = t0 + Duration::from_micros(offset as u64);
                tokio::select! {
                    () = shared.cancel.cancelled() => return,
                    () = tokio::time::sleep_until(at) => {}
                }
            } else {
                tokio::task::yield_now().await;
            }
            bump(&shared.stats.messages_generated);
            if okx.topics.listened(f.frame.topic) {
                let _ = okx.tx.send(f.frame.clone());
            }
        }
        data.running.store(false, Ordering::Release);
    }
}
