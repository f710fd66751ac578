"""The handlers of `ostiary serve` and `ostiary migrate`, loaded only when one runs."""

from __future__ import annotations

import argparse
import copy
import logging
import socket
import time
from typing import Any, Final

import uvicorn
from uvicorn.config import LOGGING_CONFIG

from ostiary.oauth.store import Store
from ostiary.server.app import create_app
from ostiary.server.key_secret import load_key_secret
from ostiary.server.keyring import ensure_signing_key
from ostiary.server.settings import Settings, SettingsError, redact_url

from ._console import fail
from ._server_settings import load_settings, run_with_store

log = logging.getLogger("ostiary.serve")

GRACEFUL_SHUTDOWN: Final = 10  # seconds for requests in flight after SIGTERM


def serve(args: argparse.Namespace) -> int:
    settings = load_settings(args, host=args.host, port=args.port)
    sock = _listen(settings.host, settings.port)
    if settings.port == 0:  # the issuer names the port the system picked
        settings = load_settings(args, host=args.host, port=sock.getsockname()[1])
    try:
        _prepare(args, settings)
        config = uvicorn.Config(
            create_app(settings),
            log_config=_log_config(args.log_level),
            log_level=args.log_level,
            access_log=args.access_log,
            lifespan="on",
            server_header=False,  # no product banner for scanners
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN,
        )
        log.info("%s", first_log_line(settings, sock))
        server = uvicorn.Server(config)
        server.run(sockets=[sock])
    finally:
        sock.close()
    return 0 if server.started else 1


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
        await ensure_signing_key(store, secret, settings.signing_alg, int(time.time()))

    run_with_store(args, check, migrate_first=True, settings=settings)


def _log_config(level: str) -> dict[str, Any]:
    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["ostiary"] = {
        "handlers": ["default"],
        "level": level.upper(),
        "propagate": False,
    }
    # one bare JSON object per line, so log shippers can parse audit events as they are
    config["formatters"]["ostiary_audit"] = {"format": "%(message)s"}
    config["handlers"]["ostiary_audit"] = {
        "class": "logging.StreamHandler",
        "formatter": "ostiary_audit",
        "stream": "ext://sys.stderr",
    }
    config["loggers"]["ostiary.audit"] = {
        "handlers": ["ostiary_audit"],
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
