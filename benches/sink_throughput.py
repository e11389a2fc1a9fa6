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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=0.0, help="sim msg/s (0: flat out)")
    parser.add_argument(
        "--symbols", nargs="+", default=["BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT"]
    )
    parser.add_argument("--channels", nargs="+", default=["book"])
    args = parser.parse_args()
    print(json.dumps(run(args.rate, args.seconds, args.symbols, args.channels)))


if __name__ == "__main__":
    main()
