"""pytest-benchmark: per-event dispatch and on_batch rows against a plain-loop baseline.

    pytest benches/ -p no:cacheprovider

The sample is recorded once from the simulator (objects and Arrow tables of the same trades);
see dispatch_bench.py for the load run through the simulator.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import dispatch_bench as bench

EVENTS = 200_000


@pytest.fixture(scope="module")
def sample() -> bench.Sample:
    return bench.collect(1.0)


@pytest.fixture(scope="module")
def trades(sample: bench.Sample) -> list[Any]:
    return bench.grow(sample.trades, EVENTS)


def test_baseline_plain_loop(benchmark: Any, trades: list[Any]) -> None:
    assert benchmark(bench.baseline, trades) == EVENTS


def test_dispatch_per_event(benchmark: Any, trades: list[Any]) -> None:
    assert benchmark(bench.dispatch, trades) == EVENTS


def test_on_batch_rows(benchmark: Any, sample: bench.Sample) -> None:
    reps = max(1, EVENTS // max(1, sample.table_rows))
    tables = sample.tables * reps
    assert benchmark(bench.on_batch, tables) == sample.table_rows * reps
