"""The benchmarks run and compute the right things (no timing is asserted here)."""

from __future__ import annotations

import importlib.util
import json
import math
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import polars as pl
import pytest

import xtrader as xt
from conftest import require_nats_server

BENCHES = Path(__file__).resolve().parent.parent / "benches"
HAVE_CRYPTOFEED = importlib.util.find_spec("cryptofeed") is not None
needs_cryptofeed = pytest.mark.skipif(
    not HAVE_CRYPTOFEED,
    reason="cryptofeed (the peer) is not installed: pip install '.[bench]'",
)


def _import(name: str) -> Iterator[ModuleType]:
    sys.path.insert(0, str(BENCHES))
    try:
        yield importlib.import_module(name)
    finally:
        sys.path.remove(str(BENCHES))


@pytest.fixture(scope="module")
def bench() -> Iterator[ModuleType]:
    yield from _import("dispatch_bench")


@pytest.fixture(scope="module")
def e2e() -> Iterator[ModuleType]:
    yield from _import("e2e_load")


@pytest.fixture(scope="module")
def peer() -> Iterator[ModuleType]:
    yield from _import("peer_cryptofeed")


@pytest.fixture(scope="module")
def bus_probe() -> Iterator[ModuleType]:
    yield from _import("bus_probe")


def test_dispatch_bench_outputs(bench: ModuleType) -> None:
    sample = bench.collect(0.5, ("BTCUSDT",))
    assert sample.trades and all(isinstance(t, xt.Trade) for t in sample.trades)
    # the tables hold exactly the trades the objects do
    rows = pl.concat([pl.DataFrame(t) for t in sample.tables])
    assert rows.height == sample.table_rows == len(sample.trades)
    assert rows["trade_id"].to_list() == [t.trade_id for t in sample.trades]
    trades = bench.grow(sample.trades, 10_000)
    assert len(trades) == 10_000
    assert bench.baseline(trades) == bench.dispatch(trades) == 10_000
    assert bench.on_batch(sample.tables * 3) == 3 * sample.table_rows
    result, seconds = bench.timed(bench.baseline, trades, repeat=2)
    assert result == 10_000 and seconds > 0


def test_sim_throughput_run() -> None:
    for mod in _import("sim_throughput"):
        out = mod.run(0, 1.0, ["BTCUSDT"])
        assert out["messages_per_s"] > 0 and out["gaps"] == 0
        # every data message became an event in the core
        assert out["events_per_s"] >= out["messages_per_s"] * 0.99
        # the simulator's threads were found by name (they did run); no other name matches
        assert 0 < out["sim_cpu_ns_per_frame"] < 1e9
        assert mod.thread_cpu_seconds("no-such-thread-") == 0.0


def test_dispatch_bench_load_runs(bench: ModuleType) -> None:
    events = bench.load_run("events", 1.0, ("BTCUSDT",))
    assert events["callbacks_per_s"] == events["core_events_per_s"] > 0
    batch = bench.load_run("batch", 1.0, ("BTCUSDT",))
    # on_batch receives every trade and quote the core produced
    assert batch["on_batch_rows_per_s"] == batch["core_events_per_s"] > 0


@pytest.fixture(scope="module")
def soak() -> Iterator[ModuleType]:
    sys.path.insert(0, str(BENCHES))
    try:
        import soak

        yield soak
    finally:
        sys.path.remove(str(BENCHES))


def test_soak_fit_and_summary(soak: ModuleType) -> None:
    # 100 MiB growing 1 MiB per second after a 10 s warm-up: 3600 MiB/h, 3600 %/h
    samples = [(float(t), (100 + max(0, t - 10)) * 1024) for t in range(30)]
    # two samples taken while stopping: in the peak, not in the fit nor the final figure
    samples += [(30.5, 150 * 1024), (31.0, 140 * 1024)]
    summary = soak.summarize(samples, warmup_s=10.0, run_s=30.0)
    assert summary["warmup_rss_mib"] == 100.0
    assert summary["final_rss_mib"] == 119.0
    assert summary["peak_rss_mib"] == summary["stop_peak_rss_mib"] == 150.0
    assert summary["growth_mib_per_hour"] == pytest.approx(3600.0)
    assert summary["growth_pct_per_hour"] == pytest.approx(3600.0)
    assert summary["post_warmup_samples"] == 20
    flat = soak.summarize([(float(t), 50 * 1024) for t in range(5)], 1.0, 5.0)
    assert flat["growth_pct_per_hour"] == 0.0 and flat["stop_peak_rss_mib"] == 0.0
    assert soak.slope_per_s([(1.0, 5.0)]) == 0.0


