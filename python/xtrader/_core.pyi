"""Type stub for the compiled core `xtrader._core` (the contract between Rust and Python)."""

import os
from collections.abc import Sequence
from typing import Any, Literal, final

import polars as pl

__all__ = [
    "Book",
    "BookUpdate",
    "Engine",
    "EngineError",
    "Funding",
    "Liquidation",
    "OpenInterest",
    "Quote",
    "ReplayError",
    "ReplayResult",
    "Simulator",
    "SimulatorError",
    "Status",
    "Ticker",
    "Trade",
    "XtraderError",
    "__version__",
    "last_book_updates",
    "replay_capture",
]

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

@final
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

@final
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

@final
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

@final
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

@final
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

@final
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

@final
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

@final
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

@final
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

@final
class Engine:
    """The tokio runtime, connectors, books, event bus and metrics server.

    overflow: "block" (back-pressure to the socket, nothing dropped) or "drop_oldest", for
    kinds without a policy of their own. quote_policy (bbo, ticker): "conflate" or "block";
    book_policy: "resync" (a symbol the consumer is too slow for resyncs from a fresh
    snapshot, announced; no delta is dropped) or "block"; trade_policy: "block" or "spill"
    (to a bounded file under spill_dir, read back in order). busy_poll_us: how long the
    consumer spins on an empty bus before sleeping (lower hand-off latency, one busy core).
    worker_threads: tokio I/O threads; 0 = inline: the sockets are read by the thread waiting
    in next_batch/next_frames, while it waits (no thread wake-up per hand-off).
    """

    def __new__(
        cls,
        queue_capacity: int = 65536,
        overflow: Literal["block", "drop_oldest"] = "block",
        worker_threads: int = 2,
        metrics_addr: str | None = None,
        quote_policy: Literal["conflate", "block"] = "conflate",
        book_policy: Literal["resync", "block"] = "resync",
        trade_policy: Literal["block", "spill"] = "block",
        spill_dir: str | os.PathLike[str] | None = None,
        spill_max_bytes: int = ...,
        busy_poll_us: int = 0,
    ) -> Engine: ...
    def add_feed(
        self,
        exchange: str,
        symbols: Sequence[str],
        channels: Sequence[str] = ...,
        ws_url: str | None = None,
        rest_url: str | None = None,
        depth_limit: int = 1000,
        trade_stream: Literal["trade", "aggTrade"] | None = None,
        stale_after_ms: int = 30000,
        open_interest_interval_ms: int = 10000,
        connection_lifetime_ms: int | None = None,
        venue_channels: Sequence[str] = ...,
        max_data_silence_ms: int | None = None,
    ) -> None:
        """Add a feed (before start).

        exchange: binance, binance_us, binance_usdm, binance_coinm or okx. channels: trades,
        book, bbo; futures and okx also funding, liquidations, open_interest; okx also ticker.
        trade_stream None picks the venue's default (trade on spot, aggTrade on futures).
        stale_after_ms: reconnect after this long without any frame (okx pings after a third
        of it, at most every 20 s); a subscribed stream with a cadence (book, bbo, funding)
        silent this long is reported as a 'stale' status with reason 'stream_silent'.
        open_interest_interval_ms: polling interval, stretched to stay within a quarter of the
        venue's REST weight budget. connection_lifetime_ms: overrides the venue's connection
        lifetime (24 h on Binance); each socket rolls over to a fresh connection before it.
        venue_channels (okx): wire channels instead of the defaults books / trades: books5,
        books-l2-tbt, books50-l2-tbt, trades-all.
        """
    def record_raw(
        self, dir: str, rotate_bytes: int = ..., rotate_interval_s: float = 3600.0
    ) -> None:
        """Capture every received frame and REST answer of every feed into `dir` (xtraw/1
        format, LZ4, rotated); call before `start`. `replay_capture` reads it back."""
    def add_jetstream_sink(
        self,
        servers: list[str],
        stream: str = ...,
        subject_prefix: str = ...,
        replicas: int = 1,
        max_age_ms: int = 0,
        max_bytes: int = ...,
        max_msgs: int = ...,
        duplicate_window_ms: int = 120000,
        max_inflight: int = 1024,
        snapshot_interval_ms: int = 30000,
        channels: list[str] | None = None,
    ) -> None:
        """Publish every normalized event into a NATS JetStream stream (before start).

        servers: nats://host:port URLs of the cluster. The stream is created when absent, with
        subjects `<subject_prefix>.>`, `replicas` copies and the retention limits max_age_ms
        (0 = no age limit), max_bytes and max_msgs (-1 = unlimited); duplicate_window_ms is
        the window of JetStream's deduplication by message id. Events go to
        `<subject_prefix>.<channel>.<exchange>.<symbol>`; at most max_inflight publishes
        await their ack (past it publishing waits). Full book snapshots are republished every
        snapshot_interval_ms so a consumer starting late can build books. channels: the
        channels to publish (None = every channel). Counters: `bus_*` in stats().
        Defaults: stream "XT", subject_prefix "xt", max_bytes and max_msgs -1.
        """
    def set_jetstream_source(
        self,
        servers: list[str],
        stream: str = ...,
        subject: str = ...,
        durable: str = ...,
        checkpoint: str | None = None,
        batch: int = 512,
        gap_timeout_ms: int = 2000,
    ) -> None:
        """Consume a JetStream stream instead of venues (before start; no feeds then).

        Defaults: stream "XT", subject "xt.>", durable "xtrader".

        subject: one subject filter (nats-server 2.9). durable: the durable consumer's name,
        whose position survives a restart. checkpoint: a file keeping the last delivered
        stream sequence, so nothing is delivered twice after a restart (None = none).
        batch: messages per pull. gap_timeout_ms: how long a message that arrived ahead of
        its turn (its subject's publisher sequence skipped one) waits for the missing one
        before the hole counts as a loss (a `bus_gap` status; a book waits for a new base).
        Books are rebuilt from the bus, so `book`/`books` answer for the symbols seen on it.
        Counters: `bus_*` in stats().
        """
    def close_bus(self, timeout_ms: int = 10000) -> int:
        """After the drain: publish what the JetStream sink holds and wait for its acks,
        acknowledge what the source delivered; returns the messages the sink gave up on."""
    def start(self) -> None: ...
    def next_batch(self, max_events: int = 4096, timeout_ms: int = 100) -> list[Event]:
        """Wait (GIL released) up to timeout_ms for events; return at most max_events."""
    def next_frames(
        self, max_events: int = 65536, timeout_ms: int = 100, objects: bool = False
    ) -> tuple[list[Event], dict[str, Any]]:
        """Wait like `next_batch`; return (status events, or every event when `objects`,
        and one Arrow table per channel with rows, which `polars.DataFrame(t)` reads)."""
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
    def inject_panic(self, exchange: str) -> int:
        """Test hook: a socket task of each feed of `exchange` panics on its next tick; the
        panic is reported as a `panic` status and the socket restarted. Returns feeds armed."""
    def mark_callbacks_done(self) -> None:
        """Stamp the `callback_done` latency stage for the last batch handed over."""
    def record_sink(
        self,
        sink: str,
        rows: int,
        errors: int = 0,
        exchanges: Sequence[str] = ...,
        ts_recv: Sequence[int] = ...,
    ) -> None:
        """Count a sink's rows and errors; stamp `sink_written` for the sampled rows."""
    def latency(self) -> dict[tuple[str, str], dict[str, int]]:
        """Stage latency quantiles per (exchange, stage): count, p50_ns, p90_ns, p99_ns,
        p999_ns, max_ns, mean_ns. Stages: parsed, book_applied, to_python, callback_done,
        sink_written (time since socket read) and exchange_to_recv."""

