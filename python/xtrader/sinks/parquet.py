"""Multi-stream Parquet sink: one writer per (channel, venue, symbol, date), crash-safe.

Layout (what `xtrader.read` scans)::

    <dir>/<channel>/exchange=<ex>/date=<YYYY-MM-DD>/<symbol>-<first_ts_ns>-<n>.parquet

``date`` is the UTC date of ``ts_recv`` (``start`` for the ``gaps`` channel). How a file comes
to be:

1. Each delivery (flush interval, batch-size limit, shutdown) appends the stream's rows as
   one Arrow IPC *segment* to a staging folder ``.inprogress/<symbol>-<first_ts_ns>/`` next
   to the final files, written as ``.tmp`` then renamed: a segment is whole or absent.
2. The stream's file is *finalized* (rotation) when it holds ``max_file_rows`` rows,
   ``max_file_bytes`` bytes (in memory), is older than ``rotate_interval_s``, has been idle
   for ``idle_timeout_s`` (idle-writer pruning), at the end of its UTC day, or at close:
   the segments become one zstd Parquet file written under a hidden ``.tmp`` name and
   renamed into place, then the staging folder is removed. Readers only ever see whole files.
3. On `open`, staging folders left by a killed process are finalized the same way
   (recovery), so after SIGKILL everything delivered before the kill is kept; what is lost
   at most is what the runtime had buffered and not yet delivered (one flush interval,
   ``flush_interval_s``, or ``max_batch_rows`` rows) and a segment being written at the
   instant of the kill (its ``.tmp`` is discarded).

Segments are not fsync'ed unless ``fsync = true``: a killed *process* loses nothing written,
a power cut may lose what the OS had not written back.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import polars as pl

from .._schema import SCHEMAS
from .base import Sink

__all__ = ["ParquetSink", "recover"]

logger = logging.getLogger("xtrader.sinks")

DAY_NS = 86_400_000_000_000
STAGING = ".inprogress"


def time_column(frame: pl.DataFrame) -> str:
    """The column a row is dated by."""
    for name in ("ts_recv", "start", "ts"):
        if name in frame.columns:
            return name
    raise ValueError(f"no time column in {frame.columns}")


def conform(channel: str, frame: pl.DataFrame) -> pl.DataFrame:
    """Cast a core frame to the contract dtypes of its channel (unknown channels unchanged)."""
    schema = SCHEMAS.get(channel)
    if schema is None:
        return frame
    if all(frame.schema.get(k) == v for k, v in schema.items()) and len(frame.columns) == len(
        schema
    ):
        return frame
    return frame.select(list(schema)).cast(schema)  # type: ignore[arg-type]


def _date(day: int) -> str:
    return (dt.date(1970, 1, 1) + dt.timedelta(days=day)).isoformat()


def _safe(name: str) -> str:
    return name.replace("/", "_").replace(os.sep, "_")


@dataclass
class _Writer:
    """One stream's open file: segments in a staging folder until finalized."""

    folder: Path
    symbol: str
    first_ts: int
    opened: float
    touched: float
    staging: Path = field(init=False)
    segments: int = 0
    rows: int = 0
    bytes: int = 0

    def __post_init__(self) -> None:
        self.staging = self.folder / STAGING / f"{_safe(self.symbol)}-{self.first_ts}"


