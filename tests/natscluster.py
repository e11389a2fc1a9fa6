"""A real NATS JetStream cluster on loopback for tests (Debian package ``nats-server``).

`NatsCluster` writes one configuration per node (``server_name`` n1..nN, cluster ``xt``,
JetStream with its own ``store_dir`` under the test's temporary folder, routes to every other
node, free 127.0.0.1 client/cluster/monitoring ports), starts the ``nats-server`` processes
and waits, bounded in time, until every node is healthy and agrees on a JetStream meta
leader. Nodes can be killed (SIGKILL) and restarted with their data, as a crash would.

Used through the ``nats_cluster`` fixture of conftest.py::

    def test_x(nats_cluster: NatsCluster) -> None:
        nc = await nats.connect(servers=nats_cluster.urls)
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from ports import free_port

__all__ = ["NATS_SERVER_DEFAULT", "NatsCluster", "NatsClusterError", "nats_server_binary"]

NATS_SERVER_DEFAULT = "/usr/sbin/nats-server"
"""Where the Debian package installs the server (/usr/sbin is not on every user's PATH)."""

START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0
START_ATTEMPTS = 3
"""Starts tried when a node finds one of its ports taken (new ports each time)."""


class NatsClusterError(RuntimeError):
    """The cluster did not come up (the message carries the tail of each node's log)."""


def nats_server_binary() -> str | None:
    """``$XTRADER_NATS_SERVER``, else ``nats-server`` on PATH, else /usr/sbin/nats-server;
    None when none of them exists."""
    env = os.environ.get("XTRADER_NATS_SERVER")
    if env:
        return env if Path(env).is_file() else None
    found = shutil.which("nats-server")
    if found:
        return found
    return NATS_SERVER_DEFAULT if Path(NATS_SERVER_DEFAULT).is_file() else None


@dataclass
class _Node:
    name: str
    client_port: int
    cluster_port: int
    http_port: int
    store_dir: Path
    config: Path
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    log_file: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.client_port}"

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class NatsCluster:
    """`size` ``nats-server`` processes clustered on loopback, JetStream enabled.

    Args:
        tmp_path: Folder for the configurations, logs and JetStream stores (one per node).
        size: Number of nodes (3 gives a quorum that survives one node down).
        binary: The ``nats-server`` executable (default: `nats_server_binary`).

    Raises:
        NatsClusterError: When no ``nats-server`` binary is found.
    """

    def __init__(self, tmp_path: Path, size: int = 3, binary: str | None = None) -> None:
        if size < 1:
            raise ValueError(f"size must be at least 1, got {size}")
        found = binary or nats_server_binary()
        if found is None:
            raise NatsClusterError("nats-server not found (Debian package nats-server)")
        self.binary = found
        self.size = size
        self.root = Path(tmp_path)
        self.root.mkdir(parents=True, exist_ok=True)
        self.nodes: list[_Node] = []
        for i in range(size):
            name = f"n{i + 1}"
            self.nodes.append(
                _Node(
                    name=name,
                    client_port=free_port(),
                    cluster_port=free_port(),
                    http_port=free_port(),
                    store_dir=self.root / name / "store",  # the server adds /jetstream
                    config=self.root / name / "nats.conf",
                    log=self.root / name / "nats.log",
                )
            )
        for node in self.nodes:
            self._write_config(node)

    # ---------------------------------------------------------------------------- config

    def _write_config(self, node: _Node) -> None:
        node.store_dir.mkdir(parents=True, exist_ok=True)
        routes = "\n".join(
            f"    nats-route://127.0.0.1:{other.cluster_port}"
            for other in self.nodes
            if other is not node
        )
        cluster = ""
        if self.size > 1:
            cluster = (
                "cluster {\n"
                "  name: xt\n"
                f"  listen: 127.0.0.1:{node.cluster_port}\n"
                "  connect_retries: 120\n"
                f"  routes: [\n{routes}\n  ]\n"
                "}\n"
            )
        node.config.write_text(
            f"server_name: {node.name}\n"
            f"listen: 127.0.0.1:{node.client_port}\n"
            f"http: 127.0.0.1:{node.http_port}\n"
            "jetstream {\n"
            f"  store_dir: {json.dumps(str(node.store_dir))}\n"
            "  max_memory_store: 64MB\n"
            "  max_file_store: 1GB\n"
            "}\n" + cluster
        )

    # ---------------------------------------------------------------------------- properties

    @property
    def urls(self) -> list[str]:
        """Client URLs of every node (``nats://127.0.0.1:port``), alive or not."""
        return [node.url for node in self.nodes]

    def url(self, i: int) -> str:
        """Client URL of node `i` (0-based)."""
        return self.nodes[i].url

    def alive(self, i: int) -> bool:
        """Whether node `i`'s process runs."""
        return self.nodes[i].alive

    def log_tail(self, i: int, lines: int = 20) -> str:
        """The last lines of node `i`'s log."""
        try:
            text = self.nodes[i].log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    # ---------------------------------------------------------------------------- lifecycle

    def start(self, timeout: float = START_TIMEOUT_S) -> None:
        """Start every node and wait until the cluster has a JetStream meta leader.

        Raises:
            NatsClusterError: After `timeout` seconds, or when a node exits early.
        """
        for attempt in range(1, START_ATTEMPTS + 1):
            try:
                for node in self.nodes:
                    self._spawn(node)
                self.wait_ready(timeout)
                return
            except NatsClusterError as exc:
                self.stop()
                if "address already in use" not in str(exc) or attempt == START_ATTEMPTS:
                    raise
                # another process took a port after free_port() checked it: new ports
                for node in self.nodes:
                    node.client_port, node.cluster_port, node.http_port = (
                        free_port(),
                        free_port(),
                        free_port(),
                    )
                for node in self.nodes:
                    self._write_config(node)
            except BaseException:
                self.stop()
                raise

    def _spawn(self, node: _Node) -> None:
        if node.alive:
            return
        node.log_file = node.log.open("ab")
        node.proc = subprocess.Popen(
            [self.binary, "-c", str(node.config)],
            stdin=subprocess.DEVNULL,
            stdout=node.log_file,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = START_TIMEOUT_S) -> None:
        """Wait until every live node is healthy and they agree on a meta leader.

        Raises:
            NatsClusterError: After `timeout` seconds, or when a node exits early.
        """
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        while True:
            for i, node in enumerate(self.nodes):
                if node.proc is not None and node.proc.poll() is not None:
                    raise NatsClusterError(
                        f"{node.name} exited with code {node.proc.returncode}:\n" + self.log_tail(i)
                    )
            ready, last = self._ready()
            if ready:
                return
            if time.monotonic() >= deadline:
                break
            time.sleep(0.1)
        logs = "\n".join(f"--- {n.name}\n{self.log_tail(i)}" for i, n in enumerate(self.nodes))
        raise NatsClusterError(f"cluster not ready after {timeout:.0f} s ({last}):\n{logs}")

    def _ready(self) -> tuple[bool, str]:
        leaders = set()
        for node in self.nodes:
            if not node.alive:
                continue
            health = self._http(node, "/healthz")
            if health is None or health.get("status") != "ok":
                return False, f"{node.name} /healthz: {health}"
            jsz = self._http(node, "/jsz")
            meta = (jsz or {}).get("meta_cluster") or {}
            leader = meta.get("leader") if self.size > 1 else node.name
            if not leader:
                return False, f"{node.name}: no JetStream meta leader yet"
            leaders.add(leader)
        if len(leaders) != 1:
            return False, f"nodes disagree on the meta leader: {sorted(leaders)}"
        leader = leaders.pop()
        if not any(node.alive and node.name == leader for node in self.nodes):
            return False, f"the meta leader {leader} is down (not re-elected yet)"
        return True, "ready"

    @staticmethod
    def _http(node: _Node, path: str) -> dict[str, Any] | None:
        url = f"http://127.0.0.1:{node.http_port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                body = json.load(resp)
        except urllib.error.HTTPError as exc:  # /healthz answers 503 with a JSON body
            try:
                body = json.load(exc)
            except ValueError:
                return None
            finally:
                exc.close()
        except (OSError, ValueError):
            return None
        return body if isinstance(body, dict) else None

    def meta_leader(self) -> str | None:
        """Server name of the JetStream meta leader, as a live node sees it."""
        for node in self.nodes:
            if node.alive:
                meta = (self._http(node, "/jsz") or {}).get("meta_cluster") or {}
                leader = meta.get("leader")
                if leader:
                    return str(leader)
        return None

    def index(self, name: str) -> int:
        """0-based index of the node called `name` (``n1`` -> 0)."""
        for i, node in enumerate(self.nodes):
            if node.name == name:
                return i
        raise KeyError(name)

    def kill(self, i: int) -> None:
        """SIGKILL node `i` (a crash: no goodbye to the cluster) and reap it."""
        node = self.nodes[i]
        if node.proc is not None and node.proc.poll() is None:
            node.proc.send_signal(signal.SIGKILL)
            node.proc.wait(timeout=STOP_TIMEOUT_S)
        node.proc = None  # down on purpose: wait_ready skips it
        self._close_log(node)

    def restart(self, i: int, timeout: float = START_TIMEOUT_S) -> None:
        """Start node `i` again (same ports and store, so it rejoins with its data) and wait
        until the cluster is ready. A node still running is killed first."""
        node = self.nodes[i]
        self.kill(i)
        self._spawn(node)
        self.wait_ready(timeout)

    def stop(self) -> None:
        """Terminate every node (SIGTERM), wait a bounded time, SIGKILL the stragglers."""
        for node in self.nodes:
            if node.proc is not None and node.proc.poll() is None:
                node.proc.terminate()
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for node in self.nodes:
            if node.proc is None:
                continue
            try:
                node.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                node.proc.kill()
                node.proc.wait(timeout=STOP_TIMEOUT_S)
            self._close_log(node)

    @staticmethod
    def _close_log(node: _Node) -> None:
        if node.log_file is not None:
            node.log_file.close()
            node.log_file = None

    def __enter__(self) -> NatsCluster:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
