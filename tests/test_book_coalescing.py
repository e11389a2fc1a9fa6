"""Live ``on_book`` coalescing: once per book per batch, with that book's last update."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

import xtrader as xt
from xtrader import _core
from xtrader._dispatch import Dispatcher


def _replayed(captures: Path) -> list[Any]:
    rest = [str(captures / "BINANCE.http.0.0"), str(captures / "BINANCE.0")]
    return list(
        _core.replay_capture(str(captures / "BINANCE.ws.1.0"), rest, collect_events=True).events
    )


def _reference(updates: list[Any]) -> list[Any]:
    """Last update per (exchange, symbol), books in first-appearance order."""
    last: dict[tuple[str, str], Any] = {}
    for u in updates:
        last[(u.exchange, u.symbol)] = u
    return list(last.values())


def test_last_book_updates_keeps_each_books_last_update_in_first_seen_order(
    captures: Path,
) -> None:
    updates = [e for e in _replayed(captures) if isinstance(e, xt.BookUpdate)]
    assert len({(u.exchange, u.symbol) for u in updates}) >= 4
    rng = random.Random(3)
    for _ in range(50):
        batch = rng.sample(updates, rng.randint(1, len(updates)))
        got = _core.last_book_updates(batch)
        assert [id(u) for u in got] == [id(u) for u in _reference(batch)]
    assert _core.last_book_updates([]) == []


def test_last_book_updates_names_a_wrong_item() -> None:
    with pytest.raises(TypeError, match="BookUpdate objects, got str"):
        _core.last_book_updates(["BTCUSDT"])  # type: ignore[list-item]


class _Books(xt.Strategy):
    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []
        self.trades = 0

    def on_trade(self, trade: xt.Trade) -> None:
        self.trades += 1

    def on_book(self, book: xt.Book) -> None:
        self.seen.append((book.exchange, book.symbol))


@pytest.mark.parametrize("coalesce", [True, False])
def test_dispatcher_calls_on_book_once_per_book_per_batch_when_live(
    captures: Path, coalesce: bool
) -> None:
    events = _replayed(captures)
    updates = [e for e in events if isinstance(e, xt.BookUpdate)]
    strategy = _Books()
    dispatcher = Dispatcher([strategy], coalesce_books=coalesce)
    expected: list[tuple[str, str]] = []
    for start in range(0, len(events), 40):
        batch = events[start : start + 40]
        tally = dispatcher.dispatch(batch)
        books = [e for e in batch if isinstance(e, xt.BookUpdate)]
        assert tally.get(xt.BookUpdate, 0) == len(books)
        chosen = _reference(books) if coalesce else books
        expected += [(u.exchange, u.symbol) for u in chosen]
    assert strategy.seen == expected
    assert strategy.trades == sum(isinstance(e, xt.Trade) for e in events)
    assert dispatcher.counters["dispatched_book_updates"] == len(updates)
    if coalesce:
        assert len(strategy.seen) < len(updates)  # the capture's batches do coalesce
