"""Token endpoint throughput of Ostiary side by side with oidc-provider and
@node-oauth/oauth2-server, all in one run, the same way for every server.

    .venv/bin/python bench/token_endpoint.py              # full run: 3 rounds, 10 s per case
    .venv/bin/python bench/token_endpoint.py --quick      # 1 round, 3 s per case
    .venv/bin/python bench/token_endpoint.py --quick --rounds 3   # 3 rounds of 3 s
    .venv/bin/python bench/token_endpoint.py --list       # the server keys
    .venv/bin/python bench/token_endpoint.py --targets 'oidc-provider-*,node-oauth-*'
    .venv/bin/python bench/token_endpoint.py --targets 'floor-*'   # Python's floor, on request
    .venv/bin/python bench/token_endpoint.py --grants client_credentials --markdown
    .venv/bin/python bench/token_endpoint.py --profile ostiary-sqlite-es256   # py-spy, top costs

Each server process is pinned to CPU 0 (`taskset -c 0`) and `wrk` to CPU 1, 16 connections on
127.0.0.1, a warm-up, then the measured window. Two cases per server:

- `client_credentials` with client_secret_basic (RFC 6749 §4.4, §2.3.1);
- `refresh_token` (RFC 6749 §6), every request with a refresh token never used before: each
  server mints a pool of refresh tokens before the window, and a wrk Lua script hands out one
  per request. Should the pool run dry, the script goes on with the rotated tokens the server
  has just returned (still each used once); the report says how many requests that was.

Before a server is timed it must issue a token of the expected format (a JWT that verifies
against its JWKS, or an opaque string), refuse a wrong client secret with 401, rotate a refresh
token, and refuse the rotated one: nobody is measured on an error path or for skipping a check.
CPU per request is the server's user+system time (/proc/PID/stat, its children included) over
the window, divided by the tokens it issued.

The host's speed drifts within minutes, so cases are measured in interleaved rounds: every
server is started up front and stays up (idle, on the same CPU), and each round measures every
case once, in the same order. Before each window opens, the bench waits (5 s at most) until the
idle servers use under 2% of a core, so that one just measured is not still busy on the
shared core; what they used in the window is reported all the same. A ratio between two
servers is computed within each round, from cases measured a minute or so apart, and reported
as the median over the rounds with its range.
"""

# mypy: disable-error-code="import-untyped"
from __future__ import annotations

import argparse
import asyncio
import base64
import datetime
import fnmatch
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
NODE_DIR = HERE / "token_node"
VENV_BIN = Path(sys.executable).parent
OSTIARY = VENV_BIN / "ostiary"
HOST = "127.0.0.1"
SERVER_CPU = "0"
BENCH_TOKEN_RATE_LIMIT = 1_000_000_000
WRK_CPU = "1"
CONNECTIONS = 16
SCOPE = "read"
SCOPES = "read write"
RESOURCE = "https://api.example"  # the node servers' audience; Ostiary's default is its issuer
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
NPM_TIMEOUT = 300.0
PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"
POOL_MARGIN = 1.3  # pool = expected requests x margin; the Lua script chains past the end
POOL_CAP = 60_000
# 16 cases x 3 rounds x (1 s warm-up + 10 s + minting the pools) is about 11 minutes.
ROUNDS = 3
WINDOW = 10.0
GRANTS = ("client_credentials", "refresh_token")
MINT_CONCURRENCY = 10  # refresh tokens written at once while preparing Ostiary's pool

Minter = Callable[[int], list[str]]


# -- wrk -------------------------------------------------------------------------------------

# Both scripts print one JSON line from done(): wrk's own counters and latency percentiles (µs).
LUA_DONE = r"""
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH-RESULT {"duration_us":%d,"requests":%d,"bytes":%d,"connect":%d,"read":%d,' ..
    '"write":%d,"status":%d,"timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,' ..
    '"p999_us":%d,"mean_us":%.1f,"max_us":%d}\n',
    summary.duration, summary.requests, summary.bytes, e.connect, e.read, e.write,
    e.status, e.timeout, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9), latency.mean, latency.max))
end
"""

LUA_CLIENT_CREDENTIALS = (
    r"""
-- args: the Authorization header value
function init(args)
  wrk.method = "POST"
  wrk.headers["Authorization"] = args[1]
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
  wrk.body = "grant_type=client_credentials&scope="""
    + SCOPE
    + r""""
end
"""
    + LUA_DONE
)

LUA_REFRESH = (
    r"""
-- args: the Authorization header value, a file of refresh tokens (one a line)
local tokens, head, tail = {}, 1, 0
function init(args)
  wrk.method = "POST"
  wrk.headers["Authorization"] = args[1]
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
  for line in io.lines(args[2]) do
    tail = tail + 1
    tokens[tail] = line
  end
end
function request()
  local token = tokens[head] or "pool-exhausted"
  tokens[head] = nil
  head = head + 1
  return wrk.format(nil, nil, nil, "grant_type=refresh_token&refresh_token=" .. token)
end
function response(status, headers, body)
  -- keep going past the pool's end with the rotated tokens, each still used once
  if status == 200 then
    local token = body:match('"refresh_token"%s*:%s*"([^"]+)"')
    if token then
      tail = tail + 1
      tokens[tail] = token
    end
  end
end
"""
    + LUA_DONE
)


@dataclass(frozen=True)
class WrkResult:
    duration: float  # seconds
    requests: int
    errors: int  # non-2xx/3xx responses
    socket_errors: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float

    @property
    def ok(self) -> int:
        return self.requests - self.errors

    @property
    def rate(self) -> float:
        return self.ok / self.duration


