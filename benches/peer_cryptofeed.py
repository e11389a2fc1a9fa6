"""xtrader against cryptofeed (the peer), on the same frames and the same simulator.

Offline: the recorded frames of BINANCE.ws.1.0 (depth, aggTrade, bookTicker) and OKX.ws.1.0
(books with checksums, trades, tickers) go through cryptofeed's own feed message handlers
(its Binance/OKX feed objects, symbols loaded from the recorded REST answers, Binance books
primed from the recorded depth snapshots, checksum validation on for OKX, an async callback
counting what it receives), and the same frames through ``xtrader.replay`` (the full Rust
processors, Arrow tables) with a Python strategy counting per-event callbacks. Best of
``--repeat`` passes each.

End to end: cryptofeed's FeedHandler connects to xtrader's built-in simulator (Binance spot
protocol) over loopback, its websocket and REST endpoints replaced by the simulator's; the
same simulator at the same rate then serves xtrader's Runtime. Both report events/s and the
latency from socket read to callback entry (cryptofeed: its receipt timestamp; xtrader: the
event's ``ts_recv``).

Only 127.0.0.1 is ever contacted: symbol data come from the captures (offline) or the
simulator, every endpoint is rewritten to the simulator, and a guard on ``socket`` refuses any
other destination for the whole run.

    python benches/peer_cryptofeed.py --repeat 5 --seconds 8 --rates 10000 0 --json peer.json

Needs the ``bench`` extra (``pip install '.[bench]'``) for cryptofeed.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import logging
import os
import socket
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import xtrader as xt
from xtrader import _core

PERCENTILES = (50.0, 95.0, 99.0, 99.9)


def captures_dir() -> Path:
    """`XTRADER_CAPTURES`, else ../shared/data/captures beside the project."""
    env = os.environ.get("XTRADER_CAPTURES")
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "captures"


# ------------------------------------------------------------------------------ loopback guard


def _loopback(host: object) -> bool:
    if not isinstance(host, str):
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@contextmanager
def loopback_only() -> Iterator[None]:
    """Refuse every connection and name lookup that is not 127.0.0.1 / ::1 / localhost."""
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def check(address: Any) -> None:
        if isinstance(address, tuple) and not _loopback(address[0]):
            raise PermissionError(f"peer benchmark: refused non-loopback address {address!r}")

    def connect(self: socket.socket, address: Any) -> None:
        check(address)
        real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        check(address)
        return real_connect_ex(self, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host is not None and not _loopback(host if isinstance(host, str) else str(host)):
            raise PermissionError(f"peer benchmark: refused lookup of {host!r}")
        return real_getaddrinfo(host, *args, **kwargs)

    socket.socket.connect = connect  # type: ignore[method-assign,assignment]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign,assignment]
    socket.getaddrinfo = getaddrinfo
    try:
        yield
    finally:
        socket.socket.connect = real_connect  # type: ignore[method-assign]
        socket.socket.connect_ex = real_connect_ex  # type: ignore[method-assign]
        socket.getaddrinfo = real_getaddrinfo


# ------------------------------------------------------------------------------ captures


def rest_lines(path: Path) -> Iterator[tuple[str, str]]:
    """(url, body) of each `URL -> TS: BODY` line of a REST capture."""
    for line in path.read_text().splitlines():
        if " -> " not in line:
            continue
        url, rest = line.split(" -> ", 1)
        if ": " in rest:
            yield url, rest.split(": ", 1)[1]


def binance_keep(text: str) -> bool:
    return any(k in text for k in ("@depth", "@aggTrade", "@bookTicker"))


def okx_keep(text: str) -> bool:
    return '"data"' in text and any(
        f'"channel":"{c}"' in text for c in ("books", "trades", "tickers")
    )


@dataclass
class Frames:
    """The frames both libraries process: a capture's received frames of the compared
    channels, repeated `reps` times so the run is long enough to time."""

    exchange: str
    source: Path
    head: str
    sent: list[str]
    frames: list[tuple[float, str]]
    rest: list[Path]
    reps: int


def load_frames(exchange: str, captures: Path, reps: int = 1) -> Frames:
    """The recorded frames of `exchange`, repeated `reps` times as a valid stream.

    OKX: each pass starts again from the pushed snapshots, so the books, their checksums and
    the trades repeat as recorded. Binance: depth diffs must chain, so pass k shifts each
    symbol's update ids (`U`, `u`, and bookTicker `u`) by k times the span of that symbol's
    ids in the capture: pass k's first diff then follows pass k-1's last.
    """
    if exchange == "binance":
        source, keep = captures / "BINANCE.ws.1.0", binance_keep
        rest = [captures / "BINANCE.http.0.0", captures / "BINANCE.0"]
    else:
        source, keep = captures / "OKX.ws.1.0", okx_keep
        rest = [captures / "OKX.0"]
    lines = source.read_text().splitlines()
    sent = [line for line in lines[1:] if " <- " in line]
    frames: list[tuple[float, str]] = []
    for line in lines[1:]:
        if " <- " in line or ": " not in line:
            continue
        stamp, text = line.split(": ", 1)
        if keep(text):
            frames.append((float(stamp), text))
    out = list(frames)
    if exchange == "okx":
        out = frames * reps
    elif reps > 1:
        decoded = [(ts, json.loads(text)) for ts, text in frames]
        lo: dict[str, int] = {}
        hi: dict[str, int] = {}
        for _, msg in decoded:
            d = msg["data"]
            if d.get("e") == "depthUpdate":
                lo[d["s"]] = min(lo.get(d["s"], d["U"]), d["U"])
                hi[d["s"]] = max(hi.get(d["s"], d["u"]), d["u"])
        span = {sym: hi[sym] - lo[sym] + 1 for sym in lo}
        for k in range(1, reps):
            for ts, msg in decoded:
                d = dict(msg["data"])
                shift = k * span.get(d.get("s", ""), 0)
                if d.get("e") == "depthUpdate":
                    d["U"] += shift
                    d["u"] += shift
                elif "A" in d and "u" in d:
                    d["u"] += shift
                text = json.dumps({"stream": msg["stream"], "data": d}, separators=(",", ":"))
                out.append((ts, text))
    return Frames(exchange, source, lines[0], sent, out, rest, reps)


def write_capture(fr: Frames, path: Path, with_frames: bool = True) -> None:
    """A capture file for xtrader.replay: the opening line, the frames the client sent (the
    replay learns the subscriptions from them) and, unless `with_frames` is False, the
    received frames."""
    with path.open("w") as fh:
        fh.write(fr.head + "\n")
        for line in fr.sent:
            fh.write(line + "\n")
        if with_frames:
            for ts, text in fr.frames:
                fh.write(f"{ts}: {text}\n")


# ------------------------------------------------------------------------------ cryptofeed


class CfCounter:
    """cryptofeed callbacks: counts objects per type; optionally samples latency."""

    def __init__(self, sample_after: float | None = None) -> None:
        self.counts: dict[str, int] = {}
        self.latency_ns: list[int] = []
        self.sample_after = sample_after

    def make(self, kind: str) -> Callable[[Any, float], Any]:
        self.counts[kind] = 0
        counts = self.counts
        lat = self.latency_ns

        async def cb(obj: Any, receipt_timestamp: float) -> None:
            now = time.time()
            counts[kind] += 1
            after = self.sample_after
            if after is not None and now >= after and len(lat) < 2_000_000:
                lat.append(int((now - receipt_timestamp) * 1e9))

        return cb

    @property
    def total(self) -> int:
        return sum(self.counts.values())


class _FakeConn:
    """Stands in for the websocket connection handed to message handlers."""

    uuid = "offline"
    id = "offline"


def cf_symbols(exchange: str, captures: Path) -> dict[str, str]:
    """Load cryptofeed's symbol table for `exchange` from the recorded REST answers (no
    network); returns native -> cryptofeed symbol."""
    from cryptofeed.exchanges import OKX, Binance
    from cryptofeed.symbols import Symbols

    if exchange == "binance":
        body = next(b for u, b in rest_lines(captures / "BINANCE.0") if "exchangeInfo" in u)
        syms, info = Binance._parse_symbol_data(json.loads(body))
        Symbols.set(Binance.id, syms, info)
    else:
        bodies: dict[str, Any] = {}
        for url, body in rest_lines(captures / "OKX.0"):
            bodies[url] = json.loads(body)  # the last answer per URL
        syms, info = OKX._parse_symbol_data(list(bodies.values()))
        Symbols.set(OKX.id, syms, info)
    return {native: std for std, native in syms.items()}


def cf_offline(fr: Frames, captures: Path, repeat: int) -> dict[str, Any]:
    """Best time of `repeat` passes of the frames through cryptofeed's message handler."""
    from cryptofeed.defines import L2_BOOK, TICKER, TRADES
    from cryptofeed.exchanges import OKX, Binance

    native_to_std = cf_symbols(fr.exchange, captures)
    snapshots: dict[str, str] = {}
    if fr.exchange == "binance":
        snapshots = {
            u.split("symbol=")[1].split("&")[0]: b
            for u, b in rest_lines(captures / "BINANCE.http.0.0")
        }
        natives = sorted(snapshots)
    else:
        natives = ["BTC-USD-220527", "UNI-USD-SWAP", "BTC-USDT"]
    symbols = [native_to_std[n] for n in natives]

    async def one_pass() -> tuple[float, CfCounter]:
        counter = CfCounter()
        callbacks = {k: counter.make(k) for k in (L2_BOOK, TRADES, TICKER)}
        feed: Any
        if fr.exchange == "binance":
            feed = Binance(symbols=symbols, channels=[L2_BOOK, TRADES, TICKER], callbacks=callbacks)

            async def read(url: str, **kwargs: Any) -> str:
                # the recorded snapshot in place of the REST call
                return snapshots[url.split("symbol=")[1].split("&")[0]]

            feed.http_conn.read = read
        else:
            feed = OKX(
                symbols=symbols,
                channels=[L2_BOOK, TRADES, TICKER],
                callbacks=callbacks,
                checksum_validation=True,
            )
        conn = _FakeConn()
        handler = feed.message_handler
        t0 = time.perf_counter()
        for ts, text in fr.frames:
            await handler(text, conn, ts)
        elapsed = time.perf_counter() - t0
        await feed.http_conn.close()
        return elapsed, counter

    best = float("inf")
    counter = CfCounter()
    for _ in range(repeat):
        elapsed, counter = asyncio.run(one_pass())
        best = min(best, elapsed)
    return {
        "frames": len(fr.frames),
        "seconds": best,
        "frames_per_s": len(fr.frames) / best,
        "us_per_frame": best / len(fr.frames) * 1e6,
        "callbacks": counter.total,
        "by_type": dict(counter.counts),
    }


