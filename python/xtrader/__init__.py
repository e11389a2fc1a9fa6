"""xtrader: a low-latency crypto market-data runtime with a Rust core.

Example:
    >>> import xtrader as xt
    >>> class Spread(xt.Strategy):
    ...     def on_book(self, book):
    ...         print(book.symbol, book.spread)
    >>> rt = xt.Runtime.from_config("xtrader.toml")
    >>> rt.add_strategy(Spread())
    >>> rt.run()  # Ctrl-C: drain, flush, exit 0
"""

from __future__ import annotations

from ._core import (
    Book,
    BookUpdate,
    Funding,
    Liquidation,
    OpenInterest,
    Quote,
    Simulator,
    Status,
    Ticker,
    Trade,
)
from ._core import __version__ as __version__
from .config import Config, load_config
from .data import ReplayResult, book_at, read, replay
from .exceptions import (
    ConfigError,
    EngineError,
    ReplayError,
    SimulatorError,
    StrategyError,
    XtraderError,
)
from .runtime import Runtime
from .strategy import Context, Strategy

__all__ = [
    "Book",
    "BookUpdate",
    "Config",
    "ConfigError",
    "Context",
    "EngineError",
    "Funding",
    "Liquidation",
    "OpenInterest",
    "Quote",
    "ReplayError",
    "ReplayResult",
    "Runtime",
    "Simulator",
    "SimulatorError",
    "Status",
    "Strategy",
    "StrategyError",
    "Ticker",
    "Trade",
    "XtraderError",
    "__version__",
    "book_at",
    "load_config",
    "read",
    "replay",
]