def run_wrk(url: str, script: Path, args: Sequence[str], seconds: float) -> WrkResult:
    command = [
        *pin(WRK_CPU),
        "wrk",
        "-t1",
        f"-c{CONNECTIONS}",
        f"-d{max(1, round(seconds))}s",  # wrk takes whole seconds
        "--timeout",
        "5s",
        "--latency",
        "-s",
        str(script),
        url,
        "--",
        *args,
    ]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=seconds + 60, check=False
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("BENCH-RESULT ")]
    if done.returncode != 0 or not lines:
        raise BenchError(f"wrk failed ({done.returncode}): {done.stderr.strip() or done.stdout}")
    raw = json.loads(lines[-1].removeprefix("BENCH-RESULT "))
    return WrkResult(
        duration=raw["duration_us"] / 1e6,
        requests=raw["requests"],
        errors=raw["status"],
        socket_errors=raw["connect"] + raw["read"] + raw["write"] + raw["timeout"],
        p50_ms=raw["p50_us"] / 1000,
        p90_ms=raw["p90_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        mean_ms=raw["mean_us"] / 1000,
        max_ms=raw["max_us"] / 1000,
    )


# -- processes -------------------------------------------------------------------------------


class BenchError(RuntimeError):
    """A server did not start, answered wrongly, or a tool is missing."""


# Pin only where both CPUs exist; the report says so when they do not.
PINNING = {int(SERVER_CPU), int(WRK_CPU)} <= os.sched_getaffinity(0) and bool(
    shutil.which("taskset")
)


def pin(cpu: str) -> list[str]:
    return ["taskset", "-c", cpu] if PINNING else []


def cpu_seconds(pid: int) -> float:
    """User+system CPU of `pid` and every live descendant (proc(5): utime, stime)."""
    return cpu_seconds_of([pid])[pid]


def cpu_seconds_of(pids: Sequence[int]) -> dict[int, float]:
    """`cpu_seconds` of several processes from one reading of /proc."""
    children: dict[int, list[int]] = {}
    times: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        ppid = int(fields[1])
        children.setdefault(ppid, []).append(int(entry))
        times[int(entry)] = (int(fields[11]) + int(fields[12])) / tick
    totals: dict[int, float] = {}
    for pid in pids:
        total, todo = 0.0, [pid]
        while todo:
            current = todo.pop()
            total += times.get(current, 0.0)
            todo.extend(children.get(current, ()))
        totals[pid] = total
    return totals


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM by PID, then SIGKILL if it will not go."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=STOP_TIMEOUT)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


# -- servers ---------------------------------------------------------------------------------


@dataclass
class Server:
    """A running token endpoint and what the benchmark needs to drive it."""

    key: str
    product: str
    storage: str
    token_format: str  # "RS256 JWT", "ES256 JWT" or "opaque"
    process: subprocess.Popen[bytes]
    base_url: str
    token_url: str
    jwks_url: str | None
    client_id: str
    client_secret: str
    mint_refresh: Minter
    log_path: Path
    audience: str = RESOURCE

    @property
    def authorization(self) -> str:
        # RFC 6749 §2.3.1: form-urlencode, then Basic; our ids and secrets need no escaping
        raw = f"{self.client_id}:{self.client_secret}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")

    @property
    def expected_alg(self) -> str | None:
        return None if self.token_format == "opaque" else self.token_format.split()[0]

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


@dataclass(frozen=True)
class Target:
    key: str
    product: str
    storage: str
    token_format: str
    start: Callable[[Target, ExitStack, Path], Server]


