"""Failure isolation: a failing sink is reported, its data spooled and retried, bounded."""

from __future__ import annotations

from collections.abc import Mapping

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


def test_spool_bound_drops_oldest_and_counts() -> None:
    reports: list[SinkStatus] = []
    sink = Flaky(10**9)
    host = SinkHost(sink, reports.append, spool_max_rows=10)
    host.open(0.0)
    for i in range(4):
        host.add({"trades": trades(4)}, float(i))
        host.deliver(float(i) * 100, final=True)
    assert host.pending_rows <= 10
    assert host.counters["sink_dropped_rows"] == 16 - host.pending_rows
    assert "sink_overflow" in [r.kind for r in reports]
    host.close(1000.0)  # still failing: the rest is counted as dropped, never silently
    assert host.counters["sink_dropped_rows"] == 16
