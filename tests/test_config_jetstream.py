"""The ``[jetstream]`` and ``[source]`` tables: good ones round-trip, each mistake names its
dotted key and line, a source replaces feeds, and the Runtime validates the same way."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import config_error, line_of
from xtrader import ConfigError, Runtime
from xtrader.config import (
    ALL_CHANNELS,
    Config,
    FeedConfig,
    JetStreamConfig,
    SourceConfig,
    dump_config,
    parse_config,
)

COLLECTOR = """\
[[feeds]]
exchange = "binance"
symbols = ["BTCUSDT", "ETHUSDT"]

[jetstream]
servers = ["nats://127.0.0.1:4222", "nats://10.0.0.2:4222"]
stream = "XT_1"
subject_prefix = "xt"
replicas = 3
max_age_s = 3600
max_bytes = 1073741824
max_msgs = -1
duplicate_window_s = 60
max_inflight = 256
snapshot_interval_s = 10
channels = ["trades", "book"]
"""

CONSUMER = """\
[source]
kind = "jetstream"
servers = ["nats://127.0.0.1:4222"]
stream = "XT_1"
subject = "xt.*.binance.>"
durable = "strategy-1"
checkpoint = "state/xt.seq"
batch = 1000
gap_timeout_s = 0.5

[[strategies]]
path = "xtrader.demo:DemoStrategy"
"""


def test_config_jetstream_collector_round_trip() -> None:
    cfg = parse_config(COLLECTOR)
    js = cfg.jetstream
    assert js == JetStreamConfig(
        ("nats://127.0.0.1:4222", "nats://10.0.0.2:4222"),
        "XT_1",
        "xt",
        3,
        3600.0,
        1 << 30,
        -1,
        60.0,
        256,
        10.0,
        ("trades", "book"),
    )
    assert cfg.source is None
    assert parse_config(dump_config(cfg)) == cfg
    assert "jetstream: nats://127.0.0.1:4222, nats://10.0.0.2:4222 stream=XT_1" in cfg.summary()


def test_config_jetstream_defaults() -> None:
    cfg = parse_config(
        '[[feeds]]\nexchange = "okx"\nsymbols = ["BTC-USDT"]\n'
        '[jetstream]\nservers = ["nats://127.0.0.1:4222"]\n'
    )
    assert cfg.jetstream == JetStreamConfig(("nats://127.0.0.1:4222",))
    js = cfg.jetstream
    assert (js.stream, js.subject_prefix, js.replicas, js.channels) == ("XT", "xt", 1, None)
    assert (js.max_age_s, js.max_bytes, js.max_msgs) == (0.0, -1, -1)
    assert (js.duplicate_window_s, js.max_inflight, js.snapshot_interval_s) == (120.0, 1024, 30.0)
    assert parse_config(dump_config(cfg)) == cfg


def test_config_source_consumer_round_trip() -> None:
    cfg = parse_config(CONSUMER)
    assert cfg.feeds == () and cfg.sim is None
    assert cfg.source == SourceConfig(
        "jetstream",
        ("nats://127.0.0.1:4222",),
        "XT_1",
        "xt.*.binance.>",
        "strategy-1",
        "state/xt.seq",
        1000,
        0.5,
    )
    assert parse_config(dump_config(cfg)) == cfg
    assert "source: jetstream nats://127.0.0.1:4222 stream=XT_1" in cfg.summary()
    minimal = parse_config('[source]\nkind = "jetstream"\nservers = ["nats://h:4222"]\n')
    assert minimal.source == SourceConfig("jetstream", ("nats://h:4222",))
    assert minimal.source.subject == "xt.>" and minimal.source.checkpoint is None


JETSTREAM_MISTAKES = {
    # case: (replace, with, key, words the message must contain)
    "servers_empty": ('servers = ["nats://127.0.0.1:4222", "nats://10.0.0.2:4222"]',
                      "servers = []", "jetstream.servers", "at least one server"),
    "servers_string": ('servers = ["nats://127.0.0.1:4222", "nats://10.0.0.2:4222"]',
                       'servers = "nats://127.0.0.1:4222"', "jetstream.servers", "array"),
    "server_scheme": ('"nats://10.0.0.2:4222"', '"tls://10.0.0.2:4222"',
                      "jetstream.servers[1]", "nats://host:port"),
    "server_no_port": ('"nats://10.0.0.2:4222"', '"nats://10.0.0.2"',
                       "jetstream.servers[1]", "nats://host:port"),
    "server_bad_port": ('"nats://10.0.0.2:4222"', '"nats://10.0.0.2:99999"',
                        "jetstream.servers[1]", "invalid URL"),
    "server_duplicate": ('"nats://10.0.0.2:4222"', '"nats://127.0.0.1:4222"',
                         "jetstream.servers", "duplicate server"),
    "stream_dot": ('stream = "XT_1"', 'stream = "XT.1"', "jetstream.stream", "stream name"),
    "stream_empty": ('stream = "XT_1"', 'stream = ""', "jetstream.stream", "stream name"),
    "prefix_dot": ('subject_prefix = "xt"', 'subject_prefix = "xt.a"',
                   "jetstream.subject_prefix", "one subject token"),
    "prefix_wildcard": ('subject_prefix = "xt"', 'subject_prefix = "*"',
                        "jetstream.subject_prefix", "one subject token"),
    "replicas": ("replicas = 3", "replicas = 6", "jetstream.replicas", "between 1 and 5"),
    "max_age_negative": ("max_age_s = 3600", "max_age_s = -1", "jetstream.max_age_s",
                         "0 (no limit)"),
    "max_bytes_zero": ("max_bytes = 1073741824", "max_bytes = 0", "jetstream.max_bytes",
                       "-1 (unlimited)"),
    "max_msgs_float": ("max_msgs = -1", "max_msgs = 1.5", "jetstream.max_msgs",
                       "expected an integer"),
    "window_zero": ("duplicate_window_s = 60", "duplicate_window_s = 0",
                    "jetstream.duplicate_window_s", "greater than 0"),
    "window_over_age": ("duplicate_window_s = 60", "duplicate_window_s = 7200",
                        "jetstream.duplicate_window_s", "must not exceed max_age_s"),
    "inflight": ("max_inflight = 256", "max_inflight = 0", "jetstream.max_inflight",
                 "between 1 and 65536"),
    "snapshot": ("snapshot_interval_s = 10", "snapshot_interval_s = -5",
                 "jetstream.snapshot_interval_s", "greater than 0"),
    "channel": ('channels = ["trades", "book"]', 'channels = ["trades", "candles"]',
                "jetstream.channels", "unknown channel 'candles'"),
    "unknown_key": ("replicas = 3", "replica = 3", "jetstream.replica", "'replicas'"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(JETSTREAM_MISTAKES))
def test_config_jetstream_mistake_names_key_and_line(case: str) -> None:
    old, new, key, words = JETSTREAM_MISTAKES[case]
    assert old in COLLECTOR
    text = COLLECTOR.replace(old, new, 1)
    err = config_error(text)
    assert err.key == key, str(err)
    assert words in err.message, str(err)
    assert err.line == line_of(text, new), str(err)


SOURCE_MISTAKES = {
    "kind": ('kind = "jetstream"', 'kind = "kafka"', "source.kind", "'jetstream'"),
    "servers": ('servers = ["nats://127.0.0.1:4222"]', 'servers = ["127.0.0.1:4222"]',
                "source.servers[0]", "nats://host:port"),
    "stream": ('stream = "XT_1"', 'stream = "XT 1"', "source.stream", "stream name"),
    "subject_empty_token": ('subject = "xt.*.binance.>"', 'subject = "xt..binance"',
                            "source.subject", "empty token"),
    "subject_gt_not_last": ('subject = "xt.*.binance.>"', 'subject = "xt.>.binance"',
                            "source.subject", "'>' must be the last token"),
    "subject_partial_wildcard": ('subject = "xt.*.binance.>"', 'subject = "xt.trades*"',
                                 "source.subject", "whole tokens"),
    "subject_space": ('subject = "xt.*.binance.>"', 'subject = "xt.a b"',
                      "source.subject", "no spaces"),
    "subject_trailing_dot": ('subject = "xt.*.binance.>"', 'subject = "xt."',
                             "source.subject", "empty token"),
    "durable": ('durable = "strategy-1"', 'durable = "strategy.1"', "source.durable",
                "consumer name"),
    "checkpoint_empty": ('checkpoint = "state/xt.seq"', 'checkpoint = ""',
                         "source.checkpoint", "must not be empty"),
    "checkpoint_type": ('checkpoint = "state/xt.seq"', "checkpoint = 3",
                        "source.checkpoint", "expected a string"),
    "batch": ("batch = 1000", "batch = 10001", "source.batch", "between 1 and 10000"),
    "gap_timeout": ("gap_timeout_s = 0.5", "gap_timeout_s = 0", "source.gap_timeout_s",
                    "greater than 0"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(SOURCE_MISTAKES))
def test_config_source_mistake_names_key_and_line(case: str) -> None:
    old, new, key, words = SOURCE_MISTAKES[case]
    assert old in CONSUMER
    text = CONSUMER.replace(old, new, 1)
    err = config_error(text)
    assert err.key == key, str(err)
    assert words in err.message, str(err)
    assert err.line == line_of(text, new), str(err)


def test_config_source_required_keys() -> None:
    err = config_error('[source]\nservers = ["nats://127.0.0.1:4222"]\n')
    assert err.key == "source.kind" and "missing" in err.message and err.line == 1
    err = config_error('[source]\nkind = "jetstream"\n')
    assert err.key == "source.servers" and "missing" in err.message
    err = config_error("[jetstream]\n" + COLLECTOR.split("[jetstream]\n")[1].split("\n", 1)[1])
    assert err.key == "jetstream.servers" and "missing" in err.message


def test_config_source_replaces_feeds_and_sim() -> None:
    feeds = '[[feeds]]\nexchange = "binance"\nsymbols = ["BTCUSDT"]\n'
    err = config_error(CONSUMER + feeds)
    assert err.key == "source" and "a JetStream source replaces feeds" in err.message
    assert err.line == 1 and "[[feeds]]" in err.message
    err = config_error(CONSUMER + '[sim]\nsymbols = ["BTCUSDT"]\n')
    assert err.key == "source" and "replaces feeds" in err.message and "[sim]" in err.message
    with pytest.raises(ConfigError, match=r"^source: a JetStream source replaces feeds"):
        Config(
            feeds=(FeedConfig("binance", ("BTCUSDT",)),),
            source=SourceConfig("jetstream", ("nats://127.0.0.1:4222",)),
        )
    err = config_error("[runtime]\nworker_threads = 2\n")
    assert err.key == "feeds" and "[source]" in err.message


def test_config_source_may_not_republish() -> None:
    sink = '[jetstream]\nservers = ["nats://127.0.0.1:4222"]\nstream = "XT_1"\n'
    for subject in ('"xt.>"', '">"', '"xt.*.binance.>"'):
        err = config_error(CONSUMER.replace('"xt.*.binance.>"', subject) + sink)
        assert err.key == "jetstream" and "cannot also publish" in err.message
    # another stream or another prefix is refused too: the source's acks count its own events
    err = config_error(CONSUMER + sink.replace('"XT_1"', '"XT_2"') + 'subject_prefix = "agg"\n')
    assert err.key == "jetstream"


def test_config_direct_construction_converts_and_validates() -> None:
    js = JetStreamConfig(["nats://127.0.0.1:4222"], channels=["trades"])  # type: ignore[arg-type]
    assert js.servers == ("nats://127.0.0.1:4222",) and js.channels == ("trades",)
    assert JetStreamConfig(("nats://h:1",), max_age_s=0).max_age_s == 0.0
    with pytest.raises(ConfigError, match=r"^replicas: must be between 1 and 5"):
        JetStreamConfig(("nats://h:1",), replicas=0)
    with pytest.raises(ConfigError, match=r"^kind: must be one of 'jetstream'"):
        SourceConfig("kafka", ("nats://h:1",))  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------
# the same validation through the Runtime (no call reaches the engine: every case is invalid)


def test_runtime_publish_jetstream_validates() -> None:
    rt = Runtime()
    with pytest.raises(ConfigError, match=r"^servers\[0\]: expected 'nats://host:port'"):
        rt.publish_jetstream(["localhost:4222"])
    with pytest.raises(ConfigError, match=r"^stream: "):
        rt.publish_jetstream("nats://127.0.0.1:4222", "a.b")
    with pytest.raises(ConfigError, match=r"^channels: unknown channel"):
        rt.publish_jetstream("nats://127.0.0.1:4222", channels=["nope"])
    with pytest.raises(ConfigError, match=r"^duplicate_window_s: must not exceed"):
        rt.publish_jetstream("nats://127.0.0.1:4222", max_age_s=10.0)
    assert rt.jetstream is None


def test_runtime_consume_jetstream_validates_and_refuses_feeds() -> None:
    rt = Runtime()
    with pytest.raises(ConfigError, match=r"^subject: invalid subject"):
        rt.consume_jetstream("nats://127.0.0.1:4222", subject="xt.>.x")
    with pytest.raises(ConfigError, match=r"^durable: "):
        rt.consume_jetstream("nats://127.0.0.1:4222", durable="a b")
    with pytest.raises(ConfigError, match=r"^batch: "):
        rt.consume_jetstream("nats://127.0.0.1:4222", batch=0)
    rt.subscribe("binance", ["BTCUSDT"])
    with pytest.raises(ConfigError, match=r"^source: a JetStream source replaces feeds"):
        rt.consume_jetstream("nats://127.0.0.1:4222")
    assert rt.source is None


# ------------------------------------------------------------------------------------------
# hypothesis: any valid pair of tables round-trips


servers = st.lists(
    st.sampled_from(["nats://127.0.0.1:4222", "nats://10.0.0.2:4223", "nats://nats-1:4222"]),
    min_size=1,
    unique=True,
).map(tuple)
names = st.from_regex(r"[A-Za-z0-9_\-]{1,20}", fullmatch=True)
token = st.from_regex(r"[a-z0-9_\-]{1,8}", fullmatch=True)


@st.composite
def subjects(draw: st.DrawFn) -> str:
    tokens = draw(st.lists(token | st.just("*"), min_size=1, max_size=4))
    if draw(st.booleans()):
        tokens.append(">")
    return ".".join(tokens)


@st.composite
def jetstream_tables(draw: st.DrawFn) -> JetStreamConfig:
    max_age = draw(st.sampled_from([0.0, 1.0, 3600.0, 86400.0 * 30]))
    window_hi = min(max_age, 86400.0) if max_age > 0 else 86400.0
    return JetStreamConfig(
        draw(servers),
        draw(names),
        draw(token),
        draw(st.integers(1, 5)),
        max_age,
        draw(st.sampled_from([-1, 1, 1 << 40])),
        draw(st.sampled_from([-1, 1, 10**9])),
        draw(st.floats(0.001, window_hi, allow_nan=False)),
        draw(st.integers(1, 65536)),
        draw(st.floats(0.001, 86400.0, allow_nan=False)),
        draw(
            st.none() | st.lists(st.sampled_from(ALL_CHANNELS), min_size=1, unique=True).map(tuple)
        ),
    )


@st.composite
def source_tables(draw: st.DrawFn) -> SourceConfig:
    return SourceConfig(
        "jetstream",
        draw(servers),
        draw(names),
        draw(subjects()),
        draw(names),
        draw(st.none() | st.sampled_from(["cp", "/var/lib/xt/seq", "a b/c.seq"])),
        draw(st.integers(1, 10_000)),
        draw(st.floats(0.001, 3600.0, allow_nan=False)),
    )


@settings(max_examples=150, deadline=None)
@given(jetstream_tables(), source_tables(), st.booleans())
def test_config_property_bus_tables_round_trip(
    js: JetStreamConfig, source: SourceConfig, consumer: bool
) -> None:
    if consumer:  # a consumer does not publish
        cfg = Config(source=source)
    else:
        cfg = Config(feeds=(FeedConfig("binance", ("BTCUSDT",)),), jetstream=js)
    assert parse_config(dump_config(cfg)) == cfg
