"""End to end over loopback: Runtime + the real OKX connector + the simulator's OKX profile.

The simulator serves spot, a linear swap, an inverse dated future and an option with real
sequence ids and CRC32 checksums; faults are injected through `Simulator.inject_fault`. A
silent market (`stall`) makes the books comparable with the simulator's REST book exactly.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Literal

import pytest

import xtrader as xt
from conftest import EventLog, RunningRuntime, wait_until
from xtrader import Simulator

INSTS = ["BTC-USDT", "BTC-USDT-SWAP", "BTC-USD-250926", "BTC-USD-250926-60000-C"]
NORMALIZED = {
    "BTC-USDT": "BTC-USDT",
    "BTC-USDT-SWAP": "BTC-USDT-PERP",
    "BTC-USD-250926": "BTC-USD-20250926",
    "BTC-USD-250926-60000-C": "BTC-USD-20250926-60000-C",
}
# contract value: sizes are multiples of it (spot: any size)
CONTRACT = {"BTC-USDT-SWAP": 0.01, "BTC-USD-250926": 100.0, "BTC-USD-250926-60000-C": 0.1}
ALL_CHANNELS = ("trades", "book", "bbo", "ticker", "funding", "liquidations", "open_interest")
STATS_PERIOD_S = 0.6
"""Longer than the 250 ms at which socket tasks publish their counters."""


class OkxRun(RunningRuntime):
    """A runtime subscribed to the simulator's OKX profile."""

    def book(self, native: str) -> xt.Book | None:
        return self.rt.book("okx", NORMALIZED.get(native, native))

    def stat(self, key: str) -> int:
        return int(self.rt.stats().get(key, 0))

    def wait_stat(self, key: str, at_least: int, timeout: float = 10) -> int:
        """Processor counters reach the stats every 250 ms: wait for `key` >= `at_least`."""
        wait_until(lambda: self.stat(key) >= at_least, timeout, f"stats[{key!r}] >= {at_least}")
        return self.stat(key)

    def settle(self) -> None:
        """Let one more round of processor counters reach the stats."""
        time.sleep(STATS_PERIOD_S)

    def statuses(self, kind: str, reason: str | None = None) -> list[xt.Status]:
        return [
            ev
            for _, ev in self.log.snapshot()
            if isinstance(ev, xt.Status)
            and ev.kind == kind
            and (reason is None or ev.reason == reason)
        ]

    def events(self, cls: type) -> list[Any]:
        return [ev for _, ev in self.log.snapshot() if isinstance(ev, cls)]


@contextmanager
def run_okx(
    sim: Simulator,
    symbols: Sequence[str] = INSTS,
    channels: Sequence[str] = ("trades", "book", "bbo"),
    **kwargs: Any,
) -> Iterator[OkxRun]:
    rt = xt.Runtime(queue_capacity=65536, overflow="block", worker_threads=2)
    rt.subscribe(
        "okx", symbols, channels=channels, ws_url=sim.ws_url, rest_url=sim.rest_url, **kwargs
    )
    log = EventLog()
    rt.add_sink(log)
    run = OkxRun(rt, log, dict(NORMALIZED))
    run.thread.start()
    try:
        yield run
    finally:
        run.stop()


def make_sim(**kwargs: Any) -> Simulator:
    args: dict[str, Any] = {"symbols": [], "okx_symbols": INSTS, "rate": 1200.0, "seed": 5}
    args.update(kwargs)
    sim = Simulator(**args)
    sim.start()
    return sim


@pytest.fixture
def okx_sim() -> Iterator[Simulator]:
    sim = make_sim()
    try:
        yield sim
    finally:
        sim.stop()


def rest_book(sim: Simulator, inst: str) -> dict[str, Any]:
    url = f"{sim.rest_url.rstrip('/')}/api/v5/market/books?instId={inst}&sz=400"
    with urllib.request.urlopen(url, timeout=5) as resp:
        body: dict[str, Any] = json.load(resp)
    data: dict[str, Any] = body["data"][0]
    return data


def _mismatch(run: OkxRun, sim: Simulator, insts: Sequence[str]) -> str | None:
    """What differs between our books and the simulator's (one REST answer per book, so the
    sequence id and the levels compared are the same moment's), or None."""
    for inst in insts:
        want = rest_book(sim, inst)
        book = run.book(inst)
        if book is None or book.state != "live":
            return f"{inst}: not live ({book and book.state})"
        if book.seq != int(want["seqId"]):
            return f"{inst}: sequence id {book.seq}, simulator {want['seqId']}"
        ct = CONTRACT.get(inst, 1.0)
        for name, got, side in (
            ("bids", book.bids(), want["bids"]),
            ("asks", book.asks(), want["asks"]),
        ):
            if [p for p, _ in got] != [float(p) for p, *_ in side]:
                return f"{inst}: {name} prices differ"
            if [s for _, s in got] != pytest.approx([float(s) * ct for _, s, *_ in side]):
                return f"{inst}: {name} sizes differ"
    return None


