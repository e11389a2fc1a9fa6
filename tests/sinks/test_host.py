"""Failure isolation: a failing sink is reported, its data spooled and retried, bounded."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import polars as pl

from xtrader.sinks import Sink, SinkHost, SinkStatus

from .helpers import trades


class Flaky(Sink):
    name = "flaky"

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.rows = 0
        self.closed = False

    def write(self, frames: Mapping[str, pl.DataFrame]) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise OSError(28, "No space left on device")
        self.rows += sum(f.height for f in frames.values())

    def close(self) -> None:
        self.closed = True


def test_delivery_at_interval_and_batch_limit() -> None:
    sink = Flaky(0)
    sink.flush_interval_s = 1.0
    sink.max_batch_rows = 10
    host = SinkHost(sink)
    host.open(0.0)
    host.add({"trades": trades(4)}, 0.1)
    host.tick(0.5)
    assert sink.rows == 0
    host.tick(1.0)  # interval elapsed
    assert sink.rows == 4
    host.add({"trades": trades(10)}, 1.1)  # limit reached: delivered at once
    assert sink.rows == 14
    host.add({"trades": trades(1)}, 1.2)
    host.close(1.3)  # shutdown delivers the rest
    assert sink.rows == 15 and sink.closed
    assert host.received[("trades", "binance", "BTC-USDT")] == 15


def test_failing_sink_spools_and_recovers() -> None:
    reports: list[SinkStatus] = []
    sink = Flaky(2)
    host = SinkHost(sink, reports.append)
    host.open(0.0)
    host.add({"trades": trades(5)}, 0.0)
    assert not host.deliver(0.0)
    assert host.counters["sink_failures"] == 1
    assert host.counters["sink_spooled_rows"] == 5
    assert [r.kind for r in reports] == ["sink_error"]
    host.add({"trades": trades(3)}, 0.1)
    assert not host.deliver(0.2)  # backing off: not even tried
    assert host.counters["sink_failures"] == 1
    assert not host.deliver(0.6)  # retried, fails again
    assert host.counters["sink_failures"] == 2
    assert host.deliver(1.7)  # retried after the doubled back-off: delivered, nothing lost
    assert sink.rows == 8
    assert [r.kind for r in reports] == ["sink_error", "sink_recovered"]
    assert host.counters["sink_dropped_rows"] == 0


def test_spool_bound_spills_oldest_to_disk(tmp_path: Path) -> None:
    reports: list[SinkStatus] = []
    sink = Flaky(10**9)
    host = SinkHost(sink, reports.append, spool_max_rows=10, spool_dir=tmp_path / "spool")
    host.open(0.0)
    for i in range(4):
        host.add({"trades": trades(4)}, float(i))
        host.deliver(float(i) * 100, final=True)
    assert host.pending_rows <= 10
    assert host.counters["sink_spilled_rows"] == 16 - host.pending_rows
    assert "sink_overflow" in [r.kind for r in reports]
    host.close(1000.0)  # still failing: the rest is spilled too, nothing lost
    assert host.counters["sink_spilled_rows"] == 16
    assert host.counters["sink_dropped_rows"] == 0
    spilled = pl.concat([pl.read_ipc(f) for f in sorted(tmp_path.glob("spool/*/trades.arrow"))])
    assert spilled.height == 16


def test_spill_failure_is_counted_as_dropped(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    host = SinkHost(Flaky(10**9), spool_dir=blocker)
    host.open(0.0)
    host.add({"trades": trades(5)}, 0.0)
    host.close(1.0)
    assert host.counters["sink_dropped_rows"] == 5
