"""JetStream bus load: events/s from a collector through NATS JetStream to a consumer, and the
latency the bus adds (issue 9).

Everything on 127.0.0.1, started and stopped here: a NATS cluster of ``--nodes`` nodes
(tests/natscluster.py: real ``nats-server`` processes, JetStream stores in a temporary
folder; stream replicas = nodes); per phase, a collector *process*
(``python -m xtrader run collect.toml``: the embedded simulator at ``--rate`` messages/s over
``--symbols`` Binance symbols, the Binance connector, ``[jetstream]`` publishing every event,
``snapshot_interval_s = 5``) and, in this process, a consumer ``Runtime`` with
``consume_jetstream``. Both run `bus_probe.BusProbe`: at each trade and quote callback entry it
takes ``time.time_ns() - ts_recv``. ``ts_recv`` is the collector's socket-read stamp (carried
on the bus), so the consumer's figure is collector socket read -> consumer callback, and the
collector's is its own socket read -> callback; both processes share the clock.

1. Fixed rates (``--rates``): the consumer runs ``--seconds``; its first ``--warmup`` seconds
   (start-up, the backlog published before it attached) are left out. Over the rest (the
   window, also applied to the collector's samples): events/s at both ends, p50/p95/p99/p99.9
   of both latencies, and the added latency (consumer percentile - collector percentile).
2. Catch-up: a collector fills a fresh stream at ``--fill-rate`` for ``--fill-seconds`` and
   stops; a fresh durable consumer then drains the N stored messages: events/s and
   messages/s from its first to its last callback (bus -> consumer throughput, with a
   strategy taking every event).

Also reported: the consumer's ``bus_received``, ``bus_duplicates``, ``bus_gaps``,
``bus_redelivered`` (``rt.stats()``), the collector's ``bus_published``, ``bus_acked``,
``bus_publish_failures`` (``--stats-json`` of ``run``), and CPU (cores) of the consumer, the
collector and the NATS nodes over the consumer's run (Linux ``/proc``).

    python benches/jetstream_bus.py --nodes 3 --seconds 8 --rates 2000 10000 \
        --json target/bench/jetstream.json
    python benches/jetstream_bus.py --quick --nodes 1      # smoke run
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

BENCHES = Path(__file__).resolve().parent
TESTS = BENCHES.parent / "tests"
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))
if str(BENCHES) not in sys.path:
    sys.path.insert(0, str(BENCHES))

from bus_probe import BusProbe  # noqa: E402
from procstat import cpu_seconds  # noqa: E402

import xtrader as xt  # noqa: E402
from natscluster import NatsCluster, nats_server_binary  # noqa: E402

PCTS = ("p50", "p95", "p99", "p999")
BUS_CONSUMER_KEYS = (
    "bus_received",
    "bus_events",
    "bus_duplicates",
    "bus_gaps",
    "bus_redelivered",
    "bus_reordered",
    "bus_decode_errors",
    "bus_book_waiting",
    "bus_refreshes_used",
)
BUS_COLLECTOR_KEYS = (
    "messages",
    "gaps",
    "resyncs",
    "errors",
    "bus_published",
    "bus_acked",
    "bus_publish_failures",
    "bus_publish_retries",
    "bus_publish_duplicates",
    "bus_publish_lost",
    "bus_refresh_snapshots",
)
STREAM_WAIT_S = 60.0
COLLECTOR_STOP_S = 40.0
"""SIGTERM -> exit: drain, the bus close (bounded at 10 s by the runtime), on_stop."""


def symbols(n: int) -> list[str]:
    """`n` simulated Binance spot symbols (``S0USDT``..)."""
    return [f"S{i}USDT" for i in range(n)]


def toml_list(items: Sequence[str]) -> str:
    return "[" + ", ".join(json.dumps(i) for i in items) + "]"


def collector_config(
    path: Path,
    *,
    urls: Sequence[str],
    stream: str,
    prefix: str,
    replicas: int,
    rate: float,
    syms: Sequence[str],
    probe_out: Path,
    window: Path,
    warmup_s: float,
    samples: int,
) -> Path:
    """Write a collector configuration: simulator, Binance feed, JetStream, the probe."""
    params = {
        "out": str(probe_out),
        "window": str(window),
        "warmup_s": warmup_s,
        "samples": samples,
    }
    inline = ", ".join(f"{k} = {json.dumps(v)}" for k, v in params.items())
    path.write_text(
        "[runtime]\n"
        "queue_capacity = 65536\n"
        'overflow = "block"\n'
        "worker_threads = 2\n"
        "\n[sim]\n"
        f"symbols = {toml_list(syms)}\n"
        f"rate = {float(rate)!r}\n"
        "seed = 7\n"
        "port = 0\n"
        "\n[[feeds]]\n"
        'exchange = "binance"\n'
        f"symbols = {toml_list(syms)}\n"
        'channels = ["trades", "book", "bbo"]\n'
        'ws_url = "sim"\n'
        'rest_url = "sim"\n'
        "\n[metrics]\n"
        'listen = ""\n'
        "\n[jetstream]\n"
        f"servers = {toml_list(urls)}\n"
        f"stream = {json.dumps(stream)}\n"
        f"subject_prefix = {json.dumps(prefix)}\n"
        f"replicas = {replicas}\n"
        "snapshot_interval_s = 5.0\n"
        "\n[[strategies]]\n"
        'path = "bus_probe:BusProbe"\n'
        f"params = {{ {inline} }}\n"
    )
    return path


class Collector:
    """``python -m xtrader run CONFIG --no-display --stats-json FILE`` in a child process."""

    def __init__(self, config: Path, stats: Path, log: Path) -> None:
        self.config, self.stats, self.log = config, stats, log
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(BENCHES), env.get("PYTHONPATH")) if p)
        argv = [sys.executable, "-m", "xtrader", "run", str(config), "--no-display"]
        with log.open("wb") as out:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(
                [*argv, "--stats-json", str(stats)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=config.parent,
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, n: int = 30) -> str:
        try:
            lines = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-n:])

    def stop(self, timeout: float = COLLECTOR_STOP_S) -> int:
        """SIGTERM, wait at most `timeout` s (then SIGKILL); the exit code."""
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            return -9

    def notes(self, limit: int = 12) -> list[str]:
        """Warning, error and traceback lines of the collector's log."""
        try:
            lines = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return []
        marks = ("WARNING", "ERROR", "CRITICAL", "Traceback", "error:", "panicked")
        return [line for line in lines if any(m in line for m in marks)][:limit]


