"""Shared fixtures: the captures folder, a loopback simulator and a NATS cluster."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

import xtrader as xt
from natscluster import NatsCluster, nats_server_binary
from xtrader import ConfigError, Simulator
from xtrader.config import parse_config

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


def require_nats_server() -> str:
    """The ``nats-server`` binary (`nats_server_binary`). Skips the calling test when it is
    not installed, and fails it instead under ``CI=true``, where .ci/run installs it."""
    binary = nats_server_binary()
    if binary is None:
        reason = "nats-server not installed (Debian package nats-server; or XTRADER_NATS_SERVER)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return binary


@pytest.fixture
def nats_cluster(tmp_path: Path) -> Iterator[NatsCluster]:
    """A 3-node NATS JetStream cluster on loopback (tests/natscluster.py), stopped after the
    test. Skips when ``nats-server`` is not installed, and fails instead under ``CI=true``
    (`require_nats_server`)."""
    require_nats_server()
    cluster = NatsCluster(tmp_path / "nats", size=3)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


def wait_until(
    predicate: Callable[[], bool],
    timeout: float,
    what: str,
    interval: float = 0.02,
    detail: Callable[[], str] | None = None,
) -> None:
    """Poll `predicate` until true; fail naming `what` after `timeout` seconds, with what
    `detail` says of the state at that moment when it is given."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    if predicate():
        return
    why = f": {detail()}" if detail is not None else ""
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}{why}")


def spawn_run(config: Path, stats_file: Path) -> subprocess.Popen[str]:
    """Start ``python -m xtrader run CONFIG`` (no display, stats written to `stats_file`) in a
    child process that can import the tests' strategies; pipes for its output."""
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT / "tests")}
    argv = [sys.executable, "-m", "xtrader", "run", str(config), "--no-display"]
    return subprocess.Popen(
        [*argv, "--stats-json", str(stats_file)],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


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
    worker_threads: int = 2,
) -> Iterator[RunningRuntime]:
    """Subscribe a runtime to `symbols` on `sim`, run it on a thread, stop it afterwards
    (`worker_threads=0`: inline, the run thread reads the sockets)."""
    rt = xt.Runtime(queue_capacity=65536, overflow="block", worker_threads=worker_threads)
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


# ------------------------------------------------------------------------------------------
# every venue against its simulator profile (tests/test_faults.py and the SIGTERM test)


@dataclass(frozen=True)
class Venue:
    """One venue id served by one simulator profile."""

    exchange: str
    profile: str  # spot | usdm | coinm | okx
    symbols: tuple[str, ...]
    venue_channels: tuple[str, ...] = ()

    @property
    def is_okx(self) -> bool:
        return self.profile == "okx"

    @property
    def rest_prefix(self) -> str:
        return {"spot": "/api/v3", "usdm": "/fapi/v1", "coinm": "/dapi/v1"}[self.profile]


VENUES: dict[str, Venue] = {
    "binance": Venue("binance", "spot", ("BTCUSDT", "ETHUSDT")),
    # same protocol, other host: the spot profile behind the ws_url/rest_url overrides
    "binance_us": Venue("binance_us", "spot", ("BTCUSDT", "ETHUSDT")),
    "binance_usdm": Venue("binance_usdm", "usdm", ("BTCUSDT", "ETHUSDT")),
    "binance_coinm": Venue("binance_coinm", "coinm", ("BTCUSD_PERP", "ETHUSD_PERP")),
    # `trades` aggregates fills (ids jump); `trades-all` carries every fill, ids contiguous
    "okx": Venue("okx", "okx", ("BTC-USDT", "BTC-USDT-SWAP"), ("trades-all",)),
}

OKX_CONTRACT = {"BTC-USDT-SWAP": 0.01, "BTC-USD-250926": 100.0, "BTC-USD-250926-60000-C": 0.1}
"""OKX contract values of the simulator's instruments (spot: none, sizes are base units)."""


