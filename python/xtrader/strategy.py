"""User strategies: subclass `Strategy` and override the callbacks you need.

The same strategy runs live (`Runtime`, blocking or asyncio), against the simulator and in
replay (`replay`). Callbacks run on the thread that drives the runtime, one batch of events at
a time. A callback that raises is reported with the strategy, the callback and the event (the
first time; then counted) and the feed goes on, unless ``[runtime] on_error = "stop"``.

Filters (`exchanges`, `symbols`, `channels`, as class attributes or constructor arguments) are
applied before dispatch: a filtered-out event costs the strategy nothing.

Vectorized strategies override `Strategy.on_batch`: it is called once per channel that had rows
in a batch, with a polars DataFrame built from the Arrow table the core made (no per-row
Python objects). Its columns are the contract columns of that channel (ARCHITECTURE.md).
"""

from __future__ import annotations

import datetime as dt
import heapq
import itertools
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, ClassVar, Protocol

if TYPE_CHECKING:
    import polars as pl

    from ._core import Book, Funding, Liquidation, OpenInterest, Quote, Status, Ticker, Trade

__all__ = ["EVENT_CHANNELS", "Context", "Strategy", "Timer"]

EVENT_CHANNELS: tuple[str, ...] = (
    "trades",
    "book",
    "bbo",
    "ticker",
    "funding",
    "liquidations",
    "open_interest",
    "status",
)
"""Channel names a strategy can filter on (``status``: feed and book health events)."""

MAX_TIMERS = 10_000
"""Pending timers per runtime (a bound against runaway scheduling)."""


class _Host(Protocol):
    """What a `Context` needs from the thing that drives the strategies."""

    def book(self, exchange: str, symbol: str) -> Book | None: ...

    def stats(self) -> dict[str, int]: ...

    def stop(self) -> None: ...


class Timer:
    """Handle of a scheduled callback; `cancel` it to stop further calls."""

    __slots__ = ("cancelled", "fn", "interval", "strategy")

    def __init__(
        self, fn: Callable[[], object], interval: float | None, strategy: Strategy | None
    ) -> None:
        self.fn = fn
        self.interval = interval
        self.strategy = strategy
        self.cancelled = False

    def cancel(self) -> None:
        """Do not call the function again (safe to call from inside it)."""
        self.cancelled = True

    def __repr__(self) -> str:
        every = f" every {self.interval:g} s" if self.interval is not None else " once"
        state = " cancelled" if self.cancelled else ""
        return f"Timer({getattr(self.fn, '__qualname__', self.fn)!r}{every}{state})"


