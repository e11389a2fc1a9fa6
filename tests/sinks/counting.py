"""A strategy counting trades per symbol, written at on_stop (used by a subprocess test)."""

from __future__ import annotations

import json

import xtrader as xt


class CountTrades(xt.Strategy):
    def __init__(self, path: str) -> None:
        self.path = path
        self.counts: dict[str, int] = {}

    def on_trade(self, trade: xt.Trade) -> None:
        self.counts[trade.symbol] = self.counts.get(trade.symbol, 0) + 1

    def on_stop(self) -> None:
        with open(self.path, "w") as f:
            json.dump(self.counts, f)
