"""The loopback exchange simulator (Binance spot protocol: websocket + REST).

Use it in tests and demos: ``Simulator(["BTCUSDT"], rate=1000).start()`` then subscribe a
runtime with ``ws_url=sim.ws_url, rest_url=sim.rest_url`` (or ``"sim"`` in a config with a
``[sim]`` table). `serve` runs one from the command line (``python -m xtrader sim``).
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from ._core import Simulator

__all__ = ["Simulator", "serve"]


def serve(
    symbols: Sequence[str] = ("BTCUSDT", "ETHUSDT"),
    rate: float = 1000.0,
    port: int = 0,
    seed: int = 1,
    host: str = "127.0.0.1",
    duration: float | None = None,
) -> int:
    """Run a simulator until SIGINT/SIGTERM (or `duration` seconds) and print its URLs.

    Args:
        symbols: Native symbols to simulate.
        rate: Messages per second over all symbols.
        port: TCP port (0: any free port).
        seed: Random seed of the synthetic market.
        host: Interface to bind (loopback by default).
        duration: Seconds to run, or None until a signal.

    Returns:
        The process exit code (0).
    """
    stop = threading.Event()
    previous = {}
    if threading.current_thread() is threading.main_thread():

        def on_signal(signum: int, frame: FrameType | None) -> None:
            stop.set()

        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, on_signal)
    sim = Simulator(symbols=list(symbols), rate=rate, seed=seed, host=host, port=port)
    sim.start()
    try:
        print(f"simulator: {', '.join(symbols)} at {rate:g} msg/s", flush=True)
        print(f"  ws_url   {sim.ws_url}", flush=True)
        print(f"  rest_url {sim.rest_url}", flush=True)
        print("Ctrl-C to stop", file=sys.stderr, flush=True)
        waited = 0.0
        # Sliced waits keep the process responsive to signals on every platform.
        while not stop.wait(0.2):
            waited += 0.2
            if duration is not None and waited >= duration:
                break
        stats = sim.stats()
    finally:
        sim.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print("simulator stopped: " + ", ".join(f"{k}={v}" for k, v in sorted(stats.items())))
    return 0
