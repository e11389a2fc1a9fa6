"""The NATS cluster harness itself (tests/natscluster.py): an R3 stream keeps every message
through the loss of its leader node, and the node rejoins after a restart."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import nats
from nats.aio.client import Client
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import StorageType, StreamConfig
from nats.js.errors import APIError, NoStreamResponseError, ServiceUnavailableError

from natscluster import NatsCluster

STREAM = "HARNESS"
RETRY_S = 30.0
"""How long one operation may keep failing while the cluster elects new leaders."""

_T = TypeVar("_T")
_TRANSIENT = (
    NatsTimeoutError,
    NoRespondersError,
    NoStreamResponseError,
    ServiceUnavailableError,
    APIError,
)


async def _retry(what: str, op: Callable[[], Awaitable[_T]]) -> _T:
    """`op` until it succeeds, for at most RETRY_S (a leader election in progress)."""
    deadline = time.monotonic() + RETRY_S
    while True:
        try:
            return await op()
        except _TRANSIENT as exc:
            if time.monotonic() >= deadline:
                raise AssertionError(f"{what}: still failing after {RETRY_S:.0f} s") from exc
            await asyncio.sleep(0.2)


async def _connect(cluster: NatsCluster) -> Client:
    return await nats.connect(
        servers=cluster.urls,
        connect_timeout=2,
        reconnect_time_wait=0.2,
        max_reconnect_attempts=-1,
        allow_reconnect=True,
    )


async def _publish(js: JetStreamContext, start: int, count: int) -> None:
    for i in range(start, start + count):

        async def once(i: int = i) -> object:
            # the message id makes a retried publish that did land a duplicate JetStream drops
            return await js.publish(
                f"h.{i % 7}", str(i).encode(), stream=STREAM, headers={"Nats-Msg-Id": f"m{i}"}
            )

        await _retry(f"publish {i}", once)


async def _read_all(js: JetStreamContext, expected: int) -> list[tuple[int, int]]:
    """(stream sequence, payload) of every message, through an ephemeral pull consumer."""
    sub = await _retry("pull subscribe", lambda: js.pull_subscribe("h.>", stream=STREAM))
    out: list[tuple[int, int]] = []
    deadline = time.monotonic() + RETRY_S
    while len(out) < expected and time.monotonic() < deadline:
        try:
            msgs = await sub.fetch(500, timeout=2)
        except NatsTimeoutError:
            continue
        for msg in msgs:
            out.append((msg.metadata.sequence.stream, int(msg.data)))
            await msg.ack()
    await sub.unsubscribe()
    return out


async def _scenario(cluster: NatsCluster) -> None:
    nc = await _connect(cluster)
    try:
        js = nc.jetstream(timeout=5)
        config = StreamConfig(
            name=STREAM,
            subjects=["h.>"],
            num_replicas=3,
            storage=StorageType.FILE,
            duplicate_window=60.0,
        )
        await _retry("add_stream", lambda: js.add_stream(config))
        await _publish(js, 0, 1000)
        info = await js.stream_info(STREAM)
        assert info.state.messages == 1000
        assert info.cluster is not None and info.cluster.leader
        assert len(info.cluster.replicas or []) == 2, info.cluster

        victim = cluster.index(info.cluster.leader)  # the stream leader: forces an election
        cluster.kill(victim)
        assert not cluster.alive(victim)
        await _publish(js, 1000, 1000)

        got = await _read_all(js, 2000)
        assert [seq for seq, _ in got] == list(range(1, 2001)), "stream sequences with holes"
        assert sorted(payload for _, payload in got) == list(range(2000)), "lost or duplicated"
        info = await _retry("stream_info", lambda: js.stream_info(STREAM))
        assert info.state.messages == 2000
        assert info.cluster is not None and info.cluster.leader != f"n{victim + 1}"
    finally:
        await nc.close()

    cluster.restart(victim)  # rejoins with its store and catches up
    assert cluster.alive(victim)


def test_nats_cluster_r3_stream_survives_a_node_kill(nats_cluster: NatsCluster) -> None:
    assert len(nats_cluster.urls) == 3
    assert all(u.startswith("nats://127.0.0.1:") for u in nats_cluster.urls)
    assert nats_cluster.meta_leader() in {"n1", "n2", "n3"}
    asyncio.run(asyncio.wait_for(_scenario(nats_cluster), timeout=100))