class Timers:
    """Monotonic timer queue run from the dispatcher loop (never from another thread)."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Timer]] = []
        self._ids = itertools.count()

    def add(self, due: float, timer: Timer) -> Timer:
        live = sum(1 for _, _, t in self._heap if not t.cancelled)
        if live >= MAX_TIMERS:
            raise RuntimeError(f"too many pending timers (limit {MAX_TIMERS})")
        heapq.heappush(self._heap, (due, next(self._ids), timer))
        return timer

    def next_due(self) -> float | None:
        """Monotonic time of the next pending timer, or None."""
        heap = self._heap
        while heap and heap[0][2].cancelled:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def pop_due(self, now: float, limit: int = 1000) -> list[Timer]:
        """Timers due at `now` (at most `limit`), periodic ones re-armed after `now`."""
        heap = self._heap
        out: list[Timer] = []
        while heap and heap[0][0] <= now and len(out) < limit:
            due, _, timer = heapq.heappop(heap)
            if timer.cancelled:
                continue
            out.append(timer)
            if timer.interval is not None:
                # next slot after now: a late loop does not cause a burst of calls
                missed = max(1, int((now - due) // timer.interval) + 1)
                heapq.heappush(heap, (due + missed * timer.interval, next(self._ids), timer))
        return out

    def __len__(self) -> int:
        return sum(1 for _, _, t in self._heap if not t.cancelled)


class Context:
    """Handed to `Strategy.on_start`: access to books, counters and shutdown.

    Args:
        host: The `Runtime` (or replay driver) running the strategy.
    """

    __slots__ = ("_host", "_strategy", "_timers")

    def __init__(
        self, host: _Host, timers: Timers | None = None, strategy: Strategy | None = None
    ) -> None:
        self._host = host
        self._timers = timers if timers is not None else Timers()
        self._strategy = strategy

    def bind(self, strategy: Strategy, timers: Timers | None = None) -> Context:
        """The same host for `strategy`: its timers are reported under its name."""
        return Context(self._host, timers if timers is not None else self._timers, strategy)

    def schedule(self, interval: float, fn: Callable[[], object]) -> Timer:
        """Call ``fn()`` every `interval` seconds (monotonic clock) from the dispatcher loop.

        The first call is `interval` seconds from now. A late loop skips missed slots rather
        than bursting. An exception in `fn` is reported like a callback's.

        Args:
            interval: Seconds between calls (> 0).
            fn: Called without arguments.

        Returns:
            A `Timer`; ``timer.cancel()`` stops it.
        """
        if not interval > 0:
            raise ValueError(f"interval must be > 0 seconds, got {interval}")
        return self._timers.add(
            time.monotonic() + interval, Timer(fn, float(interval), self._strategy)
        )

    def at(self, ts: int | float | dt.datetime, fn: Callable[[], object]) -> Timer:
        """Call ``fn()`` once at wall-clock time `ts` (or at once if it has passed).

        Args:
            ts: Nanoseconds since the epoch (``int``, like event timestamps), seconds since
                the epoch (``float``) or an aware ``datetime`` (naive means UTC).
            fn: Called without arguments.

        Returns:
            A `Timer`; ``timer.cancel()`` prevents the call.
        """
        if isinstance(ts, dt.datetime):
            if ts.tzinfo is None:
                ts = ts.replace(tzinfo=dt.UTC)
            seconds = ts.timestamp()
        elif isinstance(ts, int):
            seconds = ts / 1e9
        else:
            seconds = float(ts)
        delay = max(0.0, seconds - time.time())
        return self._timers.add(time.monotonic() + delay, Timer(fn, None, self._strategy))

    def book(self, exchange: str, symbol: str) -> Book | None:
        """The maintained book of `symbol` on `exchange`, or None if it is not subscribed.

        Args:
            exchange: Venue id, e.g. ``"binance"``.
            symbol: Normalized (``"BTC-USDT"``) or native (``"BTCUSDT"``) symbol.
        """
        return self._host.book(exchange, symbol)

    def stats(self) -> dict[str, int]:
        """Engine counters merged with the dispatcher's (see `Runtime.stats`)."""
        return self._host.stats()

    def stop(self) -> None:
        """Ask the runtime to stop: intake ends, queued events drain, then `on_stop` runs."""
        self._host.stop()


