"""Offline data: replay of recorded captures and reading of recorded Parquet files.

`replay` runs a raw capture (cryptofeed's format or xtrader's own) through the same Rust
processors as a live run, offline and deterministic: recorded REST responses are served in
place of live calls and the venue is inferred from the capture's URL. Strategies attached to
a replay receive the events in order, each ``on_book`` with the book as it was right after
that update; a strategy's ``on_batch`` then receives each channel of the whole capture as one
frame.

`read` scans recorded Parquet files lazily, pruning ``exchange=`` and ``date=`` partitions from
the filters before polars opens a file; `book_at` rebuilds a book at an instant from the
recorded ``book`` channel.
"""

from __future__ import annotations

import bisect
import datetime as dt
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import polars as pl

from . import _core
from ._dispatch import Dispatcher
from ._schema import BBO_SCHEMA, BOOK_UPDATES_SCHEMA, SCHEMAS, TRADES_SCHEMA
from .config import EXCHANGES, SUPPORTED_EXCHANGES
from .exceptions import ReplayError
from .strategy import Context, Strategy

if TYPE_CHECKING:
    from ._core import Book, BookState, BookUpdate, Status

__all__ = ["ReplayResult", "book_at", "read", "replay"]

REPLAY_CHUNK = 64
"""Events handed to strategies per dispatch in a replay (stop() is honoured between chunks)."""


@dataclass(frozen=True, slots=True)
class ReplayResult:
    """What a replay produced.

    Attributes:
        exchange: Venue id inferred from the capture (or given).
        trades: Trades frame (contract columns).
        book_updates: One row per level change: exchange, symbol, ts_exchange, ts_recv, side,
            price, size (0 = removed), is_snapshot, seq.
        bbo: Best bid/offer frame.
        books: Final books by normalized symbol (``books["BTC-USDT"].bids(20)``).
        stats: Counters: messages, trades, checksum_ok, checksum_failed, gaps, resyncs,
            errors...
        statuses: Status events in order (resyncs, errors...).
    """

    exchange: str
    trades: pl.DataFrame
    book_updates: pl.DataFrame
    bbo: pl.DataFrame
    books: dict[str, Book] = field(default_factory=dict)
    stats: dict[str, int] = field(default_factory=dict)
    statuses: list[Status] = field(default_factory=list)


def _frame(table: Any, schema: dict[str, pl.DataType], what: str) -> pl.DataFrame:
    """A polars frame from the core's Arrow table (PyCapsule stream), in contract order."""
    df = pl.DataFrame(table)
    missing = [name for name in schema if name not in df.columns]
    if missing:
        raise ReplayError(f"the core's {what} columns lack {', '.join(missing)}")
    return df.select(list(schema)).cast(cast("Any", schema))


def replay(
    capture: str | os.PathLike[str],
    rest: Sequence[str | os.PathLike[str]] = (),
    strategies: Sequence[Strategy] = (),
    exchange: str | None = None,
) -> ReplayResult:
    """Replay a recorded websocket capture.

    Args:
        capture: The websocket capture (e.g. ``BINANCE.ws.1.0``).
        rest: Recorded REST responses served in place of live calls (depth snapshots,
            exchangeInfo), e.g. ``["BINANCE.http.0.0", "BINANCE.0"]``.
        strategies: Strategies that receive the events in order (with on_start/on_stop).
        exchange: Venue id; inferred from the capture's URL when None.

    Returns:
        Frames of trades, book updates and bbo, the final books, stats and statuses.

    Raises:
        ReplayError: When a file is missing or the capture cannot be replayed.
    """
    path = Path(capture)
    rest_paths = [Path(r) for r in rest]
    for p in (path, *rest_paths):
        if not p.is_file():
            raise ReplayError(f"no such file: {p}")
    if exchange is not None and exchange not in SUPPORTED_EXCHANGES:
        known = "unknown exchange" if exchange not in EXCHANGES else "exchange not supported yet"
        raise ReplayError(f"{known} {exchange!r} (replay runs: {', '.join(SUPPORTED_EXCHANGES)})")
    for strategy in strategies:
        if not isinstance(strategy, Strategy):
            raise TypeError(f"expected an xtrader.Strategy, got {type(strategy).__name__}")
    try:
        raw = _core.replay_capture(
            str(path),
            [str(p) for p in rest_paths],
            exchange=exchange,
            collect_events=bool(strategies),
        )
    except (ValueError, OSError, RuntimeError) as exc:
        raise ReplayError(f"cannot replay {path}: {exc}") from exc
    result = ReplayResult(
        exchange=raw.exchange,
        trades=_frame(raw.trades, TRADES_SCHEMA, "trades"),
        book_updates=_frame(raw.book_updates, BOOK_UPDATES_SCHEMA, "book_updates"),
        bbo=_frame(raw.bbo, BBO_SCHEMA, "bbo"),
        books=dict(raw.books),
        stats=dict(raw.stats),
        statuses=list(raw.statuses),
    )
    if strategies:
        _ReplayDriver(result, strategies).run(raw.events, raw.frames)
    return result