# ------------------------------------------------------------------------------ xtrader offline


class XtCounter(xt.Strategy):
    """Counts per-event callbacks (the analogue of the cryptofeed callback above)."""

    def __init__(self) -> None:
        self.n = 0

    def on_trade(self, trade: Any) -> None:
        self.n += 1

    def on_bbo(self, quote: Any) -> None:
        self.n += 1

    def on_book(self, book: Any) -> None:
        self.n += 1

    def on_ticker(self, ticker: Any) -> None:
        self.n += 1


def xt_offline(fr: Frames, repeat: int, workdir: Path) -> dict[str, Any]:
    """Best time of `repeat` replays of the same frames through xtrader (the Rust processors
    and Arrow tables; then also with a Python strategy receiving every event as an object),
    less the replay's fixed cost (reading the recorded REST files: a multi-MB exchangeInfo,
    OKX's instrument lists), measured on the same capture without its received frames."""
    path = workdir / f"{fr.exchange}.ws.1.0"
    empty = workdir / f"{fr.exchange}.empty.ws.1.0"
    write_capture(fr, path)
    write_capture(fr, empty, with_frames=False)
    rest = fr.rest

    def best(fn: Callable[[], object]) -> float:
        out = float("inf")
        for _ in range(repeat):
            t0 = time.perf_counter()
            fn()
            out = min(out, time.perf_counter() - t0)
        return out

    setup = best(lambda: xt.replay(empty, rest=rest))
    core = best(lambda: xt.replay(path, rest=rest))
    with_py = best(lambda: xt.replay(path, rest=rest, strategies=[XtCounter()]))
    stats = dict(xt.replay(path, rest=rest).stats)
    counted = XtCounter()
    xt.replay(path, rest=rest, strategies=[counted])
    n = len(fr.frames)
    # a floor keeps the rate finite if the difference drowns in noise
    core_frames = max(core - setup, 1e-6)
    py_frames = max(with_py - setup, 1e-6)
    return {
        "frames": n,
        "seconds_setup": setup,
        "seconds_core": core,
        "seconds_with_strategy": with_py,
        "frames_per_s_core": n / core_frames,
        "frames_per_s_with_strategy": n / py_frames,
        "frames_per_s_core_incl_setup": n / core,
        "us_per_frame_core": core_frames / n * 1e6,
        "us_per_frame_with_strategy": py_frames / n * 1e6,
        "callbacks": counted.n,
        "stats": stats,
    }


