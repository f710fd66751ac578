"""`ostiary audit tail`: read the audit log of the server's database."""

from __future__ import annotations

import argparse

from ._console import HelpFormatter
from ._durations import parse_seconds
from ._server_options import add_config_option, deferred


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `audit` and its subcommands."""
    group = commands.add_parser(
        "audit",
        help="read the audit log: sign-ins, tokens, consents, client and key changes",
        description="Read the audit log the server writes to its database: every issuance, "
        "refresh, revocation, consent, sign-in, and client, user and key change. Events name "
        "clients, users and grants by id and never hold a secret or a token.",
    )
    group.set_defaults(handler=lambda _args: _show_help(group))
    sub = group.add_subparsers(title="commands", metavar="COMMAND")
    _add_tail(sub)


def _show_help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _lines(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 0 <= value <= 100_000:
        raise argparse.ArgumentTypeError("-n must be between 0 and 100000")
    return value


def _interval(text: str) -> float:
    value = parse_seconds(text)
    if not 0.05 <= value <= 3600:
        raise argparse.ArgumentTypeError("--interval must be between 0.05 and 3600 seconds")
    return value


def _add_tail(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "tail",
        help="print the newest audit events (and, with --follow, new ones as they come)",
        description="Print the newest audit events, oldest first, from the database a running "
        "server uses. With --follow, keep printing new events until interrupted (Ctrl-C).",
        formatter_class=HelpFormatter,
        epilog="""examples:
  ostiary audit tail                          # the last 20 events
  ostiary audit tail -n 100 --event login     # login.succeeded, login.failed, login.throttled
  ostiary audit tail --client c_abc --json    # one JSON object per line
  ostiary audit tail --follow --event token.issued

--event NAME matches that event or its family: 'key' matches key.created, key.rotated and
key.retired.""",
    )
    parser.add_argument(
        "-n",
        "--lines",
        type=_lines,
        default=20,
        metavar="N",
        help="how many of the newest events to print first (default 20)",
    )
    parser.add_argument(
        "-f", "--follow", action="store_true", help="keep printing new events as they come"
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.add_argument("--event", metavar="NAME", help="only this event or family (e.g. login)")
    parser.add_argument("--client", metavar="CLIENT_ID", help="only events of this client")
    parser.add_argument("--user", metavar="USER_ID", help="only events of this user")
    parser.add_argument(
        "--interval",
        type=_interval,
        default=1.0,
        metavar="SECONDS",
        help="with --follow, how often to look for new events (default 1)",
    )
    add_config_option(parser)
    parser.set_defaults(handler=deferred("_audit", "tail"))
