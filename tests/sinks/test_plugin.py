"""A third-party sink registered through the ``xtrader.sinks`` entry-point group."""

from __future__ import annotations

import json
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

import xtrader as xt
from xtrader.config import parse_config

PLUGIN = textwrap.dedent(
    """
    import json
    from xtrader.sinks import Sink

    class CountingSink(Sink):
        name = "counting"
        options = {"path": "counts.json", "flush_interval_s": 0.2}

        def __init__(self, path="counts.json", flush_interval_s=0.2):
            self.path = path
            self.flush_interval_s = flush_interval_s
            self.rows = {}
            self.calls = []

        def open(self):
            self.calls.append("open")

        def write(self, frames):
            self.calls.append("write")
            for channel, frame in frames.items():
                self.rows[channel] = self.rows.get(channel, 0) + frame.height

        def flush(self):
            self.calls.append("flush")

        def close(self):
            self.calls.append("close")
            with open(self.path, "w") as f:
                json.dump({"rows": self.rows, "calls": sorted(set(self.calls))}, f)
    """
)


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    site = tmp_path / "site"
    site.mkdir()
    (site / "xt_counting_sink.py").write_text(PLUGIN)
    info = site / "xt_counting_sink-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: xt-counting-sink\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[xtrader.sinks]\ncounting = xt_counting_sink:CountingSink\n"
    )
    monkeypatch.syspath_prepend(str(site))
    yield site
    sys.modules.pop("xt_counting_sink", None)


CONFIG = """
[sim]
symbols = ["BTCUSDT", "ETHUSDT"]
rate = 2000.0
[metrics]
listen = ""
[[feeds]]
exchange = "binance"
symbols = ["BTCUSDT", "ETHUSDT"]
channels = ["trades", "book", "bbo"]
ws_url = "sim"
rest_url = "sim"
[[sinks]]
type = "counting"
path = {path}
"""


def test_plugin_configured_by_name(plugin: Path, tmp_path: Path) -> None:
    out = tmp_path / "counts.json"
    cfg = parse_config(CONFIG.format(path=json.dumps(str(out))))
    rt = xt.Runtime.from_config(cfg)
    rt.run(1.5)
    got = json.loads(out.read_text())
    assert got["calls"] == ["close", "flush", "open", "write"]
    assert got["rows"]["trades"] > 0
    assert got["rows"]["book"] > 0 and got["rows"]["bbo"] > 0


def test_plugin_options_validated(plugin: Path) -> None:
    with pytest.raises(xt.ConfigError) as err:
        parse_config(CONFIG.format(path='"x.json"') + "colour = 3\n")
    assert err.value.key == "sinks[0].colour"
    with pytest.raises(xt.ConfigError) as err:
        parse_config(CONFIG.format(path='"x.json"').replace('"counting"', '"nope"'))
    assert err.value.key == "sinks[0].type"
    with pytest.raises(xt.ConfigError) as err:
        parse_config(CONFIG.format(path="3"))
    assert err.value.key == "sinks[0].path"
