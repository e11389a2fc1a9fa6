"""Type stub for the compiled core `xtrader._core` (the contract between Rust and Python)."""

from collections.abc import Sequence
from typing import Any, Literal

import polars as pl

__version__: str

BookState = Literal["syncing", "live", "resyncing", "stale"]

class XtraderError(Exception):
    """Root of xtrader's exceptions."""

class EngineError(XtraderError):
    """The runtime could not start or was misused."""

class ReplayError(XtraderError):
    """A capture could not be replayed."""

class SimulatorError(XtraderError):
    """The simulator could not start."""

class Trade:
    """One trade; `side` is the aggressor side."""

    exchange: str
    symbol: str
    native_symbol: str
    ts_exchange: int
    ts_recv: int
    price: float
    size: float
    side: Literal["buy", "sell"]
    trade_id: int
    def to_dict(self) -> dict[str, Any]: ...

class Quote:
    """Best bid and offer (channel `bbo`)."""

    exchange: str
    symbol: str
    native_symbol: str
    ts_exchange: int
    ts_recv: int
    bid_price: float
    bid_size: float
    ask_price: float
    ask_size: float
    def to_dict(self) -> dict[str, Any]: ...

class Ticker:
    """A venue ticker: last trade, best quotes and 24 h statistics (channel `ticker`)."""

    exchange: str
    symbol: str
    native_symbol: str
    ts_exchange: int
    ts_recv: int
    last_price: float
    last_size: float | None
    bid_price: float | None
    bid_size: float | None
    ask_price: float | None
    ask_size: float | None
    open_24h: float | None
    high_24h: float | None
    low_24h: float | None
    volume_24h: float | None
    quote_volume_24h: float | None
    def to_dict(self) -> dict[str, Any]: ...

class Funding:
    """Mark price, index price and funding of a perpetual (channel `funding`)."""

    exchange: str
    symbol: str
    native_symbol: str
    ts_exchange: int
    ts_recv: int
    mark_price: float | None
    index_price: float | None
    funding_rate: float | None
    funding_time: int | None
    next_funding_time: int | None
    def to_dict(self) -> dict[str, Any]: ...

class Liquidation:
    """A liquidation order (channel `liquidations`); side `sell` = a long was liquidated."""

    exchange: str
    symbol: str
    native_symbol: str
    ts_exchange: int
    ts_recv: int
    side: Literal["buy", "sell"]
    price: float
    size: float
    def to_dict(self) -> dict[str, Any]: ...

class OpenInterest:
    """Open interest in normalized units (channel `open_interest`)."""

    exchange: str
    symbol: str
    native_symbol: str
    ts_exchange: int
    ts_recv: int
    open_interest: float
    open_interest_value: float | None
    def to_dict(self) -> dict[str, Any]: ...

class BookUpdate:
    """One depth message applied to a maintained book: the levels it changed (size 0 = removed)."""

    exchange: str
    symbol: str
    native_symbol: str
    ts_exchange: int
    ts_recv: int
    seq: int
    is_snapshot: bool
    bids: list[tuple[float, float]]
    asks: list[tuple[float, float]]
    book: Book
    def to_dict(self) -> dict[str, Any]: ...

class Status:
    """Feed and book health.

    kind: connected, disconnected, subscribed, syncing, live, resync, recovered, stale, error.
    reason (for resync/error/stale/disconnected): e.g. gap, checksum, stale, snapshot_failed,
    snapshot_too_old, malformed_frame, unknown_event, unknown_symbol, subscribe_error (the
    message names the venue code and the channel/instrument), server_shutdown, closed.
    """

    exchange: str
    symbol: str | None
    kind: str
    reason: str | None
    state: BookState | None
    message: str
    ts: int
    def to_dict(self) -> dict[str, Any]: ...

Event = Trade | Quote | BookUpdate | Status | Ticker | Funding | Liquidation | OpenInterest

class Book:
    """Read-only view of a maintained L2 book (live: reads the current state)."""

    @property
    def exchange(self) -> str: ...
    @property
    def symbol(self) -> str: ...
    @property
    def native_symbol(self) -> str: ...
    @property
    def state(self) -> BookState: ...
    @property
    def seq(self) -> int: ...
    @property
    def ts_exchange(self) -> int: ...
    @property
    def ts_recv(self) -> int: ...
    @property
    def best_bid(self) -> tuple[float, float] | None: ...
    @property
    def best_ask(self) -> tuple[float, float] | None: ...
    @property
    def mid(self) -> float | None: ...
    @property
    def spread(self) -> float | None: ...
    def bids(self, n: int | None = None) -> list[tuple[float, float]]: ...
    def asks(self, n: int | None = None) -> list[tuple[float, float]]: ...
    def depth(self) -> tuple[int, int]: ...
    def to_polars(self, depth: int | None = None) -> pl.DataFrame: ...

