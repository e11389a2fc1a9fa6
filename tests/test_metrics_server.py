"""The metrics server stays responsive and bounded under many idle and slow connections."""

from __future__ import annotations

import resource
import socket
import time
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from xtrader import _core

IDLE = 1000
SLOW = 1000
BLOCKED_S = 1.0
"""An answer this slow means the server waited on the slow clients (their header timeout is 2 s)."""


def _rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _get(url: str) -> tuple[float, str]:
    t0 = time.perf_counter()
    with urllib.request.urlopen(url, timeout=5) as r:
        body = r.read().decode()
    return time.perf_counter() - t0, body


def test_metrics_server_answers_under_2000_idle_and_slow_connections() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = IDLE + SLOW + 512
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard), hard))
    engine = _core.Engine(metrics_addr="127.0.0.1:0")
    engine.start()
    socks: list[socket.socket] = []
    try:
        addr = engine.metrics_addr
        assert addr is not None
        host, port = addr.rsplit(":", 1)
        url = f"http://{addr}/metrics"
        _get(url)  # warm
        rss_before = _rss_kib()
        for i in range(IDLE + SLOW):
            s = socket.create_connection((host, int(port)), timeout=5)
            if i >= IDLE:
                s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # never finishes the headers
            socks.append(s)
        latencies = [_get(url)[0] for _ in range(5)]
        # a server held up by the slow clients would answer only after their 2 s header
        # timeout; 1 s leaves room for a loaded machine
        assert max(latencies) < BLOCKED_S, latencies
        # a slow client is cut by the header read timeout (2 s), not held forever
        slow = socks[-1]
        slow.settimeout(6)
        assert slow.recv(4096) in (b"",) or slow.recv(4096) == b""
        # memory stays bounded: 2000 connections cost well under 64 MiB
        assert _rss_kib() - rss_before < 64 * 1024
        elapsed, body = _get(url)
        assert elapsed < BLOCKED_S
        names = {f.name for f in text_string_to_metric_families(body)}
        assert "xtrader_queue_depth" in names
    finally:
        for s in socks:
            s.close()
        engine.stop()


def test_health_and_ready_endpoints() -> None:
    engine = _core.Engine(metrics_addr="127.0.0.1:0")
    engine.start()
    try:
        _, body = _get(f"http://{engine.metrics_addr}/health")
        assert body == "ok\n"
        try:
            urllib.request.urlopen(f"http://{engine.metrics_addr}/ready", timeout=5)
            raise AssertionError("ready without any live book")
        except urllib.error.HTTPError as e:
            assert e.code == 503
    finally:
        engine.stop()
