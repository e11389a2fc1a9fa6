"""A panic in a Rust socket task never reaches Python: it is reported and the socket restarts.

`Engine.inject_panic` makes one tick of each socket task of a venue panic (a test hook: no
input can make the core panic, the fuzz targets check that). The process must go on, a
``panic`` status must name what happened, and the books must be live again with data
flowing, while Python keeps running.
"""

from __future__ import annotations

import xtrader as xt
from conftest import EventLog, run_runtime, wait_until

SYMBOLS = ["BTCUSDT", "ETHUSDT", "SOLUSDT"]


def test_panic_in_a_socket_task_is_reported_and_the_socket_restarts(
    sim: xt.Simulator,
) -> None:
    with run_runtime(sim, SYMBOLS) as run:
        run.wait_live(SYMBOLS)
        start = len(run.log.snapshot())
        assert run.rt._engine.inject_panic("binance") == 1

        def panics(log: EventLog) -> list[xt.Status]:
            return [
                ev
                for i, (_, ev) in enumerate(log.snapshot())
                if i >= start and isinstance(ev, xt.Status) and ev.reason == "panic"
            ]

        wait_until(lambda: bool(panics(run.log)), 10, "the panic status")
        status = panics(run.log)[0]
        assert status.kind == "error" and "panic" in status.message
        after = len(run.log.snapshot())
        wait_until(
            lambda: any(isinstance(ev, xt.Trade) for _, ev in run.log.snapshot()[after:]),
            30,
            "trades after the restart",
        )
        run.wait_live(SYMBOLS)
    assert run.rt.stats()["connected"] == 0, "the panicked connection is not counted as open"
