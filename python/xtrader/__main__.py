"""``python -m xtrader``: see `xtrader.cli`."""

from __future__ import annotations

import sys

from xtrader.cli import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
