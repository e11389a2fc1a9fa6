"""Command line: ``python -m xtrader [COMMAND]``.

Without a command it runs the embedded default (simulator + real connector + demo strategy +
Parquet recording + metrics + status display). Commands: ``run CONFIG``, ``record CONFIG``,
``check CONFIG``, ``replay CAPTURE``, ``sim``, ``inspect DIR``; ``run`` and ``record`` take
``--shard k/N`` to collect one stable slice of the configured symbols (`xtrader.shard`).
Exit codes: 0 on success and on a clean stop by Ctrl-C/SIGTERM, 2 for a configuration error,
1 for other errors, 130 when a second Ctrl-C abandons the shutdown.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from collections import Counter
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

from .config import Config, RecordConfig, load_config, parse_config
from .exceptions import ConfigError, XtraderError

__all__ = ["default_config", "main"]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CONFIG = 2
EXIT_INTERRUPTED = 130


def default_config() -> Config:
    """The embedded default configuration (``xtrader/default.toml``)."""
    text = resources.files("xtrader").joinpath("default.toml").read_text(encoding="utf-8")
    return parse_config(text, "xtrader/default.toml")


_SHARD_HELP = (
    "collect shard k of N (0-based): a stable slice of the configured symbols, chosen by "
    "rendezvous hashing; N collectors with k = 0..N-1 cover every symbol exactly once"
)


def _parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="python -m xtrader",
        description="Low-latency crypto market-data runtime. Without a command: the embedded "
        "default (simulator, real connector, demo strategy, Parquet under ./xtrader-data, "
        "metrics on 127.0.0.1:9898). Ctrl-C stops it cleanly.",
    )
    parser.add_argument("--version", action="version", version=f"xtrader {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser("run", help="run a TOML configuration until Ctrl-C")
    run.add_argument("config", type=Path, help="TOML configuration file")
    run.add_argument("--duration", type=float, default=None, help="stop after S seconds")
    run.add_argument("--no-display", action="store_true", help="no status display")
    run.add_argument(
        "--stats-json",
        type=Path,
        default=None,
        metavar="FILE",
        help="write the final stats and the rows delivered to the sinks per channel/symbol",
    )
    run.add_argument("--shard", default=None, metavar="k/N", help=_SHARD_HELP)

    record = sub.add_parser("record", help="like run, always recording Parquet files")
    record.add_argument("config", type=Path, help="TOML configuration file")
    record.add_argument("--dir", default=None, help="recording folder (overrides [record])")
    record.add_argument("--duration", type=float, default=None, help="stop after S seconds")
    record.add_argument("--no-display", action="store_true", help="no status display")
    record.add_argument("--stats-json", type=Path, default=None, metavar="FILE")
    record.add_argument(
        "--raw",
        action="store_true",
        help="also capture every websocket frame and REST answer (xtrader raw format) under "
        "DIR/raw, replayable with 'replay'",
    )
    record.add_argument("--shard", default=None, metavar="k/N", help=_SHARD_HELP)

    check = sub.add_parser("check", help="validate a configuration (exit 2 when invalid)")
    check.add_argument("config", type=Path, help="TOML configuration file")

    replay = sub.add_parser("replay", help="replay a recorded capture and summarise it")
    replay.add_argument(
        "capture",
        type=Path,
        help="websocket capture, e.g. BINANCE.ws.1.0, or any file of an xtrader raw capture "
        "(*.xtraw.lz4, which carries its REST answers)",
    )
    replay.add_argument(
        "--rest",
        type=Path,
        nargs="+",
        default=None,
        metavar="FILE",
        help="recorded REST responses (default: the capture's siblings, e.g. BINANCE.http.0.0 "
        "and BINANCE.0)",
    )
    replay.add_argument("--exchange", default=None, help="venue id (default: from the URL)")
    replay.add_argument("--depth", type=int, default=5, help="levels shown per book")
    replay.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="DIR",
        help="write the replayed events through a Parquet sink into DIR (read with xt.read)",
    )
    replay.add_argument(
        "--format",
        choices=("parquet", "jsonl", "csv"),
        default="parquet",
        help="sink type used with --out",
    )

    sim = sub.add_parser("sim", help="serve the exchange simulator until Ctrl-C")
    sim.add_argument("--symbols", nargs="+", default=["BTCUSDT", "ETHUSDT", "SOLUSDT"])
    sim.add_argument("--rate", type=float, default=1000.0, help="messages per second")
    sim.add_argument("--port", type=int, default=0, help="TCP port (0: any free port)")
    sim.add_argument("--seed", type=int, default=1)
    sim.add_argument("--duration", type=float, default=None, help=argparse.SUPPRESS)

    inspect = sub.add_parser("inspect", help="summarise a recording folder")
    inspect.add_argument("dir", type=Path, help="recording root, e.g. ./xtrader-data")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m xtrader`` and the ``xtrader`` script.

    Args:
        argv: Arguments without the program name (``sys.argv[1:]`` when None).

    Returns:
        The process exit code.
    """
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING - 10 * min(args.verbose, 2),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        if args.command is None:
            return _run(default_config(), None, display=True)
        if args.command == "run":
            shard = _parse_shard(args.shard)
            return _run(
                _apply_shard(load_config(args.config), shard),
                args.duration,
                display=not args.no_display,
                stats_json=args.stats_json,
            )
        if args.command == "record":
            shard = _parse_shard(args.shard)
            cfg = _apply_shard(load_config(args.config), shard)
            record = cfg.record or RecordConfig()
            if args.dir is not None:
                record = dataclasses.replace(record, dir=args.dir)
            cfg = dataclasses.replace(cfg, record=record)
            raw_dir = Path(record.dir) / "raw" if args.raw else None
            return _run(
                cfg,
                args.duration,
                display=not args.no_display,
                stats_json=args.stats_json,
                raw_dir=raw_dir,
            )
        if args.command == "check":
            return _check(args.config)
        if args.command == "replay":
            return _replay(
                args.capture, args.rest, args.exchange, args.depth, args.out, args.format
            )
        if args.command == "sim":
            from .sim import serve

            return serve(args.symbols, args.rate, args.port, args.seed, duration=args.duration)
        if args.command == "inspect":
            return _inspect(args.dir)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except (XtraderError, OSError, RuntimeError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    raise AssertionError(f"unhandled command {args.command}")  # pragma: no cover


def _parse_shard(text: str | None) -> tuple[int, int] | None:
    from .shard import parse_shard

    return None if text is None else parse_shard(text)


def _apply_shard(cfg: Config, shard: tuple[int, int] | None) -> Config:
    """`cfg` restricted to shard k of N, announced on stderr; unchanged without --shard."""
    if shard is None:
        return cfg
    from .shard import shard_config, shard_summary

    k, n = shard
    sharded = shard_config(cfg, k, n)
    summary = shard_summary(cfg, sharded, k, n)
    print(f"xtrader: {summary}", file=sys.stderr)
    return sharded


def _run(
    cfg: Config,
    duration: float | None,
    display: bool,
    stats_json: Path | None = None,
    raw_dir: Path | None = None,
) -> int:
    from .display import StatusDisplay
    from .runtime import Runtime

    rt = Runtime.from_config(cfg)
    rt.count_delivered = stats_json is not None
    if raw_dir is not None:
        try:
            rt.record_raw(raw_dir)
        except BaseException:
            rt.close()
            raise
    try:
        if display:
            rt.add_sink(StatusDisplay(rt))
        sim = rt.simulator
        notes = []
        if sim is not None:
            notes.append(f"simulator {sim.ws_url}")
        if cfg.metrics.addr:
            notes.append(f"metrics http://{cfg.metrics.addr}/metrics")
        if cfg.record is not None:
            notes.append(f"recording {', '.join(cfg.record.channels)} to {cfg.record.dir}")
        if raw_dir is not None:
            notes.append(f"raw capture to {raw_dir}")
        if cfg.jetstream is not None:
            notes.append(f"publishing to JetStream stream {cfg.jetstream.stream}")
        if cfg.source is not None:
            src = cfg.source
            intake = f"source {src.kind} stream {src.stream} subject {src.subject}"
        else:
            intake = "feeds " + ", ".join(f"{f.exchange}:{','.join(f.symbols)}" for f in cfg.feeds)
        print(f"xtrader: {intake}; {'; '.join(notes)}; Ctrl-C to stop", file=sys.stderr)
        rt.run(duration)
    finally:
        rt.close()
    stats = rt.stats()
    keys = (
        "messages",
        "trades",
        "gaps",
        "resyncs",
        "errors",
        "dispatched_events",
        "callback_errors",
        "recorded_rows",
        "recorded_files",
        "parquet_rows",
        "parquet_files",
        "gaps_recorded",
        "sink_failures",
        "sink_dropped_rows",
        "raw_records",
        "raw_files",
        "raw_errors",
    )
    shown = ", ".join(f"{k}={stats[k]}" for k in keys if k in stats)
    print(f"xtrader stopped: {shown}", file=sys.stderr)
    if stats_json is not None:
        import json

        delivered = [
            {"channel": c, "exchange": e, "symbol": s, "rows": n}
            for (c, e, s), n in sorted(rt.delivered.items())
        ]
        tmp = stats_json.with_name(stats_json.name + ".tmp")
        tmp.write_text(json.dumps({"stats": stats, "delivered": delivered}, indent=1))
        tmp.replace(stats_json)
    return EXIT_OK


def _check(path: Path) -> int:
    cfg = load_config(path)
    cfg.load_strategies()  # imports and instantiates: a typo in a class path fails here
    print(f"OK {path}")
    print(cfg.summary())
    return EXIT_OK


def _sibling_rest_files(capture: Path) -> list[Path]:
    """REST recordings next to a cryptofeed capture: NAME.ws.1.0 -> NAME.http.*, NAME.0."""
    name = capture.name
    if ".ws." not in name:
        return []
    prefix = name.split(".ws.", 1)[0] + "."
    return sorted(
        p
        for p in capture.parent.iterdir()
        if p.is_file() and p.name.startswith(prefix) and ".ws." not in p.name
    )


def _replay(
    capture: Path,
    rest: list[Path] | None,
    exchange: str | None,
    depth: int,
    out: Path | None = None,
    fmt: str = "parquet",
) -> int:
    from .data import replay

    rest_files = _sibling_rest_files(capture) if rest is None else rest
    if rest is None and rest_files:
        print(f"rest: {', '.join(p.name for p in rest_files)}")
    res = replay(capture, rest_files, exchange=exchange)
    print(f"replay {capture.name} ({res.exchange})")
    print(
        f"  rows: trades {res.trades.height}, book_updates {res.book_updates.height}, "
        f"bbo {res.bbo.height}"
    )
    print("  stats: " + ", ".join(f"{k}={v}" for k, v in sorted(res.stats.items())))
    if out is not None:
        from .sinks import replay_to_sink

        written = replay_to_sink(res, out, fmt)
        print(f"  wrote {written} rows to {out} ({fmt})")
    kinds = Counter(s.kind for s in res.statuses)
    if kinds:
        print("  statuses: " + ", ".join(f"{k}={v}" for k, v in sorted(kinds.items())))
    for symbol in sorted(res.books):
        book = res.books[symbol]
        bids, asks = book.bids(depth), book.asks(depth)
        n_bids, n_asks = book.depth()
        print(
            f"  {symbol} ({book.native_symbol}) {book.state} seq={book.seq} "
            f"levels {n_bids}/{n_asks} spread {book.spread}"
        )
        for i in range(max(len(bids), len(asks))):
            bid = f"{bids[i][1]:>16.8g} @ {bids[i][0]:<14.8g}" if i < len(bids) else " " * 33
            ask = f"{asks[i][0]:>14.8g} x {asks[i][1]:<16.8g}" if i < len(asks) else ""
            print(f"    {bid} | {ask}")
    return EXIT_OK


def _inspect(root: Path) -> int:
    from .sinks.inspect import inspect_dataset

    if not root.is_dir():
        raise XtraderError(f"no such folder: {root}")
    inspect_dataset(root)
    return EXIT_OK
