"""The demo strategy of the embedded default run (``python -m xtrader``).

It keeps the latest spread and mid of every book, counts trades and traded volume per symbol
and status events per kind, prints nothing per event, and reports a summary at stop.
"""

from __future__ import annotations

import logging
import sys
from collections import Counter
from typing import TYPE_CHECKING

from .strategy import Context, Strategy

if TYPE_CHECKING:
    from ._core import Book, Quote, Status, Trade

__all__ = ["DemoStrategy"]

logger = logging.getLogger("xtrader.demo")


class DemoStrategy(Strategy):
    """Tracks spread per symbol and counts trades.

    Args:
        report: Print a summary to stderr at stop.
    """

    def __init__(self, report: bool = True) -> None:
        self.report = report
        self.spreads: dict[str, float] = {}
        self.mids: dict[str, float] = {}
        self.trades: Counter[str] = Counter()
        self.volume: dict[str, float] = {}
        self.quotes = 0
        self.statuses: Counter[str] = Counter()
        self.crossed = 0
        self.started = False
        self.stopped = False

    def on_start(self, ctx: Context) -> None:
        self.started = True

    def on_trade(self, trade: Trade) -> None:
        self.trades[trade.symbol] += 1
        self.volume[trade.symbol] = self.volume.get(trade.symbol, 0.0) + trade.size

    def on_book(self, book: Book) -> None:
        spread = book.spread
        if spread is None:
            return
        if spread <= 0:
            self.crossed += 1
        self.spreads[book.symbol] = spread
        mid = book.mid
        if mid is not None:
            self.mids[book.symbol] = mid

    def on_bbo(self, quote: Quote) -> None:
        self.quotes += 1

    def on_status(self, status: Status) -> None:
        self.statuses[status.kind] += 1

    def on_stop(self) -> None:
        self.stopped = True
        if not self.report:
            return
        lines = [f"demo: {sum(self.trades.values())} trades, {self.quotes} quotes"]
        for symbol in sorted(self.spreads):
            lines.append(
                f"  {symbol}: spread {self.spreads[symbol]:.8g} mid {self.mids.get(symbol, 0):.8g}"
                f" trades {self.trades[symbol]}"
            )
        print("\n".join(lines), file=sys.stderr, flush=True)