class ParquetSink(Sink):
    """Writes every channel to hive-partitioned Parquet files (see the module doc).

    Args:
        dir: Root folder (created when missing).
        channels: Channels to keep (empty: all, including ``gaps``).
        flush_interval_s: Seconds between deliveries (each one appends a segment).
        max_batch_rows: Rows buffered by the runtime before an early delivery.
        max_file_rows: Rotate a stream's file at this many rows.
        max_file_bytes: ...or at this many bytes (in-memory size of its rows).
        rotate_interval_s: ...or when it is this old.
        idle_timeout_s: Finalize and drop writers without rows for this long.
        compression_level: zstd level.
        fsync: fsync segments and files (durability across power loss; slower).
    """

    name: ClassVar[str] = "parquet"
    options: ClassVar[Mapping[str, Any]] = {
        "dir": "./xtrader-data",
        "channels": (),
        "flush_interval_s": 1.0,
        "max_batch_rows": 262_144,
        "max_file_rows": 5_000_000,
        "max_file_bytes": 256 * 1024 * 1024,
        "rotate_interval_s": 3600.0,
        "idle_timeout_s": 60.0,
        "compression_level": 3,
        "fsync": False,
    }

    def __init__(
        self,
        dir: str | os.PathLike[str] = "./xtrader-data",
        channels: tuple[str, ...] | list[str] = (),
        flush_interval_s: float = 1.0,
        max_batch_rows: int = 262_144,
        max_file_rows: int = 5_000_000,
        max_file_bytes: int = 256 * 1024 * 1024,
        rotate_interval_s: float = 3600.0,
        idle_timeout_s: float = 60.0,
        compression_level: int = 3,
        fsync: bool = False,
    ) -> None:
        self.dir = Path(dir)
        self.channels = frozenset(channels)
        self.flush_interval_s = float(flush_interval_s)
        self.max_batch_rows = max(1, int(max_batch_rows))
        self.max_file_rows = max(1, int(max_file_rows))
        self.max_file_bytes = max(1, int(max_file_bytes))
        self.rotate_interval_s = float(rotate_interval_s)
        self.idle_timeout_s = float(idle_timeout_s)
        self.compression_level = int(compression_level)
        self.fsync = bool(fsync)
        self._writers: dict[tuple[str, str, str, int], _Writer] = {}
        self._files = 0
        self._counters = {
            "parquet_rows": 0,
            "parquet_segments": 0,
            "parquet_files": 0,
            "parquet_rotations": 0,
            "parquet_pruned_writers": 0,
            "parquet_recovered_files": 0,
        }

    # ---------------------------------------------------------------------------- lifecycle

    def open(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self._counters["parquet_recovered_files"] += recover(
            self.dir, self.compression_level, self.fsync
        )

    def write(self, frames: Mapping[str, pl.DataFrame]) -> None:
        now = time.monotonic()
        for channel, frame in frames.items():
            if frame.height == 0 or (self.channels and channel not in self.channels):
                continue
            frame = conform(channel, frame)
            ts = time_column(frame)
            keyed = frame.with_columns((pl.col(ts) // DAY_NS).alias("__day"))
            parts = keyed.partition_by(["exchange", "symbol", "__day"], as_dict=True)
            for key, part in parts.items():
                exchange, symbol, day = str(key[0]), str(key[1]), int(key[2])
                self._append(channel, exchange, symbol, day, part.drop("__day"), ts, now)

    def _append(
        self,
        channel: str,
        exchange: str,
        symbol: str,
        day: int,
        part: pl.DataFrame,
        ts: str,
        now: float,
    ) -> None:
        key = (channel, exchange, symbol, day)
        writer = self._writers.get(key)
        if writer is None:
            # a new day closes the previous day's file of this stream
            for old in [k for k in self._writers if k[:3] == key[:3] and k[3] < day]:
                self._finalize(self._writers.pop(old))
            folder = self.dir / channel / f"exchange={exchange}" / f"date={_date(day)}"
            first = int(part[ts][0])
            writer = _Writer(folder, symbol, first, now, now)
            while writer.staging.exists() or any(folder.glob(f"{writer.staging.name}-*.parquet")):
                writer = _Writer(folder, symbol, writer.first_ts + 1, now, now)
            writer.staging.mkdir(parents=True, exist_ok=True)
            self._writers[key] = writer
        seg = writer.staging / f"seg-{writer.segments:08d}.arrow"
        tmp = writer.staging / f".seg-{writer.segments:08d}.tmp"
        part.write_ipc(tmp, compression="uncompressed")
        if self.fsync:
            _fsync(tmp)
        os.replace(tmp, seg)
        writer.segments += 1
        writer.rows += part.height
        writer.bytes += int(part.estimated_size())
        writer.touched = now
        self._counters["parquet_rows"] += part.height
        self._counters["parquet_segments"] += 1
        if writer.rows >= self.max_file_rows or writer.bytes >= self.max_file_bytes:
            self._counters["parquet_rotations"] += 1
            self._finalize(self._writers.pop(key))

    def tick(self, now: float) -> None:
        for key, writer in list(self._writers.items()):
            if now - writer.touched >= self.idle_timeout_s:
                self._counters["parquet_pruned_writers"] += 1
                self._finalize(self._writers.pop(key))
            elif now - writer.opened >= self.rotate_interval_s:
                self._counters["parquet_rotations"] += 1
                self._finalize(self._writers.pop(key))

    def close(self) -> None:
        for key in list(self._writers):
            self._finalize(self._writers.pop(key))

    def _finalize(self, writer: _Writer) -> None:
        if finalize_staging(writer.staging, self.compression_level, self.fsync):
            self._counters["parquet_files"] += 1

    @property
    def open_writers(self) -> int:
        """Streams with an unfinished file."""
        return len(self._writers)

    def stats(self) -> dict[str, int]:
        return {**self._counters, "parquet_open_writers": len(self._writers)}


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def finalize_staging(staging: Path, compression_level: int = 3, fsync: bool = False) -> bool:
    """Turn a staging folder's segments into one Parquet file beside it (write, then rename).

    Returns:
        Whether a file was written (False for a folder without whole segments).
    """
    segments = sorted(staging.glob("seg-*.arrow"))
    folder = staging.parent.parent
    written = False
    if segments:
        frame = pl.concat([pl.read_ipc(s) for s in segments], how="vertical")
        final = folder / f"{staging.name}-{len(segments)}.parquet"
        tmp = folder / f".{final.name}.tmp"
        frame.write_parquet(
            tmp, compression="zstd", compression_level=compression_level, statistics=True
        )
        if fsync:
            _fsync(tmp)
        os.replace(tmp, final)
        written = True
    shutil.rmtree(staging, ignore_errors=True)
    try:
        staging.parent.rmdir()  # the last open stream of the folder
    except OSError:
        pass
    return written


def recover(root: Path, compression_level: int = 3, fsync: bool = False) -> int:
    """Finalize staging folders a killed writer left under `root`; drop stray ``.tmp`` files.

    Returns:
        The number of files recovered.
    """
    count = 0
    if not root.is_dir():
        return 0
    for staging_root in root.glob(f"*/exchange=*/date=*/{STAGING}"):
        for staging in sorted(p for p in staging_root.iterdir() if p.is_dir()):
            if finalize_staging(staging, compression_level, fsync):
                count += 1
                logger.warning("recovered %s from an interrupted run", staging.name)
        try:
            staging_root.rmdir()
        except OSError:
            pass
    for tmp in root.glob("*/exchange=*/date=*/.*.tmp"):
        tmp.unlink(missing_ok=True)
    return count