class Strategy:
    """Base class of user strategies; every callback is a no-op by default.

    Only overridden callbacks are called, so an unused channel costs nothing.

    Filters, as class attributes or constructor arguments (None: everything):

    - ``exchanges``: venue ids, e.g. ``("binance",)``;
    - ``symbols``: normalized (``"BTC-USDT"``) or native (``"BTCUSDT"``) names; status
      events without a symbol always pass;
    - ``channels``: any of `EVENT_CHANNELS` (``trades``, ``book``, ``bbo``, ``ticker``,
      ``funding``, ``liquidations``, ``open_interest``, ``status``).

    Args:
        exchanges: Overrides the class attribute when given.
        symbols: Overrides the class attribute when given.
        channels: Overrides the class attribute when given.

    Example:
        >>> class Spread(Strategy):
        ...     symbols = ("BTC-USDT",)
        ...     def on_book(self, book):
        ...         self.last = book.spread
    """

    exchanges: ClassVar[Iterable[str] | None] = None
    symbols: ClassVar[Iterable[str] | None] = None
    channels: ClassVar[Iterable[str] | None] = None

    def __init__(
        self,
        *,
        exchanges: Iterable[str] | None = None,
        symbols: Iterable[str] | None = None,
        channels: Iterable[str] | None = None,
    ) -> None:
        # instance attributes shadow the class-level defaults (validated by `filters`)
        for attr, value in (("exchanges", exchanges), ("symbols", symbols), ("channels", channels)):
            if value is not None:
                self.__dict__[attr] = value if isinstance(value, str) else tuple(value)

    @property
    def name(self) -> str:
        """Name used in reports and logs (the class name by default)."""
        return type(self).__name__

    def on_start(self, ctx: Context) -> None:
        """Called once before the first event.

        Args:
            ctx: Access to books, stats and `stop`.
        """

    def on_trade(self, trade: Trade) -> None:
        """Called for every trade.

        Args:
            trade: The trade; ``side`` is the aggressor side.
        """

    def on_book(self, book: Book) -> None:
        """Called once per batch for every book that changed in it.

        Args:
            book: Read-only view of the maintained book (``book.bids(10)``, ``book.spread``).
        """

    def on_bbo(self, quote: Quote) -> None:
        """Called for every best bid/offer update.

        Args:
            quote: The best bid and ask with their sizes.
        """

    def on_ticker(self, ticker: Ticker) -> None:
        """Called for every venue ticker (last trade, best quotes, 24 h statistics).

        Args:
            ticker: The ticker.
        """

    def on_funding(self, funding: Funding) -> None:
        """Called for mark price, index price and funding-rate updates of perpetuals.

        Args:
            funding: Mark, index, funding rate and funding times (ns).
        """

    def on_liquidation(self, liquidation: Liquidation) -> None:
        """Called for every liquidation order the venue publishes.

        Args:
            liquidation: Side of the liquidation order, price and size.
        """

    def on_open_interest(self, open_interest: OpenInterest) -> None:
        """Called for every open-interest update.

        Args:
            open_interest: Open interest in normalized units.
        """

    def on_status(self, status: Status) -> None:
        """Called for feed and book health events (connected, resync, live, error...).

        Args:
            status: ``kind``, ``reason``, ``message`` and the symbol it concerns (if any).
        """

    def on_batch(self, channel: str, frame: pl.DataFrame) -> None:
        """Vectorized delivery: called once per channel that had rows in a batch.

        Overriding it makes the runtime build columnar frames in Rust (Arrow) for every batch;
        the per-event callbacks keep working beside it.

        Args:
            channel: ``trades``, ``book`` (one row per level change), ``bbo``, ``ticker``,
                ``funding``, ``liquidations`` or ``open_interest``.
            frame: The rows of that channel in arrival order, contract columns, already
                filtered by the strategy's `exchanges` and `symbols`.
        """

    def on_stop(self) -> None:
        """Called once after the last event, also after errors and cancellation."""


CALLBACKS: tuple[str, ...] = (
    "on_start",
    "on_trade",
    "on_ticker",
    "on_funding",
    "on_liquidation",
    "on_open_interest",
    "on_book",
    "on_bbo",
    "on_status",
    "on_batch",
    "on_stop",
)

EVENT_CALLBACKS: tuple[str, ...] = (
    "on_trade",
    "on_ticker",
    "on_funding",
    "on_liquidation",
    "on_open_interest",
    "on_book",
    "on_bbo",
)
"""Callbacks that need one Python object per event."""


def overrides(strategy: Strategy, callback: str) -> bool:
    """Whether `strategy`'s class overrides `callback` of the base class."""
    return getattr(type(strategy), callback, None) is not getattr(Strategy, callback)


def filters(strategy: Strategy) -> tuple[frozenset[str] | None, ...]:
    """(exchanges, symbols, channels) of `strategy` as sets, None meaning everything.

    Raises:
        ValueError: For an unknown channel name or a bare string instead of a list.
    """
    out: list[frozenset[str] | None] = []
    for attr in ("exchanges", "symbols", "channels"):
        value = getattr(strategy, attr, None)
        if value is None:
            out.append(None)
            continue
        if isinstance(value, str):
            raise ValueError(f"{type(strategy).__name__}.{attr}: expected a list, got {value!r}")
        names = frozenset(str(v) for v in value)
        if attr == "channels":
            unknown = sorted(names - set(EVENT_CHANNELS))
            if unknown:
                raise ValueError(
                    f"{type(strategy).__name__}.channels: unknown channel {unknown[0]!r} "
                    f"(valid: {', '.join(EVENT_CHANNELS)})"
                )
        out.append(names)
    return tuple(out)
