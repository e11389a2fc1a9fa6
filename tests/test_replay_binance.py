"""Replay of the recorded Binance spot capture against an independent book rebuild.

The rebuild below parses the capture with `json` and applies docs/exchanges.md 2.6 itself:
buffer diffs, take the recorded REST snapshot, drop ``u <= L``, accept the first event only
when ``U <= L+1 <= u``, then require ``U == L+1``; quantities are absolute, zero deletes.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import polars as pl
import pytest

import xtrader as xt
from xtrader import Strategy

CAPTURE = "BINANCE.ws.1.0"
REST = ("BINANCE.http.0.0", "BINANCE.0")

TRADES_COLUMNS = {
    "exchange": pl.String,
    "symbol": pl.String,
    "native_symbol": pl.String,
    "ts_exchange": pl.Int64,
    "ts_recv": pl.Int64,
    "price": pl.Float64,
    "size": pl.Float64,
    "side": pl.String,
    "trade_id": pl.Int64,
}
BOOK_UPDATES_COLUMNS = {
    "exchange": pl.String,
    "symbol": pl.String,
    "ts_exchange": pl.Int64,
    "ts_recv": pl.Int64,
    "side": pl.String,
    "price": pl.Float64,
    "size": pl.Float64,
    "is_snapshot": pl.Boolean,
    "seq": pl.Int64,
}
BBO_COLUMNS = {
    "exchange": pl.String,
    "symbol": pl.String,
    "ts_exchange": pl.Int64,
    "ts_recv": pl.Int64,
    "bid_price": pl.Float64,
    "bid_size": pl.Float64,
    "ask_price": pl.Float64,
    "ask_size": pl.Float64,
}


# ------------------------------------------------------------------------------------------
# independent reading of the capture


@dataclass
class Frame:
    ts: str  # local receive time, Unix seconds as written
    stream: str
    data: dict[str, Any]


def read_ws_frames(path: Path) -> list[Frame]:
    """Received frames of a cryptofeed websocket capture (the header and sent frames skipped)."""
    frames = []
    lines = path.read_text().splitlines()
    assert " <-> " in lines[0]
    for line in lines[1:]:
        if not line.strip():
            continue
        head, _, text = line.partition(": ")
        if " <- " in head:  # a frame the client sent
            continue
        msg = json.loads(text)
        frames.append(Frame(head, msg["stream"], msg["data"]))
    return frames


def read_rest(path: Path) -> list[tuple[str, Any]]:
    """(URL, parsed body) of every recorded REST response."""
    out = []
    for line in path.read_text().splitlines():
        if not line.strip() or line.startswith("configuration:"):
            continue
        url, _, rest = line.partition(" -> ")
        _, _, body = rest.partition(": ")
        out.append((url, json.loads(body)))
    return out


@dataclass
class RebuiltBook:
    last_update_id: int
    bids: dict[float, float] = field(default_factory=dict)
    asks: dict[float, float] = field(default_factory=dict)
    synced: bool = False
    applied: int = 0
    dropped: int = 0
    gaps: int = 0
    diff_levels: int = 0

    def apply_levels(self, side: dict[float, float], levels: list[list[str]]) -> None:
        for price_s, qty_s in levels:
            price, qty = float(price_s), float(qty_s)
            if qty == 0:
                side.pop(price, None)  # deleting an absent level is normal
            else:
                side[price] = qty
            self.diff_levels += 1

    def on_diff(self, first: int, last: int, bids: list[list[str]], asks: list[list[str]]) -> None:
        if last <= self.last_update_id:
            self.dropped += 1
            return
        expected = self.last_update_id + 1
        ok = first <= expected <= last if not self.synced else first == expected
        if not ok:
            self.gaps += 1
            return
        self.synced = True
        self.apply_levels(self.bids, bids)
        self.apply_levels(self.asks, asks)
        self.last_update_id = last
        self.applied += 1


def rebuild(captures: Path) -> tuple[dict[str, RebuiltBook], dict[str, int]]:
    """Rebuild every book of the capture; also return the snapshot level count per symbol."""
    books: dict[str, RebuiltBook] = {}
    snapshot_levels: dict[str, int] = {}
    for url, body in read_rest(captures / REST[0]):
        if "/depth" not in url:
            continue
        symbol = parse_qs(urlsplit(url).query)["symbol"][0]
        book = RebuiltBook(int(body["lastUpdateId"]))
        book.bids = {float(p): float(q) for p, q in body["bids"] if float(q) != 0}
        book.asks = {float(p): float(q) for p, q in body["asks"] if float(q) != 0}
        books[symbol] = book
        snapshot_levels[symbol] = len(body["bids"]) + len(body["asks"])
    # The diffs buffered before the snapshot arrived are exactly those with u <= L or the one
    # that straddles it; applying every diff in capture order with the rules is equivalent.
    for frame in read_ws_frames(captures / CAPTURE):
        if frame.data.get("e") != "depthUpdate":
            continue
        d = frame.data
        books[d["s"]].on_diff(int(d["U"]), int(d["u"]), d["b"], d["a"])
    return books, snapshot_levels


def normalized_names(captures: Path) -> dict[str, str]:
    """Native -> normalized symbol from the recorded exchangeInfo (BASE-QUOTE)."""
    for url, body in read_rest(captures / REST[1]):
        if url.endswith("/exchangeInfo"):
            return {s["symbol"]: f"{s['baseAsset']}-{s['quoteAsset']}" for s in body["symbols"]}
    raise AssertionError("exchangeInfo missing from the capture")


def ts_ns(text: str) -> int:
    return int(Decimal(text) * 1_000_000_000)


@pytest.fixture(scope="module")
def result() -> xt.ReplayResult:
    from conftest import captures_dir

    root = captures_dir()
    return xt.replay(root / CAPTURE, rest=[root / r for r in REST])


# ------------------------------------------------------------------------------------------
# tests


def test_replay_binance_infers_venue_and_has_no_gaps(result: xt.ReplayResult) -> None:
    assert result.exchange == "binance"
    assert result.stats["gaps"] == 0, result.stats
    resyncs = [s for s in result.statuses if s.kind == "resync"]
    assert resyncs == [], [s.to_dict() for s in resyncs]
    assert result.stats.get("resyncs", 0) == 0


def test_replay_binance_books_equal_independent_rebuild(
    result: xt.ReplayResult, captures: Path
) -> None:
    expected, _ = rebuild(captures)
    names = normalized_names(captures)
    assert sorted(result.books) == sorted(names[s] for s in expected)
    for native, want in expected.items():
        assert want.gaps == 0 and want.synced, native
        book = result.books[names[native]]
        assert book.native_symbol == native
        assert book.state == "live"
        assert book.seq == want.last_update_id
        want_bids = sorted(want.bids.items(), reverse=True)
        want_asks = sorted(want.asks.items())
        assert book.bids() == want_bids, native
        assert book.asks() == want_asks, native
        assert book.depth() == (len(want_bids), len(want_asks))
        assert book.bids(3) == want_bids[:3]
        assert book.best_bid == want_bids[0] and book.best_ask == want_asks[0]


def test_replay_binance_books_uncrossed(result: xt.ReplayResult) -> None:
    assert len(result.books) == 4
    for symbol, book in result.books.items():
        bid, ask = book.best_bid, book.best_ask
        assert bid is not None and ask is not None, symbol
        assert bid[0] < ask[0], symbol
        assert book.spread is not None and book.spread > 0


def test_replay_binance_counts_match_capture(result: xt.ReplayResult, captures: Path) -> None:
    frames = read_ws_frames(captures / CAPTURE)
    trades = [f for f in frames if f.data.get("e") in ("aggTrade", "trade")]
    quotes = [f for f in frames if f.stream.endswith("@bookTicker")]
    assert result.trades.height == len(trades) > 0
    assert result.bbo.height == len(quotes) > 0
    # aggressor side: m (buyer is maker) means the seller took liquidity
    want_sides = Counter("sell" if f.data["m"] else "buy" for f in trades)
    assert Counter(result.trades["side"].to_list()) == want_sides
    assert sorted(result.trades["trade_id"].to_list()) == sorted(f.data["a"] for f in trades)


def test_replay_binance_book_update_rows(result: xt.ReplayResult, captures: Path) -> None:
    expected, snapshot_levels = rebuild(captures)
    names = normalized_names(captures)
    updates = result.book_updates
    assert set(updates["side"].unique().to_list()) <= {"bid", "ask"}
    for native, want in expected.items():
        rows = updates.filter(pl.col("symbol") == names[native])
        diffs = rows.filter(~pl.col("is_snapshot"))
        assert diffs.height == want.diff_levels, native
        snaps = rows.filter(pl.col("is_snapshot"))
        assert snaps.height == snapshot_levels[native], native
        assert rows["seq"].max() == want.last_update_id
        # updates are in order: seq never goes down within a symbol
        assert rows["seq"].diff().drop_nulls().min() >= 0  # type: ignore[operator]


def test_replay_binance_frame_schemas(result: xt.ReplayResult) -> None:
    assert dict(result.trades.schema) == TRADES_COLUMNS
    assert dict(result.book_updates.schema) == BOOK_UPDATES_COLUMNS
    assert dict(result.bbo.schema) == BBO_COLUMNS


def test_replay_binance_symbols_and_timestamps(result: xt.ReplayResult, captures: Path) -> None:
    names = normalized_names(captures)
    assert set(result.trades["symbol"].to_list()) <= {"NKN-USDT", "BLZ-ETH", "LRC-BTC", "RUNE-EUR"}
    pairs = set(result.trades.select("native_symbol", "symbol").iter_rows())
    assert all(names[native] == symbol for native, symbol in pairs)
    frames = read_ws_frames(captures / CAPTURE)
    first_trade = next(f for f in frames if f.data.get("e") == "aggTrade")
    row = result.trades.filter(pl.col("trade_id") == first_trade.data["a"]).row(0, named=True)
    assert row["native_symbol"] == first_trade.data["s"]
    assert abs(row["ts_recv"] - ts_ns(first_trade.ts)) <= 1_000  # within a microsecond
    times_ms = (first_trade.data["T"], first_trade.data["E"])
    assert row["ts_exchange"] in [ms * 1_000_000 for ms in times_ms]
    assert row["price"] == float(first_trade.data["p"])
    assert row["size"] == float(first_trade.data["q"])
    quote = next(f for f in frames if f.stream.endswith("@bookTicker"))
    first = result.bbo.row(0, named=True)
    assert first["symbol"] == names[quote.data["s"]]
    assert first["bid_price"] == float(quote.data["b"])
    assert first["ask_size"] == float(quote.data["A"])


class Recorder(Strategy):
    """Records what a strategy sees during a replay."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.spreads: list[float] = []
        self.trades = 0
        self.quotes = 0

    def on_start(self, ctx: xt.Context) -> None:
        self.calls.append("start")

    def on_trade(self, trade: xt.Trade) -> None:
        self.trades += 1

    def on_bbo(self, quote: xt.Quote) -> None:
        self.quotes += 1

    def on_book(self, book: xt.Book) -> None:
        spread = book.spread
        if spread is not None:
            self.spreads.append(spread)

    def on_stop(self) -> None:
        self.calls.append("stop")


class Exploding(Strategy):
    def on_trade(self, trade: xt.Trade) -> None:
        raise RuntimeError("boom")


def test_replay_binance_strategies_see_events_in_order(captures: Path) -> None:
    rec, bad = Recorder(), Exploding()
    res = xt.replay(captures / CAPTURE, rest=[captures / r for r in REST], strategies=[bad, rec])
    assert rec.calls == ["start", "stop"]
    assert rec.trades == res.trades.height
    assert rec.quotes == res.bbo.height
    assert rec.spreads and min(rec.spreads) > 0  # point-in-time books are never crossed
    assert len(set(rec.spreads)) > 1  # not the final book every time


def test_replay_missing_file_raises() -> None:
    with pytest.raises(xt.ReplayError, match="no such file"):
        xt.replay("/nonexistent/BINANCE.ws.1.0")
