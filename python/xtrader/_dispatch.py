"""Hands batches of core events to strategies and sinks; owns callback error handling.

Shared by the live `Runtime` (blocking and asyncio) and `replay`, so a strategy sees the same
calls in both. Per-strategy filters are resolved once, at construction: a strategy whose
``channels`` exclude a channel is not in that channel's handler list at all, and exchange and
symbol filters are one set lookup per event. A user callback that raises is logged once per
(strategy, callback) with the event that triggered it, counted every time, and never stops the
feed, unless ``on_error="stop"``: then the dispatcher stops delivering and asks its host to
stop, and `failure` holds the error.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, Protocol

import polars as pl

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
    last_book_updates,
)
from .strategy import EVENT_CALLBACKS, Context, Strategy, Timers, filters, overrides

if TYPE_CHECKING:
    from ._core import Event

__all__ = ["Dispatcher", "OnError", "Sink"]

logger = logging.getLogger("xtrader")

_EVENT_REPR_LIMIT = 300

OnError = Literal["continue", "stop"]

# event type -> (channel, callback, counter)
_ROUTES: dict[type, tuple[str, str, str]] = {
    Trade: ("trades", "on_trade", "dispatched_trades"),
    Quote: ("bbo", "on_bbo", "dispatched_bbo"),
    BookUpdate: ("book", "on_book", "dispatched_book_updates"),
    Status: ("status", "on_status", "dispatched_statuses"),
    Ticker: ("ticker", "on_ticker", "dispatched_tickers"),
    Funding: ("funding", "on_funding", "dispatched_funding"),
    Liquidation: ("liquidations", "on_liquidation", "dispatched_liquidations"),
    OpenInterest: ("open_interest", "on_open_interest", "dispatched_open_interest"),
}

Predicate = Callable[[Any], bool]
Handler = tuple[Strategy, str, Callable[[Any], None], Predicate | None]


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


def _predicate(
    exchanges: frozenset[str] | None, symbols: frozenset[str] | None
) -> Predicate | None:
    """Exchange/symbol test of one event (None when the strategy takes everything)."""
    if exchanges is None and symbols is None:
        return None

    def accept(event: Any) -> bool:
        if exchanges is not None and event.exchange not in exchanges:
            return False
        if symbols is not None:
            symbol = event.symbol
            if symbol is None:  # venue-wide status
                return True
            if symbol not in symbols and getattr(event, "native_symbol", None) not in symbols:
                return False
        return True

    return accept


def type_tally(batch: Sequence[Any]) -> Mapping[type, int]:
    """How many items of each type `batch` holds; a batch of one type (the common case at
    load) is one C-level scan."""
    if not batch:
        return {}
    types = list(map(type, batch))
    first = types[0]
    same = types.count(first)
    return {first: same} if same == len(types) else Counter(types)


class Dispatcher:
    """Calls strategy callbacks for batches of events, columnar frames and timers.

    Args:
        strategies: Strategies in the order they receive events.
        book_view: Maps a `BookUpdate` to the book handed to ``on_book`` (live: the update's
            live view; replay: a point-in-time view).
        coalesce_books: Call ``on_book`` once per (exchange, symbol) per batch, after the
            batch (live), instead of after every update (replay).
        on_error: ``"continue"`` (report and go on) or ``"stop"`` (stop delivering, call
            `on_failure`, keep the error in `failure`).
        on_failure: Called once when a callback fails under ``on_error="stop"``.

    Raises:
        ValueError: For a strategy with an invalid filter.
    """

    def __init__(
        self,
        strategies: Sequence[Strategy],
        book_view: Callable[[BookUpdate], Book] | None = None,
        coalesce_books: bool = True,
        on_error: OnError = "continue",
        on_failure: Callable[[], None] | None = None,
    ) -> None:
        if on_error not in ("continue", "stop"):
            raise ValueError(f"on_error must be 'continue' or 'stop', got {on_error!r}")
        self._strategies = list(strategies)
        self._book_view = book_view if book_view is not None else _live_book
        self._coalesce = coalesce_books
        self._on_error = on_error
        self._on_failure = on_failure
        self.timers = Timers()
        self.failure: tuple[str, BaseException] | None = None
        self._routes: dict[type, list[Handler]] = {}
        self._book_handlers: list[Handler] = []
        self._batch_handlers: list[
            tuple[Strategy, Callable[[str, pl.DataFrame], None], tuple[frozenset[str] | None, ...]]
        ] = []
        for strategy in self._strategies:
            exchanges, symbols, channels = filters(strategy)
            predicate = _predicate(exchanges, symbols)
            for cls, (channel, name, _) in _ROUTES.items():
                if not overrides(strategy, name):
                    continue
                if channels is not None and channel not in channels:
                    continue
                handler = (strategy, name, getattr(strategy, name), predicate)
                if cls is BookUpdate:
                    self._book_handlers.append(handler)
                else:
                    self._routes.setdefault(cls, []).append(handler)
            if overrides(strategy, "on_batch"):
                self._batch_handlers.append(
                    (strategy, strategy.on_batch, (exchanges, symbols, channels))
                )
        # per event type: the callable the hot loop calls (the bound callback itself when one
        # unfiltered strategy handles the type) and who to blame when it raises
        self._fast: dict[type, Callable[[Any], None]] = {}
        self._owner: dict[type, tuple[Strategy, str]] = {}
        for cls, handlers in self._routes.items():
            strategy, name, fn, accept = handlers[0]
            if len(handlers) == 1 and accept is None:
                self._fast[cls] = fn
                self._owner[cls] = (strategy, name)
            else:
                self._fast[cls] = self._fan_out(handlers)
        for cls in _ROUTES:
            self._fast.setdefault(cls, _ignore)
        # live (coalesced) book updates are only collected during the loop, by a C-level
        # append: no Python frame per update; the last one per book is picked after it
        self._book_updates: list[BookUpdate] = []
        if not self._book_handlers:
            self._fast[BookUpdate] = _ignore
        elif coalesce_books:
            self._fast[BookUpdate] = self._book_updates.append
        else:
            self._fast[BookUpdate] = self._on_book_update
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
            "dispatched_frames": 0,
            "dispatched_rows": 0,
            "timer_calls": 0,
            "callback_errors": 0,
            "sink_errors": 0,
        }

    # ------------------------------------------------------------------------ what is needed

    @property
    def needs_objects(self) -> bool:
        """Whether some strategy has a per-event callback (one Python object per event)."""
        return any(overrides(s, name) for s in self._strategies for name in EVENT_CALLBACKS)

    @property
    def needs_frames(self) -> bool:
        """Whether some strategy overrides ``on_batch`` (columnar frames per batch)."""
        return bool(self._batch_handlers)

    @property
    def failed(self) -> bool:
        """Whether a callback failed under ``on_error="stop"``."""
        return self.failure is not None

    # ------------------------------------------------------------------------------ lifecycle

    def start(self, ctx: Context) -> None:
        """Call ``on_start(ctx)`` on every strategy (each with its own view of `ctx`)."""
        for strategy in self._strategies:
            self._started.append(strategy)
            if overrides(strategy, "on_start") and not self.failed:
                self._call(
                    strategy, "on_start", strategy.on_start, ctx.bind(strategy, self.timers), None
                )

    def stop(self) -> None:
        """Call ``on_stop()`` on every started strategy, exactly once, whatever happened."""
        if self._stopped:
            return
        self._stopped = True
        for strategy in self._started:
            if overrides(strategy, "on_stop"):
                try:
                    strategy.on_stop()
                except Exception as exc:
                    self._report(strategy, "on_stop", None, exc, may_stop=False)

    # ------------------------------------------------------------------------------ delivery

    def dispatch(self, batch: Sequence[Event]) -> Mapping[type, int]:
        """Deliver one batch of event objects, in order; returns how many events of each type
        the batch held (so the caller need not scan it again for, say, statuses).

        The per-type counters count a batch only when it was delivered whole (no failure
        under ``on_error="stop"``). The tally is taken after the callbacks ran, so it costs the
        batch's events no latency.
        """
        if self.failure is None:
            self._deliver(batch)
        tally = type_tally(batch)
        if self.failure is None:
            counters = self.counters
            for cls, count in tally.items():
                route = _ROUTES.get(cls)
                if route is not None:
                    counters[route[2]] += count
        return tally

    def _deliver(self, batch: Sequence[Event]) -> None:
        """The callbacks of one batch; returns early once a failure stops delivery.

        Hot path: one dict lookup and one call per event when a single unfiltered strategy
        handles that event type; the ``try`` is around the whole loop (free until something
        raises) and the loop resumes after the failing event.
        """
        counters = self.counters
        counters["dispatched_batches"] += 1
        counters["dispatched_events"] += len(batch)
        deliver = self._fast
        books = self._book_updates
        books.clear()
        events = iter(batch)
        while True:
            event: Any = None
            try:
                for event in events:
                    deliver[type(event)](event)
                break
            except _Abort:
                return
            except Exception as exc:
                owner = self._owner.get(type(event))
                if owner is None:  # not an event type: skip it
                    if type(event) in deliver:
                        raise  # a bug in the dispatcher itself
                    continue
                self._report(owner[0], owner[1], event, exc)
                if self.failure is not None:
                    return
        if books:
            last = last_book_updates(books)
            books.clear()
            for update in last:
                self._deliver_book(self._book_view(update), update)
                if self.failure is not None:
                    return

    def _on_book_update(self, event: BookUpdate) -> None:
        """One book update delivered as it comes (replay: no coalescing)."""
        self._deliver_book(self._book_view(event), event)
        if self.failure is not None:
            raise _Abort

    def _fan_out(self, handlers: list[Handler]) -> Callable[[Any], None]:
        """One callable delivering an event to several (or filtered) handlers, in order."""
        report = self._report

        def deliver(event: Any) -> None:
            for strategy, name, fn, accept in handlers:
                if accept is not None and not accept(event):
                    continue
                try:
                    fn(event)
                except Exception as exc:
                    report(strategy, name, event, exc)
                    if self.failure is not None:
                        raise _Abort from None

        return deliver

    def _deliver_book(self, view: Book, event: BookUpdate) -> None:
        for strategy, name, fn, accept in self._book_handlers:
            if accept is not None and not accept(event):
                continue
            try:
                fn(view)
            except Exception as exc:
                self._report(strategy, name, event, exc)
                if self.failure is not None:
                    return

    def dispatch_frames(self, frames: Mapping[str, Any]) -> None:
        """Deliver columnar tables (channel -> Arrow table or polars frame) to ``on_batch``.

        One call per strategy and channel with rows (after its filters), channels in the
        order of `frames`.
        """
        if self.failure is not None or not self._batch_handlers:
            return
        counters = self.counters
        for channel, table in frames.items():
            frame = table if isinstance(table, pl.DataFrame) else pl.DataFrame(table)
            if frame.height == 0:
                continue
            counters["dispatched_frames"] += 1
            counters["dispatched_rows"] += frame.height
            for strategy, fn, (exchanges, symbols, channels) in self._batch_handlers:
                if channels is not None and channel not in channels:
                    continue
                part = frame
                if exchanges is not None:
                    part = part.filter(pl.col("exchange").is_in(list(exchanges)))
                if symbols is not None:
                    wanted = pl.col("symbol").is_in(list(symbols))
                    if "native_symbol" in part.columns:
                        wanted = wanted | pl.col("native_symbol").is_in(list(symbols))
                    part = part.filter(wanted)
                if part.height == 0:
                    continue
                try:
                    fn(channel, part)
                except Exception as exc:
                    self._report(
                        strategy, "on_batch", f"{channel} frame of {part.height} rows", exc
                    )
                    if self.failure is not None:
                        return

    def run_timers(self, now: float | None = None) -> None:
        """Call the timers due at `now` (monotonic; default: now)."""
        if self.failure is not None:
            return
        due = self.timers.pop_due(time.monotonic() if now is None else now)
        for timer in due:
            if timer.cancelled:
                continue
            self.counters["timer_calls"] += 1
            try:
                timer.fn()
            except Exception as exc:
                fn_name = getattr(timer.fn, "__qualname__", repr(timer.fn))
                self._report(timer.strategy, f"timer {fn_name}", None, exc)
                if self.failure is not None:
                    return

    def next_timer_in(self, now: float | None = None) -> float | None:
        """Seconds until the next timer is due (0 if overdue), or None without timers."""
        due = self.timers.next_due()
        if due is None:
            return None
        return max(0.0, due - (time.monotonic() if now is None else now))

    # -------------------------------------------------------------------------------- errors

    def _call(
        self,
        strategy: Strategy,
        name: str,
        fn: Callable[[Any], None],
        arg: object,
        event: object,
    ) -> None:
        try:
            fn(arg)
        except Exception as exc:
            self._report(strategy, name, event, exc)

    def _report(
        self,
        strategy: Strategy | None,
        name: str,
        event: object,
        exc: BaseException,
        may_stop: bool = True,
    ) -> None:
        self.counters["callback_errors"] += 1
        who = _name(strategy) if strategy is not None else "(no strategy)"
        label = f"{who}.{name}"
        self.errors[label] = self.errors.get(label, 0) + 1
        on_event = describe(event) if isinstance(event, _EVENT_TYPES) else str(event or "")
        on_event = on_event or "(no event)"
        if may_stop and self._on_error == "stop" and self.failure is None:
            self.failure = (label, exc)
            logger.error(
                "strategy %s raised %s in %s on %s; stopping the run (on_error='stop')",
                who,
                type(exc).__name__,
                name,
                on_event,
                exc_info=exc,
            )
            if self._on_failure is not None:
                self._on_failure()
            return
        key = (id(strategy), name)
        if key in self._reported:
            return
        self._reported.add(key)
        logger.error(
            "strategy %s raised %s in %s on %s; the feed goes on (further errors of this "
            "callback are counted in stats()['callback_errors'], not logged)",
            who,
            type(exc).__name__,
            name,
            on_event,
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


_EVENT_TYPES = (*_ROUTES, Book)


class _Abort(Exception):  # noqa: N818 - control flow, not an error
    """Raised by a fan-out after a failure under ``on_error="stop"``: end the batch."""


def _ignore(event: object) -> None:
    """Delivery of an event type no strategy handles."""


def _live_book(update: BookUpdate) -> Book:
    return update.book


def _name(strategy: Strategy) -> str:
    try:
        return str(strategy.name)
    except Exception:
        return type(strategy).__name__
