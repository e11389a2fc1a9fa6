"""Live status display: messages/s and the state of every book.

On a terminal a `rich` panel refreshes about twice a second; otherwise (pipes, CI, logs) one
plain summary line goes to stderr every 5 seconds. It is a sink: `Runtime.run` ticks it.
"""

from __future__ import annotations

import sys
import time
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING, TextIO

from ._core import Status

if TYPE_CHECKING:
    from rich.live import Live

    from ._core import Book, Event
    from .runtime import Runtime

__all__ = ["StatusDisplay"]

TTY_REFRESH_S = 0.5
PLAIN_REFRESH_S = 5.0
_RECENT_STATUSES = 5


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.8g}"


class StatusDisplay:
    """Shows throughput, book states and recent status events while a runtime runs.

    Args:
        runtime: The runtime whose stats and books are shown.
        tty: Force the rich panel (True) or plain lines (False); None detects stdout.
        stream: Where plain lines go (stderr by default).
        refresh_s: Seconds between refreshes (0.5 on a terminal, 5 otherwise).
    """

    def __init__(
        self,
        runtime: Runtime,
        tty: bool | None = None,
        stream: TextIO | None = None,
        refresh_s: float | None = None,
    ) -> None:
        self._runtime = runtime
        self._tty = sys.stdout.isatty() if tty is None else tty
        self._stream = stream
        self._refresh_s = refresh_s or (TTY_REFRESH_S if self._tty else PLAIN_REFRESH_S)
        self._next = time.monotonic() + min(self._refresh_s, 1.0)
        self._last_count = 0
        self._last_time = time.monotonic()
        self._rate = 0.0
        self._recent: deque[str] = deque(maxlen=_RECENT_STATUSES)
        self._live: Live | None = None

    def write(self, events: Sequence[Event]) -> None:
        """Remember the latest problem statuses (resync, error, stale, disconnected)."""
        for ev in events:
            if isinstance(ev, Status) and ev.kind in ("resync", "error", "stale", "disconnected"):
                self._recent.append(ev.message)

    def tick(self, now: float) -> None:
        """Refresh when due."""
        if now < self._next:
            return
        self._next = now + self._refresh_s
        self._update_rate(now)
        if self._tty:
            self._render_rich()
        else:
            print(self._plain_line(), file=self._stream or sys.stderr, flush=True)

    def close(self) -> None:
        """Render the final state once more and stop the panel."""
        if self._live is not None:
            self._update_rate(time.monotonic())
            self._render_rich()
            self._live.stop()
            self._live = None

    def _update_rate(self, now: float) -> None:
        stats = self._runtime.stats()
        count = stats.get("messages", stats.get("dispatched_events", 0))
        elapsed = now - self._last_time
        if elapsed > 0:
            self._rate = max(0, count - self._last_count) / elapsed
        self._last_count = count
        self._last_time = now

    def _books(self) -> list[Book]:
        return sorted(self._runtime.books(), key=lambda b: (b.exchange, b.symbol))

    def _plain_line(self) -> str:
        books = self._books()
        live = sum(1 for b in books if b.state == "live")
        stats = self._runtime.stats()
        parts = [
            f"xtrader: {self._rate:,.0f} msg/s",
            f"messages {stats.get('messages', stats.get('dispatched_events', 0))}",
            f"books {live}/{len(books)} live",
        ]
        parts += [f"{b.symbol} {b.state} spread {_fmt(b.spread)}" for b in books[:6]]
        errors = stats.get("callback_errors", 0)
        if errors:
            parts.append(f"callback errors {errors}")
        return " | ".join(parts)

    def _render_rich(self) -> None:
        from rich.console import Group
        from rich.live import Live
        from rich.panel import Panel
        from rich.table import Table
        from rich.text import Text

        table = Table(expand=False, box=None, pad_edge=False)
        for column in ("exchange", "symbol", "state", "bid", "ask", "spread", "depth"):
            left = column in ("exchange", "symbol")
            table.add_column(column, justify="left" if left else "right")
        colors = {"live": "green", "syncing": "yellow", "resyncing": "yellow", "stale": "red"}
        for book in self._books():
            bid, ask = book.best_bid, book.best_ask
            depth = book.depth()
            table.add_row(
                book.exchange,
                book.symbol,
                Text(book.state, style=colors.get(book.state, "")),
                _fmt(bid[0] if bid else None),
                _fmt(ask[0] if ask else None),
                _fmt(book.spread),
                f"{depth[0]}/{depth[1]}",
            )
        stats = self._runtime.stats()
        header = Text(
            f"{self._rate:,.0f} msg/s   messages {stats.get('messages', 0):,}   "
            f"callback errors {stats.get('callback_errors', 0)}   Ctrl-C to stop"
        )
        parts: list[object] = [header, table]
        if self._recent:
            parts.append(Text("\n".join(self._recent), style="dim"))
        panel = Panel(Group(*parts), title="xtrader", border_style="cyan")  # type: ignore[arg-type]
        if self._live is None:
            self._live = Live(panel, auto_refresh=False, redirect_stderr=False)
            self._live.start()
        self._live.update(panel, refresh=True)