def test_soak_short_run_reports_consistent_figures(soak: ModuleType) -> None:
    report = soak.soak(seconds=5.0, rate=5000.0, n_symbols=3, warmup_s=2.0, sample_s=0.25)
    assert report["messages"] > 0 and report["messages_per_s"] > 0
    assert report["trades_seen"] > 0 and report["quotes_seen"] > 0
    assert report["dispatched_events"] >= report["trades_seen"] + report["quotes_seen"]
    samples = report["rss_samples"]
    assert len(samples) >= 10 and all(kib > 0 for _, kib in samples)
    assert [t for t, _ in samples] == sorted(t for t, _ in samples)
    assert report["peak_rss_mib"] == round(max(kib for _, kib in samples) / 1024, 2)
    assert report["peak_rss_mib"] >= report["final_rss_mib"] > 0
    assert report["peak_rss_mib"] >= report["stop_peak_rss_mib"]
    assert report["peak_rss_mib"] >= report["warmup_rss_mib"] > 0
    assert report["post_warmup_samples"] >= 2
    growth = 100 * report["growth_mib_per_hour"] / report["warmup_rss_mib"]
    assert report["growth_pct_per_hour"] == pytest.approx(growth, rel=0.01, abs=0.01)
    assert report["sim_peak_rss_mib"] > 0 and report["symbols"] == 3


def test_e2e_load_ring_and_percentiles(e2e: ModuleType) -> None:
    ring = e2e.Ring(4)
    for v in range(10):
        ring.add(v)
    # bounded: the last four samples only
    assert ring.count == 10 and sorted(ring.values()) == [6, 7, 8, 9]
    # bulk adds wrap around the same way, and keep only the newest when too many
    ring.extend([10, 11, 12])
    assert ring.count == 13 and sorted(ring.values()) == [9, 10, 11, 12]
    ring.extend(list(range(20, 30)))
    assert ring.count == 23 and sorted(ring.values()) == [26, 27, 28, 29]
    assert e2e.percentiles(list(range(1, 1001))) == [500.0, 950.0, 990.0, 999.0]
    assert e2e.percentiles([7]) == [7.0] * 4


def _check_e2e_row(row: dict[str, Any], rate: float) -> None:
    for key in ("messages_per_s", "events_per_s", "p50_us", "p95_us", "p99_us", "p999_us"):
        assert key in row
    assert row["rate"] == rate and row["messages"] > 0 and row["events"] >= row["messages"] // 2
    # one sample per event: per-event callbacks, or the rows of on_batch frames
    delivered = row["callbacks"] if row["delivery"] == "objects" else row["rows"]
    assert 0 < row["samples_kept"] <= row["samples"] <= delivered
    assert 0 < row["p50_us"] <= row["p95_us"] <= row["p99_us"] <= row["p999_us"]
    assert row["gaps"] == 0


def test_e2e_load_runs(e2e: ModuleType, tmp_path: Path) -> None:
    row = e2e.run(5_000, 2.5, "binance", ("BTCUSDT", "ETHUSDT"), samples=1 << 12, warmup_s=0.5)
    _check_e2e_row(row, 5_000)
    assert row["samples_kept"] <= 1 << 12
    flat = e2e.run(0, 2.0, "binance", ("BTCUSDT",), samples=1 << 12, warmup_s=0.5)
    _check_e2e_row(flat, 0)
    assert "| flat out |" in e2e.table([row, flat])
    # the core's own stage stamps, from the socket read on
    stages = row["stage_latency"]
    for stage in ("parsed", "book_applied", "to_python", "callback_done"):
        st = stages[f"binance/{stage}"]
        assert st["count"] > 0 and 0 < st["p50_us"] <= st["p99_us"] <= st["p999_us"], stage
    spin = e2e.run(
        5_000, 1.5, "binance", ("BTCUSDT",), samples=1 << 12, warmup_s=0.5, busy_poll_us=50
    )
    _check_e2e_row(spin, 5_000)
    assert spin["busy_poll_us"] == 50
    # columnar delivery: on_batch frames only, a latency per trade/quote row
    batch = e2e.run(
        5_000, 1.5, "binance", ("BTCUSDT",), samples=1 << 12, warmup_s=0.5, delivery="batch"
    )
    _check_e2e_row(batch, 5_000)
    assert batch["delivery"] == "batch" and batch["rows"] >= batch["callbacks"] > 0
    assert "| batch |" in e2e.table([batch])
    # inline I/O: the strategy thread reads the sockets; the core's stamps are still taken
    # inline I/O (the strategy thread reads the sockets, spinning 500 µs before it sleeps)
    # against a paced simulator; the core's stamps are still taken
    inline = e2e.run(
        5_000,
        1.5,
        "binance",
        ("BTCUSDT",),
        samples=1 << 12,
        warmup_s=0.5,
        worker_threads=0,
        busy_poll_us=500,
        paced=True,
    )
    _check_e2e_row(inline, 5_000)
    assert inline["worker_threads"] == 0 and inline["paced"]
    text = e2e.table([inline])
    assert "| 0 (inline) | 500 |" in text and "| paced |" in text
    assert inline["stage_latency"]["binance/to_python"]["count"] > 0
    with pytest.raises(ValueError, match="paced"):
        e2e.run(5_000, 0.1, "okx", paced=True)
    with pytest.raises(ValueError, match="delivery"):
        e2e.run(5_000, 0.1, delivery="rows")
    png = tmp_path / "chart.png"
    e2e.plot([row, flat], str(png))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_e2e_load_cli_writes_json(e2e: ModuleType, tmp_path: Path) -> None:
    out = tmp_path / "e2e.json"
    e2e.main(
        [
            "--seconds",
            "1.5",
            "--rates",
            "3000",
            "--symbols",
            "BTCUSDT",
            "--warmup",
            "0.3",
            "--samples",
            "1024",
            "--json",
            str(out),
        ]
    )
    rows = json.loads(out.read_text())
    assert len(rows) == 1
    _check_e2e_row(rows[0], 3000)


