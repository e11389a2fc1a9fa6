"""Fault injection, every venue x every fault, over loopback sockets against the simulator.

Each case checks four things: nothing crashes (the runtime thread ends cleanly when stopped),
the right status events arrive (kind, reason, and a message naming the problem), the books
are correct afterwards (the simulator's own book plus what the runtime delivered after it,
level by level), and nothing already received is lost (trade ids unique, ascending, and
contiguous except across reconnects, where the venue does not replay).

Venues: ``binance`` and ``binance_us`` (spot profile behind URL overrides), ``binance_usdm``,
``binance_coinm`` and ``okx``. Every wait is bounded; each test starts and stops its own
simulator on 127.0.0.1 with an ephemeral port.
"""

from __future__ import annotations

import json
import signal
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

import xtrader as xt
from conftest import (
    VENUES,
    SimBook,
    Venue,
    VenueRun,
    assert_book_matches,
    make_sim,
    run_venue,
    sim_book,
    spawn_run,
    trade_holes,
    wait_until,
)
from xtrader import Simulator

TOO_LARGE = 20 * 1024 * 1024
"""An oversized frame: above the client's 16 MiB frame limit."""


@pytest.fixture(params=sorted(VENUES))
def venue(request: pytest.FixtureRequest) -> Venue:
    return VENUES[request.param]


@pytest.fixture
def sim(venue: Venue) -> Iterator[Simulator]:
    simulator = make_sim(venue)
    try:
        yield simulator
    finally:
        simulator.stop()


# ------------------------------------------------------------------------------------------
# wire frames of each venue


def _now_ms() -> int:
    return int(time.time() * 1000)


def trade_frame(venue: Venue, native: str, price: str = "1.25", trade_id: object = 42) -> str:
    """A trade message of `venue` for `native` (Binance spot `trade`, futures `aggTrade`)."""
    ms = _now_ms()
    if venue.is_okx:
        data = {"instId": native, "tradeId": str(trade_id), "px": price, "sz": "1"}
        data |= {"side": "buy", "ts": str(ms)}
        return json.dumps({"arg": {"channel": "trades", "instId": native}, "data": [data]})
    if venue.profile == "spot":
        event = {"e": "trade", "E": ms, "s": native, "t": trade_id, "p": price, "q": "3.0"}
        event |= {"T": ms, "m": False, "M": True}
        return json.dumps({"stream": f"{native.lower()}@trade", "data": event})
    event = {"e": "aggTrade", "E": ms, "a": trade_id, "s": native, "p": price, "q": "3"}
    event |= {"f": trade_id, "l": trade_id, "T": ms, "m": False}
    return json.dumps({"stream": f"{native.lower()}@aggTrade", "data": event})


def unknown_event_frame(venue: Venue, native: str) -> tuple[str, str]:
    """(frame, name of the unknown event or channel)."""
    if venue.is_okx:
        arg = {"channel": "candle1m", "instId": native}
        return json.dumps({"arg": arg, "data": [["1", "2", "3"]]}), "candle1m"
    data = {"e": "fancyEvent", "E": _now_ms(), "s": native}
    return json.dumps({"stream": f"{native.lower()}@fancyEvent", "data": data}), "fancyEvent"


def unknown_symbol(venue: Venue) -> str:
    return "NOPE-USDT" if venue.is_okx else "NOSUCHUSDT"


# ------------------------------------------------------------------------------------------
# shared checks


def wait_status(
    run: VenueRun, start: int, kinds: tuple[str, ...], reason: str, needle: str | None = None
) -> xt.Status:
    """First status after event `start` of one of `kinds` with `reason` whose message or
    symbol names `needle`; fails listing what came instead."""
    found: list[xt.Status] = []

    def seen() -> bool:
        for st in run.statuses(start=start):
            if st.kind not in kinds or st.reason != reason:
                continue
            if needle is None or needle.lower() in st.message.lower() or st.symbol == needle:
                found.append(st)
                return True
        return False

    what = f"a {'/'.join(kinds)} status with reason {reason!r}" + (
        f" naming {needle!r}" if needle else ""
    )
    try:
        wait_until(seen, 20, what)
    except BaseException:
        print("statuses:", [st.to_dict() for st in run.statuses(start=start)])
        raise
    status = found[0]
    assert status.message, "the status explains the problem"
    assert status.exchange == run.venue.exchange
    return status


