"""User strategies: subclass `Strategy` and override the callbacks you need.

The same strategy runs live (`Runtime`), against the simulator and in replay (`replay`).
Callbacks run on the thread that called `Runtime.run`, one batch of events at a time; a
callback that raises is reported (once per strategy and callback) and the feed goes on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ._core import Book, Funding, Liquidation, OpenInterest, Quote, Status, Ticker, Trade

__all__ = ["Context", "Strategy"]


class _Host(Protocol):
    """What a `Context` needs from the thing that drives the strategies."""

    def book(self, exchange: str, symbol: str) -> Book | None: ...

    def stats(self) -> dict[str, int]: ...

    def stop(self) -> None: ...


class Context:
    """Handed to `Strategy.on_start`: access to books, counters and shutdown.

    Args:
        host: The `Runtime` (or replay driver) running the strategy.
    """

    __slots__ = ("_host",)

    def __init__(self, host: _Host) -> None:
        self._host = host

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

    Example:
        >>> class Spread(Strategy):
        ...     def on_book(self, book):
        ...         self.last = book.spread
    """

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

    def on_stop(self) -> None:
        """Called once after the last event, also after errors."""


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
    "on_stop",
)


def overrides(strategy: Strategy, callback: str) -> bool:
    """Whether `strategy`'s class overrides `callback` of the base class."""
    return getattr(type(strategy), callback, None) is not getattr(Strategy, callback)
