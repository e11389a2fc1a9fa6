"""Shared fixtures: the captures folder and a loopback simulator."""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

import xtrader as xt
from xtrader import Simulator

if TYPE_CHECKING:
    from xtrader._core import Event

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def captures_dir() -> Path:
    """The recorded captures: ``$XTRADER_CAPTURES``, else ``<root>/../shared/data/captures``.

    Skips the calling test with a reason when the folder is absent, and fails it instead when
    running in CI (``CI=true``), where the captures must be present.
    """
    env = os.environ.get("XTRADER_CAPTURES")
    path = Path(env) if env else PROJECT_ROOT.parent / "shared" / "data" / "captures"
    if not (path / "BINANCE.ws.1.0").is_file():
        reason = f"captures not found at {path} (set XTRADER_CAPTURES)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return path


@pytest.fixture
def captures() -> Path:
    """Fixture form of `captures_dir`."""
    return captures_dir()


@pytest.fixture
def sim() -> Iterator[Simulator]:
    """A simulator on 127.0.0.1 (any free port), three symbols, stopped after the test."""
    simulator = Simulator(symbols=["BTCUSDT", "ETHUSDT", "SOLUSDT"], rate=1500.0, seed=7, port=0)
    simulator.start()
    try:
        yield simulator
    finally:
        simulator.stop()


def wait_until(
    predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.02
) -> None:
    """Poll `predicate` until true; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    if predicate():
        return
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


def apply_levels(side: dict[float, float], levels: list[tuple[float, float]]) -> None:
    """Apply book update levels to one side of an independent book (size 0 removes)."""
    for price, size in levels:
        if size == 0:
            side.pop(price, None)
        else:
            side[price] = size


# ------------------------------------------------------------------------------------------
# helpers for runtime tests over loopback sockets


class EventLog:
    """A sink that keeps every event with the monotonic time it was dispatched."""

    def __init__(self) -> None:
        self.events: list[tuple[float, Any]] = []
        self.closed = False

    def write(self, events: Sequence[Event]) -> None:
        now = time.monotonic()
        self.events.extend((now, ev) for ev in events)

    def tick(self, now: float) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def snapshot(self) -> list[tuple[float, Any]]:
        return list(self.events)

    def statuses(self, start: int = 0) -> list[tuple[int, xt.Status]]:
        """(index, status) of status events from index `start` on."""
        return [
            (i, ev)
            for i, (_, ev) in enumerate(self.snapshot())
            if i >= start and isinstance(ev, xt.Status)
        ]


def symbol_names(sim: Simulator) -> dict[str, str]:
    """Native -> normalized names, from the simulator's exchangeInfo."""
    url = sim.rest_url.rstrip("/") + "/api/v3/exchangeInfo"
    with urllib.request.urlopen(url, timeout=5) as resp:
        info = json.load(resp)
    return {s["symbol"]: f"{s['baseAsset']}-{s['quoteAsset']}" for s in info["symbols"]}


class RunningRuntime:
    """A `Runtime` subscribed to a simulator and run on a background thread."""

    def __init__(self, rt: xt.Runtime, log: EventLog, names: dict[str, str]) -> None:
        self.rt = rt
        self.log = log
        self.names = names
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="xtrader-run", daemon=True)

    def _run(self) -> None:
        try:
            self.rt.run(duration=RUN_CAP_S)
        except BaseException as exc:  # surfaced by stop()
            self.error = exc

    def book(self, native: str) -> xt.Book | None:
        return self.rt.book("binance", self.names.get(native, native))

    def is_symbol(self, value: str | None, native: str) -> bool:
        return value in (native, self.names.get(native))

    def wait_live(self, natives: Sequence[str], timeout: float = 30.0) -> None:
        def all_live() -> bool:
            books = [self.book(n) for n in natives]
            return all(b is not None and b.state == "live" for b in books)

        wait_until(all_live, timeout, f"books of {', '.join(natives)} to be live")

    def count(self, kind: type, native: str, start: int = 0, end: int | None = None) -> int:
        events = self.log.snapshot()[start:end]
        return sum(
            1
            for _, ev in events
            if isinstance(ev, kind) and self.is_symbol(getattr(ev, "symbol", None), native)
        )

    def stop(self) -> None:
        self.rt.stop()
        self.thread.join(timeout=20)
        assert not self.thread.is_alive(), "Runtime.run did not return within 20 s of stop()"
        if self.error is not None:
            raise self.error


RUN_CAP_S = 110.0
"""Hard cap on one runtime in a test (below the pytest timeout)."""


@contextmanager
def run_runtime(
    sim: Simulator,
    symbols: Sequence[str],
    strategies: Sequence[xt.Strategy] = (),
    subscribe: bool = True,
) -> Iterator[RunningRuntime]:
    """Subscribe a runtime to `symbols` on `sim`, run it on a thread, stop it afterwards."""
    rt = xt.Runtime(queue_capacity=65536, overflow="block", worker_threads=2)
    if subscribe:
        rt.subscribe("binance", symbols, ws_url=sim.ws_url, rest_url=sim.rest_url)
    log = EventLog()
    rt.add_sink(log)
    for strategy in strategies:
        rt.add_strategy(strategy)
    running = RunningRuntime(rt, log, symbol_names(sim))
    running.thread.start()
    try:
        yield running
    finally:
        running.stop()