def test_peer_loopback_guard_refuses_other_hosts(peer: ModuleType) -> None:
    with peer.loopback_only():
        with pytest.raises(PermissionError):
            socket.getaddrinfo("api.binance.com", 443)
        s = socket.socket()
        try:
            with pytest.raises(PermissionError):
                s.connect(("203.0.113.1", 443))  # TEST-NET-3: never routed anyway
        finally:
            s.close()
        # loopback stays allowed
        assert socket.getaddrinfo("127.0.0.1", 80)
    assert socket.getaddrinfo is not None


@needs_cryptofeed
def test_peer_offline_same_frames(peer: ModuleType, captures: Path) -> None:
    rows = peer.offline(1, captures, reps=2)
    assert [r["exchange"] for r in rows] == ["binance", "okx"]
    for row in rows:
        cf, x = row["cryptofeed"], row["xtrader"]
        # the same frames went through both
        assert cf["frames"] == x["frames"] > 0
        assert x["stats"]["messages"] == x["frames"]
        assert x["stats"]["errors"] == 0 and cf["callbacks"] > 0 and x["callbacks"] > 0
        assert x["stats"].get("gaps", 0) == 0 and x["stats"].get("resyncs", 0) == 0
        assert row["throughput_ratio_core"] > 0
    binance, okx = rows
    # one cryptofeed callback per aggTrade and bookTicker frame, as in xtrader's tables
    assert binance["cryptofeed"]["by_type"]["trades"] == binance["xtrader"]["stats"]["trades"]
    assert binance["cryptofeed"]["by_type"]["ticker"] == binance["xtrader"]["stats"]["bbo"]
    # every OKX book verified its checksum on both sides (cryptofeed raises on a mismatch)
    assert okx["xtrader"]["stats"]["checksum_failed"] == 0
    assert okx["xtrader"]["stats"]["checksum_ok"] == okx["cryptofeed"]["by_type"]["l2_book"]


def test_peer_repeated_binance_frames_chain(
    peer: ModuleType, captures: Path, tmp_path: Path
) -> None:
    one = peer.load_frames("binance", captures, 1)
    three = peer.load_frames("binance", captures, 3)
    assert len(three.frames) == 3 * len(one.frames)
    peer.write_capture(one, tmp_path / "one.ws.1.0")
    peer.write_capture(three, tmp_path / "three.ws.1.0")
    base = xt.replay(tmp_path / "one.ws.1.0", rest=one.rest).stats
    # the shifted passes chain: every diff of passes 2 and 3 applies without a gap
    res = xt.replay(tmp_path / "three.ws.1.0", rest=three.rest).stats
    assert res["gaps"] == 0 and res["errors"] == 0
    assert res["trades"] == 3 * base["trades"] and res["bbo"] == 3 * base["bbo"]
    assert res["book_updates"] > 2 * base["book_updates"]


