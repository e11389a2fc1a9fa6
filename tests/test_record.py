"""ParquetRecorder: partitioned, whole files with the contract columns, read back by xt.read."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

import xtrader as xt
from xtrader.record import ParquetRecorder

CONTRACT = {
    "trades": [
        "exchange", "symbol", "native_symbol", "ts_exchange", "ts_recv", "price", "size", "side",
        "trade_id",
    ],
    "bbo": [
        "exchange", "symbol", "ts_exchange", "ts_recv", "bid_price", "bid_size", "ask_price",
        "ask_size",
    ],
    "book": [
        "exchange", "symbol", "ts_exchange", "ts_recv", "side", "price", "size", "is_snapshot",
        "seq",
    ],
}  # fmt: skip


def test_record_parquet_files_round_trip(sim: xt.Simulator, tmp_path: Path) -> None:
    root = tmp_path / "data"
    rt = xt.Runtime()
    rt.subscribe("binance", ["BTCUSDT", "ETHUSDT"], ws_url=sim.ws_url, rest_url=sim.rest_url)
    recorder = ParquetRecorder(root, ("trades", "bbo", "book"), flush_interval_s=0.5)
    rt.add_sink(recorder)
    rt.run(duration=3.0)
    stats = rt.stats()
    assert stats["recorded_files"] >= 3 and stats["recorded_rows"] > 0
    for channel, columns in CONTRACT.items():
        files = sorted((root / channel).glob("exchange=binance/date=*/part-*.parquet"))
        assert len(files) >= 2, f"{channel}: several flushes expected"
        frame = xt.read(root, channel).collect()
        assert frame.columns == columns
        assert frame.height > 0
        assert frame["exchange"].unique().to_list() == ["binance"]
    assert xt.read(root, "trades").collect().height == stats["dispatched_trades"]
    assert xt.read(root, "bbo").collect().height == stats["dispatched_bbo"]
    book = xt.read(root, "book").collect()
    assert book.filter(pl.col("is_snapshot")).height > 0
    assert set(book["side"].unique().to_list()) == {"bid", "ask"}
    assert not list(root.glob("**/*.tmp"))
    only_btc = xt.read(root, "trades", symbol="BTC-USDT").collect()
    assert set(only_btc["symbol"].to_list()) <= {"BTC-USDT"}


def test_record_rejects_unknown_channel(tmp_path: Path) -> None:
    with pytest.raises(xt.ConfigError, match="channels"):
        ParquetRecorder(tmp_path, ("trades", "candles"))


def test_read_missing_channel(tmp_path: Path) -> None:
    with pytest.raises(xt.ReplayError, match="no trades files"):
        xt.read(tmp_path, "trades")
