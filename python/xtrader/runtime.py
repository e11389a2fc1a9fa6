"""The live runtime: subscriptions, strategies and sinks around the Rust `Engine`.

`Runtime.run` blocks on the calling thread: it starts the engine, then loops on
``engine.next_batch`` (the wait releases the GIL) and hands each batch to the strategies and
sinks. SIGINT/SIGTERM (handlers installed only when running on the main thread, the previous
ones restored afterwards), `Runtime.stop` or the elapsed `duration` end the loop: intake stops,
what is already queued is drained through the strategies, every ``on_stop`` runs, sinks are
flushed and closed.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import replace
from types import FrameType, TracebackType
from typing import Literal

import polars as pl

from ._core import Book, Engine, Simulator, Status
from ._dispatch import Dispatcher, Sink
from .config import (
    CHANNELS,
    SIM,
    Config,
    FeedConfig,
    MetricsConfig,
    RuntimeConfig,
    load_config,
)
from .exceptions import ConfigError, XtraderError
from .sinks import GapTracker, ParquetSink, SinkHost, SinkStatus
from .sinks import Sink as ColumnarSink
from .strategy import Context, Strategy, overrides

__all__ = ["Runtime"]

logger = logging.getLogger("xtrader")

BATCH_MAX_EVENTS = 4096
BATCH_TIMEOUT_MS = 100
FRAMES_MAX_EVENTS = 16384
"""Events per `Engine.next_frames` call when columnar sinks are attached."""
DRAIN_TIMEOUT_S = 10.0
"""Upper bound on draining queued events after stop (the queue itself is bounded)."""
ENGINE_STOP_TIMEOUT_MS = 3000


class Runtime:
    """Live market data: feeds, strategies and sinks driven by the Rust engine.

    Args:
        queue_capacity: Events the bus holds before `overflow` applies.
        overflow: ``"block"`` (back-pressure, nothing dropped) or ``"drop_oldest"``.
        worker_threads: Tokio worker threads.
        metrics: ``"host:port"`` for the Prometheus ``/metrics`` endpoint, or None.

    Raises:
        ConfigError: When a setting is invalid.

    Example:
        >>> rt = Runtime()
        >>> rt.subscribe("binance", ["BTCUSDT"], channels=("trades", "book"))
        >>> rt.add_strategy(MyStrategy())
        >>> rt.run()  # until Ctrl-C
    """

    def __init__(
        self,
        queue_capacity: int = 65536,
        overflow: Literal["block", "drop_oldest"] = "block",
        worker_threads: int = 2,
        metrics: str | None = None,
    ) -> None:
        settings = RuntimeConfig(queue_capacity, overflow, worker_threads)
        if metrics is not None:
            try:
                MetricsConfig(metrics)
            except ConfigError as exc:
                raise ConfigError("metrics", exc.message) from None
        self.config: Config | None = None
        self._engine = Engine(
            queue_capacity=settings.queue_capacity,
            overflow=settings.overflow,
            worker_threads=settings.worker_threads,
            metrics_addr=metrics or None,
        )
        self._feeds: list[FeedConfig] = []
        self._strategies: list[Strategy] = []
        self._sinks: list[Sink] = []
        self._hosts: list[SinkHost] = []
        self._gaps = GapTracker()
        self.sink_statuses: list[SinkStatus] = []
        self.count_delivered = False
        """Count the rows handed to columnar sinks per (channel, exchange, symbol)."""
        self.delivered: dict[tuple[str, str, str], int] = {}
        self._sim: Simulator | None = None
        self._owns_sim = False
        self._stop = threading.Event()
        self._state: Literal["new", "running", "stopped"] = "new"
        self._lock = threading.Lock()
        self._dispatcher = Dispatcher([])

    # ----------------------------------------------------------------------------- building

    @classmethod
    def from_config(cls, config: str | os.PathLike[str] | Config) -> Runtime:
        """Build a runtime from a TOML file or a `Config`.

        Starts the embedded simulator when the configuration has a ``[sim]`` table (feeds
        whose URL is ``"sim"`` connect to it), instantiates the configured strategies and
        attaches a `ParquetRecorder` when ``[record]`` is set.

        Args:
            config: Path of a TOML file, or a validated `Config`.

        Raises:
            ConfigError: Naming the bad key.
        """
        cfg = config if isinstance(config, Config) else load_config(config)
        strategies = cfg.load_strategies()
        rt = cls(
            cfg.runtime.queue_capacity,
            cfg.runtime.overflow,
            cfg.runtime.worker_threads,
            metrics=cfg.metrics.addr,
        )
        rt.config = cfg
        try:
            if cfg.sim is not None:
                sim = Simulator(
                    symbols=list(cfg.sim.symbols),
                    rate=cfg.sim.rate,
                    seed=cfg.sim.seed,
                    port=cfg.sim.port,
                )
                sim.start()
                rt.attach_simulator(sim, owned=True)
            for i, feed in enumerate(cfg.feeds):
                try:
                    rt._add_feed(feed)
                except ConfigError as exc:
                    raise exc.with_prefix(f"feeds[{i}]") from None
            for strategy in strategies:
                rt.add_strategy(strategy)
            if cfg.record is not None:
                rt.add_sink(
                    ParquetSink(
                        cfg.record.dir,
                        (*cfg.record.channels, "gaps"),
                        cfg.record.flush_interval_s,
                    )
                )
            for i, ref in enumerate(cfg.sinks):
                try:
                    rt.add_sink(ref.load())
                except ConfigError as exc:
                    raise exc.with_prefix(f"sinks[{i}]") from None
        except BaseException:
            rt.close()
            raise
        return rt

    def attach_simulator(self, sim: Simulator, owned: bool = False) -> None:
        """Use `sim` for feeds whose ``ws_url``/``rest_url`` is ``"sim"``.

        Args:
            sim: A started simulator.
            owned: Stop it when the runtime stops.
        """
        self._sim = sim
        self._owns_sim = owned

    @property
    def simulator(self) -> Simulator | None:
        """The simulator ``"sim"`` URLs resolve to, if any."""
        return self._sim

    def subscribe(
        self,
        exchange: str,
        symbols: str | Iterable[str],
        channels: Sequence[str] = CHANNELS,
        ws_url: str | None = None,
        rest_url: str | None = None,
        depth_limit: int = 1000,
        trade_stream: Literal["trade", "aggTrade"] = "trade",
    ) -> None:
        """Subscribe to channels of symbols on a venue (before `run`).

        Args:
            exchange: Venue id (``binance``, ``binance_us``).
            symbols: Native (``BTCUSDT``) or normalized (``BTC-USDT``) symbols.
            channels: Any of ``trades``, ``book``, ``bbo``.
            ws_url: Websocket URL override; ``"sim"`` for the attached simulator.
            rest_url: REST URL override; ``"sim"`` for the attached simulator.
            depth_limit: Depth of REST snapshots.
            trade_stream: ``"trade"`` or ``"aggTrade"``.

        Raises:
            ConfigError: Naming the bad argument.
            XtraderError: When the runtime is already running.
        """
        names = (symbols,) if isinstance(symbols, str) else tuple(symbols)
        feed = FeedConfig(
            exchange, names, tuple(channels), ws_url, rest_url, depth_limit, trade_stream
        )
        self._add_feed(feed)

    def _add_feed(self, feed: FeedConfig) -> None:
        if self._state != "new":
            raise XtraderError("subscribe before run(): the runtime is already running")
        if feed.uses_sim:
            if self._sim is None:
                key = "ws_url" if feed.ws_url == SIM else "rest_url"
                raise ConfigError(key, "'sim' needs a simulator (a [sim] table)")
            feed = replace(
                feed,
                ws_url=self._sim.ws_url if feed.ws_url == SIM else feed.ws_url,
                rest_url=self._sim.rest_url if feed.rest_url == SIM else feed.rest_url,
            )
        self._engine.add_feed(
            feed.exchange,
            list(feed.symbols),
            list(feed.channels),
            ws_url=feed.ws_url,
            rest_url=feed.rest_url,
            depth_limit=feed.depth_limit,
            trade_stream=feed.trade_stream,
        )
        self._feeds.append(feed)

    @property
    def feeds(self) -> tuple[FeedConfig, ...]:
        """The subscriptions, with ``"sim"`` resolved to real URLs."""
        return tuple(self._feeds)

    def add_strategy(self, strategy: Strategy) -> Strategy:
        """Attach a strategy (before `run`); it receives events in attachment order.

        Returns:
            The strategy, for chaining.
        """
        if not isinstance(strategy, Strategy):
            raise TypeError(f"expected an xtrader.Strategy, got {type(strategy).__name__}")
        if self._state != "new":
            raise XtraderError("add strategies before run()")
        self._strategies.append(strategy)
        return strategy

    def add_sink(self, sink: Sink | ColumnarSink) -> Sink | ColumnarSink:
        """Attach a sink (before `run`).

        An `xtrader.sinks.Sink` receives columnar frames (one polars frame per channel,
        including ``gaps``) at its flush interval, its batch-size limit and at shutdown; its
        failures are isolated and its data spooled (`xtrader.sinks.SinkHost`). Any other
        object with ``write(events)``/``tick(now)``/``close()`` (e.g. the status display)
        receives every batch of event objects.
        """
        if self._state != "new":
            raise XtraderError("add sinks before run()")
        if isinstance(sink, ColumnarSink):
            self._hosts.append(SinkHost(sink, self._sink_status))
        else:
            self._sinks.append(sink)
        return sink

    def record_raw(
        self,
        dir: str | os.PathLike[str],
        rotate_bytes: int = 256 * 1024 * 1024,
        rotate_interval_s: float = 3600.0,
    ) -> None:
        """Capture every received websocket frame and REST answer into `dir` (before `run`).

        Files ``<venue>-<feed>-<first_ts_ns>-<n>.xtraw.lz4`` (xtrader's raw format, LZ4,
        rotated by size and age; ``.open`` while written). `xtrader.replay` of any of them
        reproduces the run's events through the same parsers.
        """
        if self._state != "new":
            raise XtraderError("enable raw capture before run()")
        path = os.fspath(dir)
        os.makedirs(path, exist_ok=True)
        self._engine.record_raw(path, rotate_bytes, rotate_interval_s)

    def _sink_status(self, status: SinkStatus) -> None:
        """A sink's health change: kept, and handed to the strategies' ``on_status``."""
        self.sink_statuses.append(status)
        for strategy in self._strategies:
            if overrides(strategy, "on_status"):
                try:
                    strategy.on_status(status)  # type: ignore[arg-type]
                except Exception as exc:
                    logger.error("on_status raised %s on a sink status", type(exc).__name__)

    @property
    def strategies(self) -> tuple[Strategy, ...]:
        """Attached strategies."""
        return tuple(self._strategies)

    # ------------------------------------------------------------------------------ running

    def run(self, duration: float | None = None) -> None:
        """Run until SIGINT/SIGTERM, `stop()` or `duration` seconds; then drain and stop.

        Args:
            duration: Seconds to run, or None for no limit.

        Raises:
            XtraderError: When called twice.
        """
        if duration is not None and not duration >= 0:
            raise ValueError(f"duration must be >= 0, got {duration}")
        with self._lock:
            if self._state != "new":
                raise XtraderError("a Runtime runs once; build a new one")
            self._state = "running"
        dispatcher = Dispatcher(self._strategies)
        self._dispatcher = dispatcher
        deadline = None if duration is None else time.monotonic() + duration
        restore = self._install_signal_handlers()
        started = False
        try:
            self._engine.start()
            started = True
            dispatcher.start(Context(self))
            now = time.monotonic()
            for host in self._hosts:
                host.open(now)
            self._loop(dispatcher, deadline)
        finally:
            try:
                if started:
                    self._engine.stop(ENGINE_STOP_TIMEOUT_MS)
                    self._drain(dispatcher)
            finally:
                dispatcher.stop()
                self._close_sinks(dispatcher)
                self._stop_sim()
                restore()
                self._state = "stopped"

    def _loop(self, dispatcher: Dispatcher, deadline: float | None) -> None:
        while not self._stop.is_set():
            timeout_ms = BATCH_TIMEOUT_MS
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                timeout_ms = max(1, min(BATCH_TIMEOUT_MS, int(left * 1000)))
            self._next(dispatcher, timeout_ms)
            self._tick_sinks(dispatcher)

    def _next(self, dispatcher: Dispatcher, timeout_ms: int) -> bool:
        """Wait for one batch and hand it to strategies and sinks; False when none came."""
        engine = self._engine
        if not self._hosts:
            batch = engine.next_batch(BATCH_MAX_EVENTS, timeout_ms)
            if not batch:
                return False
            dispatcher.dispatch(batch)
            self._write_sinks(dispatcher, batch)
            return True
        objects = bool(self._strategies) or bool(self._sinks)
        events, tables = engine.next_frames(FRAMES_MAX_EVENTS, timeout_ms, objects)
        if not events and not tables:
            return False
        if events:
            dispatcher.dispatch(events)
            self._write_sinks(dispatcher, events)
            if objects:
                self._gaps.observe([e for e in events if isinstance(e, Status)])
            else:
                self._gaps.observe(events)  # statuses only
        frames = {channel: pl.DataFrame(table) for channel, table in tables.items()}
        gaps = self._gaps.take()
        if gaps is not None:
            frames["gaps"] = gaps
        if self.count_delivered:
            self._count(frames)
        now = time.monotonic()
        for host in self._hosts:
            host.add(frames, now)
        return True

    def _drain(self, dispatcher: Dispatcher) -> None:
        """Deliver what the engine had queued when intake stopped (bounded in time)."""
        give_up = time.monotonic() + DRAIN_TIMEOUT_S
        while time.monotonic() < give_up:
            if not self._next(dispatcher, 20):
                return
        logger.warning("drain stopped after %.0f s with events still queued", DRAIN_TIMEOUT_S)

    def _write_sinks(self, dispatcher: Dispatcher, batch: Sequence[object]) -> None:
        for sink in self._sinks:
            try:
                sink.write(batch)  # type: ignore[arg-type]
            except Exception as exc:
                dispatcher.sink_error(sink, "write", exc)

    def _tick_sinks(self, dispatcher: Dispatcher) -> None:
        now = time.monotonic()
        for host in self._hosts:
            host.tick(now)
        for sink in self._sinks:
            try:
                sink.tick(now)
            except Exception as exc:
                dispatcher.sink_error(sink, "tick", exc)

    def _close_sinks(self, dispatcher: Dispatcher) -> None:
        gaps = self._gaps.take(final=True)
        if gaps is not None and self.count_delivered:
            self._count({"gaps": gaps})
        now = time.monotonic()
        for host in self._hosts:
            if gaps is not None:
                host.add({"gaps": gaps}, now)
            host.close(now)
        for sink in self._sinks:
            try:
                sink.close()
            except Exception as exc:
                dispatcher.sink_error(sink, "close", exc)

    def _install_signal_handlers(self) -> _Restore:
        if threading.current_thread() is not threading.main_thread():
            return _Restore({})
        previous: dict[int, object] = {}

        def on_signal(signum: int, frame: FrameType | None) -> None:
            # Runs between bytecodes on the main thread: only set flags here (no logging, no
            # locks). A second signal abandons the drain.
            if self._stop.is_set():
                raise KeyboardInterrupt
            self._stop.set()

        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                previous[sig] = signal.signal(sig, on_signal)
            except (ValueError, OSError):  # pragma: no cover - platform without the signal
                continue
        return _Restore(previous)

    def stop(self) -> None:
        """Ask `run` to stop (thread-safe, callable from callbacks and signal handlers)."""
        self._stop.set()

    @property
    def running(self) -> bool:
        """Whether `run` is in progress."""
        return self._state == "running"

    def close(self) -> None:
        """Release what was started without running (the embedded simulator)."""
        if self._state == "running":
            self.stop()
            return
        self._stop_sim()

    def _stop_sim(self) -> None:
        sim = self._sim
        if not self._owns_sim or sim is None:
            return
        self._owns_sim = False
        try:
            sim.stop()
        except Exception as exc:  # stopping must not hide the run's own outcome
            logger.warning("simulator did not stop cleanly: %s", exc)

    def __enter__(self) -> Runtime:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ----------------------------------------------------------------------------- reading

    def book(self, exchange: str, symbol: str) -> Book | None:
        """The maintained book of `symbol` on `exchange`, or None when not subscribed."""
        return self._engine.book(exchange, symbol)

    def books(self) -> list[Book]:
        """Every maintained book."""
        return self._engine.books()

    def stats(self) -> dict[str, int]:
        """Engine counters merged with the dispatcher's and the sinks'.

        Dispatcher keys: ``dispatched_events``, ``dispatched_batches``, ``dispatched_trades``,
        ``dispatched_bbo``, ``dispatched_book_updates``, ``dispatched_statuses``,
        ``callback_errors``, ``sink_errors``.
        """
        out = dict(self._engine.stats())
        out.update(self._dispatcher.counters)
        for sink in [*self._sinks, *(h.sink for h in self._hosts)]:
            sink_stats = getattr(sink, "stats", None)
            if callable(sink_stats):
                for key, value in sink_stats().items():
                    out[key] = out.get(key, 0) + int(value)
        for host in self._hosts:
            for key, value in host.counters.items():
                out[key] = out.get(key, 0) + value
        out["gaps_recorded"] = self._gaps.gaps
        return out

    def _count(self, frames: dict[str, pl.DataFrame]) -> None:
        delivered = self.delivered
        for channel, frame in frames.items():
            for ex, sym, n in frame.group_by("exchange", "symbol").len().iter_rows():
                key = (channel, str(ex), str(sym))
                delivered[key] = delivered.get(key, 0) + int(n)

    def sink_received(self) -> dict[tuple[str, str, str], int]:
        """Rows each columnar sink was handed, per (channel, exchange, symbol), summed."""
        total: dict[tuple[str, str, str], int] = {}
        for host in self._hosts:
            for key, n in host.received.items():
                total[key] = total.get(key, 0) + n
        return total

    def callback_errors(self) -> dict[str, int]:
        """Errors raised by strategy callbacks, per ``"Strategy.callback"``."""
        return dict(self._dispatcher.errors)

    @property
    def metrics_addr(self) -> str | None:
        """Address of the Prometheus endpoint once started, or None."""
        return self._engine.metrics_addr

    def metrics_text(self) -> str:
        """The Prometheus exposition text the endpoint serves."""
        return self._engine.metrics_text()


class _Restore:
    """Puts back the signal handlers replaced by `Runtime.run`."""

    def __init__(self, previous: dict[int, object]) -> None:
        self._previous = previous

    def __call__(self) -> None:
        for sig, handler in self._previous.items():
            try:
                signal.signal(sig, handler)  # type: ignore[arg-type]
            except (ValueError, OSError, TypeError):  # pragma: no cover
                continue
