"""Gap annotations from status events, and filtering rows inside them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

import xtrader as xt
from xtrader.sinks import GapTracker, ParquetSink, exclude_gaps, read_gaps

from .helpers import T0, trades


@dataclass
class St:
    exchange: str
    symbol: str | None
    kind: str
    reason: str | None
    state: str | None
    ts: int


def test_tracker_intervals() -> None:
    g = GapTracker()
    g.observe(
        [
            St("binance", None, "connected", None, None, T0 - 5),
            St("binance", "ETH-USDT", "live", None, "live", T0 - 2),
            St("binance", "BTC-USDT", "syncing", None, "syncing", T0),
            St("binance", "BTC-USDT", "live", None, "live", T0 + 10),
            St("binance", "BTC-USDT", "resync", "gap", "resyncing", T0 + 100),
            St("binance", "BTC-USDT", "live", None, "live", T0 + 200),
            St("binance", None, "disconnected", "closed", None, T0 + 300),
            St("binance", None, "connected", None, None, T0 + 400),
            St("binance", "ETH-USDT", "stale", "stale", "stale", T0 + 500),
            St("binance", None, "disconnected", "stopped", None, T0 + 600),
        ]
    )
    closed = g.take()
    assert closed is not None
    assert closed.select("symbol", "start", "end", "state", "reason").rows() == [
        ("ETH-USDT", T0 - 5, T0 - 2, "syncing", "initial_sync"),
        ("BTC-USDT", T0, T0 + 10, "syncing", "syncing"),
        ("BTC-USDT", T0 + 100, T0 + 200, "resyncing", "gap"),
        ("*", T0 + 300, T0 + 400, "disconnected", "closed"),
    ]
    last = g.take(final=True)
    assert last is not None
    assert last.select("symbol", "start", "end", "open").rows() == [
        ("ETH-USDT", T0 + 500, T0 + 600, True)
    ]


def test_exclude_gaps(tmp_path: Path) -> None:
    sink = ParquetSink(tmp_path)
    sink.open()
    data = pl.concat([trades(10, step=10), trades(10, "ETH-USDT", step=10)])
    gaps = pl.DataFrame(
        {
            "exchange": ["binance"],
            "symbol": ["BTC-USDT"],
            "start": [T0 + 20],
            "end": [T0 + 50],
            "state": ["resyncing"],
            "reason": ["gap"],
            "open": [False],
        }
    )
    sink.write({"trades": data, "gaps": gaps})
    sink.close()
    assert read_gaps(tmp_path).height == 1
    clean = exclude_gaps(xt.read(tmp_path, channel="trades"), tmp_path).collect()
    assert clean.height == 20 - 4  # BTC rows at +20, +30, +40, +50
    assert clean.filter(pl.col("symbol") == "ETH-USDT").height == 10
