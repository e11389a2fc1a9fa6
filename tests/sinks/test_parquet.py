"""Parquet sink: layout, rotation, pruning, atomic finalization, recovery after SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import polars as pl

import xtrader as xt
from xtrader.sinks import ParquetSink

from .helpers import DAY_NS, T0, trades


def finished(root: Path) -> list[Path]:
    return sorted(root.glob("*/exchange=*/date=*/*.parquet"))


def test_layout_is_readable_by_xt_read(tmp_path: Path) -> None:
    sink = ParquetSink(tmp_path)
    sink.open()
    sink.write({"trades": pl.concat([trades(5), trades(3, "ETH-USDT")])})
    sink.close()
    files = finished(tmp_path)
    assert [f.parent.relative_to(tmp_path).as_posix() for f in files] == [
        "trades/exchange=binance/date=2025-10-09"
    ] * 2
    assert {f.name.split("-")[0] for f in files} == {"BTC", "ETH"}
    got = xt.read(tmp_path, channel="trades").collect()
    assert got.height == 8
    assert pl.read_parquet(files[0]).schema == pl.Schema(trades(1).schema)


def test_one_file_per_stream_and_day(tmp_path: Path) -> None:
    sink = ParquetSink(tmp_path)
    sink.open()
    sink.write({"trades": trades(4, start=T0)})
    sink.write({"trades": trades(4, start=T0 + DAY_NS)})  # next UTC day: the old file closes
    assert len(finished(tmp_path)) == 1
    sink.close()
    dates = sorted(f.parent.name for f in finished(tmp_path))
    assert dates == ["date=2025-10-09", "date=2025-10-10"]


def test_rotation_by_rows_and_bytes(tmp_path: Path) -> None:
    sink = ParquetSink(tmp_path, max_file_rows=10)
    sink.open()
    for i in range(5):
        sink.write({"trades": trades(4, start=T0 + i * 10_000)})
    # 4, 8, 12 -> rotate; 4, 8 open
    assert len(finished(tmp_path)) == 1
    sink.close()
    assert [pl.read_parquet(f).height for f in finished(tmp_path)] == [12, 8]
    assert sink.stats()["parquet_rotations"] == 1
    small = ParquetSink(tmp_path / "b", max_file_bytes=1)
    small.open()
    small.write({"trades": trades(3)})
    assert len(finished(tmp_path / "b")) == 1 and small.open_writers == 0


def test_rotation_by_time_and_idle_pruning(tmp_path: Path) -> None:
    sink = ParquetSink(tmp_path, rotate_interval_s=10.0, idle_timeout_s=5.0)
    sink.open()
    sink.write({"trades": trades(2)})
    opened = sink._writers[next(iter(sink._writers))].opened
    sink.tick(opened + 4.0)
    assert sink.open_writers == 1 and not finished(tmp_path)
    sink.tick(opened + 5.0)  # idle for 5 s: pruned, its file finalized
    assert sink.open_writers == 0 and len(finished(tmp_path)) == 1
    assert sink.stats()["parquet_pruned_writers"] == 1
    sink.write({"trades": trades(2, start=T0 + 10**9)})
    w = sink._writers[next(iter(sink._writers))]
    w.touched = w.opened + 100.0
    sink.tick(w.opened + 10.0)  # busy but 10 s old: rotated
    assert sink.stats()["parquet_rotations"] == 1 and len(finished(tmp_path)) == 2


def test_file_visible_only_when_whole(tmp_path: Path) -> None:
    sink = ParquetSink(tmp_path)
    sink.open()
    sink.write({"trades": trades(5)})
    # written, not finalized: only staging segments, invisible to readers
    assert finished(tmp_path) == []
    assert list(tmp_path.glob("**/.inprogress/*/seg-*.arrow"))
    sink.close()
    assert len(finished(tmp_path)) == 1
    assert not list(tmp_path.glob("**/.inprogress"))
    assert not list(tmp_path.glob("**/*.tmp"))


KILLED = textwrap.dedent(
    """
    import os, signal, sys
    sys.path.insert(0, sys.argv[2])
    from sinks.helpers import trades, T0
    from xtrader.sinks import ParquetSink
    sink = ParquetSink(sys.argv[1], max_file_rows=25)
    sink.open()
    for i in range(10):
        sink.write({"trades": trades(10, start=T0 + i * 100_000)})
    # a half-written segment and a half-written file, as a kill mid-write leaves them
    folder = next(iter(sink._writers.values())).staging
    (folder / ".seg-99999999.tmp").write_bytes(b"partial")
    (folder.parent.parent / ".BTC-USDT-1-1.parquet.tmp").write_bytes(b"partial")
    print("written", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
    """
)


def test_recovery_after_sigkill(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run(
        [sys.executable, "-c", KILLED, str(tmp_path), str(root / "tests")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert proc.stdout.strip() == "written"
    # rotated files survive as they are; the open file's segments wait in staging
    assert sum(pl.read_parquet(f).height for f in finished(tmp_path)) == 90
    sink = ParquetSink(tmp_path)
    sink.open()  # recovery
    assert sink.stats()["parquet_recovered_files"] == 1
    sink.close()
    got = xt.read(tmp_path, channel="trades").collect()
    assert got.height == 100
    assert got["trade_id"].sort().to_list() == sorted(list(range(10)) * 10)
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]
    assert not list(tmp_path.glob("**/.inprogress"))
    os.sync()
