"""JSON-lines (orjson) and CSV sinks."""

from __future__ import annotations

from pathlib import Path

import orjson
import polars as pl

from xtrader.sinks import CsvSink, JsonLinesSink

from .helpers import trades


def test_jsonl_and_csv_round_trip(tmp_path: Path) -> None:
    data = trades(7)
    for cls in (JsonLinesSink, CsvSink):
        sink = cls(tmp_path / cls.name, max_file_bytes=600)
        sink.open()
        sink.write({"trades": data.head(4)})
        sink.write({"trades": data.tail(3)})
        assert list((tmp_path / cls.name / "trades").glob("*.open")) or True
        sink.close()
        files = sorted((tmp_path / cls.name / "trades").iterdir())
        assert files and not [f for f in files if f.name.endswith(".open")]
        if cls is JsonLinesSink:
            rows = [orjson.loads(line) for f in files for line in f.read_bytes().splitlines()]
            got = pl.DataFrame(rows, schema=data.schema)
        else:
            got = pl.concat([pl.read_csv(f, schema=data.schema) for f in files])
        assert got.sort("trade_id").equals(data)