def make_sim(venue: Venue, **kwargs: Any) -> Simulator:
    """A started simulator serving `venue` (any free loopback port)."""
    args: dict[str, Any] = {"rate": 1500.0, "seed": 7}
    if venue.is_okx:
        args.update(symbols=[], okx_symbols=list(venue.symbols), rate=1200.0)
    else:
        args.update(
            symbols=list(venue.symbols),
            profile=venue.profile,
            max_client_msgs_per_s=10,
            mark_interval_ms=200,
        )
    args.update(kwargs)
    sim = Simulator(**args)
    sim.start()
    return sim


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.load(resp)


def contract_sizes(sim: Simulator, venue: Venue) -> dict[str, float]:
    """Native symbol -> multiplier from the venue's book sizes to the normalized sizes."""
    if venue.is_okx:
        return {s: OKX_CONTRACT.get(s, 1.0) for s in venue.symbols}
    if venue.profile != "coinm":
        return {s: 1.0 for s in venue.symbols}
    info = _get_json(sim.rest_url.rstrip("/") + venue.rest_prefix + "/exchangeInfo")
    return {s["symbol"]: float(s["contractSize"]) for s in info["symbols"]}


@dataclass
class SimBook:
    """A simulator's REST snapshot in normalized sizes."""

    seq: int
    bids: dict[float, float]
    asks: dict[float, float]


def sim_book(sim: Simulator, venue: Venue, native: str) -> SimBook:
    """The simulator's own book of `native` now (REST snapshot, every level)."""
    mult = contract_sizes(sim, venue).get(native, 1.0)
    base = sim.rest_url.rstrip("/")
    if venue.is_okx:
        body = _get_json(f"{base}/api/v5/market/books?instId={native}&sz=400")
        data = body["data"][0]
        seq = int(data["seqId"])
    else:
        data = _get_json(f"{base}{venue.rest_prefix}/depth?symbol={native}&limit=1000")
        seq = int(data["lastUpdateId"])

    def side(levels: list[list[str]]) -> dict[float, float]:
        return {float(p): float(q) * mult for p, q, *_ in levels if float(q) != 0}

    return SimBook(seq, side(data["bids"]), side(data["asks"]))


class VenueRun(RunningRuntime):
    """A `Runtime` subscribed to one venue of a simulator, run on a background thread."""

    def __init__(self, rt: xt.Runtime, log: EventLog, venue: Venue) -> None:
        super().__init__(rt, log, {})
        self.venue = venue

    def book(self, native: str) -> xt.Book | None:
        for book in self.rt.books():
            if book.exchange == self.venue.exchange and book.native_symbol == native:
                return book
        return None

    def normalized(self, native: str) -> str | None:
        book = self.book(native)
        return None if book is None else book.symbol

    def wait_live(self, natives: Sequence[str] | None = None, timeout: float = 30.0) -> None:
        super().wait_live(list(self.venue.symbols if natives is None else natives), timeout)

    def events(self, kind: type, start: int = 0) -> list[Any]:
        return [ev for _, ev in self.log.snapshot()[start:] if isinstance(ev, kind)]

    def statuses(
        self, kind: str | None = None, reason: str | None = None, start: int = 0
    ) -> list[xt.Status]:
        return [
            st
            for st in self.events(xt.Status, start)
            if (kind is None or st.kind == kind) and (reason is None or st.reason == reason)
        ]

    def mark(self) -> int:
        """Index of the next event: the start of a window for `events`/`statuses`."""
        return len(self.log.snapshot())

    def stat(self, key: str) -> int:
        return int(self.rt.stats().get(key, 0))

    def wait_flowing(self, start: int, natives: Sequence[str] | None = None) -> None:
        """Trades and book updates of every symbol arrive after event index `start`."""
        for native in self.venue.symbols if natives is None else natives:

            def flowing(n: str = native) -> bool:
                kinds = {
                    type(ev)
                    for _, ev in self.log.snapshot()[start:]
                    if getattr(ev, "native_symbol", None) == n
                }
                return {xt.Trade, xt.BookUpdate} <= kinds

            wait_until(flowing, 20, f"{native} trades and book updates")


