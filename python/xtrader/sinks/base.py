"""The sink plugin interface: columnar batches in, lifecycle ``open``/``write``/``flush``/``close``.

A sink never sees per-event Python objects: the runtime hands it one polars frame per channel
(built from the Arrow record batches of the Rust core) whenever its flush interval elapses,
its batch-size limit is reached, and at shutdown. Between deliveries the runtime keeps the
frames (`SinkHost`), so a sink only implements what it does with whole batches.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

import polars as pl

from ..exceptions import ConfigError

__all__ = ["Sink", "check_options"]


class Sink:
    """Base class of sinks (subclass it; register third-party ones under ``xtrader.sinks``).

    Class attributes:
        name: The ``type`` a TOML ``[[sinks]]`` table uses.
        options: Accepted options and their defaults (``from_options`` validates against it).

    Attributes:
        flush_interval_s: The runtime delivers buffered frames at least this often.
        max_batch_rows: ...and as soon as this many rows are buffered.

    Example:
        >>> class Counter(Sink):
        ...     name = "counter"
        ...     def write(self, frames):
        ...         self.rows = sum(f.height for f in frames.values())
    """

    name: ClassVar[str] = "sink"
    options: ClassVar[Mapping[str, Any]] = {}

    flush_interval_s: float = 1.0
    max_batch_rows: int = 262_144

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> Sink:
        """Build the sink from a ``[[sinks]]`` table's options.

        Raises:
            ConfigError: Naming an unknown key or a bad value.
        """
        check_options(cls.name, options, cls.options)
        return cls(**options)

    def open(self) -> None:
        """Acquire resources (called once, before the first `write`)."""

    def write(self, frames: Mapping[str, pl.DataFrame]) -> None:
        """Take one batch: a frame per channel (``trades``, ``book``, ``bbo``, ``gaps``...)."""
        raise NotImplementedError

    def flush(self) -> None:
        """Make what was written durable (called after each delivery)."""

    def close(self) -> None:
        """Flush and release resources; called once at shutdown, after the last `write`."""

    def tick(self, now: float) -> None:
        """Called about every 100 ms with `time.monotonic()` (idle pruning, rotation by age)."""

    def stats(self) -> dict[str, int]:
        """Counters merged into `Runtime.stats()`."""
        return {}


def check_options(sink: str, options: Mapping[str, Any], known: Mapping[str, Any]) -> None:
    """Reject unknown option names and values of the wrong type (by the default's type).

    Raises:
        ConfigError: Naming the key.
    """
    for key, value in options.items():
        if key not in known:
            valid = ", ".join(sorted(known)) or "none"
            raise ConfigError(key, f"unknown option of sink {sink!r} (valid: {valid})")
        default = known[key]
        if default is None:
            continue
        if isinstance(default, bool):
            ok = isinstance(value, bool)
        elif isinstance(default, int):
            ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
        elif isinstance(default, float):
            ok = (
                isinstance(value, int | float)
                and not isinstance(value, bool)
                and math.isfinite(value)
                and value > 0
            )
        elif isinstance(default, str):
            ok = isinstance(value, str) and value != ""
        elif isinstance(default, tuple | list):
            ok = isinstance(value, list | tuple) and all(isinstance(v, str) for v in value)
        else:
            ok = True
        if not ok:
            raise ConfigError(
                key, f"bad value {value!r} for sink {sink!r} (expected like {default!r})"
            )