def offline(repeat: int, captures: Path, reps: int = 30) -> list[dict[str, Any]]:
    """The offline comparison for both venues."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp, loopback_only():
        for exchange in ("binance", "okx"):
            fr = load_frames(exchange, captures, reps)
            cf = cf_offline(fr, captures, repeat)
            x = xt_offline(fr, repeat, Path(tmp))
            rows.append(
                {
                    "exchange": exchange,
                    "reps": reps,
                    "cryptofeed": cf,
                    "xtrader": x,
                    "throughput_ratio_core": x["frames_per_s_core"] / cf["frames_per_s"],
                    "throughput_ratio_with_strategy": (
                        x["frames_per_s_with_strategy"] / cf["frames_per_s"]
                    ),
                }
            )
    return rows


# ------------------------------------------------------------------------------ end to end


def percentiles(samples: Sequence[int]) -> list[float]:
    """Nearest-rank percentiles (PERCENTILES) of `samples`, in µs."""
    if not samples:
        return [float("nan")] * len(PERCENTILES)
    ordered = sorted(samples)
    n = len(ordered)
    return [ordered[max(1, min(n, int(-(-p * n // 100)))) - 1] / 1e3 for p in PERCENTILES]


@contextmanager
def plain_ws_on_loopback() -> Iterator[None]:
    """Let cryptofeed open ``ws://`` (no TLS) websockets, to loopback addresses only.

    Its websocket connection class accepts ``wss://`` addresses only, and the simulator speaks
    plain websocket; the feeds build connections through ``cryptofeed.feed.WSAsyncConn``, which
    is swapped for a subclass for the duration of the run.
    """
    import cryptofeed.feed as cf_feed
    from cryptofeed.connection import WSAsyncConn

    class LoopbackWSConn(WSAsyncConn):  # type: ignore[misc]
        def __init__(self, address: str, conn_id: str, **kwargs: Any) -> None:
            host = address.split("//", 1)[-1].split("/", 1)[0].rsplit(":", 1)[0]
            if not address.startswith("ws://") or not _loopback(host):
                raise PermissionError(f"peer benchmark: refused websocket {address!r}")
            super().__init__("wss://" + address.removeprefix("ws://"), conn_id, **kwargs)
            self.address = address

    original = cf_feed.WSAsyncConn
    cf_feed.WSAsyncConn = LoopbackWSConn
    try:
        yield
    finally:
        cf_feed.WSAsyncConn = original


def cf_e2e(
    sim: _core.Simulator, natives: Sequence[str], seconds: float, warmup: float
) -> dict[str, Any]:
    """cryptofeed's FeedHandler against the simulator for `seconds`."""
    from cryptofeed import FeedHandler
    from cryptofeed.connection import RestEndpoint, Routes, WebsocketEndpoint
    from cryptofeed.defines import L2_BOOK, TICKER, TRADES
    from cryptofeed.exchanges import Binance
    from cryptofeed.symbols import Symbols

    rest_url = sim.rest_url.rstrip("/")
    ws_url = sim.ws_url.rstrip("/")
    for url in (rest_url, ws_url):
        host = url.split("//", 1)[1].rsplit(":", 1)[0]
        if not _loopback(host):
            raise RuntimeError(f"simulator not on loopback: {url}")
    with urllib.request.urlopen(f"{rest_url}/api/v3/exchangeInfo", timeout=5) as resp:
        info = json.load(resp)
    syms, extra = Binance._parse_symbol_data(info)
    Symbols.set(Binance.id, syms, extra)
    native_to_std = {v: k for k, v in syms.items()}

    # the same feed class with every endpoint on the simulator
    loopback_cls: Any = type(
        "LoopbackBinance",
        (Binance,),
        {
            "websocket_endpoints": [WebsocketEndpoint(ws_url)],
            "rest_endpoints": [
                RestEndpoint(
                    rest_url,
                    routes=Routes(
                        "/api/v3/exchangeInfo", l2book="/api/v3/depth?symbol={}&limit={}"
                    ),
                )
            ],
        },
    )
    start = time.time()
    counter = CfCounter(sample_after=start + warmup)
    callbacks = {
        TRADES: counter.make(TRADES),
        TICKER: counter.make(TICKER),
        L2_BOOK: counter.make(L2_BOOK),
    }

    # latency over trades and quotes only, like the xtrader probe
    async def book_count(obj: Any, ts: float) -> None:
        counter.counts[L2_BOOK] += 1

    callbacks[L2_BOOK] = book_count
    logging.getLogger("feedhandler").setLevel(logging.ERROR)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    fh = FeedHandler(config={"log": {"disabled": True}, "uvloop": False})
    feed = loopback_cls(
        symbols=[native_to_std[n] for n in natives],
        channels=[L2_BOOK, TRADES, TICKER],
        callbacks=callbacks,
    )
    fh.add_feed(feed)
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    try:
        with plain_ws_on_loopback():
            fh.run(start_loop=False, install_signal_handlers=False)
        loop.run_until_complete(asyncio.sleep(seconds))
    finally:
        loop.run_until_complete(asyncio.wait_for(fh.stop_async(loop=loop), 10))
        wall = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
        for task in asyncio.all_tasks(loop):
            task.cancel()
        loop.run_until_complete(asyncio.sleep(0.05))
        loop.close()
        asyncio.set_event_loop(None)
    lat = percentiles(counter.latency_ns)
    events = counter.counts[TRADES] + counter.counts[TICKER]
    return {
        "seconds": round(wall, 3),
        "callbacks": counter.total,
        "messages_per_s": round(counter.total / wall),
        "trades_quotes_per_s": round(events / wall),
        "books_per_s": round(counter.counts[L2_BOOK] / wall),
        "p50_us": round(lat[0], 1),
        "p95_us": round(lat[1], 1),
        "p99_us": round(lat[2], 1),
        "p999_us": round(lat[3], 1),
        "samples": len(counter.latency_ns),
        "process_cpu_share": round(cpu / wall, 2),
    }


