"""Strategy API: errors, on_error='stop', timers, filters, on_batch frames, on_stop."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import polars as pl
import pytest

import xtrader as xt
from xtrader._dispatch import Dispatcher
from xtrader.strategy import Timers


def _runtime(sim: xt.Simulator, on_error: str = "continue") -> xt.Runtime:
    rt = xt.Runtime(on_error=on_error)  # type: ignore[arg-type]
    rt.subscribe("binance", ["BTCUSDT", "ETHUSDT"], ws_url=sim.ws_url, rest_url=sim.rest_url)
    return rt


class Raising(xt.Strategy):
    def __init__(self) -> None:
        self.trades = 0
        self.stopped = 0

    def on_trade(self, trade: xt.Trade) -> None:
        self.trades += 1
        raise RuntimeError("boom")

    def on_stop(self) -> None:
        self.stopped += 1


class Counting(xt.Strategy):
    def __init__(self, **filters: tuple[str, ...]) -> None:
        super().__init__(**filters)
        self.trades: list[xt.Trade] = []
        self.quotes: list[xt.Quote] = []
        self.books: list[str] = []
        self.statuses = 0
        self.stopped = 0

    def on_trade(self, trade: xt.Trade) -> None:
        self.trades.append(trade)

    def on_bbo(self, quote: xt.Quote) -> None:
        self.quotes.append(quote)

    def on_book(self, book: xt.Book) -> None:
        self.books.append(book.symbol)

    def on_status(self, status: xt.Status) -> None:
        self.statuses += 1

    def on_stop(self) -> None:
        self.stopped += 1


def test_raising_callback_is_reported_and_feed_goes_on(
    sim: xt.Simulator, caplog: pytest.LogCaptureFixture
) -> None:
    rt = _runtime(sim)
    bad, good = Raising(), Counting()
    rt.add_strategy(bad)
    rt.add_strategy(good)
    with caplog.at_level(logging.ERROR, logger="xtrader"):
        rt.run(duration=2.0)
    assert bad.trades > 1, "the feed stopped after the first error"
    assert len(good.trades) == bad.trades
    assert bad.stopped == 1 and good.stopped == 1
    assert rt.callback_errors() == {"Raising.on_trade": bad.trades}
    assert rt.stats()["callback_errors"] == bad.trades
    reports = [r.getMessage() for r in caplog.records if "raised" in r.getMessage()]
    assert len(reports) == 1  # logged once, counted every time
    assert "Raising" in reports[0] and "on_trade" in reports[0] and "Trade {" in reports[0]


def test_on_error_stop_ends_the_run_and_calls_on_stop(sim: xt.Simulator) -> None:
    rt = _runtime(sim, on_error="stop")
    bad, other = Raising(), Counting()
    rt.add_strategy(bad)
    rt.add_strategy(other)
    started = time.monotonic()
    with pytest.raises(xt.StrategyError, match=r"Raising\.on_trade raised RuntimeError") as info:
        rt.run(duration=30)
    assert time.monotonic() - started < 15
    assert isinstance(info.value.__cause__, RuntimeError)
    assert bad.trades == 1 and bad.stopped == 1 and other.stopped == 1
    assert not rt.running


def test_on_error_config_key() -> None:
    from xtrader.config import RuntimeConfig

    assert RuntimeConfig(on_error="stop").on_error == "stop"
    with pytest.raises(xt.ConfigError, match="on_error"):
        RuntimeConfig(on_error="ignore")  # type: ignore[arg-type]


class Timed(xt.Strategy):
    def __init__(self) -> None:
        self.ticks: list[float] = []
        self.once: list[float] = []
        self.cancelled_calls = 0
        self.failing = 0
        self.started = 0.0

    def on_start(self, ctx: xt.Context) -> None:
        self.started = time.monotonic()
        ctx.schedule(0.1, lambda: self.ticks.append(time.monotonic()))
        ctx.at(time.time_ns() + 300_000_000, lambda: self.once.append(time.monotonic()))
        timer = ctx.schedule(0.05, self._never)
        timer.cancel()
        ctx.schedule(0.2, self._fail)

    def _never(self) -> None:
        self.cancelled_calls += 1

    def _fail(self) -> None:
        self.failing += 1
        raise ValueError("timer failed")


def test_timers_run_from_the_loop(sim: xt.Simulator) -> None:
    rt = _runtime(sim)
    strategy = rt.add_strategy(Timed())
    assert isinstance(strategy, Timed)
    started = time.monotonic()
    rt.run(duration=2.0)  # the engine start comes out of this
    elapsed = time.monotonic() - started
    # at most one call per 0.1 s slot (a late loop skips slots, it never bursts); a loaded
    # machine may skip some, so only a loose lower bound
    assert 4 <= len(strategy.ticks) <= int(elapsed / 0.1) + 1, strategy.ticks
    assert strategy.ticks == sorted(strategy.ticks)
    # due 0.3 s after on_start; late by up to 0.6 s on a loaded machine
    assert len(strategy.once) == 1 and 0.25 < strategy.once[0] - strategy.started < 0.9
    assert strategy.cancelled_calls == 0
    assert strategy.failing >= 2  # an erroring timer keeps firing and is counted
    assert rt.callback_errors() == {"Timed.timer Timed._fail": strategy.failing}


def test_timers_queue_unit() -> None:
    timers = Timers()
    ctx = xt.Context(_NoHost(), timers)
    calls: list[str] = []
    ctx.schedule(1.0, lambda: calls.append("p"))
    ctx.at(0, lambda: calls.append("past"))  # in the past: due at once
    with pytest.raises(ValueError, match="interval"):
        ctx.schedule(0, lambda: None)
    now = time.monotonic()
    for timer in timers.pop_due(now):
        timer.fn()
    assert calls == ["past"]
    # a loop 10 s late calls a periodic timer once, not ten times
    for timer in timers.pop_due(now + 10.5):
        timer.fn()
    assert calls == ["past", "p"] and len(timers) == 1


class _NoHost:
    def book(self, exchange: str, symbol: str) -> xt.Book | None:
        return None

    def stats(self) -> dict[str, int]:
        return {}

    def stop(self) -> None:
        pass


class BtcTradesOnly(Counting):
    symbols = ("BTC-USDT",)
    channels = ("trades", "book")


def test_filters_by_symbol_channel_and_exchange(sim: xt.Simulator) -> None:
    rt = _runtime(sim)
    everything = rt.add_strategy(Counting())
    btc = rt.add_strategy(BtcTradesOnly())
    native_eth_bbo = rt.add_strategy(Counting(symbols=("ETHUSDT",), channels=("bbo",)))
    other_venue = rt.add_strategy(Counting(exchanges=("binance_us",)))
    assert isinstance(everything, Counting) and isinstance(btc, Counting)
    assert isinstance(native_eth_bbo, Counting) and isinstance(other_venue, Counting)
    rt.run(duration=2.0)
    assert {t.symbol for t in everything.trades} == {"BTC-USDT", "ETH-USDT"}
    assert btc.trades == [t for t in everything.trades if t.symbol == "BTC-USDT"]
    assert btc.quotes == [] and btc.statuses == 0 and set(btc.books) == {"BTC-USDT"}
    assert native_eth_bbo.trades == [] and native_eth_bbo.books == []
    assert native_eth_bbo.quotes == [q for q in everything.quotes if q.symbol == "ETH-USDT"]
    assert native_eth_bbo.quotes
    assert other_venue.trades == [] and other_venue.quotes == [] and other_venue.statuses == 0
    assert all(s.stopped == 1 for s in (everything, btc, native_eth_bbo, other_venue))


def test_bad_filter_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown channel 'candles'"):
        Dispatcher([Counting(channels=("candles",))])
    with pytest.raises(ValueError, match="expected a list"):
        Dispatcher([Counting(symbols="BTC-USDT")])  # type: ignore[arg-type]


class Columns(xt.Strategy):
    """on_batch beside per-event callbacks: the rows must equal the events."""

    def __init__(self) -> None:
        self.rows: dict[str, int] = {}
        self.frames: dict[str, list[pl.DataFrame]] = {}
        self.trades = 0
        self.quotes = 0
        self.levels = 0

    def on_batch(self, channel: str, frame: pl.DataFrame) -> None:
        self.rows[channel] = self.rows.get(channel, 0) + frame.height
        self.frames.setdefault(channel, []).append(frame)

    def on_trade(self, trade: xt.Trade) -> None:
        self.trades += 1

    def on_bbo(self, quote: xt.Quote) -> None:
        self.quotes += 1


class BatchOnly(xt.Strategy):
    symbols = ("ETH-USDT",)

    def __init__(self) -> None:
        self.rows: dict[str, int] = {}
        self.symbols_seen: set[str] = set()

    def on_batch(self, channel: str, frame: pl.DataFrame) -> None:
        self.rows[channel] = self.rows.get(channel, 0) + frame.height
        self.symbols_seen.update(frame["symbol"].unique().to_list())


def test_on_batch_rows_equal_events(sim: xt.Simulator) -> None:
    rt = _runtime(sim)
    mixed = rt.add_strategy(Columns())
    assert isinstance(mixed, Columns)
    rt.run(duration=2.0)
    stats = rt.stats()
    assert mixed.trades > 0 and mixed.quotes > 0
    assert mixed.rows["trades"] == mixed.trades == stats["dispatched_trades"]
    assert mixed.rows["bbo"] == mixed.quotes == stats["dispatched_bbo"]
    assert mixed.rows["book"] > stats["dispatched_book_updates"]  # one row per level change
    trades = pl.concat(mixed.frames["trades"])
    assert trades.columns[:5] == ["exchange", "symbol", "native_symbol", "ts_exchange", "ts_recv"]
    assert trades["trade_id"].n_unique() == trades.height


def test_on_batch_alone_uses_frames_only(sim: xt.Simulator) -> None:
    rt = _runtime(sim)
    batch = rt.add_strategy(BatchOnly())
    assert isinstance(batch, BatchOnly)
    rt.run(duration=2.0)
    stats = rt.stats()
    assert batch.rows.get("trades", 0) > 0 and batch.symbols_seen == {"ETH-USDT"}
    assert stats["dispatched_rows"] >= sum(batch.rows.values())
    assert stats["dispatched_trades"] == 0  # no per-event objects were built for trades


def test_on_stop_called_when_on_start_raises(sim: xt.Simulator) -> None:
    class BadStart(Counting):
        def on_start(self, ctx: xt.Context) -> None:
            raise RuntimeError("no")

    rt = _runtime(sim)
    strategy = rt.add_strategy(BadStart())
    assert isinstance(strategy, Counting)
    rt.run(duration=0.5)
    assert strategy.stopped == 1
    assert rt.callback_errors() == {"BadStart.on_start": 1}


def test_replay_delivers_on_batch_and_filters(captures: Path) -> None:
    rest = [captures / "BINANCE.http.0.0", captures / "BINANCE.0"]
    columns, counting = Columns(), Counting(channels=("trades",))
    res = xt.replay(captures / "BINANCE.ws.1.0", rest=rest, strategies=[columns, counting])
    assert columns.rows.get("trades", 0) == res.trades.height == columns.trades
    assert columns.rows.get("bbo", 0) == res.bbo.height == columns.quotes
    assert columns.rows.get("book", 0) == res.book_updates.height
    assert len(counting.trades) == res.trades.height and counting.books == []
    assert counting.stopped == 1


def test_add_strategy_validates_filters(sim: xt.Simulator) -> None:
    rt = _runtime(sim)
    with pytest.raises(ValueError, match="unknown channel"):
        rt.add_strategy(Counting(channels=("trade",)))
    rt.close()
