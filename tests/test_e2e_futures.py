"""End to end over loopback: Runtime + the real Binance futures connectors + the simulator's
USD-M and COIN-M profiles. Each test starts its own simulator on port 0 and stops it; every
wait is bounded."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from itertools import pairwise
from typing import Any, Literal

import pytest

import xtrader as xt
from conftest import EventLog, wait_until
from xtrader import Simulator
from xtrader._core import Engine

Profile = Literal["usdm", "coinm"]
EXCHANGE = {"usdm": "binance_usdm", "coinm": "binance_coinm"}
PREFIX = {"usdm": "/fapi/v1", "coinm": "/dapi/v1"}
ALL = ("trades", "book", "bbo", "funding", "liquidations", "open_interest")


def names(sim: Simulator, profile: Profile) -> dict[str, str]:
    """Native -> normalized symbol, computed here from the simulator's exchangeInfo."""
    url = sim.rest_url.rstrip("/") + PREFIX[profile] + "/exchangeInfo"
    with urllib.request.urlopen(url, timeout=5) as resp:
        info = json.load(resp)
    out = {}
    for s in info["symbols"]:
        base = f"{s['baseAsset']}-{s['quoteAsset']}"
        if s["contractType"] == "PERPETUAL":
            out[s["symbol"]] = f"{base}-PERP"
        else:
            day = datetime.fromtimestamp(s["deliveryDate"] / 1000, tz=UTC)
            out[s["symbol"]] = f"{base}-{day:%Y%m%d}"
    return out


class Run:
    """A Runtime on a futures simulator, run on a thread, with its event log."""

    def __init__(self, sim: Simulator, profile: Profile, rt: xt.Runtime, log: EventLog) -> None:
        self.sim, self.rt, self.log = sim, rt, log
        self.exchange = EXCHANGE[profile]
        self.names = names(sim, profile)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self.rt.run(duration=100.0)
        except BaseException as exc:  # surfaced by stop()
            self.error = exc

    def book(self, native: str) -> xt.Book | None:
        return self.rt.book(self.exchange, self.names[native])

    def wait_live(self, natives: Sequence[str], timeout: float = 30.0) -> None:
        def live() -> bool:
            books = [self.book(n) for n in natives]
            return all(b is not None and b.state == "live" for b in books)

        wait_until(live, timeout, f"{len(natives)} books to be live")

    def events(self, kind: type) -> list[Any]:
        return [ev for _, ev in self.log.snapshot() if isinstance(ev, kind)]

    def statuses(self, kind: str | None = None, reason: str | None = None) -> list[xt.Status]:
        return [
            st
            for st in self.events(xt.Status)
            if (kind is None or st.kind == kind) and (reason is None or st.reason == reason)
        ]


@contextmanager
def running(
    sim: Simulator,
    profile: Profile,
    symbols: Sequence[str],
    channels: Sequence[str] = ALL,
    **kw: Any,
) -> Iterator[Run]:
    rt = xt.Runtime(queue_capacity=65536, overflow="block", worker_threads=2)
    rt.subscribe(
        EXCHANGE[profile],
        symbols,
        channels=channels,
        ws_url=sim.ws_url,
        rest_url=sim.rest_url,
        **kw,
    )
    log = EventLog()
    rt.add_sink(log)
    run = Run(sim, profile, rt, log)
    run.thread.start()
    try:
        yield run
    finally:
        rt.stop()
        run.thread.join(timeout=20)
        assert not run.thread.is_alive(), "Runtime.run did not return within 20 s of stop()"
        if run.error is not None:
            raise run.error


@contextmanager
def simulator(profile: Profile, symbols: Sequence[str], **kw: Any) -> Iterator[Simulator]:
    kw.setdefault("rate", 1500.0)
    kw.setdefault("mark_interval_ms", 200)
    sim = Simulator(symbols=list(symbols), profile=profile, seed=3, max_client_msgs_per_s=10, **kw)
    sim.start()
    try:
        yield sim
    finally:
        sim.stop()


