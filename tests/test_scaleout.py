"""Scale-out end to end: two sharded collectors publish into a real 3-node JetStream cluster,
a consumer process rebuilds everything from the bus.

- The consumer's trades equal the union of the collectors' trades: nothing lost, nothing
  delivered twice, although a NATS node (the stream leader) is killed mid-run and the
  consumer is stopped and restarted from its durable position.
- The consumer's final books equal the collectors' final books (levels and sequence).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import require_nats_server, wait_until
from natscluster import NatsCluster
from xtrader import Runtime, Simulator
from xtrader.exceptions import XtraderError
from xtrader.shard import shard_of

TESTS = Path(__file__).parent
# chosen so that each of the two shards takes some (checked below)
SYMBOLS = ["BTCUSDT", "ETHUSDT", "DOGEUSDT", "SOLUSDT", "BNBUSDT", "XRPUSDT"]
NORMALIZED = [s.replace("USDT", "-USDT") for s in SYMBOLS]
STREAM = "XT"


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), env.get("PYTHONPATH", "")])
    return env


def _toml_list(items: list[str]) -> str:
    return "[" + ", ".join(json.dumps(i) for i in items) + "]"


def _probe(out: Path) -> str:
    return (
        '[metrics]\nlisten = ""\n\n'
        "[[strategies]]\n"
        'path = "busprobe:Probe"\n'
        f'params = {{ out = {json.dumps(str(out))}, exchange = "binance", '
        f"symbols = {_toml_list(NORMALIZED)} }}\n"
    )


def _collector_config(tmp: Path, sim: Simulator, urls: list[str], k: int) -> Path:
    cfg = tmp / f"collector{k}.toml"
    cfg.write_text(
        "[[feeds]]\n"
        'exchange = "binance"\n'
        f"symbols = {_toml_list(SYMBOLS)}\n"
        'channels = ["trades", "book", "bbo"]\n'
        f"ws_url = {json.dumps(sim.ws_url)}\n"
        f"rest_url = {json.dumps(sim.rest_url)}\n"
        "\n[jetstream]\n"
        f"servers = {_toml_list(urls)}\n"
        f'stream = "{STREAM}"\n'
        "replicas = 3\n"
        "snapshot_interval_s = 1.0\n"
        "\n" + _probe(tmp / f"collector{k}.json")
    )
    return cfg


def _consumer_config(tmp: Path, urls: list[str], run: int) -> Path:
    cfg = tmp / f"consumer{run}.toml"
    cfg.write_text(
        "[source]\n"
        'kind = "jetstream"\n'
        f"servers = {_toml_list(urls)}\n"
        f'stream = "{STREAM}"\n'
        'subject = "xt.>"\n'
        'durable = "probe"\n'
        f"checkpoint = {json.dumps(str(tmp / 'probe.seq'))}\n"
        "\n" + _probe(tmp / f"consumer{run}.json")
    )
    return cfg


def _start(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:  # the child keeps its own descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "xtrader", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=_env(),
        )


def _start_consumer(tmp: Path, urls: list[str], run: int) -> subprocess.Popen[bytes]:
    """Consumer run `run` (1, 2...): the same durable and checkpoint every time, its final
    stats written to ``r<run>.stats.json`` and its output to ``r<run>.log``."""
    config = _consumer_config(tmp, urls, run)
    stats = tmp / f"r{run}.stats.json"
    return _start(["run", str(config), "--stats-json", str(stats)], tmp / f"r{run}.log")


def _stop(proc: subprocess.Popen[bytes], log: Path, timeout: float = 30.0) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
        pytest.fail(f"process did not stop on SIGTERM: {log.read_text()[-3000:]}")
    assert code == 0, log.read_text()[-3000:]


async def _js_call(urls: list[str], fn: Any) -> Any:
    import nats

    nc = await nats.connect(servers=urls, connect_timeout=2, max_reconnect_attempts=3)
    try:
        return await fn(nc.jetstream())
    finally:
        await nc.close()


def _stream_info(urls: list[str]) -> Any:
    async def info(js: Any) -> Any:
        return await js.stream_info(STREAM)

    return asyncio.run(_js_call(urls, info))


def _consumer_info(urls: list[str], durable: str) -> Any:
    async def info(js: Any) -> Any:
        return await js.consumer_info(STREAM, durable)

    return asyncio.run(_js_call(urls, info))


def _wait(what: str, cond: Any, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = cond()
            if last:
                return last
        except Exception as exc:  # a node changing leader answers with an error for a while
            last = exc
        time.sleep(0.25)
    pytest.fail(f"timed out waiting for {what} (last: {last!r})")


def test_sharded_collectors_through_jetstream_to_a_consumer(
    nats_cluster: NatsCluster, tmp_path: Path
) -> None:
    shards = {shard_of("binance", s, 2) for s in SYMBOLS}
    assert shards == {0, 1}, "the symbol set must give both shards something"
    urls = nats_cluster.urls
    started: list[subprocess.Popen[bytes]] = []
    try:
        _scaleout_run(nats_cluster, tmp_path, urls, started)
    finally:
        # whatever failed, no process outlives the test
        for proc in started:
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)
    _check_scaleout(tmp_path)


def _scaleout_run(
    nats_cluster: NatsCluster,
    tmp_path: Path,
    urls: list[str],
    started: list[subprocess.Popen[bytes]],
) -> None:
    """Collectors, a node killed, a consumer restarted; every process stopped by SIGTERM."""
    with Simulator(symbols=SYMBOLS, rate=300.0, seed=11) as sim:
        logs = {name: tmp_path / f"{name}.log" for name in ("c0", "c1", "r1", "r2")}
        collectors = [
            _start(
                ["run", str(_collector_config(tmp_path, sim, urls, k)), "--shard", f"{k}/2"],
                logs[f"c{k}"],
            )
            for k in (0, 1)
        ]
        started.extend(collectors)
        try:
            _wait("the stream", lambda: _stream_info(urls).state.messages > 200, 30)
            consumer = _start_consumer(tmp_path, urls, 1)
            started.append(consumer)
            time.sleep(3)
            # kill the stream's leader mid-run, bring it back
            leader = _stream_info(urls).cluster.leader
            victim = nats_cluster.index(leader)
            nats_cluster.kill(victim)
            time.sleep(3)
            nats_cluster.restart(victim)
            # the consumer stops and resumes from its durable position
            time.sleep(1)
            _stop(consumer, logs["r1"])
            time.sleep(1)
            consumer = _start_consumer(tmp_path, urls, 2)
            started.append(consumer)
            time.sleep(4)
        finally:
            for k, proc in enumerate(collectors):
                _stop(proc, logs[f"c{k}"])
        _wait(
            "the consumer to take everything",
            lambda: (
                (ci := _consumer_info(urls, "probe")).num_pending == 0 and ci.num_ack_pending == 0
            ),
            60,
        )
        _stop(consumer, logs["r2"])


def _check_scaleout(tmp_path: Path) -> None:
    """What the consumer's two runs saw equals what the two collectors saw."""
    collected = [json.loads((tmp_path / f"collector{k}.json").read_text()) for k in (0, 1)]
    consumed = [json.loads((tmp_path / f"consumer{r}.json").read_text()) for r in (1, 2)]

    # the shards split the symbols with no overlap and no hole
    books = [set(c["books"]) for c in collected]
    assert books[0] and books[1]
    assert books[0].isdisjoint(books[1])
    assert books[0] | books[1] == set(NORMALIZED)

    want = [tuple(t) for c in collected for t in c["trades"]]
    got = [tuple(t) for c in consumed for t in c["trades"]]
    assert len(want) > 500
    assert len(set(want)) == len(want)
    assert len(set(got)) == len(got), "a trade was delivered twice"
    bus = [
        {
            k: v
            for k, v in json.loads((tmp_path / f"r{r}.stats.json").read_text())["stats"].items()
            if k.startswith("bus_")
        }
        for r in (1, 2)
    ]
    assert set(got) == set(want), (
        f"lost {len(set(want) - set(got))}, unexpected {len(set(got) - set(want))}; "
        f"consumer bus counters {bus}"
    )
    # both consumer runs took part: the second resumed where the first stopped
    assert consumed[0]["trades"] and consumed[1]["trades"]

    final = consumed[1]["books"]
    for c in collected:
        for sym, book in c["books"].items():
            assert sym in final, f"{sym}: no book rebuilt from the bus"
            assert final[sym]["seq"] == book["seq"], sym
            assert final[sym]["bids"] == book["bids"], sym
            assert final[sym]["asks"] == book["asks"], sym
            assert book["bids"] and book["asks"]
    # the collectors' book statuses reached the consumer
    kinds = {s["kind"] for c in consumed for s in c["statuses"]}
    assert "live" in kinds or "recovered" in kinds