def assert_books_match_sim(run: OkxRun, sim: Simulator, insts: Sequence[str]) -> None:
    """Silence the market, let in-flight frames land, compare every level with the sim."""
    sim.inject_fault("stall", duration_ms=3000)
    wait_until(
        lambda: _mismatch(run, sim, insts) is None,
        10,
        "our books to match the simulator's",
        detail=lambda: _mismatch(run, sim, insts) or "they match now",
    )


def test_e2e_okx_every_instrument_type(okx_sim: Simulator) -> None:
    with run_okx(okx_sim, channels=ALL_CHANNELS) as run:
        run.wait_live(INSTS)

        def flowing() -> bool:
            names = {NORMALIZED[i] for i in INSTS}
            seen = {
                cls: {ev.symbol for ev in run.events(cls)}
                for cls in (xt.Trade, xt.Quote, xt.BookUpdate, xt.Ticker)
            }
            return all(names <= s for s in seen.values()) and run.stat("checksum_ok") > 200

        wait_until(flowing, 30, "trades, bbo, books and tickers of every instrument")
        derivatives = {NORMALIZED[i] for i in CONTRACT}
        wait_until(
            lambda: {ev.symbol for ev in run.events(xt.OpenInterest)} >= derivatives,
            10,
            "open interest of every derivative",
        )
        wait_until(lambda: len(run.events(xt.Liquidation)) >= 2, 10, "liquidations")
        funding = run.events(xt.Funding)
        assert any(f.funding_rate is not None and f.symbol == "BTC-USDT-PERP" for f in funding)
        assert {f.symbol for f in funding if f.mark_price is not None} >= derivatives
        for t in run.events(xt.Trade):
            ct = CONTRACT.get(t.native_symbol)
            if ct is not None:
                contracts = t.size / ct
                assert contracts == pytest.approx(round(contracts)) and contracts >= 1, t
        for q in run.events(xt.OpenInterest):
            assert q.open_interest / CONTRACT[q.native_symbol] == pytest.approx(
                round(q.open_interest / CONTRACT[q.native_symbol])
            )
        assert_books_match_sim(run, okx_sim, INSTS)
        run.settle()
        stats = run.rt.stats()
        assert stats["checksum_failed"] == 0 and stats["gaps"] == 0 and stats["resyncs"] == 0
        assert stats["parse_errors"] == 0 and stats["venue_errors"] == 0
        assert stats["instruments"] >= 4
        metrics = run.rt.metrics_text()
        assert 'xtrader_checksum_failed_total{exchange="okx"} 0' in metrics
        assert 'xtrader_checksum_ok_total{exchange="okx"} 0' not in metrics


@pytest.mark.parametrize(("fault", "reason"), [("checksum", "checksum"), ("seq_break", "gap")])
def test_e2e_okx_fault_resyncs_only_that_symbol(
    okx_sim: Simulator, fault: Literal["checksum", "seq_break"], reason: str
) -> None:
    target = "BTC-USDT-SWAP"
    with run_okx(okx_sim) as run:
        run.wait_live(INSTS)
        wait_until(lambda: run.stat("checksum_ok") > 50, 20, "checksummed updates")
        okx_sim.inject_fault(fault, target)
        wait_until(lambda: bool(run.statuses("resync", reason)), 20, f"a {reason} resync")
        wait_until(lambda: bool(run.statuses("recovered")), 20, "the book to recover")
        resyncs = run.statuses("resync")
        assert [(s.symbol, s.reason) for s in resyncs] == [(NORMALIZED[target], reason)]
        assert [s.symbol for s in run.statuses("recovered")] == [NORMALIZED[target]]
        wanted = "checksum mismatch" if fault == "checksum" else "sequence gap"
        assert wanted in resyncs[0].message
        before = run.stat("checksum_ok")
        run.wait_stat("checksum_ok", before + 50, 20)
        assert run.stat("checksum_failed") == (1 if fault == "checksum" else 0)
        assert run.stat("resubscribes") == 1 and run.stat("reconnects") == 0
        assert_books_match_sim(run, okx_sim, INSTS)