class CpuMeter:
    """CPU cores used by a set of processes between `start` and `stop`."""

    def __init__(self, pids: dict[str, list[int]]) -> None:
        self.pids = pids
        self.t0 = 0.0
        self.c0: dict[str, float] = {}
        self.result: dict[str, float | None] = {}

    def _read(self) -> dict[str, float]:
        out = {}
        for name, pids in self.pids.items():
            values = [cpu_seconds(p) for p in pids]
            if all(v is not None for v in values):
                out[name] = sum(v for v in values if v is not None)
        return out

    def start(self) -> None:
        self.t0 = time.perf_counter()
        self.c0 = self._read()

    def stop(self) -> dict[str, float | None]:
        wall = time.perf_counter() - self.t0
        c1 = self._read()
        self.result = {
            name: (round((c1[name] - self.c0[name]) / wall, 2) if name in c1 else None)
            for name in self.c0
        }
        return self.result


# ------------------------------------------------------------------------------ NATS state


def node_stream_state(node: Any, stream: str) -> tuple[bool, dict[str, Any]] | None:
    """(whether `node` leads `stream`, the stream's state on it: ``messages``, ``bytes``...)
    from the node's monitoring endpoint ``/jsz``; None when the node has no such stream."""
    if not node.alive:
        return None
    url = f"http://127.0.0.1:{node.http_port}/jsz?streams=true"
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            body = json.load(resp)
    except (OSError, ValueError):
        return None
    for account in body.get("account_details") or []:
        for detail in account.get("stream_detail") or []:
            if detail.get("name") == stream:
                leader = (detail.get("cluster") or {}).get("leader") == node.name
                return leader, dict(detail.get("state") or {})
    return None