def uncrossed(book: xt.Book | None) -> bool:
    assert book is not None
    bid, ask = book.best_bid, book.best_ask
    return bid is not None and ask is not None and bid[0] < ask[0]


# ------------------------------------------------------------------------------------------


def test_e2e_futures_usdm_routes_books_and_derivatives() -> None:
    symbols = ["BTCUSDT", "ETHUSDT", "BTCUSDT_261225"]
    with simulator("usdm", symbols, liquidation_prob=0.5) as sim:
        with running(sim, "usdm", symbols, open_interest_interval_s=0.3) as run:
            assert run.names["BTCUSDT_261225"] == "BTC-USDT-20261225"
            run.wait_live(symbols)

            def everything() -> bool:
                kinds = (xt.Trade, xt.Quote, xt.BookUpdate, xt.Funding, xt.Liquidation)
                got = [{ev.native_symbol for ev in run.events(k)} for k in kinds]
                oi = {ev.native_symbol for ev in run.events(xt.OpenInterest)}
                return all(g >= set(symbols) for g in got) and oi >= set(symbols)

            wait_until(everything, 20, "trades, bbo, book, funding, liquidations, OI")
            for native in symbols:
                assert uncrossed(run.book(native)), native
            stats = run.rt.stats()
            # depth + bookTicker on /public, aggTrade + markPrice + forceOrder on /market
            assert stats["sockets"] == 2 and stats["connected"] == 2
            assert stats["gaps"] == 0 and stats["parse_errors"] == 0
    funding = {f.native_symbol: f for f in run.events(xt.Funding)}
    perp, dated = funding["BTCUSDT"], funding["BTCUSDT_261225"]
    assert perp.symbol == "BTC-USDT-PERP" and perp.mark_price and perp.index_price
    assert perp.funding_rate == pytest.approx(0.0001)
    assert perp.next_funding_time and perp.next_funding_time > perp.ts_exchange
    assert dated.funding_rate is None and dated.next_funding_time is None
    liq = run.events(xt.Liquidation)[0]
    assert liq.side in ("buy", "sell") and liq.size > 0 and liq.price > 0
    oi = run.events(xt.OpenInterest)[0]
    assert oi.open_interest > 0 and oi.ts_exchange > 0
    # bookTicker T (matching time) is a few ms before the local receive time
    quote = run.events(xt.Quote)[-1]
    assert 0 < quote.ts_recv - quote.ts_exchange < 5_000_000_000


def test_e2e_futures_coinm_sizes_are_usd() -> None:
    symbols = ["BTCUSD_PERP", "ETHUSD_261225"]
    with simulator("coinm", symbols) as sim:
        with running(sim, "coinm", symbols, open_interest_interval_s=0.3) as run:
            run.wait_live(symbols)

            def flowing() -> bool:
                oi = {ev.native_symbol for ev in run.events(xt.OpenInterest)}
                trades = {ev.native_symbol for ev in run.events(xt.Trade)}
                return oi >= set(symbols) and trades >= set(symbols)

            wait_until(flowing, 20, "COIN-M trades and open interest")
            books = {n: run.book(n) for n in symbols}
    contract = {"BTCUSD_PERP": 100.0, "ETHUSD_261225": 10.0}
    assert run.names == {"BTCUSD_PERP": "BTC-USD-PERP", "ETHUSD_261225": "ETH-USD-20261225"}
    for native, book in books.items():
        assert book is not None
        levels = book.bids() + book.asks()
        # the simulator trades whole contracts: every USD size is a multiple of the value
        assert levels and all(size % contract[native] == 0 for _, size in levels), native
    for ev in run.events(xt.Trade) + run.events(xt.OpenInterest):
        size = ev.size if isinstance(ev, xt.Trade) else ev.open_interest
        assert size > 0 and size % contract[ev.native_symbol] == 0


