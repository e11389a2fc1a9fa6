//! The trade spill: when the bus is full and trades are configured to spill, they are
//! appended to a file instead of blocking the socket, and read back in order as the
//! consumer frees space. Bounded by `max_bytes` (past it trades block again), counted.
//!
//! Records are fixed-size (45 bytes, little endian): symbol slot u32, `ts_exchange` i64,
//! `ts_recv` i64, price f64, size f64, side u8, `trade_id` u64. Symbols are interned in a
//! slot table, so a record never carries a string. The file lives only for the process:
//! it is truncated whenever the reader catches up, and removed on drop.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::model::{Side, SymbolMeta, Trade};

const RECORD: usize = 45;

/// Spill settings.
#[derive(Debug, Clone)]
pub struct SpillConfig {
    /// Folder of the spill file.
    pub dir: PathBuf,
    /// Largest spill file; past it trades wait for the consumer.
    pub max_bytes: u64,
}

/// An open spill file.
#[derive(Debug)]
pub(super) struct Spill {
    path: PathBuf,
    writer: BufWriter<File>,
    reader: File,
    written: u64,
    read: u64,
    max_bytes: u64,
    slots: Vec<Arc<SymbolMeta>>,
    slot_of: HashMap<usize, u32>,
}

impl Spill {
    /// Create the spill file under `cfg.dir` (a unique name per process and bus).
    pub(super) fn open(cfg: &SpillConfig, id: u64) -> std::io::Result<Self> {
        std::fs::create_dir_all(&cfg.dir)?;
        let path = cfg
            .dir
            .join(format!("trades-{}-{id}.spill", std::process::id()));
        let file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(&path)?;
        let reader = File::open(&path)?;
        Ok(Self {
            path,
            writer: BufWriter::with_capacity(64 * 1024, file),
            reader,
            written: 0,
            read: 0,
            max_bytes: cfg.max_bytes.max(RECORD as u64),
            slots: Vec::new(),
            slot_of: HashMap::new(),
        })
    }

    /// Path of the file.
    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// Trades waiting in the file.
    pub(super) fn pending(&self) -> u64 {
        (self.written - self.read) / RECORD as u64
    }

    /// Bytes waiting in the file.
    pub(super) fn pending_bytes(&self) -> u64 {
        self.written - self.read
    }

    /// Whether one more record fits under the bound.
    pub(super) fn has_room(&self) -> bool {
        self.pending_bytes() + RECORD as u64 <= self.max_bytes
    }

    /// Append one trade.
    pub(super) fn push(&mut self, t: &Trade) -> std::io::Result<()> {
        let key = Arc::as_ptr(&t.sym) as usize;
        let slot = match self.slot_of.get(&key) {
            Some(s) => *s,
            None => {
                let s = u32::try_from(self.slots.len()).unwrap_or(u32::MAX);
                self.slots.push(t.sym.clone());
                self.slot_of.insert(key, s);
                s
            }
        };
        let mut rec = [0u8; RECORD];
        rec[0..4].copy_from_slice(&slot.to_le_bytes());
        rec[4..12].copy_from_slice(&t.ts_exchange.to_le_bytes());
        rec[12..20].copy_from_slice(&t.ts_recv.to_le_bytes());
        rec[20..28].copy_from_slice(&t.price.to_le_bytes());
        rec[28..36].copy_from_slice(&t.size.to_le_bytes());
        rec[36] = u8::from(t.side == Side::Sell);
        rec[37..45].copy_from_slice(&t.trade_id.to_le_bytes());
        self.writer.write_all(&rec)?;
        self.written += RECORD as u64;
        Ok(())
    }

    /// Read back up to `max` trades, oldest first.
    pub(super) fn pop(&mut self, max: usize, out: &mut Vec<Trade>) -> std::io::Result<()> {
        let n = usize::try_from(self.pending())
            .unwrap_or(usize::MAX)
            .min(max);
        if n == 0 {
            return Ok(());
        }
        self.writer.flush()?;
        self.reader.seek(SeekFrom::Start(self.read))?;
        let mut buf = vec![0u8; n * RECORD];
        self.reader.read_exact(&mut buf)?;
        for rec in buf.chunks_exact(RECORD) {
            let le8 = |a: usize| {
                let mut b = [0u8; 8];
                b.copy_from_slice(&rec[a..a + 8]);
                b
            };
            let mut s4 = [0u8; 4];
            s4.copy_from_slice(&rec[0..4]);
            let Some(sym) = self.slots.get(u32::from_le_bytes(s4) as usize) else {
                continue;
            };
            out.push(Trade {
                sym: sym.clone(),
                ts_exchange: i64::from_le_bytes(le8(4)),
                ts_recv: i64::from_le_bytes(le8(12)),
                price: f64::from_le_bytes(le8(20)),
                size: f64::from_le_bytes(le8(28)),
                side: if rec[36] == 1 { Side::Sell } else { Side::Buy },
                trade_id: u64::from_le_bytes(le8(37)),
            });
        }
        self.read += (n * RECORD) as u64;
        if self.read == self.written {
            // caught up: start the file again so it never grows past one burst
            self.writer.flush()?;
            self.writer.get_ref().set_len(0)?;
            self.writer.seek(SeekFrom::Start(0))?;
            self.read = 0;
            self.written = 0;
        }
        Ok(())
    }
}

impl Drop for Spill {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