def test_e2e_okx_idle_keepalive_keeps_a_quiet_connection_open() -> None:
    # our ping goes out 800 to 1,050 ms into a silence (a third of stale_after, on a 250 ms
    # tick): a 3 s idle timeout leaves room for a loaded machine
    sim = make_sim(okx_idle_timeout_ms=3000)
    try:
        with run_okx(sim, symbols=["BTC-USDT"], stale_after_ms=2400) as run:
            run.wait_live(["BTC-USDT"])
            sim.inject_fault("stall", duration_ms=5000)  # the venue goes quiet for 5 s
            wait_until(lambda: sim.stats()["okx_pings"] >= 3, 10, "keepalive pings")
            run.wait_stat("pongs", 3)
            assert sim.stats()["okx_idle_closes"] == 0 and run.stat("reconnects") == 0
            assert run.book("BTC-USDT") is not None
        # without our ping the simulator closes an idle connection (code 4004): reconnects
        with run_okx(sim, symbols=["BTC-USDT"], stale_after_ms=30000) as run:
            run.wait_live(["BTC-USDT"])
            sim.inject_fault("stall", duration_ms=4500)  # past the 3 s idle timeout
            wait_until(lambda: sim.stats()["okx_idle_closes"] >= 1, 10, "the idle close")
            wait_until(lambda: run.stat("reconnects") >= 1, 10, "a reconnect")
            run.wait_live(["BTC-USDT"])
    finally:
        sim.stop()


def test_e2e_okx_bad_input_is_reported_and_the_stream_goes_on(okx_sim: Simulator) -> None:
    okx_sim.inject_fault("subscribe_error", "BTC-USD-250926")
    with run_okx(okx_sim, symbols=INSTS) as run:
        run.wait_live([i for i in INSTS if i != "BTC-USD-250926"])
        wait_until(lambda: bool(run.statuses("error", "subscribe_error")), 10, "error event")
        errors = run.statuses("error", "subscribe_error")
        assert "60018" in errors[0].message and "BTC-USD-250926" in errors[0].message
        assert "channel books" in errors[0].message
        frames = [
            '{"arg":{"channel":"candle1m","instId":"BTC-USDT"},"data":[["1","2","3"]]}',
            '{"arg":{"channel":"trades","instId":"BTC-USDT"},"data":{"not":"an array"}}',
            '{"event":"error","code":"60012","msg":"Invalid request","connId":"1"}',
        ]
        unknown = (
            '{"arg":{"channel":"trades","instId":"NOPE-USDT"},"data":[{"instId":"NOPE-USDT",'
            '"tradeId":"1","px":"1","sz":"1","side":"buy","ts":"1"}]}'
        )
        for text in [*frames, *[unknown] * 5]:
            okx_sim.inject_raw(text)
        wait_until(lambda: bool(run.statuses("error", "unknown_symbol")), 10, "unknown instId")
        wait_until(lambda: bool(run.statuses("error", "unknown_event")), 10, "unknown channel")
        wait_until(lambda: bool(run.statuses("error", "malformed_frame")), 10, "malformed data")
        run.wait_stat("unknown_symbols", 5)
        run.settle()
        assert run.stat("instrument_fetches") == 1  # once, not per message
        assert run.stat("unknown_symbols") == 5
        assert len(run.statuses("error", "unknown_symbol")) == 1
        run.wait_stat("checksum_ok", run.stat("checksum_ok") + 20)
        assert run.stat("checksum_failed") == 0 and run.stat("resyncs") == 0


def test_e2e_okx_rest_bootstrap_and_venue_channels() -> None:
    # no pushed snapshot (the announced change): books bootstrap from REST automatically
    sim = make_sim(okx_push_snapshot=False, okx_checksum=False)
    try:
        with run_okx(sim, symbols=["BTC-USDT-SWAP", "BTC-USDT"]) as run:
            run.wait_live(["BTC-USDT-SWAP", "BTC-USDT"])
            run.wait_stat("rest_snapshots", 2)
            run.wait_stat("book_updates", 100, 20)
            assert run.stat("checksum_ok") == 0 and run.stat("checksum_absent") > 100
            assert run.stat("gaps") == 0 and run.stat("resyncs") == 0
            assert_books_match_sim(run, sim, ["BTC-USDT-SWAP", "BTC-USDT"])
    finally:
        sim.stop()


def test_e2e_okx_books5_and_trades_all(okx_sim: Simulator) -> None:
    with run_okx(
        okx_sim, symbols=["BTC-USDT-SWAP"], venue_channels=("books5", "trades-all")
    ) as run:
        run.wait_live(["BTC-USDT-SWAP"])
        wait_until(lambda: len(run.events(xt.Trade)) > 5, 20, "trades from the business socket")
        run.wait_stat("sockets", 2)
        book = run.book("BTC-USDT-SWAP")
        assert book is not None and book.depth() == (5, 5)
        assert all(u.is_snapshot for u in run.events(xt.BookUpdate))