def settle_books(
    run: VenueRun, sim: Simulator, natives: Sequence[str] | None = None
) -> dict[str, SimBook]:
    """Every book (of `natives`) live and flowing again; the simulator's snapshots, once the
    runtime's books have moved past them (compared by `assert_book_matches` after the stop)."""
    natives = run.venue.symbols if natives is None else natives
    run.wait_live(natives)
    run.wait_flowing(run.mark(), natives)
    snaps = {n: sim_book(sim, run.venue, n) for n in natives}

    def past() -> bool:
        books = {n: run.book(n) for n in snaps}
        return all(b is not None and b.seq > snaps[n].seq for n, b in books.items())

    wait_until(past, 20, "books to move past the simulator's snapshots")
    return snaps


def check_after_stop(run: VenueRun, snaps: dict[str, SimBook], max_holes: int | None = 0) -> None:
    """Books equal the simulator's plus what was delivered; trades intact (`max_holes`
    breaks in the ids per symbol, None when the fault may lose any number of trades)."""
    for native, snap in snaps.items():
        assert_book_matches(run, native, snap)
        holes = trade_holes(run, native)
        if max_holes is not None:
            assert holes <= max_holes, f"{native}: {holes} breaks in the trade ids"


def reconnects(run: VenueRun) -> int:
    """Disconnections seen (each may lose the trades the venue sent meanwhile)."""
    return len([s for s in run.statuses("disconnected") if s.reason != "stopped"])


# ------------------------------------------------------------------------------------------
# connection faults


def test_fault_connection_drop_reconnects_and_resyncs(sim: Simulator, venue: Venue) -> None:
    with run_venue(sim, venue) as run:
        run.wait_live()
        start = run.mark()
        sim.disconnect()
        wait_status(run, start, ("disconnected",), "closed")
        wait_until(lambda: run.stat("reconnects") >= 1, 20, "a reconnect")
        assert sim.stats()["forced_disconnects"] >= 1
        snaps = settle_books(run, sim)
    check_after_stop(run, snaps, max_holes=reconnects(run))


def test_fault_half_open_stall_is_detected(sim: Simulator, venue: Venue) -> None:
    # the socket stays open but nothing arrives, keepalives included: the watchdog must fire
    with run_venue(sim, venue, stale_after_ms=1000) as run:
        run.wait_live()
        start = run.mark()
        sim.stall(2500, keepalive=False)
        status = wait_status(run, start, ("disconnected", "stale"), "stale")
        assert "ms" in status.message, status.message
        snaps = settle_books(run, sim)
    check_after_stop(run, snaps, max_holes=None)


def test_fault_data_stall_with_keepalives_is_detected(venue: Venue) -> None:
    sim = make_sim(venue) if venue.is_okx else make_sim(venue, ping_interval_ms=300)
    try:
        if venue.is_okx:
            # OKX pongs answer the client's pings while data stops: the data watchdog
            # (max_data_silence_ms; by default the venue's 60 s book heartbeat + 15 s) must
            # call the socket dead and replace it
            with run_venue(sim, venue, stale_after_ms=30000, max_data_silence_ms=1000) as run:
                run.wait_live()
                start = run.mark()
                sim.stall(2500)
                status = wait_status(run, start, ("disconnected", "stale"), "stale")
                assert "no data for" in status.message, status.message
                snaps = settle_books(run, sim)
            check_after_stop(run, snaps, max_holes=None)
            return
        with run_venue(sim, venue, stale_after_ms=1000) as run:
            run.wait_live()
            start = run.mark()
            sim.stall(5000)  # data withheld; server pings go on
            # each symbol goes silent from its own last message, so the reports may come
            # a check interval apart: wait for all of them (or nearly the end of the stall;
            # they are due about 1.25 s in, the rest is room for a loaded machine)
            wanted = {run.normalized(n) for n in venue.symbols}
            deadline = time.monotonic() + 4.5
            while time.monotonic() < deadline and not (
                {s.symbol for s in run.statuses("stale", start=start)} >= wanted
            ):
                time.sleep(0.05)
            silent = run.statuses("stale", start=start)
            assert silent, "4.5 s without data, stale_after_ms=1000: nothing reported"
            assert all(s.reason in ("stale", "stream_silent") for s in silent)
            assert {s.symbol for s in silent} >= wanted
            assert "sent nothing" in silent[0].message, silent[0].message
            snaps = settle_books(run, sim)
        check_after_stop(run, snaps, max_holes=None)
    finally:
        sim.stop()


