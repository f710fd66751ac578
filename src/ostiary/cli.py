"""The `ostiary` command."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `ostiary` console script."""
    del argv
    print("ostiary: no commands yet", file=sys.stderr)
    return 2
