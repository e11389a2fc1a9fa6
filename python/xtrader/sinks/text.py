"""Text sinks: JSON lines through orjson, and CSV; one file per channel, rotated by size.

Files: ``<dir>/<channel>/<channel>-<first_ts_ns>.jsonl`` (or ``.csv``). The file being written
is named ``*.jsonl.open`` (``*.csv.open``) and renamed when rotated or at close, so a finished
name always denotes a whole file; a killed process leaves the ``.open`` file with every
delivered batch (each delivery is written and flushed as a whole).
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any, ClassVar

import orjson
import polars as pl

from .base import Sink
from .parquet import conform, time_column

__all__ = ["CsvSink", "JsonLinesSink"]


class _TextSink(Sink):
    suffix: ClassVar[str] = ""
    options: ClassVar[Mapping[str, Any]] = {
        "dir": "./xtrader-data",
        "channels": (),
        "flush_interval_s": 1.0,
        "max_batch_rows": 262_144,
        "max_file_bytes": 256 * 1024 * 1024,
    }

    def __init__(
        self,
        dir: str | os.PathLike[str] = "./xtrader-data",
        channels: tuple[str, ...] | list[str] = (),
        flush_interval_s: float = 1.0,
        max_batch_rows: int = 262_144,
        max_file_bytes: int = 256 * 1024 * 1024,
    ) -> None:
        self.dir = Path(dir)
        self.channels = frozenset(channels)
        self.flush_interval_s = float(flush_interval_s)
        self.max_batch_rows = max(1, int(max_batch_rows))
        self.max_file_bytes = max(1, int(max_file_bytes))
        self._files: dict[str, tuple[Path, IO[bytes]]] = {}
        self.rows = 0

    def open(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)

    def write(self, frames: Mapping[str, pl.DataFrame]) -> None:
        for channel, frame in frames.items():
            if frame.height == 0 or (self.channels and channel not in self.channels):
                continue
            frame = conform(channel, frame)
            entry = self._files.get(channel)
            if entry is None:
                folder = self.dir / channel
                folder.mkdir(parents=True, exist_ok=True)
                first = int(frame[time_column(frame)][0])
                path = folder / f"{channel}-{first}.{self.suffix}.open"
                handle: IO[bytes] = path.open("ab")
                entry = (path, handle)
                self._files[channel] = entry
                self._header(handle, frame)
            path, handle = entry
            handle.write(self._encode(frame))
            handle.flush()
            self.rows += frame.height
            if handle.tell() >= self.max_file_bytes:
                self._finish(channel)

    def _header(self, handle: IO[bytes], frame: pl.DataFrame) -> None:
        pass

    def _encode(self, frame: pl.DataFrame) -> bytes:
        raise NotImplementedError

    def _finish(self, channel: str) -> None:
        path, handle = self._files.pop(channel)
        handle.close()
        os.replace(path, path.with_suffix(""))

    def close(self) -> None:
        for channel in list(self._files):
            self._finish(channel)

    def stats(self) -> dict[str, int]:
        return {f"{self.name}_rows": self.rows}


class JsonLinesSink(_TextSink):
    """One JSON object per row (orjson), one file per channel."""

    name: ClassVar[str] = "jsonl"
    suffix: ClassVar[str] = "jsonl"

    def _encode(self, frame: pl.DataFrame) -> bytes:
        dumps = orjson.dumps
        return b"".join(dumps(row) + b"\n" for row in frame.iter_rows(named=True))


class CsvSink(_TextSink):
    """CSV with a header line, one file per channel."""

    name: ClassVar[str] = "csv"
    suffix: ClassVar[str] = "csv"

    def _header(self, handle: IO[bytes], frame: pl.DataFrame) -> None:
        handle.write((",".join(frame.columns) + "\n").encode())

    def _encode(self, frame: pl.DataFrame) -> bytes:
        buf = io.BytesIO()
        frame.write_csv(buf, include_header=False)
        return buf.getvalue()