def test_in_process_publish_and_consume(tmp_path: Path) -> None:
    """The Python API end to end on a one-node server: counters, books, statuses, errors."""
    cluster = NatsCluster(tmp_path / "nats", size=1, binary=require_nats_server())
    cluster.start()
    try:
        with Simulator(symbols=["BTCUSDT", "ETHUSDT"], rate=400.0, seed=5) as sim:
            pub = Runtime()
            pub.subscribe(
                "binance", ["BTCUSDT", "ETHUSDT"], ws_url=sim.ws_url, rest_url=sim.rest_url
            )
            pub.publish_jetstream(
                cluster.urls,
                "T1",
                snapshot_interval_s=0.5,
                max_age_s=3600.0,
                max_msgs=1_000_000,
                max_bytes=1 << 30,
                duplicate_window_s=60.0,
            )
            pub.run(duration=3.0)
            stats = pub.stats()
            assert stats["bus_published"] > 100
            assert stats["bus_acked"] == stats["bus_published"]
            assert stats["bus_publish_lost"] == 0
            metrics = pub.metrics_text()
            assert f"xtrader_bus_acked_total {stats['bus_acked']}" in metrics
            assert "# TYPE xtrader_bus_inflight gauge" in metrics
            pub_books = {b.symbol: (b.bids(), b.asks(), b.seq) for b in pub.books()}

        async def config(js: Any) -> Any:
            return (await js.stream_info("T1")).config

        # the stream was created with the configured retention
        made = asyncio.run(_js_call(cluster.urls, config))
        assert made.subjects == ["xt.>"]
        assert (made.max_age, made.max_msgs, made.max_bytes) == (3600.0, 1_000_000, 1 << 30)
        assert made.duplicate_window == 60.0

        sub = Runtime()
        sub.consume_jetstream(cluster.urls, "T1", durable="inproc", gap_timeout_s=0.5)
        # run until every published message arrived (bounded), not for a fixed time that the
        # connect and consumer set-up eat into on a loaded machine
        failure: list[BaseException] = []

        def consume() -> None:
            try:
                sub.run(duration=60.0)
            except BaseException as exc:  # reported below, not lost in the thread
                failure.append(exc)

        thread = threading.Thread(target=consume, name="consumer", daemon=True)
        thread.start()
        try:
            wait_until(
                lambda: (
                    bool(failure) or sub.stats().get("bus_received", 0) >= stats["bus_published"]
                ),
                30,
                "the consumer to receive every published message",
            )
            time.sleep(1.0)  # past the 0.5 s gap timeout: a late duplicate or gap would show
        finally:
            sub.stop()
            thread.join(20)
        assert not thread.is_alive() and not failure, failure
        got = sub.stats()
        assert got["bus_received"] == stats["bus_published"]
        assert got["bus_gaps"] == 0
        assert got["bus_duplicates"] == 0
        sub_books = {b.symbol: (b.bids(), b.asks(), b.seq) for b in sub.books()}
        assert sub_books == pub_books
        # rebuilt books are in the consumer's metrics like subscribed ones
        assert 'xtrader_book_state{exchange="binance",symbol="BTC-USDT"} 1' in sub.metrics_text()

        # a stream that does not exist is named in the error
        bad = Runtime()
        bad.consume_jetstream(cluster.urls, "NOPE", durable="x")
        with pytest.raises(XtraderError, match="NOPE"):
            bad.run(duration=1.0)
    finally:
        cluster.stop()


def test_unreachable_servers_fail_with_the_address(tmp_path: Path) -> None:
    rt = Runtime()
    rt.subscribe("binance", ["BTCUSDT"], ws_url="ws://127.0.0.1:9", rest_url="http://127.0.0.1:9")
    rt.publish_jetstream(["nats://127.0.0.1:9"], "XT")
    with pytest.raises(XtraderError, match=re.escape("127.0.0.1:9")):
        rt.run(duration=1.0)