class Engine:
    """The tokio runtime, connectors, books, event bus and metrics server.

    overflow: "block" (back-pressure to the socket, nothing dropped) or "drop_oldest".
    """

    def __init__(
        self,
        queue_capacity: int = 65536,
        overflow: Literal["block", "drop_oldest"] = "block",
        worker_threads: int = 2,
        metrics_addr: str | None = None,
    ) -> None: ...
    def add_feed(
        self,
        exchange: str,
        symbols: Sequence[str],
        channels: Sequence[str] = ("trades", "book", "bbo"),
        ws_url: str | None = None,
        rest_url: str | None = None,
        depth_limit: int = 1000,
        trade_stream: Literal["trade", "aggTrade"] = "trade",
        stale_after_ms: int = 30000,
        venue_channels: Sequence[str] = (),
    ) -> None:
        """Add a feed (before start).

        exchange: binance, binance_us or okx. channels: trades, book, bbo (okx also ticker,
        funding, liquidations, open_interest). venue_channels (okx): wire channels instead of
        the defaults books / trades: books5, books-l2-tbt, books50-l2-tbt, trades-all.
        stale_after_ms: reconnect after this long without any frame (okx pings after a third
        of it, at most every 20 s).
        """
    def start(self) -> None: ...
    def next_batch(self, max_events: int = 4096, timeout_ms: int = 100) -> list[Event]:
        """Wait (GIL released) up to timeout_ms for events; return at most max_events."""
    def book(self, exchange: str, symbol: str) -> Book | None: ...
    def books(self) -> list[Book]: ...
    def stats(self) -> dict[str, int]: ...
    def stop(self, timeout_ms: int = 3000) -> None:
        """Stop intake and close sockets; events already queued stay readable by next_batch."""
    @property
    def running(self) -> bool: ...
    @property
    def metrics_addr(self) -> str | None: ...
    def metrics_text(self) -> str: ...

class Simulator:
    """Loopback exchange simulator: Binance spot and OKX v5 (websocket + REST) on one port.

    The Binance profile serves `symbols`; the OKX profile serves `okx_symbols` (instrument
    ids: BTC-USDT, BTC-USDT-SWAP, BTC-USD-250926, BTC-USD-250926-60000-C) on /ws/v5/public,
    /ws/v5/business, /api/v5/public/instruments and /api/v5/market/books, with real sequence
    ids and CRC32 checksums (0 when okx_checksum is False). A capture of either venue
    (`capture`, `rest`) is served by that venue's profile. Connectors use `ws_url` and
    `rest_url` for both venues.
    """

    def __init__(
        self,
        symbols: Sequence[str] = ("BTCUSDT", "ETHUSDT"),
        rate: float = 1000.0,
        seed: int = 1,
        host: str = "127.0.0.1",
        port: int = 0,
        capture: str | None = None,
        rest: Sequence[str] | None = None,
        ping_interval_ms: int = 20000,
        depth_levels: int = 200,
        speed: float = 1.0,
        max_client_msgs_per_s: int | None = 5,
        worker_threads: int = 1,
        okx_symbols: Sequence[str] = (),
        okx_checksum: bool = True,
        okx_push_snapshot: bool = True,
        okx_idle_timeout_ms: int = 30000,
    ) -> None: ...
    def __enter__(self) -> Simulator: ...
    def __exit__(self, *exc: object) -> bool: ...
    def start(self) -> None: ...
    def stop(self) -> None: ...
    @property
    def port(self) -> int: ...
    @property
    def ws_url(self) -> str: ...
    @property
    def rest_url(self) -> str: ...
    def inject_gap(self, symbol: str) -> None: ...
    def inject_raw(self, text: str) -> None:
        """Send an arbitrary text frame (malformed, truncated, unknown event) to every client."""
    def fail_snapshots(self, symbol: str, count: int = 1) -> None:
        """Answer the next `count` depth snapshot requests for symbol with HTTP 500."""
    def inject_fault(
        self,
        kind: Literal["checksum", "seq_break", "stall", "subscribe_error"],
        symbol: str | None = None,
        count: int = 1,
        duration_ms: int = 1000,
    ) -> None:
        """Inject a fault into the OKX stream (seq_break also works on Binance symbols).

        checksum: the next `count` book updates of symbol carry a wrong checksum.
        seq_break: the next book update of symbol is applied but not sent.
        stall: nothing is sent for symbol (or, without one, at all) for duration_ms.
        subscribe_error: the next `count` subscriptions naming symbol get error 60018.
        """
    def stats(self) -> dict[str, int]: ...

class ReplayResult:
    exchange: str
    trades: dict[str, list[Any]]
    book_updates: dict[str, list[Any]]
    bbo: dict[str, list[Any]]
    books: dict[str, Book]
    stats: dict[str, int]
    statuses: list[Status]
    events: list[Event]

def replay_capture(
    capture: str,
    rest: Sequence[str] = (),
    exchange: str | None = None,
    collect_events: bool = False,
) -> ReplayResult: ...
