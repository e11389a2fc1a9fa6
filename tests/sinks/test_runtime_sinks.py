"""Sinks in a live run: failure isolation, and a SIGTERM'd session losing nothing."""

from __future__ import annotations

import json
import signal
import tempfile
import time
from collections import Counter
from collections.abc import Mapping
from pathlib import Path

import polars as pl
import pytest

import xtrader as xt
from conftest import spawn_run
from xtrader.sinks import ParquetSink, Sink, exclude_gaps, read_gaps

PROJECT_ROOT = Path(__file__).resolve().parents[2]


class Broken(Sink):
    """Fails every write, as a full disk would."""

    name = "broken"
    flush_interval_s = 0.1

    def write(self, frames: Mapping[str, pl.DataFrame]) -> None:
        raise PermissionError(13, "Permission denied")


class Trades(xt.Strategy):
    def __init__(self) -> None:
        self.trades = 0
        self.statuses: list[str] = []

    def on_trade(self, trade: xt.Trade) -> None:
        self.trades += 1

    def on_status(self, status: xt.Status) -> None:
        self.statuses.append(status.kind)


def test_failing_sink_is_isolated(
    sim: xt.Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))  # the default spool dir
    rt = xt.Runtime()
    rt.attach_simulator(sim)
    rt.subscribe("binance", ["BTCUSDT", "ETHUSDT"], ws_url="sim", rest_url="sim")
    strategy = rt.add_strategy(Trades())
    assert isinstance(strategy, Trades)
    rt.add_sink(Broken())
    rt.add_sink(ParquetSink(tmp_path, flush_interval_s=0.2))
    rt.run(1.5)
    stats = rt.stats()
    assert stats["sink_failures"] >= 2  # retried
    assert stats["sink_spilled_rows"] > 0  # what could never be written is kept on disk
    assert list((tmp_path / "tmp" / "xtrader-spool").glob("broken-*/*.arrow"))
    assert "sink_error" in strategy.statuses
    assert [s.kind for s in rt.sink_statuses][:1] == ["sink_error"]
    # the strategy and the other sink went on
    assert strategy.trades > 0
    on_disk = xt.read(tmp_path, channel="trades").collect().height
    assert on_disk == strategy.trades


CONFIG = """
[sim]
symbols = ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
rate = 20000.0
seed = 3
[metrics]
listen = ""
[[feeds]]
exchange = "binance"
symbols = ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
channels = ["trades", "book", "bbo"]
ws_url = "sim"
rest_url = "sim"
[[strategies]]
path = "sinks.counting:CountTrades"
params = {{ path = {counts} }}
[[sinks]]
type = "parquet"
dir = {data}
flush_interval_s = 0.3
max_file_rows = 20000
"""


def test_sigterm_mid_stream_loses_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    counts = tmp_path / "strategy.json"
    stats_file = tmp_path / "stats.json"
    config = tmp_path / "run.toml"
    config.write_text(CONFIG.format(data=json.dumps(str(data)), counts=json.dumps(str(counts))))
    proc = spawn_run(config, stats_file)
    try:
        deadline = time.monotonic() + 30
        # mid-stream: some files already finalized by rotation, more in flight
        while not list(data.glob("book/exchange=*/date=*/*.parquet")):
            assert time.monotonic() < deadline, "no Parquet file within 30 s"
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    report = json.loads(stats_file.read_text())
    delivered = {(d["channel"], d["symbol"]): d["rows"] for d in report["delivered"]}
    assert {c for c, _ in delivered} >= {"trades", "book", "bbo"}
    for channel in ("trades", "book", "bbo"):
        disk = xt.read(data, channel=channel).collect()
        on_disk = Counter(dict(disk.group_by("symbol").len().iter_rows()))
        expected = Counter({s: n for (c, s), n in delivered.items() if c == channel})
        assert on_disk == expected, channel
    # independent count: trades the strategy saw as objects, per symbol
    seen = json.loads(counts.read_text())
    trades = xt.read(data, channel="trades").collect()
    assert dict(trades.group_by("symbol").len().iter_rows()) == seen
    # nothing duplicated: trade ids unique per symbol
    assert trades.select("symbol", "trade_id").is_duplicated().sum() == 0
    assert not list(data.glob("**/.inprogress")) and not list(data.glob("**/*.tmp"))
    # the initial sync of each book is annotated beside the data, and can be excluded
    gaps = read_gaps(data)
    assert set(gaps.filter(pl.col("reason") == "initial_sync")["symbol"]) == set(seen)
    book = xt.read(data, channel="book")
    assert exclude_gaps(book, gaps).collect().height <= book.collect().height
