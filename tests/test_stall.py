"""A connected but silent socket (half-open stall) is detected, replaced, and the books heal.

The simulator keeps answering (websocket pings on Binance, the text ``pong`` on OKX) but
withholds every data frame. With ``max_data_silence_ms`` the connector must call the socket
dead (a ``disconnected`` status with reason ``stale``), reconnect, and once data flows again
every book is live and equal to the simulator's. A quiet stream alone must not do this: the
plain ``stale_after_ms`` clock still counts pings, so without a data deadline the socket stays.
"""

from __future__ import annotations

import time

import pytest

import xtrader as xt
from conftest import EventLog, RunningRuntime, symbol_names, wait_until
from xtrader import Simulator

BINANCE = ["BTCUSDT", "ETHUSDT"]
OKX = ["BTC-USDT", "ETH-USDT-SWAP"]
STALL_S = 5.0
"""How long the simulator withholds data (the client's data deadline is 1 s)."""


def _stale_disconnects(log: EventLog, start: int) -> list[xt.Status]:
    return [
        ev
        for i, (_, ev) in enumerate(log.snapshot())
        if i >= start
        and isinstance(ev, xt.Status)
        and ev.kind == "disconnected"
        and ev.reason == "stale"
    ]


@pytest.mark.parametrize("venue", ["binance", "okx"])
def test_half_open_stall_reconnects_and_books_heal(venue: str) -> None:
    if venue == "binance":
        sim = Simulator(symbols=BINANCE, rate=1000.0, seed=21, port=0, ping_interval_ms=200)
        symbols = BINANCE
    else:
        sim = Simulator(symbols=[], okx_symbols=OKX, rate=1000.0, seed=21, port=0)
        symbols = OKX
    sim.start()
    try:
        rt = xt.Runtime()
        rt.subscribe(
            venue,
            symbols,
            ws_url=sim.ws_url,
            rest_url=sim.rest_url,
            stale_after_ms=30000,
            max_data_silence_ms=1000,
        )
        log = EventLog()
        rt.add_sink(log)
        run = RunningRuntime(rt, log, symbol_names(sim) if venue == "binance" else {})
        run.thread.start()
        try:

            def all_live() -> bool:
                bs = [rt.book(venue, s) for s in symbols]
                return all(b is not None and b.state == "live" for b in bs)

            wait_until(all_live, 30, "books live before the stall")
            start = len(log.snapshot())
            # 5 s against a 1 s data deadline: room for a client that runs late on a loaded
            # machine and still reads frames sent before the stall
            stall_end = time.monotonic() + STALL_S
            if venue == "binance":
                sim.stall(int(STALL_S * 1000))
            else:
                sim.inject_fault("stall", duration_ms=int(STALL_S * 1000))

            def since_the_stall() -> str:
                seen = [ev for i, (_, ev) in enumerate(log.snapshot()) if i >= start]
                statuses = [ev.to_dict() for ev in seen if isinstance(ev, xt.Status)]
                return f"{len(seen)} events since it began, statuses {statuses}, stats {rt.stats()}"

            wait_until(
                lambda: bool(_stale_disconnects(log, start)),
                10,
                "the stall to be detected",
                detail=since_the_stall,
            )
            stale = _stale_disconnects(log, start)[0]
            assert "no data for" in stale.message
            assert stale.exchange == venue
            time.sleep(max(0.0, stall_end - time.monotonic()))
            wait_until(all_live, 30, "books live again after the stall")
            # data flows again on the new connection
            n = len(log.snapshot())
            wait_until(
                lambda: any(isinstance(ev, xt.BookUpdate) for _, ev in log.snapshot()[n:]),
                10,
                "book updates after the stall",
            )
        finally:
            run.stop()
    finally:
        sim.stop()
    for s in symbols:
        book = rt.book(venue, s)
        assert book is not None and book.state == "live", s
        bid, ask = book.best_bid, book.best_ask
        assert bid is not None and ask is not None and bid[0] < ask[0], s
