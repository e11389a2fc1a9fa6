"""Cross-venue basis: mid of one venue against another on the same asset (basis points).

Venue-agnostic: it only uses normalized symbols and ``Quote`` events, so any two configured
venues work (the shipped configuration pairs Binance with OKX).

    PYTHONPATH=examples python -m xtrader run examples/basis.toml --duration 30
"""

from __future__ import annotations

from collections.abc import Sequence

import xtrader as xt


class Basis(xt.Strategy):
    """``(mid[venues[1]] - mid[venues[0]]) / mid[venues[0]]`` in bps, on every quote.

    Args:
        symbol: Normalized symbol present on both venues, e.g. ``"BTC-USDT"``.
        venues: Two venue ids: the reference first.
        report_every: Seconds between report lines.
    """

    def __init__(
        self,
        symbol: str = "BTC-USDT",
        venues: Sequence[str] = ("binance", "okx"),
        report_every: float = 1.0,
    ) -> None:
        if len(venues) != 2 or venues[0] == venues[1]:
            raise ValueError(f"venues: expected two different venue ids, got {list(venues)}")
        super().__init__(exchanges=venues, symbols=(symbol,), channels=("bbo",))
        self.symbol = symbol
        self.venues = (venues[0], venues[1])
        self.report_every = report_every
        self.mids: dict[str, float] = {}
        self.samples: list[float] = []

    def on_start(self, ctx: xt.Context) -> None:
        ctx.schedule(self.report_every, self.report)

    def on_bbo(self, quote: xt.Quote) -> None:
        self.mids[quote.exchange] = (quote.bid_price + quote.ask_price) / 2
        ref, other = self.mids.get(self.venues[0]), self.mids.get(self.venues[1])
        if ref and other:
            self.samples.append((other - ref) / ref * 10_000)

    @property
    def last_bps(self) -> float | None:
        """Latest basis, or None before both venues quoted."""
        return self.samples[-1] if self.samples else None

    def report(self) -> None:
        """One line with the latest basis."""
        last = self.last_bps
        text = "waiting for both venues" if last is None else f"{last:+.2f} bps"
        print(f"basis {self.symbol} {self.venues[1]}-{self.venues[0]}: {text}", flush=True)

    def on_stop(self) -> None:
        if not self.samples:
            print(f"basis {self.symbol}: no sample", flush=True)
            return
        mean = sum(self.samples) / len(self.samples)
        print(
            f"basis summary {self.symbol}: {len(self.samples)} samples, mean {mean:+.2f} bps, "
            f"min {min(self.samples):+.2f} max {max(self.samples):+.2f}",
            flush=True,
        )
