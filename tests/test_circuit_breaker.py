"""The per-venue circuit breaker over real loopback sockets.

The websocket URL points at a loopback port where nothing listens (the simulator serves the
REST side), so every connection attempt is refused. The breaker must open after repeated
failures (status ``circuit_open``, gauge 1 in ``/metrics``), probe once per cool-down
(``circuit_half_open``), and close as soon as a server answers on that port again
(``circuit_closed``), after which the books go live.
"""

from __future__ import annotations

import urllib.request

from prometheus_client.parser import text_string_to_metric_families

import xtrader as xt
from conftest import EventLog, RunningRuntime, symbol_names, wait_until
from ports import free_port
from xtrader import Simulator

SYMBOLS = ["BTCUSDT", "ETHUSDT"]


def _circuit_state(addr: str) -> float:
    with urllib.request.urlopen(f"http://{addr}/metrics", timeout=5) as r:
        text = r.read().decode()
    for fam in text_string_to_metric_families(text):
        if fam.name == "xtrader_circuit_state":
            for sample in fam.samples:
                if sample.labels.get("exchange") == "binance":
                    return float(sample.value)
    raise AssertionError("xtrader_circuit_state{exchange=binance} missing from /metrics")


def _reasons(log: EventLog) -> list[str]:
    return [ev.reason for _, ev in log.snapshot() if isinstance(ev, xt.Status) and ev.reason]


def test_circuit_breaker_opens_probes_and_closes_when_the_venue_returns() -> None:
    rest = Simulator(symbols=SYMBOLS, rate=500.0, seed=3, port=0)
    rest.start()
    port = free_port()
    ws = Simulator(symbols=SYMBOLS, rate=500.0, seed=3, port=port)
    try:
        rt = xt.Runtime(metrics="127.0.0.1:0")
        rt.subscribe("binance", SYMBOLS, ws_url=f"ws://127.0.0.1:{port}", rest_url=rest.rest_url)
        log = EventLog()
        rt.add_sink(log)
        run = RunningRuntime(rt, log, symbol_names(rest))
        run.thread.start()
        try:
            wait_until(lambda: "circuit_open" in _reasons(log), 30, "the breaker to open")
            addr = rt.metrics_addr
            assert addr is not None
            assert _circuit_state(addr) in (1.0, 2.0)
            opened = next(
                ev
                for _, ev in log.snapshot()
                if isinstance(ev, xt.Status) and ev.reason == "circuit_open"
            )
            assert "consecutive connection failures" in opened.message
            assert opened.exchange == "binance"
            failures_before_open = _reasons(log).count("connect_failed")
            assert failures_before_open >= 5
            wait_until(lambda: "circuit_half_open" in _reasons(log), 30, "a half-open probe")
            # while open, attempts are held back: far fewer failures than backoff alone gives
            assert rt.stats()["circuit_opened"] >= 1
            # the venue comes back on the same port: the next probe closes the breaker
            ws.start()
            wait_until(lambda: "circuit_closed" in _reasons(log), 30, "the breaker to close")
            run.wait_live(SYMBOLS, timeout=30)
            assert _circuit_state(addr) == 0.0
        finally:
            run.stop()
    finally:
        ws.stop()
        rest.stop()
