"""Sinks: where events go on disk (Parquet, JSON lines, CSV, third-party plugins).

Built-in types: ``parquet`` (`ParquetSink`), ``jsonl`` (`JsonLinesSink`), ``csv``
(`CsvSink`). A third-party package registers more under the entry-point group
``xtrader.sinks`` (``name = "package.module:SinkClass"``); a TOML ``[[sinks]]`` table names
one by ``type`` and gives its options beside it::

    [[sinks]]
    type = "parquet"
    dir = "./data"
    flush_interval_s = 1.0
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib.metadata import entry_points
from typing import Any

from ..exceptions import ConfigError
from .base import Sink, check_options
from .gaps import GAPS_SCHEMA, GapTracker, exclude_gaps, read_gaps
from .host import SinkHost, SinkStatus
from .parquet import ParquetSink, recover
from .replay import replay_to_sink
from .text import CsvSink, JsonLinesSink

__all__ = [
    "ENTRY_POINT_GROUP",
    "GAPS_SCHEMA",
    "CsvSink",
    "GapTracker",
    "JsonLinesSink",
    "ParquetSink",
    "Sink",
    "SinkHost",
    "SinkStatus",
    "build_sink",
    "check_options",
    "exclude_gaps",
    "read_gaps",
    "recover",
    "replay_to_sink",
    "sink_types",
]

ENTRY_POINT_GROUP = "xtrader.sinks"

BUILTIN: dict[str, type[Sink]] = {
    "parquet": ParquetSink,
    "jsonl": JsonLinesSink,
    "csv": CsvSink,
}


def sink_types() -> dict[str, Any]:
    """Sink types by name: the built-ins, then entry points of group ``xtrader.sinks``."""
    found: dict[str, Any] = dict(BUILTIN)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name, ep)
    return found


def build_sink(type_name: str, options: Mapping[str, Any]) -> Sink:
    """Instantiate the sink registered as `type_name` with validated `options`.

    Raises:
        ConfigError: Naming ``type`` for an unknown or broken plugin, or the bad option key.
    """
    types = sink_types()
    found = types.get(type_name)
    if found is None:
        raise ConfigError(
            "type", f"unknown sink type {type_name!r} (known: {', '.join(sorted(types))})"
        )
    if not isinstance(found, type):
        try:
            found = found.load()
        except Exception as exc:
            raise ConfigError("type", f"cannot load sink plugin {type_name!r}: {exc}") from exc
    if not isinstance(found, type) or not issubclass(found, Sink):
        raise ConfigError("type", f"plugin {type_name!r} is not an xtrader.sinks.Sink subclass")
    try:
        return found.from_options(options)
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError("type", f"sink {type_name!r} rejected its options: {exc}") from exc
