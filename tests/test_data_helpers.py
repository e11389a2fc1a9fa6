"""Notebook data helpers: read() partition pruning, book_at, analytics expressions, plots."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest

import xtrader as xt
from conftest import EventLog
from xtrader import analytics as xa
from xtrader import plot
from xtrader._schema import TRADES_SCHEMA
from xtrader.data import ReplayBook
from xtrader.record import ParquetRecorder


class Recording:
    def __init__(self, root: Path, log: EventLog, live: dict[str, pl.DataFrame]) -> None:
        self.root = root
        self.log = log
        self.live = live


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Recording]:
    root = tmp_path_factory.mktemp("rec")
    with xt.Simulator(symbols=["BTCUSDT", "ETHUSDT"], rate=1500.0, seed=3, port=0) as sim:
        rt = xt.Runtime()
        rt.subscribe("binance", ["BTCUSDT", "ETHUSDT"], ws_url=sim.ws_url, rest_url=sim.rest_url)
        rt.add_sink(ParquetRecorder(root, ("trades", "bbo", "book"), flush_interval_s=0.5))
        log = EventLog()
        rt.add_sink(log)
        rt.run(duration=2.5)
        live = {}
        for symbol in ("BTC-USDT", "ETH-USDT"):
            book = rt.book("binance", symbol)
            assert book is not None
            live[symbol] = book.to_polars()
    yield Recording(root, log, live)


def _replayed(log: EventLog, symbol: str, until: int) -> ReplayBook:
    book = ReplayBook("binance", symbol, symbol)
    for _, ev in log.events:
        if isinstance(ev, xt.BookUpdate) and ev.symbol == symbol and ev.ts_recv <= until:
            book.apply(ev)
    return book


def test_book_at_matches_the_live_book_and_past_states(recording: Recording) -> None:
    updates = [ev for _, ev in recording.log.events if isinstance(ev, xt.BookUpdate)]
    last_ts = max(u.ts_recv for u in updates)
    final = xt.book_at(recording.root, "binance", "BTC-USDT", last_ts)
    assert final.columns == ["side", "level", "price", "size"]
    assert final.equals(recording.live["BTC-USDT"].select(final.columns))
    btc = [u for u in updates if u.symbol == "BTC-USDT"]
    for update in (btc[len(btc) // 3], btc[2 * len(btc) // 3]):
        expected = _replayed(recording.log, "BTC-USDT", update.ts_recv).to_polars(20)
        got = xt.book_at(recording.root, "binance", "BTC-USDT", update.ts_recv, depth=20)
        assert got.equals(expected)
    with pytest.raises(xt.ReplayError, match="snapshot"):
        xt.book_at(recording.root, "binance", "BTC-USDT", min(u.ts_recv for u in btc) - 1)


def test_analytics_on_the_recording(recording: Recording) -> None:
    bbo = xt.read(recording.root, "bbo", symbol="ETH-USDT").with_columns(
        xa.mid(), xa.spread(), xa.spread_bps(), xa.book_imbalance()
    )
    frame = bbo.collect()
    assert frame.height > 0
    assert (frame["spread"] > 0).all() and frame["book_imbalance"].abs().max() <= 1  # type: ignore[operator]
    bars = xa.ohlcv(xt.read(recording.root, "trades"), every="1s").collect()
    trades = xt.read(recording.root, "trades").collect()
    assert bars["trades"].sum() == trades.height
    assert bars["volume"].sum() == pytest.approx(trades["size"].sum())


def test_analytics_values() -> None:
    ts0 = 1_700_000_000_000_000_000
    trades = pl.DataFrame(
        {
            "exchange": ["binance"] * 4,
            "symbol": ["BTC-USDT"] * 4,
            "ts_recv": [ts0, ts0 + 10**8, ts0 + 2 * 10**8, ts0 + 10**9],
            "price": [100.0, 105.0, 95.0, 101.0],
            "size": [1.0, 3.0, 2.0, 4.0],
            "side": ["buy", "buy", "sell", "sell"],
        }
    )
    bars = xa.ohlcv(trades, every="1s")
    assert bars.select("open", "high", "low", "close", "volume", "trades").rows() == [
        (100.0, 105.0, 95.0, 95.0, 6.0, 3),
        (101.0, 101.0, 101.0, 101.0, 4.0, 1),
    ]
    assert bars["vwap"][0] == pytest.approx((100 + 315 + 190) / 6)
    assert bars["trade_flow_imbalance"].to_list() == pytest.approx([2 / 6, -1.0])
    assert trades.select(xa.trade_flow_imbalance()).item() == pytest.approx(-2 / 10)
    quotes = pl.DataFrame(
        {"bid_price": [99.0], "bid_size": [3.0], "ask_price": [101.0], "ask_size": [1.0]}
    )
    row = quotes.select(xa.mid(), xa.spread(), xa.spread_bps(), xa.book_imbalance()).row(0)
    assert row == pytest.approx((100.0, 2.0, 200.0, 0.5))


def _write_day(root: Path, day: str, ts: int, price: float) -> Path:
    folder = root / "trades" / "exchange=binance" / f"date={day}"
    folder.mkdir(parents=True)
    row = {"exchange": "binance", "symbol": "BTC-USDT", "native_symbol": "BTCUSDT",
           "ts_exchange": ts, "ts_recv": ts, "price": price, "size": 1.0, "side": "buy",
           "trade_id": 1}  # fmt: skip
    path = folder / "part-1.parquet"
    pl.DataFrame([row], schema=TRADES_SCHEMA).write_parquet(path)
    return path


def test_read_prunes_date_and_exchange_partitions(tmp_path: Path) -> None:
    day1 = 1_767_225_600_000_000_000  # 2026-01-01T00:00Z
    day2 = day1 + 86_400 * 10**9
    old = _write_day(tmp_path, "2026-01-01", day1 + 5, 1.0)
    _write_day(tmp_path, "2026-01-02", day2 + 5, 2.0)
    assert xt.read(tmp_path, "trades").collect().height == 2
    old.write_bytes(b"not parquet")  # a pruned file is never opened
    lazy = xt.read(tmp_path, "trades", start="2026-01-02", exchange="binance")
    assert "2026-01-01" not in lazy.explain()
    assert lazy.collect()["price"].to_list() == [2.0]
    with pytest.raises(pl.exceptions.ComputeError):
        xt.read(tmp_path, "trades").collect()  # unpruned: the broken file is read
    with pytest.raises(xt.ReplayError, match="no trades files"):
        xt.read(tmp_path, "trades", exchange="okx")
    with pytest.raises(xt.ReplayError, match="time range"):
        xt.read(tmp_path, "trades", start="2027-01-01")


def test_plots_render_png(recording: Recording) -> None:
    bbo = xt.read(recording.root, "bbo")
    trades = xt.read(recording.root, "trades", symbol="BTC-USDT")
    fig = plot.price_and_spread(bbo.filter(pl.col("symbol") == "BTC-USDT"), trades, title="BTC")
    assert len(fig.axes) == 2
    book = xt.book_at(recording.root, "binance", "BTC-USDT", "2100-01-01", depth=50)
    depth = plot.depth_profile(book, title="depth")
    for figure in (fig, depth):
        out = io.BytesIO()
        figure.savefig(out, format="png")
        assert out.getvalue().startswith(b"\x89PNG")
