"""Configuration: typed, frozen, validated on construction, loaded from TOML.

Every problem raises `ConfigError` naming the dotted key (``feeds[0].channels``) and, when the
configuration came from a file, the line it is on. The format, annotated::

    [runtime]                       # optional
    queue_capacity = 65536          # events the bus holds before `overflow` applies
    overflow = "block"              # "block" (back-pressure, lossless) | "drop_oldest"
    quote_policy = "conflate"       # bbo/ticker on a full bus: "conflate" (latest) | "block"
    book_policy = "resync"          # book on a full bus: "resync" (fresh snapshot) | "block"
    trade_policy = "block"          # trades on a full bus: "block" | "spill" (to spill_dir)
    spill_dir = ""                  # "" = <tmp>/xtrader-spill
    spill_max_bytes = 1073741824    # spill file bound; past it trades block
    busy_poll_us = 0                # spin this long on an empty bus before sleeping (0 = off)
    worker_threads = 2              # tokio I/O threads; 0 = inline (sockets read on the
                                    # strategy thread while it waits: lowest latency)
    on_error = "continue"           # a strategy callback raised: "continue" (report) | "stop"

    [[feeds]]                       # one table per venue connection group
    exchange = "binance"            # binance | binance_us | binance_usdm | binance_coinm | okx
    symbols = ["BTCUSDT", "ETH-USDT"]   # native or normalized (BTC-USDT-PERP, BTC-USD-20251226)
    channels = ["trades", "book", "bbo"]  # futures and okx also: funding, liquidations,
                                    #   open_interest; okx also ticker
    venue_channels = []             # okx only: "books5", "books-l2-tbt", "books50-l2-tbt",
                                    #   "trades-all" instead of the default books / trades
    stale_after_ms = 30000          # reconnect after this long without any frame
    ws_url = "sim"                  # optional override; "sim" = the embedded simulator
    rest_url = "sim"
    depth_limit = 1000              # REST snapshot depth (1..5000; futures: 5..1000)
    trade_stream = "trade"          # "trade" | "aggTrade" (default: trade spot, aggTrade futures)
    open_interest_interval_s = 10.0 # futures: polling, stretched to fit the REST weight budget
    connection_lifetime_s = 86400.0 # optional: roll over to a fresh socket before (venue: 24 h)
    max_data_silence_ms = 75000     # optional: reconnect when connected but no data arrives

    [metrics]
    listen = "127.0.0.1:9898"       # "" disables the Prometheus endpoint

    [record]                        # optional: Parquet files of the chosen channels
    dir = "./xtrader-data"
    channels = ["trades", "bbo"]    # trades | bbo | book
    flush_interval_s = 5.0

    [sim]                           # optional: start the embedded simulator
    symbols = ["BTCUSDT", "ETHUSDT"]    # Binance profile
    okx_symbols = ["BTC-USDT-SWAP"]     # OKX profile (instrument ids), optional
    rate = 2000.0                   # messages per second, all symbols together
    seed = 1
    port = 0                        # 0 = any free port

    [[strategies]]
    path = "xtrader.demo:DemoStrategy"  # module:Class
    params = { }                    # keyword arguments for the constructor

    [[sinks]]                       # any number; see xtrader.sinks
    type = "parquet"                # parquet | jsonl | csv | an `xtrader.sinks` entry point
    dir = "./xtrader-data"          # the sink's options, validated by the sink type
    flush_interval_s = 1.0

    [jetstream]                     # optional: publish every event into NATS JetStream
    servers = ["nats://127.0.0.1:4222"] # nats://host:port of the cluster's nodes
    stream = "XT"                   # stream name: letters, digits, '-', '_'
    subject_prefix = "xt"           # subjects <prefix>.<channel>.<exchange>.<symbol>
    replicas = 1                    # copies of the stream (1..5)
    max_age_s = 0.0                 # retention: 0 = no age limit
    max_bytes = -1                  # retention: -1 = unlimited
    max_msgs = -1                   # retention: -1 = unlimited
    duplicate_window_s = 120.0      # JetStream deduplication window (at most max_age_s)
    max_inflight = 1024             # publishes awaiting their ack (1..65536)
    snapshot_interval_s = 30.0      # full books republished this often
    channels = ["trades", "book"]   # optional: default every channel

    [source]                        # optional: consume JetStream instead of [[feeds]]
    kind = "jetstream"              # the only kind
    servers = ["nats://127.0.0.1:4222"]
    stream = "XT"
    subject = "xt.>"                # one subject filter ('*' a token, '>' the last token)
    durable = "xtrader"             # durable consumer name: resumes after a restart
    checkpoint = "xt.checkpoint"    # optional: file keeping the last delivered sequence
    batch = 512                     # messages per pull (1..10000)
    gap_timeout_s = 2.0             # how long a missing sequence is waited for
"""

from __future__ import annotations

import asyncio
import dataclasses
import difflib
import importlib
import json
import math
import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar
from urllib.parse import urlsplit

from .exceptions import ConfigError

if TYPE_CHECKING:
    from .strategy import Strategy

__all__ = [
    "ALL_CHANNELS",
    "CHANNELS",
    "EXCHANGES",
    "FEED_CHANNELS",
    "FUTURES_CHANNELS",
    "FUTURES_EXCHANGES",
    "OKX_VENUE_CHANNELS",
    "RECORD_CHANNELS",
    "SIM",
    "SUPPORTED_EXCHANGES",
    "Config",
    "FeedConfig",
    "JetStreamConfig",
    "MetricsConfig",
    "RecordConfig",
    "RuntimeConfig",
    "SimConfig",
    "SinkRef",
    "SourceConfig",
    "StrategyRef",
    "dump_config",
    "load_config",
    "load_config_async",
    "parse_config",
]

EXCHANGES: tuple[str, ...] = ("binance", "binance_us", "binance_usdm", "binance_coinm", "okx")
"""Every venue id of the product (ARCHITECTURE.md)."""

