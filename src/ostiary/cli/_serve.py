"""The handlers of `ostiary serve` and `ostiary migrate`, loaded only when one runs."""

from __future__ import annotations

import argparse
import copy
import inspect
import json
import logging
import logging.config
import logging.handlers
import os
import shutil
import socket
import tempfile
import time
from pathlib import Path
from typing import Any, Final

import uvicorn
from pydantic import SecretStr
from starlette.applications import Starlette
from uvicorn.config import LOGGING_CONFIG
from uvicorn.supervisors import Multiprocess

from ostiary.oauth.store import Store
from ostiary.server import metrics
from ostiary.server.app import create_app
from ostiary.server.key_secret import load_key_secret
from ostiary.server.keyring import ensure_signing_keys, server_algorithms
from ostiary.server.settings import Settings, SettingsError, redact_url
from ostiary.store import write_audit_lines_with

from ._console import fail
from ._gc_freeze import freeze_after_startup
from ._http_protocol import CoalescingHttpToolsProtocol
from ._log_lines import TurnBufferedStreamHandler
from ._server_settings import load_settings, run_with_store

log = logging.getLogger("ostiary.serve")

# the access and audit lines of a turn of the event loop leave in one write
TURN_BUFFERED: Final = f"{TurnBufferedStreamHandler.__module__}.TurnBufferedStreamHandler"

GRACEFUL_SHUTDOWN: Final = 10  # seconds for requests in flight after SIGTERM
# How `--workers` hands each worker the settings its parent resolved (flags, file, port).
WORKER_SETTINGS: Final = "OSTIARY_SERVE_WORKER_SETTINGS"
# The private folder where the workers of one `serve --workers N` keep their metrics.
WORKER_METRICS: Final = "OSTIARY_SERVE_WORKER_METRICS"
AUDIT_LOGGER: Final = "ostiary.audit"
AUDIT_HANDLER: Final = "ostiary_audit"  # in `_log_config`: the bare JSON line, a turn at a time


def serve(args: argparse.Namespace) -> int:
    settings = load_settings(args, host=args.host, port=args.port, workers=args.workers)
    sock = _listen(settings.host, settings.port)
    if settings.port == 0:  # the issuer names the port the system picked
        settings = load_settings(
            args, host=args.host, port=sock.getsockname()[1], workers=args.workers
        )
    try:
        # The first key made before the server listens is an audit event too: held back
        # until logging is set up and the first line has said where the server listens.
        held = _hold_audit_lines()
        try:
            _prepare(args, settings)
        finally:
            logging.getLogger(AUDIT_LOGGER).removeHandler(held)
        # taken out now: configuring logging flushes (empties) every handler there is
        held_records = list(held.buffer)
        held.close()
        options: dict[str, Any] = {
            "log_config": _log_config(args.log_level),
            "log_level": args.log_level,
            "access_log": args.access_log,
            "lifespan": "on",
            "http": CoalescingHttpToolsProtocol,  # a response leaves in one write
            "server_header": False,  # no product banner for scanners
            "timeout_graceful_shutdown": GRACEFUL_SHUTDOWN,
        }
        logging.config.dictConfig(options["log_config"])  # before uvicorn's, for this line
        lean_log_records()
        log.info("%s", first_log_line(settings, sock))
        audit = logging.getLogger(AUDIT_LOGGER)
        for record in held_records:
            if audit.isEnabledFor(record.levelno):  # `--log-level warning` silences them
                audit.handle(record)
        if settings.workers > 1:
            return _serve_workers(settings, sock, options)
        server = uvicorn.Server(uvicorn.Config(serve_app(settings), **options))
        write_audit_lines_straight()  # uvicorn.Config has configured logging again
        try:
            server.run(sockets=[sock])
        finally:
            write_audit_lines_with(None)
    finally:
        sock.close()
    return 0 if server.started else 1


def _serve_workers(settings: Settings, sock: socket.socket, options: dict[str, Any]) -> int:
    """`settings.workers` processes accepting on one socket, restarted if one dies.

    Each worker is a fresh interpreter (multiprocessing's spawn: no state is shared by
    accident) that rebuilds the app from the settings this process resolved. The workers
    keep their metrics in a folder only this user can open (mkdtemp makes it 0700), so a
    scrape at any one of them reports them all; it is removed when the supervisor stops."""
    os.environ[WORKER_SETTINGS] = json.dumps(_worker_settings(settings))
    try:
        metrics_folder = tempfile.mkdtemp(prefix="ostiary-metrics-")
    except OSError as exc:
        fail(
            f"cannot make the workers' metrics folder in {tempfile.gettempdir()}: "
            f"{exc.strerror or exc} (set TMPDIR to a folder this user may write)"
        )
    os.environ[WORKER_METRICS] = metrics_folder
    try:
        config = uvicorn.Config(
            f"{__name__}:worker_app", factory=True, workers=settings.workers, **options
        )
        # uvicorn's own supervisor starts, watches, restarts and stops the workers. It gets
        # our TCP socket itself: `uvicorn.run(fd=...)` would wrap the descriptor as AF_UNIX,
        # and asyncio then leaves TCP_NODELAY off, so Nagle's algorithm holds every answer
        # ~40 ms.
        supervisor: dict[str, Any] = {"sockets": [sock]}
        if "target" in inspect.signature(Multiprocess).parameters:  # older uvicorn
            supervisor["target"] = uvicorn.Server(config).run
        Multiprocess(config, **supervisor).run()  # returns once every worker has stopped
    finally:
        shutil.rmtree(metrics_folder, ignore_errors=True)
    return 0


