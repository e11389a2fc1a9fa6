"""Configuration, beyond the hand-written cases of test_config.py: each class of mistake
names its dotted key and line; hypothesis properties (valid configurations round-trip,
any single mutation raises ConfigError naming the mutated key and nothing else); and no
configuration file read on a running event loop."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import xtrader as xt
import xtrader.runtime as runtime_module
from conftest import config_error, line_of
from xtrader import ConfigError
from xtrader.config import (
    ALL_CHANNELS,
    CHANNELS,
    EXCHANGES,
    FUTURES_CHANNELS,
    FUTURES_EXCHANGES,
    OKX_VENUE_CHANNELS,
    RECORD_CHANNELS,
    Config,
    FeedConfig,
    JetStreamConfig,
    MetricsConfig,
    RecordConfig,
    RuntimeConfig,
    SimConfig,
    dump_config,
    load_config,
    load_config_async,
    parse_config,
)

BASE = """\
[runtime]
queue_capacity = 4096
worker_threads = 2

[[feeds]]
exchange = "binance"
symbols = ["BTCUSDT", "ETH-USDT"]
channels = ["trades", "book"]
depth_limit = 500

[[feeds]]
exchange = "okx"
symbols = ["BTC-USDT-SWAP"]
stale_after_ms = 5000

