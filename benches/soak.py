"""Soak run: a fixed message rate into a Runtime for a long time, watching its memory.

The simulator runs in a child process (so the figures are the runtime's own memory) at
``--rate`` messages/s over ``--symbols`` spot symbols; a Runtime subscribed to all of them
hands every trade and quote to a light per-event strategy. VmRSS of this process is sampled
every second. Reported: messages handled, RSS at the end of the warm-up, final RSS (last
sample before the stop) and peak RSS (stop included), and the growth after warm-up
extrapolated to %/hour from a least-squares line through the samples between the warm-up and
the stop.

    python benches/soak.py --seconds 600 --rate 50000 --symbols 100 --out soak.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import xtrader as xt

SIM_CHILD = """
import sys
import xtrader as xt
symbols = sys.argv[1].split(",")
sim = xt.Simulator(symbols=symbols, rate=float(sys.argv[2]), seed=11, depth_levels=100,
                   max_client_msgs_per_s=None, worker_threads=1)
sim.start()
print(sim.ws_url, sim.rest_url, flush=True)
sys.stdin.read()  # until the parent closes our stdin
sim.stop()
"""


class Light(xt.Strategy):
    """Counts trades and quotes and keeps the last price per symbol: a light strategy."""

    def __init__(self) -> None:
        self.trades = 0
        self.quotes = 0
        self.last: dict[str, float] = {}

    def on_trade(self, trade: xt.Trade) -> None:
        self.trades += 1
        self.last[trade.symbol] = trade.price

    def on_bbo(self, quote: xt.Quote) -> None:
        self.quotes += 1


def rss_kib(pid: int | str = "self") -> int:
    """VmRSS of a process, KiB (0 when unreadable)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def slope_per_s(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (t, y) points; 0 for fewer than two distinct times."""
    n = len(points)
    if n < 2:
        return 0.0
    mt = sum(t for t, _ in points) / n
    my = sum(y for _, y in points) / n
    var = sum((t - mt) ** 2 for t, _ in points)
    if var == 0:
        return 0.0
    return sum((t - mt) * (y - my) for t, y in points) / var


@dataclass
class Sampler:
    """Samples VmRSS of this process (and of the simulator child) every `period_s`."""

    sim_pid: int
    period_s: float = 1.0
    samples: list[tuple[float, int]] = field(default_factory=list)
    sim_peak_kib: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        t0 = time.monotonic()
        while not self._stop.is_set():
            self.samples.append((time.monotonic() - t0, rss_kib()))
            self.sim_peak_kib = max(self.sim_peak_kib, rss_kib(self.sim_pid))
            self._stop.wait(self.period_s)

    def stop(self) -> None:
        self._stop.set()


def summarize(samples: list[tuple[float, int]], warmup_s: float, run_s: float) -> dict[str, float]:
    """RSS figures (MiB) and the growth extrapolated to %/hour, fitted over the samples
    between the warm-up and the end of the run (`run_s`); the samples after it (stop, drain,
    flush) count for the peak only."""
    if not samples:
        raise ValueError("no RSS samples")
    running = [(t, kib / 1024) for t, kib in samples if t <= run_s] or [
        (samples[0][0], samples[0][1] / 1024)
    ]
    after = [(t, mib) for t, mib in running if t >= warmup_s]
    if len(after) < 2:  # a run shorter than its warm-up: use its second half
        after = running[len(running) // 2 :]
    warm_mib = after[0][1]
    per_s = slope_per_s(after)
    return {
        "warmup_s": warmup_s,
        "warmup_rss_mib": round(warm_mib, 2),
        "final_rss_mib": round(running[-1][1], 2),
        "peak_rss_mib": round(max(kib for _, kib in samples) / 1024, 2),
        "stop_peak_rss_mib": round(max([kib for t, kib in samples if t > run_s] or [0]) / 1024, 2),
        "growth_mib_per_hour": round(per_s * 3600, 3),
        "growth_pct_per_hour": round(100 * per_s * 3600 / warm_mib, 3) if warm_mib else 0.0,
        "post_warmup_samples": len(after),
    }


def soak(
    seconds: float, rate: float, n_symbols: int, warmup_s: float, sample_s: float = 1.0
) -> dict[str, Any]:
    """One soak run; returns the report."""
    symbols = [f"S{i}USDT" for i in range(n_symbols)]
    child = subprocess.Popen(
        [sys.executable, "-c", SIM_CHILD, ",".join(symbols), str(rate)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdin is not None
        ws_url, rest_url = child.stdout.readline().split()
        rt = xt.Runtime(queue_capacity=1 << 16, overflow="block", worker_threads=2)
        rt.subscribe("binance", symbols, ws_url=ws_url, rest_url=rest_url, depth_limit=100)
        strategy = Light()
        rt.add_strategy(strategy)
        sampler = Sampler(child.pid, sample_s)
        thread = threading.Thread(target=sampler.run, name="rss-sampler", daemon=True)
        t0 = time.perf_counter()
        thread.start()
        try:
            rt.run(duration=seconds)
        finally:
            sampler.stop()
            thread.join(timeout=5)
        wall = time.perf_counter() - t0
        stats = rt.stats()
    finally:
        if child.stdin is not None:
            child.stdin.close()
        try:
            child.wait(timeout=15)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        if child.stdout is not None:
            child.stdout.close()
    report: dict[str, Any] = {
        "rate": rate,
        "symbols": n_symbols,
        "messages": int(stats.get("messages", 0)),
        "messages_per_s": round(stats.get("messages", 0) / wall),
        "trades_seen": strategy.trades,
        "quotes_seen": strategy.quotes,
        "dispatched_events": int(stats.get("dispatched_events", 0)),
        "gaps": int(stats.get("gaps", 0)),
        "resyncs": int(stats.get("resyncs", 0)),
        "reconnects": int(stats.get("reconnects", 0)),
        "sim_peak_rss_mib": round(sampler.sim_peak_kib / 1024, 2),
        "machine": f"{platform.machine()} {os.cpu_count()} cpu, {platform.platform()}",
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
    }
    report["seconds"] = round(wall, 2)
    report.update(summarize(sampler.samples, warmup_s, seconds))
    report["rss_samples"] = [(round(t, 2), kib) for t, kib in sampler.samples]
    return report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=float, default=600.0)
    ap.add_argument("--rate", type=float, default=50_000.0)
    ap.add_argument("--symbols", type=int, default=100)
    ap.add_argument("--warmup", type=float, default=60.0, help="seconds excluded from the fit")
    ap.add_argument("--out", type=Path, default=Path("soak.json"))
    args = ap.parse_args()
    report = soak(args.seconds, args.rate, args.symbols, args.warmup)
    args.out.write_text(json.dumps(report, indent=1))
    shown = {k: v for k, v in report.items() if k != "rss_samples"}
    print(json.dumps(shown, indent=1))


if __name__ == "__main__":
    main()
