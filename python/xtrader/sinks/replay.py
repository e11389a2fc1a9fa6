"""Replay into sinks: a replay's frames and gap intervals written like a live run's."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from ..exceptions import XtraderError
from .gaps import GapTracker
from .host import SinkHost

if TYPE_CHECKING:
    from ..data import ReplayResult

__all__ = ["replay_to_sink"]


def replay_to_sink(result: ReplayResult, out: str | os.PathLike[str], fmt: str = "parquet") -> int:
    """Write a replay's trades, book updates, bbo and gaps through a sink into `out`.

    Returns:
        Rows written.

    Raises:
        XtraderError: When the sink fails.
    """
    from . import build_sink

    sink = build_sink(fmt, {"dir": str(Path(out))})
    sink.max_batch_rows = 1 << 62  # one delivery
    frames: dict[str, pl.DataFrame] = {
        "trades": result.trades,
        "book": result.book_updates,
        "bbo": result.bbo,
    }
    tracker = GapTracker()
    tracker.observe(result.statuses)
    gaps = tracker.take(final=True)
    if gaps is not None:
        frames["gaps"] = gaps
    failures: list[str] = []
    host = SinkHost(sink, lambda st: failures.append(st.message))
    now = time.monotonic()
    host.open(now)
    host.add(frames, now)
    host.close(now)
    if failures:
        raise XtraderError("; ".join(failures))
    return host.counters["sink_delivered_rows"]
