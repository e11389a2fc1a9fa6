"""Load run: simulator -> connector -> columnar frames -> Parquet sink, over loopback.

Reports book-update rows/s (and all rows/s) written to Parquet, with the process's CPU (all
threads, in cores) and the Python main thread's CPU share (the runtime loop, frame building
and the sink run on it).

    python benches/sink_throughput.py --seconds 10 --rate 0
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import polars as pl

import xtrader as xt
from xtrader import _core
from xtrader.sinks import ParquetSink


def run(rate: float, seconds: float, symbols: list[str], channels: list[str]) -> dict[str, float]:
    """One load run; returns its figures."""
    out = Path(tempfile.mkdtemp(prefix="xt-sink-bench-"))
    sim = _core.Simulator(symbols=symbols, rate=rate, seed=7, worker_threads=1)
    sim.start()
    try:
        rt = xt.Runtime(queue_capacity=1 << 17)
        rt.subscribe(
            "binance", symbols, channels=channels, ws_url=sim.ws_url, rest_url=sim.rest_url
        )
        sink = ParquetSink(out, flush_interval_s=1.0, max_batch_rows=1 << 20)
        rt.add_sink(sink)
        t0 = time.perf_counter()
        cpu0 = time.process_time()
        th0 = time.thread_time()
        rt.run(duration=seconds)
        wall = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
        thread = time.thread_time() - th0
        stats = rt.stats()
    finally:
        sim.stop()
    book = pl.scan_parquet(str(out / "book" / "**" / "*.parquet")).select(pl.len()).collect()
    book_rows = int(book.item())
    size = sum(p.stat().st_size for p in out.rglob("*.parquet"))
    shutil.rmtree(out, ignore_errors=True)
    return {
        "seconds": round(wall, 2),
        "messages_per_s": round(stats.get("messages", 0) / wall),
        "book_rows_per_s": round(book_rows / wall),
        "rows_per_s": round(stats["parquet_rows"] / wall),
        "rows": stats["parquet_rows"],
        "parquet_mb": round(size / 1e6, 1),
        "process_cpu_cores": round(cpu / wall, 2),
        "python_thread_cpu_share": round(thread / wall, 2),
        "gaps": stats.get("gaps", 0),
        "sink_failures": stats["sink_failures"],
    }


def synthetic(seconds: float, batch: int) -> dict[str, float]:
    """The sink alone: core-shaped book frames of `batch` rows (4 symbols) delivered through
    a `SinkHost` as the runtime does, for `seconds`; every file finalized at the end."""
    from xtrader.sinks import SinkHost

    out = Path(tempfile.mkdtemp(prefix="xt-sink-bench-"))
    symbols = ["BTC-USDT", "ETH-USDT", "SOL-USDT", "BNB-USDT"]
    t0_ns = time.time_ns()
    frame = pl.DataFrame(
        {
            "exchange": ["binance"] * batch,
            "symbol": [symbols[i % 4] for i in range(batch)],
            "ts_exchange": [t0_ns + i * 1000 for i in range(batch)],
            "ts_recv": [t0_ns + i * 1000 for i in range(batch)],
            "side": ["bid" if i % 2 else "ask" for i in range(batch)],
            "price": [60000.0 + (i % 500) * 0.01 for i in range(batch)],
            "size": [(i % 97) * 0.001 for i in range(batch)],
            "is_snapshot": [False] * batch,
            "seq": list(range(batch)),
        },
        schema={
            "exchange": pl.String,
            "symbol": pl.String,
            "ts_exchange": pl.Int64,
            "ts_recv": pl.Int64,
            "side": pl.String,
            "price": pl.Float64,
            "size": pl.Float64,
            "is_snapshot": pl.Boolean,
            "seq": pl.UInt64,
        },
    )
    sink = ParquetSink(out, flush_interval_s=1.0, max_batch_rows=1 << 20)
    host = SinkHost(sink)
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    host.open(time.monotonic())
    rows = 0
    while time.perf_counter() - t0 < seconds:
        host.add({"book": frame}, time.monotonic())
        host.tick(time.monotonic())
        rows += batch
    host.close(time.monotonic())
    wall = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    on_disk = int(
        pl.scan_parquet(str(out / "book" / "**" / "*.parquet")).select(pl.len()).collect().item()
    )
    size = sum(p.stat().st_size for p in out.rglob("*.parquet"))
    shutil.rmtree(out, ignore_errors=True)
    assert on_disk == rows, (on_disk, rows)
    return {
        "seconds": round(wall, 2),
        "book_rows_per_s": round(rows / wall),
        "rows": rows,
        "parquet_mb": round(size / 1e6, 1),
        "process_cpu_cores": round(cpu / wall, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=0.0, help="sim msg/s (0: flat out)")
    parser.add_argument(
        "--symbols", nargs="+", default=["BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT"]
    )
    parser.add_argument("--channels", nargs="+", default=["book"])
    parser.add_argument(
        "--synthetic",
        type=int,
        default=0,
        metavar="ROWS",
        help="measure the sink alone with frames of ROWS book rows (no simulator)",
    )
    args = parser.parse_args()
    if args.synthetic:
        print(json.dumps(synthetic(args.seconds, args.synthetic)))
    else:
        print(json.dumps(run(args.rate, args.seconds, args.symbols, args.channels)))


if __name__ == "__main__":
    main()