# xtrader's inline I/O mode: like cryptofeed's single asyncio thread, one thread reads the
# socket and runs the callbacks; it polls the socket for 2 ms before it sleeps
INLINE_BUSY_POLL_US = 2000


def e2e(rates: Sequence[float], seconds: float, natives: Sequence[str]) -> list[dict[str, Any]]:
    """cryptofeed and xtrader (default I/O threads, then inline) against the same simulator
    at each rate."""
    import e2e_load

    rows = []
    with loopback_only():
        for rate in rates:
            sim = _core.Simulator(symbols=list(natives), rate=rate, seed=7, worker_threads=1)
            sim.start()
            try:
                cf = cf_e2e(sim, natives, seconds, warmup=1.0)
            finally:
                sim.stop()
            x = e2e_load.run(rate, seconds, "binance", natives, warmup_s=1.0)
            xi = e2e_load.run(
                rate,
                seconds,
                "binance",
                natives,
                warmup_s=1.0,
                worker_threads=0,
                busy_poll_us=INLINE_BUSY_POLL_US,
            )
            rows.append(
                {
                    "rate": rate,
                    "cryptofeed": cf,
                    "xtrader": x,
                    "xtrader_inline": xi,
                    # one cryptofeed callback per message (depth diff, trade, quote)
                    "throughput_ratio": _ratio(x["messages_per_s"], cf["messages_per_s"]),
                    "p99_fraction": _ratio(x["p99_us"], cf["p99_us"]),
                    "p50_fraction": _ratio(x["p50_us"], cf["p50_us"]),
                    "inline_throughput_ratio": _ratio(xi["messages_per_s"], cf["messages_per_s"]),
                    "inline_p99_fraction": _ratio(xi["p99_us"], cf["p99_us"]),
                    "inline_p50_fraction": _ratio(xi["p50_us"], cf["p50_us"]),
                }
            )
    return rows


