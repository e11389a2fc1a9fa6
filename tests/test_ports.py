"""The test harness's free ports (tests/ports.py): bindable, distinct, and outside the range
the kernel takes for outgoing connections."""

from __future__ import annotations

import socket

from ports import _ephemeral_range, free_port


def test_free_ports_are_bindable_distinct_and_below_the_ephemeral_range() -> None:
    low, high = _ephemeral_range()
    ports = [free_port() for _ in range(30)]
    assert len(set(ports)) == len(ports)
    for port in ports:
        if low > 11_000:
            assert 10_000 <= port < low, (port, low, high)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", port))
