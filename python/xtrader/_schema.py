"""Column names and dtypes of the public frames (ARCHITECTURE.md, **contract**)."""

from __future__ import annotations

import polars as pl

TRADES_SCHEMA: dict[str, pl.DataType] = {
    "exchange": pl.String(),
    "symbol": pl.String(),
    "native_symbol": pl.String(),
    "ts_exchange": pl.Int64(),
    "ts_recv": pl.Int64(),
    "price": pl.Float64(),
    "size": pl.Float64(),
    "side": pl.String(),
    "trade_id": pl.Int64(),
}

BOOK_UPDATES_SCHEMA: dict[str, pl.DataType] = {
    "exchange": pl.String(),
    "symbol": pl.String(),
    "ts_exchange": pl.Int64(),
    "ts_recv": pl.Int64(),
    "side": pl.String(),
    "price": pl.Float64(),
    "size": pl.Float64(),
    "is_snapshot": pl.Boolean(),
    "seq": pl.Int64(),
}

BBO_SCHEMA: dict[str, pl.DataType] = {
    "exchange": pl.String(),
    "symbol": pl.String(),
    "ts_exchange": pl.Int64(),
    "ts_recv": pl.Int64(),
    "bid_price": pl.Float64(),
    "bid_size": pl.Float64(),
    "ask_price": pl.Float64(),
    "ask_size": pl.Float64(),
}

SCHEMAS: dict[str, dict[str, pl.DataType]] = {
    "trades": TRADES_SCHEMA,
    "book": BOOK_UPDATES_SCHEMA,
    "bbo": BBO_SCHEMA,
}
"""Schema per recorded channel name."""
