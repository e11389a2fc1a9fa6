"""Matplotlib figures of recorded data: price and spread over time, depth at an instant.

Figures are built with the object API on the Agg canvas (no pyplot state, no GUI backend), so
they work in scripts, tests and notebooks alike; in Jupyter a returned figure displays inline.
matplotlib is an optional dependency (``pip install 'xtrader[notebook]'``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl

from .analytics import mid, spread_bps, timestamp

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["depth_profile", "price_and_spread"]


def _figure(rows: int, height: float) -> Figure:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("plots need matplotlib: pip install 'xtrader[notebook]'") from exc
    fig = Figure(figsize=(10, height), layout="constrained")
    FigureCanvasAgg(fig)
    fig.subplots(rows, 1, sharex=True, squeeze=False)
    return fig


def price_and_spread(
    bbo: pl.DataFrame | pl.LazyFrame,
    trades: pl.DataFrame | pl.LazyFrame | None = None,
    title: str | None = None,
) -> Figure:
    """Mid price (with trades, if given) on top, spread in bps below, per symbol.

    Args:
        bbo: A bbo frame (``ts_recv, symbol, bid_price, ask_price``...), e.g. from `read`.
        trades: A trades frame drawn as dots over the mid.
        title: Figure title.

    Returns:
        The matplotlib figure (two axes).
    """
    quotes = bbo.lazy().with_columns(timestamp(), mid(), spread_bps()).collect()
    fig = _figure(2, 6)
    price_ax, spread_ax = fig.axes
    for (symbol,), part in quotes.partition_by("symbol", as_dict=True).items():
        price_ax.plot(part["time"].to_list(), part["mid"].to_list(), lw=1, label=f"{symbol} mid")
        spread_ax.plot(part["time"].to_list(), part["spread_bps"].to_list(), lw=1, label=symbol)
    if trades is not None:
        fills = trades.lazy().with_columns(timestamp()).collect()
        for side, color in (("buy", "tab:green"), ("sell", "tab:red")):
            part = fills.filter(pl.col("side") == side)
            price_ax.scatter(
                part["time"].to_list(), part["price"].to_list(), s=4, c=color, label=f"{side}s"
            )
    price_ax.set_ylabel("price")
    price_ax.legend(loc="upper left", fontsize="small")
    spread_ax.set_ylabel("spread (bps)")
    spread_ax.set_xlabel("time (UTC)")
    spread_ax.legend(loc="upper left", fontsize="small")
    if title:
        fig.suptitle(title)
    return fig


def depth_profile(book: pl.DataFrame, title: str | None = None) -> Figure:
    """Cumulative size by price on each side of a book (``side, price, size`` columns).

    Args:
        book: Levels, e.g. from `book_at` or ``Book.to_polars()``.
        title: Figure title.

    Returns:
        The matplotlib figure (one axis).
    """
    fig = _figure(1, 4)
    ax = fig.axes[0]
    for side, color, descending in (("bid", "tab:green", True), ("ask", "tab:red", False)):
        levels = book.filter(pl.col("side") == side).sort("price", descending=descending)
        if levels.height == 0:
            continue
        cumulative = levels["size"].cum_sum()
        ax.step(levels["price"].to_list(), cumulative.to_list(), where="post", color=color)
        ax.fill_between(
            levels["price"].to_list(),
            cumulative.to_list(),
            step="post",
            alpha=0.3,
            color=color,
            label=f"{side}s",
        )
    ax.set_xlabel("price")
    ax.set_ylabel("cumulative size")
    ax.legend(loc="upper center", fontsize="small")
    if title:
        ax.set_title(title)
    return fig
