"""The `ostiary` command: one module per command group, each adding its own subparsers.

Exit status: 0 on success, 1 when the input is refused or a step fails (one line on stderr,
never a traceback), 2 for a usage error.
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import sys
from collections.abc import Sequence

from ostiary import __version__
from ostiary.jose import JoseError

from . import (
    apis_commands,
    audit_commands,
    clients_commands,
    demo,
    jwt_commands,
    keys_commands,
    purge_command,
    serve_command,
    users_commands,
)
from ._console import CommandError, HelpFormatter, printable

# Later groups (apis, audit) add a module here and nothing else.
COMMAND_GROUPS = (
    serve_command,
    clients_commands,
    apis_commands,
    users_commands,
    keys_commands,
    jwt_commands,
    audit_commands,
    purge_command,
    demo,
)


def build_parser() -> argparse.ArgumentParser:
    """The whole command line, with every registered group."""
    parser = argparse.ArgumentParser(
        prog="ostiary",
        description="Ostiary secures APIs with JWT and OAuth 2. Try: ostiary demo",
        formatter_class=HelpFormatter,
        epilog="Run 'ostiary COMMAND --help' for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"ostiary {__version__}")
    parser.set_defaults(handler=None)
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    for group in COMMAND_GROUPS:
        group.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `ostiary` console script; returns the exit status."""
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):  # never die on a character the locale lacks
            stream.reconfigure(errors="backslashreplace")
    parser = build_parser()
    try:
        args = parser.parse_args(None if argv is None else list(argv))
    except SystemExit as exc:  # --help, --version, or a usage error already explained
        return exc.code if isinstance(exc.code, int) else 2
    if args.handler is None:
        parser.print_help(sys.stderr)
        return 2
    if not getattr(args, "own_logging", False):
        _log_audit_events()
    try:
        status: int = args.handler(args)
    except (CommandError, JoseError) as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `ostiary ... | head`: the reader left; not our error
        _silence_stdout()
        return 1
    except Exception as exc:  # last resort: a one-line report, never a traceback
        return _fail(f"internal error ({type(exc).__name__}: {exc}); please report it")
    return status


class _AuditLines(logging.Handler):
    """Each audit event a command records, as the bare JSON line the server logs too."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            print(record.getMessage(), file=sys.stderr)  # sys.stderr as it is now
        except Exception:  # logging's own rule: never raise from emit
            self.handleError(record)


def _log_audit_events() -> None:
    """Client, user, API, consent and key changes made here are logged as the server logs
    them (`ostiary.audit`, one JSON object a line, on stderr), besides the database row."""
    audit = logging.getLogger("ostiary.audit")
    if not any(isinstance(handler, _AuditLines) for handler in audit.handlers):
        audit.addHandler(_AuditLines())
    audit.setLevel(logging.INFO)
    audit.propagate = False


def _fail(message: str) -> int:
    print(f"ostiary: error: {printable(message)}", file=sys.stderr)
    return 1


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
