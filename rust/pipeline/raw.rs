//! Raw capture: every received websocket frame and every REST answer of a feed, with the
//! timestamps the live run used, in xtrader's own compressed format; and its replay through
//! the same processors, which reproduces the run's normalized events exactly.
//!
//! # Format (`xtraw/1`)
//!
//! A capture is a set of files `<venue>-<feed>-<first_ts_ns>-<n>.xtraw.lz4` in one folder
//! (`n` counts the files of a writer from 0, so sorting by it gives the order). The file being
//! written ends in `.open`; it is renamed when rotated (by size and age) or closed. Each file
//! is an LZ4 frame stream of records, all integers little-endian:
//!
//! | field | type | meaning |
//! |---|---|---|
//! | kind | u8 | 0 header, 1 websocket frame, 2 instruments answer, 3 snapshot answer, 4 disconnect |
//! | socket | u16 | the feed's socket index (its `SocketPlan` order) |
//! | index | u32 | snapshot answers: the symbol index in the socket's processor |
//! | ts | i64 | ns since the epoch: `ts_recv` of a frame, the time an answer was handled |
//! | status | u16 | HTTP status of an answer (0 = no answer) |
//! | key | u32 length + UTF-8 | header: `xtraw/1`; answers: the URL |
//! | body | u32 length + UTF-8 | header: the feed spec (`key=value` lines); frames and answers: the payload |
//!
//! Every file starts with a header record, so each is self-describing. Socket tasks only
//! encode and queue records; a dedicated thread compresses and writes them, flushing a
//! compressed block at least every 250 ms (on the socket tasks' tick): a killed process loses
//! at most that much, and the reader stops cleanly at a truncated tail (counted). Files are
//! not fsync'ed (a power cut may lose what the OS had not written back).

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lz4_flex::frame::{FrameDecoder, FrameEncoder};
use parking_lot::{Mutex, RwLock};

use crate::exchanges::binance::TradeStream;
use crate::exchanges::{connector_for, Channels, ExchangeProcessor};
use crate::model::{
    Event, Instrument, InstrumentCache, OrderBook, SharedInstruments, SymbolMeta, Venue,
};
use crate::net::now_ns;
use crate::pipeline::feed::FeedSpec;
use crate::pipeline::feed::INSTRUMENT_CACHE_CAPACITY;
use crate::pipeline::replay::{ReplayError, ReplayOutput};

/// Format tag in every header record.
pub const MAGIC: &str = "xtraw/1";
/// File name suffix of finished files.
pub const SUFFIX: &str = ".xtraw.lz4";
/// Suffix added while a file is being written.
pub const OPEN_SUFFIX: &str = ".open";

/// Record kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// File header (spec).
    Header = 0,
    /// A received websocket frame.
    Frame = 1,
    /// An instruments (exchangeInfo) answer.
    Instruments = 2,
    /// A depth snapshot answer.
    Snapshot = 3,
    /// The socket closed (the processor's `on_disconnect`).
    Disconnect = 4,
}

impl Kind {
    fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            0 => Self::Header,
            1 => Self::Frame,
            2 => Self::Instruments,
            3 => Self::Snapshot,
            4 => Self::Disconnect,
            _ => return None,
        })
    }
}

/// One record read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Kind.
    pub kind: Kind,
    /// Socket index.
    pub socket: u16,
    /// Symbol index (snapshot answers).
    pub index: u32,
    /// Timestamp (ns).
    pub ts: i64,
    /// HTTP status.
    pub status: u16,
    /// URL or magic.
    pub key: String,
    /// Payload.
    pub body: String,
}

/// Rotation settings of a raw writer.
#[derive(Debug, Clone)]
pub struct RawConfig {
    /// Folder of the files.
    pub dir: PathBuf,
    /// Rotate after this many uncompressed bytes.
    pub rotate_bytes: u64,
    /// Rotate when a file is this old.
    pub rotate_interval: Duration,
}