@contextmanager
def run_venue(
    sim: Simulator,
    venue: Venue,
    natives: Sequence[str] | None = None,
    channels: Sequence[str] = ("trades", "book", "bbo"),
    **kwargs: Any,
) -> Iterator[VenueRun]:
    """Subscribe a runtime to `venue` on `sim`, run it on a thread, stop it afterwards."""
    rt = xt.Runtime(queue_capacity=65536, overflow="block", worker_threads=2)
    rt.subscribe(
        venue.exchange,
        list(venue.symbols if natives is None else natives),
        channels=channels,
        ws_url=sim.ws_url,
        rest_url=sim.rest_url,
        venue_channels=venue.venue_channels,
        **kwargs,
    )
    log = EventLog()
    rt.add_sink(log)
    run = VenueRun(rt, log, venue)
    run.thread.start()
    try:
        yield run
    finally:
        run.stop()


def replayed_book(run: VenueRun, native: str, snap: SimBook) -> SimBook:
    """`snap` plus every book update of `native` the runtime delivered after its sequence
    (a delivered snapshot replaces the levels): what the runtime's book must equal."""
    bids, asks = dict(snap.bids), dict(snap.asks)
    seq = snap.seq
    for ev in run.events(xt.BookUpdate):
        if ev.native_symbol != native or ev.seq <= snap.seq:
            continue
        if ev.is_snapshot:
            bids.clear()
            asks.clear()
        for side, levels in ((bids, ev.bids), (asks, ev.asks)):
            for price, size in levels:
                if size == 0:
                    side.pop(price, None)
                else:
                    side[price] = size
        seq = ev.seq
    return SimBook(seq, bids, asks)


def assert_book_matches(run: VenueRun, native: str, snap: SimBook) -> None:
    """After the runtime stopped: its final book equals the simulator's snapshot `snap` plus
    the updates it delivered after it, level by level, and is not crossed."""
    book = run.book(native)
    assert book is not None, native
    want = replayed_book(run, native, snap)
    assert book.seq == want.seq, f"{native}: book at {book.seq}, delivered up to {want.seq}"
    got_bids, got_asks = book.bids(), book.asks()
    assert [p for p, _ in got_bids] == sorted(want.bids, reverse=True), native
    assert [p for p, _ in got_asks] == sorted(want.asks), native
    assert [s for _, s in got_bids] == pytest.approx([want.bids[p] for p, _ in got_bids])
    assert [s for _, s in got_asks] == pytest.approx([want.asks[p] for p, _ in got_asks])
    assert got_bids and got_asks and got_bids[0][0] < got_asks[0][0], f"{native} crossed"


def trade_holes(run: VenueRun, native: str) -> int:
    """Breaks in the trade ids of `native` (no duplicates allowed, ascending order)."""
    ids = [t.trade_id for t in run.events(xt.Trade) if t.native_symbol == native]
    assert ids, f"no trades of {native}"
    assert len(set(ids)) == len(ids), f"duplicate trades of {native}"
    assert ids == sorted(ids), f"trades of {native} out of order"
    return sum(1 for a, b in pairwise(ids) if b != a + 1)


def config_error(text: str, source: str = "test.toml") -> ConfigError:
    """The `ConfigError` that parsing `text` (named `source`) raises."""
    with pytest.raises(ConfigError) as info:
        parse_config(text, source)
    return info.value


def line_of(text: str, needle: str) -> int:
    """1-based line of the first line of `text` containing `needle`."""
    for number, line in enumerate(text.splitlines(), start=1):
        if needle in line:
            return number
    raise AssertionError(needle)
