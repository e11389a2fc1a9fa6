"""``python -m xtrader inspect DIR``: what a dataset holds, per channel, venue and symbol."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import polars as pl

from .gaps import read_gaps

__all__ = ["inspect_dataset", "summarize"]

PROGRESS_MIN_FILES = 20
"""Show a progress bar from this many files on."""


def _ts(ns: int | None) -> str:
    if ns is None:
        return "-"
    return dt.datetime.fromtimestamp(ns / 1e9, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def summarize(root: Path, progress: bool = True) -> pl.DataFrame:
    """One row per (channel, exchange, symbol): files, rows, first and last ``ts_recv``."""
    files = sorted(p for p in root.glob("*/exchange=*/date=*/*.parquet"))
    parts: list[pl.DataFrame] = []

    def scan(path: Path) -> None:
        channel = path.relative_to(root).parts[0]
        if channel == "gaps":
            return
        frame = pl.scan_parquet(path).select("exchange", "symbol", pl.col("ts_recv").cast(pl.Int64))
        parts.append(
            frame.group_by("exchange", "symbol")
            .agg(
                pl.len().alias("rows"),
                pl.col("ts_recv").min().alias("first"),
                pl.col("ts_recv").max().alias("last"),
            )
            .with_columns(pl.lit(channel).alias("channel"), pl.lit(1).alias("files"))
            .collect()
        )

    if progress and len(files) >= PROGRESS_MIN_FILES:
        from rich.progress import track

        for path in track(files, description="scanning", transient=True):
            scan(path)
    else:
        for path in files:
            scan(path)
    if not parts:
        return pl.DataFrame()
    return (
        pl.concat(parts, how="vertical_relaxed")
        .group_by("channel", "exchange", "symbol")
        .agg(
            pl.col("files").sum(),
            pl.col("rows").sum(),
            pl.col("first").min(),
            pl.col("last").max(),
        )
        .sort("channel", "exchange", "symbol")
    )


def inspect_dataset(root: Path) -> bool:
    """Print the summary table and the gap intervals; False when there is no data."""
    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else 160)
    summary = summarize(root)
    gaps = read_gaps(root)
    if summary.height == 0 and gaps.height == 0:
        console.print(f"no Parquet files under {root}")
        return False
    table = Table(title=f"{root}")
    for col in ("channel", "exchange", "symbol", "files", "rows", "first ts_recv", "last"):
        table.add_column(col, justify="right" if col in ("files", "rows") else "left")
    for row in summary.iter_rows(named=True):
        table.add_row(
            row["channel"],
            row["exchange"],
            row["symbol"],
            str(row["files"]),
            f"{row['rows']:,}",
            _ts(row["first"]),
            _ts(row["last"]),
        )
    console.print(table)
    if gaps.height:
        gt = Table(title=f"gaps ({gaps.height})")
        for col in ("exchange", "symbol", "start", "end", "seconds", "state", "reason"):
            gt.add_column(col)
        for row in gaps.sort("start").iter_rows(named=True):
            gt.add_row(
                row["exchange"],
                row["symbol"],
                _ts(row["start"]),
                _ts(row["end"]),
                f"{(row['end'] - row['start']) / 1e9:.3f}",
                row["state"],
                row["reason"],
            )
        console.print(gt)
    else:
        console.print("gaps: none")
    return True
