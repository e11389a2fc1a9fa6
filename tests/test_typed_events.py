"""Typed events: frozen classes with readable repr, equality and to_dict; the stub matches."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

import xtrader as xt
from xtrader import _core


def test_events_are_frozen_comparable_and_printable(captures: Path) -> None:
    rest = [str(captures / "BINANCE.http.0.0"), str(captures / "BINANCE.0")]
    raw = _core.replay_capture(str(captures / "BINANCE.ws.1.0"), rest, collect_events=True)
    again = _core.replay_capture(str(captures / "BINANCE.ws.1.0"), rest, collect_events=True)
    seen: set[type] = set()
    for ev, twin in zip(raw.events, again.events, strict=True):
        cls = type(ev)
        if cls in seen:
            continue
        seen.add(cls)
        assert ev == twin and ev is not twin  # value equality across replays
        text = repr(ev)
        assert text.startswith(cls.__name__ + "(") and len(text) < 2000
        data = ev.to_dict()
        assert isinstance(data, dict) and data["exchange"] == "binance"
        assert {"exchange", "symbol"} <= set(data)
        with pytest.raises(AttributeError):
            ev.exchange = "other"
    assert {xt.Trade, xt.BookUpdate, xt.Status} <= seen


def test_events_are_left_out_of_the_cyclic_collector(captures: Path) -> None:
    # event objects hold no Python references, so the core untracks them: a collection has
    # nothing of theirs to traverse, and they stay whole across one
    rest = [str(captures / "BINANCE.http.0.0"), str(captures / "BINANCE.0")]
    raw = _core.replay_capture(str(captures / "BINANCE.ws.1.0"), rest, collect_events=True)
    assert raw.events
    assert raw.statuses
    assert not any(gc.is_tracked(ev) for ev in [*raw.events, *raw.statuses])
    before = [ev.to_dict() for ev in raw.events]
    kept = list(raw.events)
    holder: list[object] = [kept]
    holder.append(holder)  # a cycle through a list that holds events
    del holder
    gc.collect()
    assert [ev.to_dict() for ev in kept] == before


def test_package_is_typed() -> None:
    package = Path(xt.__file__).parent
    assert (package / "py.typed").is_file() and (package / "_core.pyi").is_file()