def ensure_node_modules() -> None:
    """`npm ci` in bench/token_node unless its node_modules matches the lockfile already."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        raise BenchError("node and npm are not installed (Debian: apt-get install nodejs npm)")
    lock = NODE_DIR / "package-lock.json"
    installed = NODE_DIR / "node_modules" / ".package-lock.json"
    if installed.exists() and installed.stat().st_mtime >= lock.stat().st_mtime:
        return
    print("installing the node servers' packages (npm ci) ...", file=sys.stderr)
    done = subprocess.run(
        ["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund"],
        cwd=NODE_DIR,
        capture_output=True,
        text=True,
        timeout=NPM_TIMEOUT,
        check=False,
    )
    if done.returncode != 0:
        raise BenchError(f"npm ci in bench/token_node failed:\n{done.stderr[-2000:]}")


def start_node(target: Target, stack: ExitStack, folder: Path) -> Server:
    """A server that takes BENCH_* settings and prints {"port": N}: the two node servers,
    and the Python floor below."""
    if target.product == "oidc-provider":
        command = ["node", "oidc_provider_server.mjs"]
    elif target.product == FLOOR:
        command = [sys.executable, str(Path(__file__).resolve()), "--serve-floor"]
    else:
        command = ["node", "node_oauth_server.mjs"]
    client_id = "bench-" + secrets.token_hex(4)
    client_secret = secrets.token_urlsafe(32)
    env = dict(
        os.environ,
        BENCH_FORMAT=target.token_format.split()[0]
        if target.product == FLOOR
        else ("opaque" if target.token_format == "opaque" else "jwt"),
        BENCH_CLIENT_ID=client_id,
        BENCH_CLIENT_SECRET=client_secret,
        BENCH_RESOURCE=RESOURCE,
        BENCH_SCOPES=SCOPES,
        NODE_ENV="production",
    )
    log_path = folder / f"{target.key}.log"
    log = stack.enter_context(log_path.open("wb"))
    process = subprocess.Popen(
        [*pin(SERVER_CPU), *command],
        cwd=NODE_DIR,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=log,
        start_new_session=True,
    )
    stack.callback(stop, process)
    assert process.stdout is not None
    first = process.stdout.readline()  # {"port": N} once listening, or EOF if it died
    if not first:
        process.wait(timeout=STOP_TIMEOUT)
        raise BenchError(f"{target.key} did not start:\n{log_path.read_text(errors='replace')}")
    port = json.loads(first)["port"]
    base = f"http://{HOST}:{port}"

    def mint(n: int) -> list[str]:
        response = httpx.post(f"{base}/bench/refresh-tokens", params={"n": n}, timeout=120)
        response.raise_for_status()
        return response.text.split("\n") if n else []

    return Server(
        key=target.key,
        product=target.product,
        storage=target.storage,
        token_format=target.token_format,
        process=process,
        base_url=base,
        token_url=f"{base}/token",
        jwks_url=f"{base}/jwks",
        client_id=client_id,
        client_secret=client_secret,
        mint_refresh=mint,
        log_path=log_path,
    )


# -- the floor: the node servers' job in Python on Ostiary's stack, nothing else -------------

FLOOR = "floor (Starlette)"


def serve_floor() -> None:
    """Uvicorn + Starlette + `ostiary.jose`, state in dicts: the least a Python token endpoint on
    Ostiary's stack can cost. Basic auth against a SHA-256 hash (constant time), an RFC 9068
    JWT (BENCH_FORMAT is ES256 or RS256), refresh tokens by hash, rotated on use."""
    import hashlib
    import hmac
    from urllib.parse import parse_qs

    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, PlainTextResponse, Response
    from starlette.routing import Route

    from ostiary.jose import jwk, jwt
    from ostiary.oauth.token_hash import hash_token, new_token_value

    alg = os.environ["BENCH_FORMAT"]
    client_id = os.environ["BENCH_CLIENT_ID"]
    secret_hash = hashlib.sha256(os.environ["BENCH_CLIENT_SECRET"].encode()).digest()
    scopes = set(os.environ["BENCH_SCOPES"].split())
    key = (
        jwk.generate("EC", crv="P-256", kid="floor")
        if alg == "ES256"
        else (jwk.generate("RSA", size=2048, kid="floor"))
    )
    refresh: dict[str, tuple[str, str]] = {}  # hash -> (subject, scope)
    no_store = {"Cache-Control": "no-store"}

    def error(code: str, status: int = 400) -> Response:
        return JSONResponse({"error": code}, status, headers=no_store)

    def issue(subject: str, scope: str, refresh_token: str | None) -> Response:
        now = int(time.time())
        claims = {
            "iss": "http://127.0.0.1",
            "sub": subject,
            "aud": RESOURCE,
            "exp": now + 600,
            "iat": now,
            "jti": secrets.token_urlsafe(16),
            "client_id": client_id,
            "scope": scope,
        }
        body = {
            "access_token": jwt.encode(claims, key, alg=alg, headers={"typ": "at+jwt"}),
            "token_type": "Bearer",
            "expires_in": 600,
            "scope": scope,
        }
        if refresh_token is not None:
            body["refresh_token"] = refresh_token
        return JSONResponse(body, headers=no_store)

    async def token(request: Request) -> Response:
        basic = request.headers.get("authorization", "")
        try:
            given_id, _, given_secret = (
                base64.b64decode(basic.removeprefix("Basic "), validate=True)
                .decode()
                .partition(":")
            )
        except ValueError:
            return error("invalid_client", 401)
        given = hashlib.sha256(given_secret.encode()).digest()
        if not (hmac.compare_digest(given, secret_hash) and given_id == client_id):
            return error("invalid_client", 401)
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        if form.get("grant_type") == "client_credentials":
            scope = form.get("scope", "")
            if not set(scope.split()) <= scopes:
                return error("invalid_scope")
            return issue(client_id, scope, None)
        if form.get("grant_type") == "refresh_token":
            found = refresh.pop(hash_token(form.get("refresh_token", "")), None)
            if found is None:
                return error("invalid_grant")
            value = new_token_value()
            refresh[hash_token(value)] = found
            return issue(found[0], found[1], value)
        return error("unsupported_grant_type")

    async def jwks(request: Request) -> Response:
        return JSONResponse({"keys": [key.public().to_dict()]})

    async def mint(request: Request) -> Response:
        values = [new_token_value() for _ in range(int(request.query_params.get("n", "0")))]
        refresh.update((hash_token(v), ("bench-user", SCOPE)) for v in values)
        return PlainTextResponse("\n".join(values))

    app = Starlette(
        routes=[
            Route("/token", token, methods=["POST"]),
            Route("/jwks", jwks),
            Route("/bench/refresh-tokens", mint, methods=["POST"]),
        ]
    )
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((HOST, 0))
    sock.listen(1024)  # connections queue from here on, before uvicorn accepts them
    print(json.dumps({"port": sock.getsockname()[1]}), flush=True)
    config = uvicorn.Config(app, log_level="warning", access_log=False)
    uvicorn.Server(config).run(sockets=[sock])


# -- Ostiary ---------------------------------------------------------------------------------


async def _pg_admin(statement: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(
        PG_ADMIN_URL.replace("postgresql://", "postgres://", 1), timeout=3
    )
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def postgres_unreachable() -> str | None:
    try:
        asyncio.run(_pg_admin("SELECT 1"))
    except Exception as exc:  # any reason at all means: skip the PostgreSQL targets
        return f"PostgreSQL at 127.0.0.1:5432 is not usable ({type(exc).__name__}: {exc})"
    return None


@contextmanager
def postgres_database() -> Iterator[str]:
    name = f"ostiary_bench_{secrets.token_hex(6)}"
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _ostiary_command(
    args: Sequence[str], folder: Path, env: dict[str, str], stdin: str = ""
) -> str:
    done = subprocess.run(
        [str(OSTIARY), *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=folder,
        env=env,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise BenchError(f"ostiary {' '.join(args)} exited {done.returncode}:\n{done.stderr}")
    return done.stdout


def ostiary_minter(database_url: str, client_id: str, user_id: str) -> Minter:
    """Refresh tokens written straight through Ostiary's own `Store`, as the token endpoint
    would after an authorization code exchange: one grant (family) per token."""

    def mint(n: int) -> list[str]:
        return asyncio.run(_ostiary_mint(database_url, client_id, user_id, n))

    return mint


async def _ostiary_mint(database_url: str, client_id: str, user_id: str, n: int) -> list[str]:
    from ostiary.oauth.models import RefreshToken
    from ostiary.oauth.token_hash import hash_token, new_token_value
    from ostiary.store import open_store

    now = int(time.time())
    values = [new_token_value() for _ in range(n)]
    tokens = [
        RefreshToken(
            token_hash=hash_token(value),
            grant_id=secrets.token_urlsafe(16),
            client_id=client_id,
            user_id=user_id,
            scope=frozenset({SCOPE}),
            created_at=now,
            expires_at=now + 30 * 24 * 3600,
            auth_time=now,
        )
        for value in values
    ]
    async with open_store(database_url) as store:
        for start in range(0, n, MINT_CONCURRENCY):  # PostgreSQL takes them in parallel
            batch = tokens[start : start + MINT_CONCURRENCY]
            await asyncio.gather(*(store.tokens.add_refresh(t) for t in batch))
    return values


async def _ostiary_user_id(database_url: str, username: str) -> str:
    from ostiary.store import open_store

    async with open_store(database_url) as store:
        user = await store.users.by_username(username)
    if user is None:
        raise BenchError(f"ostiary users create made no user {username!r}")
    return user.user_id


def start_ostiary(target: Target, stack: ExitStack, folder: Path) -> Server:
    if not OSTIARY.exists():
        raise BenchError(f"the ostiary console script is not installed ({OSTIARY})")
    home = folder / target.key
    home.mkdir()
    if target.storage == "PostgreSQL":
        database_url = stack.enter_context(postgres_database())
    else:
        database_url = f"sqlite:///{home / 'ostiary.db'}"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OSTIARY_")}
    env.update(
        HOME=str(home),
        PYTHONUNBUFFERED="1",
        OSTIARY_DATABASE_URL=database_url,
        OSTIARY_SIGNING_ALG=target.token_format.split()[0],
        OSTIARY_ISSUER=f"http://{HOST}:{port}",
        # The per-client limit stays on (its counting is part of each request's cost), set
        # above what one client sends here: the default, 120,000 a minute, is for production.
        OSTIARY_TOKEN_RATE_LIMIT=str(BENCH_TOKEN_RATE_LIMIT),
    )
    log_path = home / "serve.log"
    log = stack.enter_context(log_path.open("wb"))
    listen = ["--host", HOST, "--port", str(port)]
    process = subprocess.Popen(
        # no access log: the node servers write no line per request either
        [*pin(SERVER_CPU), str(OSTIARY), "serve", *listen, "--no-access-log"],
        cwd=home,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    stack.callback(stop, process)
    # The client and the refresh pool's user are made while the server starts: every command
    # migrates under the same lock as `serve`, and a running server sees new rows at once.
    registered = json.loads(
        _ostiary_command(
            [
                "clients",
                "create",
                "--name",
                "bench",
                "--grant-types",
                "authorization_code,refresh_token,client_credentials",
                "--redirect-uris",
                "https://client.example/callback",
                "--scopes",
                SCOPES,
                "--json",
            ],
            home,
            env,
        )
    )
    _ostiary_command(
        ["users", "create", "--username", "bench", "--password-stdin"],
        home,
        env,
        stdin=secrets.token_urlsafe(16) + "\n",
    )
    user_id = asyncio.run(_ostiary_user_id(database_url, "bench"))
    base = f"http://{HOST}:{port}"
    metadata = wait_for_metadata(process, f"{base}/.well-known/oauth-authorization-server")
    if metadata is None:
        raise BenchError(f"ostiary serve did not come up:\n{log_path.read_text(errors='replace')}")
    return Server(
        key=target.key,
        product="Ostiary",
        storage=target.storage,
        token_format=target.token_format,
        process=process,
        base_url=base,
        token_url=metadata["token_endpoint"],
        jwks_url=metadata.get("jwks_uri"),
        client_id=registered["client_id"],
        client_secret=registered["client_secret"],
        mint_refresh=ostiary_minter(database_url, registered["client_id"], user_id),
        log_path=log_path,
        audience=metadata["issuer"],  # Ostiary's audience when no resource is asked
    )


def wait_for_metadata(process: subprocess.Popen[bytes], url: str) -> dict[str, Any] | None:
    deadline = time.monotonic() + START_TIMEOUT
    with httpx.Client(timeout=2) as http:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                return None
            try:
                response = http.get(url)
                if response.status_code == 200:
                    metadata: dict[str, Any] = response.json()
                    return metadata
            except httpx.TransportError:
                pass
            time.sleep(0.1)  # bounded polling for a real server to come up
    return None


TARGETS: tuple[Target, ...] = (
    Target("node-oauth-jwt", "@node-oauth/oauth2-server", "memory", "RS256 JWT", start_node),
    Target("node-oauth-opaque", "@node-oauth/oauth2-server", "memory", "opaque", start_node),
    Target("oidc-provider-jwt", "oidc-provider", "memory", "RS256 JWT", start_node),
    Target("oidc-provider-opaque", "oidc-provider", "memory", "opaque", start_node),
    Target("floor-rs256", FLOOR, "memory", "RS256 JWT", start_node),
    Target("floor-es256", FLOOR, "memory", "ES256 JWT", start_node),
    Target("ostiary-sqlite-rs256", "Ostiary", "SQLite", "RS256 JWT", start_ostiary),
    Target("ostiary-sqlite-es256", "Ostiary", "SQLite", "ES256 JWT", start_ostiary),
    Target("ostiary-pg-rs256", "Ostiary", "PostgreSQL", "RS256 JWT", start_ostiary),
    Target("ostiary-pg-es256", "Ostiary", "PostgreSQL", "ES256 JWT", start_ostiary),
)


# The floor is there to read Ostiary's figures against, on request (`--targets 'floor-*'`).
DEFAULT_TARGETS = tuple(t.key for t in TARGETS if t.product != FLOOR)


# -- checks before timing --------------------------------------------------------------------


def check_server(server: Server) -> None:
    """The server must do the real work before it is timed (see the module docstring)."""
    from ostiary.jose import JoseError, jwt
    from ostiary.jose.jwk import JWKSet

    auth = {"Authorization": server.authorization}
    with httpx.Client(timeout=10) as http:
        cc = {"grant_type": "client_credentials", "scope": SCOPE}
        ok = http.post(server.token_url, data=cc, headers=auth)
        if ok.status_code != 200:
            raise BenchError(f"{server.key}: client_credentials got {ok.status_code}: {ok.text}")
        body = ok.json()
        token = body.get("access_token")
        if not isinstance(token, str) or str(body.get("token_type", "")).lower() != "bearer":
            raise BenchError(f"{server.key}: not a bearer token response: {body}")
        alg = server.expected_alg
        if alg is None:
            if token.count(".") == 2:
                raise BenchError(f"{server.key}: expected an opaque token, got a JWT")
        else:
            if server.jwks_url is None:
                raise BenchError(f"{server.key}: no JWKS to check its JWTs against")
            keys = JWKSet.from_dict(http.get(server.jwks_url).raise_for_status().json())
            try:
                claims = jwt.decode(token, keys, algorithms=[alg], audience=server.audience)
            except JoseError as exc:
                raise BenchError(f"{server.key}: its JWT does not verify: {exc!r}") from exc
            header = jwt.unverified_header(token)
            missing = {"iss", "sub", "aud", "exp", "iat", "jti", "client_id"} - set(claims)
            if missing or header.get("typ", "").lower() not in ("at+jwt", "application/at+jwt"):
                raise BenchError(f"{server.key}: not an RFC 9068 token: {header} {claims}")
        wrong_secret = (server.client_id, server.client_secret + "x")
        wrong = http.post(server.token_url, data=cc, auth=wrong_secret)
        if wrong.status_code != 401 or wrong.json().get("error") != "invalid_client":
            raise BenchError(f"{server.key}: a wrong secret got {wrong.status_code}: {wrong.text}")
        (first,) = server.mint_refresh(1)
        form = {"grant_type": "refresh_token", "refresh_token": first}
        rotated = http.post(server.token_url, data=form, headers=auth)
        if rotated.status_code != 200 or rotated.json().get("refresh_token") in (None, first):
            raise BenchError(f"{server.key}: refresh did not rotate: {rotated.text}")
        replayed = http.post(server.token_url, data=form, headers=auth)
        if replayed.status_code != 400 or replayed.json().get("error") != "invalid_grant":
            raise BenchError(f"{server.key}: a rotated refresh token got {replayed.text}")


# -- one case --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CaseResult:
    server: str
    product: str
    storage: str
    token_format: str
    grant: str
    wrk: WrkResult
    cpu_us: float  # server CPU per issued token
    pool: int = 0
    chained: int = 0  # refresh requests past the pool, on tokens the server had just rotated
    round: int = 1
    others_cpu_ms: float = 0.0  # CPU the servers not measured used during the window


@dataclass(frozen=True)
class Load:
    """What wrk sends: its script, the script's arguments, and how many refresh tokens the
    pool holds (0 for client_credentials)."""

    script: Path
    args: list[str]
    pool: int = 0
    pool_file: Path | None = None


def make_load(server: Server, grant: str, folder: Path, *, rate: float, seconds: float) -> Load:
    """The wrk script for `grant`; for refresh, a fresh pool sized for `rate` tokens/s."""
    auth = server.authorization
    if grant == "client_credentials":
        return Load(folder / "client_credentials.lua", [auth])
    pool = min(POOL_CAP, int(rate * seconds * POOL_MARGIN) + 200)
    path = folder / f"{server.key}-{secrets.token_hex(4)}.pool"
    path.write_text("\n".join(server.mint_refresh(pool)) + "\n")
    return Load(folder / "refresh_token.lua", [auth, str(path)], pool, path)


def drop(load: Load) -> None:
    # a full run writes up to a hundred pools of a few MB each to the temporary folder
    if load.pool_file is not None:
        load.pool_file.unlink(missing_ok=True)


def run_case(
    server: Server,
    grant: str,
    folder: Path,
    *,
    warmup: float,
    seconds: float,
    rate: float,
    others: Sequence[Server] = (),
) -> CaseResult:
    """Warm up, then measure. The measured pool is sized from the warm-up's own rate."""
    if warmup > 0:
        warm = make_load(server, grant, folder, rate=rate, seconds=warmup)
        rate = max(run_wrk(server.token_url, warm.script, warm.args, warmup).rate, 100.0)
        drop(warm)
    load = make_load(server, grant, folder, rate=rate, seconds=seconds)
    settle(others)
    try:
        return measure(server, grant, load, seconds=seconds, others=others)
    finally:
        drop(load)


