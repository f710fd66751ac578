"""What the parsers of the server commands share, without importing the server.

The `ostiary` parser is built whole on every run, so `ostiary jwt decode` would otherwise pay
for SQLAlchemy, Alembic, pydantic and Starlette on each start. A server command's handler is
named here by module and loaded only when that command runs.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from pathlib import Path
from typing import cast

Handler = Callable[[argparse.Namespace], int]


def deferred(module: str, name: str) -> Handler:
    """A handler that imports `ostiary.cli.<module>` and calls its `name` when it runs."""

    def run(args: argparse.Namespace) -> int:
        handler = cast(Handler, getattr(importlib.import_module(f"ostiary.cli.{module}"), name))
        return handler(args)

    return run


def add_config_option(parser: argparse.ArgumentParser) -> None:
    """`--config FILE`: the settings file `ostiary serve` reads, for every server command."""
    parser.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="a TOML settings file (default: $OSTIARY_CONFIG); OSTIARY_* variables win over it",
    )