/// The feed spec as stored in headers (what replay needs to rebuild the processors).
#[must_use]
pub fn spec_text(spec: &FeedSpec) -> String {
    let channels: Vec<&str> = Channels::NAMES
        .iter()
        .copied()
        .filter(|n| channel_on(spec.channels, n))
        .collect();
    let trade = match spec.trade_stream {
        TradeStream::Trade => "trade",
        TradeStream::AggTrade => "aggTrade",
    };
    format!(
        "venue={}\nsymbols={}\nchannels={}\ntrade_stream={trade}\ndepth_limit={}\nvenue_channels={}\n",
        spec.venue.id(),
        spec.symbols.join(","),
        channels.join(","),
        spec.depth_limit,
        spec.venue_channels.join(","),
    )
}

fn channel_on(c: Channels, name: &str) -> bool {
    match name {
        "trades" => c.trades,
        "book" => c.book,
        "bbo" => c.bbo,
        "ticker" => c.ticker,
        "funding" => c.funding,
        "liquidations" => c.liquidations,
        "open_interest" => c.open_interest,
        _ => false,
    }
}

fn spec_from_text(text: &str) -> Option<FeedSpec> {
    let mut venue = None;
    let mut symbols = Vec::new();
    let mut channels = Channels::NONE;
    let mut trade_stream = TradeStream::Trade;
    let mut depth_limit = 1000;
    let mut venue_channels = Vec::new();
    for line in text.lines() {
        let (k, v) = line.split_once('=')?;
        match k {
            "venue" => venue = Venue::from_id(v),
            "symbols" => {
                symbols = v
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect()
            }
            "channels" => {
                channels = Channels::parse(v.split(',').filter(|s| !s.is_empty())).ok()?
            }
            "trade_stream" => {
                trade_stream = if v == "aggTrade" {
                    TradeStream::AggTrade
                } else {
                    TradeStream::Trade
                };
            }
            "depth_limit" => depth_limit = v.parse().ok()?,
            "venue_channels" => {
                venue_channels = v
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect();
            }
            _ => {}
        }
    }
    Some(FeedSpec {
        venue: venue?,
        symbols,
        channels,
        ws_url: None,
        rest_url: None,
        depth_limit,
        trade_stream,
        venue_channels,
        stale_after: Duration::from_secs(30),
        // replay opens no connection and polls nothing: the live-only settings keep defaults
        open_interest_interval: Duration::from_secs(10),
        connection_lifetime: None,
        max_data_silence: None,
    })
}

struct OpenFile {
    enc: FrameEncoder<BufWriter<File>>,
    path: PathBuf,
    bytes: u64,
    opened: Instant,
}

#[derive(Default)]
struct Counters {
    records: u64,
    bytes: u64,
    files: u64,
    errors: u64,
}

enum Msg {
    Record { buf: Vec<u8>, ts: i64 },
    Flush,
    Close,
}

/// Records queued between the socket tasks and the writer thread (back-pressure beyond).
const QUEUE: usize = 65_536;

/// Appends a feed's records to rotated LZ4 files. The socket tasks only encode a record and
/// queue it; compression and file I/O run on a dedicated thread, off the tokio workers.
pub struct RawWriter {
    prefix: String,
    tx: std::sync::mpsc::SyncSender<Msg>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    counters: Arc<Mutex<Counters>>,
}

impl std::fmt::Debug for RawWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawWriter")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

#[allow(clippy::too_many_arguments)]
fn put(
    buf: &mut Vec<u8>,
    kind: Kind,
    socket: u16,
    index: u32,
    ts: i64,
    status: u16,
    key: &str,
    body: &str,
) {
    buf.push(kind as u8);
    buf.extend_from_slice(&socket.to_le_bytes());
    buf.extend_from_slice(&index.to_le_bytes());
    buf.extend_from_slice(&ts.to_le_bytes());
    buf.extend_from_slice(&status.to_le_bytes());
    for s in [key, body] {
        let len = u32::try_from(s.len()).unwrap_or(u32::MAX);
        buf.extend_from_slice(&len.to_le_bytes());
        buf.extend_from_slice(s.as_bytes().get(..len as usize).unwrap_or_default());
    }
}

