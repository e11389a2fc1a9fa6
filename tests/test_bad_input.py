"""Bad input from the venue: each problem yields a Status naming it and the stream goes on."""

from __future__ import annotations

import json
import time

import pytest

import xtrader as xt
from conftest import RunningRuntime, run_runtime, wait_until

SYMBOLS = ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
PROBLEM_KINDS = ("error", "resync")


def _now_ms() -> int:
    return int(time.time() * 1000)


def _trade_frame(native: str) -> str:
    ms = _now_ms()
    data = {
        "e": "trade",
        "E": ms,
        "s": native,
        "t": 42,
        "p": "1.25000000",
        "q": "3.00000000",
        "T": ms,
        "m": False,
        "M": True,
    }
    return json.dumps({"stream": f"{native.lower()}@trade", "data": data})


CASES = {
    "malformed_json": ("this is {not json", "malformed_frame", None),
    "truncated_frame": (_trade_frame("BTCUSDT")[:57], "malformed_frame", None),
    "unknown_event": (
        json.dumps(
            {
                "stream": "btcusdt@fancyEvent",
                "data": {"e": "fancyEvent", "E": _now_ms(), "s": "BTCUSDT"},
            }
        ),
        "unknown_event",
        "fancyEvent",
    ),
    "unknown_symbol": (_trade_frame("NOSUCHUSDT"), "unknown_symbol", "NOSUCHUSDT"),
}


def _wait_problem(
    run: RunningRuntime, start: int, reason: str, needle: str | None
) -> tuple[int, xt.Status]:
    """First status after `start` with `reason` whose message or symbol names `needle`."""
    names = set() if needle is None else {needle, run.names.get(needle, needle)}
    found: list[tuple[int, xt.Status]] = []
    seen_reason: list[dict[str, object]] = []

    def named(st: xt.Status) -> bool:
        text = st.message.lower()
        return not names or st.symbol in names or any(n.lower() in text for n in names)

    def seen() -> bool:
        candidates = [
            (i, st)
            for i, st in run.log.statuses(start)
            if st.kind in PROBLEM_KINDS and st.reason == reason
        ]
        seen_reason[:] = [st.to_dict() for _, st in candidates]
        found[:] = [(i, st) for i, st in candidates if named(st)]
        return bool(found)

    what = f"a status with reason {reason!r}" + (f" naming {needle}" if needle else "")
    try:
        wait_until(seen, 20, what)
    except BaseException:
        print(f"statuses with reason {reason!r}: {seen_reason}")
        raise
    index, status = found[0]
    assert status.message, "the status explains the problem"
    return index, status


def _keeps_flowing(run: RunningRuntime, after: int, natives: list[str]) -> None:
    for native in natives:

        def flowing(n: str = native) -> bool:
            return run.count(xt.Trade, n, after) > 0 and run.count(xt.BookUpdate, n, after) > 0

        wait_until(flowing, 20, f"{native} to keep flowing after the bad input")


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_frame_yields_status_and_stream_goes_on(sim: xt.Simulator, case: str) -> None:
    raw, reason, needle = CASES[case]
    with run_runtime(sim, SYMBOLS) as run:
        run.wait_live(SYMBOLS)
        start = len(run.log.snapshot())
        sim.inject_raw(raw)
        index, _ = _wait_problem(run, start, reason, needle)
        _keeps_flowing(run, index, SYMBOLS)
        run.wait_live(SYMBOLS)


def test_bad_input_unknown_subscribed_symbol(sim: xt.Simulator) -> None:
    with run_runtime(sim, ["BTCUSDT", "NOPEUSDT"]) as run:
        assert "NOPEUSDT" not in run.names  # not in the simulator's exchangeInfo
        _, status = _wait_problem(run, 0, "unknown_symbol", "NOPEUSDT")
        assert status.kind == "error"
        run.wait_live(["BTCUSDT"])
        _keeps_flowing(run, 0, ["BTCUSDT"])


def test_bad_input_failed_snapshot_recovers(sim: xt.Simulator) -> None:
    sim.fail_snapshots("ETHUSDT", 1)
    with run_runtime(sim, SYMBOLS) as run:
        index, status = _wait_problem(run, 0, "snapshot_failed", "ETHUSDT")
        assert run.is_symbol(status.symbol, "ETHUSDT") or "ETHUSDT" in status.message
        run.wait_live(SYMBOLS)
        _keeps_flowing(run, index, SYMBOLS)
