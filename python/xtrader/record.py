"""Parquet recording of normalized events.

Layout: ``<dir>/<channel>/exchange=<exchange>/date=<YYYY-MM-DD>/part-<ts_ns>-<n>.parquet``,
``date`` being the UTC date of ``ts_recv``. Each file is written under a ``.tmp`` name and
renamed into place, so a reader only ever sees whole files. Columns and dtypes are the
contract ones (ARCHITECTURE.md); read them back with `xtrader.read` or any Parquet reader.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from ._core import BookUpdate, Quote, Trade
from ._schema import SCHEMAS
from .config import RECORD_CHANNELS
from .exceptions import ConfigError

if TYPE_CHECKING:
    from ._core import Event

__all__ = ["ParquetRecorder"]


class ParquetRecorder:
    """Buffers events in columns and writes Parquet files at intervals and at close.

    Args:
        dir: Root folder (created when missing).
        channels: Any of ``trades``, ``bbo``, ``book``.
        flush_interval_s: Seconds between writes.
        max_buffered_rows: Rows held per channel before an early write (memory bound).

    Raises:
        ConfigError: For an unknown channel or a bad interval.
    """

    def __init__(
        self,
        dir: str | os.PathLike[str],
        channels: Sequence[str] = ("trades", "bbo"),
        flush_interval_s: float = 5.0,
        max_buffered_rows: int = 250_000,
    ) -> None:
        unknown = [c for c in channels if c not in RECORD_CHANNELS]
        if unknown:
            raise ConfigError(
                "channels", f"unknown channel {unknown[0]!r} (valid: {', '.join(RECORD_CHANNELS)})"
            )
        if not flush_interval_s > 0:
            raise ConfigError("flush_interval_s", f"must be > 0, got {flush_interval_s}")
        self.dir = Path(dir)
        self.channels = tuple(channels)
        self.flush_interval_s = float(flush_interval_s)
        self._max_rows = max(1, max_buffered_rows)
        self._columns: dict[str, dict[str, list[Any]]] = {
            c: {name: [] for name in SCHEMAS[c]} for c in self.channels
        }
        self._trades = "trades" in self.channels
        self._bbo = "bbo" in self.channels
        self._book = "book" in self.channels
        self._next_flush = time.monotonic() + self.flush_interval_s
        self._part = 0
        self._closed = False
        self.rows_written = 0
        self.files_written = 0

    def write(self, events: Sequence[Event]) -> None:
        """Buffer the events of the recorded channels."""
        if self._closed:
            return
        for ev in events:
            if self._bbo and isinstance(ev, Quote):
                _append_fields(self._columns["bbo"], ev)
            elif self._trades and isinstance(ev, Trade):
                _append_fields(self._columns["trades"], ev)
            elif self._book and isinstance(ev, BookUpdate):
                self._add_book_update(ev)
        if any(len(cols["ts_recv"]) >= self._max_rows for cols in self._columns.values()):
            self.flush()

    def _add_book_update(self, ev: BookUpdate) -> None:
        c = self._columns["book"]
        for side, levels in (("bid", ev.bids), ("ask", ev.asks)):
            for price, size in levels:
                c["exchange"].append(ev.exchange)
                c["symbol"].append(ev.symbol)
                c["ts_exchange"].append(ev.ts_exchange)
                c["ts_recv"].append(ev.ts_recv)
                c["side"].append(side)
                c["price"].append(price)
                c["size"].append(size)
                c["is_snapshot"].append(ev.is_snapshot)
                c["seq"].append(ev.seq)

    def tick(self, now: float) -> None:
        """Write the buffers when the flush interval has elapsed."""
        if now >= self._next_flush:
            self.flush()

    def flush(self) -> None:
        """Write every non-empty buffer now."""
        self._next_flush = time.monotonic() + self.flush_interval_s
        for channel, cols in self._columns.items():
            if not cols["ts_recv"]:
                continue
            frame = pl.DataFrame(cols, schema=SCHEMAS[channel])
            self._columns[channel] = {name: [] for name in SCHEMAS[channel]}
            self._write_partitions(channel, frame)

    def _write_partitions(self, channel: str, frame: pl.DataFrame) -> None:
        dated = frame.with_columns(
            pl.from_epoch(pl.col("ts_recv"), time_unit="ns").dt.strftime("%Y-%m-%d").alias("_date")
        )
        stamp = time.time_ns()
        for key, part in dated.partition_by(["exchange", "_date"], as_dict=True).items():
            exchange, date = str(key[0]), str(key[1])
            folder = self.dir / channel / f"exchange={exchange}" / f"date={date}"
            folder.mkdir(parents=True, exist_ok=True)
            self._part += 1
            final = folder / f"part-{stamp}-{self._part}.parquet"
            tmp = folder / f".{final.name}.tmp"
            part.drop("_date").write_parquet(tmp)
            os.replace(tmp, final)
            self.rows_written += part.height
            self.files_written += 1

    def close(self) -> None:
        """Write what is buffered; further events are ignored."""
        if self._closed:
            return
        self.flush()
        self._closed = True

    def stats(self) -> dict[str, int]:
        """Counters: ``recorded_rows``, ``recorded_files``."""
        return {"recorded_rows": self.rows_written, "recorded_files": self.files_written}


def _append_fields(columns: dict[str, list[Any]], ev: Quote | Trade) -> None:
    """Append each column's same-named attribute of `ev` (bbo and trade columns are fields)."""
    for name, values in columns.items():
        values.append(getattr(ev, name))
