"""The benchmarks run and compute the right things (no timing is asserted here)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import polars as pl
import pytest

import xtrader as xt

BENCHES = Path(__file__).resolve().parent.parent / "benches"


@pytest.fixture(scope="module")
def bench() -> Iterator[ModuleType]:
    sys.path.insert(0, str(BENCHES))
    try:
        import dispatch_bench

        yield dispatch_bench
    finally:
        sys.path.remove(str(BENCHES))


def test_dispatch_bench_outputs(bench: ModuleType) -> None:
    sample = bench.collect(0.5, ("BTCUSDT",))
    assert sample.trades and all(isinstance(t, xt.Trade) for t in sample.trades)
    # the tables hold exactly the trades the objects do
    rows = pl.concat([pl.DataFrame(t) for t in sample.tables])
    assert rows.height == sample.table_rows == len(sample.trades)
    assert rows["trade_id"].to_list() == [t.trade_id for t in sample.trades]
    trades = bench.grow(sample.trades, 10_000)
    assert len(trades) == 10_000
    assert bench.baseline(trades) == bench.dispatch(trades) == 10_000
    assert bench.on_batch(sample.tables * 3) == 3 * sample.table_rows
    result, seconds = bench.timed(bench.baseline, trades, repeat=2)
    assert result == 10_000 and seconds > 0


def test_dispatch_bench_load_runs(bench: ModuleType) -> None:
    events = bench.load_run("events", 1.0, ("BTCUSDT",))
    assert events["callbacks_per_s"] == events["core_events_per_s"] > 0
    batch = bench.load_run("batch", 1.0, ("BTCUSDT",))
    # on_batch receives every trade and quote the core produced
    assert batch["on_batch_rows_per_s"] == batch["core_events_per_s"] > 0
