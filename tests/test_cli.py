"""The command line, run as a user would: ``python -m xtrader`` in a subprocess."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import polars as pl
import pytest
from prometheus_client.parser import text_string_to_metric_families

import xtrader
from conftest import captures_dir

METRICS_URL = "http://127.0.0.1:9898/metrics"
TRADES_COLUMNS = [
    "exchange", "symbol", "native_symbol", "ts_exchange", "ts_recv", "price", "size", "side",
    "trade_id",
]  # fmt: skip
BBO_COLUMNS = [
    "exchange", "symbol", "ts_exchange", "ts_recv", "bid_price", "bid_size", "ask_price",
    "ask_size",
]  # fmt: skip


def _env() -> dict[str, str]:
    env = dict(os.environ)
    package_root = str(Path(xtrader.__file__).parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _xtrader(*args: str, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "xtrader", *args],
        cwd=cwd,
        env=_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _port_busy(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


RECORDED = [(x, c) for x in ("binance", "okx") for c in ("trades", "bbo")]
"""(exchange, channel) pairs the default run records, each checked for Parquet files."""


def _missing_events(text: str) -> list[tuple[str, str]]:
    """The `RECORDED` pairs with no event yet in ``xtrader_events_total``."""
    seen = set()
    for family in text_string_to_metric_families(text):
        if family.name == "xtrader_events":
            for sample in family.samples:
                if sample.value > 0:
                    seen.add((sample.labels.get("exchange"), sample.labels.get("channel")))
    return [pair for pair in RECORDED if pair not in seen]


def test_cli_default_run_sigint_exit_0(tmp_path: Path) -> None:
    if _port_busy(9898):
        pytest.fail("127.0.0.1:9898 is already in use; the default run needs it")
    out, err = (tmp_path / "stdout.txt").open("w"), (tmp_path / "stderr.txt").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "xtrader"],
        cwd=tmp_path,
        env=_env(),
        stdin=subprocess.DEVNULL,
        stdout=out,
        stderr=err,
    )
    try:
        deadline = time.monotonic() + 60
        missing, text = RECORDED, ""
        # until both venues delivered trades and quotes (the OKX feed first fetches its
        # instruments), bounded
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(METRICS_URL, timeout=2) as resp:
                    text = resp.read().decode()
                missing = _missing_events(text)
                if not missing:
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.25)
        assert proc.poll() is None, f"exited early: {(tmp_path / 'stderr.txt').read_text()}"
        assert not missing, f"no events yet for {missing} in /metrics:\n{text[:2000]}"
        time.sleep(1.0)  # let more trades and quotes through
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        out.close()
        err.close()
    stderr = (tmp_path / "stderr.txt").read_text()
    assert code == 0, stderr
    data = tmp_path / "xtrader-data"
    columns_of = {"trades": TRADES_COLUMNS, "bbo": BBO_COLUMNS}
    for exchange, channel in RECORDED:  # the default serves and records both venues
        files = sorted((data / channel).glob(f"exchange={exchange}/date=*/*.parquet"))
        assert files, f"no {exchange} {channel} Parquet files under {data}: {stderr}"
        frame = pl.concat([pl.read_parquet(f) for f in files])
        assert frame.columns == columns_of[channel]
        assert frame.height > 0
        assert frame["symbol"].n_unique() >= 1
    assert not list(data.glob("**/*.tmp")), "only whole files are visible"


BAD_CONFIG = """\
[sim]
symbols = ["BTCUSDT"]

[[feeds]]
exchange = "binance"
symbols = ["BTCUSDT"]
chanels = ["trades"]
"""


def test_cli_check_bad_config_names_key(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(BAD_CONFIG)
    res = _xtrader("check", str(path), cwd=tmp_path)
    assert res.returncode == 2, res.stderr
    assert "feeds[0].chanels" in res.stderr
    assert "line 7" in res.stderr


def test_cli_check_default_config_ok(tmp_path: Path) -> None:
    path = tmp_path / "good.toml"
    path.write_text((Path(xtrader.__file__).parent / "default.toml").read_text())
    res = _xtrader("check", str(path), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("OK")
    assert "BTCUSDT" in res.stdout


def test_cli_replay_capture(tmp_path: Path) -> None:
    captures = captures_dir()
    res = _xtrader("replay", str(captures / "BINANCE.ws.1.0"), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    for symbol in ("NKN-USDT", "BLZ-ETH", "LRC-BTC", "RUNE-EUR"):
        assert symbol in res.stdout
    assert "gaps=0" in res.stdout


def test_cli_main_in_process_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import xtrader.config
    from xtrader.cli import main

    # every venue id runs today: a venue the core does not run yet is simulated
    monkeypatch.setattr(xtrader.config, "SUPPORTED_EXCHANGES", ("binance", "binance_us"))
    path = tmp_path / "bad.toml"
    path.write_text(BAD_CONFIG.replace('"binance"', '"okx"').replace("chanels", "channels"))
    assert main(["check", str(path)]) == 2
    err = capsys.readouterr().err
    assert "feeds[0].exchange" in err and "not supported yet" in err