@needs_cryptofeed
def test_peer_end_to_end_on_loopback(peer: ModuleType) -> None:
    rows = peer.e2e([3_000], 2.0, ["BTCUSDT", "ETHUSDT"])
    (row,) = rows
    cf, x = row["cryptofeed"], row["xtrader"]
    assert cf["callbacks"] > 0 and cf["samples"] > 0 and x["messages"] > 0
    assert cf["p50_us"] <= cf["p95_us"] <= cf["p99_us"] <= cf["p999_us"]
    assert row["throughput_ratio"] > 0 and row["p99_fraction"] > 0
    inline = row["xtrader_inline"]
    assert inline["worker_threads"] == 0 and inline["busy_poll_us"] == 2000
    assert inline["messages"] > 0 and row["inline_throughput_ratio"] > 0
    assert row["inline_p99_fraction"] > 0


def test_bus_probe_windows(bus_probe: ModuleType) -> None:
    ring = bus_probe.PairRing(3)
    for t in range(1, 6):
        ring.add(t * 10, t)
    # bounded: the last three pairs, filtered by their time
    assert ring.count == 5 and sorted(ring.within(0, 100)) == [3, 4, 5]
    assert sorted(ring.within(35, 50)) == [4, 5]
    # counters sampled at 0, 1, 2, 3 s: the window keeps the samples at 1 and 2 s
    samples = [(int(t * 1e9), 100 * t, 10 * t, t, 111 * t) for t in range(4)]
    seconds, deltas = bus_probe.window_rates(samples, int(0.5e9), int(2.5e9))
    assert seconds == 1.0 and deltas == [100, 10, 1, 111]
    assert bus_probe.window_rates(samples, int(0.5e9), int(1.5e9)) == (0.0, [0, 0, 0, 0])
    lat = bus_probe.latency_fields("x_", [1000 * i for i in range(1, 1001)])  # 1..1000 µs
    assert (lat["x_p50_us"], lat["x_p99_us"], lat["x_p999_us"]) == (500.0, 990.0, 999.0)
    assert math.isnan(bus_probe.latency_fields("", [])["p50_us"])


def _ordered(row: dict[str, Any], who: str) -> None:
    values = [row[f"{who}_{p}_us"] for p in ("p50", "p95", "p99", "p999")]
    assert all(v is not None and v > 0 for v in values), (who, values)
    assert values == sorted(values), (who, values)


def test_jetstream_bus_quick_run(tmp_path: Path) -> None:
    """``benches/jetstream_bus.py --quick --nodes 1``: a real one-node NATS server, a collector
    process, the consumer; the JSON figures are consistent and nothing was lost or doubled."""
    require_nats_server()
    out = tmp_path / "jetstream.json"
    argv = [sys.executable, str(BENCHES / "jetstream_bus.py"), "--quick", "--nodes", "1"]
    argv += ["--json", str(out), "--workdir", str(tmp_path / "work")]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=100, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    res = json.loads(out.read_text())
    assert res["config"]["nodes"] == 1 and res["config"]["rates"] == [1000.0]

    (row,) = res["fixed"]
    assert "| 1 | 1,000 |" in proc.stdout
    consumer, collector = row["consumer"], row["collector"]
    assert row["consumer_events_per_s"] > 0 and row["collector_events_per_s"] > 0
    assert consumer["events"] > 0 and consumer["samples"] > 0 and collector["samples"] > 0
    assert consumer["trades"] > 0 and consumer["bbo"] > 0 and consumer["book_updates"] > 0
    # the collector's figures cover the consumer's window
    assert collector["window_start_ns"] == consumer["window_start_ns"]
    _ordered(row, "consumer")
    _ordered(row, "collector")
    for p in ("p50", "p95", "p99", "p999"):
        added = row[f"consumer_{p}_us"] - row[f"collector_{p}_us"]
        assert row[f"added_{p}_us"] == pytest.approx(added, abs=0.11)
    bus, pub = row["consumer_bus"], row["collector_bus"]
    assert bus["bus_gaps"] == 0 and bus["bus_duplicates"] == 0 and bus["bus_decode_errors"] == 0
    assert 0 < bus["bus_received"] <= pub["bus_published"]
    assert pub["bus_acked"] == pub["bus_published"] > 0 and pub["bus_publish_lost"] == 0
    assert row["collector_exit"]["exit_code"] == 0

    catch = res["catchup"]
    assert catch["complete"] and catch["messages"] > 0
    assert catch["received"] == catch["messages"]
    # the stream holds what the collector stored: every acked publish, once
    cpub = catch["collector_bus"]
    assert catch["messages"] == cpub["bus_acked"] - cpub["bus_publish_duplicates"]
    assert catch["events"] > 0 and catch["events_per_s"] > 0 and catch["messages_per_s"] > 0
    cbus = catch["consumer_bus"]
    assert cbus["bus_gaps"] == 0 and cbus["bus_duplicates"] == 0 and cbus["bus_redelivered"] == 0
    assert catch["collector_exit"]["exit_code"] == 0
