"""Configuration: every class of mistake names its key; good configurations round-trip."""

from __future__ import annotations

from pathlib import Path

import pytest

import xtrader.config as config_module
from conftest import config_error
from xtrader import Config, ConfigError, Runtime, load_config
from xtrader.cli import default_config
from xtrader.config import (
    FeedConfig,
    MetricsConfig,
    RecordConfig,
    RuntimeConfig,
    SimConfig,
    StrategyRef,
    dump_config,
    parse_config,
)

GOOD = """\
[runtime]
queue_capacity = 4096
overflow = "drop_oldest"
worker_threads = 3

[sim]
symbols = ["BTCUSDT", "ETHUSDT"]
rate = 500
seed = 3

[[feeds]]
exchange = "binance"
symbols = ["BTCUSDT", "ETH-USDT"]
channels = ["trades", "book"]
ws_url = "sim"
rest_url = "sim"

[[feeds]]
exchange = "binance_us"
symbols = ["BTCUSD"]
ws_url = "wss://stream.binance.us:9443"
rest_url = "https://api.binance.us"
depth_limit = 500
trade_stream = "aggTrade"

[metrics]
listen = ""

[record]
dir = "data"
channels = ["trades", "bbo", "book"]
flush_interval_s = 2

[[strategies]]
path = "xtrader.demo:DemoStrategy"
params = { report = false }
"""


def test_config_good_round_trip(tmp_path: Path) -> None:
    cfg = parse_config(GOOD)
    assert cfg.runtime == RuntimeConfig(4096, "drop_oldest", 3)
    assert cfg.feeds[0] == FeedConfig(
        "binance", ("BTCUSDT", "ETH-USDT"), ("trades", "book"), "sim", "sim"
    )
    assert cfg.feeds[1].trade_stream == "aggTrade" and cfg.feeds[1].depth_limit == 500
    assert cfg.metrics == MetricsConfig("") and cfg.metrics.addr is None
    assert cfg.record == RecordConfig("data", ("trades", "bbo", "book"), 2.0)
    assert cfg.sim == SimConfig(("BTCUSDT", "ETHUSDT"), 500.0, 3, 0)
    assert cfg.strategies == (StrategyRef("xtrader.demo:DemoStrategy", {"report": False}),)
    assert parse_config(dump_config(cfg)) == cfg
    path = tmp_path / "x.toml"
    path.write_text(dump_config(cfg))
    assert load_config(path) == cfg
    strategies = cfg.load_strategies()
    assert type(strategies[0]).__name__ == "DemoStrategy"


def test_config_default_is_valid() -> None:
    cfg = default_config()
    assert cfg.sim is not None and cfg.sim.symbols == ("BTCUSDT", "ETHUSDT", "SOLUSDT")
    assert cfg.sim.rate == 2000.0
    assert cfg.feeds[0].ws_url == "sim" and cfg.feeds[0].channels == ("trades", "book", "bbo")
    assert cfg.sim.okx_symbols == ("BTC-USDT", "BTC-USDT-SWAP")
    assert cfg.feeds[1].exchange == "okx" and cfg.feeds[1].symbols[1] == "BTC-USDT-PERP"
    assert cfg.metrics.listen == "127.0.0.1:9898"
    assert cfg.record is not None and cfg.record.channels == ("trades", "bbo")
    assert cfg.record.dir == "./xtrader-data"
    assert [s.path for s in cfg.strategies] == ["xtrader.demo:DemoStrategy"]


def test_config_unknown_key() -> None:
    err = config_error(GOOD.replace('channels = ["trades", "book"]', 'chanels = ["trades"]'))
    assert err.key == "feeds[0].chanels"
    assert str(err).startswith("feeds[0].chanels: unknown key")
    assert "channels" in str(err) and err.line == 14
    assert str(err).endswith("(line 14)")
    top = config_error(GOOD + "\n[extra]\nx = 1\n")
    assert top.key == "extra" and "unknown key" in str(top)
    nested = config_error(GOOD.replace("worker_threads = 3", "workers = 3"))
    assert nested.key == "runtime.workers" and nested.line == 4