def lean_log_records() -> None:
    """Log records without what no formatter of ours prints: the caller's file and line (a
    walk up the stack for every record), thread, process and task names. Every issued token
    writes an audit line, so this is on the token endpoint's path (the Python logging
    documentation's "Optimization" section lists these switches)."""
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False


def write_audit_lines_straight() -> None:
    """Once logging is configured as `_log_config` says (uvicorn configures it in
    `uvicorn.Config`, and again in each worker), audit lines go straight into the audit
    handler's buffer, with no `LogRecord` of their own (see `write_audit_lines_with`); should
    anything else be listening on the audit logger, through it as before."""
    audit = logging.getLogger(AUDIT_LOGGER)
    handler = audit.handlers[0] if len(audit.handlers) == 1 else None
    straight = (
        isinstance(handler, TurnBufferedStreamHandler)
        and handler.name == AUDIT_HANDLER  # ours: it writes the bare message
        and not handler.filters
        and not audit.filters
    )
    write_audit_lines_with(handler.write_line if straight else None)  # type: ignore[union-attr]


def worker_app() -> Starlette:
    """The app of one `--workers` process, from the settings its parent resolved."""
    lean_log_records()
    write_audit_lines_straight()
    if not metrics.is_sharing():
        metrics.share_through(Path(os.environ[WORKER_METRICS]))
    return serve_app(Settings(**json.loads(os.environ[WORKER_SETTINGS])))


def serve_app(settings: Settings) -> Starlette:
    """The app `ostiary serve` runs, in its one process or in each worker: what its start
    made is then kept out of the garbage collector's full collections (`_gc_freeze.py`)."""
    return freeze_after_startup(create_app(settings))


def _worker_settings(settings: Settings) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, value in settings.model_dump(exclude={"config"}).items():
        if isinstance(value, SecretStr):
            values[name] = value.get_secret_value()
        elif isinstance(value, Path):
            values[name] = str(value)
        else:
            values[name] = value
    return values


def first_log_line(settings: Settings, sock: socket.socket) -> str:
    """Where the server listens, its issuer and database, and whether it runs on defaults."""
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if sock.family == socket.AF_INET6 else host
    line = f"listening on http://{shown}:{port}; {settings.summary()}"
    if settings.issuer is None:
        line += " (local defaults: set OSTIARY_ISSUER to a public https URL for production)"
    return line


def _listen(host: str, port: int) -> socket.socket:
    """A listening socket, bound before anything is logged, so the first line is true."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
    sock.set_inheritable(True)
    return sock


def _prepare(args: argparse.Namespace, settings: Settings) -> None:
    """What the app does on start, done first so a bad setting is one clear line, not a
    traceback from inside the server: the secret, the schema, a signing key that opens."""
    try:
        secret = load_key_secret(settings.key_path, create=settings.key_file is None)
    except SettingsError as exc:
        fail(str(exc))

    async def check(store: Store) -> None:
        algs = server_algorithms(settings.signing_alg)
        await ensure_signing_keys(store, secret, algs, int(time.time()))

    run_with_store(args, check, migrate_first=True, settings=settings)


def _hold_audit_lines() -> logging.handlers.BufferingHandler:
    audit = logging.getLogger(AUDIT_LOGGER)
    held = logging.handlers.BufferingHandler(capacity=1000)
    audit.addHandler(held)
    audit.setLevel(logging.INFO)
    audit.propagate = False
    return held


def _log_config(level: str) -> dict[str, Any]:
    config = copy.deepcopy(LOGGING_CONFIG)
    # The lines every request writes (access, audit) leave a turn at a time. The rest stay
    # unbuffered: uvicorn ends a process stopped by a signal by raising that signal again
    # once it has shut down, so nothing kept for a later turn could be written after
    # "Application shutdown complete."
    config["handlers"]["access"]["class"] = TURN_BUFFERED
    config["loggers"]["ostiary"] = {
        "handlers": ["default"],
        "level": level.upper(),
        "propagate": False,
    }
    # one bare JSON object per line, so log shippers can parse audit events as they are
    config["formatters"]["ostiary_audit"] = {"format": "%(message)s"}
    config["handlers"][AUDIT_HANDLER] = {
        "class": TURN_BUFFERED,
        "formatter": "ostiary_audit",
        "stream": "ext://sys.stderr",
    }
    config["loggers"][AUDIT_LOGGER] = {
        "handlers": [AUDIT_HANDLER],
        "level": level.upper(),
        "propagate": False,
    }
    return config


def migrate_database(args: argparse.Namespace) -> int:
    settings = load_settings(args)

    async def nothing(store: Store) -> None:
        return None

    run_with_store(args, nothing, migrate_first=True, settings=settings)
    print(f"database {redact_url(settings.database_url)}: schema up to date")
    return 0
