"""A real `ostiary serve` process for end-to-end tests, the `ostiary` command beside it,
a throwaway PostgreSQL database, and a loopback HTTP server that plays the client's
redirect_uri.

Everything binds 127.0.0.1 and lives in a temporary folder; processes are stopped by PID.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg  # type: ignore[import-untyped]
import httpx

from ostiary.jose import jwt
from ostiary.jose.jwk import JWK, JWKSet

SCRIPT = Path(sys.executable).parent / ("ostiary.exe" if os.name == "nt" else "ostiary")
HOST = "127.0.0.1"
START_TIMEOUT = 30.0  # first start migrates the database and creates the signing key
STOP_TIMEOUT = 10.0
CLI_TIMEOUT = 60.0
PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"  # the cluster CI provides
PG_CONNECT_TIMEOUT = 3.0
SCOPES = "read write"  # what every seeded client may ask for


@dataclass(frozen=True)
class Person:
    """A user made with `ostiary users create`, for one test."""

    username: str
    password: str


@dataclass(frozen=True)
class SignedClient:
    """A client that authenticates with private_key_jwt (RFC 7523) using `key`."""

    client_id: str
    key: JWK  # private, ES256, with a kid; its public half is registered


class ServerFailed(RuntimeError):
    """`ostiary serve` or an `ostiary` command did not do what the harness asked."""


def free_port() -> int:
    """A port nobody listens on right now (the server binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def clean_environment(folder: Path, settings: Mapping[str, str]) -> dict[str, str]:
    """The caller's environment without its OSTIARY_* settings, plus `settings`.

    HOME and the XDG folders point into `folder` so no run reads or leaves files elsewhere.
    """
    env = {name: value for name, value in os.environ.items() if not name.startswith("OSTIARY_")}
    env.update(
        HOME=str(folder),
        XDG_CONFIG_HOME=str(folder / ".config"),
        XDG_DATA_HOME=str(folder / ".local" / "share"),
        PYTHONUNBUFFERED="1",
    )
    env.update(settings)
    return env


@dataclass
class OstiaryServer:
    """One running `ostiary serve`, with the folder and settings its commands share."""

    backend: str  # "sqlite" or "postgresql"
    folder: Path
    env: dict[str, str]
    port: int
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    _metadata: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def base_url(self) -> str:
        """Where this process listens."""
        return f"http://{HOST}:{self.port}"

    @property
    def issuer(self) -> str:
        # DESIGN.md: with no OSTIARY_ISSUER the issuer is http://HOST:PORT.
        return self.env.get("OSTIARY_ISSUER", self.base_url)

    @property
    def settings(self) -> dict[str, str]:
        """The OSTIARY_* settings this process was started with."""
        return {name: value for name, value in self.env.items() if name.startswith("OSTIARY_")}

    def metadata(self) -> dict[str, Any]:
        """RFC 8414 authorization server metadata, fetched once."""
        if self._metadata is None:
            response = httpx.get(
                f"{self.base_url}/.well-known/oauth-authorization-server", timeout=10
            )
            response.raise_for_status()
            self._metadata = response.json()
        return self._metadata

    def endpoint(self, name: str) -> str:
        """An endpoint URL from the metadata, e.g. `endpoint("token")`."""
        url: str = self.metadata()[f"{name}_endpoint"]
        return url

    def access_token_claims(self, token: str, *, audience: str | None = None) -> dict[str, Any]:
        """Verify an RFC 9068 access token against the published JWKS, as an API would."""
        keys = JWKSet.from_dict(httpx.get(self.metadata()["jwks_uri"], timeout=10).json())
        return jwt.decode(
            token,
            keys,
            algorithms=["ES256", "RS256", "EdDSA"],
            audience=audience or self.issuer,
            issuer=self.issuer,
            typ="at+jwt",
        )

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def log_tail(self, chars: int = 4000) -> str:
        return self.log()[-chars:]

    def ostiary(self, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        """Run the `ostiary` command against this server's database and folder."""
        return subprocess.run(
            [str(SCRIPT), *args],
            input=stdin,
            capture_output=True,
            text=True,
            cwd=self.folder,
            env=self.env,
            timeout=CLI_TIMEOUT,
            check=False,
        )

    def ostiary_json(self, *args: str, stdin: str = "") -> dict[str, Any]:
        done = self.ostiary(*args, stdin=stdin)
        if done.returncode != 0:
            raise ServerFailed(
                f"ostiary {' '.join(args)} exited {done.returncode}:\n{done.stderr.strip()}"
            )
        try:
            result: dict[str, Any] = json.loads(done.stdout)
        except json.JSONDecodeError as exc:
            raise ServerFailed(f"ostiary {' '.join(args)} printed no JSON:\n{done.stdout}") from exc
        return result

    def create_client(
        self,
        *,
        name: str,
        grant_types: str,
        scopes: str,
        redirect_uris: str | None = None,
        public: bool = False,
        extra: Sequence[str] = (),
    ) -> dict[str, Any]:
        """`ostiary clients create ... --json`: `client_id`, and `client_secret` if confidential."""
        args = ["clients", "create", "--name", name, "--grant-types", grant_types]
        args += ["--scopes", scopes, *extra]
        if redirect_uris is not None:
            args += ["--redirect-uris", redirect_uris]
        if public:
            args.append("--public")
        return self.ostiary_json(*args, "--json")

    def create_user(self, username: str, password: str) -> None:
        """`ostiary users create --username U --password-stdin`."""
        done = self.ostiary(
            "users", "create", "--username", username, "--password-stdin", stdin=password + "\n"
        )
        if done.returncode != 0:
            raise ServerFailed(f"ostiary users create exited {done.returncode}:\n{done.stderr}")


def start_server(
    backend: str,
    folder: Path,
    settings: Mapping[str, str],
    *,
    name: str = "serve",
    args: Sequence[str] = (),
) -> OstiaryServer:
    """Start `ostiary serve` in `folder` and wait until its metadata answers.

    `name` tells the log files of several servers sharing one folder apart; `args` are more
    `ostiary serve` options (`--workers 2`).
    """
    if not SCRIPT.exists():
        raise ServerFailed(f"the ostiary console script is not installed ({SCRIPT})")
    folder.mkdir(parents=True, exist_ok=True)
    last_error = ""
    for attempt in range(3):  # another process may take the free port before we bind it
        server = OstiaryServer(
            backend=backend,
            folder=folder,
            env=clean_environment(folder, settings),
            port=free_port(),
            log_path=folder / f"{name}-{attempt}.log",
        )
        with server.log_path.open("wb") as log:
            server.process = subprocess.Popen(
                [str(SCRIPT), "serve", "--host", HOST, "--port", str(server.port), *args],
                cwd=folder,
                env=server.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C in pytest reaches us, not the server
            )
        if wait_until_ready(server):
            return server
        stop_server(server)
        last_error = server.log_tail()
        if "address already in use" not in last_error.lower():
            break
    raise ServerFailed(f"ostiary serve ({backend}) did not come up:\n{last_error}")


def wait_until_ready(server: OstiaryServer) -> bool:
    """Poll the metadata URL until it answers 200, the process dies, or time runs out."""
    assert server.process is not None
    url = f"{server.base_url}/.well-known/oauth-authorization-server"
    deadline = time.monotonic() + START_TIMEOUT
    with httpx.Client(timeout=2) as http:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                return False
            try:
                if http.get(url).status_code == 200:
                    return True
            except httpx.TransportError:
                pass
            time.sleep(0.1)  # bounded polling for a real server to come up
    return False


def stop_server(server: OstiaryServer) -> None:
    """SIGTERM by PID, then SIGKILL if it will not go."""
    process = server.process
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=STOP_TIMEOUT)


# -- PostgreSQL ----------------------------------------------------------------------------


def _asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql://", "postgres://", 1)


async def _execute(statement: str) -> None:
    connection = await asyncpg.connect(_asyncpg_dsn(PG_ADMIN_URL), timeout=PG_CONNECT_TIMEOUT)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def _admin(statement: str) -> None:
    """Run one statement in the `test` cluster, from a thread of its own: the caller's
    thread may already run an event loop (Playwright's sync API does)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, _execute(statement)).result(timeout=30)


def postgres_unreachable() -> str | None:
    """Why the `test` cluster at 127.0.0.1:5432 cannot be used, or None when it can."""
    try:
        _admin("SELECT 1")
    except (OSError, TimeoutError) as exc:
        return f"PostgreSQL at 127.0.0.1:5432 is not reachable ({exc})"
    except (asyncpg.PostgresError, asyncpg.InterfaceError) as exc:  # auth, no database
        return f"PostgreSQL at 127.0.0.1:5432 refused us ({type(exc).__name__}: {exc})"
    return None


@contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh database in the `test` cluster, dropped afterwards; yields its plain URL."""
    name = f"ostiary_e2e_{secrets.token_hex(6)}"
    _admin(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# -- the client's redirect_uri -------------------------------------------------------------


@dataclass(frozen=True)
class Callback:
    """One request the redirect_uri received: its path and query parameters."""

    path: str
    params: dict[str, list[str]]

    def one(self, name: str) -> str | None:
        values = self.params.get(name, [])
        assert len(values) <= 1, f"{name} repeated in the authorization response: {values}"
        return values[0] if values else None


class CallbackServer:
    """A loopback HTTP server that records every request to its redirect_uri."""

    def __init__(self) -> None:
        self._received: list[Callback] = []
        self._changed = threading.Condition()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                with owner._changed:
                    owner._received.append(Callback(parts.path, parse_qs(parts.query)))
                    owner._changed.notify_all()
                body = b"<!doctype html><title>callback</title><p>received</p>"
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class QuietServer(ThreadingHTTPServer):
            def handle_error(self, request: Any, client_address: Any) -> None:
                # A browser that closes a connection it opened speculatively is not a test
                # failure; anything else still surfaces through the assertions on `received`.
                if not isinstance(sys.exc_info()[1], ConnectionError):
                    super().handle_error(request, client_address)

        self._httpd = QuietServer((HOST, 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def redirect_uri(self) -> str:
        return f"http://{HOST}:{self._httpd.server_address[1]}/callback"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=STOP_TIMEOUT)

    def at(self, path: str) -> list[Callback]:
        """Every request received so far for `path`, in the order they came."""
        with self._changed:
            return [hit for hit in self._received if hit.path == path]

    def with_state(self, state: str) -> list[Callback]:
        with self._changed:
            return [hit for hit in self._received if hit.params.get("state") == [state]]

    def wait_for(self, state: str, timeout: float = 10.0) -> Callback:
        """The one callback carrying `state`; fails if none arrives in time."""
        with self._changed:
            self._changed.wait_for(lambda: bool(self.with_state(state)), timeout=timeout)
        hits = self.with_state(state)
        assert len(hits) == 1, f"expected one callback with state {state!r}, got {hits}"
        return hits[0]