/// The writer thread's side: the open file and rotation.
struct Files {
    cfg: RawConfig,
    prefix: String,
    header: String,
    file: Option<OpenFile>,
    n: u64,
    counters: Arc<Mutex<Counters>>,
}

impl Files {
    fn run(mut self, rx: &std::sync::mpsc::Receiver<Msg>) {
        while let Ok(msg) = rx.recv() {
            match msg {
                Msg::Record { buf, ts } => self.write(&buf, ts),
                Msg::Flush => {
                    if let Some(f) = self.file.as_mut() {
                        if f.enc.flush().is_err() {
                            self.counters.lock().errors += 1;
                        }
                    }
                }
                Msg::Close => break,
            }
        }
        self.finish();
    }

    fn write(&mut self, buf: &[u8], ts: i64) {
        if self.file.is_none() {
            match self.open(ts) {
                Ok(f) => {
                    self.file = Some(f);
                    self.n += 1;
                }
                Err(_) => {
                    self.counters.lock().errors += 1;
                    return;
                }
            }
        }
        let Some(f) = self.file.as_mut() else { return };
        if f.enc.write_all(buf).is_err() {
            self.counters.lock().errors += 1;
            return;
        }
        f.bytes += buf.len() as u64;
        {
            let mut c = self.counters.lock();
            c.records += 1;
            c.bytes += buf.len() as u64;
        }
        if f.bytes >= self.cfg.rotate_bytes || f.opened.elapsed() >= self.cfg.rotate_interval {
            self.finish();
        }
    }

    fn open(&self, ts: i64) -> std::io::Result<OpenFile> {
        std::fs::create_dir_all(&self.cfg.dir)?;
        let name = format!("{}-{ts}-{:05}{SUFFIX}{OPEN_SUFFIX}", self.prefix, self.n);
        let path = self.cfg.dir.join(name);
        let mut enc = FrameEncoder::new(BufWriter::new(File::create(&path)?));
        let mut buf = Vec::new();
        put(&mut buf, Kind::Header, 0, 0, ts, 0, MAGIC, &self.header);
        enc.write_all(&buf)?;
        Ok(OpenFile {
            enc,
            path,
            bytes: buf.len() as u64,
            opened: Instant::now(),
        })
    }

    fn finish(&mut self) {
        if let Some(done) = self.file.take() {
            let mut c = self.counters.lock();
            match finish(done) {
                Ok(()) => c.files += 1,
                Err(_) => c.errors += 1,
            }
        }
    }
}

impl RawWriter {
    /// A writer for feed number `feed` of `spec` (files appear on the first record).
    ///
    /// # Panics
    /// Never on purpose; a failed thread spawn degrades to counted errors.
    #[must_use]
    pub fn new(cfg: RawConfig, spec: &FeedSpec, feed: usize) -> Self {
        let prefix = format!("{}-{feed}", spec.venue.id());
        let counters = Arc::new(Mutex::new(Counters::default()));
        let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE);
        let files = Files {
            cfg,
            prefix: prefix.clone(),
            header: spec_text(spec),
            file: None,
            n: 0,
            counters: counters.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("xtrader-raw".into())
            .spawn(move || files.run(&rx))
            .ok();
        Self {
            prefix,
            tx,
            thread: Mutex::new(thread),
            counters,
        }
    }

    /// A received websocket frame.
    pub fn frame(&self, socket: usize, ts: i64, text: &str) {
        self.record(Kind::Frame, socket, 0, ts, 0, "", text);
    }

    /// A REST answer (instruments or a snapshot of symbol `index`).
    #[allow(clippy::too_many_arguments)]
    pub fn answer(
        &self,
        kind: Kind,
        socket: usize,
        index: usize,
        ts: i64,
        status: u16,
        url: &str,
        body: &str,
    ) {
        self.record(kind, socket, index, ts, status, url, body);
    }

    /// The socket closed at `ts`.
    pub fn disconnect(&self, socket: usize, ts: i64) {
        self.record(Kind::Disconnect, socket, 0, ts, 0, "", "");
    }

