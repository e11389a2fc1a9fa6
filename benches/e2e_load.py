"""End-to-end load: simulator -> connector over loopback -> Python callback, with latency.

In one process: the built-in simulator (synthetic Binance spot or OKX market) and a Runtime
subscribed to it, with a strategy whose callbacks take ``time.time_ns()`` at entry and
subtract the event's ``ts_recv`` (integer ns, stamped by the core when the frame was read from
the socket). For each simulator rate (0 = flat out) it reports the websocket messages and
events per second the core handled and the p50/p95/p99/p99.9 latency, socket read to callback
entry, over the trades and quotes delivered after a warm-up (connect and book sync).

    python benches/e2e_load.py --seconds 8 --rates 10000 100000 0 --json e2e.json

Latency samples are kept in a fixed-size ring (the most recent ``--samples`` of them), so a
run's memory is bounded whatever its rate.
"""

from __future__ import annotations

import argparse
import json
import time
from array import array
from collections.abc import Sequence
from time import time_ns
from typing import Any

import xtrader as xt
from xtrader import _core

BINANCE_SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT")
OKX_SYMBOLS = ("BTC-USDT", "ETH-USDT", "BTC-USDT-SWAP", "ETH-USDT-SWAP")
PERCENTILES = (50.0, 95.0, 99.0, 99.9)


class Ring:
    """The last `capacity` integer samples, in a preallocated array (no growth)."""

    def __init__(self, capacity: int) -> None:
        if capacity <= 0:
            raise ValueError("capacity must be positive")
        self.capacity = capacity
        self.buf = array("q", bytes(8 * capacity))
        self.count = 0

    def add(self, value: int) -> None:
        self.buf[self.count % self.capacity] = value
        self.count += 1

    def extend(self, values: Sequence[int]) -> None:
        """Add many samples at once (slice copies, wrapping around the ring)."""
        skipped = max(0, len(values) - self.capacity)  # overwritten anyway
        kept = values[skipped:]
        at = (self.count + skipped) % self.capacity
        head = min(len(kept), self.capacity - at)
        self.buf[at : at + head] = array("q", kept[:head])
        if len(kept) > head:
            self.buf[: len(kept) - head] = array("q", kept[head:])
        self.count += len(values)

    def values(self) -> list[int]:
        """The samples held (at most `capacity`), unordered."""
        return list(self.buf[: min(self.count, self.capacity)])


