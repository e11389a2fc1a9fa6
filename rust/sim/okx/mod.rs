//! The OKX v5 profile of the simulator, served on the same port as the Binance one:
//! `/ws/v5/public` and `/ws/v5/business` websockets, `GET /api/v5/public/instruments` and
//! `GET /api/v5/market/books` (exchanges.md §4 and §8).
//!
//! Owns the OKX state shared by its tasks: instrument specs, the synthetic market (the same
//! generator as the Binance profile, on OKX grids) or a recorded OKX capture, the topic table
//! (`<channel>:<instId>`, `liquidation-orders:<instType>`), the broadcast channel, and the
//! injected faults. Books carry real sequence ids and real CRC32 checksums (or 0, the
//! post-2026 production behaviour), so the client's integrity checks run for real.

pub(crate) mod capture;
pub(crate) mod feed;
pub(crate) mod frames;
pub(crate) mod rest;
pub(crate) mod specs;
pub(crate) mod ws;

#[cfg(test)]
mod tests;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::broadcast;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use self::capture::OkxCapture;
use self::specs::{InstType, OkxSpec};
use super::market::{Market, MarketState};
use super::{SimError, Topics, BROADCAST_CAPACITY};

/// Channels of every instrument, in topic order (`topic = instrument * KINDS.len() + kind`).
pub(crate) const KINDS: [&str; 11] = [
    "books",
    "books-l2-tbt",
    "books50-l2-tbt",
    "books5",
    "bbo-tbt",
    "trades",
    "trades-all",
    "tickers",
    "funding-rate",
    "mark-price",
    "open-interest",
];
/// Incremental book channels (snapshot then updates, `prevSeqId` chain, checksum).
pub(crate) const INCREMENTAL: [&str; 3] = ["books", "books-l2-tbt", "books50-l2-tbt"];
/// Instrument types of `liquidation-orders`, topics after the per-instrument ones.
pub(crate) const LIQ_TYPES: [&str; 4] = ["SWAP", "FUTURES", "OPTION", "MARGIN"];

/// Topic of a channel of instrument `i`.
pub(crate) fn topic(i: usize, kind: &str) -> Option<u32> {
    let k = KINDS.iter().position(|k| *k == kind)?;
    u32::try_from(i * KINDS.len() + k).ok()
}

/// Topic of `liquidation-orders` for an instrument type, after `n` instruments.
pub(crate) fn liq_topic(n: usize, inst_type: &str) -> Option<u32> {
    let t = LIQ_TYPES.iter().position(|k| *k == inst_type)?;
    u32::try_from(n * KINDS.len() + t).ok()
}

/// One pre-serialised OKX frame shared by every connection through the broadcast channel.
#[derive(Debug)]
pub(crate) struct OkxFrame {
    /// Topic index, or [`super::frames::TOPIC_ALL`] for frames every client receives.
    pub topic: u32,
    /// `seqId` of an incremental book message (a fresh subscriber skips those already in its
    /// snapshot).
    pub seq: Option<i64>,
    pub text: Utf8Bytes,
}

/// Settings of the OKX profile.
#[derive(Debug, Clone)]
pub struct OkxSimConfig {
    /// OKX instrument ids of the synthetic market (`BTC-USDT`, `BTC-USDT-SWAP`,
    /// `BTC-USD-250926`, `BTC-USD-250926-60000-C`); empty: no synthetic OKX market.
    pub symbols: Vec<String>,
    /// Real CRC32 checksums in book messages (the pre-2026 behaviour); false sends 0.
    pub checksum: bool,
    /// Push a snapshot on subscribe; false models the announced change (REST bootstrap).
    pub push_snapshot: bool,
    /// A connection with nothing sent to it for this long is closed with code 4004 (30 s).
    pub idle_timeout: Duration,
}

impl Default for OkxSimConfig {
    fn default() -> Self {
        Self {
            symbols: Vec::new(),
            checksum: true,
            push_snapshot: true,
            idle_timeout: Duration::from_secs(30),
        }
    }
}

/// A fault to inject into the OKX stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OkxFault {
    /// The next `count` book updates of the symbol carry a wrong checksum.
    BadChecksum,
    /// The next book update of the symbol is applied but not sent: `prevSeqId` breaks.
    SeqBreak,
    /// Nothing is sent (for one symbol, or at all) for the given duration.
    Stall,
    /// The next `count` subscriptions naming the symbol are answered with error 60018.
    SubscribeError,
}

/// Injected faults, per instrument index.
#[derive(Debug)]
pub(crate) struct Faults {
    pub bad_checksum: Vec<AtomicU32>,
    pub sub_errors: Vec<AtomicU32>,
    pub stall_all_until: Mutex<Option<Instant>>,
    pub stall_until: Mutex<Vec<Option<Instant>>>,
}

/// Takes one from a fault counter; true when one was left.
pub(crate) fn take(c: Option<&AtomicU32>) -> bool {
    c.is_some_and(|c| {
        c.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| v.checked_sub(1))
            .is_ok()
    })
}

/// Where the OKX data comes from.
#[derive(Debug)]
pub(crate) enum OkxSource {
    Synthetic(Arc<Market>),
    Capture(Arc<OkxCapture>),
}

