"""asyncio: async with / async for, filters, break, cancellation, run_async, a running loop."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

import xtrader as xt


class Watch(xt.Strategy):
    def __init__(self) -> None:
        self.trades = 0
        self.stopped = 0
        self.loop_thread_calls = 0

    def on_trade(self, trade: xt.Trade) -> None:
        self.trades += 1

    def on_stop(self) -> None:
        self.stopped += 1


def _runtime(sim: xt.Simulator) -> xt.Runtime:
    rt = xt.Runtime()
    rt.subscribe("binance", ["BTCUSDT", "ETHUSDT"], ws_url=sim.ws_url, rest_url=sim.rest_url)
    return rt


def test_async_for_filters_and_break_stops_cleanly(sim: xt.Simulator) -> None:
    async def main() -> tuple[list[xt.Trade], Watch, xt.Runtime]:
        got: list[xt.Trade] = []
        watch = Watch()
        async with _runtime(sim) as rt:
            rt.add_strategy(watch)
            async for ev in rt.events(channels=["trades"], symbols=["BTC-USDT"]):
                assert isinstance(ev, xt.Trade)
                got.append(ev)
                if len(got) == 20:
                    break
        return got, watch, rt

    got, watch, rt = asyncio.run(main())
    assert {t.symbol for t in got} == {"BTC-USDT"}
    assert watch.stopped == 1 and watch.trades >= 20
    assert not rt.running and not rt._engine.running


def test_async_cancellation_is_clean(sim: xt.Simulator) -> None:
    async def main() -> tuple[Watch, xt.Runtime, float]:
        watch = Watch()
        rt = _runtime(sim)
        rt.add_strategy(watch)
        seen = 0

        async def consume() -> None:
            nonlocal seen
            async with rt:
                async for _ in rt.events():
                    seen += 1

        task = asyncio.create_task(consume())
        deadline = time.monotonic() + 20
        while seen < 50 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        # the loop is never blocked: this coroutine kept running while events flowed
        assert seen >= 50
        started = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return watch, rt, time.monotonic() - started

    watch, rt, took = asyncio.run(main())
    assert watch.stopped == 1 and watch.trades > 0
    assert not rt.running and not rt._engine.running
    assert took < 10


def test_run_async_in_a_running_loop_and_cancel(sim: xt.Simulator) -> None:
    async def main() -> tuple[Watch, xt.Runtime, int]:
        watch = Watch()
        rt = _runtime(sim)
        rt.add_strategy(watch)
        ticks = 0
        task = asyncio.create_task(rt.run_async())
        for _ in range(20):  # the loop stays responsive while the runtime runs
            await asyncio.sleep(0.05)
            ticks += 1
        deadline = time.monotonic() + 20
        while watch.trades == 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return watch, rt, ticks

    watch, rt, ticks = asyncio.run(main())
    assert ticks == 20 and watch.stopped == 1 and watch.trades > 0
    assert not rt.running


def test_run_async_duration_and_events_duration(sim: xt.Simulator) -> None:
    async def main() -> tuple[Watch, int]:
        watch = Watch()
        async with _runtime(sim) as rt:
            rt.add_strategy(watch)
            await rt.run_async(duration=0.5)
        count = 0
        async with _runtime(sim) as rt2:
            # long enough for the connect and snapshot on a loaded machine: events fetched
            # after the deadline go to the strategies' drain, not to this loop
            async for _ in rt2.events(duration=3.0):
                count += 1
        return watch, count

    watch, count = asyncio.run(main())
    assert watch.stopped == 1 and count > 0


def test_events_rejects_unknown_channel(sim: xt.Simulator) -> None:
    rt = _runtime(sim)
    with pytest.raises(ValueError, match="unknown channel"):
        rt.events(channels=["candles"])
    rt.close()


def test_cancel_while_starting_stops_the_engine(sim: xt.Simulator) -> None:
    async def main() -> xt.Runtime:
        rt = _runtime(sim)

        async def consume() -> None:
            async with rt:
                async for _ in rt.events():
                    pass

        task = asyncio.create_task(consume())
        await asyncio.sleep(0.001)  # inside the engine start
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return rt

    rt = asyncio.run(main())
    assert not rt.running and not rt._engine.running


class _SignallingEngine:
    """The real engine, with `start` signalling from its executor thread when it returned."""

    def __init__(self, engine: object) -> None:
        self._engine = engine
        self.started = threading.Event()

    def start(self) -> None:
        self._engine.start()  # type: ignore[attr-defined]
        self.started.set()

    def __getattr__(self, name: str) -> object:
        return getattr(self._engine, name)


@pytest.mark.parametrize("turns", [0, 1, 2, 3, 4])
def test_cancel_right_after_the_engine_started_stops_it(sim: xt.Simulator, turns: int) -> None:
    # The engine start has returned on its executor thread; the cancellation lands after
    # `turns` turns of the event loop: before the task saw the start finish, while its wakeup
    # is queued, or after it resumed. Every case must stop the engine.
    async def main() -> tuple[xt.Runtime, _SignallingEngine]:
        rt = _runtime(sim)
        engine = _SignallingEngine(rt._engine)
        rt._engine = engine  # type: ignore[assignment]

        async def consume() -> None:
            async with rt:
                async for _ in rt.events():
                    pass

        task = asyncio.create_task(consume())
        await asyncio.sleep(0)  # the task submits the start
        assert engine.started.wait(10)
        time.sleep(0.05)  # blocks the loop: the executor posts the start's result meanwhile
        for _ in range(turns):
            await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return rt, engine

    rt, engine = asyncio.run(main())
    assert not rt.running and not engine._engine.running  # type: ignore[attr-defined]