def stream_state(cluster: NatsCluster, stream: str) -> dict[str, Any] | None:
    """The stream's state as its leader reports it (else the node holding the most
    messages); None when no node has it."""
    found = [f for f in (node_stream_state(n, stream) for n in cluster.nodes) if f is not None]
    if not found:
        return None
    found.sort(key=lambda f: (not f[0], -int(f[1].get("messages", 0))))
    return found[0][1]


def wait_stream(
    cluster: NatsCluster, stream: str, collector: Collector, timeout: float = STREAM_WAIT_S
) -> None:
    """Wait until the collector created `stream` and stored a message in it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not collector.alive():
            raise RuntimeError(
                f"collector exited with code {collector.proc.returncode}:\n{collector.log_tail()}"
            )
        state = stream_state(cluster, stream)
        if state and int(state.get("messages", 0)) > 0:
            return
        time.sleep(0.1)
    raise RuntimeError(f"stream {stream} not filled after {timeout:.0f} s:\n{collector.log_tail()}")


def wait_stream_settled(cluster: NatsCluster, stream: str, timeout: float = 15.0) -> int:
    """Messages in `stream` once every live node reports the same count (replicas caught up)
    twice in a row, or the leader's count after `timeout` s."""
    deadline = time.monotonic() + timeout
    last: tuple[int, ...] = ()
    while time.monotonic() < deadline:
        counts = []
        for node in (n for n in cluster.nodes if n.alive):
            found = node_stream_state(node, stream)
            counts.append(int(found[1].get("messages", 0)) if found else -1)
        now = tuple(counts)
        if len(set(now)) == 1 and now == last and now[0] >= 0:
            return now[0]
        last = now
        time.sleep(0.25)
    state = stream_state(cluster, stream)
    return int(state.get("messages", 0)) if state else 0


# ------------------------------------------------------------------------------ phases


def read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def pick(stats: dict[str, Any], keys: Sequence[str]) -> dict[str, int]:
    return {k: int(stats.get(k, 0)) for k in keys}


def start_collector(
    work: Path,
    name: str,
    cluster: NatsCluster,
    rate: float,
    args: argparse.Namespace,
) -> tuple[Collector, str, str, Path, Path]:
    """Start a collector publishing into a fresh stream ``XT-<name>`` (subjects
    ``xt_<name>.>``); returns it, the stream, the subject prefix, its probe file and the
    window file it reads at stop."""
    stream, prefix = f"XT-{name}", f"xt_{name}"
    folder = work / name
    folder.mkdir(parents=True, exist_ok=True)
    probe_out, window = folder / "collector_probe.json", folder / "window.json"
    config = collector_config(
        folder / "collect.toml",
        urls=cluster.urls,
        stream=stream,
        prefix=prefix,
        replicas=args.nodes,
        rate=rate,
        syms=symbols(args.symbols),
        probe_out=probe_out,
        window=window,
        warmup_s=args.warmup,
        samples=args.samples,
    )
    collector = Collector(config, folder / "collector_stats.json", folder / "collector.log")
    return collector, stream, prefix, probe_out, window


def stop_collector(collector: Collector) -> dict[str, Any]:
    code = collector.stop()
    return {"exit_code": code, "log_notes": collector.notes()}


def collector_outputs(
    collector: Collector, probe_out: Path
) -> tuple[dict[str, Any], dict[str, Any]]:
    """After the collector stopped: its probe's figures and its runtime's final stats."""
    return read_json(probe_out), read_json(collector.stats).get("stats", {})


