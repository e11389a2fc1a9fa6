"""Latency and rate probe of the JetStream bus benchmark (benches/jetstream_bus.py).

The same strategy runs at both ends of the bus: in the collector process
(``[[strategies]] path = "bus_probe:BusProbe"``, benches/ on ``PYTHONPATH``) and in the
benchmark's consumer runtime. At every ``on_trade``/``on_bbo`` entry it takes
``time.time_ns()`` and keeps the pair (now, now - ``ts_recv``); ``ts_recv`` is the collector's
socket-read stamp, carried on the bus, so in the consumer the difference is collector socket
read -> consumer callback on one clock. ``on_book`` (one call per changed book per delivered
batch; the book's ``ts_recv`` is its latest update's) is kept apart. A timer samples the
dispatcher's counters every `sample_s`, so event rates can be taken over any window, without
the start-up and the shutdown.

Samples live in fixed-size rings (the most recent `samples`), so memory is bounded.
"""

from __future__ import annotations

import json
import math
import time
from array import array
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from e2e_load import percentiles

import xtrader as xt
from xtrader.strategy import Context

COUNTERS = ("dispatched_trades", "dispatched_bbo", "dispatched_book_updates", "bus_received")
"""Counters sampled by the timer (``rt.stats()`` keys), after the sample time."""


class PairRing:
    """The last `capacity` (time, value) integer pairs, preallocated."""

    def __init__(self, capacity: int) -> None:
        if capacity <= 0:
            raise ValueError("capacity must be positive")
        self.capacity = capacity
        self.times = array("q", bytes(8 * capacity))
        self.values = array("q", bytes(8 * capacity))
        self.count = 0

    def add(self, t: int, value: int) -> None:
        i = self.count % self.capacity
        self.times[i] = t
        self.values[i] = value
        self.count += 1

    def within(self, start_ns: int, end_ns: int) -> list[int]:
        """Values whose time is in [start_ns, end_ns] (of the ones still held), unordered."""
        n = min(self.count, self.capacity)
        times, values = self.times, self.values
        return [values[i] for i in range(n) if start_ns <= times[i] <= end_ns]


def window_rates(
    samples: Sequence[Sequence[int]], start_ns: int, end_ns: int
) -> tuple[float, list[int]]:
    """Seconds between the first and the last counter sample inside [start_ns, end_ns], and
    each counter's increase over them (zeros and 0.0 with fewer than two samples).

    `samples` rows are ``(t_ns, *counters)`` in time order.
    """
    inside = [s for s in samples if start_ns <= s[0] <= end_ns]
    if len(inside) < 2:
        width = len(samples[0]) - 1 if samples else len(COUNTERS)
        return 0.0, [0] * width
    first, last = inside[0], inside[-1]
    return (last[0] - first[0]) / 1e9, [b - a for a, b in zip(first[1:], last[1:], strict=True)]


def latency_fields(prefix: str, values: list[int]) -> dict[str, float]:
    """``<prefix>p50_us`` .. ``<prefix>p999_us`` of ns samples (NaN when empty)."""
    p = percentiles(values)
    return {
        f"{prefix}p50_us": round(p[0] / 1e3, 1),
        f"{prefix}p95_us": round(p[1] / 1e3, 1),
        f"{prefix}p99_us": round(p[2] / 1e3, 1),
        f"{prefix}p999_us": round(p[3] / 1e3, 1),
    }


