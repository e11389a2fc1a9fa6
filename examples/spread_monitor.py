"""Spread monitor: quoted spread per symbol (basis points), reported every few seconds.

Run it (from the repository root; ``examples/`` must be importable)::

    PYTHONPATH=examples python -m xtrader run examples/spread_monitor.toml --duration 10
"""

from __future__ import annotations

from dataclasses import dataclass

import xtrader as xt


@dataclass
class SpreadStats:
    """Running statistics of one symbol's spread, in basis points of the mid."""

    quotes: int = 0
    total_bps: float = 0.0
    min_bps: float = float("inf")
    max_bps: float = 0.0
    last_bps: float = 0.0

    @property
    def mean_bps(self) -> float:
        """Mean spread over the quotes seen."""
        return self.total_bps / self.quotes if self.quotes else 0.0


class SpreadMonitor(xt.Strategy):
    """Tracks the best bid/offer spread of every subscribed symbol.

    Args:
        report_every: Seconds between report lines (a `Context.schedule` timer).
        alert_bps: Print an alert when a spread exceeds this many basis points.
    """

    channels = ("bbo",)

    def __init__(self, report_every: float = 1.0, alert_bps: float = 50.0) -> None:
        super().__init__()
        self.report_every = report_every
        self.alert_bps = alert_bps
        self.stats: dict[str, SpreadStats] = {}
        self.reports = 0
        self.alerts = 0

    def on_start(self, ctx: xt.Context) -> None:
        ctx.schedule(self.report_every, self.report)

    def on_bbo(self, quote: xt.Quote) -> None:
        mid = (quote.bid_price + quote.ask_price) / 2
        if mid <= 0:
            return
        bps = (quote.ask_price - quote.bid_price) / mid * 10_000
        key = f"{quote.exchange}:{quote.symbol}"
        s = self.stats.get(key)
        if s is None:
            s = self.stats[key] = SpreadStats()
        s.quotes += 1
        s.total_bps += bps
        s.min_bps = min(s.min_bps, bps)
        s.max_bps = max(s.max_bps, bps)
        s.last_bps = bps
        if bps > self.alert_bps:
            self.alerts += 1
            print(f"ALERT {key} spread {bps:.2f} bps", flush=True)

    def report(self) -> None:
        """One line with the last spread of every symbol."""
        self.reports += 1
        parts = [f"{key} {s.last_bps:.2f}bps" for key, s in sorted(self.stats.items())]
        print("spread " + (" | ".join(parts) or "(no quotes yet)"), flush=True)

    def on_stop(self) -> None:
        for key, s in sorted(self.stats.items()):
            print(
                f"summary {key}: {s.quotes} quotes, spread mean {s.mean_bps:.2f} bps "
                f"min {s.min_bps:.2f} max {s.max_bps:.2f}",
                flush=True,
            )