SUPPORTED_EXCHANGES: tuple[str, ...] = (
    "binance",
    "binance_us",
    "binance_usdm",
    "binance_coinm",
    "okx",
)
"""Venue ids the core can run today."""

FUTURES_EXCHANGES: tuple[str, ...] = ("binance_usdm", "binance_coinm", "okx")
"""Venue ids with derivatives markets (mark price, liquidations, open interest)."""

CHANNELS: tuple[str, ...] = ("trades", "book", "bbo")
"""Default channels of a feed (every venue offers them)."""

FUTURES_CHANNELS: tuple[str, ...] = ("funding", "liquidations", "open_interest")
"""Channels only derivatives venues offer."""

FEED_CHANNELS: tuple[str, ...] = CHANNELS + FUTURES_CHANNELS
"""Every channel a Binance feed can subscribe to."""

ALL_CHANNELS: tuple[str, ...] = (
    "trades",
    "book",
    "bbo",
    "ticker",
    "funding",
    "liquidations",
    "open_interest",
)
"""Every normalized channel name."""

_VENUE_CHANNEL_SETS: dict[str, tuple[str, ...]] = {"okx": ALL_CHANNELS}
"""Channels per venue beyond `FEED_CHANNELS` (FUTURES_CHANNELS need a FUTURES_EXCHANGES venue)."""

OKX_VENUE_CHANNELS: tuple[str, ...] = (
    "books",
    "books5",
    "books-l2-tbt",
    "books50-l2-tbt",
    "trades",
    "trades-all",
)
"""OKX wire channels a feed may pick instead of the defaults (``books``, ``trades``)."""

_OKX_BOOK_CHANNELS = ("books", "books5", "books-l2-tbt", "books50-l2-tbt")

RECORD_CHANNELS: tuple[str, ...] = ("trades", "bbo", "book")
"""Channels the Parquet recorder can write."""

SIM = "sim"
"""URL placeholder meaning: the embedded simulator's URL."""

OVERFLOW_POLICIES: tuple[str, ...] = ("block", "drop_oldest")
TRADE_STREAMS: tuple[str, ...] = ("trade", "aggTrade")
_STRATEGY_PATH = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
_NATS_NAME = re.compile(r"^[A-Za-z0-9_\-]{1,255}$")
_NATS_TOKEN = re.compile(r"^[^\s.*>]+$")
_MAX_I64 = (1 << 63) - 1
_MAX_AGE_S = 100 * 365 * 86400.0
SOURCE_KINDS: tuple[str, ...] = ("jetstream",)
_SYMBOL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-./]*$")


# --------------------------------------------------------------------------------------------
# value checks (raise ConfigError with the local key; callers add the prefix and line)


def _type_name(value: object) -> str:
    names = {dict: "table", list: "array", tuple: "array", str: "string", bool: "boolean"}
    return names.get(type(value), type(value).__name__)