# ------------------------------------------------------------------------------------------
# strategies in replay


class ReplayBook:
    """Point-in-time view of a book during a replay (same reading API as `Book`).

    Rebuilt in Python from the `BookUpdate` events, so that a strategy's ``on_book`` sees the
    book as it was after that update rather than its final state.
    """

    __slots__ = (
        "_ask_prices",
        "_asks",
        "_bid_prices",
        "_bids",
        "exchange",
        "native_symbol",
        "seq",
        "state",
        "symbol",
        "ts_exchange",
        "ts_recv",
    )

    def __init__(self, exchange: str, symbol: str, native_symbol: str) -> None:
        self.exchange = exchange
        self.symbol = symbol
        self.native_symbol = native_symbol
        self.state: BookState = "syncing"
        self.seq = 0
        self.ts_exchange = 0
        self.ts_recv = 0
        self._bids: dict[float, float] = {}
        self._asks: dict[float, float] = {}
        self._bid_prices: list[float] = []  # ascending; best bid last
        self._ask_prices: list[float] = []  # ascending; best ask first

    def apply(self, update: BookUpdate) -> None:
        """Apply one update: a snapshot replaces the book; sizes are absolute, 0 deletes."""
        if update.is_snapshot:
            self._bids.clear()
            self._asks.clear()
            self._bid_prices.clear()
            self._ask_prices.clear()
            self.state = "live"
        for price, size in update.bids:
            _set_level(self._bids, self._bid_prices, price, size)
        for price, size in update.asks:
            _set_level(self._asks, self._ask_prices, price, size)
        self.seq = update.seq
        self.ts_exchange = update.ts_exchange
        self.ts_recv = update.ts_recv

    @property
    def best_bid(self) -> tuple[float, float] | None:
        """Highest bid as (price, size)."""
        if not self._bid_prices:
            return None
        price = self._bid_prices[-1]
        return price, self._bids[price]

    @property
    def best_ask(self) -> tuple[float, float] | None:
        """Lowest ask as (price, size)."""
        if not self._ask_prices:
            return None
        price = self._ask_prices[0]
        return price, self._asks[price]

    @property
    def mid(self) -> float | None:
        """Mid price, when both sides exist."""
        bid, ask = self.best_bid, self.best_ask
        return None if bid is None or ask is None else (bid[0] + ask[0]) / 2

    @property
    def spread(self) -> float | None:
        """Best ask minus best bid, when both sides exist."""
        bid, ask = self.best_bid, self.best_ask
        return None if bid is None or ask is None else ask[0] - bid[0]

    def bids(self, n: int | None = None) -> list[tuple[float, float]]:
        """Bids best first, at most `n` levels."""
        prices = self._bid_prices[::-1] if n is None else self._bid_prices[: -n - 1 : -1]
        return [(p, self._bids[p]) for p in prices]

    def asks(self, n: int | None = None) -> list[tuple[float, float]]:
        """Asks best first, at most `n` levels."""
        prices = self._ask_prices if n is None else self._ask_prices[:n]
        return [(p, self._asks[p]) for p in prices]

    def depth(self) -> tuple[int, int]:
        """Number of (bid, ask) levels."""
        return len(self._bids), len(self._asks)

    def to_polars(self, depth: int | None = None) -> pl.DataFrame:
        """Levels as a frame: side, level (0 = best), price, size."""
        rows: dict[str, list[Any]] = {"side": [], "level": [], "price": [], "size": []}
        for side, levels in (("bid", self.bids(depth)), ("ask", self.asks(depth))):
            for i, (price, size) in enumerate(levels):
                rows["side"].append(side)
                rows["level"].append(i)
                rows["price"].append(price)
                rows["size"].append(size)
        schema = {"side": pl.String, "level": pl.Int64, "price": pl.Float64, "size": pl.Float64}
        return pl.DataFrame(rows, schema=schema)

    def __repr__(self) -> str:
        return (
            f"ReplayBook({self.exchange} {self.symbol} {self.state} seq={self.seq} "
            f"bid={self.best_bid} ask={self.best_ask})"
        )


