"""Sharding subscriptions across collector processes (``run CONFIG --shard k/N``).

Every collector reads the same configuration and keeps the symbols whose shard is its own, so
N collectors cover every subscription exactly once. The shard of a symbol comes from
rendezvous (highest-random-weight) hashing: each of the N shards scores the key
``"<exchange>:<SYMBOL>:<k>"`` with BLAKE2b and the highest score wins. The result depends on
nothing but the venue, the upper-cased symbol and N: not on the order of the configuration,
the other symbols, the process or the Python version (no `hash()` randomisation). Adding a
symbol moves no other symbol; going from N to N+1 shards moves only about 1/(N+1) of them.

A native name and its normalized form (``BTCUSDT``, ``BTC-USDT``) are different keys: every
collector reads the same configuration, so each written name still lands on exactly one shard.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re

from .config import Config
from .exceptions import ConfigError

__all__ = ["parse_shard", "shard_config", "shard_of", "shard_summary", "subscriptions"]

SHARD_KEY = "--shard"
"""The option the shard errors name."""

_SHARD = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")
_MAX_SHARDS = 4096


def parse_shard(text: str) -> tuple[int, int]:
    """Parse ``"k/N"``: shard k (0-based) of N.

    Args:
        text: ``"0/4"`` … ``"3/4"``.

    Returns:
        ``(k, n)`` with ``0 <= k < n``.

    Raises:
        ConfigError: Naming ``--shard`` (a `ValueError`) when the text is not ``k/N`` with
            ``0 <= k < N`` and ``1 <= N <= 4096``.
    """
    found = _SHARD.match(text)
    if found is None:
        raise ConfigError(SHARD_KEY, f"expected k/N (shard k of N, 0-based), got {text!r}")
    k, n = int(found.group(1)), int(found.group(2))
    if not 1 <= n <= _MAX_SHARDS:
        raise ConfigError(SHARD_KEY, f"N must be between 1 and {_MAX_SHARDS}, got {text!r}")
    if not k < n:
        raise ConfigError(SHARD_KEY, f"k is 0-based and must be below N (0..{n - 1}), got {text!r}")
    return k, n


def _weight(exchange: str, symbol: str, k: int) -> int:
    key = f"{exchange}:{symbol.upper()}:{k}".encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big")


def shard_of(exchange: str, symbol: str, n: int) -> int:
    """The shard (0..n-1) that owns `symbol` of `exchange` among `n` shards.

    Args:
        exchange: Venue id.
        symbol: Symbol as written in the configuration (compared upper-case).
        n: Number of shards (at least 1).

    Raises:
        ValueError: When `n` is below 1.
    """
    if n < 1:
        raise ValueError(f"the number of shards must be at least 1, got {n}")
    # ties (a 64-bit collision) go to the lowest k: max() keeps the first maximum
    return max(range(n), key=lambda k: _weight(exchange, symbol, k))


def subscriptions(config: Config) -> dict[str, int]:
    """(feed, symbol) subscriptions of `config` per exchange, in configuration order."""
    out: dict[str, int] = {}
    for feed in config.feeds:
        out[feed.exchange] = out.get(feed.exchange, 0) + len(feed.symbols)
    return out


def shard_summary(whole: Config, shard: Config, k: int, n: int) -> str:
    """One line: ``shard 0/2: 3 of 6 subscriptions (binance 2/4, okx 1/2)``."""
    total, taken = subscriptions(whole), subscriptions(shard)
    per = ", ".join(f"{ex} {taken.get(ex, 0)}/{count}" for ex, count in total.items())
    return f"shard {k}/{n}: {sum(taken.values())} of {sum(total.values())} subscriptions ({per})"


def shard_config(config: Config, k: int, n: int) -> Config:
    """Keep only the symbols of each feed whose shard is `k` of `n`; drop feeds left empty.

    Args:
        config: The whole configuration (the same for every collector).
        k: This shard, 0-based.
        n: Number of shards.

    Returns:
        The configuration restricted to this shard (everything but the feeds unchanged).

    Raises:
        ConfigError: Naming ``--shard`` when `k`/`n` are out of range, when the configuration
            consumes a ``[source]`` (nothing to shard) or when this shard gets no symbol.
    """
    if not 0 <= k < n:
        raise ConfigError(SHARD_KEY, f"k is 0-based and must be below N, got {k}/{n}")
    if config.source is not None:
        raise ConfigError(SHARD_KEY, "a configuration with a [source] has no feeds to shard")
    feeds = []
    for feed in config.feeds:
        mine = tuple(s for s in feed.symbols if shard_of(feed.exchange, s, n) == k)
        if mine:
            feeds.append(dataclasses.replace(feed, symbols=mine))
    if not feeds:
        total = sum(subscriptions(config).values())
        raise ConfigError(
            SHARD_KEY, f"shard {k}/{n} takes none of the {total} subscriptions: use fewer shards"
        )
    return dataclasses.replace(config, feeds=tuple(feeds))
