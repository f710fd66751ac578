"""`ostiary purge`: remove what expired from the server's database, once."""

from __future__ import annotations

import argparse

from ._console import HelpFormatter
from ._server_options import add_config_option, deferred

MAX_BATCH = 10_000


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `purge`."""
    parser = commands.add_parser(
        "purge",
        help="remove expired codes, tokens, sessions and the like from the database",
        description="Remove from the server's database what expired and the protocol no "
        "longer needs, as every `ostiary serve` does each OSTIARY_PURGE_INTERVAL seconds, "
        "and print how many rows of each table went. For cron, or servers run with "
        "OSTIARY_PURGE_INTERVAL=0. Safe while servers run: it deletes in small batches, and "
        "on PostgreSQL steps aside while another process purges. Audit events are never "
        "removed.",
        formatter_class=HelpFormatter,
        epilog="""examples:
  ostiary purge                       # a table of rows removed
  ostiary purge --json                # {"removed": {...}, "total": N, "complete": true}
  ostiary purge --config ostiary.toml --batch 5000""",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--batch",
        type=_batch,
        default=1000,
        metavar="ROWS",
        help=f"rows one statement deletes at most (1 to {MAX_BATCH}, default 1000)",
    )
    add_config_option(parser)
    parser.set_defaults(handler=deferred("_purge", "purge"))


def _batch(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= MAX_BATCH:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of rows (1 to {MAX_BATCH})")
    return int(text)
