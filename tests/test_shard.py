"""Sharding (``--shard k/N``): N slices are disjoint and cover every subscription, stable
under additions and reordering, roughly fair; bad shard strings exit 2 naming --shard."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import xtrader
from xtrader import ConfigError
from xtrader.cli import main
from xtrader.config import Config, FeedConfig, parse_config
from xtrader.shard import parse_shard, shard_config, shard_of, shard_summary, subscriptions

Pair = tuple[str, str]


def _pairs(cfg: Config) -> list[Pair]:
    return [(feed.exchange, s) for feed in cfg.feeds for s in feed.symbols]


def _slice(cfg: Config, k: int, n: int) -> list[Pair]:
    """The subscriptions shard k of n takes (none when it would take nothing)."""
    try:
        return _pairs(shard_config(cfg, k, n))
    except ConfigError as exc:
        assert exc.key == "--shard" and "takes none" in exc.message, str(exc)
        return []


def _config(symbols: dict[str, list[str]]) -> Config:
    feeds = tuple(FeedConfig(ex, tuple(names)) for ex, names in symbols.items() if names)
    return Config(feeds=feeds)


symbol_names = st.from_regex(r"[A-Z0-9]{2,6}(-[A-Z]{3,4})?(USDT)?", fullmatch=True)


@settings(max_examples=150, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["binance", "binance_usdm", "okx"]),
        st.lists(symbol_names, min_size=1, max_size=40, unique=True),
        min_size=1,
    ),
    st.integers(1, 8),
)
def test_shard_property_slices_disjoint_and_cover(symbols: dict[str, list[str]], n: int) -> None:
    cfg = _config(symbols)
    slices = [_slice(cfg, k, n) for k in range(n)]
    taken = [pair for part in slices for pair in part]
    assert len(taken) == len(set(taken)), "a subscription landed on two shards"
    assert Counter(taken) == Counter(_pairs(cfg)), "a subscription landed on no shard"
    for k, part in enumerate(slices):
        assert all(shard_of(ex, s, n) == k for ex, s in part)


def test_shard_keeps_everything_but_the_symbols() -> None:
    cfg = parse_config(
        '[sim]\nsymbols = ["BTCUSDT"]\n[metrics]\nlisten = ""\n'
        '[[feeds]]\nexchange = "binance"\nsymbols = ["BTCUSDT", "DOGEUSDT", "ETHUSDT"]\n'
        'channels = ["trades"]\nws_url = "sim"\nrest_url = "sim"\ndepth_limit = 50\n'
        '[[feeds]]\nexchange = "okx"\nsymbols = ["ETHUSDT"]\n'
    )
    zero, one = shard_config(cfg, 0, 2), shard_config(cfg, 1, 2)
    assert [f.symbols for f in zero.feeds] == [("DOGEUSDT",)]  # okx's ETHUSDT is shard 1
    assert [f.symbols for f in one.feeds] == [("BTCUSDT", "ETHUSDT"), ("ETHUSDT",)]
    feed = zero.feeds[0]
    assert (feed.channels, feed.ws_url, feed.depth_limit) == (("trades",), "sim", 50)
    assert zero.sim == cfg.sim and zero.metrics == cfg.metrics
    assert shard_config(cfg, 0, 1) == cfg
    assert subscriptions(cfg) == {"binance": 3, "okx": 1}
    summary = shard_summary(cfg, zero, 0, 2)
    assert summary == "shard 0/2: 1 of 4 subscriptions (binance 1/3, okx 0/1)"


def test_shard_of_is_pinned() -> None:
    # Rendezvous over BLAKE2b of "exchange:SYMBOL:k": the same in every process, Python
    # version and hash seed. Changing the function reshuffles running deployments.
    assert [shard_of("binance", "BTCUSDT", n) for n in (1, 2, 3, 4, 8)] == [0, 1, 1, 1, 1]
    assert [shard_of("binance", "DOGEUSDT", n) for n in (2, 3, 8)] == [0, 2, 2]
    assert shard_of("binance", "ETHUSDT", 8) == 7
    assert shard_of("okx", "BTCUSDT", 2) == 0  # the venue is part of the key
    assert shard_of("binance", "btcusdt", 2) == shard_of("binance", "BTCUSDT", 2)
    code = "from xtrader.shard import shard_of; print(shard_of('binance', 'ETHUSDT', 8))"
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.stdout.strip() == "7", out.stderr


def test_shard_stable_under_additions_and_order() -> None:
    rng = random.Random(3)
    names = [f"S{i}USDT" for i in range(300)]
    for n in (2, 3, 5, 8):
        before = {k: set(_slice(_config({"binance": names}), k, n)) for k in range(n)}
        shuffled = rng.sample(names, len(names))
        after_shuffle = {k: set(_slice(_config({"binance": shuffled}), k, n)) for k in range(n)}
        assert after_shuffle == before
        grown = {k: set(_slice(_config({"binance": [*names, "NEWUSDT"]}), k, n)) for k in range(n)}
        moved = {k: grown[k] - before[k] for k in range(n)}
        assert sum(len(m) for m in moved.values()) == 1
        assert moved[shard_of("binance", "NEWUSDT", n)] == {("binance", "NEWUSDT")}
        assert all(before[k] <= grown[k] for k in range(n))


def test_shard_going_to_more_shards_moves_only_to_the_new_one() -> None:
    names = [f"S{i}USDT" for i in range(1000)]
    for n in range(1, 8):
        for s in names:
            old, new = shard_of("binance", s, n), shard_of("binance", s, n + 1)
            assert new in (old, n), (s, n)


def test_shard_balance_1000_symbols() -> None:
    names = [f"S{i}USDT" for i in range(1000)]
    for n in range(2, 9):
        counts = Counter(shard_of("binance", s, n) for s in names)
        fair = len(names) / n
        assert len(counts) == n
        for k, count in counts.items():
            assert 0.7 * fair <= count <= 1.3 * fair, (n, k, count)


@pytest.mark.parametrize(
    ("text", "k", "n"), [("0/1", 0, 1), ("3/4", 3, 4), (" 1 / 2 ", 1, 2), ("0/4096", 0, 4096)]
)
def test_shard_parse_good(text: str, k: int, n: int) -> None:
    assert parse_shard(text) == (k, n)


@pytest.mark.parametrize(
    "text", ["", "1", "2/2", "3/2", "-1/2", "0/0", "1/0", "a/b", "1/2/3", "0.5/2", "0/4097"]
)
def test_shard_parse_bad(text: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_shard(text)
    assert info.value.key == "--shard" and str(info.value).startswith("--shard: ")
    assert isinstance(info.value, ValueError)


def test_shard_of_needs_a_shard() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        shard_of("binance", "BTCUSDT", 0)


def test_shard_refuses_a_source_and_an_empty_shard() -> None:
    source = parse_config('[source]\nkind = "jetstream"\nservers = ["nats://127.0.0.1:4222"]\n')
    with pytest.raises(ConfigError, match=r"^--shard: .*\[source\]"):
        shard_config(source, 0, 2)
    cfg = _config({"binance": ["BTCUSDT"]})
    with pytest.raises(ConfigError, match=r"^--shard: shard 0/2 takes none of the 1"):
        shard_config(cfg, 0, 2)
    with pytest.raises(ConfigError, match=r"^--shard: "):
        shard_config(cfg, 2, 2)


# ------------------------------------------------------------------------------------------
# the command line

SHARD_CONFIG = """\
[metrics]
listen = ""

