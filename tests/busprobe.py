"""A strategy for scale-out tests: records trades, statuses and final books to a JSON file.

Run inside collector and consumer processes (``[[strategies]] path = "busprobe:Probe"`` with
the tests folder on ``PYTHONPATH``); the test compares what each process saw.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import xtrader as xt
from xtrader._core import Status, Trade
from xtrader.strategy import Context


class Probe(xt.Strategy):
    """Write ``{"trades", "statuses", "books"}`` to `out` when the run stops.

    Args:
        out: JSON file written by ``on_stop``.
        exchange: Venue of the books to dump.
        symbols: Normalized symbols whose final books are dumped (absent ones are skipped).
    """

    def __init__(self, out: str, exchange: str, symbols: list[str]) -> None:
        self.out = Path(out)
        self.exchange = exchange
        self.book_symbols = symbols
        self.trades: list[list[Any]] = []
        self.statuses: list[dict[str, Any]] = []
        self.ctx: Context | None = None

    def on_start(self, ctx: Context) -> None:
        self.ctx = ctx

    def on_trade(self, trade: Trade) -> None:
        self.trades.append([trade.exchange, trade.symbol, trade.trade_id, trade.price, trade.size])

    def on_status(self, status: Status) -> None:
        self.statuses.append(
            {"kind": status.kind, "reason": status.reason, "symbol": status.symbol}
        )

    def on_stop(self) -> None:
        books: dict[str, Any] = {}
        assert self.ctx is not None
        for sym in self.book_symbols:
            book = self.ctx.book(self.exchange, sym)
            if book is None:
                continue
            books[sym] = {
                "bids": book.bids(),
                "asks": book.asks(),
                "seq": book.seq,
                "state": str(book.state),
            }
        tmp = self.out.with_suffix(".tmp")
        tmp.write_text(
            json.dumps({"trades": self.trades, "statuses": self.statuses, "books": books})
        )
        tmp.replace(self.out)