def test_e2e_futures_gap_resyncs_one_symbol_only_and_disconnect_recovers() -> None:
    symbols = ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
    with simulator("usdm", symbols) as sim:
        with running(sim, "usdm", symbols, channels=("book", "bbo", "trades")) as run:
            run.wait_live(symbols)
            start = len(run.log.snapshot())
            sim.inject_gap("ETHUSDT")

            def recovered() -> bool:
                after = run.log.snapshot()[start:]
                st = [ev for _, ev in after if isinstance(ev, xt.Status)]
                gap = any(s.kind == "resync" and s.reason == "gap" for s in st)
                back = any(s.kind == "recovered" for s in st)
                book = run.book("ETHUSDT")
                return gap and back and book is not None and book.state == "live"

            wait_until(recovered, 20, "ETHUSDT to resync after the gap")
            resynced = {s.symbol for s in run.statuses("resync")}
            assert resynced == {"ETH-USDT-PERP"}, resynced
            # a dropped connection: every book of the socket resyncs and comes back
            sim.disconnect()
            wait_until(lambda: run.rt.stats()["reconnects"] >= 1, 20, "a reconnect")
            assert sim.stats()["forced_disconnects"] >= 1
            run.wait_live(symbols)
            for native in symbols:
                assert uncrossed(run.book(native)), native


def test_e2e_futures_rollover_loses_and_duplicates_nothing() -> None:
    symbols = ["BTCUSDT", "ETHUSDT"]
    # the venue's 24 h compressed to 4 s: every socket must roll over several times. The new
    # socket starts a quarter of the lifetime (1 s) before the venue cuts the old one, room
    # for its connect and catch-up on a loaded machine
    with simulator("usdm", symbols, connection_lifetime_ms=4000, rate=800.0) as sim:
        with running(
            sim, "usdm", symbols, channels=("book", "trades", "funding"), connection_lifetime_s=4.0
        ) as run:
            run.wait_live(symbols)
            wait_until(
                lambda: len(run.statuses(reason="rollover")) >= 6, 30, "three rollovers per socket"
            )
        sessions = sim.stats()["ws_sessions"]
    assert run.statuses("resync") == [] and run.statuses(reason="gap") == []
    disconnected = [s.to_dict() for s in run.statuses("disconnected") if s.reason != "stopped"]
    assert disconnected == []
    trades: dict[str, list[int]] = defaultdict(list)
    for t in run.events(xt.Trade):
        trades[t.native_symbol].append(t.trade_id)
    for native in symbols:
        ids = sorted(trades[native])
        assert len(ids) > 50, native
        assert len(set(ids)) == len(ids), f"duplicate trades of {native}"
        assert ids == list(range(ids[0], ids[-1] + 1)), f"lost trades of {native}"
    seqs: dict[str, list[int]] = defaultdict(list)
    snapshots: dict[str, int] = defaultdict(int)
    for u in run.events(xt.BookUpdate):
        if u.is_snapshot:
            snapshots[u.native_symbol] += 1
        else:
            seqs[u.native_symbol].append(u.seq)
    for native in symbols:
        s = seqs[native]
        assert snapshots[native] == 1, "one snapshot at start, none at the rollovers"
        # every diff applied once, in order, across all the connections
        assert all(a < b for a, b in pairwise(s)), f"book order of {native}"
    marks = [(f.native_symbol, f.ts_exchange) for f in run.events(xt.Funding)]
    assert len(set(marks)) == len(marks), "duplicate mark prices"
    assert sessions >= 8


