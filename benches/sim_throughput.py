"""Load run: simulator -> Binance connector over loopback -> Python strategy callbacks.

Reports websocket messages/s handled by the core and events/s delivered into per-event
Python callbacks, at fixed simulator rates and flat out (rate 0).

    python benches/sim_throughput.py --seconds 10 --rates 10000 50000 0
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from procstat import thread_cpu_seconds

import xtrader as xt
from xtrader import _core


class Counter(xt.Strategy):
    """A trivial per-event strategy: counts what it is handed."""

    def __init__(self) -> None:
        self.trades = 0
        self.quotes = 0
        self.books = 0

    def on_trade(self, trade: Any) -> None:
        self.trades += 1

    def on_bbo(self, quote: Any) -> None:
        self.quotes += 1

    def on_book(self, book: Any) -> None:
        self.books += 1


def run(rate: float, seconds: float, symbols: list[str]) -> dict[str, float]:
    """One load run; returns its figures."""
    sim = _core.Simulator(symbols=symbols, rate=rate, seed=7, worker_threads=1)
    sim.start()
    try:
        rt = xt.Runtime(queue_capacity=1 << 16)
        rt.subscribe("binance", symbols, ws_url=sim.ws_url, rest_url=sim.rest_url)
        counter = Counter()
        rt.add_strategy(counter)
        t0 = time.perf_counter()
        cpu0 = time.process_time()
        sim_cpu0 = thread_cpu_seconds("xtrader-sim")
        rt.run(duration=seconds)
        wall = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
        sim_cpu = thread_cpu_seconds("xtrader-sim") - sim_cpu0
        stats = rt.stats()
        frames_sent = sim.stats()["frames_sent"]
    finally:
        sim.stop()
    callbacks = counter.trades + counter.quotes + counter.books
    events = stats.get("trades", 0) + stats.get("bbo", 0) + stats.get("book_updates", 0)
    return {
        "rate": rate,
        "seconds": round(wall, 2),
        "messages_per_s": round(stats.get("messages", 0) / wall),
        "events_per_s": round(events / wall),
        "callbacks_per_s": round(callbacks / wall),
        "process_cpu_share": round(cpu / wall, 2),
        # the simulator's own threads: what serving the frames costs (its share of the 2
        # cores is not available to the client)
        "sim_cpu_ns_per_frame": round(sim_cpu / frames_sent * 1e9) if frames_sent else 0,
        "gaps": stats.get("gaps", 0),
        "queue_high_water": stats.get("queue_high_water", 0),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--rates", type=float, nargs="+", default=[10_000, 50_000, 0])
    ap.add_argument("--symbols", nargs="+", default=["BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT"])
    args = ap.parse_args()
    for rate in args.rates:
        print(json.dumps(run(rate, args.seconds, args.symbols)), flush=True)


if __name__ == "__main__":
    main()
