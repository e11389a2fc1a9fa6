"""Free loopback ports for servers a test starts itself (nats-server nodes, a simulator that
comes up after its clients)."""

from __future__ import annotations

import random
import socket
from pathlib import Path

__all__ = ["free_port"]

EPHEMERAL_DEFAULT = (32768, 60999)
_handed_out: set[int] = set()


def _ephemeral_range() -> tuple[int, int]:
    """The kernel's range for the local ports of outgoing connections (and of bind to 0)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return EPHEMERAL_DEFAULT


def free_port() -> int:
    """A 127.0.0.1 TCP port that is free now, for a server started later, outside the kernel's
    ephemeral range when there is room below it, and never the same one twice per process.

    A port from ``bind(("127.0.0.1", 0))``, closed at once, can come back from the next such
    call: in CI, a three-node cluster got 37841 as n1's route port and as n2's monitoring
    port, and n1 failed with "address already in use". That range is also where the kernel
    picks the local port of every outgoing connection, any of which could take the port before
    the server binds it. Below the range, ports are only taken by listeners that ask for them.
    """
    low, _ = _ephemeral_range()
    if low > 11_000:
        rng = random.Random()
        for _ in range(500):
            port = rng.randrange(10_000, low)
            if port in _handed_out:
                continue
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                try:
                    sock.bind(("127.0.0.1", port))
                except OSError:
                    continue
            _handed_out.add(port)
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    _handed_out.add(port)
    return port