def test_config_wrong_type() -> None:
    err = config_error(GOOD.replace("rate = 500", 'rate = "fast"'))
    assert err.key == "sim.rate" and "expected a number" in str(err) and err.line == 8
    err = config_error(GOOD.replace("worker_threads = 3", "worker_threads = true"))
    assert err.key == "runtime.worker_threads" and "integer" in str(err)
    # 0 is the inline mode; below it is an error naming the key and the range
    err = config_error(GOOD.replace("worker_threads = 3", "worker_threads = -1"))
    assert err.key == "runtime.worker_threads" and "between 0 and 256" in str(err)
    err = config_error(GOOD.replace('symbols = ["BTCUSD"]', 'symbols = "BTCUSD"'))
    assert err.key == "feeds[1].symbols" and "array" in str(err)
    err = config_error("metrics = 3\n" + GOOD.replace('[metrics]\nlisten = ""\n', ""))
    assert err.key == "metrics" and "expected a table" in str(err) and err.line == 1


def test_config_unknown_exchange() -> None:
    err = config_error(GOOD.replace('"binance_us"', '"kraken"'))
    assert err.key == "feeds[1].exchange" and err.line == 19
    assert "unknown exchange 'kraken'" in str(err) and "okx" in str(err)


def test_config_exchange_not_supported_yet(monkeypatch: pytest.MonkeyPatch) -> None:
    # every venue id runs today: a venue the core does not run yet is simulated
    monkeypatch.setattr(config_module, "SUPPORTED_EXCHANGES", ("binance",))
    err = config_error(GOOD)
    assert err.key == "feeds[1].exchange"
    assert "not supported yet" in str(err)


def test_config_unknown_channel() -> None:
    err = config_error(GOOD.replace('channels = ["trades", "book"]', 'channels = ["trades", "l2"]'))
    assert err.key == "feeds[0].channels" and "unknown channel 'l2'" in str(err)
    assert err.line == 14
    err = config_error(
        GOOD.replace('channels = ["trades", "bbo", "book"]', 'channels = ["ticker"]')
    )
    assert err.key == "record.channels"


def test_config_empty_symbols() -> None:
    err = config_error(GOOD.replace('symbols = ["BTCUSD"]', "symbols = []"))
    assert err.key == "feeds[1].symbols" and "at least one symbol" in str(err)
    err = config_error(GOOD.replace('symbols = ["BTCUSDT", "ETHUSDT"]', "symbols = []"))
    assert err.key == "sim.symbols"


def test_config_bad_url() -> None:
    err = config_error(GOOD.replace("wss://stream.binance.us:9443", "http://stream.binance.us"))
    assert err.key == "feeds[1].ws_url" and "invalid URL" in str(err)
    err = config_error(GOOD.replace("https://api.binance.us", "https://"))
    assert err.key == "feeds[1].rest_url"
    err = config_error(GOOD.replace("[sim]", "[xsim]"))
    assert err.key == "xsim"
    no_sim = GOOD.replace("[sim]\n", "").replace('symbols = ["BTCUSDT", "ETHUSDT"]\n', "")
    no_sim = no_sim.replace("rate = 500\nseed = 3\n", "")
    err = config_error(no_sim)
    assert err.key == "feeds[0].ws_url" and "[sim]" in str(err)


def test_config_bad_overflow() -> None:
    err = config_error(GOOD.replace('"drop_oldest"', '"drop_newest"'))
    assert err.key == "runtime.overflow" and err.line == 3
    assert "'block', 'drop_oldest'" in str(err)
    with pytest.raises(ConfigError, match="overflow"):
        Runtime(overflow="nope")  # type: ignore[arg-type]