def percentiles(samples: Sequence[int], points: Sequence[float] = PERCENTILES) -> list[float]:
    """Nearest-rank percentiles of `samples`, in the units of the samples."""
    if not samples:
        return [float("nan")] * len(points)
    ordered = sorted(samples)
    n = len(ordered)
    out = []
    for p in points:
        rank = max(1, min(n, int(-(-p * n // 100))))  # ceil(p/100 * n)
        out.append(float(ordered[rank - 1]))
    return out


class _Probe(xt.Strategy):
    """Latency rings (trades and quotes; books) filled after a warm-up of `warmup_s`."""

    def __init__(self, capacity: int, warmup_s: float) -> None:
        self.ring = Ring(capacity)
        self.books = Ring(max(1, capacity // 8))
        self.warmup_s = warmup_s
        self.start_ns = 0
        self.calls = 0
        self.rows = 0

    def on_start(self, ctx: Any) -> None:
        self.start_ns = time.time_ns() + int(self.warmup_s * 1e9)


class LatencyProbe(_Probe):
    """Records socket-read-to-callback latency of every trade and quote after `warmup_s`.

    One Python frame per trade or quote (the callback itself, writing the ring in place), as
    the peer benchmark's cryptofeed callback is one frame: the probe's own cost stays small
    beside what it measures."""

    def on_trade(self, event: Any) -> None:
        now = time_ns()
        self.calls += 1
        if now >= self.start_ns:
            ring = self.ring
            ring.buf[ring.count % ring.capacity] = now - event.ts_recv
            ring.count += 1

    on_bbo = on_trade  # type: ignore[assignment]  # one callback: both events carry ts_recv

    def on_book(self, book: Any) -> None:
        # one call per symbol per delivered batch; ts_recv is the latest update's
        now = time.time_ns()
        if now >= self.start_ns:
            self.books.add(now - book.ts_recv)


class BatchProbe(_Probe):
    """The columnar twin of `LatencyProbe`: overrides only `on_batch`, so the core builds Arrow
    tables and no per-event objects; every trade and quote row's latency is the frame's
    arrival at the callback minus that row's `ts_recv`."""

    def on_batch(self, channel: str, frame: Any) -> None:
        now = time.time_ns()
        self.calls += 1
        self.rows += frame.height
        if now < self.start_ns:
            return
        ring = self.books if channel == "book" else self.ring
        if channel in ("trades", "bbo", "book"):
            ring.extend((now - frame.get_column("ts_recv")).to_list())


DELIVERIES = ("objects", "batch")


def make_sim(
    exchange: str, rate: float, symbols: Sequence[str], paced: bool = False
) -> _core.Simulator:
    """The load's simulator; `paced` (Binance only): one market step at a time, each at its
    own instant, instead of 1 ms ticks of rate/1000 messages."""
    if exchange == "okx":
        if paced:
            raise ValueError("paced: the simulator paces the synthetic Binance market only")
        return _core.Simulator(symbols=[], okx_symbols=list(symbols), rate=rate, seed=7)
    return _core.Simulator(symbols=list(symbols), rate=rate, seed=7, worker_threads=1, paced=paced)


def run(
    rate: float,
    seconds: float,
    exchange: str = "binance",
    symbols: Sequence[str] | None = None,
    samples: int = 1 << 21,
    warmup_s: float = 1.0,
    busy_poll_us: int = 0,
    delivery: str = "objects",
    worker_threads: int = 2,
    paced: bool = False,
) -> dict[str, Any]:
    """One load run at `rate` messages/s (0 = flat out); returns its figures.

    `busy_poll_us`: the Runtime's spin on an empty bus before it sleeps (0 = off).
    `worker_threads`: the Runtime's I/O threads; 0 = inline (the strategy thread reads the
    sockets while it waits).
    `paced`: the simulator sends one market step at a time instead of 1 ms bursts.
    `delivery`: ``objects`` (per-event `on_trade`/`on_bbo`/`on_book`) or ``batch``
    (`on_batch` frames only).
    """
    if delivery not in DELIVERIES:
        raise ValueError(f"delivery must be one of {DELIVERIES}, not {delivery!r}")
    syms = list(symbols or (OKX_SYMBOLS if exchange == "okx" else BINANCE_SYMBOLS))
    sim = make_sim(exchange, rate, syms, paced and rate > 0)
    sim.start()
    try:
        rt = xt.Runtime(
            queue_capacity=1 << 16, busy_poll_us=busy_poll_us, worker_threads=worker_threads
        )
        rt.subscribe(exchange, syms, ws_url=sim.ws_url, rest_url=sim.rest_url)
        probe: _Probe = (
            BatchProbe(samples, warmup_s)
            if delivery == "batch"
            else LatencyProbe(samples, warmup_s)
        )
        rt.add_strategy(probe)
        t0 = time.perf_counter()
        cpu0 = time.process_time()
        rt.run(duration=seconds)
        wall = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
        stats = rt.stats()
        stages = rt.latency()
    finally:
        sim.stop()
    events = stats.get("trades", 0) + stats.get("bbo", 0) + stats.get("book_updates", 0)
    lat = percentiles(probe.ring.values())
    book_lat = percentiles(probe.books.values())
    return {
        "exchange": exchange,
        "rate": rate,
        "busy_poll_us": busy_poll_us,
        "delivery": delivery,
        "worker_threads": worker_threads,
        "paced": paced and rate > 0,
        "seconds": round(wall, 3),
        "messages": stats.get("messages", 0),
        "messages_per_s": round(stats.get("messages", 0) / wall),
        "events": events,
        "events_per_s": round(events / wall),
        "callbacks": probe.calls,
        "rows": probe.rows if isinstance(probe, BatchProbe) else None,
        "samples": probe.ring.count,
        "samples_kept": min(probe.ring.count, probe.ring.capacity),
        "p50_us": round(lat[0] / 1e3, 1),
        "p95_us": round(lat[1] / 1e3, 1),
        "p99_us": round(lat[2] / 1e3, 1),
        "p999_us": round(lat[3] / 1e3, 1),
        "book_p50_us": round(book_lat[0] / 1e3, 1),
        "book_p99_us": round(book_lat[2] / 1e3, 1),
        "process_cpu_share": round(cpu / wall, 2),
        "gaps": stats.get("gaps", 0),
        "queue_high_water": stats.get("queue_high_water", 0),
        "stage_latency": stage_summary(stages),
    }


def stage_summary(stages: dict[tuple[str, str], dict[str, int]]) -> dict[str, dict[str, float]]:
    """The core's per-stage latency (from the socket read), µs: `exchange/stage` -> p50, p99,
    p99.9 and the sample count (`Runtime.latency()`, quantiles within 12.5 %)."""
    return {
        f"{ex}/{stage}": {
            "p50_us": round(row["p50_ns"] / 1e3, 1),
            "p99_us": round(row["p99_ns"] / 1e3, 1),
            "p999_us": round(row["p999_ns"] / 1e3, 1),
            "count": row["count"],
        }
        for (ex, stage), row in sorted(stages.items())
    }


def io_threads(row: dict[str, Any]) -> str:
    """The run's I/O threads as the table shows them (0 is the inline mode)."""
    n = row.get("worker_threads", 2)
    return "0 (inline)" if n == 0 else str(n)


def table(rows: Sequence[dict[str, Any]]) -> str:
    """A Markdown table of the runs (the format RESULTS.md uses)."""
    head = (
        "| exchange | delivery | I/O threads | busy poll µs | sim rate (msg/s) | sim sends "
        "| messages/s | events/s | p50 µs | p95 µs | p99 µs | p99.9 µs | samples "
        "| CPU (cores) |\n" + "|---" * 14 + "|"
    )
    lines = [head]
    for r in rows:
        rate = "flat out" if r["rate"] == 0 else f"{r['rate']:,.0f}"
        lines.append(
            f"| {r['exchange']} | {r['delivery']} | {io_threads(r)} | {r['busy_poll_us']} "
            f"| {rate} | {'paced' if r.get('paced') else '1 ms ticks'} "
            f"| {r['messages_per_s']:,} "
            f"| {r['events_per_s']:,} | {r['p50_us']} | {r['p95_us']} | {r['p99_us']} "
            f"| {r['p999_us']} | {r['samples_kept']:,} | {r['process_cpu_share']} |"
        )
    return "\n".join(lines)


def plot(rows: Sequence[dict[str, Any]], path: str) -> None:
    """Latency percentiles against the measured message rate, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ordered = sorted(rows, key=lambda r: r["messages_per_s"])
    x = [r["messages_per_s"] for r in ordered]
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for key, label in (
        ("p50_us", "p50"),
        ("p95_us", "p95"),
        ("p99_us", "p99"),
        ("p999_us", "p99.9"),
    ):
        ax.plot(x, [r[key] for r in ordered], marker="o", label=label)
    for r in ordered:
        tag = "flat out" if r["rate"] == 0 else f"sim {r['rate']:,.0f}/s"
        ax.annotate(
            tag,
            (r["messages_per_s"], r["p50_us"]),
            textcoords="offset points",
            xytext=(0, -14),
            ha="center",
            fontsize=8,
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("messages/s handled (log)")
    ax.set_ylabel("socket read -> Python callback (µs, log)")
    exchanges = sorted({r["exchange"] for r in ordered})
    ax.set_title(f"xtrader end-to-end latency vs rate ({', '.join(exchanges)} simulator, 2 vCPU)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--rates", type=float, nargs="+", default=[10_000, 100_000, 0])
    ap.add_argument("--exchange", choices=["binance", "okx"], default="binance")
    ap.add_argument("--symbols", nargs="+", default=None)
    ap.add_argument("--samples", type=int, default=1 << 21, help="latency ring size")
    ap.add_argument("--warmup", type=float, default=1.0, help="seconds not sampled at start")
    ap.add_argument("--json", default=None, help="write the results to this file")
    ap.add_argument("--png", default=None, help="write the latency-vs-rate chart here")
    ap.add_argument(
        "--busy-poll-us", type=int, default=0, help="Runtime busy_poll_us (0 = sleep at once)"
    )
    ap.add_argument(
        "--delivery",
        choices=DELIVERIES,
        default="objects",
        help="per-event callbacks (objects) or columnar on_batch frames (batch)",
    )
    ap.add_argument(
        "--paced",
        action="store_true",
        help="the simulator sends one market step at a time (no 1 ms bursts)",
    )
    ap.add_argument(
        "--worker-threads",
        type=int,
        default=2,
        help="Runtime worker_threads (0 = inline: the strategy thread reads the sockets)",
    )
    args = ap.parse_args(argv)
    rows = []
    for rate in args.rates:
        row = run(
            rate,
            args.seconds,
            args.exchange,
            args.symbols,
            args.samples,
            args.warmup,
            args.busy_poll_us,
            args.delivery,
            args.worker_threads,
            args.paced,
        )
        print(json.dumps(row), flush=True)
        rows.append(row)
    print(table(rows))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)
    if args.png:
        plot(rows, args.png)


if __name__ == "__main__":
    main()