def _ratio(a: float, b: float) -> float:
    return round(a / b, 3) if b else float("nan")


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=5, help="offline passes (best is kept)")
    ap.add_argument("--reps", type=int, default=30, help="copies of the recorded frames")
    ap.add_argument("--seconds", type=float, default=8.0, help="seconds per end-to-end run")
    ap.add_argument("--rates", type=float, nargs="*", default=[10_000, 0])
    ap.add_argument("--symbols", nargs="+", default=["BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT"])
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    captures = captures_dir()
    result: dict[str, Any] = {"offline": offline(args.repeat, captures, args.reps)}
    for row in result["offline"]:
        cf, x = row["cryptofeed"], row["xtrader"]
        print(
            f"offline {row['exchange']}: {cf['frames']} frames; cryptofeed "
            f"{cf['frames_per_s']:,.0f} frames/s; xtrader replay {x['frames_per_s_core']:,.0f} "
            f"(core) {x['frames_per_s_with_strategy']:,.0f} (with strategy); ratio "
            f"{row['throughput_ratio_core']:.1f}x / {row['throughput_ratio_with_strategy']:.1f}x",
            flush=True,
        )
    result["e2e"] = e2e(args.rates, args.seconds, args.symbols) if args.rates else []
    for row in result["e2e"]:
        print(json.dumps(row), flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=1, default=str)


if __name__ == "__main__":
    main()