class BusProbe(xt.Strategy):
    """Latency (callback entry - ``ts_recv``) of every trade and quote, per-book latency, and
    sampled counters; see the module docstring.

    Args:
        out: JSON file the summary is written to by ``on_stop`` ("" = none).
        warmup_s: Seconds after ``on_start`` left out when no `window` file is given.
        samples: Capacity of the latency rings.
        window: JSON file ``{"start_ns", "end_ns"}`` read by ``on_stop``: the window to
            summarize (the consumer's, written by the benchmark before it stops the
            collector). Missing: from ``on_start`` + `warmup_s` to the last counter sample.
        sample_s: Seconds between counter samples.
        stop_after_messages: Stop the runtime once ``bus_received`` reaches it (0 = never).
        stall_s: With `stop_after_messages`: also stop when ``bus_received`` has not moved for
            this long (a bounded catch-up).
    """

    def __init__(
        self,
        out: str = "",
        warmup_s: float = 2.0,
        samples: int = 1 << 21,
        window: str = "",
        sample_s: float = 0.2,
        stop_after_messages: int = 0,
        stall_s: float = 10.0,
    ) -> None:
        super().__init__()
        self.out = out
        self.warmup_s = warmup_s
        self.window = window
        self.sample_s = sample_s
        self.stop_after = stop_after_messages
        self.stall_ns = int(stall_s * 1e9)
        self.lat = PairRing(samples)
        self.books = PairRing(max(1, samples // 8))
        self.counter_samples: list[tuple[int, ...]] = []
        self.start_ns = 0
        self.first_event_ns = 0
        self.last_event_ns = 0
        self.ctx: Context | None = None
        self._moved_ns = 0
        self._received = 0

    # ------------------------------------------------------------------------- callbacks

    def on_start(self, ctx: Context) -> None:
        self.ctx = ctx
        self.start_ns = time.time_ns()
        self._moved_ns = self.start_ns
        ctx.schedule(self.sample_s, self._sample)

    def on_trade(self, trade: xt.Trade) -> None:
        now = time.time_ns()
        self.lat.add(now, now - trade.ts_recv)
        if not self.first_event_ns:
            self.first_event_ns = now
        self.last_event_ns = now

    def on_bbo(self, quote: xt.Quote) -> None:
        now = time.time_ns()
        self.lat.add(now, now - quote.ts_recv)
        if not self.first_event_ns:
            self.first_event_ns = now
        self.last_event_ns = now

    def on_book(self, book: xt.Book) -> None:
        now = time.time_ns()
        self.books.add(now, now - book.ts_recv)
        if not self.first_event_ns:
            self.first_event_ns = now
        self.last_event_ns = now

    def _sample(self) -> None:
        assert self.ctx is not None
        stats = self.ctx.stats()
        now = time.time_ns()
        row = (now, *(int(stats.get(key, 0)) for key in COUNTERS))
        self.counter_samples.append(row)
        if not self.stop_after:
            return
        received = row[-1]
        if received != self._received:
            self._received = received
            self._moved_ns = now
        if received >= self.stop_after or now - self._moved_ns > self.stall_ns:
            self.ctx.stop()

    def on_stop(self) -> None:
        if not self.out:
            return
        start_ns, end_ns = self.default_window()
        if self.window:
            try:
                win = json.loads(Path(self.window).read_text())
                start_ns, end_ns = int(win["start_ns"]), int(win["end_ns"])
            except (OSError, ValueError, KeyError, TypeError):
                pass  # no consumer window: our own
        out = Path(self.out)
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_text(json.dumps(self.summary(start_ns, end_ns), indent=1))
        tmp.replace(out)

    # ------------------------------------------------------------------------- figures

    def default_window(self) -> tuple[int, int]:
        """From ``on_start`` + `warmup_s` to the last counter sample (or now)."""
        end = self.counter_samples[-1][0] if self.counter_samples else time.time_ns()
        return self.start_ns + int(self.warmup_s * 1e9), end

    def summary(self, start_ns: int, end_ns: int) -> dict[str, Any]:
        """Rates and latency percentiles over [start_ns, end_ns] (ns since the epoch)."""
        seconds, deltas = window_rates(self.counter_samples, start_ns, end_ns)
        trades, bbo, book_updates, received = deltas
        events = trades + bbo + book_updates
        lat = self.lat.within(start_ns, end_ns)
        books = self.books.within(start_ns, end_ns)
        out: dict[str, Any] = {
            "window_start_ns": start_ns,
            "window_end_ns": end_ns,
            "window_s": round(seconds, 3),
            "events": events,
            "events_per_s": round(events / seconds) if seconds > 0 else 0,
            "trades": trades,
            "bbo": bbo,
            "book_updates": book_updates,
            "bus_received": received,
            "bus_received_per_s": round(received / seconds) if seconds > 0 else 0,
            "samples": len(lat),
            "samples_total": self.lat.count,
            "book_samples": len(books),
            "first_event_ns": self.first_event_ns,
            "last_event_ns": self.last_event_ns,
        }
        out.update(latency_fields("", lat))
        out.update(latency_fields("book_", books))
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in out.items()}
