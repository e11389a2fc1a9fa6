"""``[[sinks]]`` tables: built-in types by name, options validated, TOML round trip."""

from __future__ import annotations

import pytest

import xtrader as xt
from xtrader.config import dump_config, parse_config
from xtrader.sinks import CsvSink, JsonLinesSink, ParquetSink

BASE = """
[[feeds]]
exchange = "binance"
symbols = ["BTCUSDT"]
"""


def test_builtin_sinks_by_name_and_round_trip() -> None:
    cfg = parse_config(
        BASE
        + '[[sinks]]\ntype = "parquet"\ndir = "d"\nmax_file_rows = 10\nchannels = ["book"]\n'
        + '[[sinks]]\ntype = "jsonl"\n[[sinks]]\ntype = "csv"\nflush_interval_s = 0.5\n'
    )
    sinks = [ref.load() for ref in cfg.sinks]
    assert [type(s) for s in sinks] == [ParquetSink, JsonLinesSink, CsvSink]
    first = sinks[0]
    assert isinstance(first, ParquetSink)
    assert first.max_file_rows == 10 and first.channels == frozenset({"book"})
    assert parse_config(dump_config(cfg)) == cfg
    assert "sinks[2]: csv flush_interval_s=0.5" in cfg.summary()


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ('type = "parquet"\ncompression = "zstd"\n', "sinks[0].compression"),
        ('type = "parquet"\nflush_interval_s = -1\n', "sinks[0].flush_interval_s"),
        ('type = "csv"\ndir = 3\n', "sinks[0].dir"),
        ('dir = "x"\n', "sinks[0].type"),
        ('type = "kafka"\n', "sinks[0].type"),
    ],
)
def test_bad_sink_tables_name_the_key(table: str, key: str) -> None:
    with pytest.raises(xt.ConfigError) as err:
        parse_config(BASE + "[[sinks]]\n" + table)
    assert err.value.key == key