def _set_level(levels: dict[float, float], prices: list[float], price: float, size: float) -> None:
    if size == 0:
        if levels.pop(price, None) is not None:
            del prices[bisect.bisect_left(prices, price)]
        return
    if price not in levels:
        bisect.insort(prices, price)
    levels[price] = size


class _ReplayDriver:
    """Feeds a replay's events to strategies with a `Context` like a live run's."""

    def __init__(self, result: ReplayResult, strategies: Sequence[Strategy]) -> None:
        self._result = result
        self._books: dict[tuple[str, str], ReplayBook] = {}
        self._native: dict[tuple[str, str], ReplayBook] = {}
        self._stopped = False
        self._dispatcher = Dispatcher(strategies, book_view=self._view, coalesce_books=False)

    def _view(self, update: BookUpdate) -> Book:
        book = self._books.get((update.exchange, update.symbol))
        if book is None:
            book = ReplayBook(update.exchange, update.symbol, update.native_symbol)
            self._books[(update.exchange, update.symbol)] = book
            self._native[(update.exchange, update.native_symbol)] = book
        book.apply(update)
        return cast("Book", book)

    def _on_status(self, status: Status) -> None:
        if status.symbol is None:
            return
        book = self._books.get((status.exchange, status.symbol))
        states: dict[str, BookState] = {"resync": "resyncing", "stale": "stale", "live": "live"}
        if book is not None and status.kind in states:
            book.state = states[status.kind]

    def run(self, events: Sequence[Any], frames: dict[str, Any] | None = None) -> None:
        dispatcher = self._dispatcher
        dispatcher.start(Context(self))
        try:
            for start in range(0, len(events), REPLAY_CHUNK):
                if self._stopped or dispatcher.failed:
                    break
                chunk = events[start : start + REPLAY_CHUNK]
                for ev in chunk:
                    if isinstance(ev, _core.Status):
                        self._on_status(ev)
                dispatcher.dispatch(chunk)
                dispatcher.run_timers()
            if frames and not self._stopped:
                dispatcher.dispatch_frames(frames)
        finally:
            dispatcher.stop()

    # Context host
    def book(self, exchange: str, symbol: str) -> Book | None:
        found = self._books.get((exchange, symbol)) or self._native.get((exchange, symbol))
        return cast("Book | None", found)

    def stats(self) -> dict[str, int]:
        return {**self._result.stats, **self._dispatcher.counters}

    def stop(self) -> None:
        self._stopped = True


# ------------------------------------------------------------------------------------------
# reading recorded files

Timestamp = int | dt.datetime | dt.date | str


def _to_ns(value: Timestamp) -> int:
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if not isinstance(value, dt.datetime):
        value = dt.datetime(value.year, value.month, value.day)
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return int(value.timestamp() * 1_000_000) * 1000


def _date_dirs(root: Path, start: int | None, end: int | None) -> list[Path]:
    """``date=YYYY-MM-DD`` folders under `root` that can hold ``start <= ts_recv < end``."""
    lo = None if start is None else dt.datetime.fromtimestamp(start / 1e9, dt.UTC).date()
    hi = None if end is None else dt.datetime.fromtimestamp((end - 1) / 1e9, dt.UTC).date()
    out = []
    for folder in sorted(root.glob("exchange=*/date=*")):
        try:
            day = dt.date.fromisoformat(folder.name.removeprefix("date="))
        except ValueError:
            out.append(folder)  # not ours: keep, the row filters still apply
            continue
        if (lo is None or day >= lo) and (hi is None or day <= hi):
            out.append(folder)
    return out


