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

from ._core import Book, Engine, Simulator
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
from .record import ParquetRecorder
from .strategy import Context, Strategy

__all__ = ["Runtime"]

logger = logging.getLogger("xtrader")

BATCH_MAX_EVENTS = 4096
BATCH_TIMEOUT_MS = 100
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
                    okx_symbols=list(cfg.sim.okx_symbols),
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
                    ParquetRecorder(
                        cfg.record.dir, cfg.record.channels, cfg.record.flush_interval_s
                    )
                )
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
        venue_channels: Sequence[str] = (),
        stale_after_ms: int = 30000,
    ) -> None:
        """Subscribe to channels of symbols on a venue (before `run`).

        Args:
            exchange: Venue id (``binance``, ``binance_us``, ``okx``).
            symbols: Native (``BTCUSDT``) or normalized (``BTC-USDT``) symbols.
            channels: Any of ``trades``, ``book``, ``bbo`` (``okx`` adds ``ticker``,
                ``funding``, ``liquidations``, ``open_interest``).
            ws_url: Websocket URL override; ``"sim"`` for the attached simulator.
            rest_url: REST URL override; ``"sim"`` for the attached simulator.
            depth_limit: Depth of REST snapshots.
            trade_stream: ``"trade"`` or ``"aggTrade"`` (Binance).
            venue_channels: OKX wire channels instead of the defaults (``books5``,
                ``trades-all``...).
            stale_after_ms: Reconnect after this long without any frame.

        Raises:
            ConfigError: Naming the bad argument.
            XtraderError: When the runtime is already running.
        """
        names = (symbols,) if isinstance(symbols, str) else tuple(symbols)
        feed = FeedConfig(
            exchange,
            names,
            tuple(channels),
            ws_url,
            rest_url,
            depth_limit,
            trade_stream,
            tuple(venue_channels),
            stale_after_ms,
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
            stale_after_ms=feed.stale_after_ms,
            venue_channels=list(feed.venue_channels),
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

    def add_sink(self, sink: Sink) -> Sink:
        """Attach a sink (recorder, display): it receives every batch (before `run`)."""
        if self._state != "new":
            raise XtraderError("add sinks before run()")
        self._sinks.append(sink)
        return sink

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
        engine = self._engine
        while not self._stop.is_set():
            timeout_ms = BATCH_TIMEOUT_MS
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                timeout_ms = max(1, min(BATCH_TIMEOUT_MS, int(left * 1000)))
            batch = engine.next_batch(BATCH_MAX_EVENTS, timeout_ms)
            if batch:
                dispatcher.dispatch(batch)
                self._write_sinks(dispatcher, batch)
            self._tick_sinks(dispatcher)

    def _drain(self, dispatcher: Dispatcher) -> None:
        """Deliver what the engine had queued when intake stopped (bounded in time)."""
        give_up = time.monotonic() + DRAIN_TIMEOUT_S
        while time.monotonic() < give_up:
            batch = self._engine.next_batch(BATCH_MAX_EVENTS, 20)
            if not batch:
                return
            dispatcher.dispatch(batch)
            self._write_sinks(dispatcher, batch)
        logger.warning("drain stopped after %.0f s with events still queued", DRAIN_TIMEOUT_S)

    def _write_sinks(self, dispatcher: Dispatcher, batch: Sequence[object]) -> None:
        for sink in self._sinks:
            try:
                sink.write(batch)  # type: ignore[arg-type]
            except Exception as exc:
                dispatcher.sink_error(sink, "write", exc)

    def _tick_sinks(self, dispatcher: Dispatcher) -> None:
        now = time.monotonic()
        for sink in self._sinks:
            try:
                sink.tick(now)
            except Exception as exc:
                dispatcher.sink_error(sink, "tick", exc)

    def _close_sinks(self, dispatcher: Dispatcher) -> None:
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
        for sink in self._sinks:
            sink_stats = getattr(sink, "stats", None)
            if callable(sink_stats):
                for key, value in sink_stats().items():
                    out[key] = out.get(key, 0) + int(value)
        return out

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
