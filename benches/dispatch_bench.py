"""Dispatch benchmarks: events/s into a per-event callback and rows/s into ``on_batch``.

Three in-process measures over the same recorded trades (objects and Arrow tables the core
built from a simulator session):

- ``baseline``: the trivial callback called from a plain Python loop over pre-built objects
  (the Python-side limit);
- ``dispatch``: the same callback reached through the `Dispatcher` (batches of 4096, as the
  runtime hands them over);
- ``on_batch``: the Arrow tables made into polars frames and handed to ``on_batch``;

and a load run through the simulator (flat out) for each delivery mode.

    python benches/dispatch_bench.py --events 500000 --seconds 8
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from typing import Any

import polars as pl

import xtrader as xt
from xtrader import _core
from xtrader._dispatch import Dispatcher

CHUNK = 4096


class Trivial(xt.Strategy):
    """Counts trades: the cheapest per-event callback."""

    def __init__(self) -> None:
        self.n = 0

    def on_trade(self, trade: xt.Trade) -> None:
        self.n += 1


class TrivialQuotes(Trivial):
    """Counts trades and quotes (the load run subscribes to both)."""

    def on_bbo(self, quote: xt.Quote) -> None:
        self.n += 1


class Rows(xt.Strategy):
    """Counts the rows handed to ``on_batch`` per channel."""

    def __init__(self) -> None:
        self.rows: dict[str, int] = {}

    def on_batch(self, channel: str, frame: pl.DataFrame) -> None:
        self.rows[channel] = self.rows.get(channel, 0) + frame.height


@dataclass
class Sample:
    """Trades of a simulator session as objects and as the core's Arrow tables."""

    trades: list[xt.Trade]
    tables: list[Any]
    table_rows: int


def collect(seconds: float = 1.0, symbols: tuple[str, ...] = ("BTCUSDT", "ETHUSDT")) -> Sample:
    """Record trades flat out from a simulator: objects and tables of the same events."""
    sim = _core.Simulator(symbols=list(symbols), rate=0, seed=7)
    sim.start()
    engine = _core.Engine()
    try:
        engine.add_feed(
            "binance", list(symbols), ["trades"], ws_url=sim.ws_url, rest_url=sim.rest_url
        )
        engine.start()
        trades: list[xt.Trade] = []
        tables: list[Any] = []
        rows = 0
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            events, frames = engine.next_frames(CHUNK, 100, True)
            trades.extend(ev for ev in events if isinstance(ev, xt.Trade))
            table = frames.get("trades")
            if table is not None:
                tables.append(table)
                rows += pl.DataFrame(table).height
        engine.stop()
    finally:
        sim.stop()
    return Sample(trades, tables, rows)


def grow(items: list[Any], n: int) -> list[Any]:
    """`items` repeated up to `n` elements."""
    if not items:
        raise RuntimeError("nothing collected")
    return (items * (n // len(items) + 1))[:n]


def baseline(trades: list[xt.Trade]) -> int:
    """The callback from a plain loop; returns the calls made."""
    strategy = Trivial()
    callback = strategy.on_trade
    for trade in trades:
        callback(trade)
    return strategy.n


def dispatch(trades: list[xt.Trade]) -> int:
    """The callback through the dispatcher, in runtime-sized batches; returns the calls."""
    strategy = Trivial()
    dispatcher = Dispatcher([strategy])
    for start in range(0, len(trades), CHUNK):
        dispatcher.dispatch(trades[start : start + CHUNK])
    return strategy.n


def on_batch(tables: list[Any]) -> int:
    """Arrow tables to polars frames to ``on_batch``; returns the rows delivered."""
    strategy = Rows()
    dispatcher = Dispatcher([strategy])
    for table in tables:
        dispatcher.dispatch_frames({"trades": table})
    return strategy.rows.get("trades", 0)


def timed(fn: Any, arg: Any, repeat: int = 5) -> tuple[int, float]:
    """(result, best seconds of `repeat` runs)."""
    best = float("inf")
    result = 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn(arg)
        best = min(best, time.perf_counter() - t0)
    return result, best


def load_run(mode: str, seconds: float, symbols: tuple[str, ...]) -> dict[str, Any]:
    """Simulator flat out into the runtime, with a per-event strategy or an ``on_batch`` one."""
    sim = _core.Simulator(symbols=list(symbols), rate=0, seed=7, worker_threads=1)
    sim.start()
    try:
        rt = xt.Runtime(queue_capacity=1 << 16)
        rt.subscribe(
            "binance", list(symbols), channels=("trades", "bbo"), ws_url=sim.ws_url,
            rest_url=sim.rest_url,
        )  # fmt: skip
        strategy: xt.Strategy = TrivialQuotes() if mode == "events" else Rows()
        rt.add_strategy(strategy)
        t0 = time.perf_counter()
        rt.run(duration=seconds)
        wall = time.perf_counter() - t0
        stats = rt.stats()
    finally:
        sim.stop()
    # quotes conflated on a full queue (the default quote policy) never reach a strategy:
    # a newer quote of the same symbol replaced each
    conflated = stats.get("queue_conflated", 0)
    events = stats.get("trades", 0) + stats.get("bbo", 0) - conflated
    out: dict[str, Any] = {"mode": mode, "seconds": round(wall, 2)}
    out["core_events_per_s"] = round(events / wall)
    out["conflated_quotes"] = conflated
    if isinstance(strategy, Trivial):
        out["callbacks_per_s"] = round(strategy.n / wall)
    else:
        assert isinstance(strategy, Rows)
        out["on_batch_rows_per_s"] = round(sum(strategy.rows.values()) / wall)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--events", type=int, default=500_000)
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--symbols", nargs="+", default=["BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT"])
    args = ap.parse_args()
    sample = collect(1.5)
    trades = grow(sample.trades, args.events)
    reps = max(1, args.events // max(1, sample.table_rows))
    tables = sample.tables * reps
    rows = sample.table_rows * reps
    n, t = timed(baseline, trades)
    base = n / t
    print(json.dumps({"bench": "baseline_plain_loop", "events": n, "events_per_s": round(base)}))
    n, t = timed(dispatch, trades)
    print(
        json.dumps(
            {
                "bench": "dispatch_per_event",
                "events": n,
                "events_per_s": round(n / t),
                "vs_baseline": round(n / t / base, 2),
            }
        )
    )
    n, t = timed(on_batch, tables)
    assert n == rows
    print(
        json.dumps(
            {
                "bench": "on_batch",
                "rows": n,
                "tables": len(tables),
                "rows_per_s": round(n / t),
                "mean_rows_per_table": round(n / len(tables), 1),
            }
        )
    )
    for mode in ("events", "batch"):
        print(json.dumps(load_run(mode, args.seconds, tuple(args.symbols))), flush=True)


if __name__ == "__main__":
    main()