SETTLE_SHARE = 0.02  # of a core: the idle servers together, before a window opens
SETTLE_STEP = 0.5  # seconds between two readings (a tick of /proc is 10 ms)
SETTLE_MAX = 5.0  # seconds; then the window opens anyway (its idle CPU is reported)


def settle(others: Sequence[Server]) -> None:
    """Wait (a few seconds at most) until the servers not measured next are idle: one that
    was just measured may still be collecting garbage or checkpointing on the shared core."""
    pids = [o.process.pid for o in others]
    if not pids:
        return
    before = cpu_seconds_of(pids)
    deadline = time.monotonic() + SETTLE_MAX
    while time.monotonic() < deadline:
        time.sleep(SETTLE_STEP)
        after = cpu_seconds_of(pids)
        used = sum(max(0.0, after[pid] - before[pid]) for pid in pids)
        if used <= SETTLE_SHARE * SETTLE_STEP:
            return
        before = after


def measure(
    server: Server, grant: str, load: Load, *, seconds: float, others: Sequence[Server] = ()
) -> CaseResult:
    """One window of wrk; `others` are the idle servers, whose CPU in the window is recorded
    because they share the measured server's core."""
    pids = [server.process.pid, *(o.process.pid for o in others)]
    before = cpu_seconds_of(pids)
    result = run_wrk(server.token_url, load.script, load.args, seconds)
    after = cpu_seconds_of(pids)
    if server.process.poll() is not None:
        raise BenchError(f"{server.key} died during {grant}:\n{server.log_tail()}")
    cpu = after[server.process.pid] - before[server.process.pid]
    idle = sum(max(0.0, after[pid] - before[pid]) for pid in pids[1:])  # one may have died
    return CaseResult(
        server=server.key,
        product=server.product,
        storage=server.storage,
        token_format=server.token_format,
        grant=grant,
        wrk=result,
        cpu_us=cpu / max(result.ok, 1) * 1e6,
        pool=load.pool,
        chained=max(0, result.requests - load.pool) if load.pool else 0,
        others_cpu_ms=idle * 1000,
    )


