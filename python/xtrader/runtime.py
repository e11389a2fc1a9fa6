"""The live runtime: subscriptions, strategies and sinks around the Rust `Engine`.

`Runtime.run` blocks on the calling thread: it starts the engine, then loops on
``engine.next_batch`` (the wait releases the GIL) and hands each batch to the strategies and
sinks. What is fetched is decided once per run: one Python object per event only when a
strategy has a per-event callback (or a sink or `Runtime.events` needs them), Arrow tables
made in Rust (``engine.next_frames``) only when a strategy overrides ``on_batch``. Timers
(``ctx.schedule``, ``ctx.at``) run from the same loop, which never waits past the next one.

asyncio: ``async with Runtime(...) as rt`` with ``async for ev in rt.events(...)`` or
``await rt.run_async()``. The engine waits run in the default executor (GIL released), so the
event loop is never blocked and an already running loop (Jupyter) works; callbacks run on the
event loop's thread; cancelling the task stops the engine, drains, calls ``on_stop`` and closes
the sinks before the cancellation propagates.
 SIGINT/SIGTERM (handlers installed only when running on the main thread, the previous
ones restored afterwards), `Runtime.stop` or the elapsed `duration` end the loop: intake stops,
what is already queued is drained through the strategies, every ``on_stop`` runs, sinks are
flushed and closed.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
import time
from collections.abc import AsyncGenerator, Callable, Iterable, Sequence
from dataclasses import replace
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any, Literal

import polars as pl

from ._core import Book, Engine, Simulator, Status
from ._dispatch import _ROUTES, Dispatcher, OnError, Sink, _predicate
from .config import (
    CHANNELS,
    SIM,
    Config,
    FeedConfig,
    JetStreamConfig,
    MetricsConfig,
    RuntimeConfig,
    SourceConfig,
    load_config,
)
from .exceptions import ConfigError, StrategyError, XtraderError
from .sinks import GapTracker, ParquetSink, SinkHost, SinkStatus
from .sinks import Sink as ColumnarSink
from .strategy import EVENT_CHANNELS, Context, Strategy, filters, overrides

if TYPE_CHECKING:
    from ._core import Event

__all__ = ["Runtime"]

logger = logging.getLogger("xtrader")

BATCH_MAX_EVENTS = 4096
FRAME_MAX_EVENTS = 65536
"""Events per fetch when only columnar frames are built (no per-event objects)."""
BATCH_TIMEOUT_MS = 100
FRAMES_MAX_EVENTS = 16384
"""Events per `Engine.next_frames` call when columnar sinks are attached."""
DRAIN_TIMEOUT_S = 10.0
"""Upper bound on draining queued events after stop (the queue itself is bounded)."""
ENGINE_STOP_TIMEOUT_MS = 3000
BUS_CLOSE_TIMEOUT_MS = 10000
"""Bound on publishing what the JetStream sink holds at stop (and the source's last acks)."""


class Runtime:
    """Live market data: feeds, strategies and sinks driven by the Rust engine.

    Args:
        queue_capacity: Events the bus holds before `overflow` applies.
        overflow: ``"block"`` (back-pressure, nothing dropped) or ``"drop_oldest"``.
        worker_threads: Tokio I/O threads; 0 = inline (the sockets are read on the thread
            that runs the strategies, while it waits: lowest latency, one core, nothing read
            while a callback runs).
        metrics: ``"host:port"`` for the Prometheus ``/metrics`` endpoint, or None.
        on_error: A strategy callback raised: ``"continue"`` (report, the feed goes on) or
            ``"stop"`` (stop the run; `run` then raises `StrategyError`).
        quote_policy: bbo/ticker on a full bus: ``"conflate"`` or ``"block"``.
        book_policy: Book updates on a full bus: ``"resync"`` (the symbol resyncs from a
            fresh snapshot, announced; nothing dropped) or ``"block"``.
        trade_policy: Trades on a full bus: ``"block"`` or ``"spill"`` (bounded file).
        spill_dir: Folder of the trade spill file (``""``: ``<tmp>/xtrader-spill``).
        spill_max_bytes: Spill file bound; past it trades block.
        busy_poll_us: Spin this long on an empty bus before sleeping (0 = off): lower
            hand-off latency at the price of a busy core.

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
        on_error: OnError = "continue",
        quote_policy: Literal["conflate", "block"] = "conflate",
        book_policy: Literal["resync", "block"] = "resync",
        trade_policy: Literal["block", "spill"] = "block",
        spill_dir: str = "",
        spill_max_bytes: int = 1 << 30,
        busy_poll_us: int = 0,
    ) -> None:
        settings = RuntimeConfig(
            queue_capacity,
            overflow,
            worker_threads,
            on_error,
            quote_policy,
            book_policy,
            trade_policy,
            spill_dir,
            spill_max_bytes,
            busy_poll_us,
        )
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
            quote_policy=settings.quote_policy,
            book_policy=settings.book_policy,
            trade_policy=settings.trade_policy,
            spill_dir=settings.spill_dir or None,
            spill_max_bytes=settings.spill_max_bytes,
            busy_poll_us=settings.busy_poll_us,
        )
        self._feeds: list[FeedConfig] = []
        self._jetstream: JetStreamConfig | None = None
        self._source: SourceConfig | None = None
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
        self._on_error: OnError = settings.on_error
        self._dispatcher = Dispatcher([])
        self._async_events: AsyncGenerator[Event, None] | None = None
        self._async_run: asyncio.Future[None] | None = None

    # ----------------------------------------------------------------------------- building

    @classmethod
    def from_config(cls, config: str | os.PathLike[str] | Config) -> Runtime:
        """Build a runtime from a TOML file or a `Config`.

        Starts the embedded simulator when the configuration has a ``[sim]`` table (feeds
        whose URL is ``"sim"`` connect to it), instantiates the configured strategies,
        attaches a `ParquetRecorder` when ``[record]`` is set, publishes into JetStream when
        ``[jetstream]`` is set and consumes JetStream instead of feeds when ``[source]`` is.

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
            on_error=cfg.runtime.on_error,
            quote_policy=cfg.runtime.quote_policy,
            book_policy=cfg.runtime.book_policy,
            trade_policy=cfg.runtime.trade_policy,
            spill_dir=cfg.runtime.spill_dir,
            spill_max_bytes=cfg.runtime.spill_max_bytes,
            busy_poll_us=cfg.runtime.busy_poll_us,
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
            if cfg.source is not None:
                rt._set_source(cfg.source)
            if cfg.jetstream is not None:
                rt._add_jetstream(cfg.jetstream)
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
        trade_stream: Literal["trade", "aggTrade"] | None = None,
        venue_channels: Sequence[str] = (),
        stale_after_ms: int = 30000,
        open_interest_interval_s: float = 10.0,
        connection_lifetime_s: float | None = None,
        max_data_silence_ms: int | None = None,
    ) -> None:
        """Subscribe to channels of symbols on a venue (before `run`).

        Args:
            exchange: Venue id (``binance``, ``binance_us``, ``binance_usdm``,
                ``binance_coinm``, ``okx``).
            symbols: Native (``BTCUSDT``, ``BTCUSD_PERP``, ``BTC-USDT-SWAP``) or normalized
                (``BTC-USDT``, ``BTC-USDT-PERP``, ``BTC-USD-20251226``) symbols.
            channels: Any of ``trades``, ``book``, ``bbo``; futures venues and ``okx`` also
                ``funding``, ``liquidations``, ``open_interest``; ``okx`` also ``ticker``.
            ws_url: Websocket URL override; ``"sim"`` for the attached simulator.
            rest_url: REST URL override; ``"sim"`` for the attached simulator.
            depth_limit: Depth of REST snapshots.
            trade_stream: ``"trade"`` or ``"aggTrade"`` (Binance); None = the venue's default.
            venue_channels: OKX wire channels instead of the defaults (``books5``,
                ``trades-all``...).
            stale_after_ms: Reconnect after this long without any frame.
            open_interest_interval_s: Open-interest polling interval (futures).
            connection_lifetime_s: Connection lifetime override (None = the venue's 24 h);
                sockets roll over to fresh connections before it ends.
            max_data_silence_ms: Reconnect when connected but no data frame arrives for this
                long (None = the venue's guaranteed cadence plus 15 s, where it has one).

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
            open_interest_interval_s,
            connection_lifetime_s,
            max_data_silence_ms,
        )
        self._add_feed(feed)

    def _add_feed(self, feed: FeedConfig) -> None:
        if self._state != "new":
            raise XtraderError("subscribe before run(): the runtime is already running")
        if self._source is not None:
            raise ConfigError(
                "source",
                "a JetStream source replaces feeds: this runtime consumes stream "
                f"{self._source.stream!r}, it cannot also subscribe to {feed.exchange}",
            )
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
            open_interest_interval_ms=round(feed.open_interest_interval_s * 1000),
            connection_lifetime_ms=(
                None
                if feed.connection_lifetime_s is None
                else round(feed.connection_lifetime_s * 1000)
            ),
            venue_channels=list(feed.venue_channels),
            max_data_silence_ms=feed.max_data_silence_ms,
        )
        self._feeds.append(feed)

    @property
    def feeds(self) -> tuple[FeedConfig, ...]:
        """The subscriptions, with ``"sim"`` resolved to real URLs."""
        return tuple(self._feeds)

    def publish_jetstream(
        self,
        servers: str | Iterable[str],
        stream: str = "XT",
        *,
        subject_prefix: str = "xt",
        replicas: int = 1,
        max_age_s: float = 0.0,
        max_bytes: int = -1,
        max_msgs: int = -1,
        duplicate_window_s: float = 120.0,
        max_inflight: int = 1024,
        snapshot_interval_s: float = 30.0,
        channels: Sequence[str] | None = None,
    ) -> None:
        """Publish every normalized event into a NATS JetStream stream (before `run`).

        Events go to subjects ``<subject_prefix>.<channel>.<exchange>.<symbol>``, book
        status events too; full books are republished every `snapshot_interval_s` so a
        consumer starting late can build them. The stream is created when absent.

        Args:
            servers: ``nats://host:port`` URLs of the cluster's nodes.
            stream: Stream name (letters, digits, ``-``, ``_``).
            subject_prefix: First subject token (no dots, no wildcards).
            replicas: Copies of the stream in the cluster (1..5).
            max_age_s: Oldest message the stream keeps, seconds (0 = no age limit).
            max_bytes: Stream size bound (-1 = unlimited).
            max_msgs: Message count bound (-1 = unlimited).
            duplicate_window_s: JetStream's deduplication window, seconds.
            max_inflight: Publishes awaiting their ack; past it publishing waits.
            snapshot_interval_s: Seconds between full book snapshots.
            channels: Channels to publish (None = every channel).

        Raises:
            ConfigError: Naming the bad argument.
            XtraderError: When the runtime is already running or already publishes.

        Example:
            >>> rt = Runtime()
            >>> rt.subscribe("binance", ["BTCUSDT", "ETHUSDT"])
            >>> rt.publish_jetstream(["nats://10.0.0.1:4222", "nats://10.0.0.2:4222"])
            >>> rt.run()
        """
        names = (servers,) if isinstance(servers, str) else tuple(servers)
        config = JetStreamConfig(
            names,
            stream,
            subject_prefix,
            replicas,
            max_age_s,
            max_bytes,
            max_msgs,
            duplicate_window_s,
            max_inflight,
            snapshot_interval_s,
            None if channels is None else tuple(channels),
        )
        self._add_jetstream(config)

    def _add_jetstream(self, config: JetStreamConfig) -> None:
        if self._state != "new":
            raise XtraderError("publish_jetstream before run(): the runtime is already running")
        if self._jetstream is not None:
            raise XtraderError(
                f"this runtime already publishes into stream {self._jetstream.stream!r}"
            )
        if self._source is not None:
            Config._check_no_loop(self._source, config)
        self._engine.add_jetstream_sink(
            list(config.servers),
            config.stream,
            subject_prefix=config.subject_prefix,
            replicas=config.replicas,
            max_age_ms=round(config.max_age_s * 1000),
            max_bytes=config.max_bytes,
            max_msgs=config.max_msgs,
            duplicate_window_ms=_ms(config.duplicate_window_s),
            max_inflight=config.max_inflight,
            snapshot_interval_ms=_ms(config.snapshot_interval_s),
            channels=None if config.channels is None else list(config.channels),
        )
        self._jetstream = config

    def consume_jetstream(
        self,
        servers: str | Iterable[str],
        stream: str = "XT",
        *,
        subject: str = "xt.>",
        durable: str = "xtrader",
        checkpoint: str | os.PathLike[str] | None = None,
        batch: int = 512,
        gap_timeout_s: float = 2.0,
    ) -> None:
        """Take events from a NATS JetStream stream instead of venues (before `run`).

        The runtime then has no feeds: strategies and sinks receive what collectors published
        (`publish_jetstream`), books are rebuilt from the bus and `book`/`books` answer for the
        symbols seen on it. The durable consumer resumes where it stopped; with a
        `checkpoint` file no event is delivered twice across restarts.

        Args:
            servers: ``nats://host:port`` URLs of the cluster's nodes.
            stream: Stream name (letters, digits, ``-``, ``_``).
            subject: One subject filter (``xt.>``, ``xt.trades.binance.*``).
            durable: Durable consumer name (letters, digits, ``-``, ``_``).
            checkpoint: File keeping the last delivered stream sequence (None = none).
            batch: Messages per pull (1..10000).
            gap_timeout_s: How long a missing stream sequence is waited for before it
                counts as a gap.

        Raises:
            ConfigError: Naming the bad argument, or ``source`` when the runtime already
                has subscriptions.
            XtraderError: When the runtime is already running or already has a source.

        Example:
            >>> rt = Runtime()
            >>> rt.consume_jetstream(["nats://10.0.0.1:4222"], subject="xt.*.binance.>")
            >>> rt.add_strategy(MyStrategy())
            >>> rt.run()
        """
        names = (servers,) if isinstance(servers, str) else tuple(servers)
        config = SourceConfig(
            "jetstream",
            names,
            stream,
            subject,
            durable,
            None if checkpoint is None else os.fspath(checkpoint),
            batch,
            gap_timeout_s,
        )
        self._set_source(config)

    def _set_source(self, config: SourceConfig) -> None:
        if self._state != "new":
            raise XtraderError("consume_jetstream before run(): the runtime is already running")
        if self._source is not None:
            raise XtraderError(f"this runtime already consumes stream {self._source.stream!r}")
        if self._feeds:
            exchanges = ", ".join(sorted({f.exchange for f in self._feeds}))
            raise ConfigError(
                "source",
                "a JetStream source replaces feeds: this runtime already subscribed to "
                f"{exchanges}",
            )
        Config._check_no_loop(config, self._jetstream)
        self._engine.set_jetstream_source(
            list(config.servers),
            config.stream,
            subject=config.subject,
            durable=config.durable,
            checkpoint=config.checkpoint,
            batch=config.batch,
            gap_timeout_ms=_ms(config.gap_timeout_s),
        )
        self._source = config

    @property
    def jetstream(self) -> JetStreamConfig | None:
        """Where the runtime publishes, or None."""
        return self._jetstream

    @property
    def source(self) -> SourceConfig | None:
        """The bus the runtime consumes instead of feeds, or None."""
        return self._source

    def add_strategy(self, strategy: Strategy) -> Strategy:
        """Attach a strategy (before `run`); it receives events in attachment order.

        Returns:
            The strategy, for chaining.

        Raises:
            TypeError: When `strategy` is not a `Strategy`.
            ValueError: When its filters are invalid (unknown channel, a bare string).
            XtraderError: When the runtime is already running.
        """
        if not isinstance(strategy, Strategy):
            raise TypeError(f"expected an xtrader.Strategy, got {type(strategy).__name__}")
        if self._state != "new":
            raise XtraderError("add strategies before run()")
        filters(strategy)  # a bad filter fails here, not when the run starts
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
            self._hosts.append(SinkHost(sink, self._sink_status, metrics=self._engine.record_sink))
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
            StrategyError: When a callback raised under ``on_error="stop"``.
        """
        if duration is not None and not duration >= 0:
            raise ValueError(f"duration must be >= 0, got {duration}")
        dispatcher = self._begin()
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
                self._finish(dispatcher)
                restore()
        self._raise_failure(dispatcher)

    def _begin(self, objects: bool = False) -> Dispatcher:
        """Mark the runtime running and build the run's dispatcher."""
        with self._lock:
            if self._state != "new":
                raise XtraderError("a Runtime runs once; build a new one")
            self._state = "running"
        try:
            dispatcher = Dispatcher(
                self._strategies, on_error=self._on_error, on_failure=self._stop.set
            )
        except BaseException:
            self._state = "stopped"
            self._stop_sim()
            raise
        self._dispatcher = dispatcher
        self._want_objects = objects or dispatcher.needs_objects or bool(self._sinks)
        self._want_frames = dispatcher.needs_frames or bool(self._hosts)
        return dispatcher

    def _finish(self, dispatcher: Dispatcher) -> None:
        """Close the JetStream sink/source, call every ``on_stop``, close the sinks and the
        owned simulator."""
        try:
            # after the drain: publish what the JetStream sink holds, acknowledge what the
            # source delivered
            lost = self._engine.close_bus(BUS_CLOSE_TIMEOUT_MS)
            if lost:
                logger.error(
                    "JetStream sink: %d messages were not acknowledged before the %d ms close "
                    "deadline",
                    lost,
                    BUS_CLOSE_TIMEOUT_MS,
                )
            dispatcher.stop()
            self._close_sinks(dispatcher)
            self._stop_sim()
        finally:
            self._state = "stopped"

    @staticmethod
    def _raise_failure(dispatcher: Dispatcher) -> None:
        if dispatcher.failure is not None:
            label, exc = dispatcher.failure
            raise StrategyError(
                label, f"{label} raised {type(exc).__name__}: {exc} (on_error='stop')"
            ) from exc

    def _fetch(self, timeout_ms: int) -> tuple[list[Event], dict[str, Any] | None]:
        """One wait on the engine (GIL released): event objects and/or columnar tables."""
        if self._want_frames:
            limit = BATCH_MAX_EVENTS if self._want_objects else FRAME_MAX_EVENTS
            events, frames = self._engine.next_frames(limit, timeout_ms, self._want_objects)
            return events, frames
        # objects wanted, or nobody needs any payload (statuses still go to on_status)
        return self._engine.next_batch(BATCH_MAX_EVENTS, timeout_ms), None

    def _deliver(
        self, dispatcher: Dispatcher, events: list[Event], frames: dict[str, Any] | None
    ) -> None:
        """Hand one fetch to the strategies and sinks, then run due timers and sink ticks."""
        if events:
            tally = dispatcher.dispatch(events)
            self._write_sinks(dispatcher, events)
            # gap intervals come from statuses (events holds only statuses in frames-only
            # runs); the dispatcher's tally spares a second pass over a batch that has none
            if Status in tally:
                self._gaps.observe([e for e in events if isinstance(e, Status)])
        # one Arrow-to-polars conversion serves on_batch strategies and columnar sinks
        polars_frames = {ch: pl.DataFrame(t) for ch, t in frames.items()} if frames else {}
        if polars_frames:
            dispatcher.dispatch_frames(polars_frames)
        if events or polars_frames:
            self._engine.mark_callbacks_done()
        if self._hosts:
            self._feed_hosts(polars_frames)
        dispatcher.run_timers()
        self._tick_sinks(dispatcher)

    def _feed_hosts(self, frames: dict[str, pl.DataFrame]) -> None:
        """Queue one batch of frames (and closed gap intervals) on every columnar sink."""
        gaps = self._gaps.take()
        if gaps is not None:
            frames = {**frames, "gaps": gaps}
        if not frames:
            return
        if self.count_delivered:
            self._count(frames)
        now = time.monotonic()
        for host in self._hosts:
            host.add(frames, now)

    def _timeout_ms(self, dispatcher: Dispatcher, deadline: float | None) -> int:
        """How long the next wait may last: the batch timeout, bounded by deadline and timers."""
        wait = BATCH_TIMEOUT_MS / 1000
        if deadline is not None:
            wait = min(wait, deadline - time.monotonic())
        timer = dispatcher.next_timer_in()
        if timer is not None:
            wait = min(wait, timer)
        return max(1, int(wait * 1000))

    def _loop(self, dispatcher: Dispatcher, deadline: float | None) -> None:
        while not self._stop.is_set():
            if deadline is not None and deadline - time.monotonic() <= 0:
                break
            events, frames = self._fetch(self._timeout_ms(dispatcher, deadline))
            self._deliver(dispatcher, events, frames)

    def _drain(self, dispatcher: Dispatcher) -> None:
        """Deliver what the engine had queued when intake stopped (bounded in time)."""
        if dispatcher.failed:
            return
        give_up = time.monotonic() + DRAIN_TIMEOUT_S
        while time.monotonic() < give_up:
            events, frames = self._fetch(20)
            if not events and not frames:
                return
            self._deliver(dispatcher, events, frames)
        logger.warning("drain stopped after %.0f s with events still queued", DRAIN_TIMEOUT_S)

    # ------------------------------------------------------------------------------ asyncio

    async def __aenter__(self) -> Runtime:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop what runs (an open `events` iterator, a `run_async` task), then `close`."""
        events = self._async_events
        if events is not None:
            self._async_events = None
            await events.aclose()
        task = self._async_run
        if task is not None and not task.done():
            self.stop()
            await asyncio.shield(task)
        self.close()

    async def run_async(self, duration: float | None = None) -> None:
        """`run` for asyncio: the loop runs in the default executor, the event loop stays free.

        Callbacks run on that executor thread. Cancelling the awaiting task stops the run
        (drain, ``on_stop``, sinks closed) before the cancellation propagates.

        Args:
            duration: Seconds to run, or None until `stop()` or cancellation.

        Raises:
            XtraderError: When the runtime already ran.
            StrategyError: When a callback raised under ``on_error="stop"``.
        """
        loop = asyncio.get_running_loop()
        task = loop.run_in_executor(None, self.run, duration)
        self._async_run = task
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            self.stop()
            await asyncio.shield(task)
            raise

    def events(
        self,
        channels: Iterable[str] | None = None,
        symbols: Iterable[str] | None = None,
        exchanges: Iterable[str] | None = None,
        duration: float | None = None,
    ) -> AsyncGenerator[Event, None]:
        """Run the runtime and yield its events (strategies and sinks still get theirs).

        Use once per runtime, inside ``async with runtime``. The engine waits run in the
        default executor; strategies' callbacks run on the event loop's thread. Breaking out,
        cancelling the task or leaving the ``async with`` stops the engine, delivers what was
        queued to the strategies, calls ``on_stop`` and closes the sinks.

        Args:
            channels: Channels to yield (`EVENT_CHANNELS`; None: all).
            symbols: Normalized or native symbols to yield (None: all).
            exchanges: Venue ids to yield (None: all).
            duration: Stop after this many seconds (None: until stop or cancellation).

        Yields:
            Event objects in arrival order (``Trade``, ``Quote``, ``BookUpdate``, ``Status``...).

        Raises:
            XtraderError: When the runtime already ran.
            StrategyError: When a callback raised under ``on_error="stop"``.
        """
        wanted: set[type] | None = None
        if channels is not None:
            names = {channels} if isinstance(channels, str) else set(channels)
            unknown = sorted(names - set(EVENT_CHANNELS))
            if unknown:
                raise ValueError(
                    f"unknown channel {unknown[0]!r} (valid: {', '.join(EVENT_CHANNELS)})"
                )
            wanted = {cls for cls, route in _ROUTES.items() if route[0] in names}
        accept = _predicate(
            None if exchanges is None else frozenset(exchanges),
            None if symbols is None else frozenset(symbols),
        )
        stream = self._event_stream(wanted, accept, duration)
        self._async_events = stream
        return stream

    async def _event_stream(
        self,
        wanted: set[type] | None,
        accept: Callable[[Any], bool] | None,
        duration: float | None,
    ) -> AsyncGenerator[Event, None]:
        dispatcher = self._begin(objects=True)
        loop = asyncio.get_running_loop()
        deadline = None if duration is None else time.monotonic() + duration
        started = False
        pending: asyncio.Future[tuple[list[Event], dict[str, Any] | None]] | None = None
        starting = loop.run_in_executor(None, self._engine.start)
        try:
            await asyncio.shield(starting)
            started = True
            dispatcher.start(Context(self))
            while not self._stop.is_set():
                if deadline is not None and deadline - time.monotonic() <= 0:
                    break
                timeout = self._timeout_ms(dispatcher, deadline)
                pending = loop.run_in_executor(None, self._fetch, timeout)
                events, frames = await asyncio.shield(pending)
                pending = None
                self._deliver(dispatcher, events, frames)
                for event in events:
                    if wanted is not None and type(event) not in wanted:
                        continue
                    if accept is not None and not accept(event):
                        continue
                    yield event
        finally:
            # Also on cancellation and aclose(): the awaits below are not cancelled again.
            try:
                if not started:
                    # Cancelled while the engine was starting, or after the start finished but
                    # before this task resumed: let the start finish, then stop the engine.
                    if not starting.done():
                        await asyncio.wait([starting])
                    started = starting.exception() is None
                if pending is not None:
                    # a wait in flight when cancelled: its events still reach the strategies
                    events, frames = await pending
                    self._deliver(dispatcher, events, frames)
                if started:
                    await loop.run_in_executor(None, self._engine.stop, ENGINE_STOP_TIMEOUT_MS)
                    give_up = time.monotonic() + DRAIN_TIMEOUT_S
                    while not dispatcher.failed and time.monotonic() < give_up:
                        events, frames = await loop.run_in_executor(None, self._fetch, 20)
                        if not events and not frames:
                            break
                        self._deliver(dispatcher, events, frames)
            finally:
                self._finish(dispatcher)
        self._raise_failure(dispatcher)

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
        ``dispatched_frames`` and ``dispatched_rows`` (``on_batch``), ``timer_calls``,
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

    def latency(self) -> dict[tuple[str, str], dict[str, int]]:
        """Stage latency quantiles in ns per ``(exchange, stage)``.

        Stages, each measured from the socket read (``ts_recv``): ``parsed``,
        ``book_applied``, ``to_python`` (taken off the bus), ``callback_done`` (the batch's
        strategy callbacks returned), ``sink_written``; and ``exchange_to_recv`` (venue time
        to socket read). Each row has ``count``, ``p50_ns``, ``p90_ns``, ``p99_ns``,
        ``p999_ns``, ``max_ns`` and ``mean_ns`` (quantiles within 12.5%). The same data is
        the ``xtrader_stage_latency_seconds`` histogram on ``/metrics``.
        """
        return self._engine.latency()

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


def _ms(seconds: float) -> int:
    """Whole milliseconds of a positive duration, at least 1 (0 means "none" to the core)."""
    return max(1, round(seconds * 1000))


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