def test_e2e_futures_429_slows_the_snapshot_queue_and_418_backs_off() -> None:
    symbols = [f"C{i}USDT" for i in range(12)]
    with simulator("usdm", symbols) as sim:
        sim.rest_errors(429, count=6, retry_after_s=1)
        t0 = time.monotonic()
        with running(sim, "usdm", symbols, channels=("book",)) as run:
            run.wait_live(symbols)
            took = time.monotonic() - t0
            limited = run.statuses("error", "rate_limited")
            assert limited and all("429" in s.message for s in limited)
            assert run.statuses(reason="snapshot_failed") == []
            assert took >= 1.0, "the 429 paused the queue for Retry-After"
            assert run.rt.stats()["rest_throttled"] >= 1
            # counters are published a few times a second
            wait_until(lambda: run.rt.stats()["snapshots"] == len(symbols), 5, "counters")
            # a ban (418) stops every request for its Retry-After
            sim.rest_errors(418, count=1, retry_after_s=2)
            sim.inject_gap("C3USDT")
            t1 = time.monotonic()
            wait_until(lambda: run.rt.stats()["rest_banned"] >= 1, 10, "the 418")
            wait_until(lambda: len(run.statuses("recovered")) >= 1, 15, "C3USDT to recover")
            assert time.monotonic() - t1 >= 1.8
            assert sim.stats()["rest_faults"] == 7


def test_e2e_futures_300_symbols_sync_within_the_weight_budget() -> None:
    symbols = [f"C{i}USDT" for i in range(300)]
    # 600 weight per 2 s (published in exchangeInfo): 300 snapshots of weight 5 need 3 windows
    with simulator(
        "usdm", symbols, rate=3000.0, depth_levels=20, weight_limit=600, weight_window_ms=2000
    ) as sim:
        t0 = time.monotonic()
        with running(sim, "usdm", symbols, channels=("book",), depth_limit=100) as run:
            run.wait_live(symbols, timeout=45)
            took = time.monotonic() - t0
            wait_until(lambda: run.rt.stats()["snapshots"] == 300, 5, "counters")
            stats = run.rt.stats()
        sim_stats = sim.stats()
    assert sim_stats["weight_limit_hits"] == 0, "the client exceeded the venue's budget"
    assert sim_stats["weight_max_used"] <= 600
    assert stats["rest_budget_waits"] > 0, "the budget paced the snapshots"
    assert stats["snapshots"] == 300 and stats["gaps"] == 0
    assert stats["sockets"] == 2  # 200 streams per connection
    assert took >= 3.0, took


def test_e2e_futures_silent_stream_is_reported() -> None:
    symbols = ["BTCUSDT", "ETHUSDT"]
    with simulator("usdm", symbols, ping_interval_ms=300) as sim:
        sim.stall(60_000, stream="markPrice@1s")
        engine = Engine(worker_threads=2)
        engine.add_feed(
            "binance_usdm",
            symbols,
            channels=["book", "funding"],
            ws_url=sim.ws_url,
            rest_url=sim.rest_url,
            stale_after_ms=1000,
        )
        engine.start()
        seen: list[Any] = []
        try:
            deadline = time.monotonic() + 15

            def silent() -> set[str | None]:
                return {
                    ev.symbol
                    for ev in seen
                    if isinstance(ev, xt.Status) and ev.reason == "stream_silent"
                }

            while time.monotonic() < deadline and len(silent()) < 2:
                seen.extend(engine.next_batch(timeout_ms=200))
            sim_stats = sim.stats()
        finally:
            engine.stop()
        # server pings (every 300 ms, closed after 900 ms unanswered) were answered
        assert sim_stats["pings_sent"] > 5 and sim_stats["pong_timeouts"] == 0
        assert sim_stats["pongs_received"] > 0
        dropped = [ev for ev in seen if isinstance(ev, xt.Status) and ev.kind == "disconnected"]
        assert dropped == []
        reports = [ev for ev in seen if isinstance(ev, xt.Status) and ev.reason == "stream_silent"]
        assert {r.symbol for r in reports} == {"BTC-USDT-PERP", "ETH-USDT-PERP"}
        assert all(r.kind == "stale" and "funding" in r.message for r in reports)
        # the book streams kept flowing: only the muted stream was reported
        assert any(isinstance(ev, xt.BookUpdate) for ev in seen)