def profile_server(server: Server, grant: str, folder: Path, seconds: float, rate: float) -> str:
    """py-spy's top functions of the server while wrk drives `grant` (py-spy installed by
    hand into the venv). Sampled with --gil: the Python work, not the threads' idle waits."""
    py_spy = shutil.which("py-spy") or str(VENV_BIN / "py-spy")
    if not Path(py_spy).exists():
        return "py-spy is not installed (.venv/bin/pip install py-spy)"
    warm = make_load(server, grant, folder, rate=rate, seconds=1)
    rate = run_wrk(server.token_url, warm.script, warm.args, 1).rate
    load = make_load(server, grant, folder, rate=rate, seconds=seconds + 1)
    out = folder / f"{server.key}-{grant}.txt"
    record = ["record", "--pid", str(server.process.pid), "--duration", f"{int(seconds)}"]
    sampling = ["--rate", "250", "--gil", "--nonblocking"]
    spy = subprocess.Popen(
        [py_spy, *record, *sampling, "--format", "raw", "--output", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    result = measure(server, grant, load, seconds=seconds + 1)
    _, err = spy.communicate(timeout=seconds + 30)
    if not out.exists():
        return f"py-spy failed: {err.decode(errors='replace')[-500:]}"
    w = result.wrk
    head = f"{w.rate:,.0f} tokens/s, {result.cpu_us:,.0f} µs CPU/token, p99 {w.p99_ms:.1f} ms"
    return head + "\n" + summarize_folded(out.read_text())


def summarize_folded(folded: str, top: int = 25) -> str:
    """Inclusive and self sample shares per function from py-spy's folded stacks."""
    inclusive: dict[str, int] = {}
    own: dict[str, int] = {}
    total = 0
    for line in folded.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = stack.split(";")
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + count
        own[frames[-1]] = own.get(frames[-1], 0) + count
    if not total:
        return "no samples"
    lines = [f"{total} samples", "", "self %  function"]
    for frame, count in sorted(own.items(), key=lambda kv: -kv[1])[:top]:
        lines.append(f"{100 * count / total:6.1f}  {frame}")
    lines += ["", "incl %  function"]
    for frame, count in sorted(inclusive.items(), key=lambda kv: -kv[1])[: top * 2]:
        lines.append(f"{100 * count / total:6.1f}  {frame}")
    return "\n".join(lines)


# -- report ----------------------------------------------------------------------------------

GRANT_TITLES = {
    "client_credentials": "client_credentials (client_secret_basic)",
    "refresh_token": "refresh_token (rotating)",
}


def table(rows: list[list[str]], header: list[str], right: set[int], markdown: bool) -> str:
    if markdown:
        align = ["---:" if i in right else "---" for i in range(len(header))]
        out = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
        out += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join(out)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def fmt(row: list[str]) -> str:
        return "  ".join(
            c.rjust(widths[i]) if i in right else c.ljust(widths[i]) for i, c in enumerate(row)
        )

    return "\n".join([fmt(header), fmt(["-" * w for w in widths]), *map(fmt, rows)])


@dataclass(frozen=True)
class CaseSummary:
    """One case over its rounds: the median of each figure, and totals of what should be 0."""

    server: str
    product: str
    storage: str
    token_format: str
    grant: str
    rounds: int
    rate: float
    p50_ms: float
    p99_ms: float
    cpu_us: float
    errors: int  # error responses and socket errors, all rounds together
    chained: int  # past the pool, all rounds together


def summarize(results: Sequence[CaseResult]) -> list[CaseSummary]:
    """One summary per (server, grant), in the order the cases were first measured."""
    cases: dict[tuple[str, str], list[CaseResult]] = {}
    for r in results:
        cases.setdefault((r.server, r.grant), []).append(r)
    return [summarize_case(runs) for runs in cases.values()]


def summarize_case(runs: Sequence[CaseResult]) -> CaseSummary:
    first = runs[0]
    return CaseSummary(
        server=first.server,
        product=first.product,
        storage=first.storage,
        token_format=first.token_format,
        grant=first.grant,
        rounds=len(runs),
        rate=statistics.median(r.wrk.rate for r in runs),
        p50_ms=statistics.median(r.wrk.p50_ms for r in runs),
        p99_ms=statistics.median(r.wrk.p99_ms for r in runs),
        cpu_us=statistics.median(r.cpu_us for r in runs),
        errors=sum(r.wrk.errors + r.wrk.socket_errors for r in runs),
        chained=sum(r.chained for r in runs),
    )


def results_table(summaries: list[CaseSummary], grant: str, rounds: int, markdown: bool) -> str:
    rows = []
    for c in summaries:
        if c.grant != grant:
            continue
        rows.append(
            [
                c.product,
                c.storage,
                c.token_format,
                f"{c.rate:,.0f}",
                f"{c.p50_ms:.2f}",
                f"{c.p99_ms:.2f}",
                f"{c.cpu_us:,.0f}",
                f"{c.errors:,}",
                f"{c.chained:,}" if grant == "refresh_token" else "—",
            ]
            + ([] if c.rounds == rounds else [f"only {c.rounds} of {rounds} rounds"])
        )
    header = [
        "server",
        "storage",
        "access token",
        "tokens/s",
        "p50 ms",
        "p99 ms",
        "CPU µs/token",
        "errors",
        "past the pool",
    ]
    if any(len(row) > len(header) for row in rows):
        header.append("")
        rows = [row + [""] * (len(header) - len(row)) for row in rows]
    return table(rows, header, {3, 4, 5, 6, 7, 8}, markdown)


def find(summaries: list[CaseSummary], server: str, grant: str) -> CaseSummary | None:
    return next((c for c in summaries if c.server == server and c.grant == grant), None)


def paired_ratios(
    results: Sequence[CaseResult], ours: str, reference: str, grant: str
) -> tuple[list[float], list[float]]:
    """Ostiary's case over its reference, by rate and by CPU, in each round that measured both:
    the two windows were close in time, so the host's drift between rounds cancels out."""
    by_round: dict[int, dict[str, CaseResult]] = {}
    for r in results:
        if r.grant == grant and r.server in (ours, reference):
            by_round.setdefault(r.round, {})[r.server] = r
    by_rate, by_cpu = [], []
    for pair in by_round.values():
        o, ref = pair.get(ours), pair.get(reference)
        if o is None or ref is None or not (o.wrk.ok and ref.wrk.ok):
            continue
        by_rate.append(o.wrk.rate / ref.wrk.rate)
        by_cpu.append(ref.cpu_us / o.cpu_us)
    return by_rate, by_cpu


@dataclass(frozen=True)
class Goal:
    """One of the issue's Speed targets: Ostiary's rate over a reference server's."""

    what: str
    alg: str  # which Ostiary targets: "rs256" or "es256"
    reference: str  # a target key
    grant: str
    ratio: float


GOALS = (
    Goal("RS256 JWT vs oidc-provider RS256 JWT", "rs256", "oidc-provider-jwt", GRANTS[0], 1.3),
    Goal("ES256 JWT vs oidc-provider opaque", "es256", "oidc-provider-opaque", GRANTS[0], 1.0),
    Goal("RS256 JWT vs oidc-provider RS256 JWT", "rs256", "oidc-provider-jwt", GRANTS[1], 1.0),
    Goal("ES256 JWT vs oidc-provider opaque", "es256", "oidc-provider-opaque", GRANTS[1], 1.0),
)


def targets_table(
    results: Sequence[CaseResult], summaries: list[CaseSummary], rounds: int, markdown: bool
) -> str:
    """Each goal as measured (tokens/s) and as CPU efficiency (tokens per CPU-second), which
    stays meaningful when a shared host slows every server down at random. Ratios are taken
    within each round; a goal is met when the median of both reaches it."""
    rows = []
    for g in GOALS:
        ref = find(summaries, g.reference, g.grant)
        for storage, db in (("SQLite", "sqlite"), ("PostgreSQL", "pg")):
            ours = find(summaries, f"ostiary-{db}-{g.alg}", g.grant)
            if ours is None or ref is None:
                continue
            by_rate, by_cpu = paired_ratios(results, ours.server, ref.server, g.grant)
            if not by_rate:
                continue
            ratio, cpu_ratio = statistics.median(by_rate), statistics.median(by_cpu)
            spread = f"{min(by_rate):.2f}-{max(by_rate):.2f}x"
            if len(by_rate) != rounds:
                spread += f" ({len(by_rate)} of {rounds} rounds)"
            rows.append(
                [
                    f"{g.what}, {g.grant}",
                    storage,
                    f"{ours.rate:,.0f}",
                    f"{ref.rate:,.0f}",
                    f"{ratio:.2f}x",
                    spread,
                    f"{cpu_ratio:.2f}x",
                    f"{g.ratio:.1f}x",
                    "met" if min(ratio, cpu_ratio) >= g.ratio else "not met",
                    f"{ours.p99_ms:.2f}",
                    f"{ours.cpu_us:,.0f}",
                ]
            )
    header = [
        "target",
        "storage",
        "Ostiary tokens/s",
        "reference tokens/s",
        "ratio",
        "ratio min-max",
        "ratio by CPU",
        "goal",
        "",
        "Ostiary p99 ms",
        "Ostiary CPU µs/token",
    ]
    return table(rows, header, {2, 3, 4, 5, 6, 7, 9, 10}, markdown)


def versions() -> str:
    parts = []
    for name in ("oidc-provider", "@node-oauth/oauth2-server"):
        try:
            meta = json.loads((NODE_DIR / "node_modules" / name / "package.json").read_text())
            parts.append(f"{name} {meta['version']}")
        except OSError:
            pass
    node = subprocess.run(["node", "--version"], capture_output=True, text=True, check=False)
    wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True, check=False)
    wrk_version = (wrk.stdout or wrk.stderr).split("\n")[0].split(" [")[0]
    try:
        from importlib.metadata import version

        ostiary = f"ostiary {version('ostiary')}"
    except Exception:
        ostiary = "ostiary (not installed)"
    return ", ".join([ostiary, *parts, f"node {node.stdout.strip()}", wrk_version])


def of_rounds(rounds: int) -> str:
    return "one round" if rounds == 1 else f"median of {rounds} rounds"


def report(
    results: list[CaseResult], rounds: int, notes: list[str], settings: str, markdown: bool
) -> str:
    out = []
    head = "####" if markdown else "=="
    summaries = summarize(results)
    for grant in GRANTS:
        if any(c.grant == grant for c in summaries):
            title = f"{head} {GRANT_TITLES[grant]}: {of_rounds(rounds)}"
            out += [title, "", results_table(summaries, grant, rounds, markdown), ""]
    targets = targets_table(results, summaries, rounds, markdown)
    if targets.count("\n") > 1:
        title = f"{head} Ostiary against the issue's targets: ratios per round, {of_rounds(rounds)}"
        out += [title, "", targets, ""]
    out += [f"{head} run", ""]
    out += [f"- {line}" for line in [settings, *notes]]
    return "\n".join(out)


# -- main ------------------------------------------------------------------------------------


def select(patterns: str, names: Sequence[str]) -> list[str]:
    wanted = [p.strip() for p in patterns.replace(",", " ").split() if p.strip()]
    return [n for n in names if any(fnmatch.fnmatch(n, p) or p in n for p in wanted)]


def start_servers(
    keys: Sequence[str], stack: ExitStack, folder: Path, notes: list[str]
) -> list[Server]:
    """Start and check every selected server; each stays up until `stack` closes. One that
    fails is stopped at once and noted."""
    servers = []
    for target in TARGETS:
        if target.key not in keys:
            continue
        print(f"{target.key}: starting", file=sys.stderr)
        begun = time.monotonic()
        with ExitStack() as own:
            try:
                server = target.start(target, own, folder)
                check_server(server)
            except (BenchError, httpx.HTTPError) as exc:
                notes.append(f"{target.key} not measured: {str(exc).splitlines()[0]}")
                print(f"{target.key}: {exc}", file=sys.stderr)
                continue
            stack.enter_context(own.pop_all())
        ready = time.monotonic() - begun
        print(f"{target.key}: ready and checked in {ready:.1f} s", file=sys.stderr)
        servers.append(server)
    return servers


def run_rounds(
    servers: list[Server],
    grants: Sequence[str],
    folder: Path,
    *,
    rounds: int,
    warmup: float,
    seconds: float,
    notes: list[str],
) -> list[CaseResult]:
    """Every case once per round, in the same order each round. Grant by grant, so the
    cases a target compares (same grant) are at most a few windows apart."""
    results: list[CaseResult] = []
    expected: dict[tuple[str, str], float] = {}  # the last rate seen; "" for any grant
    live = list(servers)
    for n in range(1, rounds + 1):
        began = time.monotonic()
        for grant in grants:
            for server in list(live):
                if server.process.poll() is not None:
                    notes.append(f"{server.key} exited before round {n} {grant}: later cases lost")
                    live.remove(server)
                    continue
                rate = expected.get((server.key, grant), expected.get((server.key, ""), 3000.0))
                others = [s for s in live if s is not server]
                try:
                    result = run_case(
                        server,
                        grant,
                        folder,
                        warmup=warmup,
                        seconds=seconds,
                        rate=rate,
                        others=others,
                    )
                except (BenchError, httpx.HTTPError) as exc:
                    notes.append(f"{server.key} {grant} round {n}: {str(exc).splitlines()[0]}")
                    print(f"{server.key} {grant}: {exc}", file=sys.stderr)
                    continue
                result = replace(result, round=n)
                expected[(server.key, grant)] = max(result.wrk.rate, 500.0)
                expected[(server.key, "")] = expected[(server.key, grant)]
                results.append(result)
                w = result.wrk
                print(
                    f"[{n}/{rounds}] {server.key:22} {grant:18} {w.rate:8,.0f}/s"
                    f"  p50 {w.p50_ms:6.2f} ms  p99 {w.p99_ms:6.2f} ms"
                    f"  cpu {result.cpu_us:6,.0f} µs  errors {w.errors + w.socket_errors}",
                    file=sys.stderr,
                )
        took = time.monotonic() - began
        print(f"round {n} of {rounds} done in {took:.0f} s", file=sys.stderr)
    return results


def idle_note(results: Sequence[CaseResult]) -> str | None:
    """How much the idle servers took from the measured one's core (they share CPU 0)."""
    if not results:
        return None
    worst = max(results, key=lambda r: r.others_cpu_ms / r.wrk.duration)
    share = worst.others_cpu_ms / 1000 / worst.wrk.duration
    total = sum(r.others_cpu_ms for r in results)
    return (
        f"the servers not being measured used {total:,.0f} ms of CPU in all the windows together,"
        f" at most {100 * share:.1f}% of a core in one ({worst.server} {worst.grant},"
        f" round {worst.round})"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="3 s per case and 1 round instead of 10 s and 3"
    )
    parser.add_argument(
        "--seconds", type=float, help=f"measured window per case (default {WINDOW:g})"
    )
    parser.add_argument("--warmup", type=float, help="warm-up per case and round (default 1)")
    parser.add_argument(
        "--rounds",
        type=int,
        help=f"rounds, each measuring every case once (default {ROUNDS}; 1 with --quick)",
    )
    parser.add_argument(
        "--targets", default=",".join(DEFAULT_TARGETS), help="server keys, globs; see --list"
    )
    parser.add_argument("--serve-floor", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--grants", default=",".join(GRANTS))
    parser.add_argument("--markdown", action="store_true", help="tables for docs/benchmarks.md")
    parser.add_argument("--json", type=Path, help="also write the raw figures of every round here")
    parser.add_argument("--list", action="store_true", help="list the server keys and exit")
    parser.add_argument(
        "--profile", metavar="TARGET", help="py-spy an Ostiary target instead of timing"
    )
    args = parser.parse_args(argv)
    if args.serve_floor:
        serve_floor()
        return 0
    if args.list:
        for t in TARGETS:
            print(f"{t.key:24} {t.product}, {t.storage}, {t.token_format}")
        return 0
    seconds = args.seconds or (3.0 if args.quick else WINDOW)
    warmup = args.warmup if args.warmup is not None else 1.0
    rounds = args.rounds if args.rounds is not None else (1 if args.quick else ROUNDS)
    if rounds < 1:
        parser.error("--rounds must be at least 1")
    grants = select(args.grants, GRANTS)
    keys = select(args.profile or args.targets, [t.key for t in TARGETS])
    if shutil.which("wrk") is None:
        raise BenchError("wrk is not installed (Debian: apt-get install wrk)")
    notes: list[str] = []
    if not PINNING:
        notes.append("CPUs 0 and 1 are not both available: servers and wrk were NOT pinned")
    load_start = os.getloadavg()[0]
    started = time.monotonic()
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    if any(k.startswith(("node-", "oidc-")) for k in keys):
        ensure_node_modules()
    pg_reason = postgres_unreachable() if any("-pg-" in k for k in keys) else None
    if pg_reason:
        notes.append(f"PostgreSQL targets skipped: {pg_reason}")
        keys = [k for k in keys if "-pg-" not in k]
    # The folder outlives the servers: the SQLite databases are in it.
    with tempfile.TemporaryDirectory(prefix="ostiary-token-bench-") as tmp, ExitStack() as stack:
        folder = Path(tmp)
        (folder / "client_credentials.lua").write_text(LUA_CLIENT_CREDENTIALS)
        (folder / "refresh_token.lua").write_text(LUA_REFRESH)
        servers = start_servers(keys, stack, folder, notes)
        if args.profile:
            for server in servers:
                for grant in grants:
                    print(f"== py-spy: {server.key} {grant}\n")
                    print(profile_server(server, grant, folder, seconds, 1000.0))
            return 0
        results = run_rounds(
            servers,
            grants,
            folder,
            rounds=rounds,
            warmup=warmup,
            seconds=seconds,
            notes=notes,
        )
        print(f"stopping {len(servers)} servers", file=sys.stderr)
    load_end = os.getloadavg()[0]
    settings = (
        f"{when}; {platform.machine()}, {os.cpu_count()} CPUs, Linux {platform.release()}; "
        f"{versions()}; {CONNECTIONS} connections; "
        + ("one round" if rounds == 1 else f"{rounds} interleaved rounds")
        + f" of every case, {warmup:g} s warm-up and {seconds:g} s measured; server on CPU "
        f"{SERVER_CPU}, wrk on CPU {WRK_CPU}"
    )
    if rounds > 1:
        notes.append(
            f"each case's tokens/s, p50, p99 and CPU: the {of_rounds(rounds)}; errors and past "
            "the pool: summed over the rounds; target ratios: Ostiary's case over its reference "
            "in the same round, then the median and the range over the rounds"
        )
    idle = idle_note(results) if len(servers) > 1 else None
    if idle:
        notes.append(idle)
    notes.append(f"load average {load_start:.2f} at the start, {load_end:.2f} at the end")
    notes.append(f"wall time of this run: {time.monotonic() - started:.0f} s")
    if load_start > 0.5:
        notes.append("the host was not idle at the start: figures may be low and noisy")
    for r in results:
        if r.wrk.errors or r.wrk.socket_errors:
            notes.append(
                f"{r.server} {r.grant} round {r.round}: {r.wrk.errors} error responses, "
                f"{r.wrk.socket_errors} socket errors (not counted as tokens)"
            )
    print(report(results, rounds, notes, settings, args.markdown))
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "settings": settings,
                    "rounds": rounds,
                    "seconds": seconds,
                    "warmup": warmup,
                    "notes": notes,
                    "results": [
                        {**{k: v for k, v in r.__dict__.items() if k != "wrk"}, **r.wrk.__dict__}
                        for r in results
                    ],
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
