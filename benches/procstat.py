"""CPU time from Linux /proc, for the benchmarks' CPU figures."""

from __future__ import annotations

import os
from pathlib import Path


def _stat_cpu_seconds(stat: Path) -> float | None:
    """User + system CPU seconds from a /proc `stat` file (None when unreadable or gone)."""
    try:
        fields = stat.read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # utime, stime (fields 14, 15)


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process, all its threads (Linux /proc; None elsewhere
    or when gone)."""
    return _stat_cpu_seconds(Path(f"/proc/{pid}/stat"))


def thread_cpu_seconds(prefix: str) -> float:
    """CPU seconds of this process's threads whose name starts with `prefix`."""
    total = 0.0
    for task in Path("/proc/self/task").iterdir():
        try:
            name = (task / "comm").read_text()
        except OSError:  # the thread ended meanwhile
            continue
        if name.startswith(prefix):
            total += _stat_cpu_seconds(task / "stat") or 0.0
    return total