def fixed_rate(
    cluster: NatsCluster, work: Path, rate: float, args: argparse.Namespace, index: int = 0
) -> dict[str, Any]:
    """Phase 1 at one rate: collector process -> JetStream -> consumer here (stream
    ``XT-r<rate>-<index>``)."""
    name = f"r{int(rate)}-{index}"
    collector, stream, prefix, probe_out, window = start_collector(work, name, cluster, rate, args)
    try:
        wait_stream(cluster, stream, collector)
        rt = xt.Runtime()
        rt.consume_jetstream(
            cluster.urls, stream, subject=f"{prefix}.>", durable=f"bench-{name}", batch=args.batch
        )
        probe = BusProbe(warmup_s=args.warmup, samples=args.samples)
        rt.add_strategy(probe)
        meter = CpuMeter(
            {
                "consumer": [os.getpid()],
                "collector": [collector.pid],
                "nats": [n.proc.pid for n in cluster.nodes if n.proc is not None],
            }
        )
        meter.start()
        rt.run(duration=args.seconds)
        cpu = meter.stop()
        stats = rt.stats()
        start_ns, end_ns = probe.default_window()
        consumer = probe.summary(start_ns, end_ns)
        window.write_text(json.dumps({"start_ns": start_ns, "end_ns": end_ns}))
        alive = collector.alive()
        stopped = stop_collector(collector)
    finally:
        if collector.alive():
            collector.stop(5)
    produced, cstats = collector_outputs(collector, probe_out)
    row: dict[str, Any] = {
        "rate": rate,
        "nodes": args.nodes,
        "symbols": args.symbols,
        "stream": stream,
        "window_s": consumer["window_s"],
        "consumer_events_per_s": consumer["events_per_s"],
        "collector_events_per_s": produced.get("events_per_s"),
        "consumer_messages_per_s": consumer["bus_received_per_s"],
        "consumer": consumer,
        "collector": produced,
        "consumer_bus": pick(stats, BUS_CONSUMER_KEYS),
        "collector_bus": pick(cstats, BUS_COLLECTOR_KEYS),
        "collector_alive_at_end": alive,
        "collector_exit": stopped,
        "cpu_cores": cpu,
    }
    for p in PCTS:
        c, o = consumer.get(f"{p}_us"), produced.get(f"{p}_us")
        row[f"consumer_{p}_us"] = c
        row[f"collector_{p}_us"] = o
        row[f"added_{p}_us"] = round(c - o, 1) if c is not None and o is not None else None
    return row