def read(
    path: str | os.PathLike[str],
    channel: str = "trades",
    symbol: str | Sequence[str] | None = None,
    exchange: str | Sequence[str] | None = None,
    start: Timestamp | None = None,
    end: Timestamp | None = None,
) -> pl.LazyFrame:
    """Lazily read Parquet files written by the recorder.

    Partitions are pruned before scanning: only ``exchange=<exchange>`` folders of the wanted
    venues and ``date=<day>`` folders overlapping ``[start, end)`` are opened; the symbol and
    time filters are then pushed down to the Parquet reader (row-group statistics).

    Args:
        path: The recording root (``[record] dir``).
        channel: ``trades``, ``bbo`` or ``book``.
        symbol: Normalized symbol(s) to keep.
        exchange: Venue id(s) to keep.
        start: Keep rows with ``ts_recv >= start`` (ns, datetime, date or ISO string; UTC).
        end: Keep rows with ``ts_recv < end``.

    Returns:
        A LazyFrame with the contract columns of `channel`.

    Raises:
        ReplayError: For an unknown channel or when no file matches.
    """
    if channel not in SCHEMAS:
        raise ReplayError(f"unknown channel {channel!r} (valid: {', '.join(SCHEMAS)})")
    root = Path(path) / channel
    lo = None if start is None else _to_ns(start)
    hi = None if end is None else _to_ns(end)
    folders = _date_dirs(root, lo, hi)
    if exchange is not None:
        venues = {exchange} if isinstance(exchange, str) else set(exchange)
        folders = [f for f in folders if f.parent.name.removeprefix("exchange=") in venues]
    files = [str(f) for folder in folders for f in sorted(folder.glob("*.parquet"))]
    if not files:
        where = root if exchange is None else f"{root} (exchange {exchange})"
        span = "" if lo is None and hi is None else " in the requested time range"
        raise ReplayError(f"no {channel} files under {where}{span}")
    frame = pl.scan_parquet(files, hive_partitioning=False, schema=SCHEMAS[channel])
    filters: list[pl.Expr] = []
    if exchange is not None:
        filters.append(pl.col("exchange").is_in(sorted(venues)))
    if symbol is not None:
        wanted = [symbol] if isinstance(symbol, str) else list(symbol)
        filters.append(pl.col("symbol").is_in(wanted))
    if lo is not None:
        filters.append(pl.col("ts_recv") >= lo)
    if hi is not None:
        filters.append(pl.col("ts_recv") < hi)
    for expr in filters:
        frame = frame.filter(expr)
    return frame


def book_at(
    path: str | os.PathLike[str],
    exchange: str,
    symbol: str,
    ts: Timestamp,
    depth: int | None = None,
) -> pl.DataFrame:
    """Rebuild a recorded book as it was at `ts` (by ``ts_recv``), from the ``book`` channel.

    Starts from the last snapshot received at or before `ts` and applies the later updates
    (absolute sizes, 0 removes the level), all vectorized in polars.

    Args:
        path: The recording root; the recorder must have recorded the ``book`` channel.
        exchange: Venue id.
        symbol: Normalized symbol (``"BTC-USDT"``).
        ts: The instant (ns, datetime, date or ISO string; UTC); updates at `ts` are included.
        depth: Levels per side to keep (None: all).

    Returns:
        Columns ``side`` (``bid``/``ask``), ``level`` (0 = best), ``price``, ``size``; bids
        then asks, best first (the shape of ``Book.to_polars``).

    Raises:
        ReplayError: When nothing was recorded for the book, or no snapshot precedes `ts`.
    """
    at = _to_ns(ts)
    rows = (
        read(path, "book", symbol=symbol, exchange=exchange, end=at + 1)
        .with_row_index("_row")
        .collect()
    )
    snapshots = rows.filter(pl.col("is_snapshot"))
    if snapshots.height == 0:
        raise ReplayError(f"no {exchange} {symbol} book snapshot recorded before {ts}")
    last = snapshots.sort(["ts_recv", "seq", "_row"]).row(-1, named=True)
    snap_seq, snap_ts = last["seq"], last["ts_recv"]
    applied = rows.filter(
        (pl.col("is_snapshot") & (pl.col("seq") == snap_seq) & (pl.col("ts_recv") == snap_ts))
        | (~pl.col("is_snapshot") & (pl.col("ts_recv") >= snap_ts) & (pl.col("seq") > snap_seq))
    )
    levels = (
        applied.sort(["ts_recv", "seq", "_row"])
        .group_by(["side", "price"], maintain_order=True)
        .agg(pl.col("size").last())
        .filter(pl.col("size") > 0)
    )
    sides = []
    for side, descending in (("bid", True), ("ask", False)):
        part = levels.filter(pl.col("side") == side).sort("price", descending=descending)
        if depth is not None:
            part = part.head(depth)
        sides.append(part.with_row_index("level").with_columns(pl.col("level").cast(pl.Int64)))
    return pl.concat(sides).select("side", "level", "price", "size")
