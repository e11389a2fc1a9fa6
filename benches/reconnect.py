"""Reconnect run: how long after the simulator drops every connection does data flow again?

The simulator (Binance spot profile, loopback) closes every websocket `--drops` times; for
each drop this measures, from the drop, the time to the connector's ``connected`` status
to the first market event received on the new connection (its ``ts_recv``), and to every
book being live again (resynced from a fresh snapshot).

    python benches/reconnect.py --drops 20
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
from typing import Any

import xtrader as xt
from xtrader import _core

SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")


class Recorder(xt.Strategy):
    """Keeps the arrival time (monotonic ns) of statuses and market events."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.connected: list[int] = []
        self.market: list[int] = []

    def on_status(self, status: xt.Status) -> None:
        if status.kind == "connected":
            with self.lock:
                self.connected.append(time.time_ns())

    def on_trade(self, trade: xt.Trade) -> None:
        with self.lock:
            self.market.append(trade.ts_recv)

    def on_bbo(self, quote: xt.Quote) -> None:
        with self.lock:
            self.market.append(quote.ts_recv)


def _all_live(rt: xt.Runtime) -> bool:
    return all((b := rt.book("binance", s)) is not None and b.state == "live" for s in SYMBOLS)


def _first_after(values: list[int], t: int) -> int | None:
    return next((v for v in values if v > t), None)


def run(drops: int, rate: float = 2000.0, gap_s: float = 1.5) -> dict[str, Any]:
    """Drop the connections `drops` times; returns per-drop recovery times (ms)."""
    sim = _core.Simulator(symbols=list(SYMBOLS), rate=rate, seed=9)
    sim.start()
    rec = Recorder()
    rt = xt.Runtime()
    rt.subscribe("binance", SYMBOLS, ws_url=sim.ws_url, rest_url=sim.rest_url)
    rt.add_strategy(rec)
    thread = threading.Thread(target=rt.run, kwargs={"duration": 30 + drops * gap_s * 3})
    thread.start()
    to_connected: list[float] = []
    to_data: list[float] = []
    to_live: list[float] = []
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not _all_live(rt):
            time.sleep(0.05)
        for _ in range(drops):
            time.sleep(gap_s)
            t_drop = time.time_ns()
            sim.disconnect()
            limit = time.monotonic() + 10
            while time.monotonic() < limit:
                with rec.lock:
                    c = _first_after(rec.connected, t_drop)
                    d = _first_after(rec.market, c) if c is not None else None
                if d is not None:
                    break
                time.sleep(0.005)
            if c is None or d is None:
                raise RuntimeError("data did not flow again within 10 s of a drop")
            to_connected.append((c - t_drop) / 1e6)
            to_data.append((d - t_drop) / 1e6)
            while time.monotonic() < limit and not _all_live(rt):
                time.sleep(0.002)
            if not _all_live(rt):
                raise RuntimeError("books not live again within 10 s of a drop")
            to_live.append((time.time_ns() - t_drop) / 1e6)
        live = _all_live(rt)
    finally:
        rt.stop()
        thread.join(timeout=20)
        sim.stop()
    stats = rt.stats()
    return {
        "drops": drops,
        "to_connected_ms": _summary(to_connected),
        "to_data_ms": _summary(to_data),
        "to_books_live_ms": _summary(to_live),
        "books_live_after": live,
        "reconnects": stats.get("reconnects", 0),
        "gaps": stats.get("gaps", 0),
    }


def _summary(xs: list[float]) -> dict[str, float]:
    xs = sorted(xs)
    return {
        "min": round(xs[0], 1),
        "p50": round(statistics.median(xs), 1),
        "max": round(xs[-1], 1),
        "mean": round(statistics.fmean(xs), 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--drops", type=int, default=20)
    ap.add_argument("--rate", type=float, default=2000.0)
    args = ap.parse_args()
    print(json.dumps(run(args.drops, args.rate), indent=2))


if __name__ == "__main__":
    main()