@final
class Simulator:
    """Loopback exchange simulator: the Binance protocols and OKX v5 (websocket + REST) on
    one port.

    profile: "spot" (/api/v3), "usdm" (USD-M futures: /fapi/v1, /public and /market
    websocket routes, market streams silently absent on the wrong route) or "coinm" (COIN-M:
    /dapi/v1, sizes in contracts). Futures symbols: USD-M BTCUSDT or BTCUSDT_YYMMDD, COIN-M
    BTCUSD_PERP or BTCUSD_YYMMDD. connection_lifetime_ms: close every websocket this long
    after it opened (the venue's 24 h, compressed). weight_limit / weight_window_ms: REST
    request weight per window (default: the profile's documented limit per minute), published
    in exchangeInfo; past it REST answers 429 with Retry-After. mark_interval_ms: futures
    markPrice@1s cadence. liquidation_prob: chance per symbol and mark interval of a
    forceOrder event. paced: generate the synthetic Binance market one step at a time, each
    at its own instant (1/rate apart on average, on a thread of its own), instead of in 1 ms
    ticks of rate/1000 messages; a step's 1 to 3 messages (trade, top, depth diff) go
    together.

    The OKX profile serves `okx_symbols` (instrument ids: BTC-USDT, BTC-USDT-SWAP,
    BTC-USD-250926, BTC-USD-250926-60000-C) on /ws/v5/public, /ws/v5/business,
    /api/v5/public/instruments and /api/v5/market/books, with real sequence ids and CRC32
    checksums (0 when okx_checksum is False). A capture of either venue (`capture`, `rest`)
    is served by that venue's profile. Connectors use `ws_url` and `rest_url` for both.
    """

    def __new__(
        cls,
        symbols: Sequence[str] = ...,
        rate: float = 1000.0,
        seed: int = 1,
        host: str = ...,
        port: int = 0,
        capture: str | None = None,
        rest: Sequence[str] | None = None,
        ping_interval_ms: int = 20000,
        depth_levels: int = 200,
        speed: float = 1.0,
        max_client_msgs_per_s: int | None = ...,
        worker_threads: int = 1,
        profile: Literal["spot", "usdm", "coinm"] = "spot",
        connection_lifetime_ms: int | None = None,
        weight_limit: int | None = None,
        weight_window_ms: int = 60000,
        mark_interval_ms: int = 1000,
        liquidation_prob: float = 0.2,
        okx_symbols: Sequence[str] = ...,
        okx_checksum: bool = True,
        okx_push_snapshot: bool = True,
        okx_idle_timeout_ms: int = 30000,
        paced: bool = False,
    ) -> Simulator: ...
    def __enter__(self) -> Simulator: ...
    def __exit__(
        self, exc_type: object | None, exc_value: object | None, traceback: object | None
    ) -> bool: ...
    def start(self) -> None: ...
    def stop(self) -> None: ...
    @property
    def port(self) -> int: ...
    @property
    def ws_url(self) -> str: ...
    @property
    def rest_url(self) -> str: ...
    @property
    def profile(self) -> Literal["spot", "usdm", "coinm"]: ...
    def inject_gap(self, symbol: str) -> None:
        """Withhold the next depth diff of symbol (the client sees a sequence gap)."""
    def inject_raw(self, text: str) -> None:
        """Send an arbitrary text frame (malformed, truncated, unknown event) to every client."""
    def fail_snapshots(self, symbol: str, count: int = 1) -> None:
        """Answer the next `count` depth snapshot requests for symbol with HTTP 500."""
    def inject_frame(self, data: bytes | str) -> None:
        """Send `data` to every websocket client of every profile as one frame, unchanged:
        bytes as a binary frame (e.g. not UTF-8), str as a text frame of any size up to
        64 MiB (oversized frames)."""
    def inject_fault(
        self,
        kind: Literal["checksum", "seq_break", "stall", "subscribe_error", "slow_snapshot"],
        symbol: str | None = None,
        count: int = 1,
        duration_ms: int = 1000,
    ) -> None:
        """Inject a fault into the OKX stream (seq_break, subscribe_error and slow_snapshot
        also work on Binance symbols).

        checksum: the next `count` book updates of symbol carry a wrong checksum.
        seq_break: the next book update of symbol is applied but not sent.
        stall: nothing is sent for symbol (or, without one, at all) for duration_ms.
        subscribe_error: the next `count` subscriptions naming symbol get error 60018 (OKX)
            or error code 2 (Binance; the request's other streams are still subscribed).
        slow_snapshot: the next `count` REST snapshot answers for symbol (or any symbol)
            leave duration_ms (at most 60 s) after the request, with the book as it was
            when asked.
        """
    def stall(self, duration_ms: int, stream: str | None = None, keepalive: bool = True) -> None:
        """Withhold data frames for duration_ms; only the stream kind `stream` (e.g.
        "markPrice@1s", "depth@100ms") when given, else every stream of every profile (OKX
        included). Keepalives (server pings, OKX pongs) go on unless keepalive is False: then
        nothing at all arrives, as on a half-open socket."""
    def disconnect(self) -> None:
        """Drop every open websocket (Binance and OKX) at once, without a close handshake."""
    def rest_errors(self, status: int = 429, count: int = 1, retry_after_s: int = 1) -> None:
        """Answer the next `count` depth / open-interest requests (OKX: books) with HTTP
        status (418, 429, 500 or 503); 429 and 418 carry Retry-After: retry_after_s."""
    def stats(self) -> dict[str, int]: ...

@final
class ReplayResult:
    """A replay's output; `trades`, `book_updates`, `bbo` and `frames` values are Arrow tables
    (``polars.DataFrame(t)`` reads them)."""

    exchange: str
    trades: Any
    book_updates: Any
    bbo: Any
    frames: dict[str, Any]
    books: dict[str, Book]
    stats: dict[str, int]
    statuses: list[Status]
    events: list[Event]

def last_book_updates(updates: list[BookUpdate]) -> list[BookUpdate]:
    """The last update of each book in `updates`, in the order the books first appear."""

def replay_capture(
    capture: str,
    rest: Sequence[str] = ...,
    exchange: str | None = None,
    collect_events: bool = False,
) -> ReplayResult: ...
