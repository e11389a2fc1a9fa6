"""Hands batches of core events to strategies and sinks; owns callback error handling.

Shared by the live `Runtime` and `replay`, so a strategy sees the same calls in both. A user
callback that raises is logged once per (strategy, callback) with the event that triggered it,
counted every time, and never stops the feed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from ._core import (
    Book,
    BookUpdate,
    Funding,
    Liquidation,
    OpenInterest,
    Quote,
    Status,
    Ticker,
    Trade,
)
from .strategy import Context, Strategy, overrides

if TYPE_CHECKING:
    from ._core import Event

__all__ = ["Dispatcher", "Sink"]

logger = logging.getLogger("xtrader")

_EVENT_REPR_LIMIT = 300


class Sink(Protocol):
    """Receives every batch (recorders, displays). Errors are reported like callbacks'."""

    def write(self, events: Sequence[Event]) -> None:
        """Take a batch of events, in arrival order."""

    def tick(self, now: float) -> None:
        """Called at least every 100 ms with `time.monotonic()`; flush or refresh here."""

    def close(self) -> None:
        """Flush and release resources; called once at shutdown."""


def describe(event: object) -> str:
    """Short printable form of an event for error reports."""
    to_dict = getattr(event, "to_dict", None)
    try:
        text = repr(to_dict()) if callable(to_dict) else repr(event)
    except Exception:  # a broken repr must not hide the original error
        text = f"<{type(event).__name__}>"
    if len(text) > _EVENT_REPR_LIMIT:
        text = text[:_EVENT_REPR_LIMIT] + "..."
    return f"{type(event).__name__} {text}"


class Dispatcher:
    """Calls strategy callbacks for batches of events.

    Args:
        strategies: Strategies in the order they receive events.
        book_view: Maps a `BookUpdate` to the book handed to ``on_book`` (live: the update's
            live view; replay: a point-in-time view).
        coalesce_books: Call ``on_book`` once per (exchange, symbol) per batch, after the
            batch (live), instead of after every update (replay).
    """

    def __init__(
        self,
        strategies: Sequence[Strategy],
        book_view: Callable[[BookUpdate], Book] | None = None,
        coalesce_books: bool = True,
    ) -> None:
        self._strategies = list(strategies)
        self._book_view = book_view if book_view is not None else _live_book
        self._coalesce = coalesce_books
        self._on_trade = self._bound("on_trade")
        self._on_bbo = self._bound("on_bbo")
        self._on_book = self._bound("on_book")
        self._on_status = self._bound("on_status")
        # the flat event types: (callback, counter, bound handlers)
        self._routes: dict[type, tuple[str, str, list[tuple[Strategy, Callable[[Any], None]]]]] = {
            cls: (name, counter, self._bound(name))
            for cls, name, counter in (
                (Ticker, "on_ticker", "dispatched_tickers"),
                (Funding, "on_funding", "dispatched_funding"),
                (Liquidation, "on_liquidation", "dispatched_liquidations"),
                (OpenInterest, "on_open_interest", "dispatched_open_interest"),
            )
        }
        self._started: list[Strategy] = []
        self._stopped = False
        self._reported: set[tuple[int, str]] = set()
        self.errors: dict[str, int] = {}
        self.counters: dict[str, int] = {
            "dispatched_batches": 0,
            "dispatched_events": 0,
            "dispatched_trades": 0,
            "dispatched_bbo": 0,
            "dispatched_book_updates": 0,
            "dispatched_statuses": 0,
            "dispatched_tickers": 0,
            "dispatched_funding": 0,
            "dispatched_liquidations": 0,
            "dispatched_open_interest": 0,
            "callback_errors": 0,
            "sink_errors": 0,
        }

    def _bound(self, name: str) -> list[tuple[Strategy, Callable[[Any], None]]]:
        return [(s, getattr(s, name)) for s in self._strategies if overrides(s, name)]

    def start(self, ctx: Context) -> None:
        """Call ``on_start(ctx)`` on every strategy."""
        for strategy in self._strategies:
            self._started.append(strategy)
            if overrides(strategy, "on_start"):
                self._call(strategy, "on_start", strategy.on_start, ctx, None)

    def stop(self) -> None:
        """Call ``on_stop()`` on every started strategy, exactly once, whatever happened."""
        if self._stopped:
            return
        self._stopped = True
        for strategy in self._started:
            if overrides(strategy, "on_stop"):
                self._call(strategy, "on_stop", strategy.on_stop, None, None)

    def dispatch(self, batch: Sequence[Event]) -> None:
        """Deliver one batch, in order."""
        counters = self.counters
        counters["dispatched_batches"] += 1
        counters["dispatched_events"] += len(batch)
        pending: dict[tuple[str, str], Book] = {}
        for event in batch:
            if isinstance(event, BookUpdate):
                counters["dispatched_book_updates"] += 1
                view = self._book_view(event)
                if self._coalesce:
                    pending[(event.exchange, event.symbol)] = view
                else:
                    for strategy, fn in self._on_book:
                        self._call(strategy, "on_book", fn, view, event)
            elif isinstance(event, Quote):
                counters["dispatched_bbo"] += 1
                for strategy, fn in self._on_bbo:
                    self._call(strategy, "on_bbo", fn, event, event)
            elif isinstance(event, Trade):
                counters["dispatched_trades"] += 1
                for strategy, fn in self._on_trade:
                    self._call(strategy, "on_trade", fn, event, event)
            elif isinstance(event, Status):
                counters["dispatched_statuses"] += 1
                for strategy, fn in self._on_status:
                    self._call(strategy, "on_status", fn, event, event)
            else:
                route = self._routes.get(type(event))
                if route is not None:
                    name, counter, handlers = route
                    counters[counter] += 1
                    for strategy, fn in handlers:
                        self._call(strategy, name, fn, event, event)
        for view in pending.values():
            for strategy, fn in self._on_book:
                self._call(strategy, "on_book", fn, view, view)

    def _call(
        self,
        strategy: Strategy,
        name: str,
        fn: Callable[[Any], None] | Callable[[], None],
        arg: object,
        event: object,
    ) -> None:
        try:
            if name == "on_stop":
                fn()  # type: ignore[call-arg]
            else:
                fn(arg)  # type: ignore[call-arg]
        except Exception as exc:
            self._report(strategy, name, event, exc)

    def _report(self, strategy: Strategy, name: str, event: object, exc: BaseException) -> None:
        self.counters["callback_errors"] += 1
        label = f"{_name(strategy)}.{name}"
        self.errors[label] = self.errors.get(label, 0) + 1
        key = (id(strategy), name)
        if key in self._reported:
            return
        self._reported.add(key)
        logger.error(
            "strategy %s raised %s in %s on %s; the feed goes on (further errors of this "
            "callback are counted in stats()['callback_errors'], not logged)",
            _name(strategy),
            type(exc).__name__,
            name,
            describe(event) if event is not None else "(no event)",
            exc_info=exc,
        )

    def sink_error(self, sink: object, method: str, exc: BaseException) -> None:
        """Report a failing sink the same way as a failing callback."""
        self.counters["sink_errors"] += 1
        key = (id(sink), method)
        if key in self._reported:
            return
        self._reported.add(key)
        logger.error(
            "sink %s raised %s in %s; it keeps receiving events",
            type(sink).__name__,
            type(exc).__name__,
            method,
            exc_info=exc,
        )


def _live_book(update: BookUpdate) -> Book:
    return update.book


def _name(strategy: Strategy) -> str:
    try:
        return str(strategy.name)
    except Exception:
        return type(strategy).__name__
