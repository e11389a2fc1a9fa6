"""The runtime's side of a sink: buffering, delivery timing and failure isolation.

`SinkHost` holds the frames a sink has not received yet and delivers them (``write`` then
``flush``) when the sink's ``flush_interval_s`` elapses, when ``max_batch_rows`` rows are
buffered, and at shutdown. A delivery that raises (disk full, permission denied, a plugin's
bug) is reported once with a `SinkStatus` (and logged), counted in ``sink_failures``, and
the frames stay in the host's buffer (the *spool*); the host retries with back-off (0.5 s
doubling to 30 s) while the other sinks and the strategies go on. The spool is bounded by
``spool_max_rows`` in memory: beyond it the oldest frames are *spilled* to Arrow IPC files
under ``spool_dir`` (default ``<tmp>/xtrader-spool``; counted in ``sink_spilled_rows``,
reported with a ``sink_overflow`` status and logged with the path, readable with
``polars.read_ipc``). At shutdown a last delivery is attempted and what still fails is
spilled the same way. Only when spilling fails too (the local disk is also full) are rows
dropped, counted in ``sink_dropped_rows`` and logged, never silently.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from .base import Sink

__all__ = ["SPOOL_MAX_ROWS", "SinkHost", "SinkStatus"]

logger = logging.getLogger("xtrader.sinks")

SPOOL_MAX_ROWS = 10_000_000
RETRY_FIRST_S = 0.5
RETRY_MAX_S = 30.0


@dataclass(frozen=True, slots=True)
class SinkStatus:
    """A sink's health change, handed to strategies' ``on_status`` like a feed status.

    kind: ``sink_error`` (a delivery failed, its frames are spooled), ``sink_recovered``,
    ``sink_overflow`` (the spool bound was reached: oldest rows dropped, counted).
    """

    exchange: str
    symbol: str | None
    kind: str
    reason: str | None
    state: None
    message: str
    ts: int = field(default_factory=time.time_ns)


SinkMetrics = Callable[[str, int, int, list[str], list[int]], None]
"""``(sink, rows, errors, exchanges, ts_recv)``: `Engine.record_sink`."""

LATENCY_SAMPLE_ROWS = 256
"""Rows per delivery whose ``ts_recv`` feeds the ``sink_written`` latency stage."""


def _latency_sample(frames: Mapping[str, pl.DataFrame]) -> tuple[list[str], list[int]]:
    """Evenly spaced ``(exchange, ts_recv)`` pairs of the delivered rows (bounded)."""
    exchanges: list[str] = []
    ts_recv: list[int] = []
    for frame in frames.values():
        if frame.height == 0 or "ts_recv" not in frame.columns or "exchange" not in frame.columns:
            continue
        step = max(1, frame.height // LATENCY_SAMPLE_ROWS)
        sample = frame.select("exchange", "ts_recv").gather_every(step)
        exchanges.extend(str(e) for e in sample["exchange"].to_list())
        ts_recv.extend(int(t) for t in sample["ts_recv"].to_list())
    return exchanges, ts_recv


class SinkHost:
    """Buffers frames for one sink and delivers them; isolates its failures."""

    def __init__(
        self,
        sink: Sink,
        report: Callable[[SinkStatus], None] | None = None,
        spool_max_rows: int = SPOOL_MAX_ROWS,
        spool_dir: str | os.PathLike[str] | None = None,
        metrics: SinkMetrics | None = None,
    ) -> None:
        self.sink = sink
        self._metrics = metrics
        self.label = f"{getattr(sink, 'name', type(sink).__name__)}"
        self._report = report
        self.spool_max_rows = spool_max_rows
        self.spool_dir = (
            Path(spool_dir)
            if spool_dir is not None
            else Path(tempfile.gettempdir()) / "xtrader-spool"
        )
        self._spills = 0
        self._pending: list[tuple[str, pl.DataFrame]] = []
        self._rows = 0
        self._due = 0.0
        self._retry_at = 0.0
        self._backoff = RETRY_FIRST_S
        self._failing = False
        self._opened = False
        self.counters = {
            "sink_delivered_rows": 0,
            "sink_deliveries": 0,
            "sink_failures": 0,
            "sink_spooled_rows": 0,
            "sink_spilled_rows": 0,
            "sink_dropped_rows": 0,
        }
        self.received: dict[tuple[str, str, str], int] = defaultdict(int)

    def open(self, now: float) -> None:
        self._due = now + self.sink.flush_interval_s
        try:
            self.sink.open()
            self._opened = True
        except Exception as exc:
            self._fail("open", exc, now)

    def add(self, frames: Mapping[str, pl.DataFrame], now: float) -> None:
        """Buffer one batch (delivered when due)."""
        for channel, frame in frames.items():
            if frame.height:
                self._pending.append((channel, frame))
                self._rows += frame.height
        if self._rows >= self.sink.max_batch_rows:
            self.deliver(now)

    def tick(self, now: float) -> None:
        if now >= self._due:
            self.deliver(now)
        if self._opened and not self._failing:
            try:
                self.sink.tick(now)
            except Exception as exc:
                self._fail("tick", exc, now)

    def deliver(self, now: float, final: bool = False) -> bool:
        """Hand the buffered frames to the sink (unless backing off). True on success."""
        self._due = now + self.sink.flush_interval_s
        if not self._pending:
            return True
        if self._failing and now < self._retry_at and not final:
            return False
        try:
            if not self._opened:
                self.sink.open()
                self._opened = True
            frames = _merge(self._pending)
            self.sink.write(frames)
            self.sink.flush()
        except Exception as exc:
            self._fail("write", exc, now)
            self._bound()
            return False
        self.counters["sink_delivered_rows"] += self._rows
        self.counters["sink_deliveries"] += 1
        if self._metrics is not None:
            exchanges, ts_recv = _latency_sample(frames)
            self._metrics(self.label, self._rows, 0, exchanges, ts_recv)
        for channel, frame in frames.items():
            if "symbol" in frame.columns and "exchange" in frame.columns:
                for ex, sym, n in frame.group_by("exchange", "symbol").len().iter_rows():
                    self.received[(channel, str(ex), str(sym))] += int(n)
        self._pending = []
        self._rows = 0
        if self._failing:
            self._failing = False
            self._backoff = RETRY_FIRST_S
            self._emit("sink_recovered", None, f"sink {self.label} delivers again")
        return True

    def close(self, now: float) -> None:
        """Last delivery, then ``close``; what cannot be delivered is counted as dropped."""
        ok = self.deliver(now, final=True)
        if not ok and self._rows:
            rows = self._rows
            pending, self._pending, self._rows = self._pending, [], 0
            where = self._spill(pending)
            logger.error(
                "sink %s: %d rows could not be delivered at shutdown; %s",
                self.label,
                rows,
                f"spilled to {where}" if where else "dropped (spilling failed too)",
            )
            self.counters["sink_spooled_rows"] = 0
        if self._opened:
            try:
                self.sink.close()
            except Exception as exc:
                self._fail("close", exc, now)

    def _fail(self, method: str, exc: Exception, now: float) -> None:
        self.counters["sink_failures"] += 1
        if self._metrics is not None:
            self._metrics(self.label, 0, 1, [], [])
        self._retry_at = now + self._backoff
        self._backoff = min(RETRY_MAX_S, self._backoff * 2)
        if method == "write":
            self.counters["sink_spooled_rows"] = self._rows
        if not self._failing:
            self._failing = True
            logger.error(
                "sink %s raised %s in %s: its data is spooled (%d rows) and retried; "
                "the other sinks and the strategies go on",
                self.label,
                type(exc).__name__,
                method,
                self._rows,
                exc_info=exc,
            )
            self._emit("sink_error", type(exc).__name__, f"sink {self.label} {method}: {exc}")

    def _bound(self) -> None:
        oldest: list[tuple[str, pl.DataFrame]] = []
        while self._rows > self.spool_max_rows and self._pending:
            item = self._pending.pop(0)
            self._rows -= item[1].height
            oldest.append(item)
        if oldest:
            rows = sum(f.height for _, f in oldest)
            self.counters["sink_spooled_rows"] = self._rows
            where = self._spill(oldest)
            logger.error(
                "sink %s: spool full (%d rows): the %d oldest rows %s",
                self.label,
                self.spool_max_rows,
                rows,
                f"spilled to {where}" if where else "dropped (spilling failed too)",
            )
            self._emit(
                "sink_overflow",
                "spool_full",
                f"sink {self.label}: {rows} rows "
                + (f"spilled to {where}" if where else "dropped"),
            )

    def _spill(self, frames: list[tuple[str, pl.DataFrame]]) -> Path | None:
        """Write frames to ``spool_dir`` (Arrow IPC, one file per channel); None on failure."""
        rows = sum(f.height for _, f in frames)
        self._spills += 1
        folder = self.spool_dir / f"{self.label}-{os.getpid()}-{time.time_ns()}-{self._spills}"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            for channel, frame in _merge(frames).items():
                tmp = folder / f".{channel}.arrow.tmp"
                frame.write_ipc(tmp)
                os.replace(tmp, folder / f"{channel}.arrow")
        except Exception as exc:
            self.counters["sink_dropped_rows"] += rows
            logger.error("sink %s: cannot spill to %s: %s", self.label, folder, exc)
            return None
        self.counters["sink_spilled_rows"] += rows
        return folder

    def _emit(self, kind: str, reason: str | None, message: str) -> None:
        if self._report is not None:
            self._report(SinkStatus("xtrader", None, kind, reason, None, message))

    @property
    def pending_rows(self) -> int:
        """Rows buffered or spooled, not yet delivered."""
        return self._rows


def _merge(pending: list[tuple[str, pl.DataFrame]]) -> dict[str, pl.DataFrame]:
    by_channel: dict[str, list[pl.DataFrame]] = {}
    for channel, frame in pending:
        by_channel.setdefault(channel, []).append(frame)
    return {
        ch: frames[0] if len(frames) == 1 else pl.concat(frames, how="vertical_relaxed")
        for ch, frames in by_channel.items()
    }
