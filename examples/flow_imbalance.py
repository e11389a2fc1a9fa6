"""Trade-flow imbalance signal, vectorized: trades arrive as polars frames (``on_batch``).

Over a rolling window, imbalance = (buy volume - sell volume) / total volume in [-1, 1]; a
signal is emitted when it crosses a threshold with enough volume, once per crossing.

    PYTHONPATH=examples python -m xtrader run examples/flow_imbalance.toml --duration 10
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import polars as pl

import xtrader as xt
from xtrader import analytics as xa


@dataclass(frozen=True)
class Signal:
    """A threshold crossing of the trade-flow imbalance."""

    symbol: str
    ts_recv: int
    imbalance: float
    volume: float

    @property
    def direction(self) -> str:
        """``buy`` when buyers dominate, else ``sell``."""
        return "buy" if self.imbalance > 0 else "sell"


class FlowImbalance(xt.Strategy):
    """Rolling trade-flow imbalance per symbol from columnar trade batches.

    Args:
        window_s: Rolling window in seconds (by receive time).
        threshold: |imbalance| that fires a signal (0 < threshold <= 1).
        min_volume: Volume the window must hold before a signal can fire.
    """

    channels = ("trades",)

    def __init__(self, window_s: float = 2.0, threshold: float = 0.3, min_volume: float = 0.0):
        super().__init__()
        if not 0 < threshold <= 1:
            raise ValueError(f"threshold must be in (0, 1], got {threshold}")
        self.window_ns = int(window_s * 1e9)
        self.threshold = threshold
        self.min_volume = min_volume
        # per symbol: (last ts_recv, buy volume, sell volume) of each batch in the window
        self._window: dict[str, deque[tuple[int, float, float]]] = {}
        self._armed: dict[str, bool] = {}
        self.signals: list[Signal] = []
        self.rows = 0
        self.imbalance: dict[str, float] = {}

    def on_batch(self, channel: str, frame: pl.DataFrame) -> None:
        self.rows += frame.height
        per_symbol = frame.group_by("symbol").agg(
            pl.col("ts_recv").max(),
            xa.signed_size().clip(lower_bound=0).sum().alias("buy"),
            (-xa.signed_size()).clip(lower_bound=0).sum().alias("sell"),
        )
        for symbol, ts, buy, sell in per_symbol.iter_rows():
            window = self._window.setdefault(symbol, deque())
            window.append((ts, buy, sell))
            while window and window[0][0] < ts - self.window_ns:
                window.popleft()
            buys = sum(b for _, b, _ in window)
            sells = sum(s for _, _, s in window)
            total = buys + sells
            if total <= 0:
                continue
            value = (buys - sells) / total
            self.imbalance[symbol] = value
            armed = self._armed.get(symbol, True)
            if armed and abs(value) >= self.threshold and total >= self.min_volume:
                signal = Signal(symbol, ts, value, total)
                self.signals.append(signal)
                self._armed[symbol] = False
                print(
                    f"signal {symbol} {signal.direction} imbalance {value:+.2f} "
                    f"over {total:.4f} volume",
                    flush=True,
                )
            elif abs(value) < self.threshold / 2:
                self._armed[symbol] = True  # hysteresis: re-arm once back near balance

    def on_stop(self) -> None:
        print(f"flow: {self.rows} trades, {len(self.signals)} signals", flush=True)