def test_fault_oversized_frame_disconnects_and_recovers(sim: Simulator, venue: Venue) -> None:
    with run_venue(sim, venue) as run:
        run.wait_live()
        start = run.mark()
        sim.inject_frame('{"pad":"' + "x" * TOO_LARGE + '"}')
        wait_until(
            lambda: bool(run.statuses("disconnected", start=start)), 20, "the socket to drop"
        )
        snaps = settle_books(run, sim)
    check_after_stop(run, snaps, max_holes=reconnects(run))
    status = run.statuses("disconnected", start=start)[0]
    assert status.reason == "frame_too_large", status.to_dict()
    assert "too large" in status.message, status.message


# ------------------------------------------------------------------------------------------
# bad frames: reported, skipped, and the stream goes on untouched


def bad_frame(venue: Venue, case: str) -> tuple[bytes | str, str, str | None]:
    """(frame, expected reason, text the status must name) of a bad-input case."""
    native = venue.symbols[0]
    if case == "malformed_json":
        return "this is {not json", "malformed_frame", None
    if case == "truncated":
        return trade_frame(venue, native)[:57], "malformed_frame", None
    if case == "non_utf8_binary":
        return b"\xff\xfe{\x80\x81" + trade_frame(venue, native).encode(), "malformed_frame", None
    if case == "price_out_of_range":
        return trade_frame(venue, native, price="1e400"), "malformed_frame", None
    if case == "trade_id_out_of_range":
        return trade_frame(venue, native, trade_id=2**70), "malformed_frame", None
    if case == "unknown_event":
        frame, name = unknown_event_frame(venue, native)
        return frame, "unknown_event", name
    if case == "unknown_symbol":
        nope = unknown_symbol(venue)
        return trade_frame(venue, nope), "unknown_symbol", nope
    raise AssertionError(case)


BAD_FRAMES = (
    "malformed_json",
    "truncated",
    "non_utf8_binary",
    "price_out_of_range",
    "trade_id_out_of_range",
    "unknown_event",
    "unknown_symbol",
)


@pytest.mark.parametrize("case", BAD_FRAMES)
def test_fault_bad_frame_is_reported_and_the_stream_goes_on(
    sim: Simulator, venue: Venue, case: str
) -> None:
    frame, reason, needle = bad_frame(venue, case)
    with run_venue(sim, venue) as run:
        run.wait_live()
        start = run.mark()
        if isinstance(frame, bytes):
            sim.inject_frame(frame)
        else:
            sim.inject_raw(frame)
        wait_status(run, start, ("error",), reason, needle)
        snaps = settle_books(run, sim)
    assert run.statuses("resync") == [], "a skipped frame must not touch the books"
    assert reconnects(run) == 0
    check_after_stop(run, snaps)


# ------------------------------------------------------------------------------------------
# subscription and snapshot faults


def test_fault_rejected_subscription_is_reported(sim: Simulator, venue: Venue) -> None:
    refused, others = venue.symbols[-1], list(venue.symbols[:-1])
    # every subscription naming it: futures and OKX split a symbol's streams over 2 sockets
    sim.inject_fault("subscribe_error", refused, count=5)
    with run_venue(sim, venue) as run:
        status = wait_status(run, 0, ("error",), "subscribe_error")
        code = "60018" if venue.is_okx else "code 2"
        assert code in status.message, status.message
        assert refused.lower() in status.message.lower(), status.message
        snaps = settle_books(run, sim, others)
        book = run.book(refused)
        assert book is None or book.state != "live"
    assert not [t for t in run.events(xt.Trade) if t.native_symbol == refused]
    check_after_stop(run, snaps)


