"""Frames shaped like the core's, for sink tests."""

from __future__ import annotations

import polars as pl

from xtrader._schema import SCHEMAS

DAY_NS = 86_400_000_000_000
T0 = 1_760_000_000_000_000_000  # 2025-10-09


def trades(n: int, symbol: str = "BTC-USDT", start: int = T0, step: int = 1000) -> pl.DataFrame:
    """`n` trades of `symbol` from `start`, ts_recv `step` ns apart."""
    return pl.DataFrame(
        {
            "exchange": ["binance"] * n,
            "symbol": [symbol] * n,
            "native_symbol": [symbol.replace("-", "")] * n,
            "ts_exchange": [start + i * step for i in range(n)],
            "ts_recv": [start + i * step for i in range(n)],
            "price": [100.0 + i for i in range(n)],
            "size": [1.0] * n,
            "side": ["buy"] * n,
            "trade_id": list(range(n)),
        },
        schema=SCHEMAS["trades"],
    )