def catch_up(cluster: NatsCluster, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Phase 2: fill a stream, stop the collector, drain it with a fresh durable consumer."""
    collector, stream, prefix, probe_out, _ = start_collector(
        work, "fill", cluster, args.fill_rate, args
    )
    try:
        wait_stream(cluster, stream, collector)
        t0 = time.monotonic()
        while time.monotonic() - t0 < args.fill_seconds and collector.alive():
            time.sleep(0.1)
        alive = collector.alive()
        stopped = stop_collector(collector)
    finally:
        if collector.alive():
            collector.stop(5)
    produced, cstats = collector_outputs(collector, probe_out)
    messages = wait_stream_settled(cluster, stream)
    state = stream_state(cluster, stream) or {}

    rt = xt.Runtime()
    rt.consume_jetstream(
        cluster.urls, stream, subject=f"{prefix}.>", durable="bench-catchup", batch=args.batch
    )
    probe = BusProbe(
        warmup_s=0.0, samples=args.samples, stop_after_messages=max(1, messages), stall_s=10.0
    )
    rt.add_strategy(probe)
    meter = CpuMeter(
        {
            "consumer": [os.getpid()],
            "nats": [n.proc.pid for n in cluster.nodes if n.proc is not None],
        }
    )
    meter.start()
    t_run = time.perf_counter()
    rt.run(duration=args.catchup_timeout)
    run_s = time.perf_counter() - t_run
    cpu = meter.stop()
    stats = rt.stats()
    received = int(stats.get("bus_received", 0))
    events = sum(
        int(stats.get(k, 0))
        for k in ("dispatched_trades", "dispatched_bbo", "dispatched_book_updates")
    )
    elapsed = (probe.last_event_ns - probe.first_event_ns) / 1e9
    # from on_start (connected, durable consumer created) to the last callback
    from_start = (probe.last_event_ns - probe.start_ns) / 1e9 if probe.last_event_ns else 0.0
    return {
        "fill_rate": args.fill_rate,
        "fill_seconds": args.fill_seconds,
        "nodes": args.nodes,
        "symbols": args.symbols,
        "stream": stream,
        "messages": messages,
        "stream_bytes": int(state.get("bytes", 0)),
        "bytes_per_message": round(int(state.get("bytes", 0)) / messages, 1) if messages else 0,
        "received": received,
        "complete": received >= messages > 0,
        "events": events,
        "drain_s": round(elapsed, 3),
        "run_s": round(run_s, 3),
        "events_per_s": round(events / elapsed) if elapsed > 0 else 0,
        "messages_per_s": round(received / elapsed) if elapsed > 0 else 0,
        "from_start_s": round(from_start, 3),
        "messages_per_s_from_start": round(received / from_start) if from_start > 0 else 0,
        "consumer_bus": pick(stats, BUS_CONSUMER_KEYS),
        "collector_events_per_s": produced.get("events_per_s"),
        "collector_bus": pick(cstats, BUS_COLLECTOR_KEYS),
        "collector_alive_at_end": alive,
        "collector_exit": stopped,
        "cpu_cores": cpu,
    }


# ------------------------------------------------------------------------------ output


def _us(v: Any) -> str:
    return "-" if v is None else f"{v:,.1f}"


def _n(v: Any) -> str:
    return "-" if v is None else f"{v:,.0f}"


def _quad(row: dict[str, Any], who: str) -> str:
    return " / ".join(_us(row.get(f"{who}_{p}_us")) for p in PCTS)


FIXED_HEAD = (
    "| nodes | rate (msg/s) | consumer events/s | collector events/s "
    "| consumer p50 / p95 / p99 / p99.9 µs | collector p50 / p95 / p99 / p99.9 µs "
    "| added p50 / p95 / p99 / p99.9 µs | gaps / dup / redelivered | publish failures "
    "| CPU consumer / collector / nats |\n|---|---|---|---|---|---|---|---|---|---|"
)


def fixed_line(r: dict[str, Any]) -> str:
    cb, pb, cpu = r["consumer_bus"], r["collector_bus"], r["cpu_cores"]
    return (
        f"| {r['nodes']} | {_n(r['rate'])} | {_n(r['consumer_events_per_s'])} "
        f"| {_n(r['collector_events_per_s'])} | {_quad(r, 'consumer')} "
        f"| {_quad(r, 'collector')} | {_quad(r, 'added')} "
        f"| {cb['bus_gaps']} / {cb['bus_duplicates']} / {cb['bus_redelivered']} "
        f"| {pb['bus_publish_failures']} "
        f"| {cpu.get('consumer')} / {cpu.get('collector')} / {cpu.get('nats')} |"
    )


CATCHUP_HEAD = (
    "| nodes | fill rate (msg/s) | fill: collector events/s | publish failures | messages "
    "| bytes/msg | drain s | messages/s | events/s | messages/s from start "
    "| gaps / dup / redelivered | CPU consumer / nats |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|"
)


def catchup_line(r: dict[str, Any]) -> str:
    cb, cpu = r["consumer_bus"], r["cpu_cores"]
    return (
        f"| {r['nodes']} | {_n(r['fill_rate'])} | {_n(r['collector_events_per_s'])} "
        f"| {r['collector_bus']['bus_publish_failures']} | {_n(r['messages'])} "
        f"| {r['bytes_per_message']} | {r['drain_s']} | {_n(r['messages_per_s'])} "
        f"| {_n(r['events_per_s'])} | {_n(r['messages_per_s_from_start'])} "
        f"| {cb['bus_gaps']} / {cb['bus_duplicates']} / {cb['bus_redelivered']} "
        f"| {cpu.get('consumer')} / {cpu.get('nats')} |"
    )


def machine() -> dict[str, Any]:
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return {
        "machine": f"{platform.machine()} {os.cpu_count()} cpu, {platform.platform()}",
        "python": platform.python_version(),
        "xtrader": xt.__version__,
        "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "load_average": [round(x, 2) for x in load],
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Every phase on one cluster started here (stopped at the end); the results."""
    binary = nats_server_binary()
    if binary is None:
        raise SystemExit(
            "nats-server not found (Debian package nats-server, or $XTRADER_NATS_SERVER)"
        )
    results: dict[str, Any] = {
        "config": {
            k: getattr(args, k)
            for k in (
                "nodes",
                "seconds",
                "warmup",
                "rates",
                "symbols",
                "batch",
                "fill_rate",
                "fill_seconds",
            )
        },
        "env": machine(),
        "fixed": [],
        "catchup": None,
    }
    with contextlib.ExitStack() as stack:
        if args.workdir:  # kept: configurations, logs, probe files, NATS stores
            Path(args.workdir).mkdir(parents=True, exist_ok=True)
            work = Path(tempfile.mkdtemp(prefix="xt-jsbus-", dir=args.workdir))
            print(f"work folder: {work}", flush=True)
        else:
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="xt-jsbus-")))
        cluster = NatsCluster(work / "nats", size=args.nodes, binary=binary)
        cluster.start()
        # the nodes' start-up (routes refused until every node listens) is not news
        offsets = [_log_size(node.log) for node in cluster.nodes]
        try:
            print(FIXED_HEAD, flush=True)
            for i, rate in enumerate(args.rates):
                row = fixed_rate(cluster, work, rate, args, i)
                results["fixed"].append(row)
                print(fixed_line(row), flush=True)
            if args.fill_rate > 0:
                print("\n" + CATCHUP_HEAD, flush=True)
                catch = catch_up(cluster, work, args)
                results["catchup"] = catch
                print(catchup_line(catch), flush=True)
        finally:
            notes = [n for i, off in enumerate(offsets) for n in _nats_notes(cluster, i, off)]
            results["nats_log_notes"] = notes[:20]
            cluster.stop()
    return results