[sim]
symbols = ["BTCUSDT", "DOGEUSDT", "ETHUSDT"]
rate = 300

[[feeds]]
exchange = "binance"
symbols = ["BTCUSDT", "DOGEUSDT", "ETHUSDT"]
channels = ["trades", "bbo"]
ws_url = "sim"
rest_url = "sim"
"""


@pytest.mark.parametrize("command", ["run", "record"])
@pytest.mark.parametrize("text", ["2/2", "x", "1/0", "-1/3"])
def test_shard_cli_bad_shard_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str, text: str
) -> None:
    path = tmp_path / "x.toml"
    path.write_text(SHARD_CONFIG)
    assert main([command, str(path), f"--shard={text}", "--no-display"]) == 2
    err = capsys.readouterr().err
    assert "configuration error: --shard: " in err, err


def _env() -> dict[str, str]:
    package_root = str(Path(xtrader.__file__).parent.parent)
    parts = (package_root, os.environ.get("PYTHONPATH"))
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in parts if p)}


def test_shard_cli_subprocess(tmp_path: Path) -> None:
    path = tmp_path / "x.toml"
    path.write_text(SHARD_CONFIG)

    def xtrader_run(*args: str) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "xtrader", "run", str(path), "--no-display", *args]
        return subprocess.run(
            argv,
            cwd=tmp_path,
            env=_env(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
        )

    bad = xtrader_run("--shard", "4/4")
    assert bad.returncode == 2, bad.stderr
    assert "--shard" in bad.stderr and "Traceback" not in bad.stderr
    good = xtrader_run("--shard", "0/2", "--duration", "0.5")
    assert good.returncode == 0, good.stderr
    assert "shard 0/2: 1 of 3 subscriptions (binance 1/3)" in good.stderr
    assert "feeds binance:DOGEUSDT;" in good.stderr  # the runtime got only its slice
