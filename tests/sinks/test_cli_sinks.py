"""``replay --out`` into a Parquet dataset and ``inspect`` of it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import polars as pl

import xtrader as xt
from xtrader.sinks.inspect import summarize


def _xtrader(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "xtrader", *args],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def test_replay_out_then_inspect(captures: Path, tmp_path: Path) -> None:
    out = tmp_path / "ds"
    proc = _xtrader("replay", str(captures / "BINANCE.ws.1.0"), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    res = xt.replay(
        captures / "BINANCE.ws.1.0", [captures / "BINANCE.http.0.0", captures / "BINANCE.0"]
    )
    for channel, expected in (("trades", res.trades), ("book", res.book_updates), ("bbo", res.bbo)):
        got = xt.read(out, channel=channel).collect()
        assert got.height == expected.height, channel
        key = [
            c for c in ("symbol", "ts_recv", "seq", "trade_id", "side", "price") if c in got.columns
        ]
        assert got.sort(key).equals(expected.sort(key)), channel
    summary = summarize(out, progress=False)
    assert set(summary["channel"]) == {"trades", "book", "bbo"}
    assert summary.filter(pl.col("channel") == "trades")["rows"].sum() == res.trades.height
    shown = _xtrader("inspect", str(out))
    assert shown.returncode == 0, shown.stderr
    assert "trades" in shown.stdout and "NKN-USDT" in shown.stdout
    assert "gaps" in shown.stdout
