"""The example strategies run against the simulator and produce their expected output."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import xtrader as xt
from xtrader.config import SUPPORTED_EXCHANGES, load_config

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture(autouse=True)
def examples_importable() -> Iterator[None]:
    sys.path.insert(0, str(EXAMPLES))
    try:
        yield
    finally:
        sys.path.remove(str(EXAMPLES))


def _run(config: Path | xt.Config, duration: float) -> xt.Runtime:
    rt = xt.Runtime.from_config(config)
    rt.run(duration=duration)
    return rt


def test_spread_monitor(capsys: pytest.CaptureFixture[str]) -> None:
    from spread_monitor import SpreadMonitor

    rt = _run(EXAMPLES / "spread_monitor.toml", 2.5)
    (strategy,) = rt.strategies
    assert isinstance(strategy, SpreadMonitor)
    assert set(strategy.stats) == {"binance:BTC-USDT", "binance:ETH-USDT"}
    for s in strategy.stats.values():
        assert s.quotes > 10 and 0 <= s.min_bps <= s.mean_bps <= s.max_bps < 100
    assert sum(s.quotes for s in strategy.stats.values()) == rt.stats()["dispatched_bbo"]
    out = capsys.readouterr().out
    assert strategy.reports >= 1 and out.count("spread binance:") == strategy.reports
    assert "summary binance:BTC-USDT:" in out and "summary binance:ETH-USDT:" in out


def test_flow_imbalance(capsys: pytest.CaptureFixture[str]) -> None:
    from flow_imbalance import FlowImbalance

    rt = _run(EXAMPLES / "flow_imbalance.toml", 3.0)
    (strategy,) = rt.strategies
    assert isinstance(strategy, FlowImbalance)
    stats = rt.stats()
    assert strategy.rows > 100 and strategy.rows == stats["dispatched_rows"]
    assert set(strategy.imbalance) == {"BTC-USDT", "ETH-USDT", "SOL-USDT"}
    assert all(-1 <= v <= 1 for v in strategy.imbalance.values())
    assert strategy.signals, "the synthetic market should cross a 0.3 imbalance"
    assert all(abs(s.imbalance) >= 0.3 for s in strategy.signals)
    out = capsys.readouterr().out
    assert out.count("signal ") == len(strategy.signals)
    assert f"flow: {strategy.rows} trades, {len(strategy.signals)} signals" in out


def test_basis_config_okx_or_clear_rejection() -> None:
    if "okx" in SUPPORTED_EXCHANGES:
        cfg = load_config(EXAMPLES / "basis.toml")
        assert [f.exchange for f in cfg.feeds] == ["binance", "okx"]
    else:
        with pytest.raises(xt.ConfigError, match=r"feeds\[1\]\.exchange: .*not supported yet"):
            load_config(EXAMPLES / "basis.toml")


BASIS_SIM = """
[sim]
symbols = ["BTCUSDT"]
rate = 1500.0
seed = 5

[[feeds]]
exchange = "binance"
symbols = ["BTC-USDT"]
channels = ["bbo"]
ws_url = "sim"
rest_url = "sim"

[[feeds]]
exchange = "binance_us"
symbols = ["BTC-USDT"]
channels = ["bbo"]
ws_url = "sim"
rest_url = "sim"

[metrics]
listen = ""

[[strategies]]
path = "basis:Basis"
params = { symbol = "BTC-USDT", venues = ["binance", "binance_us"], report_every = 0.5 }
"""


def test_basis_with_two_simulated_venues(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two simulator feeds stand in for Binance and OKX (same prices: basis near zero)."""
    from basis import Basis

    path = tmp_path / "basis_sim.toml"
    path.write_text(BASIS_SIM)
    rt = _run(path, 2.5)
    (strategy,) = rt.strategies
    assert isinstance(strategy, Basis)
    assert set(strategy.mids) == {"binance", "binance_us"}
    assert len(strategy.samples) > 10
    assert all(abs(b) < 50 for b in strategy.samples)  # one market seen twice
    out = capsys.readouterr().out
    assert "basis BTC-USDT binance_us-binance: " in out
    assert f"basis summary BTC-USDT: {len(strategy.samples)} samples" in out