def test_fault_unknown_subscribed_symbol_is_reported(sim: Simulator, venue: Venue) -> None:
    nope = "NOPE-USDT-SWAP" if venue.is_okx else "NOPEUSDT"
    with run_venue(sim, venue, natives=[*venue.symbols, nope]) as run:
        status = wait_status(run, 0, ("error",), "unknown_symbol", nope)
        assert status.kind == "error"
        snaps = settle_books(run, sim)
    check_after_stop(run, snaps)


def test_fault_failed_snapshot_is_retried(venue: Venue) -> None:
    # OKX pushes its snapshot on subscribe; without that push the book comes from REST
    sim = make_sim(venue, okx_push_snapshot=False) if venue.is_okx else make_sim(venue)
    try:
        target = venue.symbols[0]
        sim.fail_snapshots(target, 2)
        with run_venue(sim, venue) as run:
            status = wait_status(run, 0, ("error", "resync"), "snapshot_failed")
            assert status.symbol == run.normalized(target), status.to_dict()
            assert "500" in status.message, status.message
            snaps = settle_books(run, sim)
        assert sim.stats()["snapshots_failed"] == 2
        check_after_stop(run, snaps)
    finally:
        sim.stop()


@pytest.mark.parametrize(("http", "reason"), [(503, "snapshot_failed"), (429, "rate_limited")])
def test_fault_snapshot_http_error_is_reported_and_retried(
    venue: Venue, http: int, reason: str
) -> None:
    sim = make_sim(venue, okx_push_snapshot=False) if venue.is_okx else make_sim(venue)
    try:
        sim.rest_errors(http, count=2, retry_after_s=1)
        t0 = time.monotonic()
        with run_venue(sim, venue) as run:
            status = wait_status(run, 0, ("error", "resync"), reason)
            assert str(http) in status.message, status.message
            snaps = settle_books(run, sim)
            took = time.monotonic() - t0
        assert sim.stats()["rest_faults"] == 2
        if http == 429:
            assert took >= 1.0, "requests paused for Retry-After"
        check_after_stop(run, snaps)
    finally:
        sim.stop()


def test_fault_slow_snapshot_still_syncs(venue: Venue) -> None:
    sim = make_sim(venue, okx_push_snapshot=False) if venue.is_okx else make_sim(venue)
    try:
        target = venue.symbols[0]
        sim.inject_fault("slow_snapshot", target, count=1, duration_ms=1500)
        t0 = time.monotonic()
        with run_venue(sim, venue) as run:
            run.wait_live()
            took = time.monotonic() - t0
            snaps = settle_books(run, sim)
        assert took >= 1.5, "the snapshot answer was delayed"
        problems = [s.to_dict() for s in run.statuses() if s.kind in ("error", "resync")]
        # diffs buffered while the answer was on its way bridge the old snapshot
        assert problems == []
        check_after_stop(run, snaps)
    finally:
        sim.stop()


# ------------------------------------------------------------------------------------------
# book integrity faults


def test_fault_sequence_gap_resyncs_one_symbol(sim: Simulator, venue: Venue) -> None:
    target = venue.symbols[0]
    with run_venue(sim, venue) as run:
        run.wait_live()
        start = run.mark()
        sim.inject_fault("seq_break", target)
        status = wait_status(run, start, ("resync",), "gap")
        assert status.symbol == run.normalized(target)
        wait_until(
            lambda: any(s.symbol == status.symbol for s in run.statuses("recovered", start=start)),
            20,
            f"{target} to recover",
        )
        snaps = settle_books(run, sim)
    resynced = {s.symbol for s in run.statuses("resync")}
    assert resynced == {run.normalized(target)}, resynced
    check_after_stop(run, snaps)


