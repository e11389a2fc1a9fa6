"""Every metric family a feed handler must export, read with prometheus_client's parser.

A runtime over the simulator (Binance and OKX profiles on one port) with a strategy and a
Parquet sink runs until data flowed through every stage; then ``/metrics`` must carry each
family named in the reliability issue, with the labels that make it useful, and the stage
latency histograms must have samples at every stage.
"""

from __future__ import annotations

import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

import xtrader as xt
from conftest import EventLog, RunningRuntime, symbol_names, wait_until
from xtrader import Simulator
from xtrader.sinks import ParquetSink

# sample name -> labels each of its samples must carry
FAMILIES: dict[str, set[str]] = {
    # messages and bytes per venue and channel
    "xtrader_messages_total": {"exchange"},
    "xtrader_bytes_total": {"exchange"},
    "xtrader_frames_total": {"exchange", "channel"},
    "xtrader_frame_bytes_total": {"exchange", "channel"},
    "xtrader_events_total": {"exchange", "channel"},
    # parse errors, gaps, resyncs, checksum results
    "xtrader_parse_errors_total": {"exchange"},
    "xtrader_unknown_events_total": {"exchange"},
    "xtrader_gaps_total": {"exchange"},
    "xtrader_resyncs_total": {"exchange"},
    "xtrader_checksum_ok_total": {"exchange"},
    "xtrader_checksum_failed_total": {"exchange"},
    # connections
    "xtrader_reconnects_total": {"exchange"},
    "xtrader_connected": {"exchange"},
    "xtrader_circuit_state": {"exchange"},
    "xtrader_circuit_opened_total": {"exchange"},
    # book state per symbol
    "xtrader_book_state": {"exchange", "symbol"},
    # queue depth and overflow
    "xtrader_queue_depth": set(),
    "xtrader_queue_capacity": set(),
    "xtrader_queue_high_water": set(),
    "xtrader_queue_dropped_total": set(),
    "xtrader_queue_full_waits_total": set(),
    "xtrader_queue_conflated_total": set(),
    "xtrader_queue_book_overflows_total": set(),
    "xtrader_queue_spilled_total": set(),
    "xtrader_spill_bytes": set(),
    # cache size and evictions
    "xtrader_instruments": {"exchange"},
    "xtrader_instrument_evictions_total": {"exchange"},
    # sinks
    "xtrader_sink_rows_total": {"sink"},
    "xtrader_sink_errors_total": {"sink"},
    # latency per stage
    "xtrader_stage_latency_seconds_bucket": {"exchange", "stage", "le"},
    "xtrader_stage_latency_seconds_count": {"exchange", "stage"},
    "xtrader_stage_latency_seconds_sum": {"exchange", "stage"},
}

STAGES = ("parsed", "book_applied", "to_python", "callback_done", "sink_written")


class Quiet(xt.Strategy):
    def on_trade(self, trade: xt.Trade) -> None:
        pass


def _scrape(addr: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    with urllib.request.urlopen(f"http://{addr}/metrics", timeout=5) as r:
        text = r.read().decode()
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            samples.setdefault(s.name, []).append((dict(s.labels), float(s.value)))
    return samples


def _count(samples: dict[str, list[tuple[dict[str, str], float]]], ex: str, stage: str) -> float:
    for labels, value in samples.get("xtrader_stage_latency_seconds_count", []):
        if labels.get("exchange") == ex and labels.get("stage") == stage:
            return value
    return 0.0


def test_metrics_export_every_family_with_stage_latencies(tmp_path: Path) -> None:
    sim = Simulator(
        symbols=["BTCUSDT", "ETHUSDT"], okx_symbols=["BTC-USDT"], rate=2000.0, seed=5, port=0
    )
    sim.start()
    try:
        rt = xt.Runtime(metrics="127.0.0.1:0")
        rt.subscribe("binance", ["BTCUSDT", "ETHUSDT"], ws_url=sim.ws_url, rest_url=sim.rest_url)
        rt.subscribe("okx", ["BTC-USDT"], ws_url=sim.ws_url, rest_url=sim.rest_url)
        rt.add_strategy(Quiet())
        log = EventLog()
        rt.add_sink(log)
        rt.add_sink(ParquetSink(tmp_path / "data", flush_interval_s=0.2))
        run = RunningRuntime(rt, log, symbol_names(sim))
        run.thread.start()
        try:
            wait_until(lambda: rt.metrics_addr is not None, 30, "the metrics server")
            addr = rt.metrics_addr
            assert addr is not None
            wait_until(
                lambda: (
                    all(_count(_scrape(addr), "binance", st) > 0 for st in STAGES)
                    and _count(_scrape(addr), "okx", "book_applied") > 0
                ),
                60,
                "samples at every latency stage",
            )
            samples = _scrape(addr)
        finally:
            run.stop()
    finally:
        sim.stop()

    missing = sorted(name for name in FAMILIES if name not in samples)
    assert not missing, f"metric families missing from /metrics: {missing}"
    for name, labels in FAMILIES.items():
        for got, _ in samples[name]:
            assert labels <= set(got), f"{name} lacks labels {labels - set(got)}: {got}"
    exchanges = {labels["exchange"] for labels, _ in samples["xtrader_messages_total"]}
    assert exchanges == {"binance", "okx"}
    frames = {
        (labels["exchange"], labels["channel"]): v for labels, v in samples["xtrader_frames_total"]
    }
    assert frames[("binance", "book")] > 0 and frames[("binance", "trades")] > 0
    assert frames[("okx", "book")] > 0
    sinks = {labels["sink"]: v for labels, v in samples["xtrader_sink_rows_total"]}
    assert any(v > 0 for v in sinks.values()), sinks
    # histograms are cumulative and end at the count
    for ex in ("binance", "okx"):
        buckets = [
            v
            for labels, v in samples["xtrader_stage_latency_seconds_bucket"]
            if labels["exchange"] == ex and labels["stage"] == "book_applied"
        ]
        assert buckets == sorted(buckets)
        assert buckets[-1] == _count(samples, ex, "book_applied")
    assert _count(samples, "binance", "exchange_to_recv") > 0
    # the same quantiles through the Python API
    lat = rt.latency()
    row = lat[("binance", "to_python")]
    assert 0 < row["p50_ns"] <= row["p99_ns"] <= row["p999_ns"] <= row["max_ns"]
