"""Gap annotations: the intervals in which a book was not trustworthy, stored beside the data.

`GapTracker` follows the status events: from a venue's connection to a book's first ``live``
is an ``initial_sync`` gap; a book whose state leaves ``live`` (syncing, resyncing after a
sequence gap or bad checksum, stale) opens a gap, the return to ``live`` closes it; a
venue-wide disconnect (not a deliberate stop) opens one with ``symbol = "*"`` closed at
reconnection.
Closed gaps go to the sinks as the ``gaps`` channel (columns `GAPS_SCHEMA`); gaps still open
at shutdown are written with ``end`` = the last time seen and ``open = true``.

Research excludes them with `exclude_gaps` (rows whose ``ts_recv`` falls inside a gap of the
same exchange and symbol, or of the whole venue)::

    trades = xt.read("data", channel="trades")
    clean = exclude_gaps(trades, read_gaps("data"))
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import polars as pl

__all__ = ["GAPS_SCHEMA", "GapTracker", "exclude_gaps", "read_gaps"]

GAPS_SCHEMA: dict[str, pl.DataType] = {
    "exchange": pl.String(),
    "symbol": pl.String(),
    "start": pl.Int64(),
    "end": pl.Int64(),
    "state": pl.String(),
    "reason": pl.String(),
    "open": pl.Boolean(),
}
"""Columns of the ``gaps`` channel (``start``/``end``: ns since the epoch, UTC)."""

VENUE = "*"


class GapTracker:
    """Turns status events into closed gap intervals."""

    def __init__(self) -> None:
        self._open: dict[tuple[str, str], tuple[int, str, str]] = {}
        self._closed: list[tuple[str, str, int, int, str, str, bool]] = []
        self._last_ts = 0
        self._connected: dict[str, int] = {}
        self._live: set[tuple[str, str]] = set()
        self.gaps = 0

    def observe(self, statuses: Iterable[Any]) -> None:
        """Follow a batch of `Status` events (only statuses: other events are not checked)."""
        for st in statuses:
            kind = getattr(st, "kind", None)
            if kind is None:
                continue
            ts = int(st.ts)
            self._last_ts = max(self._last_ts, ts)
            symbol = st.symbol
            if symbol is None:
                key = (st.exchange, VENUE)
                if kind == "disconnected" and st.reason != "stopped":
                    self._start(key, ts, "disconnected", st.reason or kind)
                elif kind == "connected":
                    self._end(key, ts)
                    self._connected.setdefault(st.exchange, ts)
                continue
            state = st.state
            key = (st.exchange, symbol)
            if state is None:
                continue
            if state == "live":
                connected = self._connected.get(st.exchange)
                if key not in self._live and key not in self._open and connected is not None:
                    self._open[key] = (connected, "syncing", "initial_sync")
                self._live.add(key)
                self._end(key, ts)
            else:
                self._start(key, ts, state, st.reason or kind)

    def _start(self, key: tuple[str, str], ts: int, state: str, reason: str) -> None:
        if key not in self._open:
            self._open[key] = (ts, state, reason)

    def _end(self, key: tuple[str, str], ts: int) -> None:
        found = self._open.pop(key, None)
        if found is not None:
            start, state, reason = found
            self._closed.append((key[0], key[1], start, ts, state, reason, False))
            self.gaps += 1

    def take(self, final: bool = False) -> pl.DataFrame | None:
        """The gaps closed since the last call (and, when `final`, the open ones)."""
        if final:
            for key in list(self._open):
                start, state, reason = self._open.pop(key)
                end = max(self._last_ts, start)
                self._closed.append((key[0], key[1], start, end, state, reason, True))
                self.gaps += 1
        if not self._closed:
            return None
        rows, self._closed = self._closed, []
        return pl.DataFrame(rows, schema=GAPS_SCHEMA, orient="row")


def read_gaps(path: str | os.PathLike[str], exchange: str | None = None) -> pl.DataFrame:
    """Every gap recorded under a dataset root (empty frame when none)."""
    root = Path(path) / "gaps"
    if exchange is not None:
        root = root / f"exchange={exchange}"
    if not any(root.glob("**/*.parquet")):
        return pl.DataFrame(schema=GAPS_SCHEMA)
    return pl.read_parquet(
        str(root / "**" / "*.parquet"), hive_partitioning=False, schema=GAPS_SCHEMA
    )


def exclude_gaps(
    frame: pl.LazyFrame | pl.DataFrame, gaps: pl.DataFrame | str | os.PathLike[str]
) -> pl.LazyFrame:
    """Drop rows whose ``ts_recv`` lies in a gap (``start <= ts_recv <= end``) of their book.

    Args:
        frame: Rows with ``exchange``, ``symbol`` and ``ts_recv`` (e.g. from `xtrader.read`).
        gaps: A gaps frame or the dataset root to read it from.
    """
    table = gaps if isinstance(gaps, pl.DataFrame) else read_gaps(gaps)
    lazy = frame.lazy()
    if table.height == 0:
        return lazy
    keep = pl.lit(True)
    for exchange, symbol, start, end in table.select(
        "exchange", "symbol", "start", "end"
    ).iter_rows():
        inside = pl.col("ts_recv").is_between(start, end) & (pl.col("exchange") == exchange)
        if symbol != VENUE:
            inside = inside & (pl.col("symbol") == symbol)
        keep = keep & ~inside
    return lazy.filter(keep)
