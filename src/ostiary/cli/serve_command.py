"""`ostiary serve`: run the authorization server; `ostiary migrate`: update its database."""

from __future__ import annotations

import argparse

from ._console import HelpFormatter
from ._server_options import add_config_option, deferred

_LOG_LEVELS = ("debug", "info", "warning", "error")


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `serve` and `migrate`."""
    _add_serve(commands)
    _add_migrate(commands)


def _add_serve(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "serve",
        help="run the OAuth 2.1 authorization server",
        description="Run the authorization server. With no settings it is a local server "
        "that just works: issuer http://HOST:PORT, a SQLite database, a key-encryption secret "
        "and a signing key made in the working folder on first start. It migrates the "
        "database on start; its first log line says where it listens, the issuer and the "
        "database. Settings come from OSTIARY_* environment variables and --config FILE "
        "(TOML); the options below win over both.",
        formatter_class=HelpFormatter,
        epilog="""examples:
  ostiary serve                                   # http://127.0.0.1:8000, ./ostiary.db
  ostiary serve --port 9000 --config ostiary.toml
  ostiary serve --workers 4                       # four processes on one port
  OSTIARY_ISSUER=https://auth.example OSTIARY_DATABASE_URL=postgresql://auth@db:5432/auth \\
      ostiary serve --host 0.0.0.0 --port 8000    # behind a TLS-terminating proxy

--port 0 picks a free port; the first log line names it.""",
    )
    parser.add_argument("--host", help="address to listen on (default 127.0.0.1; OSTIARY_HOST)")
    parser.add_argument("--port", type=_port, help="port to listen on (default 8000; OSTIARY_PORT)")
    parser.add_argument(
        "--workers",
        type=_workers,
        help="processes that share the port (default 1; OSTIARY_WORKERS); with PostgreSQL, "
        "they and every other process on the same database act as one server",
    )
    parser.add_argument(
        "--log-level", choices=_LOG_LEVELS, default="info", help="log detail (default info)"
    )
    parser.add_argument(
        "--access-log",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="log one line per request (default: on)",
    )
    add_config_option(parser)
    # serve sets up logging itself: its first line says where it listens (audit lines after)
    parser.set_defaults(handler=deferred("_serve", "serve"), own_logging=True)


def _add_migrate(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "migrate",
        help="bring the database schema up to date",
        description="Create or update the server's database schema (`ostiary serve` does this "
        "on start too). Safe while servers run and from several hosts at once: migrations "
        "take a lock.",
    )
    add_config_option(parser)
    parser.set_defaults(handler=deferred("_serve", "migrate_database"))


def _workers(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 64:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of workers (1 to 64)")
    return int(text)


def _port(text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (0 to 65535)")
    return int(text)
