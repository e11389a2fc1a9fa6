"""``record --raw`` from the command line, and a recording run killed with SIGKILL."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import xtrader as xt
from xtrader.sinks import ParquetSink

CONFIG = """
[sim]
symbols = ["BTCUSDT", "ETHUSDT"]
rate = 5000.0
[metrics]
listen = ""
[[feeds]]
exchange = "binance"
symbols = ["BTCUSDT", "ETHUSDT"]
channels = ["trades", "book", "bbo"]
ws_url = "sim"
rest_url = "sim"
[record]
dir = {data}
channels = ["trades", "book", "bbo"]
flush_interval_s = 0.2
"""


def _config(tmp_path: Path) -> tuple[Path, Path]:
    data = tmp_path / "data"
    config = tmp_path / "rec.toml"
    config.write_text(CONFIG.format(data=json.dumps(str(data))))
    return config, data


def test_record_raw_then_replay(tmp_path: Path) -> None:
    config, data = _config(tmp_path)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "xtrader",
            "record",
            str(config),
            "--raw",
            "--duration",
            "2",
            "--no-display",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stderr
    files = sorted((data / "raw").glob("*.xtraw.lz4"))
    assert files, proc.stderr
    res = xt.replay(files[0])
    recorded = xt.read(data, channel="trades").collect()
    assert res.trades.height == recorded.height > 0
    assert res.trades.sort("symbol", "trade_id").equals(
        recorded.select(res.trades.columns).sort("symbol", "trade_id")
    )


def test_recording_killed_is_recovered(tmp_path: Path) -> None:
    config, data = _config(tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "xtrader", "run", str(config), "--no-display"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        # killed once every recorded channel has a segment on disk (bounded)
        while not all(
            list(data.glob(f"{channel}/**/.inprogress/*/seg-*.arrow"))
            for channel in ("trades", "book", "bbo")
        ):
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert not list(data.glob("*/exchange=*/date=*/*.parquet")), "nothing finalized yet"
    sink = ParquetSink(data)
    sink.open()  # recovery finalizes what the killed run had delivered
    sink.close()
    assert sink.stats()["parquet_recovered_files"] >= 3
    for channel in ("trades", "book", "bbo"):
        assert xt.read(data, channel=channel).collect().height > 0
    assert not list(data.glob("**/.inprogress")) and not list(data.glob("**/*.tmp"))
