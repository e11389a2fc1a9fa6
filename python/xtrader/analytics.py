"""Polars helpers for recorded or live frames: bars, mid, spread, imbalances.

Each helper is a polars expression (or, for bars, a function over a frame), so it composes
with ``select``/``with_columns``/``group_by`` on eager and lazy frames alike. Column names are
the contract ones (ARCHITECTURE.md): bbo frames have ``bid_price, bid_size, ask_price,
ask_size``, trades frames ``ts_recv, price, size, side``.

Example:
    >>> import xtrader as xt
    >>> from xtrader import analytics as xa
    >>> bbo = xt.read("data", "bbo").with_columns(xa.mid(), xa.spread_bps())
    >>> bars = xa.ohlcv(xt.read("data", "trades"), every="1s").collect()
"""

from __future__ import annotations

from typing import TypeVar

import polars as pl

__all__ = [
    "book_imbalance",
    "mid",
    "ohlcv",
    "signed_size",
    "spread",
    "spread_bps",
    "timestamp",
    "trade_flow_imbalance",
]

FrameT = TypeVar("FrameT", pl.DataFrame, pl.LazyFrame)


def timestamp(column: str = "ts_recv") -> pl.Expr:
    """Nanosecond integer timestamps as a UTC datetime column named ``time``."""
    return pl.from_epoch(pl.col(column), time_unit="ns").dt.replace_time_zone("UTC").alias("time")


def mid() -> pl.Expr:
    """Mid price ``(bid_price + ask_price) / 2`` of a bbo frame, named ``mid``."""
    return ((pl.col("bid_price") + pl.col("ask_price")) / 2).alias("mid")


def spread() -> pl.Expr:
    """Quoted spread ``ask_price - bid_price`` of a bbo frame, named ``spread``."""
    return (pl.col("ask_price") - pl.col("bid_price")).alias("spread")


def spread_bps() -> pl.Expr:
    """Spread in basis points of the mid, named ``spread_bps``."""
    m = (pl.col("bid_price") + pl.col("ask_price")) / 2
    return ((pl.col("ask_price") - pl.col("bid_price")) / m * 10_000).alias("spread_bps")


def book_imbalance() -> pl.Expr:
    """Top-of-book imbalance in [-1, 1]: ``(bid_size - ask_size) / (bid_size + ask_size)``.

    Positive when the bid is heavier. Named ``book_imbalance``.
    """
    total = pl.col("bid_size") + pl.col("ask_size")
    return ((pl.col("bid_size") - pl.col("ask_size")) / total).alias("book_imbalance")


def signed_size() -> pl.Expr:
    """Trade size signed by the aggressor: ``+size`` for buys, ``-size`` for sells."""
    return (pl.when(pl.col("side") == "buy").then(pl.col("size")).otherwise(-pl.col("size"))).alias(
        "signed_size"
    )


def trade_flow_imbalance() -> pl.Expr:
    """Aggregation: (buy volume - sell volume) / total volume, in [-1, 1].

    Use it in ``select``, ``agg`` or over a rolling window; named ``trade_flow_imbalance``.
    """
    return (signed_size().sum() / pl.col("size").sum()).alias("trade_flow_imbalance")


def ohlcv(
    trades: FrameT, every: str = "1m", by: tuple[str, ...] = ("exchange", "symbol")
) -> FrameT:
    """OHLCV bars of a trades frame (eager or lazy), one row per `by` group and interval.

    Args:
        trades: Trades with ``ts_recv, price, size, side`` (and the `by` columns).
        every: Bar length as a polars duration (``"1s"``, ``"5m"``, ``"1h"``).
        by: Columns bars are computed per.

    Returns:
        Columns: the `by` columns, ``time`` (bar start, UTC), ``open, high, low, close,
        volume, trades, vwap, trade_flow_imbalance``; sorted by `by` then time.
    """
    return (
        trades.with_columns(timestamp())
        .sort([*by, "time"])
        .group_by_dynamic("time", every=every, group_by=list(by))
        .agg(
            pl.col("price").first().alias("open"),
            pl.col("price").max().alias("high"),
            pl.col("price").min().alias("low"),
            pl.col("price").last().alias("close"),
            pl.col("size").sum().alias("volume"),
            pl.len().cast(pl.Int64).alias("trades"),
            ((pl.col("price") * pl.col("size")).sum() / pl.col("size").sum()).alias("vwap"),
            trade_flow_imbalance(),
        )
        .sort([*by, "time"])
    )