def _check_int(key: str, value: object, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(key, f"expected an integer, got {_type_name(value)} {value!r}")
    if not lo <= value <= hi:
        raise ConfigError(key, f"must be between {lo} and {hi}, got {value}")
    return value


def _check_float(key: str, value: object, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(key, f"expected a number, got {_type_name(value)} {value!r}")
    number = float(value)
    if math.isnan(number) or not lo < number <= hi:
        raise ConfigError(key, f"must be greater than {lo:g} and at most {hi:g}, got {value}")
    return number


def _check_str(key: str, value: object, choices: Sequence[str] | None = None) -> str:
    if not isinstance(value, str):
        raise ConfigError(key, f"expected a string, got {_type_name(value)} {value!r}")
    if choices is not None and value not in choices:
        raise ConfigError(key, f"must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return value


def _check_str_list(
    key: str, value: object, what: str, choices: Sequence[str] | None = None
) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ConfigError(key, f"expected an array of {what}s, got {_type_name(value)} {value!r}")
    if len(value) == 0:
        raise ConfigError(key, f"must list at least one {what}")
    out: list[str] = []
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise ConfigError(f"{key}[{i}]", f"expected a string, got {_type_name(item)} {item!r}")
        if choices is not None and item not in choices:
            raise ConfigError(key, f"unknown {what} {item!r} (valid: {', '.join(choices)})")
        if item in out:
            raise ConfigError(key, f"duplicate {what} {item!r}")
        out.append(item)
    return tuple(out)


def _check_symbols(key: str, value: object) -> tuple[str, ...]:
    symbols = _check_str_list(key, value, "symbol")
    for i, sym in enumerate(symbols):
        if not _SYMBOL.match(sym):
            raise ConfigError(f"{key}[{i}]", f"invalid symbol {sym!r}")
    return symbols


def _check_url(key: str, value: object, schemes: tuple[str, ...]) -> str | None:
    if value is None:
        return None
    url = _check_str(key, value)
    if url == SIM:
        return url
    try:
        parts = urlsplit(url)
        port_ok = parts.port is None or 0 < parts.port < 65536
    except ValueError as exc:
        raise ConfigError(key, f"invalid URL {url!r}: {exc}") from None
    if parts.scheme not in schemes:
        raise ConfigError(
            key, f"invalid URL {url!r}: scheme must be {' or '.join(schemes)} (or the string 'sim')"
        )
    if not parts.hostname or not port_ok:
        raise ConfigError(key, f"invalid URL {url!r}: missing or bad host/port")
    return url


def _check_venue_channels(exchange: str, value: object) -> tuple[str, ...]:
    key = "venue_channels"
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ConfigError(key, f"expected an array of strings, got {_type_name(value)} {value!r}")
    if len(value) == 0:
        return ()
    if exchange != "okx":
        raise ConfigError(key, f"{exchange!r} has no venue channel choice (okx only)")
    names = _check_str_list(key, value, "venue channel", OKX_VENUE_CHANNELS)
    books = [n for n in names if n in _OKX_BOOK_CHANNELS]
    trades = [n for n in names if n not in _OKX_BOOK_CHANNELS]
    if len(books) > 1 or len(trades) > 1:
        raise ConfigError(key, f"at most one book and one trade channel, got {list(names)!r}")
    return names


def _check_servers(key: str, value: object) -> tuple[str, ...]:
    servers = _check_str_list(key, value, "server")
    for i, url in enumerate(servers):
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise ConfigError(f"{key}[{i}]", f"invalid URL {url!r}: {exc}") from None
        extra = parts.path not in ("", "/") or parts.query or parts.fragment
        if parts.scheme != "nats" or not parts.hostname or not port or extra:
            raise ConfigError(f"{key}[{i}]", f"expected 'nats://host:port', got {url!r}")
    return servers


def _check_nats_name(key: str, value: object, what: str) -> str:
    name = _check_str(key, value)
    if not _NATS_NAME.match(name):
        raise ConfigError(
            key, f"a {what} name is 1 to 255 letters, digits, '-' or '_', got {name!r}"
        )
    return name


def _check_subject(key: str, value: object) -> str:
    """A NATS subject filter: dot-separated non-empty tokens, ``*`` a whole token, ``>`` only
    as the last token."""
    subject = _check_str(key, value)
    tokens = subject.split(".")
    for i, token in enumerate(tokens):
        if token == "":
            raise ConfigError(key, f"invalid subject {subject!r}: empty token")
        if token == ">" and i != len(tokens) - 1:
            raise ConfigError(key, f"invalid subject {subject!r}: '>' must be the last token")
        if token not in ("*", ">") and not _NATS_TOKEN.match(token):
            raise ConfigError(
                key,
                f"invalid subject {subject!r}: token {token!r} (wildcards '*' and '>' are "
                "whole tokens; no spaces)",
            )
    return subject


def _check_limit(key: str, value: object) -> int:
    """A stream retention limit: -1 (unlimited) or a positive integer."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(key, f"expected an integer, got {_type_name(value)} {value!r}")
    if value != -1 and not 0 < value <= _MAX_I64:
        raise ConfigError(key, f"must be -1 (unlimited) or a positive integer, got {value}")
    return value


def _check_age(key: str, value: object, hi: float) -> float:
    """Seconds where 0 means no limit."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(key, f"expected a number, got {_type_name(value)} {value!r}")
    number = float(value)
    if math.isnan(number) or not 0.0 <= number <= hi:
        raise ConfigError(key, f"must be 0 (no limit) or greater, at most {hi:g}, got {value}")
    return number


def _set(obj: object, name: str, value: object) -> None:
    # Frozen dataclasses normalise their own fields (lists -> tuples) during __post_init__.
    object.__setattr__(obj, name, value)


# --------------------------------------------------------------------------------------------
# configuration types


@dataclass(frozen=True, slots=True)
class RuntimeConfig:
    """Engine settings.

    Attributes:
        queue_capacity: Events the bus holds before the overflow policy applies.
        overflow: ``"block"`` (back-pressure to the socket, nothing dropped) or
            ``"drop_oldest"``.
        worker_threads: Tokio I/O threads. 0 = inline: no I/O threads; the sockets are read
            on the thread that runs the strategies, while it waits for events. The hand-off
            is then a function return instead of a thread wake-up (lowest latency), but
            nothing is read while a callback runs and everything shares one core.
        on_error: When a strategy callback raises: ``"continue"`` (report it, the feed goes
            on) or ``"stop"`` (stop the run; `Runtime.run` raises `StrategyError`).
        quote_policy: bbo and ticker on a full bus: ``"conflate"`` (a newer quote replaces
            the queued one of its symbol) or ``"block"``.
        book_policy: Book updates on a full bus: ``"resync"`` (none dropped: the symbol
            resyncs from a fresh snapshot, announced) or ``"block"``.
        trade_policy: Trades on a full bus: ``"block"`` (back-pressure) or ``"spill"`` (to a
            bounded file under `spill_dir`, read back in order).
        spill_dir: Folder of the trade spill file (``""``: ``<tmp>/xtrader-spill``).
        spill_max_bytes: Spill file bound; past it trades block.
        busy_poll_us: How long the Python side spins on an empty bus before it sleeps:
            lower hand-off latency for a busy core (0 = off, at most 100,000).
    """

    queue_capacity: int = 65536
    overflow: Literal["block", "drop_oldest"] = "block"
    worker_threads: int = 2
    on_error: Literal["continue", "stop"] = "continue"
    quote_policy: Literal["conflate", "block"] = "conflate"
    book_policy: Literal["resync", "block"] = "resync"
    trade_policy: Literal["block", "spill"] = "block"
    spill_dir: str = ""
    spill_max_bytes: int = 1 << 30
    busy_poll_us: int = 0

    def __post_init__(self) -> None:
        _check_int("queue_capacity", self.queue_capacity, 16, 1 << 30)
        _check_str("overflow", self.overflow, OVERFLOW_POLICIES)
        _check_int("worker_threads", self.worker_threads, 0, 256)
        _check_str("on_error", self.on_error, ("continue", "stop"))
        _check_str("quote_policy", self.quote_policy, ("conflate", "block"))
        _check_str("book_policy", self.book_policy, ("resync", "block"))
        _check_str("trade_policy", self.trade_policy, ("block", "spill"))
        _check_str("spill_dir", self.spill_dir)
        _check_int("spill_max_bytes", self.spill_max_bytes, 4096, 1 << 40)
        _check_int("busy_poll_us", self.busy_poll_us, 0, 100_000)


@dataclass(frozen=True, slots=True)
class FeedConfig:
    """One venue subscription group.

    Attributes:
        exchange: Venue id (``binance``, ``binance_us``, ``binance_usdm``,
            ``binance_coinm``, ``okx``).
        symbols: Native (``BTCUSDT``, ``BTCUSD_PERP``, ``BTC-USDT-SWAP``) or normalized
            (``BTC-USDT``, ``BTC-USDT-PERP``, ``BTC-USD-20251226``) symbols.
        channels: Subset of ``trades``, ``book``, ``bbo``; futures venues and ``okx`` also
            ``funding``, ``liquidations``, ``open_interest``; ``okx`` also ``ticker``.
        ws_url: Websocket base URL override, or ``"sim"`` for the embedded simulator. For
            ``binance_usdm`` it is the base the ``/public`` and ``/market`` routes go under.
        rest_url: REST base URL override, or ``"sim"``.
        depth_limit: Depth of REST snapshots (1..5000; futures use the next of 5, 10, 20,
            50, 100, 500, 1000).
        trade_stream: ``"trade"`` or ``"aggTrade"`` (Binance); None = the venue's default
            (``trade`` on spot, ``aggTrade`` on futures, where ``trade`` is undocumented).
        venue_channels: OKX wire channels instead of the defaults: one book channel of
            ``books``, ``books5``, ``books-l2-tbt``, ``books50-l2-tbt`` and/or one trade
            channel of ``trades``, ``trades-all``.
        stale_after_ms: Reconnect after this long without any frame (OKX also pings after a
            third of it, at most every 20 s).
        open_interest_interval_s: Open-interest polling interval, seconds (stretched when
            polling would use more than a quarter of the REST weight budget).
        connection_lifetime_s: Connection lifetime override, seconds (None = the venue's,
            24 h on Binance); sockets roll over to fresh connections before it ends.
        max_data_silence_ms: Reconnect when no data frame (pings, pongs and acks do not
            count) arrives for this long: a connected but silent socket. None = the venue's
            guaranteed cadence plus 15 s where it has one (OKX books: 60 s heartbeat;
            Binance futures funding: 1 s), else no limit (a quiet market is not a dead
            socket).
    """

    exchange: str
    symbols: tuple[str, ...]
    channels: tuple[str, ...] = CHANNELS
    ws_url: str | None = None
    rest_url: str | None = None
    depth_limit: int = 1000
    trade_stream: Literal["trade", "aggTrade"] | None = None
    venue_channels: tuple[str, ...] = ()
    stale_after_ms: int = 30000
    open_interest_interval_s: float = 10.0
    connection_lifetime_s: float | None = None
    max_data_silence_ms: int | None = None

    def __post_init__(self) -> None:
        exchange = _check_str("exchange", self.exchange)
        if exchange not in EXCHANGES:
            raise ConfigError(
                "exchange", f"unknown exchange {exchange!r} (valid: {', '.join(EXCHANGES)})"
            )
        if exchange not in SUPPORTED_EXCHANGES:
            raise ConfigError(
                "exchange",
                f"exchange {exchange!r} is not supported yet "
                f"(the core runs: {', '.join(SUPPORTED_EXCHANGES)})",
            )
        _set(self, "symbols", _check_symbols("symbols", self.symbols))
        valid = _VENUE_CHANNEL_SETS.get(exchange, FEED_CHANNELS)
        channels = _check_str_list("channels", self.channels, "channel", valid)
        if exchange not in FUTURES_EXCHANGES:
            for name in channels:
                if name in FUTURES_CHANNELS:
                    raise ConfigError(
                        "channels",
                        f"channel {name!r} is offered by {', '.join(FUTURES_EXCHANGES)} only",
                    )
        _set(self, "channels", channels)
        _set(self, "venue_channels", _check_venue_channels(exchange, self.venue_channels))
        _check_int("stale_after_ms", self.stale_after_ms, 1000, 3_600_000)
        _check_url("ws_url", self.ws_url, ("ws", "wss"))
        _check_url("rest_url", self.rest_url, ("http", "https"))
        _check_int("depth_limit", self.depth_limit, 1, 5000)
        if self.trade_stream is not None:
            _check_str("trade_stream", self.trade_stream, TRADE_STREAMS)
        _set(
            self,
            "open_interest_interval_s",
            _check_float("open_interest_interval_s", self.open_interest_interval_s, 0.0, 86400.0),
        )
        if self.connection_lifetime_s is not None:
            _set(
                self,
                "connection_lifetime_s",
                _check_float("connection_lifetime_s", self.connection_lifetime_s, 0.0, 86400.0),
            )
        if self.max_data_silence_ms is not None:
            _check_int("max_data_silence_ms", self.max_data_silence_ms, 500, 3_600_000)

    @property
    def uses_sim(self) -> bool:
        """Whether either URL is the ``"sim"`` placeholder."""
        return SIM in (self.ws_url, self.rest_url)


@dataclass(frozen=True, slots=True)
class MetricsConfig:
    """Prometheus endpoint.

    Attributes:
        listen: ``host:port`` to serve ``/metrics`` on; ``""`` disables the server.
    """

    listen: str = "127.0.0.1:9898"

    def __post_init__(self) -> None:
        listen = _check_str("listen", self.listen)
        if listen == "":
            return
        host, sep, port = listen.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
            raise ConfigError("listen", f"expected 'host:port' (or '' to disable), got {listen!r}")

    @property
    def addr(self) -> str | None:
        """The address to bind, or None when disabled."""
        return self.listen or None


@dataclass(frozen=True, slots=True)
class RecordConfig:
    """Parquet recording.

    Attributes:
        dir: Root folder; files go to ``<dir>/<channel>/exchange=<ex>/date=<YYYY-MM-DD>/``.
        channels: Subset of ``trades``, ``bbo``, ``book``.
        flush_interval_s: Seconds between writes.
    """

    dir: str = "./xtrader-data"
    channels: tuple[str, ...] = ("trades", "bbo")
    flush_interval_s: float = 5.0

    def __post_init__(self) -> None:
        if not _check_str("dir", self.dir):
            raise ConfigError("dir", "must not be empty")
        _set(
            self,
            "channels",
            _check_str_list("channels", self.channels, "channel", RECORD_CHANNELS),
        )
        _set(
            self,
            "flush_interval_s",
            _check_float("flush_interval_s", self.flush_interval_s, 0.0, 3600.0),
        )


@dataclass(frozen=True, slots=True)
class SimConfig:
    """The embedded exchange simulator (Binance spot and OKX v5 protocols on loopback).

    Attributes:
        symbols: Native Binance symbols to simulate.
        okx_symbols: OKX instrument ids to simulate (``BTC-USDT``, ``BTC-USDT-SWAP``,
            ``BTC-USD-250926``, ``BTC-USD-250926-60000-C``).
        rate: Messages per second over all symbols.
        seed: Random seed of the synthetic market.
        port: TCP port; 0 picks a free one.
    """

    symbols: tuple[str, ...] = ("BTCUSDT", "ETHUSDT")
    rate: float = 1000.0
    seed: int = 1
    port: int = 0
    okx_symbols: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _set(self, "symbols", _check_symbols("symbols", self.symbols))
        if isinstance(self.okx_symbols, Sequence) and len(self.okx_symbols) == 0:
            _set(self, "okx_symbols", ())
        else:
            _set(self, "okx_symbols", _check_symbols("okx_symbols", self.okx_symbols))
        _set(self, "rate", _check_float("rate", self.rate, 0.0, 10_000_000.0))
        _check_int("seed", self.seed, 0, (1 << 63) - 1)
        _check_int("port", self.port, 0, 65535)


@dataclass(frozen=True, slots=True)
class StrategyRef:
    """A strategy class to instantiate.

    Attributes:
        path: ``"package.module:ClassName"``.
        params: Keyword arguments for the constructor.
    """

    path: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        path = _check_str("path", self.path)
        if not _STRATEGY_PATH.match(path):
            raise ConfigError("path", f"expected 'module:Class', got {path!r}")
        if not isinstance(self.params, Mapping):
            raise ConfigError(
                "params", f"expected a table, got {_type_name(self.params)} {self.params!r}"
            )
        for name in self.params:
            if not isinstance(name, str) or not name.isidentifier():
                raise ConfigError(f"params.{name}", "parameter names must be identifiers")
        _set(self, "params", dict(self.params))

    def load(self) -> Strategy:
        """Import the class and instantiate it with `params`.

        Raises:
            ConfigError: Naming ``path`` when the import fails or the class is not a
                `Strategy`, naming ``params`` when the constructor rejects them.
        """
        from .strategy import Strategy

        module_name, _, class_name = self.path.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise ConfigError("path", f"cannot import {module_name!r}: {exc}") from exc
        cls = getattr(module, class_name, None)
        if not isinstance(cls, type) or not issubclass(cls, Strategy):
            raise ConfigError("path", f"{self.path!r} is not an xtrader.Strategy subclass")
        try:
            return cls(**self.params)
        except Exception as exc:  # a user constructor may raise anything
            raise ConfigError("params", f"{self.path} rejected its parameters: {exc}") from exc


@dataclass(frozen=True, slots=True)
class SinkRef:
    """A sink to attach: its registered type and options.

    Attributes:
        type: ``parquet``, ``jsonl``, ``csv`` or the name of an ``xtrader.sinks`` entry point.
        options: Keyword arguments of the sink (validated by the type on construction).
    """

    type: str
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_str("type", self.type)
        if not isinstance(self.options, Mapping):
            raise ConfigError("options", f"expected a table, got {_type_name(self.options)}")
        _set(self, "options", dict(self.options))
        self.load()  # validates the options now (ConfigError naming the key)

    def load(self) -> Any:
        """Instantiate the sink (an `xtrader.sinks.Sink`)."""
        from .sinks import build_sink

        return build_sink(self.type, self.options)


@dataclass(frozen=True, slots=True)
class JetStreamConfig:
    """Publishing every normalized event into a NATS JetStream stream.

    Events go to subjects ``<subject_prefix>.<channel>.<exchange>.<symbol>``; the stream is
    created when absent, with the retention limits below.

    Attributes:
        servers: ``nats://host:port`` URLs of the cluster's nodes.
        stream: Stream name (letters, digits, ``-``, ``_``).
        subject_prefix: First subject token (no dots, no wildcards).
        replicas: Copies of the stream in the cluster (1..5).
        max_age_s: Oldest message kept, seconds (0 = no age limit).
        max_bytes: Stream size bound (-1 = unlimited).
        max_msgs: Message count bound (-1 = unlimited).
        duplicate_window_s: JetStream's deduplication window, seconds (at most `max_age_s`
            when that is set).
        max_inflight: Publishes awaiting their ack; past it publishing waits (1..65536).
        snapshot_interval_s: Full books are republished this often, so a consumer starting
            late can build them.
        channels: Channels to publish (None = every channel).
    """

    servers: tuple[str, ...]
    stream: str = "XT"
    subject_prefix: str = "xt"
    replicas: int = 1
    max_age_s: float = 0.0
    max_bytes: int = -1
    max_msgs: int = -1
    duplicate_window_s: float = 120.0
    max_inflight: int = 1024
    snapshot_interval_s: float = 30.0
    channels: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        _set(self, "servers", _check_servers("servers", self.servers))
        _check_nats_name("stream", self.stream, "stream")
        prefix = _check_str("subject_prefix", self.subject_prefix)
        if not _NATS_TOKEN.match(prefix):
            raise ConfigError(
                "subject_prefix",
                f"must be one subject token (no dots, wildcards, spaces), got {prefix!r}",
            )
        _check_int("replicas", self.replicas, 1, 5)
        _set(self, "max_age_s", _check_age("max_age_s", self.max_age_s, _MAX_AGE_S))
        _check_limit("max_bytes", self.max_bytes)
        _check_limit("max_msgs", self.max_msgs)
        window = _check_float("duplicate_window_s", self.duplicate_window_s, 0.0, 86400.0)
        if 0 < self.max_age_s < window:
            raise ConfigError(
                "duplicate_window_s",
                f"must not exceed max_age_s ({self.max_age_s:g} s), which JetStream rejects: "
                f"set duplicate_window_s to at most max_age_s, got {self.duplicate_window_s}",
            )
        _set(self, "duplicate_window_s", window)
        _check_int("max_inflight", self.max_inflight, 1, 65536)
        _set(
            self,
            "snapshot_interval_s",
            _check_float("snapshot_interval_s", self.snapshot_interval_s, 0.0, 86400.0),
        )
        if self.channels is not None:
            _set(
                self,
                "channels",
                _check_str_list("channels", self.channels, "channel", ALL_CHANNELS),
            )


@dataclass(frozen=True, slots=True)
class SourceConfig:
    """A runtime fed from a message bus instead of venues: it replaces every feed.

    Attributes:
        kind: ``"jetstream"`` (the only kind).
        servers: ``nats://host:port`` URLs of the cluster's nodes.
        stream: Stream name (letters, digits, ``-``, ``_``).
        subject: One subject filter (``xt.>``, ``xt.trades.*.*``; ``*`` a whole token,
            ``>`` only last).
        durable: Durable consumer name: its position survives a restart.
        checkpoint: File keeping the last delivered stream sequence, so a restarted
            consumer delivers nothing twice (None = none).
        batch: Messages per pull (1..10000).
        gap_timeout_s: How long a missing stream sequence is waited for before it counts
            as a gap.
    """

    kind: Literal["jetstream"]
    servers: tuple[str, ...]
    stream: str = "XT"
    subject: str = "xt.>"
    durable: str = "xtrader"
    checkpoint: str | None = None
    batch: int = 512
    gap_timeout_s: float = 2.0

    def __post_init__(self) -> None:
        _check_str("kind", self.kind, SOURCE_KINDS)
        _set(self, "servers", _check_servers("servers", self.servers))
        _check_nats_name("stream", self.stream, "stream")
        _check_subject("subject", self.subject)
        _check_nats_name("durable", self.durable, "consumer")
        if self.checkpoint is not None and not _check_str("checkpoint", self.checkpoint):
            raise ConfigError("checkpoint", "must not be empty (leave it out for none)")
        _check_int("batch", self.batch, 1, 10_000)
        _set(
            self,
            "gap_timeout_s",
            _check_float("gap_timeout_s", self.gap_timeout_s, 0.0, 3600.0),
        )


@dataclass(frozen=True, slots=True)
class Config:
    """A whole runtime configuration.

    Attributes:
        runtime: Engine settings.
        feeds: Venue subscriptions (at least one).
        metrics: Prometheus endpoint.
        record: Parquet recording, or None.
        sim: Embedded simulator, or None.
        strategies: Strategy classes to attach.
        sinks: Sinks to attach.
        jetstream: Publishing into NATS JetStream, or None.
        source: A bus to consume instead of feeds (then no feeds and no simulator), or None.
    """

    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    feeds: tuple[FeedConfig, ...] = ()
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    record: RecordConfig | None = None
    sim: SimConfig | None = None
    strategies: tuple[StrategyRef, ...] = ()
    sinks: tuple[SinkRef, ...] = ()
    jetstream: JetStreamConfig | None = None
    source: SourceConfig | None = None

    def __post_init__(self) -> None:
        _expect_instance("runtime", self.runtime, RuntimeConfig)
        _set(self, "sinks", _instance_tuple("sinks", self.sinks, SinkRef))
        _expect_instance("metrics", self.metrics, MetricsConfig)
        if self.record is not None:
            _expect_instance("record", self.record, RecordConfig)
        if self.sim is not None:
            _expect_instance("sim", self.sim, SimConfig)
        _set(self, "feeds", _instance_tuple("feeds", self.feeds, FeedConfig))
        _set(self, "strategies", _instance_tuple("strategies", self.strategies, StrategyRef))
        if self.jetstream is not None:
            _expect_instance("jetstream", self.jetstream, JetStreamConfig)
        if self.source is not None:
            _expect_instance("source", self.source, SourceConfig)
            if self.feeds or self.sim is not None:
                what = "the [[feeds]] tables" if self.feeds else "the [sim] table"
                raise ConfigError(
                    "source",
                    f"a JetStream source replaces feeds: remove {what} (or the [source] table)",
                )
            self._check_no_loop(self.source, self.jetstream)
        elif not self.feeds:
            raise ConfigError("feeds", "at least one [[feeds]] table (or [source]) is required")
        for i, feed in enumerate(self.feeds):
            for name in ("ws_url", "rest_url"):
                if getattr(feed, name) == SIM and self.sim is None:
                    raise ConfigError(f"feeds[{i}].{name}", "'sim' needs a [sim] table")

    @staticmethod
    def _check_no_loop(source: SourceConfig, sink: JetStreamConfig | None) -> None:
        """A runtime fed by a JetStream source does not publish to JetStream: the source
        acknowledges a message once the bus has delivered its events, and the sink's own
        statuses on that bus would break the count (and could loop back into the source)."""
        if sink is None:
            return
        raise ConfigError(
            "jetstream",
            f"a runtime fed by a JetStream [source] (stream {source.stream!r}) cannot also "
            f"publish to JetStream (stream {sink.stream!r}): run the relay as its own process "
            "from the exchanges",
        )

    def load_strategies(self) -> list[Strategy]:
        """Instantiate every configured strategy.

        Raises:
            ConfigError: Naming ``strategies[i].path`` or ``strategies[i].params``.
        """
        out = []
        for i, ref in enumerate(self.strategies):
            try:
                out.append(ref.load())
            except ConfigError as exc:
                raise exc.with_prefix(f"strategies[{i}]") from exc.__cause__
        return out

    def summary(self) -> str:
        """One human line per part of the configuration."""
        lines = [
            f"runtime: queue_capacity={self.runtime.queue_capacity} "
            f"overflow={self.runtime.overflow} worker_threads={self.runtime.worker_threads} "
            f"quotes={self.runtime.quote_policy} book={self.runtime.book_policy} "
            f"trades={self.runtime.trade_policy}"
        ]
        for i, feed in enumerate(self.feeds):
            url = f" ws_url={feed.ws_url}" if feed.ws_url else ""
            lines.append(
                f"feeds[{i}]: {feed.exchange} {len(feed.symbols)} symbol(s) "
                f"[{', '.join(feed.symbols)}] channels={','.join(feed.channels)}{url}"
            )
        lines.append(f"metrics: {self.metrics.listen or 'disabled'}")
        if self.record is not None:
            lines.append(
                f"record: {self.record.dir} channels={','.join(self.record.channels)} "
                f"every {self.record.flush_interval_s:g} s"
            )
        if self.sim is not None:
            lines.append(
                f"sim: {', '.join(self.sim.symbols + self.sim.okx_symbols)} at "
                f"{self.sim.rate:g} msg/s seed={self.sim.seed} port={self.sim.port or 'any'}"
            )
        if self.source is not None:
            src = self.source
            lines.append(
                f"source: {src.kind} {', '.join(src.servers)} stream={src.stream} "
                f"subject={src.subject} durable={src.durable}"
                + (f" checkpoint={src.checkpoint}" if src.checkpoint else "")
            )
        if self.jetstream is not None:
            js = self.jetstream
            channels = ",".join(js.channels) if js.channels is not None else "all"
            lines.append(
                f"jetstream: {', '.join(js.servers)} stream={js.stream} "
                f"subjects={js.subject_prefix}.> replicas={js.replicas} channels={channels}"
            )
        lines.extend(f"strategies[{i}]: {ref.path}" for i, ref in enumerate(self.strategies))
        for i, sink in enumerate(self.sinks):
            opts = " ".join(f"{k}={v}" for k, v in sink.options.items())
            lines.append(f"sinks[{i}]: {sink.type} {opts}".rstrip())
        return "\n".join(lines)


def _expect_instance(key: str, value: object, cls: type) -> None:
    if not isinstance(value, cls):
        raise ConfigError(key, f"expected {cls.__name__}, got {_type_name(value)}")


_T = TypeVar("_T")


def _instance_tuple(key: str, value: object, cls: type[_T]) -> tuple[_T, ...]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ConfigError(key, f"expected an array of tables, got {_type_name(value)}")
    for i, item in enumerate(value):
        if not isinstance(item, cls):
            raise ConfigError(f"{key}[{i}]", f"expected {cls.__name__}, got {_type_name(item)}")
    return tuple(value)


# --------------------------------------------------------------------------------------------
# TOML loading


class _LineIndex:
    """Maps dotted keys (``feeds[1].symbols``) to the line they are written on.

    A line scanner, not a TOML parser: it follows table headers, arrays of tables and
    ``key = value`` lines, which is where configuration errors live. Keys it cannot place
    (inside inline tables) resolve to their nearest known parent.
    """

    _HEADER = re.compile(r"^\s*(\[\[?)\s*([^\[\]]+?)\s*\]\]?\s*(#.*)?$")
    _PART = r"(?:[A-Za-z0-9_\-]+|\"[^\"]*\"|'[^']*')"
    _KEY = re.compile(rf"^\s*({_PART}(?:\s*\.\s*{_PART})*)\s*=")

    def __init__(self, text: str) -> None:
        self._lines: dict[str, int] = {}
        array_counts: dict[str, int] = {}
        prefix = ""
        in_multiline = False
        for number, line in enumerate(text.splitlines(), start=1):
            if line.count('"""') % 2 == 1 or line.count("'''") % 2 == 1:
                in_multiline = not in_multiline
                if not in_multiline:
                    continue
            elif in_multiline:
                continue
            header = self._HEADER.match(line)
            if header:
                parts = _split_dotted(header.group(2))
                path = ""
                for j, part in enumerate(parts):
                    path = f"{path}.{part}" if path else part
                    last = j == len(parts) - 1
                    if header.group(1) == "[[" and last:
                        array_counts[path] = array_counts.get(path, -1) + 1
                        path = f"{path}[{array_counts[path]}]"
                    elif path in array_counts:
                        path = f"{path}[{array_counts[path]}]"
                prefix = path
                self._lines.setdefault(prefix, number)
                continue
            key = self._KEY.match(line)
            if key:
                dotted = ".".join(_split_dotted(key.group(1)))
                self._lines.setdefault(f"{prefix}.{dotted}" if prefix else dotted, number)

    def find(self, key: str) -> int | None:
        """Line of `key`, else of its closest enclosing key, else None."""
        while key:
            if key in self._lines:
                return self._lines[key]
            stripped = re.sub(r"(\[\d+\]|\.[^.\[\]]+|^[^.\[\]]+)$", "", key)
            if stripped == key:
                return None
            key = stripped
        return None


def _split_dotted(text: str) -> list[str]:
    parts = re.findall(r"\"[^\"]*\"|'[^']*'|[^.\s]+", text)
    return [p[1:-1] if p[:1] in "\"'" else p for p in parts]


_C = TypeVar("_C")


def _make(cls: type[_C], raw: object, key: str, lines: _LineIndex, **nested: object) -> _C:
    """Build dataclass `cls` from the TOML table `raw` found at dotted `key`."""
    if not isinstance(raw, dict):
        raise ConfigError(key, f"expected a table, got {_type_name(raw)} {raw!r}", lines.find(key))
    known = [f.name for f in fields(cls)]  # type: ignore[arg-type]
    for name in raw:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f" (valid: {', '.join(known)})"
            raise ConfigError(f"{key}.{name}", f"unknown key{hint}", lines.find(f"{key}.{name}"))
    for f in fields(cls):  # type: ignore[arg-type]
        missing = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if missing and f.name not in raw:
            raise ConfigError(f"{key}.{f.name}", "missing required key", lines.find(key))
    kwargs = {**raw, **nested}
    try:
        return cls(**kwargs)
    except ConfigError as exc:
        full = exc.with_prefix(key)
        raise ConfigError(full.key, full.message, lines.find(full.key)) from None


def _make_sink(raw: object, key: str, lines: _LineIndex) -> SinkRef:
    """A ``[[sinks]]`` table: ``type`` plus the sink's options beside it."""
    if not isinstance(raw, dict):
        raise ConfigError(key, f"expected a table, got {_type_name(raw)} {raw!r}", lines.find(key))
    if "type" not in raw:
        raise ConfigError(f"{key}.type", "missing required key", lines.find(key))
    options = {k: v for k, v in raw.items() if k != "type"}
    try:
        return SinkRef(raw["type"], options)
    except ConfigError as exc:
        full = exc.with_prefix(key)
        raise ConfigError(full.key, full.message, lines.find(full.key)) from None


def _array_of_tables(raw: object, key: str, lines: _LineIndex) -> list[object]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ConfigError(
            key, f"expected an array of tables ([[{key}]]), got {_type_name(raw)}", lines.find(key)
        )
    return raw


def _build(data: dict[str, Any], lines: _LineIndex) -> Config:
    top = [f.name for f in fields(Config)]
    for name in data:
        if name not in top:
            close = difflib.get_close_matches(name, top, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f" (valid: {', '.join(top)})"
            raise ConfigError(name, f"unknown key{hint}", lines.find(name))
    feeds = tuple(
        _make(FeedConfig, raw, f"feeds[{i}]", lines)
        for i, raw in enumerate(_array_of_tables(data.get("feeds"), "feeds", lines))
    )
    strategies = tuple(
        _make(StrategyRef, raw, f"strategies[{i}]", lines)
        for i, raw in enumerate(_array_of_tables(data.get("strategies"), "strategies", lines))
    )
    runtime = _make(RuntimeConfig, data.get("runtime", {}), "runtime", lines)
    metrics = _make(MetricsConfig, data.get("metrics", {}), "metrics", lines)
    record = _make(RecordConfig, data["record"], "record", lines) if "record" in data else None
    sim = _make(SimConfig, data["sim"], "sim", lines) if "sim" in data else None
    sinks = tuple(
        _make_sink(raw, f"sinks[{i}]", lines)
        for i, raw in enumerate(_array_of_tables(data.get("sinks"), "sinks", lines))
    )
    jetstream = (
        _make(JetStreamConfig, data["jetstream"], "jetstream", lines)
        if "jetstream" in data
        else None
    )
    source = _make(SourceConfig, data["source"], "source", lines) if "source" in data else None
    try:
        return Config(runtime, feeds, metrics, record, sim, strategies, sinks, jetstream, source)
    except ConfigError as exc:
        raise ConfigError(exc.key, exc.message, lines.find(exc.key)) from None


def parse_config(text: str, source: str = "<string>") -> Config:
    """Parse and validate a TOML configuration.

    Args:
        text: The TOML document.
        source: Where it came from, used in syntax-error messages.

    Returns:
        The validated configuration.

    Raises:
        ConfigError: Naming the offending key and line.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        msg = str(exc)
        found = re.search(r"\(at line (\d+), column \d+\)", msg)
        line = int(found.group(1)) if found else None
        msg = re.sub(r"\s*\(at line \d+, column \d+\)", "", msg)
        if line is None and "end of document" in msg:
            # an unclosed array, table or string: report the last line that has content
            lines = [n for n, t in enumerate(text.splitlines(), start=1) if t.strip()]
            line = lines[-1] if lines else 1
            msg = msg.replace("(at end of document)", "(reached the end of the file)")
        raise ConfigError(source, f"invalid TOML: {msg}", line) from None
    return _build(data, _LineIndex(text))


def load_config(path: str | os.PathLike[str]) -> Config:
    """Read and validate a TOML configuration file.

    Args:
        path: The file.

    Raises:
        ConfigError: Naming the offending key and line (or the file when unreadable).
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), f"cannot read configuration: {exc}") from None
    return parse_config(text, str(path))


async def load_config_async(path: str | os.PathLike[str]) -> Config:
    """`load_config` for asyncio code: the file is read and validated on a worker thread, so
    a slow disk never stalls the event loop.

    Args:
        path: The file.

    Raises:
        ConfigError: Naming the offending key and line (or the file when unreadable).
    """
    return await asyncio.to_thread(load_config, path)


# --------------------------------------------------------------------------------------------
# TOML writing (round trip)


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # JSON string escapes are valid TOML basic strings
    if isinstance(value, Mapping):
        items = ", ".join(f"{json.dumps(str(k))} = {_toml_value(v)}" for k, v in value.items())
        return f"{{ {items} }}" if items else "{}"
    if isinstance(value, Sequence):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def _toml_table(obj: object) -> list[str]:
    return [
        f"{f.name} = {_toml_value(getattr(obj, f.name))}"
        for f in fields(obj)  # type: ignore[arg-type]
        if getattr(obj, f.name) is not None
    ]


def dump_config(config: Config) -> str:
    """Render `config` as TOML that `parse_config` reads back to an equal `Config`."""
    out = ["[runtime]", *_toml_table(config.runtime), "", "[metrics]"]
    out += [*_toml_table(config.metrics), ""]
    if config.record is not None:
        out += ["[record]", *_toml_table(config.record), ""]
    if config.sim is not None:
        out += ["[sim]", *_toml_table(config.sim), ""]
    if config.jetstream is not None:
        out += ["[jetstream]", *_toml_table(config.jetstream), ""]
    if config.source is not None:
        out += ["[source]", *_toml_table(config.source), ""]
    for feed in config.feeds:
        out += ["[[feeds]]", *_toml_table(feed), ""]
    for ref in config.strategies:
        out += ["[[strategies]]", *_toml_table(ref), ""]
    for sink in config.sinks:
        items = [f"type = {_toml_value(sink.type)}"]
        items += [f"{k} = {_toml_value(v)}" for k, v in sink.options.items()]
        out += ["[[sinks]]", *items, ""]
    return "\n".join(out)