/// State shared by the OKX sessions, REST handlers and the generator.
#[derive(Debug)]
pub(crate) struct OkxSim {
    pub cfg: OkxSimConfig,
    pub specs: Vec<OkxSpec>,
    pub source: OkxSource,
    pub topics: Topics,
    pub tx: broadcast::Sender<Arc<OkxFrame>>,
    pub faults: Faults,
}

impl OkxSim {
    fn build(
        cfg: OkxSimConfig,
        specs: Vec<OkxSpec>,
        source: OkxSource,
        names: Vec<String>,
    ) -> OkxSim {
        let n = specs.len();
        let (tx, _) = broadcast::channel(BROADCAST_CAPACITY);
        OkxSim {
            cfg,
            specs,
            source,
            topics: Topics::new(names),
            tx,
            faults: Faults {
                bad_checksum: (0..n).map(|_| AtomicU32::new(0)).collect(),
                sub_errors: (0..n).map(|_| AtomicU32::new(0)).collect(),
                stall_all_until: Mutex::new(None),
                stall_until: Mutex::new(vec![None; n]),
            },
        }
    }

    fn topic_names(specs: &[OkxSpec]) -> Vec<String> {
        let mut names: Vec<String> = specs
            .iter()
            .flat_map(|s| KINDS.iter().map(move |k| format!("{k}:{}", s.inst_id)))
            .collect();
        names.extend(LIQ_TYPES.iter().map(|t| format!("liquidation-orders:{t}")));
        names
    }

    /// The synthetic OKX market.
    pub(crate) fn synthetic(
        cfg: OkxSimConfig,
        seed: u64,
        depth: usize,
    ) -> Result<OkxSim, SimError> {
        if cfg.symbols.len() > 1000 {
            return Err(SimError::InvalidConfig {
                field: "okx_symbols",
                reason: "at most 1000 instruments",
            });
        }
        let mut specs: Vec<OkxSpec> = Vec::new();
        for id in &cfg.symbols {
            if !specs.iter().any(|s| &s.inst_id == id) {
                specs.push(OkxSpec::infer(id, depth)?);
            }
        }
        let market_specs: Vec<_> = specs.iter().map(|s| s.market.clone()).collect();
        // a seed apart from the Binance market's, so the two venues do not move in lockstep
        let state = MarketState::with_ids(&market_specs, seed ^ 0x006f_6b78, depth, false);
        let market = Market {
            specs: market_specs,
            state: Mutex::new(state),
        };
        let names = Self::topic_names(&specs);
        Ok(Self::build(
            cfg,
            specs,
            OkxSource::Synthetic(Arc::new(market)),
            names,
        ))
    }

    /// A recorded OKX capture.
    pub(crate) fn recorded(cfg: OkxSimConfig, data: OkxCapture) -> OkxSim {
        let names = data.topic_names.clone();
        Self::build(cfg, Vec::new(), OkxSource::Capture(Arc::new(data)), names)
    }

    /// Index of an instrument id.
    pub(crate) fn index(&self, inst_id: &str) -> Option<usize> {
        self.specs.iter().position(|s| s.inst_id == inst_id)
    }

    /// Instrument ids of a type.
    pub(crate) fn of_type(&self, t: InstType) -> impl Iterator<Item = (usize, &OkxSpec)> {
        self.specs
            .iter()
            .enumerate()
            .filter(move |(_, s)| s.inst_type == t)
    }

    /// Injects a fault; `Err` names what is wrong with the request.
    pub(crate) fn inject(
        &self,
        fault: OkxFault,
        inst_id: Option<&str>,
        count: u32,
        duration: Duration,
    ) -> Result<(), &'static str> {
        let idx = match inst_id {
            Some(id) => Some(
                self.index(id)
                    .ok_or("symbol is not an OKX instrument of this simulator")?,
            ),
            None => None,
        };
        let need = || idx.ok_or("this fault needs a symbol");
        match fault {
            OkxFault::BadChecksum => {
                let i = need()?;
                if let Some(c) = self.faults.bad_checksum.get(i) {
                    c.store(count.max(1), Ordering::Relaxed);
                }
            }
            OkxFault::SubscribeError => {
                let i = need()?;
                if let Some(c) = self.faults.sub_errors.get(i) {
                    c.store(count.max(1), Ordering::Relaxed);
                }
            }
            OkxFault::SeqBreak => {
                let i = need()?;
                let OkxSource::Synthetic(m) = &self.source else {
                    return Err("sequence breaks need the synthetic market");
                };
                m.state.lock().mark_gap(i);
            }
            OkxFault::Stall => {
                let until = Instant::now() + duration;
                match idx {
                    Some(i) => {
                        if let Some(slot) = self.faults.stall_until.lock().get_mut(i) {
                            *slot = Some(until);
                        }
                    }
                    None => *self.faults.stall_all_until.lock() = Some(until),
                }
            }
        }
        Ok(())
    }

    /// True while everything, or instrument `i`, is stalled.
    pub(crate) fn stalled(&self, i: Option<usize>, now: Instant) -> bool {
        let all = self.faults.stall_all_until.lock().is_some_and(|t| now < t);
        all || i.is_some_and(|i| {
            self.faults
                .stall_until
                .lock()
                .get(i)
                .copied()
                .flatten()
                .is_some_and(|t| now < t)
        })
    }
}
