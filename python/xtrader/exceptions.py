"""The xtrader exception hierarchy.

`XtraderError` is the root of every exception xtrader raises; the core's own classes
(`EngineError`, `ReplayError`, `SimulatorError`) come from the Rust boundary's single
error-to-exception map and are re-exported here. A malformed frame, a sequence gap or a failed
snapshot request is not an exception: the core counts it, resyncs the affected book and emits a
`Status` event instead.
"""

from __future__ import annotations

from ._core import EngineError, ReplayError, SimulatorError, XtraderError

__all__ = [
    "ConfigError",
    "EngineError",
    "ReplayError",
    "SimulatorError",
    "StrategyError",
    "XtraderError",
]


class StrategyError(XtraderError):
    """A strategy callback raised and ``[runtime] on_error = "stop"`` ended the run.

    The callback's exception is the ``__cause__``.

    Attributes:
        callback: ``"Strategy.callback"`` that raised.
    """

    def __init__(self, callback: str, message: str) -> None:
        self.callback = callback
        super().__init__(message)


class ConfigError(XtraderError, ValueError):
    """A configuration value is missing, unknown, of the wrong type or out of range.

    The message always starts with the dotted key that is wrong, for example
    ``feeds[0].chanels: unknown key (line 7)``.

    Attributes:
        key: Dotted path of the offending key (``feeds[0].channels``), or the file name when the
            file itself cannot be read or parsed.
        message: What is wrong with it.
        line: 1-based line number in the configuration file, when it could be found.
    """

    def __init__(self, key: str, message: str, line: int | None = None) -> None:
        self.key = key
        self.message = message
        self.line = line
        super().__init__(key, message, line)

    def __str__(self) -> str:
        where = f" (line {self.line})" if self.line is not None else ""
        prefix = f"{self.key}: " if self.key else ""
        return f"{prefix}{self.message}{where}"

    def with_prefix(self, prefix: str, line: int | None = None) -> ConfigError:
        """Return a copy whose key is nested under `prefix` (``feeds[0]`` + ``exchange``).

        Args:
            prefix: Dotted path of the enclosing table.
            line: Line number to use when this error does not carry one yet.
        """
        key = f"{prefix}.{self.key}" if prefix and self.key else (prefix or self.key)
        return ConfigError(key, self.message, self.line if self.line is not None else line)
