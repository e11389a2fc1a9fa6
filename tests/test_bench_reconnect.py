"""The reconnect benchmark runs and measures what it says (no timing is asserted here)."""

from __future__ import annotations

import sys
from pathlib import Path

BENCHES = Path(__file__).resolve().parent.parent / "benches"


def test_reconnect_bench_measures_each_drop() -> None:
    sys.path.insert(0, str(BENCHES))
    try:
        import reconnect
    finally:
        sys.path.remove(str(BENCHES))
    out = reconnect.run(drops=2, gap_s=0.5)
    assert out["drops"] == 2
    assert out["books_live_after"] is True
    assert out["reconnects"] >= 2
    for key in ("to_connected_ms", "to_data_ms", "to_books_live_ms"):
        s = out[key]
        assert 0 < s["min"] <= s["p50"] <= s["max"]
    # data comes after the connection it arrives on
    assert out["to_data_ms"]["min"] >= out["to_connected_ms"]["min"]
    assert out["to_books_live_ms"]["min"] >= out["to_connected_ms"]["min"]