def test_config_other_classes() -> None:
    assert config_error(GOOD.replace('[metrics]\nlisten = ""', 'listen = "x"')).key.startswith(
        "feeds[1]"
    )
    err = config_error(GOOD.replace('listen = ""', 'listen = "localhost"'))
    assert err.key == "metrics.listen"
    err = config_error(GOOD.replace("xtrader.demo:DemoStrategy", "no-colon"))
    assert err.key == "strategies[0].path"
    err = config_error(GOOD.replace("depth_limit = 500", "depth_limit = 0"))
    assert err.key == "feeds[1].depth_limit"
    err = config_error("[[feeds]]\nexchange = 'binance'\n")
    assert err.key == "feeds[0].symbols" and "missing" in str(err)
    err = config_error("feeds = [")
    assert err.key == "test.toml" and "invalid TOML" in str(err)
    with pytest.raises(ConfigError, match="feeds"):
        Config()
    bad_class = parse_config(GOOD.replace("xtrader.demo:DemoStrategy", "xtrader.demo:Nope"))
    with pytest.raises(ConfigError, match=r"strategies\[0\]\.path"):
        bad_class.load_strategies()


def test_config_direct_construction_validates() -> None:
    with pytest.raises(ConfigError, match=r"^channels: unknown channel"):
        FeedConfig("binance", ("BTCUSDT",), ("trades", "candles"))
    feed = FeedConfig("binance", ["BTCUSDT"], ["trades"])  # type: ignore[arg-type]
    assert feed.symbols == ("BTCUSDT",) and feed.channels == ("trades",)
    with pytest.raises(ConfigError, match=r"^exchange: unknown exchange 'kraken'"):
        Runtime().subscribe("kraken", ["BTCUSD"])
    with pytest.raises(ConfigError, match=r"^metrics:"):
        Runtime(metrics="nohost")


def test_config_okx_channels_and_venue_channels() -> None:
    feed = FeedConfig(
        "okx",
        ("BTC-USDT-PERP", "BTC-USDT"),
        ("trades", "book", "ticker", "funding", "liquidations", "open_interest"),
        venue_channels=("books5", "trades-all"),
        stale_after_ms=5000,
    )
    assert feed.venue_channels == ("books5", "trades-all") and feed.stale_after_ms == 5000
    with pytest.raises(ConfigError, match=r"^channels: unknown channel 'ticker'"):
        FeedConfig("binance", ("BTCUSDT",), ("trades", "ticker"))
    with pytest.raises(ConfigError, match=r"^venue_channels: 'binance' has no venue channel"):
        FeedConfig("binance", ("BTCUSDT",), venue_channels=("books5",))
    with pytest.raises(ConfigError, match=r"^venue_channels: unknown venue channel 'books9'"):
        FeedConfig("okx", ("BTC-USDT",), venue_channels=("books9",))
    with pytest.raises(ConfigError, match=r"^venue_channels: at most one book"):
        FeedConfig("okx", ("BTC-USDT",), venue_channels=("books", "books5"))
    with pytest.raises(ConfigError, match=r"^stale_after_ms: must be between"):
        FeedConfig("okx", ("BTC-USDT",), stale_after_ms=10)
    text = GOOD.replace('"binance_us"', '"okx"')
    config = parse_config(text)
    assert config.feeds[1].exchange == "okx"
    assert parse_config(dump_config(config)) == config


def test_config_futures_feeds_and_channels() -> None:
    text = GOOD.replace(
        'exchange = "binance_us"\nsymbols = ["BTCUSD"]',
        'exchange = "binance_coinm"\nsymbols = ["BTC-USD-PERP", "ETHUSD_251226"]\n'
        'channels = ["book", "funding", "liquidations", "open_interest"]\n'
        "open_interest_interval_s = 30\nconnection_lifetime_s = 3600",
    )
    cfg = parse_config(text)
    feed = cfg.feeds[1]
    assert feed.exchange == "binance_coinm"
    assert feed.channels == ("book", "funding", "liquidations", "open_interest")
    assert feed.open_interest_interval_s == 30.0 and feed.connection_lifetime_s == 3600.0
    assert parse_config(dump_config(cfg)) == cfg
    assert FeedConfig("binance_usdm", ("BTCUSDT",)).trade_stream is None  # venue default
    with pytest.raises(ConfigError, match=r"^channels: channel 'funding' is offered by"):
        FeedConfig("binance", ("BTCUSDT",), ("trades", "funding"))
    with pytest.raises(ConfigError, match=r"^connection_lifetime_s: must be greater than 0"):
        FeedConfig("binance_usdm", ("BTCUSDT",), connection_lifetime_s=0)