[record]
dir = "data"
flush_interval_s = 2.0
"""


def _error(text: str) -> ConfigError:
    return config_error(text, "bad.toml")


# ------------------------------------------------------------------------------------------
# one test per class of mistake: the dotted key, the line, and what is wrong


CLASSES = {
    # class: (replace, with, key, words the message must contain)
    "unknown_key": ("depth_limit = 500", "depth_limt = 500", "feeds[0].depth_limt", "depth_limit"),
    "wrong_type": ("stale_after_ms = 5000", 'stale_after_ms = "5s"', "feeds[1].stale_after_ms",
                   "expected an integer"),
    "wrong_item_type": ('channels = ["trades", "book"]', 'channels = ["trades", 3]',
                        "feeds[0].channels[1]", "expected a string"),
    "unknown_venue": ('exchange = "okx"', 'exchange = "okex"', "feeds[1].exchange",
                      "unknown exchange 'okex'"),
    "unknown_channel": ('channels = ["trades", "book"]', 'channels = ["trades", "depth"]',
                        "feeds[0].channels", "unknown channel 'depth'"),
    "futures_channel_on_spot": ('channels = ["trades", "book"]', 'channels = ["funding"]',
                                "feeds[0].channels", "'funding' is offered by"),
    "bad_symbol": ('symbols = ["BTCUSDT", "ETH-USDT"]', 'symbols = ["BTCUSDT", "ETH USDT"]',
                   "feeds[0].symbols[1]", "invalid symbol 'ETH USDT'"),
    "duplicate_symbol": ('symbols = ["BTCUSDT", "ETH-USDT"]', 'symbols = ["BTCUSDT", "BTCUSDT"]',
                         "feeds[0].symbols", "duplicate symbol"),
    "value_out_of_range": ("queue_capacity = 4096", "queue_capacity = 4", "runtime.queue_capacity",
                           "between 16 and"),
    "float_out_of_range": ("flush_interval_s = 2.0", "flush_interval_s = -1.0",
                           "record.flush_interval_s", "greater than 0"),
    "not_a_number": ("flush_interval_s = 2.0", "flush_interval_s = nan",
                     "record.flush_interval_s", "greater than 0"),
    "bad_choice": ("worker_threads = 2", 'worker_threads = 2\noverflow = "drop_all"',
                   "runtime.overflow", "'block', 'drop_oldest'"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(CLASSES))
def test_config_error_class_names_key_and_line(case: str) -> None:
    old, new, key, words = CLASSES[case]
    assert old in BASE
    text = BASE.replace(old, new, 1)
    err = _error(text)
    assert err.key == key, str(err)
    assert words in err.message, str(err)
    assert str(err).startswith(f"{key}: ")
    line = line_of(text, new.splitlines()[-1])
    assert err.line == line and str(err).endswith(f"(line {line})"), str(err)


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("[runtime]\nqueue_capacity = \n", 2),  # missing value
        ('[[feeds]]\nexchange = "binance"\nsymbols = ["BTCUSDT"\n', 3),  # unclosed array
        ("[runtime]\nworker_threads = 2\nworker_threads = 3\n", 3),  # duplicate key
        ('[[feeds]]\nexchange = "binance\n', 2),  # unterminated string
    ],
)
def test_config_toml_syntax_error_names_file_and_line(text: str, line: int) -> None:
    err = _error(text)
    assert err.key == "bad.toml" and "invalid TOML" in err.message
    assert err.line == line, str(err)
    assert "(at line" not in err.message  # the line is reported once, as ConfigError.line


def test_config_unreadable_file_names_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as info:
        load_config(missing)
    assert info.value.key == str(missing) and "cannot read" in info.value.message
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe[runtime]\n")
    with pytest.raises(ConfigError) as info:
        load_config(binary)
    assert info.value.key == str(binary)


# ------------------------------------------------------------------------------------------
# hypothesis: valid configurations round-trip


SYMBOLS = {
    "binance": ["BTCUSDT", "ETH-USDT", "SOLUSDT"],
    "binance_us": ["BTCUSD", "ETH-USD"],
    "binance_usdm": ["BTCUSDT", "BTC-USDT-PERP", "ETHUSDT_261225"],
    "binance_coinm": ["BTCUSD_PERP", "BTC-USD-20261225"],
    "okx": ["BTC-USDT", "BTC-USDT-SWAP", "BTC-USD-250926"],
}

finite = st.floats(min_value=0.001, max_value=86400.0, allow_nan=False, allow_infinity=False)


@st.composite
def feeds(draw: st.DrawFn, with_sim: bool) -> FeedConfig:
    exchange = draw(st.sampled_from(EXCHANGES))
    symbols = draw(st.lists(st.sampled_from(SYMBOLS[exchange]), min_size=1, unique=True))
    valid = CHANNELS + (FUTURES_CHANNELS if exchange in FUTURES_EXCHANGES else ())
    if exchange == "okx":
        valid += ("ticker",)
    channels = draw(st.lists(st.sampled_from(valid), min_size=1, unique=True))
    venue_channels: tuple[str, ...] = ()
    if exchange == "okx":
        books = draw(st.sampled_from([(), ("books5",), ("books-l2-tbt",)]))
        trades = draw(st.sampled_from([(), ("trades-all",)]))
        venue_channels = books + trades
        assert set(venue_channels) <= set(OKX_VENUE_CHANNELS)
    urls = [None, "wss://example.com:9443", "ws://127.0.0.1:8765"] + (["sim"] if with_sim else [])
    ws_url = draw(st.sampled_from(urls))
    rest_url = draw(st.sampled_from([None, "https://example.com", "http://127.0.0.1:8765"]))
    return FeedConfig(
        exchange=exchange,
        symbols=tuple(symbols),
        channels=tuple(channels),
        ws_url=ws_url,
        rest_url=rest_url,
        depth_limit=draw(st.integers(1, 5000)),
        trade_stream=draw(st.sampled_from([None, "trade", "aggTrade"])),
        venue_channels=venue_channels,
        stale_after_ms=draw(st.integers(1000, 3_600_000)),
        open_interest_interval_s=draw(finite),
        connection_lifetime_s=draw(st.none() | finite),
        max_data_silence_ms=draw(st.none() | st.integers(500, 3_600_000)),
    )


@st.composite
def jetstream_tables(draw: st.DrawFn) -> JetStreamConfig:
    max_age = draw(st.sampled_from([0.0, 3600.0, 86400.0 * 7]))
    return JetStreamConfig(
        servers=tuple(
            draw(
                st.lists(
                    st.sampled_from(["nats://127.0.0.1:4222", "nats://nats-2:4223"]),
                    min_size=1,
                    unique=True,
                )
            )
        ),
        stream=draw(st.sampled_from(["XT", "xt-trades_1"])),
        subject_prefix=draw(st.sampled_from(["xt", "md-1"])),
        replicas=draw(st.integers(1, 5)),
        max_age_s=max_age,
        max_bytes=draw(st.sampled_from([-1, 1, 1 << 40])),
        max_msgs=draw(st.sampled_from([-1, 1, 10**9])),
        duplicate_window_s=draw(st.floats(0.01, 3600.0, allow_nan=False)),
        max_inflight=draw(st.integers(1, 65536)),
        snapshot_interval_s=draw(finite),
        channels=draw(
            st.none() | st.lists(st.sampled_from(ALL_CHANNELS), min_size=1, unique=True).map(tuple)
        ),
    )


@st.composite
def configs(draw: st.DrawFn) -> Config:
    sim = draw(
        st.none()
        | st.builds(
            SimConfig,
            symbols=st.lists(st.sampled_from(SYMBOLS["binance"]), min_size=1, unique=True).map(
                tuple
            ),
            rate=st.floats(1.0, 1e6, allow_nan=False),
            seed=st.integers(0, (1 << 63) - 1),
            port=st.integers(0, 65535),
        )
    )
    record = draw(
        st.none()
        | st.builds(
            RecordConfig,
            dir=st.sampled_from(["data", "./xtrader-data", "/tmp/x y"]),
            channels=st.lists(st.sampled_from(RECORD_CHANNELS), min_size=1, unique=True).map(tuple),
            flush_interval_s=st.floats(0.01, 3600.0, allow_nan=False),
        )
    )
    return Config(
        runtime=RuntimeConfig(
            queue_capacity=draw(st.integers(16, 1 << 30)),
            overflow=draw(st.sampled_from(["block", "drop_oldest"])),
            worker_threads=draw(st.integers(0, 256)),
            on_error=draw(st.sampled_from(["continue", "stop"])),
            quote_policy=draw(st.sampled_from(["conflate", "block"])),
            book_policy=draw(st.sampled_from(["resync", "block"])),
            trade_policy=draw(st.sampled_from(["block", "spill"])),
            spill_dir=draw(st.sampled_from(["", "/tmp/xt-spill", "spill dir"])),
            spill_max_bytes=draw(st.integers(4096, 1 << 40)),
            busy_poll_us=draw(st.integers(0, 100_000)),
        ),
        feeds=tuple(draw(st.lists(feeds(with_sim=sim is not None), min_size=1, max_size=3))),
        metrics=MetricsConfig(draw(st.sampled_from(["", "127.0.0.1:9898", "localhost:0"]))),
        record=record,
        sim=sim,
        jetstream=draw(st.none() | jetstream_tables()),
    )


@settings(max_examples=100, deadline=None)
@given(configs())
def test_config_property_valid_configs_round_trip(cfg: Config) -> None:
    text = dump_config(cfg)
    assert parse_config(text) == cfg
    assert parse_config(dump_config(parse_config(text))) == cfg


# ------------------------------------------------------------------------------------------
# hypothesis: any single mutation raises ConfigError naming the mutated key


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if value == value and abs(value) != float("inf") else "nan"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items()) + " }"
    raise TypeError(type(value))


def _render(doc: dict[str, Any]) -> str:
    """A TOML document of plain tables and arrays of tables (the configuration's shape)."""
    out: list[str] = []
    for name, value in doc.items():
        if isinstance(value, dict):
            out += [f"[{name}]", *(f"{k} = {_toml(v)}" for k, v in value.items()), ""]
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for item in value:
                out += [f"[[{name}]]", *(f"{k} = {_toml(v)}" for k, v in item.items()), ""]
        else:
            out.insert(0, f"{name} = {_toml(value)}")
    return "\n".join(out)


WRONG_TYPES: dict[type, list[Any]] = {
    str: [3, 1.5, True, ["x"], {"a": 1}],
    int: ["12", 1.5, True, [1], {"a": 1}],
    float: ["1.0", True, [1.0], {"a": 1}],
    list: [3, "trades", True, {"a": 1}],
}
OUT_OF_RANGE: list[Any] = [-1, -0.5, 2**64, float("nan"), float("inf"), 0]
ZERO_OK = {"seed", "port", "busy_poll_us", "max_age_s"}  # 0 is in range for these
MINUS_ONE_OK = {"max_bytes", "max_msgs"}  # -1 means unlimited


TABLES = ("runtime", "metrics", "record", "sim", "jetstream")


def _leaves(doc: dict[str, Any]) -> list[tuple[str, tuple[Any, ...]]]:
    """(dotted key, path into the document) of every value in a mutable table."""
    out: list[tuple[str, tuple[Any, ...]]] = []
    for name in TABLES:
        for key in doc.get(name, {}):
            out.append((f"{name}.{key}", (name, key)))
    for i, feed in enumerate(doc.get("feeds", [])):
        for key in feed:
            out.append((f"feeds[{i}].{key}", ("feeds", i, key)))
    return out


def _tables(doc: dict[str, Any]) -> list[tuple[str, tuple[Any, ...]]]:
    out: list[tuple[str, tuple[Any, ...]]] = [("", ())]
    out += [(n, (n,)) for n in TABLES if n in doc]
    out += [(f"feeds[{i}]", ("feeds", i)) for i in range(len(doc.get("feeds", [])))]
    return out


def _get(doc: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        doc = doc[part]
    return doc


@st.composite
def mutations(draw: st.DrawFn) -> tuple[str, str]:
    """(TOML text with exactly one mistake, the dotted key it must be reported under)."""
    doc = tomllib.loads(dump_config(draw(configs())))
    kind = draw(st.sampled_from(["wrong_type", "unknown_key", "out_of_range"]))
    if kind == "unknown_key":
        prefix, path = draw(st.sampled_from(_tables(doc)))
        name = draw(st.sampled_from(["zz_unknown", "symbol", "chanels", "Rate"]))
        _get(doc, path)[name] = draw(st.sampled_from([1, "x", [1, 2]]))
        return _render(doc), f"{prefix}.{name}" if prefix else name
    if kind == "out_of_range":
        numeric = [(k, p) for k, p in _leaves(doc) if type(_get(doc, p)) in (int, float)]
        key, path = draw(st.sampled_from(numeric))
        choices = [
            v
            for v in OUT_OF_RANGE
            if not (v == 0 and path[-1] in ZERO_OK) and not (v == -1 and path[-1] in MINUS_ONE_OK)
        ]
        if path[-1] == "seed":  # any 63-bit seed is valid: only the sign and size are wrong
            choices = [-1, 2**64]
        _get(doc, path[:-1])[path[-1]] = draw(st.sampled_from(choices))
        return _render(doc), key
    key, path = draw(st.sampled_from(_leaves(doc)))
    current = _get(doc, path)
    wrong = draw(st.sampled_from(WRONG_TYPES[type(current)]))
    _get(doc, path[:-1])[path[-1]] = wrong
    return _render(doc), key


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutations())
def test_config_property_any_mutation_raises_config_error_naming_the_key(
    case: tuple[str, str],
) -> None:
    text, key = case
    with pytest.raises(ConfigError) as info:  # any other exception type fails the test
        parse_config(text, "mutated.toml")
    err = info.value
    assert err.key == key or err.key.startswith((f"{key}[", f"{key}.")), (str(err), text)
    assert str(err).startswith(f"{err.key}: ")
    assert err.line is not None, str(err)


# ------------------------------------------------------------------------------------------
# configuration read without blocking the event loop


def test_config_async_load_does_not_block_the_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "x.toml"
    path.write_text(BASE)
    loop_thread: list[threading.Thread] = []
    read_threads: list[threading.Thread] = []
    real_read = Path.read_text

    def slow_read(self: Path, *args: Any, **kwargs: Any) -> str:
        read_threads.append(threading.current_thread())
        time.sleep(0.3)  # a slow disk or network file system
        return real_read(self, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", slow_read)

    async def main() -> tuple[Config, int]:
        loop_thread.append(threading.current_thread())
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        task = asyncio.create_task(ticker())
        try:
            cfg = await load_config_async(path)
        finally:
            task.cancel()
        return cfg, ticks

    cfg, ticks = asyncio.run(main())
    assert cfg == parse_config(BASE)
    assert read_threads and read_threads[0] is not loop_thread[0], "read on the loop thread"
    assert ticks >= 5, f"the event loop stalled during the read ({ticks} ticks in 0.3 s)"
    with pytest.raises(ConfigError, match="cannot read"):
        asyncio.run(load_config_async(tmp_path / "missing.toml"))


def test_config_runtime_async_path_reads_no_file_on_the_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    loop_reads: list[str] = []

    def guarded_load(path: object) -> Config:
        if _on_running_loop():
            loop_reads.append(str(path))
        raise AssertionError("the async path must not load a configuration file")

    monkeypatch.setattr(runtime_module, "load_config", guarded_load)

    async def main() -> None:
        async with xt.Runtime() as rt:
            await rt.run_async(duration=0.05)

    asyncio.run(main())
    assert loop_reads == []


def _on_running_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
