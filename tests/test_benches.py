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


@pytest.fixture(scope="module")
def soak() -> Iterator[ModuleType]:
    sys.path.insert(0, str(BENCHES))
    try:
        import soak

        yield soak
    finally:
        sys.path.remove(str(BENCHES))


def test_soak_fit_and_summary(soak: ModuleType) -> None:
    # 100 MiB growing 1 MiB per second after a 10 s warm-up: 3600 MiB/h, 3600 %/h
    samples = [(float(t), (100 + max(0, t - 10)) * 1024) for t in range(30)]
    # two samples taken while stopping: in the peak, not in the fit nor the final figure
    samples += [(30.5, 150 * 1024), (31.0, 140 * 1024)]
    summary = soak.summarize(samples, warmup_s=10.0, run_s=30.0)
    assert summary["warmup_rss_mib"] == 100.0
    assert summary["final_rss_mib"] == 119.0
    assert summary["peak_rss_mib"] == summary["stop_peak_rss_mib"] == 150.0
    assert summary["growth_mib_per_hour"] == pytest.approx(3600.0)
    assert summary["growth_pct_per_hour"] == pytest.approx(3600.0)
    assert summary["post_warmup_samples"] == 20
    flat = soak.summarize([(float(t), 50 * 1024) for t in range(5)], 1.0, 5.0)
    assert flat["growth_pct_per_hour"] == 0.0 and flat["stop_peak_rss_mib"] == 0.0
    assert soak.slope_per_s([(1.0, 5.0)]) == 0.0


def test_soak_short_run_reports_consistent_figures(soak: ModuleType) -> None:
    report = soak.soak(seconds=5.0, rate=5000.0, n_symbols=3, warmup_s=2.0, sample_s=0.25)
    assert report["messages"] > 0 and report["messages_per_s"] > 0
    assert report["trades_seen"] > 0 and report["quotes_seen"] > 0
    assert report["dispatched_events"] >= report["trades_seen"] + report["quotes_seen"]
    samples = report["rss_samples"]
    assert len(samples) >= 10 and all(kib > 0 for _, kib in samples)
    assert [t for t, _ in samples] == sorted(t for t, _ in samples)
    assert report["peak_rss_mib"] == round(max(kib for _, kib in samples) / 1024, 2)
    assert report["peak_rss_mib"] >= report["final_rss_mib"] > 0
    assert report["peak_rss_mib"] >= report["stop_peak_rss_mib"]
    assert report["peak_rss_mib"] >= report["warmup_rss_mib"] > 0
    assert report["post_warmup_samples"] >= 2
    growth = 100 * report["growth_mib_per_hour"] / report["warmup_rss_mib"]
    assert report["growth_pct_per_hour"] == pytest.approx(growth, rel=0.01, abs=0.01)
    assert report["sim_peak_rss_mib"] > 0 and report["symbols"] == 3