    #[allow(clippy::too_many_arguments)]
    fn record(
        &self,
        kind: Kind,
        socket: usize,
        index: usize,
        ts: i64,
        status: u16,
        key: &str,
        body: &str,
    ) {
        let mut buf = Vec::with_capacity(25 + key.len() + body.len());
        put(
            &mut buf,
            kind,
            u16::try_from(socket).unwrap_or(u16::MAX),
            u32::try_from(index).unwrap_or(u32::MAX),
            ts,
            status,
            key,
            body,
        );
        if self.tx.send(Msg::Record { buf, ts }).is_err() {
            self.counters.lock().errors += 1; // after close, or the thread is gone
        }
    }

    /// Write out the current compressed block (bounds what a killed process loses).
    pub fn flush(&self) {
        let _ = self.tx.try_send(Msg::Flush);
    }

    /// Write every queued record and finish the open file (renamed to its final name).
    pub fn close(&self) {
        let _ = self.tx.send(Msg::Close);
        if let Some(t) = self.thread.lock().take() {
            let _ = t.join();
        }
    }

    /// Counters: records, uncompressed bytes, finished files, I/O errors.
    #[must_use]
    pub fn stats(&self) -> [(&'static str, u64); 4] {
        let c = self.counters.lock();
        [
            ("raw_records", c.records),
            ("raw_bytes", c.bytes),
            ("raw_files", c.files),
            ("raw_errors", c.errors),
        ]
    }
}

impl Drop for RawWriter {
    fn drop(&mut self) {
        self.close();
    }
}

fn finish(f: OpenFile) -> std::io::Result<()> {
    let w = f.enc.finish().map_err(std::io::Error::other)?;
    w.into_inner().map_err(|e| e.into_error())?;
    let done = f.path.with_extension("");
    std::fs::rename(&f.path, done)
}

/// The raw writers of an engine's feeds, installed at start.
pub type RawSlot = RwLock<Option<Arc<RawWriter>>>;

/// Records of one file, in order; `truncated` when its tail was cut (a killed writer).
///
/// # Errors
/// When the file cannot be opened.
pub fn read_file(path: &Path) -> Result<(Vec<Record>, bool), ReplayError> {
    let file = File::open(path).map_err(|source| ReplayError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut r = FrameDecoder::new(BufReader::new(file));
    let mut out = Vec::new();
    loop {
        let mut head = [0u8; 1];
        match r.read(&mut head) {
            Ok(0) => return Ok((out, false)),
            Ok(_) => {}
            Err(_) => return Ok((out, true)),
        }
        match read_rest(&mut r, head[0]) {
            Some(rec) => out.push(rec),
            None => return Ok((out, true)),
        }
    }
}

fn read_rest(r: &mut impl Read, kind: u8) -> Option<Record> {
    let mut fixed = [0u8; 16];
    r.read_exact(&mut fixed).ok()?;
    let socket = u16::from_le_bytes(fixed.get(0..2)?.try_into().ok()?);
    let index = u32::from_le_bytes(fixed.get(2..6)?.try_into().ok()?);
    let ts = i64::from_le_bytes(fixed.get(6..14)?.try_into().ok()?);
    let status = u16::from_le_bytes(fixed.get(14..16)?.try_into().ok()?);
    let mut strings = [String::new(), String::new()];
    for s in &mut strings {
        let mut len = [0u8; 4];
        r.read_exact(&mut len).ok()?;
        let mut bytes = vec![0u8; u32::from_le_bytes(len) as usize];
        r.read_exact(&mut bytes).ok()?;
        *s = String::from_utf8(bytes).ok()?;
    }
    let [key, body] = strings;
    Some(Record {
        kind: Kind::from_u8(kind)?,
        socket,
        index,
        ts,
        status,
        key,
        body,
    })
}

/// Whether `path` names a raw capture file.
#[must_use]
pub fn is_raw(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    name.ends_with(SUFFIX) || name.ends_with(&format!("{SUFFIX}{OPEN_SUFFIX}"))
}

/// The files of the capture `path` belongs to (same folder and writer prefix), in order.
#[must_use]
pub fn capture_files(path: &Path) -> Vec<PathBuf> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    // <venue>-<feed>-<ts>-<n>.xtraw.lz4: the prefix is everything before the second-last '-'
    let stem = name.split('.').next().unwrap_or("");
    let parts: Vec<&str> = stem.rsplitn(3, '-').collect();
    let Some(prefix) = parts.get(2) else {
        return vec![path.to_path_buf()];
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut files: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| is_raw(p))
        .filter_map(|p| {
            let n = p.file_name()?.to_str()?;
            let s = n.split('.').next()?;
            let mut it = s.rsplitn(3, '-');
            let seq: u64 = it.next()?.parse().ok()?;
            let _ts = it.next()?;
            (it.next()? == *prefix).then_some((seq, p))
        })
        .collect();
    files.sort();
    files.into_iter().map(|(_, p)| p).collect()
}

/// Replay a raw capture (every file of the writer `capture` belongs to) through the venue's
/// processors: frames in recorded order, REST answers at their recorded points.
///
/// # Errors
/// Unreadable files, a missing header, an unsupported venue.
pub fn replay_raw(capture: &Path) -> Result<ReplayOutput, ReplayError> {
    let files = capture_files(capture);
    let mut records = Vec::new();
    let mut truncated = 0u64;
    for f in &files {
        let (mut recs, cut) = read_file(f)?;
        truncated += u64::from(cut);
        records.append(&mut recs);
    }
    let header = records
        .iter()
        .find(|r| r.kind == Kind::Header && r.key == MAGIC)
        .ok_or_else(|| ReplayError::Header {
            path: capture.to_path_buf(),
        })?;
    let spec = spec_from_text(&header.body).ok_or_else(|| ReplayError::Header {
        path: capture.to_path_buf(),
    })?;
    let venue_err = || ReplayError::Venue {
        path: capture.to_path_buf(),
        url: spec.venue.id().to_string(),
    };
    let conn = connector_for(&spec).ok_or_else(venue_err)?;
    // the instruments as the live run saw them
    let mut answers = records
        .iter()
        .filter(|r| r.kind == Kind::Instruments && r.status == 200)
        .filter_map(|r| conn.parse_instruments(&r.body).ok());
    // venues listing each instrument type apart (OKX) merge every answer, lookups of
    // instruments met in the stream included
    let list: Vec<Instrument> = if conn.instruments_merge() {
        answers.flatten().collect()
    } else {
        answers.next().unwrap_or_default()
    };
    let mut cache = InstrumentCache::new(INSTRUMENT_CACHE_CAPACITY);
    for inst in &list {
        cache.insert(inst.clone());
    }
    let cache: SharedInstruments = Arc::new(Mutex::new(cache));
    let mut metas: Vec<Arc<SymbolMeta>> = Vec::new();
    let mut natives: Vec<String> = Vec::new();
    for s in &spec.symbols {
        let n = conn.to_native(s);
        if natives.contains(&n) {
            continue;
        }
        if let Some(inst) = list.iter().find(|i| i.native == n) {
            let book = spec
                .channels
                .book
                .then(|| Arc::new(RwLock::new(OrderBook::new())));
            metas.push(SymbolMeta::with_instrument(
                spec.venue,
                Arc::new(inst.clone()),
                book,
            ));
        }
        natives.push(n);
    }
    let plans = conn.plan(&metas, spec.channels);
    let mut procs: Vec<Box<dyn ExchangeProcessor>> =
        plans.iter().map(|p| conn.processor(p)).collect();
    for p in &mut procs {
        p.attach_instruments(cache.clone());
    }
    let mut attempts: std::collections::HashMap<(u16, u32), u32> = std::collections::HashMap::new();
    let mut events: Vec<Event> = Vec::new();
    let mut actions = Vec::new();
    for r in &records {
        let Some(proc) = procs.get_mut(usize::from(r.socket)) else {
            continue;
        };
        match r.kind {
            Kind::Frame => proc.on_frame(&r.body, r.ts, &mut events, &mut actions),
            Kind::Snapshot => {
                let idx = r.index as usize;
                if r.status == 200 {
                    attempts.remove(&(r.socket, r.index));
                    proc.on_snapshot(idx, &r.body, r.ts, &mut events, &mut actions);
                } else {
                    let n = attempts.entry((r.socket, r.index)).or_insert(0);
                    *n += 1;
                    proc.on_snapshot_failed(idx, r.status, *n, r.ts, &mut events);
                }
            }
            Kind::Disconnect => proc.on_disconnect(r.ts, &mut events),
            Kind::Header | Kind::Instruments => {}
        }
        actions.clear(); // the answers are in the capture
    }
    let mut counters: Vec<(&'static str, u64)> = Vec::new();
    for p in &procs {
        for (k, v) in p.counters() {
            match counters.iter_mut().find(|(name, _)| *name == k) {
                Some(slot) => slot.1 += v,
                None => counters.push((k, v)),
            }
        }
    }
    counters.push(("raw_records", records.len() as u64));
    counters.push(("raw_files", files.len() as u64));
    counters.push(("raw_truncated_files", truncated));
    Ok(ReplayOutput {
        venue: spec.venue,
        events,
        symbols: metas,
        counters,
    })
}

/// A time for records without one (instrument answers are stamped when handled).
#[must_use]
pub fn stamp() -> i64 {
    now_ns()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> FeedSpec {
        FeedSpec {
            venue: Venue::Binance,
            symbols: vec!["BTCUSDT".into()],
            channels: Channels::parse(["trades", "book"]).unwrap_or(Channels::NONE),
            ws_url: None,
            rest_url: None,
            depth_limit: 100,
            trade_stream: TradeStream::Trade,
            venue_channels: Vec::new(),
            stale_after: Duration::from_secs(30),
            open_interest_interval: Duration::from_secs(10),
            connection_lifetime: None,
            max_data_silence: None,
        }
    }

    #[test]
    fn write_rotate_read_back() {
        let dir = std::env::temp_dir().join(format!("xtraw-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let cfg = RawConfig {
            dir: dir.clone(),
            rotate_bytes: 200,
            rotate_interval: Duration::from_secs(3600),
        };
        let w = RawWriter::new(cfg, &spec(), 0);
        for i in 0..20 {
            w.frame(0, 1000 + i, &format!("{{\"n\":{i}}}"));
        }
        w.answer(Kind::Snapshot, 0, 0, 5000, 200, "http://x/depth", "{}");
        w.disconnect(0, 6000);
        w.close();
        let first = capture_files(&dir.join("binance-0-1000-00000.xtraw.lz4"));
        assert!(first.len() > 1, "rotated: {first:?}");
        let mut all = Vec::new();
        for f in &first {
            let (recs, cut) = read_file(f).unwrap_or_default();
            assert!(!cut);
            assert_eq!(recs.first().map(|r| r.kind), Some(Kind::Header));
            all.extend(recs.into_iter().filter(|r| r.kind != Kind::Header));
        }
        assert_eq!(all.len(), 22);
        assert_eq!(all.get(3).map(|r| r.body.as_str()), Some("{\"n\":3}"));
        assert_eq!(
            all.last().map(|r| (r.kind, r.ts)),
            Some((Kind::Disconnect, 6000))
        );
        // a killed writer: the tail of a file is cut; the reader keeps the whole records
        if let Some(last) = first.last() {
            let bytes = std::fs::read(last).unwrap_or_default();
            let cut = dir.join("binance-0-9999-00009.xtraw.lz4.open");
            let _ = std::fs::write(&cut, bytes.get(..bytes.len() * 2 / 3).unwrap_or_default());
            let (recs, truncated) = read_file(&cut).unwrap_or_default();
            assert!(truncated);
            assert!(recs
                .iter()
                .all(|r| r.kind != Kind::Header || r.key == MAGIC));
            assert!(is_raw(&cut));
        }
        let back = spec_from_text(&spec_text(&spec()));
        assert_eq!(back.map(|s| s.symbols), Some(vec!["BTCUSDT".to_string()]));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