def _log_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _nats_notes(cluster: NatsCluster, i: int, offset: int = 0) -> list[str]:
    """Error and warning lines (``[ERR]``, ``[WRN]``) of node `i`'s log after `offset`."""
    node = cluster.nodes[i]
    try:
        with node.log.open("rb") as fh:
            fh.seek(offset)
            lines = fh.read().decode(errors="replace").splitlines()
    except OSError:
        return []
    return [f"{node.name}: {ln}" for ln in lines if "[ERR]" in ln or "[WRN]" in ln]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nodes", type=int, choices=(1, 3), default=3, help="NATS nodes (replicas)")
    ap.add_argument("--seconds", type=float, default=8.0, help="consumer run per rate")
    ap.add_argument("--warmup", type=float, default=2.0, help="seconds left out at the start")
    ap.add_argument("--rates", type=float, nargs="+", default=[2000.0, 10000.0])
    ap.add_argument("--symbols", type=int, default=10, help="simulated Binance symbols")
    ap.add_argument("--batch", type=int, default=512, help="consumer messages per pull")
    ap.add_argument("--fill-rate", type=float, default=50000.0, help="0 = no catch-up phase")
    ap.add_argument("--fill-seconds", type=float, default=None, help="default: --seconds")
    ap.add_argument("--catchup-timeout", type=float, default=120.0, help="drain cap, s")
    ap.add_argument("--samples", type=int, default=1 << 21, help="latency ring size")
    ap.add_argument(
        "--workdir", default=None, help="keep the run's folder (logs, stores) under this one"
    )
    ap.add_argument("--json", default=None, help="write the results to this file")
    ap.add_argument("--quick", action="store_true", help="smoke run: 2 s, one low rate")
    args = ap.parse_args(argv)
    if args.quick:
        args.seconds, args.warmup, args.rates = 2.0, 0.5, [1000.0]
        args.fill_rate, args.fill_seconds = 2000.0, 2.0
    if args.fill_seconds is None:
        args.fill_seconds = args.seconds
    if not args.seconds > args.warmup >= 0:
        ap.error("--seconds must exceed --warmup")
    if any(r <= 0 for r in args.rates):
        ap.error("--rates must be positive (a fixed rate; flat out is not a steady state)")
    if args.symbols < 1:
        ap.error("--symbols must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    results = run(args)
    if args.json:
        out = Path(args.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=1))
    notes = [
        *(n for r in results["fixed"] for n in r["collector_exit"]["log_notes"]),
        *((results["catchup"] or {}).get("collector_exit", {}).get("log_notes", [])),
        *results["nats_log_notes"],
    ]
    if notes:
        print("\nlog notes (collector, nats):\n  " + "\n  ".join(notes[:20]))


if __name__ == "__main__":
    main()