def test_fault_okx_checksum_resyncs_one_symbol() -> None:
    venue = VENUES["okx"]
    sim = make_sim(venue)
    target = venue.symbols[-1]
    try:
        with run_venue(sim, venue) as run:
            run.wait_live()
            wait_until(lambda: run.stat("checksum_ok") > 20, 20, "checksummed updates")
            start = run.mark()
            sim.inject_fault("checksum", target)
            status = wait_status(run, start, ("resync",), "checksum")
            assert status.symbol == run.normalized(target)
            assert "checksum mismatch" in status.message
            snaps = settle_books(run, sim)
        assert {s.symbol for s in run.statuses("resync")} == {run.normalized(target)}
        check_after_stop(run, snaps)
    finally:
        sim.stop()


# ------------------------------------------------------------------------------------------
# SIGTERM under load: `python -m xtrader run` records exactly what it delivered


SIGTERM_CONFIG = """
[runtime]
queue_capacity = 65536
[metrics]
listen = ""
{feeds}
[[sinks]]
type = "parquet"
dir = {data}
flush_interval_s = 0.3
max_file_rows = 5000
"""

FEED = """
[[feeds]]
exchange = "{exchange}"
symbols = {symbols}
channels = ["trades", "book", "bbo"]
venue_channels = {venue_channels}
ws_url = "{ws}"
rest_url = "{rest}"
"""


def test_fault_sigterm_under_load_records_what_was_delivered(tmp_path: Path) -> None:
    # one spot simulator also serving OKX, one per futures profile: five venues, one process
    spot = make_sim(VENUES["binance"], okx_symbols=list(VENUES["okx"].symbols), rate=8000.0)
    usdm = make_sim(VENUES["binance_usdm"], rate=4000.0)
    coinm = make_sim(VENUES["binance_coinm"], rate=4000.0)
    sims = {"binance": spot, "binance_us": spot, "okx": spot}
    sims |= {"binance_usdm": usdm, "binance_coinm": coinm}
    data = tmp_path / "data"
    stats_file = tmp_path / "stats.json"
    feeds = "".join(
        FEED.format(
            exchange=v.exchange,
            symbols=json.dumps(list(v.symbols)),
            venue_channels=json.dumps(list(v.venue_channels)),
            ws=sims[v.exchange].ws_url,
            rest=sims[v.exchange].rest_url,
        )
        for v in VENUES.values()
    )
    config = tmp_path / "run.toml"
    config.write_text(SIGTERM_CONFIG.format(feeds=feeds, data=json.dumps(str(data))))
    proc = spawn_run(config, stats_file)
    try:
        deadline = time.monotonic() + 30
        # under load: files of every venue finalized by rotation, more in flight
        while True:
            files = list(data.glob("book/exchange=*/date=*/*.parquet"))
            if {f.parts[-3] for f in files} >= {f"exchange={v}" for v in VENUES}:
                break
            assert time.monotonic() < deadline, f"not every venue recorded within 30 s: {files}"
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for s in (spot, usdm, coinm):
            s.stop()
    assert proc.returncode == 0, err
    report = json.loads(stats_file.read_text())
    delivered = Counter(
        {(d["channel"], d["exchange"], d["symbol"]): d["rows"] for d in report["delivered"]}
    )
    assert {e for _, e, _ in delivered} == set(VENUES)
    for channel in ("trades", "book", "bbo"):
        disk = xt.read(data, channel=channel).collect()
        on_disk = Counter(
            {(channel, e, s): n for e, s, n in disk.group_by("exchange", "symbol").len().rows()}
        )
        expected = Counter({k: n for k, n in delivered.items() if k[0] == channel})
        assert on_disk == expected, channel
    trades = xt.read(data, channel="trades").collect().sort("exchange", "symbol", "ts_recv")
    for (exchange, symbol), group in trades.group_by("exchange", "symbol"):
        ids = group["trade_id"].to_list()
        assert len(set(ids)) == len(ids), f"duplicate trades of {exchange} {symbol}"
        assert ids == list(range(ids[0], ids[0] + len(ids))), f"lost trades of {exchange} {symbol}"
