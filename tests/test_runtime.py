"""Runtime lifecycle: run in the main thread, signals, stop from a strategy, errors."""

from __future__ import annotations

import os
import signal
import time
from types import FrameType

import pytest

import xtrader as xt
from xtrader.config import parse_config


class StopOnFirstTrade(xt.Strategy):
    def __init__(self, use_signal: bool = False) -> None:
        self.use_signal = use_signal
        self.ctx: xt.Context | None = None
        self.trades = 0
        self.stopped = 0
        self.trades_after_stop_request = 0
        self.requested = False

    def on_start(self, ctx: xt.Context) -> None:
        self.ctx = ctx

    def on_trade(self, trade: xt.Trade) -> None:
        self.trades += 1
        if self.requested:
            self.trades_after_stop_request += 1
            return
        self.requested = True
        if self.use_signal:
            os.kill(os.getpid(), signal.SIGINT)
        else:
            assert self.ctx is not None
            assert self.ctx.stats()["dispatched_events"] > 0
            self.ctx.stop()

    def on_stop(self) -> None:
        self.stopped += 1


def _runtime(sim: xt.Simulator) -> xt.Runtime:
    rt = xt.Runtime()
    rt.subscribe("binance", ["BTCUSDT"], ws_url=sim.ws_url, rest_url=sim.rest_url)
    return rt


def test_runtime_ctx_stop_drains_and_calls_on_stop(sim: xt.Simulator) -> None:
    rt = _runtime(sim)
    strategy = StopOnFirstTrade()
    rt.add_strategy(strategy)
    started = time.monotonic()
    rt.run(duration=60)
    assert time.monotonic() - started < 30
    assert strategy.trades >= 1 and strategy.stopped == 1
    assert not rt.running
    with pytest.raises(xt.XtraderError, match="runs once"):
        rt.run(duration=1)
    with pytest.raises(xt.XtraderError):
        rt.subscribe("binance", ["ETHUSDT"])


def test_runtime_sigint_stops_cleanly_and_restores_handler(sim: xt.Simulator) -> None:
    calls: list[int] = []

    def previous(signum: int, frame: FrameType | None) -> None:
        calls.append(signum)

    old = signal.signal(signal.SIGINT, previous)
    try:
        rt = _runtime(sim)
        strategy = StopOnFirstTrade(use_signal=True)
        rt.add_strategy(strategy)
        rt.run(duration=60)  # returns normally: no KeyboardInterrupt
        assert strategy.stopped == 1
        assert signal.getsignal(signal.SIGINT) is previous
        assert calls == []  # the runtime's handler took the signal
    finally:
        signal.signal(signal.SIGINT, old)


def test_runtime_duration_elapses(sim: xt.Simulator) -> None:
    rt = _runtime(sim)
    started = time.monotonic()
    rt.run(duration=1.0)
    elapsed = time.monotonic() - started
    assert 0.9 <= elapsed < 15
    assert rt.stats()["dispatched_events"] > 0
    book = rt.book("binance", "BTCUSDT")
    assert book is not None and book.native_symbol == "BTCUSDT"


def test_runtime_from_config_starts_and_stops_sim() -> None:
    cfg = parse_config(
        """
[sim]
symbols = ["BTCUSDT"]
rate = 500

[[feeds]]
exchange = "binance"
symbols = ["BTCUSDT"]
ws_url = "sim"
rest_url = "sim"

[metrics]
listen = ""
"""
    )
    rt = xt.Runtime.from_config(cfg)
    sim = rt.simulator
    assert sim is not None and sim.port > 0
    assert rt.feeds[0].ws_url == sim.ws_url
    rt.run(duration=1.0)
    assert rt.stats()["dispatched_events"] > 0


def test_runtime_rejects_non_strategy() -> None:
    with pytest.raises(TypeError):
        xt.Runtime().add_strategy(object())  # type: ignore[arg-type]
