"""Replay of the recorded OKX capture against an independent reading of it.

The capture (shared/data/captures/OKX.ws.1.0, 2022-05-13) carries a CRC32 checksum on every
``books`` message. This file recomputes each of them from the wire strings with ``zlib``
(docs/exchanges.md 4.5), rebuilds the books, and converts sizes with the contract values of
the recorded instruments (OKX.0), then checks the core's replay against all of it.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import xtrader as xt
from xtrader import Strategy

CAPTURE = "OKX.ws.1.0"
REST = ("OKX.0",)
NORMALIZED = {
    "BTC-USD-220527": "BTC-USD-20220527",
    "UNI-USD-SWAP": "UNI-USD-PERP",
    "BTC-USDT": "BTC-USDT",
}


# ------------------------------------------------------------------------------------------
# independent reading of the capture


def read_frames(path: Path) -> list[dict[str, Any]]:
    """Received JSON frames (the header and the frames the client sent are skipped)."""
    lines = path.read_text().splitlines()
    assert " <-> " in lines[0]
    frames = []
    for line in lines[1:]:
        head, _, text = line.partition(": ")
        if not line.strip() or " <- " in head:
            continue
        frames.append(json.loads(text))
    return frames


def contract_values(path: Path) -> dict[str, float]:
    """instId -> ctVal x ctMult (1 for spot) from the recorded instrument lists."""
    out: dict[str, float] = {}
    for line in path.read_text().splitlines():
        if " -> " not in line:
            continue
        _, _, rest = line.partition(" -> ")
        _, _, body = rest.partition(": ")
        for inst in json.loads(body)["data"]:
            if inst["instType"] == "SPOT":
                out[inst["instId"]] = 1.0
            else:
                out[inst["instId"]] = float(inst["ctVal"]) * float(inst["ctMult"])
    return out


def okx_checksum(bids: list[tuple[str, str]], asks: list[tuple[str, str]]) -> int:
    """exchanges.md 4.5: interleave the best 25 levels per side, CRC32, signed 32 bits."""
    parts = []
    for i in range(25):
        if i < len(bids):
            parts.append(f"{bids[i][0]}:{bids[i][1]}")
        if i < len(asks):
            parts.append(f"{asks[i][0]}:{asks[i][1]}")
    c = zlib.crc32(":".join(parts).encode())
    return c - (1 << 32) if c >= (1 << 31) else c


@dataclass
class RebuiltBook:
    bids: dict[str, str] = field(default_factory=dict)  # price string -> size string
    asks: dict[str, str] = field(default_factory=dict)

    def apply(self, side: dict[str, str], levels: list[list[str]]) -> None:
        for px, sz, *_ in levels:
            if float(sz) == 0:
                side.pop(px, None)
            else:
                side[px] = sz

    def top(self) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        bids = sorted(self.bids.items(), key=lambda kv: -float(kv[0]))
        asks = sorted(self.asks.items(), key=lambda kv: float(kv[0]))
        return bids, asks


@dataclass
class Expected:
    checksums: int = 0
    checksums_ok: int = 0
    checks_by_inst: dict[str, int] = field(default_factory=dict)
    levels: int = 0
    snapshots: int = 0
    updates: int = 0
    trades: list[dict[str, Any]] = field(default_factory=list)
    tickers: list[dict[str, Any]] = field(default_factory=list)
    books: dict[str, RebuiltBook] = field(default_factory=dict)


def rebuild(frames: list[dict[str, Any]]) -> Expected:
    exp = Expected()
    for msg in frames:
        if "event" in msg:
            continue
        channel, inst = msg["arg"]["channel"], msg["arg"]["instId"]
        for d in msg["data"]:
            if channel == "trades":
                exp.trades.append(d)
            elif channel == "tickers":
                exp.tickers.append(d)
            elif channel == "books":
                if msg["action"] == "snapshot":
                    exp.books[inst] = RebuiltBook()
                    exp.snapshots += 1
                else:
                    exp.updates += 1
                book = exp.books[inst]
                exp.levels += len(d["bids"]) + len(d["asks"])
                book.apply(book.bids, d["bids"])
                book.apply(book.asks, d["asks"])
                if d["checksum"] != 0:
                    exp.checksums += 1
                    exp.checks_by_inst[inst] = exp.checks_by_inst.get(inst, 0) + 1
                    bids, asks = book.top()
                    exp.checksums_ok += okx_checksum(bids, asks) == d["checksum"]
    return exp


class Tickers(Strategy):
    def __init__(self) -> None:
        self.tickers: list[xt.Ticker] = []

    def on_ticker(self, ticker: xt.Ticker) -> None:
        self.tickers.append(ticker)


@pytest.fixture(scope="module")
def setup() -> tuple[Path, Expected, dict[str, float], xt.ReplayResult, list[xt.Ticker]]:
    from conftest import captures_dir

    captures = captures_dir()
    exp = rebuild(read_frames(captures / CAPTURE))
    ct = contract_values(captures / "OKX.0")
    collector = Tickers()
    res = xt.replay(captures / CAPTURE, rest=[captures / r for r in REST], strategies=[collector])
    return captures, exp, ct, res, collector.tickers


def test_replay_okx_every_checksum_validates(setup: Any) -> None:
    _, exp, _, res, _ = setup
    # the independent rebuild proves the capture itself: 290 checksums, all matching
    assert (exp.snapshots, exp.updates) == (3, 287)
    assert exp.checksums == exp.checksums_ok == 290
    assert res.exchange == "okx"
    assert res.stats["checksum_ok"] == exp.checksums
    assert res.stats["checksum_failed"] == 0
    assert res.stats["gaps"] == 0 and res.stats["resyncs"] == 0
    assert res.stats["errors"] == 0 and res.stats["parse_errors"] == 0
    assert res.stats["snapshots"] == 3
    kinds = [(s.kind, s.symbol) for s in res.statuses if s.kind == "live"]
    assert sorted(kinds) == sorted(("live", s) for s in NORMALIZED.values())


def test_replay_okx_trades_converted_by_contract_value(setup: Any) -> None:
    _, exp, ct, res, _ = setup
    trades = res.trades
    assert trades.height == len(exp.trades) == 74 == res.stats["trades"]
    assert set(trades["exchange"]) == {"okx"}
    for row, raw in zip(trades.iter_rows(named=True), exp.trades, strict=True):
        inst = raw["instId"]
        assert row["native_symbol"] == inst and row["symbol"] == NORMALIZED[inst]
        assert row["trade_id"] == int(raw["tradeId"])
        assert row["price"] == float(raw["px"])
        assert row["size"] == pytest.approx(float(raw["sz"]) * ct[inst], rel=1e-12)
        assert row["side"] == raw["side"]
        assert row["ts_exchange"] == int(raw["ts"]) * 1_000_000
    # the three instrument types convert differently: inverse future, inverse swap, spot
    assert ct["BTC-USD-220527"] == 100.0 and ct["UNI-USD-SWAP"] == 10.0
    assert ct["BTC-USDT"] == 1.0


def test_replay_okx_tickers_converted_by_contract_value(setup: Any) -> None:
    _, exp, ct, res, tickers = setup
    assert len(tickers) == len(exp.tickers) == 28 == res.stats["tickers"]
    for t, raw in zip(tickers, exp.tickers, strict=True):
        inst = raw["instId"]
        assert t.native_symbol == inst and t.symbol == NORMALIZED[inst]
        assert t.last_price == float(raw["last"])
        assert t.last_size == pytest.approx(float(raw["lastSz"]) * ct[inst], rel=1e-12)
        assert t.bid_size == pytest.approx(float(raw["bidSz"]) * ct[inst], rel=1e-12)
        assert t.ask_size == pytest.approx(float(raw["askSz"]) * ct[inst], rel=1e-12)
        assert t.ts_exchange == int(raw["ts"]) * 1_000_000
        if raw["instType"] == "SPOT":
            # spot: vol24h in base, volCcy24h in quote
            assert t.volume_24h == float(raw["vol24h"])
            assert t.quote_volume_24h == float(raw["volCcy24h"])
        else:
            # derivatives: volCcy24h in base; inverse contracts give the quote volume
            assert t.volume_24h == float(raw["volCcy24h"])
            assert t.quote_volume_24h == pytest.approx(float(raw["vol24h"]) * ct[inst])


def test_replay_okx_final_books_match_the_rebuild(setup: Any) -> None:
    _, exp, ct, res, _ = setup
    assert set(res.books) == set(NORMALIZED.values())
    for inst, rebuilt in exp.books.items():
        book = res.books[NORMALIZED[inst]]
        assert book.native_symbol == inst and book.state == "live"
        bids, asks = rebuilt.top()
        for got, want in ((book.bids(), bids), (book.asks(), asks)):
            assert [p for p, _ in got] == [float(p) for p, _ in want]
            assert [s for _, s in got] == pytest.approx([float(s) * ct[inst] for _, s in want])
    # one row per level of every applied message, sizes converted like the books
    updates = res.book_updates
    assert updates.height == exp.levels
    assert set(updates["symbol"]) == set(NORMALIZED.values())
    assert set(updates["exchange"]) == {"okx"}


def test_replay_okx_okex_host_and_a_broken_checksum(setup: Any, tmp_path: Path) -> None:
    captures, exp, _, _, _ = setup
    text = (captures / CAPTURE).read_text()
    okex = tmp_path / "OKEX.ws.1.0"
    okex.write_text(text.replace("wss://ws.okx.com:8443", "wss://ws.okex.com:8443"))
    res = xt.replay(okex, rest=[captures / r for r in REST])
    assert res.exchange == "okx" and res.stats["checksum_ok"] == exp.checksums
    # one altered checksum on BTC-USDT: detected, that book resyncs, the others are untouched
    lines = text.splitlines()
    target = next(
        i
        for i, line in enumerate(lines)
        if '"channel":"books","instId":"BTC-USDT"' in line and '"action":"update"' in line
    )
    head, _, body = lines[target].partition(": ")
    msg = json.loads(body)
    msg["data"][0]["checksum"] = msg["data"][0]["checksum"] ^ 1
    lines[target] = f"{head}: {json.dumps(msg, separators=(',', ':'))}"
    broken = tmp_path / "OKX.broken.ws.1.0"
    broken.write_text("\n".join(lines) + "\n")
    res = xt.replay(broken, rest=[captures / r for r in REST])
    assert res.stats["checksum_failed"] == 1 and res.stats["resyncs"] == 1
    resyncs = [(s.kind, s.reason, s.symbol) for s in res.statuses if s.kind == "resync"]
    assert resyncs == [("resync", "checksum", "BTC-USDT")]
    assert res.books["BTC-USDT"].state == "resyncing"
    for inst in ("BTC-USD-220527", "UNI-USD-SWAP"):
        assert res.books[NORMALIZED[inst]].state == "live"
    # the other symbols kept validating; BTC-USDT's were checked up to the broken one
    before = sum(
        1
        for line in lines[1:target]
        if '"channel":"books","instId":"BTC-USDT"' in line and '"data"' in line
    )
    others = exp.checksums - exp.checks_by_inst["BTC-USDT"]
    assert res.stats["checksum_ok"] == others + before
